"""The machine and date a measurement was taken on, printed first by every benchmark.

``describe()`` -> e.g. ``"2 cores (Intel(R) Xeon(R) CPU @ 2.20GHz), Linux x86_64, Python
3.11.2, load 1.52, 2026-11-30 04:20 UTC"``: enough to compare a figure with the ones in
README.md and docs/, which say the machine and date they were measured on. Imports nothing
from bgen, so every layer's benchmark may use it.
"""

from __future__ import annotations

import os
import platform
import time


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``, else None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def describe(now: float | None = None) -> str:
    """One line naming the cores, CPU, OS, Python, the 1-minute load and the UTC date and time."""
    cores = os.cpu_count() or 1
    model = cpu_model()
    parts = [f"{cores} core{'s' if cores != 1 else ''}" + (f" ({model})" if model else ""),
             f"{platform.system()} {platform.machine()}", f"Python {platform.python_version()}"]
    try:
        parts.append(f"load {os.getloadavg()[0]:.2f}")
    except (AttributeError, OSError):
        pass
    parts.append(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now)))
    return ", ".join(parts)


def machine_line() -> str:
    """``machine: <describe()>``, the first line a benchmark prints."""
    return f"machine: {describe()}"
