"""The sandbox host: an exec'd process that forks one policy process per episode.

    caller (trusted; may hold keys)              sandbox host (python -m bgen.runner.zygote)
    ───────────────────────────────              ──────────────────────────────────────────
    HostClient.spawn ──(control socket)──► "spawn" + 2 pipe fds ──► fork ─► policy process
                                           (+ the world's files, kept
                                            mapped here for later forks)
    HostClient.keep_world ───────────────► "keep" + a world's files (a run's worlds, mapped
                                           before its first episode)
      writes the request (JSON) ────────── request pipe ──────────────────► reads it once
      reads results (JSON) ◄────────────── result pipe ◄──────────────────── episode events
      ◄── "started" / "exited" ─────────── control socket ◄── wait4: status, CPU time
      "kill" ─────────────────────────────► killpg(child)

Why this shape:
* The host is started with ``subprocess`` and ``env=HOST_ENV`` — an environment that never
  held a key — inside the namespaces ``isolation.host_command`` sets up (bubblewrap or
  unshare). Its memory, and so every policy process's, has no secret to find: not in
  ``os.environ``, not in the initial environment block on the stack, not in /proc/self/environ.
* Starting a Python with numpy and the simulator costs ~0.3 s, an episode needs a few ms to
  start: the host imports everything once and forks a child per episode (the child is a copy
  of that clean state; nothing a policy changes survives into the next episode).
* Everything crossing a pipe is JSON; the host never runs policy code and the caller never
  unpickles anything.
* One host per process and per ``render`` flag (rendering needs the host's network), started
  on first use and restarted when it died.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections import deque

#: Scheduling niceness of the host and so of every policy process: on a machine whose cores
#: the episodes fill, the trusted side (the server answering HTTP, the caller draining pipes)
#: runs first. 5 leaves a policy about a third of a core against a busy trusted process, so the
#: per-call budget still measures the policy, not the scheduler.
POLICY_NICENESS = 5

#: Largest control message (bytes); control messages are tiny JSON objects.
CONTROL_BYTES = 4096
#: Descriptors a spawn carries: the request and result pipes, then the episode's world files
#: (coords, bits, dense), opened read-only by the caller: a policy process cannot open the
#: world cache directory itself (it is outside its mount view and Landlock rules).
MAX_SPAWN_FDS = 5


# ============================================================================================
# Host side (runs in the exec'd process)
# ============================================================================================

def _host_main(control_fd: int) -> None:
    """Preload, then serve spawn/kill requests until the control socket closes."""
    os.environ.pop("PWD", None)       # bubblewrap sets it with --chdir
    os.nice(POLICY_NICENESS)           # every policy process inherits it
    from bgen.runner import worker    # numpy, the simulator, the sandbox, libseccomp
    worker.preload_for_host()
    control = socket.socket(fileno=control_fd)
    children: dict[int, int] = {}      # pid -> request id
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gc
    gc.collect()
    gc.freeze()                        # children do not copy these pages on collection
    _send(control, {"op": "ready", "pid": os.getpid()})
    import select
    while True:
        readable, _, _ = select.select([control, wake_r], [], [], 1.0)
        if wake_r in readable:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        _reap(control, children)
        if control not in readable:
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, CONTROL_BYTES, MAX_SPAWN_FDS)
        except OSError:
            break
        if not data:
            break
        try:
            message = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        if message.get("op") == "spawn" and len(fds) >= 2:
            _keep_world(message.get("world"), fds[2:])
            pid = os.fork()
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                control.close()
                worker.child_main(fds[0], fds[1], tuple(fds[2:]))   # never returns
                os._exit(70)
            for fd in fds:
                os.close(fd)
            children[pid] = message["id"]
            _send(control, {"op": "started", "id": message["id"], "pid": pid})
        elif message.get("op") == "keep":
            _keep_world(message.get("world"), fds)
            for fd in fds:
                os.close(fd)
        elif message.get("op") == "kill":
            for pid, ident in children.items():
                if ident == message.get("id"):
                    for kill in (os.killpg, os.kill):
                        try:
                            kill(pid, signal.SIGKILL)
                        except (ProcessLookupError, PermissionError):
                            pass
        else:
            for fd in fds:
                os.close(fd)
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    os._exit(0)


def _keep_world(world, fds) -> None:
    """Keep the world ``[backend, scenario, seed]`` mapped from its files ``fds`` (coords,
    bits, dense) in this process's world cache, with its planner obstacles, once per world:
    every child forked later inherits both (copy-on-write) instead of mapping and checking
    the files and building the obstacles itself (~5 + 8 ms of each episode). Anything wrong
    is left for the child, which then maps the files.

    The files are the cache's: written once and renamed into place, never changed. Should
    one be truncated in place all the same (the mapped pages past its end would fault), the
    world is mapped again from the files handed over: each keep compares their device, inode
    and size with those it mapped. (Not their modification time: the cache sets it on every
    read, to evict the least recently used files. A change in place that keeps the size
    shows through the shared mapping, as it would to a process mapping the file anew.)"""
    if not (isinstance(world, list) and len(world) == 3 and len(fds) in (2, 3)):
        return
    from bgen.sim import backend_label, load_backend, worldcache
    try:
        vxs, scenario, seed = load_backend(world[0]), world[1], int(world[2])
        stamp = _file_stamp(fds)
        key = worldcache.world_key(scenario, seed, backend_label(vxs))
        if worldcache.holds(vxs, scenario, seed, touch=True):
            if _STAMPS.get(key) == stamp:
                return
            worldcache.forget(vxs, scenario, seed)
        # Room is made only from worlds idle for KEEP_IDLE_S: evicting one still in use
        # would only have its next episode map it here again. A world that does not fit
        # is left to its policy processes.
        if not worldcache.make_room(KEEP_ROOM_FACTOR * sum(info[2] for info in stamp),
                                    KEEP_IDLE_S):
            return
        if worldcache.adopt_descriptors(vxs, scenario, seed, fds, evict=False):
            _STAMPS[key] = stamp
            worldcache.prepare_planner(vxs, scenario, seed, evict=False)
            if not worldcache.make_room(0, KEEP_IDLE_S):   # bigger than its files said
                worldcache.forget(vxs, scenario, seed)
        held = worldcache.kept_keys()
        for gone in [name for name in _STAMPS if name not in held]:
            del _STAMPS[gone]
    except Exception:  # noqa: BLE001 - the child maps the files itself
        pass


_STAMPS: dict[str, tuple] = {}       # world key -> its files when mapped
#: Room a world needs in the host's budget, as a multiple of its files' size (the dense copy
#: and the planner obstacles of two paddings come to about 1.4 times the files on terrain).
KEEP_ROOM_FACTOR = 1.5
#: A kept world not used by any episode for this long (s) may make room for another; one
#: used more recently never does (two runs or iterations a few LLM calls apart share it).
KEEP_IDLE_S = 120.0


def _file_stamp(fds) -> tuple:
    """(device, inode, size) of each open file."""
    stamps = []
    for fd in fds:
        info = os.fstat(fd)
        stamps.append((info.st_dev, info.st_ino, info.st_size))
    return tuple(stamps)


def _reap(control, children: dict[int, int]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ident = children.pop(pid, None)
        if ident is not None:
            _send(control, {"op": "exited", "id": ident,
                            "status": os.waitstatus_to_exitcode(status),
                            "cpu_s": usage.ru_utime + usage.ru_stime})


def _send(control, message: dict) -> None:
    control.sendall(json.dumps(message).encode())


# ============================================================================================
# Caller side
# ============================================================================================

def _seconds(value) -> float | None:
    """A non-negative finite number of seconds from the host, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.0 <= value < float("inf") else None


class HostError(Exception):
    """The sandbox host could not be started (the message says why)."""


class Child:
    """A policy process as the caller sees it: ``exitcode``, ``sentinel``, ``kill()``."""

    def __init__(self, host: "HostClient", ident: int):
        self.host = host
        self.ident = ident
        self.pid: int | None = None          # inside the host's PID namespace
        self.exitcode: int | None = None
        self.cpu_s: float | None = None       # user + system CPU time, once it has exited
        self.never_started = False            # the host exited before reporting it started
        self._done = threading.Event()
        self._fds_lock = threading.Lock()     # close() and _exited() race on the sentinel
        self._sentinel_r, self._sentinel_w = os.pipe()

    @property
    def sentinel(self) -> int:
        """A descriptor that becomes readable when the process has exited."""
        return self._sentinel_r

    def _exited(self, code: int) -> None:
        with self._fds_lock:
            if self.exitcode is None:
                self.exitcode = code
                if self._sentinel_w is not None:
                    os.close(self._sentinel_w)
                    self._sentinel_w = None
        self._done.set()

    def kill(self) -> None:
        if self.exitcode is None:
            self.host.kill(self.ident)

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def close(self) -> None:
        with self._fds_lock:
            for fd in (self._sentinel_r, self._sentinel_w):
                if fd is not None:
                    os.close(fd)
            self._sentinel_r = self._sentinel_w = None


class HostClient:
    """One running sandbox host and the children it forked for us."""

    def __init__(self, render: bool):
        from bgen.runner import isolation
        self.render = render
        self.lock = threading.Lock()
        self.children: dict[int, Child] = {}
        self.next_id = 1
        self.alive = True
        self.stderr_tail: deque[str] = deque(maxlen=20)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        root = isolation.package_root()
        env = dict(isolation.HOST_ENV, PYTHONPATH=root)
        python = [sys.executable, "-s", "-m", "bgen.runner.zygote", str(theirs.fileno())]
        argv, self.namespace_tool = isolation.host_command(python, render)
        self.home = _private_dir()
        try:
            self.process = _popen(argv, env, self.home, theirs.fileno())
        finally:
            theirs.close()
        ready = self._receive(timeout=60.0)
        if not ready or ready.get("op") != "ready":
            self.process.kill()
            self.process.wait()
            tail = self.process.stderr.read().decode("utf-8", "replace")[-2000:]
            raise HostError(f"the sandbox host did not start ({' '.join(argv[:3])} ...): "
                            f"{tail.strip() or 'no output'}")
        try:
            os.rmdir(self.home)          # the host keeps it as its cwd; nothing is left behind
        except OSError:
            pass
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        threading.Thread(target=self._read_control, daemon=True,
                         name="bgen-sandbox-host").start()

    def _receive(self, timeout: float) -> dict | None:
        self.control.settimeout(timeout)
        try:
            data = self.control.recv(CONTROL_BYTES)
        except OSError:
            return None
        finally:
            self.control.settimeout(None)
        return json.loads(data) if data else None

    def _drain_stderr(self) -> None:
        with self.process.stderr:
            for line in self.process.stderr:
                self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def _read_control(self) -> None:
        while True:
            try:
                data = self.control.recv(CONTROL_BYTES)
            except OSError:
                data = b""
            if not data:
                break
            try:
                message = json.loads(data)
            except ValueError:
                continue
            with self.lock:
                child = self.children.get(message.get("id"))
                if child is None:
                    continue
                if message.get("op") == "started":
                    child.pid = message.get("pid")
                elif message.get("op") == "exited":
                    self.children.pop(child.ident, None)
                    child.cpu_s = _seconds(message.get("cpu_s"))
                    try:
                        child._exited(int(message.get("status", -9)))
                    except (OSError, TypeError, ValueError):
                        child._exited(-signal.SIGKILL)
        with self.lock:
            self.alive = False
            for child in self.children.values():
                child.never_started = child.pid is None
                child._exited(-signal.SIGKILL)
            self.children.clear()
            self.control.close()       # spawn and keep_world check ``alive`` first
        try:
            self.process.wait(5)
        except Exception:  # noqa: BLE001 - the host is gone either way
            pass

    def spawn(self, extra_fds: tuple[int, ...] = (), world: tuple | None = None
              ) -> tuple[Child, int, int]:
        """A new child: (handle, request write fd, result read fd) for the caller to use.

        ``extra_fds`` (at most ``MAX_SPAWN_FDS - 2``) are handed to the child as well; the
        caller keeps and closes its own copies."""
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        with self.lock:
            if not self.alive:
                for fd in (req_r, req_w, res_r, res_w):
                    os.close(fd)
                raise HostError("the sandbox host exited")
            ident = self.next_id
            self.next_id += 1
            child = Child(self, ident)
            self.children[ident] = child
            try:
                socket.send_fds(self.control, [json.dumps({"op": "spawn", "id": ident,
                                                           "world": world}).encode()],
                                [req_r, res_w, *extra_fds[:MAX_SPAWN_FDS - 2]])
            except OSError as error:
                self.children.pop(ident, None)
                child.close()
                for fd in (req_r, req_w, res_r, res_w):
                    os.close(fd)
                raise HostError(f"the sandbox host does not answer ({error})") from None
        os.close(req_r)
        os.close(res_w)
        return child, req_w, res_r

    def keep_world(self, world: tuple, fds: tuple[int, ...]) -> None:
        """Have the host keep a stored world (``(backend, scenario, seed)`` and its files,
        read-only: coords, bits and, when present, dense) for every child forked after it;
        the caller closes its fds."""
        with self.lock:
            if not self.alive:
                return
            try:
                socket.send_fds(self.control, [json.dumps({"op": "keep",
                                                           "world": list(world)}).encode()],
                                list(fds[:MAX_SPAWN_FDS]))
            except OSError:
                pass                   # the host is gone: spawn reports it

    def abandon(self) -> None:
        """Kill the host and so every child of it: it stopped answering (a kill sent to a
        child of it had no effect). Its control socket then closes, the children count as
        exited, and the next ``host()`` starts a new one."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self, ident: int) -> None:
        try:
            self.control.sendall(json.dumps({"op": "kill", "id": ident}).encode())
        except OSError:
            pass

    def stop(self) -> None:
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.process.wait(5)
        except Exception:  # noqa: BLE001
            self.process.kill()


def _private_dir() -> str:
    import tempfile
    return tempfile.mkdtemp(prefix="bgen-sandbox-")


def _popen(argv, env, cwd, keep_fd):
    import subprocess
    return subprocess.Popen(argv, env=env, cwd=cwd, close_fds=True, pass_fds=(keep_fd,),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


_HOSTS: dict[bool, HostClient] = {}
_HOSTS_LOCK = threading.Lock()


class _Starter:
    """One long-lived thread that starts every sandbox host.

    bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that
    started it exits, so a host started from a short-lived thread (a server request, a run's
    worker thread) would die with it and take the other runs' episodes along.
    """

    def __init__(self):
        import queue
        self.requests: "queue.Queue" = queue.Queue()
        threading.Thread(target=self._serve, daemon=True, name="bgen-host-starter").start()

    def _serve(self):
        while True:
            render, answer = self.requests.get()
            try:
                answer.append(HostClient(render))
            except BaseException as error:  # noqa: B036 - handed to the caller
                answer.append(error)
            finally:
                answer.append(None)

    def start(self, render: bool) -> HostClient:
        answer: list = []
        self.requests.put((render, answer))
        while len(answer) < 2:
            time.sleep(0.005)
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return answer[0]


_STARTER: "_Starter | None" = None


def host(render: bool = False) -> HostClient:
    """The process's sandbox host for ``render``, started (or restarted) when needed."""
    global _STARTER
    with _HOSTS_LOCK:
        client = _HOSTS.get(render)
        if client is None or not client.alive:
            if _STARTER is None:
                _STARTER = _Starter()
            client = _STARTER.start(render)
            _HOSTS[render] = client
        return client


def stop_hosts() -> None:
    """Stop every sandbox host of this process (tests; a host also ends when we exit)."""
    with _HOSTS_LOCK:
        for client in _HOSTS.values():
            client.stop()
        _HOSTS.clear()


if __name__ == "__main__":
    _host_main(int(sys.argv[1]))
