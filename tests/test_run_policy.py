"""Specification of the command line: ``python -m bgen.runner.run_policy``."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bgen.runner import run_policy
from tests.timing import scaled

POLICIES = Path(__file__).parent / "policies"
ROOT = Path(__file__).parent.parent
TIMEOUT_S = scaled(60.0)
SKY = ["--start", "50,50,-60", "--target", "56,56,-60", "--backend", "embedded"]


def cli(*argv):
    """Run main() in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_policy.main(list(argv))
    return status, out.getvalue(), err.getvalue()


class UsageErrorTests(unittest.TestCase):
    """Bad flags and unreadable policy files: one line on stderr, exit status 2."""

    def test_each_usage_error_is_one_line_and_status_2(self):
        policy = str(POLICIES / "hover.py")
        cases = [
            ([], "the following arguments are required: --policy"),
            (["--policy", policy, "--episodes", "0"],
             "argument --episodes: expects a positive int, actual: '0'"),
            (["--policy", policy, "--target", "1,2"],
             "argument --target: expects x,y,z (three numbers), actual: '1,2'"),
            (["--policy", policy, "--pov-size", "200"],
             "argument --pov-size: expects WIDTHxHEIGHT, actual: '200'"),
            (["--policy", policy, "--backend", "moon"],
             "argument --backend: invalid choice: 'moon' (choose from 'auto', 'voxelsim', "
             "'embedded')"),
            (["--policy", policy, "--px4", "--no-px4"],
             "argument --no-px4: not allowed with argument --px4"),
            (["--policy", policy, "--frobnicate"], "unrecognized arguments: --frobnicate"),
            (["--policy", "/nonexistent/p.py"],
             "cannot read policy file '/nonexistent/p.py': No such file or directory"),
            (["--policy", str(POLICIES)],
             f"cannot read policy file '{POLICIES}': Is a directory"),
        ]
        for argv, message in cases:
            with self.subTest(argv=argv):
                status, out, err = cli(*argv)
                self.assertEqual(status, 2)
                self.assertEqual(out, "")
                self.assertEqual(err, f"run_policy: error: {message}\n")

    def test_the_module_entry_point_exits_2_without_a_traceback(self):
        result = subprocess.run(
            [sys.executable, "-m", "bgen.runner.run_policy", "--policy", "x.py", "--delta", "-1"],
            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         "run_policy: error: argument --delta: expects a positive float, "
                         "actual: '-1'\n")


class RunTests(unittest.TestCase):
    """A run prints a line per finished episode, a table, and writes the files."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.outdir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_move_to_target_policy_succeeds_on_every_episode(self):
        status, out, err = cli("--policy", str(POLICIES / "move_to_target.py"), "--episodes", "4",
                               "--outdir", str(self.outdir), "--max-steps", "1500", *SKY)
        self.assertEqual(status, 0, err)
        lines = out.splitlines()
        self.assertEqual(sorted(line.split(":")[0] for line in lines[:4]),
                         ["seed 0", "seed 1", "seed 2", "seed 3"])
        self.assertTrue(all(": success " in line for line in lines[:4]), out)
        self.assertIn("success 4/4  success 4", out)
        for seed in range(4):
            summary = json.loads((self.outdir / f"ep_{seed}" / f"summary.{seed}.json").read_text())
            self.assertEqual(summary["reason"], "success")
            self.assertTrue((self.outdir / f"ep_{seed}" / f"steps.{seed}.jsonl").exists())

    def test_an_endless_act_times_out_and_the_command_still_exits_normally(self):
        status, out, err = cli("--policy", str(POLICIES / "loop_forever.py"), "--episodes", "1",
                               "--outdir", str(self.outdir), "--act-budget-s", "0.5", *SKY)
        self.assertEqual(status, 0)
        self.assertEqual(out.splitlines()[0],
                         "seed 0: timeout      steps      0  sim 0.00 s  wall "
                         + out.splitlines()[0].split("wall ")[1].split(" s")[0]
                         + " s  dist -  collisions 0  "
                           "(act() ran longer than its budget of 0.5 s (line 2))")
        self.assertIn("success 0/1  timeout 1", out)
        trace = json.loads((self.outdir / "ep_0" / "trace.0.json").read_text())
        self.assertEqual(trace["reason"], "timeout")


if __name__ == "__main__":
    unittest.main()


class LiftedPlacementTests(unittest.TestCase):
    """The episode line says when a start or target inside terrain was moved up."""

    def test_points_used_as_asked_add_no_note(self):
        summary = {"start": [50, 50, -20], "target": [60.0, 60.0, -20.0]}
        self.assertEqual(run_policy.lifted_note(summary, (50, 50, -20), (60, 60, -20)), "")

    def test_lifted_points_are_named_with_where_they_went(self):
        summary = {"start": [50, 50, -27], "target": [60.0, 60.0, -25.0]}
        self.assertEqual(run_policy.lifted_note(summary, (50, 50, -20), (60, 60, -20)),
                         "start lifted to [50, 50, -27]; target lifted to [60, 60, -25]")

    def test_the_episode_line_carries_the_note(self):
        summary = {"seed": 0, "reason": "success", "steps": 10, "sim_time_s": 0.1,
                   "wall_time_s": 0.01, "final_distance_to_target": 0.5, "collisions_total": 0,
                   "start": [50, 50, -20], "target": [60.0, 60.0, -25.0]}
        line = run_policy.episode_line(summary, (50, 50, -20), (60, 60, -20))
        self.assertTrue(line.endswith("[target lifted to [60, 60, -25] (inside terrain)]"), line)
