"""Specification of the API server's HTTP/1.1 framing (RFC 9112), HEAD, access tokens and run management.

Framing cases send raw bytes on a socket and read until the server closes it: one response,
its status, and nothing after it (a smuggled second request would answer a second time).
"""

import asyncio
import json
import re
import socket
import tempfile
import unittest
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import bgen_server
from bgen.errors import ConfigError
from bgen.server import auth
from bgen.server.http1 import FramingError, body_length, check_field_lines, check_request_line
from tests.test_server_support import (LONG, QUICK, TIMEOUT, ServerProcess, quiet_server_log,
                                       request, start_in_process, wait_until)

setUpModule, tearDownModule = quiet_server_log()

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send ``data``, read until the server closes (or TIMEOUT): (all bytes read, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except socket.timeout:
            return received, False


def statuses(response: bytes) -> list[int]:
    """The status code of every response in a byte stream."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", response)]


def body_of(response: bytes) -> dict:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


SMUGGLED = b"GET /runs HTTP/1.1\r\nHost: localhost\r\n\r\n"


class TestFramingFunctions(unittest.TestCase):
    def test_request_lines(self):
        cases = [
            ("GET /health HTTP/1.1", None),
            ("GET /health HTTP/1.0", None),
            ("GET /health HTTP/1.1 extra", "request line: expects METHOD SP target SP HTTP/1.1, "
             "actual: 'GET /health HTTP/1.1 extra'"),
            ("GET /health HTTP/2.0", "request line: expects HTTP/1.0 or HTTP/1.1, actual: 'HTTP/2.0'"),
            ("GET  /health HTTP/1.1", "request line: expects METHOD SP target SP HTTP/1.1, "
             "actual: 'GET  /health HTTP/1.1'"),
            ("GET /health", "request line: expects METHOD SP target SP HTTP/1.1, actual: 'GET /health'"),
            ("G(T /health HTTP/1.1", "request line: method is not a token, actual: 'G(T'"),
        ]
        for line, error in cases:
            with self.subTest(line=line):
                if error is None:
                    self.assertEqual(check_request_line(line).target, "/health")
                else:
                    with self.assertRaises(FramingError) as caught:
                        check_request_line(line)
                    self.assertEqual(str(caught.exception), error)

    def test_field_lines_and_body_length(self):
        host = ("Host", "x")
        self.assertEqual(body_length([host, ("Content-Length", "12")]), 12)
        self.assertEqual(body_length([host, ("Content-Length", "12"), ("content-length", "12")]), 12)
        self.assertEqual(body_length([host]), 0)
        refused = [
            ([host, ("Content-Length", "5"), ("Content-Length", "6")], "Content-Length: conflicting values '5, 6'"),
            ([host, ("Content-Length", "5, 5")], "Content-Length: expects a byte count (digits only), actual: '5, 5'"),
            ([host, ("Content-Length", "+5")], "Content-Length: expects a byte count (digits only), actual: '+5'"),
            ([host, ("Content-Length", "1 2")], "Content-Length: expects a byte count (digits only), actual: '1 2'"),
            ([host, ("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
             "Transfer-Encoding: not accepted together with Content-Length"),
            ([host, ("Transfer-Encoding", "gzip")],
             "Transfer-Encoding: this server implements no transfer coding (send Content-Length), actual: 'gzip'"),
            ([], "Host: expects exactly one Host header in an HTTP/1.1 request, actual: 0"),
        ]
        for fields, error in refused:
            with self.subTest(fields=fields):
                with self.assertRaises(FramingError) as caught:
                    body_length(fields)
                self.assertEqual(str(caught.exception), error)
        for line, error in [("X-A : 1", "header line: whitespace between the field name and the colon, actual: 'X-A : 1'"),
                            (" folded", "header line: obsolete line folding (a line starting with whitespace) "
                                        "is not accepted, actual: ' folded'"),
                            ("NoColon", "header line: expects name: value, actual: 'NoColon'")]:
            with self.subTest(line=line):
                with self.assertRaises(FramingError) as caught:
                    check_field_lines(["Host: x", line])
                self.assertEqual(str(caught.exception), error)


class HttpTestCase(unittest.TestCase):
    token = None

    @classmethod
    def setUpClass(cls):
        cls.stop_server = start_in_process(cls, token=cls.token)

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()

    def tearDown(self):
        self.assertEqual([r.getMessage() for r in self.errors.records], [])


class TestRawFraming(HttpTestCase):
    """Each bad request: one 400 response, the connection closed, no answer to what followed."""

    CASES = {
        "two different Content-Length": b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
                                        b"Content-Length: 40\r\n\r\n{}" + SMUGGLED,
        "Content-Length list": b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2, 2\r\n\r\n{}" + SMUGGLED,
        "signed Content-Length": b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: +2\r\n\r\n{}" + SMUGGLED,
        "space inside Content-Length": b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1 2\r\n\r\n{}" + SMUGGLED,
        "Transfer-Encoding with Content-Length": b"POST /run HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                                                 b"Content-Length: 4\r\n\r\n0\r\n\r\n" + SMUGGLED,
        "chunked": b"POST /run HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + SMUGGLED,
        "unknown Transfer-Encoding": b"POST /run HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n" + SMUGGLED,
        "header without colon": b"GET /health HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n" + SMUGGLED,
        "whitespace before colon": b"GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length : 0\r\n\r\n" + SMUGGLED,
        "obsolete line folding": b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Note: a\r\n b\r\n\r\n" + SMUGGLED,
        "extra word in request line": b"GET /health HTTP/1.1 extra\r\nHost: localhost\r\n\r\n" + SMUGGLED,
        "HTTP/2.0 request line": b"GET /health HTTP/2.0\r\nHost: localhost\r\n\r\n" + SMUGGLED,
        "two spaces in request line": b"GET  /health HTTP/1.1\r\nHost: localhost\r\n\r\n" + SMUGGLED,
        "no Host": b"GET /health HTTP/1.1\r\n\r\n" + SMUGGLED,
    }

    def test_each_framing_error_is_one_400_then_close(self):
        for name, data in self.CASES.items():
            with self.subTest(case=name):
                response, closed = exchange(self.port, data)
                self.assertEqual(statuses(response), [400], response[:300])
                self.assertTrue(closed, "the connection stayed open")
                self.assertIn(b"Connection: close", response)
                self.assertIn("error", body_of(response))

    def test_a_well_framed_pipeline_is_answered_in_order(self):
        data = (b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
                b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n[]"
                b"GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response, closed = exchange(self.port, data)
        self.assertEqual(statuses(response), [200, 400, 404])
        self.assertTrue(closed)

    def test_one_empty_line_before_the_request_line_is_ignored(self):
        response, _ = exchange(self.port, b"\r\nGET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        self.assertEqual(statuses(response), [200])

    def test_an_unknown_method_is_a_405_not_a_5xx(self):
        response, _ = exchange(self.port, b"BREW /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        self.assertEqual(statuses(response), [405])
        self.assertIn(b"Allow: GET, HEAD, OPTIONS", response)


class TestHead(HttpTestCase):
    def test_every_get_route_answers_head_with_the_same_headers_and_no_body(self):
        run_id = request(self.port, "POST", "/run", {**QUICK, "episodes": 0})[1]["run_id"]
        wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done", "the run to end")
        paths = {"health": "/health", "get_code": f"/code/{run_id}", "list_runs": "/runs",
                 "get_run": f"/runs/{run_id}", "dashboard_page": "/", "static_file": "/static/app.js",
                 "get_episode": f"/runs/{run_id}/episodes/0/0", "get_world": "/worlds/wind_farm/0",
                 "get_code_diff": f"/code/{run_id}/diff"}
        for method, pattern, name in bgen_server.ROUTES:
            if method != "GET":
                continue
            with self.subTest(route=name):
                path = paths[name]
                get, _ = exchange(self.port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                response, _ = exchange(self.port, f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                head, _, rest = response.partition(b"\r\n\r\n")
                self.assertEqual(statuses(response), statuses(get))
                self.assertEqual(rest, b"")
                for name_ in (b"Content-Length", b"Content-Type"):
                    self.assertEqual(header_line(head, name_), header_line(get.partition(b"\r\n\r\n")[0], name_))

    def test_json_answers_and_errors_are_never_stored_by_a_cache(self):
        run_id = request(self.port, "POST", "/run", {**QUICK, "episodes": 0})[1]["run_id"]
        wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done", "the run to end")
        for path in ("/health", "/runs", f"/runs/{run_id}", f"/code/{run_id}", "/runs/nonexistent",
                     "/health?x=1"):
            with self.subTest(path=path):
                status, _, headers = request(self.port, "GET", path)
                self.assertEqual(headers.get("Content-Type"), "application/json", status)
                self.assertEqual(headers.get("Cache-Control"), "no-store")
                self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff")
        status, _, headers = request(self.port, "GET", "/")
        self.assertEqual((status, headers.get("Cache-Control")), (200, "no-cache"))

    def test_a_number_longer_than_python_reads_is_a_400_saying_so(self):
        body = b'{"user_goal": "reach the target", "episodes": 1' + b"0" * 5000 + b"}"
        response, _ = exchange(self.port, b"POST /run HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/json\r\nConnection: close\r\n"
                               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertEqual(statuses(response), [400])
        self.assertEqual(body_of(response)["error"],
                         "malformed JSON: a number with 5001 digits (at most 4300 are read)")

    def wait_at_most(self, seconds: float) -> None:
        """The server's read timeout for this test only."""
        self.addCleanup(setattr, bgen_server.ApiHandler, "timeout", bgen_server.ApiHandler.timeout)
        bgen_server.ApiHandler.timeout = seconds

    def test_a_body_that_stops_arriving_is_a_408_and_the_connection_closes(self):
        self.wait_at_most(0.5)
        response, closed = exchange(self.port, b"POST /run HTTP/1.1\r\nHost: localhost\r\n"
                                    b"Content-Length: 1000\r\n\r\n{\"a\":")
        self.assertTrue(closed)
        self.assertEqual(statuses(response), [408])
        self.assertEqual(body_of(response)["error"],
                         "request body: 1000 bytes did not arrive within 0.5 s")

    def test_a_body_that_trickles_in_is_a_408_at_the_whole_bodys_deadline(self):
        self.wait_at_most(1.0)
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
            received = b""
            for _ in range(40):                  # a byte every 0.25 s: never 1 s of silence
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
                sock.settimeout(0.25)
                try:
                    received += sock.recv(65536)
                except socket.timeout:
                    continue
                if received:
                    break
            answered_while_trickling = bool(received)
            sock.settimeout(TIMEOUT)
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
        self.assertTrue(answered_while_trickling)   # 10 s of bytes against a 1 s body deadline
        self.assertEqual(statuses(received), [408])

    def test_a_name_given_twice_in_one_object_is_a_400_not_the_last_one_winning(self):
        body = b'{"user_goal": "x", "episodes": 0, "episodes": 50}'
        response, _ = exchange(self.port, b"POST /run HTTP/1.1\r\nHost: localhost\r\n"
                               b"Connection: close\r\nContent-Length: "
                               + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertEqual(statuses(response), [400])
        self.assertEqual(body_of(response)["error"],
                         "malformed JSON: the name 'episodes' appears twice in one object")

    def test_health_refuses_an_unknown_query_parameter_like_every_route(self):
        status, body, _ = request(self.port, "GET", "/health?x=1")
        self.assertEqual((status, body["field"]), (400, "x"))

    def test_a_tokenless_server_answers_only_requests_naming_a_loopback_host(self):
        # DNS rebinding: a page's own name, pointed at 127.0.0.1, arrives in the Host field.
        for host, status in (("evil.example", 421), (f"evil.example:{self.port}", 421),
                             ("10.0.0.5", 421), ("localhost", 200), (f"127.0.0.1:{self.port}", 200),
                             (f"[::1]:{self.port}", 200), ("app.localhost", 200),
                             ("localhost.", 200), ("[::1]evil.example", 421)):
            with self.subTest(host=host):
                raw = f"GET /runs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                response, _ = exchange(self.port, raw)
                self.assertEqual(statuses(response), [status])
                if status == 421:
                    self.assertIn(b'"field": "Host"', response)

        absolute = b"GET http://evil.example/runs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        self.assertEqual(statuses(exchange(self.port, absolute)[0]), [421])   # RFC 9112 §3.2.2

        def handshake(*hosts):
            fields = "".join(f"Host: {host}\r\n" for host in hosts)
            raw = (f"GET /ws/progress/nosuchrun HTTP/1.1\r\n{fields}Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
            response, _ = exchange(self.ws_port, raw)
            return statuses(response)[:1]

        self.assertEqual(handshake("evil.example"), [421])
        self.assertEqual(handshake("localhost"), [404])          # a loopback name: on to routing
        self.assertEqual(handshake("localhost", "evil.example"), [400])

    def test_a_query_parameter_given_twice_is_a_400_not_a_guess(self):
        status, body, _ = request(self.port, "GET", "/runs?limit=1&limit=2")
        self.assertEqual((status, body), (400, {"error": "limit: given 2 times in the query; give it once",
                                                "field": "limit"}))

    def test_head_of_health_is_200_as_uptime_monitors_expect(self):
        status, body, headers = request(self.port, "HEAD", "/health")
        self.assertEqual((status, body), (200, None))
        self.assertGreater(int(headers["Content-Length"]), 0)


def header_line(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` in a response head (None if absent)."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


class TestCrossSiteRequests(HttpTestCase):
    """Without a token, a page on another site cannot start, delete or read runs (RFC 6454
    Origin)."""

    def test_a_post_from_another_sites_page_is_refused_and_creates_no_run(self):
        before = request(self.port, "GET", "/runs")[1]["total"]
        status, body, _ = request(self.port, "POST", "/run", {**QUICK, "episodes": 0},
                                  headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
        self.assertEqual((status, body["field"]), (403, "Origin"))
        self.assertIn("this server has no access token", body["error"])
        self.assertEqual(request(self.port, "GET", "/runs")[1]["total"], before)

    def test_another_sites_page_cannot_read_runs_or_open_a_progress_stream(self):
        evil = {"Origin": "http://evil.example"}
        for method, path in (("GET", "/runs"), ("HEAD", "/runs"), ("OPTIONS", "/runs"),
                             ("GET", "/health")):
            with self.subTest(method=method, path=path):
                self.assertEqual(request(self.port, method, path, headers=evil)[0], 403)
        raw = (b"GET /ws/progress/nosuchrun HTTP/1.1\r\nHost: localhost\r\n"
               b"Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        response, _ = exchange(self.ws_port, raw)
        self.assertEqual(statuses(response)[:1], [403])
        self.assertEqual(request(self.port, "GET", "/runs", headers={"Origin": "http://localhost:5173"})[0], 200)

    def test_loopback_pages_and_clients_without_an_origin_are_served(self):
        for headers in ({}, {"Origin": "http://127.0.0.1:5173"}, {"Origin": "http://localhost:3000"}):
            with self.subTest(headers=headers):
                status, body, _ = request(self.port, "POST", "/run", {**QUICK, "episodes": 0},
                                          headers=headers)
                self.assertEqual(status, 200, body)


class TestRunManagementOverHttp(HttpTestCase):
    def test_delete_pagination_and_status_filter(self):
        ids = [request(self.port, "POST", "/run", {**QUICK, "episodes": 0})[1]["run_id"] for _ in range(3)]
        for run_id in ids:
            wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done", "runs to end")
        status, page, _ = request(self.port, "GET", "/runs?limit=2&offset=1&status=done")
        self.assertEqual(status, 200)
        self.assertEqual(page["total"], len(request(self.port, "GET", "/runs?status=done")[1]["runs"]))
        self.assertEqual([r["run_id"] for r in page["runs"]][:2], ids[::-1][1:3])
        self.assertEqual((page["limit"], page["offset"]), (2, 1))
        self.assertEqual(request(self.port, "GET", "/runs?status=sleeping")[:2],
                         (400, {"error": "status: expects one or more of queued, running, stopping, done, "
                                         "failed, terminated, interrupted (comma-separated), actual: 'sleeping'",
                                "field": "status"}))
        self.assertEqual(request(self.port, "DELETE", f"/runs/{ids[0]}")[:2],
                         (200, {"run_id": ids[0], "deleted": True, "status": "done"}))
        self.assertEqual(request(self.port, "GET", f"/runs/{ids[0]}")[0], 404)
        self.assertFalse((self.runs_dir / ids[0]).exists())

    def test_deleting_a_running_run_is_409_unless_terminate_1(self):
        run_id = request(self.port, "POST", "/run", LONG)[1]["run_id"]
        wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "running", "running")
        status, body, _ = request(self.port, "DELETE", f"/runs/{run_id}")
        self.assertEqual((status, body["error"]),
                         (409, "cannot delete a run that is running; terminate it first or send ?terminate=1"))
        status, body, _ = request(self.port, "DELETE", f"/runs/{run_id}?terminate=1")
        self.assertEqual((status, body["status"]), (200, "terminated"))
        self.assertFalse((self.runs_dir / run_id).exists())


class TestAccessTokens(HttpTestCase):
    token = TOKEN

    def test_http_routes_need_the_bearer_token(self):
        cases = [({}, 401, "missing access token: send Authorization: Bearer <token>"),
                 ({"Authorization": "Bearer wrong-token-0123456789"}, 401, "wrong access token"),
                 ({"Authorization": TOKEN}, 401, "missing access token: send Authorization: Bearer <token>"),
                 (AUTH, 200, None)]
        for path in ("/runs", "/runs/abc/terminate", "/code/abc", "/nope"):
            for headers, status, error in cases:
                with self.subTest(path=path, headers=headers):
                    method = "POST" if path.endswith("terminate") else "GET"
                    got, body, answer_headers = request(self.port, method, path, headers=headers)
                    if status == 401:
                        self.assertEqual((got, body["error"]), (401, error))
                        self.assertEqual(answer_headers["WWW-Authenticate"], 'Bearer realm="bgen"')
                    else:
                        self.assertNotEqual(got, 401)

    def test_health_options_and_the_dashboard_page_need_no_token(self):
        self.assertEqual(request(self.port, "GET", "/health")[0], 200)
        self.assertEqual(request(self.port, "HEAD", "/health")[0], 200)
        self.assertEqual(request(self.port, "OPTIONS", "/runs")[0], 204)
        for path in ("/", "/static/app.js"):
            response, _ = exchange(self.port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            self.assertEqual(statuses(response), [200], path)

    def test_two_authorization_fields_are_a_400_whichever_holds_the_token(self):
        for first, second in ((TOKEN, "wrong-token-0123456789"), ("wrong-token-0123456789", TOKEN)):
            with self.subTest(first=first):
                raw = (f"GET /runs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {first}\r\n"
                       f"Authorization: Bearer {second}\r\nConnection: close\r\n\r\n").encode()
                response, _ = exchange(self.port, raw)
                self.assertEqual(statuses(response), [400])
                self.assertIn(b"Authorization: sent 2 times; send it once", response)

    def test_post_run_with_the_token_starts_a_run(self):
        status, body, _ = request(self.port, "POST", "/run", {**QUICK, "episodes": 0}, headers=AUTH)
        self.assertEqual(status, 200, body)

    def test_websockets_take_the_header_or_the_query_and_refuse_the_rest(self):
        run_id = request(self.port, "POST", "/run", {**QUICK, "episodes": 0}, headers=AUTH)[1]["run_id"]
        url = f"ws://127.0.0.1:{self.ws_port}/ws/progress/{run_id}"

        async def attempt(suffix="", headers=None):
            try:
                async with connect(url + suffix, additional_headers=headers, open_timeout=TIMEOUT) as ws:
                    return json.loads(await ws.recv())["type"]
            except InvalidStatus as exc:
                response = exc.response
                return (response.status_code, response.headers["Content-Type"], json.loads(response.body))

        self.assertEqual(asyncio.run(attempt(headers=AUTH)), "connected")
        self.assertEqual(asyncio.run(attempt(f"?token={TOKEN}")), "connected")
        self.assertEqual(asyncio.run(attempt(f"?since=0&token={TOKEN}")), "connected")
        for suffix, headers, error in (("", None, "missing access token: send Authorization: Bearer <token>"),
                                       ("?token=wrong-token-0123456789", None, "wrong access token"),
                                       ("", {"Authorization": "Bearer wrong-token-0123456789"}, "wrong access token")):
            with self.subTest(suffix=suffix, headers=headers):
                self.assertEqual(asyncio.run(attempt(suffix, headers)),
                                 (401, "application/json", {"error": error, "field": "Authorization"}))

    def test_a_websocket_with_two_tokens_is_a_400(self):
        run_id = request(self.port, "POST", "/run", {**QUICK, "episodes": 0}, headers=AUTH)[1]["run_id"]
        url = f"ws://127.0.0.1:{self.ws_port}/ws/progress/{run_id}"

        async def attempt(suffix="", headers=None):
            try:
                async with connect(url + suffix, additional_headers=headers, open_timeout=TIMEOUT):
                    return None
            except InvalidStatus as exc:
                return exc.response.status_code, json.loads(exc.response.body)["error"]

        self.assertEqual(asyncio.run(attempt(f"?token={TOKEN}&token=x")),
                         (400, "token: given 2 times in the query; give it once"))
        twice = [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer x")]
        self.assertEqual(asyncio.run(attempt(headers=twice)),
                         (400, "Authorization: sent 2 times; send it once"))

    def test_a_websocket_refused_for_another_reason_also_answers_json(self):
        async def attempt():
            try:
                async with connect(f"ws://127.0.0.1:{self.ws_port}/ws/progress/nosuchrun?token={TOKEN}",
                                   open_timeout=TIMEOUT):
                    return None
            except InvalidStatus as exc:
                headers = exc.response.headers
                return (exc.response.status_code, headers["Content-Type"], headers["Cache-Control"],
                        headers["X-Content-Type-Options"])

        self.assertEqual(asyncio.run(attempt()), (404, "application/json", "no-store", "nosniff"))


class TestTokenInTheServerProcess(unittest.TestCase):
    def test_a_debug_log_never_shows_the_token(self):
        with tempfile.TemporaryDirectory() as runs_dir:
            server = ServerProcess("--port", "0", "--ws-port", "0", "--render-ports", "0",
                                   "--loop-module", "tests.fakeloop", runs_dir=runs_dir,
                                   env={"BGEN_TOKEN": TOKEN, "BGEN_SERVER_LOG": "debug"}).wait_listening()
            try:
                self.assertIn("access=token", server.output())
                status, body, _ = request(server.port, "POST", "/run", {**QUICK, "episodes": 0}, headers=AUTH)
                self.assertEqual(status, 200, body)
                self.assertEqual(request(server.port, "GET", f"/runs?token={TOKEN}")[0], 401)

                async def follow():
                    async with connect(f"ws://127.0.0.1:{server.ws_port}/ws/progress/{body['run_id']}"
                                       f"?token={TOKEN}", open_timeout=TIMEOUT) as ws:
                        return json.loads(await ws.recv())["type"]

                self.assertEqual(asyncio.run(follow()), "connected")
            finally:
                code = server.stop()
            self.assertEqual(code, 0, server.output())
            self.assertIn("token=***", server.output())
            self.assertNotIn(TOKEN, server.output())
            for path in Path(runs_dir).rglob("*"):
                if path.is_file():
                    self.assertNotIn(TOKEN, path.read_text(errors="replace"), str(path))

    def test_a_non_loopback_host_without_a_token_exits_2_with_the_reason(self):
        with tempfile.TemporaryDirectory() as runs_dir:
            server = ServerProcess("--host", "0.0.0.0", "--port", "0", "--ws-port", "0", runs_dir=runs_dir,
                                   env={"BGEN_TOKEN": ""})
            self.assertEqual(server.proc.wait(TIMEOUT), 2)
            server.reader.join(TIMEOUT)
        self.assertIn("bgen-server: --host 0.0.0.0: refusing to serve a non-loopback address without an "
                      "access token", server.output())


class TestTokenSettings(unittest.TestCase):
    def test_a_non_loopback_bind_without_a_token_is_refused_at_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(ConfigError) as caught:
                bgen_server.BgenServer(bgen_server.Settings(host="0.0.0.0", port=0, ws_port=0, runs_dir=tmp))
        self.assertIn("--host 0.0.0.0: refusing to serve a non-loopback address without an access token",
                      str(caught.exception))
        for host, token, anonymous in (("127.0.0.1", None, False), ("::1", None, False),
                                       ("localhost", None, False), ("0.0.0.0", TOKEN, False),
                                       ("0.0.0.0", None, True)):
            with self.subTest(host=host):
                auth.check_bind(host, token, anonymous)

    def test_the_token_comes_from_the_file_or_the_environment(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token") as handle:
            handle.write(TOKEN + "\n")
            handle.flush()
            self.assertEqual(auth.load_token(handle.name, {}), TOKEN)
        self.assertEqual(auth.load_token(None, {"BGEN_TOKEN": TOKEN}), TOKEN)
        self.assertIsNone(auth.load_token(None, {}))
        with self.assertRaises(ConfigError):
            auth.load_token(None, {"BGEN_TOKEN": "short"})
        with self.assertRaises(ConfigError):
            auth.load_token("/nonexistent/token", {})

    def test_the_token_never_reaches_the_log(self):
        for text in (f"GET /ws/progress/abc?since=3&token={TOKEN} HTTP/1.1",
                     f"Authorization: Bearer {TOKEN}", f"/?token={TOKEN}"):
            with self.subTest(text=text):
                self.assertNotIn(TOKEN, auth.redact(text))
        self.assertEqual(auth.redact(f"/ws/progress/a?since=3&token={TOKEN}"), "/ws/progress/a?since=3&token=***")

    def test_settings_do_not_print_the_token(self):
        self.assertNotIn(TOKEN, repr(bgen_server.Settings(token=TOKEN)))


if __name__ == "__main__":
    unittest.main()
