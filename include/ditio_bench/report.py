"""Figures, their baselines and targets: the printed table and the JSON results."""

from __future__ import annotations

import json
import math
import operator
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Target:
    """A pass mark on the figure itself (``on="ours"``) or on ours ÷ baseline (``"ratio"``)."""

    compare: str
    limit: float
    on: str = "ours"

    def check(self, figure: Figure) -> bool | None:
        value = figure.ours if self.on == "ours" else figure.ratio
        if value is None:
            return None
        return COMPARE[self.compare](value, self.limit)

    def describe(self, unit: str) -> str:
        if self.on == "ratio":
            return f"{self.compare} {_number(self.limit)}x"
        return f"{self.compare} {_number(self.limit)} {unit}".rstrip()


@dataclass
class Figure:
    """One measured figure beside the baseline measured in the same run."""

    group: str
    name: str
    ours: float | None
    baseline: float | None
    baseline_name: str
    unit: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.baseline is None:
            return None
        if self.baseline == 0:
            return 0.0 if self.ours == 0 else math.inf
        return self.ours / self.baseline

    @property
    def passed(self) -> bool | None:
        return self.target.check(self) if self.target else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.describe(self.unit) if self.target else None
        data["ratio"] = None if self.ratio in (None, math.inf) else self.ratio
        data["passed"] = self.passed
        return data


@dataclass
class Report:
    """Everything one benchmark run found."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tunables: list[dict[str, Any]] = field(default_factory=list)
    recommended: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    @property
    def failed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.passed is False]

    def table(self) -> str:
        header = ("Figure", "Ours", "Baseline", "Baseline is", "Ratio", "Target", "Result")
        rows = [header]
        group = None
        for figure in self.figures:
            if figure.group != group:
                group = figure.group
                rows.append((f"[{group}]", "", "", "", "", "", ""))
            rows.append(_figure_row(figure))
        return _render(rows)

    def tunables_table(self) -> str:
        header = ("Sweep", "Value", "Files/s", "MB/s", "Share of bound", "CPU ms/file", "Peak MB")
        rows = [header]
        for entry in self.tunables:
            rows.append(
                (
                    entry["sweep"],
                    str(entry["value"]),
                    _number(entry.get("files_per_s")),
                    _number(entry.get("mb_per_s")),
                    _number(entry.get("bound_share")),
                    _number(entry.get("cpu_ms_per_file")),
                    _number(entry.get("peak_growth_mb")),
                )
            )
        return _render(rows)

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {
            **extra,
            "machine": machine(),
            "passed": not self.failed and not extra.get("errors"),
            "figures": [figure.to_json() for figure in self.figures],
            "notes": self.notes,
            "tunables": self.tunables,
            "recommended": self.recommended,
            "details": self.details,
        }

    def write_json(self, path: Path, **extra: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(**extra), indent=2) + "\n", encoding="utf-8")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def _figure_row(figure: Figure) -> tuple[str, ...]:
    result = {True: "PASS", False: "FAIL", None: "info"}[figure.passed]
    ratio = figure.ratio
    unit = f" {figure.unit}" if figure.unit else ""
    return (
        f"  {figure.name}",
        f"{_number(figure.ours)}{unit}",
        f"{_number(figure.baseline)}{unit}",
        figure.baseline_name,
        "-" if ratio is None else ("inf" if ratio == math.inf else f"{_number(ratio)}x"),
        figure.target.describe(figure.unit) if figure.target else "",
        result,
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.2f}"
    return f"{value:.4f}"


def _render(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column in (0, 3, 5) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
