"""Specification of AStarActionPlanner, voxelsim's 6-connected A*.

Every expected move sequence is worked out by hand from the reference's rules: steps first,
then the summed distance of visited cells to the origin→dst segment, then the largest x,
then y, then z. Runs on whichever backend ``load_backend()`` returns; ``EmbeddedOnly...``
classes test internals of the embedded backend.
"""

import unittest
from unittest import mock

import numpy as np

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


# --- the search before packed keys, kept as the specification of its results ----------------
# A plain transcription of the rules in the module docstring, with tuple keys and tuple heap
# entries; the embedded planner must return exactly what this returns.
REF_OBSTACLE_BITS = 0b0101_1001  # FILLED | GROUND | DRONE_OCCUPIED | DRONE_TRAJECTORY
FILLED_BITS = 0b0001_0000
REF_CHECKS = ((5_000, 5_000), (40_000, 400_000))
REF_NEIGHBOURS = ((1, 0, 0, F), (-1, 0, 0, B), (0, 1, 0, R), (0, -1, 0, L),
                  (0, 0, 1, D), (0, 0, -1, U))


def ref_blocked(cells, padding):
    answers = {}
    span = range(-padding, padding + 1) if padding > 0 else range(1)

    def blocked(c):
        hit = answers.get(c)
        if hit is None:
            x, y, z = c
            hit = answers[c] = any(cells.get((x + dx, y + dy, z + dz), 0) & REF_OBSTACLE_BITS
                                   for dx in span for dy in span for dz in span)
        return hit
    return blocked


def ref_distance(origin, dst):
    import math
    ax, ay, az = float(origin[0]), float(origin[1]), float(origin[2])
    vx, vy, vz = dst[0] - ax, dst[1] - ay, dst[2] - az
    vv = vx * vx + vy * vy + vz * vz

    def distance(p):
        wx, wy, wz = p[0] - ax, p[1] - ay, p[2] - az
        t = 0.0 if vv <= 1e-9 else min(max((wx * vx + wy * vy + wz * vz) / vv, 0.0), 1.0)
        dx, dy, dz = p[0] - (ax + t * vx), p[1] - (ay + t * vy), p[2] - (az + t * vz)
        scaled = math.sqrt(dx * dx + dy * dy + dz * dz) * 1000.0
        whole = math.floor(scaled)
        return int(whole) + (1 if scaled - whole >= 0.5 else 0)
    return distance


def ref_region_excludes(start, goal, blocked, limit):
    seen, frontier = {start}, [start]
    while frontier:
        x, y, z = frontier.pop()
        for dx, dy, dz, _ in REF_NEIGHBOURS:
            nb = (x + dx, y + dy, z + dz)
            if nb in seen or blocked(nb):
                continue
            if nb == goal:
                return False
            seen.add(nb)
            if len(seen) > limit:
                return False
            frontier.append(nb)
    return True


def reference_search(cells, origin, dst, padding, cap=200_000, checks=REF_CHECKS):
    """Move names from origin to dst, or the error reason (a str)."""
    import heapq
    if origin == dst:
        return "The parameters specified were invalid."
    blocked = ref_blocked(cells, padding)
    if blocked(origin):
        return "Path to the target is blocked."
    if blocked(dst):
        return "No viable path to target."
    distance = ref_distance(origin, dst)
    (tx, ty, tz), (ox, oy, oz) = dst, origin
    best, came_from = {origin: (0, 0)}, {}
    heap = [(abs(ox - tx) + abs(oy - ty) + abs(oz - tz), 0, -ox, -oy, -oz, 0)]
    checks = list(checks)
    expansions = 0
    while heap:
        _, g_dist, nx, ny, nz, g_steps = heapq.heappop(heap)
        current = (-nx, -ny, -nz)
        if best[current] != (g_steps, g_dist):
            continue
        if current == dst:
            moves = []
            while current in came_from:
                prev, move = came_from[current]
                moves.append(move)
                current = prev
            return moves[::-1]
        expansions += 1
        if expansions > cap:
            break
        if checks and expansions == checks[0][0]:
            if ref_region_excludes(dst, origin, blocked, checks.pop(0)[1]):
                break
        x, y, z = current
        for dx, dy, dz, move in REF_NEIGHBOURS:
            nb = (x + dx, y + dy, z + dz)
            if blocked(nb):
                continue
            new = (g_steps + 1, g_dist + distance(nb))
            old = best.get(nb)
            if old is None or new < old:
                best[nb], came_from[nb] = new, (current, move)
                bx, by, bz = nb
                heapq.heappush(heap, (new[0] + abs(bx - tx) + abs(by - ty) + abs(bz - tz),
                                      new[1], -bx, -by, -bz, new[0]))
    return "No viable path to target."


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
        self.assertTrue(any(answers for answers in memo.values()))
        grid.add_target_cell([9, 9, 9])
        self.assertNotIn(("astar-blocked", 1), grid._derived())

    def test_plans_on_an_array_world_read_its_occupancy_and_never_build_the_dict(self):
        from bgen.sim.embedded import planner
        wall = [(3, y, z) for y in range(-2, 3) for z in range(-2, 3)]
        grid = vxs.VoxelGrid._from_arrays(np.array(wall), np.full(len(wall), FILLED_BITS))
        twin = world(filled=wall)
        for padding in (0, 1, 2):
            with self.subTest(padding=padding):
                self.assertEqual(plan(grid, [0, 0, 0], [6, 0, 0], padding),
                                 plan(twin, [0, 0, 0], [6, 0, 0], padding))
                self.assertIsInstance(grid._dense().derived[("astar-obstacles", padding)],
                                      planner.Obstacles)
        self.assertIsNone(grid._dict)
        grid.add_target_cell([9, 9, 9])     # a change: the occupancy goes, the dict answers
        self.assertIsNone(grid._dense())
        self.assertIsInstance(planner._obstacles(grid, 1), dict)
        self.assertEqual(plan(grid, [0, 0, 0], [6, 0, 0], 1), plan(twin, [0, 0, 0], [6, 0, 0], 1))

    def test_dilation_grows_obstacles_by_the_padding_in_chebyshev_distance(self):
        from bgen.sim.embedded.planner import dilate
        occupied = np.zeros((7, 7, 7), dtype=bool)
        occupied[3, 3, 3] = True
        for padding in range(4):
            with self.subTest(padding=padding):
                grown = np.argwhere(dilate(occupied, padding))
                self.assertEqual(len(grown), (2 * min(padding, 3) + 1) ** 3)
                self.assertEqual(np.abs(grown - 3).max(), min(padding, 3))

    def test_flood_check_stops_as_soon_as_the_region_leaves_the_obstacles_box(self):
        # A floor under dst: its free region is unbounded, which the fill shows by stepping
        # past the floor's edge, long before the 400,000-cell limit.
        from bgen.sim.embedded import planner
        cells = {(x, y, 0): FILLED_BITS for x in range(-100, 100) for y in range(-100, 100)}
        dst, origin = (0, 0, -1), (0, 0, 5)
        w = planner.field_width(origin, dst, 1)
        answers, blocked = planner.blocked_test(cells, 1, w)
        box = planner._field_box(cells, {}, 1, 1 << (w - 1))
        self.assertFalse(planner.region_excludes(planner.pack(dst, w), planner.pack(origin, w),
                                                 answers, blocked, 400_000, box, w))
        self.assertLess(len(answers), 2_000)

    def test_flood_check_finds_a_pocket_sealed_by_padding(self):
        from bgen.sim.embedded import planner
        cells = {c: FILLED_BITS for c in shell((0, 0, 0), 4)}
        w = planner.field_width((20, 0, 0), (0, 0, 0), 1)
        answers, blocked = planner.blocked_test(cells, 1, w)
        box = planner._field_box(cells, {}, 1, 1 << (w - 1))
        inside, outside = planner.pack((0, 0, 0), w), planner.pack((20, 0, 0), w)
        self.assertTrue(planner.region_excludes(inside, outside, answers, blocked, 125, box, w))
        self.assertFalse(planner.region_excludes(inside, outside, answers, blocked, 124, box, w))
        self.assertFalse(planner.region_excludes(outside, inside, answers, blocked, 10**6, box, w))

    def test_packed_keys_round_trip_at_the_i32_limits(self):
        from bgen.sim.embedded import planner
        for coord in ((0, 0, 0), (-2**31, 2**31 - 1, -1), (5, -7, 2**31 - 1)):
            with self.subTest(coord=coord):
                w = planner.field_width(coord, (0, 0, 0), 3)
                self.assertEqual(planner.unpack(planner.pack(coord, w), w), coord)

    def test_large_enclosed_destination_fails_by_the_flood_check(self):
        # A pocket of 7^3 free cells around dst: the flood fill closes it long before the cap.
        self.assertRaisesRegex(Exception, "No viable path", plan,
                               world(filled=shell((30, 0, 0), 4)), [0, 0, 0], [30, 0, 0])



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


def random_world(rng, size=12):
    """Cells in a size³ box: obstacles of every kind, free kinds, and mostly empty space."""
    from bgen.sim.embedded import world as w
    kinds = (w.FILLED, w.FILLED, w.FILLED, w.GROUND, w.DRONE_OCCUPIED, w.DRONE_TRAJECTORY,
             w.SPARSE, w.TARGET, w.DRONE_ADJACENT)
    density = rng.choice((0.05, 0.15, 0.3, 0.45))
    return {(x, y, z): rng.choice(kinds) for x in range(size) for y in range(size)
            for z in range(size) if rng.random() < density}


def dense_obstacles(cells, padding):
    """``Obstacles`` cut from the world's dense copy, as an episode's planner builds them."""
    from bgen.sim.embedded import planner
    grid = vxs.VoxelGrid._from_cells(dict(cells))
    dense = vxs.VoxelGrid._from_arrays(*grid._arrays())._dense()
    if dense is None:
        return planner.Obstacles.from_cells(cells, padding)
    return planner.Obstacles.from_dense(dense, padding)


def outcome(search, *args):
    """Move names, or the error reason."""
    from bgen.sim.embedded import planner
    try:
        return [move.to_string() for move in search(*args)]
    except planner.PlannerError as error:
        return error.reason


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyEquivalence(unittest.TestCase):
    """The packed-key search returns exactly what the plain search above returns, reading
    the world either as a dict or as a dense occupancy box (``Obstacles``)."""

    def assertSameAsReference(self, cells, origin, dst, padding, memo=None, **limits):
        from bgen.sim.embedded import planner
        expected = reference_search(cells, origin, dst, padding, **limits)
        patches = {"MAX_EXPANSIONS": limits.get("cap", planner.MAX_EXPANSIONS),
                   "_ENCLOSURE_CHECKS": limits.get("checks", planner._ENCLOSURE_CHECKS)}
        with mock.patch.multiple(planner, **patches):
            got = outcome(planner.search, cells, origin, dst, padding, memo)
            dense = outcome(planner.search, planner.Obstacles.from_cells(cells, padding),
                            origin, dst, padding)
            cut = outcome(planner.search, dense_obstacles(cells, padding), origin, dst, padding)
        self.assertEqual(got, expected, f"origin={origin} dst={dst} padding={padding}")
        self.assertEqual(dense, expected, f"dense: origin={origin} dst={dst} padding={padding}")
        self.assertEqual(cut, expected, f"from dense cells: origin={origin} dst={dst} "
                                        f"padding={padding}")
        return got

    def test_random_small_worlds_give_the_same_moves_and_errors(self):
        import random
        rng = random.Random(20240611)
        seen = set()
        for case in range(120):
            cells = random_world(rng)
            for padding in range(3):
                memo = {}  # shared by the plans on this world, as the bound class shares it
                for _ in range(2):
                    origin = tuple(rng.randrange(-1, 13) for _ in range(3))
                    dst = tuple(rng.randrange(-1, 13) for _ in range(3))
                    if rng.random() < 0.1:
                        dst = origin
                    got = self.assertSameAsReference(cells, origin, dst, padding, memo)
                    seen.add(got if isinstance(got, str) else "moves")
        self.assertEqual(seen, {"moves", INVALID[len(PREFIX):], BLOCKED[len(PREFIX):],
                                NO_PATH[len(PREFIX):]})

    def test_small_caps_and_early_flood_checks_give_the_same_answers(self):
        # Caps and flood checks moved into the range of small worlds, where they decide often.
        import random
        rng = random.Random(7)
        limits = ({"cap": 1}, {"cap": 25}, {"cap": 120},
                  {"checks": ((1, 1), (3, 50))}, {"checks": ((10, 30), (60, 2_000))})
        for case in range(60):
            cells = random_world(rng, size=8)
            padding = rng.randrange(2)
            origin = tuple(rng.randrange(0, 8) for _ in range(3))
            dst = tuple(rng.randrange(0, 8) for _ in range(3))
            for limit in limits:
                with self.subTest(case=case, **limit):
                    self.assertSameAsReference(cells, origin, dst, padding, **limit)

    def test_sealed_pockets_and_open_space_give_the_same_answers(self):
        cases = (
            (shell((10, 0, 0), 2), (0, 0, 0), (10, 0, 0), 0),   # sealed destination
            (shell((10, 0, 0), 3), (0, 0, 0), (10, 0, 0), 1),   # padding seals it
            (shell((0, 0, 0), 2), (0, 0, 0), (10, 0, 0), 0),    # sealed origin
            (shell((0, 0, 0), 4), (0, 0, 0), (2, 1, -1), 1),    # both inside one pocket
            ([], (0, 0, 0), (7, -3, 5), 2),                      # no obstacle at all
        )
        for filled, origin, dst, padding in cases:
            with self.subTest(origin=origin, dst=dst, padding=padding):
                cells = {c: FILLED_BITS for c in filled}
                self.assertSameAsReference(cells, origin, dst, padding,
                                           checks=((20, 100), (200, 1_000)))

    def test_coordinates_near_the_i32_limits_give_the_same_answers(self):
        top, bottom = 2**31 - 1, -2**31
        cells = {(top - 3, bottom + 2, 5): FILLED_BITS, (top - 2, bottom + 3, 5): FILLED_BITS}
        cases = (((top - 5, bottom + 3, 5), (top, bottom + 2, 5), 0),
                 ((top - 5, bottom + 3, 5), (top - 1, bottom, 4), 1))
        for origin, dst, padding in cases:
            with self.subTest(dst=dst, padding=padding):
                self.assertSameAsReference(cells, origin, dst, padding)

    def test_wall_detour_gives_the_same_moves(self):
        wall = {(30, y, z): FILLED_BITS for y in range(-5, 6) for z in range(-5, 6)}
        for padding in (0, 1):
            with self.subTest(padding=padding):
                moves = self.assertSameAsReference(wall, (0, 0, 0), (60, 0, 0), padding)
                self.assertGreater(len(moves), 60)

    def test_terrain_plans_give_the_same_answers(self):
        # The unreachable destination lies in free space under the terrain shell: both
        # searches run to the 200,000-expansion cap.
        from bgen.sim import scenarios
        cells = scenarios.terrain_world(vxs, 1)._cells()
        for padding in (0, 1):
            with self.subTest(padding=padding):
                self.assertEqual(
                    self.assertSameAsReference(cells, (50, 50, -42), (52, 50, -2), padding),
                    NO_PATH[len(PREFIX):])
        self.assertSameAsReference(cells, (50, 50, -42), (60, 58, -40), 1)


if __name__ == "__main__":
    unittest.main()
