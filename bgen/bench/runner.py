"""``python -m bgen.bench runner``: episodes per second, in-process vs 1 worker vs N workers.

The standard episode: the A* policy below flies from the terrain scenario's start
[50, 50, -20] to [60, 60, -20], terrain seeds 0..7, delta 0.01, at most 3,000 steps. We time

* in-process: ``run_episode`` in this process, one after the other (the baseline; the policy
  is this module's own, so running it here is safe), with the heap frozen as in a policy
  process (``freeze_heap``); from the second run on its worlds come from the in-process world
  cache, as in a loop's later iterations; once with the steps discarded, once with each
  episode writing its steps as JSON lines to a file, which a worker's episode also produces
  (through its caller), so the worker overhead is given against both,
* 1 worker and N workers: ``run_episodes`` with fresh worker processes, files written, worlds
  from a world cache directory shared by all runs (built by the first),

and report episodes/s, the N-worker speedup, the trusted replay's cost (it runs in grader
processes, ``bgen.runner.grading``, beside the next episodes) and the worker machinery's
overhead (1 worker vs in-process). Medians of ``--repeat`` runs. Nothing is asserted: the figures are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

STANDARD_POLICY = '''\
"""The standard episode's policy: plan once with A*, fly it."""

TARGET = [60, 60, -20]


def init(config):
    global TARGET
    TARGET = [int(round(v)) for v in config["target"]]


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        return helpers.plan_to(world, agent.get_coord_py(), TARGET, 1.0, 0.0), "Replace"
    return None


def collect(step_ctx):
    return {"dist": f"{step_ctx['distance_to_target']:.2f}"}


def finalize(ep_ctx):
    return {"summary": f"steps={ep_ctx['steps']} success={ep_ctx['success']}"}
'''


class _Discard:
    """An episode sink that keeps nothing (the in-process baseline)."""

    def step(self, log):
        pass

    def warning(self, message):
        pass

    def phase(self, name):
        pass


class JsonLines:
    """An episode sink writing each step as one JSON line, as the prototype's runner does."""

    def __init__(self, path: Path):
        self.file = path.open("w", encoding="utf-8")

    def step(self, log) -> None:
        self.file.write(json.dumps(log) + "\n")

    def warning(self, message) -> None:
        pass

    def phase(self, name) -> None:
        pass

    def close(self) -> None:
        self.file.close()


def standard_config(backend: str, max_steps: int = 3000):
    from bgen.runner.episode import EpisodeConfig
    return EpisodeConfig(max_steps=max_steps, delta=0.01, target=(60, 60, -20),
                         start=(50, 50, -20), scenario="terrain", use_px4=True, backend=backend)


def freeze_heap() -> None:
    """Move everything alive now out of the collector's reach, as the sandbox host does before
    it forks: the episode's periodic ``gc.collect()`` then scans only what the episode made
    (with numpy loaded, a full collection of an unfrozen heap costs ~15 ms, a cost the worker
    never pays and the first prototype never had)."""
    import gc
    gc.collect()
    gc.freeze()


def time_in_process(config, seeds, steps_dir: Path | None = None) -> tuple[float, list[dict]]:
    """(s, summaries) of the episodes run here one after the other; with ``steps_dir`` each
    writes its steps as JSON lines into a file there, as a worker's episode has its caller do,
    else they are discarded."""
    from bgen.runner.episode import run_episode
    from bgen.sim import load_backend
    vxs = load_backend(config.backend)
    freeze_heap()
    started = time.perf_counter()
    summaries = []
    for seed in seeds:
        sink = _Discard() if steps_dir is None else JsonLines(steps_dir / f"steps.{seed}.jsonl")
        try:
            summaries.append(run_episode(STANDARD_POLICY, vxs, config, seed, sink)
                             .summary.to_dict())
        finally:
            if steps_dir is not None:
                sink.close()
    return time.perf_counter() - started, summaries


def time_workers(config, seeds, workers: int) -> tuple[float, list[dict]]:
    from bgen.runner.worker import run_episodes
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summaries = run_episodes(STANDARD_POLICY, seeds, config, Path(tmp), workers=workers)
        return time.perf_counter() - started, summaries


def time_replay(config, seeds) -> tuple[float, float]:
    """(s per episode of the trusted replay, of which building the world), on recorded steps."""
    from bgen.runner import replay
    from bgen.runner.episode import build_sim
    from bgen.runner.worker import run_sandboxed_episode
    from bgen.sim import load_backend
    vxs = load_backend(config.backend)
    total = build = 0.0
    for seed in seeds:
        summary, steps = run_sandboxed_episode(STANDARD_POLICY, config, seed)
        started = time.perf_counter()
        replay.grade_episode(summary, steps, config, seed, vxs)
        total += time.perf_counter() - started
        started = time.perf_counter()
        build_sim(vxs, config, seed)
        build += time.perf_counter() - started
    return total / len(seeds), build / len(seeds)


def outcome_line(summaries: list[dict]) -> str:
    counts = Counter(s["reason"] for s in summaries)
    text = ", ".join(f"{reason} {n}" for reason, n in counts.most_common())
    failed = [f"seed {s['seed']}: {s['reasons']}" for s in summaries
              if s["reason"] not in ("success", "max_steps")]
    return text + (f"  ({'; '.join(failed)})" if failed else "")


def check_arguments(parser, args, positive: tuple[str, ...]) -> None:
    """Exit with a one-line usage error (status 2) for a count below 1 among ``positive``, a
    negative ``--seed-start`` or an unknown ``--backend``."""
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expects a positive integer, "
                         f"actual: {getattr(args, name)}")
    if args.seed_start < 0:
        parser.error(f"--seed-start: expects an integer >= 0, actual: {args.seed_start}")
    from bgen.errors import ConfigError
    from bgen.sim import load_backend
    try:
        load_backend(args.backend)
    except ConfigError as error:
        parser.error(f"--backend: {error}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench runner",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="N for the N-worker run (default: number of cores)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--max-steps", type=int, default=3000)
    args = parser.parse_args(argv)
    check_arguments(parser, args, ("episodes", "workers", "repeat", "max_steps"))

    from dataclasses import replace

    from bgen.machine import machine_line
    from bgen.runner.worker import check_policy, probe_worker
    from bgen.sim import backend_label, load_backend
    cache = tempfile.TemporaryDirectory(prefix="bgen-bench-worlds-")
    config = replace(standard_config(args.backend, args.max_steps), world_cache_dir=cache.name)
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    started = time.perf_counter()
    probe_worker(config)                     # starts the sandbox host (once per process)
    startup = time.perf_counter() - started

    print(machine_line())
    print(f"standard episode: A* {list(config.start)} -> {list(config.target)}, terrain seeds "
          f"{seeds[0]}..{seeds[-1]}, delta {config.delta}, max {config.max_steps} steps, "
          f"backend {backend_label(load_backend(args.backend))}, {os.cpu_count()} cores, "
          f"median of {args.repeat}")
    print(f"sandbox host start (once per process, not counted below): {startup * 1000:.0f} ms; "
          f"one untimed round first (worlds built, graders started, the policy checked)")

    # Untimed warm-up, as a loop's first iteration: the worlds built and stored, the graders
    # started, the policy checked (its policy process's code is then sent to each episode).
    check_policy(STANDARD_POLICY, backend=config.backend)
    time_in_process(config, seeds)
    time_workers(config, seeds, args.workers)

    runs = {"in-process": [], "in-process, steps written": [], "1 worker": [],
            f"{args.workers} workers": []}
    inside = []          # 1-worker runs: episode time measured inside the workers
    outcomes = None
    for _ in range(args.repeat):
        elapsed, summaries = time_in_process(config, seeds)
        runs["in-process"].append(elapsed)
        outcomes = outcomes or summaries
        with tempfile.TemporaryDirectory(prefix="bgen-bench-steps-") as steps_dir:
            runs["in-process, steps written"].append(
                time_in_process(config, seeds, Path(steps_dir))[0])
        elapsed, summaries = time_workers(config, seeds, 1)
        runs["1 worker"].append(elapsed)
        inside.append(elapsed - sum(s["wall_time_s"] for s in summaries))
        runs[f"{args.workers} workers"].append(time_workers(config, seeds, args.workers)[0])

    steps = sum(s["steps"] for s in outcomes)
    print(f"outcomes: {outcome_line(outcomes)}; {steps} steps in all")
    medians = {name: statistics.median(times) for name, times in runs.items()}
    for name, seconds in medians.items():
        print(f"{name:<26} {len(seeds) / seconds:7.2f} episodes/s   {seconds:6.2f} s for "
              f"{len(seeds)}   {seconds / len(seeds) * 1000:7.1f} ms/episode   "
              f"{steps / seconds:9.0f} steps/s")
    one, many, base = medians["1 worker"], medians[f"{args.workers} workers"], medians["in-process"]
    written = medians["in-process, steps written"]
    machinery = statistics.median(inside)
    print(f"speedup {args.workers} workers vs 1 worker: {one / many:.2f}x")
    print(f"1 worker vs in-process: {(one - base) / base * 100:+.1f} % "
          f"({(one - base) / len(seeds) * 1000:+.1f} ms/episode); vs in-process with its steps "
          f"written: {(one - written) / written * 100:+.1f} % "
          f"({(one - written) / len(seeds) * 1000:+.1f} ms/episode; target <= +10 %)")
    replay_s, world_s = time_replay(config, seeds)
    print(f"trusted replay: {replay_s * 1000:.1f} ms/episode of a grader process's time (of "
          f"which building the world {world_s * 1000:.1f} ms), beside the next episodes; the "
          f"caller waits only for the last episode's")
    rest = machinery - replay_s
    print(f"worker machinery (1-worker wall time minus the episode time measured inside the "
          f"workers, minus the last replay: start, pipe, files): {rest / len(seeds) * 1000:.1f} "
          f"ms/episode = {rest / (one - machinery) * 100:.1f} % of the episode time "
          f"(target < 10 %)")
    cache.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
