"""Specification of the evaluator: aggregates, ranking and the critique the LLM reads."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bgen.orchestrator.evaluator import (
    CRITIQUE_MAX_CHARS, aggregate, cap, critique, diagnose, evaluate_dir, flight_findings,
    involves_target, load_failure_aggregate, rank_key, sample_trace, write_evaluation,
)
from bgen.orchestrator.flight_analysis import FlightFinding

POLICY = """import math
import voxelsim as vxs
STATE = 0

def act(t, agent, world, fw, env, helpers):
    x = 50 + 3 * math.cos(t)
    return helpers.plan_to(world, agent.get_coord_py(), [x, 50, -20], 0.8, 0.0)
"""


def summary(seed, *, success=False, steps=100, collisions=0, path=10.0, reason=None, error=None,
            min_dist=None, final_dist=None, text=None):
    return {
        "success": success, "steps": steps, "collisions_total": collisions, "avg_command_len": 1.0,
        "path_len_est": path, "coverage": None, "time_to_goal": None, "reasons": None,
        "policy_summary": {"summary": text} if text else {}, "seed": seed,
        "reason": reason or ("success" if success else "max_steps"), "error": error,
        "sim_time_s": steps * 0.01, "wall_time_s": 0.5, "final_distance_to_target": final_dist,
        "min_distance_to_target": min_dist, "rejected_intents": 0,
    }


FLOAT_ERROR = {"phase": "act", "type": "TypeError", "lineno": 7,
               "message": "argument 'dst': 'float' object cannot be interpreted as an integer"}


class TestAggregate(unittest.TestCase):
    def test_success_rate_steps_collisions_reasons_and_times(self):
        agg = aggregate([summary(0, success=True, steps=100, collisions=2),
                         summary(1, success=True, steps=300, collisions=0),
                         summary(2, steps=500, collisions=4, min_dist=3.0)])
        self.assertEqual((agg["episodes"], agg["successes"], agg["success_rate"]), (3, 2, 0.6667))
        self.assertEqual(agg["steps"], {"mean": 300.0, "median": 300.0, "min": 100.0, "max": 500.0})
        self.assertEqual(agg["steps_to_success"]["mean"], 200.0)
        self.assertEqual(agg["collisions_total"]["mean"], 2.0)
        self.assertEqual(agg["reasons"], {"max_steps": 1, "success": 2})
        self.assertEqual(agg["sim_time_s"], 9.0)
        self.assertEqual(agg["wall_time_s"], 1.5)
        self.assertEqual(agg["min_distance_to_target"]["min"], 3.0)
        json.dumps(agg)

    def test_identical_errors_are_grouped_with_their_seeds(self):
        agg = aggregate([summary(s, reason="policy_error", error=FLOAT_ERROR, steps=0) for s in (3, 4)])
        self.assertEqual(len(agg["errors"]), 1)
        self.assertEqual((agg["errors"][0]["count"], agg["errors"][0]["seeds"]), (2, [3, 4]))
        self.assertEqual(agg["error_rate"], 1.0)

    def test_no_episodes_gives_zero_success_and_empty_stats(self):
        agg = aggregate([])
        self.assertEqual((agg["episodes"], agg["success_rate"], agg["steps"]["mean"]), (0, 0.0, None))


class TestRanking(unittest.TestCase):
    def test_success_rate_first_then_collisions_then_steps(self):
        a = aggregate([summary(0, success=True, steps=900, collisions=9)])
        b = aggregate([summary(0, success=False, steps=10)])
        c = aggregate([summary(0, success=True, steps=900, collisions=1)])
        d = aggregate([summary(0, success=True, steps=100, collisions=1)])
        self.assertGreater(rank_key(a), rank_key(b))
        self.assertGreater(rank_key(c), rank_key(a))
        self.assertGreater(rank_key(d), rank_key(c))

    def test_a_policy_that_ran_beats_one_that_did_not_load_and_a_crash_loses_to_a_clean_miss(self):
        loaded = aggregate([summary(0, steps=5000, collisions=30)])
        crashed = aggregate([summary(0, steps=1, reason="policy_error", error=FLOAT_ERROR)])
        not_loaded = load_failure_aggregate("SyntaxError: invalid syntax", 3)
        self.assertGreater(rank_key(crashed), rank_key(not_loaded))
        self.assertGreater(rank_key(loaded), rank_key(crashed))


class TestDiagnosis(unittest.TestCase):
    def test_known_errors_name_their_cause_and_fix(self):
        table = [
            ("TypeError: 'float' object cannot be interpreted as an integer", "int(round("),
            ("UnboundLocalError: cannot access local variable 'STAGE' where it is not associated with a value", "global NAME"),
            ("UnboundLocalError: local variable 'STAGE' referenced before assignment", "global NAME"),
            ("PanicException: assertion failed: urgency > 0.0", "urgency in 0.3..1.0"),
            ("Exception: Failed to create action intent: No viable path to target.", "try/except Exception"),
            ("Exception: Failed to create action intent: Path to the target is blocked.", "smaller padding"),
            ("TypeError: act() must return an ActionIntent, (ActionIntent, str) or None, actual: int", "act() returns an ActionIntent"),
            ("TypeError: ActionIntent.__init__() takes 4 positional arguments but 5 were given", "three arguments"),
            ("NameError: name 'WAYPOINTS' is not defined", "define the name"),
            ("AttributeError: 'Agent' object has no attribute 'get_position'", "cheatsheet"),
            ("ZeroDivisionError: division by zero", "guard divisions"),
            ("IndexError: list index out of range", "len(...)"),
        ]
        for text, fix_part in table:
            with self.subTest(text=text):
                found = diagnose(text)
                self.assertIsNotNone(found)
                self.assertIn(fix_part, found[1])

    def test_an_unknown_error_has_no_diagnosis(self):
        self.assertIsNone(diagnose("WeirdError: something odd"))


class TestCritique(unittest.TestCase):
    def test_a_policy_error_is_named_with_its_line_the_code_and_the_fix(self):
        summaries = [summary(s, reason="policy_error", error=FLOAT_ERROR, steps=0, path=0.0) for s in (0, 1)]
        text = critique(aggregate(summaries), summaries, policy_code=POLICY)
        self.assertIn("act() raised TypeError at line 7 in 2/2 episodes (seeds 0, 1): argument 'dst': "
                      "'float' object cannot be interpreted as an integer", text)
        self.assertIn("line 7: return helpers.plan_to(world, agent.get_coord_py(), [x, 50, -20], 0.8, 0.0)", text)
        self.assertIn("Fix: wrap every coordinate in int(round(...))", text)

    def test_a_timeout_says_act_was_too_slow_or_looped(self):
        summaries = [summary(0, reason="timeout", error={"phase": "act", "type": "Timeout", "lineno": 3,
                                                         "message": "act() took longer than 1 s"})]
        text = critique(aggregate(summaries), summaries, policy_code=POLICY)
        self.assertIn("1/1 episodes timed out (act() took longer than 1 s; line 3: STATE = 0)", text)
        self.assertIn("looped forever", text)

    def test_records_over_their_cap_or_too_heavy_to_replay_are_named_as_the_policys_doing(self):
        capped = dict(summary(0, reason="crashed"),
                      reasons="the worker sent more than 24969216 bytes for 2000 steps")
        heavy = dict(summary(1, reason="tampered"), reasons=(
            "the replay passed its budget at step 1012 of 2000 (34.2 s for 2000 steps): no "
            "episode that flew these commands records them"))
        forged = dict(summary(2, reason="tampered"), reasons=(
            "step 4: the reported position (1, 2, 3) differs from the replay"))
        died = dict(summary(3, reason="crashed"), reasons="the worker exited with signal 11")
        summaries = [capped, heavy, forged, died]
        text = critique(aggregate(summaries), summaries)
        self.assertIn("1/4 episodes were stopped for recording too much (the worker sent more "
                      "than 24969216 bytes for 2000 steps)", text)
        self.assertIn("1/4 episodes' commands took the trusted replay longer than their own "
                      "episode allows (the replay passed its budget at step 1012", text)
        self.assertIn("1/4 episodes were tampered: the reported flight did not match the replay "
                      "of the agent's commands (step 4: the reported position", text)
        self.assertIn("1/4 episodes ended with crashed: the worker process died (the worker "
                      "exited with signal 11); this is usually not the policy's fault", text)
        self.assertEqual(text.count("usually not the policy's fault"), 1)

    def test_an_agent_that_never_moved_is_called_stuck(self):
        summaries = [summary(0, steps=5000, path=0.0, min_dist=14.0)]
        text = critique(aggregate(summaries), summaries)
        self.assertIn("1/1 episodes never moved (flew < 1 m in 5000 steps)", text)
        self.assertIn("get_action_py() is None", text)

    def test_never_reaching_the_target_reports_the_closest_approach(self):
        summaries = [summary(0, steps=5000, path=80.0, min_dist=6.25, final_dist=9.0),
                     summary(1, steps=5000, path=80.0, min_dist=2.5, final_dist=4.0)]
        text = critique(aggregate(summaries), summaries)
        self.assertIn("2/2 episodes ran out of steps without reaching the target (success needs < 1.0 m). "
                      "Closest approach 2.5 m (seed 1), final distance 4.0 m.", text)

    def test_a_task_that_never_names_the_target_hears_nothing_of_it(self):
        orbit_home = {"checks": [{"kind": "orbit", "centre": "turbine_0", "min_radius": 6,
                                  "max_radius": 20}, {"kind": "end_near", "point": "start"}]}
        self.assertFalse(involves_target(orbit_home))
        for spec in (None, {"checks": [{"kind": "reach", "point": "target"}]},
                     {"checks": [{"kind": "visit", "points": [[1, 2, 3],
                                                              {"from": "target", "offset": [0, 0, -3]}]}]}):
            with self.subTest(spec=spec):
                self.assertTrue(involves_target(spec))
        summaries = [summary(0, steps=5000, path=80.0, min_dist=9.1)]
        flights = {0: [FlightFinding("no_progress", "no progress toward the target for the last 40 s"),
                       FlightFinding("oscillation", "back and forth: the agent entered cell [1, 2, 3]")]}
        about = "\n".join(flight_findings(summaries, flights))
        self.assertIn("closest 9.1 m to the target", about)
        self.assertIn("no progress toward the target", about)
        other = "\n".join(flight_findings(summaries, flights, about_target=False))
        self.assertNotIn("target", other)
        self.assertIn("back and forth", other)

    def test_a_stalled_action_is_named_with_its_cause_and_the_replace_fix(self):
        summaries = [summary(0, steps=5000, path=80.0, min_dist=9.1)]
        flights = {0: [FlightFinding("stalled_action", "the action stalled: from step 7 to step "
                                     "4999 (50 s) the drone hovered within 0.1 m of [1, 2, 3] "
                                     "under an action of 60 moves that never ended")]}
        text = "\n".join(flight_findings(summaries, flights, about_target=False))
        self.assertIn("Cause: the drone settled more than 1 m off the action's path", text)
        self.assertIn('return it with "Replace"', text)

    def test_a_collision_spike_names_the_worst_seed(self):
        summaries = [summary(0, success=True, collisions=0), summary(1, success=True, collisions=120)]
        text = critique(aggregate(summaries), summaries)
        self.assertIn("Collisions: 60 contacts per episode on average (max 120); seed 1 alone had 120.", text)

    def test_full_success_says_keep_the_approach(self):
        summaries = [summary(0, success=True, steps=400)]
        text = critique(aggregate(summaries), summaries)
        self.assertIn("All 1 episodes succeeded (mean 400.0 steps, 0.0 collisions).", text)

    def test_a_load_failure_critique_quotes_the_error_and_line(self):
        agg = load_failure_aggregate("UnboundLocalError: cannot access local variable 'STATE'", 3)
        text = critique(agg, [], policy_code=POLICY)
        self.assertIn("The policy did not load, so no episode ran.", text)
        self.assertIn("line 3: STATE = 0", text)
        self.assertIn("global NAME", text)

    def test_the_critique_never_exceeds_its_cap_and_marks_the_cut(self):
        long_error = dict(FLOAT_ERROR, message="x" * 300)
        summaries = [summary(s, reason="policy_error", error=dict(long_error, lineno=s + 1), steps=0)
                     for s in range(60)]
        text = critique(aggregate(summaries), summaries, policy_code=POLICY, max_chars=2000)
        self.assertLessEqual(len(text), 2000)
        self.assertRegex(text, r"\[critique truncated: \d+ more characters\]$")

    def test_a_failed_episode_trace_is_sampled_start_middle_end(self):
        steps = [{"step": i, "agent_coord": [50, 50, -20], "distance_to_target": 14.0 - i * 0.01,
                  "collisions_count": 0, "command_len": 0, "policy_log": {"stage": "go"}} for i in range(500)]
        summaries = [summary(0, steps=500, path=0.0)]
        text = critique(aggregate(summaries), summaries, trace={"steps": steps, "traceback": "Traceback..."},
                        trace_seed=0)
        self.assertIn("Trace of failed episode (seed 0)", text)
        self.assertIn("policy_log: what collect() returned, {} once an episode's notes passed "
                      "1,000,000 characters", text)
        self.assertIn('"step":0,', text)
        self.assertIn('"step":499,', text)
        self.assertNotIn('"step":100,', text)
        self.assertLessEqual(len(text), CRITIQUE_MAX_CHARS)

    def test_the_runners_trace_shape_gives_last_steps_traceback_and_policy_output(self):
        trace = {"seed": 2, "last_steps": [{"step": 41, "agent_coord": [1, 2, 3]}],
                 "error": {"traceback": "Traceback (most recent call last):\n  line 5, in act"},
                 "policy_output": "planning to [60, 60, -20]"}
        text = sample_trace(trace)
        self.assertIn('{"step":41,"agent_coord":[1,2,3]}', text)
        self.assertIn("traceback:\nTraceback (most recent call last):\n  line 5, in act", text)
        self.assertIn("policy output:\nplanning to [60, 60, -20]", text)

    def test_cap_leaves_short_text_alone(self):
        self.assertEqual(cap("short", 100), "short")
        self.assertEqual(len(cap("y" * 500, 100)), 100)

    def test_trace_sampling_accepts_a_plain_list(self):
        self.assertEqual(sample_trace([{"step": 1, "origin": [1, 2, 3], "junk": "x"}]),
                         '{"step":1,"origin":[1,2,3]}')


class TestIterationDirectory(unittest.TestCase):
    def test_evaluate_dir_reads_summaries_and_the_first_failed_trace_and_writes_both_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for s in (summary(0, success=True), summary(1, steps=5000, path=0.0)):
                ep = root / f"ep_{s['seed']}"
                ep.mkdir()
                (ep / f"summary.{s['seed']}.json").write_text(json.dumps(s))
            (root / "ep_1" / "trace.1.json").write_text(json.dumps({"steps": [{"step": 7}]}))
            agg, text = evaluate_dir(root)
            write_evaluation(root, agg, text)
            self.assertEqual(agg["seeds"], [0, 1])
            self.assertIn("Trace of failed episode (seed 1)", text)
            self.assertEqual(json.loads((root / "aggregate.json").read_text())["episodes"], 2)
            self.assertEqual((root / "critique.txt").read_text(), text + "\n")


# --- task specs -----------------------------------------------------------------------------

PATROL = {"checks": [{"kind": "visit", "points": [[56, 50, -24], [56, 56, -24]], "radius": 1.5,
                      "ordered": True, "laps": 1},
                     {"kind": "end_near", "point": "start", "radius": 1.5}],
          "objective": {"minimize": "time"}}


def graded(seed, visit, end, *, steps=3000, collisions=0):
    """A summary with the patrol's two check results: (passed, score, account) each."""
    checks = [{"kind": "visit", "passed": visit[0], "score": visit[1], "account": visit[2]},
              {"kind": "end_near", "passed": end[0], "score": end[1], "account": end[2]}]
    ok = visit[0] and end[0]
    return dict(summary(seed, success=ok, steps=steps, collisions=collisions), checks=checks,
                score=round((visit[1] + end[1]) / 2, 4))


MISSED = (False, 0.5, "visit: 1/2 points; missed [56, 56, -24] (point 1) by 3.2 m")
VISITED = (True, 1.0, "visit: 2/2 points in order")
HOME = (True, 1.0, "end_near: ended 0.4 m from start [50, 50, -20]")
AWAY = (False, 0.1, "end_near: ended 14.2 m from start [50, 50, -20] (needs < 1.5 m)")


class TestTaskSpecScores(unittest.TestCase):
    def test_aggregates_report_mean_score_and_per_check_pass_rate_and_score(self):
        agg = aggregate([graded(0, VISITED, HOME, steps=2000), graded(1, MISSED, HOME),
                         graded(2, MISSED, AWAY)], "time")
        self.assertEqual(agg["success_rate"], 0.3333)
        self.assertEqual(agg["mean_score"], round((1.0 + 0.75 + 0.3) / 3, 4))
        self.assertEqual(agg["checks"], [
            {"index": 0, "kind": "visit", "episodes": 3, "passed": 1, "pass_rate": 0.3333,
             "mean_score": 0.6667},
            {"index": 1, "kind": "end_near", "episodes": 3, "passed": 2, "pass_rate": 0.6667,
             "mean_score": 0.7}])
        self.assertEqual(agg["objective"], {"minimize": "time",
                                            "value": round((20 + 30 + 30) / 3, 4)})

    def test_an_episode_without_checks_counts_as_failing_them_with_score_zero(self):
        crashed = summary(1, reason="crashed")
        agg = aggregate([graded(0, VISITED, HOME), crashed])
        self.assertEqual(agg["mean_score"], 0.5)
        self.assertEqual([c["pass_rate"] for c in agg["checks"]], [0.5, 0.5])

    def test_ranking_is_success_then_mean_score_then_objective_then_collisions_and_steps(self):
        completed_patrol = aggregate([graded(0, MISSED, HOME, collisions=3)])
        partial = aggregate([graded(0, (False, 0.2, "visit: 0/2"), HOME)])
        success_slow = aggregate([graded(0, VISITED, HOME, steps=4000)], "time")
        success_fast = aggregate([graded(0, VISITED, HOME, steps=2000, collisions=5)], "time")
        self.assertGreater(rank_key(completed_patrol), rank_key(partial))   # score beats collisions
        self.assertGreater(rank_key(success_slow), rank_key(completed_patrol))
        self.assertGreater(rank_key(success_fast), rank_key(success_slow))  # objective before collisions

    def test_the_critique_leads_with_each_failing_checks_account_per_failed_episode(self):
        summaries = [graded(0, VISITED, HOME), graded(1, MISSED, HOME), graded(2, MISSED, AWAY)]
        agg = aggregate(summaries, "time")
        text = critique(agg, summaries, task_spec=PATROL)
        lines = text.splitlines()
        self.assertEqual(lines[0], "Result: 1/3 episodes met every check of the task (success "
                                   "rate 0.33, mean score 0.68). Episode ends: max_steps 2, "
                                   "success 1.")
        self.assertEqual(lines[1:5], [
            "What the failed episodes missed (checked by bgen from the flight):",
            "- seed 1: visit: 1/2 points; missed [56, 56, -24] (point 1) by 3.2 m",
            "- seed 2: visit: 1/2 points; missed [56, 56, -24] (point 1) by 3.2 m",
            "- seed 2: end_near: ended 14.2 m from start [50, 50, -20] (needs < 1.5 m)"])
        self.assertEqual(lines[5], "Checks: 0. visit passed 1/3 (mean score 0.67); 1. end_near "
                                   "passed 2/3 (mean score 0.70).")
        self.assertEqual(lines[6], "Objective: minimize time; mean 30 s over these episodes.")
        self.assertNotIn("Plan straight to the target", text)
        self.assertIn("2/3 episodes ran out of steps before every check held", text)

    def test_without_a_spec_the_critique_speaks_of_the_target_as_before(self):
        summaries = [summary(0, min_dist=3.0, final_dist=4.0)]
        text = critique(aggregate(summaries), summaries)
        self.assertTrue(text.startswith("Result: 0/1 episodes reached the target"), text)
        self.assertIn("Plan straight to the target", text)

    def test_failing_accounts_are_bounded(self):
        summaries = [graded(s, MISSED, AWAY) for s in range(20)]
        text = critique(aggregate(summaries), summaries, task_spec=PATROL)
        self.assertIn("- ... and 24 more failing checks", text)


class TestScoreText(unittest.TestCase):
    def test_a_failed_check_never_reads_as_a_full_mean_score(self):
        from bgen.runner.taskspec import score_text
        self.assertEqual(score_text(0.9988, False), "0.999")
        self.assertEqual(score_text(0.99999, False), "0.999")
        self.assertEqual(score_text(1.0, True), "1.00")
        self.assertEqual(score_text(0.675, False), "0.68")


if __name__ == "__main__":
    unittest.main()
