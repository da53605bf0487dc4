"""wpm_plugin: write a wpm worker in Python.

A plugin is a function of a dict that returns a dict::

    import wpm_plugin

    def count(task):
        wpm_plugin.progress(0.5, "halfway")
        return {"n": len(task.get("items", []))}

    if __name__ == "__main__":
        wpm_plugin.serve(count)

The process speaks go-plugin's gRPC protocol (its contract for plugins not
written in Go: docs/guide-plugin-write-non-go.md in hashicorp/go-plugin)
and serves wpm's task service (proto/wpm/task/v1/task.proto). It runs on
Debian's python3-grpcio and python3-protobuf; no generated service code is
needed, only the messages in task_pb2.

- Raise InvalidInput("what to change") for a task whose input is wrong: the
  caller gets 400 invalid_task and the worker stays. Input that is not a
  JSON object is refused that way before the function is called.
- Any other exception fails the task (task_failed); the worker stays.
- MemoryError ends the process: under a memory limit the host reports
  memory_limit_exceeded and starts another worker.
- Log with the logging module (or print): it goes to stderr, which the
  host logs with the worker's pool and pid.
- traceparent() is the running task's W3C traceparent when wpm traces
  (tracing.endpoint): extract it with OpenTelemetry's propagator so that
  the plugin's own spans join the task's trace.
"""

import concurrent.futures
import contextvars
import json
import logging
import math
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
import traceback

import grpc

from . import task_pb2

__all__ = ["serve", "progress", "traceparent", "InvalidInput", "PROGRESS_INTERVAL", "MAX_PROGRESS_MESSAGE"]

# The handshake, as in internal/wire/handshake.go: the host sets the cookie in
# the plugin's environment, and the plugin names the app protocol version.
MAGIC_COOKIE_KEY = "WPMPLUGIN_HANDSHAKE"
MAGIC_COOKIE_VALUE = "wpm-task-v1-7f3c1b2e"
APP_PROTOCOL_VERSION = 1
# go-plugin's own protocol version, the first field of the handshake line.
CORE_PROTOCOL_VERSION = 1

# As the Go SDK (shared.Progress, internal/wire/progress.go): at most one report
# per interval is sent (the first and the first reaching 1 always go),
# messages are cut.
PROGRESS_INTERVAL = 0.1
MAX_PROGRESS_MESSAGE = 200

log = logging.getLogger("wpm_plugin")


class InvalidInput(Exception):
    """The task's input is wrong: the caller gets 400 invalid_task.

    The message should say what to change.
    """


_reporter = contextvars.ContextVar("wpm_plugin_reporter", default=None)


def progress(fraction, message=""):
    """Report how far the running task is: fraction from 0 to 1, a short message.

    Cheap to call often: reports are sent at most every PROGRESS_INTERVAL
    seconds. Outside a task it does nothing.
    """
    r = _reporter.get()
    if r is not None:
        r.report(fraction, message)


_traceparent = contextvars.ContextVar("wpm_plugin_traceparent", default="")


def traceparent():
    """The running task's W3C traceparent ("00-<trace id>-<span id>-<flags>").

    It names the host's span of this attempt, so spans the plugin makes
    under it join the task's trace::

        from opentelemetry.propagate import extract
        ctx = extract({"traceparent": wpm_plugin.traceparent()})
        with tracer.start_as_current_span("resize", context=ctx): ...

    "" when the host traces nothing, or outside a task.
    """
    return _traceparent.get()


def _clean(fraction, message):
    """The report as the host keeps it, or None for a fraction that is no number."""
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        return None
    if math.isnan(fraction):
        return None
    fraction = min(max(fraction, 0.0), 1.0)
    b = str(message).encode("utf-8", "replace")[:MAX_PROGRESS_MESSAGE]
    return fraction, b.decode("utf-8", "ignore")


class _Reporter:
    """One task's progress: rate-limited reports put on the task's event queue."""

    def __init__(self, events):
        self._events = events
        self._lock = threading.Lock()
        self._last = None  # when the last report was sent
        self._reached_end = False
        self._pending = None  # the latest report not sent yet

    def report(self, fraction, message):
        cleaned = _clean(fraction, message)
        if cleaned is None:
            return
        now = time.monotonic()
        with self._lock:
            first_end = cleaned[0] >= 1 and not self._reached_end
            if self._last is None or first_end or now - self._last >= PROGRESS_INTERVAL:
                self._last = now
                self._reached_end = self._reached_end or cleaned[0] >= 1
                self._pending = None
                self._send(cleaned)
            else:
                self._pending = cleaned

    def flush(self):
        """Send the latest report that was held back, before the task's end."""
        with self._lock:
            if self._pending is not None:
                self._send(self._pending)
                self._pending = None

    def _send(self, cleaned):
        self._events.put(task_pb2.RunEvent(progress=task_pb2.Progress(fraction=cleaned[0], message=cleaned[1])))


def _error_event(kind, message):
    return task_pb2.RunEvent(error=task_pb2.Error(kind=kind, message=message))


def _out_of_memory():
    # Nothing that allocates: the host reads "out of memory" on stderr and
    # reports memory_limit_exceeded.
    try:
        os.write(2, b"MemoryError: out of memory; the wpm plugin exits\n")
    finally:
        os._exit(70)


class _TaskService:
    def __init__(self, fn, concurrency):
        self._fn = fn
        self._concurrency = concurrency
        self._tasks = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="wpm-task")

    def run(self, request, context):
        events = queue.SimpleQueue()
        tp = ""
        for key, value in context.invocation_metadata() or ():
            if key == "traceparent":
                tp = value
        self._tasks.submit(self._call, request, events, tp)
        while True:
            ev = events.get()
            yield ev
            if ev.WhichOneof("event") != "progress":
                return

    def info(self, request, context):
        return task_pb2.InfoResponse(concurrency=self._concurrency)

    def _call(self, request, events, tp=""):
        rep = _Reporter(events)
        token = _reporter.set(rep)
        tp_token = _traceparent.set(tp)
        try:
            events.put(self._answer(request, rep))
        except MemoryError:
            _out_of_memory()
        except BaseException as e:  # never leave the host without an answer
            events.put(_error_event(task_pb2.Error.FAILURE, "task failed: %s" % (e,)))
        finally:
            _traceparent.reset(tp_token)
            _reporter.reset(token)

    def _answer(self, request, rep):
        try:
            try:
                task = json.loads(request.input)
            except (ValueError, UnicodeDecodeError) as e:
                raise InvalidInput("the task is not valid JSON (%s); send a JSON object" % (e,)) from None
            if not isinstance(task, dict):
                raise InvalidInput("the task must be a JSON object, not %s" % (type(task).__name__,))
            out = self._fn(task)
            if not isinstance(out, dict):
                raise TypeError("the plugin returned %s, not a dict" % (type(out).__name__,))
            body = json.dumps(out, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except InvalidInput as e:
            rep.flush()
            return _error_event(task_pb2.Error.INVALID_INPUT, str(e) or "invalid input")
        except MemoryError:
            raise
        except Exception as e:
            log.error("task failed", extra={"error": traceback.format_exc(), "task_id": request.task_id})
            rep.flush()
            return _error_event(task_pb2.Error.FAILURE, "%s: %s" % (type(e).__name__, e))
        rep.flush()
        return task_pb2.RunEvent(output=body)


def _health_check(request, context):
    # grpc.health.v1.HealthCheckRequest {string service = 1}, read by hand:
    # the only field is tag 0x0a, a length, the name.
    service = b""
    if len(request) >= 2 and request[0] == 0x0A:
        service = request[2 : 2 + request[1]]
    if service not in (b"", b"plugin"):
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return b"\x08\x01"  # HealthCheckResponse {status: SERVING}


def _shutdown(request, context):
    threading.Timer(0.05, os._exit, args=(0,)).start()
    return b""


def _raw(b):
    return b


class _HclogJSON(logging.Formatter):
    """Formats records as hclog's JSON lines, which the host logs at their level."""

    _levels = {"WARNING": "warn", "CRITICAL": "error"}

    def format(self, record):
        entry = {
            "@level": self._levels.get(record.levelname, record.levelname.lower()),
            "@message": record.getMessage(),
            "@module": record.name,
        }
        for k in ("error", "task_id"):
            if hasattr(record, k):
                entry[k] = getattr(record, k)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _warm(executor, n):
    """Start all n threads of executor now, so their stacks count in the
    process's data size before the host sets its memory limit."""
    barrier = threading.Barrier(n + 1)
    for _ in range(n):
        executor.submit(barrier.wait, 5)
    barrier.wait(5)


def serve(fn, concurrency=1):
    """Serve fn as a wpm plugin until the host ends the process.

    fn takes a task's input (a dict) and returns its output (a dict). At
    most concurrency tasks run at once, each in its own thread; the host
    sends no more than that to one process.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_HclogJSON())
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This program is a wpm plugin: wpm starts it. Put it in wpm's plugins "
            "directory and run it with wpm run or a pool.\n"
        )
        sys.exit(1)
    concurrency = max(int(concurrency), 1)

    sock_dir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    path = os.path.join(sock_dir, "plugin-py-%d-%s" % (os.getpid(), secrets.token_hex(4)))

    service = _TaskService(fn, concurrency)
    # Room for health checks and Info beside the running tasks.
    rpc_threads = concurrency + 3
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=rpc_threads, thread_name_prefix="wpm-rpc")
    _warm(executor, rpc_threads)
    _warm(service._tasks, concurrency)
    server = grpc.server(
        executor,
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "wpm.task.v1.Task",
                {
                    "Run": grpc.unary_stream_rpc_method_handler(
                        service.run,
                        request_deserializer=task_pb2.RunRequest.FromString,
                        response_serializer=task_pb2.RunEvent.SerializeToString,
                    ),
                    "Info": grpc.unary_unary_rpc_method_handler(
                        service.info,
                        request_deserializer=task_pb2.InfoRequest.FromString,
                        response_serializer=task_pb2.InfoResponse.SerializeToString,
                    ),
                },
            ),
            grpc.method_handlers_generic_handler(
                "grpc.health.v1.Health",
                {"Check": grpc.unary_unary_rpc_method_handler(_health_check, _raw, _raw)},
            ),
            grpc.method_handlers_generic_handler(
                "plugin.GRPCController",
                {"Shutdown": grpc.unary_unary_rpc_method_handler(_shutdown, _raw, _raw)},
            ),
        )
    )
    server.add_insecure_port("unix:" + path)
    server.start()

    # The handshake line, then stdout goes to stderr: go-plugin reads
    # nothing more from stdout, and the host logs stderr.
    sys.stdout.write("%d|%d|unix|%s|grpc|\n" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, path))
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    server.wait_for_termination()
