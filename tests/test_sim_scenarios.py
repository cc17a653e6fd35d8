"""Specification of the episode scenarios (random terrain, wind farm) and their table.

Scenarios use only the public voxelsim API, so this runs on whichever backend
``load_backend()`` returns.
"""

import unittest

from bgen.errors import ConfigError
from bgen.sim import load_backend, scenarios

vxs = load_backend()
FILLED, SPARSE, INTEREST = 16, 32, 256


def cells_of(grid):
    return {tuple(coord): cell.bits_py() for coord, cell in grid.to_dict_py_tolistpy()}


class TestTerrainScenario(unittest.TestCase):
    def test_terrain_world_is_deterministic_per_seed(self):
        self.assertEqual(cells_of(scenarios.terrain_world(vxs, 12)),
                         cells_of(scenarios.terrain_world(vxs, 12)))

    def test_terrain_world_differs_between_seeds(self):
        self.assertNotEqual(cells_of(scenarios.terrain_world(vxs, 12)),
                            cells_of(scenarios.terrain_world(vxs, 13)))

    def test_terrain_world_spans_the_200_cell_world(self):
        coords, _ = scenarios.terrain_world(vxs, 3).as_numpy()
        self.assertEqual((coords[:, 0].min(), coords[:, 0].max()), (0, 200))
        self.assertEqual((coords[:, 1].min(), coords[:, 1].max()), (0, 200))
        self.assertLessEqual(coords[:, 2].max(), 0)

    def test_seeds_wrap_to_u32(self):
        self.assertEqual(cells_of(scenarios.terrain_world(vxs, 2**32 + 12)),
                         cells_of(scenarios.terrain_world(vxs, 12)))


class TestWindFarmScenario(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.grid = scenarios.wind_farm_world(vxs)
        cls.cells = cells_of(cls.grid)

    def test_three_towers_rise_from_z_minus_6_to_minus_125(self):
        for x, y in ((30, 30), (120, 120), (210, 210)):
            with self.subTest(tower=(x, y)):
                self.assertEqual(self.cells[(x, y, -6)], FILLED)
                self.assertEqual(self.cells[(x, y, -125)], FILLED)
                self.assertNotIn((x, y, -126), self.cells)
                self.assertEqual(self.cells[(x + 2, y, -100)], FILLED)
                self.assertEqual(self.cells[(x + 1, y + 1, -100)], FILLED)
                self.assertNotIn((x + 2, y + 1, -100), self.cells)   # centre sqrt(5) m out
                self.assertNotIn((x + 3, y, -100), self.cells)       # solid out to 2.5 m only

    def test_the_middle_tower_has_three_interest_cells_on_its_plus_x_face(self):
        interest = sorted(c for c, bits in self.cells.items() if bits == INTEREST)
        self.assertEqual(interest, [(122, 120, -67), (122, 120, -66), (122, 120, -65)])

    def test_terrain_cells_are_plain_filled_or_sparse(self):
        self.assertTrue(set(self.cells.values()) <= {FILLED, SPARSE, INTEREST})
        self.assertTrue(any((x, y) == (0, 0) for x, y, _ in self.cells))  # terrain, not towers

    def test_world_spans_220_by_220(self):
        xs = [x for x, _, _ in self.cells]
        ys = [y for _, y, _ in self.cells]
        self.assertEqual((min(xs), max(xs), min(ys), max(ys)), (0, 220, 0, 220))

    def test_default_target_is_free_and_reachable_from_the_start(self):
        target = scenarios.WIND_FARM_TARGET
        self.assertNotIn(target, self.cells)
        # A monotone path exists (all x moves first clear the padded tower), so the plan
        # is as long as the Manhattan distance.
        intent = vxs.AStarActionPlanner(2).plan_action_py(
            self.grid, list(scenarios.WIND_FARM_START), list(target), 1.0, 0.0)
        self.assertEqual(intent.len(), 16 + 10 + 14)


class TestPlacingAboveObstacles(unittest.TestCase):
    def small_world(self, cells):
        return vxs.VoxelGrid.from_dict_py({c: vxs.Cell.filled() for c in cells})

    def test_a_point_with_a_clear_column_stays_where_it_is(self):
        world = self.small_world([(5, 5, 0)])
        self.assertEqual(scenarios.place_above_obstacles(world, (5, 5, -10)), (5, 5, -10))

    def test_a_point_inside_the_ground_is_lifted_over_the_highest_cell_with_clearance(self):
        world = self.small_world([(5, 5, z) for z in range(-4, 1)])
        self.assertEqual(scenarios.column_top(world, 5, 5), -4)
        self.assertEqual(scenarios.place_above_obstacles(world, (5, 5, -2)), (5, 5, -7))

    def test_an_obstacle_beside_the_column_counts_too(self):
        world = self.small_world([(6, 6, -9)])
        self.assertEqual(scenarios.place_above_obstacles(world, (5, 5, -10)), (5, 5, -12))

    def test_the_terrain_start_and_target_can_be_planned_between_on_every_seed(self):
        planner = vxs.AStarActionPlanner(1)
        for seed in range(4):
            with self.subTest(seed=seed):
                world = scenarios.terrain_world(vxs, seed)
                start = scenarios.place_above_obstacles(world, scenarios.TERRAIN_START)
                target = scenarios.place_above_obstacles(world, scenarios.TERRAIN_TARGET)
                self.assertEqual(start[:2], (50, 50))
                self.assertLessEqual(start[2], -20)
                intent = planner.plan_action_py(world, list(start), list(target), 1.0, 0.0)
                self.assertGreater(intent.len(), 0)


class TestScenarioTable(unittest.TestCase):
    def test_table_lists_both_scenarios_with_start_and_target(self):
        rows = {name: (s.start, s.target) for name, s in scenarios.SCENARIOS.items()}
        self.assertEqual(rows, {
            "terrain": ((50, 50, -20), (60, 60, -20)),
            "wind_farm": ((110, 110, -80), (126, 120, -66)),
        })

    def test_each_builder_makes_a_voxel_grid(self):
        for name, scenario in scenarios.SCENARIOS.items():
            with self.subTest(name=name):
                self.assertIsInstance(scenario.build(vxs, 1), vxs.VoxelGrid)

    def test_wind_farm_builder_hands_out_independent_copies(self):
        build = scenarios.get_scenario("wind_farm").build
        first = build(vxs, 1)
        first.add_target_cell([0, 0, -200])
        self.assertEqual(first.collisions_py([0.0, 0.0, -199.6], [0.5, 0.5, 0.3])[0][1].bits_py(), 128)
        self.assertEqual(build(vxs, 2).collisions_py([0.0, 0.0, -199.6], [0.5, 0.5, 0.3]), [])

    def test_unknown_scenario_names_the_choices(self):
        with self.assertRaises(ConfigError) as caught:
            scenarios.get_scenario("moon")
        self.assertEqual(str(caught.exception),
                         "scenario: expects one of terrain, wind_farm, actual: 'moon'")
        self.assertEqual(caught.exception.field, "scenario")


class TestSeedsVaryTheEpisodes(unittest.TestCase):
    """What each scenario varies per seed: no two of seeds 0-2 fly the same episode."""

    def test_wind_farm_seeds_0_to_2_start_apart_in_the_same_world_and_fly_three_episodes(self):
        from bgen.llm.context import example
        from bgen.runner.episode import EpisodeConfig, ListSink, run_episode
        build = scenarios.get_scenario("wind_farm").build
        self.assertEqual(cells_of(build(vxs, 0)), cells_of(build(vxs, 2)))   # the same cells
        config = EpisodeConfig(scenario="wind_farm", max_steps=3000)
        flights = []
        for seed in (0, 1, 2):
            sink = ListSink()
            outcome = run_episode(example("move_to_target"), vxs, config, seed, sink)
            self.assertEqual(outcome.summary.reason, "success")
            self.assertEqual(outcome.summary.start, list(scenarios.wind_farm_start(seed)))
            flights.append((tuple(outcome.summary.start), outcome.summary.steps,
                            tuple(round(v, 1) for v in sink.steps[len(sink.steps) // 2]["agent_pos"])))
        for field in range(3):
            with self.subTest(field=("start", "steps", "midpoint")[field]):
                self.assertEqual(len({flight[field] for flight in flights}), 3)

    def test_every_wind_farm_start_is_in_open_air_around_the_middle_tower(self):
        world = scenarios.get_scenario("wind_farm").build(vxs, 0)
        headings = set()
        for seed in range(50):
            x, y, z = scenarios.wind_farm_start(seed)
            with self.subTest(seed=seed):
                ring = ((x - 120) ** 2 + (y - 120) ** 2) ** 0.5
                self.assertTrue(14 - 0.71 <= ring <= 20 + 0.71, ring)   # to the nearest cell
                self.assertTrue(-86 <= z <= -74)
                near = world.dense_snapshot_py([x, y, z], [3, 3, 3]).data_py()
                self.assertEqual(set(near), {0})            # nothing within 3 cells
                self.assertGreater(scenarios.column_top(world, x, y, radius=0), z)   # terrain below
                self.assertEqual(scenarios.place_above_obstacles(world, (x, y, z)), (x, y, z))
            headings.add((round(x - 120), round(y - 120)))
        self.assertEqual(len(headings), 50)

    def test_terrain_seeds_vary_the_world_and_so_the_lifted_points(self):
        self.assertEqual(scenarios.episode_points("terrain", 0), scenarios.episode_points("terrain", 7))
        lifted = {scenarios.place_above_obstacles(scenarios.terrain_world(vxs, seed), scenarios.TERRAIN_START)
                  for seed in (0, 1, 2)}
        self.assertEqual(len(lifted), 3)


if __name__ == "__main__":
    unittest.main()
