"""The bgen server's logic, kept apart from its sockets and threads (those live in bgen_server.py).

    framing      sans-I/O parser of the renderer's TCP frames ``[u32 LE length][payload]``
    http1        sans-I/O HTTP/1.1 request framing checks (RFC 9112): request line, fields, body length
    auth         access tokens: Bearer / ?token= checks in constant time, bind refusal, log redaction
    lifecycle    the run state table: queued -> running -> done / failed / terminated / interrupted
    validation   POST /run bodies, query strings and WebSocket paths -> typed values or BadRequest
    progress     event shaping for clients, step decimation, render channels and port blocks
    store        runs/<run_id>/ on disk: run.json, events.jsonl, policies
    runs         RunManager: one thread per active run, bounded concurrency, FIFO queue

Benchmarks of the server's streams live above it, in ``bgen.bench.server``.
"""
