"""README names every command, flag, route, WebSocket path, message type and setting.

The detailed pages under docs/ have their own checks (test_server_docs, test_loop's TestDocs);
this one keeps the front page honest: what a user can type or receive is named there.
"""

import re
import unittest
from pathlib import Path

import bgen_server
from bgen import __main__ as bgen_command
from bgen import pack
from bgen.orchestrator import iterate
from bgen.runner import run_policy
from bgen.server.progress import FINAL_TYPES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

PROGRESS_TYPES = ("connected", "status", "task", "iteration", "policy", "step", "episode_summary",
                  "critique", "holdout", "warning") + FINAL_TYPES
ENVIRONMENT = ("BGEN_SIM_BACKEND", "BGEN_SERVER_LOG", "LLVPN_API_KEY", "BGEN_TEST_VERBOSITY",
               "BGEN_TEST_TIME_SCALE", "BGEN_PYZ_CACHE", "BGEN_SCREENSHOT_DIR")
BENCHMARKS = ("bgen.bench sim", "bgen.bench runner", "bgen.bench loop", "bgen.bench server",
              "bgen.bench render", "bgen.bench dask")


def flags_of(parser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings
            if option.startswith("--") and option != "--help" and action.help != "==SUPPRESS=="]


class TestQuickStart(unittest.TestCase):
    def test_the_quick_start_is_exactly_two_commands_install_and_run_then_install_and_test(self):
        section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
        first_blocks = re.findall(r"```sh\n(.*?)```", section, re.S)[:2]
        self.assertEqual([b.strip() for b in first_blocks],
                         ["python -m pip install . && python bgen_server.py",
                          "python -m pip install \".[dask]\" && python -m tests"])

    def test_ci_runs_the_readme_test_command(self):
        self.assertIn("python -m pip install \".[dask]\" && python -m tests", (ROOT / ".ci" / "run").read_text())


class TestCommandLines(unittest.TestCase):
    def test_every_flag_of_every_command_is_named(self):
        parsers = {"bgen_server.py": bgen_server.build_parser(),
                   "bgen.orchestrator.iterate": iterate.build_parser(),
                   "bgen.runner.run_policy": run_policy.build_parser(),
                   "bgen.pack": pack.build_parser()}
        for command, parser in parsers.items():
            self.assertIn(command, README)
            for flag in flags_of(parser):
                with self.subTest(command=command, flag=flag):
                    self.assertIn(f"`{flag}", README)

    def test_every_subcommand_of_the_bgen_command_is_named(self):
        for command in [*bgen_command.COMMANDS, "--version"]:
            with self.subTest(command=command):
                self.assertIn(f"`bgen {command}", README)

    def test_every_benchmark_command_is_named(self):
        from bgen.bench import BENCHMARKS as NAMES
        self.assertEqual([command.split()[1] for command in BENCHMARKS], list(NAMES))
        for command in BENCHMARKS:
            with self.subTest(command=command):
                self.assertIn(f"python -m {command}", README)


class TestServerSurface(unittest.TestCase):
    def test_every_http_route_is_named(self):
        for method, pattern, _ in bgen_server.ROUTES:
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", pattern.pattern)
            with self.subTest(route=f"{method} {path}"):
                self.assertIn(f"`{method} {path}", README)

    def test_every_websocket_path_and_format_is_named(self):
        for text in ("/ws/progress/<run_id>", "/ws/render/<run_id>/<channel>", "?since=",
                     "?format=binary", "?format=json", '"type": "subscribe"', '"type": "terminate"'):
            with self.subTest(text=text):
                self.assertIn(text, README)

    def test_every_progress_message_type_is_named(self):
        for kind in PROGRESS_TYPES:
            with self.subTest(type=kind):
                self.assertIn(f"`{kind}`", README)


class TestSettings(unittest.TestCase):
    def test_every_environment_variable_is_named(self):
        for name in ENVIRONMENT:
            with self.subTest(name=name):
                self.assertIn(name, README)

    def test_every_linked_page_exists(self):
        for link in re.findall(r"\]\((docs/[^)]+)\)", README):
            page, _, anchor = link.partition("#")
            with self.subTest(link=link):
                self.assertTrue((ROOT / page).is_file())
                if anchor:      # GitHub's anchor of a heading: lower case, spaces to hyphens
                    headings = re.findall(r"^#+ (.+)$", (ROOT / page).read_text(encoding="utf-8"), re.M)
                    self.assertIn(anchor, [re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                                           for h in headings])


if __name__ == "__main__":
    unittest.main()
