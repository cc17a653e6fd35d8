"""Specification of AStarActionPlanner, voxelsim's 6-connected A*.

Every expected move sequence is worked out by hand from the reference's rules: steps first,
then the summed distance of visited cells to the origin→dst segment, then the largest x,
then y, then z. Runs on whichever backend ``load_backend()`` returns; ``EmbeddedOnly...``
classes test internals of the embedded backend.
"""

import unittest
from unittest import mock

from bgen.sim import backend_label, load_backend

vxs = load_backend()
EMBEDDED = backend_label(vxs) == "embedded"

F, B, L, R, U, D = "Forward", "Back", "Left", "Right", "Up", "Down"
PREFIX = "Failed to create action intent: "
BLOCKED = PREFIX + "Path to the target is blocked."
NO_PATH = PREFIX + "No viable path to target."
INVALID = PREFIX + "The parameters specified were invalid."


def world(filled=(), sparse=(), interest=(), targets=()):
    cells = {c: vxs.Cell.filled() for c in filled}
    cells.update({c: vxs.Cell.sparse() for c in sparse})
    cells.update({c: vxs.Cell.interest() for c in interest})
    grid = vxs.VoxelGrid.from_dict_py(cells)
    for c in targets:
        grid.add_target_cell(list(c))
    return grid


def shell(centre, radius):
    """The hollow cube of FILLED cells at Chebyshev distance ``radius`` around ``centre``."""
    cx, cy, cz = centre
    r = range(-radius, radius + 1)
    return [(cx + x, cy + y, cz + z) for x in r for y in r for z in r
            if max(abs(x), abs(y), abs(z)) == radius]


def plan(grid, origin, dst, padding=0, urgency=1.0, yaw=0.0):
    intent = vxs.AStarActionPlanner(padding).plan_action_py(grid, origin, dst, urgency, yaw)
    return [move.to_string() for move in intent.get_move_sequence()]


class TestOpenSpace(unittest.TestCase):
    def test_straight_line_along_each_axis(self):
        cases = (
            ([3, 0, 0], [F, F, F]), ([-2, 0, 0], [B, B]), ([0, 2, 0], [R, R]),
            ([0, -1, 0], [L]), ([0, 0, 2], [D, D]), ([0, 0, -3], [U, U, U]),
        )
        for dst, moves in cases:
            with self.subTest(dst=dst):
                self.assertEqual(plan(vxs.VoxelGrid(), [0, 0, 0], dst), moves)

    def test_diagonal_tie_goes_to_the_larger_x_first(self):
        # (1,0,0) and (0,1,0) tie on steps and segment distance; the larger x pops first.
        self.assertEqual(plan(vxs.VoxelGrid(), [0, 0, 0], [1, 1, 0]), [F, R])

    def test_path_hugs_the_straight_segment(self):
        # After Forward, (1,1,0) lies closer to the segment than (2,0,0): F R F, not F F R.
        self.assertEqual(plan(vxs.VoxelGrid(), [0, 0, 0], [2, 1, 0], padding=1, urgency=0.9), [F, R, F])

    def test_result_is_an_intent_with_the_given_urgency_and_yaw(self):
        intent = vxs.AStarActionPlanner(0).plan_action_py(vxs.VoxelGrid(), [5, 5, 5], [5, 5, 7], 0.4, 1.5)
        self.assertIsInstance(intent, vxs.ActionIntent)
        self.assertEqual(intent.len(), 2)

    def test_coordinates_may_be_tuples_and_numpy_ints(self):
        import numpy as np
        self.assertEqual(plan(vxs.VoxelGrid(), (np.int64(0), 0, 0), (0, 0, np.int32(1))), [D])


class TestObstacles(unittest.TestCase):
    def test_path_goes_around_a_single_filled_cell_by_plus_y(self):
        # All four detours take 4 steps and the same segment distance; +y wins the ties.
        self.assertEqual(plan(world(filled=[(1, 0, 0)]), [0, 0, 0], [2, 0, 0]), [R, F, F, L])

    def test_sparse_interest_and_target_cells_are_free_space(self):
        grid = world(sparse=[(1, 0, 0)], interest=[(2, 0, 0)], targets=[(3, 0, 0)])
        self.assertEqual(plan(grid, [0, 0, 0], [4, 0, 0]), [F, F, F, F])

    def test_padding_keeps_the_path_a_cell_away_from_obstacles(self):
        grid = world(filled=[(2, 1, 0)])
        self.assertEqual(plan(grid, [0, 0, 0], [4, 0, 0], padding=0), [F, F, F, F])
        # Padding 1 blocks x 1..3, y 0..2: the only 6-step way passes along y = -1.
        self.assertEqual(plan(grid, [0, 0, 0], [4, 0, 0], padding=1), [L, F, F, F, F, R])

    def test_negative_padding_counts_as_zero(self):
        self.assertEqual(plan(world(filled=[(1, 1, 0)]), [0, 0, 0], [2, 0, 0], padding=-3), [F, F])


class TestErrors(unittest.TestCase):
    def assertPlanFails(self, message, grid, origin, dst, padding=0, urgency=1.0):
        with self.assertRaises(Exception) as caught:
            plan(grid, origin, dst, padding, urgency)
        self.assertIs(type(caught.exception), Exception)
        self.assertEqual(str(caught.exception), message)

    def test_origin_equal_to_destination_is_invalid(self):
        self.assertPlanFails(INVALID, vxs.VoxelGrid(), [1, 2, 3], [1, 2, 3])

    def test_origin_inside_an_obstacle_is_blocked(self):
        self.assertPlanFails(BLOCKED, world(filled=[(0, 0, 0)]), [0, 0, 0], [3, 0, 0])

    def test_origin_within_padding_of_an_obstacle_is_blocked(self):
        self.assertPlanFails(BLOCKED, world(filled=[(1, 1, 1)]), [0, 0, 0], [-3, 0, 0], padding=1)

    def test_filled_destination_has_no_viable_path(self):
        self.assertPlanFails(NO_PATH, world(filled=[(3, 0, 0)]), [0, 0, 0], [3, 0, 0])

    def test_destination_within_padding_of_an_obstacle_has_no_viable_path(self):
        self.assertPlanFails(NO_PATH, world(filled=[(3, 2, 0)]), [0, 0, 0], [3, 0, 0], padding=2)

    def test_enclosed_destination_has_no_viable_path(self):
        self.assertPlanFails(NO_PATH, world(filled=shell((10, 0, 0), 2)), [0, 0, 0], [10, 0, 0])

    def test_enclosed_origin_has_no_viable_path(self):
        self.assertPlanFails(NO_PATH, world(filled=shell((0, 0, 0), 2)), [0, 0, 0], [10, 0, 0])

    def test_invalid_params_are_reported_before_urgency_is_checked(self):
        self.assertPlanFails(INVALID, vxs.VoxelGrid(), [0, 0, 0], [0, 0, 0], urgency=0.0)

    def test_failed_search_is_reported_before_urgency_is_checked(self):
        self.assertPlanFails(NO_PATH, world(filled=[(1, 0, 0)]), [0, 0, 0], [1, 0, 0], urgency=-1.0)

    def test_non_positive_urgency_panics_once_a_path_is_found(self):
        for urgency in (0.0, -0.5, float("nan")):
            with self.subTest(urgency=urgency):
                with self.assertRaises(BaseException) as caught:
                    plan(vxs.VoxelGrid(), [0, 0, 0], [1, 0, 0], urgency=urgency)
                self.assertEqual(type(caught.exception).__name__, "PanicException")
                self.assertNotIsInstance(caught.exception, Exception)
                self.assertEqual(str(caught.exception), "assertion failed: urgency > 0.0")

    def test_bad_arguments_fail_like_pyo3(self):
        planner = vxs.AStarActionPlanner(1)
        grid = vxs.VoxelGrid()
        cases = (
            (({}, [0, 0, 0], [1, 0, 0], 1.0, 0.0), TypeError,
             "argument 'world': 'dict' object cannot be converted to 'VoxelGrid'"),
            ((grid, [0.0, 0, 0], [1, 0, 0], 1.0, 0.0), TypeError,
             "argument 'origin': 'float' object cannot be interpreted as an integer"),
            ((grid, [0, 0, 0], [1, 0, 0.5], 1.0, 0.0), TypeError,
             "argument 'dst': 'float' object cannot be interpreted as an integer"),
            ((grid, [0, 0], [1, 0, 0], 1.0, 0.0), ValueError,
             "expected a sequence of length 3 (got 2)"),
            ((grid, [0, 0, 0], [1, 0, 0], "fast", 0.0), TypeError,
             "argument 'urgency': must be real number, not str"),
            ((grid, [0, 0, 0], [1, 0, 0], 1.0, None), TypeError,
             "argument 'yaw': must be real number, not NoneType"),
        )
        for args, error, message in cases:
            with self.subTest(args=args[1:]):
                with self.assertRaises(error) as caught:
                    planner.plan_action_py(*args)
                self.assertEqual(str(caught.exception), message)

    def test_padding_must_be_an_integer(self):
        with self.assertRaises(TypeError) as caught:
            vxs.AStarActionPlanner(1.0)
        self.assertEqual(str(caught.exception),
                         "argument 'padding': 'float' object cannot be interpreted as an integer")


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlySearch(unittest.TestCase):
    def test_ground_and_drone_occupied_or_trajectory_cells_are_obstacles(self):
        from bgen.sim.embedded import planner, world as w
        cases = ((w.GROUND, True), (w.DRONE_OCCUPIED, True), (w.DRONE_TRAJECTORY, True),
                 (w.DRONE_ADJACENT, False), (w.DRONE_HISTORIC, False), (w.TARGET, False))
        for bits, obstacle in cases:
            with self.subTest(bits=bits):
                grid = vxs.VoxelGrid._from_cells({(1, 0, 0): bits})
                moves = planner.search(grid._cells(), (0, 0, 0), (2, 0, 0), 0)
                self.assertEqual(len(moves), 4 if obstacle else 2)

    def test_search_gives_up_after_the_expansion_cap(self):
        from bgen.sim.embedded import planner
        with mock.patch.object(planner, "MAX_EXPANSIONS", 5):
            with self.assertRaises(Exception) as caught:
                plan(vxs.VoxelGrid(), [0, 0, 0], [8, 0, 0])
        self.assertEqual(str(caught.exception), NO_PATH)
        self.assertEqual(plan(vxs.VoxelGrid(), [0, 0, 0], [8, 0, 0]), [F] * 8)

    def test_segment_distance_rounds_half_away_from_zero_in_thousandths(self):
        from bgen.sim.embedded.planner import segment_distance
        distance = segment_distance((0, 0, 0), (2, 1, 0))
        self.assertEqual([distance(p) for p in ((1, 0, 0), (0, 1, 0), (2, 0, 0), (3, 1, 0))],
                         [447, 894, 894, 1000])
        self.assertEqual(segment_distance((0, 0, 0), (0, 0, 0))((0, 3, 4)), 5000)

    def test_blocked_answers_are_reused_on_an_unchanged_world(self):
        grid = world(filled=[(1, 0, 0)])
        plan(grid, [0, 0, -3], [3, 0, -3], padding=1)
        memo = grid._derived()[("astar-blocked", 1)]
        self.assertTrue(memo["cells"])
        grid.add_target_cell([9, 9, 9])
        self.assertNotIn(("astar-blocked", 1), grid._derived())

    def test_large_enclosed_destination_fails_by_the_flood_check(self):
        # A pocket of 7^3 free cells around dst: the flood fill closes it long before the cap.
        self.assertRaisesRegex(Exception, "No viable path", plan,
                               world(filled=shell((30, 0, 0), 4)), [0, 0, 0], [30, 0, 0])


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyResultMemory(unittest.TestCase):
    """Repeated questions about an unchanged world are answered without searching again."""

    def test_a_repeated_failing_plan_searches_once_and_fails_the_same_way(self):
        from bgen.sim.embedded import planner
        grid = world(filled=[(2, 0, 0)])
        with mock.patch.object(planner, "search", wraps=planner.search) as search:
            for _ in range(3):
                with self.assertRaises(Exception) as caught:
                    vxs.AStarActionPlanner(0).plan_action_py(grid, [0, 0, 0], [2, 0, 0], 1.0, 0.0)
                self.assertEqual(str(caught.exception), NO_PATH)
        self.assertEqual(search.call_count, 1)

    def test_a_changed_world_is_searched_again(self):
        from bgen.sim.embedded import planner
        grid = world()
        with mock.patch.object(planner, "search", wraps=planner.search) as search:
            first = vxs.AStarActionPlanner(0).plan_action_py(grid, [0, 0, 0], [2, 0, 0], 1.0, 0.0)
            grid._set_bits((1, 0, 0), vxs.Cell.filled().bits_py())
            second = vxs.AStarActionPlanner(0).plan_action_py(grid, [0, 0, 0], [2, 0, 0], 1.0, 0.0)
        self.assertEqual(search.call_count, 2)
        self.assertEqual(len(first.get_move_sequence()), 2)
        self.assertEqual(len(second.get_move_sequence()), 4)

    def test_remembered_moves_are_a_fresh_list_each_time(self):
        grid = world()
        planner_ = vxs.AStarActionPlanner(0)
        first = planner_.plan_action_py(grid, [0, 0, 0], [3, 0, 0], 0.5, 0.0)
        second = planner_.plan_action_py(grid, [0, 0, 0], [3, 0, 0], 0.9, 0.1)
        self.assertEqual(first.get_move_sequence(), second.get_move_sequence())
        self.assertIsNot(first.get_move_sequence(), second.get_move_sequence())
