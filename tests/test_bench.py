"""The benchmark entry point ``python -m bgen.bench <name>`` and the loop benchmark's helpers.

Benchmarks print what they measure; nothing here checks a speed.
"""

import contextlib
import io
import os
import time
import unittest

from bgen import bench
from bgen import machine
from bgen.bench import loop


class BenchEntryPointTests(unittest.TestCase):
    def test_an_unknown_or_missing_name_is_refused_with_the_choices(self):
        for argv, given in ((["fast"], "'fast'"), ([], "nothing")):
            with self.subTest(argv=argv):
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    self.assertEqual(bench.main(argv), 2)
                self.assertEqual(err.getvalue().strip(),
                                 "python -m bgen.bench: expects one of sim, runner, loop, server, "
                                 f"render, dask, actual: {given}")

    def test_every_name_resolves_to_a_module_with_main(self):
        import importlib
        for name, module in bench.BENCHMARKS.items():
            with self.subTest(name=name):
                self.assertTrue(callable(importlib.import_module(module).main))

    def test_the_benchmarks_refuse_bad_arguments_with_one_line(self):
        cases = [(["runner", "--episodes", "0"], "--episodes: expects a positive integer, actual: 0"),
                 (["runner", "--repeat", "0"], "--repeat: expects a positive integer, actual: 0"),
                 (["runner", "--seed-start", "-3"], "--seed-start: expects an integer >= 0"),
                 (["runner", "--backend", "nope"], "--backend: simulator backend: expects one of"),
                 (["loop", "--seed-start", "-1"], "--seed-start: expects an integer >= 0"),
                 (["loop", "--backend", "nope"], "--backend: simulator backend: expects one of")]
        for argv, expected in cases:
            with self.subTest(argv=argv):
                err = io.StringIO()
                with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as caught:
                    bench.main(argv)
                self.assertEqual(caught.exception.code, 2)
                self.assertIn(expected, err.getvalue())
                self.assertNotIn("Traceback", err.getvalue())

    def test_the_loop_benchmark_refuses_a_non_positive_count(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as caught:
            bench.main(["loop", "--workers", "0"])
        self.assertEqual(caught.exception.code, 2)
        self.assertIn("--workers: expects a positive integer, actual: 0", err.getvalue())


@unittest.skipUnless(os.path.isdir("/proc/self"), "reads /proc")
class LoopBenchHelperTests(unittest.TestCase):
    def test_the_machine_line_names_cores_python_and_the_utc_date(self):
        line = machine.machine_line()
        self.assertRegex(line, rf"^machine: {os.cpu_count()} cores\b.*Python \d+\.\d+.*"
                               r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$")

    def test_the_process_tree_holds_at_least_this_process(self):
        own = loop._proc_table()[os.getpid()][1]
        self.assertGreater(own, 0)
        self.assertGreaterEqual(loop.tree_rss(os.getpid()), own)

    def test_descendants_cpu_splits_the_named_processes_from_the_others(self):
        """Two busy children, one named, the other having reaped a busy child of its own:
        each part holds one process's CPU time."""
        def burn():
            stop = time.process_time() + 0.2
            while time.process_time() < stop:
                pass

        children = []
        for index in range(2):
            pid = os.fork()
            if pid == 0:
                burn()
                if index == 1:                # a child it reaps, as the sandbox host does
                    grandchild = os.fork()
                    if grandchild == 0:
                        burn()
                        os._exit(0)
                    os.waitpid(grandchild, 0)
                time.sleep(30)                # measured while alive, killed after
                os._exit(0)
            children.append(pid)
        try:
            time.sleep(1.0)
            named, others, reaped = loop.descendants_cpu({children[0]})
            self.assertGreater(named, 0.05)
            self.assertGreater(others, 0.05)
            self.assertGreater(reaped, 0.05)
        finally:
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)

    def test_cpu_lines_give_each_share_and_the_ceiling_the_cpu_allows(self):
        sequential = [{"cpu": 1.6, "world": 0.8, "plan": 0.05, "step": 0.7}] * 2
        text = loop.cpu_lines({"policy": 0.8, "graders": 0.4, "caller": 0.16, "host": 0.04},
                              sequential, 16, 2)
        self.assertIn("CPU per episode, bgen as the loop runs it: 88 ms = policy processes 50 ",
                      text)
        self.assertIn("trusted replay in a grader 25 + this process 10", text)
        self.assertIn("CPU per episode, sequential: 200 ms (wall: world building 100, planning "
                      "6, stepping 88)", text)
        self.assertIn("2 cores always busy: 2 x 200 / 88 = 4.57x", text)

    def test_the_proportional_size_of_a_tree_counts_shared_pages_once(self):
        """A forked child shares this process's pages: the resident sum counts them twice, the
        proportional sum about once."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write)
            os.read(read, 1)                  # stays alive until the parent has measured
            os._exit(0)
        os.close(read)
        try:
            own = loop.pss(os.getpid())
            if own is None:
                self.skipTest("/proc/self/smaps_rollup is not readable here")
            rss, proportional = loop.tree_memory(os.getpid())
            self.assertIsNotNone(proportional)
            self.assertLess(proportional, rss)
            self.assertGreater(proportional, 0)
        finally:
            os.write(write, b"x")
            os.close(write)
            os.waitpid(pid, 0)

    def test_an_ended_process_has_no_proportional_size(self):
        self.assertEqual(loop.pss(2 ** 22 + 12345), 0)


class SmallBenchRunTests(unittest.TestCase):
    """The runner and loop benchmarks run end to end on a few short episodes and print every
    line they promise (the figures themselves are this machine's and are not checked)."""

    def run_bench(self, argv) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(bench.main(argv), 0)
        return out.getvalue()

    def test_the_loop_benchmark_prints_both_ratios(self):
        text = self.run_bench(["loop", "--iterations", "2", "--episodes", "2",
                               "--max-steps", "40"])
        for expected in ("ratio bgen / sequential:", "ratio over iterations 2..2",
                         "as the iteration loop runs it", "where the time goes",
                         "peak memory ("):
            self.assertIn(expected, text)
        self.assertRegex(text, r"that took \d+\.\d\d s here, left out\), each iteration after "
                               r"a sequential one: sequential \d+\.\d\d, \d+\.\d\d s; bgen "
                               r"\d+\.\d\d, \d+\.\d\d s; ratio \d+\.\d\dx")
        self.assertRegex(text, r"CPU per episode, bgen as the loop runs it: \d+ ms = policy "
                               r"processes [1-9]\d* ")
        self.assertRegex(text, r"2 cores always busy: 2 x \d+ / \d+ = \d+\.\d\dx"
                         if len(os.sched_getaffinity(0)) == 2 else r"cores always busy")

    def test_the_runner_benchmark_gives_the_overhead_against_both_in_process_runs(self):
        text = self.run_bench(["runner", "--episodes", "2", "--repeat", "1",
                               "--max-steps", "40"])
        for expected in ("one untimed round first", "in-process ", "in-process, steps written",
                         "1 worker ",
                         "vs in-process with its steps written:", "trusted replay:",
                         "worker machinery"):
            self.assertIn(expected, text)


if __name__ == "__main__":
    unittest.main()
