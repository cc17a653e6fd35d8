"""One scale for every bounded wait in the suite.

Each test module bounds its waits by constants built with ``scaled(seconds)``; on a slow or
crowded machine ``BGEN_TEST_TIME_SCALE=3 python -m tests`` stretches them all at once.
Nothing in the suite asserts that anything is fast: these are limits on waiting, not timings.
"""

import os

TIME_SCALE = float(os.environ.get("BGEN_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    """``seconds`` times the suite's time scale."""
    return seconds * TIME_SCALE
