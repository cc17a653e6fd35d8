"""Episodes per second on the local executor beside a Dask LocalCluster of the same size.

    python -m bgen.bench dask [--episodes 8] [--workers 2] [--max-steps 600]

Both run the same policy (the example that plans to the target) on the same seeds; the cluster
is a LocalCluster of ``--workers`` processes with one thread each, on loopback. Printed side by
side: wall time, episodes/s, and the Dask path's overhead per episode (its extra wall time over
the local executor, divided by the episodes). The cluster's start-up is reported separately and
not counted. Needs the optional extra: pip install '.[dask]'.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bgen.machine import machine_line
from bgen.runner.episode import EpisodeConfig
from bgen.runner.executor import INSTALL_HINT, DaskExecutor, LocalExecutor

EXAMPLE = Path(__file__).resolve().parent.parent / "llm" / "context" / "examples" / "move_to_target.py"


def timed(run) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    summaries = run()
    return time.perf_counter() - started, summaries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench dask", description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=8, help="episodes per executor (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="local workers = Dask workers (default 2)")
    parser.add_argument("--max-steps", type=int, default=600, help="steps per episode (default 600)")
    args = parser.parse_args(argv)
    try:
        import distributed
    except ImportError:
        print(f"bench dask: {INSTALL_HINT}", file=sys.stderr)
        return 2
    code = EXAMPLE.read_text(encoding="utf-8")
    config = EpisodeConfig(max_steps=args.max_steps, render=False)
    seeds = list(range(args.episodes))
    print(machine_line())
    print(f"{args.episodes} episodes of {EXAMPLE.name}, {args.workers} workers, "
          f"max {args.max_steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        local_s, local = timed(lambda: LocalExecutor(args.workers).run_episodes(
            code, seeds, config, Path(tmp) / "local"))
        started = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                           processes=True, host="127.0.0.1",
                                           dashboard_address=None)
        client = distributed.Client(cluster, set_as_default=False)
        client.wait_for_workers(args.workers)
        startup_s = time.perf_counter() - started
        try:
            executor = DaskExecutor(client=client)
            dask_s, remote = timed(lambda: executor.run_episodes(code, seeds, config,
                                                                  Path(tmp) / "dask"))
        finally:
            client.close()
            cluster.close()
    same = [s["reason"] for s in local] == [s["reason"] for s in remote]
    print(f"{'executor':<10} {'wall_s':>8} {'episodes/s':>11}")
    print(f"{'local':<10} {local_s:>8.2f} {args.episodes / local_s:>11.2f}")
    print(f"{'dask':<10} {dask_s:>8.2f} {args.episodes / dask_s:>11.2f}")
    print(f"dask / local: {local_s / dask_s:.2f}x; Dask overhead per episode "
          f"{(dask_s - local_s) / args.episodes * 1000:+.0f} ms; cluster start-up {startup_s:.2f} s "
          f"(not counted); same reasons per seed: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
