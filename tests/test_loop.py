"""Specification of the iteration loop (bgen/orchestrator/loop.py) and the run's EventLog.

Most tests inject the episode runner and the policy checker (no processes), and speak to the
fake LLM provider on loopback; ``TestEndToEnd`` runs the real workers on the embedded backend.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
import unittest
from pathlib import Path

from bgen.errors import ConfigError, PolicyLoadError, ProviderError
from bgen.llm.client import LLMClient, LLMSettings
from bgen.orchestrator.loop import LoopConfig, run_loop
from bgen.orchestrator.runlog import EventLog
from bgen.runner import taskspec
from bgen.runner.episode import EpisodeConfig
from tests.fake_llm import (FakeLLMServer, error_reply, gateway_error, slow_reply, text_reply,
                            think_wrapped)
from tests.timing import scaled

KEY = "sk-loop-secret-42"
WAIT_S = scaled(10.0)                 # bound on every wait in this module
REACHABLE_SEEDS = (1, 3)      # terrain seeds whose default target A* reaches

GOOD = """import voxelsim as vxs
TARGET = [60, 60, -20]
# GOOD
def init(config):
    global TARGET
    TARGET = [int(round(v)) for v in config["target"]]
def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    for padding in (1, 0):
        try:
            return helpers.plan_to(world, agent.get_coord_py(), TARGET, 0.8, 0.0, padding)
        except Exception:
            pass
    return helpers.intent(0.8, 0.0, [vxs.MoveDir.Up])
def collect(step_ctx):
    return {}
def finalize(ep_ctx):
    return {"summary": "good"}
"""

FLOATY = """import math
TARGET = [60, 60, -20]
def act(t, agent, world, fw, env, helpers):
    goal = [TARGET[0] + 0.5 * math.cos(t), TARGET[1], TARGET[2]]
    return helpers.plan_to(world, agent.get_coord_py(), goal, 0.8, 0.0)
def collect(step_ctx):
    return {}
def finalize(ep_ctx):
    return {"summary": "floaty"}
"""

BROKEN = "import os\n" + GOOD.replace("# GOOD", "# BROKEN")


def fenced(code: str) -> str:
    return f"Here is the policy.\n```python\n{code}```\n"


# --- injected runner and checker --------------------------------------------------------------

def fake_summary(seed: int, code: str) -> dict:
    base = {"success": False, "steps": 5000, "collisions_total": 0, "avg_command_len": 1.0,
            "path_len_est": 20.0, "coverage": None, "time_to_goal": None, "reasons": None,
            "policy_summary": {}, "seed": seed, "reason": "max_steps", "error": None,
            "sim_time_s": 50.0, "wall_time_s": 0.1, "final_distance_to_target": 3.0,
            "min_distance_to_target": 2.0, "rejected_intents": 0}
    if "# GOOD" in code:
        base.update(success=True, steps=700, reason="success", sim_time_s=7.0)
    elif "cos(t)" in code:
        base.update(steps=0, reason="policy_error", path_len_est=0.0, error={
            "phase": "act", "type": "TypeError", "lineno": 5,
            "message": "argument 'dst': 'float' object cannot be interpreted as an integer"})
    if "# COLLIDES" in code:
        base["collisions_total"] = 40
    return base


class FakeRunner:
    """Stands in for run_episodes: summaries from markers in the code, events like the runner."""

    def __init__(self, block: threading.Event | None = None):
        self.calls = []
        self.block = block

    def __call__(self, policy_code, seeds, config, outdir, *, workers=None, on_event=None, stop_event=None):
        self.calls.append((policy_code, list(seeds)))
        if self.block is not None:
            self.block.set()
            stop_event.wait(WAIT_S)
            return [dict(fake_summary(s, ""), reason="terminated") for s in seeds]
        summaries = []
        for seed in seeds:
            summary = fake_summary(seed, policy_code)
            ep = Path(outdir) / f"ep_{seed}"
            ep.mkdir(parents=True, exist_ok=True)
            (ep / f"summary.{seed}.json").write_text(json.dumps(summary))
            if on_event:
                on_event({"type": "step", "seed": seed, "step": 0})
                on_event({"type": "episode_summary", **summary})
            summaries.append(summary)
        return summaries


def fake_checker(policy_code, backend="auto", timeout_s=10.0):
    if "import os" in policy_code:
        raise PolicyLoadError("line 1: import of 'os' is not allowed; policies may import ...",
                              lineno=1, rule="import")


class LoopTestCase(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.run_dir = Path(tmp.name) / "run"
        self.events: list[dict] = []
        self.stop = threading.Event()
        self.server = FakeLLMServer(api_key=KEY)
        self.addCleanup(self.server.close)
        self.runner = FakeRunner()

    def client(self, **changes) -> LLMClient:
        settings = LLMSettings(url=self.server.url, **changes)
        return LLMClient(settings, environ={"LLVPN_API_KEY": KEY}, sleep=lambda s: None)

    def loop(self, *, llm=True, runner=None, checker=fake_checker, **changes):
        client = self.client() if llm else None
        changes.setdefault("seeds", (1, 3))
        config = LoopConfig(llm=client.settings if client else None,
                            episode=EpisodeConfig(max_steps=3000, backend="embedded"), **changes)
        return run_loop(config, self.run_dir, self.events.append, self.stop, llm_client=client,
                        episode_runner=runner or self.runner, policy_checker=checker)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events if e["type"] != "step"]


# --- EventLog ---------------------------------------------------------------------------------

class TestEventLog(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = Path(tmp.name) / "events.jsonl"
        self.now = [1000.0]

    def log(self, **kw) -> EventLog:
        log = EventLog(self.path, clock=lambda: self.now[0], **kw)
        self.addCleanup(log.close)
        return log

    def test_a_bulky_step_event_is_stored_without_its_commands_and_notes(self):
        log = self.log()
        small = {"type": "step", "seed": 1, "step": 0, "agent_pos": [1, 2, 3],
                 "commands": [{"mode": "Replace", "moves": [1, 4]}], "policy_log": {"a": "b"}}
        bulky = dict(small, step=1, commands=[{"mode": "Push", "moves": [5, 6] * 2000}])
        log.append(small)
        self.now[0] += 1.0
        log.append(bulky)
        small_stored, bulky_stored = log.read(include_steps=True)
        self.assertEqual(small_stored["commands"], small["commands"])
        self.assertNotIn("commands", bulky_stored)
        self.assertNotIn("policy_log", bulky_stored)
        self.assertEqual((bulky_stored["trimmed"], bulky_stored["agent_pos"]),
                         (["commands", "policy_log"], [1, 2, 3]))

    def test_events_get_increasing_ids_and_a_timestamp_and_land_on_disk(self):
        log = self.log()
        first = log.append({"type": "iteration", "iteration": 0})
        second = log.append({"type": "critique", "text": "x"})
        self.assertEqual((first["id"], second["id"], first["ts"]), (1, 2, 1000.0))
        self.assertEqual([e["id"] for e in log.read()], [1, 2])
        self.assertEqual(json.loads(self.path.read_text().splitlines()[1])["text"], "x")

    def test_read_since_an_id_returns_only_later_events(self):
        log = self.log()
        for i in range(5):
            log.append({"type": "policy", "n": i})
        self.assertEqual([e["n"] for e in log.read(since_id=3)], [3, 4])

    def test_steps_are_thinned_on_disk_per_episode_per_second_but_all_get_ids(self):
        log = self.log(steps_per_second=3)
        returned = [log.append({"type": "step", "seed": 0, "step": i}) for i in range(10)]
        log.append({"type": "step", "seed": 1, "step": 0})
        self.now[0] += 1.0
        log.append({"type": "step", "seed": 0, "step": 10})
        self.assertEqual([e["id"] for e in returned], list(range(1, 11)))
        stored = log.read(include_steps=True)
        self.assertEqual([(e["seed"], e["step"]) for e in stored], [(0, 0), (0, 1), (0, 2), (1, 0), (0, 10)])
        self.assertEqual(log.read(), [])

    def test_a_reopened_log_continues_the_id_sequence(self):
        log = self.log()
        log.append({"type": "iteration"})
        log.append({"type": "iteration"})
        log.close()
        again = self.log()
        self.assertEqual(again.append({"type": "done"})["id"], 3)

    def test_concurrent_appends_get_unique_ids(self):
        log = self.log()
        threads = [threading.Thread(target=lambda: [log.append({"type": "warning"}) for _ in range(200)])
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S)
        ids = [e["id"] for e in log.read()]
        self.assertEqual(sorted(ids), list(range(1, 801)))


# --- the loop with injected runner ------------------------------------------------------------

class TestGivenPolicy(LoopTestCase):
    def test_a_given_policy_is_checked_run_evaluated_and_written(self):
        result = self.loop(llm=False, policy_code=GOOD, iterations=1)
        self.assertEqual(self.types(), ["iteration", "policy", "episode_summary", "episode_summary", "critique"])
        policy = self.events[1]
        self.assertEqual((policy["source"], policy["ok"], policy["tokens_in"]), ("given", True, 0))
        it = self.run_dir / "iter_0"
        self.assertEqual((it / "policy.given.py").read_text(), GOOD)
        self.assertFalse((it / "policy.generated.py").exists())
        self.assertEqual(json.loads((it / "aggregate.json").read_text())["success_rate"], 1.0)
        self.assertIn("All 2 episodes succeeded", (it / "critique.txt").read_text())
        self.assertFalse((it / "llm.json").exists())
        self.assertEqual((result.best_iteration, result.stopped_reason, result.concluded_early),
                         (0, "success_threshold", True))
        self.assertEqual((self.run_dir / "policy.best.py").read_text(), GOOD)

    def test_episode_events_carry_iteration_candidate_and_phase(self):
        self.loop(llm=False, policy_code=GOOD)
        summary = next(e for e in self.events if e["type"] == "episode_summary")
        self.assertEqual((summary["iteration"], summary["candidate"], summary["phase"]), (0, 0, "iteration"))

    def test_a_given_policy_that_does_not_load_fails_the_run_before_any_episode(self):
        # Without an LLM nothing can repair it: the run fails, saying which rule and line.
        with self.assertRaises(PolicyLoadError) as caught:
            self.loop(llm=False, policy_code=BROKEN)
        self.assertEqual(self.runner.calls, [])
        self.assertEqual(caught.exception.lineno, 1)
        self.assertIn("the given policy does not load: line 1: import of 'os' is not allowed",
                      str(caught.exception))

    def test_zero_episodes_generate_and_validate_the_policy_without_running_any(self):
        result = self.loop(llm=False, policy_code=GOOD, iterations=1, seeds=(), episodes=0)
        self.assertTrue(all(seeds == [] for _, seeds in self.runner.calls), self.runner.calls)
        self.assertNotIn("episode_summary", self.types())
        self.assertEqual(result.best_code, GOOD)
        self.assertEqual(result.best_aggregate["episodes"], 0)
        self.assertFalse(result.concluded_early)
        self.assertEqual((self.run_dir / "iter_0" / "policy.given.py").read_text(), GOOD)

    def test_without_an_llm_each_iteration_flies_the_same_policy_on_new_seeds_after_one_notice(self):
        slow = GOOD.replace("# GOOD", "# SLOW")         # never succeeds: no early stop
        result = self.loop(llm=False, policy_code=slow, iterations=3, seeds=None, seed_start=0,
                           episodes=2, holdout_seeds=1)
        self.assertEqual([seeds for _, seeds in self.runner.calls], [[0, 1], [2, 3], [4, 5], [6]])
        notices = [e for e in self.events if e.get("kind") == "repeat_policy"]
        self.assertEqual([e["message"] for e in notices],
                         ["no LLM: each of the 3 iterations flies the same policy, on new seeds "
                          "(0, 1 first, then 2, 3, ...)"])
        self.assertEqual(self.types()[0], "warning")
        self.assertEqual([e["seeds"] for e in self.events if e["type"] == "iteration"],
                         [[0, 1], [2, 3], [4, 5]])
        self.assertEqual(len(result.iterations), 3)

    def test_with_an_llm_every_iteration_flies_the_same_seeds_and_there_is_no_notice(self):
        self.server.script(text_reply(fenced(FLOATY)), text_reply(fenced(FLOATY)))
        self.loop(iterations=2, seeds=(1, 3))
        self.assertEqual([seeds for _, seeds in self.runner.calls], [[1, 3], [1, 3]])
        self.assertNotIn("repeat_policy", [e.get("kind") for e in self.events])

    def test_bad_settings_are_config_errors_naming_the_field(self):
        table = [({"iterations": 0}, "iterations: expects an integer in 1..100, actual: 0"),
                 ({"candidates": 99}, "candidates: expects an integer in 1..16, actual: 99"),
                 ({"success_threshold": 1.5}, "success_threshold: expects a number in 0..1, actual: 1.5")]
        for changes, message in table:
            with self.subTest(changes=changes), self.assertRaises(ConfigError) as caught:
                self.loop(llm=False, policy_code=GOOD, **changes)
            self.assertEqual(str(caught.exception), message)
        with self.assertRaises(ConfigError) as caught:
            run_loop(LoopConfig(), self.run_dir, self.events.append, self.stop)
        self.assertEqual(caught.exception.field, "policy_code")


class TestLLMIterations(LoopTestCase):
    def test_a_bad_policy_is_critiqued_and_the_next_prompt_carries_the_critique_then_success_stops(self):
        self.server.script(text_reply(fenced(FLOATY)), text_reply(fenced(GOOD)))
        result = self.loop(iterations=4)
        self.assertEqual(len(self.server.requests), 2)
        self.assertEqual(self.server.problems, [])
        first_critique = (self.run_dir / "iter_0" / "critique.txt").read_text()
        self.assertIn("act() raised TypeError at line 5", first_critique)
        self.assertIn("int(round(...))", first_critique)
        second_prompt = self.server.requests[1].user_text
        self.assertIn("CRITIQUE OF THE LAST EVALUATION", second_prompt)
        self.assertIn("act() raised TypeError at line 5", second_prompt)
        self.assertIn("cos(t)", second_prompt)          # the code to refine
        self.assertEqual((result.best_iteration, result.concluded_early, result.stopped_reason),
                         (1, True, "success_threshold"))
        self.assertEqual(len(result.iterations), 2)
        self.assertEqual((self.run_dir / "iter_1" / "user_prompt.txt").read_text().rstrip("\n"),
                         second_prompt.rstrip("\n"))

    def test_llm_json_records_model_tokens_and_latency_and_totals_add_up(self):
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop()
        record = json.loads((self.run_dir / "iter_0" / "llm.json").read_text())
        self.assertEqual(record["calls"][0]["purpose"], "generate")
        self.assertGreater(record["input_tokens"], 1000)
        self.assertEqual(result.tokens, {"in": record["input_tokens"], "out": record["output_tokens"]})
        self.assertEqual(result.iterations[0]["tokens"], result.tokens)
        critique = next(e for e in self.events if e["type"] == "critique")
        self.assertEqual(critique["tokens_total"], result.tokens)

    def test_a_policy_that_fails_to_load_is_repaired_before_any_episode(self):
        self.server.script(text_reply(fenced(BROKEN)), text_reply(fenced(GOOD)))
        result = self.loop()
        policies = [e for e in self.events if e["type"] == "policy"]
        self.assertEqual([(p["source"], p["ok"]) for p in policies], [("generated", False), ("repair", True)])
        self.assertEqual(policies[0]["lineno"], 1)
        repair_prompt = self.server.requests[1].user_text
        self.assertIn("THE POLICY BELOW FAILED TO LOAD at line 1", repair_prompt)
        self.assertIn("line 1: import os", repair_prompt)
        self.assertEqual([code for code, _ in self.runner.calls], [GOOD])
        self.assertEqual(result.best_code, GOOD)
        it = self.run_dir / "iter_0"
        self.assertEqual((it / "policy.failed_0.py").read_text(), BROKEN)
        self.assertTrue((it / "repair_1_prompt.txt").exists())

    def test_repairs_are_bounded_and_an_unrepaired_policy_counts_as_not_loaded(self):
        self.server.script(*[text_reply(fenced(BROKEN))] * 3)
        result = self.loop(max_repairs=2, iterations=1)
        self.assertEqual(len(self.server.requests), 3)
        self.assertEqual(self.runner.calls, [])
        self.assertEqual(result.best_aggregate["load_error"]["lineno"], 1)

    def test_iterations_continue_below_the_threshold_and_keep_the_best(self):
        good_but_slow = GOOD.replace("# GOOD", "# SLOW")
        self.server.script(text_reply(fenced(good_but_slow)), text_reply(fenced(FLOATY)))
        result = self.loop(iterations=2)
        self.assertEqual(len(result.iterations), 2)
        self.assertEqual(result.best_iteration, 0)          # a clean miss beats a crash
        self.assertEqual(result.best_code, good_but_slow)
        self.assertEqual(result.stopped_reason, "iterations_done")

    def test_k_candidates_are_generated_concurrently_and_the_best_is_chosen(self):
        self.server.script(text_reply(fenced(FLOATY)), text_reply(fenced(GOOD)))
        result = self.loop(candidates=2)
        it = self.run_dir / "iter_0"
        self.assertTrue((it / "cand_0" / "policy.generated.py").exists())
        self.assertTrue((it / "cand_1" / "policy.generated.py").exists())
        chosen = json.loads((it / "chosen.json").read_text())["candidate"]
        self.assertEqual((it / f"cand_{chosen}" / "policy.generated.py").read_text(), GOOD)
        self.assertEqual((it / "policy.generated.py").read_text(), GOOD)
        self.assertEqual(result.best_candidate, chosen)
        temperatures = sorted(r.body["temperature"] for r in self.server.requests)
        self.assertEqual(temperatures, [0.2, 0.4])
        self.assertEqual(sorted(seeds for _, seeds in self.runner.calls), [[1, 3], [1, 3]])

    def test_holdout_seeds_are_new_and_reported_separately(self):
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(holdout_seeds=2)
        self.assertEqual(self.runner.calls[-1], (GOOD, [4, 5]))
        holdout = next(e for e in self.events if e["type"] == "holdout")
        self.assertEqual((holdout["seeds"], holdout["aggregate"]["success_rate"]), ([4, 5], 1.0))
        self.assertEqual(result.holdout["episodes"], 2)
        self.assertTrue((self.run_dir / "holdout" / "aggregate.json").exists())
        summary = next(e for e in self.events if e["type"] == "episode_summary" and e["phase"] == "holdout")
        self.assertEqual(summary["seed"], 4)

    def test_a_spent_token_budget_stops_the_run_cleanly(self):
        self.server.script(text_reply(fenced(FLOATY)), text_reply(fenced(GOOD)))
        result = self.loop(iterations=3, token_budget=10)
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual((result.stopped_reason, len(result.iterations)), ("token_budget", 1))

    def test_a_provider_failure_before_any_policy_raises(self):
        self.server.script(error_reply(401, "invalid x-api-key"))
        with self.assertRaises(ProviderError) as caught:
            self.loop()
        self.assertIn("HTTP 401", str(caught.exception))

    def test_a_provider_failure_after_a_best_exists_ends_the_run_keeping_it(self):
        self.server.script(text_reply(fenced(FLOATY)), error_reply(400, "context too long"))
        result = self.loop(iterations=2)
        self.assertEqual((result.stopped_reason, result.best_iteration), ("provider_error", 0))
        self.assertIn("context too long", result.error)
        self.assertIn("warning", self.types())

    def test_the_key_is_in_no_file_and_no_event(self):
        self.server.script(text_reply(fenced(GOOD)))
        self.loop()
        for path in self.run_dir.rglob("*"):
            if path.is_file():
                self.assertNotIn(KEY, path.read_text(), str(path))
        self.assertNotIn(KEY, json.dumps(self.events))


class TestStopping(LoopTestCase):
    def test_stop_during_episodes_ends_the_loop_promptly(self):
        started = threading.Event()
        runner = FakeRunner(block=started)
        self.server.script(text_reply(fenced(GOOD)))
        box = {}
        thread = threading.Thread(target=lambda: box.setdefault("r", self.loop(runner=runner, iterations=3)))
        thread.start()
        self.assertTrue(started.wait(WAIT_S))
        self.stop.set()
        thread.join(WAIT_S)
        self.assertFalse(thread.is_alive())
        self.assertEqual(box["r"].stopped_reason, "terminated")

    def test_stop_during_a_slow_llm_reply_does_not_wait_for_it(self):
        self.server.script(slow_reply(WAIT_S))
        box = {}
        thread = threading.Thread(target=lambda: box.setdefault("r", self.loop()))
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not self.server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop.set()
        thread.join(WAIT_S / 2)
        self.assertFalse(thread.is_alive())
        self.assertEqual(box["r"].stopped_reason, "terminated")
        self.assertEqual(self.runner.calls, [])


# --- task specs ------------------------------------------------------------------------------

VISIT_SPEC = {"goal": "visit two points then the target", "checks": [
    {"kind": "visit", "points": [{"from": "start", "offset": [0, 5, 0]}, [58, 58, -20]]},
    {"kind": "reach", "point": "target"}]}
FAST_SPEC = {"checks": [{"kind": "reach", "point": "target"}], "objective": {"minimize": "time"}}


def json_reply(doc) -> "object":
    return text_reply(f"The spec:\n```json\n{json.dumps(doc)}\n```\n")


class TimedRunner(FakeRunner):
    """Every episode succeeds; ``# TIME <s>`` in the code sets its simulated time."""

    def __call__(self, policy_code, seeds, config, outdir, *, workers=None, on_event=None,
                 stop_event=None):
        self.calls.append((policy_code, list(seeds)))
        self.configs = getattr(self, "configs", []) + [config]
        seconds = float(policy_code.split("# TIME ")[1].split()[0]) if "# TIME " in policy_code else 7.0
        out = []
        for seed in seeds:
            summary = dict(fake_summary(seed, "# GOOD"), sim_time_s=seconds, steps=int(seconds * 100),
                           checks=[{"kind": "reach", "passed": True, "score": 1.0,
                                    "account": "reach: within 1 m of target"}], score=1.0)
            ep = Path(outdir) / f"ep_{seed}"
            ep.mkdir(parents=True, exist_ok=True)
            (ep / f"summary.{seed}.json").write_text(json.dumps(summary))
            if on_event:
                on_event({"type": "episode_summary", **summary})
            out.append(summary)
        return out


class BulkyRunner(FakeRunner):
    """A FakeRunner whose episodes each write ``size`` bytes of steps and record their config."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.configs = size, []

    def __call__(self, policy_code, seeds, config, outdir, **kwargs):
        self.configs.append(config)
        summaries = super().__call__(policy_code, seeds, config, outdir, **kwargs)
        for seed in seeds:
            (Path(outdir) / f"ep_{seed}" / f"steps.{seed}.jsonl").write_bytes(b"x" * self.size)
        return summaries


class TestPriorBest(LoopTestCase):
    def test_a_resumed_loop_weighs_the_best_before_the_resume_in_best_so_far(self):
        from bgen.orchestrator import evaluator
        old = evaluator.aggregate([dict(fake_summary(s, "# GOOD"), seed=s) for s in (1, 3)])
        result = run_loop(LoopConfig(episode=EpisodeConfig(max_steps=3000, backend="embedded"),
                                     policy_code="# BAD", seeds=(1, 3), iterations=2,
                                     first_iteration=1, existing_code="# BAD"),
                          self.run_dir, self.events.append, self.stop, episode_runner=self.runner,
                          policy_checker=fake_checker, prior_best=(0, "# GOOD old", old))
        self.assertEqual((result.best_iteration, result.best_code), (0, "# GOOD old"))
        [critique] = [e for e in self.events if e["type"] == "critique"]
        self.assertEqual((critique["iteration"], critique["best_iteration"]), (1, 0))


class TestDiskBudget(LoopTestCase):
    def test_no_iteration_starts_past_the_disk_budget_and_episodes_get_their_share(self):
        mib = 1024 * 1024
        runner = BulkyRunner(mib)
        result = self.loop(llm=False, policy_code="# BAD", runner=runner, iterations=5,
                           max_run_bytes=13 * mib)         # seeds (1, 3): two episodes each
        # each episode's records: half its share of what is left, less a trace's 1 MiB
        self.assertEqual(result.stopped_reason, "disk_budget")
        self.assertEqual(len(runner.configs), 3)           # 0, 2, 4 MiB used; at 6 it stops
        first = runner.configs[0].max_record_bytes
        self.assertTrue(13 * mib // 4 - mib - 1024 < first <= 13 * mib // 4 - mib, first)
        [warning] = [e["message"] for e in self.events if e["type"] == "warning"
                     and "disk budget" in e["message"]]
        self.assertRegex(warning, r"^the run's folder holds \d+ of its 13631488 bytes \(its disk "
                                  r"budget\): 2 more episodes would get less than 1048576 bytes "
                                  r"of records each, so the run stops here, keeping the best "
                                  r"policy so far$")
        self.assertIsNotNone(result.best_code)             # what ran is kept

    def test_a_budget_too_small_for_one_iteration_says_so_and_runs_nothing(self):
        runner = BulkyRunner(10)
        result = self.loop(llm=False, policy_code=GOOD, runner=runner, max_run_bytes=4 << 20)
        self.assertEqual((result.stopped_reason, runner.configs), ("disk_budget", []))
        self.assertTrue(any(e["type"] == "warning" and e["message"].endswith(
            "so the run stops here before its first episode") for e in self.events))

    def test_a_holdout_the_budget_cannot_hold_is_skipped_and_the_reason_stays(self):
        mib = 1024 * 1024
        runner = BulkyRunner(3 * mib)
        result = self.loop(llm=False, policy_code=GOOD, runner=runner, holdout_seeds=2,
                           max_run_bytes=12 * mib)
        self.assertEqual(result.stopped_reason, "success_threshold")
        self.assertIsNone(result.holdout)
        self.assertTrue(any(e["type"] == "warning" and e["message"].endswith(
            "so the holdout was skipped") for e in self.events))

    def test_a_budget_below_one_episodes_minimum_is_a_config_error(self):
        with self.assertRaises(ConfigError) as caught:
            self.loop(llm=False, policy_code=GOOD, max_run_bytes=1000)
        self.assertEqual(caught.exception.field, "max_run_bytes")


class TestTaskSpecs(LoopTestCase):
    def test_the_first_call_turns_the_goal_into_a_spec_that_the_policy_prompt_shows(self):
        self.server.spec_script(json_reply(VISIT_SPEC))
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(user_goal="Visit the point north of the start, then (58, 58), then "
                                     "the target", iterations=1)
        self.assertEqual(self.server.problems, [])
        self.assertEqual(len(self.server.spec_requests), 1)
        ask = self.server.spec_requests[0].user_text
        self.assertIn("Visit the point north of the start", ask)
        self.assertIn("- start: [50, 50, -20]", ask)
        self.assertIn("- target: [60, 60, -20]", ask)
        self.assertIn("WORKED EXAMPLE", ask)
        # the points each seed really flies, as the policy prompt lists them
        from bgen.runner.episode import episode_points
        from bgen.sim import load_backend
        start, target = episode_points(load_backend("embedded"), EpisodeConfig(backend="embedded"), 1)
        self.assertIn(f"an offset is from the landmark, not from the ground; this run's "
                      f"episodes:\n  seed 1: start {start}, target {target}\n", ask)
        system = self.server.spec_requests[0].system_text
        for kind in taskspec.CHECK_KINDS:
            self.assertIn(f"- {kind}:", system)
        self.assertIn("No point can be placed relative to the\nground below it", system)
        self.assertEqual(system.count("Take-off is exempt: from the first step at which"), 2)
        task = next(e for e in self.events if e["type"] == "task")
        self.assertEqual(self.types()[:2], ["task", "iteration"])
        self.assertEqual(task["source"], "llm")
        self.assertEqual(task["task_spec"]["checks"][0]["points"],
                         [{"from": "start", "offset": [0, 5, 0]}, [58, 58, -20]])
        self.assertEqual(result.task_spec, task["task_spec"])
        self.assertEqual(result.task_source, "llm")
        self.assertEqual(json.loads((self.run_dir / "task_spec.json").read_text()), task["task_spec"])
        policy_prompt = self.server.requests[0].user_text
        self.assertIn("SUCCESS CHECKS", policy_prompt)
        self.assertIn('"kind": "visit"', policy_prompt)
        self.assertIn("- visit: passes for good once the agent has come within radius", policy_prompt)
        self.assertEqual(self.runner.calls[0][0], GOOD)
        record = json.loads((self.run_dir / "task" / "llm.json").read_text())
        self.assertEqual([c["purpose"] for c in record["calls"]], ["task_spec"])

    def test_an_invalid_spec_is_repaired_once_with_the_error_named(self):
        self.server.spec_script(json_reply({"checks": [{"kind": "reach", "point": "target",
                                                        "radius": -2}]}),
                                json_reply(VISIT_SPEC))
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(iterations=1)
        self.assertEqual(len(self.server.spec_requests), 2)
        repair = self.server.spec_requests[1].user_text
        self.assertIn("IT IS NOT A VALID TASK SPEC\nchecks[0].radius: expects a positive number, "
                      "actual: -2", repair)
        self.assertEqual((result.task_source, result.task_spec["goal"]),
                         ("llm", "visit two points then the target"))
        self.assertNotIn("warning", self.types())

    def test_a_spec_still_invalid_after_the_repair_falls_back_to_the_default_with_a_warning(self):
        self.server.spec_script(text_reply("I cannot do that."),
                                json_reply({"checks": [{"kind": "reach", "point": "turbine_0"}]}))
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(iterations=1)
        warning = next(e for e in self.events if e["type"] == "warning")
        self.assertEqual(warning["message"],
                         "the LLM gave no valid task spec (checks[0].point: unknown landmark "
                         "'turbine_0'; this scenario has start, target); judging by the default: "
                         "reach the target within 1.0 m")
        task = next(e for e in self.events if e["type"] == "task")
        self.assertEqual((task["source"], task["task_spec"]),
                         ("default", {"checks": [{"kind": "reach", "point": "target", "radius": 1}]}))
        self.assertNotIn("SUCCESS CHECKS", self.server.requests[0].user_text)
        self.assertEqual(result.stopped_reason, "success_threshold")

    def test_a_given_spec_makes_no_spec_call_and_judges_the_episodes(self):
        runner = TimedRunner()
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(iterations=1, task_spec=VISIT_SPEC, runner=runner)
        self.assertEqual(self.server.spec_requests, [])
        self.assertEqual(result.task_source, "given")
        self.assertEqual(runner.configs[0].task_spec, result.task_spec)
        self.assertEqual(runner.configs[0].max_steps, 3000)
        task = next(e for e in self.events if e["type"] == "task")
        self.assertEqual(task["source"], "given")

    def test_a_bad_given_spec_is_a_config_error_naming_the_field(self):
        with self.assertRaises(ConfigError) as caught:
            self.loop(llm=False, policy_code=GOOD,
                      task_spec={"checks": [{"kind": "orbit", "centre": "start"}]})
        self.assertEqual(caught.exception.field, "task_spec.checks[0].min_radius")

    def test_without_max_steps_the_budget_follows_the_route_and_the_prompt_says_so(self):
        runner = TimedRunner()
        far = {"checks": [{"kind": "visit", "points": [[150, 50, -20], [150, 150, -20]],
                           "laps": 2}]}
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(iterations=1, runner=runner, task_spec=far, derive_max_steps=True)
        # route: four legs of 100 m (two laps); at 2.4 m/s, times 1.5, plus 10 s
        expected = math.ceil((400 / 2.4 * 1.5 + 10) / 0.01)
        self.assertEqual(runner.configs[0].max_steps, expected)
        self.assertEqual(result.max_steps, expected)
        self.assertIn(f"at most {expected} steps", self.server.requests[0].user_text)
        self.assertIn("a budget derived from the route the checks ask for (about 400 m",
                      self.server.requests[0].user_text)
        short = TimedRunner()
        self.loop(llm=False, policy_code=GOOD, runner=short, derive_max_steps=True)
        self.assertEqual(short.configs[0].max_steps, 5000)

    def test_a_given_max_steps_too_short_for_the_spec_is_a_warning_before_any_episode(self):
        hover = {"checks": [{"kind": "dwell", "point": "target", "seconds": 40}]}
        self.loop(llm=False, policy_code=GOOD, runner=TimedRunner(), task_spec=hover)
        warnings = [e["message"] for e in self.events if e["type"] == "warning"]
        self.assertIn("max_steps 3000 x delta 0.01 s gives episodes of 30 s, shorter than the "
                      "task spec's 40 s of dwell: no episode can pass", warnings)
        self.assertLess(self.types().index("warning"), self.types().index("iteration"))
        self.events.clear()
        self.loop(llm=False, policy_code=GOOD, runner=TimedRunner(), task_spec=hover,
                  derive_max_steps=True)          # the budget is sized to the spec: no warning
        self.assertNotIn("warning", self.types())
        self.events.clear()
        endless = {"checks": [{"kind": "dwell", "point": "target", "seconds": 100_000}]}
        self.loop(llm=False, policy_code=GOOD, runner=TimedRunner(), task_spec=endless,
                  derive_max_steps=True)          # sized to the spec, but capped at 1e6 steps
        self.assertIn("max_steps 1000000 x delta 0.01 s gives episodes of 10000 s, shorter than "
                      "the task spec's 100000 s of dwell: no episode can pass",
                      [e["message"] for e in self.events if e["type"] == "warning"])

    def test_with_an_objective_the_loop_goes_on_past_the_threshold_while_it_improves(self):
        runner = TimedRunner()
        self.server.spec_script(json_reply(FAST_SPEC))
        self.server.script(*(text_reply(fenced(GOOD + f"# TIME {t}\n")) for t in (20, 10, 12, 15, 5)))
        result = self.loop(iterations=6, runner=runner, user_goal="Reach the target as fast as "
                                                                   "possible")
        self.assertEqual(len(result.iterations), 4)
        self.assertEqual((result.stopped_reason, result.concluded_early, result.best_iteration),
                         ("objective_converged", True, 1))
        self.assertEqual(result.stop_note,
                         "success threshold reached at iteration 0; went on for the objective "
                         "(minimize time): best 10 at iteration 1; stopped after iterations 2 "
                         "and 3 did not improve it")
        self.assertEqual(result.best_aggregate["objective"], {"minimize": "time", "value": 10.0})
        critique = (self.run_dir / "iter_1" / "critique.txt").read_text()
        self.assertIn("Objective: minimize time; mean 10 s over these episodes.", critique)

    def test_without_an_objective_success_still_stops_the_loop(self):
        runner = TimedRunner()
        self.server.script(text_reply(fenced(GOOD)))
        result = self.loop(iterations=4, runner=runner)
        self.assertEqual((len(result.iterations), result.stopped_reason, result.stop_note),
                         (1, "success_threshold", None))


class TestEndToEnd(LoopTestCase):
    """Real check_policy and run_episodes on the embedded backend."""

    def test_bad_policy_then_good_policy_reaches_success_with_real_workers(self):
        from bgen.runner.worker import check_policy, run_episodes
        self.server.script(text_reply(fenced(FLOATY)), text_reply(fenced(GOOD)))
        result = self.loop(iterations=3, runner=run_episodes, checker=check_policy, workers=2)
        self.assertEqual(result.stopped_reason, "success_threshold")
        self.assertEqual(result.best_iteration, 1)
        critique = (self.run_dir / "iter_0" / "critique.txt").read_text()
        self.assertIn("cannot be interpreted as an integer", critique)
        self.assertRegex(critique, r"act\(\) raised TypeError at line 5 in 2/2 episodes")
        self.assertTrue((self.run_dir / "iter_1" / "ep_1" / "summary.1.json").exists())
        self.assertEqual(result.best_aggregate["success_rate"], 1.0)
        self.assertGreater(result.sim_time_s, 0.0)


class TestProviderReplies(LoopTestCase):
    """Reasoning sections, several blocks and errors inside 200s, through the loop."""

    def test_a_draft_inside_think_is_not_taken_and_the_final_policy_runs_first(self):
        self.server.script(text_reply(think_wrapped(GOOD, FLOATY)))
        result = self.loop(iterations=3)
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual((result.best_iteration, result.stopped_reason), (0, "success_threshold"))
        self.assertEqual((self.run_dir / "iter_0" / "policy.generated.py").read_text(), GOOD)
        call = json.loads((self.run_dir / "iter_0" / "llm.json").read_text())["calls"][0]
        self.assertEqual((call["extraction"]["source"], call["extraction"]["reasoning_stripped"]),
                         ("fence", True))

    def test_a_200_with_an_error_is_retried_once_and_the_warning_names_the_providers_message(self):
        self.server.script(gateway_error("Provider returned error: upstream overloaded", 502),
                           text_reply(fenced(GOOD)))
        result = self.loop(iterations=1)
        self.assertEqual((result.best_iteration, result.best_aggregate["success_rate"]), (0, 1.0))
        retries = [e for e in self.events if e["type"] == "warning" and e.get("kind") == "llm_retry"]
        self.assertEqual(len(retries), 1)
        self.assertEqual({k: retries[0][k] for k in ("attempt", "attempts", "provider_message", "provider_code",
                                                      "iteration", "candidate")},
                         {"attempt": 1, "attempts": 5, "provider_message": "Provider returned error: upstream overloaded",
                          "provider_code": 502, "iteration": 0, "candidate": 0})
        self.assertEqual(retries[0]["cause"],
                         "provider error in a 200 reply: Provider returned error: upstream overloaded (502)")
        self.assertIn("Provider returned error: upstream overloaded", retries[0]["message"])
        self.assertIn("retrying in", retries[0]["message"])
        self.assertEqual(json.loads((self.run_dir / "iter_0" / "llm.json").read_text())["calls"][0]["attempts"], 2)

    def test_the_repair_prompt_says_which_of_several_blocks_was_taken(self):
        self.server.script(text_reply("First a helper:\n```python\nSPEED = 1\n```\n" + fenced(BROKEN)),
                           text_reply(fenced(GOOD)))
        self.loop(iterations=1)
        prompt = (self.run_dir / "iter_0" / "repair_1_prompt.txt").read_text()
        self.assertIn("Your reply had 2 Python code blocks; block 2 of 2 was taken as the module (the last "
                      "block that compiles and defines act, collect and finalize).", prompt)
        self.assertIn("THE POLICY BELOW FAILED TO LOAD", prompt)

    def test_a_reply_cut_off_before_any_text_ends_the_run_naming_the_limit(self):
        from tests.fake_llm import anthropic_message, json_reply
        self.server.script(json_reply(anthropic_message(
            [{"type": "thinking", "thinking": "long", "signature": "s"}], stop_reason="max_tokens")))
        with self.assertRaises(ProviderError) as caught:
            self.loop(iterations=1)
        self.assertEqual(str(caught.exception),
                         f"anthropic reply from {self.server.url}/v1/messages stopped at the token limit "
                         "(max_tokens 2400) with only thinking content and no text: raise --max-tokens "
                         "(iterate) or max_tokens (POST /run)")


class TestIterateCLIReplies(unittest.TestCase):
    """``iterate --use-llm`` against replies of reasoning models and gateways, real workers."""

    KEY_ENV = "BGEN_TEST_ITERATE_KEY"

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.out = Path(tmp.name) / "run"
        self.server = FakeLLMServer(api_key=KEY)
        self.addCleanup(self.server.close)

    def main(self, *argv) -> tuple[int, str, str]:
        import contextlib
        import io
        import os
        from unittest import mock
        from bgen.orchestrator import iterate

        stdout, stderr = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, {self.KEY_ENV: KEY}), contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr):
            code = iterate.main(["--use-llm", "--llvpn-url", self.server.url, "--api-key-env", self.KEY_ENV,
                                 "--episodes", "1", "--seed-start", "1", "--max-steps", "3000",
                                 "--backend", "embedded", "--outdir", str(self.out), *argv])
        return code, stdout.getvalue(), stderr.getvalue()

    def test_a_think_wrapped_reply_with_a_draft_runs_the_real_policy_in_the_first_iteration(self):
        self.server.script(text_reply(think_wrapped(GOOD, FLOATY)))
        code, out, err = self.main("--iterations", "3")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(self.server.requests), 1)
        self.assertEqual((self.out / "iter_0" / "policy.generated.py").read_text(), GOOD)
        self.assertIn("iter 0: success 1/1 (1.00)", out)
        self.assertIn("stopped: success_threshold", out)
        self.assertFalse((self.out / "iter_1").exists())

    def test_a_200_with_an_error_prints_a_retry_line_then_the_run_succeeds(self):
        self.server.script(gateway_error("Provider returned error: upstream overloaded", 502),
                           text_reply(fenced(GOOD)))
        code, out, err = self.main("--iterations", "1", "--llm-backoff-cap", "0.05", "--llm-retries", "2")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"warning: anthropic request attempt 1 of 3 failed: provider error in a 200 reply: "
                              r"Provider returned error: upstream overloaded \(502\); retrying in 0\.\d s\n")
        self.assertIn("iter 0: success 1/1 (1.00)", out)
        events = [json.loads(line) for line in (self.out / "events.jsonl").read_text().splitlines()]
        retry = next(e for e in events if e.get("kind") == "llm_retry")
        self.assertEqual(retry["provider_message"], "Provider returned error: upstream overloaded")
        self.assertLessEqual(retry["wait_s"], 0.05)


class TestIterateCLI(unittest.TestCase):
    """``python -m bgen.orchestrator.iterate``: in-process for runs, a subprocess for exit paths."""

    KEY_ENV = "BGEN_TEST_ITERATE_KEY"

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.out = Path(tmp.name) / "run"

    def main(self, *argv, env=None) -> tuple[int, str, str]:
        import contextlib
        import io
        import os
        from unittest import mock
        from bgen.orchestrator import iterate

        stdout, stderr = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr):
            try:
                code = iterate.main(list(argv))
            except SystemExit as exit_:
                code = exit_.code
        return code, stdout.getvalue(), stderr.getvalue()

    def subprocess(self, *argv, env_drop=()) -> "subprocess.CompletedProcess":
        import os
        import subprocess
        import sys
        env = {k: v for k, v in os.environ.items() if k not in env_drop}
        return subprocess.run([sys.executable, "-m", "bgen.orchestrator.iterate", *argv],
                              capture_output=True, text=True, timeout=WAIT_S * 3, env=env,
                              cwd=Path(__file__).resolve().parent.parent)

    def test_a_policy_file_run_writes_critique_aggregate_run_json_and_events(self):
        from bgen.llm.context import example_path
        code, out, err = self.main("--policy", str(example_path("move_to_target")), "--iterations", "1",
                                   "--episodes", "3", "--max-steps", "1500", "--backend", "embedded",
                                   "--outdir", str(self.out))
        self.assertEqual(code, 0, err)
        it = self.out / "iter_0"
        self.assertTrue((it / "critique.txt").read_text().startswith("Result: "))
        self.assertEqual(json.loads((it / "aggregate.json").read_text())["episodes"], 3)
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["status"], run["best_iteration"]), ("done", 0))
        types = [json.loads(line)["type"] for line in (self.out / "events.jsonl").read_text().splitlines()]
        self.assertEqual((types[0], types[-1]), ("iteration", "done"))
        self.assertIn("iter 0: policy given, loads", out)
        self.assertRegex(out, r"iter 0: success \d/3")
        self.assertIn("done: best iter 0", out)
        # simulated seconds are not compute seconds: the line keeps them apart
        self.assertRegex(out, r"; episodes \d+\.\d s for \d+\.\d s of simulated flight; wall ")
        self.assertGreater(run["result"]["episodes_wall_s"], 0)

    def test_with_the_llm_a_bad_then_good_policy_reaches_success_and_stops_early(self):
        server = FakeLLMServer(api_key=KEY).script(text_reply(fenced(FLOATY)), text_reply(fenced(GOOD)))
        self.addCleanup(server.close)
        code, out, err = self.main("--use-llm", "--llvpn-url", server.url, "--api-key-env", self.KEY_ENV,
                                   "--iterations", "4", "--episodes", "2", "--seed-start", "1",
                                   "--success-threshold", "0.5", "--max-steps", "3000", "--backend", "embedded", "--outdir", str(self.out),
                                   env={self.KEY_ENV: KEY})
        self.assertEqual(code, 0, err)
        self.assertEqual(server.problems, [])
        self.assertEqual(len(server.requests), 2)
        self.assertIn("cannot be interpreted as an integer", (self.out / "iter_0" / "critique.txt").read_text())
        self.assertFalse((self.out / "iter_2").exists())
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["stopped_reason"], run["best_iteration"]), ("success_threshold", 1))
        self.assertIn("stopped: success_threshold", out)
        for path in self.out.rglob("*"):
            if path.is_file():
                self.assertNotIn(KEY, path.read_text(), str(path))

    def test_a_task_spec_file_run_reports_per_check_results_everywhere(self):
        from bgen.llm.context import example_path
        spec = Path(self.out.parent) / "spec.json"
        spec.write_text(json.dumps({"checks": [
            {"kind": "reach", "point": "target"},
            {"kind": "altitude", "min_z": -90, "max_z": -60},
            {"kind": "visit", "points": [{"from": "turbine_1", "offset": [0, -8, 0]}]}]}))
        code, out, err = self.main("--policy", str(example_path("move_to_target")),
                                   "--task-spec", str(spec), "--use-wind-farm", "--episodes", "2",
                                   "--max-steps", "1200", "--backend", "embedded",
                                   "--outdir", str(self.out))
        self.assertEqual(code, 0, err)
        agg = json.loads((self.out / "iter_0" / "aggregate.json").read_text())
        self.assertEqual([(c["kind"], c["passed"]) for c in agg["checks"]],
                         [("reach", 2), ("altitude", 2), ("visit", 0)])
        self.assertEqual(agg["success_rate"], 0.0)
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual(run["task_spec"]["checks"][2]["points"],
                         [{"from": "turbine_1", "offset": [0, -8, 0]}])
        self.assertEqual(run["result"]["best_aggregate"]["checks"], agg["checks"])
        events = [json.loads(line) for line in (self.out / "events.jsonl").read_text().splitlines()]
        self.assertEqual(events[0]["type"], "task")
        self.assertEqual(events[0]["source"], "given")
        summary = next(e for e in events if e["type"] == "episode_summary")
        self.assertEqual([c["kind"] for c in summary["checks"]], ["reach", "altitude", "visit"])
        self.assertRegex(summary["checks"][2]["account"],
                         r"^visit: 0/1 points; missed \[120, 112, -66\] \(point 0\) by "
                         r"\d+\.\d m$")
        critique = next(e for e in events if e["type"] == "critique")
        self.assertEqual(critique["aggregate"]["checks"], agg["checks"])
        self.assertIn("- seed 0: visit: 0/1 points; missed [120, 112, -66]", critique["text"])
        self.assertIn("task (given): checks reach, altitude, visit; 1200 steps per episode", out)
        self.assertIn("checks reach 2/2; altitude 2/2; visit 0/2", out)

    def test_a_bad_task_spec_file_is_one_line_naming_the_field_and_exits_2(self):
        from bgen.llm.context import example_path
        spec = Path(self.out.parent) / "spec.json"
        spec.write_text(json.dumps({"checks": [{"kind": "visit", "points": []}]}))
        code, out, err = self.main("--policy", str(example_path("move_to_target")),
                                   "--task-spec", str(spec), "--outdir", str(self.out))
        self.assertEqual((code, err), (2, f"iterate: error: task spec file '{spec}': "
                                          "task_spec.checks[0].points: expects a list of 1..256 "
                                          "points, actual: []\n"))

    def test_a_given_policy_that_does_not_load_fails_the_run(self):
        policy = Path(self.out.parent) / "imports_os.py"
        policy.write_text("import os\n\ndef act(t, agent, world, fw, env, helpers):\n    return None\n")
        code, out, err = self.main("--policy", str(policy), "--backend", "embedded",
                                   "--outdir", str(self.out))
        self.assertEqual(code, 1, err)
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["status"], run["stopped_reason"], run["error"]["phase"]),
                         ("failed", "failed", "generate"))
        self.assertIn("the given policy does not load: line 1: import of 'os' is not allowed",
                      run["error"]["message"])
        self.assertFalse((self.out / "policy.best.py").exists())

    def test_a_policy_file_with_two_iterations_flies_new_seeds_and_says_so_once(self):
        from bgen.llm.context import example_path
        code, out, err = self.main("--policy", str(example_path("move_to_target")), "--iterations", "2",
                                   "--episodes", "2", "--max-steps", "20", "--backend", "embedded",
                                   "--outdir", str(self.out))
        self.assertEqual(code, 0, err)
        self.assertEqual(out.count("warning: no LLM: each of the 2 iterations flies the same policy"), 1, out)
        self.assertIn("iter 0: starting (1 candidate(s), seeds 0, 1)", out)
        self.assertIn("iter 1: starting (1 candidate(s), seeds 2, 3)", out)
        self.assertEqual((self.out / "iter_1" / "policy.given.py").read_text(),
                         example_path("move_to_target").read_text())
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["status"], run["stopped_reason"], run["error"]), ("done", "iterations_done", None))

    def test_a_failed_run_says_why_and_where_in_run_json(self):
        server = FakeLLMServer(api_key=KEY).script(error_reply(400, "model: unknown model 'nope'"))
        self.addCleanup(server.close)
        code, out, err = self.main("--use-llm", "--anthropic-url", server.url, "--api-key-env", self.KEY_ENV,
                                   "--model", "nope", "--backend", "embedded", "--outdir", str(self.out),
                                   env={self.KEY_ENV: KEY})
        self.assertEqual(code, 1, err)
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["status"], run["stopped_reason"], run["error"]["phase"]),
                         ("failed", "failed", "generate"))
        self.assertIn("model: unknown model 'nope'", run["error"]["message"])
        self.assertTrue(err.startswith("isolation: "), err)   # the first line: the sandbox's layers
        self.assertEqual(err.split("\n", 1)[1], f"iterate: error: {run['error']['message']}\n")
        last = json.loads((self.out / "events.jsonl").read_text().splitlines()[-1])
        self.assertEqual((last["type"], last["message"], last["phase"]),
                         ("error", run["error"]["message"], "generate"))

    def test_without_a_key_one_line_names_the_variable_and_exits_2(self):
        done = self.subprocess("--use-llm", "--api-key-env", self.KEY_ENV, "--outdir", str(self.out),
                               env_drop=(self.KEY_ENV,))
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stderr, f"iterate: error: no API key: set the environment variable "
                                      f"{self.KEY_ENV} (or choose another with --api-key-env)\n")
        self.assertNotIn("Traceback", done.stdout + done.stderr)
        self.assertFalse(self.out.exists())

    def test_bad_flags_are_one_line_and_exit_2(self):
        table = [
            (["--iterations", "ten"], "iterate: error: argument --iterations: invalid int value: 'ten'"),
            (["--policy", "x.py", "--target", "1,2"], "iterate: error: --target: expects x,y,z numbers, actual: '1,2'"),
            (["--bogus"], "iterate: error: unrecognized arguments: --bogus"),
            ([], "iterate: error: --policy: expects a policy file when --use-llm is not given"),
            (["--policy", "/nonexistent/p.py"], "iterate: error: --policy: cannot read '/nonexistent/p.py': No such file or directory"),
        ]
        for argv, line in table:
            with self.subTest(argv=argv):
                code, out, err = self.main(*argv, "--outdir", str(self.out))
                self.assertEqual((code, err), (2, line + "\n"))
        from bgen.llm.context import example_path
        code, out, err = self.main("--policy", str(example_path("move_to_target")), "--iterations", "0",
                                   "--outdir", str(self.out))
        self.assertEqual((code, err), (2, "iterate: error: iterations: expects an integer in 1..100, actual: 0\n"))


class TestIterateOutdir(unittest.TestCase):
    """iterate never mixes two runs in one directory: a new default per run, --resume, --overwrite."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.out = Path(tmp.name) / "run"

    main = TestIterateCLI.main

    def run_policy(self, *extra):
        from bgen.llm.context import example_path
        return self.main("--policy", str(example_path("move_to_target")), "--episodes", "1",
                         "--max-steps", "200", "--backend", "embedded", "--outdir", str(self.out), *extra)

    def events(self):
        return [json.loads(line) for line in (self.out / "events.jsonl").read_text().splitlines()]

    def test_a_non_empty_outdir_is_refused_without_resume_or_overwrite(self):
        self.out.mkdir()
        (self.out / "run.json").write_text("{}")
        code, out, err = self.run_policy()
        self.assertEqual((code, err), (2, f"iterate: error: --outdir: {self.out} is not empty; pass --resume "
                                          "to continue the run in it or --overwrite to replace it\n"))
        self.assertEqual((self.out / "run.json").read_text(), "{}")

    def test_overwrite_replaces_the_previous_run(self):
        self.assertEqual(self.run_policy()[0], 0)
        (self.out / "stale.txt").write_text("from before")
        code, _, err = self.run_policy("--overwrite")
        self.assertEqual(code, 0, err)
        self.assertFalse((self.out / "stale.txt").exists())
        self.assertEqual([e["type"] for e in self.events()].count("iteration"), 1)

    def test_resume_continues_after_the_last_finished_iteration(self):
        self.assertEqual(self.run_policy("--iterations", "1")[0], 0)
        first_ids = [e["id"] for e in self.events()]
        code, out, err = self.run_policy("--iterations", "2", "--resume")
        self.assertEqual(code, 0, err)
        self.assertIn("resuming", out)
        self.assertTrue((self.out / "iter_1" / "aggregate.json").is_file())
        events = self.events()
        self.assertEqual([e["iteration"] for e in events if e["type"] == "iteration"], [0, 1])
        ids = [e["id"] for e in events]
        self.assertEqual(ids[:len(first_ids)], first_ids)
        self.assertEqual(ids, sorted(set(ids)))
        run = json.loads((self.out / "run.json").read_text())
        self.assertEqual((run["status"], run["resumed_at_iteration"]), ("done", 1))
        code, out, _ = self.run_policy("--iterations", "2", "--resume")
        self.assertEqual(code, 0)
        self.assertIn("nothing to resume: iterations 0..1", out)

    def test_resume_needs_a_run_to_continue(self):
        code, _, err = self.run_policy("--resume")
        self.assertEqual((code, err), (2, f"iterate: error: --resume: {self.out} holds no run to continue\n"))
        code, _, err = self.main("--policy", "x.py", "--resume", "--overwrite")
        self.assertEqual(code, 2)
        self.assertIn("not allowed with argument", err)

    def test_the_default_outdir_is_new_for_every_run(self):
        from bgen.orchestrator.iterate import default_outdir, goal_slug
        self.assertEqual(goal_slug("Reach the target, safely!"), "reach-the-target-safely")
        self.assertEqual(goal_slug("!!!"), "run")
        root = self.out
        first = default_outdir("Reach it", 0.0, root)
        self.assertEqual(first, root / "19700101-000000-reach-it")
        first.mkdir(parents=True)
        self.assertEqual(default_outdir("Reach it", 0.0, root), root / "19700101-000000-reach-it-2")

    def test_resume_point_reads_the_finished_iterations_and_the_best(self):
        from bgen.orchestrator.iterate import resume_point
        for n, rate in ((0, 0.5), (1, 1.0), (2, 0.0)):
            d = self.out / f"iter_{n}"
            d.mkdir(parents=True)
            (d / "policy.generated.py").write_text(f"# policy {n}\n")
            (d / "critique.txt").write_text(f"critique {n}\n")
            if n < 2:       # iteration 2 never finished
                (d / "aggregate.json").write_text(json.dumps({"success_rate": rate, "episodes": 2}))
        point = resume_point(self.out)
        self.assertEqual((point.next_iteration, point.code, point.critique, point.best_iteration),
                         (2, "# policy 1\n", "critique 1", 1))


class TestDocs(unittest.TestCase):
    def test_every_iterate_flag_and_event_type_is_documented(self):
        from bgen.orchestrator.iterate import build_parser
        doc = (Path(__file__).resolve().parent.parent / "docs" / "llm-and-loop.md").read_text()
        flags = [o for a in build_parser()._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
        for flag in flags:
            with self.subTest(flag=flag):
                self.assertIn(f"`{flag}", doc)
        for kind in ("task", "iteration", "policy", "warning", "critique", "holdout",
                     "episode_summary"):
            with self.subTest(event=kind):
                self.assertIn(f"`{kind}`", doc)


if __name__ == "__main__":
    unittest.main()
