"""Specification of the dashboard's data (bgen.server.dashboard) and its HTTP routes.

Pure builders are tested on run folders written here; the routes against one in-process
server whose runs folder holds such a run. The page itself is tested in a browser by
test_dashboard_browser.
"""

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np

from bgen.errors import BadRequest, NotFound
from bgen.server import dashboard
from tests.test_server_support import request, start_in_process

POLICY_0 = "def act(t, agent, world, fw, env, helpers):\n    return None\n"
POLICY_1 = "import math\n\ndef act(t, agent, world, fw, env, helpers):\n    return None  # hold\n"


def step_line(i: int, delta: float = 0.01) -> str:
    return json.dumps({"step": i, "t": round(i * delta, 4), "agent_pos": [50.0 + 0.1 * i, 50.0, -20.0],
                       "agent_coord": [50, 50, -20], "yaw": 0.0, "command_len": 1,
                       "collisions_count": 1 if i == 3 else 0, "distance_to_target": 10.0 - 0.01 * i,
                       "frame_time_ms": 0.1, "policy_log": {}}) + "\n"


def write_episode(folder: Path, seed: int, steps: int, summary: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"steps.{seed}.jsonl").write_text("".join(step_line(i) for i in range(steps)))
    if summary is not None:
        (folder / f"summary.{seed}.json").write_text(json.dumps(summary))


def write_run(root: Path, run_id: str = "abc123") -> Path:
    """A finished run of two iterations; iteration 1 had two candidates (candidate 1 chosen)."""
    run_dir = root / run_id
    record = {"run_id": run_id, "status": "done", "created": 1.0, "started": 1.0, "finished": 2.0,
              "request": {"user_goal": "reach it", "scenario": "terrain", "target": [60.0, 60.0, -20.0],
                          "iterations": 2},
              "iterations": [{"iteration": 0, "aggregate": {"success_rate": 0.0}, "success_rate": 0.0},
                             {"iteration": 1, "aggregate": {"success_rate": 1.0}, "success_rate": 1.0}],
              "best_iteration": 1, "best_aggregate": {"success_rate": 1.0}}
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "iter_0").mkdir()
    (run_dir / "iter_0" / "policy.generated.py").write_text(POLICY_0)
    write_episode(run_dir / "iter_0" / "ep_0", 0, 10,
                  {"success": False, "steps": 10, "reason": "max_steps", "start": [50, 50, -20],
                   "target": [60.0, 60.0, -23.0]})
    (run_dir / "iter_1").mkdir()
    (run_dir / "iter_1" / "policy.generated.py").write_text(POLICY_1)
    (run_dir / "iter_1" / "chosen.json").write_text(json.dumps({"candidate": 1}))
    write_episode(run_dir / "iter_1" / "cand_0" / "ep_0", 0, 5, {"success": False, "steps": 5})
    write_episode(run_dir / "iter_1" / "cand_1" / "ep_0", 0, 7,
                  {"success": True, "steps": 7, "checks": [{"kind": "reach", "passed": True}]})
    write_episode(run_dir / "holdout" / "ep_9", 9, 4, {"success": True, "steps": 4})
    return run_dir


class TestStaticFiles(unittest.TestCase):
    def test_the_page_its_scripts_styles_and_vendored_files_are_served_with_their_types(self):
        for rel, content_type in (("index.html", "text/html; charset=utf-8"),
                                  ("app.js", "text/javascript; charset=utf-8"),
                                  ("flight3d.js", "text/javascript; charset=utf-8"),
                                  ("style.css", "text/css; charset=utf-8"),
                                  ("vendor/three/three.module.min.js", "text/javascript; charset=utf-8"),
                                  ("vendor/three/OrbitControls.js", "text/javascript; charset=utf-8"),
                                  ("vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
                                  ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
                                  ("vendor/three/LICENSE", "text/plain; charset=utf-8"),
                                  ("vendor/README.md", "text/markdown; charset=utf-8")):
            with self.subTest(rel=rel):
                found = dashboard.static_file(rel)
                self.assertEqual(found.content_type, content_type)
                self.assertEqual(found.body, (dashboard.STATIC_ROOT / rel).read_bytes())

    def test_paths_that_leave_the_folder_or_name_no_servable_file_are_not_found(self):
        for rel in ("", "../dashboard.py", "vendor/../../dashboard.py", "/etc/passwd", "vendor\\three",
                    "./index.html", "vendor//three/LICENSE", ".hidden", "index.html\0", "missing.js",
                    "vendor", "vendor/three", "../../../bgen_server.py"):
            with self.subTest(rel=rel), self.assertRaises(NotFound) as caught:
                dashboard.static_file(rel)
            self.assertEqual(caught.exception.field, "path")

    def test_a_symlink_out_of_the_folder_is_not_followed(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "static"
            root.mkdir()
            (Path(tmp) / "secret.txt").write_text("no")
            (root / "leak.txt").symlink_to(Path(tmp) / "secret.txt")
            with self.assertRaises(NotFound):
                dashboard.static_file("leak.txt", root)

    def test_the_page_loads_nothing_from_outside_the_server(self):
        page = dashboard.index_page().body.decode()
        self.assertNotRegex(page, r"(src|href)=\"(https?:)?//")
        self.assertIn('"three": "/static/vendor/three/three.module.min.js"', page)
        for rel in ("app.js", "flight3d.js", "style.css"):
            with self.subTest(rel=rel):
                self.assertNotRegex(dashboard.static_file(rel).body.decode(), r"https?://")


class TestEpisodes(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.run_dir = write_run(Path(tmp.name))
        self.record = json.loads((self.run_dir / "run.json").read_text())

    def test_an_episode_has_its_summary_effective_start_and_target_and_whole_track(self):
        view = dashboard.episode_view(self.run_dir, self.record, 0, 0)
        self.assertEqual((view["run_id"], view["iteration"], view["seed"], view["candidate"], view["scenario"]),
                         ("abc123", 0, 0, None, "terrain"))
        self.assertEqual((view["start"], view["target"]), ([50, 50, -20], [60.0, 60.0, -23.0]))
        self.assertEqual(view["summary"]["reason"], "max_steps")
        self.assertIsNone(view["checks"])
        track = view["track"]
        self.assertEqual((track["steps"], track["stride"], track["step"]), (10, 1, list(range(10))))
        self.assertEqual(track["pos"][:6], [50.0, 50.0, -20.0, 50.1, 50.0, -20.0])
        self.assertEqual(track["collisions"][3], 1)
        self.assertAlmostEqual(track["speed"][1], 10.0)    # 0.1 m in 0.01 s
        self.assertEqual(track["speed"][0], 0.0)

    def test_with_several_candidates_the_chosen_ones_episode_is_shown_with_its_checks(self):
        view = dashboard.episode_view(self.run_dir, self.record, 1, 0)
        self.assertEqual((view["candidate"], view["track"]["steps"]), (1, 7))
        self.assertEqual(view["checks"], [{"kind": "reach", "passed": True}])
        self.assertEqual(view["target"], [60.0, 60.0, -20.0])      # the request's, when the summary has none

    def test_holdout_episodes_are_reached_by_the_name_holdout(self):
        self.assertEqual(dashboard.parse_iteration("holdout"), "holdout")
        self.assertEqual(dashboard.episode_view(self.run_dir, self.record, "holdout", 9)["track"]["steps"], 4)
        self.assertEqual(dashboard.episode_seeds(self.run_dir, "holdout"), [9])
        self.assertEqual(dashboard.episode_seeds(self.run_dir, 1), [0])

    def test_a_running_episode_has_no_summary_yet(self):
        write_episode(self.run_dir / "iter_0" / "ep_5", 5, 3)
        view = dashboard.episode_view(self.run_dir, self.record, 0, 5)
        self.assertEqual((view["summary"], view["track"]["steps"]), (None, 3))

    def test_a_missing_iteration_or_seed_is_not_found_naming_it(self):
        for iteration, seed, field, message in (
                (7, 0, "iteration", "run has no iteration 7"),
                (0, 3, "seed", "iteration 0 has no episode with seed 3")):
            with self.subTest(iteration=iteration, seed=seed), self.assertRaises(NotFound) as caught:
                dashboard.episode_view(self.run_dir, self.record, iteration, seed)
            self.assertEqual((caught.exception.field, caught.exception.message), (field, message))

    def test_path_parts_that_are_not_numbers_are_not_found(self):
        for parse, text, message in (
                (dashboard.parse_iteration, "x", "iteration: expects a number or holdout, actual: 'x'"),
                (dashboard.parse_iteration, "-1", "iteration: expects a number or holdout, actual: '-1'"),
                (dashboard.parse_seed, "4294967296", "seed: expects an integer in 0..4294967295, actual: '4294967296'"),
                (dashboard.parse_seed, "1e3", "seed: expects an integer in 0..4294967295, actual: '1e3'")):
            with self.subTest(text=text), self.assertRaises(NotFound) as caught:
                parse(text)
            self.assertEqual(caught.exception.message, message)

    def test_a_long_track_is_decimated_keeping_its_first_and_last_step(self):
        folder = self.run_dir / "iter_0" / "ep_1"
        write_episode(folder, 1, 5001)
        for total, limit in ((5001, 100), (5001, 2000), (5001, 5001), (5001, 2)):
            with self.subTest(limit=limit):
                track = dashboard.decimated_track(folder / "steps.1.jsonl", limit)
                self.assertLessEqual(len(track["t"]), limit + 1)
                self.assertEqual((track["step"][0], track["step"][-1], track["steps"]), (0, 5000, total))
                self.assertEqual(len(track["pos"]), 3 * len(track["t"]))
                self.assertEqual(track["step"], sorted(set(track["step"])))

    def test_a_torn_last_line_is_skipped(self):
        folder = self.run_dir / "iter_0" / "ep_2"
        write_episode(folder, 2, 4)
        with (folder / "steps.2.jsonl").open("a") as handle:
            handle.write('{"step": 4, "t": 0.04, "agent_p')
        track = dashboard.decimated_track(folder / "steps.2.jsonl")
        self.assertEqual(track["step"], [0, 1, 2, 3])


class TestWorlds(unittest.TestCase):
    def test_cells_buried_on_every_side_but_the_bottom_are_left_out(self):
        cube = np.array([(x, y, z) for x in range(3) for y in range(3) for z in range(3)], dtype=np.int32)
        visible = dashboard.visible_cells(cube)
        hidden = [tuple(c) for c, v in zip(cube.tolist(), visible) if not v]
        self.assertEqual(hidden, [(1, 1, 1), (1, 1, 2)])    # the centre, and the one under it (z down)

    def test_interest_cells_are_kept_even_when_buried(self):
        cube = np.array([(x, y, z) for x in range(3) for y in range(3) for z in range(3)], dtype=np.int32)
        bits = np.full(len(cube), dashboard.FILLED, dtype=np.uint32)
        centre = cube.tolist().index([1, 1, 1])
        bits[centre] = dashboard.INTEREST
        payload = dashboard.world_payload("wind_farm", 0, cube, bits)
        self.assertEqual((payload["cells_total"], payload["count"]), (27, 26))
        self.assertIn(dashboard.INTEREST, payload["bits"])
        self.assertEqual(len(payload["coords"]), 3 * payload["count"])
        self.assertEqual(payload["bounds"], {"min": [0, 0, 0], "max": [2, 2, 2]})

    def test_an_empty_world_has_no_cells(self):
        payload = dashboard.world_payload("terrain", 0, np.zeros((0, 3), np.int32), np.zeros(0, np.uint32))
        self.assertEqual((payload["count"], payload["coords"], payload["bits"]), (0, [], []))

    def test_a_world_is_built_once_by_its_scenario_and_then_answered_from_memory(self):
        from bgen.sim import load_backend, scenarios
        vxs = load_backend("embedded")
        cache = dashboard.WorldCache(size=1)
        first = cache.get(vxs, "terrain", 3)
        self.assertIs(cache.get(vxs, "terrain", 3), first)
        payload = json.loads(first)
        coords, bits = dashboard.world_arrays(scenarios.get_scenario("terrain").build(vxs, 3))
        self.assertEqual(payload["cells_total"], len(coords))
        self.assertLess(payload["count"], len(coords))
        kept = set(map(tuple, np.array(payload["coords"]).reshape(-1, 3).tolist()))
        self.assertLessEqual(kept, set(map(tuple, coords.tolist())))
        cache.get(vxs, "terrain", 4)                 # size 1: seed 3 is forgotten
        self.assertIsNot(cache.get(vxs, "terrain", 3), first)


class TestDiffs(unittest.TestCase):
    def test_the_diff_defaults_to_the_latest_iteration_against_the_one_before(self):
        for query, available, expected in (("", [0, 1, 2], (1, 2)), ("to=1", [0, 1, 2], (0, 1)),
                                           ("from=0&to=2", [0, 1, 2], (0, 2)), ("", [0], (0, 0)),
                                           ("to=3", [1, 3], (1, 3))):
            with self.subTest(query=query):
                self.assertEqual(dashboard.parse_diff_query(query, available), expected)

    def test_a_bad_query_is_a_400_and_an_iteration_without_code_a_404(self):
        for query, available, error, field, message in (
                ("to=x", [0], BadRequest, "to", "to: expects an integer in 0..1000000, actual: 'x'"),
                ("since=1", [0], BadRequest, "since", "'since': unknown query parameter; expects from, to"),
                ("from=5", [0, 1], NotFound, "from",
                 "from: run has no policy for iteration 5; iterations with code: [0, 1]"),
                ("", [], NotFound, "to", "run has no policy code yet")):
            with self.subTest(query=query), self.assertRaises(error) as caught:
                dashboard.parse_diff_query(query, available)
            self.assertEqual((type(caught.exception), caught.exception.field, caught.exception.message),
                             (error, field, message))

    def test_the_unified_diff_counts_added_and_removed_lines(self):
        body = dashboard.code_diff("r1", (0, POLICY_0), (1, POLICY_1))
        self.assertEqual((body["run_id"], body["from"], body["to"], body["added"], body["removed"]),
                         ("r1", 0, 1, 3, 1))
        self.assertTrue(body["diff"].startswith("--- iter_0/policy.generated.py\n+++ iter_1/policy.generated.py\n@@"))
        self.assertIn("+import math\n", body["diff"])
        self.assertEqual(dashboard.code_diff("r1", (0, POLICY_0), (0, POLICY_0))["diff"], "")

    def test_a_last_line_without_newline_still_ends_its_diff_line(self):
        body = dashboard.unified_diff("a\nb", "a\nc", "x", "y")
        self.assertTrue(body["diff"].endswith("+c\n"), body["diff"])


class TestRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stop_server = start_in_process(cls, backend="embedded")
        write_run(cls.runs_dir)

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()

    def tearDown(self):
        self.assertEqual([r.getMessage() for r in self.errors.records], [])

    def get(self, path):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def test_the_page_and_static_files_are_served_with_their_content_types(self):
        for path, content_type, source in (
                ("/", "text/html; charset=utf-8", "index.html"),
                ("/static/app.js", "text/javascript; charset=utf-8", "app.js"),
                ("/static/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", "vendor/uplot/uPlot.min.css")):
            with self.subTest(path=path):
                status, headers, body = self.get(path)
                self.assertEqual((status, headers["Content-Type"]), (200, content_type))
                self.assertEqual(body, (dashboard.STATIC_ROOT / source).read_bytes())
                self.assertEqual(headers["X-Content-Type-Options"], "nosniff")

    def test_traversal_and_missing_files_are_404_json(self):
        for path in ("/static/../bgen_server.py", "/static/%2e%2e/%2e%2e/bgen_server.py",
                     "/static/vendor/%2e%2e/%2e%2e/dashboard.py", "/static/nope.js", "/static/"):
            with self.subTest(path=path):
                status, headers, body = self.get(path)
                self.assertEqual(status, 404)
                self.assertEqual(headers["Content-Type"], "application/json")
                self.assertIn("error", json.loads(body))

    def test_an_episode_route_answers_the_episode_view(self):
        status, body, _ = request(self.port, "GET", "/runs/abc123/episodes/1/0")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["candidate"], body["track"]["steps"], body["summary"]["success"]), (1, 7, True))
        for path, field in (("/runs/abc123/episodes/9/0", "iteration"), ("/runs/abc123/episodes/0/8", "seed"),
                            ("/runs/nope/episodes/0/0", "run_id"), ("/runs/abc123/episodes/x/0", "iteration")):
            with self.subTest(path=path):
                status, body, _ = request(self.port, "GET", path)
                self.assertEqual((status, body["field"]), (404, field), body)

    def test_the_world_route_answers_a_scenarios_visible_cells(self):
        status, body, headers = request(self.port, "GET", "/worlds/terrain/0")
        self.assertEqual((status, headers["Content-Type"]), (200, "application/json"))
        self.assertEqual((body["scenario"], body["seed"], len(body["coords"])), ("terrain", 0, 3 * body["count"]))
        self.assertLess(body["count"], body["cells_total"])
        for path, field in (("/worlds/moon/0", "scenario"), ("/worlds/terrain/-1", "seed")):
            with self.subTest(path=path):
                status, body, _ = request(self.port, "GET", path)
                self.assertEqual((status, body["field"]), (404, field), body)
        self.assertEqual(request(self.port, "GET", "/worlds/terrain/0?lod=1")[0], 400)

    def test_the_diff_route_compares_two_iterations_policies(self):
        status, body, _ = request(self.port, "GET", "/code/abc123/diff?from=0&to=1")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["from"], body["to"], body["added"], body["removed"]), (0, 1, 3, 1))
        self.assertEqual(request(self.port, "GET", "/code/abc123/diff")[1]["diff"], body["diff"])
        self.assertEqual(request(self.port, "GET", "/code/nope/diff")[0], 404)
        self.assertEqual(request(self.port, "GET", "/code/abc123/diff?from=4")[1]["field"], "from")

    def test_the_new_routes_take_only_get(self):
        for path in ("/", "/static/app.js", "/worlds/terrain/0", "/code/abc123/diff",
                     "/runs/abc123/episodes/0/0"):
            with self.subTest(path=path):
                status, body, headers = request(self.port, "POST", path, {})
                self.assertEqual(status, 405, body)


if __name__ == "__main__":
    unittest.main()
