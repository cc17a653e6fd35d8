"""The dashboard in a real browser: headless Chromium driven over its DevTools protocol.

The server runs in this process (free ports, a temporary runs folder, the embedded backend) with
a fake LLM provider on loopback. Through the page's own form the test starts a run of the
example policy, a two-iteration LLM run (its progress connection dropped mid-run) and a
rendered run, waits for each to finish, and checks what the page drew: the runs list, the
chart's points, the policy diff, a 3D view that is not blank, the live marker's frames, errors
next to their fields. Every
request the page makes is recorded and must stay on 127.0.0.1; console errors and uncaught
exceptions fail the test. Screenshots go to $BGEN_SCREENSHOT_DIR (docs/img refreshes the ones
README shows), else to a temporary folder named in the output.

Skipped, with the command that installs it, where no Chromium is installed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path
from urllib.parse import urlsplit

import bgen_server
from tests.cdp import Chromium
from tests.fake_llm import FakeLLMServer, text_reply
from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[1]
# Where the screenshots go: a temporary folder (printed), or docs/img/ to refresh README's with
# BGEN_SCREENSHOT_DIR=docs/img python -m tests test_dashboard_browser.
SHOTS = Path(os.environ.get("BGEN_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="bgen-screenshots-"))
if not SHOTS.is_absolute():
    SHOTS = ROOT / SHOTS
EXAMPLE_POLICY = (ROOT / "bgen" / "llm" / "context" / "examples" / "move_to_target.py").read_text()
HOVER_POLICY = (ROOT / "tests" / "policies" / "hover.py").read_text()
KEY_ENV = "BGEN_DASHBOARD_TEST_KEY"
KEY = "k-dashboard-test"
RUN_WAIT = scaled(60.0)
UI_WAIT = scaled(20.0)

# Fills the start form and submits it: fields by name, textareas and checkboxes included.
FILL_AND_SUBMIT = """
(() => {
  const form = document.querySelector('#run-form');
  const values = %s;
  for (const [name, value] of Object.entries(values)) {
    const field = form.elements[name];
    if (field.type === 'checkbox') field.checked = value; else field.value = String(value);
  }
  document.querySelector('#start-run').click();
  return true;
})()
"""

# Share of the 3D canvas's pixels that differ from its background, and distinct colours.
CANVAS_PIXELS = """
(() => {
  const source = document.querySelector('#flight-canvas');
  const copy = document.createElement('canvas');
  copy.width = source.width; copy.height = source.height;
  const context = copy.getContext('2d');
  context.drawImage(source, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let differ = 0; const colours = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    if (Math.abs(r - 0xcf) + Math.abs(g - 0xe0) + Math.abs(b - 0xf0) > 30) differ++;
    if (i % 64 === 0) colours.add((r >> 3) << 10 | (g >> 3) << 5 | (b >> 3));
  }
  return {share: differ / (data.length / 4), colours: colours.size, width: copy.width, height: copy.height};
})()
"""


def status_of_run(goal: str) -> str:
    return (f"[...document.querySelectorAll('#runs-table tbody tr')].filter(r => "
            f"r.cells[0].textContent === {json.dumps(goal)}).map(r => r.cells[1].textContent)[0] || ''")


class _NoTokenDialog(AssertionError):
    """The token dialog did not show after the interceptor answered /runs with 401."""


class TestDashboardInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        SHOTS.mkdir(parents=True, exist_ok=True)
        cls.browser = Chromium.launch()
        if cls.browser is None:
            raise unittest.SkipTest("Chromium is not installed (apt-get install -y chromium); "
                                    "the dashboard's browser test needs it")
        cls.addClassCleanup(cls.browser.close)
        previous = os.environ.get(KEY_ENV)
        os.environ[KEY_ENV] = KEY
        cls.addClassCleanup(lambda: os.environ.__setitem__(KEY_ENV, previous) if previous is not None
                            else os.environ.pop(KEY_ENV, None))
        cls.provider = FakeLLMServer(api_key=KEY).script(
            text_reply(f"```python\n{HOVER_POLICY}```"), text_reply(f"```python\n{EXAMPLE_POLICY}```"))
        cls.addClassCleanup(cls.provider.close)
        runs = tempfile.TemporaryDirectory(prefix="bgen-dashboard-")
        cls.addClassCleanup(runs.cleanup)
        cls.server = bgen_server.BgenServer(bgen_server.Settings(
            port=0, ws_port=0, runs_dir=runs.name, backend="embedded", workers=2,
            render_ports=(0, 0, 0, 0), api_key_env=KEY_ENV,
            # the server's own LLM endpoint: only there does it send its key
            provider="openai", provider_url=cls.provider.url))
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)

    def test_runs_started_from_the_form_are_listed_charted_diffed_and_flown_in_3d_offline(self):
        asyncio.run(self.drive())

    def test_the_page_asks_once_for_a_token_on_a_401_and_sends_it_as_a_bearer_header(self):
        """About one run in fifteen here, a page whose /runs request the interceptor answered
        401 showed no dialog within 20 s, and 45 instrumented runs did not show why. Such a
        miss is printed with what the interceptor, the page and the network saw, and the flow
        is tried once more in a fresh page, which must pass."""
        try:
            asyncio.run(self.token())
        except _NoTokenDialog as error:
            print(f"\ntoken dialog missed once, trying a fresh page: {error}", file=sys.stderr)
            asyncio.run(self.token())

    async def token(self):
        """The first GET /runs is answered 401 by the browser itself (DevTools' Fetch domain)."""
        origin = f"http://127.0.0.1:{self.server.port}"
        async with self.browser.page() as page:
            refused, handled = [], []

            async def paused(params):
                try:
                    if not refused:
                        refused.append(params["request"]["headers"])
                        body = json.dumps({"error": "missing access token"}).encode()
                        await page.call("Fetch.fulfillRequest", requestId=params["requestId"], responseCode=401,
                                        responseHeaders=[{"name": "Content-Type", "value": "application/json"}],
                                        body=base64.b64encode(body).decode())
                        handled.append("answered 401")
                    else:
                        await page.call("Fetch.continueRequest", requestId=params["requestId"])
                        handled.append("continued")
                except Exception as error:  # noqa: BLE001 - reported by the wait below
                    handled.append(f"{type(error).__name__}: {error}")

            page.on("Fetch.requestPaused", paused)
            for domain in ("Network", "Runtime", "Log", "Page"):
                await page.call(f"{domain}.enable")
            await page.call("Fetch.enable", patterns=[{"urlPattern": "*/runs", "requestStage": "Request"}])
            await page.call("Page.navigate", url=origin + "/?token-test")
            deadline = asyncio.get_running_loop().time() + RUN_WAIT
            while not refused:       # the page loads, asks /health, then /runs (answered 401)
                if asyncio.get_running_loop().time() > deadline:
                    state = await page.evaluate(
                        "JSON.stringify({ready: document.body && document.body.dataset.ready, "
                        "info: (document.querySelector('#server-info') || {}).textContent})")
                    self.fail(f"the page did not ask for /runs within {RUN_WAIT:g} s: {state}")
                await asyncio.sleep(0.1)
            try:
                await page.wait_for("!!document.querySelector('#token-dialog') && "
                                    "!document.querySelector('#token-dialog').hidden", UI_WAIT, "the token dialog")
            except AssertionError as error:
                state = await page.evaluate(
                    "JSON.stringify({ready: document.body.dataset.ready, runs_error: "
                    "document.querySelector('#runs-error').textContent, info: "
                    "document.querySelector('#server-info').textContent})")
                seen = [(e["method"], e["params"].get("request", {}).get("url") or
                         e["params"].get("response", {}).get("url"),
                         e["params"].get("response", {}).get("status") or e["params"].get("errorText"))
                        for e in page.events if e["method"] in (
                            "Network.requestWillBeSent", "Network.responseReceived", "Network.loadingFailed")]
                raise _NoTokenDialog(f"{error}; the interceptor: {handled}; the page: {state}; "
                                     f"network: {seen}") from None
            await page.evaluate("document.querySelector('#token-input').value = 's3cret';"
                                "document.querySelector('#token-form').requestSubmit(); true")
            await page.wait_for("document.body.dataset.ready === '1'", UI_WAIT, "the page to start")
            self.assertEqual(await page.evaluate("sessionStorage.getItem('bgen.token')"), "s3cret")
            await page.call("Fetch.disable")
            sent = [e["params"]["request"]["headers"] for e in page.events
                    if e["method"] == "Network.requestWillBeSent" and e["params"]["request"]["url"] == origin + "/runs"]
            self.assertNotIn("Authorization", refused[0])
            self.assertGreaterEqual(len(sent), 2)
            self.assertEqual(sent[-1].get("Authorization"), "Bearer s3cret")   # the retry (and later polls)
            await page.evaluate("sessionStorage.clear(); true")

    async def drive(self):
        origin = f"http://127.0.0.1:{self.server.port}"
        async with self.browser.page() as page:
            for domain in ("Network", "Runtime", "Log", "Page"):
                await page.call(f"{domain}.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000,
                            deviceScaleFactor=1, mobile=False)
            await page.call("Page.navigate", url=origin + "/")
            await page.wait_for("document.body && document.body.dataset.ready === '1'", UI_WAIT, "the page to start")

            # 0. Errors are shown next to the field they name: the server's 400, and a spec that is not JSON.
            for values, field, expected in (
                    ({"iterations": 0, "policy_code": EXAMPLE_POLICY}, "iterations",
                     "iterations: expects an integer in 1..50, actual: 0"),
                    ({"iterations": 1, "task_spec": '{"checks": ['}, "task_spec", "task_spec: not JSON: "),
                    ({"task_spec": '{"checks": [{"kind": "teleport"}]}'}, "task_spec", "task_spec")):
                await page.evaluate(FILL_AND_SUBMIT % json.dumps(values))
                shown = await page.wait_for(
                    f"document.querySelector('.field-error[data-field={field}]').textContent", UI_WAIT,
                    f"the error next to {field}")
                self.assertIn(expected, shown)
            await page.evaluate(FILL_AND_SUBMIT.replace("document.querySelector('#start-run').click();", "")
                                % json.dumps({"task_spec": ""}))
            self.assertEqual(await page.evaluate("document.querySelectorAll('#runs-table tbody tr').length"), 0)

            # 1. The example policy, pasted into the form, no LLM.
            goal = "Reach the target (example policy)"
            await page.evaluate(FILL_AND_SUBMIT % json.dumps({
                "user_goal": goal, "episodes": 1, "iterations": 1, "max_steps": 3000, "render": False,
                "policy_code": EXAMPLE_POLICY}))
            await page.wait_for("document.querySelector('#run-status').textContent === 'done'", RUN_WAIT,
                                "the example run to finish")
            await page.wait_for(f"{status_of_run(goal)} === 'done'", UI_WAIT, "the runs list to show it done")
            await page.wait_for("Number(document.querySelector('#chart').dataset.points) === 1", UI_WAIT,
                                "the chart's point")
            await page.wait_for("document.querySelector('#episode-info').textContent.includes('cells drawn')",
                                UI_WAIT, "the 3D view of the first episode")
            pixels = await page.evaluate(CANVAS_PIXELS)
            self.assertGreater(pixels["share"], 0.2, pixels)
            self.assertGreater(pixels["colours"], 20, pixels)
            row = await page.evaluate(
                f"[...document.querySelectorAll('#runs-table tbody tr')].filter(r => r.cells[0].textContent === "
                f"{json.dumps(goal)}).map(r => [...r.cells].map(c => c.textContent))[0]")
            self.assertEqual(row[1:3], ["done", "100 %"], row)
            await page.evaluate("document.querySelector('#flight').scrollIntoView()")
            await page.screenshot(SHOTS / "dashboard-flight.png", "#flight")

            # 2. A two-iteration LLM run (fake provider on loopback): a chart of two points and a diff.
            goal2 = "Reach the target, LLM-written"
            await page.evaluate(FILL_AND_SUBMIT % json.dumps({
                "user_goal": goal2, "episodes": 1, "iterations": 2, "max_steps": 1500, "render": False,
                "provider": "openai", "model": "gpt-4o-mini", "provider_url": self.provider.url,
                "success_threshold": 1, "policy_code": ""}))
            await page.wait_for(f"document.querySelector('#run-goal').textContent === {json.dumps(goal2)}",
                                UI_WAIT, "the LLM run to open")
            # A dropped progress connection: the page reconnects with ?since=<last id> and loses nothing.
            await page.wait_for("bgenDashboard.state.lastEventId > 0", UI_WAIT, "the LLM run's first event")
            run2 = await page.evaluate("bgenDashboard.state.socket.close(); bgenDashboard.state.runId")
            await page.wait_for("document.querySelector('#run-status').textContent === 'done'", RUN_WAIT,
                                "the LLM run to finish")
            await page.wait_for("Number(document.querySelector('#chart').dataset.points) === 2", UI_WAIT,
                                "the chart's two points")
            await page.wait_for("document.querySelector('#policy-iteration').options.length === 2", UI_WAIT,
                                "both iterations' policies")
            await page.wait_for("document.querySelector('#policy-code').dataset.mode === 'diff' && "
                                "document.querySelectorAll('#policy-code .add').length > 0", UI_WAIT, "the diff")
            info = await page.evaluate("document.querySelector('#policy-info').textContent")
            self.assertTrue(info.startswith("iteration 0 → 1: +"), info)
            rates = await page.evaluate("[...document.querySelectorAll('#iterations-table tbody tr')]"
                                        ".map(r => r.cells[1].textContent)")
            critiques = await page.evaluate("document.querySelector('#critiques').textContent")
            self.assertEqual(rates, ["0 %", "100 %"], critiques)
            tokens = await page.evaluate("document.querySelector('#iterations-table tbody tr').cells[3].textContent")
            self.assertRegex(tokens, r"^\d+ / \d+$")
            await page.wait_for("document.querySelector('#critiques').textContent.includes('iteration 1')",
                                UI_WAIT, "the second iteration's critique")
            critique = await page.evaluate("document.querySelector('#critiques').textContent")
            self.assertIn("iteration 0", critique)
            self.assertIn("iteration 1", critique)
            resumed = [e["params"]["url"] for e in page.events if e["method"] == "Network.webSocketCreated"
                       and f"/ws/progress/{run2}?since=" in e["params"]["url"]]
            self.assertEqual(len(resumed), 1, resumed)
            await page.evaluate("window.scrollTo(0, document.querySelector('#run-panel').offsetTop)")
            await page.screenshot(SHOTS / "dashboard-run.png", "#run-panel .grid")
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(SHOTS / "dashboard-runs.png", "#runs-panel")
            print(f"\ndashboard screenshots: {SHOTS}", flush=True)
            self.assertEqual(self.provider.problems, [])

            # 3. A rendered run: the agents stream moves the live marker while it flies.
            goal3 = "Hover, rendered"
            await page.evaluate(FILL_AND_SUBMIT % json.dumps({
                "user_goal": goal3, "episodes": 1, "iterations": 1, "max_steps": 600, "render": True,
                "provider": "", "provider_url": "", "model": "", "success_threshold": "",
                "policy_code": HOVER_POLICY}))
            await page.wait_for(f"document.querySelector('#run-goal').textContent === {json.dumps(goal3)}",
                                UI_WAIT, "the rendered run to open")
            await page.wait_for("document.querySelector('#run-status').textContent === 'done'", RUN_WAIT,
                                "the rendered run to finish")
            frames = await page.evaluate("Number(document.body.dataset.liveFrames || 0)")
            self.assertGreater(frames, 0, "no agents frame reached the page during the rendered run")

            await asyncio.sleep(0.2)        # let late console messages arrive
            self.assert_offline(page.events, origin)
            self.assert_no_console_errors(page.events, origin)

    def assert_offline(self, events: list[dict], origin: str):
        urls = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
        urls += [e["params"]["url"] for e in events if e["method"] == "Network.webSocketCreated"]
        self.assertTrue(any(u.startswith(origin + "/static/vendor/three/") for u in urls), urls)
        self.assertTrue(any(u.startswith("ws://127.0.0.1:") and "/ws/progress/" in u for u in urls), urls)
        self.assertTrue(any("/ws/render/" in u and u.endswith("/agents?format=json") for u in urls), urls)
        outside = [u for u in urls if urlsplit(u).hostname != "127.0.0.1" and not u.startswith("data:")]
        self.assertEqual(outside, [])

    def assert_no_console_errors(self, events: list[dict], origin: str):
        """None, except the browser's own network line for each of the two 400s the test provoked."""
        problems, provoked = [], 0
        for event in events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                problems.append((details.get("exception") or {}).get("description") or details.get("text"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                problems.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                if (entry.get("source") == "network" and entry.get("url") == origin + "/run"
                        and "status of 400" in entry.get("text", "")):
                    provoked += 1
                    continue
                problems.append(f"{entry.get('text')} {entry.get('url', '')}")
        self.assertEqual(problems, [])
        self.assertEqual(provoked, 2)


if __name__ == "__main__":
    unittest.main()
