"""Helpers shared by the tests/test_server_*.py modules (this module holds no tests).

Every wait is bounded by ``TIMEOUT`` (scaled by ``BGEN_TEST_TIME_SCALE``, see tests.timing); every socket is
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from websockets.asyncio.client import connect

from tests.timing import scaled

TIMEOUT = scaled(10.0)
ROOT = Path(__file__).resolve().parents[1]
FAKE_LOOP = "tests.fakeloop"
FINAL = ("done", "error", "terminated")

MINIMAL_POLICY = '''import voxelsim as vxs
from typing import Any, Dict, Optional


def init(config: Dict[str, Any]) -> None:
    pass


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        origin = agent.get_coord_py()
        try:
            return helpers.plan_to(world, origin, [55, 55, -20], urgency=0.8, yaw=0.0, padding=1)
        except Exception:
            return helpers.intent(0.6, 0.0, [vxs.MoveDir.Forward])
    return None


def collect(step_ctx: Dict[str, Any]) -> Dict[str, str]:
    return {"note": "ok"}


def finalize(ep_ctx: Dict[str, Any]) -> Dict[str, str]:
    return {"summary": f"steps={ep_ctx.get('steps')}, success={ep_ctx.get('success')}"}
'''


# A run that ends in about a second, and one that runs until it is terminated.
QUICK = {"user_goal": "Test run", "iterations": 1, "episodes": 1, "render": False,
         "policy_code": MINIMAL_POLICY, "max_steps": 300}
LONG = {**QUICK, "max_steps": 1_000_000}


def request(port: int, method: str, path: str, body=None, *, raw: bytes | None = None,
            headers: dict | None = None, conn: http.client.HTTPConnection | None = None):
    """(status, decoded JSON (bytes for other types) or None, headers) of one HTTP request."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        is_json = (response.getheader("Content-Type") or "").startswith("application/json")
        decoded = (json.loads(payload) if is_json else payload) if payload else None
        return response.status, decoded, dict(response.getheaders())
    finally:
        if own:
            conn.close()


async def progress_messages(ws_port: int, run_id: str, *, query: str = "", until=FINAL,
                            subscribe: bool = False, on_message=None) -> list[dict]:
    """Messages of /ws/progress/<run_id> up to and including the first of type ``until``."""
    messages = []
    async with connect(f"ws://127.0.0.1:{ws_port}/ws/progress/{run_id}{query}",
                       open_timeout=TIMEOUT) as ws:
        if subscribe:
            await ws.send(json.dumps({"type": "subscribe", "topic": f"progress:{run_id}"}))

        async def receive():
            while True:
                message = json.loads(await ws.recv())
                messages.append(message)
                if on_message is not None:
                    await on_message(ws, message)
                if message["type"] in until:
                    return messages

        return await asyncio.wait_for(receive(), TIMEOUT * 3)


def types(messages: list[dict]) -> list[str]:
    return [m["type"] for m in messages]


def wait_until(predicate, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class ErrorRecorder(logging.Handler):
    """Collects ERROR records of the server's logger: the catch-all must never fire in tests."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def quiet_server_log():
    """(setUpModule, tearDownModule) that keep the server's expected warnings off the test output."""
    logger = logging.getLogger("bgen.server")
    null = logging.NullHandler()

    def set_up():
        logger.addHandler(null)
        logger.propagate = False

    def tear_down():
        logger.removeHandler(null)
        logger.propagate = True

    return set_up, tear_down


def start_in_process(test_case_cls, **overrides):
    """A BgenServer with the scripted loop on free ports, for a TestCase class."""
    import bgen_server

    tmp = tempfile.TemporaryDirectory()
    settings = dict(host="127.0.0.1", port=0, ws_port=0, runs_dir=tmp.name, loop_module=FAKE_LOOP,
                    render_ports=(0, 0, 0, 0), max_concurrent_runs=2)
    settings.update(overrides)
    server = bgen_server.BgenServer(bgen_server.Settings(**settings))
    recorder = ErrorRecorder()
    logger = logging.getLogger("bgen.server")
    logger.addHandler(recorder)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    server.start()

    def stop():
        server.stop()
        logger.removeHandler(recorder)
        logger.propagate = True
        tmp.cleanup()

    test_case_cls.server, test_case_cls.errors, test_case_cls.runs_dir = server, recorder, Path(tmp.name)
    test_case_cls.port, test_case_cls.ws_port = server.port, server.ws.port
    return stop


class ServerProcess:
    """``python bgen_server.py ...`` as a child process; ports read from its 'listening' line."""

    LISTENING = re.compile(r"listening: http://[^:]+:(\d+) ws://[^:]+:(\d+)")

    def __init__(self, *args: str, runs_dir: str, env: dict | None = None):
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.port = self.ws_port = None
        environment = {**os.environ, "BGEN_SIM_BACKEND": "embedded", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bgen_server.py"), "--runs-dir", runs_dir, *args],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = self.LISTENING.search(line)
            if match:
                self.port, self.ws_port = int(match.group(1)), int(match.group(2))
                self.listening.set()

    def wait_listening(self) -> "ServerProcess":
        deadline = time.monotonic() + TIMEOUT
        while not self.listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.reader.join(1)
                raise AssertionError("bgen_server.py did not start listening:\n" + self.output())
        return self

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig=None) -> int:
        """Send SIGTERM (or ``sig``); return the exit code (killing it if it does not exit)."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
        try:
            code = self.proc.wait(TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        return code


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
