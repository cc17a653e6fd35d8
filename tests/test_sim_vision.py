"""Specification of agent vision: FilterWorld, AgentVisionRenderer, NoiseParams.

The camera sits at the origin looking along +x (voxelsim's Forward) with the image's up along
-z, unless a test says otherwise; every cell is a unit cube centred on its coordinate.
"""

import threading
import time
import unittest

import numpy as np

import bgen.sim.embedded as vxs
from bgen.sim.embedded import vision
from tests.timing import scaled

TIMEOUT = scaled(10.0)  # every bounded wait in this module


def world_of(cells: dict) -> "vxs.VoxelGrid":
    """A world from {(x, y, z): bits} (bits may be 0, which the Python API cannot build)."""
    return vxs.VoxelGrid._from_cells(dict(cells))


def wall(x: int, half: int, bits: int = 16) -> dict:
    return {(x, y, z): bits for y in range(-half, half + 1) for z in range(-half, half + 1)}


def camera_at(pos=(0.0, 0.0, 0.0), tilt: float = 0.0):
    agent = vxs.Agent(0)
    agent.set_pos(list(pos))
    return agent.camera_view_py(vxs.CameraOrientation.vertical_tilt_py(tilt))


def seen(changeset) -> set:
    return {tuple(c) for c in changeset.insert_coords.tolist()}


def carved(changeset) -> set:
    return {tuple(c) for c in changeset.remove_coords.tolist()}


class Observe:
    """Synchronous observations through the renderer (no thread, nothing applied)."""

    @staticmethod
    def look(cells: dict, camera=None, noise=None, filter_cells=(), dynamic=None,
             size=(200, 150)):
        renderer = vxs.AgentVisionRenderer(world_of(cells), list(size),
                                           noise or vxs.NoiseParams.none_py())
        fw = vxs.FilterWorld()
        if filter_cells:
            fw._apply(vision.Changeset(np.array(list(filter_cells), np.int32).reshape(-1, 3),
                                       np.full(len(filter_cells), 16, np.uint32),
                                       np.zeros((0, 3), np.int32)), -1.0)
        return renderer._observe_now(camera or camera_at(), vxs.CameraProjection.default_py(),
                                     fw, world_of(dynamic or {}))


class TestWhatTheCameraSees(unittest.TestCase, Observe):
    def test_a_wall_in_front_is_seen_cell_by_cell(self):
        change = self.look(wall(10, 3))
        self.assertEqual(seen(change), set(wall(10, 3)))
        self.assertEqual(change.insert_bits.tolist(), [16] * 49)

    def test_cells_behind_the_wall_are_not_seen(self):
        cells = {**wall(10, 3), **wall(12, 2, bits=32)}
        self.assertEqual(seen(self.look(cells)), set(wall(10, 3)))

    def test_cells_outside_the_frustum_are_not_seen(self):
        cases = {
            "behind the camera": (-10, 0, 0),
            "left of the field of view": (10, -30, 0),
            "above the field of view": (10, 0, -20),
            "beyond max_distance": (60, 0, 0),
            "around the eye": (0, 0, 0),
            # Its front face (x = 0.5) is nearer than the clip depth 2·near·max/(near+max)
            # ≈ 0.99 and its other faces face away: not drawn, and it hides nothing.
            "cut by the near clip": (1, 0, 0),
        }
        visible = (45, 0, 0)
        change = self.look({**{c: 16 for c in cases.values()}, visible: 16})
        self.assertEqual(seen(change), {visible})
        for name, cell in cases.items():
            with self.subTest(name):
                self.assertNotIn(cell, seen(change))

    def test_the_camera_pose_and_tilt_decide_the_view(self):
        below = {(10, 0, 8): 16}  # 8 cells down (z grows downwards), 10 ahead
        self.assertEqual(seen(self.look(below)), set())
        self.assertEqual(seen(self.look(below, camera=camera_at(tilt=-0.7))), {(10, 0, 8)})
        self.assertEqual(seen(self.look(below, camera=camera_at(pos=(0.0, 0.0, 8.0)))),
                         {(10, 0, 8)})

    def test_a_cell_with_no_flags_hides_what_is_behind_it_but_is_not_recorded(self):
        change = self.look({**wall(10, 1, bits=0), (12, 0, 0): 16})
        self.assertEqual(seen(change), set())

    def test_dynamic_cells_are_drawn_with_the_world(self):
        change = self.look(wall(20, 2), dynamic={(10, 0, 0): 128})
        self.assertIn((10, 0, 0), seen(change))
        self.assertNotIn((20, 0, 0), seen(change))  # hidden by the dynamic cell

    def test_the_world_is_the_one_given_at_construction(self):
        world = world_of(wall(10, 1))
        renderer = vxs.AgentVisionRenderer(world, [100, 75], vxs.NoiseParams.none_py())
        world.add_target_cell([5, 0, 0])
        change = renderer._observe_now(camera_at(), vxs.CameraProjection.default_py())
        self.assertEqual(seen(change), set(wall(10, 1)))


class TestChunkedCulling(unittest.TestCase):
    def test_culling_by_chunk_sees_exactly_what_culling_by_cell_sees(self):
        rng = np.random.default_rng(11)
        coords = np.unique(rng.integers(-60, 60, (20000, 3)), axis=0).astype(np.int32)
        bits = rng.integers(1, 512, len(coords)).astype(np.uint32)
        chunks = vision.ChunkedCells(coords, bits)
        for k in range(6):
            with self.subTest(view=k):
                forward = rng.normal(size=3)
                view = vision.View(eye=rng.uniform(-20, 20, 3), forward=forward / np.linalg.norm(forward),
                                   up=np.array([0.0, 0.0, -1.0]))
                by_cell = vision.observe(coords, bits, view, (80, 60), None)
                by_chunk = vision.observe(coords, bits, view, (80, 60), None, static_chunks=chunks)
                self.assertGreater(len(by_cell.insert_coords), 0)
                self.assertEqual(seen(by_chunk), seen(by_cell))


class TestCarving(unittest.TestCase, Observe):
    def test_filter_cells_seen_to_be_empty_are_removed_and_others_kept(self):
        filter_cells = {"in front of the wall": (5, 0, 0), "behind the wall": (12, 0, 0),
                        "outside the view": (5, 30, 0), "the wall itself": (10, 0, 0)}
        change = self.look(wall(10, 3), filter_cells=filter_cells.values())
        self.assertEqual(carved(change), {(5, 0, 0)})

    def test_empty_space_up_to_max_distance_is_carved(self):
        change = self.look({}, filter_cells=[(30, 0, 0), (49, 0, 0), (55, 0, 0)])
        self.assertEqual(carved(change), {(30, 0, 0), (49, 0, 0)})


class TestNoise(unittest.TestCase, Observe):
    def test_noise_moves_what_is_seen_deterministically(self):
        cells = wall(30, 8)
        noise = vxs.NoiseParams.default_with_seed_py([0.0, 0.0, 0.0])
        first, again = self.look(cells, noise=noise), self.look(cells, noise=noise)
        self.assertEqual(seen(first), seen(again))
        self.assertNotEqual(seen(first), set(cells))
        # Cells move along their line of sight, by at most 0.4 · distance · |fbm|.
        depths = first.insert_coords[:, 0]
        self.assertTrue(((depths > 10) & (depths < 50)).all())

    def test_noise_params_none_sees_the_truth(self):
        self.assertEqual(seen(self.look(wall(30, 8), noise=vxs.NoiseParams.none_py())),
                         set(wall(30, 8)))

    def test_simplex_noise_is_zero_on_the_lattice_origin(self):
        zeros = [np.zeros(1, np.float32) for _ in range(6)]
        self.assertEqual(vision.simplex6(zeros).tolist(), [0.0])

    def test_hash_mixing_wraps_at_32_bits_like_the_shader(self):
        def mix32(h):
            h ^= h >> 16
            h = (h * 0x7FEB352D) & 0xFFFFFFFF
            h ^= h >> 15
            h = (h * 0x846CA68B) & 0xFFFFFFFF
            return h ^ (h >> 16)
        values = [0, 1, 0x9E3779B9, 0xFFFFFFFF, 123456789]
        got = vision._mix32(np.array(values, dtype=np.uint32)).tolist()
        self.assertEqual(got, [mix32(v) for v in values])

    def test_noise_params_have_no_constructor(self):
        with self.assertRaises(TypeError) as caught:
            vxs.NoiseParams()
        self.assertEqual(str(caught.exception), "No constructor defined for NoiseParams")


class TestFilterWorldUpdates(unittest.TestCase):
    def setUp(self):
        self.renderer = vxs.AgentVisionRenderer(world_of(wall(10, 2)), [100, 75],
                                                vxs.NoiseParams.none_py())
        self.fw = vxs.FilterWorld()
        self.proj = vxs.CameraProjection.default_py()

    def update(self, timestamp, callback, dynamic=None):
        self.renderer.update_filter_world_py(camera_at(), self.proj, self.fw,
                                             dynamic or vxs.VoxelGrid(), timestamp, callback)

    def test_an_update_fills_the_filter_world_then_calls_back(self):
        done = threading.Event()
        calls = []
        self.assertIsNone(self.fw.timestamp_py())
        self.update(1.5, lambda fw, ts: (calls.append((fw, ts)), done.set()))
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(calls, [(self.fw, 1.5)])
        self.assertEqual(self.fw.timestamp_py(), 1.5)
        self.assertFalse(self.fw.is_updating_py(1.5))
        coords, values = self.fw.as_numpy()
        self.assertEqual({tuple(c) for c in coords.astype(int).tolist()}, set(wall(10, 2)))
        self.assertEqual(values.tolist(), [1.0] * 25)
        snapshot = self.fw.dense_snapshot_py([10, 0, 0], [1, 0, 0]).data_py()
        self.assertEqual(snapshot, [0, 16, 0])

    def test_a_timestamp_is_updating_until_its_result_is_applied(self):
        release, first_done, second_done = threading.Event(), threading.Event(), threading.Event()

        def hold_the_thread(fw, ts):
            first_done.set()
            release.wait(TIMEOUT)

        self.update(1.0, hold_the_thread)
        self.assertTrue(first_done.wait(TIMEOUT))
        self.update(2.0, lambda fw, ts: second_done.set())
        self.assertTrue(self.fw.is_updating_py(2.0))
        self.assertFalse(self.fw.is_updating_py(1.0))  # applied before its callback ran
        self.assertFalse(self.fw.is_updating_py(3.0))
        release.set()
        self.assertTrue(second_done.wait(TIMEOUT))
        self.assertFalse(self.fw.is_updating_py(2.0))
        self.assertEqual(self.fw.timestamp_py(), 2.0)

    def test_a_failing_callback_is_ignored(self):
        done = threading.Event()
        self.update(1.0, lambda fw, ts: 1 / 0)
        self.update(2.0, "not callable")
        self.update(3.0, lambda fw, ts: done.set())
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(self.fw.timestamp_py(), 3.0)

    def test_render_changeset_hands_over_a_changeset_to_apply_later(self):
        got, done = [], threading.Event()
        self.renderer.render_changeset_py(camera_at((0.5, 0.0, 0.0)), self.proj, self.fw,
                                          vxs.VoxelGrid(), 4.0,
                                          lambda change: (got.append(change), done.set()))
        self.assertTrue(done.wait(TIMEOUT))
        change = got[0]
        self.assertEqual((change.timestamp_py(), change.camera_pos_py(), change.camera_dir_py()),
                         (4.0, [0.5, 0.0, 0.0], [1.0, 0.0, 0.0]))
        self.assertTrue(self.fw.is_updating_py(4.0))  # until someone applies it
        self.assertEqual(len(self.fw.as_numpy()[1]), 0)
        change.update_filter_world_py(self.fw)
        self.assertFalse(self.fw.is_updating_py(4.0))
        self.assertEqual((self.fw.timestamp_py(), len(self.fw.as_numpy()[1])), (4.0, 25))

    def test_the_render_thread_ends_with_its_renderer(self):
        done = threading.Event()
        self.update(1.0, lambda fw, ts: done.set())
        self.assertTrue(done.wait(TIMEOUT))
        thread = self.renderer._thread
        del self.renderer
        thread.join(TIMEOUT)
        self.assertFalse(thread.is_alive())

    def test_update_takes_exactly_voxelsims_six_arguments(self):
        camera, fw = camera_at(), self.fw
        cases = [
            ((camera, self.proj, fw, 1.0, print),  # the five-argument call: no dynamic world
             "AgentVisionRenderer.update_filter_world_py() missing 1 required positional "
             "argument: 'callback'"),
            ((camera, self.proj, fw, vxs.VoxelGrid(), 1.0, print, None),
             "AgentVisionRenderer.update_filter_world_py() takes 6 positional arguments but "
             "7 were given"),
            ((camera, self.proj),
             "AgentVisionRenderer.update_filter_world_py() missing 4 required positional "
             "arguments: 'filter_world', 'dynamic_world', 'timestamp', and 'callback'"),
            ((self.proj, self.proj, fw, vxs.VoxelGrid(), 1.0, print),
             "argument 'camera': 'CameraProjection' object cannot be converted to 'CameraView'"),
            ((camera, self.proj, fw, vxs.VoxelGrid(), "now", print),
             "argument 'timestamp': must be real number, not str"),
        ]
        for args, message in cases:
            with self.subTest(message):
                with self.assertRaises(TypeError) as caught:
                    self.renderer.update_filter_world_py(*args)
                self.assertEqual(str(caught.exception), message)
        self.assertFalse(fw.is_updating_py(1.0))


class TestVisionTiming(unittest.TestCase):
    def test_a_200_by_150_view_of_a_terrain(self):
        try:
            generator = vxs.TerrainGenerator()
            config = vxs.TerrainConfig.default_py()
            config.set_world_dimensions_py(200, 30, 200)
            generator.generate_terrain_py(config)
            world = generator.generate_world_py()
            coords, _ = world._arrays()
        except Exception:
            self.skipTest("terrain generator not available")
        # Hover 12 cells above the terrain's highest point near the centre (z grows downwards).
        centre = coords[(np.abs(coords[:, 0] - 100) < 3) & (np.abs(coords[:, 1] - 100) < 3)]
        top = float(centre[:, 2].min()) if len(centre) else 0.0
        camera = camera_at((100.0, 100.0, top - 12.0), tilt=-0.5)
        proj = vxs.CameraProjection.default_py()
        for label, noise in (("noise off", vxs.NoiseParams.none_py()),
                             ("default noise", vxs.NoiseParams.default_with_seed_py([0, 0, 0]))):
            renderer = vxs.AgentVisionRenderer(world, [200, 150], noise)
            fw = vxs.FilterWorld()
            times = []
            for _ in range(3):
                started = time.perf_counter()
                change = renderer._observe_now(camera, proj, fw)
                times.append(time.perf_counter() - started)
                fw._apply(change, 0.0)
            print(f"\n  vision 200x150, {len(coords)} world cells, {label}: "
                  f"median {sorted(times)[1] * 1000:.1f} ms, {len(change.insert_coords)} seen")
            self.assertGreater(len(change.insert_coords), 0)


if __name__ == "__main__":
    unittest.main()
