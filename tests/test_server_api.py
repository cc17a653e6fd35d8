"""Specification of the server's HTTP API and WebSocket streams, against one in-process server.

The server runs the real iteration loop (episodes in worker processes, embedded backend) on
free ports; policies are given (no LLM). The test module for the ``python bgen_server.py``
process itself (signals, restart, the reference's ports) is test_server_process.
"""

import asyncio
import base64
import http.client
import json
import socket
import struct
import tempfile
import unittest

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bgen.orchestrator.loop import LoopConfig
from bgen.server.framing import encode_frame
from tests.test_server_support import (FINAL, LONG, MINIMAL_POLICY, QUICK, TIMEOUT, progress_messages,
                                       request, start_in_process, types, wait_until)



def zero_episodes_accepted() -> bool:
    try:
        LoopConfig(episodes=0, seeds=None, policy_code="x").validated()
    except Exception:
        return False
    return True


def start_run(port, body=QUICK) -> str:
    status, data, _ = request(port, "POST", "/run", body)
    if status != 200:
        raise AssertionError(f"POST /run answered {status}: {data}")
    return data["run_id"]


class ServerTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stop_server = start_in_process(cls, max_concurrent_runs=2, loop_module=None)   # the real loop

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()

    def tearDown(self):
        self.assertEqual([r.getMessage() for r in self.errors.records], [],
                         "the server logged an error (the catch-all must never fire in tests)")

    def http(self, method, path, body=None, **kw):
        return request(self.port, method, path, body, **kw)

    def start(self, body=QUICK):
        return start_run(self.port, body)

    def follow(self, run_id, **kw):
        return asyncio.run(progress_messages(self.ws_port, run_id, **kw))

    def wait_status(self, run_id, *statuses):
        return wait_until(lambda: self.http("GET", f"/runs/{run_id}")[1]["status"] in statuses,
                          f"run {run_id} to be {'/'.join(statuses)}", TIMEOUT * 3)


class TestReferenceFlow(ServerTestCase):
    """The reference's test_server.py, step for step."""

    def test_post_run_follow_progress_until_done_then_get_code(self):
        run_id = self.start()
        messages = self.follow(run_id, subscribe=True)
        self.assertEqual(messages[0]["type"], "connected")
        self.assertEqual(messages[-1]["type"], "done")
        self.assertNotIn("error", types(messages))
        for kind in ("iteration", "policy", "step", "episode_summary", "critique"):
            self.assertIn(kind, types(messages))
        step = next(m for m in messages if m["type"] == "step")
        self.assertIn("t", step["step"])
        summary = next(m for m in messages if m["type"] == "episode_summary")
        self.assertEqual(summary["summary"]["steps"], 300)
        critique = next(m for m in messages if m["type"] == "critique")
        self.assertIsInstance(critique["critique"], str)
        self.assertEqual(critique["aggregate"]["episodes"], 1)
        done = messages[-1]
        self.assertEqual(set(done["timing"]), {"sim_time_s", "wall_time_s", "speedup_x"})
        self.assertEqual(done["timing"]["sim_time_s"], 3.0)
        self.assertIn("concluded_early", done)
        status, code, _ = self.http("GET", f"/code/{run_id}")
        self.assertEqual(status, 200)
        self.assertEqual(code["run_id"], run_id)
        self.assertIn("def act(", code["code"])

    @unittest.skipUnless(zero_episodes_accepted(),
                         "bgen.orchestrator.loop refuses episodes=0, the body of the reference's test")
    def test_the_reference_body_with_zero_episodes_is_done(self):
        run_id = self.start({**QUICK, "episodes": 0})
        self.assertEqual(self.follow(run_id, subscribe=True)[-1]["type"], "done")
        self.assertIn("def act(", self.http("GET", f"/code/{run_id}")[1]["code"])

    def test_every_event_carries_an_increasing_id(self):
        run_id = self.start()
        messages = self.follow(run_id)[1:]
        ids = [m["id"] for m in messages]
        self.assertEqual(ids, sorted(set(ids)))

    def test_a_connection_without_a_path_subscribes_with_a_message(self):
        run_id = self.start()

        async def follow():
            async with connect(f"ws://127.0.0.1:{self.ws_port}/", open_timeout=TIMEOUT) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topic": f"progress:{run_id}"}))
                received = []
                while not received or received[-1]["type"] not in FINAL:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT * 3)))
                return received

        messages = asyncio.run(follow())
        self.assertEqual((messages[0]["type"], messages[-1]["type"]), ("connected", "done"))


class TestLateSubscribers(ServerTestCase):
    def test_a_subscriber_after_the_end_gets_the_stored_events_and_done(self):
        run_id = self.start()
        live = self.follow(run_id)
        late = self.follow(run_id)
        self.assertEqual(late[0]["status"], "done")
        disk = [json.loads(line) for line in (self.runs_dir / run_id / "events.jsonl").read_text().splitlines()]
        self.assertEqual(late[1:], disk)      # everything stored, steps included, nothing else
        live_by_id = {m["id"]: m for m in live[1:]}
        self.assertEqual([m for m in late[1:] if m["type"] != "step"],
                         [m for m in live[1:] if m["type"] != "step"])
        self.assertLessEqual({m["id"] for m in late[1:]}, set(live_by_id))

    def test_since_replays_only_later_events_and_done_always_comes(self):
        run_id = self.start()
        live = [m for m in self.follow(run_id)[1:] if m["type"] != "step"]
        middle = live[len(live) // 2]["id"]
        self.assertEqual(self.follow(run_id, query=f"?since={middle}")[1:],
                         [m for m in live if m["id"] > middle])
        self.assertEqual(types(self.follow(run_id, query=f"?since={live[-1]['id'] + 50}")),
                         ["connected", "done"])

    def test_a_client_that_reconnects_with_since_loses_no_event(self):
        run_id = self.start({**QUICK, "episodes": 2, "max_steps": 2000})

        async def leave_after_the_policy():
            received = []
            async with connect(f"ws://127.0.0.1:{self.ws_port}/ws/progress/{run_id}", open_timeout=TIMEOUT) as ws:
                while not received or received[-1]["type"] != "policy":
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
            return received

        first = asyncio.run(leave_after_the_policy())
        self.assertEqual(first[-1]["type"], "policy")
        second = self.follow(run_id, query=f"?since={first[-1]['id']}")
        seen = [m["id"] for m in first[1:] + second[1:]]
        stored = [m["id"] for m in self.follow(run_id)[1:]]
        self.assertEqual(seen, sorted(set(seen)))       # strictly increasing across the reconnect
        self.assertLessEqual(set(stored), set(seen))     # every stored event, steps included


class TestEventOrderAcrossSubscribers(ServerTestCase):
    """Many short episodes on two workers; subscribers that join at the start, leave and come
    back with ?since=, join mid-run, and join after the end. Each sees strictly increasing ids
    and every event events.jsonl holds after where it started (steps are thinned to
    --progress-hz on the wire and to 20 per second per episode on disk: the wire may carry
    steps the disk does not, never the other way round)."""

    @classmethod
    def setUpClass(cls):
        cls.stop_server = start_in_process(cls, max_concurrent_runs=2, loop_module=None, workers=2)

    def test_every_subscriber_gets_increasing_ids_and_everything_stored(self):
        run_id = self.start({**QUICK, "episodes": 16, "max_steps": 150})
        url = f"ws://127.0.0.1:{self.ws_port}/ws/progress/{run_id}"
        async def read_until(ws, received, stop):
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT * 3))
                received.append(message)
                if stop(message, received):
                    return received

        def is_final(message, _):
            return message["type"] in FINAL

        def after_summaries(n):
            return lambda message, received: is_final(message, received) or \
                sum(m["type"] == "episode_summary" for m in received) >= n

        async def scenario():
            third = asyncio.Event()

            async def whole_run():
                async with connect(url, open_timeout=TIMEOUT) as ws:
                    received = []

                    def stop(message, got):
                        if sum(m["type"] == "episode_summary" for m in got) >= 3:
                            third.set()
                        return is_final(message, got)
                    return await read_until(ws, received, stop)

            async def leave_and_return():
                async with connect(url, open_timeout=TIMEOUT) as ws:
                    first = await read_until(ws, [], after_summaries(2))
                last = max(m.get("id", 0) for m in first)
                if first[-1]["type"] in FINAL:
                    return first, []
                async with connect(f"{url}?since={last}", open_timeout=TIMEOUT) as ws:
                    return first, await read_until(ws, [], is_final)

            async def join_mid_run():
                await asyncio.wait_for(third.wait(), TIMEOUT * 3)
                async with connect(url, open_timeout=TIMEOUT) as ws:
                    return await read_until(ws, [], is_final)

            return await asyncio.gather(whole_run(), leave_and_return(), join_mid_run())

        whole, (first, second), mid = asyncio.run(scenario())
        after = self.follow(run_id)
        disk = [json.loads(line)["id"] for line in
                (self.runs_dir / run_id / "events.jsonl").read_text().splitlines()]
        self.assertEqual(disk, sorted(set(disk)))
        self.assertGreater(sum(m["type"] == "episode_summary" for m in whole), 15)
        streams = {"whole run": whole[1:], "left and came back": first[1:] + second[1:],
                   "joined mid-run": mid[1:], "after the end": after[1:]}
        for name, messages in streams.items():
            with self.subTest(subscriber=name):
                ids = [m["id"] for m in messages]
                self.assertEqual(ids, sorted(set(ids)), "ids not strictly increasing")
                self.assertLessEqual(set(disk), set(ids), "a stored event never arrived")
        self.assertEqual([m["id"] for m in after[1:]], disk)


class TestTermination(ServerTestCase):
    def test_post_terminate_stops_a_running_run(self):
        run_id = self.start(LONG)

        async def terminate_at_the_first_step(ws, message):
            if message["type"] == "step" and message["step"]["step"] == 0:
                await asyncio.to_thread(self.http, "POST", f"/runs/{run_id}/terminate")

        messages = self.follow(run_id, on_message=terminate_at_the_first_step)
        final = messages[-1]
        self.assertEqual((final["type"], final["status"]), ("terminated", "terminated"))
        self.assertIn("stopping", [m.get("status") for m in messages if m["type"] == "status"])
        summary = next(m for m in messages if m["type"] == "episode_summary")
        self.assertEqual(summary["summary"]["reason"], "terminated")
        self.assertEqual(self.http("GET", f"/runs/{run_id}")[1]["status"], "terminated")

    def test_a_terminate_message_on_the_progress_socket_stops_the_run(self):
        run_id = self.start(LONG)

        async def terminate_at_the_first_step(ws, message):
            if message["type"] == "step":
                await ws.send(json.dumps({"type": "terminate"}))

        self.assertEqual(self.follow(run_id, on_message=terminate_at_the_first_step)[-1]["type"], "terminated")

    def test_a_finished_run_cannot_be_terminated(self):
        run_id = self.start()
        self.follow(run_id)
        status, body, _ = self.http("POST", f"/runs/{run_id}/terminate")
        self.assertEqual((status, body), (409, {"error": "cannot terminate a run that is done",
                                                "field": "run_id"}))


class TestConcurrentRuns(ServerTestCase):
    def test_two_runs_execute_at_once_and_both_finish(self):
        first, second = self.start(LONG), self.start(LONG)
        self.wait_status(first, "running")
        self.wait_status(second, "running")
        self.assertEqual(self.http("GET", "/health")[1]["runs"], {"running": 2, "queued": 0})
        third = self.start(QUICK)
        self.assertEqual(self.http("GET", f"/runs/{third}")[1]["status"], "queued")
        for run_id in (first, second):
            self.http("POST", f"/runs/{run_id}/terminate")
        self.assertEqual(self.follow(third)[-1]["type"], "done")
        for run_id in (first, second):
            self.assertEqual(self.follow(run_id)[-1]["type"], "terminated")


class TestRunsApi(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_id = start_run(cls.port, {**QUICK, "iterations": 2, "success_threshold": 1.0})
        asyncio.run(progress_messages(cls.ws_port, cls.run_id))

    def test_get_runs_lists_the_run_with_its_outcome(self):
        runs = self.http("GET", "/runs")[1]["runs"]
        entry = next(r for r in runs if r["run_id"] == self.run_id)
        self.assertEqual({k: entry[k] for k in ("status", "iterations_requested", "iterations_done", "scenario")},
                         {"status": "done", "iterations_requested": 2, "iterations_done": 2, "scenario": "terrain"})

    def test_get_run_has_the_request_iterations_best_and_timing(self):
        status, record = self.http("GET", f"/runs/{self.run_id}")[:2]
        self.assertEqual(status, 200)
        self.assertEqual(record["request"]["policy_code"], MINIMAL_POLICY)
        self.assertEqual(record["request"]["target"], [60, 60, -20])
        self.assertEqual([i["iteration"] for i in record["iterations"]], [0, 1])
        self.assertIn("success_rate", record["iterations"][0]["aggregate"])
        self.assertIn(record["best_iteration"], (0, 1))
        self.assertEqual(record["code_iterations"], [0, 1])
        self.assertGreater(record["timing"]["sim_time_s"], 0)

    def test_code_by_iteration_and_best(self):
        self.assertEqual(self.http("GET", f"/code/{self.run_id}?iteration=1")[1]["iteration"], 1)
        best = self.http("GET", f"/code/{self.run_id}?best=1")[1]
        self.assertIn("def act(", best["code"])
        status, body, _ = self.http("GET", f"/code/{self.run_id}?iteration=7")
        self.assertEqual((status, body["error"]), (404, f"run {self.run_id} has no policy for iteration 7"))


class TestTaskSpecRuns(ServerTestCase):
    SPEC = {"checks": [{"kind": "altitude", "max_z": -5},
                       {"kind": "visit", "points": [{"from": "start", "offset": [0, 3, 0]}]}]}

    def test_a_run_with_a_task_spec_reports_per_check_results_in_events_and_run_json(self):
        run_id = self.start({**QUICK, "task_spec": self.SPEC})
        messages = self.follow(run_id)
        task = next(m for m in messages if m["type"] == "task")
        self.assertEqual((task["source"], task["max_steps"]), ("given", 300))
        self.assertEqual(task["task_spec"]["checks"][1]["radius"], 1.5)
        summary = next(m for m in messages if m["type"] == "episode_summary")["summary"]
        self.assertEqual([(c["kind"], c["passed"]) for c in summary["checks"]],
                         [("altitude", True), ("visit", False)])
        self.assertRegex(summary["checks"][1]["account"], r"^visit: 0/1 points; missed ")
        critique = next(m for m in messages if m["type"] == "critique")
        self.assertEqual([c["pass_rate"] for c in critique["aggregate"]["checks"]], [1.0, 0.0])
        self.assertIn("- seed 0: visit: 0/1 points; missed", critique["critique"])
        record = self.http("GET", f"/runs/{run_id}")[1]
        self.assertEqual(record["task_spec"], task["task_spec"])
        self.assertEqual(record["request"]["task_spec"], task["task_spec"])
        self.assertEqual(record["iterations"][0]["aggregate"]["checks"],
                         critique["aggregate"]["checks"])

    def test_a_bad_task_spec_is_a_400_naming_the_field(self):
        status, body, _ = self.http("POST", "/run", {**QUICK, "task_spec": {"checks": [
            {"kind": "visit", "points": ["start"], "laps": 0}]}})
        self.assertEqual((status, body), (400, {
            "error": "task_spec.checks[0].laps: expects an integer in 1..100, actual: 0",
            "field": "task_spec.checks[0].laps"}))


class TestBadInput(ServerTestCase):
    """No bad request gets a 5xx, each gets its exact status, and the server answers after all."""

    def test_bad_requests_get_4xx_with_an_error_and_never_5xx(self):
        table = [
            ("POST", "/run", {"raw": b"{not json"}, 400),
            ("POST", "/run", {"raw": b'{"iterations": NaN}'}, 400),
            ("POST", "/run", {"raw": b"\xff\xfe"}, 400),
            ("POST", "/run", {"raw": b"[" * 100_000 + b"]" * 100_000}, 400),
            ("POST", "/run", {"raw": b"[1, 2]"}, 400),
            ("POST", "/run", {"raw": b"null"}, 400),
            ("POST", "/run", {"body": {"iterations": "ten"}}, 400),
            ("POST", "/run", {"body": {"iterations": -1}}, 400),
            ("POST", "/run", {"body": {"episodes": 1e308}}, 400),
            ("POST", "/run", {"body": {"delta": 0}}, 400),
            ("POST", "/run", {"body": {"provider": "skynet"}}, 400),
            ("POST", "/run", {"body": {"scenario": "mars"}}, 400),
            ("POST", "/run", {"body": {"target": [1, "a", 3]}}, 400),
            ("POST", "/run", {"body": {"api_key": "sk-live"}}, 400),
            ("POST", "/run", {"body": {"policy_code": ["def act(): pass"]}}, 400),
            ("POST", "/run?x=1", {"body": {}}, 400),
            ("POST", "/run", {"raw": b"{}", "headers": {"Content-Length": str(1024 * 1024 + 1)}}, 413),
            ("POST", "/run", {"raw": b"{}", "headers": {"Content-Length": "abc"}}, 400),
            ("GET", "/runs/nope", {}, 404),
            ("GET", "/runs/..%2F..%2Fetc", {}, 404),
            ("GET", "/code/nope", {}, 404),
            ("GET", "/code/nope?iteration=x", {}, 400),
            ("POST", "/runs/nope/terminate", {}, 404),
            ("GET", "/nowhere", {}, 404),
            ("GET", "/runs/", {}, 404),
            ("DELETE", "/run", {}, 405),
            ("GET", "/run", {}, 405),
            ("PUT", "/health", {"body": {}}, 405),
            ("POST", "/health", {"raw": b"x" * 10}, 405),
        ]
        for method, path, options, expected in table:
            with self.subTest(method=method, path=path, options=str(options)[:50]):
                status, body, headers = self.http(method, path, options.get("body"), raw=options.get("raw"),
                                                  headers=options.get("headers"))
                self.assertEqual(status, expected, body)
                self.assertIsInstance(body["error"], str)
                self.assertEqual(headers["Access-Control-Allow-Origin"], "*")
        status, body, _ = self.http("GET", "/health")
        self.assertEqual((status, body["status"]), (200, "ok"))

    def test_the_error_names_the_field(self):
        status, body, _ = self.http("POST", "/run", {"iterations": "ten"})
        self.assertEqual(body, {"error": "iterations: expects an integer in 1..50, actual: 'ten'",
                                "field": "iterations"})

    def test_a_policy_that_breaks_the_sandbox_rules_is_refused_with_its_line(self):
        status, body, _ = self.http("POST", "/run", {**QUICK, "policy_code": "import os\n\ndef act(*a):\n    return None\n"})
        self.assertEqual(status, 400)
        self.assertEqual((body["field"], body["lineno"], body["rule"]), ("policy_code", 1, "import"))

    def test_a_policy_that_breaks_the_contract_is_refused_before_a_run_exists(self):
        runs_before = self.http("GET", "/runs")[1]["total"]
        for field in ("policy_code", "existing_code"):
            with self.subTest(field=field):
                code = MINIMAL_POLICY.replace("def collect(", "def gather(")
                status, body, _ = self.http("POST", "/run", {**QUICK, "policy_code": None, field: code})
                self.assertEqual(status, 400)
                self.assertEqual(body, {"error": f"{field}: policy must define collect(step_ctx); found no "
                                                 "'collect' (rule: contract)", "field": field,
                                        "rule": "contract", "lineno": None})
        self.assertEqual(self.http("GET", "/runs")[1]["total"], runs_before)

    def test_a_405_names_the_allowed_methods(self):
        status, body, headers = self.http("DELETE", "/run")
        self.assertEqual(body, {"error": "DELETE '/run': expects POST"})
        self.assertEqual(headers["Allow"], "POST, OPTIONS")

    def test_a_malformed_request_line_gets_a_json_400(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /a b HTTP/1.1\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            reply = reply.decode()
        self.assertTrue(reply.startswith("HTTP/1.1 400 "), reply)
        self.assertTrue(reply.endswith('{"error": "request line: expects METHOD SP target SP HTTP/1.1, '
                                       'actual: \'GET /a b HTTP/1.1\'"}'), reply)

    def test_bad_websocket_paths_are_refused_before_the_upgrade(self):
        table = [("/ws/progress/nope", 404), ("/ws/render/nope/world", 404), ("/ws/elsewhere/x", 404),
                 ("/ws/progress/x?since=abc", 400)]

        async def status_of(path):
            try:
                async with connect(f"ws://127.0.0.1:{self.ws_port}{path}", open_timeout=TIMEOUT):
                    return 101
            except InvalidStatus as exc:
                return exc.response.status_code

        for path, expected in table:
            with self.subTest(path=path):
                self.assertEqual(asyncio.run(status_of(path)), expected)

    def test_a_bad_subscribe_message_closes_with_1008(self):
        async def close_code(message):
            async with connect(f"ws://127.0.0.1:{self.ws_port}/", open_timeout=TIMEOUT) as ws:
                await ws.send(message)
                try:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                except ConnectionClosed as exc:
                    return exc.rcvd.code, exc.rcvd.reason

        self.assertEqual(asyncio.run(close_code('{"type": "subscribe", "topic": "progress:nope"}')),
                         (1008, "no run 'nope'"))
        self.assertEqual(asyncio.run(close_code("hello"))[0], 1008)


class TestHttpProtocol(ServerTestCase):
    def test_health(self):
        status, body, headers = self.http("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual((body["status"], body["backend"], body["ws_port"]), ("ok", "embedded", self.ws_port))
        self.assertEqual(headers["Content-Type"], "application/json")
        from bgen.runner.isolation import LAYER_NAMES
        self.assertEqual([layer["name"] for layer in body["isolation"]["layers"]],
                         list(LAYER_NAMES))

    def test_cors_preflight(self):
        status, body, headers = self.http("OPTIONS", "/run", headers={
            "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertIsNone(body)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")
        self.assertIn("POST", headers["Access-Control-Allow-Methods"])
        self.assertEqual(headers["Access-Control-Allow-Headers"], "Content-Type, Authorization")

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            for _ in range(20):
                self.assertEqual(request(self.port, "GET", "/health", conn=conn)[0], 200)
            status, _, _ = request(self.port, "GET", "/runs/nope", conn=conn)
            self.assertEqual(status, 404)
            self.assertEqual(request(self.port, "GET", "/health", conn=conn)[0], 200)
        finally:
            conn.close()


class TestRenderProxy(ServerTestCase):
    def test_a_rendered_run_delivers_world_and_agents_frames(self):
        run_id = self.start({**LONG, "render": True, "ws_proxy": True})

        async def frames(channel, count, fmt=""):
            async with connect(f"ws://127.0.0.1:{self.ws_port}/ws/render/{run_id}/{channel}{fmt}",
                               open_timeout=TIMEOUT) as ws:
                connected = json.loads(await ws.recv())
                received = [await ws.recv() for _ in range(count)]
                return connected, received

        async def first_warning():
            warnings = await progress_messages(self.ws_port, run_id, until=("warning",) + FINAL)
            return warnings[-1]

        async def frames_unless_warned():
            watch = asyncio.create_task(first_warning())
            both = asyncio.gather(frames("world", 1), frames("agents", 3, "?format=binary"))
            done, _ = await asyncio.wait([watch, both], timeout=TIMEOUT * 2,
                                         return_when=asyncio.FIRST_COMPLETED)
            watch.cancel()
            if both not in done:
                both.cancel()
                warning = watch.result() if watch in done else "no frame and no warning"
                self.fail(f"no frames from the rendered run: {warning}")
            return both.result()

        try:
            (connected, world), (_, agents) = asyncio.run(frames_unless_warned())
        finally:
            self.http("POST", f"/runs/{run_id}/terminate")
        self.assertEqual(connected["topic"], f"render:{run_id}:world")
        frame = json.loads(world[0])
        self.assertEqual((frame["type"], frame["channel"]), ("frame", "world"))
        self.assertEqual(len(base64.b64decode(frame["payload_b64"])), frame["len"])
        for message in agents:
            self.assertIsInstance(message, bytes)
            self.assertEqual(struct.unpack_from("<I", message)[0], len(message) - 4)
        self.assertEqual(self.follow(run_id)[-1]["type"], "terminated")

    def test_frames_from_a_tcp_sender_arrive_whole_and_in_order(self):
        run_id = self.start({**LONG, "render": True, "ws_proxy": True, "episodes": 1})
        try:
            ports = wait_until(lambda: self.http("GET", f"/runs/{run_id}")[1]["render_ports"], "proxy ports")
            payloads = [b"test-frame-%d-" % i + bytes(range(256)) * (i + 1) for i in range(5)]

            async def send_and_receive():
                async with connect(f"ws://127.0.0.1:{self.ws_port}/ws/render/{run_id}/pov_agents_0?format=binary",
                                   open_timeout=TIMEOUT) as ws:
                    await ws.recv()     # connected
                    with socket.create_connection(("127.0.0.1", ports[3]), timeout=TIMEOUT) as sender:
                        stream = b"".join(encode_frame(p) for p in payloads)
                        for i in range(0, len(stream), 333):        # split across frame boundaries
                            sender.sendall(stream[i:i + 333])
                        received = []
                        while len(received) < len(payloads):
                            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                            if message[4:].startswith(b"test-frame"):
                                received.append(message[4:])
                        return received

            self.assertEqual(asyncio.run(send_and_receive()), payloads)
        finally:
            self.http("POST", f"/runs/{run_id}/terminate")

    def test_an_oversized_frame_closes_only_that_connection(self):
        run_id = self.start({**LONG, "render": True, "ws_proxy": True})
        try:
            ports = wait_until(lambda: self.http("GET", f"/runs/{run_id}")[1]["render_ports"], "proxy ports")

            async def bad_and_good_sender():
                async with connect(f"ws://127.0.0.1:{self.ws_port}/ws/render/{run_id}/world?format=binary",
                                   open_timeout=TIMEOUT) as ws:
                    await ws.recv()     # connected
                    with socket.create_connection(("127.0.0.1", ports[0]), timeout=TIMEOUT) as bad, \
                            socket.create_connection(("127.0.0.1", ports[0]), timeout=TIMEOUT) as good:
                        bad.sendall(struct.pack("<I", 0xFFFFFFFF) + b"x" * 100)
                        closed = await asyncio.to_thread(bad.recv, 10)
                        good.sendall(encode_frame(b"still-flowing"))
                        while True:
                            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
                            if message[4:] == b"still-flowing":
                                return closed

            self.assertEqual(asyncio.run(bad_and_good_sender()), b"")     # the proxy closed the bad one
        finally:
            self.http("POST", f"/runs/{run_id}/terminate")
            self.follow(run_id)


class TestRenderPortBlocks(unittest.TestCase):
    """Each rendered run gets its own block of proxy ports; a taken block is skipped."""

    # Below Linux's ephemeral range (32768-60999), so no outgoing connection of another test
    # can be holding one of these ports when a test binds it on purpose.
    BASE = (27080, 27081, 27090, 28090)

    def setUp(self):
        import bgen_server

        runs_dir = tempfile.TemporaryDirectory()
        self.addCleanup(runs_dir.cleanup)
        self.server = bgen_server.BgenServer(bgen_server.Settings(render_ports=self.BASE, runs_dir=runs_dir.name))

    def open(self, run_id):
        ports, stop = self.server.start_proxy(run_id)
        self.addCleanup(stop)
        return ports

    def test_two_rendered_runs_get_disjoint_blocks_100_apart(self):
        first, second = self.open("run1"), self.open("run2")
        self.assertTrue(set(first).isdisjoint(second))
        offset = second[0] - first[0]
        self.assertEqual(offset % 100, 0)
        self.assertEqual(tuple(p + offset for p in first), second)

    def test_a_block_with_a_taken_port_is_skipped(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.BASE[2]))
            taken.listen()
            ports = self.open("run1")
        self.assertNotIn(self.BASE[2], ports)
        self.assertEqual((ports[0] - self.BASE[0]) % 100, 0)

    def test_a_stopped_run_gives_its_block_back(self):
        ports, stop = self.server.start_proxy("run1")
        stop()
        self.assertEqual(self.open("run2"), ports)


if __name__ == "__main__":
    unittest.main()
