"""Specification of the world cache (bgen.sim.worldcache) on the embedded backend."""

import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from bgen.errors import ConfigError
from bgen.runner.episode import EpisodeConfig, ListSink, build_sim, run_episode
from bgen.sim import load_backend, scenarios, worldcache

vxs = load_backend("embedded")

# A policy that edits the world it is given through the public API on every step.
EDITING_POLICY = '''
def init(config):
    pass


def act(t, agent, world, fw, env, helpers):
    world.add_target_cell([50, 50, -90])
    world.add_target_cell([0, 0, 0])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
'''


def address_space() -> int:
    """This process's virtual memory size in bytes (/proc/self/status VmSize)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status
                    if line.startswith("VmSize:"))


def cells(grid) -> dict:
    coords, bits = grid._arrays()
    return dict(zip(map(tuple, coords.tolist()), bits.tolist()))


class WorldCacheTests(unittest.TestCase):
    def setUp(self):
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name) / "world-cache"

    def test_a_world_is_built_once_per_scenario_and_seed_then_served_from_memory(self):
        first = worldcache.world(vxs, "terrain", 3)
        second = worldcache.world(vxs, "terrain", 3)
        self.assertEqual(worldcache.stats(), {"memory": 1, "file": 0, "built": 1})
        self.assertIsNot(first, second)
        self.assertIs(first._arrays()[0], second._arrays()[0])   # shared, read-only
        self.assertEqual(cells(first), cells(scenarios.terrain_world(vxs, 3)))

    def test_another_process_reads_the_world_from_the_directory(self):
        built = cells(worldcache.world(vxs, "terrain", 4, str(self.dir)))
        worldcache.clear_memory()                     # as a fresh worker process starts
        loaded = worldcache.world(vxs, "terrain", 4, str(self.dir))
        self.assertEqual(worldcache.stats(), {"memory": 0, "file": 1, "built": 0})
        self.assertEqual(cells(loaded), built)
        self.assertFalse(loaded._arrays()[0].flags.writeable)
        self.assertEqual(sorted(p.name.split(".")[-2] for p in self.dir.glob("terrain-4-embedded-*.npy")),
                         ["bits", "coords", "dense"])

    def test_the_dense_copy_is_read_from_the_directory_not_built_again(self):
        built = worldcache.world(vxs, "terrain", 4, str(self.dir))._dense()
        worldcache.clear_memory()
        with mock.patch.object(worldcache.DenseCells, "build", side_effect=AssertionError("built")):
            loaded = worldcache.world(vxs, "terrain", 4, str(self.dir))._dense()
        self.assertEqual((loaded.low, loaded.shape), (built.low, built.shape))
        self.assertTrue(np.array_equal(loaded.values, built.values))
        self.assertFalse(loaded.values.flags.writeable)

    def test_a_dense_file_that_does_not_fit_the_world_is_ignored(self):
        expected = cells(worldcache.world(vxs, "terrain", 4, str(self.dir)))
        worldcache.clear_memory()
        dense_file = next(self.dir.glob("terrain-4-*.dense.npy"))
        np.save(dense_file, np.zeros(20, dtype=np.uint32))    # a box of 0 cells, 14 values
        world = worldcache.world(vxs, "terrain", 4, str(self.dir))
        self.assertEqual(worldcache.stats()["file"], 1)
        self.assertEqual(world._dense().shape[0], 201)         # built from the arrays instead
        self.assertEqual(cells(world), expected)
        # once, kept with the world: the next copy shares it
        self.assertIs(worldcache.world(vxs, "terrain", 4, str(self.dir))._dense(), world._dense())

    def test_the_wind_farm_is_one_world_for_every_seed(self):
        worldcache.world(vxs, "wind_farm", 1)
        worldcache.world(vxs, "wind_farm", 2)
        self.assertEqual(worldcache.stats(), {"memory": 1, "file": 0, "built": 1})
        self.assertEqual(worldcache.world_key("wind_farm", 7, "embedded"),
                         worldcache.world_key("wind_farm", 0, "embedded"))
        self.assertNotEqual(worldcache.world_key("terrain", 7, "embedded"),
                            worldcache.world_key("terrain", 0, "embedded"))

    def test_keys_name_the_generator_so_a_changed_generator_is_not_served_stale_cells(self):
        key = worldcache.world_key("terrain", 5, "embedded")
        self.assertEqual(key, f"terrain-5-embedded-{worldcache.generator_fingerprint()}")
        self.assertRegex(worldcache.generator_fingerprint(), r"^[0-9a-f]{12}$")

    def test_a_damaged_file_is_ignored_and_the_world_rebuilt(self):
        expected = cells(worldcache.world(vxs, "terrain", 6, str(self.dir)))
        worldcache.clear_memory()
        coords_file = next(self.dir.glob("terrain-6-*.coords.npy"))
        coords_file.write_bytes(b"not a numpy file")
        self.assertEqual(cells(worldcache.world(vxs, "terrain", 6, str(self.dir))), expected)
        self.assertEqual(worldcache.stats(), {"memory": 0, "file": 0, "built": 1})

    def test_an_empty_file_is_ignored_and_the_world_rebuilt_and_stored_again(self):
        expected = cells(worldcache.world(vxs, "terrain", 6, str(self.dir)))
        for suffix in ("coords", "bits"):
            with self.subTest(emptied=suffix):
                worldcache.clear_memory()
                next(self.dir.glob(f"terrain-6-*.{suffix}.npy")).write_bytes(b"")
                self.assertEqual(cells(worldcache.world(vxs, "terrain", 6, str(self.dir))), expected)
                self.assertEqual(worldcache.stats(), {"memory": 0, "file": 0, "built": 1})
                worldcache.clear_memory()          # healed: the next process reads it
                self.assertEqual(cells(worldcache.world(vxs, "terrain", 6, str(self.dir))), expected)
                self.assertEqual(worldcache.stats(), {"memory": 0, "file": 1, "built": 0})

    def test_a_dense_file_of_another_world_or_not_a_file_is_dropped(self):
        worldcache.world(vxs, "terrain", 1, str(self.dir))
        expected = cells(worldcache.world(vxs, "terrain", 0, str(self.dir)))
        dense_0 = next(self.dir.glob("terrain-0-*.dense.npy"))
        dense_0.write_bytes(next(self.dir.glob("terrain-1-*.dense.npy")).read_bytes())
        worldcache.clear_memory()
        world = worldcache.world(vxs, "terrain", 0, str(self.dir))
        self.assertEqual(worldcache.stats()["file"], 1)
        self.assertEqual(world._dense().get((50, 50, -20)), dict(expected).get((50, 50, -20)))
        self.assertEqual({c: world._dense().get(c) for c in list(expected)[:500]},
                         dict(list(expected.items())[:500]))
        dense_0.unlink()
        os.mkfifo(dense_0)                       # a reader must not block on it
        worldcache.clear_memory()
        self.assertEqual(cells(worldcache.world(vxs, "terrain", 0, str(self.dir))), expected)

    def test_files_beyond_the_budget_are_removed_oldest_first(self):
        with mock.patch.object(worldcache, "FILE_BUDGET_BYTES", 10_000_000):   # one world's files
            for seed in (7, 8):
                worldcache.world(vxs, "terrain", seed, str(self.dir))
        self.assertEqual([p.name.split("-")[1] for p in self.dir.glob("*.coords.npy")], ["8"])

    def test_memory_beyond_the_budget_forgets_the_least_recently_used_world(self):
        with mock.patch.object(worldcache, "MEMORY_BUDGET_BYTES", 3_000_000):
            for seed in (9, 10, 9):
                worldcache.world(vxs, "terrain", seed)
        self.assertEqual(worldcache.stats(), {"memory": 0, "file": 0, "built": 3})

    def test_a_world_marked_used_is_evicted_last(self):
        for seed in (9, 10, 11):
            worldcache.world(vxs, "terrain", seed)
        all_three = worldcache._memory_bytes
        worldcache.clear_memory()
        with mock.patch.object(worldcache, "MEMORY_BUDGET_BYTES", all_three - 1):
            for seed in (9, 10):
                worldcache.world(vxs, "terrain", seed)
            self.assertTrue(worldcache.holds(vxs, "terrain", 9, touch=True))
            worldcache.world(vxs, "terrain", 11)              # over the budget: 10 goes
        self.assertTrue(worldcache.holds(vxs, "terrain", 9))
        self.assertFalse(worldcache.holds(vxs, "terrain", 10))

    def test_room_is_made_only_from_worlds_idle_long_enough(self):
        for seed in (9, 10):
            worldcache.world(vxs, "terrain", seed)
        two = worldcache._memory_bytes
        with mock.patch.object(worldcache, "MEMORY_BUDGET_BYTES", two + 1000):
            self.assertTrue(worldcache.make_room(1000, idle_s=60))        # fits as it is
            self.assertFalse(worldcache.make_room(two // 2, idle_s=60))   # both just used
            self.assertTrue(worldcache.holds(vxs, "terrain", 9))
            nine = worldcache.world_key("terrain", 9, "embedded")
            worldcache._used_at[nine] -= 100                              # idle for 100 s
            self.assertTrue(worldcache.make_room(two // 2, idle_s=60))
        self.assertFalse(worldcache.holds(vxs, "terrain", 9))
        self.assertTrue(worldcache.holds(vxs, "terrain", 10))
        self.assertEqual(worldcache._memory_bytes, worldcache._sizes[
            worldcache.world_key("terrain", 10, "embedded")])

    def test_keep_only_drops_every_other_world_and_its_bytes(self):
        for seed in (5, 6, 7):
            worldcache.world(vxs, "terrain", seed)
        worldcache.world(vxs, "wind_farm", 0)
        worldcache.clear_memory()
        worldcache.world(vxs, "terrain", 6)
        own = worldcache._memory_bytes
        for seed in (5, 7):
            worldcache.world(vxs, "terrain", seed)
        worldcache.world(vxs, "wind_farm", 0)
        worldcache.keep_only(vxs, "terrain", 6)
        self.assertEqual([worldcache.holds(vxs, "terrain", seed) for seed in (5, 6, 7)],
                         [False, True, False])
        self.assertFalse(worldcache.holds(vxs, "wind_farm", 0))
        self.assertEqual(worldcache._memory_bytes, own)
        worldcache.forget(vxs, "terrain", 6)
        self.assertFalse(worldcache.holds(vxs, "terrain", 6))
        self.assertEqual(worldcache._memory_bytes, 0)

    def test_an_unknown_scenario_is_a_config_error(self):
        with self.assertRaises(ConfigError) as caught:
            worldcache.world(vxs, "moon", 0)
        self.assertEqual(str(caught.exception),
                         "scenario: expects one of terrain, wind_farm, actual: 'moon'")


class EpisodesCannotChangeTheCachedWorldTests(unittest.TestCase):
    def setUp(self):
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)

    def test_a_policy_that_edits_its_world_leaves_the_next_episodes_world_as_built(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = EpisodeConfig(max_steps=5, backend="embedded", world_cache_dir=tmp,
                                   start=(50, 50, -60), target=(56, 56, -60))
            before = cells(worldcache.world(vxs, "terrain", 11, tmp))
            sim = build_sim(vxs, config, 11)
            outcome = run_episode(EDITING_POLICY, vxs, config, 11, ListSink(), sim=sim)
            self.assertIsNone(outcome.summary.error)
            self.assertEqual(outcome.summary.steps, 5)
            self.assertEqual(sim.world._cells()[(50, 50, -90)], 128)   # the edit happened
            after = worldcache.world(vxs, "terrain", 11, tmp)
            self.assertEqual(cells(after), before)
            self.assertNotIn((50, 50, -90), cells(after))
            worldcache.clear_memory()                  # and the file the next worker reads
            self.assertEqual(cells(worldcache.world(vxs, "terrain", 11, tmp)), before)

    def test_a_changed_copy_does_not_change_its_siblings_or_the_arrays(self):
        world, sibling = worldcache.world(vxs, "terrain", 12), worldcache.world(vxs, "terrain", 12)
        coords, bits = world._arrays()
        snapshot = (coords.copy(), bits.copy())
        world.add_target_cell([1, 1, -80])
        self.assertIn((1, 1, -80), world._cells())
        self.assertNotIn((1, 1, -80), sibling._cells())
        np.testing.assert_array_equal(sibling._arrays()[0], snapshot[0])
        np.testing.assert_array_equal(sibling._arrays()[1], snapshot[1])
        with self.assertRaises(ValueError):
            coords[0, 0] = 99


STATS_POLICY = """
def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    cache = sys.modules["bgen.sim.worldcache"]
    return {"served": str(cache.stats())}


def finalize(ep_ctx):
    return None
"""


class PlannerObstaclesAreBuiltOncePerWorldTests(unittest.TestCase):
    def setUp(self):
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)

    def test_copies_share_the_obstacles_read_only_and_plan_as_a_fresh_world_does(self):
        from bgen.sim.embedded import planner
        worldcache.world(vxs, "terrain", 15)                      # kept in memory
        before = worldcache._memory_bytes
        worldcache.prepare_planner(vxs, "terrain", 15)
        self.assertEqual(worldcache.stats(), {"memory": 0, "file": 0, "built": 1})
        first, second = worldcache.world(vxs, "terrain", 15), worldcache.world(vxs, "terrain", 15)
        for padding in worldcache.PLANNER_PADDINGS:
            self.assertIs(planner._obstacles(first, padding), planner._obstacles(second, padding))
        shared = planner._obstacles(first, 0)
        with self.assertRaises(TypeError):
            shared.occupied[0] = 1
        kept_bytes = sum(len(planner._obstacles(first, padding).occupied)
                         for padding in worldcache.PLANNER_PADDINGS)
        self.assertEqual(worldcache._memory_bytes - before, kept_bytes)   # within the budget
        fresh = scenarios.terrain_world(vxs, 15)
        route = ([50, 50, -60], [58, 57, -60])
        for padding in (0, 1, 2):
            with self.subTest(padding=padding):
                self.assertEqual(
                    vxs.AStarActionPlanner(padding).plan_action_py(
                        second, *route, 1.0, 0.0).get_move_sequence(),
                    vxs.AStarActionPlanner(padding).plan_action_py(
                        fresh, *route, 1.0, 0.0).get_move_sequence())
        first.add_target_cell([1, 1, -80])                       # a changed copy plans on its
        self.assertIsInstance(planner._obstacles(first, 0), dict)    # own cells
        self.assertIs(planner._obstacles(second, 0), shared)

    def test_a_forked_process_that_drops_the_other_worlds_gives_back_their_obstacles(self):
        """Prepared obstacles live in mappings of their own: a policy process dropping the
        host's other worlds shrinks the address space its limit counts by at least them."""
        from bgen.sim.embedded import planner
        for seed in (17, 18, 19):
            worldcache.world(vxs, "terrain", seed)
        freed = np.ones(32 * 1024 * 1024, dtype=np.uint8)   # freeing a big block makes glibc
        del freed                                            # serve the next ones from its heap
        others = 0
        for seed in (17, 18, 19):
            worldcache.prepare_planner(vxs, "terrain", seed)
            if seed != 17:
                grid = worldcache.world(vxs, "terrain", seed)
                others += sum(len(planner._obstacles(grid, padding).occupied)
                              for padding in worldcache.PLANNER_PADDINGS)
                del grid                       # only the cache holds the world
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            before = address_space()
            worldcache.keep_only(vxs, "terrain", 17)
            os.write(write, str(before - address_space()).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as answer:
            given_back = int(answer.read())
        os.waitpid(pid, 0)
        self.assertGreaterEqual(given_back, others)

    def test_nothing_is_prepared_for_a_world_not_kept_or_on_another_backend(self):
        worldcache.prepare_planner(vxs, "terrain", 16)
        self.assertEqual(worldcache.stats(), {"memory": 0, "file": 0, "built": 0})
        self.assertFalse(worldcache.holds(vxs, "terrain", 16))
        with mock.patch.object(worldcache, "backend_label", return_value="voxelsim"):
            worldcache.prepare_planner(vxs, "terrain", 16)
        self.assertFalse(worldcache.holds(vxs, "terrain", 16))


class PolicyProcessesReadTheCallersCacheTests(unittest.TestCase):
    """The cache directory is outside a policy process's mount view and Landlock rules: the
    caller hands it the world's files, so it neither builds the world nor sees the folder."""

    def test_a_policy_process_is_served_the_stored_world_from_the_files_it_is_handed(self):
        from tests.test_isolation import GrantedModules
        from bgen.runner.worker import run_episodes
        with tempfile.TemporaryDirectory() as tmp:      # under /tmp: not in the sandbox's view
            config = EpisodeConfig(max_steps=2, backend="embedded", world_cache_dir=tmp,
                                   start=(50, 50, -60), target=(56, 56, -60))
            worldcache.world(vxs, "terrain", 13, tmp)            # stored, as graders do
            with GrantedModules():
                [summary] = run_episodes(STATS_POLICY, [13], config, Path(tmp) / "out",
                                         workers=1, step_events=False)
            self.assertEqual(summary["reason"], "max_steps", summary)
            steps = (Path(tmp) / "out" / "ep_13" / "steps.13.jsonl").read_text().splitlines()
            # Mapped from the files (by the sandbox host, which forked it), never built; the
            # counters are the host's too, so the file count covers the worlds it keeps.
            served = json.loads(steps[-1])["policy_log"]["served"]
            self.assertIn("'built': 0", served)
            self.assertNotIn("'file': 0", served)

    def test_a_world_stored_without_its_dense_file_is_still_not_built(self):
        from tests.test_isolation import GrantedModules
        from bgen.runner.worker import run_episodes
        with tempfile.TemporaryDirectory() as tmp:
            config = EpisodeConfig(max_steps=2, backend="embedded", world_cache_dir=tmp,
                                   start=(50, 50, -60), target=(56, 56, -60))
            worldcache.world(vxs, "terrain", 28, tmp)
            worldcache.stored_paths(vxs, "terrain", 28, tmp)[2].unlink()
            with GrantedModules():
                [summary] = run_episodes(STATS_POLICY, [28], config, Path(tmp) / "out",
                                         workers=1, step_events=False)
            self.assertEqual(summary["reason"], "max_steps", summary)
            steps = (Path(tmp) / "out" / "ep_28" / "steps.28.jsonl").read_text().splitlines()
            self.assertIn("'built': 0", json.loads(steps[-1])["policy_log"]["served"])

    def test_policy_processes_inherit_the_world_and_its_obstacles_from_the_host(self):
        from tests.test_isolation import GrantedModules
        from bgen.runner import zygote
        from bgen.runner.worker import run_episodes
        zygote.stop_hosts()            # a host of its own: the suite's worlds fill a shared one
        with tempfile.TemporaryDirectory() as tmp:
            config = EpisodeConfig(max_steps=2, backend="embedded", world_cache_dir=tmp,
                                   start=(50, 50, -60), target=(56, 56, -60))
            worldcache.world(vxs, "terrain", 14, tmp)
            worldcache.world(vxs, "terrain", 25, tmp)
            with GrantedModules():
                run_episodes(INHERITED_POLICY, [25], config, Path(tmp) / "other", workers=1,
                             step_events=False)          # the host keeps world 25 as well
                summaries = run_episodes(INHERITED_POLICY, [14], config, Path(tmp) / "a",
                                         workers=1, step_events=False)
                summaries += run_episodes(INHERITED_POLICY, [14], config, Path(tmp) / "b",
                                          workers=1, step_events=False)
            for name, summary in zip("ab", summaries):
                with self.subTest(run=name):
                    self.assertEqual(summary["reason"], "max_steps", summary)
                    # before the policy planned anything, its world held both paddings'
                    steps = (Path(tmp) / name / "ep_14" / "steps.14.jsonl").read_text()
                    notes = json.loads(steps.splitlines()[0])["policy_log"]
                    self.assertEqual(notes["obstacles"], "[0, 1]")
                    # and none of the host's other worlds: they would count against its
                    # address-space limit
                    self.assertEqual(notes["worlds"], "1")
                    # the host's measure of the policy process
                    self.assertIsInstance(summary["cpu_time_s"], float)
                    self.assertGreater(summary["cpu_time_s"], 0.0)


INHERITED_POLICY = """
seen = {}


def act(t, agent, world, fw, env, helpers):
    if not seen:
        dense = sys.modules["builtins"].getattr(world, "_dense")()
        seen["obstacles"] = str(sorted(key[1] for key in dense.derived
                                       if key[0] == "astar-obstacles"))
        kept = sys.modules["builtins"].getattr(sys.modules["bgen.sim.worldcache"], "_memory")
        seen["worlds"] = str(len(kept))
    return None


def collect(step_ctx):
    return dict(seen)


def finalize(ep_ctx):
    return None
"""


class WhereRunsCacheWorldsTests(unittest.TestCase):
    def test_the_loop_caches_worlds_beside_the_run_directory_unless_told(self):
        from bgen.orchestrator.loop import LoopConfig, with_world_cache
        config = LoopConfig(policy_code="x = 1", episode=EpisodeConfig(backend="embedded"))
        placed = with_world_cache(config, Path("runs") / "abc123")
        self.assertEqual(placed.episode.world_cache_dir, str(Path("runs") / "world-cache"))
        told = LoopConfig(policy_code="x = 1",
                          episode=EpisodeConfig(backend="embedded", world_cache_dir="/tmp/w"))
        self.assertEqual(with_world_cache(told, Path("runs/abc")).episode.world_cache_dir, "/tmp/w")

    def test_run_policy_caches_worlds_beside_its_output_directory(self):
        from bgen.runner import run_policy
        args = run_policy.build_parser().parse_args(
            ["--policy", "p.py", "--outdir", str(Path("out") / "bgen")])
        self.assertEqual(run_policy.config_from_args(args).world_cache_dir,
                         str(Path("out") / "world-cache"))

    def test_a_cache_directory_must_be_a_path_string(self):
        with self.assertRaises(ConfigError) as caught:
            EpisodeConfig(world_cache_dir=Path("w"))
        self.assertEqual(str(caught.exception),
                         "world_cache_dir: expects a directory path or None, actual: PosixPath('w')")


if __name__ == "__main__":
    unittest.main()
