"""Specification of TerrainConfig and TerrainGenerator.

Runs on whichever backend ``load_backend()`` returns: what is checked is what both backends
share (axes, bounds, cell kinds, determinism per seed), not exact cells, since the embedded
noise is not voxelsim's. ``EmbeddedOnly...`` classes test internals of the embedded backend.
"""

import hashlib
import unittest

import numpy as np

from bgen.sim import backend_label, load_backend

vxs = load_backend()
EMBEDDED = backend_label(vxs) == "embedded"
FILLED, SPARSE, GROUND = 16, 32, 64


def generate(seed=100, size=None, dims=None):
    cfg = vxs.TerrainConfig(seed)
    if size is not None:
        cfg.set_world_size_py(size)
    if dims is not None:
        cfg.set_world_dimensions_py(*dims)
    generator = vxs.TerrainGenerator()
    generator.generate_terrain_py(cfg)
    return generator.generate_world_py()


def cell_set(grid):
    return sorted((coord, cell.bits_py()) for coord, cell in grid.to_dict_py_tolistpy())


class TestTerrainConfig(unittest.TestCase):
    def test_seed_is_set_by_the_constructor_and_the_setter(self):
        cfg = vxs.TerrainConfig(7)
        self.assertEqual(cfg.get_seed_py(), 7)
        cfg.set_seed_py(2**32 - 1)
        self.assertEqual(cfg.get_seed_py(), 2**32 - 1)

    def test_default_seed_is_100(self):
        self.assertEqual(vxs.TerrainConfig.default_py().get_seed_py(), 100)

    def test_seed_must_be_a_u32(self):
        cases = (
            (1.0, TypeError, "argument 'seed': 'float' object cannot be interpreted as an integer"),
            (-1, OverflowError, "can't convert negative int to unsigned"),
            (2**32, OverflowError, "out of range integral type conversion attempted"),
        )
        for seed, error, message in cases:
            with self.subTest(seed=seed):
                with self.assertRaises(error) as caught:
                    vxs.TerrainConfig(seed)
                self.assertEqual(str(caught.exception), message)

    def test_size_setters_take_integers_only(self):
        cfg = vxs.TerrainConfig.default_py()
        with self.assertRaises(TypeError) as caught:
            cfg.set_world_size_py(50.0)
        self.assertEqual(str(caught.exception),
                         "argument 'sizev': 'float' object cannot be interpreted as an integer")
        with self.assertRaises(TypeError) as caught:
            cfg.set_world_dimensions_py(10, 10.5, 10)
        self.assertEqual(str(caught.exception),
                         "argument 'y': 'float' object cannot be interpreted as an integer")


class TestWorldShape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dims = (40, 45, 30)  # terrain frame: x, height, z (world y)
        cls.grid = generate(seed=3, dims=cls.dims)
        cls.coords, cls.values = cls.grid.as_numpy()

    def test_cells_stay_within_the_inclusive_bounds_with_height_as_negative_z(self):
        x, y, z = self.coords[:, 0], self.coords[:, 1], self.coords[:, 2]
        self.assertGreaterEqual(x.min(), 0)
        self.assertLessEqual(x.max(), 40)
        self.assertGreaterEqual(y.min(), 0)
        self.assertLessEqual(y.max(), 30)
        self.assertLessEqual(z.max(), 0)
        self.assertGreaterEqual(z.min(), -45)

    def test_every_column_has_ground(self):
        columns = {(int(x), int(y)) for x, y in self.coords[:, :2]}
        self.assertEqual(len(columns), 41 * 31)

    def test_ground_cells_are_ground_and_filled(self):
        bits = [cell.bits_py() for _, cell in self.grid.to_dict_py_tolistpy()]
        self.assertTrue(all(b & (FILLED | SPARSE) for b in bits))
        self.assertIn(GROUND | FILLED, bits)

    def test_values_are_filled_or_sparse_only(self):
        self.assertTrue(set(np.unique(self.values).tolist()) <= {0.5, 1.0})

    def test_surface_heights_stay_within_the_max_terrain_height(self):
        self.assertGreaterEqual(self.coords[:, 2].min(), -45)
        ground = [c for c, cell in self.grid.to_dict_py_tolistpy() if cell.bits_py() & GROUND]
        self.assertGreaterEqual(min(z for _, _, z in ground), -32)

    def test_world_size_is_clamped_to_at_least_one(self):
        coords, _ = generate(seed=1, size=0).as_numpy()
        self.assertTrue(((coords[:, :2] >= 0) & (coords[:, :2] <= 1)).all())
        self.assertTrue(((coords[:, 2] <= 0) & (coords[:, 2] >= -1)).all())


class TestForest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.grid = generate(seed=11, size=100)

    def test_a_large_world_grows_trees_with_sparse_branches_above_the_ground(self):
        cells = self.grid.to_dict_py_tolistpy()
        ground_top = {}
        for (x, y, z), cell in cells:
            if cell.bits_py() & GROUND:
                ground_top[(x, y)] = min(z, ground_top.get((x, y), 0))
        sparse = [(x, y, z) for (x, y, z), cell in cells if cell.bits_py() & SPARSE]
        self.assertTrue(sparse)
        self.assertTrue(any(z < ground_top[(x, y)] - 3 for x, y, z in sparse))

    def test_tree_cells_carry_no_ground_bit(self):
        tree = [c for c, cell in self.grid.to_dict_py_tolistpy()
                if cell.bits_py() & (FILLED | SPARSE) and not cell.bits_py() & GROUND]
        self.assertTrue(tree)


class TestDeterminism(unittest.TestCase):
    def test_same_seed_gives_the_same_world(self):
        self.assertEqual(cell_set(generate(seed=5, size=60)), cell_set(generate(seed=5, size=60)))

    def test_different_seeds_give_different_worlds(self):
        self.assertNotEqual(cell_set(generate(seed=5, size=60)), cell_set(generate(seed=6, size=60)))

    def test_generate_world_leaves_the_generator_reusable(self):
        cfg = vxs.TerrainConfig(9)
        cfg.set_world_size_py(30)
        generator = vxs.TerrainGenerator()
        generator.generate_terrain_py(cfg)
        self.assertEqual(cell_set(generator.generate_world_py()), cell_set(generator.generate_world_py()))

    def test_generating_twice_with_one_config_adds_nothing_new(self):
        cfg = vxs.TerrainConfig(9)
        cfg.set_world_size_py(30)
        once, twice = vxs.TerrainGenerator(), vxs.TerrainGenerator()
        once.generate_terrain_py(cfg)
        twice.generate_terrain_py(cfg)
        twice.generate_terrain_py(cfg)
        self.assertEqual(cell_set(once.generate_world_py()), cell_set(twice.generate_world_py()))

    def test_generator_needs_a_terrain_config(self):
        with self.assertRaises(TypeError) as caught:
            vxs.TerrainGenerator().generate_terrain_py(7)
        self.assertEqual(str(caught.exception),
                         "argument 'cfg': 'int' object cannot be converted to 'TerrainConfig'")


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyTerrain(unittest.TestCase):
    def test_defaults_are_the_reference_values(self):
        cfg = vxs.TerrainConfig.default_py()
        self.assertEqual(
            (cfg._size, cfg._height_scale, cfg._flat_band, cfg._max_terrain_height,
             cfg._forest_scale, cfg._max_forest_height, cfg._seed, cfg._base_thickness),
            ((100, 30, 100), 100.0, 0.1, 32, 30.0, 20, 100, 3))

    def test_size_setters_clamp_each_axis_to_one(self):
        cfg = vxs.TerrainConfig(1)
        cfg.set_world_size_py(-4)
        self.assertEqual(cfg._size, (1, 1, 1))
        cfg.set_world_dimensions_py(220, 0, -3)
        self.assertEqual(cfg._size, (220, 1, 1))

    def test_noise_is_seeded_and_within_unit_range(self):
        from bgen.sim.embedded.terrain import gradient_noise
        xs, ys = np.meshgrid(np.linspace(0, 20, 200), np.linspace(0, 20, 200))
        a, b = gradient_noise(1, xs, ys, 0.0), gradient_noise(2, xs, ys, 0.0)
        self.assertTrue(np.array_equal(a, gradient_noise(1, xs, ys, 0.0)))
        self.assertFalse(np.array_equal(a, b))
        self.assertLessEqual(np.abs(a).max(), 1.0)
        self.assertGreater(np.abs(a).max(), 0.4)
        self.assertEqual(gradient_noise(1, np.array([3.0]), np.array([4.0]), 0.0).tolist(), [0.0])

    def test_flat_band_flattens_mid_heights_to_half_the_max(self):
        from bgen.sim.embedded.terrain import height_map
        cfg = vxs.TerrainConfig(4)
        cfg.set_world_size_py(200)
        heights = height_map(cfg)
        self.assertGreater((heights == 16).mean(), 0.2)
        # n outside 0.4..0.6 gives at most round(12.8) = 13 or at least round(19.2) = 19.
        self.assertFalse(np.isin(heights, [14, 15, 17, 18]).any())

    def test_column_reaches_up_to_its_highest_neighbour(self):
        from bgen.sim.embedded.terrain import ground_cells
        cfg = vxs.TerrainConfig(1)
        cfg.set_world_dimensions_py(2, 30, 0)
        coords, bits = ground_cells(cfg, np.array([[5], [9], [2]]))
        spans = {x: sorted(y for cx, y, _ in coords.tolist() if cx == x) for x in range(3)}
        self.assertEqual(spans, {0: list(range(3, 10)), 1: list(range(2, 10)), 2: list(range(0, 10))})
        self.assertTrue((bits == GROUND | FILLED).all())

    def test_trees_are_placed_apart_and_at_most_fifty(self):
        from bgen.sim.embedded.terrain import height_map, place_trees
        cfg = vxs.TerrainConfig(0)
        cfg.set_world_size_py(200)
        trees = place_trees(cfg, height_map(cfg))
        self.assertLessEqual(len(trees), 50)
        self.assertGreater(len(trees), 0)
        for i, (x, z, _) in enumerate(trees):
            for px, pz, _ in trees[:i]:
                self.assertGreaterEqual((x - px) ** 2 + (z - pz) ** 2, 64)

    def test_world_is_built_from_arrays(self):
        grid = generate(seed=2, size=40)
        self.assertIsNone(grid._dict)
        coords, bits = grid._arrays()
        self.assertEqual(len(np.unique(coords, axis=0)), len(coords))


def cell_digest(grid) -> str:
    """sha256 (first 16 hex) of the cells in canonical order: coords int32 LE, then bits u32 LE."""
    coords, bits = grid._arrays()
    order = np.lexsort((coords[:, 2], coords[:, 1], coords[:, 0]))
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(coords[order], dtype="<i4").tobytes())
    digest.update(np.ascontiguousarray(bits[order], dtype="<u4").tobytes())
    return digest.hexdigest()[:16]


# Taken from the generator as it stood before tree stamping and ground columns were
# vectorised: any change to a cell or a bit of these worlds changes a digest.
GOLDEN_TERRAIN = {
    0: ("1899b91ce4a330b1", 139659), 1: ("95629ac8a3160b71", 141284),
    2: ("a6526100f960a514", 142042), 3: ("77f22c5989871b8b", 140707),
    4: ("6b7c40d3f023652f", 140900), 5: ("81bd4696dcafcdbd", 135525),
    6: ("f8ddd64097ea0eb2", 141843), 7: ("7c4c5841499ff39c", 139273),
    8: ("ebb55354dae6c986", 141415), 9: ("237cb2ccd103be2f", 141529),
    10: ("483e425150400aa2", 137396), 11: ("5297e631070103c2", 139955),
    12: ("e4c7cf62d193cf90", 138634), 13: ("b49b46c9a24f0ce6", 138279),
    14: ("35ed30f2c9e3be83", 137738), 15: ("9b3e03fa435c7782", 141480),
    16: ("5945263123cfe9c2", 141081), 17: ("a17a5ad1df2ccd03", 142147),
    18: ("4a0a6b953c0d8e5e", 142906), 19: ("472b1a98c5a39daa", 139297),
    20: ("b6df920008204df5", 138686),
}
GOLDEN_WIND_FARM = ("d10d046b7f2b9404", 170832)           # scenarios.wind_farm_world
GOLDEN_WIND_FARM_TERRAIN = ("b7e11146f208a0be", 166275)   # its terrain, bits as generated


@unittest.skipUnless(EMBEDDED, "embedded backend cells (voxelsim's noise differs)")
class EmbeddedOnlyGoldenCells(unittest.TestCase):
    def test_terrain_scenario_cells_for_seeds_0_to_20_are_unchanged(self):
        from bgen.sim import scenarios
        for seed, (expected, count) in GOLDEN_TERRAIN.items():
            with self.subTest(seed=seed):
                grid = scenarios.terrain_world(vxs, seed)
                self.assertEqual((cell_digest(grid), grid._len()), (expected, count))

    def test_wind_farm_cells_are_unchanged(self):
        from bgen.sim import scenarios
        grid = scenarios.wind_farm_world(vxs)
        self.assertEqual((cell_digest(grid), grid._len()), GOLDEN_WIND_FARM)
        terrain = generate(seed=100, dims=scenarios.WIND_FARM_DIMENSIONS)
        self.assertEqual((cell_digest(terrain), terrain._len()), GOLDEN_WIND_FARM_TERRAIN)


if __name__ == "__main__":
    unittest.main()
