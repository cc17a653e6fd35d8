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
             "argument --episodes: expects a positive int up to 100,000, actual: '0'"),
            (["--policy", policy, "--delta", "0"],
             "argument --delta: expects a positive float, actual: '0'"),
            (["--policy", policy, "--max-steps", "9" * 400],
             f"argument --max-steps: expects a positive int up to 1,000,000, actual: {'9' * 40!r}"),
            (["--policy", policy, "--max-steps", "2000000"],
             "argument --max-steps: expects a positive int up to 1,000,000, actual: '2000000'"),
            (["--policy", policy, "--seed-start", "9" * 400],
             f"argument --seed-start: expects an integer in 0..4294967295, actual: {'9' * 40!r}"),
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


# --- task specs: --task-spec --------------------------------------------------------------------

WIND_FARM = ["--use-wind-farm", "--backend", "embedded"]
SQUARE = [{"from": "start", "offset": [dx, dy, 0]} for dx, dy in ((3, -3), (3, 3), (-3, 3), (-3, -3))]
#: Every kind a straight, high flight to the target satisfies (and a dive fails).
DIRECT_SPEC = {"checks": [
    {"kind": "reach", "point": "target"}, {"kind": "end_near", "point": "target"},
    {"kind": "clearance", "min_m": 20}, {"kind": "standoff", "min_m": 0.5},
    {"kind": "altitude", "min_z": -90, "max_z": -60},
    {"kind": "collisions", "max": 0}, {"kind": "time_limit", "seconds": 15}]}
#: A patrol: the square around the start twice, circling it, then the target.
PATROL_SPEC = {"checks": [
    {"kind": "visit", "points": SQUARE, "laps": 2},
    {"kind": "orbit", "centre": "start", "min_radius": 2, "max_radius": 5},
    {"kind": "reach", "point": "target"}]}
PROMPT_SPEC = {"checks": [{"kind": "reach", "point": "target"},
                          {"kind": "time_limit", "seconds": 15}]}


def write_spec(directory: Path, name: str, spec) -> str:
    path = directory / name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return str(path)


class TaskSpecUsageTests(unittest.TestCase):
    """A bad --task-spec is one line naming the file or the field, exit status 2."""

    def test_each_bad_spec_is_one_line_naming_the_field(self):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            policy = str(POLICIES / "hover.py")
            cases = [
                ("/nonexistent/spec.json",
                 "cannot read task spec file '/nonexistent/spec.json': No such file or directory"),
                (write_spec(tmp, "broken.json", "{checks"),
                 f"task spec file '{tmp / 'broken.json'}': task_spec: expects a JSON object, "
                 "actual: invalid JSON (Expecting property name enclosed in double quotes: line 1 "
                 "column 2 (char 1))"),
                (write_spec(tmp, "radius.json", {"checks": [
                    {"kind": "reach", "point": "target", "radius": 0}]}),
                 f"task spec file '{tmp / 'radius.json'}': task_spec.checks[0].radius: expects a "
                 "positive number, actual: 0"),
                (write_spec(tmp, "landmark.json", {"checks": [
                    {"kind": "reach", "point": "turbine_0"}]}),
                 "task_spec.checks[0].point: unknown landmark 'turbine_0'; this scenario has "
                 "start, target"),
            ]
            for path, message in cases:
                with self.subTest(message=message):
                    status, out, err = cli("--policy", policy, "--task-spec", path)
                    self.assertEqual((status, out), (2, ""))
                    self.assertEqual(err, f"run_policy: error: {message}\n")


    def test_a_max_steps_too_short_for_the_spec_is_a_warning_and_the_run_goes_on(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = write_spec(Path(tmp), "dwell.json", {"checks": [
                {"kind": "dwell", "point": "target", "seconds": 2}]})
            status, out, err = cli("--policy", str(POLICIES / "hover.py"), "--task-spec", path,
                                   "--max-steps", "100", "--episodes", "1", *SKY,
                                   "--outdir", str(Path(tmp) / "out"))
        self.assertEqual(status, 0, err)
        self.assertIn("run_policy: warning: max_steps 100 x delta 0.01 s gives episodes of 1 s, "
                      "shorter than the task spec's 2 s of dwell: no episode can pass\n", err)
        self.assertIn("success 0/1", out)


class NegativePointTests(unittest.TestCase):
    def test_a_point_that_starts_with_a_minus_is_the_flags_value(self):
        self.assertEqual(run_policy.points_attached(["--start", "-10,5,-60", "--episodes", "-1"]),
                         ["--start=-10,5,-60", "--episodes", "-1"])
        self.assertEqual(run_policy.points_attached(["--target", "-1.5e3,0,0"]),
                         ["--target=-1.5e3,0,0"])
        self.assertEqual(run_policy.points_attached(["--target", "--render"]),
                         ["--target", "--render"])
        status, _, err = cli("--policy", str(POLICIES / "hover.py"), "--start", "-1000001,0,0")
        self.assertEqual((status, err), (2, "run_policy: error: start: expects 3 numbers within "
                                            "+-1000000, actual: (-1000001, 0, 0)\n"))


class StaleOutputTests(unittest.TestCase):
    def test_episode_folders_of_other_seeds_in_the_outdir_are_named_not_touched(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            for name in ("ep_7", "ep_12", "ep_0", "notes"):
                (out / name).mkdir(parents=True)
            status, _, err = cli("--policy", str(POLICIES / "hover.py"), "--episodes", "1",
                                 "--max-steps", "20", *SKY, "--outdir", str(out))
            self.assertEqual(status, 0, err)
            self.assertIn(f"run_policy: warning: {out} holds episode folders of other seeds "
                          "from an earlier run (ep_7, ep_12); they are left as they are", err)
            self.assertTrue((out / "ep_7").is_dir() and (out / "ep_12").is_dir())
            self.assertEqual(run_policy.stale_episode_dirs(Path(tmp) / "none", [0]), [])


# The wind farm's start varies by seed; these flights were designed around this one.
FIXED_START = ["--start", "110,110,-80"]


class TaskSpecFlightTests(unittest.TestCase):
    """Each check kind, with a policy that satisfies it and one that does not, on the wind farm.

    Five flights: straight to the target and a dive under one spec of six kinds; the square
    patrol and the straight flight under a patrol spec; the patrol under a tight time limit.
    """

    runs: dict = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = Path(cls.tmp.name)
        flights = {
            "direct": ("move_to_target.py", DIRECT_SPEC, FIXED_START),
            "dive": ("dive.py", DIRECT_SPEC, ["--start", "110,110,-21", "--max-steps", "600"]),
            "patrol": ("square_patrol.py", PATROL_SPEC, FIXED_START),
            "direct_on_patrol": ("move_to_target.py", PATROL_SPEC, [*FIXED_START, "--max-steps", "1500"]),
            "patrol_timed": ("square_patrol.py", PROMPT_SPEC, [*FIXED_START, "--max-steps", "4000"]),
        }
        for name, (policy, spec, extra) in flights.items():
            outdir = root / name
            status, out, err = cli("--policy", str(POLICIES / policy), "--outdir", str(outdir),
                                   "--task-spec", write_spec(root, f"{name}.json", spec),
                                   "--episodes", "1", *WIND_FARM, *extra)
            summary = json.loads((outdir / "ep_0" / "summary.0.json").read_text())
            cls.runs[name] = (status, out, err, summary, outdir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, run: str, kind: str) -> dict:
        status, out, err, summary, _ = self.runs[run]
        self.assertEqual(status, 0, err)
        return next(c for c in summary["checks"] if c["kind"] == kind)

    def test_each_kind_passes_with_one_policy_and_fails_with_another(self):
        table = [  # kind, passing run, failing run, what the failing account says
            ("reach", "direct", "dive", r"^reach: closest 4\d\.\d m to target \[126, 120, -66\] "
                                        r"\(needs < 1 m\)$"),
            ("end_near", "direct", "dive", r"^end_near: ended \d+\.\d m from target "
                                           r"\[126, 120, -66\] \(needs < 1\.5 m\)$"),
            ("clearance", "direct", "dive", r"^clearance: never 20 m above the ground$"),
            ("standoff", "direct", "dive", r"^standoff: in or under the ground at step \d+ \(ground "
                                           r"cell \[110, 110, -\d+\]\) \(needs 0\.5 m; clear "
                                           r"\d+/600 steps from step 0\)$"),
            ("altitude", "direct", "dive", r"^altitude: z -21\.0 at step 0 outside \[-90, -60\] "
                                           r"\(0/600 steps in band\)$"),
            ("collisions", "direct", "dive", r"^collisions: \d+ contacts, at most 0 allowed "
                                             r"\(over from step \d+\)$"),
            ("time_limit", "direct", "patrol_timed",
             r"^time_limit: the other checks first held at 3\d\.\d\d s, limit 15 s$"),
            ("visit", "patrol", "direct_on_patrol",
             r"^visit: 0/8 points \(2 laps of 4\); missed \[113, 107, -80\] \(point 0\) by "
             r"\d+\.\d m$"),
            ("orbit", "patrol", "direct_on_patrol",
             r"^orbit: swept \d+ deg of 360 around start \[110, 110, -80\] within 2-5 m$"),
        ]
        for kind, good, bad, account in table:
            with self.subTest(kind=kind):
                passed, failed = self.check(good, kind), self.check(bad, kind)
                self.assertTrue(passed["passed"], passed)
                self.assertEqual(passed["score"], 1.0)
                self.assertFalse(failed["passed"], failed)
                self.assertLess(failed["score"], 1.0)
                self.assertRegex(failed["account"], account)

    def test_success_means_every_check_held_and_ends_the_episode_there(self):
        # move_to_target.py replans onto the target once there, which A* refuses: under the
        # patrol spec (whose visits it never makes) that ends its episode as a policy error
        for name, reason in (("direct", "success"), ("patrol", "success"), ("dive", "max_steps"),
                             ("direct_on_patrol", "policy_error"), ("patrol_timed", "max_steps")):
            with self.subTest(run=name):
                summary = self.runs[name][3]
                self.assertEqual(summary["success"], reason == "success")
                self.assertEqual(summary["reason"], reason)
                self.assertEqual(summary["score"], round(
                    sum(c["score"] for c in summary["checks"]) / len(summary["checks"]), 4))
        self.assertEqual(self.runs["dive"][3]["steps"], 600)
        self.assertLess(self.runs["patrol"][3]["steps"], 5000)

    def test_the_output_lists_every_check_under_its_episode(self):
        out = self.runs["direct_on_patrol"][1].splitlines()
        self.assertTrue(out[0].startswith("seed 0: policy_error "), out[0])
        self.assertRegex(out[1], r"^    FAIL 0\.00  visit: 0/8 points")
        self.assertRegex(out[2], r"^    FAIL 0\.\d\d  orbit: swept")
        self.assertRegex(out[3], r"^    pass 1\.00  reach: within 1 m of target")
        self.assertIn("success 0/1  policy_error 1  mean score 0.", self.runs["direct_on_patrol"][1])

    def test_regrading_the_recorded_flight_gives_the_same_verdicts(self):
        from bgen.runner import taskspec
        from bgen.sim import load_backend, scenarios
        vxs = load_backend("embedded")
        world = scenarios.SCENARIOS["wind_farm"].build(vxs, 0)
        for name, spec in (("dive", DIRECT_SPEC), ("patrol", PATROL_SPEC)):
            with self.subTest(run=name):
                summary, outdir = self.runs[name][3], self.runs[name][4]
                steps = [json.loads(line) for line in
                         (outdir / "ep_0" / "steps.0.jsonl").read_text().splitlines()]
                positions = [s["agent_pos"] for s in steps]
                totals = list(__import__("itertools").accumulate(s["collisions_count"] for s in steps))
                marks = taskspec.episode_landmarks(summary["start"], summary["target"],
                                                   scenarios.scenario_landmarks("wind_farm"))
                resolved = taskspec.resolve(taskspec.parse_task_spec(spec), marks)
                grade = taskspec.grade_flight(resolved, positions, totals, world, 0.01)
                self.assertEqual(grade.checks, summary["checks"])
                self.assertEqual(grade.success, summary["success"])
                self.assertEqual(grade.end_step, summary["steps"] - 1)
