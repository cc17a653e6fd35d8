"""Specification of the flight analysis: stuck and looping flights from step records."""

from __future__ import annotations

import math
import unittest

from bgen.orchestrator import flight_analysis as fa

TARGET = [60.0, 60.0, -20.0]
START = [50, 50, -20]


def records(positions, delta=0.01):
    """Step records as the runner writes them, for a list of (x, y, z) positions."""
    out = []
    for step, pos in enumerate(positions):
        pos = [float(v) for v in pos]
        out.append({"step": step, "t": step * delta, "agent_pos": pos,
                    "agent_coord": [int(round(v)) for v in pos],
                    "distance_to_target": math.dist(pos, TARGET)})
    return out


def line(a, b, n):
    return [[a[i] + (b[i] - a[i]) * k / max(1, n - 1) for i in range(3)] for k in range(n)]


class TestFlightAnalysis(unittest.TestCase):
    def test_a_straight_flight_to_the_target_has_no_findings(self):
        steps = records(line(START, [59.5, 59.5, -20], 800))
        self.assertEqual(fa.analyse(steps, START, TARGET), [])

    def test_hovering_after_an_approach_is_no_progress_with_the_step_it_stalled(self):
        steps = records(line(START, [55, 55, -20], 300) + [[55, 55, -20]] * 2500)
        [finding] = fa.analyse(steps, START, TARGET)
        self.assertEqual(finding.kind, "no_progress")
        self.assertEqual(finding.evidence["to_step"], 2799)
        self.assertLess(finding.evidence["from_step"], 300)
        self.assertIn("it hardly moved", finding.text)

    def test_hovering_under_an_action_that_never_ends_is_a_stalled_action_not_no_progress(self):
        steps = records(line(START, [55, 55, -20], 300) + [[55.0, 55.0, -20.0]] * 2500)
        for index, record in enumerate(steps):
            record["command_len"] = 22 if index < 100 else 60
        [finding] = fa.analyse(steps, START, TARGET)
        self.assertEqual(finding.kind, "stalled_action")
        self.assertEqual((finding.evidence["to_step"], finding.evidence["command_len"]), (2799, 60))
        self.assertIn(finding.evidence["from_step"], range(290, 300))   # within 0.1 m from there
        self.assertIn("under an action of 60 moves that never ended", finding.text)

    def test_hovering_with_no_action_or_briefly_is_no_stalled_action(self):
        for length, still in ((0, 2500), (60, 300)):
            with self.subTest(command_len=length, still_steps=still):
                steps = records(line(START, [55, 55, -20], 300) + [[55.0, 55.0, -20.0]] * still)
                for record in steps:
                    record["command_len"] = length
                self.assertIsNone(fa.stalled_action(steps))

    def test_ending_with_no_action_is_an_idle_end_not_no_progress(self):
        steps = records(line(START, [58.6, 59.8, -20], 900) + [[58.6, 59.8, -20.0]] * 2000)
        for index, record in enumerate(steps):
            record["command_len"] = 30 if index < 900 else 0
        [finding] = fa.analyse(steps, START, TARGET)
        self.assertEqual(finding.kind, "idle_end")
        self.assertEqual((finding.evidence["from_step"], finding.evidence["to_step"]), (900, 2899))
        self.assertEqual(finding.text, "no action was set for the last 20 s (from step 900 to step "
                                       "2899): the drone stayed at [58.6, 59.8, -20.0] and the "
                                       "policy planned nothing more")
        never = records([START] * 800)
        for record in never:
            record["command_len"] = 0
        self.assertIn("(from the start to step 799)", fa.idle_end(never).text)
        for record in steps[-400:]:
            record["command_len"] = 0 if record is not steps[-1] else 5
        self.assertIsNone(fa.idle_end(steps))          # an action at the end
        self.assertIsNone(fa.idle_end(steps[:1200]))   # idle for 3 s only

    def test_an_idle_end_is_not_blamed_when_only_an_invariant_was_broken(self):
        steps = records(line(START, [58.6, 59.8, -20], 900) + [[58.6, 59.8, -20.0]] * 2000)
        for index, record in enumerate(steps):
            record["command_len"] = 30 if index < 900 else 0
        broken = {"success": False, "start": START, "target": TARGET, "checks": [
            {"kind": "standoff", "passed": False}, {"kind": "end_near", "passed": True}]}
        self.assertEqual(fa.analyse_episode(broken, steps), [])
        short = {**broken, "checks": [{"kind": "standoff", "passed": True},
                                      {"kind": "end_near", "passed": False}]}
        self.assertEqual([f.kind for f in fa.analyse_episode(short, steps)], ["idle_end"])

    def test_a_short_stall_is_not_reported(self):
        steps = records(line(START, [55, 55, -20], 300) + [[55, 55, -20]] * 1500)
        self.assertEqual(fa.analyse(steps, START, TARGET), [])

    def test_shuttling_between_two_cells_is_oscillation_with_the_cells(self):
        a, b = [50, 50, -20], [53, 50, -20]
        path = []
        for _ in range(8):
            path += line(a, b, 100) + line(b, a, 100)
        steps = records(path)
        kinds = {f.kind: f for f in fa.analyse(steps, START, TARGET)}
        self.assertIn("oscillation", kinds)
        evidence = kinds["oscillation"].evidence
        self.assertGreaterEqual(evidence["entries"], fa.OSCILLATION_VISITS)
        self.assertLessEqual(evidence["distinct_cells"], 4)

    def test_the_same_shuttle_under_one_unreplaced_action_is_a_swinging_action(self):
        a, b = [50, 50, -20], [53, 50, -20]
        path = []
        for _ in range(8):
            path += line(a, b, 100) + line(b, a, 100)
        steps = records(path)
        for record in steps:
            record["command_len"] = 17
        steps[0]["commands"] = [{"mode": "Replace", "urgency": 0.9, "yaw": 0.0, "moves": [1] * 17}]
        found = {f.kind: f for f in fa.analyse(steps, START, TARGET)}
        self.assertNotIn("oscillation", found)
        swing = found["swinging_action"]
        self.assertEqual(swing.evidence["command_len"], 17)
        self.assertIn("under one action of 17 moves that the policy never replaced", swing.text)
        steps[900]["commands"] = steps[0]["commands"]       # a new action given meanwhile
        self.assertIn("oscillation", {f.kind for f in fa.analyse(steps, START, TARGET)})

    def test_climbing_far_above_start_and_target_is_a_climb_with_the_highest_point(self):
        steps = records(line(START, [50, 50, -60], 1500))
        found = {f.kind: f for f in fa.analyse(steps, START, TARGET)}
        self.assertEqual(found["climb"].evidence["above_m"], 40.0)
        self.assertIn("still at its highest", found["climb"].text)

    def test_a_climb_within_the_limit_is_not_reported(self):
        steps = records(line(START, [59.5, 59.5, -30], 800))
        self.assertNotIn("climb", [f.kind for f in fa.analyse(steps, START, TARGET)])

    def test_repeated_plan_failures_come_with_their_steps_and_positions(self):
        steps = records(line(START, [52, 50, -20], 300))
        summary = {"planner_failures": {"Failed to create action intent: No viable path to target.": 12},
                   "planner_failure_steps": [3, 40, 299]}
        finding = fa.plan_failures(summary, steps)
        self.assertEqual(finding.evidence["count"], 12)
        self.assertIn("step 3 at [50.0, 50.0, -20.0]; step 299 at [52.0, 50.0, -20.0]", finding.text)
        summary["planner_failures"] = {"x": fa.REPEATED_PLAN_FAILURES - 1}
        self.assertIsNone(fa.plan_failures(summary, steps))

    def test_a_successful_episode_is_not_analysed(self):
        steps = records([[50, 50, -20]] * 3000)
        self.assertEqual(fa.analyse_episode({"success": True, "start": START, "target": TARGET}, steps), [])
        self.assertEqual([f.kind for f in fa.analyse_episode(
            {"success": False, "start": START, "target": TARGET}, steps)], ["no_progress"])


if __name__ == "__main__":
    unittest.main()
