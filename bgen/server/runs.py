"""RunManager: every run request goes through the iteration loop on its own thread.

    submit() ──► queue (FIFO) ──► up to max_concurrent run threads ──► run_loop(config, run_dir, emit, stop)
                                                  │ emit(event) from the loop / runner threads
                                                  ▼
                     to_wire ─► StepThrottle ─► EventLog.append (id, events.jsonl) ─► publish(run_id, event)

Every status change goes through ``lifecycle.next_state`` under the manager's lock. The lock
guards memory only (the active runs, the queue, each record): files are written outside it,
one writer per run at a time (``Run.save_lock``). Accepting a run touches no file at all: the
"run-writer" thread creates ``runs/<id>/``, writes run.json, opens events.jsonl and emits the
``queued`` status; until it has (``Run.persisted``), the run is answered from memory and its
thread, emits and saves wait. So ``POST /run`` never waits for the disk or for another run —
under load a file write can take tens of milliseconds, and every blocking call hands the GIL
to the busy run threads.

Event order: a run's events are throttled first, then numbered and handed to subscribers under
one lock per run (``Run.emit_lock``), so every subscriber sees strictly increasing ids, and
events.jsonl (the replay source) is a subset of what was published, in the same order. A step
that the throttle holds back gets its id only when it is released (at its episode's summary).

The loop is reached through a ``LoopBinding`` so tests can put a scripted loop in its place.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from bgen import defaults as _defaults
from bgen.errors import BadRequest, BgenError, ConfigError, Conflict, NotFound
from bgen.orchestrator.outcome import PhaseTracker, error_record, failure_phase
from bgen.server import lifecycle
from bgen.server.lifecycle import LifecycleError, next_state
from bgen.server.progress import (FINAL_TYPES, StepThrottle, best_iteration, describe, episode_key,
                                  success_rate, timing, to_wire)
from bgen.server.store import RunStore
from bgen.server.validation import RunRequest

log = logging.getLogger("bgen.server")

REAL_LOOP = "bgen.orchestrator.loop"


@dataclass(frozen=True)
class LoopBinding:
    """The iteration loop and the config classes it takes."""

    run_loop: Callable
    LoopConfig: type
    EpisodeConfig: type
    LLMSettings: type | None = None


def load_binding(module_name: str | None = None) -> LoopBinding:
    """The real loop (bgen.orchestrator.loop + bgen.runner.worker), or a module exposing
    ``run_loop``, ``LoopConfig``, ``EpisodeConfig`` (and optionally ``LLMSettings``)."""
    if module_name:
        module = importlib.import_module(module_name)
        return LoopBinding(module.run_loop, module.LoopConfig, module.EpisodeConfig,
                           getattr(module, "LLMSettings", None))
    loop = importlib.import_module(REAL_LOOP)
    worker = importlib.import_module("bgen.runner.worker")
    client = importlib.import_module("bgen.llm.client")
    return LoopBinding(loop.run_loop, loop.LoopConfig, worker.EpisodeConfig, client.LLMSettings)


def construct(cls, **values):
    """``cls(**values)`` keeping only the fields a dataclass declares (each side may lag the other)."""
    if dataclasses.is_dataclass(cls):
        names = {f.name for f in dataclasses.fields(cls)}
        dropped = sorted(set(values) - names)
        if dropped:
            log.debug("%s has no field(s) %s; not passed", cls.__name__, ", ".join(dropped))
        values = {k: v for k, v in values.items() if k in names}
    return cls(**values)


@dataclass(frozen=True)
class ManagerSettings:
    max_concurrent: int = 2
    progress_hz: float = 20.0
    workers: int | None = None
    backend: str = "auto"
    backend_label: str = "embedded"
    api_key_env: str | None = None      # None: the LLM client's default (LLVPN_API_KEY)
    episode_runner: Callable | None = None   # the executor's run_episodes (None: the loop's default)
    keep_runs: int | None = None        # keep at most this many finished runs (oldest deleted first)
    max_run_bytes: int = _defaults.MAX_RUN_BYTES    # each run's disk budget (its folder)


def build_loop_config(binding: LoopBinding, request: RunRequest, settings: ManagerSettings, *,
                      render: bool, render_ports: tuple | None):
    """The LoopConfig for one run (no secrets: the LLM client reads keys from the environment)."""
    episode = dict(max_steps=request.max_steps, delta=request.delta, target=tuple(request.target),
                   scenario=request.scenario, render=render, pov_min_dt_world=request.pov_min_dt_world,
                   use_px4=request.use_px4, backend=settings.backend)
    if render_ports is not None:
        episode.update(render_host="127.0.0.1", render_ports=tuple(render_ports))
    llm = None
    if request.policy_code is None and binding.LLMSettings is not None:
        names = {"api_key_env": settings.api_key_env} if settings.api_key_env else {}
        limits = {name: value for name, value in (
            ("max_retries", getattr(request, "llm_retries", None)),
            ("backoff_cap_s", getattr(request, "llm_backoff_cap_s", None)),
            ("max_tokens", getattr(request, "max_tokens", None))) if value is not None}
        if not getattr(request, "send_key", True):
            limits["auth"] = "none"      # a URL the request chose never receives the server's key
        llm = construct(binding.LLMSettings, provider=request.provider, url=request.provider_url,
                        model=request.model, **names, **limits)
    return construct(
        binding.LoopConfig, user_goal=request.user_goal, iterations=request.iterations,
        episodes=request.episodes, seeds=tuple(request.seeds), success_threshold=request.success_threshold,
        candidates=request.candidates, holdout_seeds=request.holdout_seeds,
        existing_code=request.existing_code, policy_code=request.policy_code, llm=llm,
        workers=settings.workers, episode=construct(binding.EpisodeConfig, **episode),
        step_event_hz=settings.progress_hz if settings.progress_hz > 0 else None,
        task_spec=request.task_spec, derive_max_steps=request.derive_max_steps,
        max_run_bytes=settings.max_run_bytes,
    )


def result_field(result, name: str, default=None):
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def error_text(exc: BaseException) -> str:
    if isinstance(exc, BgenError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class Run:
    """One queued or running run: what its thread, the emit path and the HTTP handlers share."""

    def __init__(self, run_id: str, request: RunRequest, record: dict, progress_hz: float):
        self.run_id = run_id
        self.request = request
        self.record = record                 # run.json content; changed only under the manager lock
        self.log = None                      # events.jsonl (assigns the event ids), opened by the run-writer
        self.persisted = threading.Event()   # set once runs/<id>/, run.json and the log exist
        self.stop_event = threading.Event()  # set by terminate/shutdown; the loop and its workers watch it
        self.emit_lock = threading.Lock()    # id assignment + hand-over as one step: subscribers see ids in order
        self.save_lock = threading.Lock()    # one run.json writer at a time (snapshots taken under the manager lock)
        self.throttle = StepThrottle(progress_hz)   # guarded by emit_lock
        self.closed = False                  # final event sent; later emits are dropped (guarded by emit_lock)
        self.sim_time_s = 0.0                # from episode summaries, in case the loop's result has none
        self.wall_time_s = 0.0
        self.thread: threading.Thread | None = None
        self.phase = PhaseTracker("queued")  # where the run is, for run.json's error (updated under emit_lock)


class RunManager:
    """Starts, queues, stops and answers for runs. Public methods may be called from any thread.

    ``publish(run_id, event)`` must not block (the EventHub hands over to the WebSocket thread).
    ``start_proxy(run_id) -> (ports, stop)`` opens the renderer proxy for a rendered run.
    """

    def __init__(self, store: RunStore, publish: Callable[[str, dict], None], *,
                 settings: ManagerSettings = ManagerSettings(), loop_module: str | None = None,
                 binding: LoopBinding | None = None,
                 start_proxy: Callable[[str], tuple[tuple, Callable[[], None]]] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.settings = settings
        self._publish = publish
        self._start_proxy = start_proxy
        self._clock = clock
        self._loop_module = loop_module
        self._binding = binding              # resolved on first use: the server starts even if the loop cannot load
        self._lock = threading.Lock()        # guards _active, _queue, _running, _closing and every record (no I/O under it)
        self._active: dict[str, Run] = {}    # queued, running and stopping runs
        self._queue: deque[Run] = deque()    # queued runs, FIFO
        self._running = 0
        self._closing = False                # shutdown began: no new runs, running ones end interrupted
        self._writes: queue.SimpleQueue = queue.SimpleQueue()   # runs to persist (None: stop)
        self._writer = threading.Thread(target=self._write_new_runs, name="run-writer", daemon=True)
        self._writer.start()                 # daemon: shutdown() drains and ends it

    # ------------------------------------------------------------ callers

    def submit(self, request: RunRequest) -> dict:
        """Queue a run (it starts at once if a slot is free); returns {"run_id", "status"}."""
        self.check_provider_key(request)
        run_id = uuid.uuid4().hex[:12]
        record = {
            "run_id": run_id, "status": lifecycle.QUEUED, "request": request.to_json(),
            "created": time.time(), "started": None, "finished": None,
            "backend": self.settings.backend_label, "render_ports": None,
            "iterations": [], "best_iteration": None, "best_aggregate": None,
            "concluded_early": None, "stopped_reason": None, "holdout": None, "timing": None,
            "error": None, "task_spec": request.task_spec, "stop_note": None,
        }
        run = Run(run_id, request, record, self.settings.progress_hz)
        with self._lock:
            if self._closing:
                raise Conflict("the server is shutting down; no new runs")
            if run_id in self._active:       # 48 random bits: practically never
                raise Conflict("run id collision; send the request again")
            self._active[run_id] = run
            self._queue.append(run)
            starting = self._take_startable()
            status = record["status"]
            self._writes.put((run, len(self._queue)))   # under the lock: never after shutdown's None
        self._launch(starting)
        return {"run_id": run_id, "status": status}

    def _write_new_runs(self) -> None:
        """The run-writer thread: put each accepted run on disk, then let its thread go on."""
        while (item := self._writes.get()) is not None:
            run, position = item
            request = run.request
            try:
                self.store.create(run.run_id)
                self._save(run, wait=False)
                run.log = self.store.event_log(run.run_id)
            except OSError as exc:
                log.error("run %s: cannot write %s: %s", run.run_id, self.store.run_dir(run.run_id), exc)
            finally:
                run.persisted.set()
            log.info("run %s queued: goal=%r iterations=%d episodes=%d render=%s ws_proxy=%s scenario=%s",
                     run.run_id, request.user_goal[:60], request.iterations, request.episodes,
                     request.render, request.ws_proxy, request.scenario)
            self._emit(run, {"type": "status", "status": lifecycle.QUEUED, "position": position},
                       only_if=lambda: run.record["status"] == lifecycle.QUEUED)

    def terminate(self, run_id: str) -> str:
        """Stop a run: a queued one ends at once, a running one within about a second."""
        with self._lock:
            run = self._active.get(run_id)
            if run is None:     # finished runs are only on disk
                raise LifecycleError("terminate", self.store.load(run_id)["status"])
            state = run.record["status"]
            new_state = next_state(state, "terminate")
            if state == lifecycle.QUEUED:
                self._queue.remove(run)
                self._close_locked(run, new_state)
            else:
                run.record["status"] = new_state
                run.stop_event.set()
        self._save(run)
        log.info("run %s terminate requested (%s -> %s)", run_id, state, new_state)
        if new_state == lifecycle.TERMINATED:
            self._emit_final(run, None)
        elif state != new_state:
            self._emit(run, {"type": "status", "status": new_state})
        return new_state

    def record(self, run_id: str) -> dict:
        with self._lock:
            run = self._active.get(run_id)
            if run is not None:
                return copy.deepcopy(run.record)    # the run thread keeps changing it
        return self.store.load(run_id)

    def records(self, statuses: tuple[str, ...] | None = None) -> list[dict]:
        """Every run, newest first; only those in ``statuses`` when given. Active runs answer
        from memory (their run.json may be a write behind)."""
        with self._lock:
            live = {run_id: copy.deepcopy(run.record) for run_id, run in self._active.items()}
        records = [live.pop(r.get("run_id"), r) for r in self.store.records()]
        if live:        # accepted, not yet on disk
            records = sorted(records + list(live.values()), key=lambda r: r.get("created", 0), reverse=True)
        if statuses is not None:
            records = [r for r in records if r.get("status") in statuses]
        return records

    def delete(self, run_id: str, *, terminate: bool = False, timeout_s: float = 15.0) -> str:
        """Remove a run and its folder; returns the status it had. An active run is a Conflict
        unless ``terminate``: then it is stopped first (waiting up to ``timeout_s``)."""
        with self._lock:
            run = self._active.get(run_id)
            state = run.record["status"] if run is not None else None
        if run is not None:
            if not terminate:
                raise Conflict(f"cannot delete a run that is {state}; terminate it first or send "
                               "?terminate=1", field="run_id")
            try:
                self.terminate(run_id)
            except LifecycleError:
                pass            # it ended meanwhile
            deadline = time.monotonic() + timeout_s
            if run.thread is not None:
                run.thread.join(timeout_s)
            while self.is_active(run_id) and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.is_active(run_id) or (run.thread is not None and run.thread.is_alive()):
                raise Conflict(f"run {run_id} did not stop within {timeout_s:g} s; try again",
                               field="run_id")
        try:
            state = self.store.load(run_id)["status"]      # NotFound for an unknown run
        except NotFound:
            if run is None:
                raise
            log.info("run %s was pruned (--keep-runs) as it stopped", run_id)
            return run.record["status"]     # gone already, as the client asked
        if state in lifecycle.ACTIVE_STATES and not self.is_active(run_id):
            state = lifecycle.INTERRUPTED   # a record left behind by a server that died
        self.store.delete(run_id)
        log.info("run %s deleted (was %s)", run_id, state)
        return state

    def prune(self) -> list[str]:
        """Delete the oldest finished runs beyond ``keep_runs``; returns their ids."""
        keep = self.settings.keep_runs
        if keep is None:
            return []
        finished = [r for r in self.store.records() if lifecycle.is_final(r.get("status"))]
        removed = []
        for record in finished[keep:]:       # newest first: everything past the first keep
            run_id = record.get("run_id")
            if not isinstance(run_id, str) or self.is_active(run_id):
                continue
            try:
                self.store.delete(run_id)
            except (OSError, NotFound) as exc:
                log.warning("run %s could not be pruned: %s", run_id, exc)
                continue
            removed.append(run_id)
        if removed:
            log.info("pruned %d finished run(s) beyond --keep-runs %d: %s", len(removed), keep,
                     ", ".join(removed))
        return removed

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._active

    def counts(self) -> dict:
        with self._lock:
            return {"running": self._running, "queued": len(self._queue)}

    def exists(self, run_id: str) -> bool:
        with self._lock:
            if run_id in self._active:
                return True
        return self.store.exists(run_id)

    def replay(self, run_id: str, since: int | None = None) -> list[dict]:
        """A subscriber's catch-up: the stored events after ``since`` (steps included: those
        events.jsonl kept), oldest first; for a finished run the final event is always included
        (so a client that reconnects late still gets ``done``)."""
        with self._lock:
            run = self._active.get(run_id)
        if run is None and not self.store.exists(run_id):
            raise NotFound(f"no run {run_id!r}", field="run_id")
        if run is not None:
            run.persisted.wait()
            return run.log.read(since_id=since, include_steps=True)
        events = self.store.read_events(run_id, since)
        if since is not None and not any(e.get("type") in FINAL_TYPES for e in events):
            finals = [e for e in self.store.read_events(run_id) if e.get("type") in FINAL_TYPES]
            events.extend(finals[-1:])
        return events

    def recover(self) -> list[str]:
        """At start-up: runs that were active when the server died are marked interrupted."""
        recovered = []
        for record in self.store.records():
            if record.get("status") not in lifecycle.ACTIVE_STATES:
                continue
            was = record["status"]
            with self.store.event_log(record["run_id"]) as event_log:
                phase = PhaseTracker("queued" if was == lifecycle.QUEUED else "setup")
                for event in event_log.read():
                    phase.see(event)
                record.update(status=next_state(was, "interrupt"), finished=time.time(),
                              stopped_reason=lifecycle.stopped_reason(lifecycle.INTERRUPTED, None),
                              error=error_record(f"the server stopped while the run was {was}", phase.phase))
                self.store.save(record)
                event_log.append({"type": "error", "status": lifecycle.INTERRUPTED,
                                  "message": record["error"]["message"], "phase": phase.phase})
            recovered.append(record["run_id"])
            log.info("run %s marked interrupted (was %s when the server stopped)", record["run_id"], was)
        self.prune()
        return recovered

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """No new runs; queued ones end interrupted, running ones are stopped and end interrupted."""
        with self._lock:
            self._closing = True
            self._writes.put(None)
        self._writer.join(timeout_s)     # every accepted run is on disk before it is closed
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
            for run in queued:
                self._close_locked(run, next_state(run.record["status"], "interrupt"),
                                   error="the server shut down before the run started")
            running = [run for run in self._active.values()]
        for run in queued:
            self._save(run)
            self._emit_final(run, None)
        for run in running:
            run.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for run in running:
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))
        for run in running:     # threads that did not finish in time: recorded as interrupted anyway
            with self._lock:
                if run.run_id not in self._active:
                    continue
                self._running -= 1
                self._close_locked(run, lifecycle.INTERRUPTED, error="the server shut down during the run")
            self._save(run)
            log.warning("run %s did not stop within %.0f s; marked interrupted", run.run_id, timeout_s)
            self._emit_final(run, None)

    # ------------------------------------------------------------ run threads

    def _take_startable(self) -> list[Run]:
        """Move queued runs to running while slots are free (caller holds the lock; no I/O):
        the caller passes them to ``_launch`` once it has let go of the lock."""
        starting = []
        while self._queue and self._running < self.settings.max_concurrent and not self._closing:
            run = self._queue.popleft()
            run.record.update(status=next_state(run.record["status"], "start"), started=time.time())
            self._running += 1
            starting.append(run)
        return starting

    def _launch(self, runs: list[Run]) -> None:
        """Start each run's thread (caller does not hold the lock); the thread records the start."""
        for run in runs:
            run.thread = threading.Thread(target=self._execute, args=(run,), name=f"run-{run.run_id}",
                                          daemon=True)  # daemon: a stuck loop cannot block exit (shutdown joins with a bound)
            run.thread.start()

    def _save(self, run: Run, *, wait: bool = True) -> None:
        """Write the run's record as it is now (once the run-writer has created it). Snapshots
        are taken under the manager lock and written under the run's own lock, so the file
        always ends at the latest snapshot."""
        if wait:
            run.persisted.wait()
        with run.save_lock:
            with self._lock:
                snapshot = copy.deepcopy(run.record)
            self.store.save(snapshot)

    def check_provider_key(self, request: RunRequest) -> None:
        """Refuse at once (400) a run that needs the LLM when this server has no key for it.

        Otherwise it would be accepted, queued, and fail on its first step: the client learns
        the same thing later and a failed run is left behind.
        """
        if request.policy_code is not None:
            return
        try:
            binding = self._binding_or_load()
        except Exception:       # the loop cannot load: _execute reports that as the run's error
            return
        if binding.LLMSettings is None:
            return
        config = build_loop_config(binding, request, self.settings, render=False, render_ports=None)
        from bgen.llm.client import LLMClient, LLMSettings
        settings = getattr(config, "llm", None)
        if not isinstance(settings, LLMSettings):   # no LLM, or a stand-in loop's own settings
            return
        try:
            LLMClient(settings)     # no request is sent: this only reads the key from the environment
        except ConfigError as error:
            if error.field != "api_key_env":
                raise
            raise BadRequest(f"{error.message} in the server's environment, or send policy_code "
                             f"to run without an LLM", field="provider") from None

    def _binding_or_load(self) -> LoopBinding:
        if self._binding is None:
            self._binding = load_binding(self._loop_module)
        return self._binding

    def _execute(self, run: Run) -> None:
        """Body of a run thread: proxy, config, loop; then the final status whatever happened."""
        run.phase.phase = "setup"
        self._save(run)         # waits for the run-writer: the run is on disk before it starts
        self._emit(run, {"type": "status", "status": lifecycle.RUNNING})
        request, result, failure, stop_proxy = run.request, None, None, None
        try:
            binding = self._binding_or_load()
            render, ports = request.render, None
            if request.render and request.ws_proxy and self._start_proxy is not None:
                try:
                    ports, stop_proxy = self._start_proxy(run.run_id)
                    with self._lock:
                        run.record["render_ports"] = list(ports)
                    self._save(run)
                except OSError as exc:
                    render = False
                    self._emit(run, {"type": "warning", "message":
                                     f"renderer proxy unavailable ({exc}); the run continues headless"})
            config = build_loop_config(binding, request, self.settings, render=render, render_ports=ports)
            runner = {"episode_runner": self.settings.episode_runner} \
                if self.settings.episode_runner is not None else {}
            result = binding.run_loop(config, self.store.run_dir(run.run_id),
                                      lambda event: self._emit(run, event), run.stop_event, **runner)
        except BaseException as exc:  # noqa: BLE001 - a run thread must always end with a final event
            failure = exc
            if not isinstance(exc, BgenError):
                log.error("run %s: the loop raised", run.run_id, exc_info=exc)
        finally:
            if stop_proxy is not None:
                stop_proxy()
        self._finish(run, result, failure)

    def _finish(self, run: Run, result, failure: BaseException | None) -> None:
        with self._lock:
            if run.run_id not in self._active:      # shutdown gave up waiting and closed it already
                return
            self._running -= 1
            event = "interrupt" if self._closing else ("fail" if failure is not None else "complete")
            new_state = next_state(run.record["status"], event)
            if result is not None:
                sim = result_field(result, "sim_time_s")
                wall = result_field(result, "wall_time_s")
                if sim is not None and wall is not None:
                    # a loop stopped inside an iteration has not counted that iteration's
                    # episodes; their summaries have been
                    run.sim_time_s = max(float(sim), run.sim_time_s)
                    run.wall_time_s = float(wall)
                best = result_field(result, "best_iteration")
                if best is not None:
                    run.record.update(best_iteration=best,
                                      best_aggregate=result_field(result, "best_aggregate"))
                run.record.update(concluded_early=bool(result_field(result, "concluded_early", False)),
                                  stopped_reason=result_field(result, "stopped_reason"),
                                  stop_note=result_field(result, "stop_note"))
                if result_field(result, "task_spec") is not None:
                    run.record["task_spec"] = result_field(result, "task_spec")
                if result_field(result, "holdout") is not None:
                    run.record["holdout"] = result_field(result, "holdout")
            error = None
            if new_state == lifecycle.FAILED:
                error = error_text(failure)
            elif new_state == lifecycle.INTERRUPTED:
                error = "the server shut down during the run"
            elif new_state == lifecycle.DONE and result is not None and result_field(result, "error"):
                error = str(result_field(result, "error"))     # provider_error: the best is kept
            self._close_locked(run, new_state, error=error, failure=failure)
            starting = self._take_startable()
        self._save(run)
        self._launch(starting)
        self._emit_final(run, failure)
        self.prune()

    def _close_locked(self, run: Run, state: str, *, error: str | None = None,
                      failure: BaseException | None = None) -> None:
        """Record a final state in memory (caller holds the lock, then calls ``_save``): a run
        that failed or was stopped gets ``error: {"message", "phase"}``, and ``stopped_reason``
        agrees with the state (``lifecycle.stopped_reason``)."""
        if state == lifecycle.TERMINATED and error is None:
            error = "terminated on request"
        phase = run.phase.phase     # a str read: no emit_lock under the manager lock
        if failure is not None and state == lifecycle.FAILED:
            phase = failure_phase(failure, phase)
        run.record.update(status=state, finished=time.time(),
                          error=error_record(error, phase) if error is not None else None,
                          timing=timing(run.sim_time_s, run.wall_time_s),
                          stopped_reason=lifecycle.stopped_reason(state, run.record.get("stopped_reason")))
        if run.record["concluded_early"] is None:
            run.record["concluded_early"] = False
        del self._active[run.run_id]

    def _emit_final(self, run: Run, failure: BaseException | None) -> None:
        record = run.record
        state = record["status"]
        event = {"type": lifecycle.FINAL_MESSAGE[state], "status": state}
        if event["type"] == "error":
            event.update(message=record["error"]["message"], phase=record["error"]["phase"])
            if failure is not None:
                event["error_type"] = type(failure).__name__
        else:
            event.update(timing=record["timing"], concluded_early=record["concluded_early"],
                         best_iteration=record["best_iteration"], best_aggregate=record["best_aggregate"],
                         stopped_reason=record["stopped_reason"])
            if record.get("stop_note"):
                event["stop_note"] = record["stop_note"]
        self._emit(run, event, final=True)

    # ------------------------------------------------------------ events

    def _emit(self, run: Run, event: Any, *, final: bool = False, only_if=None) -> None:
        """The loop's ``emit``: shape, number, store, decimate steps, hand over. Any thread."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            log.warning("run %s: ignoring an event that is not a dict with a type: %.80r", run.run_id, event)
            return
        wire = to_wire(event)
        kind = wire["type"]
        if kind in FINAL_TYPES and not final:
            log.warning("run %s: the loop emitted %r; only the server ends a run", run.run_id, kind)
            return
        run.persisted.wait()
        with run.emit_lock:
            if run.closed or run.log is None:
                log.debug("run %s: %s after the final event dropped", run.run_id, kind)
                return
            if only_if is not None and not only_if():   # decided in the same step as the id
                return
            if kind == "step":
                if run.throttle.offer(episode_key(wire), wire, self._clock()) is not None:
                    self._publish(run.run_id, run.log.append(wire))
                return
            if kind == "episode_summary":
                held = run.throttle.flush(episode_key(wire))
                if held is not None:
                    self._publish(run.run_id, run.log.append(held))
                self._add_timing(run, wire.get("summary") or {})
            elif final:
                for held in run.throttle.flush_all():
                    self._publish(run.run_id, run.log.append(held))
                run.closed = True
            stored = run.log.append(wire)
            run.phase.see(stored)
            self._publish(run.run_id, stored)
            if final:
                run.log.close()
        log.info("run %s %s", run.run_id, describe(stored))
        if kind in ("critique", "holdout"):
            self._note_aggregate(run, stored)
        elif kind == "task":
            self._note_task(run, stored)

    @staticmethod
    def _add_timing(run: Run, summary: dict) -> None:
        try:
            run.sim_time_s += float(summary.get("sim_time_s") or 0.0)
            run.wall_time_s += float(summary.get("wall_time_s") or 0.0)
        except (TypeError, ValueError):
            pass

    def _note_task(self, run: Run, event: dict) -> None:
        """Keep the task spec the run is judged by in run.json as soon as it is chosen."""
        with self._lock:
            if run.run_id not in self._active:
                return
            run.record.update(task_spec=event.get("task_spec"), task_source=event.get("source"),
                              max_steps=event.get("max_steps"))
            self.store.save(run.record)

    def _note_aggregate(self, run: Run, event: dict) -> None:
        """Keep each iteration's aggregate, the best so far and the holdout in run.json as they come."""
        aggregate = event.get("aggregate") or {}
        with self._lock:
            if run.run_id not in self._active:
                return
            record = run.record
            if event["type"] == "holdout":
                record["holdout"] = aggregate
            else:
                iterations = record["iterations"]
                iterations.append({"iteration": event.get("iteration", len(iterations)),
                                   "aggregate": aggregate, "success_rate": success_rate(aggregate)})
                # The loop ranks by more than the success rate; its choice wins when it says one.
                best = event.get("best_iteration")
                record["best_iteration"] = best if best is not None else best_iteration(iterations)
                record["best_aggregate"] = next((i["aggregate"] for i in iterations
                                                 if i["iteration"] == record["best_iteration"]), None)
        self._save(run)
