"""docs/server.md names every flag, route, WebSocket path, message type and lifecycle state."""

import re
import unittest
from pathlib import Path

import bgen_server
from bgen.server import lifecycle
from bgen.server.validation import RUN_FIELDS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "server.md").read_text(encoding="utf-8")

MESSAGE_TYPES = ("connected", "status", "iteration", "policy", "step", "episode_summary", "critique",
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
        for text in ("8080, 8081, 8090, 9090", "python -m bgen.server.bench", "BGEN_SERVER_LOG"):
            with self.subTest(text=text):
                self.assertIn(text, DOC)


if __name__ == "__main__":
    unittest.main()
