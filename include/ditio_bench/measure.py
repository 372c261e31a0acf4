"""What a worker process measures about itself: wall time, CPU time and peak memory.

Peak memory is the kernel's high-water mark of the resident set (``VmHWM``). It is reset to
the current RSS when the measured phase begins, so the reported growth covers that phase
only, over the worker's idle baseline (imports loaded, clients built).
"""

from __future__ import annotations

import gc
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
MB = 1024 * 1024


def _status_kib(name: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kib * 1024


def peak_rss_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel cannot."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    """User plus system CPU time of this process, all threads."""
    times = os.times()
    return times.user + times.system


@dataclass
class Meter:
    """Measures one phase of a worker process; use as a context manager."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    idle_rss: int = 0
    peak_rss: int = 0
    peak_reset: bool = False
    _began: float = field(default=0.0, repr=False)
    _cpu: float = field(default=0.0, repr=False)

    def __enter__(self) -> Meter:
        gc.collect()
        self.peak_reset = reset_peak()
        self.idle_rss = rss_bytes()
        self._cpu = cpu_seconds()
        self._began = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.monotonic() - self._began
        self.cpu_s = cpu_seconds() - self._cpu
        self.peak_rss = peak_rss_bytes()

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "idle_rss_mb": self.idle_rss / MB,
            "peak_rss_mb": self.peak_rss / MB,
            "peak_growth_mb": max(0, self.peak_rss - self.idle_rss) / MB,
            "peak_reset": self.peak_reset,
        }
