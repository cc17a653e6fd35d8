"""One command for everything: ``bgen <command> [flags]`` (also ``python -m bgen``, ``python bgen.pyz``).

========================  ====================================================================
``bgen serve ...``        the server, the same flags as ``python bgen_server.py``
``bgen iterate ...``      ``python -m bgen.orchestrator.iterate``
``bgen run-policy ...``   ``python -m bgen.runner.run_policy``
``bgen bench <name> ...`` ``python -m bgen.bench <name>``
``bgen doctor``           where bgen runs from and the sandbox layers this machine provides
``bgen --version``        ``bgen <version>``
========================  ====================================================================

Each command's module is imported when the command is called, so ``bgen --version`` stays
fast and a command whose module is missing from this installation says so in one line.
Exit codes are the command's own; 2 for an unknown command; 130 when Ctrl-C reaches here.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys

from bgen import __version__

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _serve(argv: list[str]) -> int:
    import bgen_server
    return bgen_server.main(argv)


def _iterate(argv: list[str]) -> int:
    from bgen.orchestrator import iterate
    return iterate.main(argv)


def _run_policy(argv: list[str]) -> int:
    from bgen.runner import run_policy
    return run_policy.main(argv)


def optional_entry(module: str, name: str):
    """``module.name`` imported now, or None when ``module`` is not part of this installation.

    An error raised while importing a module that does exist (a bug, a missing dependency of
    it) propagates: only the absence of ``module`` itself is an expected state.
    """
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and (module == error.name or module.startswith(error.name + ".")):
            return None
        raise
    return getattr(loaded, name, None)


def _bench(argv: list[str]) -> int:
    bench_main = optional_entry("bgen.bench", "main")
    if bench_main is None:
        print("bgen bench: the benchmarks are not part of this installation (no module bgen.bench "
              "with a main)", file=sys.stderr)
        return EXIT_USAGE
    return bench_main(argv)


def _doctor(argv: list[str]) -> int:
    if argv:
        print(f"bgen doctor: takes no arguments, actual: {' '.join(argv)}", file=sys.stderr)
        return EXIT_USAGE
    import bgen
    print(f"bgen {__version__} from {os.path.dirname(os.path.abspath(bgen.__file__))}")
    print(f"Python {platform.python_version()} ({sys.implementation.name}) at {sys.executable} "
          f"on {platform.platform()}")
    isolation_report = optional_entry("bgen.runner.isolation", "isolation_report")
    if isolation_report is None:
        print("bgen doctor: the sandbox isolation report is not part of this installation "
              "(no bgen.runner.isolation.isolation_report)", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(isolation_report(), indent=2, default=str))
    return 0


COMMANDS = {
    "serve": (_serve, "run the server (flags of bgen_server.py; `bgen serve --help`)"),
    "iterate": (_iterate, "generate, run and critique policies (`bgen iterate --help`)"),
    "run-policy": (_run_policy, "run one policy file for some episodes (`bgen run-policy --help`)"),
    "bench": (_bench, "run a benchmark: `bgen bench <name> [flags]`"),
    "doctor": (_doctor, "show where bgen runs from and the sandbox layers available here"),
}


def usage(prog: str) -> str:
    lines = [f"usage: {prog} <command> [flags]   |   {prog} --version", "", "commands:"]
    lines += [f"  {name:<11} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "bgen") -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a command; return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(prog), file=sys.stderr)
        return EXIT_USAGE
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help", "help"):
        print(usage(prog))
        return 0
    if command in ("-V", "--version"):
        print(f"bgen {__version__}")
        return 0
    if command not in COMMANDS:
        print(f"{prog}: unknown command {command!r}; expects one of {', '.join(COMMANDS)} or --version",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[command][0](rest)
    except KeyboardInterrupt:
        print(f"{prog} {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
