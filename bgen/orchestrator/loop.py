"""The iteration loop, shared by the iterate CLI and the server.

One iteration:

    generate K candidates (LLM calls on K threads; or take the given policy)
      └─ each: check_policy in a short-lived worker ──fails──► repair prompt, up to max_repairs
    run each loaded candidate on the iteration's seeds (worker processes)
    evaluate (aggregate + critique) ─► choose the best candidate ─► feed it back next iteration
    stop early when its success rate reaches success_threshold (with an objective in the task
    spec: go on while the objective improves, stop after two iterations without improvement)

Before the first iteration the task spec is chosen (``bgen.runner.taskspec``): the one given,
else with an LLM the first call turns the goal into one (validated, repaired once, else the
default with a warning), else the default (reach the target). It goes out as a ``task`` event,
into ``task_spec.json`` and the result, and into every policy prompt; the episodes are judged
by it. Without an explicit step budget (``derive_max_steps``) the budget follows its route.

Across iterations the best policy is kept by ``evaluator.rank_key`` (success rate, mean check
score, the objective, then collisions, then steps), not just the last one. At the end the best policy can be evaluated on
holdout seeds never used before. Every stage is reported through ``emit`` as an event dict;
``stop_event`` ends the loop promptly (LLM calls are abandoned, workers are killed by the
runner). The loop never emits done/error/terminated: its caller does, from ``LoopResult``.

The two process-touching steps are injectable (``episode_runner``, ``policy_checker``) so the
loop can be tested without simulator or workers; by default they are
``bgen.runner.worker.run_episodes`` and ``check_policy``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from bgen import defaults as _defaults
from bgen.errors import BgenError, ConfigError, PolicyLoadError, ProviderError
from bgen.llm.client import MAX_TOKENS_HINT, LLMClient, LLMSettings, RetryNotice
from bgen.llm.context import choose_examples, load_pack
from bgen.orchestrator import evaluator
from bgen.orchestrator.prompt import (TASK_SPEC_SYSTEM_PROMPT, Repair, Task,
                                      build_repair_prompt, build_system_prompt,
                                      build_task_spec_prompt, build_task_spec_repair_prompt,
                                      build_user_prompt)
from bgen.orchestrator.runlog import POLICY_FILES, policy_file_name
from bgen.runner import taskspec
from bgen.runner.episode import EpisodeConfig, landmark_names, spec_step_budget
from bgen.runner.taskspec import TaskSpecError
from bgen.runner.worker import TRACE_MAX_BYTES
from bgen.sim.scenarios import scenario_landmarks

STOP_POLL_S = 0.1          # how often waits look at stop_event
STOP_GRACE_S = 2.0         # after a stop, how long to let abandoned calls wind down (workers die)
CHECK_TIMEOUT_S = 10.0     # check_policy's own limit
CANDIDATE_TEMPERATURE_STEP = 0.2   # candidate k asks at temperature + k * step (capped at 1.0)
EVENT_CODE_LIMIT = 100_000
OBJECTIVE_PATIENCE = 2     # iterations without improvement of the objective before stopping


#: An episode's share of what is left of the run's disk budget below this: no more episodes.
MIN_EPISODE_RECORD_BYTES = 1024 * 1024
MAX_RUN_BYTES_LIMIT = 2**50                 # 1 PiB: the largest budget a front door takes


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (symbolic links not followed): what a run wrote."""
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass              # removed meanwhile
    return total


@dataclass(frozen=True)
class LoopConfig:
    """What to run. ``llm=None`` means no LLM: evaluate ``policy_code`` (or ``existing_code``)."""

    user_goal: str = "Reach the target while minimizing collisions."
    iterations: int = 1
    episodes: int = 3
    seed_start: int = 0
    seeds: tuple | None = None          # explicit iteration seeds (overrides seed_start/episodes)
    candidates: int = 1
    holdout_seeds: int = 0
    success_threshold: float = _defaults.value("success_threshold")
    existing_code: str | None = None    # refine this (LLM) or evaluate it (no LLM)
    policy_code: str | None = None      # take this as iteration 0's policy as given
    llm: LLMSettings | None = None
    max_repairs: int = 2
    token_budget: int | None = None
    workers: int | None = None
    step_event_hz: float | None = None  # step events passed on per episode and second (None: all)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    # Resuming: iterations before first_iteration are finished in run_dir; the loop starts at
    # first_iteration from existing_code and the critique of it (what the last one produced).
    first_iteration: int = 0
    critique: str | None = None
    task_spec: dict | None = None       # given: judge by it, no spec call (None: LLM or default)
    derive_max_steps: bool = False      # episode.max_steps was not given: follow the spec's route
    max_run_bytes: int = _defaults.MAX_RUN_BYTES   # what run_dir may hold (disk budget)

    def iteration_seeds(self, iteration: int = 0) -> list[int]:
        """The seeds of iteration ``iteration``. With an LLM every iteration flies the same seeds
        (the policies differ). Without one the policy never changes, so iteration n flies new
        seeds: the first iteration's shifted by n times their span (0, 1, 2 -> 3, 4, 5 -> ...)."""
        if self.seeds is not None:
            base = [int(s) for s in self.seeds]
        else:
            base = list(range(self.seed_start, self.seed_start + self.episodes))
        if self.llm is not None or not iteration or not base:
            return base
        offset = iteration * (max(base) - min(base) + 1)
        return [s + offset for s in base]

    def repeats_one_policy(self) -> bool:
        """True when every iteration evaluates the same given policy (no LLM, iterations > 1)."""
        return self.llm is None and self.iterations > 1

    def holdout_seed_list(self) -> list[int]:
        used = [s for n in range(self.iterations) for s in self.iteration_seeds(n)]
        first = (max(used) + 1) if used else self.seed_start
        return list(range(first, first + self.holdout_seeds))

    def validated(self) -> "LoopConfig":
        def check_int(name, low, high, value=None):
            value = getattr(self, name) if value is None else value
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name}: expects an integer in {low}..{high}, actual: {value!r}",
                                  field=name)

        check_int("iterations", 1, 100)
        check_int("episodes", 0, 1000)  # 0: generate and validate only (the reference test does)
        check_int("candidates", 1, 16)
        check_int("holdout_seeds", 0, 1000)
        check_int("max_repairs", 0, 10)
        check_int("first_iteration", 0, max(0, self.iterations - 1))
        if self.workers is not None:
            check_int("workers", 1, 256)
        if self.token_budget is not None:
            check_int("token_budget", 1, 10**9)
        check_int("max_run_bytes", MIN_EPISODE_RECORD_BYTES, MAX_RUN_BYTES_LIMIT)
        if isinstance(self.success_threshold, bool) or not isinstance(self.success_threshold, (int, float)) \
                or not 0.0 <= self.success_threshold <= 1.0:
            raise ConfigError(f"success_threshold: expects a number in 0..1, actual: "
                              f"{self.success_threshold!r}", field="success_threshold")
        if self.seeds is not None and ((not self.seeds and self.episodes) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds)):
            raise ConfigError(f"seeds: expects a non-empty list of integers >= 0, actual: {self.seeds!r}",
                              field="seeds")
        if not isinstance(self.user_goal, str) or not self.user_goal.strip():
            raise ConfigError(f"user_goal: expects a non-empty string, actual: {self.user_goal!r}",
                              field="user_goal")
        if self.llm is None and not (self.policy_code or self.existing_code):
            raise ConfigError("policy: expects policy code when no LLM is used, actual: none",
                              field="policy_code")
        if self.llm is not None:
            self.llm.validated()
        if self.task_spec is not None:
            spec = taskspec.parse_task_spec(self.task_spec, prefix="task_spec")
            taskspec.check_landmarks(spec, landmark_names(self.episode.scenario),
                                     prefix="task_spec")
        return self

    def to_dict(self) -> dict:
        data = asdict(self)
        data["llm"] = self.llm.to_dict() if self.llm else None
        data["existing_code"] = bool(self.existing_code)
        data["policy_code"] = bool(self.policy_code)
        return data


@dataclass
class LoopResult:
    best_iteration: int | None = None
    best_candidate: int | None = None
    best_code: str | None = None
    best_aggregate: dict | None = None
    iterations: list = field(default_factory=list)
    concluded_early: bool = False
    stopped_reason: str = "iterations_done"   # success_threshold | terminated | token_budget | disk_budget | provider_error
    sim_time_s: float = 0.0               # simulated flight, summed over episodes
    episodes_wall_s: float = 0.0          # wall time spent running episodes (and grading)
    wall_time_s: float = 0.0
    tokens: dict = field(default_factory=lambda: {"in": 0, "out": 0})
    llm_latency_s: float = 0.0
    holdout: dict | None = None
    error: str | None = None
    task_spec: dict | None = None         # the spec the episodes were judged by
    task_source: str | None = None        # given | llm | default
    max_steps: int | None = None          # the episodes' step budget
    stop_note: str | None = None          # why the loop stopped, in words (objective runs)

    def to_dict(self, *, with_code: bool = False) -> dict:
        data = asdict(self)
        if not with_code:
            data.pop("best_code")
        return data


@dataclass
class Candidate:
    """One policy of one iteration, from generation to evaluation."""

    index: int
    directory: Path
    code: str | None = None
    source: str = "generated"
    load_error: PolicyLoadError | None = None
    calls: list = field(default_factory=list)     # LLMReply.to_dict() + purpose
    aggregate: dict | None = None
    critique: str | None = None
    provider_error: str | None = None
    extraction_note: str | None = None            # which block of the last reply became the code

    @property
    def loaded(self) -> bool:
        return self.code is not None and self.load_error is None and self.provider_error is None


class _Stopped(Exception):
    """stop_event was set while waiting."""


class _BudgetSpent(Exception):
    """The token budget ran out before a call."""


class _Run:
    """State of one run_loop call; methods are the stages."""

    def __init__(self, config, run_dir, emit, stop_event, llm_client, episode_runner,
                 policy_checker):
        self.config = config
        self.run_dir = Path(run_dir)
        self._emit = emit
        self.stop_event = stop_event
        self.llm = llm_client
        self.run_episodes = episode_runner
        self.check_policy = policy_checker
        self.result = LoopResult()
        # Guards token counters and emit: candidate threads report concurrently.
        self.lock = threading.Lock()
        self.task = _task_of(config)
        self.episode = config.episode   # with the chosen task spec and step budget (choose_task)
        self.pack = load_pack(choose_examples(config.user_goal, config.episode.scenario))
        self.system_prompt = build_system_prompt()
        self.iteration = 0          # the iteration being worked on, for events
        # Daemon threads running LLM calls, checks and episode batches; after a stop they are
        # given STOP_GRACE_S to finish (the runner kills its workers within a second).
        self.inflight: list[threading.Thread] = []

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: dict) -> None:
        with self.lock:
            self._emit(event)

    def warn(self, message: str, **extra) -> None:
        self.emit({"type": "warning", "message": message, **extra})

    # -- waiting with stop -----------------------------------------------------------------
    def call(self, fn, *args, **kwargs):
        """Run ``fn`` on a daemon thread; raise _Stopped as soon as stop_event is set."""
        box: dict = {}

        def target():
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as error:  # handed to the waiting thread
                box["error"] = error

        thread = threading.Thread(target=target, name="bgen-loop-call", daemon=True)
        thread.start()
        self.inflight.append(thread)
        while thread.is_alive():
            thread.join(STOP_POLL_S)
            if self.stop_event.is_set() and thread.is_alive():
                raise _Stopped()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stopped(self) -> bool:
        return self.stop_event.is_set()

    # -- LLM -------------------------------------------------------------------------------
    def spent(self) -> int:
        return self.result.tokens["in"] + self.result.tokens["out"]

    def ask(self, candidate: Candidate, user_prompt: str, purpose: str, client: LLMClient):
        if self.config.token_budget is not None and self.spent() >= self.config.token_budget:
            raise _BudgetSpent()
        reply = client.generate(self.system_prompt, user_prompt)
        with self.lock:
            self.result.tokens["in"] += reply.input_tokens
            self.result.tokens["out"] += reply.output_tokens
            self.result.llm_latency_s = round(self.result.llm_latency_s + reply.latency_s, 4)
        candidate.calls.append({"purpose": purpose, **reply.to_dict()})
        candidate.extraction_note = reply.extraction.note() if reply.extraction else None
        if reply.truncated:
            complete = reply.extraction is not None and reply.extraction.complete
            what = "" if complete else " before a complete module"
            self.warn(f"the LLM reply was cut at max_tokens ({client.settings.max_tokens}){what}; "
                      f"{MAX_TOKENS_HINT} if policies come back incomplete",
                      iteration=self.iteration, candidate=candidate.index)
        return reply

    def client_for(self, k: int) -> LLMClient:
        """Candidate k's client: retries reported as warnings; k > 0 asks at a higher
        temperature so the K candidates differ."""
        if self.llm is None:
            return None
        client = self.llm
        if k > 0:
            temperature = min(1.0, self.llm.settings.temperature + CANDIDATE_TEMPERATURE_STEP * k)
            client = self.llm.derived(temperature=temperature)
        iteration = self.iteration
        return client.with_retry_hook(
            lambda notice: self.llm_retried(notice, client.settings.provider, iteration, k))

    def llm_retried(self, notice: RetryNotice, provider: str, iteration: int, k: int) -> None:
        """A ``warning`` event for each LLM retry: attempt, cause and wait."""
        self.warn(notice.describe(provider), iteration=iteration, candidate=k, kind="llm_retry",
                  attempt=notice.attempt, attempts=notice.attempts, cause=notice.cause,
                  wait_s=notice.wait_s, provider_message=notice.provider_message,
                  provider_code=notice.provider_code)

    # -- one candidate ---------------------------------------------------------------------
    def produce(self, candidate: Candidate, given_code: str | None, base_code: str | None,
                critique: str | None) -> Candidate:
        """Generate (or take) the code, check it, repair it; runs on its own thread."""
        d = candidate.directory
        d.mkdir(parents=True, exist_ok=True)
        try:
            if given_code is not None:
                candidate.code, candidate.source = given_code, "given"
            else:
                user_prompt = build_user_prompt(self.task, self.pack, critique=critique,
                                                existing_code=base_code)
                _write(d / "system_prompt.txt", self.system_prompt)
                _write(d / "user_prompt.txt", user_prompt)
                reply = self.ask(candidate, user_prompt, "generate", self.client_for(candidate.index))
                candidate.code = reply.code
            self.check_and_repair(candidate)
        except ProviderError as error:
            candidate.provider_error = str(error)
        except _BudgetSpent:
            candidate.provider_error = "token budget spent"
        finally:
            if candidate.code is not None and not self.stopped():
                _write(d / policy_file_name(candidate.source), candidate.code)
            if candidate.calls:
                _write(d / "llm.json", json.dumps(_llm_record(candidate.calls), indent=2))
        return candidate

    def check_and_repair(self, candidate: Candidate) -> None:
        attempt = 0
        while True:
            error = self.check(candidate.code)
            candidate.load_error = error
            self.emit(_policy_event(self.iteration, candidate, attempt, error))
            if error is None or self.stopped():
                return
            if self.llm is None:
                # Nothing can repair a policy given without an LLM: the run fails, saying why.
                raise PolicyLoadError(f"the given policy does not load: {error.message}",
                                      lineno=error.lineno, rule=error.rule)
            if attempt >= self.config.max_repairs:
                return
            _write(candidate.directory / f"policy.failed_{attempt}.py", candidate.code)
            attempt += 1
            prompt = build_repair_prompt(self.task, self.pack,
                                         Repair(candidate.code, error.message, error.lineno,
                                                extraction_note=candidate.extraction_note))
            _write(candidate.directory / f"repair_{attempt}_prompt.txt", prompt)
            reply = self.ask(candidate, prompt, "repair", self.client_for(candidate.index))
            candidate.code, candidate.source = reply.code, "repair"

    def check(self, code: str) -> PolicyLoadError | None:
        try:
            self.check_policy(code, backend=self.config.episode.backend, timeout_s=CHECK_TIMEOUT_S)
        except PolicyLoadError as error:
            return error
        except BgenError as error:
            self.warn(f"policy check could not run ({error}); running episodes anyway",
                      iteration=self.iteration)
        return None

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, candidate: Candidate, seeds: list[int], phase: str = "iteration") -> None:
        d = candidate.directory
        if candidate.load_error is not None or candidate.code is None:
            message = candidate.load_error.message if candidate.load_error else "no policy"
            lineno = candidate.load_error.lineno if candidate.load_error else None
            candidate.aggregate = evaluator.load_failure_aggregate(message, lineno)
            candidate.critique = evaluator.critique(candidate.aggregate, [], policy_code=candidate.code)
        else:
            iteration, index = self.iteration, candidate.index

            def on_event(event: dict) -> None:
                self.emit({**event, "iteration": iteration, "candidate": index, "phase": phase})

            thinning = {"step_event_hz": self.config.step_event_hz} \
                if self.config.step_event_hz else {}
            started = time.monotonic()
            summaries = self.run_episodes(candidate.code, seeds, self.episode, d,
                                          workers=self.config.workers, on_event=on_event,
                                          stop_event=self.stop_event, **thinning)
            self.result.episodes_wall_s = round(
                self.result.episodes_wall_s + time.monotonic() - started, 3)
            candidate.aggregate, candidate.critique = evaluator.evaluate_dir(
                d, summaries, policy_code=candidate.code, task_spec=self.episode.task_spec)
            self.result.sim_time_s = round(self.result.sim_time_s + candidate.aggregate["sim_time_s"], 3)
        if not self.stopped():
            evaluator.write_evaluation(d, candidate.aggregate, candidate.critique)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> LoopResult:
        config, started = self.config, time.monotonic()
        base_code = config.existing_code
        critique = config.critique
        if config.repeats_one_policy():
            self.warn(f"no LLM: each of the {config.iterations} iterations flies the same policy, "
                      f"on new seeds ({', '.join(map(str, config.iteration_seeds(0)))} first, then "
                      f"{', '.join(map(str, config.iteration_seeds(1)))}, ...)", kind="repeat_policy")
        try:
            self.choose_task()
            objective = ((self.episode.task_spec or {}).get("objective") or {}).get("minimize")
            progress = _ObjectiveProgress(objective)
            for n in range(config.first_iteration, config.iterations):
                self.iteration = n
                if self.stopped():
                    self.result.stopped_reason = "terminated"
                    break
                if config.token_budget is not None and self.spent() >= config.token_budget and (
                        self.llm is not None and not (n == 0 and config.policy_code)):
                    self.result.stopped_reason = "token_budget"
                    break
                per_policy = 1 if self.llm is None or (n == 0 and config.policy_code) \
                    else config.candidates
                if not self.share_disk_budget(len(config.iteration_seeds(n)) * per_policy):
                    break
                chosen = self.one_iteration(n, config.iteration_seeds(n), base_code, critique)
                if chosen is None:
                    break
                base_code, critique = chosen.code, chosen.critique
                met = bool(chosen.aggregate["episodes"]) and \
                    chosen.aggregate["success_rate"] >= config.success_threshold
                if met and objective is None:
                    self.result.concluded_early = True
                    self.result.stopped_reason = "success_threshold"
                    break
                if objective is not None and progress.record(n, chosen.aggregate, met):
                    self.result.concluded_early = True
                    self.result.stopped_reason = "objective_converged"
                    break
            if objective is not None:
                self.result.stop_note = progress.note()
            if config.holdout_seeds and self.result.best_code is not None and not self.stopped() \
                    and self.result.stopped_reason not in ("terminated", "disk_budget") \
                    and self.share_disk_budget(config.holdout_seeds, holdout=True):
                self.holdout()
        except _Stopped:
            self.result.stopped_reason = "terminated"
        if self.stopped():
            self.result.stopped_reason = "terminated"
            deadline = time.monotonic() + STOP_GRACE_S
            for thread in self.inflight:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self.result.best_code is not None:
            _write(self.run_dir / "policy.best.py", self.result.best_code)
        self.result.wall_time_s = round(time.monotonic() - started, 3)
        return self.result

    # -- the task spec ---------------------------------------------------------------------
    def choose_task(self) -> None:
        """Settle the task spec and the step budget before the first iteration."""
        config = self.config
        marks = taskspec.episode_landmarks(self.task.start, self.task.target,
                                           scenario_landmarks(config.episode.scenario))
        spec, source = None, "default"
        if config.task_spec is not None:
            spec, source = taskspec.parse_task_spec(config.task_spec).to_dict(), "given"
        elif self.llm is not None:
            spec = self.generate_task_spec(marks)
            source = "llm" if spec is not None else "default"
        seeds = sorted({s for n in range(config.first_iteration, config.iterations)
                        for s in config.iteration_seeds(n)} | set(config.holdout_seed_list()))
        budget, route_m = spec_step_budget(replace(config.episode, task_spec=spec), seeds)
        max_steps = budget if config.derive_max_steps else config.episode.max_steps
        self.episode = replace(config.episode, task_spec=spec, max_steps=max_steps)
        self.task = replace(self.task, task_spec=spec, max_steps=max_steps,
                            route_m=route_m if config.derive_max_steps else None)
        shown = spec if spec is not None else taskspec.default_spec().to_dict()
        self.result.task_spec, self.result.task_source = shown, source
        self.result.max_steps = max_steps
        _write(self.run_dir / "task_spec.json", json.dumps(shown, indent=2))
        if spec is not None or self.llm is not None:
            self.emit({"type": "task", "source": source, "task_spec": shown,
                       "max_steps": max_steps, "route_m": round(route_m, 1),
                       "landmarks": {k: list(v) for k, v in marks.items()}})
        if spec is not None:          # a derived budget falls short only at its cap
            shortfall = taskspec.budget_warning(taskspec.parse_task_spec(spec), route_m,
                                                max_steps, config.episode.delta)
            if shortfall:
                self.warn(shortfall)

    def generate_task_spec(self, marks: dict) -> dict | None:
        """The LLM's spec for the goal (one repair on a validation error); None after a
        warning when it gives no valid spec or the provider fails."""
        config = self.config
        d = self.run_dir / "task"
        prompt = build_task_spec_prompt(config.user_goal, config.episode.scenario, marks,
                                        self.task.episodes)
        calls: list = []
        reply_text = None
        try:
            for attempt in range(2):
                _write(d / f"prompt_{attempt}.txt", prompt)
                reply_text = self.ask_task_spec(prompt, calls, attempt)
                _write(d / f"reply_{attempt}.txt", reply_text)
                try:
                    spec = taskspec.parse_task_spec(spec_from_reply(reply_text))
                    taskspec.check_landmarks(spec, marks)
                    return spec.to_dict()
                except TaskSpecError as error:
                    problem = error.message
                prompt = build_task_spec_repair_prompt(config.user_goal, config.episode.scenario,
                                                       marks, reply_text, problem,
                                                       self.task.episodes)
            self.warn(f"the LLM gave no valid task spec ({problem}); judging by the default: "
                      "reach the target within 1.0 m", iteration=0)
        except ProviderError as error:
            self.warn(f"the task spec call failed ({error}); judging by the default: reach the "
                      "target within 1.0 m", iteration=0)
        except _BudgetSpent:
            self.warn("the token budget was spent before the task spec call; judging by the "
                      "default: reach the target within 1.0 m", iteration=0)
        finally:
            if calls:
                _write(d / "llm.json", json.dumps(_llm_record(calls), indent=2))
        return None

    def ask_task_spec(self, prompt: str, calls: list, attempt: int) -> str:
        if self.config.token_budget is not None and self.spent() >= self.config.token_budget:
            raise _BudgetSpent()
        reply = self.call(self.llm.generate, TASK_SPEC_SYSTEM_PROMPT, prompt)
        with self.lock:
            self.result.tokens["in"] += reply.input_tokens
            self.result.tokens["out"] += reply.output_tokens
            self.result.llm_latency_s = round(self.result.llm_latency_s + reply.latency_s, 4)
        calls.append({"purpose": "task_spec" if attempt == 0 else "task_spec_repair",
                      **reply.to_dict()})
        return reply.text

    def one_iteration(self, n: int, seeds: list[int], base_code, critique) -> Candidate | None:
        config = self.config
        k_total = 1 if self.llm is None or (n == 0 and config.policy_code) else config.candidates
        it_dir = self.run_dir / f"iter_{n}"
        it_dir.mkdir(parents=True, exist_ok=True)
        tokens_before = dict(self.result.tokens)
        latency_before = self.result.llm_latency_s
        iter_started = time.monotonic()
        self.emit({"type": "iteration", "iteration": n, "iterations": config.iterations,
                   "seeds": seeds, "candidates": k_total})
        given = None
        if self.llm is None:
            given = config.policy_code or config.existing_code
        elif n == 0 and config.policy_code:
            given = config.policy_code
        candidates = [Candidate(k, it_dir if k_total == 1 else it_dir / f"cand_{k}")
                      for k in range(k_total)]
        if k_total == 1:
            self.call(self.produce, candidates[0], given, base_code, critique)
        else:
            threads = [_Job(self.produce, c, given, base_code, critique) for c in candidates]
            self.inflight.extend(job.thread for job in threads)
            for job in threads:
                job.join_until(self.stop_event)
        failures = [c.provider_error for c in candidates if c.provider_error]
        if failures and len(failures) == len(candidates):
            return self.provider_failed(failures[0])
        for message in failures:
            self.warn(f"a candidate was dropped: {message}", iteration=n)
        for candidate in candidates:
            if candidate.provider_error or self.stopped():
                continue
            self.call(self.evaluate, candidate, seeds)
        if self.stopped():
            raise _Stopped()
        evaluated = [c for c in candidates if c.aggregate is not None]
        chosen = max(evaluated, key=lambda c: evaluator.rank_key(c.aggregate))
        if k_total > 1:
            _copy_chosen(chosen.directory, it_dir)
            _write(it_dir / "chosen.json", json.dumps({"candidate": chosen.index, "ranking": [
                {"candidate": c.index, "success_rate": c.aggregate["success_rate"],
                 "rank_key": list(evaluator.rank_key(c.aggregate))} for c in evaluated]}, indent=2))
        record = {
            "iteration": n, "chosen_candidate": chosen.index, "aggregate": chosen.aggregate,
            "candidates": [{"candidate": c.index, "source": c.source, "aggregate": c.aggregate,
                            "load_error": c.load_error.message if c.load_error else None}
                           for c in evaluated],
            "tokens": {"in": self.result.tokens["in"] - tokens_before["in"],
                       "out": self.result.tokens["out"] - tokens_before["out"]},
            "llm_latency_s": round(self.result.llm_latency_s - latency_before, 4),
            "sim_time_s": chosen.aggregate["sim_time_s"],
            "wall_time_s": round(time.monotonic() - iter_started, 3),
        }
        self.result.iterations.append(record)
        best = self.result.best_aggregate
        if best is None or evaluator.rank_key(chosen.aggregate) > evaluator.rank_key(best):
            self.result.best_iteration, self.result.best_candidate = n, chosen.index
            self.result.best_code, self.result.best_aggregate = chosen.code, chosen.aggregate
        self.emit({"type": "critique", "iteration": n, "candidate": chosen.index,
                   "text": chosen.critique, "aggregate": _compact(chosen.aggregate),
                   "best_iteration": self.result.best_iteration,
                   "best_success_rate": self.result.best_aggregate["success_rate"],
                   "tokens": record["tokens"], "llm_latency_s": record["llm_latency_s"],
                   "tokens_total": dict(self.result.tokens)})
        return chosen

    def provider_failed(self, message: str):
        if message == "token budget spent":
            self.result.stopped_reason = "token_budget"
            return None
        if self.result.best_code is None:
            raise ProviderError(message)
        self.result.stopped_reason = "provider_error"
        self.result.error = message
        self.warn(f"the LLM provider failed; keeping the best policy so far: {message}",
                  iteration=self.iteration)
        return None

    def share_disk_budget(self, episodes: int, holdout: bool = False) -> bool:
        """Cap each of the next ``episodes`` episodes' step records at its share of what is
        left of the run's disk budget: half of it, less a trace's ``TRACE_MAX_BYTES`` (the other
        half holds its events and summaries). False, after a warning, when that is under
        ``MIN_EPISODE_RECORD_BYTES``: the episodes are not started, and the run stops with
        ``disk_budget`` (a skipped holdout leaves the loop's own reason)."""
        if episodes <= 0:
            return True
        budget = self.config.max_run_bytes
        used = folder_bytes(self.run_dir)
        records = (budget - used) // episodes // 2 - TRACE_MAX_BYTES
        if records >= MIN_EPISODE_RECORD_BYTES:
            self.episode = replace(self.episode, max_record_bytes=records)
            return True
        held = (f"the run's folder holds {used} of its {budget} bytes (its disk budget): "
                f"{episodes} more episodes would get less than {MIN_EPISODE_RECORD_BYTES} bytes "
                f"of records each")
        if holdout:
            self.warn(f"{held}, so the holdout was skipped")
            return False
        self.result.stopped_reason = "disk_budget"
        kept = ", keeping the best policy so far" if self.result.best_code is not None \
            else " before its first episode"
        self.warn(f"{held}, so the run stops here{kept}")
        return False

    def holdout(self) -> None:
        seeds = self.config.holdout_seed_list()
        self.iteration = self.result.best_iteration
        candidate = Candidate(self.result.best_candidate or 0, self.run_dir / "holdout",
                              code=self.result.best_code, source="best")
        candidate.directory.mkdir(parents=True, exist_ok=True)
        self.call(self.evaluate, candidate, seeds, "holdout")
        if self.stopped():
            raise _Stopped()
        self.result.holdout = candidate.aggregate
        self.emit({"type": "holdout", "iteration": self.result.best_iteration, "seeds": seeds,
                   "aggregate": _compact(candidate.aggregate), "text": candidate.critique})


class _Job:
    """A candidate's generation on a daemon thread (abandoned if the run is stopped)."""

    def __init__(self, fn, *args):
        self.box: dict = {}

        def target():
            try:
                self.box["value"] = fn(*args)
            except BaseException as error:
                self.box["error"] = error

        self.thread = threading.Thread(target=target, name="bgen-candidate", daemon=True)
        self.thread.start()

    def join_until(self, stop_event: threading.Event):
        while self.thread.is_alive():
            self.thread.join(STOP_POLL_S)
            if stop_event.is_set() and self.thread.is_alive():
                raise _Stopped()
        if "error" in self.box:
            raise self.box["error"]
        return self.box.get("value")


class _ObjectiveProgress:
    """Past the success threshold, whether the objective still improves (lower is better)."""

    def __init__(self, objective: str | None):
        self.objective = objective
        self.first_met: int | None = None     # iteration that first reached the threshold
        self.best: tuple[int, float] | None = None
        self.stale: list[int] = []            # iterations since the best without improvement

    def record(self, n: int, agg: dict, met: bool) -> bool:
        """Note iteration ``n``; True when the loop should stop."""
        value = (agg.get("objective") or {}).get("value")
        if met and self.first_met is None:
            self.first_met = n
        if self.first_met is None:
            return False
        if met and value is not None and (self.best is None or value < self.best[1] - 1e-9):
            self.best, self.stale = (n, float(value)), []
            return False
        self.stale.append(n)
        return len(self.stale) >= OBJECTIVE_PATIENCE

    def note(self) -> str:
        name = f"the objective (minimize {self.objective})"
        if self.first_met is None:
            return f"the success threshold was never reached, so {name} was not pursued"
        best = (f"best {self.best[1]:g} at iteration {self.best[0]}" if self.best is not None
                else "no value")
        if len(self.stale) >= OBJECTIVE_PATIENCE:
            return (f"success threshold reached at iteration {self.first_met}; went on for {name}: "
                    f"{best}; stopped after iterations "
                    f"{' and '.join(str(i) for i in self.stale)} did not improve it")
        return (f"success threshold reached at iteration {self.first_met}; went on for {name}: "
                f"{best}; the iterations ran out")


def spec_from_reply(text: str) -> dict:
    """The JSON object of an LLM reply: a ```json block, else any fenced block, else the text
    from its first ``{`` to its last ``}``; ``TaskSpecError`` when there is none."""
    blocks = re.findall(r"```([a-zA-Z]*)[ \t]*\n(.*?)```", text or "", re.S)
    body = next((b for tag, b in blocks if tag.lower() == "json"), None)
    if body is None:
        body = next((b for _, b in blocks), None)
    if body is None and text and "{" in text and "}" in text:
        body = text[text.index("{"):text.rindex("}") + 1]
    if body is None:
        raise TaskSpecError("task_spec: expects a JSON object in the reply, actual: none",
                            field="task_spec")
    try:
        doc = json.loads(body)
    except ValueError as error:
        raise TaskSpecError(f"task_spec: expects a JSON object, actual: invalid JSON ({error})",
                            field="task_spec") from None
    return doc


def _task_of(config: LoopConfig) -> Task:
    from bgen.runner.episode import scenario_defaults
    default_start, default_target = scenario_defaults(config.episode.scenario)
    start = config.episode.start if config.episode.start is not None else default_start
    target = config.episode.target if config.episode.target is not None else default_target
    return Task(goal=config.user_goal, scenario=config.episode.scenario, target=tuple(target),
                start=tuple(start), max_steps=config.episode.max_steps, delta=config.episode.delta,
                episodes=task_episodes(config.episode, config.iteration_seeds()[:SEEDS_SHOWN]))


SEEDS_SHOWN = 8     # seeds whose start and target the prompt lists (0.8 s each to work out)


def task_episodes(episode: EpisodeConfig, seeds: list[int]) -> tuple:
    """(seed, start, target) each iteration seed really flies (lifted above its terrain), for
    the prompt; () when the worlds cannot be built here (the prompt then gives the nominal
    points and says they vary)."""
    from bgen.runner.episode import episode_points
    from bgen.sim import load_backend
    try:
        vxs = load_backend(episode.backend)
        return tuple((seed, *episode_points(vxs, episode, seed)) for seed in seeds)
    except Exception:  # noqa: BLE001 - the prompt can do without the per-seed points
        return ()


def _policy_event(iteration: int, candidate: Candidate, attempt: int, error) -> dict:
    last = candidate.calls[-1] if candidate.calls else {}
    source = candidate.source if attempt == 0 else "repair"
    return {"type": "policy", "iteration": iteration, "candidate": candidate.index,
            "source": source, "attempt": attempt, "ok": error is None,
            "error": error.message if error else None,
            "lineno": error.lineno if error else None,
            "code": (candidate.code or "")[:EVENT_CODE_LIMIT],
            "tokens_in": last.get("input_tokens", 0) if source != "given" else 0,
            "tokens_out": last.get("output_tokens", 0) if source != "given" else 0,
            "latency_s": last.get("latency_s", 0.0) if source != "given" else 0.0}


def _llm_record(calls: list) -> dict:
    return {"calls": calls,
            "model": calls[-1].get("model"),
            "input_tokens": sum(c.get("input_tokens", 0) for c in calls),
            "output_tokens": sum(c.get("output_tokens", 0) for c in calls),
            "latency_s": round(sum(c.get("latency_s", 0.0) for c in calls), 4)}


def _compact(agg: dict) -> dict:
    """The aggregate without bulky lists, for events."""
    return {k: v for k, v in agg.items() if k not in ("sample_policy_summaries",)}


_CHOSEN_FILES = ("system_prompt.txt", "user_prompt.txt", *POLICY_FILES, "llm.json",
                 "aggregate.json", "critique.txt")


def _copy_chosen(src: Path, dst: Path) -> None:
    for name in _CHOSEN_FILES:
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def _default_runner():
    from bgen.runner.worker import run_episodes
    return run_episodes


WORLD_CACHE_DIRNAME = "world-cache"


def with_world_cache(config: LoopConfig, run_dir: Path) -> LoopConfig:
    """``config`` with its episodes' worlds cached in ``<run_dir>/../world-cache`` unless it
    names a directory already: the runs under one runs folder share built worlds."""
    if config.episode.world_cache_dir is not None:
        return config
    directory = str(Path(run_dir).parent / WORLD_CACHE_DIRNAME)
    return replace(config, episode=replace(config.episode, world_cache_dir=directory))


def _default_checker():
    from bgen.runner.worker import check_policy
    return check_policy


def run_loop(config: LoopConfig, run_dir: Path, emit: Callable[[dict], None],
             stop_event: threading.Event, *, llm_client: LLMClient | None = None,
             episode_runner: Callable | None = None,
             policy_checker: Callable | None = None,
             prior_best: tuple[int, str, dict] | None = None) -> LoopResult:
    """Run the loop (see the module docstring); raises ConfigError/ProviderError before a best exists.

    ``prior_best``: (iteration, code, aggregate) of the best iteration finished before a
    resume, so "best so far" and the result weigh the old iterations with the new."""
    config = with_world_cache(config.validated(), Path(run_dir))
    if config.llm is not None and llm_client is None:
        llm_client = LLMClient(config.llm, stop_event=stop_event)
    if config.llm is None:
        llm_client = None
    if episode_runner is None:
        from bgen.runner.worker import prepare
        prepare(config.episode, config.iteration_seeds(0), config.workers)   # while the LLM writes
    run = _Run(config, run_dir, emit, stop_event, llm_client,
               episode_runner or _default_runner(), policy_checker or _default_checker())
    if prior_best is not None:
        run.result.best_iteration, run.result.best_code, run.result.best_aggregate = prior_best
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return run.run()
