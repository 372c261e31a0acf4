"""Scale of one interval: listing memory, XCom size and mapped tasks for a busy hour.

The list task's memory is bounded by one API page (``ChunkLimit`` parents), not by the rows
of the hour; so the busy hour is compared with a smaller hour whose pages are just as full,
and with a 10,000-row hour, whose pages are smaller.
"""

from __future__ import annotations

from typing import Any

from ditio_bench.bench import END, START, TENANT_WINDOW, Bench
from ditio_bench.report import Figure, Target
from ditio_bench.servers import SandboxServer

MAX_MAP_LENGTH = 1024
INDEPENDENCE_TARGET = 1.25
XCOM_TARGET = 64 * 1024
MAPPED_TARGET = 64


def run(bench: Bench) -> None:
    sizes = bench.sizes
    big = _listing(bench, sizes.scale_parents, seed=3)
    others = [
        _listing(bench, parents, seed=4 + number)
        for number, parents in enumerate(sizes.scale_sweep_parents)
    ]
    bench.report.details["scale"] = {"large": big, "smaller": others}
    small, full = others[0], others[-1]
    group = f"One interval of {big['rows']:,} rows ({big['pages']} pages)"
    page = f"largest page {big['largest_page_rows']:,} rows"
    figures = [
        Figure(
            group,
            f"listing peak RSS growth, list + plan ({page})",
            big["peak_growth_mb"],
            full["peak_growth_mb"],
            _same_at(full),
            "MB",
            Target("<=", INDEPENDENCE_TARGET, on="ratio"),
        ),
        Figure(
            group,
            "listing peak RSS growth, list + plan",
            big["peak_growth_mb"],
            small["peak_growth_mb"],
            _same_at(small),
            "MB",
        ),
        Figure(
            group,
            "XCom handed to the download task",
            big["xcom_bytes"],
            big["per_file_xcom_bytes"],
            "one descriptor per file",
            "bytes",
            Target("<", XCOM_TARGET),
        ),
        Figure(
            group,
            f"mapped download tasks ({big['unique_files']:,} files)",
            big["descriptors"],
            big["unique_files"],
            "one task per file",
            "",
            Target("<=", MAPPED_TARGET),
        ),
        Figure(
            group,
            "listing + planning time",
            big["wall_s"],
            small["wall_s"],
            f"same at {small['rows']:,} rows",
            "s",
        ),
    ]
    for figure in figures:
        bench.report.add(figure)


def _same_at(result: dict[str, Any]) -> str:
    return f"same at {result['rows']:,} rows (largest page {result['largest_page_rows']:,})"


def _listing(bench: Bench, parents: int, seed: int) -> dict[str, Any]:
    tenant = {**TENANT_WINDOW, "seed": seed, "parents_per_hour": parents, "file_bytes": 1024}
    prefix = bench.prefix(f"listing-{parents}")
    with SandboxServer(**tenant) as sandbox:
        spec = {
            "sandbox": sandbox.info,
            "prefix": prefix,
            "start": START.isoformat(),
            "end": END.isoformat(),
            "max_map_length": MAX_MAP_LENGTH,
        }
        result = bench.job("listing", spec)
    bench.clear(prefix)
    return result
