"""Memory per file: one download worker streaming a very large original into S3.

Our worker streams it through multipart parts; the whole-body baseline (the stock operator
way) is measured on a smaller file that fits, and extrapolated linearly to the large size.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ditio_bench import ours
from ditio_bench.bench import END, START, TENANT_WINDOW, Bench
from ditio_bench.report import Figure, Target
from ditio_bench.servers import SandboxServer

MB = 1_000_000
MIB = 1024 * 1024
PEAK_TARGET_MB = 150.0


def human_size(size: int) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.1f} GB"
    return f"{size / MIB:.0f} MiB"


def run(bench: Bench) -> None:
    sizes = bench.sizes
    large = [sizes.huge_bytes, sizes.whole_body_bytes, sizes.part_sweep_bytes]
    tenant = {**TENANT_WINDOW, "seed": 5, "parents_per_hour": 3, "huge_sizes": large}
    with SandboxServer(**tenant) as sandbox:
        by_id = {entry["id"]: entry for entry in ours.list_entries(sandbox.info, START, END)}
        huge, whole, sweep = (by_id[file_id] for file_id in sandbox.info["huge_file_ids"])
        mine = _stream(bench, sandbox, huge, ours.Tuning())
        same_size = _stream(bench, sandbox, whole, ours.Tuning())
        baseline = _whole_body(bench, sandbox, whole)
        for part_size, parts in sizes.part_sweep:
            tuning = ours.Tuning(part_size_mb=part_size, part_concurrency=parts)
            result = _stream(bench, sandbox, sweep, tuning)
            bench.report.tunables.append(
                {
                    "sweep": f"part MiB x parts, {sweep['size'] / MIB:.0f} MiB file",
                    "name": "part_size_mb,part_concurrency",
                    "value": f"{part_size} x {parts}",
                    "files": 1,
                    "mb_per_s": result["mb_per_s"],
                    "peak_growth_mb": result["peak_growth_mb"],
                }
            )
    _figures(bench, mine, same_size, baseline)


def _stream(
    bench: Bench, sandbox: SandboxServer, entry: dict[str, Any], tuning: ours.Tuning
) -> dict[str, Any]:
    prefix = bench.prefix(f"large-{tuning.part_size_mb}x{tuning.part_concurrency}")
    spec = {
        "sandbox": sandbox.info,
        "prefix": prefix,
        "entries_file": bench.write_entries("large", [entry]),
        "tuning": asdict(tuning),
    }
    result = bench.job("batch", spec)
    bench.clear(prefix)
    if result["stats"].get("stored") != 1:
        raise RuntimeError(f"the large file was not stored: {result['stats']}")
    return {**result, "size": entry["size"], "mb_per_s": entry["size"] / MB / result["wall_s"]}


def _whole_body(bench: Bench, sandbox: SandboxServer, entry: dict[str, Any]) -> dict[str, Any]:
    prefix = bench.prefix("whole-body")
    spec = {
        "sandbox": sandbox.info,
        "prefix": prefix,
        "file_id": entry["id"],
        "url": entry["urls"]["original"],
        "size": entry["size"],
    }
    result = bench.job("whole_body", spec)
    bench.clear(prefix)
    return {**result, "size": entry["size"], "mb_per_s": entry["size"] / MB / result["wall_s"]}


def _figures(
    bench: Bench, mine: dict[str, Any], same_size: dict[str, Any], baseline: dict[str, Any]
) -> None:
    scale = mine["size"] / baseline["size"]
    extrapolated = baseline["peak_growth_mb"] * scale
    bench.report.details["memory"] = {
        "ours": mine,
        "ours_same_size": same_size,
        "whole_body": baseline,
        "scale": scale,
    }
    group = f"One worker, one {human_size(mine['size'])} original"
    small = human_size(baseline["size"])
    name = (
        f"whole body in memory: {baseline['peak_growth_mb']:.0f} MB at {small}, "
        f"x{scale:.2f} (linear)"
    )
    whole = f"whole body in memory, {small} file"
    figures = [
        Figure(
            group,
            "peak RSS growth over the idle worker",
            mine["peak_growth_mb"],
            extrapolated,
            name,
            "MB",
            Target("<", PEAK_TARGET_MB),
        ),
        Figure(
            group,
            f"peak RSS growth, {small} file",
            same_size["peak_growth_mb"],
            baseline["peak_growth_mb"],
            whole,
            "MB",
        ),
        Figure(
            group,
            f"throughput, {small} file",
            same_size["mb_per_s"],
            baseline["mb_per_s"],
            whole,
            "MB/s",
        ),
    ]
    for figure in figures:
        bench.report.add(figure)
    bench.report.notes.append(
        f"Peak RSS: our worker idles at {mine['idle_rss_mb']:.0f} MB and peaks at "
        f"{mine['peak_rss_mb']:.0f} MB streaming {human_size(mine['size'])} at "
        f"{mine['mb_per_s']:.0f} MB/s; the whole-body baseline was measured on {small} only "
        "(it holds every byte in memory) and scaled linearly to the large file."
    )
