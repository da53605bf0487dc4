// A worker script in the Node.js WorkerPoolManager's protocol, for wpm's
// tests: data.mode picks what a task does.
process.on("message", async (msg) => {
  if (msg.type === "init") {
    process.send({ ok: true, type: "initDone", data: { pid: process.pid } });
    return;
  }
  if (msg.type === "terminate") {
    process.exit(0);
  }
  if (msg.type !== "work") return;
  const d = msg.data || {};
  const reply = (data) => process.send({ ok: true, id: msg.id, type: "workDone", data });
  const fail = (message) => process.send({ ok: false, id: msg.id, type: "error", data: message });
  switch (d.mode) {
    case "sleep": { // overlaps with other tasks: setTimeout yields
      const start = Date.now();
      await new Promise((r) => setTimeout(r, d.ms || 0));
      return reply({ pid: process.pid, start, end: Date.now() });
    }
    case "progress":
      process.send({ type: "progress", id: msg.id, data: { fraction: 0.5, message: "half" } });
      await new Promise((r) => setTimeout(r, 150));
      process.send({ type: "progress", id: msg.id, data: { fraction: 1, message: "done" } });
      return reply({ pid: process.pid });
    case "fail": // answers with an error and lives on
      return fail("the task failed on purpose");
    case "throw": // answers with an error, then ends, as the Node.js project's scripts do
      fail("thrown on purpose");
      setImmediate(() => { throw new Error("thrown on purpose"); });
      return;
    case "crash":
      console.error("about to crash on purpose");
      process.exit(3);
    case "hang":
      return; // never answers
    case "alloc": { // ArrayBuffers, outside V8's heap limit
      const keep = [];
      for (let i = 0; i < d.mb; i++) {
        const b = new Uint8Array(1 << 20);
        b.fill(1);
        keep.push(b);
        if (i % 8 === 7) await new Promise((r) => setImmediate(r));
      }
      return reply({ mb: keep.length });
    }
    case "log":
      console.log("hello on stdout");
      console.error("hello on stderr");
      return reply({ pid: process.pid });
    default:
      return reply(msg);
  }
});
