"""wordcount: a wpm plugin in Python.

Input {"text": "..."} → output {"words": N, "lines": N}, reporting its
progress line by line. `make build` packs it with the SDK
(sdk/python/wpm_plugin) into one executable zipapp, bin/plugins/wordcount,
run by Debian's /usr/bin/python3 (with python3-grpcio and python3-protobuf).
"""

import wpm_plugin


def count(task):
    text = task.get("text")
    if not isinstance(text, str):
        raise wpm_plugin.InvalidInput('"text" is required: a string; send {"text": "..."}')
    unknown = sorted(set(task) - {"text"})
    if unknown:
        raise wpm_plugin.InvalidInput('unknown field %r; send {"text": "..."}' % unknown[0])
    lines = text.splitlines()
    words = 0
    for i, line in enumerate(lines):
        words += len(line.split())
        if i % 1000 == 0:
            wpm_plugin.progress(i / len(lines), "line %d of %d" % (i + 1, len(lines)))
    wpm_plugin.progress(1, "counted")
    return {"words": words, "lines": len(lines)}


if __name__ == "__main__":
    wpm_plugin.serve(count, concurrency=4)
