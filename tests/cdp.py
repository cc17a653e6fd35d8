"""Headless Chromium driven over its DevTools protocol, with the ``websockets`` package only.

    browser = Chromium.launch()                 # None when no chromium binary is installed
    async with browser.page() as page:           # a CDP session on the browser's first tab
        await page.call("Page.navigate", url="http://127.0.0.1:8088/")
        value = await page.evaluate("document.title")
        page.events                               # every event received: {"method", "params"}
    browser.close()

The browser runs with a fresh profile in a temporary directory, listens for DevTools on a
free loopback port (read from ``DevToolsActivePort`` in the profile) and is killed by
``close()``. Every wait is bounded by the caller's timeout. (This module holds no tests.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1280,1000", "--hide-scrollbars")


def find_binary() -> str | None:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    """A DevTools command answered with an error, or the page threw."""


class Page:
    """One CDP session: ``call`` a method and await its result; events are collected."""

    def __init__(self, websocket):
        self.ws = websocket
        self.events: list[dict] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._handlers: dict = {}           # event method -> async callback(params)
        self._tasks: set = set()            # running callbacks (kept so they are not collected)
        self._reader = asyncio.create_task(self._read())

    def on(self, method: str, callback) -> None:
        """Call ``await callback(params)`` for every event ``method`` (e.g. Fetch.requestPaused)."""
        self._handlers[method] = callback

    async def _read(self):
        async for message in self.ws:
            data = json.loads(message)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
                handler = self._handlers.get(data.get("method"))
                if handler is not None:
                    task = asyncio.create_task(handler(data.get("params", {})))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, timeout)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    async def evaluate(self, expression: str, timeout: float = 30.0):
        """The value of a JavaScript expression (promises awaited); CdpError if it throws."""
        result = await self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise CdpError(f"{expression[:80]!r} threw: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float, what: str, poll: float = 0.1):
        """Poll until ``expression`` is truthy; its value. AssertionError naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            await asyncio.sleep(poll)

    async def screenshot(self, path: Path, clip_selector: str | None = None) -> bytes:
        """A PNG of the viewport (or of one element's box) written to ``path``."""
        params = {"format": "png"}
        if clip_selector is not None:
            box = await self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(clip_selector)})"
                ".getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
            params["clip"] = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode((await self.call("Page.captureScreenshot", **params))["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    async def close(self):
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.ws.close()


class Chromium:
    """A headless Chromium process with a throw-away profile."""

    def __init__(self, process: subprocess.Popen, profile: tempfile.TemporaryDirectory, port: int):
        self.process = process
        self.profile = profile
        self.port = port

    @classmethod
    def launch(cls, timeout: float = 30.0) -> "Chromium | None":
        binary = find_binary()
        if binary is None:
            return None
        profile = tempfile.TemporaryDirectory(prefix="bgen-chromium-")
        process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile.name}", "about:blank"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        active = Path(profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                profile.cleanup()
                raise RuntimeError(f"{binary} exited with code {process.returncode} at start")
            try:
                port = int(active.read_text().split()[0])
                return cls(process, profile, port)
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        process.kill()
        process.wait()
        profile.cleanup()
        raise RuntimeError(f"{binary} wrote no DevToolsActivePort within {timeout:g} s")

    def page_url(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as answer:
            targets = json.loads(answer.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise RuntimeError("the browser has no page target")
        return pages[0]["webSocketDebuggerUrl"]

    @contextlib.asynccontextmanager
    async def page(self):
        async with connect(self.page_url(), max_size=64 * 1024 * 1024, open_timeout=30) as ws:
            page = Page(ws)
            try:
                yield page
            finally:
                await page.close()

    def close(self) -> None:
        """Kill the browser and its helper processes (its own session), then drop the profile."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        shutil.rmtree(self.profile.name, ignore_errors=True)
        self.profile.cleanup()
