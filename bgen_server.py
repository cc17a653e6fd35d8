"""bgen server: HTTP API to start, inspect and stop runs; WebSockets to watch them live.

Threads, processes and queues of one server process::

    main thread ── parses flags, starts everything, waits for SIGINT/SIGTERM, shuts down
    │
    ├─ "http" ThreadingHTTPServer.serve_forever ──► a daemon thread per connection (ApiHandler)
    │        framing (bgen.server.http1) ─► access token (bgen.server.auth) ─► ROUTES
    │        POST /run ─► RunManager.submit (memory only) ─► FIFO queue
    │
    ├─ "run-writer" creates runs/<id>/, run.json, events.jsonl of each accepted run; its
    │        run thread starts only after that (POST /run never waits for the disk)
    │
    ├─ "run-<id>" a thread per running run (at most --max-concurrent-runs)
    │        run_loop(config, run_dir, emit, stop_event) ─► episode worker processes (the runner)
    │        emit(event) ─► EventLog (runs/<id>/events.jsonl, assigns ids) ─► StepThrottle
    │                                                                             │
    ├─ "render-<id>-<channel>" a socketserver per renderer port of a proxied run  │
    │        recv ─► FrameParser.feed ─► frames ───────────────────────┐          │
    │                                                                   ▼          ▼
    │                                       EventHub.publish_*: serialize once per format (a
    │                                       frame is decoded here, on the publishing thread,
    │                                       only for ?format=json subscribers), append to the
    │                                       hand-over list, wake the loop once per batch
    │                                       (loop.call_soon_threadsafe)
    │                                                                   │
    └─ "websockets" ONE asyncio loop ◄──────────────────────────────────┘
             EventHub._flush ─► a bounded Subscriber queue per connection (old steps/frames
             are dropped first) ─► one pump task per connection ─► websocket.send
             /ws/progress/<run_id>   /ws/render/<run_id>/<channel>

Only the asyncio thread touches websocket objects. Policy code never runs in this process.

Sections, in the order data flows: logging and errors, HTTP API, TCP→WS renderer proxy,
decoded frames (``?format=json``), EventHub, WebSocket thread, the server object that wires
them, command line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import http.client
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from bgen import __version__
from bgen import defaults as D
from bgen.errors import (BadRequest, BgenError, ConfigError, MethodNotAllowed, NotFound,
                         PayloadTooLarge, PolicyError, RequestTimeout)
from bgen.runner.executor import add_executor_arguments, make_executor
from bgen.runner.taskspec import json_int
from bgen.server import auth, dashboard, lifecycle
from bgen.server.framing import DEFAULT_MAX_FRAME_BYTES, FrameError, FrameParser, encode_frame
from bgen.server.http1 import FramingError, body_length, check_field_lines, check_request_line
from bgen.server.progress import (DEFAULT_RENDER_PORTS, DROPPABLE_TYPES, PORT_BLOCKS, port_block,
                                  render_channels)
from bgen.server.runs import ManagerSettings, RunManager
from bgen.server.store import RunStore
from bgen.server.validation import (DEFAULT_PROVIDERS, SCENARIOS, LLMDefaults, check_run_id,
                                    parse_code_query, parse_list_query, parse_run_request,
                                    parse_subscribe, parse_ws_path, query_flag, query_params, show)
from bgen.sim.embedded import wire

log = logging.getLogger("bgen.server")

MAX_BODY_BYTES = 1024 * 1024
MAX_LINE_BYTES = 65536       # request line and each header line (the stdlib's limits)
HEADER_FIELDS_LIMIT = 100
SUBSCRIBER_QUEUE = 1024      # progress messages waiting per connection; steps go first when full
RENDER_QUEUE = 16            # frames waiting per render connection; the oldest go first
HANDOFF_LIMIT = 100_000      # messages waiting for the asyncio thread; beyond it steps/frames are dropped
SUBSCRIBE_TIMEOUT_S = 10.0   # a connection on a path without a topic must subscribe within this
PROXY_RECV_BYTES = 1 << 20


# ============================================================================ logging, errors

def configure_logging() -> None:
    """One line per run event at info; ``BGEN_SERVER_LOG=debug`` adds requests, steps, connections."""
    level = os.environ.get("BGEN_SERVER_LOG", "info").upper()
    level = level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO"
    handler = logging.StreamHandler()
    handler.addFilter(auth.RedactingFilter())     # no access token reaches the log
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s"))
    root = logging.getLogger("bgen")
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    logging.getLogger("websockets").addHandler(handler)


def error_response(exc: BaseException) -> tuple[int, dict, list[tuple[str, str]]]:
    """Every exception a handler raises, as (status, JSON body, extra headers). Most specific first."""
    if isinstance(exc, MethodNotAllowed):
        return exc.status, exc.to_json(), [("Allow", ", ".join(exc.allowed))]
    if isinstance(exc, auth.Unauthorized):     # RFC 9110 §11.6.1: a 401 names its scheme
        return exc.status, exc.to_json(), [("WWW-Authenticate", 'Bearer realm="bgen"')]
    if isinstance(exc, PolicyError):
        body = exc.to_json()
        if exc.lineno is not None:
            body["lineno"] = exc.lineno
        if exc.rule is not None:
            body["rule"] = exc.rule
        return exc.status, body, []
    if isinstance(exc, BgenError):
        return exc.status, exc.to_json(), []
    log.error("internal error", exc_info=exc)
    return 500, {"error": "internal error, see server log"}, []


# ============================================================================ HTTP API

# The route table, the one place routes are named: (method, path pattern, ApiHandler method
# name). A route is one entry here plus one handler method ``name(self, query, **path_params)
# -> (status, body)``. A path that matches with another method is a 405; every GET route also
# answers HEAD (RFC 9110 §9.3.2). Which routes need the access token: ``auth.is_public``.
ROUTES = (
    ("GET", re.compile(r"/health"), "health"),
    ("POST", re.compile(r"/run"), "start_run"),
    ("GET", re.compile(r"/code/(?P<run_id>[^/]+)"), "get_code"),
    ("GET", re.compile(r"/runs"), "list_runs"),
    ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)"), "get_run"),
    ("DELETE", re.compile(r"/runs/(?P<run_id>[^/]+)"), "delete_run"),
    ("POST", re.compile(r"/runs/(?P<run_id>[^/]+)/terminate"), "terminate_run"),
    # the dashboard (bgen.server.dashboard): its page, static files and the data it draws
    ("GET", re.compile(r"/"), "dashboard_page"),
    ("GET", re.compile(r"/static/(?P<path>.+)"), "static_file"),
    ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)/episodes/(?P<iteration>[^/]+)/(?P<seed>[^/]+)"),
     "get_episode"),
    ("GET", re.compile(r"/worlds/(?P<scenario>[^/]+)/(?P<seed>[^/]+)"), "get_world"),
    ("GET", re.compile(r"/code/(?P<run_id>[^/]+)/diff"), "get_code_diff"),
)

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Authorization"),
    ("Access-Control-Max-Age", "600"),
)


def methods_for(path: str) -> list[str]:
    """The methods a path answers (HEAD beside every GET), in table order."""
    methods = []
    for method, pattern, _ in ROUTES:
        if pattern.fullmatch(path):
            methods += [method, "HEAD"] if method == "GET" else [method]
    return methods


def match_route(method: str, path: str) -> tuple[str, dict]:
    """(handler name, path parameters); NotFound or MethodNotAllowed (naming the right methods).

    HEAD runs the GET handler; ``send_json`` then sends its headers without the body.
    """
    wanted = "GET" if method == "HEAD" else method
    for route_method, pattern, name in ROUTES:
        if route_method == wanted and (match := pattern.fullmatch(path)):
            return name, match.groupdict()
    allowed = methods_for(path)
    if allowed:
        raise MethodNotAllowed(f"{method} {show(path)}: expects {' or '.join(allowed)}",
                               allowed=tuple(allowed) + ("OPTIONS",))
    raise NotFound(f"no route {method} {show(path)}; the routes are listed in docs/server.md")


class PolicyRejected(BadRequest):
    """A policy in a request breaks a sandbox rule or the contract: 400 with ``rule`` and ``lineno``."""

    def __init__(self, error: PolicyError, field: str):
        super().__init__(f"{field}: {error.message}", field=field)
        self.rule = error.rule
        self.lineno = error.lineno

    def to_json(self) -> dict:
        return {**super().to_json(), "rule": self.rule, "lineno": self.lineno}


@functools.lru_cache(maxsize=256)
def policy_problem(code: str) -> PolicyError | None:
    """What the sandbox's static check says of ``code`` (None: nothing), remembered per source.

    The check is a pure function of the source and costs about 10 ms of CPU for a typical
    policy, which under load (run threads holding the GIL) stretches to tens of ms; clients
    re-send the same policy often (a dashboard's "run again", a benchmark), so it is kept.
    """
    from bgen.runner.sandbox import check_contract_source
    try:
        check_contract_source(code)
    except PolicyError as exc:
        return exc
    return None


def reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def unique_names(pairs: list) -> dict:
    """``json.loads``' object hook: an object, or ValueError naming a name given twice.

    RFC 8259 section 4: the names within an object SHOULD be unique, and parsers differ on
    which value a repeated one gets; a request is answered for what it unambiguously says."""
    obj = {}
    for name, value in pairs:
        if name in obj:
            raise ValueError(f"the name {show(name)} appears twice in one object")
        obj[name] = value
    return obj


def run_summary(record: dict) -> dict:
    """A run as GET /runs lists it."""
    request = record.get("request") or {}
    return {
        "run_id": record.get("run_id"), "status": record.get("status"),
        "stopped_reason": record.get("stopped_reason"),
        "created": record.get("created"), "started": record.get("started"),
        "finished": record.get("finished"), "user_goal": request.get("user_goal"),
        "scenario": request.get("scenario"), "iterations_requested": request.get("iterations"),
        "iterations_done": len(record.get("iterations") or []),
        "best_iteration": record.get("best_iteration"),
        "best_success_rate": (record.get("best_aggregate") or {}).get("success_rate"),
        "best_score": dashboard.graded_score(record.get("best_aggregate")),
    }


class ApiHandler(BaseHTTPRequestHandler):
    """Thin handlers: parse, call the server's RunManager / RunStore, answer JSON."""

    protocol_version = "HTTP/1.1"        # keep-alive
    disable_nagle_algorithm = True       # headers and body leave in two writes: no 40 ms delayed-ACK stall
    timeout = 30                         # an idle keep-alive connection gives its thread back
    server_version = f"bgen/{__version__}"

    # ---------------------------------------------------------------- framing (RFC 9112)

    def handle_one_request(self):
        """One request: framing, then ``dispatch`` for any method (the stdlib's 501 for an
        unknown method would be a 5xx to bad input; here it is a 405 or 404)."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.dispatch(self.command)
            self.wfile.flush()
        except TimeoutError as exc:
            self.log_error("request timed out: %r", exc)
            self.close_connection = True

    def parse_request(self) -> bool:
        """Read and check the request line and header section; False after answering 400 / 431.

        RFC 9112 §2.2: one empty line before the request line is ignored; a bare LF ends a
        line as CRLF does. Every other deviation (``bgen.server.http1``) is a 400, and the
        connection closes since the next request's start is unknown.
        """
        self.command = None
        self.request_version = "HTTP/1.1"     # an error answer carries a status line whatever came
        self.close_connection = True
        self.body_read = True
        self.body_length = 0
        raw = self.raw_requestline
        if raw in (b"\r\n", b"\n"):
            raw = self.rfile.readline(MAX_LINE_BYTES + 1)
        self.requestline = line = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
        try:
            if len(raw) > MAX_LINE_BYTES:
                self.send_error(414, f"request line exceeds {MAX_LINE_BYTES} bytes")
                return False
            request = check_request_line(line)
            self.command, self.path = request.method, request.target
            lines = self.read_field_lines()
            if lines is None:
                return False
            fields = check_field_lines(lines)
            self.body_length = body_length(fields, request.version)
        except FramingError as exc:
            self.send_error(400, str(exc))
            return False
        self.headers = http.client.HTTPMessage()
        for name, value in fields:
            self.headers[name] = value      # appends: repeated fields stay repeated
        self.request_version = request.version
        connection = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        self.close_connection = ("close" in connection if request.version == "HTTP/1.1"
                                 else "keep-alive" not in connection)
        self.body_read = self.body_length == 0
        if (request.version == "HTTP/1.1" and self.headers.get("Expect", "").lower() == "100-continue"
                and not self.handle_expect_100()):
            return False
        return True

    def read_field_lines(self) -> list[str] | None:
        """Header lines up to the empty line; None after answering 431 (too long, too many)."""
        lines = []
        while True:
            raw = self.rfile.readline(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES or len(lines) > HEADER_FIELDS_LIMIT:
                self.send_error(431, f"header section exceeds {HEADER_FIELDS_LIMIT} lines "
                                     f"of {MAX_LINE_BYTES} bytes")
                return None
            if not raw:
                raise FramingError("headers: the connection ended before the empty line")
            line = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
            if not line:
                return lines
            lines.append(line)

    # ---------------------------------------------------------------- dispatch

    def dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        headers = []
        try:
            # RFC 9112 §3.2.2: an absolute-form target's authority replaces the Host field.
            named = parts.netloc if parts.scheme in ("http", "https") and parts.netloc \
                else self.headers.get("Host")
            auth.check_host(self.server.app.token, named, self.server.app.settings.host)
            auth.check_origin(self.server.app.token, self.headers.get("Origin"),
                              self.headers.get("Host"))
            authorization = auth.single_authorization(self.headers.get_all("Authorization"))
            if method == "OPTIONS":
                status, body, headers = self.preflight(parts.path)
            else:
                if not auth.is_public(method, parts.path):
                    auth.authorize(self.server.app.token, authorization)
                name, params = match_route(method, parts.path)
                status, body = getattr(self, name)(parts.query, **params)
        except Exception as exc:  # noqa: BLE001 - mapped to a status in one place
            status, body, headers = error_response(exc)
        if isinstance(body, dashboard.StaticFile):
            self.send_bytes(status, body)
        else:
            self.send_json(status, body, headers)

    def preflight(self, path: str):
        """CORS preflight: any route path answers 204 with the allowed methods (no token needed:
        browsers send preflights without credentials)."""
        allowed = methods_for(path)
        if not allowed:
            raise NotFound(f"no route {show(path)}")
        return 204, None, [("Allow", ", ".join(allowed + ["OPTIONS"]))]

    def send_json(self, status: int, body, headers=()) -> None:
        if not self.body_read:
            self.close_connection = True     # an unread body would be taken for the next request
        data = b"" if body is None else json.dumps(body, default=str).encode("utf-8")
        self.send_response(status)
        for name, value in CORS_HEADERS + tuple(headers):
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Content-Type-Options", "nosniff")
        # Run records, code and errors change and may be private: no cache keeps a copy
        # (RFC 9111 section 5.2.2.5).
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_bytes(self, status: int, body) -> None:
        """A dashboard file or a prebuilt JSON document (the world), as it is."""
        if not self.body_read:
            self.close_connection = True     # an unread body would be taken for the next request
        data = body.body
        self.send_response(status)
        for name, value in CORS_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Type", body.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """Errors found before dispatch (framing, header limits) are JSON and close the connection."""
        self.close_connection = True
        self.body_read = True
        self.request_version = "HTTP/1.1"
        try:
            self.send_json(code, {"error": message or HTTPStatus(code).phrase})
        except OSError:
            pass

    def log_message(self, format, *args):
        log.debug("http %s %s", self.address_string(), format % args)

    def read_json(self):
        """The request body as JSON; the limits answer 400 / 413 before anything is parsed."""
        self.body_read = True
        length = self.body_length
        limit = self.server.app.settings.max_body_bytes
        if length > limit:
            self.close_connection = True
            raise PayloadTooLarge(f"request body of {length} bytes exceeds limit of {limit}")
        if "Content-Length" not in self.headers:
            raise BadRequest("Content-Length: expects a byte count, actual: None", field="Content-Length")
        try:
            raw = self.read_body(length, time.monotonic() + self.timeout)
        except TimeoutError:
            self.close_connection = True    # RFC 9110 section 15.5.9: the server closes
            raise RequestTimeout(f"request body: {length} bytes did not arrive within "
                                 f"{self.timeout} s") from None
        if len(raw) < length:
            self.close_connection = True
            raise BadRequest(f"request body ended after {len(raw)} of {length} bytes")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=reject_constant,
                              parse_int=json_int, object_pairs_hook=unique_names)
        except RecursionError:
            raise BadRequest("malformed JSON: nested too deeply") from None
        except ValueError as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise BadRequest(f"malformed JSON: {exc}") from None

    def read_body(self, length: int, deadline: float) -> bytes:
        """``length`` bytes of body, or fewer when the connection ends; TimeoutError when they
        have not all come by ``deadline`` (``time.monotonic()``): a body trickling in a byte
        at a time holds a thread no longer than one that stops."""
        chunks, received = [], 0
        try:
            while received < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("request body deadline")
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(length - received, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        finally:
            self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    # ---------------------------------------------------------------- routes

    def health(self, query: str):
        query_params(query, ())
        app = self.server.app
        from bgen.runner.isolation import cached_report
        return 200, {"status": "ok", "version": __version__, "backend": app.backend_label,
                     "ws_port": app.ws.port, "runs": app.manager.counts(), "llm": app.llm_health(),
                     "executor": app.executor.describe(), "isolation": cached_report()}

    def start_run(self, query: str):
        app = self.server.app
        query_params(query, ())
        request = parse_run_request(self.read_json(), default_ws_proxy=app.settings.ws_proxy,
                                    providers=app.providers, llm_defaults=app.llm_defaults)
        app.check_policy(request)
        started = app.manager.submit(request)
        return 200, {**started, "progress": f"/ws/progress/{started['run_id']}"}

    def get_code(self, query: str, run_id: str):
        iteration, best = parse_code_query(query)
        manager = self.server.app.manager
        if not manager.exists(check_run_id(run_id)):
            raise NotFound(f"no run {run_id!r}", field="run_id")
        number, code = manager.store.policy_code(run_id, iteration, best)
        return 200, {"run_id": run_id, "iteration": number, "code": code}

    def list_runs(self, query: str):
        limit, offset, statuses = parse_list_query(query, lifecycle.STATES)
        records = self.server.app.manager.records(statuses)
        return 200, {"runs": [run_summary(r) for r in records[offset:offset + limit]],
                     "total": len(records), "limit": limit, "offset": offset}

    def get_run(self, query: str, run_id: str):
        query_params(query, ())
        manager = self.server.app.manager
        record = manager.record(check_run_id(run_id))
        record["code_iterations"] = manager.store.iterations_with_code(run_id)
        return 200, record

    def delete_run(self, query: str, run_id: str):
        terminate = query_flag(query_params(query, ("terminate",)), "terminate")
        status = self.server.app.manager.delete(check_run_id(run_id), terminate=terminate)
        return 200, {"run_id": run_id, "deleted": True, "status": status}

    def terminate_run(self, query: str, run_id: str):
        query_params(query, ())
        status = self.server.app.manager.terminate(check_run_id(run_id))
        return 200, {"run_id": run_id, "status": status}

    # ---------------------------------------------------------------- dashboard

    def dashboard_page(self, query: str):
        return 200, dashboard.index_page()

    def static_file(self, query: str, path: str):
        return 200, dashboard.static_file(unquote(path))

    def get_episode(self, query: str, run_id: str, iteration: str, seed: str):
        query_params(query, ())
        store = self.server.app.manager.store
        record = self.server.app.manager.record(check_run_id(run_id))
        return 200, dashboard.episode_view(store.run_dir(run_id), record,
                                           dashboard.parse_iteration(iteration),
                                           dashboard.parse_seed(seed))

    def get_world(self, query: str, scenario: str, seed: str):
        query_params(query, ())
        app = self.server.app
        body = app.worlds.get(app.sim_backend, dashboard.parse_scenario(scenario, SCENARIOS),
                              dashboard.parse_seed(seed))
        return 200, dashboard.json_document(body)

    def get_code_diff(self, query: str, run_id: str):
        store = self.server.app.manager.store
        if not self.server.app.manager.exists(check_run_id(run_id)):
            raise NotFound(f"no run {run_id!r}", field="run_id")
        start, to = dashboard.parse_diff_query(query, store.iterations_with_code(run_id))
        return 200, dashboard.code_diff(run_id, store.policy_code(run_id, start),
                                        store.policy_code(run_id, to))


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True          # a slow client cannot hold up shutdown
    request_queue_size = 128       # the default backlog of 5 overflows with 8 concurrent clients
    allow_reuse_address = True

    def __init__(self, address, app: "BgenServer"):
        self.app = app
        super().__init__(address, ApiHandler)

    def handle_error(self, request, client_address):
        """A client that went away mid-answer is not worth a traceback on stderr."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("http %s: connection error", client_address[0], exc_info=True)
        else:
            log.error("http %s: unexpected error", client_address[0], exc_info=True)


# ============================================================================ TCP → WebSocket renderer proxy

class FrameProxyServer(socketserver.ThreadingTCPServer):
    """One renderer port of one run: takes the runner's frames and publishes them on a channel."""

    daemon_threads = True          # a sender that never closes cannot block shutdown
    allow_reuse_address = True
    request_queue_size = 8

    def __init__(self, address, run_id: str, channel: str, hub: "EventHub", max_frame_bytes: int):
        self.run_id = run_id
        self.channel = channel
        self.hub = hub
        self.max_frame_bytes = max_frame_bytes
        self.connections: set[socket.socket] = set()   # open senders, so stop() can cut them
        self.connections_lock = threading.Lock()        # handler threads add/remove, stop() reads
        super().__init__(address, FrameProxyHandler)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class FrameProxyHandler(socketserver.BaseRequestHandler):
    """recv → feed → publish, until the sender closes or breaks the framing."""

    def handle(self):
        server: FrameProxyServer = self.server
        sock: socket.socket = self.request
        parser = FrameParser(server.max_frame_bytes)
        with server.connections_lock:
            server.connections.add(sock)
        peer = "%s:%d" % self.client_address[:2]
        log.debug("render proxy %s/%s: sender %s connected", server.run_id, server.channel, peer)
        try:
            while True:
                data = sock.recv(PROXY_RECV_BYTES)
                if not data:
                    parser.eof()
                    break
                for frame in parser.feed(data):
                    server.hub.publish_frame(server.run_id, server.channel, frame)
        except FrameError as exc:
            log.warning("render proxy %s/%s: closing connection from %s: %s",
                        server.run_id, server.channel, peer, exc)
        except OSError as exc:
            log.debug("render proxy %s/%s: connection from %s ended: %s",
                      server.run_id, server.channel, peer, exc)
        finally:
            with server.connections_lock:
                server.connections.discard(sock)


class RenderProxy:
    """The proxy of one run: a FrameProxyServer per channel on one block of ports."""

    def __init__(self, run_id: str, hub: "EventHub", ports: tuple, max_frame_bytes: int,
                 host: str = "127.0.0.1"):
        self.servers: list[FrameProxyServer] = []
        self.threads: list[threading.Thread] = []   # serve_forever loops (daemon: see FrameProxyServer)
        try:
            for channel, port in render_channels(ports):
                self.servers.append(FrameProxyServer((host, port), run_id, channel, hub, max_frame_bytes))
        except OSError:
            self.stop()
            raise
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"render-{run_id}-{server.channel}", daemon=True)
            thread.start()
            self.threads.append(thread)

    @property
    def ports(self) -> tuple[int, int, int, int]:
        """(world, agents, pov_world_0, pov_agents_0) as bound: EpisodeConfig.render_ports."""
        return tuple(server.server_address[1] for server in self.servers)

    def stop(self) -> None:
        stoppers = [threading.Thread(target=server.shutdown) for server in self.servers[:len(self.threads)]]
        for stopper in stoppers:    # in parallel: each waits up to one poll interval
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self.servers:
            server.server_close()
            server.cut_connections()


# ============================================================================ decoded frames (?format=json)

def world_json(world: wire.WorldData) -> dict:
    """A world as web clients take it: flat ``coords`` (x0, y0, z0, x1, …) and parallel ``bits``.

    ``wire.to_jsonable``'s one [x, y, z, bits] list per cell is 14 % more text and takes longer
    to build and serialize (figures in docs/server.md); flat arrays also map straight onto
    typed arrays in a browser.
    """
    return {"count": int(world.bits.size), "coords": world.coords.ravel().tolist(),
            "bits": world.bits.tolist()}


_SPLINE_FIELDS = tuple(f.name for f in fields(wire.SplineData))


def agent_json(agent: wire.AgentData) -> dict:
    """``wire.to_jsonable(agent)``, built directly: json.dumps takes the tuples as they are, and
    skipping the generic walk makes an agents frame 2.5 times cheaper (one per step per client)."""
    state = agent.state
    if isinstance(state, wire.HoldData):
        state_json = {"kind": "Hold", "coord": state.coord, "yaw": state.yaw}
    else:
        trajectory = state.trajectory
        state_json = {
            "kind": "Action",
            "intent_queue": [{"move_sequence": [wire.MOVE_DIR_NAMES[m] for m in intent.move_sequence],
                              "urgency": intent.urgency, "yaw": intent.yaw}
                             for intent in state.intent_queue],
            "trajectory": {name: getattr(trajectory, name) for name in _SPLINE_FIELDS},
            "origin": state.origin}
    return {"pos": agent.pos, "vel": agent.vel, "thrust": agent.thrust, "rate": agent.rate,
            "attitude": agent.attitude, "id": agent.id, "state": state_json}


def frame_data(channel: str, payload: bytes) -> dict:
    """A channel's payload decoded to plain JSON values; ``wire.WireError`` if it is not one."""
    if channel == "world":
        return world_json(wire.decode_world(payload))
    if channel.startswith("pov_world_"):
        pov = wire.decode_pov(payload)
        return {"virtual_world": world_json(pov.virtual_world), "agent_id": pov.agent_id,
                "proj": wire.to_jsonable(pov.proj), "orientation": list(pov.orientation)}
    # agents, pov_agents_<i>: the HashMap<usize, Agent> as {"<id>": agent}
    return {str(key): agent_json(agent) for key, agent in wire.decode_agents(payload).items()}


def base64_frame_message(channel: str, payload: bytes, ts: float) -> str:
    """The default (``?format=base64``) message of one frame, as the reference sends it."""
    return json.dumps({"type": "frame", "channel": channel, "len": len(payload),
                       "payload_b64": base64.b64encode(payload).decode("ascii"), "ts": ts},
                      separators=(",", ":"))


def decoded_frame_message(channel: str, payload: bytes, ts: float) -> str:
    """The ``?format=json`` message of one frame: a ``frame`` with ``data``, or a ``frame_error``.

    Never raises: a frame that cannot be decoded is the sender's problem, reported to the json
    subscribers only; the base64 and binary forms of the same frame go out unchanged.
    """
    try:
        data = frame_data(channel, payload)
    except wire.WireError as exc:
        error = f"cannot decode the {channel} frame: {exc}"
    except Exception as exc:  # noqa: BLE001 - a decoder fault must not end the proxy connection
        log.warning("render frame on %s: decoder fault", channel, exc_info=True)
        error = f"cannot decode the {channel} frame: {type(exc).__name__}: {exc}"
    else:
        try:
            return json.dumps({"type": "frame", "channel": channel, "len": len(payload), "ts": ts,
                               "data": data}, separators=(",", ":"), allow_nan=False)
        except ValueError:
            error = f"the {channel} frame holds a NaN or infinite number, which JSON cannot carry"
    return json.dumps({"type": "frame_error", "channel": channel, "len": len(payload), "ts": ts,
                       "error": error}, separators=(",", ":"))


# ============================================================================ EventHub

class Subscriber:
    """One WebSocket connection's outbox. Touched only by the asyncio thread."""

    def __init__(self, fmt: str = "json", max_items: int = SUBSCRIBER_QUEUE):
        self.fmt = fmt                 # progress: "json"; render: "base64", "binary" or "json" (decoded)
        self.max_items = max_items
        self.items: deque = deque()    # (event id or None, message, droppable)
        self.wake = asyncio.Event()    # set when items arrive; the pump waits on it
        self.skip_upto = 0             # events with an id <= this were sent by the replay
        self.dropped = 0
        self.overflow: str | None = None   # set when the queue is full of events that may not be dropped

    def offer(self, event_id, message, droppable: bool) -> None:
        if event_id is not None and event_id <= self.skip_upto:
            return
        self.items.append((event_id, message, droppable))
        if len(self.items) > self.max_items:
            for index, item in enumerate(self.items):
                if item[2]:
                    del self.items[index]
                    self.dropped += 1
                    break
            else:
                self.overflow = (f"subscriber too slow: {len(self.items)} undelivered events; "
                                 "reconnect with ?since=<last id>")
        self.wake.set()

    def skip_through(self, event_id: int) -> None:
        """The replay sent everything up to ``event_id``: drop live copies of those events."""
        self.skip_upto = event_id
        self.items = deque(item for item in self.items if item[0] is None or item[0] > event_id)

    async def pump(self, websocket) -> None:
        """The one task that sends to this connection (bounded by the connection's write limit)."""
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.items:
                    if self.overflow:
                        await websocket.close(1013, self.overflow[:120])
                        return
                    await websocket.send(self.items.popleft()[1])
        except ConnectionClosed:
            return


class EventHub:
    """Hands run events and renderer frames from any thread to the asyncio thread.

    Publishers serialize each message once per format its topic's subscribers want, append it
    to ``_handoff`` and wake the loop only if it is not already due to run ``_flush`` (one
    ``call_soon_threadsafe`` per batch). ``_flush`` runs on the asyncio thread and offers each
    subscriber of the topic the message in its format.
    """

    def __init__(self, handoff_limit: int = HANDOFF_LIMIT):
        self._loop: asyncio.AbstractEventLoop | None = None   # the WebSocket thread's loop
        self._topics: dict[str, set[Subscriber]] = {}         # asyncio thread only
        self._formats: dict[str, frozenset] = {}              # topic -> formats wanted; replaced whole, read by any thread
        self._handoff: list = []                              # messages waiting for _flush
        self._handoff_lock = threading.Lock()                 # publishers vs _flush
        self._flush_due = False                               # a _flush is scheduled (guarded by _handoff_lock)
        self.handoff_limit = handoff_limit
        self.dropped = 0                                      # steps/frames dropped at the hand-over

    # -------------------------------------------------------- any thread

    def publish_event(self, run_id: str, event: dict) -> None:
        topic = f"progress:{run_id}"
        if topic not in self._formats:
            return      # nobody listens; a later subscriber gets it from the replay
        text = json.dumps(event, separators=(",", ":"), default=str)
        self._hand_over((topic, event.get("id"), {"json": text}, event.get("type") in DROPPABLE_TYPES))

    def publish_frame(self, run_id: str, channel: str, payload: bytes) -> None:
        """One frame in each format its subscribers want; decoding (json) happens here, on the
        publishing thread, once for all json subscribers, never on the asyncio thread."""
        topic = f"render:{run_id}:{channel}"
        formats = self._formats.get(topic)
        if not formats:
            return
        ts = time.time()
        messages = {}
        if "base64" in formats:
            messages["base64"] = base64_frame_message(channel, payload, ts)
        if "binary" in formats:
            messages["binary"] = encode_frame(payload)
        if "json" in formats:
            messages["json"] = decoded_frame_message(channel, payload, ts)
        self._hand_over((topic, None, messages, True))

    def _hand_over(self, item) -> None:
        loop = self._loop
        if loop is None:
            return
        with self._handoff_lock:
            if item[3] and len(self._handoff) >= self.handoff_limit:
                self.dropped += 1
                return
            self._handoff.append(item)
            wake = not self._flush_due
            self._flush_due = True
        if wake:
            try:
                loop.call_soon_threadsafe(self._flush)
            except RuntimeError:    # the loop closed during shutdown
                pass

    # -------------------------------------------------------- asyncio thread

    def attach(self, loop) -> None:
        self._loop = loop

    def detach(self) -> None:
        self._loop = None

    def _flush(self) -> None:
        with self._handoff_lock:
            items, self._handoff = self._handoff, []
            self._flush_due = False
        for topic, event_id, messages, droppable in items:
            for subscriber in self._topics.get(topic, ()):
                message = messages.get(subscriber.fmt)
                if message is not None:
                    subscriber.offer(event_id, message, droppable)

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        self._topics.setdefault(topic, set()).add(subscriber)
        self._formats[topic] = frozenset(s.fmt for s in self._topics[topic])

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        subscribers = self._topics.get(topic)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if subscribers:
            self._formats[topic] = frozenset(s.fmt for s in subscribers)
        else:
            del self._topics[topic]
            self._formats.pop(topic, None)

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))


# ============================================================================ WebSocket thread

def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


class WebSocketService:
    """The one thread that runs asyncio and `websockets`; every websocket object lives here."""

    def __init__(self, host: str, port: int, hub: EventHub, manager: RunManager, *,
                 subscriber_queue: int = SUBSCRIBER_QUEUE, render_queue: int = RENDER_QUEUE,
                 subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S, token: str | None = None):
        self.host = host
        self.requested_port = port
        self.hub = hub
        self.manager = manager
        self.subscriber_queue = subscriber_queue
        self.render_queue = render_queue
        self.subscribe_timeout_s = subscribe_timeout_s
        self.token = token                      # the access token, None when the server has none
        self.port: int | None = None
        self.thread = threading.Thread(target=self._run, name="websockets",
                                       daemon=True)   # daemon: stop() ends it; a hang must not block exit
        self._ready = threading.Event()        # set once the socket is bound (or binding failed)
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the WebSocket thread did not start")
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass
        self.thread.join(timeout_s)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.error("the WebSocket thread failed", exc_info=exc)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.hub.attach(self._loop)
        try:
            # compression=None: permessage-deflate compresses every message again for every
            # connection (no serialize-once) and cuts frame throughput about 30x.
            async with serve(self._serve, self.host, self.requested_port, compression=None,
                             process_request=self._check_request, max_size=2**16,
                             logger=logging.getLogger("websockets.server")) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stopping.wait()
        finally:
            self.hub.detach()

    # -------------------------------------------------------- handshake and routing

    def _check_request(self, connection, request):
        """Check the token, then reject unknown paths, runs and channels with an HTTP status
        (a JSON body) before the upgrade."""
        try:
            hosts = request.headers.get_all("Host")
            if len(hosts) != 1:
                raise BadRequest(f"Host: expects exactly one Host header, actual: {len(hosts)}",
                                 field="Host")
            auth.check_host(self.token, hosts[0], self.host)
            origins = request.headers.get_all("Origin")
            auth.check_origin(self.token, origins[0] if len(origins) == 1 else
                              ("null" if origins else None), hosts[0])
            header = auth.single_authorization(request.headers.get_all("Authorization"))
            tokens = parse_qs(urlsplit(request.path).query).get("token", [])
            if len(tokens) > 1:
                raise BadRequest(f"token: given {len(tokens)} times in the query; give it once",
                                 field="token")
            query_token = tokens[0] if tokens else None
            auth.authorize(self.token, header, query_token)
            target = parse_ws_path(request.path)
            if target is not None and not self.manager.exists(target.run_id):
                raise NotFound(f"no run {target.run_id!r}", field="run_id")
        except BgenError as exc:
            response = connection.respond(exc.status, json.dumps(exc.to_json()) + "\n")
            del response.headers["Content-Type"]      # respond() says text/plain
            response.headers["Content-Type"] = "application/json"
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Cache-Control"] = "no-store"    # as the HTTP port's errors
            return response
        connection.bgen_target = target
        return None

    async def _serve(self, websocket) -> None:
        target = getattr(websocket, "bgen_target", None)
        if target is None:
            target = await self._await_subscribe(websocket)
            if target is None:
                return
        log.debug("ws %s subscribed to %s", websocket.remote_address, target.topic)
        try:
            if target.kind == "progress":
                await self._serve_progress(websocket, target)
            else:
                await self._serve_render(websocket, target)
        except ConnectionClosed:
            pass

    async def _await_subscribe(self, websocket):
        """The reference's fallback: the first message names the topic."""
        try:
            first = await asyncio.wait_for(websocket.recv(), self.subscribe_timeout_s)
            target = parse_subscribe(json.loads(first))
            if not self.manager.exists(target.run_id):
                raise NotFound(f"no run {target.run_id!r}", field="run_id")
            return target
        except (asyncio.TimeoutError, ValueError, BgenError) as exc:
            reason = (f"expects a subscribe message within {self.subscribe_timeout_s:g} s"
                      if isinstance(exc, asyncio.TimeoutError) else str(exc))
            await websocket.close(1008, reason[:120])
        except ConnectionClosed:
            pass
        return None

    async def _serve_progress(self, websocket, target) -> None:
        subscriber = Subscriber("json", self.subscriber_queue)
        self.hub.subscribe(target.topic, subscriber)     # first, so nothing falls between replay and live
        pump = None
        try:
            record = await asyncio.to_thread(self.manager.record, target.run_id)
            await websocket.send(dumps({"type": "connected", "topic": target.topic,
                                        "run_id": target.run_id, "status": record["status"]}))
            events = await asyncio.to_thread(self.manager.replay, target.run_id, target.since)
            for event in events:
                await websocket.send(dumps(event))
            subscriber.skip_through(max([target.since or 0] + [e["id"] for e in events]))
            pump = asyncio.create_task(subscriber.pump(websocket))
            async for message in websocket:
                await self._control(websocket, target, message)
        except NotFound as exc:        # deleted while connecting
            await websocket.close(1008, exc.message[:120])
        finally:
            self.hub.unsubscribe(target.topic, subscriber)
            if pump is not None:
                pump.cancel()

    async def _control(self, websocket, target, message) -> None:
        """Messages from a progress client: terminate, or a (redundant) subscribe."""
        try:
            data = json.loads(message)
        except (TypeError, ValueError):
            log.debug("ws %s: ignoring a message that is not JSON", websocket.remote_address)
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "terminate":
            try:
                await asyncio.to_thread(self.manager.terminate, target.run_id)
            except BgenError as exc:
                await websocket.send(dumps({"type": "warning", "message": exc.message}))
        elif kind == "subscribe" and data.get("topic") != target.topic:
            await websocket.send(dumps({"type": "warning", "message":
                                        f"this connection is subscribed to {target.topic}; "
                                        "open another connection for another topic"}))
        elif kind != "subscribe":
            log.debug("ws %s: ignoring message type %r", websocket.remote_address, kind)

    async def _serve_render(self, websocket, target) -> None:
        subscriber = Subscriber(target.format, self.render_queue)
        self.hub.subscribe(target.topic, subscriber)
        pump = None
        try:
            await websocket.send(dumps({"type": "connected", "topic": target.topic,
                                        "run_id": target.run_id, "format": target.format}))
            pump = asyncio.create_task(subscriber.pump(websocket))
            async for _ in websocket:
                pass
        finally:
            self.hub.unsubscribe(target.topic, subscriber)
            if pump is not None:
                pump.cancel()


# ============================================================================ the server

@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8088
    ws_port: int = 8089
    ws_proxy: bool = True
    runs_dir: str = "runs"
    max_concurrent_runs: int = 2
    backend: str = "auto"
    workers: int | None = None
    progress_hz: float = 20.0
    render_ports: tuple = DEFAULT_RENDER_PORTS
    max_body_bytes: int = MAX_BODY_BYTES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    api_key_env: str | None = None
    provider: str = D.value("provider")       # LLM defaults of POST /run (its fields override)
    provider_url: str | None = None
    model: str | None = None
    loop_module: str | None = None
    executor: str = "local"
    dask_scheduler: str | None = None
    token: str | None = field(default=None, repr=False)    # the access token (never printed)
    allow_anonymous: bool = False
    keep_runs: int | None = None
    max_run_bytes: int = D.MAX_RUN_BYTES


class BgenServer:
    """Everything of one server process; ``start()`` binds and returns, ``stop()`` undoes it."""

    def __init__(self, settings: Settings):
        from bgen.sim import backend_label, load_backend, requested_backend_name

        self.settings = settings
        auth.check_bind(settings.host, settings.token, settings.allow_anonymous)
        self.token = settings.token
        requested_backend_name(settings.backend)
        self.sim_backend = load_backend(settings.backend)
        self.backend_label = backend_label(self.sim_backend)
        self.worlds = dashboard.WorldCache()
        self.providers = DEFAULT_PROVIDERS
        self.llm_defaults = LLMDefaults(settings.provider, settings.provider_url, settings.model)
        self.store = RunStore(Path(settings.runs_dir))
        # where every run's episodes execute; the dask one holds one client for all runs
        self.executor = make_executor(settings.executor, dask_scheduler=settings.dask_scheduler,
                                      workers=settings.workers)
        self.hub = EventHub()
        self.manager = RunManager(
            self.store, self.hub.publish_event, loop_module=settings.loop_module,
            start_proxy=self.start_proxy,
            settings=ManagerSettings(max_concurrent=settings.max_concurrent_runs,
                                     progress_hz=settings.progress_hz, workers=settings.workers,
                                     backend=settings.backend, backend_label=self.backend_label,
                                     api_key_env=settings.api_key_env, keep_runs=settings.keep_runs,
                                     max_run_bytes=settings.max_run_bytes,
                                     episode_runner=None if self.executor.name == "local"
                                     else self.executor.run_episodes))
        self.ws = WebSocketService(settings.host, settings.ws_port, self.hub, self.manager, token=settings.token)
        self.http: ApiServer | None = None
        self.http_thread: threading.Thread | None = None    # serve_forever (daemon: stop() shuts it down)
        self._blocks_lock = threading.Lock()                 # run threads take and give back port blocks
        self._blocks_in_use: set[int] = set()

    @property
    def port(self) -> int:
        return self.http.server_address[1]

    def start(self) -> None:
        self.manager.recover()
        self.ws.start()
        try:
            self.http = ApiServer((self.settings.host, self.settings.port), self)
        except OSError:
            self.ws.stop()
            raise
        self.http_thread = threading.Thread(target=self.http.serve_forever, name="http", daemon=True)
        self.http_thread.start()
        log.info("bgen-server %s listening: http://%s:%d ws://%s:%d (backend=%s, ws_proxy=%s, runs=%s, "
                 "access=%s)", __version__, self.settings.host, self.port, self.settings.host, self.ws.port,
                 self.backend_label, "on" if self.settings.ws_proxy else "off", self.settings.runs_dir,
                 "token" if self.token else "anonymous")

    def stop(self) -> None:
        """Stop taking requests, stop the runs (interrupted on disk), then close the WebSockets."""
        if self.http is not None:
            self.http.shutdown()
        self.manager.shutdown()
        self.ws.stop()
        if self.http is not None:
            self.http.server_close()
        self.executor.close()

    def llm_health(self) -> dict:
        """The LLM defaults in force for GET /health: provider, URL host, model (never the key)."""
        from bgen.llm.client import endpoint_url
        provider = self.llm_defaults.provider
        url = urlsplit(endpoint_url(provider, self.llm_defaults.url_for(provider)))
        host = url.hostname or ""
        return {"provider": provider, "url_host": f"{host}:{url.port}" if url.port else host,
                "model": self.llm_defaults.model_for(provider),
                "api_key_env": self.settings.api_key_env or "LLVPN_API_KEY"}

    def check_policy(self, request) -> None:
        """``policy_code`` and ``existing_code`` against the sandbox's rules and the policy
        contract, as far as the source shows it (``check_contract_source``: nothing runs here);
        a failure is a 400 naming the field, the rule and the line."""
        for name in ("policy_code", "existing_code"):
            code = getattr(request, name)
            if code is None:
                continue
            problem = policy_problem(code)
            if problem is not None:
                raise PolicyRejected(problem, name)

    def start_proxy(self, run_id: str):
        """Open the renderer proxy of a run on the first free port block -> (ports, stop)."""
        base = self.settings.render_ports
        blocks = range(PORT_BLOCKS) if any(base) else range(1)
        last_error = None
        for index in blocks:
            with self._blocks_lock:
                if any(base) and index in self._blocks_in_use:
                    continue
                self._blocks_in_use.add(index)
            try:
                proxy = RenderProxy(run_id, self.hub, port_block(base, index), self.settings.max_frame_bytes)
            except OSError as exc:
                last_error = exc
                with self._blocks_lock:
                    self._blocks_in_use.discard(index)
                continue
            log.info("run %s renderer proxy on ports %s", run_id, ",".join(map(str, proxy.ports)))

            def stop(proxy=proxy, index=index):
                proxy.stop()
                with self._blocks_lock:
                    self._blocks_in_use.discard(index)

            return proxy.ports, stop
        raise OSError(f"no free renderer port block from {','.join(map(str, base))}: {last_error}")


# ============================================================================ command line

def port_number(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expects a port in 0..65535, actual: {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expects a positive integer, actual: {text!r}")
    return int(text)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expects a number >= 0, actual: {text!r}")
    return value


def render_ports(text: str) -> tuple:
    if text.strip() == "0":
        return (0, 0, 0, 0)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(p.isdigit() and 1 <= int(p) <= 65535 - 1000 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expects WORLD,AGENTS,POV_WORLD,POV_AGENTS ports (e.g. 8080,8081,8090,9090) or 0, actual: {text!r}")
    return tuple(int(p) for p in parts)


def backend_name(text: str) -> str:
    from bgen.sim import BACKEND_NAMES
    if text not in BACKEND_NAMES:
        raise argparse.ArgumentTypeError(f"expects one of {', '.join(BACKEND_NAMES)}, actual: {text!r}")
    return text


def env_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", text):
        raise argparse.ArgumentTypeError(f"expects an environment variable name, actual: {text!r}")
    return text


def provider_url(text: str) -> str:
    from bgen.llm.client import endpoint_url
    try:
        endpoint_url("openai", text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expects an http:// or https:// URL, actual: {text!r}") from None
    return text


def model_name(text: str) -> str:
    if not text.strip() or len(text) > 200:
        raise argparse.ArgumentTypeError(f"expects a model name (1..200 characters), actual: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bgen-server", description="bgen server: HTTP API and WebSocket streams for behavior-generation runs.")
    parser.add_argument("--host", default="127.0.0.1", help="address of the HTTP and WebSocket servers (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8088, help="HTTP port (default 8088; 0 = any free port)")
    parser.add_argument("--ws-port", type=port_number, default=8089, help="WebSocket port (default 8089; 0 = any free port)")
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument("--ws-proxy", dest="ws_proxy", action="store_true",
                       help="rendered runs send frames to this server, which republishes them on /ws/render (default)")
    proxy.add_argument("--no-ws-proxy", dest="ws_proxy", action="store_false",
                       help="rendered runs send frames to the Bevy renderer's own ports")
    parser.set_defaults(ws_proxy=True)
    parser.add_argument("--runs-dir", default="runs", help="where runs/<run_id>/ are kept (default ./runs)")
    parser.add_argument("--max-concurrent-runs", type=positive_int, default=2,
                        help="runs executing at once; more are queued FIFO (default 2)")
    parser.add_argument("--backend", type=backend_name, default=os.environ.get("BGEN_SIM_BACKEND") or "auto",
                        help="simulator backend: auto, voxelsim or embedded (default $BGEN_SIM_BACKEND or auto)")
    parser.add_argument("--workers", type=positive_int, default=D.value("workers"),
                        help=D.help_text("workers", "episode worker processes per run"))
    parser.add_argument("--progress-hz", type=non_negative_float, default=20.0,
                        help="step messages per second per episode sent to progress clients (default 20; 0 = all)")
    parser.add_argument("--render-ports", type=render_ports, default=DEFAULT_RENDER_PORTS,
                        help="first proxy port block WORLD,AGENTS,POV_WORLD,POV_AGENTS (default "
                             "8080,8081,8090,9090; each further rendered run +100; 0 = any free ports)")
    parser.add_argument("--api-key-env", type=env_name, default=D.value("api_key_env"),
                        help=D.help_text("api_key_env", "environment variable holding the LLM provider key"))
    parser.add_argument("--provider", choices=DEFAULT_PROVIDERS, default=D.value("provider"),
                        help=D.help_text("provider", "LLM wire API of runs whose request names none"))
    parser.add_argument("--provider-url", type=provider_url, default=None,
                        help="LLM endpoint for --provider: gateway, base URL or local server "
                             "(default the LLVPN gateway's service for the provider); POST /run "
                             "provider_url overrides")
    parser.add_argument("--model", type=model_name, default=D.value("model"),
                        help=D.help_text("model", "model for --provider; POST /run model overrides"))
    add_executor_arguments(parser)
    parser.add_argument("--token-file", default=None, metavar="PATH",
                        help="file holding the access token clients must send as Authorization: Bearer "
                             "<token> (default $BGEN_TOKEN; none: no token needed)")
    parser.add_argument("--allow-anonymous", action="store_true",
                        help="serve a non-loopback --host without an access token (refused otherwise)")
    parser.add_argument("--keep-runs", type=positive_int, default=None, metavar="N",
                        help="keep the N newest finished runs; older ones are deleted as runs finish "
                             "(default: keep all)")
    parser.add_argument("--max-run-gb", type=D.run_gigabytes, default=D.MAX_RUN_BYTES, metavar="GB",
                        dest="max_run_bytes",
                        help="disk budget of each run's folder in GiB: a run starts no iteration "
                             "that could pass it (stopped_reason disk_budget) and caps each "
                             "episode's records at its share (default 8)")
    parser.add_argument("--loop-module", default=None, help=argparse.SUPPRESS)   # tests: tests.fakeloop
    return parser


def settings_from_args(args, environ=os.environ) -> Settings:
    """Settings from the parsed flags; ConfigError for an unreadable or unusable token."""
    return Settings(host=args.host, port=args.port, ws_port=args.ws_port, ws_proxy=args.ws_proxy,
                    runs_dir=args.runs_dir, max_concurrent_runs=args.max_concurrent_runs,
                    backend=args.backend, workers=args.workers, progress_hz=args.progress_hz,
                    render_ports=args.render_ports, api_key_env=args.api_key_env,
                    provider=args.provider, provider_url=args.provider_url, model=args.model,
                    loop_module=args.loop_module, executor=args.executor,
                    dask_scheduler=args.dask_scheduler, token=auth.load_token(args.token_file, environ),
                    allow_anonymous=args.allow_anonymous, keep_runs=args.keep_runs,
                    max_run_bytes=args.max_run_bytes)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop.set()

    # Before start(): a signal that arrives as soon as the "listening" line is out still
    # shuts down cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = BgenServer(settings_from_args(args))
        server.start()
    except ConfigError as exc:
        print(f"bgen-server: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bgen-server: cannot listen on {args.host} (ports {args.port}/{args.ws_port}): {exc}",
              file=sys.stderr)
        return 2
    while not stop.wait(0.5):
        pass
    server.stop()
    log.info("bgen-server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
