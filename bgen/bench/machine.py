"""The machine and the date a benchmark ran on, in one line (figures need both)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def machine_line() -> str:
    """Cores, CPU model, OS, Python, load average and the UTC date, in one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"machine: {os.cpu_count()} cores, {model}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; load average {load}; "
            f"{date}")
