"""Specification of the RunManager (bgen.server.runs): lifecycle, queueing, stopping, events, recovery.

The loop is replaced by small scripted functions (or tests.fakeloop), so these tests need
neither an LLM nor the simulator.
"""

import json
import tempfile
import threading
import unittest
from pathlib import Path

from bgen.errors import Conflict, NotFound, ProviderError
from tests import fakeloop
from bgen.server.lifecycle import FINAL_STATES, LifecycleError
from bgen.server.runs import LoopBinding, ManagerSettings, RunManager, build_loop_config
from bgen.server.store import RunStore
from bgen.server.validation import parse_run_request
from tests.test_server_support import FINAL, TIMEOUT, quiet_server_log, wait_until

setUpModule, tearDownModule = quiet_server_log()


class Published:
    """Collects what the manager hands to the hub, from any thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[tuple[str, dict]] = []

    def __call__(self, run_id, event):
        with self.lock:
            self.events.append((run_id, event))

    def of(self, run_id):
        with self.lock:
            return [e for r, e in self.events if r == run_id]


def binding(run_loop):
    return LoopBinding(run_loop, fakeloop.LoopConfig, fakeloop.EpisodeConfig)


class GatedLoop:
    """A loop that emits one iteration event, then waits for release() or the stop event."""

    def __init__(self):
        self.release_event = threading.Event()
        self.started = []
        self.lock = threading.Lock()

    def __call__(self, config, run_dir, emit, stop_event, **_):
        with self.lock:
            self.started.append(Path(run_dir).name)
        emit({"type": "iteration", "iteration": 0})
        (Path(run_dir) / "iter_0").mkdir(exist_ok=True)
        (Path(run_dir) / "iter_0" / "policy.generated.py").write_text("def act(): pass\n")
        while not (self.release_event.is_set() or stop_event.is_set()):
            stop_event.wait(0.01)
        return fakeloop.LoopResult(stopped_reason="terminated" if stop_event.is_set() else "iterations_done")

    def release(self):
        self.release_event.set()


class ManagerTestCase(unittest.TestCase):
    def make(self, run_loop=None, *, loop_module=None, **settings):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.store = RunStore(Path(tmp.name))
        self.published = Published()
        self.manager = RunManager(self.store, self.published, settings=ManagerSettings(**settings),
                                  binding=binding(run_loop) if run_loop else None, loop_module=loop_module)
        self.addCleanup(self.manager.shutdown, 2.0)
        return self.manager

    def wait_status(self, run_id, *statuses):
        """The run's record once it is in one of ``statuses`` (and, if final, its final event is out)."""
        def reached():
            record = self.manager.record(run_id)
            if record["status"] not in statuses:
                return None
            if record["status"] in FINAL_STATES and not any(
                    e["type"] in FINAL for e in self.published.of(run_id)):
                return None
            return record

        return wait_until(reached, f"run {run_id} to be {'/'.join(statuses)}")

    def events_on_disk(self, run_id):
        path = self.store.run_dir(run_id) / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]


class TestARunFromStartToDone(ManagerTestCase):
    def test_a_run_is_done_with_its_record_and_events_on_disk(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request({"episodes": 2, "max_steps": 150, "render": False}))["run_id"]
        record = self.wait_status(run_id, "done")
        self.assertEqual(record["best_iteration"], 0)
        self.assertEqual(record["iterations"][0]["success_rate"], 1.0)
        self.assertEqual(record["timing"]["sim_time_s"], 3.0)
        self.assertIsNotNone(record["finished"])
        on_disk = json.loads((self.store.run_dir(run_id) / "run.json").read_text())
        self.assertEqual(on_disk["status"], "done")
        self.assertEqual(on_disk["request"]["max_steps"], 150)
        events = self.events_on_disk(run_id)
        self.assertEqual(events[-1]["type"], "done")
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids)))

    def test_published_events_carry_increasing_ids_and_end_with_done(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request({"episodes": 1, "max_steps": 300, "render": False}))["run_id"]
        self.wait_status(run_id, "done")
        events = self.published.of(run_id)
        self.assertEqual([e["id"] for e in events], sorted(e["id"] for e in events))
        kinds = [e["type"] for e in events]
        self.assertEqual(kinds[-1], "done")
        for kind in ("status", "iteration", "policy", "step", "episode_summary", "critique"):
            self.assertIn(kind, kinds)
        done = events[-1]
        self.assertEqual(set(done["timing"]), {"sim_time_s", "wall_time_s", "speedup_x"})
        self.assertFalse(done["concluded_early"])

    def test_steps_are_decimated_per_episode_and_the_last_step_always_goes_out(self):
        self.make(loop_module="tests.fakeloop", progress_hz=5)
        run_id = self.manager.submit(parse_run_request({"seeds": [1, 2], "max_steps": 400, "render": False}))["run_id"]
        self.wait_status(run_id, "done")
        for seed in (1, 2):
            steps = [e["step"]["step"] for e in self.published.of(run_id)
                     if e["type"] == "step" and e["seed"] == seed]
            with self.subTest(seed=seed):
                self.assertLess(len(steps), 400 / 10)     # 400 steps take 0.2 s at 2,000 steps/s
                self.assertEqual(steps[0], 0)
                self.assertEqual(steps[-1], 399)
                summary_index = next(i for i, e in enumerate(self.published.of(run_id))
                                     if e["type"] == "episode_summary" and e["seed"] == seed)
                last_step_index = max(i for i, e in enumerate(self.published.of(run_id))
                                      if e["type"] == "step" and e["seed"] == seed)
                self.assertLess(last_step_index, summary_index)

    def test_success_at_the_threshold_concludes_early(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request(
            {"iterations": 3, "episodes": 1, "max_steps": 10, "render": False, "success_threshold": 1.0}))["run_id"]
        record = self.wait_status(run_id, "done")
        self.assertTrue(record["concluded_early"])
        self.assertEqual(len(record["iterations"]), 1)


class TestQueueing(ManagerTestCase):
    def test_runs_beyond_the_cap_wait_and_start_in_submission_order(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=1)
        ids = [self.manager.submit(parse_run_request({"render": False}))["run_id"] for _ in range(3)]
        self.wait_status(ids[0], "running")
        self.assertEqual([self.manager.record(i)["status"] for i in ids], ["running", "queued", "queued"])
        self.assertEqual(self.manager.counts(), {"running": 1, "queued": 2})
        queued = wait_until(lambda: [e for e in self.published.of(ids[2]) if e["type"] == "status"],
                            "the queued status of the third run")
        self.assertEqual(queued[0]["position"], 2)
        loop.release()
        for run_id in ids:
            self.wait_status(run_id, "done")
        self.assertEqual(loop.started, ids)

    def test_two_runs_execute_at_once_under_a_cap_of_two(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=2)
        ids = [self.manager.submit(parse_run_request({"render": False}))["run_id"] for _ in range(2)]
        for run_id in ids:
            self.wait_status(run_id, "running")
        loop.release()
        for run_id in ids:
            self.wait_status(run_id, "done")


class TestTermination(ManagerTestCase):
    def test_a_running_run_stops_and_ends_terminated(self):
        loop = GatedLoop()
        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "running")
        self.assertEqual(self.manager.terminate(run_id), "stopping")
        record = self.wait_status(run_id, "terminated")
        self.assertEqual((record["stopped_reason"], record["error"]),
                         ("terminated", {"message": "terminated on request", "phase": "generate"}))
        self.assertEqual(self.published.of(run_id)[-1]["type"], "terminated")

    def test_a_run_stopped_inside_an_iteration_keeps_its_episodes_simulated_time(self):
        def loop(config, run_dir, emit, stop_event, **_):
            emit({"type": "iteration", "iteration": 0})
            for seed in (1, 2):
                emit({"type": "episode_summary", "seed": seed, "sim_time_s": 8.0,
                      "wall_time_s": 0.5, "success": False, "reason": "terminated"})
            stop_event.wait(TIMEOUT)
            return fakeloop.LoopResult(stopped_reason="terminated", sim_time_s=0.0, wall_time_s=2.0)

        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        wait_until(lambda: len([e for e in self.published.of(run_id)
                                if e["type"] == "episode_summary"]) == 2, "two episodes")
        self.manager.terminate(run_id)
        record = self.wait_status(run_id, "terminated")
        self.assertEqual((record["timing"]["sim_time_s"], record["timing"]["wall_time_s"]),
                         (16.0, 2.0))

    def test_a_queued_run_ends_terminated_at_once(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=1)
        first = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        second = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.assertEqual(self.manager.terminate(second), "terminated")
        self.assertEqual(self.manager.record(second)["status"], "terminated")
        self.assertEqual(self.published.of(second)[-1]["type"], "terminated")
        loop.release()
        self.wait_status(first, "done")
        self.assertEqual(loop.started, [first])

    def test_a_finished_run_cannot_be_terminated(self):
        loop = GatedLoop()
        loop.release()
        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "done")
        with self.assertRaises(LifecycleError) as caught:
            self.manager.terminate(run_id)
        self.assertEqual(str(caught.exception), "cannot terminate a run that is done")


class TestFailures(ManagerTestCase):
    def test_a_loop_that_raises_ends_failed_with_its_message(self):
        def failing(config, run_dir, emit, stop_event, **_):
            emit({"type": "iteration", "iteration": 0})
            raise ProviderError("anthropic: HTTP 529 overloaded after 3 attempts")

        self.make(failing)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        record = self.wait_status(run_id, "failed")
        self.assertEqual((record["stopped_reason"], record["error"]),
                         ("failed", {"message": "anthropic: HTTP 529 overloaded after 3 attempts",
                                     "phase": "generate"}))
        final = self.published.of(run_id)[-1]
        self.assertEqual(final, {**final, "type": "error", "status": "failed", "error_type": "ProviderError",
                                 "message": "anthropic: HTTP 529 overloaded after 3 attempts"})

    def test_a_provider_failure_after_a_best_policy_ends_done_with_the_error_kept(self):
        def keeps_best(config, run_dir, emit, stop_event, **_):
            emit({"type": "iteration", "iteration": 1})
            result = fakeloop.LoopResult(best_iteration=0, stopped_reason="provider_error")
            result.error = "anthropic: HTTP 529 overloaded after 3 attempts"
            return result

        self.make(keeps_best)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        record = self.wait_status(run_id, "done")
        self.assertEqual((record["stopped_reason"], record["error"]),
                         ("provider_error", {"message": "anthropic: HTTP 529 overloaded after 3 attempts",
                                             "phase": "generate"}))

    def test_a_loop_module_that_cannot_be_imported_fails_the_run_not_the_server(self):
        self.make(loop_module="bgen.server.no_such_loop")
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        record = self.wait_status(run_id, "failed")
        self.assertEqual(record["error"], {"message": "ModuleNotFoundError: No module named "
                                                      "'bgen.server.no_such_loop'", "phase": "setup"})

    def test_events_the_server_owns_are_not_accepted_from_the_loop(self):
        def rogue(config, run_dir, emit, stop_event, **_):
            emit({"type": "done"})
            emit("not an event")
            return fakeloop.LoopResult()

        self.make(rogue)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "done")
        self.assertEqual([e["type"] for e in self.published.of(run_id)], ["status", "done"])


class TestShutdownAndRecovery(ManagerTestCase):
    def test_shutdown_interrupts_running_and_queued_runs(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=1)
        running = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        queued = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(running, "running")
        self.manager.shutdown(TIMEOUT)
        for run_id in (running, queued):
            with self.subTest(run_id=run_id):
                record = self.store.load(run_id)
                self.assertEqual((record["status"], record["stopped_reason"], record["error"]["phase"]),
                                 ("interrupted", "interrupted", "generate" if run_id == running else "queued"))
                final = self.events_on_disk(run_id)[-1]
                self.assertEqual((final["type"], final["status"]), ("error", "interrupted"))

    def test_runs_active_when_the_server_died_are_marked_interrupted_at_start(self):
        self.make(GatedLoop())
        run_id = self.store.new_run_id()
        self.store.save({"run_id": run_id, "status": "running", "created": 1.0})
        with self.store.event_log(run_id) as event_log:
            event_log.append({"type": "iteration", "iteration": 0})
        self.assertEqual(self.manager.recover(), [run_id])
        record = self.store.load(run_id)
        self.assertEqual(record["status"], "interrupted")
        self.assertEqual((record["stopped_reason"], record["error"]),
                         ("interrupted", {"message": "the server stopped while the run was running",
                                          "phase": "generate"}))
        self.assertEqual([e["type"] for e in self.events_on_disk(run_id)], ["iteration", "error"])
        self.assertEqual(self.manager.recover(), [])


class TestStoppedReason(ManagerTestCase):
    def test_status_and_stopped_reason_agree_for_every_final_state(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=1)
        terminated = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(terminated, "running")
        self.manager.terminate(terminated)
        self.wait_status(terminated, "terminated")
        running = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        queued = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(running, "running")
        self.manager.shutdown(TIMEOUT)
        for run_id, state in ((terminated, "terminated"), (running, "interrupted"), (queued, "interrupted")):
            with self.subTest(state=state):
                record = self.store.load(run_id)
                self.assertEqual((record["status"], record["stopped_reason"]), (state, state))

    def test_a_completed_run_keeps_the_loops_reason(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request({"episodes": 0, "render": False}))["run_id"]
        record = self.wait_status(run_id, "done")
        self.assertEqual(record["stopped_reason"], "iterations_done")


class TestDeleteListPrune(ManagerTestCase):
    def test_a_running_run_is_a_conflict_unless_terminate_is_asked_for(self):
        loop = GatedLoop()
        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "running")
        with self.assertRaises(Conflict) as caught:
            self.manager.delete(run_id)
        self.assertEqual(str(caught.exception),
                         "cannot delete a run that is running; terminate it first or send ?terminate=1")
        self.assertEqual(self.manager.delete(run_id, terminate=True), "terminated")
        self.assertFalse(self.store.run_dir(run_id).exists())
        self.assertFalse(self.manager.exists(run_id))
        with self.assertRaises(NotFound):
            self.manager.delete(run_id)

    def test_a_finished_run_is_deleted_with_its_folder(self):
        loop = GatedLoop()
        loop.release()
        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "done")
        self.assertEqual(self.manager.delete(run_id), "done")
        self.assertEqual(list(self.store.root.iterdir()), [])

    def test_deleting_with_terminate_succeeds_when_keep_runs_prunes_the_run_as_it_stops(self):
        calls = []
        first_in_loop = threading.Event()

        def first_waits_then_the_rest_finish(config, run_dir, emit, stop_event, **_):
            calls.append(run_dir)
            if len(calls) == 1:
                first_in_loop.set()
                while not stop_event.is_set():
                    stop_event.wait(0.01)
                return fakeloop.LoopResult(stopped_reason="terminated")
            return fakeloop.LoopResult()

        self.make(first_waits_then_the_rest_finish, keep_runs=1, max_concurrent=2)
        older = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        # "running" is recorded when the run leaves the queue, before its thread reaches the
        # loop: the newer run is submitted only once the older one is inside it.
        self.assertTrue(first_in_loop.wait(TIMEOUT), "the older run never reached the loop")
        self.wait_status(older, "running")
        newer = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(newer, "done")
        # The older run is pruned (one newer finished run is kept) as soon as it stops.
        self.assertEqual(self.manager.delete(older, terminate=True), "terminated")
        wait_until(lambda: not self.store.run_dir(older).exists(), "the older run gone")
        self.assertTrue(self.store.run_dir(newer).exists())

    def test_records_filter_by_status_newest_first(self):
        loop = GatedLoop()
        self.make(loop, max_concurrent=1)
        first = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        second = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.assertEqual([r["run_id"] for r in self.manager.records()], [second, first])
        self.assertEqual([r["run_id"] for r in self.manager.records(("queued",))], [second])
        self.assertEqual([r["run_id"] for r in self.manager.records(("running", "queued"))], [second, first])
        loop.release()
        self.wait_status(second, "done")

    def test_keep_runs_deletes_the_oldest_finished_runs_as_runs_finish(self):
        loop = GatedLoop()
        loop.release()
        self.make(loop, keep_runs=2, max_concurrent=1)
        ids = []
        for _ in range(4):
            ids.append(self.manager.submit(parse_run_request({"render": False}))["run_id"])
            self.wait_status(ids[-1], "done")
        wait_until(lambda: len(self.store.records()) == 2, "pruning to 2 runs")
        self.assertEqual([r["run_id"] for r in self.store.records()], ids[:1:-1])


class TestEventOrder(ManagerTestCase):
    def test_published_ids_increase_strictly_with_held_back_steps_of_interleaved_episodes(self):
        def interleaved(config, run_dir, emit, stop_event, **_):
            for step in range(200):
                for seed in (0, 1):
                    emit({"type": "step", "iteration": 0, "seed": seed, "step": step, "t": step * 0.01})
                if step == 120:
                    emit({"type": "step", "iteration": 0, "seed": 0, "step": 121, "t": 1.21})
                    emit({"type": "episode_summary", "iteration": 0, "seed": 0, "success": True})
            emit({"type": "episode_summary", "iteration": 0, "seed": 1, "success": True})
            return fakeloop.LoopResult()

        self.make(interleaved, progress_hz=5.0)
        run_id = self.manager.submit(parse_run_request({"render": False}))["run_id"]
        self.wait_status(run_id, "done")
        ids = [e["id"] for e in self.published.of(run_id)]
        self.assertEqual(ids, sorted(set(ids)))
        disk = [e["id"] for e in self.events_on_disk(run_id)]
        self.assertLessEqual(set(disk), set(ids))
        last_steps = [e["step"]["step"] for e in self.published.of(run_id) if e["type"] == "step"]
        self.assertIn(199, last_steps)


class TestTaskSpecInRuns(ManagerTestCase):
    SPEC = {"checks": [{"kind": "reach", "point": "target", "radius": 1}],
            "objective": {"minimize": "time"}}

    def test_the_task_event_goes_to_run_json_and_done_says_why_the_loop_stopped(self):
        from bgen.orchestrator.loop import LoopResult
        def loop(config, run_dir, emit, stop_event, **_):
            emit({"type": "task", "source": "given", "task_spec": self.SPEC, "max_steps": 5000})
            return LoopResult(stopped_reason="objective_converged", concluded_early=True,
                              task_spec=self.SPEC, stop_note="success threshold reached at "
                                                             "iteration 0; ...")

        self.make(loop)
        run_id = self.manager.submit(parse_run_request({"task_spec": self.SPEC,
                                                        "policy_code": "x = 1"}))["run_id"]
        record = self.wait_status(run_id, "done")
        self.assertEqual((record["task_spec"], record["task_source"]), (self.SPEC, "given"))
        on_disk = json.loads((self.store.run_dir(run_id) / "run.json").read_text())
        self.assertEqual(on_disk["task_spec"], self.SPEC)
        done = self.published.of(run_id)[-1]
        self.assertEqual((done["type"], done["stopped_reason"], done["stop_note"]),
                         ("done", "objective_converged",
                          "success threshold reached at iteration 0; ..."))

    def test_the_loop_config_carries_the_spec_and_whether_to_derive_the_budget(self):
        from bgen.orchestrator import loop
        from bgen.runner.episode import EpisodeConfig
        request = parse_run_request({"task_spec": self.SPEC, "policy_code": "x = 1"})
        config = build_loop_config(LoopBinding(loop.run_loop, loop.LoopConfig, EpisodeConfig),
                                   request, ManagerSettings(), render=False, render_ports=None)
        self.assertEqual((config.task_spec, config.derive_max_steps), (request.task_spec, True))


class TestReplay(ManagerTestCase):
    def test_replay_holds_the_stored_steps_in_id_order_and_starts_after_since(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request({"episodes": 1, "max_steps": 50, "render": False}))["run_id"]
        self.wait_status(run_id, "done")
        events = self.manager.replay(run_id)
        self.assertIn("step", [e["type"] for e in events])
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(events[-1]["type"], "done")
        middle = events[2]["id"]
        self.assertEqual(self.manager.replay(run_id, since=middle), [e for e in events if e["id"] > middle])

    def test_a_finished_run_always_replays_its_final_event(self):
        self.make(loop_module="tests.fakeloop")
        run_id = self.manager.submit(parse_run_request({"episodes": 0, "render": False}))["run_id"]
        self.wait_status(run_id, "done")
        last = self.manager.replay(run_id)[-1]
        self.assertEqual(self.manager.replay(run_id, since=last["id"] + 100), [last])


class TestLoopConfig(unittest.TestCase):
    def test_the_request_becomes_a_loop_config_with_the_scenario_target_and_proxy_ports(self):
        request = parse_run_request({"scenario": "wind_farm", "seeds": [5, 6], "policy_code": "x",
                                     "duration_seconds": 2, "delta": 0.02})
        config = build_loop_config(binding(None), request, ManagerSettings(workers=3, backend="embedded"),
                                   render=True, render_ports=(1, 2, 3, 4))
        self.assertEqual(config.seeds, (5, 6))
        self.assertEqual(config.workers, 3)
        self.assertIsNone(config.llm)
        self.assertEqual(config.episode.max_steps, 100)
        self.assertEqual(config.episode.target, (126, 120, -66))    # bgen.sim.scenarios' default
        self.assertEqual(config.episode.render_ports, (1, 2, 3, 4))
        self.assertEqual(config.episode.backend, "embedded")

    def test_candidates_and_holdout_seeds_reach_the_real_loop_config(self):
        from bgen.orchestrator import loop
        from bgen.runner import worker
        request = parse_run_request({"policy_code": "x", "candidates": 3, "holdout_seeds": 4, "seeds": [7, 9]})
        config = build_loop_config(LoopBinding(None, loop.LoopConfig, worker.EpisodeConfig), request,
                                   ManagerSettings(), render=False, render_ports=None)
        self.assertEqual((config.candidates, config.holdout_seeds, config.seeds), (3, 4, (7, 9)))
        self.assertEqual(config.holdout_seed_list(), [10, 11, 12, 13])

    def test_the_servers_disk_budget_reaches_every_runs_loop_config(self):
        from bgen import defaults
        from bgen.orchestrator import loop
        from bgen.runner import worker
        request = parse_run_request({"policy_code": "x"})
        binding = LoopBinding(None, loop.LoopConfig, worker.EpisodeConfig)
        config = build_loop_config(binding, request, ManagerSettings(max_run_bytes=5 << 30),
                                   render=False, render_ports=None)
        self.assertEqual(config.max_run_bytes, 5 << 30)
        default = build_loop_config(binding, request, ManagerSettings(), render=False,
                                    render_ports=None)
        self.assertEqual(default.max_run_bytes, defaults.MAX_RUN_BYTES)

    def test_without_policy_code_the_llm_settings_name_provider_url_and_model(self):
        request = parse_run_request({"provider": "openai", "model": "gpt-4o-mini",
                                     "provider_url": "http://127.0.0.1:9/v1"})
        with_llm = LoopBinding(None, fakeloop.LoopConfig, fakeloop.EpisodeConfig, fakeloop.LLMSettings)
        config = build_loop_config(with_llm, request, ManagerSettings(), render=False, render_ports=None)
        self.assertEqual(config.llm, fakeloop.LLMSettings(provider="openai", url="http://127.0.0.1:9/v1",
                                                          model="gpt-4o-mini"))
        self.assertEqual(config.episode.render_ports, (8080, 8081, 8090, 9090))


if __name__ == "__main__":
    unittest.main()
