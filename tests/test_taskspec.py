"""Specification of task specs (bgen/runner/taskspec.py): parsing, landmarks, every check kind
on synthetic flights, the tracker and the whole-flight grade agreeing, clearance over a world."""

from __future__ import annotations

import json
import math
import unittest

import numpy as np

from bgen.errors import ConfigError
from bgen.runner import taskspec
from bgen.runner.taskspec import (FlightTracker, HeightMap, TaskSpecError, episode_landmarks,
                                  grade_flight, parse_task_spec, resolve)
from bgen.sim import load_backend, scenarios

START, TARGET = (0.0, 0.0, -20.0), (10.0, 0.0, -20.0)
MARKS = episode_landmarks(START, TARGET, {"tower": (20.0, 0.0, -30.0)})


def line(a, b, n):
    """n positions from a to b inclusive."""
    return np.linspace(np.asarray(a, float), np.asarray(b, float), n)


def circle(centre, radius, turns, n, z=-20.0):
    angles = np.linspace(0.0, 2 * math.pi * turns, n)
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles),
                     np.full(n, z)], axis=1)


def grade(checks, positions, collisions=None, world=None, delta=0.01, objective=None):
    doc = {"checks": checks}
    if objective:
        doc["objective"] = {"minimize": objective}
    resolved = resolve(parse_task_spec(doc), MARKS)
    totals = np.zeros(len(positions), int) if collisions is None else np.asarray(collisions)
    return grade_flight(resolved, positions, totals, world, delta)


class ParsingTests(unittest.TestCase):
    def test_numbers_beyond_any_world_are_refused_and_budgets_are_capped(self):
        for doc, message in (
                ({"checks": [{"kind": "reach", "point": [1e308, 0, 0]}]},
                 "checks[0].point: expects [x, y, z] (three numbers within ±100,000), actual: [1e+308, 0, 0]"),
                ({"checks": [{"kind": "orbit", "centre": "start", "min_radius": 1, "max_radius": 2,
                              "degrees": 1e308}]},
                 "checks[0].degrees: expects a number within ±100,000, actual: 1e+308")):
            with self.subTest(message=message):
                with self.assertRaises(TaskSpecError) as caught:
                    parse_task_spec(doc)
                self.assertEqual(caught.exception.message, message)
        self.assertEqual(taskspec.step_budget(1e12, 0.01), taskspec.MAX_STEP_BUDGET)
        self.assertEqual(taskspec.step_budget(float("inf"), 0.01), taskspec.MAX_STEP_BUDGET)

    def test_no_spec_is_reach_the_target_within_one_metre(self):
        self.assertEqual(parse_task_spec(None).to_dict(),
                         {"checks": [{"kind": "reach", "point": "target", "radius": 1}]})

    def test_defaults_are_filled_in_and_a_spec_round_trips_through_json(self):
        doc = {"goal": "patrol", "checks": [
            {"kind": "visit", "points": ["start", [1, 2, -3], {"from": "target", "offset": [0, 0, -2]}]},
            {"kind": "orbit", "centre": "tower", "min_radius": 4, "max_radius": 8},
            {"kind": "end_near", "point": "start"}, {"kind": "clearance", "min_m": 5},
            {"kind": "altitude", "max_z": -5}, {"kind": "collisions"},
            {"kind": "time_limit", "seconds": 60}],
            "objective": {"minimize": "time"}}
        spec = parse_task_spec(json.dumps(doc))
        out = spec.to_dict()
        self.assertEqual(out["checks"][0], {"kind": "visit", "points": doc["checks"][0]["points"],
                                            "radius": 1.5, "ordered": True, "laps": 1})
        self.assertEqual(out["checks"][1]["degrees"], 360)
        self.assertEqual(out["checks"][2]["radius"], 1.5)
        self.assertEqual(out["checks"][5], {"kind": "collisions", "max": 0})
        self.assertEqual(out["objective"], {"minimize": "time"})
        self.assertEqual(parse_task_spec(out), spec)
        self.assertEqual(spec.landmark_names(), {"start", "target", "tower"})

    def test_each_bad_field_is_one_error_naming_it(self):
        reach = {"kind": "reach", "point": "target"}
        cases = [
            ([1], "task_spec", 'task_spec: expects an object with \'checks\', actual: [1]'),
            ({"checks": []}, "checks", "checks: expects a list of 1..32 checks, actual: []"),
            ({"checks": [reach], "colour": 1}, "colour",
             "colour: expects no such field; a task spec has goal, checks, objective, actual: 1"),
            ({"checks": [reach, {"kind": "reach", "point": "target", "radius": -1}]},
             "checks[1].radius", "checks[1].radius: expects a positive number, actual: -1"),
            ({"checks": [{"kind": "hover"}]}, "checks[0].kind",
             "checks[0].kind: expects one of reach, visit, orbit, dwell, end_near, clearance, standoff, altitude, "
             'collisions, time_limit, actual: "hover"'),
            ({"checks": [{"kind": "reach"}]}, "checks[0].point",
             "checks[0].point: required for a reach check"),
            ({"checks": [{"kind": "reach", "point": [1, 2]}]}, "checks[0].point",
             "checks[0].point: expects [x, y, z] (three numbers within ±100,000), actual: [1, 2]"),
            ({"checks": [{"kind": "reach", "point": {"offset": [1, 2, 3]}}]},
             "checks[0].point.from",
             "checks[0].point.from: expects a landmark name such as 'start' or 'target', "
             "actual: nothing"),
            ({"checks": [{"kind": "visit", "points": ["start", True]}]}, "checks[0].points[1]",
             "checks[0].points[1]: expects a point: [x, y, z], a landmark name such as 'start' "
             'or \'target\', or {"from": landmark, "offset": [dx, dy, dz]}, actual: true'),
            ({"checks": [{"kind": "visit", "points": ["start"], "laps": 0}]}, "checks[0].laps",
             "checks[0].laps: expects an integer in 1..100, actual: 0"),
            ({"checks": [{"kind": "visit", "points": ["start"], "ordered": "yes"}]},
             "checks[0].ordered", 'checks[0].ordered: expects true or false, actual: "yes"'),
            ({"checks": [{"kind": "orbit", "centre": "start", "min_radius": 5, "max_radius": 4}]},
             "checks[0].max_radius", "checks[0].max_radius: expects a number above min_radius "
                                     "(5), actual: 4"),
            ({"checks": [{"kind": "altitude"}]}, "checks[0].min_z",
             "checks[0].min_z: an altitude check needs min_z, max_z or both (z down: min_z is "
             "the highest allowed)"),
            ({"checks": [{"kind": "altitude", "min_z": -10, "max_z": -20}]}, "checks[0].max_z",
             "checks[0].max_z: expects a number >= min_z (-10), actual: -20"),
            ({"checks": [{"kind": "collisions", "max": 1.5}]}, "checks[0].max",
             "checks[0].max: expects an integer in 0..1000000000, actual: 1.5"),
            ({"checks": [{"kind": "clearance", "min_m": 5, "radius": 1}]}, "checks[0].radius",
             "checks[0].radius: expects no such field; a clearance check has min_m, actual: 1"),
            ({"checks": [{"kind": "time_limit", "seconds": 5}]}, "checks",
             "checks: a time_limit needs other checks to time"),
            ({"checks": [reach], "objective": {"minimize": "fuel"}}, "objective.minimize",
             'objective.minimize: expects one of time, path_length, collisions, actual: "fuel"'),
            ("{not json", "task_spec", "task_spec: expects a JSON object, actual: invalid JSON "
                                       "(Expecting property name enclosed in double quotes: "
                                       "line 1 column 2 (char 1))"),
            ('{"checks": [{"kind": "collisions", "max": -' + "9" * 4301 + '}]}', "task_spec",
             "task_spec: expects a JSON object, actual: invalid JSON (a number with 4301 digits "
             "(at most 4300 are read))"),
        ]
        for doc, field, message in cases:
            with self.subTest(field=field, message=message):
                with self.assertRaises(TaskSpecError) as caught:
                    parse_task_spec(doc)
                self.assertEqual(caught.exception.field, field)
                self.assertEqual(caught.exception.message, message)

    def test_errors_are_bad_requests_and_a_prefix_names_the_outer_field(self):
        with self.assertRaises(ConfigError) as caught:
            parse_task_spec({"checks": [{"kind": "reach", "point": "x", "radius": 0}]},
                            prefix="task_spec")
        self.assertEqual(caught.exception.status, 400)
        self.assertEqual(caught.exception.field, "task_spec.checks[0].radius")

    def test_an_unknown_landmark_is_named_with_the_choices(self):
        spec = parse_task_spec({"checks": [{"kind": "visit", "points": ["start", "turbine_9"]}]})
        with self.assertRaises(TaskSpecError) as caught:
            taskspec.check_landmarks(spec, {"start", "target", "turbine_0"})
        self.assertEqual(caught.exception.field, "checks[0].points[1]")
        self.assertEqual(caught.exception.message, "checks[0].points[1]: unknown landmark "
                                                   "'turbine_9'; this scenario has start, target, turbine_0")
        with self.assertRaises(TaskSpecError):
            resolve(spec, {"start": (0, 0, 0)})


class LandmarkTests(unittest.TestCase):
    def test_points_resolve_per_episode_from_landmarks_and_offsets(self):
        spec = parse_task_spec({"checks": [{"kind": "visit", "points": [
            "start", {"from": "target", "offset": [0, 0, -2]}, [1, 2, 3]]}]})
        first = resolve(spec, episode_landmarks((0, 0, -20), (10, 0, -20)))
        lifted = resolve(spec, episode_landmarks((0, 0, -20), (10, 0, -27)))
        np.testing.assert_array_equal(first.checks[0].points["points"],
                                      [[0, 0, -20], [10, 0, -22], [1, 2, 3]])
        np.testing.assert_array_equal(lifted.checks[0].points["points"][1], [10, 0, -29])

    def test_the_wind_farm_names_its_turbines_and_the_defect(self):
        marks = scenarios.scenario_landmarks("wind_farm")
        self.assertEqual(marks["turbine_0"], (30.0, 30.0, -66.0))
        self.assertEqual(marks["turbine_1"], (120.0, 120.0, -66.0))
        self.assertEqual(marks["turbine_2"], (210.0, 210.0, -66.0))
        self.assertEqual(marks["defect"], (122.0, 120.0, -66.0))
        self.assertEqual(scenarios.scenario_landmarks("terrain"), {})


class CheckKindTests(unittest.TestCase):
    """Each kind on a flight that satisfies it and one that does not."""

    def test_reach_passes_within_the_radius_and_says_how_close_it_came(self):
        good = grade([{"kind": "reach", "point": "target"}], line(START, TARGET, 200))
        self.assertTrue(good.success)
        self.assertEqual(good.end_step, int(np.argmax(np.linalg.norm(
            line(START, TARGET, 200) - TARGET, axis=1) < 1.0)))
        short = grade([{"kind": "reach", "point": "target"}], line(START, (6, 0, -20), 100))
        self.assertFalse(short.success)
        self.assertEqual(short.checks[0]["account"],
                         "reach: closest 4.0 m to target [10, 0, -20] (needs < 1 m)")
        self.assertAlmostEqual(short.checks[0]["score"], 0.25)
        self.assertEqual(short.end_step, 99)

    def test_visit_counts_points_in_order_and_names_the_one_missed(self):
        square = [[5, -5, -20], [5, 5, -20], [-5, 5, -20], [-5, -5, -20]]
        path = np.concatenate([line(a, b, 40) for a, b in zip([START] + square, square)])
        twice = np.concatenate([path, path[40:]])
        check = {"kind": "visit", "points": square, "laps": 2}
        self.assertTrue(grade([check], twice).success)
        once = grade([check], path)
        self.assertEqual(once.checks[0]["account"],
                         "visit: 4/8 points (2 laps of 4); missed [5, -5, -20] (point 0) by 10.0 m")
        self.assertEqual(once.checks[0]["score"], 0.5)
        backwards = grade([{"kind": "visit", "points": square}], path[::-1])
        self.assertFalse(backwards.success)
        unordered = grade([{"kind": "visit", "points": square, "ordered": False}], path[::-1])
        self.assertTrue(unordered.success)

    def test_visiting_a_point_again_needs_leaving_it_first(self):
        for ordered in (True, False):
            with self.subTest(ordered=ordered):
                check = [{"kind": "visit", "points": [[5, 0, -20]], "laps": 3, "ordered": ordered}]
                hover = grade(check, line((5, 0, -20), (5, 0, -20), 50))
                self.assertEqual(hover.checks[0]["account"],
                                 "visit: 1/3 points (3 laps of 1); missed [5, 0, -20] (point 0) "
                                 "by 0.0 m")
                away_and_back = np.concatenate([line((5, 0, -20), (9, 0, -20), 20),
                                                line((9, 0, -20), (5, 0, -20), 20)] * 3)
                self.assertTrue(grade(check, away_and_back).success)

    def test_orbit_needs_the_net_sweep_inside_the_band(self):
        check = {"kind": "orbit", "centre": "start", "min_radius": 4, "max_radius": 6}
        self.assertTrue(grade([check], circle(START, 5, 1.05, 400)).success)
        half = grade([check], circle(START, 5, 0.5, 200))
        self.assertEqual(half.checks[0]["account"],
                         "orbit: swept 180 deg of 360 around start [0, 0, -20] within 4-6 m")
        self.assertAlmostEqual(half.checks[0]["score"], 0.5, places=2)
        there_and_back = np.concatenate([circle(START, 5, 0.75, 300), circle(START, 5, 0.75, 300)[::-1]])
        self.assertFalse(grade([check], there_and_back).success)
        too_wide = grade([check], circle(START, 9, 1.2, 400))
        self.assertEqual(too_wide.checks[0]["score"], 0.0)

    def test_a_distance_next_to_the_radius_is_shown_with_two_decimals(self):
        near = grade([{"kind": "end_near", "point": "target", "radius": 1.5}],
                     line(START, (8.53, 0, -20), 50))
        self.assertEqual(near.checks[0]["account"], "end_near: ended 1.47 m from target [10, 0, -20]")
        miss = grade([{"kind": "reach", "point": "target", "radius": 1}], line(START, (8.98, 0, -20), 50))
        self.assertEqual(miss.checks[0]["account"],
                         "reach: closest 1.02 m to target [10, 0, -20] (needs < 1 m)")
        self.assertEqual(taskspec._metres(2.9999, 3.0), "2.9999")
        self.assertEqual(taskspec._metres(3.0, 3.0), "3.0")
        far = grade([{"kind": "end_near", "point": "target", "radius": 1.5}], line(START, (7, 0, -20), 50))
        self.assertEqual(far.checks[0]["account"],
                         "end_near: ended 3.0 m from target [10, 0, -20] (needs < 1.5 m)")

    def test_end_near_is_judged_where_the_flight_ends(self):
        out_and_back = np.concatenate([line(START, TARGET, 100), line(TARGET, START, 100)])
        checks = [{"kind": "reach", "point": "target"}, {"kind": "end_near", "point": "start"}]
        good = grade(checks, out_and_back)
        self.assertTrue(good.success)
        away = grade(checks, line(START, TARGET, 100))
        self.assertEqual(away.checks[1]["account"],
                         "end_near: ended 10.0 m from start [0, 0, -20] (needs < 1.5 m)")

    def test_dwell_needs_seconds_on_end_within_the_radius_and_then_holds(self):
        check = [{"kind": "dwell", "point": "target", "seconds": 2, "radius": 1.0}]
        arrive = line(START, TARGET, 100)
        stays = grade(check, np.concatenate([arrive, [TARGET] * 300]))
        self.assertTrue(stays.success)
        # within 1 m from step 90 (x = 9.09); 200 steps of 0.01 s on it has stayed 2 s
        self.assertEqual(stays.end_step, 289)
        self.assertEqual(stays.checks[0]["account"],
                         "dwell: within 1 m of target [10, 0, -20] for 2 s, steps 90-289")
        # two stays of 1.5 s with a step outside between them do not add up (the first counts)
        out = np.array([[12.0, 0.0, -20.0]])
        twice = grade(check, np.concatenate([arrive, [TARGET] * 140, out, [TARGET] * 150]))
        self.assertFalse(twice.success)
        self.assertEqual(twice.checks[0]["account"],
                         "dwell: longest stay 1.50 s of 2 s within 1 m of target [10, 0, -20] "
                         "(from step 90)")
        self.assertEqual(twice.checks[0]["score"], 0.75)
        never = grade(check, line(START, (5, 0, -20), 50))
        self.assertEqual(never.checks[0]["account"],
                         "dwell: never within 1 m of target [10, 0, -20] (closest 5.0 m)")
        spec = parse_task_spec({"checks": check})
        self.assertEqual(spec.to_dict()["checks"][0],
                         {"kind": "dwell", "point": "target", "seconds": 2, "radius": 1})
        # the step budget allows for the stay: 10 m to the target, then 2 s at cruise speed
        self.assertAlmostEqual(taskspec.route_length(resolve(spec, MARKS), START),
                               10.0 + 2 * taskspec.CRUISE_SPEED_MPS)
        with self.assertRaises(TaskSpecError) as caught:
            parse_task_spec({"checks": [{"kind": "dwell", "point": "target"}]})
        self.assertEqual(caught.exception.message, "checks[0].seconds: required for a dwell check")

    def test_clearance_exempts_the_take_off_and_then_holds_every_step(self):
        # ground: a flat floor of FILLED cells at z = 0 (top face z = -0.5), a hill at x = 5
        xs = np.arange(-3, 15)
        floor = [(x, y, 0) for x in xs for y in (-1, 0, 1)]
        hill = [(5, 0, z) for z in range(-17, 1)]
        cells = np.array(floor + hill)
        heights = HeightMap(cells, np.full(len(cells), taskspec.FILLED_BIT))
        check = [{"kind": "clearance", "min_m": 5}, {"kind": "reach", "point": "target"}]
        take_off = line((0, 0, -2), (0, 0, -30), 50)        # 1.5 m above the floor at first
        over_the_hill = np.concatenate([take_off, line((0, 0, -30), (10, 0, -30), 80),
                                        line((10, 0, -30), TARGET, 40)])
        self.assertTrue(grade(check, over_the_hill, world=heights).success)
        low = grade(check, np.concatenate([take_off[:32], line(START, TARGET, 100)]),
                    world=heights)
        self.assertFalse(low.success)
        self.assertRegex(low.checks[0]["account"],
                         r"^clearance: 2\.\d m at step \d+ over \[5, 0, -17\] \(needs 5 m; "
                         r"clear \d+/\d+ steps from step 7\)$")
        never = grade(check, line((0, 0, -2), (10, 0, -2), 50), world=heights)
        self.assertEqual(never.checks[0]["account"], "clearance: never 5 m above the ground")

    def test_clearance_reads_filled_and_ground_cells_of_a_voxelsim_world(self):
        vxs = load_backend("embedded")
        world = vxs.VoxelGrid.from_dict_py({(0, 0, 0): vxs.Cell.filled(),
                                            (0, 0, -3): vxs.Cell.sparse(),
                                            (1, 0, -4): vxs.Cell.filled()})
        heights = HeightMap.from_world(world)
        self.assertEqual(heights.ground_below((0.2, 0.1, -10.0)), (9.5, (0, 0, 0)))
        self.assertEqual(heights.ground_below((1.0, 0.0, -10.0)), (5.5, (1, 0, -4)))
        self.assertEqual(heights.ground_below((1.0, 0.0, -2.0)), (-1.5, (1, 0, -4)))
        self.assertEqual(heights.ground_below((9.0, 9.0, -2.0)), (math.inf, None))
        self.assertLess(heights.ground_below((0.0, 0.0, 0.2))[0], 0)

    def test_standoff_is_the_distance_to_any_cell_where_clearance_sees_only_the_ground(self):
        # A floor 5.5 m under the flight line (y = 0, z = -20), a trunk beside it at y = 3 and
        # a SPARSE leaf at y = -3: each 2.5 m from the line, and neither below it.
        vxs = load_backend("embedded")
        cells = {(x, y, -14): vxs.Cell.filled() for x in range(-3, 14) for y in range(-4, 5)}
        cells.update({(5, 3, z): vxs.Cell.filled() for z in range(-24, -14)})
        cells[(8, -3, -20)] = vxs.Cell.sparse()
        world = vxs.VoxelGrid.from_dict_py(cells)
        take_off = line((0, 0, -15), START, 30)           # 0.5 m above the floor at first
        flight = np.concatenate([take_off, line(START, TARGET, 100)])
        reach = {"kind": "reach", "point": "target"}
        self.assertTrue(grade([{"kind": "clearance", "min_m": 3}, reach], flight, world=world).success)
        close = grade([{"kind": "standoff", "min_m": 3}, reach], flight, world=world)
        self.assertFalse(close.success)
        self.assertRegex(close.checks[0]["account"],
                         r"^standoff: 2\.5 m at step \d+ from the cell \[5, 3, -20\] \(needs 3 m; "
                         r"clear \d+/\d+ steps from step 15\)$")
        wide = grade([{"kind": "standoff", "min_m": 2}, reach], flight, world=world)
        self.assertTrue(wide.success)
        self.assertRegex(wide.checks[0]["account"],
                         r"^standoff: at least 2 m from every cell from step 9 on \(closest 2\.1 m "
                         r"at step 9 from the cell \[0, 0, -14\]\)$")
        low = grade([{"kind": "standoff", "min_m": 3}, reach], line((0, 0, -15), (10, 0, -15), 50),
                    world=world)
        self.assertEqual(low.checks[0]["account"], "standoff: never 3 m from every cell")
        high = grade([{"kind": "standoff", "min_m": 1}, reach],
                     np.concatenate([line((0, 0, -15), (0, 0, -40), 30), line((0, 0, -40), TARGET, 60)]),
                     world=world)
        self.assertRegex(high.checks[0]["account"],
                         r"^standoff: at least 1 m from every cell from step 1 on \(closest 1\.4 m at step 1 "
                         r"from the cell \[0, 0, -14\]\)$")
        sky = grade([{"kind": "standoff", "min_m": 3}, {"kind": "end_near", "point": [10, 0, -40]}],
                    line((0, 0, -40), (10, 0, -40), 40), world=world)
        self.assertEqual(sky.checks[0]["account"], "standoff: at least 3 m from every cell from "
                                                   "step 0 on (no cell within 5 m)")
        with self.assertRaises(TaskSpecError) as caught:
            grade([{"kind": "standoff", "min_m": 3}, reach], flight)
        self.assertEqual(caught.exception.message, "a standoff check needs the world")

    def test_standoff_skips_only_the_queries_whose_bound_decides_the_step(self):
        rng = np.random.default_rng(3)
        coords = rng.integers(-8, 9, (60, 3))
        vxs = load_backend("embedded")
        world = vxs.VoxelGrid.from_dict_py({tuple(int(v) for v in c): vxs.Cell.filled()
                                            for c in coords})
        cells = taskspec.CellDistance(coords)
        queries = []

        class Counting(taskspec.CellDistance):
            def nearest(self, pos, reach):
                queries.append(pos)
                return cells.nearest(pos, reach)

        class WithinReach(taskspec.CellDistance):      # what the account reports: up to min_m + 2
            def nearest(self, pos, look):
                return cells.nearest(pos, look - taskspec.STANDOFF_LOOK_M)

        def tracker(checks, distances, every_step=False):
            made = FlightTracker(resolve(parse_task_spec({"checks": checks}), MARKS), world, 0.01)
            made.ctx.cells = distances
            if every_step:
                made.checkers[0]._decided = lambda pos: False      # a query at every step
            return made

        counting, within_reach = Counting(coords), WithinReach(coords)
        for trial in range(30):
            walk = np.cumsum(rng.normal(0, 0.15, (300, 3)), axis=0) + rng.uniform(-12, 12, 3)
            for min_m in (0.5, 1.5, 3.0):
                checks = [{"kind": "standoff", "min_m": min_m}, {"kind": "end_near", "point": [99, 0, 0]}]
                every = tracker(checks, within_reach, every_step=True)
                skipping = tracker(checks, counting)
                queries.clear()
                for step, pos in enumerate(walk):
                    every.observe(step, pos, 0)
                    skipping.observe(step, pos, 0)
                with self.subTest(trial=trial, min_m=min_m):
                    self.assertEqual(skipping.results(walk[-1]), every.results(walk[-1]))
                    self.assertLessEqual(len(queries), len(walk))
        # Far from every cell, a query now and then does for the whole flight.
        far = tracker([{"kind": "standoff", "min_m": 2}, {"kind": "reach", "point": "target"}], counting)
        queries.clear()
        for step, pos in enumerate(line((40, 0, 0), (80, 0, 0), 1000)):
            far.observe(step, pos, 0)
        self.assertLess(len(queries), 50)

    def test_a_dive_through_the_ground_shell_never_counts_as_far_from_every_cell(self):
        # ground: a shell 3 cells thick (z = 0..2), nothing below it, as the terrain is built
        vxs = load_backend("embedded")
        world = vxs.VoxelGrid.from_dict_py({(x, y, z): vxs.Cell.filled() for x in range(-20, 21)
                                            for y in range(-20, 21) for z in range(0, 3)})
        dive = line((0, 0, -2.5), (0, 0, 30), 200)         # 2.5 m above, then 27 m under the shell
        graded = grade([{"kind": "standoff", "min_m": 5}, {"kind": "end_near", "point": [0, 0, 30]}],
                       dive, world=world)
        self.assertEqual(graded.checks[0]["account"], "standoff: never 5 m from every cell")
        up_and_down = np.concatenate([line((0, 0, -2.5), (0, 0, -10), 50), dive])
        graded = grade([{"kind": "standoff", "min_m": 5}, {"kind": "end_near", "point": [0, 0, 30]}],
                       up_and_down, world=world)
        self.assertRegex(graded.checks[0]["account"],
                         r"^standoff: in or under the ground at step \d+ \(ground cell \[0, 0, 0\]\) "
                         r"\(needs 5 m; clear 30/230 steps from step 20\)$")
        below = np.concatenate([line((0, 0, -2.5), (30, 0, -10), 50), line((30, 0, -10), (30, 0, 20), 50),
                                line((30, 0, 20), (0, 0, 20), 60)])   # round the edge, then under it
        graded = grade([{"kind": "standoff", "min_m": 5}, {"kind": "end_near", "point": [0, 0, 20]}],
                       below, world=world)
        self.assertRegex(graded.checks[0]["account"],
                         r"^standoff: in or under the ground at step \d+ \(ground cell \[\d+, 0, 2\]\) "
                         r"\(needs 5 m; clear \d+/\d+ steps from step \d+\)$")
        with self.assertRaises(TaskSpecError) as caught:
            parse_task_spec({"checks": [{"kind": "standoff", "min_m": 20.5}]})
        self.assertEqual(caught.exception.message,
                         "checks[0].min_m: expects a positive number up to 20, actual: 20.5")

    def test_the_embedded_worlds_own_dense_box_gives_the_same_distances(self):
        world = scenarios.terrain_world(load_backend("embedded"), 0)
        shared = taskspec.CellDistance.from_world(world)
        self.assertIsNotNone(world._dense())
        copied = taskspec.CellDistance(taskspec.world_cells(world)[0])
        rng = np.random.default_rng(5)
        for pos in rng.uniform([30, 30, -40], [90, 90, 5], (300, 3)):
            self.assertEqual(shared.nearest(pos, 6.0), copied.nearest(pos, 6.0))

    def test_the_nearest_cell_is_measured_to_its_cube_within_the_reach(self):
        class VoxelsimLikeWorld:        # only the voxelsim methods: no embedded arrays
            def to_dict_py_tolistpy(self):
                cell = type("Cell", (), {"bits_py": lambda self: 0b1_0000_0000})()
                return [([0, 0, 0], cell), ([4, 0, 0], cell)]

        cells = taskspec.CellDistance.from_world(VoxelsimLikeWorld())
        self.assertEqual(cells.nearest((2.0, 0.0, 0.0), 5.0), (1.5, (0, 0, 0)))
        self.assertEqual(cells.nearest((0.2, 0.1, -0.3), 5.0), (0.0, (0, 0, 0)))
        distance, cell = cells.nearest((-2.0, 2.0, 0.0), 5.0)
        self.assertAlmostEqual(distance, math.hypot(1.5, 1.5))
        self.assertEqual(cell, (0, 0, 0))
        self.assertEqual(cells.nearest((-2.0, 0.0, 0.0), 1.4), (math.inf, None))
        self.assertEqual(cells.nearest((50.0, 0.0, 0.0), 5.0), (math.inf, None))
        self.assertEqual(cells.nearest((float("nan"), 0.0, 0.0), 5.0), (math.inf, None))
        self.assertEqual(taskspec.CellDistance(np.zeros((0, 3))).nearest((0, 0, 0), 5.0),
                         (math.inf, None))

    def test_altitude_band_holds_at_every_step(self):
        check = [{"kind": "altitude", "min_z": -25, "max_z": -15},
                 {"kind": "reach", "point": "target"}]
        self.assertTrue(grade(check, line(START, TARGET, 100)).success)
        dip = line(START, TARGET, 100)
        dip[40:50, 2] = -30
        bad = grade(check, dip)
        self.assertEqual(bad.checks[0]["account"],
                         "altitude: z -30.0 at step 40 outside [-25, -15] (90/100 steps in band)")

    def test_collisions_count_against_the_maximum(self):
        check = [{"kind": "collisions", "max": 2}, {"kind": "reach", "point": "target"}]
        flight = line(START, TARGET, 100)
        self.assertTrue(grade(check, flight, np.minimum(np.arange(100), 2)).success)
        bad = grade(check, flight, np.arange(100) // 10)
        self.assertEqual(bad.checks[0]["account"],
                         "collisions: 9 contacts, at most 2 allowed (over from step 30)")

    def test_time_limit_needs_every_other_check_by_then(self):
        flight = line(START, TARGET, 1000)
        checks = [{"kind": "reach", "point": "target"}, {"kind": "time_limit", "seconds": 20}]
        self.assertTrue(grade(checks, flight).success)
        late = grade([checks[0], {"kind": "time_limit", "seconds": 5}], flight)
        self.assertFalse(late.success)
        self.assertRegex(late.checks[1]["account"],
                         r"^time_limit: the other checks first held at 9\.\d\d s, limit 5 s$")
        self.assertEqual(late.end_step, 999)


class TrackerTests(unittest.TestCase):
    def test_the_tracker_and_the_whole_flight_grade_agree_step_for_step(self):
        rng = np.random.default_rng(7)
        specs = [
            [{"kind": "reach", "point": "target"}],
            [{"kind": "visit", "points": ["target", "start"], "radius": 2},
             {"kind": "collisions", "max": 3}],
            [{"kind": "orbit", "centre": "start", "min_radius": 1, "max_radius": 8,
              "degrees": 90}, {"kind": "altitude", "min_z": -23}],
            [{"kind": "reach", "point": "target", "radius": 3}, {"kind": "end_near", "point": "target"},
             {"kind": "time_limit", "seconds": 2}],
            [{"kind": "dwell", "point": "start", "seconds": 0.5, "radius": 2},
             {"kind": "visit", "points": ["target"], "radius": 2}],
        ]
        for trial in range(20):
            walk = np.cumsum(rng.normal(0, 0.4, (400, 3)), axis=0) + START
            hits = np.cumsum(rng.random(400) < 0.01)
            for checks in specs:
                with self.subTest(trial=trial, kinds=[c["kind"] for c in checks]):
                    resolved = resolve(parse_task_spec({"checks": checks}), MARKS)
                    tracker = FlightTracker(resolved, None, 0.01)
                    end = len(walk) - 1
                    for step, (pos, total) in enumerate(zip(walk, hits)):
                        if tracker.observe(step, pos, int(total)):
                            end = step
                            break
                    whole = grade_flight(resolved, walk, hits, None, 0.01)
                    self.assertEqual(whole.end_step, end)
                    self.assertEqual(whole.checks, tracker.results(walk[end]))
                    self.assertEqual(whole.success, all(c["passed"] for c in whole.checks))

    def test_an_empty_flight_fails_every_check(self):
        grade_ = grade([{"kind": "reach", "point": "target"}], np.zeros((0, 3)))
        self.assertEqual((grade_.end_step, grade_.success, grade_.score), (None, False, 0.0))
        self.assertEqual(grade_.checks[0]["account"], "reach: no step flown")

    def test_the_score_is_the_mean_of_the_checks(self):
        g = grade([{"kind": "reach", "point": "target"}, {"kind": "collisions"}],
                  line(START, (6, 0, -20), 50))
        self.assertAlmostEqual(g.score, (0.25 + 1.0) / 2)


class BudgetTests(unittest.TestCase):
    def test_the_route_runs_through_the_points_in_spec_order(self):
        spec = parse_task_spec({"checks": [
            {"kind": "visit", "points": [[10, 0, -20], [10, 10, -20]], "laps": 2},
            {"kind": "end_near", "point": "start"}, {"kind": "reach", "point": "target"}]})
        resolved = resolve(spec, MARKS)
        # two laps of 10 + 10 m, 10 m to the target, then (end_near comes last) 10 m home
        self.assertAlmostEqual(taskspec.route_length(resolved, START), 60.0, places=6)

    def test_budgets_never_fall_below_five_thousand_steps(self):
        self.assertEqual(taskspec.step_budget(10.0, 0.01), 5000)
        self.assertEqual(taskspec.step_budget(480.0, 0.01),
                         math.ceil((480 / 2.4 * 1.5 + 10) / 0.01))



class BudgetWarningTests(unittest.TestCase):
    def test_dwells_longer_than_an_episode_can_never_pass(self):
        spec = parse_task_spec({"checks": [{"kind": "dwell", "point": "target", "seconds": 4},
                                           {"kind": "dwell", "point": "start", "seconds": 3}]})
        self.assertEqual(taskspec.budget_warning(spec, 0.0, 600, 0.01),
                         "max_steps 600 x delta 0.01 s gives episodes of 6 s, shorter than the "
                         "task spec's 7 s of dwell: no episode can pass")
        self.assertIsNone(taskspec.budget_warning(spec, 0.0, 700, 0.01))

    def test_a_route_longer_than_an_episode_at_cruise_speed_likely_fails(self):
        spec = parse_task_spec({"checks": [{"kind": "reach", "point": "target"}]})
        self.assertEqual(taskspec.budget_warning(spec, 48.0, 1000, 0.01),
                         "max_steps 1000 x delta 0.01 s gives episodes of 10 s; the task spec's "
                         "route of about 48 m takes about 20 s at the 2.4 m/s planned flights "
                         "average (dwells included): episodes will likely end before it is flown")
        self.assertIsNone(taskspec.budget_warning(spec, 24.0, 1000, 0.01))

if __name__ == "__main__":
    unittest.main()
