"""Specification of the OS layers around policy processes and of trusted grading.

The sandbox (bgen.runner.sandbox) is assumed broken here: tests give a policy the real ``os``,
``sys``, ``ctypes``, ``socket`` and ``subprocess`` on purpose (``GRANT_REAL_MODULES_FOR_TESTS``)
and show that the operating-system layers (bgen.runner.isolation) and the replay of its
commands (bgen.runner.replay) still hold: no key in its memory or outputs, no network, no
file, no process, no success it did not fly.
"""

import contextlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
from dataclasses import replace
from pathlib import Path
from unittest import mock

from bgen.runner import isolation, run_policy, worker, zygote
from bgen.runner.episode import EpisodeConfig
from bgen.runner.worker import run_episodes
from tests.timing import scaled

ROOT = Path(__file__).parent.parent
POLICIES = Path(__file__).parent / "policies"
TIMEOUT_S = scaled(30.0)
CANARY_VAR = "BGEN_TEST_CANARY_KEY"
SKY = dict(backend="embedded", start=(50, 50, -60), target=(56, 56, -60), act_budget_s=2.0,
           stall_grace_s=2.0, memory_limit_mb=768, episode_deadline_s=TIMEOUT_S)


def config(**overrides) -> EpisodeConfig:
    return EpisodeConfig(**{**SKY, **overrides})


def all_layers_offered() -> str | None:
    """Why this machine cannot show every layer active (None when it can)."""
    if os.geteuid() != 0:
        return "not root"
    tool, why = isolation.namespace_tool()
    if tool is None:
        return f"no namespaces here ({why})"
    if isolation.landlock_abi() < 1:
        return "the kernel has no Landlock"
    if isolation.seccomp_version() is None:
        return "libseccomp is not installed"
    return None


def _parent(pid) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def sandbox_processes(root: int) -> list[int]:
    """Pids of the Python processes below ``root`` (our sandbox host and its children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"bgen.runner.zygote" not in argv or b"python" not in os.path.basename(argv[0]):
            continue
        pid = int(entry)
        while pid > 1 and pid != root:
            pid = _parent(pid)
        if pid == root:
            found.append(int(entry))
    return found


def memory_holds(pid: int, needle: bytes) -> tuple[bool, int]:
    """(found, bytes scanned): ``needle`` anywhere in the readable memory or environ of pid."""
    scanned = 0
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            block = f.read()
        if needle in block:
            return True, len(block)
        with open(f"/proc/{pid}/maps") as f:
            regions = f.read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        return False, scanned
    with mem:
        for region in regions:
            fields = region.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]",
                                                                          "[vsyscall]")):
                continue
            start, end = (int(v, 16) for v in fields[0].split("-"))
            tail = b""
            for offset in range(start, end, 1 << 20):
                try:
                    mem.seek(offset)
                    chunk = mem.read(min(1 << 20, end - offset))
                except (OSError, OverflowError, ValueError):
                    break
                scanned += len(chunk)
                if needle in tail + chunk:
                    return True, scanned
                tail = chunk[-len(needle):]
    return False, scanned


ESCAPE = '''
PORT = @PORT@
CANARY_PATH = "@CANARY_PATH@"
RESULTS = {}


def attempt(name, action):
    try:
        RESULTS[name] = "done: " + str(action())[:300]
    except Exception as error:
        RESULTS[name] = "refused: " + str(error)[:300]


def read(path):
    handle = real_open(path, "rb")
    data = handle.read()
    handle.close()
    return data


def connect():
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(1.0)
    client.connect(("127.0.0.1", PORT))
    return "connected"


def create():
    handle = real_open(CANARY_PATH, "w")
    handle.write("escaped")
    handle.close()
    return "created"


def spawn():
    return subprocess.run(["/bin/echo", "spawned"], capture_output=True).stdout


def fork():
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), 9)
    return pid


def native_fork():
    libc = ctypes.CDLL(None)
    pid = libc.syscall(57)
    if pid == 0:
        libc.syscall(60, 0)
    if pid < 0:
        raise RuntimeError("fork refused (errno " + str(ctypes.get_errno()) + ")")
    return pid


def kill_host():
    os.kill(1, 9)
    return "signalled"


def init(config):
    attempt("environ", lambda: sorted(os.environ))
    attempt("environ_block", lambda: read("/proc/self/environ"))
    attempt("passwd", lambda: read("/etc/passwd"))
    attempt("connect", connect)
    attempt("create", create)
    attempt("subprocess", spawn)
    attempt("fork", fork)
    attempt("native_fork", native_fork)
    attempt("kill_host", kill_host)


def act(t, agent, world, fw, env, helpers):
    if t >= 4.0:
        # Make the runner believe every check holds: patch its task-spec tracker.
        sys.modules["bgen.runner.taskspec"].FlightTracker.observe = lambda *args: True
    return None


def collect(step_ctx):
    return None


def finalize(ep_ctx):
    return RESULTS
'''

CREEP = '''
TARGET = [56.0, 56.0, -60.0]


def act(t, agent, world, fw, env, helpers):
    episode = sys.modules["bgen.runner.episode"]
    episode.check_not_moved = lambda *args: None
    episode.is_teleport = lambda *args: False
    real = [o for o in sys.modules["gc"].get_referents(agent)
            if hasattr(o, "set_pos") and hasattr(o, "get_coord_py")][0]
    pos = real.get_pos()
    gap = [TARGET[i] - pos[i] for i in range(3)]
    length = sum(g * g for g in gap) ** 0.5
    scale = min(1.0, 0.4 / length) if length > 0 else 0.0
    real.set_pos([pos[i] + gap[i] * scale for i in range(3)])
    return None


def collect(step_ctx):
    return None


def finalize(ep_ctx):
    return None
'''


class GrantedModules:
    """Context: policies loaded meanwhile get the real os, sys, ctypes, socket, subprocess."""

    def __enter__(self):
        worker.GRANT_REAL_MODULES_FOR_TESTS = True
        return self

    def __exit__(self, *exc):
        worker.GRANT_REAL_MODULES_FOR_TESTS = False
        return False


class IsolationReportTests(unittest.TestCase):
    """isolation_report() says which layers hold, as root and as an ordinary user."""

    def test_the_report_names_every_layer_with_active_and_detail(self):
        report = isolation.isolation_report()
        self.assertEqual([layer["name"] for layer in report["layers"]],
                         list(isolation.LAYER_NAMES))
        for layer in report["layers"]:
            with self.subTest(layer=layer["name"]):
                self.assertIsInstance(layer["active"], bool)
                self.assertTrue(layer["detail"])
        self.assertEqual(sorted(report["active"] + report["missing"]),
                         sorted(isolation.LAYER_NAMES))

    def test_as_root_on_this_machine_every_layer_is_active(self):
        why = all_layers_offered()
        if why:
            self.skipTest(f"this machine cannot show every layer: {why}")
        report = isolation.isolation_report()
        self.assertEqual(report["missing"], [], report)
        self.assertEqual(isolation.report_line(report),
                         "isolation: environment, namespaces, landlock, seccomp, rlimits, uid")

    def test_with_render_the_network_stays_and_the_rest_holds(self):
        why = all_layers_offered()
        if why:
            self.skipTest(f"this machine cannot show every layer: {why}")
        report = isolation.isolation_report(render=True)
        details = {layer["name"]: layer["detail"] for layer in report["layers"]}
        self.assertEqual(report["missing"], [])
        self.assertIn("network shared for the renderer", details["namespaces"])
        self.assertIn("sockets only AF_INET/AF_INET6 (rendering)", details["seccomp"])
        self.assertIn("TCP only to the renderer ports", details["landlock"])

    def test_a_non_root_run_reports_its_layers(self):
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
            self.skipTest("needs root, setpriv and unshare to start a run as nobody")
        # The interpreter (or, in a venv, its base) may live under /root (mode 700): a private
        # mount namespace shows those prefixes to nobody without changing the machine.
        hidden = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)
                         if os.path.realpath(p).startswith("/root/")})
        keep = "".join(f'k{i}=$(mktemp -d); mount --bind "{p}" "$k{i}"; '
                       for i, p in enumerate(hidden))
        back = "".join(f'mkdir -p "{p}"; mount --bind "$k{i}" "{p}"; ' for i, p in enumerate(hidden))
        script = ("set -e; " + keep + ("mount -t tmpfs -o mode=755 tmpfs /root; " if hidden else "")
                  + back + f'exec setpriv --reuid=65534 --regid=65534 --clear-groups '
                  f'--inh-caps=-all "{sys.executable}" -m bgen.runner.isolation --json')
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              cwd=ROOT, capture_output=True, timeout=TIMEOUT_S,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        self.assertEqual(done.returncode, 0, done.stderr.decode()[-2000:])
        report = json.loads(done.stdout)
        layers = {layer["name"]: layer for layer in report["layers"]}
        self.assertEqual(layers["uid"]["detail"], "uid 65534")
        for name in ("environment", "rlimits"):
            self.assertTrue(layers[name]["active"], layers[name])
        if isolation.landlock_abi() >= 1:
            self.assertTrue(layers["landlock"]["active"], layers["landlock"])
        if isolation.seccomp_version():
            self.assertTrue(layers["seccomp"]["active"], layers["seccomp"])

    def test_the_command_prints_one_line_then_each_layer(self):
        done = subprocess.run([sys.executable, "-m", "bgen.runner.isolation"], cwd=ROOT,
                              capture_output=True, timeout=TIMEOUT_S, text=True)
        lines = done.stdout.splitlines()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(lines[0].startswith("isolation: "), lines[0])
        self.assertEqual([line.split()[1] for line in lines[1:]], list(isolation.LAYER_NAMES))


class ArbitraryCodeTests(unittest.TestCase):
    """A policy with real modules in hand: nothing secret, no network, file or process."""

    @classmethod
    def setUpClass(cls):
        why = all_layers_offered()
        if why:
            raise unittest.SkipTest(f"the OS layers are not all available here: {why}")
        cls.canary = "canary-" + secrets.token_hex(16)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.canary_path = Path(cls.tmp.name) / "escaped.txt"
        cls.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.listener.bind(("127.0.0.1", 0))
        cls.listener.listen(4)
        cls.listener.setblocking(False)
        source = ESCAPE.replace("@PORT@", str(cls.listener.getsockname()[1])).replace(
            "@CANARY_PATH@", str(cls.canary_path))
        cls.scans: list[tuple[int, bool, int]] = []
        cls.children_seen: list[int] = []
        zygote.stop_hosts()                   # the host starts after the key is in our env
        os.environ[CANARY_VAR] = cls.canary
        cls.events = []

        def on_event(event):
            cls.events.append(event)
            if event["type"] == "step" and not cls.scans:
                pids = sandbox_processes(zygote.host(False).process.pid)
                cls.children_seen.append(len(pids))
                for pid in pids:
                    cls.scans.append((pid, *memory_holds(pid, cls.canary.encode())))

        try:
            with GrantedModules():
                cls.summaries = run_episodes(source, [0], config(max_steps=800),
                                             Path(cls.tmp.name) / "run", workers=1,
                                             on_event=on_event)
        finally:
            del os.environ[CANARY_VAR]
        cls.results = cls.summaries[0]["policy_summary"]

    @classmethod
    def tearDownClass(cls):
        cls.listener.close()
        cls.tmp.cleanup()

    def test_the_scan_would_find_the_key_where_it_is(self):
        os.environ[CANARY_VAR] = self.canary
        try:
            found, scanned = memory_holds(os.getpid(), self.canary.encode())
        finally:
            del os.environ[CANARY_VAR]
        self.assertTrue(found)
        self.assertGreater(scanned, 0)

    def test_no_key_in_the_memory_of_the_host_or_the_policy_process(self):
        self.assertGreaterEqual(len(self.scans), 2)     # the host and the policy process
        for pid, found, scanned in self.scans:
            with self.subTest(pid=pid):
                self.assertFalse(found)
                self.assertGreater(scanned, 1 << 20)

    def test_no_key_in_anything_the_episode_produced(self):
        files = [p.read_bytes() for p in (Path(self.tmp.name) / "run").rglob("*") if p.is_file()]
        self.assertTrue(files)
        for blob in files + [json.dumps(self.events).encode()]:
            self.assertNotIn(self.canary.encode(), blob)

    def test_every_attempt_was_refused(self):
        expected_words = {
            "environ_block": "Permission denied", "passwd": "Permission denied",
            "connect": "", "create": "", "subprocess": "", "fork": "",
            "native_fork": "fork refused", "kill_host": "Operation not permitted"}
        for name, words in expected_words.items():
            with self.subTest(attempt=name):
                self.assertTrue(self.results[name].startswith("refused: "), self.results[name])
                self.assertIn(words, self.results[name])
        self.assertNotIn(CANARY_VAR, self.results["environ"])

    def test_no_connection_reached_the_listener_and_no_file_was_created(self):
        with self.assertRaises(BlockingIOError):
            self.listener.accept()
        self.assertFalse(self.canary_path.exists())

    def test_no_process_was_started(self):
        self.assertEqual(self.children_seen, [2])         # the host and the policy process

    def test_patching_the_runner_to_report_success_is_tampered(self):
        [summary] = self.summaries
        self.assertFalse(summary["success"])
        self.assertEqual(summary["reason"], "tampered")
        self.assertEqual(summary["reasons"], "the episode reported success but the replay of "
                                             "its commands did not pass every check of the task")


class TamperTests(unittest.TestCase):
    """Moving the agent by any means but flying never earns success."""

    def test_creeping_with_the_real_agent_under_the_speed_bound_is_tampered(self):
        with tempfile.TemporaryDirectory() as tmp, GrantedModules():
            [summary] = run_episodes(CREEP, [0], config(max_steps=300), Path(tmp), workers=1)
        self.assertFalse(summary["success"])
        self.assertEqual(summary["reason"], "tampered")
        self.assertTrue(summary["reasons"].startswith("step 0: the reported position "),
                        summary["reasons"])
        self.assertIn("the agent was moved by something other than flying", summary["reasons"])

    def test_a_flown_episode_is_graded_by_the_replay_and_succeeds(self):
        with tempfile.TemporaryDirectory() as tmp:
            [summary] = run_episodes((POLICIES / "move_to_target.py").read_text(), [1],
                                     config(max_steps=1500), Path(tmp), workers=1)
            steps = [json.loads(line) for line in
                     (Path(tmp) / "ep_1" / "steps.1.jsonl").read_text().splitlines()]
        self.assertEqual(summary["reason"], "success")
        self.assertEqual(summary["steps"], len(steps))
        commanded = [step for step in steps if step["commands"]]
        self.assertEqual(commanded[0]["commands"][0]["mode"], "Replace")
        self.assertEqual(commanded[0]["commands"][0]["urgency"], 1.0)


class SandboxHostTests(unittest.TestCase):
    """One sandbox host per process serves checks, probes and episodes, whoever asks."""

    def test_the_host_outlives_the_thread_that_started_it(self):
        import threading
        import time
        zygote.stop_hosts()
        started = []
        thread = threading.Thread(target=lambda: started.append(zygote.host(False)))
        thread.start()
        thread.join(TIMEOUT_S)
        time.sleep(scaled(0.5))
        self.assertTrue(started[0].alive)
        self.assertIsNone(started[0].process.poll())
        self.assertIs(zygote.host(False), started[0])

    def test_checks_probes_and_episodes_reuse_one_host(self):
        from bgen.runner.worker import check_policy, probe_worker
        source = (POLICIES / "hover.py").read_text()
        first = zygote.host(False)
        check_policy(source, "embedded", TIMEOUT_S)
        probe_worker(config(), timeout_s=TIMEOUT_S)
        with tempfile.TemporaryDirectory() as tmp:
            run_episodes(source, [0, 1], config(max_steps=10), Path(tmp), workers=2)
        self.assertIs(zygote.host(False), first)
        self.assertIsNone(first.process.poll())


    def test_episodes_sent_to_a_host_that_dies_before_starting_them_start_again(self):
        import signal
        import threading
        source = (POLICIES / "hover.py").read_text()
        client = zygote.host(False)
        for pid in descendants(client.process.pid):          # the host under bubblewrap
            os.kill(pid, signal.SIGSTOP)                      # spawns wait in its socket
        killer = threading.Timer(scaled(1.0), os.killpg, (client.process.pid, signal.SIGKILL))
        killer.start()
        self.addCleanup(killer.cancel)
        with tempfile.TemporaryDirectory() as tmp:
            summaries = run_episodes(source, [0, 1], config(max_steps=10), Path(tmp),
                                     workers=2, step_events=False)
        self.assertEqual([s["reason"] for s in summaries], ["max_steps", "max_steps"],
                         summaries)
        self.assertIsNot(zygote.host(False), client)          # on a host started anew

    def test_a_host_that_stops_answering_is_killed_so_a_stop_still_lands(self):
        import signal
        import threading
        source = (POLICIES / "hover.py").read_text()
        client = zygote.host(False)
        stop = threading.Event()
        with tempfile.TemporaryDirectory() as tmp, \
                mock.patch.object(worker, "HOST_KILL_GRACE_S", scaled(1.0)):
            for pid in descendants(client.process.pid):
                os.kill(pid, signal.SIGSTOP)                  # frozen: kills do nothing
            threading.Timer(scaled(0.5), stop.set).start()
            summaries = run_episodes(source, [0, 1], config(max_steps=10), Path(tmp),
                                     workers=2, step_events=False, stop_event=stop)
        self.assertEqual([s["reason"] for s in summaries], ["terminated", "terminated"])
        self.assertFalse(client.alive)

    def test_an_episode_lost_twice_is_lost_even_past_its_deadline(self):
        from bgen.runner.metrics import EpisodeStats

        class Process:
            never_started, cpu_s, exitcode = True, None, -9

        run = mock.Mock(process=Process(), result=None, step_count=0, fatal=None, seed=3,
                        started=0.0, stats=EpisodeStats(),
                        killed=("timeout", "the episode ran past its wall-clock deadline"))
        summary, _, _ = worker._conclude(run, config())
        self.assertEqual(summary["reason"], "lost")
        self.assertIn("the policy never ran", summary["reasons"])
        run.killed = ("terminated", "stopped from outside")
        self.assertEqual(worker._conclude(run, config())[0]["reason"], "terminated")

    def test_only_regular_files_are_handed_over_and_the_dense_one_is_optional(self):
        from bgen.sim import load_backend, worldcache
        with tempfile.TemporaryDirectory() as tmp:
            stored = EpisodeConfig(backend="embedded", world_cache_dir=tmp)
            worldcache.world(load_backend("embedded"), "terrain", 29, tmp)
            paths = worldcache.stored_paths(load_backend("embedded"), "terrain", 29, tmp)
            fds = worker._world_files(stored, 29)
            self.assertEqual(len(fds), 3)
            for fd in fds:
                os.close(fd)
            paths[2].unlink()
            paths[2].mkdir()                                  # a directory in its place
            fds = worker._world_files(stored, 29)
            self.assertEqual(len(fds), 2)
            for fd in fds:
                os.close(fd)
            paths[1].unlink()
            paths[1].mkdir()
            self.assertEqual(worker._world_files(stored, 29), [])

    def test_a_world_bigger_than_its_files_said_is_not_kept_at_anothers_expense(self):
        from bgen.sim import load_backend, worldcache
        vxs = load_backend("embedded")
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)
        with tempfile.TemporaryDirectory() as tmp:
            for seed in (30, 31):
                worldcache.world(vxs, "terrain", seed, tmp)
            worldcache.clear_memory()

            def keep(seed, count):
                paths = worldcache.stored_paths(vxs, "terrain", seed, tmp)
                keep_in_this_process(["embedded", "terrain", seed], paths[:count])

            keep(30, 3)
            one = worldcache._memory_bytes
            files = sum(os.path.getsize(path) for path in
                        worldcache.stored_paths(vxs, "terrain", 31, tmp)[:2])
            # room for seed 31's two files by the estimate, not for its dense copy and
            # obstacles built from them
            with mock.patch.object(worldcache, "MEMORY_BUDGET_BYTES",
                                   one + int(zygote.KEEP_ROOM_FACTOR * files) + 1):
                keep(31, 2)
            self.assertTrue(worldcache.holds(vxs, "terrain", 30))
            self.assertFalse(worldcache.holds(vxs, "terrain", 31))
            self.assertEqual(worldcache._memory_bytes, one)

    def test_prepare_hands_the_host_a_runs_worlds_before_its_first_episode(self):
        from bgen.runner.worker import prepare
        from bgen.sim import load_backend, worldcache
        from tests.test_sim_worldcache import STATS_POLICY
        zygote.stop_hosts()            # a host of its own: the suite's worlds fill a shared one
        with tempfile.TemporaryDirectory() as tmp:
            stored = EpisodeConfig(max_steps=2, backend="embedded", world_cache_dir=tmp,
                                   start=(50, 50, -60), target=(56, 56, -60))
            self.assertTrue(prepare(stored, [23], workers=1)(TIMEOUT_S))
            # No files handed to this episode: only the host's memory can serve its world.
            with GrantedModules():
                [summary] = run_episodes(STATS_POLICY, [23], replace(stored, world_cache_dir=None),
                                         Path(tmp) / "out", workers=1, step_events=False)
            self.assertEqual(summary["reason"], "max_steps", summary)
            steps = (Path(tmp) / "out" / "ep_23" / "steps.23.jsonl").read_text().splitlines()
            served = json.loads(steps[-1])["policy_log"]["served"]
            self.assertIn("'built': 0", served)
        self.assertFalse(worldcache.holds(load_backend("embedded"), "terrain", 23))  # not here

    def test_a_policy_check_holds_none_of_the_hosts_worlds_under_its_limits(self):
        from bgen.errors import PolicyLoadError
        from bgen.runner.worker import check_policy, prepare
        with tempfile.TemporaryDirectory() as tmp:
            stored = EpisodeConfig(max_steps=2, backend="embedded", world_cache_dir=tmp)
            self.assertTrue(prepare(stored, [27], workers=1)(TIMEOUT_S))
            counting = (POLICIES / "hover.py").read_text() + (
                "\nraise ValueError('worlds held: ' + str(len(sys.modules['builtins'].getattr("
                "sys.modules['bgen.sim.worldcache'], '_memory'))))\n")
            with GrantedModules(), self.assertRaises(PolicyLoadError) as caught:
                check_policy(counting, "embedded", TIMEOUT_S)
            self.assertIn("worlds held: 0", str(caught.exception))

    def test_a_world_the_host_cannot_keep_is_left_to_the_child(self):
        from bgen.sim import load_backend, worldcache
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)
        with tempfile.TemporaryDirectory() as tmp:
            worldcache.world(load_backend("embedded"), "terrain", 24, tmp)
            paths = worldcache.stored_paths(load_backend("embedded"), "terrain", 24, tmp)
            worldcache.clear_memory()
            fds = [os.open(path, os.O_RDONLY) for path in paths]
            try:
                for world in ("junk", ["embedded", "moon", 24], ["embedded", "terrain", "x"],
                              ["embedded", "terrain"], None):
                    zygote._keep_world(world, fds)               # never raises
                zygote._keep_world(["embedded", "terrain", 24], fds[:1])
                self.assertFalse(worldcache.holds(load_backend("embedded"), "terrain", 24))
                with mock.patch.object(worldcache, "MEMORY_BUDGET_BYTES", 1_000_000):
                    zygote._keep_world(["embedded", "terrain", 24], fds)   # does not fit
                self.assertFalse(worldcache.holds(load_backend("embedded"), "terrain", 24))
                zygote._keep_world(["embedded", "terrain", 24], fds[:2])   # no dense file:
                self.assertTrue(worldcache.holds(load_backend("embedded"), "terrain", 24))
                grid = worldcache.world(load_backend("embedded"), "terrain", 24)
                self.assertIn(("astar-obstacles", 0), grid._dense().derived)  # built here
            finally:
                for fd in fds:
                    os.close(fd)

    def test_one_mapping_serves_a_world_whatever_its_seed_or_backend_name(self):
        from bgen.sim import load_backend, worldcache
        vxs = load_backend("embedded")
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)
        with tempfile.TemporaryDirectory() as tmp:
            worldcache.world(vxs, "wind_farm", 0, tmp)
            paths = worldcache.stored_paths(vxs, "wind_farm", 0, tmp)
            worldcache.clear_memory()
            for world in (["embedded", "wind_farm", 0], ["embedded", "wind_farm", 1],
                          ["auto", "wind_farm", 2]):        # the wind farm ignores its seed
                keep_in_this_process(world, paths)
            self.assertEqual(worldcache.stats()["file"], 1)

    def test_a_world_file_changed_in_place_is_mapped_again(self):
        from bgen.sim import load_backend, worldcache
        vxs = load_backend("embedded")
        worldcache.clear_memory()
        self.addCleanup(worldcache.clear_memory)
        with tempfile.TemporaryDirectory() as tmp:
            worldcache.world(vxs, "terrain", 26, tmp)
            paths = worldcache.stored_paths(vxs, "terrain", 26, tmp)
            worldcache.clear_memory()

            def keep():
                keep_in_this_process(["embedded", "terrain", 26], paths)

            keep()
            keep()                                   # the same files: kept, not mapped again
            os.utime(paths[0], ns=(1, 1))            # as the cache marks a file used
            keep()
            self.assertEqual(worldcache.stats()["file"], 1)
            with open(paths[2], "ab") as dense:      # the dense file changed in place
                dense.write(b"\0" * 8)
            keep()
            self.assertEqual(worldcache.stats()["file"], 2)
            self.assertTrue(worldcache.holds(vxs, "terrain", 26))

    def test_an_episodes_cpu_time_is_the_hosts_measure_not_the_policy_processs(self):
        class Process:
            cpu_s = 0.125

            def close(self):
                pass

        run = mock.Mock(process=Process(), started=0.0, killed=None, fatal=None,
                        result={"summary": {"success": False, "steps": 0, "collisions_total": 0,
                                            "avg_command_len": 0.0, "path_len_est": 0.0,
                                            "coverage": None, "time_to_goal": None,
                                            "reasons": None, "policy_summary": {},
                                            "cpu_time_s": 1e-9}})
        worker._conclude_run(run, config())
        self.assertEqual(run.summary["cpu_time_s"], 0.125)
        self.assertEqual(zygote._seconds(True), None)
        self.assertEqual([zygote._seconds(v) for v in (-1.0, float("inf"), "1", 2)],
                         [None, None, None, 2.0])


def keep_in_this_process(world: list, paths) -> None:
    """``zygote._keep_world(world, ...)`` here, with ``paths`` opened read-only for it."""
    fds = [os.open(path, os.O_RDONLY) for path in paths]
    try:
        zygote._keep_world(world, fds)
    finally:
        for fd in fds:
            os.close(fd)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc/PID/task/TID/children)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except OSError:
            pass
    return found


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_policy.main(list(argv))
    return status, out.getvalue(), err.getvalue()


HUGE_LEN = '''
builtins = sys.modules["builtins"]
Pair = builtins.type("Pair", (builtins.tuple,), {"__len__": lambda self: 10 ** 400})


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return Pair((helpers.intent(1.0, 0.0, [voxelsim.MoveDir.Forward] * 6), "Replace"))
    return None


def collect(step_ctx):
    return None


def finalize(ep_ctx):
    return None
'''

NAN = '''
def act(t, agent, world, fw, env, helpers):
    sys.modules["bgen.runner.episode"].distance = lambda a, b: float("nan")
    return None


def collect(step_ctx):
    return {"ratio": float("nan")}


def finalize(ep_ctx):
    return {"summary": "nan " + str(float("nan"))}
'''

SURROGATE = '''
def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"text": chr(0xD800)}


def finalize(ep_ctx):
    return {"summary": "broken " + chr(0xDC00) + " text"}
'''


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"bare {name} in a JSON file")
    return json.loads(text, parse_constant=refuse)


class ParentSurvivesTests(unittest.TestCase):
    """Values that crashed the command line: every episode still ends with its summary."""

    def check_run(self, outdir: Path, seeds=(0, 1)):
        for seed in seeds:
            summary = strict_json((outdir / f"ep_{seed}" / f"summary.{seed}.json").read_text())
            self.assertEqual(summary["seed"], seed)
            for line in (outdir / f"ep_{seed}" / f"steps.{seed}.jsonl").read_text().splitlines():
                strict_json(line)
            (outdir / f"ep_{seed}" / f"summary.{seed}.txt").read_text(encoding="utf-8")

    def test_huge_len_and_nan_end_with_a_summary_per_episode(self):
        cases = [("huge_len", HUGE_LEN, "success"), ("nan", NAN, "max_steps")]
        for name, source, reason in cases:
            with self.subTest(case=name), tempfile.TemporaryDirectory() as tmp:
                policy = Path(tmp) / "policy.py"
                policy.write_text("import voxelsim\n" + source)
                with GrantedModules():
                    status, out, err = cli("--policy", str(policy), "--outdir", tmp + "/out",
                                           "--episodes", "2", "--max-steps", "1500",
                                           "--start", "50,50,-60", "--target", "56,50,-60",
                                           "--backend", "embedded")
                self.assertIn(status, (0, 1), err)
                self.check_run(Path(tmp) / "out")
                self.assertIn(f"{reason} 2", out)

    def test_a_lone_surrogate_in_notes_and_summary_ends_with_a_summary_per_episode(self):
        with tempfile.TemporaryDirectory() as tmp:
            policy = Path(tmp) / "policy.py"
            policy.write_text(SURROGATE)
            done = subprocess.run(
                [sys.executable, "-m", "bgen.runner.run_policy", "--policy", str(policy),
                 "--outdir", tmp + "/out", "--episodes", "2", "--max-steps", "20",
                 "--backend", "embedded"], cwd=ROOT, capture_output=True, timeout=TIMEOUT_S,
                env={**os.environ, "PYTHONIOENCODING": "utf-8"})
            self.assertIn(done.returncode, (0, 1), done.stderr.decode()[-2000:])
            self.check_run(Path(tmp) / "out")
            text = (Path(tmp) / "out" / "ep_0" / "summary.0.txt").read_text(encoding="utf-8")
        self.assertEqual(text, "broken ? text")
        self.assertTrue(done.stderr.decode().startswith("isolation: "))


if __name__ == "__main__":
    unittest.main()
