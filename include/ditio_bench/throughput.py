"""Download throughput and re-run cost: our batch worker against the two baselines.

One tenant of ``sizes.files`` files of ``sizes.file_bytes`` each; the sandbox adds a fixed
latency to every file request. Our worker fetches every file; the baselines fetch only the
first ``sizes.baseline_files`` / ``sizes.operator_files`` (they are slow), so rates are
compared per file and per second, never as totals.
"""

from __future__ import annotations

import os
from typing import Any

from ditio_bench import ours
from ditio_bench.bench import END, START, TENANT_WINDOW, Bench
from ditio_bench.report import Figure, Target
from ditio_bench.servers import SandboxServer

MB = 1_000_000
SPEEDUP_TARGET = 15.0
BOUND_TARGET = 0.80
CPU_TARGET = 1.5
RERUN_S3_TARGET = 0.1
WINDOW = {"since": "2026-04-12T06:00:00Z", "before": "2026-04-12T07:00:00Z"}


def run(bench: Bench) -> None:
    sizes = bench.sizes
    tenant = {
        **TENANT_WINDOW,
        "seed": 11,
        "parents_per_hour": sizes.files,
        "file_bytes": sizes.file_bytes,
        "images_per_parent": [1, 1],
        "shared_files": 0,
    }
    with SandboxServer(**tenant) as sandbox:
        entries = ours.list_entries(sandbox.info, START, END)
        entries_file = bench.write_entries("throughput", entries)
        synced: dict[str, str] = {}
        for latency in sizes.latencies:
            stored = _compare_at(bench, sandbox, entries_file, latency)
            synced = synced or stored
        _rerun(bench, sandbox, entries_file, synced)
        _sweeps(bench, sandbox, entries)


def _spec(sandbox: SandboxServer, prefix: str, **extra: Any) -> dict[str, Any]:
    return {"sandbox": sandbox.info, "prefix": prefix, **extra}


def _compare_at(
    bench: Bench, sandbox: SandboxServer, entries_file: str, latency: float
) -> dict[str, str]:
    """Ours, the vendor loop and the operator way at one latency; returns what stays stored."""
    sizes = bench.sizes
    tuning = ours.Tuning()
    slug = f"{latency * 1000:.0f}ms"
    sandbox.set_file_latency(latency)
    prefixes = {name: bench.prefix(f"{name}-{slug}") for name in ("ours", "vendor", "operator")}
    runs = {
        "ours": bench.measured_job(
            "batch", _spec(sandbox, prefixes["ours"], entries_file=entries_file), sandbox
        ),
        "vendor": bench.measured_job(
            "sequential",
            _spec(sandbox, prefixes["vendor"], limit=sizes.baseline_files, **WINDOW),
            sandbox,
        ),
        "operator": bench.measured_job(
            "operator",
            _spec(sandbox, prefixes["operator"], limit=sizes.operator_files, **WINDOW),
            sandbox,
        ),
    }
    _check_stored(runs["ours"], f"our worker at {slug}")
    rates = {name: rate(result) for name, result in runs.items()}
    bench.report.details[f"throughput_{slug}"] = {
        name: {**runs[name], **rates[name]} for name in runs
    }
    _figures(bench, latency, tuning.in_flight, rates)

    bench.clear(prefixes["operator"])
    if latency == sizes.latencies[0]:
        return {"ours": prefixes["ours"], "vendor": prefixes["vendor"]}
    bench.clear(prefixes["ours"])
    bench.clear(prefixes["vendor"])
    return {}


def rate(result: dict[str, Any]) -> dict[str, float]:
    """Per-second and per-file figures of one job, including the servers' CPU per file."""
    files, wall = result["files"], result["wall_s"]
    size = result["stats"]["bytes"] if "stats" in result else result["bytes"]
    rates = {
        "files_per_s": files / wall,
        "mb_per_s": size / MB / wall,
        "cpu_ms_per_file": result["cpu_s"] * 1000 / files,
    }
    for server in ("sandbox", "s3"):
        if f"{server}_cpu_s" in result:
            rates[f"{server}_cpu_ms_per_file"] = result[f"{server}_cpu_s"] * 1000 / files
    return rates


def _figures(
    bench: Bench, latency: float, in_flight: int, rates: dict[str, dict[str, float]]
) -> None:
    sizes = bench.sizes
    group = f"Download {sizes.file_bytes // 1024} KB files, {latency * 1000:.0f} ms per request"
    vendor_name = f"vendor loop ({sizes.baseline_files} files)"
    stock_name = f"HttpToS3Operator way ({sizes.operator_files} files)"
    mine, vendor, stock = rates["ours"], rates["vendor"], rates["operator"]
    latency_bound = latency == sizes.latencies[0]
    figures = [
        Figure(
            group,
            f"files/s ({sizes.files} files, {in_flight} in flight)",
            mine["files_per_s"],
            vendor["files_per_s"],
            vendor_name,
            "files/s",
            Target(">=", SPEEDUP_TARGET, on="ratio") if latency_bound else None,
        ),
        Figure(group, "files/s", mine["files_per_s"], stock["files_per_s"], stock_name, "files/s"),
        Figure(group, "MB/s", mine["mb_per_s"], vendor["mb_per_s"], vendor_name, "MB/s"),
        Figure(
            group,
            "share of concurrency bound: files/s / (in flight / latency)",
            mine["files_per_s"] / (in_flight / latency),
            vendor["files_per_s"] * latency,
            f"{vendor_name}, 1 in flight",
            "",
            Target(">=", BOUND_TARGET) if latency_bound else None,
        ),
        Figure(
            group,
            "CPU ms per file, worker process",
            mine["cpu_ms_per_file"],
            vendor["cpu_ms_per_file"],
            vendor_name,
            "ms",
            None if latency_bound else Target("<=", CPU_TARGET, on="ratio"),
        ),
        Figure(
            group,
            "CPU ms per file, worker process",
            mine["cpu_ms_per_file"],
            stock["cpu_ms_per_file"],
            stock_name,
            "ms",
        ),
    ]
    for figure in figures:
        bench.report.add(figure)
    if "s3_cpu_ms_per_file" in mine:
        bench.report.notes.append(
            f"At {latency * 1000:.0f} ms, per file our worker used {mine['cpu_ms_per_file']:.1f} "
            f"ms of CPU, the S3 server {mine['s3_cpu_ms_per_file']:.1f} ms and the sandbox "
            f"{mine['sandbox_cpu_ms_per_file']:.1f} ms, all on the same {_cpus()} cores."
        )


def _cpus() -> int:
    return os.cpu_count() or 1


def _check_stored(result: dict[str, Any], what: str) -> None:
    stored = result["stats"].get("stored", 0)
    if stored != result["files"]:
        raise RuntimeError(f"{what} stored {stored} of {result['files']} files: {result['stats']}")


def _rerun(bench: Bench, sandbox: SandboxServer, entries_file: str, synced: dict[str, str]) -> None:
    """Run a fully synced batch again, and the operator way over files already stored."""
    sandbox.set_file_latency(0)
    sandbox.reset_stats()
    again = bench.job("batch", _spec(sandbox, synced["ours"], entries_file=entries_file))
    our_files = sandbox.counts().get("file", 0)
    present = again["stats"].get("present", 0)

    limit = bench.sizes.rerun_baseline_files
    sandbox.reset_stats()
    stock = bench.job("operator", _spec(sandbox, synced["vendor"], limit=limit, **WINDOW))
    stock_files = sandbox.counts().get("file", 0)
    for prefix in synced.values():
        bench.clear(prefix)

    bench.report.details["rerun_batch"] = {
        "ours": {**again, "file_requests": our_files},
        "operator": {**stock, "file_requests": stock_files},
    }
    group = "Re-run of a fully synced batch"
    stock_name = f"HttpToS3Operator way ({stock['files']} files)"
    bench.report.add(
        Figure(
            group,
            f"file requests per stored file ({present} stored)",
            our_files / max(1, present),
            stock_files / max(1, stock["files"]),
            stock_name,
            "",
            Target("==", 0),
        )
    )
    bench.report.add(
        Figure(
            group,
            "S3 requests per object already present",
            again["s3_calls"] / max(1, present),
            stock["s3_requests"] / max(1, stock["files"]),
            stock_name,
            "",
            Target("<", RERUN_S3_TARGET),
        )
    )


def _sweeps(bench: Bench, sandbox: SandboxServer, entries: list[dict[str, Any]]) -> None:
    sizes = bench.sizes
    subset = bench.write_entries("sweep", entries[: sizes.sweep_files])
    for latency in sizes.latencies:
        sandbox.set_file_latency(latency)
        for in_flight in sizes.in_flight_sweep:
            tuning = {"in_flight": in_flight}
            _sweep_point(bench, sandbox, subset, latency, ("in_flight", in_flight), tuning)
    slow = sizes.latencies[0]
    sandbox.set_file_latency(slow)
    batch_entries = bench.write_entries("batch-sweep", entries[: sizes.batch_sweep_files])
    for per_batch in sizes.batch_sweep:
        tuning = {"files_per_batch": per_batch}
        point = ("files_per_batch", per_batch)
        _sweep_point(bench, sandbox, batch_entries, slow, point, tuning)
    sandbox.set_file_latency(0)


def _sweep_point(
    bench: Bench,
    sandbox: SandboxServer,
    entries_file: str,
    latency: float,
    point: tuple[str, int],
    tuning: dict[str, int],
) -> None:
    name, value = point
    prefix = bench.prefix(f"sweep-{name}-{value}")
    spec = _spec(sandbox, prefix, entries_file=entries_file, tuning=tuning)
    result = bench.measured_job("batch", spec, sandbox)
    bench.clear(prefix)
    rates = rate(result)
    in_flight = ours.Tuning.from_json(tuning).in_flight
    bench.report.tunables.append(
        {
            "sweep": f"{name} @ {latency * 1000:.0f} ms",
            "name": name,
            "latency_s": latency,
            "value": value,
            "files": result["files"],
            **rates,
            "bound_share": rates["files_per_s"] / (in_flight / latency),
        }
    )
