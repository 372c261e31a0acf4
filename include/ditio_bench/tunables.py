"""Pick the best value of each tunable from the sweeps measured in this run.

Sweep points within ``NOISE`` of the fastest count as equally fast (runs on a shared
machine vary by about that much), and among those the cheapest value wins: fewer downloads
in flight, or less memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ditio_bench.report import Report

NOISE = 0.10
BOUND_SHARE = 0.80
PEAK_LIMIT_MB = 150.0
MAX_MAPPED = 64
BUSY_HOUR_FILES = 100_000

Entry = dict[str, Any]


def recommend(report: Report, latencies: tuple[float, float]) -> dict[str, Any]:
    """The best value per tunable, with the figures that made it best and the rule used."""
    found: dict[str, Any] = {}
    slow, fast = latencies
    for latency in (slow, fast):
        points = _sweep(report, "in_flight", latency)
        if not points:
            continue
        good = [entry for entry in points if entry["bound_share"] >= BOUND_SHARE]
        if latency == slow and good:
            best, rule = max(good, key=_rate), f"fastest with share of bound >= {BOUND_SHARE}"
        else:
            best = _cheapest(points, "files_per_s", key=lambda entry: entry["value"])
            rule = f"fewest in flight within {NOISE:.0%} of the fastest"
        found[f"in_flight @ {latency * 1000:.0f} ms"] = _evidence(
            best, rule, "files_per_s", "bound_share", "cpu_ms_per_file"
        )
    per_batch = _sweep(report, "files_per_batch", slow)
    if per_batch:
        files = _busy_hour_files(report)
        fitting = [e for e in per_batch if math.ceil(files / e["value"]) <= MAX_MAPPED]
        best = max(fitting or per_batch, key=_rate)
        rule = f"fastest that maps {files:,} files to at most {MAX_MAPPED} tasks"
        found["files_per_batch"] = {
            **_evidence(best, rule, "files_per_s"),
            "mapped_tasks": math.ceil(files / best["value"]),
        }
    parts = [entry for entry in report.tunables if entry["name"] == "part_size_mb,part_concurrency"]
    fitting = [entry for entry in parts if entry["peak_growth_mb"] < PEAK_LIMIT_MB]
    if fitting:
        best = _cheapest(fitting, "mb_per_s", key=lambda entry: entry["peak_growth_mb"])
        rule = f"least memory within {NOISE:.0%} of the fastest"
        found["part_size_mb x part_concurrency"] = _evidence(
            best, rule, "mb_per_s", "peak_growth_mb"
        )
    report.recommended = found
    return found


def _rate(entry: Entry) -> float:
    return entry["files_per_s"]


def _cheapest(points: list[Entry], speed: str, key: Callable[[Entry], float]) -> Entry:
    fastest = max(entry[speed] for entry in points)
    close = [entry for entry in points if entry[speed] >= fastest * (1 - NOISE)]
    return min(close, key=key)


def _sweep(report: Report, name: str, latency: float) -> list[Entry]:
    return [
        entry
        for entry in report.tunables
        if entry["name"] == name and entry.get("latency_s") == latency
    ]


def _busy_hour_files(report: Report) -> int:
    scale = report.details.get("scale", {}).get("large", {})
    return int(scale.get("unique_files") or BUSY_HOUR_FILES)


def _evidence(entry: Entry, rule: str, *fields: str) -> dict[str, Any]:
    figures = {field: round(entry[field], 3) for field in fields if field in entry}
    return {"value": entry["value"], **figures, "rule": rule}
