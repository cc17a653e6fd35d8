"""Episodes in policy processes: one fresh process per episode, OS layers, JSON over pipes.

    caller thread (run_episodes)                  sandbox host (bgen.runner.zygote; exec'd with
    ─────────────────────────────                 an environment that never held a key, inside
    starts up to N children ── spawn ──────────►  namespaces) ─► fork ─► policy process
    writes the request (JSON) ── request pipe ──────────────────────────► setsid, stdio on
      ◄── b"S" step batches (JSONL) ── result pipe ◄──────────────────── /dev/null, world built,
      ◄── b"E" events (phase, warning, summary)                          rlimits, Landlock, uid
    replays the commands (bgen.runner.replay),                           drop, seccomp; policy
    grades the replay, writes ep_<seed>/ files                           loaded and flown
    kills the child on deadline / stall / stop

Why this shape:
* The policy process descends from the sandbox host, never from the caller: the host was
  exec'd with ``isolation.HOST_ENV`` only, so there is no key anywhere in a policy process's
  memory. ``bgen.runner.isolation`` describes the OS layers and ``isolation_report()`` says
  which hold on this machine.
* Results cross back as JSON (``send_bytes``/``recv_bytes`` with a size cap); the parent never
  unpickles anything a worker sends, because unpickling can run code.
* The parent does not trust the flight the worker reports: it replays the commands the agent
  received in its own simulator and grades the replay (``bgen.runner.replay``); a reported
  trajectory that disagrees is ``tampered``.
* Limits are set in the child after the world is built and before the policy is loaded:
  RLIMIT_AS (memory), RLIMIT_CPU (soft < hard, so SIGXCPU comes first), RLIMIT_FSIZE 0 (the
  parent writes the files), RLIMIT_NOFILE, RLIMIT_CORE 0 and RLIMIT_NPROC 0, then Landlock,
  the drop to ``nobody`` (as root) and the seccomp filter.
* Time: each policy call (module body, init, act, collect, finalize) runs under an interval
  timer (SIGALRM → ``BudgetExceeded``, reason ``timeout`` with the policy line). A policy can
  swallow that with a bare ``except:``, so the parent also kills a child that is silent for
  ``act_budget_s + stall_grace_s`` while running, or that exceeds ``episode_deadline_s``.
"""

from __future__ import annotations

# Imported here, not on first use: a child that dropped to ``nobody`` may no longer read the
# interpreter's files (under /root, say), and RendererClient's connect() encodes the host
# name with the idna codec, which Python imports lazily.
import base64
import encodings.idna  # noqa: F401
import hashlib
import json
import marshal
import math
import multiprocessing.connection
import os
import resource
import signal
import stat
import threading
import time
import types
from collections import OrderedDict, deque
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Callable

from bgen.errors import BgenError, ConfigError, PolicyLoadError
from bgen.runner import grading, isolation
from bgen.runner.episode import (BudgetExceeded, EpisodeConfig, EpisodeInterrupt,
                                 SimulatorStalled, describe_error, run_episode)
from bgen.runner.metrics import EpisodeStats, distance
from bgen.runner.schema import FAILURE_REASONS, EpisodeSummary

__all__ = ["EpisodeConfig", "run_episodes", "run_sandboxed_episode", "check_policy",
           "probe_worker", "MAX_MESSAGE_BYTES", "STEP_BATCH", "default_workers"]

#: What every policy process's environment holds (and nothing else): the thread settings and
#: the path to the ``bgen`` package.
WORKER_ENV = dict(isolation.HOST_ENV, PYTHONPATH=isolation.package_root())

#: Set by tests only, in the calling process: the child then puts the real ``os``, ``sys``,
#: ``ctypes``, ``socket`` and ``subprocess`` into the policy's builtins, standing in for a
#: sandbox escape, so the OS layers can be shown to hold on their own.
GRANT_REAL_MODULES_FOR_TESTS = False


def preload_for_host() -> None:
    """Import what every episode needs once, in the sandbox host, before it forks."""
    # numpy.random (the policies' seeded generator) and mmap (cached worlds are memory-mapped)
    # are imported lazily; left to each episode they cost it ~30 ms.
    for name in ("bgen.sim.embedded", "bgen.sim.scenarios", "bgen.runner.sandbox",
                 "bgen.runner.replay", "numpy.random", "mmap", "voxelsim"):
        try:
            __import__(name)
        except Exception:  # a missing optional module must not kill the host
            pass
    isolation.seccomp_version()      # loads libseccomp before Landlock hides its file
    isolation.landlock_abi()


#: Largest message a worker may send; a bigger one means a misbehaving worker (crashed).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# What one episode's worker may send in all, and per step line: a worker is assumed to be
# compromised, so every quantity it controls is bounded before the parent stores it.
EPISODE_BYTES_BASE = 16 * 1024 * 1024
EPISODE_BYTES_PER_STEP = 4 * 1024
MAX_STEP_LINE_BYTES = 256 * 1024
MAX_WARNINGS = 200                  # kept and emitted per episode; the rest are counted only
#: Steps per batch message, and the longest a step may wait in a batch (s).
STEP_BATCH = 100
STEP_FLUSH_S = 0.1
#: Caps on the error traceback and the policy's printed output sent back by a worker.
MAX_TRACEBACK_CHARS = 16_000
MAX_OUTPUT_CHARS = 64_000
#: How often the parent wakes to check deadlines and the stop event (s); kills land within 1 s.
POLL_S = 0.1
#: Longest a killed policy process may take to exit before its sandbox host is taken for
#: hung and killed with all its children (s).
HOST_KILL_GRACE_S = 10.0
#: Longest an episode waits for a grader to store its world before building it itself (s).
WORLD_WAIT_S = 5.0
#: Longest ``prepare`` waits for a world to be stored before handing it to the host (s).
PREPARE_WAIT_S = 120.0
NOBODY = 65534


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


# ============================================================================================
# Worker side
# ============================================================================================

def _isolate(keep_fds: tuple[int, ...]) -> None:
    """Own session, stdio on /dev/null, every descriptor but ``keep_fds`` closed."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    top = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = 65536 if top == resource.RLIM_INFINITY or top > 65536 else top
    low = 3
    for keep in sorted(keep_fds):
        os.closerange(low, keep)
        low = keep + 1
    os.closerange(low, top)


def _drop_privileges() -> str | None:
    """As root, become ``nobody`` so RLIMIT_NPROC applies; returns why not, or None."""
    if os.geteuid() != 0:
        return None
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError as error:
        return f"still root ({error.strerror}): RLIMIT_NPROC is not enforced"
    return None


#: What the last apply_limits() did to this process, per layer (the probe reports it).
APPLIED: dict[str, dict] = {}


def apply_limits(config: EpisodeConfig) -> list[str]:
    """Set this (child) process's limits and OS layers; returns notes on layers not set.

    Order matters: rlimits; Landlock (its rules open the readable paths, which ``nobody``
    may not be allowed to traverse); the drop to ``nobody``; RLIMIT_NPROC (root ignores it);
    seccomp last (it refuses setuid).
    """
    notes = []
    mem = int(config.memory_limit_mb) * 1024 * 1024
    cpu = int(math.ceil(config.cpu_limit_s or config.episode_deadline_s))
    wanted = [
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_CPU, cpu, cpu + 2),       # SIGXCPU at soft, SIGKILL at hard
        (resource.RLIMIT_FSIZE, 0, 0),
        (resource.RLIMIT_NOFILE, config.max_open_files, config.max_open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for limit, soft, hard in wanted:
        try:
            resource.setrlimit(limit, (soft, hard))
        except (ValueError, OSError) as error:
            notes.append(f"limit {limit} not set: {error}")
    APPLIED["rlimits"] = {"active": not notes, "detail": "; ".join(notes) or (
        f"address space {config.memory_limit_mb} MB, CPU {cpu} s, file size 0, "
        f"{config.max_open_files} open files, no core" + ("" if config.render else
                                                          ", processes 0"))}
    ports = [int(p) for p in config.render_ports] if config.render else None
    try:
        detail = isolation.apply_landlock(isolation.readable_paths(), ports)
        APPLIED["landlock"] = {"active": bool(detail), "detail": detail or
                               "the kernel has no Landlock: reads and writes are limited "
                               "by the mount view and RLIMIT_FSIZE only"}
    except OSError as error:
        APPLIED["landlock"] = {"active": False, "detail": f"refused by the kernel: {error}"}
    if not APPLIED["landlock"]["active"]:
        notes.append(f"landlock: {APPLIED['landlock']['detail']}")
    note = _drop_privileges()
    uid = os.getuid()
    APPLIED["uid"] = {"active": uid != 0, "detail": note or f"uid {uid}"}
    if note:
        notes.append(note)
    if not config.render:   # the vision renderer runs a thread, and threads count as processes
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        except (ValueError, OSError) as error:
            notes.append(f"limit RLIMIT_NPROC not set: {error}")
    try:
        APPLIED["seccomp"] = {"active": True, "detail": isolation.apply_seccomp(config.render)}
    except OSError as error:
        APPLIED["seccomp"] = {"active": False, "detail": f"not installed: {error}"}
        notes.append(f"seccomp: {error}")
    return notes


class _PolicyAlarm:
    """The guard around each policy call: an interval timer that raises ``BudgetExceeded``.

    A call that swallowed the alarm (``return`` inside ``finally``) or replaced it with another
    exception still ends the episode at once: the guard remembers that the alarm fired and
    raises ``BudgetExceeded`` when the call ends. What a call raised is kept until the next
    call starts, so the policy objects it holds are freed inside a budget. Phase
    ``"sim"`` guards the simulator's own step: running past the budget there is
    ``SimulatorStalled`` (reason ``sim_error``).

    The timer is armed once and left running across calls (three per step would otherwise
    cost two ``setitimer`` calls each, ~10 % of a policy process's episode): a call starts
    with the timer due no later than its own deadline, and an alarm that comes before the
    running call's deadline (it was armed for an earlier call) re-arms for what is left.
    """

    def __init__(self, budget_s: float, clock=time.monotonic):
        self.budget_s = budget_s
        self.clock = clock
        self.phase: str | None = None      # the running call's phase, None between calls
        self.next_phase: str | None = None
        self.fired = False
        self.started = 0.0                 # clock() when the running call began
        self.due: float | None = None      # clock() when the armed timer fires; None: disarmed
        self.held: BaseException | None = None
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _arm(self, now: float, seconds: float) -> None:
        self.due = now + seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def _on_alarm(self, signum, frame):
        self.due = None
        if self.phase is None:
            return                         # between calls: the next call arms again
        now = self.clock()
        left = self.started + self.budget_s - now
        if left > 0:
            self._arm(now, left)
            return
        self.fired = True
        if self.phase == "sim":
            raise SimulatorStalled(f"the simulator's step ran longer than {self.budget_s} s")
        raise BudgetExceeded(f"{self.phase}() ran longer than its budget of {self.budget_s} s")

    def __call__(self, phase: str):
        self.next_phase = phase
        return self

    def __enter__(self):
        self.fired = False
        now = self.started = self.clock()
        self.phase = self.next_phase       # after ``started``: an alarm now sees this call
        if self.due is None or self.due > now + self.budget_s:
            self._arm(now, self.budget_s)
        self.held = None                   # the last call's exception dies in this budget
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None:
            # Its traceback holds the policy's frames (a suspended generator's ``finally``,
            # say) and its arguments policy objects: they are released inside the next
            # call's budget, not between calls where nothing would stop them.
            self.held = exc
        phase, self.phase = self.phase, None
        if not self.fired:
            return False
        self.fired = False
        if isinstance(exc, (BudgetExceeded, SimulatorStalled)):
            return False
        if exc is None:
            how = "swallowed the time limit"
        else:
            how = f"replaced the time limit with {type(exc).__name__}"
        if phase == "sim":
            raise SimulatorStalled(f"the simulator's step ran longer than {self.budget_s} s")
        raise BudgetExceeded(f"{phase}() ran longer than its budget of {self.budget_s} s "
                             f"and {how}")


def _on_cpu_limit(signum, frame):
    raise BudgetExceeded("the episode used up its CPU time limit")


_MASKED = {signal.SIGALRM, signal.SIGXCPU}


#: ``json.dumps(log, separators=(",", ":"))`` without building an encoder for every step
#: (~2 of its ~15 µs).
_STEP_ENCODER = json.JSONEncoder(separators=(",", ":"))


class PipeSink:
    """Batches step logs into ``b"S"`` messages; other events go out at once as ``b"E"``.

    A step batch is one JSON header line (the running totals, so the parent can summarise an
    episode it had to kill) followed by one JSON line per step.
    """

    def __init__(self, conn):
        self.conn = conn
        self.lines: list[str] = []
        self.last_flush = time.monotonic()
        self.stats = EpisodeStats()
        self.last_pos = None

    def _send(self, payload: bytes) -> None:
        # Signals are held while a message is written, so an alarm cannot cut one in half.
        signal.pthread_sigmask(signal.SIG_BLOCK, _MASKED)
        try:
            self.conn.send_bytes(payload)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _MASKED)

    def step(self, log: dict) -> None:
        pos = log["agent_pos"]
        moved = distance(self.last_pos, pos) if self.last_pos is not None else 0.0
        self.last_pos = pos
        self.stats.add_step(moved if math.isfinite(moved) else 0.0, log["collisions_count"],
                            log["command_len"], log["distance_to_target"])
        self.lines.append(_STEP_ENCODER.encode(log))
        if len(self.lines) >= STEP_BATCH or time.monotonic() - self.last_flush >= STEP_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.lines:
            return
        header = json.dumps(self.stats.to_dict(), separators=(",", ":"))
        body = "\n".join([header, *self.lines])
        self.lines = []
        self._send(b"S" + body.encode("utf-8", "replace"))

    def event(self, kind: str, **fields) -> None:
        self.flush()
        self._send(b"E" + json.dumps({"kind": kind, **fields}).encode("utf-8", "replace"))

    def warning(self, message: str) -> None:
        self.event("warning", message=str(message)[:2000])

    def phase(self, name: str) -> None:
        self.event("phase", phase=name)


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit // 2] + "\n…\n" + text[-limit // 2:]


# Pre-encoded so that it can be sent after a MemoryError without allocating much.
_OUT_OF_MEMORY = b'E{"kind": "fatal", "reason": "memory", "message": "the worker ran out of memory"}'


def read_request(fd: int, limit: int = 4 * MAX_MESSAGE_BYTES) -> dict:
    """The child's one request: JSON ``{"mode", "source", "config", "seed", ...}`` until EOF."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ValueError("request too large")
        chunks.append(chunk)
    os.close(fd)
    request = json.loads(b"".join(chunks))
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in request["config"].items()}
    request["config"] = EpisodeConfig(**config)
    return request


def child_main(request_fd: int, result_fd: int, world_fds: tuple[int, ...] = ()) -> None:
    """Entry point of a policy process forked by the sandbox host; never returns.

    ``world_fds``: the episode's world files (coords, bits, dense) opened by the caller, when
    its cache holds them."""
    conn = multiprocessing.connection.Connection(result_fd, readable=False)
    try:
        _isolate((request_fd, result_fd, *world_fds))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past FSIZE is an error, not death
        signal.signal(signal.SIGXCPU, _on_cpu_limit)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sink = PipeSink(conn)
        request = read_request(request_fd)
        mode, source, config = request["mode"], request["source"], request["config"]
        seed = int(request.get("seed", 0))
        if request.get("grant_real_modules"):
            _grant_real_modules()
        if mode == "probe":
            before = _facts_before_limits()
            notes = apply_limits(config)
            sink.event("probe", **_probe_facts(before, notes, config,
                                               str(request.get("namespace_tool", ""))))
        elif mode == "check":
            _check_in_worker(sink, source, config)
        else:
            _episode_in_worker(sink, source, config, seed, world_fds, _code_of(request))
    except MemoryError:
        try:
            conn.send_bytes(_OUT_OF_MEMORY)
        except BaseException:  # noqa: B036
            pass
    except BaseException as error:  # noqa: B036 - report, then exit; the parent decides
        try:
            reason = error.reason if isinstance(error, EpisodeInterrupt) else "crashed"
            PipeSink(conn).event("fatal", reason=reason,
                                 message=f"{type(error).__name__}: {error}"[:2000])
        except BaseException:  # noqa: B036
            pass
    finally:
        os._exit(0)


def _grant_real_modules() -> None:
    """Tests only (see GRANT_REAL_MODULES_FOR_TESTS): real modules in the policy's builtins."""
    import ctypes
    import socket
    import subprocess
    import sys
    from bgen.runner import sandbox
    original = sandbox.make_builtins

    def make_builtins(*args, **kwargs):
        table = original(*args, **kwargs)
        table.update(os=os, sys=sys, ctypes=ctypes, socket=socket, subprocess=subprocess,
                     real_open=open)
        return table

    sandbox.make_builtins = make_builtins


def _episode_in_worker(sink: PipeSink, source: str, config: EpisodeConfig, seed: int,
                       world_fds: tuple[int, ...] = (), code=None) -> None:
    import gc
    from dataclasses import replace
    gc.disable()          # collections (and policy finalisers) run only inside a budget
    from bgen.sim import load_backend, worldcache
    vxs = load_backend(config.backend)
    # The other worlds the host keeps would count against this process's address space.
    worldcache.keep_only(vxs, config.scenario, seed)
    if len(world_fds) in (2, 3) and not worldcache.holds(vxs, config.scenario, seed):
        worldcache.adopt_descriptors(vxs, config.scenario, seed, world_fds)   # else: built
    for fd in world_fds:         # inherited from the host (or none): the files are not needed
        os.close(fd)
    # The cache directory is the caller's: this process neither reads nor writes it.
    config = replace(config, world_cache_dir=None)
    guard = _PolicyAlarm(config.act_budget_s)
    notes: list[str] = []

    def before_load():
        notes.extend(apply_limits(config))

    outcome = run_episode(source, vxs, config, seed, sink, guard=guard, before_load=before_load,
                          code=code)
    for note in notes:
        sink.warning(f"worker limits: {note}")
    error = dict(outcome.error) if outcome.error else None
    if error:
        error["traceback"] = _clip(error.get("traceback"), MAX_TRACEBACK_CHARS)
    sink.event("summary", summary=outcome.summary.to_dict(), error=error,
               output=_clip(outcome.output, MAX_OUTPUT_CHARS))


def _check_in_worker(sink: PipeSink, source: str, config: EpisodeConfig) -> None:
    from bgen.runner import sandbox
    from bgen.runner.episode import load
    from bgen.sim import load_backend, worldcache
    vxs = load_backend(config.backend)
    worldcache.clear_memory()    # the host's worlds would count against this process's limit
    apply_limits(config)
    guard = _PolicyAlarm(config.act_budget_s)
    try:
        with guard("load"):
            code = sandbox.compile_policy(source)
        load(source, vxs, guard, code=code)
    except PolicyLoadError as error:
        sink.event("load_error", message=error.message, lineno=error.lineno, rule=error.rule)
        return
    except BudgetExceeded as error:
        sink.event("load_error", message=f"executing the module body: {error.message}",
                   lineno=describe_error(error, "load", source).get("lineno"), rule="timeout")
        return
    marshalled = marshal.dumps(code)
    sink.event("checked", code=base64.b64encode(marshalled).decode("ascii")
               if len(marshalled) <= MAX_CODE_BYTES else None)


def _facts_before_limits() -> dict:
    """What /proc says before Landlock hides it: environment block, network interfaces."""
    block = _read_bytes("/proc/self/environ")
    return {"environ_block": [item.decode("utf-8", "replace")
                              for item in block.split(b"\0") if item],
            "interfaces": _net_interfaces(),
            "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
            "stdin": os.path.realpath("/proc/self/fd/0")}


def _probe_facts(before: dict, notes: list[str], config: EpisodeConfig,
                 namespace_tool: str) -> dict:
    """What a policy process looks like from inside (tests, diagnostics, the isolation report)."""
    import ctypes
    limits = {name: list(resource.getrlimit(getattr(resource, name)))
              for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                           "RLIMIT_CORE", "RLIMIT_NPROC")}
    libc = ctypes.CDLL(None)
    seccomp_mode = libc.prctl(21, 0, 0, 0, 0)          # PR_GET_SECCOMP
    no_new_privs = libc.prctl(39, 0, 0, 0, 0)          # PR_GET_NO_NEW_PRIVS
    layers = dict(APPLIED)
    if layers.get("seccomp", {}).get("active") and seccomp_mode != 2:
        layers["seccomp"] = {"active": False, "detail": f"seccomp mode is {seccomp_mode}"}
    at_exec = sorted(item.split("=", 1)[0] for item in before["environ_block"])
    layers["environment"] = {       # PWD: bubblewrap's --chdir sets it
        "active": dict(os.environ) == WORKER_ENV and
        [name for name in at_exec if name != "PWD"] == sorted(WORKER_ENV),
        "detail": f"{len(before['environ_block'])} variables since exec: "
                  + ", ".join(sorted(item.split("=", 1)[0] for item in before["environ_block"]))}
    interfaces = before["interfaces"]
    isolated_net = interfaces in (["lo"], [])
    if namespace_tool:
        net = ("network shared for the renderer" if config.render else
               "network: " + (", ".join(interfaces) or "no") + " interface only"
               if isolated_net else "network NOT isolated")
        layers["namespaces"] = {
            "active": isolated_net or config.render,
            "detail": f"{namespace_tool}: PID (this process is pid {os.getpid()}), IPC, UTS, "
                      f"mount; {net}"}
    else:
        layers["namespaces"] = {"active": False, "detail": "none: the policy process shares "
                                "the machine's network and process table"}
    return {"env": dict(os.environ), "environ_block": before["environ_block"], "fds": before["fds"],
            "stdin": before["stdin"],
            "session_leader": os.getsid(0) == os.getpid(), "uid": os.getuid(),
            "limits": limits, "notes": notes, "threads": threading.active_count(),
            "seccomp_mode": seccomp_mode, "no_new_privs": no_new_privs,
            "interfaces": interfaces, "layers": layers}


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _proc_status() -> dict:
    status = {}
    for line in _read_bytes("/proc/self/status").decode("ascii", "replace").splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return status


def _net_interfaces() -> list[str]:
    lines = _read_bytes("/proc/net/dev").decode("ascii", "replace").splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines if ":" in line)


# ============================================================================================
# Parent side
# ============================================================================================

def _request(mode: str, source: str, config: EpisodeConfig, seed: int,
             code: bytes | None = None) -> bytes:
    from dataclasses import asdict
    return json.dumps({"mode": mode, "source": source, "config": asdict(config), "seed": seed,
                       "code": base64.b64encode(code).decode("ascii") if code else None,
                       "grant_real_modules": bool(GRANT_REAL_MODULES_FOR_TESTS),
                       "namespace_tool": _host(config).namespace_tool}).encode("utf-8",
                                                                             "surrogatepass")


def _host(config: EpisodeConfig):
    from bgen.runner import zygote
    return zygote.host(bool(config.render))


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass                     # the child died before reading: its exit is reported
    finally:
        os.close(fd)


def _world_files(config: EpisodeConfig, seed: int) -> list[int]:
    """Read-only descriptors of the episode's stored world files: coords, bits and, when it
    can be opened, dense (without it the dense copy is built from the arrays); [] when the
    world is not stored (then the episode builds it)."""
    from bgen.sim import load_backend, worldcache
    try:
        paths = worldcache.stored_paths(load_backend(config.backend), config.scenario, seed,
                                        config.world_cache_dir)
    except Exception:  # noqa: BLE001 - the episode builds its world instead
        return []
    fds: list[int] = []
    try:
        for index, path in enumerate(paths or ()):
            try:
                fds.append(_open_regular(path))
            except OSError:
                if index < 2:          # coords and bits are the world; dense is optional
                    raise
    except OSError:
        for fd in fds:
            os.close(fd)
        return []
    return fds


def _open_regular(path) -> int:
    """A read-only descriptor of ``path``; OSError unless it is a regular file (a directory
    or a FIFO in the cache is nothing to hand a policy process)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return fd


#: Code objects of checked policies (``check_policy``): digest of the source -> marshal bytes.
_COMPILED: "OrderedDict[str, bytes]" = OrderedDict()
_COMPILED_LOCK = threading.Lock()
COMPILED_KEPT = 8
#: Largest marshalled code a check may hand back; a bigger one is not kept (constant folding
#: can make a 100,000-character source compile to tens of MB) and each episode compiles.
MAX_CODE_BYTES = 1024 * 1024


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def compiled(source: str) -> bytes | None:
    """The marshalled code object of ``source`` as the policy process that checked it compiled
    it (``check_policy``), or None (never checked here, or too big to keep).

    ``run_episodes`` sends it with each episode, so policy processes skip validating and
    compiling the source again (~12 ms an episode for an 80-line policy). This process never
    compiles or unmarshals policy code: compiling untrusted text can take seconds and
    gigabytes (constant folding), which a policy process meets under its own limits."""
    key = _digest(source)
    with _COMPILED_LOCK:
        code = _COMPILED.get(key)
        if code is not None:
            _COMPILED.move_to_end(key)
        return code


def forget_compiled() -> None:
    """Drop every kept code object (the loop benchmark starts a pass from nothing)."""
    with _COMPILED_LOCK:
        _COMPILED.clear()


def _remember_code(source: str, text) -> None:
    """Keep the base64 marshal a check sent for ``source`` (bounded; anything else dropped)."""
    if not isinstance(text, str) or len(text) > (MAX_CODE_BYTES * 4) // 3 + 4:
        return
    try:
        code = base64.b64decode(text, validate=True)
    except ValueError:
        return
    key = _digest(source)
    with _COMPILED_LOCK:
        _COMPILED[key] = code
        _COMPILED.move_to_end(key)
        while len(_COMPILED) > COMPILED_KEPT:
            _COMPILED.popitem(last=False)


def _code_of(request: dict):
    """The code object the policy's check compiled, sent with this request, or None."""
    text = request.get("code")
    if not isinstance(text, str):
        return None
    try:
        code = marshal.loads(base64.b64decode(text, validate=True))
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def _start(mode: str, source: str, config: EpisodeConfig, seed: int, code: bytes | None = None):
    """Fork a policy process from the sandbox host; returns (child handle, result connection)."""
    from bgen.runner.zygote import HostError
    request = _request(mode, source, config, seed, code)
    world_fds = _world_files(config, seed) if mode == "episode" else []
    world = (config.backend, config.scenario, seed) if world_fds else None
    try:
        try:
            child, request_fd, result_fd = _host(config).spawn(tuple(world_fds), world)
        except HostError:
            # one restart
            child, request_fd, result_fd = _host(config).spawn(tuple(world_fds), world)
    finally:
        for fd in world_fds:
            os.close(fd)
    if len(request) <= 60_000:
        _write_all(request_fd, request)
    else:
        threading.Thread(target=_write_all, args=(request_fd, request), daemon=True).start()
    return child, multiprocessing.connection.Connection(result_fd, writable=False)


def signal_name(exitcode: int) -> str:
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


class StepThinner:
    """Keeps at most ``hz`` step events per second per episode; holds back the newest one."""

    def __init__(self, hz: float, clock=time.monotonic):
        self.period = 1.0 / hz if hz > 0 else 0.0
        self.clock = clock
        self.last_sent = float("-inf")
        self.held: dict | None = None

    def offer(self, event: dict) -> dict | None:
        """The event to send now, or None (it is held until the next period or flush)."""
        now = self.clock()
        if now - self.last_sent >= self.period:
            self.last_sent, self.held = now, None
            return event
        self.held = event
        return None

    def flush(self) -> dict | None:
        held, self.held = self.held, None
        return held


def episode_byte_limit(config: EpisodeConfig) -> int:
    """Most bytes one episode's policy process may send (step records, events): 16 MiB plus
    4 KiB a step, or ``config.max_record_bytes`` when that is smaller."""
    limit = EPISODE_BYTES_BASE + EPISODE_BYTES_PER_STEP * config.max_steps
    return limit if config.max_record_bytes is None else min(limit, config.max_record_bytes)


class _Episode:
    """Parent-side state of one running worker."""

    def __init__(self, seed: int, process, conn, ep_dir: Path, config: EpisodeConfig,
                 step_event_hz: float | None = None):
        self.seed = seed
        # step events for on_event: every one, or at most step_event_hz a second
        self.thinner = StepThinner(step_event_hz) if step_event_hz else None
        self.process = process              # the worker; its pid is also its session id
        self.conn = conn                    # read end of the worker's pipe (JSON bytes only)
        self.ep_dir = ep_dir
        self.started = time.monotonic()
        self.ran_s = 0.0                    # its lifetime by this clock, once it has exited
        self.last_heard = self.started
        self.phase = "starting"
        self.tail: deque[bytes] = deque(maxlen=config.trace_steps)
        self.stats = EpisodeStats()
        self.warnings: list[str] = []
        self.result: dict | None = None     # the worker's "summary" event
        self.fatal: dict | None = None      # the worker's "fatal" event
        self.killed: tuple[str, str] | None = None   # (reason, note) when the parent killed it
        self.kill_sent: float | None = None  # when the first kill was sent (monotonic)
        self.eof = False
        self.step_count = 0                 # step records received (and written)
        self.summary: dict | None = None    # once the worker is gone: its ungraded summary,
        self.error: dict | None = None      # its error with traceback,
        self.output = ""                    # and the policy's printed output
        self.max_steps = config.max_steps
        self.config_record_bytes = config.max_record_bytes
        self.bytes_received = 0
        self.byte_limit = episode_byte_limit(config)
        self.warnings_dropped = 0
        ep_dir.mkdir(parents=True, exist_ok=True)
        self.steps_path = ep_dir / f"steps.{seed}.jsonl"   # what the grader replays
        self.steps_file = open(self.steps_path, "wb")

    def kill(self, reason: str, note: str) -> None:
        if self.killed is None and self.result is None:
            self.killed = (reason, note)
        if self.kill_sent is None:
            self.kill_sent = time.monotonic()
        self.process.kill()


def _read_messages(run: _Episode, emit: Callable[[dict], None] | None,
                   step_events: bool = True) -> None:
    """Drain what the worker sent; a broken or oversized message kills it (crashed)."""
    while not run.eof:
        try:
            if not run.conn.poll():
                return
            data = run.conn.recv_bytes(MAX_MESSAGE_BYTES)
        except (EOFError, ConnectionResetError):
            run.eof = True
            return
        except OSError as error:
            run.eof = True
            if error.errno is None and "end of file" in str(error):
                return      # cut off by the worker's end (killed mid-write): its exit status says why
            run.kill("crashed", f"the worker sent an unreadable message ({error}; the limit "
                                f"is {MAX_MESSAGE_BYTES} bytes)")
            return
        run.bytes_received += len(data)
        if run.bytes_received > run.byte_limit:
            run.eof = True
            share = " (its share of the run's disk budget)" \
                if run.byte_limit == run.config_record_bytes else ""
            run.kill("crashed", f"the worker sent more than {run.byte_limit} bytes for "
                                f"{run.max_steps} steps{share}")
            return
        try:
            _handle(run, data, emit, step_events)
        except Exception as error:      # noqa: BLE001 - anything a compromised worker can cause
            run.eof = True
            run.kill("crashed", f"the worker sent a malformed message "
                                f"({type(error).__name__}: {str(error)[:200]})")
            return


def _handle(run: _Episode, data: bytes, emit, step_events: bool = True) -> None:
    kind, body = data[:1], data[1:]
    if kind == b"S":
        run.last_heard = time.monotonic()       # steps are progress; warnings alone are not
        header, _, lines = body.partition(b"\n")
        run.stats = EpisodeStats.from_dict(json.loads(header, parse_constant=_no_constant))
        if not lines:
            return
        batch = lines.split(b"\n")
        longest = max(map(len, batch))
        if longest > MAX_STEP_LINE_BYTES:
            raise ValueError(f"a step record of {longest} bytes exceeds limit of "
                             f"{MAX_STEP_LINE_BYTES}")
        if run.step_count + len(batch) > run.max_steps:
            raise ValueError(f"more than max_steps={run.max_steps} steps")
        steps, clean = load_steps(batch, lines)
        run.step_count += len(batch)
        run.steps_file.write(b"\n".join(clean) + b"\n")
        run.tail.extend(clean[-run.tail.maxlen:])
        if emit is not None and step_events:
            _emit_steps(run, steps, emit)
        return
    if kind != b"E":
        raise ValueError(f"unknown message kind {kind!r}")
    event = json.loads(body, parse_constant=_no_constant)
    what = event["kind"]
    if what != "warning":
        run.last_heard = time.monotonic()
    if what == "phase":
        run.phase = str(event["phase"])
    elif what == "warning":
        if len(run.warnings) >= MAX_WARNINGS:
            run.warnings_dropped += 1
            return
        message = _finite(str(event["message"]))[:2000]
        run.warnings.append(message)
        if emit is not None:
            emit({"type": "warning", "seed": run.seed, "message": message})
    elif what == "summary":
        run.result = event
    elif what == "fatal":
        run.fatal = event
    else:
        raise ValueError(f"unknown event {what!r}")


def _no_constant(name: str) -> None:
    """json.loads hook: NaN and ±Infinity from a worker become null (JSON has no such values)."""
    return None


class _NonFinite(ValueError):
    """A step line holds NaN or ±Infinity (JSON has no such values)."""


def _refuse_constant(name: str):
    raise _NonFinite(name)


#: Decodes one step line: the whole line must be one JSON value; NaN and ±Infinity raise.
_STEP_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def load_steps(batch: list[bytes], joined: bytes) -> tuple[list[dict], list[bytes]]:
    """(steps, lines) of one batch of step records (``joined`` is ``b"\\n".join(batch)``).

    The batch is decoded as UTF-8 once and each line as exactly one JSON object (a line that
    is not, or invalid UTF-8, is a ValueError); the lines are kept as they came unless one
    holds NaN, ±Infinity or maybe a lone surrogate: then each is rewritten by ``load_step``.
    """
    text = joined.decode("utf-8")
    try:
        if "\\ud" in text or "\\uD" in text:
            raise _NonFinite("a surrogate escape")
        steps = [_STEP_DECODER.decode(line) for line in text.split("\n")]
    except _NonFinite:
        pairs = [load_step(line) for line in batch]
        return [step for step, _ in pairs], [line for _, line in pairs]
    if not all(type(step) is dict for step in steps):
        raise ValueError("a step log must be an object")
    return steps, batch


def _emit_steps(run: "_Episode", steps: list[dict], emit) -> None:
    """Step events for a batch: each one, or (thinned) its first when due, its newest held
    back for the end of the episode (so an episode's first and last steps always go out)."""
    if run.thinner is None:
        for step in steps:
            emit({"type": "step", "seed": run.seed, **step})
        return
    event = run.thinner.offer({"type": "step", "seed": run.seed, **steps[0]})
    if event is not None:
        emit(event)
    if len(steps) > 1:
        run.thinner.held = {"type": "step", "seed": run.seed, **steps[-1]}


def load_step(line: bytes) -> tuple[dict, bytes]:
    """(step, line) with NaN/Infinity replaced by null; ValueError when not a JSON object."""
    found = []
    step = json.loads(line.decode("utf-8"), parse_constant=lambda name: found.append(name))
    if not isinstance(step, dict):
        raise ValueError("a step log must be an object")
    if found or b"\\ud" in line.lower():     # a NaN, or maybe a lone surrogate
        step = _finite(step)
        line = json.dumps(step, separators=(",", ":")).encode()
    return step, line


def finite_json(value, **dump_args) -> str:
    """``json.dumps`` that writes null for NaN and ±Infinity instead of bare NaN/Infinity."""
    try:
        return json.dumps(value, allow_nan=False, **dump_args)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, **dump_args)


def _finite(value):
    """Plain JSON values: NaN/±Infinity → None, strings as valid UTF-8 (lone surrogates → ?)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_finite(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _check_deadlines(run: _Episode, config: EpisodeConfig, now: float) -> None:
    if run.result is not None or run.killed is not None:
        return
    if now - run.started > config.episode_deadline_s:
        run.kill("timeout", f"the episode ran past its wall-clock deadline of "
                            f"{config.episode_deadline_s} s")
    elif run.phase in ("load", "running") and \
            now - run.last_heard > config.act_budget_s + config.stall_grace_s:
        run.kill("timeout", f"a policy call ran past its budget of {config.act_budget_s} s "
                            f"and did not stop (the worker was killed after "
                            f"{now - run.last_heard:.1f} s without progress)")


def _partial_summary(run: _Episode, config: EpisodeConfig, reason: str, note: str) -> dict:
    stats = run.stats
    return EpisodeSummary(
        success=False, steps=stats.steps, collisions_total=stats.collisions_total,
        avg_command_len=stats.avg_command_len, path_len_est=stats.path_len, coverage=None,
        time_to_goal=None, reasons=note, policy_summary={}, seed=run.seed, reason=reason,
        error={"phase": "worker", "type": reason, "message": note, "lineno": None},
        sim_time_s=stats.steps * config.delta, wall_time_s=time.monotonic() - run.started,
        final_distance_to_target=stats.last_distance,
        min_distance_to_target=stats.min_distance).to_dict()


def _conclude(run: _Episode, config: EpisodeConfig) -> tuple[dict, dict | None, str]:
    """(summary, error with traceback or None, policy output) once the worker is gone."""
    if run.result is not None:
        try:
            summary = EpisodeSummary.from_dict(run.result.get("summary")).to_dict()
            summary["seed"] = run.seed
            error = run.result.get("error")
            output = run.result.get("output")
            return (_finite(summary), _finite(error) if isinstance(error, dict) else None,
                    _finite(output) if isinstance(output, str) else "")
        except ValueError as problem:
            note = f"the worker sent an invalid summary ({problem})"
            return _partial_summary(run, config, "crashed", note), None, ""
    if _never_started(run) and (run.killed is None or run.killed[0] != "terminated"):
        reason, note = "lost", ("the sandbox host exited twice before this episode's policy "
                                "process started; the policy never ran")
    elif run.killed is not None:
        reason, note = run.killed
    elif run.fatal is not None:
        reason = run.fatal.get("reason")
        reason = reason if reason in ("memory", "timeout", "terminated") else "crashed"
        note = str(run.fatal.get("message", ""))[:2000] or "the worker failed"
    else:
        code = run.process.exitcode
        if code is not None and code < 0:
            name = signal_name(code)
            reason = "timeout" if name in ("SIGXCPU",) else "crashed"
            note = f"worker killed by {name}"
        else:
            reason, note = "crashed", f"worker exited with status {code} without a result"
    return _partial_summary(run, config, reason, note), None, ""


def write_episode_files(ep_dir: Path, seed: int, summary: dict, error: dict | None,
                        output: str, tail: list[dict], warnings: list[str]) -> None:
    """summary.<seed>.json, summary.<seed>.txt and, for failed episodes, trace.<seed>.json."""
    (ep_dir / f"summary.{seed}.json").write_text(finite_json(summary, indent=2) + "\n")
    (ep_dir / f"summary.{seed}.txt").write_text(summary.get("policy_summary", {}).get("summary", ""))
    if summary["reason"] in FAILURE_REASONS or not summary["success"]:
        trace = {"seed": seed, "reason": summary["reason"], "reasons": summary.get("reasons"),
                 "error": error or summary.get("error"), "last_steps": tail,
                 "warnings": warnings, "policy_output": output}
        text = finite_json(trace, indent=2)
        if len(text) > 2 * TRACE_MAX_BYTES:     # long command lists: one line, not one per move
            text = finite_json(trace)
        (ep_dir / f"trace.{seed}.json").write_text(text + "\n")


#: Most bytes of step records a trace keeps (its newest steps): a few hundred ordinary steps,
#: a handful of steps that each gave dozens of long intents.
TRACE_MAX_BYTES = 1024 * 1024


def _decode_tail(lines, limit: int = TRACE_MAX_BYTES) -> list[dict]:
    """The newest step records of ``lines`` (JSON bytes) that fit in ``limit`` bytes, oldest
    first; a record that is not JSON is skipped."""
    kept, size = [], 0
    for line in reversed(list(lines)):
        size += len(line)
        if size > limit:
            break
        kept.append(line)
    steps = []
    for line in reversed(kept):
        try:
            steps.append(json.loads(line))
        except ValueError:
            pass
    return steps


def _abandon_host(run: _Episode) -> None:
    """The sandbox host did not carry out a kill (stopped or hung): end it and its children."""
    host = getattr(run.process, "host", None)
    if host is not None:
        host.abandon()


def _never_started(run: _Episode) -> bool:
    """Whether the episode's process never started: the sandbox host exited first."""
    return bool(getattr(run.process, "never_started", False)) and run.result is None \
        and run.step_count == 0


def _discard(run: _Episode) -> None:
    """Close what a process that never started left open (its episode starts again)."""
    run.steps_file.close()
    run.conn.close()
    run.process.close()


def _conclude_run(run: _Episode, config: EpisodeConfig) -> None:
    """Close the finished worker's pipe and handles; its summary waits for the grade."""
    run.ran_s = time.monotonic() - run.started
    run.steps_file.close()
    run.conn.close()
    run.process.close()
    run.summary, run.error, run.output = _conclude(run, config)
    # The host's measure (wait4), never the policy process's own word.
    run.summary["cpu_time_s"] = getattr(run.process, "cpu_s", None)


def _finish(run: _Episode, graded: dict, emit) -> dict:
    """Write the episode's files with its graded summary and emit ``episode_summary``."""
    summary = _finite(graded)
    warnings = run.warnings + ([f"{run.warnings_dropped} more warnings were dropped (at most "
                                f"{MAX_WARNINGS} are kept per episode)"]
                               if run.warnings_dropped else [])
    write_episode_files(run.ep_dir, run.seed, summary, run.error, run.output,
                        _decode_tail(run.tail), warnings)
    if emit is not None:
        held = run.thinner.flush() if run.thinner is not None else None
        if held is not None:
            emit(held)                # the episode's last step always reaches the caller
        emit({"type": "episode_summary", **summary})
    return summary


def _not_started(seed: int, outdir: Path, emit) -> dict:
    note = "stopped before the episode started"
    summary = EpisodeSummary(
        success=False, steps=0, collisions_total=0, avg_command_len=0.0, path_len_est=0.0,
        coverage=None, time_to_goal=None, reasons=note, policy_summary={}, seed=seed,
        reason="terminated").to_dict()
    ep_dir = outdir / f"ep_{seed}"
    ep_dir.mkdir(parents=True, exist_ok=True)
    (ep_dir / f"steps.{seed}.jsonl").write_bytes(b"")
    write_episode_files(ep_dir, seed, summary, None, "", [], [])
    if emit is not None:
        emit({"type": "episode_summary", **summary})
    return summary


def run_episodes(policy_code: str, seeds: list[int], config: EpisodeConfig, outdir: Path, *,
                 workers: int | None = None, on_event: Callable[[dict], None] | None = None,
                 stop_event: threading.Event | None = None,
                 step_events: bool = True, grader_processes: bool = True,
                 step_event_hz: float | None = None) -> list[dict]:
    """Run one episode per seed, each in a fresh worker, up to ``workers`` at a time.

    Writes ``outdir/ep_<seed>/`` files (see ``bgen.runner.schema``), calls ``on_event`` from
    this thread with ``step``, ``warning`` and ``episode_summary`` events, and returns the
    summaries in seed order. Setting ``stop_event`` kills the workers within a second; their
    episodes, and those not started, end with reason ``terminated``. ``step_events=False``
    skips decoding steps for ``on_event`` (they are still written to the files);
    ``step_event_hz`` passes at most that many step events a second per episode to it, the
    newest held back and always passed before the episode's summary (a server shows progress
    at a few Hz: each step event it is handed costs its threads time under the GIL).

    When ``check_policy`` checked this very source, the code object its policy process
    compiled is sent to every episode (``compiled``). Each finished episode is graded by the
    trusted replay in a grader process (``bgen.runner.grading``) while the next ones run;
    with a world cache directory, graders also build and store the worlds not stored yet, each
    before its episode starts (a policy process cannot write the cache).
    ``grader_processes=False`` grades in this thread instead (one episode: no pool worth
    starting).
    """
    if not isinstance(config, EpisodeConfig):
        raise ConfigError("config: expects an EpisodeConfig", field="config")
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expects distinct seeds, actual: {seeds}", field="seeds")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"workers: expects a positive integer, actual: {workers}",
                          field="workers")
    outdir = Path(outdir)
    code = compiled(policy_code) if isinstance(policy_code, str) else None
    pending = deque(seeds)
    respawned: set[int] = set()       # seeds started again after the host died under them
    active: list[_Episode] = []
    grades: dict = {}                 # grade future -> its episode, finished and concluded
    results: dict[int, dict] = {}
    wake_r, wake_w = os.pipe()        # a grade's done-callback makes the wait below return
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def wake(_future) -> None:
        try:
            os.write(wake_w, b"g")
        except OSError:
            pass                      # the pipe is full (a wake-up is pending) or closed

    submit = grading.submit if grader_processes else grading.inline
    worlds: dict = {}                 # seed -> future of its world being stored by a grader
    if grader_processes:
        grading.start(workers)
        for seed in seeds:
            future = grading.prepare_world(config, seed)
            if future is not None:
                worlds[seed] = future
                future.add_done_callback(wake)
    if worlds:
        _host(config)                 # starts while the graders build: both are needed first
    worlds_due = time.monotonic() + WORLD_WAIT_S
    try:
        while pending or active or grades:
            stopping = stop_event is not None and stop_event.is_set()
            while len(active) < workers and not stopping:
                seed = _next_ready(pending, worlds, time.monotonic() >= worlds_due)
                if seed is None:
                    break
                pending.remove(seed)
                process, conn = _start("episode", policy_code, config, seed, code)
                active.append(_Episode(seed, process, conn, outdir / f"ep_{seed}", config,
                                       step_event_hz))
            if stopping:
                while pending:
                    seed = pending.popleft()
                    results[seed] = _not_started(seed, outdir, on_event)
            waitables = [run.conn for run in active if not run.eof]
            waitables += [run.process.sentinel for run in active]
            multiprocessing.connection.wait(waitables + [wake_r], timeout=POLL_S)
            _drain(wake_r)
            now = time.monotonic()
            for run in list(active):
                _read_messages(run, on_event, step_events)
                if stopping:
                    run.kill("terminated", "stopped from outside")
                else:
                    _check_deadlines(run, config, now)
                if run.process.exitcode is None and run.kill_sent is not None:
                    run.process.join(1.0)
                    if run.process.exitcode is None and \
                            time.monotonic() - run.kill_sent > HOST_KILL_GRACE_S:
                        _abandon_host(run)
                if run.process.exitcode is not None:
                    _read_messages(run, on_event, step_events)   # sent before it exited
                    active.remove(run)
                    if _never_started(run) and run.seed not in respawned:
                        respawned.add(run.seed)  # the host died: once more, on a new host
                        _discard(run)
                        pending.appendleft(run.seed)
                        continue
                    _conclude_run(run, config)
                    future = submit(run.summary, run.steps_path, config, run.seed, run.ran_s)
                    grades[future] = run
                    future.add_done_callback(wake)
            for future in [f for f in grades if f.done()]:
                run = grades.pop(future)
                graded = grading.result_or_inline(future, run.summary, run.steps_path, config,
                                                  run.seed, run.ran_s)
                results[run.seed] = _finish(run, graded, on_event)
    finally:
        for run in active:           # an exception above (e.g. in on_event): leave no worker
            run.kill("terminated", "the runner stopped")
            run.process.join(1.0)
            run.process.close()
            run.steps_file.close()
            run.conn.close()
        for future in grades:
            future.cancel()
        os.close(wake_r)
        os.close(wake_w)
    return [results[seed] for seed in seeds]


def prepare(config: EpisodeConfig, seeds: list[int], workers: int | None = None
            ) -> Callable[[float], bool]:
    """Start, without waiting, what the first ``run_episodes`` for ``seeds`` will need: the
    sandbox host, the graders, and the worlds the cache directory lacks.

    The iteration loop calls it as a run starts, so all of that happens while the task spec
    and the first policy are asked of the LLM, not after. Failures are left for
    ``run_episodes`` to meet (and report) itself. Returns ``ready(timeout_s)``: waits at most
    ``timeout_s`` for the host to be up and the worlds stored and handed to it; True when the
    host started and every world asked for was stored (the loop does not wait; the loop
    benchmark does, to time what a user waits for after the LLM answered).
    """
    workers = default_workers() if workers is None else int(workers)
    host_up = threading.Event()
    seeds = [int(seed) for seed in seeds]
    grading.start(workers)
    worlds = [grading.prepare_world(config, seed) for seed in seeds]

    def start_host():
        try:
            host = _host(config)
            host_up.set()
        except Exception:  # noqa: BLE001 - run_episodes starts it again and reports why not
            return
        for seed, future in zip(seeds, worlds):
            if future is not None:
                try:
                    future.result(PREPARE_WAIT_S)
                except Exception:  # noqa: BLE001 - not stored: its episode builds it
                    continue
            _keep_in_host(host, config, seed)

    starter = threading.Thread(target=start_host, daemon=True, name="bgen-prepare")
    starter.start()

    def ready(timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        starter.join(timeout_s)
        pending = [future for future in worlds if future is not None]
        done, not_done = futures_wait(pending, max(deadline - time.monotonic(), 0.0))
        stored = all(not future.cancelled() and future.exception() is None and future.result()
                     for future in done)
        return host_up.is_set() and not not_done and stored

    return ready


def _keep_in_host(host, config: EpisodeConfig, seed: int) -> None:
    """Hand the host the episode's stored world, so that its policy processes inherit it."""
    fds = _world_files(config, seed)
    try:
        if fds:
            host.keep_world((config.backend, config.scenario, seed), tuple(fds))
    finally:
        for fd in fds:
            os.close(fd)


def _next_ready(pending: deque, worlds: dict, overdue: bool) -> int | None:
    """The first pending seed whose world is not being stored by a grader (stored, failed,
    never asked for, or ``overdue``: waited long enough), or None."""
    for seed in pending:
        future = worlds.get(seed)
        if future is None or future.done() or overdue:
            return seed
    return None


def _drain(fd: int) -> None:
    """Read what is waiting in a non-blocking wake-up pipe."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def run_sandboxed_episode(policy_code: str, config: EpisodeConfig, seed: int, *,
                          on_event: Callable[[dict], None] | None = None,
                          stop_event: threading.Event | None = None) -> tuple[dict, list[dict]]:
    """Run ONE episode in a sandboxed policy process: (graded summary, step records).

    The unit a remote executor calls: the same process model, layers and trusted replay as
    ``run_episodes``, nothing left on disk. ``summary`` is what ``summary.<seed>.json`` would
    hold; ``steps`` the StepLog dicts in order (NaN-free, valid UTF-8).
    """
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bgen-episode-") as tmp:
        [summary] = run_episodes(policy_code, [int(seed)], config, Path(tmp), workers=1,
                                 on_event=on_event, stop_event=stop_event,
                                 step_events=on_event is not None, grader_processes=False)
        path = Path(tmp) / f"ep_{int(seed)}" / f"steps.{int(seed)}.jsonl"
        steps = [json.loads(line) for line in path.read_bytes().splitlines() if line]
    return summary, steps


def _one_shot(mode: str, source: str, config: EpisodeConfig, timeout_s: float) -> dict:
    """Run a short-lived child that sends one answer event; returns it (or a "fatal" event)."""
    process, conn = _start(mode, source, config, 0)
    deadline = time.monotonic() + timeout_s
    answer: dict | None = None
    try:
        while answer is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"kind": "fatal", "reason": "timeout",
                        "message": f"no answer within {timeout_s} s"}
            if not conn.poll(min(remaining, POLL_S)):
                if process.exitcode is not None and not conn.poll():
                    code = process.exitcode
                    message = f"worker killed by {signal_name(code)}" if code < 0 else \
                        f"worker exited with status {code}"
                    return {"kind": "fatal", "reason": "crashed", "message": message}
                continue
            try:
                data = conn.recv_bytes(MAX_MESSAGE_BYTES)
            except (EOFError, OSError) as error:
                process.join(1.0)
                code = process.exitcode
                if code is not None and code < 0:
                    return {"kind": "fatal", "reason": "crashed",
                            "message": f"worker killed by {signal_name(code)}"}
                return {"kind": "fatal", "reason": "crashed", "message": f"pipe: {error}"}
            if data[:1] == b"E":
                event = json.loads(data[1:])
                if event.get("kind") not in ("phase", "warning"):
                    answer = event
        return answer
    finally:
        process.kill()
        process.join(1.0)
        process.close()
        conn.close()


def check_policy(policy_code: str, backend: str = "auto", timeout_s: float = 10.0,
                 *, config: EpisodeConfig | None = None) -> None:
    """Load the policy in a short-lived worker (same limits as an episode); raise if it fails.

    The code object that worker compiled is kept (``compiled``) for ``run_episodes`` of the
    same source. Raises ``PolicyLoadError`` with the sandbox's message and line when the source
    does not validate, its module body fails or runs past the budget, or the contract is broken.
    """
    config = config or EpisodeConfig(backend=backend, act_budget_s=min(timeout_s, 5.0))
    answer = _one_shot("check", policy_code, config, timeout_s)
    kind = answer.get("kind")
    if kind == "checked":
        if isinstance(policy_code, str):
            _remember_code(policy_code, answer.get("code"))
        return
    if kind == "load_error":
        lineno = answer.get("lineno")
        raise PolicyLoadError(str(answer.get("message")),
                              lineno=lineno if isinstance(lineno, int) else None,
                              rule=answer.get("rule") if isinstance(answer.get("rule"), str) else None)
    reason = answer.get("reason")
    if reason == "memory":
        raise PolicyLoadError("loading the policy ran out of memory "
                              f"(limit {config.memory_limit_mb} MB)", rule="memory")
    if reason == "timeout":
        raise PolicyLoadError(f"loading the policy did not finish within {timeout_s} s",
                              rule="timeout")
    raise PolicyLoadError(f"loading the policy crashed the worker: {answer.get('message')}",
                          rule="crashed")


def probe_worker(config: EpisodeConfig | None = None, timeout_s: float = 10.0) -> dict:
    """Start a worker that reports its environment, descriptors, session and limits."""
    answer = _one_shot("probe", "", config or EpisodeConfig(), timeout_s)
    if answer.get("kind") != "probe":
        raise BgenError(f"probe failed: {answer}")
    return answer
