"""Trusted grading in grader processes, so the caller keeps its workers busy meanwhile.

    run_episodes (caller's thread)              grader process (python -m bgen.runner.grading)
    ──────────────────────────────              ──────────────────────────────────────────────
    worker exits ─► submit(summary, records) ─► graded_summary: replay.grade_episode
    starts the next episode, drains pipes             (world from the cache, commands flown)
    future done ◄───────────────────────────── graded summary (a plain dict)

Why a process and not the caller's thread: a replay is a second simulation of the episode
(~60 ms for a 600-step episode, all Python). In the caller it held the GIL while the server's
request threads waited, and the next episode did not start until it finished. Grader
processes run it on another core; the caller only sends the step records (positions and
commands) and reads back a dict.

Graders are trusted: they run bgen's simulator and nothing of the policy's but its reported
records, as data. They are started with ``subprocess`` (never ``fork`` of a threaded server,
never a re-import of the caller's main script), with the minimal environment the sandbox host
gets (no keys), and speak pickle over their stdin/stdout, both ends being ours. Up to
``MAX_GRADERS`` per caller process, started on first use and kept for every later call:
iterations, candidates and the runs of a server. A grader that cannot start or dies costs
nothing but speed: its episodes are graded in the caller instead.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future, InvalidStateError

#: Grader processes per caller process: two cores' worth of replays at most.
MAX_GRADERS = 2
#: Graders yield to the server's request threads as policy processes do (``zygote``).
GRADER_NICENESS = 5
_HEADER = struct.Struct("!Q")


def step_records(source) -> list[dict]:
    """The step records of an episode: ``source`` as given (a list of dicts), or read from a
    ``steps.<seed>.jsonl`` file (one JSON object a line, as the caller wrote them)."""
    if isinstance(source, list):
        return source
    with open(source, "rb") as steps:
        lines = [line for line in steps.read().split(b"\n") if line.strip()]
    # The caller wrote one JSON object a line (``worker.load_steps`` checked each), so the
    # lines joined as one array decode to the same records, about twice as fast as line by
    # line. When the joined text is not one object a line, each line is decoded on its own
    # (a malformed one raises ValueError, as it always did).
    try:
        records = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        records = None
    if records is None or len(records) != len(lines) or \
            not all(type(record) is dict for record in records):
        records = [json.loads(line) for line in lines]
    return records


def graded_summary(summary: dict, records, config, seed: int, episode_s: float = 0.0) -> dict:
    """``summary`` graded by the trusted replay of ``records`` (``replay.grade_episode``):
    step dicts, or the path of the episode's steps file (the grader reads it itself, so the
    caller neither decodes nor sends every step). ``episode_s``: how long the episode's
    policy process ran by the caller's clock, part of the replay's time budget.

    A failure of the replay itself (a simulator fault here) leaves the episode ungraded and
    unsuccessful, with the reason ``sim_error``. Episodes stopped from outside need no grade.
    """
    from bgen.runner import replay
    if summary.get("reason") == "terminated":
        return dict(summary, success=False)
    try:
        return replay.grade_episode(summary, step_records(records), config, seed,
                                    episode_s=episode_s)
    except replay.ReplayOverrun as overrun:
        return _overrun(summary, overrun)
    except Exception as error:  # noqa: BLE001 - our simulator, not the policy
        return dict(summary, success=False, reason="sim_error",
                    reasons=f"the trusted replay failed: {type(error).__name__}: {error}"[:2000])


def _overrun(summary: dict, overrun: Exception) -> dict:
    return dict(summary, success=False, reason="tampered", time_to_goal=None,
                reasons=f"{overrun}: no episode that flew these commands records them")


def grader_count() -> int:
    return max(1, min(MAX_GRADERS, os.cpu_count() or 1))


# --- wire: one length-prefixed pickle per message, both ends ours ------------------------------
def _write(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream):
    """The next message, or None at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def store_world(config, seed: int) -> bool:
    """Build the episode's world into ``config.world_cache_dir`` unless it is there already;
    True when the files are there afterwards (a failure only means the episode builds it)."""
    from bgen.sim import load_backend, worldcache
    try:
        vxs = load_backend(config.backend)
        worldcache.world(vxs, config.scenario, seed, config.world_cache_dir)
        return worldcache.is_stored(vxs, config.scenario, seed, config.world_cache_dir)
    except Exception:  # noqa: BLE001 - the episode will build (and report) it itself
        return False


# --- grader side -------------------------------------------------------------------------------
_TASKS = {"grade": graded_summary, "world": store_world}


def _serve(requests, answers) -> None:
    """Answer requests until stdin closes: (ident, task name, args) -> (ident, result).

    A grade is also bounded by an alarm at its replay budget (``replay.replay_budget_s``):
    the replay checks its budget between steps, the alarm stops one step that never ends."""
    from bgen.runner import replay

    def overrun(signum, frame):
        raise replay.ReplayOverrun("the replay passed its budget within one step")

    signal.signal(signal.SIGALRM, overrun)
    while True:
        request = _read(requests)
        if request is None:
            return
        ident, task, args = request
        limit = 0.0
        result = None
        if task == "grade":
            try:
                args = (args[0], step_records(args[1]), *args[2:])
                episode_s = args[4] if len(args) > 4 else 0.0
                limit = replay.replay_budget_s(args[2], len(args[1]), episode_s) + 1.0
            except (OSError, ValueError) as error:
                result = dict(args[0], success=False, reason="sim_error", reasons=(
                    f"the trusted replay could not read the steps: {error}")[:2000])
        if result is not None:
            _write(answers, (ident, result))
            continue
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            result = _TASKS[task](*args)
        except replay.ReplayOverrun as error:
            if result is None:             # not an alarm that came just after the answer
                result = _overrun(args[0], error)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        _write(answers, (ident, result))


def _die_with_parent() -> None:
    """Ask Linux to kill this grader when its caller dies (PR_SET_PDEATHSIG), so no replay
    outlives the run it was for; exit now if the caller is already gone."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != _PARENT:
        os._exit(0)


_PARENT = int(os.environ.get("BGEN_GRADER_PARENT", "0"))


# --- caller side -------------------------------------------------------------------------------
class Grader:
    """One grader process and the grades it owes.

    A writer thread sends the requests (a long episode's records are megabytes, more than a
    pipe holds while the grader is busy: the caller must not wait for that) and a reader
    thread settles the futures.
    """

    def __init__(self):
        from bgen.runner.isolation import HOST_ENV, package_root
        self.lock = threading.Lock()
        self.owed: dict[int, Future] = {}
        self.next_ident = 0
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-m", "bgen.runner.grading"],
            env=dict(HOST_ENV, PYTHONPATH=package_root(), BGEN_GRADER_PARENT=str(os.getpid())),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        threading.Thread(target=self._write_requests, daemon=True, name="bgen-grader-in").start()
        threading.Thread(target=self._read_answers, daemon=True, name="bgen-grader-out").start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self) -> int:
        return len(self.owed)

    def submit(self, task: str, *args) -> Future:
        """``_TASKS[task](*args)`` in the grader; the future holds its result."""
        future: Future = Future()
        with self.lock:
            if not self.alive:
                raise OSError("the grader process exited")
            ident = self.next_ident
            self.next_ident += 1
            self.owed[ident] = future
        self.outbox.put((ident, task, args))
        return future

    def _write_requests(self) -> None:
        while True:
            request = self.outbox.get()
            if request is None:
                break
            try:
                _write(self.process.stdin, request)
            except (OSError, ValueError):
                break                  # the reader settles what is owed when the grader ends
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def _read_answers(self) -> None:
        try:
            while True:
                answer = _read(self.process.stdout)
                if answer is None:
                    break
                ident, graded = answer
                with self.lock:
                    future = self.owed.pop(ident, None)
                if future is not None:
                    _settle(future, result=graded)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError):
            pass
        try:
            self.process.stdout.close()
        except OSError:
            pass
        with self.lock:
            owed, self.owed = self.owed, {}
        for future in owed.values():
            _settle(future, error=OSError("the grader process exited"))

    def stop(self) -> None:
        self.outbox.put(None)          # the writer closes stdin: the grader ends
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _settle(future: Future, result=None, error: BaseException | None = None) -> None:
    """Give ``future`` its outcome unless its caller has given up on it (cancelled): a late
    answer must never end the thread that reads a grader's answers."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


_lock = threading.Lock()
_graders: list[Grader] = []


def _least_busy() -> Grader:
    """A live grader with the fewest grades owed, starting one while below the count."""
    with _lock:
        _graders[:] = [grader for grader in _graders if grader.alive]
        idle = [grader for grader in _graders if grader.load() == 0]
        if not idle and len(_graders) < grader_count():
            _graders.append(Grader())
            return _graders[-1]
        return min(_graders, key=Grader.load)


def start(count: int) -> None:
    """Have at least ``count`` graders (at most ``grader_count()``) starting now: their
    imports then overlap the first episodes instead of delaying the first grade."""
    with _lock:
        _graders[:] = [grader for grader in _graders if grader.alive]
        try:
            while len(_graders) < min(count, grader_count()):
                _graders.append(Grader())
        except OSError:
            pass                       # submit() grades in the caller when none can start


def inline(summary: dict, records: list[dict], config, seed: int,
           episode_s: float = 0.0) -> Future:
    """A future already holding the grade, computed in this thread."""
    future: Future = Future()
    future.set_result(graded_summary(summary, records, config, seed, episode_s))
    return future


def submit(summary: dict, records: list[dict], config, seed: int,
           episode_s: float = 0.0) -> Future:
    """The grade of one finished episode, computed in a grader process (see the module doc).

    The future's result is ``graded_summary``'s dict; read it with ``result_or_inline``, which
    grades in the caller when the grader died meanwhile. A grader that cannot be started or
    reached is answered the same way at once.
    """
    try:
        return _least_busy().submit("grade", summary, records, config, seed, episode_s)
    except OSError:
        return inline(summary, records, config, seed, episode_s)


_worlds_in_flight: dict[tuple, Future] = {}      # (directory, world key) -> being stored


def prepare_world(config, seed: int) -> Future | None:
    """Have a grader build and store the episode's world before its episode starts, or None
    when there is nothing to prepare (no cache directory, voxelsim, already stored).

    A policy process cannot write the cache, so without this the first episode of a seed
    built its world and its grader built it again to store it. A world already being stored
    (asked for by ``prepare`` at the start of a run, say) gives the same future.
    """
    from bgen.sim import backend_label, load_backend, worldcache
    if config.world_cache_dir is None:
        return None
    try:
        vxs = load_backend(config.backend)
        label = backend_label(vxs)
        if label != "embedded" or \
                worldcache.is_stored(vxs, config.scenario, seed, config.world_cache_dir):
            return None
        key = (str(config.world_cache_dir), worldcache.world_key(config.scenario, seed, label))
        with _lock:
            future = _worlds_in_flight.get(key)
        if future is not None and not future.done():
            return future
        future = _least_busy().submit("world", config, seed)
        with _lock:
            _worlds_in_flight[key] = future
        future.add_done_callback(lambda done: _forget_world(key, done))
        return future
    except Exception:  # noqa: BLE001 - the episode builds its world itself
        return None


def _forget_world(key: tuple, future: Future) -> None:
    with _lock:
        if _worlds_in_flight.get(key) is future:
            del _worlds_in_flight[key]


def result_or_inline(future: Future, summary: dict, records: list[dict], config,
                     seed: int, episode_s: float = 0.0) -> dict:
    """The future's grade; when its grader died, the same grade computed here."""
    try:
        return future.result()
    except OSError:
        return graded_summary(summary, records, config, seed, episode_s)


def grader_pids() -> list[int]:
    """Process ids of this process's living graders (for measuring them)."""
    with _lock:
        return [grader.process.pid for grader in _graders if grader.alive]


def shutdown() -> None:
    """Stop this process's graders (tests; they also end when this process exits)."""
    with _lock:
        graders, _graders[:] = list(_graders), []
    for grader in graders:
        grader.stop()


if __name__ == "__main__":
    _die_with_parent()
    os.nice(GRADER_NICENESS)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
