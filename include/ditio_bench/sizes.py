"""How big each scenario is: the full benchmark and a tiny smoke version of it."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Sizes:
    """Every size and sweep value of one benchmark run.

    :param files: files in the download-throughput tenant (one row and one file per parent).
    :param file_bytes: bytes of each of those files.
    :param baseline_files: files the sequential loop fetches per regime.
    :param operator_files: files the stock operator way fetches per regime.
    :param latencies: added file latency, seconds: (latency bound, CPU bound).
    :param huge_bytes: the large original streamed by one download worker.
    :param whole_body_bytes: the file the whole-body baseline holds in memory.
    :param scale_parents: parents in the one-hour listing tenant (about 2.5 rows each).
    :param scale_sweep_parents: smaller tenants listed the same way, to compare with.
    :param airflow_parents: parents of the hour the real scheduler runs.
    :param airflow_engine: ``stack`` (scheduler, REST API) or ``dag-test`` (``dag.test()``).
    :param in_flight_sweep: downloads in flight tried at both latencies.
    :param sweep_files: files per in-flight sweep point.
    :param batch_sweep: files per batch tried at the latency-bound regime.
    :param batch_sweep_files: files per files-per-batch sweep point.
    :param part_sweep: (part size MiB, parts in flight) tried on ``part_sweep_bytes``.
    :param part_sweep_bytes: the file of the part sweep.
    :param rerun_baseline_files: files the stock operator way re-runs.
    """

    files: int
    file_bytes: int
    baseline_files: int
    operator_files: int
    latencies: tuple[float, float]
    huge_bytes: int
    whole_body_bytes: int
    scale_parents: int
    scale_sweep_parents: tuple[int, ...]
    airflow_parents: int
    airflow_engine: str
    in_flight_sweep: tuple[int, ...]
    sweep_files: int
    batch_sweep: tuple[int, ...]
    batch_sweep_files: int
    part_sweep: tuple[tuple[int, int], ...]
    part_sweep_bytes: int
    rerun_baseline_files: int


FULL = Sizes(
    files=2000,
    file_bytes=200 * KIB,
    baseline_files=300,
    operator_files=100,
    latencies=(0.100, 0.020),
    huge_bytes=2_000_000_000,
    whole_body_bytes=256 * MIB,
    scale_parents=40_000,
    scale_sweep_parents=(4_000, 20_000),
    airflow_parents=1_600,
    airflow_engine="stack",
    in_flight_sweep=(8, 16, 32, 64),
    sweep_files=800,
    batch_sweep=(500, 1000, 2000),
    batch_sweep_files=2000,
    part_sweep=((8, 2), (16, 2), (8, 4), (32, 2)),
    part_sweep_bytes=512 * MIB,
    rerun_baseline_files=50,
)

SMOKE = Sizes(
    files=48,
    file_bytes=20 * KIB,
    baseline_files=8,
    operator_files=4,
    latencies=(0.020, 0.005),
    huge_bytes=12 * MIB,
    whole_body_bytes=6 * MIB,
    scale_parents=400,
    scale_sweep_parents=(40, 200),
    airflow_parents=12,
    airflow_engine="dag-test",
    in_flight_sweep=(4, 8),
    sweep_files=24,
    batch_sweep=(16, 48),
    batch_sweep_files=48,
    part_sweep=((5, 2),),
    part_sweep_bytes=11 * MIB,
    rerun_baseline_files=4,
)
