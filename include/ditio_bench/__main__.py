"""``python -m ditio_bench``: run the benchmark, print the table, write the JSON results."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _folder in ("include", "plugins"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

from ditio_bench import airflow_run, memory, scale, throughput  # noqa: E402
from ditio_bench.bench import Bench  # noqa: E402
from ditio_bench.report import Report  # noqa: E402
from ditio_bench.servers import BUCKET  # noqa: E402
from ditio_bench.sizes import FULL, SMOKE  # noqa: E402
from ditio_bench.tunables import recommend  # noqa: E402

log = logging.getLogger("ditio_bench")

SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "throughput": throughput.run,
    "memory": memory.run,
    "scale": scale.run,
    "airflow": airflow_run.run,
}
DEFAULT_OUTPUT = ROOT / "bench-results" / "latest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ditio_bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it all runs")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--verbose", action="store_true", help="log every measured job")
    return parser


def run(names: list[str], smoke: bool) -> tuple[Report, list[str]]:
    """Run the scenarios against a fresh S3 server; return the report and the errors."""
    from local_s3 import REGION, LocalS3

    sizes = SMOKE if smoke else FULL
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ditio-bench-") as scratch, LocalS3() as s3:
        s3.client().create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3_pid = s3.process.pid if s3.process else None
        bench = Bench(sizes, Path(scratch), s3.endpoint_url, BUCKET, s3_pid=s3_pid)
        for name in names:
            began = time.monotonic()
            print(f"-- {name} ...", flush=True)
            try:
                SCENARIOS[name](bench)
            except Exception as err:
                log.exception("Scenario %s failed", name)
                errors.append(f"{name}: {err}")
            print(f"-- {name} done in {time.monotonic() - began:.0f}s", flush=True)
        recommend(bench.report, sizes.latencies)
    return bench.report, errors


def print_report(report: Report, errors: list[str], seconds: float, smoke: bool) -> None:
    print()
    print(f"ditio-images benchmark{' (smoke sizes)' if smoke else ''}: {seconds:.0f} s")
    print(report.table())
    for note in report.notes:
        print(f"* {note}")
    if report.tunables:
        print()
        print("Tunables (this machine)")
        print(report.tunables_table())
    for name, evidence in report.recommended.items():
        figures = ", ".join(
            f"{key}={value}" for key, value in evidence.items() if key not in ("value", "rule")
        )
        print(f"Best {name}: {evidence['value']} ({figures}; {evidence['rule']})")
    for error in errors:
        print(f"ERROR {error}")
    failed = [f"{figure.group} / {figure.name}" for figure in report.failed]
    print("All targets met." if not failed and not errors else f"Missed: {failed}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = args.only or list(SCENARIOS)
    started = datetime.now(UTC)
    began = time.monotonic()
    report, errors = run(names, args.smoke)
    seconds = time.monotonic() - began
    print_report(report, errors, seconds, args.smoke)
    report.write_json(
        args.output,
        started=started.isoformat(timespec="seconds"),
        duration_s=round(seconds, 1),
        sizes="smoke" if args.smoke else "full",
        scenarios=names,
        errors=errors,
    )
    print(f"Results: {args.output}")
    return 1 if report.failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
