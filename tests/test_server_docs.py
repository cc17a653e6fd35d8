"""docs/server.md names every flag, route, WebSocket path, message type and lifecycle state."""

import re
import unittest
from pathlib import Path

import bgen_server
from bgen.errors import BgenError
from bgen.server import lifecycle
from bgen.server.validation import RUN_FIELDS, parse_run_request
from tests.test_server_dashboard import write_episode
from tests.test_server_support import MINIMAL_POLICY, QUICK, quiet_server_log, request, start_in_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

setUpModule, tearDownModule = quiet_server_log()

# A valid value for every POST /run field, to check that each documented field is accepted.
FIELD_EXAMPLES = {
    "user_goal": "Reach the target", "iterations": 2, "episodes": 2, "seeds": [3, 4], "render": False,
    "ws_proxy": False, "existing_code": MINIMAL_POLICY, "policy_code": MINIMAL_POLICY, "max_steps": 100,
    "duration_seconds": 2.0, "duration": 2.0, "delta": 0.02, "provider": "openai",
    "provider_url": "http://127.0.0.1:11434/v1", "model": "llama3.1", "pov_min_dt_world": 0.1,
    "success_threshold": 0.5, "px4": False, "use_px4": False, "target": [10, 10, -5],
    "scenario": "wind_farm", "candidates": 3, "holdout_seeds": 2, "llm_retries": 2,
    "llm_backoff_cap_s": 5.0, "max_tokens": 4000,
    "task_spec": {"checks": [{"kind": "reach", "point": "target", "radius": 1.5}]},
}


def table_cells(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the table whose header row is ``header``."""
    rows = []
    for line in text.split(header, 1)[1].splitlines()[1:]:
        if not line.startswith("|"):
            break
        if not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def table_rows(text: str, header: str) -> list[str]:
    """The first cell of each row of the table whose header row is ``header``."""
    return [cells[0] for cells in table_cells(text, header)]

MESSAGE_TYPES = ("connected", "status", "task", "iteration", "policy", "step", "episode_summary", "critique",
                 "holdout", "warning", "done", "terminated", "error", "frame", "subscribe", "terminate")


class TestServerDocs(unittest.TestCase):
    def test_every_command_line_flag_is_documented(self):
        flags = [option for action in bgen_server.build_parser()._actions
                 for option in action.option_strings
                 if option.startswith("--") and action.help != "==SUPPRESS==" and option != "--help"]
        self.assertGreater(len(flags), 10)
        for flag in flags:
            with self.subTest(flag=flag):
                self.assertIn(f"`{flag}", DOC)

    def test_every_route_is_documented(self):
        for method, pattern, _ in bgen_server.ROUTES:
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", pattern.pattern)
            with self.subTest(route=f"{method} {path}"):
                self.assertIn(f"`{method} {path}", DOC)

    def test_every_run_field_is_documented(self):
        for field in RUN_FIELDS:
            with self.subTest(field=field):
                self.assertIn(f"`{field}`", DOC)

    def test_websocket_paths_and_message_types_are_documented(self):
        for path in ("/ws/progress/<run_id>", "/ws/render/<run_id>/<channel>", "?since=", "?format=binary"):
            with self.subTest(path=path):
                self.assertIn(path, DOC)
        for kind in MESSAGE_TYPES:
            with self.subTest(type=kind):
                self.assertRegex(DOC, rf'(`{kind}`|"type": "{kind}")')

    def test_the_lifecycle_table_has_every_state_and_event(self):
        for name in lifecycle.STATES + lifecycle.EVENTS:
            with self.subTest(name=name):
                self.assertRegex(DOC, rf"\| [^\n]*\b{name}\b")

    def test_the_outcome_table_lists_exactly_every_status_and_stopped_reason_pair(self):
        from bgen.orchestrator.outcome import OUTCOMES, PHASES
        from tests.markdown import tables
        table = next(t for t in tables(DOC) if t.header[:2] == ["`status`", "`stopped_reason`"])
        pairs = {(row[0].strip("`"), row[1].strip("`")): row[2] != "`null`" for _, row in table.rows}
        self.assertEqual(pairs, {pair: has_error for pair, (has_error, _) in OUTCOMES.items()})
        phases = next(t for t in tables(DOC) if t.header[0] == "phase")
        self.assertEqual([row[0].strip("`") for _, row in phases.rows], list(PHASES))
        for state in lifecycle.FINAL_STATES:
            with self.subTest(state=state):
                self.assertIn(state, {status for status, _ in OUTCOMES})

    def test_the_proxy_ports_and_benchmark_command_are_documented(self):
        for text in ("8080, 8081, 8090, 9090", "python -m bgen.bench server", "BGEN_SERVER_LOG"):
            with self.subTest(text=text):
                self.assertIn(text, DOC)



class TestTheDocsHold(unittest.TestCase):
    """Every route, field and flag that docs/server.md and README name exists and behaves so."""

    @classmethod
    def setUpClass(cls):
        cls.stop_server = start_in_process(cls)

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()

    def documented_routes(self, text, heading):
        routes = []
        for cell in table_rows(text, heading):
            match = re.fullmatch(r"`(GET|POST|DELETE|PUT|PATCH) (/[^`]*)`", cell)
            if match:
                routes.append(match.groups())
        return routes

    def test_every_documented_route_answers_on_the_server(self):
        run_id = request(self.port, "POST", "/run", {**QUICK, "iterations": 2})[1]["run_id"]
        wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done", "the run to end")
        examples = {"<path>": "app.js", "<iteration>": "0", "<seed>": "0", "<scenario>": "wind_farm"}

        def concrete(path: str, run: str) -> str:
            for placeholder, value in {**examples, "<run_id>": run}.items():
                path = path.replace(placeholder, value)
            return path

        routes = self.documented_routes(DOC, "| method and path | answer |") + \
            self.documented_routes(README, "| route | answer |")
        self.assertGreaterEqual(len(routes), 2 * len(bgen_server.ROUTES))
        bodies = {("POST", "/run"): {**QUICK, "episodes": 0}}
        for method, path in routes:
            with self.subTest(route=f"{method} {path}"):
                if "<seed>" in path:   # the scripted loop writes no episodes: give it one, as a real run would
                    write_episode(self.runs_dir / run_id / "iter_0" / "ep_0", 0, 20,
                                  {"success": True, "steps": 20, "reason": "success", "seed": 0})
                self.assertEqual(bgen_server.match_route(method, concrete(path, run_id))[0],
                                 bgen_server.match_route(method, concrete(path, "x"))[0])
                status, body, _ = request(self.port, method, concrete(path, run_id),
                                          bodies.get((method, path)))
                if method == "POST" and path.endswith("/terminate"):
                    self.assertEqual(status, 409, body)      # the run has ended: documented 409
                else:
                    self.assertEqual(status, 200, body)
                if method == "GET":
                    self.assertEqual(request(self.port, "HEAD", concrete(path, run_id))[:2],
                                     (200, None))
                if method == "DELETE":
                    run_id = request(self.port, "POST", "/run", {**QUICK, "iterations": 2})[1]["run_id"]
                    wait_until(lambda: request(self.port, "GET", f"/runs/{run_id}")[1]["status"] == "done",
                               "the run to end")

    def test_every_documented_field_is_accepted_with_a_documented_value(self):
        cells = table_rows(DOC, "| field | type, range | default | meaning |")
        documented = [name for cell in cells for name in re.findall(r"`(\w+)`", cell)]
        self.assertEqual(sorted(documented), sorted(RUN_FIELDS))
        readme = README.split("`POST /run` takes", 1)[1].split("\n\n", 1)[0]
        for name in RUN_FIELDS:
            with self.subTest(field=name):
                self.assertIn(f"`{name}`", readme)
                body = {name: FIELD_EXAMPLES[name]}
                if name in ("existing_code", "duration", "duration_seconds", "delta", "provider",
                            "provider_url", "model", "candidates", "llm_retries",
                            "llm_backoff_cap_s", "max_tokens"):
                    body["policy_code"] = MINIMAL_POLICY
                try:
                    request_ = parse_run_request(body)
                except BgenError as exc:
                    self.fail(f"{name}: {exc}")
                if name in ("candidates", "holdout_seeds", "seeds", "iterations"):
                    self.assertEqual(getattr(request_, name), tuple(FIELD_EXAMPLES[name])
                                     if name == "seeds" else FIELD_EXAMPLES[name])

    def test_every_documented_flag_is_a_flag_of_the_server(self):
        known = {option for action in bgen_server.build_parser()._actions for option in action.option_strings}
        cells = table_rows(DOC, "| flag | default | meaning |") + table_rows(
            README.split("## The server", 1)[1], "| flag | default | meaning |")
        flags = [flag for cell in cells for flag in re.findall(r"`(--[a-z-]+)", cell)]
        self.assertGreater(len(flags), 20)
        for flag in flags:
            with self.subTest(flag=flag):
                self.assertIn(flag, known)
        args = bgen_server.build_parser().parse_args(["--keep-runs", "3", "--allow-anonymous"])
        self.assertEqual((args.keep_runs, args.allow_anonymous, args.token_file), (3, True, None))

    def test_the_stopped_reason_table_matches_the_lifecycle(self):
        pairs = {tuple(cells[:2]) for cells in table_cells(DOC, "| `status` | `stopped_reason` |")}
        for state in lifecycle.FINAL_STATES:
            for reason in lifecycle.STOPPED_REASONS[state]:
                with self.subTest(state=state, reason=reason):
                    self.assertIn((f"`{state}`", f"`{reason}`"), pairs)


if __name__ == "__main__":
    unittest.main()
