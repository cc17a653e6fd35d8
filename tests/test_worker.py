"""Specification of the worker processes (bgen.runner.worker): isolation, limits, every way an
episode can end in a worker, the files and events the parent produces, and a parent that stays
healthy whatever the policy did.
"""

import json
import multiprocessing
import os
import signal
import tempfile
import threading
import time
import unittest
from pathlib import Path

from bgen.errors import PolicyLoadError
from bgen.runner import worker
from bgen.runner.episode import EpisodeConfig
from bgen.runner.worker import check_policy, probe_worker, run_episodes, signal_name
from tests.timing import scaled

POLICIES = Path(__file__).parent / "policies"
TIMEOUT_S = scaled(20.0)           # every wait in this module is bounded by (a fraction of) this

#: Short limits so misbehaving policies are caught quickly.
FAST = dict(backend="embedded", max_steps=1500, start=(50, 50, -60), target=(56, 56, -60),
            act_budget_s=0.5, stall_grace_s=1.0, memory_limit_mb=512,
            episode_deadline_s=TIMEOUT_S)


def policy(name: str) -> str:
    return (POLICIES / name).read_text()


def config(**overrides) -> EpisodeConfig:
    return EpisodeConfig(**{**FAST, **overrides})


def _cmdline(pid) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _parent_pid(pid) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _descends_from_this_process(pid: int) -> bool:
    """Whether ``pid`` is below this test process (another suite's policy processes on the
    same machine are not ours to count or signal)."""
    me = os.getpid()
    for _ in range(64):
        pid = _parent_pid(pid)
        if pid == me:
            return True
        if pid <= 1:
            return False
    return False


def host_children() -> list[int]:
    """Pids (as this process sees them) of live policy processes: forks of a sandbox host
    started by this process."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or b"bgen.runner.zygote" not in _cmdline(entry):
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent = _cmdline(fields[1])
        if fields[0] != "Z" and b"bgen.runner.zygote" in parent and \
                b"python" in os.path.basename(parent.split(b"\0")[0]) and \
                _descends_from_this_process(int(entry)):
            children.append(int(entry))
    return children


class RunnerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.outdir = Path(self.tmp.name)
        self.events = []

    def tearDown(self):
        self.tmp.cleanup()

    def run_policy(self, name, seeds=(0,), source=None, **overrides):
        return run_episodes(source if source is not None else policy(name), list(seeds),
                            config(**overrides), self.outdir, workers=2,
                            on_event=self.events.append)

    def assertParentHealthy(self):
        """No worker left behind, and the next episode runs normally."""
        self.assertEqual(multiprocessing.active_children(), [])
        self.assertEqual(host_children(), [])
        [after] = run_episodes(policy("move_to_target.py"), [7], config(act_budget_s=scaled(0.5)),
                               self.outdir / "after")
        self.assertEqual(after["reason"], "success")


class IsolationTests(unittest.TestCase):
    """What a worker looks like from inside, before any policy runs."""

    @classmethod
    def setUpClass(cls):
        os.environ["BGEN_TEST_API_KEY"] = "not-for-policies"
        try:
            cls.facts = probe_worker(config(), timeout_s=TIMEOUT_S)
        finally:
            del os.environ["BGEN_TEST_API_KEY"]

    def test_the_environment_holds_only_the_thread_settings(self):
        self.assertEqual(self.facts["env"], worker.WORKER_ENV)
        self.assertEqual(self.facts["env"]["OPENBLAS_NUM_THREADS"], "1")

    def test_the_environment_block_at_exec_held_no_key(self):
        names = sorted(item.split("=", 1)[0] for item in self.facts["environ_block"]
                       if not item.startswith("PWD="))   # set by bubblewrap's --chdir
        self.assertEqual(names, sorted(worker.WORKER_ENV))
        self.assertNotIn("not-for-policies", json.dumps(self.facts))

    def test_only_the_pipe_is_inherited_and_stdin_is_dev_null(self):
        # 0, 1, 2 on /dev/null, the two pipes, and the descriptor listing /proc/self/fd itself
        self.assertEqual(len(self.facts["fds"]), 5)
        self.assertEqual(self.facts["fds"][:3], [0, 1, 2])
        self.assertEqual(self.facts["stdin"], "/dev/null")

    def test_the_worker_leads_its_own_session_and_runs_one_thread(self):
        self.assertTrue(self.facts["session_leader"])
        self.assertEqual(self.facts["threads"], 1)

    def test_limits_are_set(self):
        limits = self.facts["limits"]
        self.assertEqual(limits["RLIMIT_AS"], [512 * 2 ** 20] * 2)
        cpu_soft, cpu_hard = limits["RLIMIT_CPU"]
        self.assertLess(cpu_soft, cpu_hard)
        self.assertEqual(limits["RLIMIT_FSIZE"], [0, 0])
        self.assertEqual(limits["RLIMIT_CORE"], [0, 0])
        self.assertEqual(limits["RLIMIT_NOFILE"], [64, 64])
        self.assertEqual(limits["RLIMIT_NPROC"], [0, 0])

    def test_as_root_the_worker_runs_as_nobody_so_nproc_holds(self):
        if os.geteuid() != 0:
            self.skipTest("not root: RLIMIT_NPROC applies to our own user")
        self.assertEqual(self.facts["uid"], worker.NOBODY)
        self.assertEqual(self.facts["notes"], [])


class EndReasonTests(RunnerTestCase):
    """Each way an episode can end, produced by a real (mis)behaving policy."""

    def test_each_misbehaviour_ends_the_episode_with_its_reason(self):
        cases = [
            # policy file, reason, (error phase, type, lineno) or None, words in "reasons"
            ("move_to_target.py", "success", None, "reached the target"),
            ("hover.py", "max_steps", None, "did not reach the target within 1500 steps"),
            ("loop_forever.py", "timeout", ("act", "BudgetExceeded", 2),
             "act() ran longer than its budget of 0.5 s (line 2)"),
            ("swallow_alarm.py", "timeout", ("worker", "timeout", None),
             "a policy call ran past its budget of 0.5 s and did not stop"),
            ("memory_bomb.py", "memory", ("act", "MemoryError", 5), "out of memory in act()"),
            ("recursion_bomb.py", "policy_error", ("act", "RecursionError", 2),
             "maximum recursion depth exceeded"),
            ("spawn_process.py", "policy_error", ("load", "PolicyLoadError", 1),
             "import of 'subprocess' is not allowed"),
            ("syntax_error.py", "policy_error", ("load", "PolicyLoadError", 5),
             "'(' was never closed (rule: syntax)"),
            ("missing_act.py", "policy_error", ("load", "PolicyLoadError", None),
             "policy must define act(t, agent, world, fw, env, helpers)"),
            ("raises_on_line_8.py", "policy_error", ("act", "ZeroDivisionError", 8),
             "act: ZeroDivisionError: division by zero (line 8)"),
            ("panic_intent.py", "policy_error", ("act", "PanicException", 5),
             "assertion failed: urgency > 0.0"),
            ("teleport.py", "teleport", None, "set_pos/set_hold_py must not be used"),
        ]
        for name, reason, error, words in cases:
            with self.subTest(policy=name):
                [summary] = self.run_policy(name, seeds=(3,))
                self.assertEqual(summary["reason"], reason, summary["reasons"])
                self.assertIn(words, summary["reasons"])
                self.assertEqual(summary["success"], reason == "success")
                if error is None:
                    self.assertIsNone(summary["error"])
                else:
                    got = summary["error"]
                    self.assertEqual((got["phase"], got["type"], got["lineno"]), error)
                self.assertEqual(multiprocessing.active_children(), [])
        self.assertParentHealthy()

    def test_the_cpu_limit_and_the_wall_clock_deadline_end_episodes_as_timeout(self):
        cases = [
            ("loop_forever.py", dict(act_budget_s=10.0, stall_grace_s=10.0, cpu_limit_s=1.0),
             "the episode used up its CPU time limit (line 2)"),
            ("hover.py", dict(max_steps=1_000_000, episode_deadline_s=1.0, cpu_limit_s=30.0),
             "the episode ran past its wall-clock deadline of 1.0 s"),
        ]
        for name, overrides, reasons in cases:
            with self.subTest(policy=name):
                [summary] = self.run_policy(name, **overrides)
                self.assertEqual(summary["reason"], "timeout")
                self.assertEqual(summary["reasons"], reasons)
        self.assertParentHealthy()

    def test_a_worker_killed_by_a_signal_is_crashed_with_the_signal_named(self):
        killed = []

        def on_event(event):
            if event["type"] == "step" and not killed:
                for pid in host_children():
                    os.kill(pid, signal.SIGSEGV)
                    killed.append(pid)

        [summary] = run_episodes(policy("hover.py"), [0], config(max_steps=100_000),
                                 self.outdir, on_event=on_event)
        self.assertEqual(len(killed), 1)
        self.assertEqual(summary["reason"], "crashed")
        self.assertEqual(summary["reasons"], "worker killed by SIGSEGV")
        self.assertGreater(summary["steps"], 0)
        self.assertTrue((self.outdir / "ep_0" / "trace.0.json").exists())
        self.assertParentHealthy()

    def test_the_stop_event_ends_running_and_waiting_episodes_as_terminated(self):
        stop = threading.Event()

        def on_event(event):
            if event["type"] == "step":
                stop.set()

        summaries = run_episodes(policy("hover.py"), [0, 1, 2], config(max_steps=100_000),
                                 self.outdir, workers=1, on_event=on_event, stop_event=stop)
        self.assertEqual([s["reason"] for s in summaries], ["terminated"] * 3)
        self.assertEqual([s["seed"] for s in summaries], [0, 1, 2])
        self.assertEqual(summaries[2]["reasons"], "stopped before the episode started")
        self.assertParentHealthy()


class FilesAndEventsTests(RunnerTestCase):
    """What the parent writes and emits."""

    def test_a_successful_episode_writes_steps_and_summaries_but_no_trace(self):
        [summary] = self.run_policy("move_to_target.py", seeds=(5,))
        ep = self.outdir / "ep_5"
        self.assertEqual(sorted(p.name for p in ep.iterdir()),
                         ["steps.5.jsonl", "summary.5.json", "summary.5.txt"])
        lines = (ep / "steps.5.jsonl").read_text().splitlines()
        self.assertEqual(len(lines), summary["steps"])
        self.assertEqual([json.loads(line)["step"] for line in lines], list(range(len(lines))))
        self.assertEqual(json.loads((ep / "summary.5.json").read_text()), summary)
        self.assertEqual((ep / "summary.5.txt").read_text(),
                         f"steps={summary['steps']} success=True")

    def test_a_failed_episode_writes_a_trace_with_the_last_steps_and_the_traceback(self):
        [summary] = self.run_policy("raises_on_line_8.py", seeds=(2,))
        trace = json.loads((self.outdir / "ep_2" / "trace.2.json").read_text())
        self.assertEqual(trace["reason"], "policy_error")
        self.assertEqual([s["step"] for s in trace["last_steps"]], [0, 1, 2])
        self.assertEqual(trace["error"]["traceback"].splitlines()[-2:],
                         ["    return 1 / 0", "ZeroDivisionError: division by zero"])

    def test_events_carry_every_step_in_order_then_the_summary(self):
        summaries = self.run_policy("hover.py", seeds=(0, 1, 2), max_steps=120)
        self.assertEqual([s["seed"] for s in summaries], [0, 1, 2])
        for seed in (0, 1, 2):
            with self.subTest(seed=seed):
                mine = [e for e in self.events if e.get("seed") == seed]
                steps = [e["step"] for e in mine if e["type"] == "step"]
                self.assertEqual(steps, list(range(120)))
                self.assertEqual(mine[-1]["type"], "episode_summary")
                self.assertEqual(mine[-1]["reason"], "max_steps")

    def test_thinned_step_events_are_few_in_order_and_end_with_the_last_step(self):
        summaries = run_episodes(policy("hover.py"), [0, 1], config(max_steps=400),
                                 self.outdir, workers=2, on_event=self.events.append,
                                 step_event_hz=2.0)
        self.assertEqual([s["reason"] for s in summaries], ["max_steps"] * 2)
        for seed in (0, 1):
            with self.subTest(seed=seed):
                mine = [e for e in self.events if e.get("seed") == seed]
                steps = [e["step"] for e in mine if e["type"] == "step"]
                self.assertLess(len(steps), 60)            # far fewer than the 400 steps
                self.assertEqual(steps, sorted(set(steps)))
                self.assertEqual(steps[-1], 399)          # held back, sent before the summary
                self.assertEqual(mine[-1]["type"], "episode_summary")

    def test_warnings_reach_the_caller(self):
        self.run_policy("collect_fails.py", seeds=(0,))
        warnings = [e["message"] for e in self.events if e["type"] == "warning"]
        self.assertEqual(warnings, [
            "collect() failed: collect: ZeroDivisionError: division by zero (line 18)",
            "finalize() failed: finalize: ValueError: finalize fails too (line 22)"])


class Sender:
    """Writes into the pipe from a thread, as a worker would (a large message does not fit the
    pipe's buffer, so writing it from the reading thread would block), and returns once the
    read end has something to read."""

    def __init__(self, write, read):
        self.write, self.read = write, read

    def send_bytes(self, data: bytes) -> None:
        threading.Thread(target=self._send, args=(data,), daemon=True).start()
        self.read.poll(scaled(10))

    def _send(self, data):
        try:
            self.write.send_bytes(data)
        except OSError:
            pass


def _in_fork(scenario) -> dict:
    """Runs ``scenario()`` (returning a JSON-able value) in a forked child, so the SIGALRM
    handler and interval timer it sets never reach the test runner; its value or error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = {"value": scenario()}
        except BaseException as error:  # noqa: B036 - reported to the parent
            result = {"error": f"{type(error).__name__}: {error}"}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


class PolicyAlarmTests(unittest.TestCase):
    """The per-call budget: one interval timer left running across calls."""

    BUDGET = scaled(0.3)

    def test_a_call_past_its_budget_raises_in_the_call(self):
        def scenario():
            guard = worker._PolicyAlarm(self.BUDGET)
            started = time.monotonic()
            with guard("act"):
                while time.monotonic() - started < scaled(10):
                    pass
            return "not raised"
        self.assertIn("BudgetExceeded: act() ran longer than its budget", _in_fork(scenario)["error"])

    def test_short_calls_outlasting_one_budget_together_do_not_raise(self):
        """An alarm armed for an earlier call re-arms for what is left of the running one."""
        def scenario():
            guard = worker._PolicyAlarm(self.BUDGET)
            arms = []
            arm = guard._arm
            guard._arm = lambda now, seconds: (arms.append(seconds), arm(now, seconds))
            started = time.monotonic()
            while time.monotonic() - started < 4 * self.BUDGET:
                with guard("act"):
                    time.sleep(self.BUDGET / 10)
            return arms
        arms = _in_fork(scenario)["value"]
        self.assertGreaterEqual(len(arms), 2, "the timer never fired during the calls")
        self.assertLess(len(arms), 40, "the timer is re-armed on every call")
        self.assertTrue(all(0 < seconds <= self.BUDGET for seconds in arms), arms)

    def test_a_swallowed_alarm_ends_the_call_when_it_returns(self):
        def scenario():
            guard = worker._PolicyAlarm(self.BUDGET)
            with guard("act"):
                try:
                    time.sleep(scaled(10))
                finally:
                    return "swallowed"  # noqa: B012 - what a hostile policy does
        self.assertIn("swallowed the time limit", _in_fork(scenario).get("error", ""))

    def test_a_time_limit_replaced_by_another_exception_still_ends_the_call(self):
        def scenario():
            guard = worker._PolicyAlarm(self.BUDGET)
            with guard("collect"):
                try:
                    time.sleep(scaled(10))
                finally:
                    raise ValueError("not a timeout")  # noqa: B012 - what a hostile policy does
            return "not raised"
        error = _in_fork(scenario).get("error", "")
        self.assertIn("BudgetExceeded: collect() ran longer than its budget", error)
        self.assertIn("replaced the time limit with ValueError", error)

    def test_what_a_call_raised_is_freed_inside_the_next_budget(self):
        """A generator suspended in ``try/finally`` in a raising call's frame runs its
        ``finally`` when the next call starts, where the timer stops it."""
        def scenario():
            import sys
            sys.unraisablehook = lambda unraisable: None   # the stopped finally, as in a worker
            guard = worker._PolicyAlarm(self.BUDGET)
            ran = []

            def slow():
                try:
                    yield 1
                finally:
                    ran.append("finally")
                    started = time.monotonic()
                    while time.monotonic() - started < scaled(10):
                        pass

            def collect():
                keep = slow()
                next(keep)
                raise ValueError("with a live generator in its frame")

            try:
                with guard("collect"):
                    collect()
            except ValueError:
                pass
            between = list(ran)
            try:
                with guard("act"):
                    pass
            except BaseException as error:  # noqa: B036
                return [between, ran, type(error).__name__]
            return [between, ran, None]
        between, after, raised = _in_fork(scenario)["value"]
        self.assertEqual(between, [], "the finally ran between calls, outside any budget")
        self.assertEqual((after, raised), (["finally"], "BudgetExceeded"))

    def test_the_simulator_phase_stalls_as_the_simulator(self):
        def scenario():
            guard = worker._PolicyAlarm(self.BUDGET)
            with guard("act"):
                pass
            time.sleep(2 * self.BUDGET)       # the timer fires between calls: ignored
            with guard("sim"):
                time.sleep(scaled(10))
            return "not raised"
        self.assertIn("SimulatorStalled", _in_fork(scenario)["error"])


class PolicyAlarmEpisodeTests(RunnerTestCase):
    """Overruns that hide behind another exception or a finaliser still end as ``timeout``."""

    REPLACED = policy("hover.py").replace("def collect(step_ctx):", """def collect(step_ctx):
    try:
        while True:
            pass
    finally:
        raise ValueError("not a timeout")


def _unused(step_ctx):""")

    FINALISER = policy("hover.py").replace("def collect(step_ctx):", """def _slow():
    try:
        yield 1
    finally:
        while True:
            pass


def collect(step_ctx):
    keep = _slow()
    next(keep)
    raise ValueError("a live generator in this frame")


def _unused(step_ctx):""")

    def test_a_replaced_time_limit_ends_the_episode_as_timeout(self):
        [summary] = self.run_policy("", source=self.REPLACED, max_steps=20, act_budget_s=0.3)
        self.assertEqual(summary["reason"], "timeout", summary)
        self.assertIn("replaced the time limit with ValueError", summary["reasons"])

    def test_a_finaliser_left_in_a_raised_exception_ends_the_episode_as_timeout(self):
        [summary] = self.run_policy("", source=self.FINALISER, max_steps=20, act_budget_s=0.3)
        self.assertEqual(summary["reason"], "timeout", summary)


class CompiledOnceTests(RunnerTestCase):
    """A checked policy's code object, compiled by the check's policy process, is sent to its
    episodes; the caller itself never compiles policy code."""

    MARKED = policy("hover.py") + '''

def finalize(ep_ctx):
    return {"compiled": "by the check"}
'''

    def setUp(self):
        super().setUp()
        self.original = worker.compiled

    def tearDown(self):
        worker.compiled = self.original
        super().tearDown()

    def test_a_checked_source_is_kept_compiled_and_an_unchecked_one_is_not(self):
        source = policy("hover.py") + "\n# checked here\n"
        self.assertTrue(worker.compiled(source) is None)
        run_episodes(source, [0], config(max_steps=5), self.outdir)
        self.assertTrue(worker.compiled(source) is None, "the caller compiled the policy")
        check_policy(source, backend="embedded")
        self.assertIsInstance(worker.compiled(source), bytes)
        self.assertTrue(worker.compiled(source + " ") is None)

    def test_code_past_the_size_limit_is_not_kept(self):
        """Constant folding makes this 500-character source compile to ~160 KB."""
        source = policy("hover.py") + "\nBIG = " + " + ".join(["'x' * 4096"] * 40) + "\n"
        limit, worker.MAX_CODE_BYTES = worker.MAX_CODE_BYTES, 100_000
        try:
            check_policy(source, backend="embedded")
        finally:
            worker.MAX_CODE_BYTES = limit
        self.assertTrue(worker.compiled(source) is None, "code past the limit was kept")

    def test_episodes_run_the_code_they_are_sent(self):
        check_policy(self.MARKED, backend="embedded")
        marked = worker.compiled(self.MARKED)
        worker.compiled = lambda source: marked
        [summary] = self.run_policy("hover.py", max_steps=30)
        self.assertEqual(summary["policy_summary"], {"compiled": "by the check"}, summary)

    def test_unreadable_code_falls_back_to_compiling_the_source(self):
        worker.compiled = lambda source: b"\x00not marshal"
        [summary] = self.run_policy("hover.py", max_steps=30)
        self.assertEqual(summary["reason"], "max_steps", summary)
        self.assertNotIn("compiled", summary["policy_summary"])

    def test_asserts_run_whatever_the_interpreter_flags(self):
        from bgen.runner import sandbox
        code = sandbox.compile_policy("def act(t, agent, world, fw, env, helpers):\n"
                                      "    assert t < 0, 'kept'\n")
        namespace = {}
        exec(code, namespace)
        with self.assertRaises(AssertionError):
            namespace["act"](1.0, None, None, None, None, None)


class ProtocolTests(unittest.TestCase):
    """The parent trusts nothing a worker sends."""

    class _Run:
        seed = 0
        phase = "running"
        step_count = 0
        max_steps = 100
        thinner = None

        def __init__(self):
            self.tail = worker.deque(maxlen=5)
            self.warnings = []
            self.result = self.fatal = None

    def test_a_batch_is_decoded_at_once_and_kept_as_sent_unless_it_must_be_cleaned(self):
        batch = [b'{"step":0,"agent_pos":[1,2,3]}', b'{"step":1,"agent_pos":[1,2,4]}']
        steps, lines = worker.load_steps(batch, b"\n".join(batch))
        self.assertEqual([s["step"] for s in steps], [0, 1])
        self.assertIs(lines, batch)
        dirty = [batch[0], b'{"step":1,"x":NaN,"s":"\\ud800"}']
        steps, lines = worker.load_steps(dirty, b"\n".join(dirty))
        self.assertEqual(steps[1]["x"], None)
        self.assertEqual(lines[1], b'{"step":1,"x":null,"s":"?"}')
        utf16 = '{"step":0,"s":"\ud800"}'.encode("utf-16-le", "surrogatepass")
        for bad in ([b'{"a":1},{"b":2}'], [b"1"], [b""], [b'{"a":1}]', b'[{"b":2}'],
                    [b'{"a":[1', b'2]},{"b":1}'], [b'{"a":"x', b'y"},{"b":1}'], [utf16],
                    [b'\xef\xbb\xbf{"a":1}'], [b'{"a":"\xff"}']):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                worker.load_steps(bad, b"\n".join(bad))

    def test_malformed_messages_are_refused(self):
        cases = [b"X{}", b"E[1, 2]", b'E{"kind": "pickle"}', b"E{not json", b"S{}\n[1]"]
        for data in cases:
            with self.subTest(data=data):
                run = self._Run()
                run.steps_file = open(os.devnull, "wb")
                with self.assertRaises((ValueError, TypeError, KeyError)):
                    worker._handle(run, data, lambda event: None)
                run.steps_file.close()

    def episode(self, max_steps: int = 300, **config):
        """A parent-side episode whose "worker" is this test, writing into one end of a pipe."""
        read, write = multiprocessing.Pipe(duplex=False)
        self.addCleanup(read.close)
        self.addCleanup(write.close)

        class Process:
            killed = 0

            def kill(self):
                Process.killed += 1

        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        run = worker._Episode(0, Process(), read, Path(tmp.name) / "ep_0",
                              EpisodeConfig(max_steps=max_steps, **config))
        self.addCleanup(run.steps_file.close)
        return run, Sender(write, read)

    def test_any_exception_a_message_causes_ends_the_episode_as_crashed(self):
        for name, data in (("nested arrays", b"E" + b"[" * 200_000 + b"]" * 200_000),
                           ("a list for the stats header", b"S[1]\n[2]")):
            with self.subTest(case=name):
                run, pipe = self.episode()
                pipe.send_bytes(data)
                worker._read_messages(run, lambda event: None)
                self.assertEqual(run.killed[0], "crashed")
                self.assertIn("the worker sent a malformed message", run.killed[1])

    def test_warnings_are_capped_and_are_not_progress(self):
        run, pipe = self.episode()
        run.last_heard = 0.0
        emitted = []
        for _ in range(worker.MAX_WARNINGS + 50):
            pipe.send_bytes(b'E{"kind": "warning", "message": "still alive"}')
            worker._read_messages(run, emitted.append)
        self.assertEqual(len(emitted), worker.MAX_WARNINGS)
        self.assertEqual(run.warnings_dropped, 50)
        self.assertEqual(run.last_heard, 0.0)      # the stall check still sees no progress

    def test_a_worker_that_sends_more_than_its_byte_budget_is_stopped(self):
        run, pipe = self.episode(max_steps=100)
        line = b"S{}\n" + b"\n".join([b'{"step": 0, "pad": "' + b"x" * 200_000 + b'"}'] * 10)
        for _ in range(10):
            pipe.send_bytes(line)
            worker._read_messages(run, lambda event: None)
            if run.killed:
                break
        self.assertEqual(run.killed[0], "crashed")
        self.assertIn(f"the worker sent more than {run.byte_limit} bytes", run.killed[1])

    def test_a_trace_keeps_the_newest_steps_that_fit_its_byte_cap(self):
        lines = [json.dumps({"step": n, "pad": "x" * 100}).encode() for n in range(50)]
        kept = worker._decode_tail(lines, limit=10 * len(lines[-1]))
        self.assertEqual([step["step"] for step in kept], list(range(40, 50)))
        self.assertEqual(len(worker._decode_tail(lines)), 50)     # ordinary steps: all of them

    def test_the_byte_budget_is_the_runs_share_when_that_is_smaller(self):
        run, pipe = self.episode(max_steps=100, max_record_bytes=300_000)
        self.assertEqual(run.byte_limit, 300_000)
        pipe.send_bytes(b"S{}\n" + b'{"step": 0, "pad": "' + b"x" * 400_000 + b'"}')
        worker._read_messages(run, lambda event: None)
        self.assertEqual(run.killed, ("crashed", "the worker sent more than 300000 bytes for 100 "
                                                 "steps (its share of the run's disk budget)"))
        self.assertEqual(self.episode(max_steps=100)[0].byte_limit,
                         worker.EPISODE_BYTES_BASE + 100 * worker.EPISODE_BYTES_PER_STEP)

    def test_a_message_cut_off_by_the_end_of_the_pipe_leaves_the_reason_to_the_exit_status(self):
        run, pipe = self.episode()
        os.write(pipe.write.fileno(), (100).to_bytes(4, "big") + b"S{}\n")   # 100 bytes announced
        pipe.write.close()
        worker._read_messages(run, lambda event: None)
        self.assertTrue(run.eof)
        self.assertIsNone(run.killed)
        run.process.exitcode = -signal.SIGSEGV
        summary, _, _ = worker._conclude(run, EpisodeConfig(max_steps=300))
        self.assertEqual((summary["reason"], summary["reasons"]), ("crashed", "worker killed by SIGSEGV"))

    def test_a_step_record_over_the_line_limit_is_refused(self):
        run, pipe = self.episode()
        pipe.send_bytes(b'S{}\n{"step": 0, "pad": "' + b"x" * worker.MAX_STEP_LINE_BYTES + b'"}')
        worker._read_messages(run, lambda event: None)
        self.assertEqual(run.killed[0], "crashed")
        self.assertIn("exceeds limit of", run.killed[1])

    def test_signals_are_named(self):
        self.assertEqual(signal_name(-11), "SIGSEGV")
        self.assertEqual(signal_name(-9), "SIGKILL")


class CheckPolicyTests(unittest.TestCase):
    """check_policy loads a policy in a short-lived worker."""

    def test_a_good_policy_passes(self):
        self.assertIsNone(check_policy(policy("move_to_target.py"), "embedded", TIMEOUT_S))

    def test_load_failures_raise_with_message_and_line(self):
        cases = [
            ("def act(:\n", "line 1: invalid syntax (rule: syntax)", 1, "syntax"),
            (policy("missing_act.py"), "policy must define act(t, agent, world, fw, env, "
             "helpers); found no 'act' (rule: contract)", None, "contract"),
            ("while True:\n    pass\n", "executing the module body: load() ran longer than its "
             "budget of 1.0 s", 1, "timeout"),
        ]
        for source, message, lineno, rule in cases:
            with self.subTest(rule=rule):
                with self.assertRaises(PolicyLoadError) as caught:
                    check_policy(source, "embedded", TIMEOUT_S, config=config(act_budget_s=1.0))
                self.assertEqual(caught.exception.message, message)
                self.assertEqual(caught.exception.lineno, lineno)
                self.assertEqual(caught.exception.rule, rule)


if __name__ == "__main__":
    unittest.main()
