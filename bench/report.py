"""Benchmark results: the printed table and `bench/results.json`.

results.json maps a benchmark's name to {"value", "unit", "bare", "ratio"}. It is
merged: writing results replaces those benchmarks' entries and keeps the others.
"""

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True, slots=True)
class Goal:
    """What an issue asks of a benchmark: a ratio to its bare, or an absolute figure.

    Attributes:
        ratio_min: value / bare must be at least this (throughputs).
        ratio_max: value / bare must be at most this (latencies).
        value_max: value must stay below this, in the benchmark's unit (durations).
    """

    ratio_min: float | None = None
    ratio_max: float | None = None
    value_max: float | None = None

    def met(self, value: float, ratio: float) -> bool:
        return (
            (self.ratio_min is None or ratio >= self.ratio_min)
            and (self.ratio_max is None or ratio <= self.ratio_max)
            and (self.value_max is None or value < self.value_max)
        )

    def __str__(self) -> str:
        parts = [f"ratio >= {self.ratio_min:.2f}"] if self.ratio_min is not None else []
        parts += [f"ratio <= {self.ratio_max:g}"] if self.ratio_max is not None else []
        parts += [f"< {self.value_max:g}"] if self.value_max is not None else []
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Result:
    """One benchmark's figure and the bare limit it was compared with in the same run.

    Attributes:
        value: the measured figure, in unit.
        bare: the bare limit, in the same unit, measured with the same harness.
    """

    name: str
    value: float
    unit: str
    bare: float
    goal: Goal

    @property
    def ratio(self) -> float:
        return self.value / self.bare if self.bare > 0 else math.nan

    @property
    def met(self) -> bool:
        return self.goal.met(self.value, self.ratio)

    def record(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 4),
            "unit": self.unit,
            "bare": round(self.bare, 4),
            "ratio": round(self.ratio, 3),
        }


def table(results: Sequence[Result]) -> str:
    """The results as an aligned text table, one row per benchmark."""
    header = ("benchmark", "value", "unit", "bare", "ratio", "goal", "")
    rows = [
        (
            r.name,
            f"{r.value:.3g}" if r.value < 100 else f"{r.value:.1f}",
            r.unit,
            f"{r.bare:.3g}" if r.bare < 100 else f"{r.bare:.1f}",
            f"{r.ratio:.2f}",
            str(r.goal),
            "ok" if r.met else "GOAL NOT MET",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {1, 3, 4}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths).rstrip()
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def write(results: Iterable[Result], path: Path = RESULTS_FILE) -> None:
    """Merges results into the JSON file at path, keeping the entries of other benchmarks."""
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            existing = {}
        if isinstance(existing, dict):
            merged.update(existing)
    for result in results:
        merged[result.name] = result.record()
    text = json.dumps(dict(sorted(merged.items())), indent=2) + "\n"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class Suite:
    """Benchmarks that share their setup (servers, databases), run together.

    Attributes:
        names: the benchmarks it can run.
        run: runs the named ones (a subset of names) and yields each result when measured.
    """

    names: tuple[str, ...]
    run: Callable[[Sequence[str]], Iterator[Result]]
