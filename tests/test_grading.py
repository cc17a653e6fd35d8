"""Specification of the grader processes (bgen.runner.grading): the same grade as the caller
would compute, no secret in their environment, and a dead grader costing only speed."""

import json
import os
import signal
import tempfile
import time
import unittest
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

from bgen.runner import grading, replay, worker
from bgen.runner.episode import EpisodeConfig, ListSink, run_episode
from bgen.runner.worker import run_episodes
from bgen.sim import load_backend, worldcache
from tests.timing import scaled

POLICY = (Path(__file__).parent / "policies" / "move_to_target.py").read_text()
CONFIG = EpisodeConfig(backend="embedded", max_steps=1500, start=(50, 50, -60),
                       target=(56, 56, -60), render=False)


class _Keep:
    def __init__(self):
        self.steps = []

    def step(self, log):
        self.steps.append(log)

    def warning(self, message):
        pass

    def phase(self, name):
        pass


def recorded_episode(seed: int = 3):
    sink = _Keep()
    outcome = run_episode(POLICY, load_backend("embedded"), CONFIG, seed, sink)
    records = [{"agent_pos": s["agent_pos"], "commands": s["commands"]} for s in sink.steps]
    return outcome.summary.to_dict(), records


class GraderTest(unittest.TestCase):
    def setUp(self):
        grading.shutdown()           # graders other tests of this process started

    def tearDown(self):
        grading.shutdown()

    def test_a_grader_process_grades_exactly_as_the_caller_would(self):
        summary, records = recorded_episode()
        here = grading.graded_summary(summary, records, CONFIG, 3)
        there = grading.submit(summary, records, CONFIG, 3).result(timeout=scaled(30))
        self.assertEqual(there, here)
        self.assertTrue(there["success"], there)
        forged = [dict(r, agent_pos=[v + 1.0 for v in r["agent_pos"]]) for r in records]
        self.assertEqual(grading.submit(summary, forged, CONFIG, 3).result(timeout=scaled(30))
                         ["reason"], "tampered")

    def test_graders_hold_no_secret_from_the_caller_environment(self):
        os.environ["BGEN_TEST_CANARY_KEY"] = "sk-canary"
        try:
            summary, records = recorded_episode()
            grading.submit(summary, records, CONFIG, 3).result(timeout=scaled(30))
        finally:
            del os.environ["BGEN_TEST_CANARY_KEY"]
        [grader] = grading._graders
        environ = Path(f"/proc/{grader.process.pid}/environ").read_bytes()
        self.assertNotIn(b"sk-canary", environ)
        self.assertNotIn(b"BGEN_TEST_CANARY_KEY", environ)

    def test_a_grader_that_dies_owing_a_grade_is_answered_by_grading_in_the_caller(self):
        summary, records = recorded_episode()
        grading.submit(summary, records, CONFIG, 3).result(timeout=scaled(30))   # started
        [grader] = grading._graders
        os.kill(grader.process.pid, signal.SIGSTOP)       # it cannot answer what it is sent now
        owed = grader.submit("grade", summary, records, CONFIG, 3)
        grader.process.kill()
        grader.process.wait()
        with self.assertRaises(OSError):
            owed.result(timeout=scaled(10))
        self.assertTrue(grading.result_or_inline(owed, summary, records, CONFIG, 3)["success"])
        again = grading.submit(summary, records, CONFIG, 3)     # a new grader is started
        self.assertTrue(again.result(timeout=scaled(30))["success"])
        self.assertNotIn(grader, grading._graders)

    def test_a_grade_given_up_on_does_not_stop_the_grader_answering(self):
        summary, records = recorded_episode()
        grading.submit(summary, records, CONFIG, 3).result(timeout=scaled(30))   # started
        [grader] = grading._graders
        os.kill(grader.process.pid, signal.SIGSTOP)
        try:
            abandoned = grader.submit("grade", summary, records, CONFIG, 3)
            self.assertTrue(abandoned.cancel())          # the caller gave up (an exception, say)
        finally:
            os.kill(grader.process.pid, signal.SIGCONT)  # its answer now meets a cancelled future
        later = grader.submit("grade", summary, records, CONFIG, 3)
        self.assertTrue(later.result(timeout=scaled(30))["success"])

    def test_a_replay_past_its_budget_is_tampered(self):
        summary, records = recorded_episode()
        with mock.patch.object(replay, "replay_budget_s", return_value=0.0):
            graded = grading.graded_summary(summary, records, CONFIG, 3)
        self.assertEqual((graded["reason"], graded["success"]), ("tampered", False))
        self.assertIn("the replay passed its budget at step 0", graded["reasons"])
        self.assertTrue(grading.graded_summary(summary, records, CONFIG, 3)["success"])

    def test_steps_simulated_time_and_points_come_from_the_record_not_the_summary(self):
        summary, records = recorded_episode()
        honest = grading.graded_summary(summary, records, CONFIG, 3)
        self.assertEqual((honest["steps"], honest["sim_time_s"]),
                         (summary["steps"], summary["sim_time_s"]))
        self.assertEqual((honest["start"], honest["target"]), (summary["start"], summary["target"]))
        forged = dict(summary, steps=1, sim_time_s=0.01, start=[0, 0, 0], target=[1.0, 1.0, 1.0])
        graded = grading.graded_summary(forged, records, CONFIG, 3)
        self.assertTrue(graded["success"])
        self.assertEqual((graded["steps"], graded["start"], graded["target"]),
                         (summary["steps"], summary["start"], summary["target"]))
        self.assertAlmostEqual(graded["sim_time_s"], summary["sim_time_s"])

    def test_the_budget_grows_with_the_episodes_own_time_by_the_callers_clock(self):
        fixed = replay.replay_budget_s(CONFIG, 1000)
        self.assertAlmostEqual(replay.replay_budget_s(CONFIG, 1000, episode_s=12.5), fixed + 25.0)
        self.assertAlmostEqual(replay.replay_budget_s(CONFIG, 1000, episode_s=3600), fixed + 60.0)
        summary, records = recorded_episode()
        seen = []
        original = replay.replay_budget_s

        def budget(config, steps, episode_s=0.0):
            seen.append(episode_s)
            return original(config, steps, episode_s)

        with mock.patch.object(replay, "replay_budget_s", budget):
            self.assertTrue(grading.graded_summary(summary, records, CONFIG, 3, 4.0)["success"])
        self.assertEqual(seen, [4.0])
        submitted = []
        with mock.patch.object(grading, "submit", lambda *args: submitted.append(args) or
                               grading.inline(*args)), tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            run_episodes(POLICY, [1], CONFIG, Path(tmp), workers=1, step_events=False)
            elapsed = time.monotonic() - started
        [(_, _, _, _, episode_s)] = submitted
        self.assertGreater(episode_s, 0.0)      # how long its policy process ran, timed here
        self.assertLessEqual(episode_s, elapsed)

    def test_a_grader_stops_a_step_that_never_ends_at_the_budget(self):
        quick = replace(CONFIG, act_budget_s=0.1, stall_grace_s=0.1)

        def endless(*args):
            while True:
                pass

        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        with mock.patch.dict(grading._TASKS, {"grade": endless}):
            pid = os.fork()
            if pid == 0:                                  # a grader serving the two pipes
                os.close(requests_w)
                os.close(answers_r)
                try:
                    grading._serve(os.fdopen(requests_r, "rb"), os.fdopen(answers_w, "wb"))
                finally:
                    os._exit(0)
        os.close(requests_r)
        os.close(answers_w)
        with os.fdopen(requests_w, "wb") as requests, os.fdopen(answers_r, "rb") as answers:
            grading._write(requests, (7, "grade", ({"reason": "success"}, [{}] * 10, quick, 3)))
            ident, graded = grading._read(answers)
        os.waitpid(pid, 0)
        self.assertEqual((ident, graded["reason"], graded["success"]), (7, "tampered", False))
        self.assertIn("the replay passed its budget within one step", graded["reasons"])

    def test_prepare_has_graders_store_the_run_worlds_once(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = replace(CONFIG, world_cache_dir=tmp)
            vxs = load_backend("embedded")
            first = grading.prepare_world(config, 5)
            self.assertIs(grading.prepare_world(config, 5), first)    # in flight: the same one
            ready = worker.prepare(config, [5, 6], workers=2)
            self.assertFalse(ready(0), "two worlds cannot be built in no time")
            self.assertTrue(ready(scaled(60)), "host not up or worlds not stored")
            for seed in (5, 6):
                self.assertTrue(worldcache.is_stored(vxs, "terrain", seed, tmp), seed)
            self.assertTrue(first.result(timeout=scaled(30)))
            self.assertIsNone(grading.prepare_world(config, 5))        # stored: nothing to do
            self.assertEqual(len(list(Path(tmp).glob("terrain-*.dense.npy"))), 2)

    def test_run_episodes_grades_in_graders_and_writes_every_summary(self):
        with tempfile.TemporaryDirectory() as tmp:
            summaries = run_episodes(POLICY, [1, 2, 3], CONFIG, Path(tmp), workers=2,
                                     step_events=False)
            self.assertEqual([s["seed"] for s in summaries], [1, 2, 3])
            self.assertTrue(all(s["success"] for s in summaries), summaries)
            self.assertTrue(grading._graders, "no grader process was used")
            for seed in (1, 2, 3):
                self.assertTrue((Path(tmp) / f"ep_{seed}" / f"summary.{seed}.json").exists())

    def test_dynamics_that_diverge_end_as_sim_error_on_both_sides_never_tampered(self):
        config = replace(CONFIG, delta=1.0, max_steps=50)
        note = "the simulation diverged at step 4: the agent's position is no longer finite"
        in_process = run_episode(POLICY, load_backend("embedded"), config, 1, ListSink()).summary
        self.assertEqual(in_process.reason, "sim_error")
        self.assertTrue(in_process.reasons.startswith(note), in_process.reasons)
        with tempfile.TemporaryDirectory() as tmp:
            [graded] = run_episodes(POLICY, [1], config, Path(tmp), workers=1, step_events=False)
            steps = grading.step_records(Path(tmp) / "ep_1" / "steps.1.jsonl")
        self.assertEqual(len(steps), 4)                     # the diverged step is not logged
        self.assertEqual(graded["reason"], "sim_error", graded["reasons"])
        self.assertTrue(graded["reasons"].startswith(note), graded["reasons"])
        forged = [dict(step) for step in steps]
        forged[-1]["agent_pos"] = [None, 50.0, -60.0]      # null (NaN) where the replay is finite
        self.assertEqual(replay.grade_episode(dict(graded), forged, config, 1)["reason"], "tampered")

    def test_step_records_reads_a_steps_file_as_its_lines_say(self):
        records = [{"step": 0, "agent_pos": [1.5, 2.0, -3.0], "commands": None},
                   {"step": 1, "policy_log": {"note": "a,b}{[\\n"}, "commands": [{"mode": "Hold"}]}]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "steps.1.jsonl"
            path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
            self.assertEqual(grading.step_records(path), records)
            path.write_text('{"step": 0}\n{"step": 1}, {"step": 2}\n')    # two on a line
            with self.assertRaises(ValueError):
                grading.step_records(path)
            path.write_text('{"step": 0}\n[1, 2]\n')                   # not an object
            self.assertEqual(grading.step_records(path), [{"step": 0}, [1, 2]])

    def test_positions_that_are_not_finite_on_both_sides_agree(self):
        nan = float("nan")
        flight = replay.Flight(positions=np.array([[0.0, 0, 0], [nan, nan, nan]]),
                               collisions_total=np.zeros(2), start=None)
        told = np.array([[0.0, 0, 0], [nan, nan, nan]])
        self.assertIsNone(replay.first_disagreement(flight, told))
        told[1] = [1.0, 1.0, 1.0]
        self.assertEqual(replay.first_disagreement(flight, told), 1)


if __name__ == "__main__":
    unittest.main()
