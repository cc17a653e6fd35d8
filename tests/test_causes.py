"""Specification of the cause table and of critiques that name the real cause.

The table's texts are the ones the embedded backend really raises (each is provoked here, not
typed in), and real policies flown in real episodes must each get their own cause line in the
critique and none of another failure's.
"""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bgen.orchestrator import causes, evaluator, flight_analysis
from bgen.runner import sandbox
from bgen.runner.episode import EpisodeConfig, ListSink, run_episode
from bgen.sim import load_backend

VXS = load_backend("embedded")


def raised(call) -> str:
    """``"Type: message"`` of what ``call`` raises (panics included)."""
    try:
        call()
    except BaseException as error:  # noqa: B036 - Rust panics are BaseException
        return f"{type(error).__name__}: {error}"
    raise AssertionError("expected the call to raise")


def agent_at(coord=(0, 0, -20)):
    agent = VXS.Agent(0)
    agent.set_hold_py(list(coord), 0.0)
    return agent


def plan(origin, dst, world=None, padding=0):
    world = VXS.VoxelGrid() if world is None else world
    return lambda: VXS.AStarActionPlanner(padding).plan_action_py(world, list(origin), list(dst), 0.8, 0.0)


def walled_world():
    cells = {(x, y, z): VXS.Cell.filled() for x in range(-1, 2) for y in range(-1, 2)
             for z in range(-21, -18) if (x, y, z) != (0, 0, -20)}
    return VXS.VoxelGrid.from_dict_py(cells)


class TestCauseTable(unittest.TestCase):
    def test_every_row_matches_the_text_the_backend_raises_and_no_earlier_row_takes_it(self):
        up = [VXS.MoveDir.Up]
        table = [
            ("collisions_size", raised(lambda: VXS.VoxelGrid().collisions_py([0.0, 0.0, 0.0], [0.3, 0.3, 2.5]))),
            ("urgency", raised(lambda: VXS.ActionIntent(0.0, 0.0, up))),
            ("empty_intent", "PanicException: assertion failed: !intent.move_sequence.is_empty()"),
            ("snapshot_size", raised(lambda: VXS.VoxelGrid().dense_snapshot_py([0, 0, 0], [-3, 2, 2]))),
            ("panic", "PanicException: assertion failed: m >= 0.0"),
            ("duplicate_cell", raised(lambda: agent_at().perform_oneshot_py(
                VXS.ActionIntent(0.8, 0.0, [VXS.MoveDir.Forward, VXS.MoveDir.Back])))),
            ("no_commands", raised(lambda: agent_at().perform_oneshot_py(VXS.ActionIntent(0.8, 0.0, [])))),
            ("action_state", "Exception: Could not update agent state: Invalid progress"),
            ("plan_same_cell", raised(plan((0, 0, -20), (0, 0, -20)))),
            ("plan_origin_blocked", raised(plan((0, 0, -20), (9, 0, -20), walled_world(), padding=1))),
            ("plan_no_path", raised(plan((0, 0, -20), (5, 0, -20), walled_world()))),
            ("plan_failed", "Exception: Failed to create action intent: something new"),
            ("float_coordinate", raised(plan((0, 0, -20), (5.0, 0.0, -20.0)))),
            ("missing_global", "UnboundLocalError: cannot access local variable 'STAGE' where it is not associated with a value"),
            ("recursion", "RecursionError: maximum recursion depth exceeded"),
            ("contract", "TypeError: act() must return an ActionIntent, (ActionIntent, str) or None, actual: int"),
            ("arity", raised(lambda: VXS.ActionIntent(0.8, 0.0, up, None))),
            ("argument_type", "TypeError: argument 'origin': expected a sequence of length 3"),
            ("import", "line 1: import of 'os' is not allowed"),
            ("undefined_name", "NameError: name 'WAYPOINTS' is not defined"),
            ("attribute", raised(lambda: agent_at().get_position())),
            ("division_by_zero", raised(lambda: 1 / 0)),
            ("index", raised(lambda: [][1])),
            ("syntax", "SyntaxError: invalid syntax"),
            ("type", raised(lambda: 1 + "a")),
        ]
        self.assertEqual([name for name, _ in table], [row.name for row in causes.CAUSES])
        for name, text in table:
            with self.subTest(row=name, text=text):
                found = causes.diagnose(text)
                self.assertIsNotNone(found)
                self.assertEqual(found.name, name)

    def test_the_collisions_size_panic_is_not_blamed_on_urgency_and_vice_versa(self):
        size = raised(lambda: VXS.VoxelGrid().collisions_py([0.0, 0.0, 0.0], [0.3, 0.3, 2.5]))
        self.assertEqual(size, "PanicException: assertion failed: dims.x < 1.0 && dims.y < 1.0 && dims.z < 1.0")
        self.assertNotIn("urgency", causes.diagnose(size).cause)
        self.assertIn("below 1.0", causes.diagnose(size).fix)
        self.assertNotIn("collisions_py", causes.diagnose("PanicException: assertion failed: urgency > 0.0").cause)

    def test_an_unknown_text_has_no_cause_and_a_name_lookup_names_the_choices(self):
        self.assertIsNone(causes.diagnose("WeirdError: something odd"))
        with self.assertRaises(KeyError) as caught:
            causes.cause_by_name("moon")
        self.assertIn("collisions_size", str(caught.exception))

    def test_the_swinging_action_fix_quotes_the_stated_step_rule(self):
        from bgen.llm.context import FACTS
        self.assertIn(f"N cells take about {FACTS['plan_start_steps']} + "
                      f"{FACTS['steps_per_cell']}*N/urgency steps",
                      causes.FLIGHT_CAUSES["swinging_action"].fix)

    def test_every_flight_pattern_has_its_own_cause(self):
        kinds = {"no_progress", "oscillation", "climb", "plan_failures", "stalled_action",
                 "idle_end", "swinging_action"}
        self.assertEqual(set(causes.FLIGHT_CAUSES), kinds)
        self.assertEqual(len({row.cause for row in causes.FLIGHT_CAUSES.values()}), len(kinds))


class TestEvidence(unittest.TestCase):
    def test_refusals_and_planner_failures_are_summed_by_text_and_urgency_spans_all_episodes(self):
        summaries = [{"rejections": {"Could not perform intent: Duplicate centroid": 3},
                      "planner_failures": {"Failed to create action intent: No viable path to target.": 4},
                      "urgency": [0.5, 0.9]},
                     {"rejections": {"Could not perform intent: Duplicate centroid": 2,
                                     "Could not perform intent: No commands": 1},
                      "urgency": [0.4, 0.6]}, {}]
        self.assertEqual(causes.evidence(summaries), {
            "rejections": {"Could not perform intent: Duplicate centroid": 5,
                           "Could not perform intent: No commands": 1},
            "planner_failures": {"Failed to create action intent: No viable path to target.": 4},
            "urgency": [0.4, 0.9]})

    def test_the_urgency_hint_is_given_only_when_the_recorded_urgency_is_low(self):
        self.assertEqual(causes.speed_hint({"urgency": [1.0, 1.0]}), "")
        self.assertEqual(causes.speed_hint({"urgency": None}), "")
        self.assertIn("urgency 0.3..0.3", causes.speed_hint({"urgency": [0.3, 0.3]}))


HEAD = "import voxelsim as vxs\n"
TAIL = ("\ndef collect(step_ctx):\n    return {}\n\n"
        "def finalize(ep_ctx):\n    return {'summary': 'MY-SUMMARY ' + ep_ctx['reason']}\n")

# (name, policy body, steps): each a failure a policy really had; the name is its expected cause.
FAILURES = [
    ("collisions_size", """
def act(t, agent, world, fw, env, helpers):
    below = world.collisions_py(agent.get_pos(), [0.3, 0.3, 2.5])
    return None
""", 50),
    ("urgency", """
def act(t, agent, world, fw, env, helpers):
    return helpers.intent(0.0, 0.0, [vxs.MoveDir.Up])
""", 50),
    ("duplicate_cell", """
def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.intent(0.9, 0.0, [vxs.MoveDir.Forward, vxs.MoveDir.Back])
    return None
""", 200),
    ("float_coordinate", """
def act(t, agent, world, fw, env, helpers):
    return helpers.plan_to(world, agent.get_coord_py(), [60.5, 60.0, -20.0], 0.9, 0.0)
""", 50),
    ("missing_global", """
STAGE = 0
def act(t, agent, world, fw, env, helpers):
    if STAGE == 0:
        STAGE = 1
    return None
""", 50),
    ("climb", """
def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    here = agent.get_coord_py()
    try:
        return helpers.plan_to(world, here, here, 1.0, 0.0, 1)
    except Exception:
        return helpers.intent(1.0, 0.0, [vxs.MoveDir.Up] * 4)
""", 1500),
    ("oscillation", """
LEG = 0
def act(t, agent, world, fw, env, helpers):
    global LEG
    if agent.get_action_py() is not None:
        return None
    LEG += 1
    moves = [vxs.MoveDir.Back] * 3 if LEG % 2 == 0 else [vxs.MoveDir.Forward] * 3
    return helpers.intent(1.0, 0.0, moves)
""", 1500),
]


def cause_line(name: str) -> str:
    row = causes.FLIGHT_CAUSES.get(name) or causes.cause_by_name(name)
    return f"Cause: {row.cause}."


class TestCritiquesNameTheRealCause(unittest.TestCase):
    """Real policies, real episodes: each failure gets its own cause and no other row's."""

    @classmethod
    def setUpClass(cls):
        cls.critiques, cls.aggregates = {}, {}
        cls.tmp = tempfile.TemporaryDirectory()
        for name, body, steps in FAILURES:
            code = HEAD + body + TAIL
            sink = ListSink()
            outcome = run_episode(code, VXS, EpisodeConfig(max_steps=steps, scenario="terrain"), 0, sink)
            summary = outcome.summary.to_dict()
            root = Path(cls.tmp.name) / name / "ep_0"
            root.mkdir(parents=True)
            (root / "summary.0.json").write_text(json.dumps(summary))
            (root / "steps.0.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sink.steps))
            agg, text = evaluator.evaluate_dir(root.parent, policy_code=code)
            cls.critiques[name], cls.aggregates[name] = text, agg

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_each_failure_gets_its_own_cause_line_and_no_other_rows(self):
        names = [name for name, _, _ in FAILURES]
        for name in names:
            with self.subTest(failure=name):
                text = self.critiques[name]
                self.assertIn(cause_line(name), text)
                for other in names:
                    if other != name:
                        self.assertNotIn(cause_line(other), text, f"{name} got {other}'s cause")

    def test_no_critique_tells_a_full_urgency_policy_to_raise_its_urgency(self):
        for name, text in self.critiques.items():
            with self.subTest(failure=name):
                self.assertNotIn("use urgency 0.7-1.0", text)
                self.assertNotIn("a higher urgency", text)

    def test_the_duplicate_cell_refusal_is_counted_by_reason_and_named(self):
        agg, text = self.aggregates["duplicate_cell"], self.critiques["duplicate_cell"]
        self.assertEqual(list(agg["rejections"]), ["Could not perform intent: Duplicate centroid"])
        self.assertGreater(agg["rejections"]["Could not perform intent: Duplicate centroid"], 1)
        self.assertIn("were refused by the agent with \"Could not perform intent: Duplicate centroid\"", text)

    def test_the_climbing_loop_counts_its_planner_failures_by_message_with_steps(self):
        agg = self.aggregates["climb"]
        message = "Failed to create action intent: The parameters specified were invalid."
        self.assertEqual(list(agg["planner_failures"]), [message])
        kinds = {f["kind"] for f in agg["flight_findings"]}
        self.assertIn("climb", kinds)
        self.assertIn("climbed without bound: at step", self.critiques["climb"])

    def test_the_policys_own_summary_stands_next_to_bgens_findings(self):
        text = self.critiques["oscillation"]
        self.assertIn("Seed 0 failed (max_steps", text)
        self.assertIn("The policy's own summary: \"MY-SUMMARY max_steps\"\n   bgen found: ", text)
        self.assertIn("back and forth: the agent entered cell", text)


class TestCritiqueTableByHand(unittest.TestCase):
    def test_a_sandboxed_helper_counts_planner_failures_by_message(self):
        helpers = sandbox.Helpers(VXS)
        for _ in range(3):
            with self.assertRaises(Exception):
                helpers.plan_to(VXS.VoxelGrid(), [0, 0, -20], [0, 0, -20], 0.8, 0.0)
        self.assertEqual(helpers.planner_failures(),
                         {"Failed to create action intent: The parameters specified were invalid.": 3})

    def test_the_generic_advice_comes_only_when_no_evidence_names_a_cause(self):
        summary = {"seed": 0, "success": False, "reason": "max_steps", "steps": 5000,
                   "path_len_est": 40.0, "min_distance_to_target": 3.0,
                   "final_distance_to_target": 4.0, "policy_summary": {"summary": "gave up"},
                   "urgency": [1.0, 1.0]}
        agg = evaluator.aggregate([summary])
        bare = evaluator.critique(agg, [summary])
        self.assertIn("Plan straight to the target coordinate itself", bare)
        self.assertNotIn("urgency", bare.split("Problems", 1)[1].split("The policy's own episode")[0])
        climbed = flight_analysis.FlightFinding("climb", "climbed without bound: X", {})
        named = evaluator.critique(agg, [summary], flights={0: [climbed]})
        self.assertNotIn("Plan straight to the target coordinate itself", named)
        self.assertIn(cause_line("climb"), named)
        slow = dict(summary, urgency=[0.3, 0.4])
        self.assertIn("The intents used urgency 0.3..0.4",
                      evaluator.critique(evaluator.aggregate([slow]), [slow]))

    def test_flight_findings_without_a_policy_summary_still_show(self):
        finding = flight_analysis.FlightFinding("climb", "climbed without bound: X", {})
        summaries = [{"seed": 4, "success": False, "reason": "max_steps", "policy_summary": {}}]
        [paragraph] = evaluator.flight_findings(summaries, {4: [finding]})
        self.assertTrue(paragraph.startswith("Seed 4 failed (max_steps).\n   bgen found: climbed without bound: X."))


if __name__ == "__main__":
    unittest.main()
