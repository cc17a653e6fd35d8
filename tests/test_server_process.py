"""Specification of ``python bgen_server.py`` as a process: the reference's test on its ports,
signals, restart, crash recovery, the LLM path and command-line errors."""

import asyncio
import signal
import socket
import tempfile
import unittest
from pathlib import Path

from tests.fake_llm import FakeLLMServer, text_reply
from tests.test_server_support import (LONG, MINIMAL_POLICY, QUICK, ServerProcess, TIMEOUT, port_is_free,
                                       progress_messages, request, types)

REFERENCE_PORTS = (8098, 8099)


class ProcessTestCase(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.runs_dir = tmp.name

    def launch(self, *args, env=None) -> ServerProcess:
        server = ServerProcess(*args, runs_dir=self.runs_dir, env=env)
        self.addCleanup(server.stop)
        return server.wait_listening()

    def follow(self, server, run_id, **kw):
        return asyncio.run(progress_messages(server.ws_port, run_id, **kw))


class TestReferenceTestFlow(ProcessTestCase):
    def test_the_reference_flow_on_ports_8098_and_8099_without_the_ws_proxy(self):
        busy = [p for p in REFERENCE_PORTS if not port_is_free(p)]
        if busy:
            self.fail(f"port(s) {busy} on 127.0.0.1 are in use; this test runs the server on the "
                      "reference's ports 8098 (HTTP) and 8099 (WebSocket): free them and rerun")
        server = self.launch("--host", "127.0.0.1", "--port", "8098", "--ws-port", "8099", "--no-ws-proxy",
                             env={"BGEN_SERVER_LOG": "debug"})
        self.assertEqual((server.port, server.ws_port), REFERENCE_PORTS)
        self.assertEqual(request(8098, "GET", "/health")[1]["status"], "ok")
        status, body, _ = request(8098, "POST", "/run", QUICK)
        self.assertEqual(status, 200, body)
        messages = self.follow(server, body["run_id"], subscribe=True)
        self.assertIn("done", types(messages), server.output())
        code = request(8098, "GET", f"/code/{body['run_id']}")[1]["code"]
        self.assertIn("def act(", code)


class TestShutdownAndRestart(ProcessTestCase):
    def test_sigterm_interrupts_the_running_run_and_exits_0_then_a_restart_still_answers(self):
        server = self.launch("--port", "0", "--ws-port", "0", "--no-ws-proxy")
        done_id = request(server.port, "POST", "/run", QUICK)[1]["run_id"]
        self.assertEqual(self.follow(server, done_id)[-1]["type"], "done")
        running_id = request(server.port, "POST", "/run", LONG)[1]["run_id"]
        self.follow(server, running_id, until=("step",))
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.output())
        self.assertIn("SIGTERM received: shutting down", server.output())

        record = Path(self.runs_dir, running_id, "run.json").read_text()
        self.assertIn('"status": "interrupted"', record)

        again = self.launch("--port", "0", "--ws-port", "0")
        runs = {r["run_id"]: r["status"] for r in request(again.port, "GET", "/runs")[1]["runs"]}
        self.assertEqual(runs, {done_id: "done", running_id: "interrupted"})
        self.assertIn("def act(", request(again.port, "GET", f"/code/{done_id}")[1]["code"])
        replay = self.follow(again, running_id)
        self.assertEqual((replay[0]["status"], replay[-1]["type"], replay[-1]["status"]),
                         ("interrupted", "error", "interrupted"))
        self.assertEqual(self.follow(again, done_id)[-1]["type"], "done")

    def test_sigint_exits_0_too(self):
        server = self.launch("--port", "0", "--ws-port", "0")
        self.assertEqual(server.stop(signal.SIGINT), 0, server.output())

    def test_a_run_active_when_the_server_was_killed_is_marked_interrupted_at_restart(self):
        server = self.launch("--port", "0", "--ws-port", "0", "--no-ws-proxy")
        run_id = request(server.port, "POST", "/run", LONG)[1]["run_id"]
        self.follow(server, run_id, until=("step",))
        server.stop(signal.SIGKILL)
        self.assertIn('"status": "running"', Path(self.runs_dir, run_id, "run.json").read_text())
        again = self.launch("--port", "0", "--ws-port", "0")
        record = request(again.port, "GET", f"/runs/{run_id}")[1]
        self.assertEqual((record["status"], record["stopped_reason"], record["error"]["message"]),
                         ("interrupted", "interrupted", "the server stopped while the run was running"))
        self.assertIn(f"run {run_id} marked interrupted", again.output())


class TestLLMRun(ProcessTestCase):
    def test_a_run_without_policy_code_asks_the_provider_and_never_writes_the_key(self):
        key = "sk-test-5a3f9e0c-never-in-files"
        policy = "```python\n" + MINIMAL_POLICY + "```"
        with FakeLLMServer(api_key=key, default=text_reply(policy)) as provider:
            # the server's own endpoint: only there does it send its key
            server = self.launch("--port", "0", "--ws-port", "0", "--no-ws-proxy",
                                 "--provider", "openai", "--provider-url", provider.url,
                                 env={"LLVPN_API_KEY": key, "BGEN_SERVER_LOG": "debug"})
            status, body, _ = request(server.port, "POST", "/run", {
                "user_goal": "Reach the block at (60, 60, -20).", "iterations": 1, "episodes": 1,
                "render": False, "max_steps": 200, "provider": "openai", "model": "gpt-4o-mini",
                "provider_url": provider.url})
            self.assertEqual(status, 200, body)
            messages = self.follow(server, body["run_id"])
            self.assertEqual(messages[-1]["type"], "done", messages[-1])
            self.assertEqual(provider.problems, [])
            self.assertEqual(provider.requests[0].body["model"], "gpt-4o-mini")
        self.assertIn("def act(", request(server.port, "GET", f"/code/{body['run_id']}")[1]["code"])
        server.stop()
        for path in Path(self.runs_dir).rglob("*"):
            if path.is_file():
                self.assertNotIn(key, path.read_text(errors="replace"), path)
        self.assertNotIn(key, server.output())

    def test_a_run_that_needs_the_llm_is_refused_at_once_when_the_server_has_no_key(self):
        server = self.launch("--port", "0", "--ws-port", "0", env={"LLVPN_API_KEY": ""})
        status, body, _ = request(server.port, "POST", "/run", {**QUICK, "policy_code": None})
        self.assertEqual(status, 400)
        self.assertEqual(body["field"], "provider")
        self.assertTrue(body["error"].startswith("no API key: set the environment variable LLVPN_API_KEY"),
                        body["error"])
        self.assertEqual(request(server.port, "GET", "/runs")[1]["runs"], [])
        self.assertEqual(request(server.port, "POST", "/run", QUICK)[0], 200)   # policy_code: no key needed


class TestCommandLine(ProcessTestCase):
    def run_cli(self, *args):
        server = ServerProcess(*args, runs_dir=self.runs_dir)
        code = server.proc.wait(TIMEOUT)
        server.reader.join(TIMEOUT)
        return code, server.output()

    def test_bad_flags_exit_2_with_the_reason(self):
        table = [(("--port", "http"), "--port: expects a port in 0..65535, actual: 'http'"),
                 (("--max-concurrent-runs", "0"), "--max-concurrent-runs: expects a positive integer, actual: '0'"),
                 (("--backend", "gpu"), "--backend: expects one of auto, voxelsim, embedded, actual: 'gpu'"),
                 (("--render-ports", "1,2"), "--render-ports: expects WORLD,AGENTS,POV_WORLD,POV_AGENTS ports"),
                 (("--ws-proxy", "--no-ws-proxy"), "not allowed with argument")]
        for args, message in table:
            with self.subTest(args=args):
                code, output = self.run_cli(*args)
                self.assertEqual(code, 2)
                self.assertIn(message, output)

    def test_a_busy_port_exits_2_saying_which(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            code, output = self.run_cli("--port", str(port), "--ws-port", "0")
        self.assertEqual(code, 2)
        self.assertIn(f"bgen-server: cannot listen on 127.0.0.1 (ports {port}/0)", output)


if __name__ == "__main__":
    unittest.main()
