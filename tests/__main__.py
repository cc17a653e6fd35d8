"""Run the whole suite: ``python -m tests [pattern-or-module ...]``.

Discovers ``tests/test_*.py``, runs them with the stdlib runner and ends with one
line ``N passed, N failed`` (failed counts errors too); the exit code is 1 when
anything failed, so CI turns red.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build_suite(argv):
    loader = unittest.TestLoader()
    if not argv:
        return loader.discover(HERE, pattern="test_*.py", top_level_dir=ROOT)
    names = [a if a.startswith("tests.") else "tests." + a.removesuffix(".py") for a in argv]
    return loader.loadTestsFromNames(names)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    os.chdir(ROOT)
    suite = build_suite(argv)
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=int(os.environ.get("BGEN_TEST_VERBOSITY", "1"))).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed ({len(result.skipped)} skipped, {time.monotonic() - started:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
