"""Where episodes run: the local worker pool, or a Dask cluster.

The loop, ``run_policy`` and the server hand a policy and a list of seeds to an executor and
get one summary per seed back, with the episode files written under ``outdir`` and progress
events delivered to ``on_event`` on the caller's thread. Both executors have the signature of
``bgen.runner.worker.run_episodes``::

    executor.run_episodes(policy_code, seeds, config, outdir, *, workers=None, on_event=None,
                          stop_event=None, step_events=True, step_event_hz=None)
        -> list[summary dict]

``local``
    ``bgen.runner.worker.run_episodes`` as it is: sandboxed worker processes on this machine.

``dask``
    One Dask task per episode (``_episode_task``). The task runs on a Dask worker and does
    exactly what the local executor does on this machine: it starts bgen's own sandboxed worker
    process with the same limits (``run_episodes`` with one seed) in a private temporary folder,
    so the Dask worker process never imports or runs policy code. It returns the episode's
    summary and every file of its ``ep_<seed>/`` folder; the caller writes them into ``outdir``
    exactly as the local executor does. Events travel live through Dask's structured event log
    (``Worker.log_event`` on the worker, ``Client.subscribe_topic`` here); step events are thinned
    at the source to ``DASK_STEP_HZ`` per episode (the episode's last step is always sent).

    A Dask worker that dies mid-episode: the scheduler starts the task again elsewhere. The
    task announces every start, so the second start of an episode becomes a ``warning`` event
    ("retried on another worker"); a third start, or the scheduler giving up (``KilledWorker``),
    ends that episode with reason ``lost`` and the cause, and the other episodes go on. Setting
    ``stop_event`` sets a ``distributed.Event`` that every task of the call watches: each kills
    its sandboxed worker within a second and returns, and the futures are cancelled.

Optional dependency: ``pip install .[dask]`` (``dask.distributed``). Without it, asking for the
Dask executor raises ``ConfigError`` with one line saying how to install it.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from bgen.errors import ConfigError
from bgen.runner.episode import EpisodeConfig
from bgen.runner.schema import EpisodeSummary
from bgen.runner.worker import StepThinner  # noqa: F401 - the Dask tasks' thinning, and tests

EXECUTORS = ("local", "dask")
DASK_STEP_HZ = 20.0            # step events per second per episode sent back from a Dask worker
DASK_MAX_STARTS = 2            # an episode started this often (one retry) and lost again is `lost`
DASK_CONNECT_TIMEOUT_S = 10.0  # how long to wait for the scheduler before giving up
STOP_POLL_S = 0.2              # how often waits look at stop_event and the event queue
FUTURE_POLL_S = 0.02           # how often a wait looks at the futures
STOP_OVERDUE_S = 3.0           # after a stop, how long tasks get to return before they are given up
TASK_STOP_POLL_S = 0.25        # how often a task looks at the run's stop Event
INSTALL_HINT = "the dask executor needs dask.distributed: pip install 'bgen[dask]' " \
               "(or pip install 'dask[distributed]')"


# ---------------------------------------------------------------------------- local executor

class LocalExecutor:
    """Episodes in sandboxed worker processes on this machine (``worker.run_episodes``)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers

    def run_episodes(self, policy_code: str, seeds: list[int], config: EpisodeConfig,
                     outdir: Path, *, workers: int | None = None, on_event=None,
                     stop_event: threading.Event | None = None,
                     step_events: bool = True, step_event_hz: float | None = None) -> list[dict]:
        from bgen.runner.worker import run_episodes
        return run_episodes(policy_code, seeds, config, outdir,
                            workers=workers if workers is not None else self.workers,
                            on_event=on_event, stop_event=stop_event, step_events=step_events,
                            step_event_hz=step_event_hz)

    __call__ = run_episodes

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- pure helpers

def lost_summary(seed: int, note: str) -> dict:
    """The summary of an episode whose Dask worker died (twice) or whose task failed."""
    return EpisodeSummary(
        success=False, steps=0, collisions_total=0, avg_command_len=0.0, path_len_est=0.0,
        coverage=None, time_to_goal=None, reasons=note, policy_summary={}, seed=seed,
        reason="lost", error={"phase": "executor", "type": "lost", "message": note,
                              "lineno": None}).to_dict()


def terminated_summary(seed: int) -> dict:
    note = "stopped before the episode finished on the cluster"
    return EpisodeSummary(
        success=False, steps=0, collisions_total=0, avg_command_len=0.0, path_len_est=0.0,
        coverage=None, time_to_goal=None, reasons=note, policy_summary={}, seed=seed,
        reason="terminated").to_dict()


def write_files(ep_dir: Path, files: dict[str, bytes]) -> None:
    """Write an episode's files as the task returned them (plain names only, no paths)."""
    ep_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"episode file name: expects a plain file name, actual: {name!r}")
        (ep_dir / name).write_bytes(data)


def write_placeholder_files(ep_dir: Path, seed: int, summary: dict) -> None:
    """Files for an episode that produced none (lost or stopped): empty steps, its summary."""
    from bgen.runner.worker import write_episode_files
    ep_dir.mkdir(parents=True, exist_ok=True)
    (ep_dir / f"steps.{seed}.jsonl").write_bytes(b"")
    write_episode_files(ep_dir, seed, summary, None, "", [], [])


# ---------------------------------------------------------------------------- dask side

def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError(INSTALL_HINT, field="executor") from None
    return distributed


def _episode_task(policy_code: str, seed: int, config: EpisodeConfig, topic: str,
                  stop_name: str, step_hz: float = DASK_STEP_HZ) -> dict:
    """Run one episode on a Dask worker, inside bgen's sandboxed worker process.

    Returns ``{"summary": dict, "files": {name: bytes}, "worker": address}``. Never imports or
    runs policy code in this process: ``run_episodes`` starts the sandboxed process for it.
    """
    import distributed
    from bgen.runner.worker import run_episodes

    worker = distributed.get_worker()
    address = worker.address

    def publish(message: dict) -> None:
        worker.log_event(topic, {"seed": seed, "worker": address, **message})

    publish({"kind": "started", "pid": os.getpid()})
    stop = threading.Event()
    finished = threading.Event()
    thinner = StepThinner(step_hz)

    stop_flag = distributed.Event(stop_name, client=distributed.get_client())

    def watch_stop():
        while not finished.is_set():
            try:
                if stop_flag.wait(timeout=TASK_STOP_POLL_S):
                    stop.set()
                    return
            except Exception:          # scheduler unreachable: the episode's own deadline still holds
                finished.wait(TASK_STOP_POLL_S)

    def forward(event: dict) -> None:
        kind = event.get("type")
        if kind == "step":
            event = thinner.offer(event)
            if event is not None:
                publish({"kind": "event", "event": event})
        elif kind == "warning":
            publish({"kind": "event", "event": event})
        # episode_summary: the caller emits it after writing the files

    watcher = threading.Thread(target=watch_stop, name=f"bgen-stop-watch-{seed}", daemon=True)
    watcher.start()
    tmp = Path(tempfile.mkdtemp(prefix=f"bgen-dask-ep{seed}-"))
    try:
        summaries = run_episodes(policy_code, [seed], config, tmp, workers=1, on_event=forward,
                                 stop_event=stop, step_events=True)
        last = thinner.flush()
        if last is not None:
            publish({"kind": "event", "event": last})
        ep_dir = tmp / f"ep_{seed}"
        files = {p.name: p.read_bytes() for p in sorted(ep_dir.iterdir()) if p.is_file()}
        return {"summary": summaries[0], "files": files, "worker": address}
    finally:
        finished.set()
        shutil.rmtree(tmp, ignore_errors=True)


class _DaskEpisode:
    """The caller's view of one seed's task: its future, how often it started, where."""

    def __init__(self, seed: int, future):
        self.seed = seed
        self.future = future
        self.starts: list[str] = []      # Dask worker addresses, in start order
        self.done = False


class DaskExecutor:
    """Episodes as Dask tasks; each task runs bgen's sandboxed worker on a Dask worker."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, client=None, workers: int | None = None,
                 step_hz: float = DASK_STEP_HZ, connect_timeout_s: float = DASK_CONNECT_TIMEOUT_S):
        distributed = _import_distributed()
        if client is None:
            if not scheduler:
                raise ConfigError("dask-scheduler: the dask executor needs a scheduler address "
                                  "such as tcp://host:8786", field="dask_scheduler")
            try:
                client = distributed.Client(scheduler, timeout=connect_timeout_s,
                                            set_as_default=False)
            except (OSError, TimeoutError) as error:
                raise ConfigError(f"dask-scheduler: cannot reach {scheduler}: {error}",
                                  field="dask_scheduler") from None
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client                 # one client per executor; shared by runs, thread-safe
        self.scheduler = scheduler or str(getattr(client, "scheduler", ""))
        self.workers = workers
        self.step_hz = step_hz

    def describe(self) -> dict:
        return {"name": self.name, "scheduler": self.scheduler}

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def run_episodes(self, policy_code: str, seeds: list[int], config: EpisodeConfig,
                     outdir: Path, *, workers: int | None = None, on_event=None,
                     stop_event: threading.Event | None = None,
                     step_events: bool = True, step_event_hz: float | None = None) -> list[dict]:
        """As ``worker.run_episodes``, on the cluster (``workers`` is the cluster's business;
        step events are thinned at the source to ``step_event_hz``, or ``DASK_STEP_HZ``)."""
        distributed = _import_distributed()
        if not isinstance(config, EpisodeConfig):
            raise ConfigError("config: expects an EpisodeConfig", field="config")
        seeds = [int(s) for s in seeds]
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds: expects distinct seeds, actual: {seeds}", field="seeds")
        outdir = Path(outdir)
        call_id = uuid.uuid4().hex[:12]
        topic, stop_name = f"bgen-episodes-{call_id}", f"bgen-stop-{call_id}"
        inbox: queue.SimpleQueue = queue.SimpleQueue()   # filled on the client's loop thread

        def on_topic(message):
            inbox.put(message[1] if isinstance(message, tuple) else message)

        self.client.subscribe_topic(topic, on_topic)
        episodes: dict[int, _DaskEpisode] = {}
        results: dict[int, dict] = {}
        emit = on_event or (lambda event: None)

        def submit(seed: int):
            return self.client.submit(_episode_task, policy_code, seed, config, topic, stop_name,
                                      step_event_hz or self.step_hz,
                                      key=f"bgen-episode-{call_id}-{seed}",
                                      pure=False)

        def conclude(ep: _DaskEpisode, summary: dict, files: dict | None) -> None:
            ep.done = True
            ep_dir = outdir / f"ep_{ep.seed}"
            if files:
                write_files(ep_dir, files)
            else:
                write_placeholder_files(ep_dir, ep.seed, summary)
            results[ep.seed] = summary
            emit({"type": "episode_summary", **summary})

        def handle(message: dict) -> None:
            ep = episodes.get(message.get("seed"))
            if ep is None or ep.done:
                return
            if message.get("kind") == "started":
                ep.starts.append(str(message.get("worker")))
                if len(ep.starts) == 2:
                    emit({"type": "warning", "seed": ep.seed,
                          "message": f"episode {ep.seed}: Dask worker {ep.starts[0]} died "
                                     f"mid-episode; retried on {ep.starts[1]}"})
                elif len(ep.starts) > DASK_MAX_STARTS:
                    ep.future.cancel()
                    conclude(ep, lost_summary(ep.seed, self._lost_note(ep)), None)
            elif message.get("kind") == "event" and isinstance(message.get("event"), dict):
                event = message["event"]
                if event.get("type") == "step" and not step_events:
                    return
                emit(event)

        try:
            for seed in seeds:
                episodes[seed] = _DaskEpisode(seed, submit(seed))
            stopping = False
            while any(not ep.done for ep in episodes.values()):
                self._drain(inbox, handle)
                if not stopping and stop_event is not None and stop_event.is_set():
                    stopping = True
                    stopped_at = time.monotonic()
                    self._stop(distributed, stop_name, episodes)
                pending = [ep.future for ep in episodes.values() if not ep.done]
                if not pending:
                    break
                finished = self._wait(pending)
                if stopping and not finished and time.monotonic() - stopped_at > STOP_OVERDUE_S:
                    finished = pending          # tasks that ignore the stop: give them up
                for ep in [e for e in episodes.values() if not e.done and e.future in finished]:
                    self._drain(inbox, handle)   # the task's last events before its result
                    if ep.done:
                        continue
                    self._collect(ep, conclude, stopping)
        finally:
            self._drain(inbox, handle)
            self.client.unsubscribe_topic(topic)
            leftovers = [ep.future for ep in episodes.values() if not ep.future.done()]
            if leftovers:
                self.client.cancel(leftovers, force=True)
        return [results[seed] for seed in seeds]

    __call__ = run_episodes

    # -- the parts of run_episodes ------------------------------------------------------

    @staticmethod
    def _drain(inbox: queue.SimpleQueue, handle: Callable[[dict], None]) -> None:
        while True:
            try:
                message = inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(message, dict):
                handle(message)

    @staticmethod
    def _wait(pending: list) -> set:
        """The futures of ``pending`` that finished within STOP_POLL_S (maybe none).

        Polls ``Future.done()``: ``distributed.wait`` would need a default client, and this
        executor's client is deliberately not the process's default.
        """
        deadline = time.monotonic() + STOP_POLL_S
        while True:
            done = {future for future in pending if future.done()}
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(FUTURE_POLL_S)

    def _stop(self, distributed, stop_name: str, episodes: dict) -> None:
        try:
            distributed.Event(stop_name, client=self.client).set()
        except Exception:        # the scheduler is gone: cancelling below is all we can do
            pass
        queued = [ep.future for ep in episodes.values() if not ep.done and not ep.starts]
        if queued:
            self.client.cancel(queued, force=True)

    @staticmethod
    def _lost_note(ep: _DaskEpisode) -> str:
        where = ", then ".join(ep.starts) or "unknown workers"
        return f"the Dask workers running this episode died {len(ep.starts)} times ({where})"

    def _collect(self, ep: _DaskEpisode, conclude, stopping: bool) -> None:
        future = ep.future
        if not future.done():            # given up after a stop: it ignored the stop Event
            future.cancel()
            conclude(ep, terminated_summary(ep.seed), None)
            return
        if future.cancelled() or future.status == "cancelled":
            conclude(ep, terminated_summary(ep.seed) if stopping else
                     lost_summary(ep.seed, "the episode's Dask task was cancelled"), None)
            return
        error = future.exception() if future.status == "error" else None
        if error is not None:
            name = type(error).__name__
            if name == "KilledWorker":
                note = self._lost_note(ep) + f"; the scheduler gave up: {error}"
            else:
                note = f"the episode's Dask task failed: {name}: {error}"[:2000]
            conclude(ep, terminated_summary(ep.seed) if stopping else lost_summary(ep.seed, note),
                     None)
            return
        result = future.result()
        summary, files = result.get("summary"), result.get("files")
        if not isinstance(summary, dict) or not isinstance(files, dict):
            conclude(ep, lost_summary(ep.seed, "the episode's Dask task returned no summary"), None)
            return
        conclude(ep, summary, files)


# ---------------------------------------------------------------------------- choosing one

def make_executor(name: str = "local", *, dask_scheduler: str | None = None,
                  workers: int | None = None, client=None):
    """The executor called ``name``; raises ConfigError (one line) for a bad name or setup."""
    if name == "local":
        if dask_scheduler:
            raise ConfigError("dask-scheduler: only used with --executor dask",
                              field="dask_scheduler")
        return LocalExecutor(workers)
    if name == "dask":
        return DaskExecutor(dask_scheduler, client=client, workers=workers)
    raise ConfigError(f"executor: expects one of {', '.join(EXECUTORS)}, actual: {name!r}",
                      field="executor")


def add_executor_arguments(parser) -> None:
    """``--executor`` and ``--dask-scheduler``, the same on every CLI and the server."""
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="where episodes run: local worker processes, or a Dask cluster "
                             "(default local)")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                        help="the Dask scheduler for --executor dask, e.g. tcp://host:8786 "
                             "(default none: required with --executor dask)")


def executor_from_args(args, workers: int | None = None):
    """The executor the parsed flags ask for; raises ConfigError (one line) when it cannot be made."""
    return make_executor(args.executor, dask_scheduler=args.dask_scheduler, workers=workers)
