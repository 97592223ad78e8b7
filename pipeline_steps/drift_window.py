"""Drift window accumulation: additive per-feature counts of the captured inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import baseline_stats
import numpy as np
import pandas as pd


@dataclass
class NumericWindow:
    """Additive counts for one numeric feature: PSI bins, ECDF on the baseline grid, moments."""

    edges: np.ndarray
    points: np.ndarray
    rows: int = 0
    missing: int = 0
    total: float = 0.0
    bins: np.ndarray = field(init=False)
    below: np.ndarray = field(init=False)
    at_or_below: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.below = np.zeros(len(self.points), dtype=np.int64)
        self.at_or_below = np.zeros(len(self.points), dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        present = values[~np.isnan(values)]
        self.rows += len(values)
        self.missing += len(values) - len(present)
        self.total += float(present.sum())
        self.bins += np.bincount(
            baseline_stats.bin_index(self.edges, present), minlength=len(self.bins)
        )
        if len(self.points):
            # v < u_j  <=>  #{points <= v} <= j ;  v <= u_j  <=>  #{points < v} <= j
            size = len(self.points) + 1
            right = np.searchsorted(self.points, present, side="right")
            # One binary search: a value equal to a point has left = right - 1.
            left = right - (self.points[np.maximum(right - 1, 0)] == present)
            self.below += np.cumsum(np.bincount(right, minlength=size))[:-1]
            self.at_or_below += np.cumsum(np.bincount(left, minlength=size))[:-1]

    def merge(self, other: NumericWindow) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.total += other.total
        self.bins += other.bins
        self.below += other.below
        self.at_or_below += other.at_or_below


@dataclass
class CategoricalWindow:
    vocabulary_size: int
    rows: int = 0
    missing: int = 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.vocabulary_size + 1, dtype=np.int64)

    def add(self, codes: np.ndarray) -> None:
        present = codes[~np.isnan(codes)]
        self.rows += len(codes)
        self.missing += len(codes) - len(present)
        self.counts += baseline_stats.category_counts(present, self.vocabulary_size)

    def merge(self, other: CategoricalWindow) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.counts += other.counts


class Window:
    """The whole window's per-feature counts; feed it frames of FEATURE columns."""

    def __init__(self, baseline: dict[str, Any]) -> None:
        self.baseline = baseline
        self.features: dict[str, NumericWindow | CategoricalWindow] = {}
        for name in baseline["feature_order"]:
            stats = baseline["features"][name]
            if stats["kind"] == "numeric":
                points = baseline_stats.quantile_grid(stats["quantiles"])[0]
                edges = np.asarray(stats["bin_edges"], dtype=np.float64)
                self.features[name] = NumericWindow(edges=edges, points=points)
            else:
                self.features[name] = CategoricalWindow(len(stats["vocabulary"]))

    def add(self, frame: pd.DataFrame) -> None:
        for name, accumulator in self.features.items():
            accumulator.add(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))

    def merge(self, other: Window) -> None:
        """Add another window's counts (of another file): every statistic is additive."""
        for name, accumulator in self.features.items():
            accumulator.merge(other.features[name])  # type: ignore[arg-type]
