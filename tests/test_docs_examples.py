"""The docs hold: every Markdown table renders, and every shell example in README.md runs.

Tables: in README.md and docs/*.md, every row of a table has its header's number of cells
(``\\|`` inside a cell is not a separator) and no row is cut off from its table by a paragraph.

Examples: each command of each ```sh block of README.md either runs here — in a temporary
folder that links ``bgen/`` and ``tests/`` so the README's relative paths work, with ``python``
and ``python3`` on PATH, no LLM key in the environment, a time limit scaled by
``tests/timing.py`` — and exits 0 without a traceback, or is listed in ``SKIPPED`` with the
reason. Nothing is written into the checkout. A ``curl`` example talks to a server this test
starts on free loopback ports (``localhost:8088`` is rewritten to its port).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from tests.markdown import cells, shell_blocks, stray_rows, tables, unclosed_fence
from tests.timing import scaled

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_TIMEOUT_S = scaled(60.0)
SERVER_START_S = scaled(30.0)

# README commands not run here (matched by prefix), and why.
SKIPPED = {
    "python -m pip install . && python bgen_server.py":
        "installs into the shared site-packages, then serves until stopped (test_server_process starts the server)",
    'python -m pip install ".[dask]" && python -m tests':
        "installs into the shared site-packages, then runs the whole suite, this module included",
    "python -m bgen.pack --wheelhouse":
        "downloads wheels from the package index (network)",
    "python -m venv .venv && .venv/bin/pip install":
        "needs the wheelhouse of the previous command; test_pack installs one in a fresh venv",
    "python -m bgen.pack":
        "builds the 16 MB archive (5-10 s); test_pack builds it and runs it from another folder",
    "LLVPN_API_KEY=... python -m bgen.orchestrator.iterate --use-llm":
        "needs an LLM provider key and the network",
    "python -m bgen.orchestrator.iterate --use-llm --provider openai --openai-url http://127.0.0.1:11434":
        "needs a local OpenAI-compatible LLM server (Ollama) on port 11434",
}


def commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank and comment lines dropped."""
    found, current = [], ""
    for line in block.splitlines():
        if current:
            current += " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            current = line.strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        found.append(current)
        current = ""
    return found


def readme_commands() -> list[str]:
    return [command for _, block in shell_blocks(README) for command in commands(block)]


def skip_reason(command: str) -> str | None:
    # The longest matching prefix wins ("python -m bgen.pack --wheelhouse" before "python -m bgen.pack").
    matches = sorted((p for p in SKIPPED if command.startswith(p)), key=len, reverse=True)
    if not matches:
        return None
    prefix = matches[0]
    if prefix == "python -m bgen.pack" and command != prefix:
        return None
    return SKIPPED[prefix]


class TestMarkdownTables(unittest.TestCase):
    def test_every_row_of_every_table_has_its_headers_number_of_cells(self):
        count = 0
        for page in PAGES:
            for table in tables(page.read_text(encoding="utf-8")):
                for line, row in table.rows:
                    count += 1
                    with self.subTest(page=page.name, line=line):
                        self.assertEqual(len(row), len(table.header),
                                         f"{page.name}:{line}: {len(row)} cells, header has "
                                         f"{len(table.header)} ({' | '.join(table.header)})")
        self.assertGreater(count, 200)

    def test_no_table_is_cut_by_a_paragraph(self):
        for page in PAGES:
            with self.subTest(page=page.name):
                self.assertEqual(stray_rows(page.read_text(encoding="utf-8")), [])

    def test_every_code_fence_is_closed(self):
        for page in PAGES:
            with self.subTest(page=page.name):
                self.assertIsNone(unclosed_fence(page.read_text(encoding="utf-8")))

    def test_the_checks_find_a_cut_table_a_short_row_and_keep_escaped_pipes_in_their_cell(self):
        broken = ("| flag | default |\n| --- | --- |\n| `--a` | 1 |\n\nA paragraph.\n| `--b` | 2 |\n"
                  "\n| a | b |\n| --- | --- |\n| only one |\n| `x \\| y` | z |\n")
        self.assertEqual(stray_rows(broken), [6])
        short = tables(broken)[1]
        self.assertEqual([len(row) for _, row in short.rows], [1, 2])
        self.assertEqual(cells("| `x \\| y` | z |"), ["`x | y`", "z"])

    def test_a_fence_opened_inside_a_paragraph_would_swallow_the_tables_after_it(self):
        text = "Reply with\n```python block.\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n"
        self.assertEqual((tables(text), unclosed_fence(text)), ([], 2))


class TestReadmeShellExamples(unittest.TestCase):
    """Runs each example once: a few seconds each, about 30 s in all on 2 shared cores."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="bgen-readme-")
        cls.dir = Path(cls.tmp.name)
        for name in ("bgen", "tests", "bgen_server.py"):
            (cls.dir / name).symlink_to(ROOT / name)
        bin_dir = cls.dir / "bin"
        bin_dir.mkdir()
        for name in ("python", "python3"):
            (bin_dir / name).symlink_to(sys.executable)
        drop = ("LLVPN_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        cls.env = {k: v for k, v in os.environ.items() if k not in drop}
        cls.env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                       PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
        cls.before = cls.tree_state()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @staticmethod
    def tree_state() -> str:
        return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                              capture_output=True, text=True).stdout

    def run_command(self, command: str, **env) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=self.dir,
                              env={**self.env, **env}, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)

    def test_every_skipped_example_is_still_in_the_readme(self):
        listed = readme_commands()
        for prefix in SKIPPED:
            with self.subTest(prefix=prefix):
                self.assertTrue(any(c.startswith(prefix) for c in listed), prefix)

    def test_every_readme_example_that_needs_no_network_or_key_runs(self):
        ran = 0
        for command in readme_commands():
            reason = skip_reason(command)
            with self.subTest(command=command[:90]):
                if reason is not None:
                    continue
                if "localhost:8088" in command:
                    done = self.run_against_a_server(command)
                else:
                    done = self.run_command(command)
                ran += 1
                self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
                self.assertNotIn("Traceback", done.stdout + done.stderr)
        self.assertGreaterEqual(ran, 4)
        self.assertEqual(self.tree_state(), self.before, "a README example wrote into the checkout")

    def run_against_a_server(self, command: str) -> subprocess.CompletedProcess:
        """Start the server on free ports in the temporary folder, run ``command`` against it."""
        server = subprocess.Popen(
            [sys.executable, "bgen_server.py", "--port", "0", "--ws-port", "0", "--render-ports", "0",
             "--runs-dir", "runs"], cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            port = self.listening_port(server)
            done = self.run_command(command.replace("localhost:8088", f"127.0.0.1:{port}"))
            for line in filter(None, done.stdout.splitlines()):
                self.assertRegex(line, r'^\{"(run_id|runs)"', done.stdout)
            return done
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=scaled(20.0))
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()

    def listening_port(self, server: subprocess.Popen) -> int:
        deadline = time.monotonic() + SERVER_START_S
        seen = []
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening: http://[\d.]+:(\d+)", line)
            if match:
                return int(match.group(1))
        self.fail("the server did not say where it listens: " + "".join(seen)[-2000:])


if __name__ == "__main__":
    unittest.main()
