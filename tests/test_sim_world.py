"""Specification of the voxel world: Cell, VoxelGrid, VoxelSet, DenseSnapshot.

Written against the voxelsim API, so it runs on whichever backend ``load_backend()`` returns
(``BGEN_SIM_BACKEND=voxelsim`` checks these expectations against the real module). Classes
named ``EmbeddedOnly...`` test internals of the embedded backend and are skipped elsewhere.
Cells are compared by ``bits_py()``: voxelsim's Cell compares by identity.
"""

import pickle
import unittest

import numpy as np

from bgen.sim import backend_label, load_backend

vxs = load_backend()
EMBEDDED = backend_label(vxs) == "embedded"
FILLED, SPARSE, TARGET, INTEREST = 16, 32, 128, 256
DIMS_PANIC = "assertion failed: dims.x < 1.0 && dims.y < 1.0 && dims.z < 1.0"


def world(cells):
    """A world from ``{(x, y, z): "filled" | "sparse" | "interest"}``."""
    make = {"filled": vxs.Cell.filled, "sparse": vxs.Cell.sparse, "interest": vxs.Cell.interest}
    return vxs.VoxelGrid.from_dict_py({coord: make[kind]() for coord, kind in cells.items()})


def as_bits(items):
    """``[(coord, Cell)]`` as ``[(tuple(coord), bits)]`` (coords may be lists or tuples)."""
    return [(tuple(coord), cell.bits_py()) for coord, cell in items]


class PanicAssertions:
    def assertPanics(self, message, fn, *args):
        """A Rust panic: PanicException (a BaseException, not an Exception) with ``message``."""
        with self.assertRaises(BaseException) as caught:
            fn(*args)
        self.assertEqual(type(caught.exception).__name__, "PanicException")
        self.assertNotIsInstance(caught.exception, Exception)
        self.assertEqual(str(caught.exception), message)


class TestCell(unittest.TestCase):
    def test_constructors_give_the_reference_bits(self):
        for make, bits in ((vxs.Cell.filled, FILLED), (vxs.Cell.sparse, SPARSE),
                           (vxs.Cell.interest, INTEREST)):
            with self.subTest(make=make.__name__):
                self.assertEqual(make().bits_py(), bits)

    def test_predicates_test_one_flag_each(self):
        cases = (
            (vxs.Cell.filled(), (True, False, False)),
            (vxs.Cell.sparse(), (False, True, False)),
            (vxs.Cell.interest(), (False, False, True)),
        )
        for cell, expected in cases:
            with self.subTest(bits=cell.bits_py()):
                self.assertEqual((cell.is_filled_py(), cell.is_sparse_py(), cell.is_interest_py()),
                                 expected)

    def test_cell_has_no_python_constructor(self):
        with self.assertRaises(TypeError) as caught:
            vxs.Cell()
        self.assertEqual(str(caught.exception), "No constructor defined for Cell")


class TestVoxelGridDicts(unittest.TestCase):
    def test_new_world_is_empty(self):
        grid = vxs.VoxelGrid()
        self.assertEqual(grid.to_dict_py_tolistpy(), [])
        self.assertEqual(grid.to_dict_py(), {})

    def test_from_dict_round_trips_through_the_list_form(self):
        grid = world({(1, 2, 3): "filled", (-4, 0, 9): "sparse", (0, 0, -7): "interest"})
        self.assertEqual(sorted(as_bits(grid.to_dict_py_tolistpy())),
                         [((-4, 0, 9), SPARSE), ((0, 0, -7), INTEREST), ((1, 2, 3), FILLED)])

    def test_list_form_keys_are_tuples(self):
        [(coord, _)] = world({(1, 2, 3): "filled"}).to_dict_py_tolistpy()
        self.assertEqual(coord, (1, 2, 3))
        self.assertIsInstance(coord, tuple)

    def test_from_dict_accepts_any_int_sequence_and_numpy_ints_as_keys(self):
        grid = vxs.VoxelGrid.from_dict_py({
            (np.int64(5), np.int32(6), 7): vxs.Cell.filled(),
            (True, 0, 0): vxs.Cell.sparse(),
        })
        self.assertEqual(sorted(as_bits(grid.to_dict_py_tolistpy())),
                         [((1, 0, 0), SPARSE), ((5, 6, 7), FILLED)])

    def test_to_dict_of_a_non_empty_world_fails_as_on_voxelsim(self):
        # voxelsim's keys are [i32; 3], which PyO3 turns into (unhashable) lists.
        with self.assertRaises(TypeError) as caught:
            world({(0, 0, 0): "filled"}).to_dict_py()
        self.assertEqual(str(caught.exception), "unhashable type: 'list'")

    def test_from_dict_rejects_bad_arguments_like_pyo3(self):
        cases = (
            ([((0, 0, 0), vxs.Cell.filled())], TypeError,
             "argument 'dict': 'list' object cannot be converted to 'PyDict'"),
            ({(0.0, 0, 0): vxs.Cell.filled()}, TypeError,
             "argument 'dict': 'float' object cannot be interpreted as an integer"),
            ({(0, 0, 0): 16}, TypeError, "argument 'dict': 'int' object cannot be converted to 'Cell'"),
            ({(0, 0): vxs.Cell.filled()}, ValueError, "expected a sequence of length 3 (got 2)"),
        )
        for value, error, message in cases:
            with self.subTest(value=value):
                with self.assertRaises(error) as caught:
                    vxs.VoxelGrid.from_dict_py(value)
                self.assertEqual(str(caught.exception), message)


class TestVoxelGridNumpy(unittest.TestCase):
    def test_as_numpy_gives_float32_coords_and_kind_values(self):
        grid = world({(1, 2, 3): "filled", (4, 5, 6): "sparse", (7, 8, 9): "interest"})
        grid.add_target_cell([-1, -2, -3])
        coords, values = grid.as_numpy()
        self.assertEqual((coords.dtype, values.dtype), (np.float32, np.float32))
        self.assertEqual((coords.shape, values.shape), ((4, 3), (4,)))
        rows = sorted(zip(map(tuple, coords.tolist()), values.tolist()))
        self.assertEqual(rows, [((-1.0, -2.0, -3.0), 0.0), ((1.0, 2.0, 3.0), 1.0),
                                ((4.0, 5.0, 6.0), 0.5), ((7.0, 8.0, 9.0), 0.0)])

    def test_as_numpy_of_an_empty_world_has_zero_rows(self):
        coords, values = vxs.VoxelGrid().as_numpy()
        self.assertEqual((coords.shape, values.shape), ((0, 3), (0,)))


class TestCollisions(unittest.TestCase, PanicAssertions):
    BOX = [0.5, 0.5, 0.3]

    def collide(self, cells, centre, dims=None):
        return as_bits(world(cells).collisions_py(centre, dims or self.BOX))

    def test_box_reaching_a_neighbour_cell_collides(self):
        # x extent 0.35..0.85 reaches the cube of (1, 0, 0), which starts at 0.5.
        self.assertEqual(self.collide({(1, 0, 0): "filled"}, [0.6, 0.0, 0.0]),
                         [((1, 0, 0), FILLED)])

    def test_box_short_of_a_neighbour_cell_does_not_collide(self):
        self.assertEqual(self.collide({(1, 0, 0): "filled"}, [0.2, 0.0, 0.0]), [])

    def test_touching_faces_count_as_a_collision(self):
        # x extent 0.0..0.5 ends exactly on the cube face at 0.5.
        self.assertEqual(self.collide({(1, 0, 0): "filled"}, [0.25, 0.0, 0.0]),
                         [((1, 0, 0), FILLED)])

    def test_the_cell_containing_the_truncated_centre_is_never_reported(self):
        # voxelsim checks only the 26 neighbours of trunc(centre), not that cell itself.
        self.assertEqual(self.collide({(0, 0, 0): "filled"}, [0.1, 0.1, 0.1]), [])

    def test_centre_is_truncated_toward_zero_not_floored(self):
        # trunc(-0.6) = 0, so (0, 0, 0) is skipped and (-1, 0, 0) is reported; flooring or
        # rounding would do the opposite.
        cells = {(-1, 0, 0): "filled", (0, 0, 0): "sparse"}
        self.assertEqual(self.collide(cells, [-0.6, 0.0, 0.0]), [((-1, 0, 0), FILLED)])

    def test_results_come_x_major_then_y_then_z(self):
        cells = {(1, 1, 0): "filled", (0, 1, 0): "sparse", (1, 0, 0): "interest",
                 (5, 5, 5): "filled"}
        self.assertEqual(self.collide(cells, [0.5, 0.5, 0.0]),
                         [((0, 1, 0), SPARSE), ((1, 0, 0), INTEREST), ((1, 1, 0), FILLED)])

    def test_every_cell_kind_collides(self):
        # The box spans -0.15..0.75 on each axis: it reaches the cubes at 0 and 1.
        grid = world({(1, 0, 0): "filled", (0, 1, 0): "sparse", (0, 0, 1): "interest"})
        grid.add_target_cell([1, 1, 1])
        self.assertEqual(as_bits(grid.collisions_py([0.3, 0.3, 0.3], [0.9, 0.9, 0.9])),
                         [((0, 0, 1), INTEREST), ((0, 1, 0), SPARSE), ((1, 0, 0), FILLED),
                          ((1, 1, 1), TARGET)])

    def test_coordinates_come_back_as_lists_of_ints(self):
        [(coord, cell)] = world({(1, 0, 0): "filled"}).collisions_py([0.6, 0.0, 0.0], self.BOX)
        self.assertEqual(coord, [1, 0, 0])
        self.assertIsInstance(coord, list)
        self.assertEqual(cell.bits_py(), FILLED)

    def test_dims_of_one_or_more_panic(self):
        for dims in ([1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 2.0], [0.5, 0.5, float("nan")]):
            with self.subTest(dims=dims):
                self.assertPanics(DIMS_PANIC, vxs.VoxelGrid().collisions_py, [0.0, 0.0, 0.0], dims)

    def test_non_finite_centres_collide_with_nothing(self):
        grid = world({(0, 0, 0): "filled", (1, 0, 0): "filled"})
        for centre in ([float("nan"), 0.0, 0.0], [float("inf"), 0.0, 0.0]):
            with self.subTest(centre=centre):
                self.assertEqual(grid.collisions_py(centre, self.BOX), [])

    def test_bad_arguments_fail_like_pyo3(self):
        grid = vxs.VoxelGrid()
        cases = (
            (("abc", self.BOX), TypeError, "argument 'centre': must be real number, not str"),
            (([0.0, 0.0], self.BOX), ValueError, "expected a sequence of length 3 (got 2)"),
            (([0.0, 0.0, 0.0], None), TypeError,
             "argument 'dims': 'NoneType' object cannot be converted to 'Sequence'"),
        )
        for args, error, message in cases:
            with self.subTest(args=args):
                with self.assertRaises(error) as caught:
                    grid.collisions_py(*args)
                self.assertEqual(str(caught.exception), message)

    def test_integer_and_tuple_arguments_are_accepted(self):
        self.assertEqual(self.collide({(1, 0, 0): "filled"}, (0, 0, 0), (0.5, 0.5, 0.5)), [])
        # x extent -0.485..0.505 just reaches the cube of (1, 0, 0).
        self.assertEqual(self.collide({(1, 0, 0): "filled"}, (0.01, 0, 0), (0.99, 0.5, 0.5)),
                         [((1, 0, 0), FILLED)])


class TestDenseSnapshot(unittest.TestCase, PanicAssertions):
    def test_layout_is_x_major_z_fastest_over_the_inclusive_box(self):
        grid = world({(1, 0, 0): "filled", (0, 0, 1): "sparse", (0, 1, 0): "filled"})
        # x in -1..1, y in 0..0, z in -1..1: index = (x + 1) * 3 + (z + 1).
        data = grid.dense_snapshot_py([0, 0, 0], [1, 0, 1]).data_py()
        self.assertEqual(data, [0, 0, 0, 0, 0, SPARSE, 0, FILLED, 0])

    def test_snapshot_is_centred_on_the_given_cell(self):
        grid = world({(10, -5, 3): "interest", (11, -5, 3): "filled"})
        data = grid.dense_snapshot_py([11, -5, 3], [1, 1, 1]).data_py()
        self.assertEqual(len(data), 27)
        # (10, -5, 3) is x index 0, y index 1, z index 1: 0 * 9 + 1 * 3 + 1 = 4; centre is 13.
        self.assertEqual({i: v for i, v in enumerate(data) if v}, {4: INTEREST, 13: FILLED})

    def test_zero_half_dims_give_the_one_centre_cell(self):
        self.assertEqual(world({(2, 2, 2): "sparse"}).dense_snapshot_py([2, 2, 2], [0, 0, 0]).data_py(),
                         [SPARSE])

    def test_one_negative_half_dim_panics_with_capacity_overflow(self):
        self.assertPanics("capacity overflow", vxs.VoxelGrid().dense_snapshot_py, [0, 0, 0], [-1, 1, 1])

    def test_two_negative_half_dims_give_an_empty_snapshot(self):
        self.assertEqual(vxs.VoxelGrid().dense_snapshot_py([0, 0, 0], [-1, -1, 1]).data_py(), [])

    def test_float_coordinates_are_a_type_error(self):
        cases = (
            (([0.0, 0, 0], [1, 1, 1]), "argument 'centre': 'float' object cannot be interpreted as an integer"),
            (([0, 0, 0], [1, 1.5, 1]), "argument 'dims': 'float' object cannot be interpreted as an integer"),
        )
        for args, message in cases:
            with self.subTest(args=args):
                with self.assertRaises(TypeError) as caught:
                    vxs.VoxelGrid().dense_snapshot_py(*args)
                self.assertEqual(str(caught.exception), message)

    def test_snapshot_has_no_python_constructor(self):
        with self.assertRaises(TypeError) as caught:
            vxs.DenseSnapshot()
        self.assertEqual(str(caught.exception), "No constructor defined for DenseSnapshot")


class TestMutationAndCopies(unittest.TestCase):
    def test_add_target_cell_replaces_the_cell_with_target_only(self):
        grid = world({(0, 0, 0): "filled"})
        grid.add_target_cell((0, 0, 0))
        grid.add_target_cell([3, 4, 5])
        self.assertEqual(sorted(as_bits(grid.to_dict_py_tolistpy())),
                         [((0, 0, 0), TARGET), ((3, 4, 5), TARGET)])

    def test_add_target_cell_rejects_float_coordinates(self):
        with self.assertRaises(TypeError) as caught:
            vxs.VoxelGrid().add_target_cell([0.5, 0, 0])
        self.assertEqual(str(caught.exception),
                         "argument 'coord': 'float' object cannot be interpreted as an integer")

    def test_clone_is_independent_of_the_original(self):
        grid = world({(0, 0, 0): "filled"})
        twin = grid.clone_py()
        twin.add_target_cell([1, 1, 1])
        self.assertEqual(as_bits(grid.to_dict_py_tolistpy()), [((0, 0, 0), FILLED)])
        self.assertEqual(sorted(as_bits(twin.to_dict_py_tolistpy())),
                         [((0, 0, 0), FILLED), ((1, 1, 1), TARGET)])

    def test_difference_set_is_a_voxel_set(self):
        diff = world({(0, 0, 0): "filled"}).difference_set_from_py(vxs.VoxelGrid())
        self.assertIsInstance(diff, vxs.VoxelSet)

    def test_difference_set_needs_a_voxel_grid(self):
        with self.assertRaises(TypeError) as caught:
            vxs.VoxelGrid().difference_set_from_py({})
        self.assertEqual(str(caught.exception),
                         "argument 'other': 'dict' object cannot be converted to 'VoxelGrid'")


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyCellInternals(unittest.TestCase):
    def test_every_reference_flag_has_its_bit_value(self):
        from bgen.sim.embedded import world as w
        self.assertEqual(dict(w.FLAGS), {
            "DRONE_OCCUPIED": 1, "DRONE_ADJACENT": 2, "DRONE_HISTORIC": 4,
            "DRONE_TRAJECTORY": 8, "FILLED": 16, "SPARSE": 32, "GROUND": 64, "TARGET": 128,
            "INTEREST": 256})

    def test_cells_compare_and_hash_by_value(self):
        self.assertEqual(vxs.Cell.filled(), vxs.Cell.filled())
        self.assertNotEqual(vxs.Cell.filled(), vxs.Cell.sparse())
        self.assertEqual(len({vxs.Cell.filled(), vxs.Cell.filled(), vxs.Cell.sparse()}), 2)

    def test_repr_names_the_flags(self):
        self.assertEqual(repr(vxs.Cell._of(16 | 64)), "Cell(FILLED | GROUND)")
        self.assertEqual(repr(vxs.Cell._of(0)), "Cell(0x0)")

    def test_cells_pickle_by_bits(self):
        self.assertEqual(pickle.loads(pickle.dumps(vxs.Cell.interest())).bits_py(), INTEREST)


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyCollisionCounts(unittest.TestCase):
    """``world.collision_counts``: a flight's collisions at once, as ``collisions_py`` counts."""

    def counts(self, grid, centres, dims=(0.5, 0.5, 0.3)):
        from bgen.sim.embedded.world import collision_counts
        return collision_counts(grid, np.array(centres, dtype=float), dims)

    def test_each_row_counts_what_collisions_py_reports(self):
        grid = vxs.VoxelGrid._from_arrays(
            np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [1, 1, 0], [0, 0, 1]]),
            np.array([16, 32, 16, 256, 64]))
        centres = [[0.25, 0.0, 0.0], [0.6, 0.0, 0.0], [0.2, 0.0, 0.0], [-0.6, 0.0, 0.0],
                   [0.5, 0.5, 0.0], [0.1, 0.1, 0.1], [0.0, 0.0, 0.35], [9.0, 9.0, 9.0],
                   [float("nan"), 0.0, 0.0], [float("inf"), 0.0, 0.0], [3e9, 0.0, 0.0]]
        expected = [len(grid.collisions_py(c, [0.5, 0.5, 0.3])) for c in centres]
        self.assertGreater(sum(expected), 3)
        self.assertEqual(self.counts(grid, centres).tolist(), expected)

    def test_a_changed_world_is_asked_step_by_step(self):
        grid = world({(1, 0, 0): "filled"})      # built from a dict: no dense box
        self.assertIsNone(self.counts(grid, [[0.6, 0.0, 0.0]]))
        arrays = vxs.VoxelGrid._from_arrays(np.array([[1, 0, 0]]), np.array([16]))
        self.assertEqual(self.counts(arrays, [[0.6, 0.0, 0.0]]).tolist(), [1])
        arrays.add_target_cell([5, 5, 5])
        self.assertIsNone(self.counts(arrays, [[0.6, 0.0, 0.0]]))

    def test_a_box_of_a_whole_cell_panics_as_collisions_py_does(self):
        grid = vxs.VoxelGrid._from_arrays(np.array([[1, 0, 0]]), np.array([16]))
        with self.assertRaises(BaseException) as caught:
            self.counts(grid, [[0.0, 0.0, 0.0]], (1.0, 0.5, 0.5))
        self.assertEqual(str(caught.exception), DIMS_PANIC)

    def test_a_dense_box_holds_exactly_the_cells_it_was_built_from(self):
        from bgen.sim.embedded.world import DenseCells
        coords = np.array([[0, 0, 0], [2, 1, 0], [1, 1, 3]])
        dense = DenseCells.build(coords, np.array([16, 0, 64], dtype=np.uint32))
        self.assertTrue(dense.holds(coords, [16, 0, 64]))           # a cell's bits may be 0
        self.assertTrue(dense.holds(coords[1:], [0, 64]))
        self.assertFalse(dense.holds(coords, [16, 0, 32]))          # other bits
        self.assertFalse(dense.holds([[1, 0, 0]], [0]))             # absent, inside the box
        self.assertFalse(dense.holds([[9, 0, 0]], [16]))            # outside the box
        self.assertFalse(dense.holds([[0, 0, 0]], [16 | 1 << 31]))  # not a cell's bits

    def test_no_rows_give_no_counts(self):
        grid = vxs.VoxelGrid._from_arrays(np.array([[1, 0, 0]]), np.array([16]))
        self.assertEqual(self.counts(grid, np.zeros((0, 3))).shape, (0,))


@unittest.skipUnless(EMBEDDED, "embedded backend internals")
class EmbeddedOnlyStorage(unittest.TestCase):
    def test_arrays_and_dict_describe_the_same_cells_in_the_same_order(self):
        grid = world({(1, 2, 3): "filled", (-1, 0, 5): "sparse"})
        coords, bits = grid._arrays()
        self.assertEqual((coords.dtype, bits.dtype), (np.int32, np.uint32))
        self.assertEqual(list(zip(map(tuple, coords.tolist()), bits.tolist())),
                         list(grid._cells().items()))

    def test_from_arrays_builds_the_dict_lazily(self):
        grid = vxs.VoxelGrid._from_arrays(np.array([[0, 0, 0], [1, 2, 3]]), np.array([16, 32]))
        self.assertEqual(grid._cells(), {(0, 0, 0): 16, (1, 2, 3): 32})
        self.assertEqual(as_bits(grid.collisions_py([0.6, 0.0, 0.0], [0.5, 0.5, 0.3])), [])

    def test_mutation_drops_arrays_and_derived_data_and_bumps_the_version(self):
        grid = world({(0, 0, 0): "filled"})
        grid._arrays()
        grid._derived()["x"] = 1
        version = grid._version
        grid.add_target_cell([1, 0, 0])
        self.assertEqual(grid._version, version + 1)
        self.assertEqual(grid._derived(), {})
        self.assertEqual(len(grid._arrays()[0]), 2)

    def test_cached_arrays_are_read_only(self):
        coords, _ = world({(0, 0, 0): "filled"})._arrays()
        with self.assertRaises(ValueError):
            coords[0, 0] = 5

    def test_clone_of_an_array_world_shares_arrays_until_mutated(self):
        grid = vxs.VoxelGrid._from_arrays(np.array([[0, 0, 0]]), np.array([16]))
        twin = grid.clone_py()
        self.assertIs(twin._arrays()[0], grid._arrays()[0])
        twin.add_target_cell([5, 5, 5])
        self.assertEqual(len(grid._cells()), 1)

    def test_array_world_answers_point_queries_without_building_the_dict(self):
        rng = np.random.default_rng(5)
        coords = np.unique(rng.integers(-4, 5, size=(300, 3)), axis=0)
        bits = rng.choice([FILLED, SPARSE, TARGET, INTEREST, 0], size=len(coords))
        grid = vxs.VoxelGrid._from_arrays(coords, bits)
        twin = vxs.VoxelGrid._from_cells(dict(zip(map(tuple, coords.tolist()), bits.tolist())))
        for centre in rng.uniform(-6.0, 6.0, size=(200, 3)).tolist():
            with self.subTest(centre=centre):
                self.assertEqual(as_bits(grid.collisions_py(centre, [0.5, 0.5, 0.3])),
                                 as_bits(twin.collisions_py(centre, [0.5, 0.5, 0.3])))
        for centre, half in (([0, 0, 0], [2, 3, 1]), ([4, 4, 4], [3, 3, 3]),
                             ([20, 0, 0], [1, 1, 1]), ([-5, 2, 5], [0, 6, 2])):
            with self.subTest(centre=centre, half=half):
                self.assertEqual(grid.dense_snapshot_py(centre, half).data_py(),
                                 twin.dense_snapshot_py(centre, half).data_py())
        self.assertIsNone(grid._dict)

    def test_a_changed_array_world_answers_from_its_dict(self):
        grid = vxs.VoxelGrid._from_arrays(np.array([[1, 0, 0]]), np.array([FILLED]))
        self.assertEqual(as_bits(grid.collisions_py([0.6, 0.0, 0.0], [0.5, 0.5, 0.3])),
                         [((1, 0, 0), FILLED)])
        grid.add_target_cell([1, 0, 0])
        self.assertIsNone(grid._dense())
        self.assertEqual(as_bits(grid.collisions_py([0.6, 0.0, 0.0], [0.5, 0.5, 0.3])),
                         [((1, 0, 0), TARGET)])

    def test_difference_set_holds_the_added_coordinates(self):
        new = world({(0, 0, 0): "filled", (1, 1, 1): "sparse"})
        old = world({(0, 0, 0): "sparse"})
        self.assertEqual(new.difference_set_from_py(old)._cells(), {(1, 1, 1)})

    def test_large_snapshots_scatter_the_world_into_the_box(self):
        cells = {(x, 0, 0): "filled" for x in range(3)}
        grid = world(cells)
        data = np.array(grid.dense_snapshot_py([0, 0, 0], [20, 20, 20]).data_py()).reshape(41, 41, 41)
        self.assertEqual(sorted(map(tuple, np.argwhere(data == FILLED).tolist())),
                         [(20, 20, 20), (21, 20, 20), (22, 20, 20)])


if __name__ == "__main__":
    unittest.main()
