"""Executors: where episodes run (local worker pool, or a Dask cluster on loopback)."""

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

from bgen.errors import ConfigError
from bgen.runner.episode import EpisodeConfig
from bgen.runner.executor import (DaskExecutor, LocalExecutor, StepThinner, lost_summary,
                                  make_executor, write_files)
from tests.timing import scaled

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "tests" / "policies"
MOVE = (POLICIES / "move_to_target.py").read_text()
SLOW = (POLICIES / "slow_hover.py").read_text()
WAIT_S = scaled(40.0)
BUDGET_S = scaled(10.0)     # per policy call: generous, so load never turns a result into a timeout

try:
    import dask
    import distributed
except ImportError:     # the optional extra: pip install .[dask]
    distributed = None
else:                   # workers killed on purpose make the cluster log loudly; keep output readable
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class StepThinnerTests(unittest.TestCase):
    def test_thinner_sends_the_first_step_and_holds_back_steps_within_the_period(self):
        clock = FakeClock()
        thinner = StepThinner(10.0, clock=clock)
        self.assertEqual(thinner.offer({"step": 0}), {"step": 0})
        clock.now = 0.05
        self.assertIsNone(thinner.offer({"step": 1}))
        self.assertIsNone(thinner.offer({"step": 2}))
        clock.now = 0.11
        self.assertEqual(thinner.offer({"step": 3}), {"step": 3})

    def test_flush_returns_the_newest_held_step_once(self):
        clock = FakeClock()
        thinner = StepThinner(10.0, clock=clock)
        thinner.offer({"step": 0})
        thinner.offer({"step": 1})
        thinner.offer({"step": 2})
        self.assertEqual(thinner.flush(), {"step": 2})
        self.assertIsNone(thinner.flush())

    def test_zero_hz_sends_every_step(self):
        thinner = StepThinner(0.0, clock=FakeClock())
        self.assertEqual([thinner.offer({"step": i}) for i in range(3)],
                         [{"step": 0}, {"step": 1}, {"step": 2}])


class EpisodeFileTests(unittest.TestCase):
    def test_lost_summary_is_a_failure_with_its_reason_and_cause(self):
        summary = lost_summary(7, "the Dask workers running this episode died 3 times")
        self.assertEqual((summary["seed"], summary["reason"], summary["success"]), (7, "lost", False))
        self.assertEqual(summary["error"]["message"],
                         "the Dask workers running this episode died 3 times")

    def test_write_files_refuses_names_that_are_paths(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("../escape.json", "a/b.json", "..", ""):
                with self.subTest(name=name), self.assertRaises(ValueError):
                    write_files(Path(tmp) / "ep_0", {name: b"x"})
            write_files(Path(tmp) / "ep_0", {"summary.0.json": b"{}"})
            self.assertEqual((Path(tmp) / "ep_0" / "summary.0.json").read_bytes(), b"{}")


class ChoosingAnExecutorTests(unittest.TestCase):
    def test_local_is_the_default(self):
        self.assertIsInstance(make_executor(), LocalExecutor)

    def test_unknown_executor_names_the_choices(self):
        with self.assertRaises(ConfigError) as caught:
            make_executor("ray")
        self.assertEqual(caught.exception.message, "executor: expects one of local, dask, actual: 'ray'")

    def test_a_scheduler_without_the_dask_executor_is_refused(self):
        with self.assertRaises(ConfigError) as caught:
            make_executor("local", dask_scheduler="tcp://127.0.0.1:8786")
        self.assertEqual(caught.exception.message, "dask-scheduler: only used with --executor dask")

    @unittest.skipIf(distributed is None, "dask.distributed is not installed (pip install .[dask])")
    def test_dask_without_a_scheduler_says_what_is_missing(self):
        with self.assertRaises(ConfigError) as caught:
            make_executor("dask")
        self.assertEqual(caught.exception.message, "dask-scheduler: the dask executor needs a "
                                                   "scheduler address such as tcp://host:8786")

    def test_dask_without_the_extra_fails_with_one_line_on_every_cli(self):
        # A Python in which `import distributed` fails, as on a machine without the extra.
        blocker = "import sys; sys.modules['distributed'] = None; "
        commands = {
            "run_policy": "from bgen.runner.run_policy import main; "
                          "sys.exit(main(['--policy', 'tests/policies/hover.py', '--executor', 'dask',"
                          " '--dask-scheduler', 'tcp://127.0.0.1:9']))",
            "iterate": "from bgen.orchestrator.iterate import main; "
                       "sys.exit(main(['--policy', 'tests/policies/hover.py', '--executor', 'dask',"
                       " '--dask-scheduler', 'tcp://127.0.0.1:9', '--outdir', sys.argv[1]]))",
            "server": "import bgen_server; sys.exit(bgen_server.main(['--port', '0', '--ws-port', '0',"
                      " '--executor', 'dask', '--dask-scheduler', 'tcp://127.0.0.1:9',"
                      " '--runs-dir', sys.argv[1]]))",
        }
        for name, code in commands.items():
            with self.subTest(cli=name), tempfile.TemporaryDirectory() as tmp:
                done = subprocess.run([sys.executable, "-c", blocker + code, tmp], cwd=ROOT,
                                      capture_output=True, text=True, timeout=WAIT_S)
                self.assertEqual(done.returncode, 2, done.stderr)
                lines = done.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, done.stderr)
                self.assertIn("the dask executor needs dask.distributed: pip install 'bgen[dask]'",
                              lines[0])


WALL_CLOCK_FIELDS = {"wall_time_s", "frame_time_ms", "cpu_time_s"}   # the only fields that depend on the machine's load


def comparable(record: dict) -> dict:
    """A summary or step record without its wall-clock fields."""
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def step_records(path: Path) -> list[dict]:
    return [comparable(json.loads(line)) for line in path.read_text().splitlines() if line]


@unittest.skipIf(distributed is None, "dask.distributed is not installed (pip install .[dask])")
class DaskClusterTests(unittest.TestCase):
    """A fresh LocalCluster of 2 worker processes on loopback for each test (tests kill workers)."""

    def setUp(self):
        config = dask.config.set({"distributed.scheduler.allowed-failures": 5})
        config.__enter__()
        self.addCleanup(config.__exit__, None, None, None)
        self.cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                host="127.0.0.1", dashboard_address=None)
        self.addCleanup(self.cluster.close)
        self.client = distributed.Client(self.cluster, set_as_default=False)
        self.addCleanup(self.client.close)
        self.executor = DaskExecutor(client=self.client)
        self.client.wait_for_workers(2, timeout=WAIT_S)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def start_in_thread(self, code: str, seeds, config, events, stop=None):
        box = {}

        def target():
            box["summaries"] = self.executor.run_episodes(code, seeds, config, Path(self.tmp.name) / "dask",
                                                          on_event=events.append, stop_event=stop)
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread, box

    def wait_for(self, predicate, what: str):
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"gave up waiting for {what}")
            time.sleep(0.05)

    def worker_pids(self) -> dict:
        return self.client.run(os.getpid)

    def test_same_seeds_give_identical_summaries_and_files_on_both_executors(self):
        config = EpisodeConfig(max_steps=700, render=False, act_budget_s=BUDGET_S)
        seeds = list(range(8))
        local_dir, dask_dir = Path(self.tmp.name) / "local", Path(self.tmp.name) / "dask"
        local = LocalExecutor(2).run_episodes(MOVE, seeds, config, local_dir)
        events = []
        remote = self.executor.run_episodes(MOVE, seeds, config, dask_dir, on_event=events.append)
        self.assertEqual([comparable(s) for s in remote], [comparable(s) for s in local])
        for seed in seeds:
            with self.subTest(seed=seed):
                name = f"ep_{seed}/steps.{seed}.jsonl"
                self.assertEqual(step_records(dask_dir / name), step_records(local_dir / name))
                self.assertTrue((dask_dir / f"ep_{seed}/summary.{seed}.json").is_file())
        summaries = [e for e in events if e["type"] == "episode_summary"]
        self.assertEqual(sorted(e["seed"] for e in summaries), seeds)
        self.assertTrue(any(e["type"] == "step" for e in events), "no live step events arrived")

    def test_a_worker_killed_mid_episode_is_retried_once_and_reported(self):
        config = EpisodeConfig(max_steps=1500, render=False, act_budget_s=BUDGET_S)
        events = []
        thread, box = self.start_in_thread(SLOW, [0, 1], config, events)
        self.wait_for(lambda: {e.get("seed") for e in events if e["type"] == "step"} >= {0, 1},
                      "both episodes to step")
        victim_address, victim_pid = next(iter(self.worker_pids().items()))
        os.kill(victim_pid, signal.SIGKILL)
        thread.join(WAIT_S)
        self.assertFalse(thread.is_alive(), "the run did not finish after a worker died")
        reasons = [s["reason"] for s in box["summaries"]]
        self.assertEqual(reasons, ["max_steps", "max_steps"])
        warnings = [e["message"] for e in events if e["type"] == "warning"]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"Dask worker {victim_address} died mid-episode; retried on", warnings[0])

    def test_an_episode_whose_worker_dies_twice_is_lost_and_the_rest_finish(self):
        config = EpisodeConfig(max_steps=1500, render=False, act_budget_s=BUDGET_S)
        events = []
        thread, box = self.start_in_thread(SLOW, [0, 1], config, events)
        self.wait_for(lambda: {e.get("seed") for e in events if e["type"] == "step"} >= {0, 1},
                      "both episodes to step")
        first_address, first_pid = next(iter(self.worker_pids().items()))
        os.kill(first_pid, signal.SIGKILL)
        self.wait_for(lambda: any(e["type"] == "warning" for e in events), "the retry warning")
        warning = next(e for e in events if e["type"] == "warning")
        retried_on = warning["message"].rsplit("retried on ", 1)[1]
        os.kill(self.worker_pids()[retried_on], signal.SIGKILL)
        thread.join(WAIT_S)
        self.assertFalse(thread.is_alive(), "the run did not finish after two deaths")
        by_seed = {s["seed"]: s for s in box["summaries"]}
        lost = by_seed[warning["seed"]]
        self.assertEqual(lost["reason"], "lost")
        self.assertIn("died", lost["error"]["message"])
        other = by_seed[1 - warning["seed"]]
        self.assertIn(other["reason"], ("max_steps", "lost"))   # it may have shared the second victim
        ep_dir = Path(self.tmp.name) / "dask" / f"ep_{warning['seed']}"
        self.assertEqual(json.loads((ep_dir / f"summary.{warning['seed']}.json").read_text())["reason"],
                         "lost")

    def test_terminating_ends_the_call_promptly_and_leaves_no_task_running(self):
        config = EpisodeConfig(max_steps=100_000, render=False, act_budget_s=BUDGET_S)
        events, stop = [], threading.Event()
        thread, box = self.start_in_thread(SLOW, [0, 1, 2, 3], config, events, stop)
        self.wait_for(lambda: any(e["type"] == "step" for e in events), "the first step")
        stopped_at = time.monotonic()
        stop.set()
        thread.join(WAIT_S)
        elapsed = time.monotonic() - stopped_at
        self.assertFalse(thread.is_alive(), "terminating did not end the call")
        print(f"\ndask executor: terminated 4 episodes in {elapsed:.2f} s", file=sys.stderr)
        self.assertEqual({s["reason"] for s in box["summaries"]}, {"terminated"})
        self.wait_for(lambda: not any(self.client.processing().values()),
                      "the cluster to have no task processing")
