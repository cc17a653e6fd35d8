"""``python -m bgen.bench loop``: the prototype's sequential loop beside bgen's, in one run.

    python -m bgen.bench loop [--iterations 3] [--episodes 8] [--workers 2] [--seed-start 0]
                              [--max-steps 3000] [--backend auto]

Both sides run the standard episode (the A* policy of ``bgen.bench.runner``: terrain start
[50, 50, -20] to [60, 60, -20], delta 0.01, ends on success) on the same seeds, iteration after
iteration, as an iteration loop evaluating one policy does:

* sequential, in-process, like the first prototype's runner: each episode builds its world
  from scratch (no cache), plans from scratch on that fresh world, runs in the same process
  and writes its steps as JSON lines; one episode after the other, with the heap frozen
  (``freeze_heap``: the episode's periodic collections then cost what they cost in a policy
  process, and the prototype made none). It runs on today's
  simulator (vectorised terrain, dense planner), so it is faster than the prototype was: the
  ratio below measures what the loop adds (world cache, worker processes), not the simulator;
* bgen: ``bgen.runner.worker.run_episodes`` per iteration with ``--workers`` workers and a
  world cache directory, as the iteration loop calls it.

The sides take turns, iteration by iteration, so both meet the same load on a shared machine.
Each sequential iteration runs in a fresh Python process (its memory is then its own), clocked
inside it, imports excluded.

Printed: the machine and the date; wall time and episodes/s of each side and their ratio
(bgen / sequential; the aim is at least 3 on 2 cores, printed, never asserted), everything
counted from a cold start; the ratio again as the iteration loop runs bgen, with the sandbox
host, the graders and the worlds started while the LLM writes the first policy (a second pass
from nothing, that start-up left out, the same sequential times); where the
time goes (world building, planning, stepping and, for bgen, worker overhead); peak memory
(the sequential process's peak resident set; for bgen, over the process tree, this process,
the sandbox host, policy processes and graders, sampled every 50 ms from /proc: the
proportional set size summed, which counts a page shared by n processes 1/n in each, and the
resident set summed, which counts it n times).

Where bgen's episode time goes cannot be clocked inside its workers without changing them,
so it is taken from an instrumented in-process replay of the same episodes with the warm
world cache; worker overhead is the part of the workers' capacity (wall time × workers) not
spent inside episodes (process start, pipes, files, idle slots at the end of an iteration).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bgen.machine import machine_line
from bgen.bench.runner import (STANDARD_POLICY, JsonLines, check_arguments, freeze_heap,
                               standard_config)

SAMPLE_S = 0.05


# --- memory ----------------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, int, float, float]]:
    """{pid: (ppid, resident bytes, CPU s of its own: user + system, CPU s of the children it
    has reaped)} of every readable process (Linux /proc/PID/stat)."""
    page = os.sysconf("SC_PAGE_SIZE")
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(fields[1]), int(fields[21]) * page,
                             (int(fields[11]) + int(fields[12])) / tick,
                             (int(fields[13]) + int(fields[14])) / tick)
    return table


def descendants_cpu(split: set[int]) -> tuple[float, float, float]:
    """CPU seconds used so far by this process's living descendants: (those in ``split``,
    the others themselves, the ended children those others reaped). The sandbox host reaps
    every policy process, so the third counts them all, checks included."""
    table = _proc_table()
    inside = outside = reaped = 0.0
    for pid in _tree(os.getpid(), table)[1:]:
        if pid in split:
            inside += table[pid][2]
        else:
            outside += table[pid][2]
            reaped += table[pid][3]
    return inside, outside, reaped


def _tree(root: int, table: dict[int, tuple]) -> list[int]:
    """``root`` and all its descendants in ``table`` ({pid: (ppid, ...)})."""
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants."""
    table = _proc_table()
    return sum(table.get(pid, (0, 0, 0.0, 0.0))[1] for pid in _tree(root, table))


def pss(pid: int) -> int | None:
    """Proportional set size of ``pid`` in bytes (``/proc/PID/smaps_rollup``, Linux 4.14+):
    each page shared by n processes counts 1/n in each, so a tree's sum is what it holds.
    0 for a process that has ended; None when it cannot be read (another user's process)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except (OSError, ValueError, IndexError):
        return None
    return 0


def tree_memory(root: int) -> tuple[int, int | None]:
    """(resident bytes summed, proportional set size summed or None when a process of the
    tree cannot be read) over ``root`` and its descendants.

    The resident sum counts a page shared by a policy process and the sandbox host it was
    forked from once per process; the proportional sum counts it once in all."""
    table = _proc_table()
    pids = _tree(root, table)
    shares = [pss(pid) for pid in pids]
    rss = sum(table.get(pid, (0, 0, 0.0, 0.0))[1] for pid in pids)
    return rss, None if None in shares else sum(shares)


class PeakMemory:
    """Samples the memory of this process's tree (or, with ``tree=False``, of this process) in
    a daemon thread while ``active``: ``peak`` (resident bytes summed; 0 with ``tree=False``)
    and ``peak_pss`` (proportional, None if unreadable)."""

    def __init__(self, tree: bool = True):
        self.tree = tree                  # False: this process alone (no /proc scan)
        self.peak = 0
        self.peak_pss: int | None = 0
        self.active = False               # set around the phases that count
        self._stop = threading.Event()    # set by __exit__: the sampler ends
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            if self.active:
                try:
                    rss, proportional = tree_memory(os.getpid()) if self.tree else \
                        (0, pss(os.getpid()))
                except OSError:
                    rss, proportional = 0, 0
                self.peak = max(self.peak, rss)
                if proportional is None or self.peak_pss is None:
                    self.peak_pss = None
                else:
                    self.peak_pss = max(self.peak_pss, proportional)
            if self._stop.wait(SAMPLE_S):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# --- the sequential, prototype-like side -----------------------------------------------------
class _PlanClock:
    """Wraps ``Helpers.plan_to`` while installed, adding the time spent in it to ``seconds``."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        from bgen.runner import sandbox
        self._original = original = sandbox.Helpers.plan_to
        clock = self

        def plan_to(helpers, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(helpers, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started

        sandbox.Helpers.plan_to = plan_to
        return self

    def __exit__(self, *exc):
        from bgen.runner import sandbox
        sandbox.Helpers.plan_to = self._original


def run_in_process(config, seeds: list[int], iterations: int, outdir: Path) -> dict:
    """Episodes one after the other in this process; times per part and the summaries.

    Each episode starts with an empty in-process world cache, as a fresh worker does: with
    ``config.world_cache_dir`` None every world is built from scratch (the prototype), else it
    is read from that directory (bgen's workers).
    """
    from bgen.runner.episode import build_sim, run_episode
    from bgen.sim import load_backend, worldcache
    vxs = load_backend(config.backend)
    times = {"world": 0.0, "plan": 0.0, "episode": 0.0}
    summaries = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    with _PlanClock() as plans:
        for iteration in range(iterations):
            for seed in seeds:
                worldcache.clear_memory()
                episode_started = time.perf_counter()
                sim = build_sim(vxs, config, seed)
                times["world"] += time.perf_counter() - episode_started
                ep_dir = outdir / f"iter_{iteration}" / f"ep_{seed}"
                ep_dir.mkdir(parents=True, exist_ok=True)
                sink = JsonLines(ep_dir / f"steps.{seed}.jsonl")
                try:
                    outcome = run_episode(STANDARD_POLICY, vxs, config, seed, sink, sim=sim)
                finally:
                    sink.close()
                summaries.append(outcome.summary.to_dict())
                times["episode"] += time.perf_counter() - episode_started
    times["plan"] = plans.seconds
    times["wall"] = time.perf_counter() - started
    times["cpu"] = time.process_time() - cpu_started
    times["step"] = times["episode"] - times["world"] - times["plan"]
    return {"times": times, "summaries": summaries}


# --- bgen's side -----------------------------------------------------------------------------
def run_bgen_iteration(config, seeds: list[int], workers: int, outdir: Path,
                       first: bool = False) -> dict:
    """One iteration as the loop runs it: the policy checked in a policy process
    (``check_policy``, whose compiled code the episodes then use), then ``run_episodes``;
    wall and in-worker time. ``first``: as a run starts, ``worker.prepare`` is called first
    without waiting (the loop calls it before asking the LLM; here no LLM answers in between)."""
    from bgen.runner.worker import check_policy, prepare, run_episodes
    started = time.perf_counter()
    if first:
        prepare(config, seeds, workers)
    check_policy(STANDARD_POLICY, backend=config.backend)
    summaries = run_episodes(STANDARD_POLICY, seeds, config, outdir, workers=workers,
                             step_events=False)
    wall = time.perf_counter() - started
    return {"wall": wall, "inside": sum(s["wall_time_s"] for s in summaries),
            "summaries": summaries}


def run_bgen_prepared(config, seeds: list[int], iterations: int, workers: int,
                      outdir: Path, between: Callable[[int], None]) -> dict:
    """bgen as the iteration loop runs it: ``worker.prepare`` starts the sandbox host, the
    graders and the worlds as a run starts, while the LLM writes the first policy; that wait
    is left out (an LLM's first answer takes longer than it), then the iterations are timed,
    each after ``between(i)`` (a sequential iteration: both sides meet the same load).

    Starts from nothing: this process's host and graders are stopped first, and ``config``
    names a world cache directory of its own. Also returns the CPU seconds each kind of
    process spent in the timed iterations: ``policy`` (every episode's ``cpu_time_s``, the
    ``graders``, ``caller`` (this process), ``host`` (this process's other descendants:
    the sandbox host and its namespace wrappers) and ``policy`` (the processes the host
    forked and reaped: every episode's and the policy check's)."""
    from bgen.runner import grading, worker, zygote
    zygote.stop_hosts()
    grading.shutdown()
    worker.forget_compiled()
    started = time.perf_counter()
    ready = worker.prepare(config, seeds, workers)(120.0)
    setup = time.perf_counter() - started
    if not ready:
        print("warning: the sandbox host did not start or a world was not stored within "
              "120 s; the timed iterations below include what was left", file=sys.stderr)
    walls, cpu = [], Counter()
    for i in range(iterations):
        between(i)
        before = descendants_cpu(set(grading.grader_pids()))
        caller_before = time.process_time()
        done = run_bgen_iteration(config, seeds, workers, outdir / f"iter_{i}")
        cpu["caller"] += time.process_time() - caller_before
        after = descendants_cpu(set(grading.grader_pids()))
        cpu["graders"] += after[0] - before[0]
        cpu["host"] += after[1] - before[1]
        cpu["policy"] += after[2] - before[2]      # the policy check's process included
        walls.append(done["wall"])
    return {"setup": setup, "walls": walls, "cpu": dict(cpu)}


def run_sequential_iteration(args, seeds: list[int], outdir: Path,
                             sample_memory: bool = True) -> dict:
    """One sequential iteration in a fresh Python process (this module with ``--child``), so
    its memory is its own; its times are clocked inside it, imports excluded.
    ``sample_memory``: sample its proportional set size meanwhile (a thread costing it ~3 %
    of its CPU), else ``peak_pss`` is None."""
    command = [sys.executable, "-m", "bgen.bench.loop", "--child", str(outdir),
               "--episodes", str(len(seeds)), "--seed-start", str(seeds[0]),
               "--max-steps", str(args.max_steps), "--backend", args.backend]
    if not sample_memory:
        command.append("--no-memory-samples")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sequential iteration failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(args) -> int:
    """``--child DIR``: one sequential iteration, its result as one JSON line on stdout."""
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    freeze_heap()          # the prototype made no full collections; bgen's policy processes neither
    with PeakMemory(tree=False) as memory:
        memory.active = not args.no_memory_samples
        result = run_in_process(standard_config(args.backend, args.max_steps), seeds, 1,
                                Path(args.child))
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["peak_pss"] = None if args.no_memory_samples else memory.peak_pss
    print(json.dumps(result))
    return 0


# --- report ----------------------------------------------------------------------------------
def _share(part: float, whole: float) -> str:
    return f"{part / whole * 100:5.1f} %" if whole > 0 else "    -"


def outcome_line(summaries: list[dict]) -> str:
    counts = Counter(s["reason"] for s in summaries)
    return ", ".join(f"{reason} {n}" for reason, n in counts.most_common())


def cpu_lines(bgen_cpu: dict, sequential: list[dict], episodes: int, cores: int) -> str:
    """Where each side's CPU goes per episode, and the ratio that CPU allows at most: bgen on
    ``cores`` cores always busy, against the sequential loop on one."""
    per = {name: seconds / episodes * 1000 for name, seconds in bgen_cpu.items()}
    bgen_ms = sum(per.values())
    sums = {name: sum(times[name] for times in sequential) / episodes * 1000
            for name in ("cpu", "world", "plan", "step")}
    ceiling = cores * sums["cpu"] / bgen_ms if bgen_ms > 0 else float("nan")
    return "\n".join([
        f"CPU per episode, bgen as the loop runs it: {bgen_ms:.0f} ms = policy processes "
        f"{per.get('policy', 0):.0f} (fork to exit, the iteration's policy check included) "
        f"+ trusted replay in a grader {per.get('graders', 0):.0f} + this "
        f"process {per.get('caller', 0):.0f} (pipes, step files) + sandbox host "
        f"{per.get('host', 0):.0f}",
        f"CPU per episode, sequential: {sums['cpu']:.0f} ms (wall: world building "
        f"{sums['world']:.0f}, planning {sums['plan']:.0f}, stepping {sums['step']:.0f})",
        f"most the ratio can be with these costs, {cores} cores always busy: {cores} x "
        f"{sums['cpu']:.0f} / {bgen_ms:.0f} = {ceiling:.2f}x"])


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench loop",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-memory-samples", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_arguments(parser, args, ("iterations", "episodes", "workers", "max_steps"))
    if args.child is not None:
        return _child(args)

    from dataclasses import replace

    from bgen.sim import backend_label, load_backend
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    base = standard_config(args.backend, args.max_steps)
    n = args.iterations * args.episodes
    print(machine_line())
    print(f"standard episode: A* {list(base.start)} -> {list(base.target)}, terrain seeds "
          f"{seeds[0]}..{seeds[-1]}, {args.iterations} iterations x {args.episodes} episodes, "
          f"max {base.max_steps} steps, backend {backend_label(load_backend(args.backend))}")

    sequential = {"times": {"world": 0.0, "plan": 0.0, "episode": 0.0, "wall": 0.0, "step": 0.0,
                            "cpu": 0.0},
                  "summaries": [], "peak_rss": 0, "peak_pss": 0}
    bgen = {"wall": 0.0, "inside": 0.0, "summaries": []}
    walls = {"sequential": [], "bgen": []}          # per iteration (s)
    with tempfile.TemporaryDirectory(prefix="bgen-bench-loop-") as tmp, \
            PeakMemory() as bgen_memory:
        root = Path(tmp)
        config = replace(base, world_cache_dir=str(root / "world-cache"))
        # Iterations alternate between the sides, so both meet the same load on a shared
        # machine; this process builds no world, so its tree is bgen's loop alone.
        for iteration in range(args.iterations):
            bgen_memory.active = True
            done = run_bgen_iteration(config, seeds, args.workers,
                                      root / "bgen" / f"iter_{iteration}", first=iteration == 0)
            bgen_memory.active = False
            for name in ("wall", "inside", "summaries"):
                bgen[name] += done[name]
            walls["bgen"].append(done["wall"])
            done = run_sequential_iteration(args, seeds, root / "sequential" / f"iter_{iteration}")
            walls["sequential"].append(done["times"]["wall"])
            for name, seconds in done["times"].items():
                sequential["times"][name] += seconds
            sequential["summaries"] += done["summaries"]
            sequential["peak_rss"] = max(sequential["peak_rss"], done["peak_rss"])
            if done.get("peak_pss") and sequential["peak_pss"] is not None:
                sequential["peak_pss"] = max(sequential["peak_pss"], done["peak_pss"])
            else:
                sequential["peak_pss"] = None
        freeze_heap()
        replay = run_in_process(config, seeds, 1, root / "replay")
        beside = []                   # sequential iterations run between the prepared ones

        def sequential_iteration(i: int) -> None:
            beside.append(run_sequential_iteration(args, seeds, root / "beside" / f"iter_{i}",
                                                   sample_memory=False)["times"])

        prepared = run_bgen_prepared(replace(base, world_cache_dir=str(root / "world-cache-2")),
                                     seeds, args.iterations, args.workers, root / "prepared",
                                     sequential_iteration)

    seq_t, rep_t = sequential["times"], replay["times"]
    ratio = seq_t["wall"] / bgen["wall"]
    print(f"outcomes: sequential {outcome_line(sequential['summaries'])}; "
          f"bgen {outcome_line(bgen['summaries'])}")
    print()
    print(f"{'':<34}{'sequential':>14}{'bgen':>14}")
    print(f"{'wall time, ' + str(n) + ' episodes':<34}{seq_t['wall']:>12.2f} s{bgen['wall']:>12.2f} s")
    print(f"{'episodes/s':<34}{n / seq_t['wall']:>14.2f}{n / bgen['wall']:>14.2f}")
    print(f"{'ms per episode (wall / episodes)':<34}{seq_t['wall'] / n * 1000:>14.0f}"
          f"{bgen['wall'] / n * 1000:>14.0f}")
    print(f"ratio bgen / sequential: {ratio:.2f}x (aim: >= 3x on 2 cores)")
    print("wall time per iteration: sequential " + ", ".join(f"{w:.2f}" for w in walls["sequential"])
          + " s; bgen " + ", ".join(f"{w:.2f}" for w in walls["bgen"]) + " s (the first pays for "
          "starting the sandbox host and the graders and for building the worlds)")
    if args.iterations > 1:
        later = sum(walls["sequential"][1:]) / sum(walls["bgen"][1:])
        print(f"ratio over iterations 2..{args.iterations} (worlds cached, processes running): "
              f"{later:.2f}x")
    prepared_wall = sum(prepared["walls"])
    beside_wall = sum(times["wall"] for times in beside)
    print(f"as the iteration loop runs it (the loop starts the sandbox host, the graders and the "
          f"worlds while the LLM writes the first policy; that took {prepared['setup']:.2f} s "
          f"here, left out), each iteration after a sequential one: sequential "
          + ", ".join(f"{times['wall']:.2f}" for times in beside) + " s; bgen "
          + ", ".join(f"{w:.2f}" for w in prepared["walls"])
          + f" s; ratio {beside_wall / prepared_wall:.2f}x")
    print()
    print(cpu_lines(prepared["cpu"], beside, n, len(os.sched_getaffinity(0))))
    print()
    capacity = bgen["wall"] * args.workers
    overhead = max(capacity - bgen["inside"], 0.0)
    inside_total = rep_t["episode"]
    print("where the time goes")
    print(f"  sequential ({seq_t['wall']:.2f} s): world building {_share(seq_t['world'], seq_t['wall'])}, "
          f"planning {_share(seq_t['plan'], seq_t['wall'])}, stepping (policy, dynamics, "
          f"collisions, logs) {_share(seq_t['step'], seq_t['wall'])}")
    print(f"  bgen ({capacity:.2f} worker-s = {bgen['wall']:.2f} s x {args.workers}): worker "
          f"overhead {_share(overhead, capacity)}; inside episodes {_share(bgen['inside'], capacity)}, "
          f"of which (warm-cache replay) world {_share(rep_t['world'], inside_total)}, "
          f"planning {_share(rep_t['plan'], inside_total)}, stepping "
          f"{_share(rep_t['step'], inside_total)}")
    print(f"  per episode: world built {seq_t['world'] / n * 1000:.0f} ms vs from the cache "
          f"{rep_t['world'] / args.episodes * 1000:.0f} ms; planning "
          f"{seq_t['plan'] / n * 1000:.0f} ms vs {rep_t['plan'] / args.episodes * 1000:.0f} ms")
    print()
    tree = "process tree: this process, sandbox host, policy processes, graders"
    if bgen_memory.peak_pss and sequential["peak_pss"]:
        print(f"peak memory (proportional set size, each shared page counted once): sequential "
              f"{_mb(sequential['peak_pss'])} (its process); bgen {_mb(bgen_memory.peak_pss)} "
              f"({tree})")
        print(f"peak memory (resident sets summed, a page shared by n processes counted n "
              f"times): sequential {_mb(sequential['peak_rss'])}; bgen {_mb(bgen_memory.peak)}")
    else:
        print(f"peak memory (resident sets summed): sequential {_mb(sequential['peak_rss'])} "
              f"(its process); bgen {_mb(bgen_memory.peak)} ({tree})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
