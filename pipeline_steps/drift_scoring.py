"""Drift scoring: per-feature PSI, KS / L-infinity, chi-square and the drift verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import baseline_stats
import numpy as np
import pandas as pd
from drift_window import CategoricalWindow, NumericWindow, Window

# Categories rarer than this in training are pooled (with unknown) into one PSI bin: many
# tiny bins make PSI noisy on small windows.
MIN_CATEGORY_FRACTION = 0.01

# Calendar features follow the window's dates, not the population: a one-month window always
# "drifts" on month against a multi-month baseline, a short one on day of week. Reported with
# their PSI but status "ignored"; they never raise the alarm.
DEFAULT_IGNORED = ("month", "day_of_week")


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    distance: float = 0.2
    min_records: int = 500
    ignored: frozenset[str] = frozenset(DEFAULT_IGNORED)


def score_numeric(
    stats: dict[str, Any], window: NumericWindow, thresholds: Thresholds
) -> dict[str, Any]:
    present = window.rows - window.missing
    result: dict[str, Any] = {
        "kind": "numeric",
        "count": present,
        "missing_fraction": _share(window.missing, window.rows),
        "baseline_missing_fraction": stats["missing_fraction"],
        "mean": window.total / present if present else None,
        "baseline_mean": stats["mean"],
    }
    if present < thresholds.min_records or stats["count"] < thresholds.min_records:
        return {
            **result,
            "status": "insufficient_data",
            "psi": None,
            "ks": None,
            "outside_baseline_range": None,
        }
    baseline_missing = stats["missing_fraction"]
    expected = np.append(
        np.asarray(stats["bin_fractions"]) * (1 - baseline_missing), baseline_missing
    )
    actual = np.append(window.bins, window.missing) / window.rows
    psi = baseline_stats.psi(expected, actual)
    quantiles = stats["quantiles"]
    ks = baseline_stats.ks_from_counts(quantiles, window.below, window.at_or_below, present)
    outside = baseline_stats.outside_fraction(quantiles, window.below, window.at_or_below, present)
    drifted = psi >= thresholds.psi or ks >= thresholds.distance
    return {
        **result,
        "status": "drift" if drifted else "ok",
        "psi": psi,
        "ks": ks,
        "outside_baseline_range": outside,
    }


def category_pools(frequencies: np.ndarray) -> np.ndarray:
    """PSI bin of each category slot: its own when common in training, else the shared pool.

    Unknown (the last slot) always goes to the pool.
    """
    common = frequencies[:-1] >= MIN_CATEGORY_FRACTION
    pools = np.full(len(frequencies), int(common.sum()), dtype=np.int64)
    pools[:-1][common] = np.arange(int(common.sum()))
    return pools


def score_categorical(
    stats: dict[str, Any], window: CategoricalWindow, thresholds: Thresholds
) -> dict[str, Any]:
    present = window.rows - window.missing
    result: dict[str, Any] = {
        "kind": "categorical",
        "count": present,
        "missing_fraction": _share(window.missing, window.rows),
        "baseline_missing_fraction": stats["missing_fraction"],
    }
    if present < thresholds.min_records or stats["count"] < thresholds.min_records:
        return {
            **result,
            "status": "insufficient_data",
            "psi": None,
            "l_infinity": None,
            "chi_square_pvalue": None,
        }
    names = [*stats["vocabulary"], baseline_stats.UNKNOWN]
    expected_freq = np.array([stats["frequencies"].get(n, 0.0) for n in names])
    actual_freq = window.counts / present
    pools = category_pools(expected_freq)
    size = int(pools.max()) + 1
    expected_pooled = np.bincount(pools, weights=expected_freq, minlength=size)
    actual_counts_pooled = np.bincount(pools, weights=window.counts, minlength=size)
    baseline_missing = stats["missing_fraction"]
    expected = np.append(expected_pooled * (1 - baseline_missing), baseline_missing)
    actual = np.append(actual_counts_pooled, window.missing) / window.rows
    psi = baseline_stats.psi(expected, actual)
    linf = baseline_stats.l_infinity(expected_freq, actual_freq)
    pvalue = baseline_stats.chi_square_pvalue(actual_counts_pooled, expected_pooled)
    drifted = psi >= thresholds.psi or linf >= thresholds.distance
    return {
        **result,
        "status": "drift" if drifted else "ok",
        "psi": psi,
        "l_infinity": linf,
        "chi_square_pvalue": _finite_or_none(pvalue),
        "top_changes": _top_changes(names, expected_freq, actual_freq),
    }


def _top_changes(
    names: Sequence[str], expected: np.ndarray, actual: np.ndarray, top: int = 3
) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(actual - expected), kind="stable")[:top]
    return [
        {"category": names[i], "baseline": float(expected[i]), "window": float(actual[i])}
        for i in order
    ]


def score_window(
    baseline: dict[str, Any], window: Window, thresholds: Thresholds
) -> dict[str, Any]:
    """Per-feature results and the overall verdict (no input bookkeeping)."""
    features: dict[str, Any] = {}
    for name, accumulator in window.features.items():
        stats = baseline["features"][name]
        if isinstance(accumulator, NumericWindow):
            features[name] = score_numeric(stats, accumulator, thresholds)
        else:
            features[name] = score_categorical(stats, accumulator, thresholds)
        if name in thresholds.ignored and features[name]["status"] != "insufficient_data":
            features[name]["status"] = "ignored"
    scored = {n: f for n, f in features.items() if f["status"] in ("drift", "ok")}
    drifted = sorted(n for n, f in scored.items() if f["status"] == "drift")
    if drifted:
        status = "drift"
    elif scored:
        status = "ok"
    else:
        status = "insufficient_data"
    worst = max(scored, key=lambda n: scored[n]["psi"]) if scored else None
    return {
        "overall": {
            "status": status,
            "drift_score": scored[worst]["psi"] if worst else None,
            "worst_feature": worst,
            "drifted_feature_count": len(drifted),
            "drifted_features": drifted,
            "scored_feature_count": len(scored),
        },
        "features": features,
    }


def score_frame(
    baseline: dict[str, Any], frame: pd.DataFrame, thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """Score one in-memory frame of encoded features (used by the local monthly report)."""
    window = Window(baseline)
    window.add(frame)
    return score_window(baseline, window, thresholds or Thresholds())


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None
