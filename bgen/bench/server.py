"""``python -m bgen.bench server``: what the server's streams deliver, beside raw loopback TCP.

Measured in one run, on this machine, with the clients in a separate process:

* progress fan-out: N small progress events published from a thread, delivered to 1 and 16
  WebSocket subscribers through the EventHub and the WebSocket thread; beside the same
  messages written to 1 and 16 plain TCP connections (one ``sendall`` per message);
* renderer proxy: 200 KB frames sent over TCP to a run's proxy port and delivered to one
  WebSocket subscriber (binary, and JSON + base64); beside the same bytes over plain TCP;
* HTTP latency while runs execute: a whole server (the real loop, its worker processes) with
  two long runs executing; ``POST /run`` acceptance (``episodes: 0``, so each accepted run
  only queues) and ``GET /health``, one request at a time on one keep-alive connection from
  the client process, p50 and p99 in ms; beside them, in the same rounds and so under the same
  load, the standard library's ``http.server`` in a process of its own, reading the same POST
  body and answering a run id (the floor this machine sets for any Python server).

Nothing is asserted; the figures are printed (medians of ``--repeat`` rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bgen.errors import Conflict
from bgen.server.framing import encode_frame

PROGRESS_EVENT = {"type": "episode_summary", "iteration": 0, "seed": 3,
                  "summary": {"success": True, "steps": 812, "collisions_total": 0, "reason": "success",
                              "sim_time_s": 8.12, "wall_time_s": 0.41, "avg_command_len": 1.0,
                              "policy_summary": {"summary": "reached the target"}}}


HOVERING_POLICY = '''"""Stays where it starts: an episode that runs until max_steps."""


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"dist": f"{step_ctx['distance_to_target']:.2f}"}


def finalize(ep_ctx):
    return {"summary": f"steps={ep_ctx['steps']}"}
'''


class BenchManager:
    """Stands in for the RunManager: one run, "bench", with nothing to replay."""

    def exists(self, run_id):
        return True

    def record(self, run_id):
        return {"status": "running"}

    def replay(self, run_id, since=None):
        return []

    def terminate(self, run_id):
        raise Conflict("the benchmark run cannot be terminated")


# ---------------------------------------------------------------- client process

def _ws_clients(url: str, connections: int, expected: int, binary: bool, conn) -> None:
    """Open ``connections`` WebSockets, report ready, read ``expected`` messages on each, report the time."""
    from websockets.asyncio.client import connect

    async def main():
        sockets = [await connect(url, max_size=None, compression=None) for _ in range(connections)]
        for ws in sockets:
            await ws.recv()      # connected
        conn.send("ready")
        payload_bytes = 0

        async def read(ws):
            nonlocal payload_bytes
            for _ in range(expected):
                message = await ws.recv()
                payload_bytes += len(message) - 4 if binary else len(message)

        await asyncio.gather(*(read(ws) for ws in sockets))
        conn.send((time.monotonic(), payload_bytes))
        for ws in sockets:
            await ws.close()

    asyncio.run(main())


def _tcp_clients(port: int, connections: int, expected_bytes: int, conn) -> None:
    """Open ``connections`` TCP sockets, report ready, read ``expected_bytes`` on each, report the time."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    conn.send("ready")
    for sock in sockets:       # the kernel buffers what the others send meanwhile
        left = expected_bytes
        while left > 0:
            chunk = sock.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("sender closed early")
            left -= len(chunk)
    conn.send((time.monotonic(), expected_bytes * connections))
    for sock in sockets:
        sock.close()


def _http_client(port: int, bare_port: int, count: int, body: bytes, conn) -> None:
    """Send ``count`` rounds of POST /run and GET /health to bgen's server and POST /run to the
    bare baseline server, each on its own keep-alive connection; report each latency (s)."""
    import http.client

    clients = {name: http.client.HTTPConnection("127.0.0.1", p, timeout=60)
               for name, p in (("bgen", port), ("bare", bare_port))}
    conn.send("ready")
    conn.recv()         # go
    post, get, bare = [], [], []
    for _ in range(count):
        for name, method, path, data, into in (("bgen", "POST", "/run", body, post),
                                               ("bgen", "GET", "/health", None, get),
                                               ("bare", "POST", "/run", body, bare)):
            client = clients[name]
            started = time.perf_counter()
            client.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = client.getresponse()
            response.read()
            into.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"{name} {method} {path} answered {response.status}")
    for client in clients.values():
        client.close()
    conn.send((post, get, bare))


def _bare_server(conn) -> None:
    """The baseline server process: report the port, then serve until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BareHandler)
    conn.send("ready")
    conn.send(server.server_address[1])
    server.serve_forever()


class _BareHandler(BaseHTTPRequestHandler):
    """The baseline: the standard library's server doing the least an acceptance must (read
    and parse the JSON body, answer a run id), nothing of bgen's."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True    # headers and body go out in two writes

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = json.dumps({"run_id": f"{len(body):012x}", "status": "queued"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def _spawn(target, *args):
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    if not parent.poll(60) or parent.recv() != "ready":
        raise RuntimeError("benchmark client did not start")
    return process, parent


def _finish(process, parent, started: float) -> tuple[float, int]:
    if not parent.poll(300):
        raise RuntimeError("benchmark client did not finish")
    ended, delivered = parent.recv()
    process.join(10)
    return ended - started, delivered


# ---------------------------------------------------------------- measurements

def progress_ws(hub, ws_port: int, subscribers: int, messages: int) -> float:
    """Messages delivered per second (all subscribers together) through EventHub + WebSockets."""
    process, parent = _spawn(_ws_clients, f"ws://127.0.0.1:{ws_port}/ws/progress/bench",
                             subscribers, messages, False)
    events = [{**PROGRESS_EVENT, "id": i} for i in range(1, messages + 1)]
    started = time.monotonic()
    for event in events:
        hub.publish_event("bench", event)
    elapsed, _ = _finish(process, parent, started)
    return subscribers * messages / elapsed


def progress_tcp(subscribers: int, messages: int) -> float:
    """The same messages, one ``sendall`` each, to plain TCP connections."""
    lines = [(json.dumps({**PROGRESS_EVENT, "id": i}, separators=(",", ":")) + "\n").encode()
             for i in range(1, messages + 1)]
    with socket.create_server(("127.0.0.1", 0)) as server:
        process, parent = _spawn(_tcp_clients, server.getsockname()[1], subscribers, sum(map(len, lines)))
        peers = [server.accept()[0] for _ in range(subscribers)]
        started = time.monotonic()
        writers = [threading.Thread(target=lambda p=p: [p.sendall(line) for line in lines]) for p in peers]
        for writer in writers:
            writer.start()
        elapsed, _ = _finish(process, parent, started)
        for writer in writers:
            writer.join()
        for peer in peers:
            peer.close()
    return subscribers * messages / elapsed


def proxy_ws(proxy_port: int, ws_port: int, frames: int, frame_bytes: int, fmt: str) -> float:
    """Payload MB/s from a TCP sender through the renderer proxy to one WebSocket subscriber."""
    process, parent = _spawn(_ws_clients, f"ws://127.0.0.1:{ws_port}/ws/render/bench/world?format={fmt}",
                             1, frames, fmt == "binary")
    frame = encode_frame(bytes(range(256)) * (frame_bytes // 256))
    with socket.create_connection(("127.0.0.1", proxy_port)) as sender:
        started = time.monotonic()
        for _ in range(frames):
            sender.sendall(frame)
        elapsed, delivered = _finish(process, parent, started)
    payload = frames * (len(frame) - 4)
    if delivered < payload:     # e.g. error messages instead of frames: a figure would lie
        raise RuntimeError(f"proxy delivered {delivered} bytes for {payload} bytes of frames "
                           f"(format {fmt}); not a throughput figure")
    return payload / elapsed / 1e6


def proxy_tcp(frames: int, frame_bytes: int) -> float:
    frame = encode_frame(bytes(range(256)) * (frame_bytes // 256))
    with socket.create_server(("127.0.0.1", 0)) as server:
        process, parent = _spawn(_tcp_clients, server.getsockname()[1], 1, frames * len(frame))
        peer = server.accept()[0]
        started = time.monotonic()
        for _ in range(frames):
            peer.sendall(frame)
        elapsed, _ = _finish(process, parent, started)
        peer.close()
    return frames * (len(frame) - 4) / elapsed / 1e6


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def http_latency(requests: int, executing: int = 2) -> tuple[list[float], list[float], list[float]]:
    """(POST /run, GET /health, baseline POST latencies) in s, with ``executing`` runs executing.

    The baseline is ``_BareHandler`` on a ``ThreadingHTTPServer`` in a process of its own,
    asked in the same rounds: it meets the same load (the runs' episodes on the same cores)
    without sharing anything of bgen's, so the difference is bgen's own."""
    import tempfile
    from pathlib import Path

    from bgen.llm.context import example_path
    from bgen_server import BgenServer, Settings

    policy = example_path("move_to_target").read_text(encoding="utf-8")
    # The executing runs hover: they never reach their target, so they keep their episodes
    # (two policy processes, their pipes, their step events) going for the whole measurement.
    long_run = {"policy_code": HOVERING_POLICY, "episodes": 2, "max_steps": 1_000_000,
                "render": False, "iterations": 1}
    accepted = json.dumps({"policy_code": policy, "episodes": 0, "render": False}).encode()
    with tempfile.TemporaryDirectory() as runs_dir:
        server = BgenServer(Settings(port=0, ws_port=0, runs_dir=runs_dir, render_ports=(0, 0, 0, 0),
                                     max_concurrent_runs=executing, backend="embedded"))
        server.start()
        try:
            import http.client
            for _ in range(executing):
                client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                client.request("POST", "/run", body=json.dumps(long_run))
                run_id = json.loads(client.getresponse().read())["run_id"]
                client.close()
                deadline = time.monotonic() + 60
                while not list((Path(runs_dir) / run_id).glob("iter_0/ep_*")) and time.monotonic() < deadline:
                    time.sleep(0.05)        # its episodes are under way
            bare, bare_port = _spawn(_bare_server)
            try:
                process, parent = _spawn(_http_client, server.port, bare_port.recv(),
                                         requests, accepted)
                parent.send("go")
                if not parent.poll(600):
                    raise RuntimeError("benchmark client did not finish")
                post, get, baseline = parent.recv()
                process.join(10)
            finally:
                bare.kill()
                bare.join(10)
        finally:
            server.stop()
    return post, get, baseline


def median_of(repeat: int, measure) -> float:
    return statistics.median(measure() for _ in range(repeat))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench server", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="progress events per round (default 20000)")
    parser.add_argument("--frames", type=int, default=200, help="frames per proxy round (default 200)")
    parser.add_argument("--frame-kb", type=int, default=200, help="frame size in KB (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure; the median is printed (default 3)")
    parser.add_argument("--requests", type=int, default=300,
                        help="POST /run and GET /health requests for the latency figures (default 300 each)")
    parser.add_argument("--only-http", action="store_true", help="measure the HTTP latency figures only")
    args = parser.parse_args(argv)

    from bgen.machine import machine_line
    post, get, baseline = http_latency(args.requests)
    print(machine_line())
    print(f"HTTP latency with 2 runs executing: {args.requests} requests each, one keep-alive "
          f"connection per server")
    for label, values in (("POST /run (accepted, episodes 0)", post), ("GET /health", get),
                          ("baseline: bare http.server POST", baseline)):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"  {label:<34} p50 {p50 * 1e3:6.2f} ms   p99 {p99 * 1e3:6.2f} ms   "
              f"p99/p50 {p99 / p50:5.1f}")
    if args.only_http:
        return 0

    from bgen_server import EventHub, RenderProxy, WebSocketService

    hub = EventHub()
    service = WebSocketService("127.0.0.1", 0, hub, BenchManager(), subscriber_queue=args.messages + 10,
                               render_queue=args.frames + 10)
    service.start()
    proxy = RenderProxy("bench", hub, (0, 0, 0, 0), max_frame_bytes=64 << 20)
    event_bytes = len(json.dumps({**PROGRESS_EVENT, "id": 1}, separators=(",", ":")))
    try:
        print(f"progress fan-out: {args.messages} events of {event_bytes} B, median of {args.repeat}")
        print(f"  {'subscribers':>11}  {'EventHub + websockets':>22}  {'raw loopback TCP':>17}")
        for subscribers in (1, 16):
            ws = median_of(args.repeat, lambda: progress_ws(hub, service.port, subscribers, args.messages))
            tcp = median_of(args.repeat, lambda: progress_tcp(subscribers, args.messages))
            print(f"  {subscribers:>11}  {ws:>16,.0f} msg/s  {tcp:>11,.0f} msg/s")
        print(f"renderer proxy: {args.frames} frames of {args.frame_kb} KB, median of {args.repeat}")
        frame_bytes = args.frame_kb * 1000
        tcp = median_of(args.repeat, lambda: proxy_tcp(args.frames, frame_bytes))
        for fmt in ("binary", "base64"):
            ws = median_of(args.repeat, lambda: proxy_ws(proxy.ports[0], service.port, args.frames,
                                                         frame_bytes, fmt))
            label = "binary message per frame" if fmt == "binary" else "JSON + base64 (default)"
            print(f"  TCP -> proxy -> WS, {label:<25} {ws:>8,.0f} MB/s")
        print(f"  raw loopback TCP, same frames{'':<16} {tcp:>8,.0f} MB/s")
    finally:
        proxy.stop()
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
