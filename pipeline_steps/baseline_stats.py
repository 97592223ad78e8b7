"""Training baseline statistics (baseline.json) and the distances drift compares them with.

Runs inside the SageMaker sklearn container: standard library, numpy, pandas, scipy only.

Conventions shared by the baseline and the drift job (both go through this module):
- Numeric bins are right-closed: bin 0 is x <= edges[0], bin i is edges[i-1] < x <= edges[i],
  the last bin is x > edges[-1]. Edges are training deciles taken as observed values
  (inverted CDF), deduplicated, with an edge equal to the maximum dropped, so that no
  training bin is empty even for discrete features (month, hour) or zero-heavy ones (precip).
- bin_fractions and categorical frequencies are fractions of the NON-missing values; the
  missing share is kept apart in missing_fraction.
- Categoricals arrive as integer codes into the training vocabulary; -1 (or any code outside
  the vocabulary) is unknown and counted under UNKNOWN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import feature_schema
import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
UNKNOWN = "__unknown__"
# Floor for fractions in PSI: an empty bin would otherwise give an infinite divergence.
PSI_EPSILON = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)
PERCENTILES = np.linspace(0.0, 1.0, 101)


# ---- baseline ---------------------------------------------------------------------------


def compute_baseline(
    features: pd.DataFrame,
    vocabulary: Mapping[str, Sequence[str]],
    split: Sequence[str] | None = None,
) -> dict[str, Any]:
    """baseline.json content for `features` (FEATURE_ORDER columns, categoricals as codes)."""
    missing = [name for name in feature_schema.FEATURE_ORDER if name not in features.columns]
    if missing:
        raise ValueError(f"baseline features lack columns {missing}")
    absent_vocab = [n for n in feature_schema.CATEGORICAL_FEATURES if n not in vocabulary]
    if absent_vocab:
        raise ValueError(f"no vocabulary for categorical features {absent_vocab}")
    per_feature: dict[str, Any] = {}
    for feature in feature_schema.FEATURES:
        column = pd.to_numeric(features[feature.name], errors="coerce")
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if feature.kind == "numeric":
            per_feature[feature.name] = numeric_stats(values)
        else:
            per_feature[feature.name] = categorical_stats(values, list(vocabulary[feature.name]))
    return {
        "schema_version": SCHEMA_VERSION,
        "feature_order": list(feature_schema.FEATURE_ORDER),
        "rows": len(features),
        "split": list(split) if split is not None else None,
        "features": per_feature,
    }


def numeric_stats(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    rows = len(values)
    stats_: dict[str, Any] = {
        "kind": "numeric",
        "count": len(present),
        "missing_fraction": _fraction(rows - len(present), rows),
    }
    if len(present) == 0:
        # Nothing to describe: drift reports such a feature as insufficient_data.
        stats_.update(mean=None, std=None, bin_edges=[], bin_fractions=[], quantiles=[])
        return stats_
    edges = decile_edges(present)
    counts = np.bincount(bin_index(edges, present), minlength=len(edges) + 1)
    stats_.update(
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if len(present) > 1 else 0.0,
        bin_edges=[float(e) for e in edges],
        bin_fractions=[float(c) for c in counts / len(present)],
        quantiles=[float(q) for q in np.quantile(present, PERCENTILES)],
    )
    return stats_


def categorical_stats(codes: np.ndarray, vocabulary: list[str]) -> dict[str, Any]:
    present = codes[~np.isnan(codes)]
    rows = len(codes)
    counts = category_counts(present, len(vocabulary))
    total = max(len(present), 1)
    frequencies = {name: float(counts[i]) / total for i, name in enumerate(vocabulary)}
    frequencies[UNKNOWN] = float(counts[-1]) / total
    return {
        "kind": "categorical",
        "count": len(present),
        "missing_fraction": _fraction(rows - len(present), rows),
        "vocabulary": list(vocabulary),
        "frequencies": frequencies,
    }


def decile_edges(present: np.ndarray) -> np.ndarray:
    """Inner decile edges as observed values, deduplicated, none equal to the maximum."""
    edges = np.unique(np.quantile(present, DECILES, method="inverted_cdf"))
    return edges[edges < present.max()]


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Right-closed bin of each (non-missing) value: 0..len(edges)."""
    return np.searchsorted(edges, values, side="left")


def category_counts(present_codes: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """Counts per code 0..size-1, then one last slot for unknown (-1, out of range, fractional)."""
    codes = present_codes.astype(np.int64, copy=False) if len(present_codes) else present_codes
    valid = (codes >= 0) & (codes < vocabulary_size) & (codes == present_codes)
    counts = np.bincount(codes[valid].astype(np.int64), minlength=vocabulary_size)
    return np.append(counts[:vocabulary_size], np.count_nonzero(~valid)).astype(np.int64)


def _fraction(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


# ---- distances ----------------------------------------------------------------------------


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index sum((a - e) * ln(a / e)), fractions floored at PSI_EPSILON."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def l_infinity(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    diff = np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64))
    return float(diff.max()) if diff.size else 0.0


def quantile_grid(quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline CDF known from its percentiles, at each distinct percentile value u.

    Returns (points, cdf_below, cdf_at): the baseline's P(X < u) and P(X <= u), to within
    the 1% grid. A value repeated over percentiles a..b is an atom: P(X < u) ~ a/100 and
    P(X <= u) ~ b/100 (the right-hand side, so the smallest point has cdf_below 0).
    """
    q = np.asarray(quantiles, dtype=np.float64)
    points, first = np.unique(q, return_index=True)
    last = len(q) - 1 - np.unique(q[::-1], return_index=True)[1]
    steps = len(q) - 1
    return points, first / steps, last / steps


def ecdf_counts(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of window values < and <= each grid point (additive across chunks)."""
    ordered = np.sort(values)
    below = np.searchsorted(ordered, points, side="left")
    at_or_below = np.searchsorted(ordered, points, side="right")
    return below.astype(np.int64), at_or_below.astype(np.int64)


def ks_from_counts(
    quantiles: Sequence[float], below: np.ndarray, at_or_below: np.ndarray, n: int
) -> float:
    """Kolmogorov-Smirnov distance between the window and the baseline, on the baseline grid.

    Compares both one-sided limits of the two CDFs at every distinct baseline percentile, so
    a change in the mass of an atom (precip = 0, a given hour) is seen, not only a shift.
    """
    if n == 0:
        return float("nan")
    _, cdf_below, cdf_at = quantile_grid(quantiles)
    gap_below = np.abs(below / n - cdf_below)
    gap_at = np.abs(at_or_below / n - cdf_at)
    return float(max(gap_below.max(), gap_at.max()))


def outside_fraction(
    quantiles: Sequence[float], below: np.ndarray, at_or_below: np.ndarray, n: int
) -> float:
    """Share of the window below the baseline's 1st percentile or above its 99th (~0.02 when
    nothing changed). Unlike PSI and KS it ignores reshuffling inside the training range and
    measures only traffic the model saw little of."""
    if n == 0 or len(quantiles) != len(PERCENTILES):
        return float("nan")
    points = quantile_grid(quantiles)[0]
    low = int(np.searchsorted(points, quantiles[1]))
    high = int(np.searchsorted(points, quantiles[-2]))
    return float((below[low] + n - at_or_below[high]) / n)


def ks_distance(quantiles: Sequence[float], values: np.ndarray) -> float:
    """KS distance of raw window values (NaN ignored) against the baseline percentiles."""
    present = values[~np.isnan(values)]
    points = quantile_grid(quantiles)[0]
    below, at_or_below = ecdf_counts(points, present)
    return ks_from_counts(quantiles, below, at_or_below, len(present))


def chi_square_pvalue(
    observed_counts: Sequence[float] | np.ndarray, expected_fractions: Sequence[float] | np.ndarray
) -> float:
    """Goodness-of-fit p-value of window counts against baseline category fractions.

    Expected fractions are floored at PSI_EPSILON (a category unseen in training would make the
    statistic infinite) and renormalised.
    """
    observed = np.asarray(observed_counts, dtype=np.float64)
    n = observed.sum()
    if n == 0 or observed.size < 2:
        return float("nan")
    expected = np.maximum(np.asarray(expected_fractions, dtype=np.float64), PSI_EPSILON)
    expected = expected / expected.sum() * n
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    # scipy.special, not scipy.stats: the same chi-square survival function, a third of the
    # import time (the statistic itself is one line).
    from scipy.special import chdtrc

    p = float(chdtrc(observed.size - 1, statistic))
    return p if math.isfinite(p) else float("nan")
