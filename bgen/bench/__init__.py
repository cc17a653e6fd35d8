"""Benchmarks that span layers, kept above everything they measure.

    python -m bgen.bench <name> [flags]        (installed: bgen-bench <name> [flags])

    sim       the standard headless episode, phase by phase       (bgen.sim.bench)
    runner    episodes per second: in-process vs 1 worker vs N     (bgen.bench.runner)
    loop      the prototype's sequential loop beside bgen's loop   (bgen.bench.loop)
    server    progress fan-out and proxy throughput vs raw TCP     (bgen.bench.server)
    render    world encoding and rendered episodes                 (bgen.bench.render)
    dask      the local executor beside a Dask LocalCluster         (bgen.bench.dask; needs .[dask])

Each prints what it measured on the machine it runs on, with the machine and the date, and
asserts nothing about speed. ``sim`` measures the simulator alone and so stays in
``bgen.sim``; the others import the runner, the server or ``bgen_server``, which nothing below
this package may do (``tests/test_layers.py``).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "sim": "bgen.sim.bench",
    "runner": "bgen.bench.runner",
    "loop": "bgen.bench.loop",
    "server": "bgen.bench.server",
    "render": "bgen.bench.render",
    "dask": "bgen.bench.dask",
}


def main(argv=None) -> int:
    """Run the benchmark named by the first argument with the remaining ones; 2 on a bad name."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        given = repr(argv[0]) if argv else "nothing"
        print(f"python -m bgen.bench: expects one of {', '.join(BENCHMARKS)}, actual: {given}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return module.main(argv[1:])
