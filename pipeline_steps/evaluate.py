"""Evaluate step: score the candidate (and the incumbent) on the test split.

    python3 evaluate.py --model-dir DIR --test-dir DIR --incumbent-dir DIR
        --has-incumbent true|false --evaluation-dir DIR
        [--threshold 0.5 --bootstrap-iterations 1000 --seed 42 --margin 0.025]

Writes evaluation-dir/evaluation.json (CONTRACTS.md): AUC with a bootstrap standard deviation,
log loss, precision/recall/F1 at the threshold, Brier score, 10 calibration bins, and a paired
bootstrap of the candidate-minus-incumbent AUC (the same resampled rows for both models)
with its 95% confidence interval. The candidate is non-inferior when there is no comparable
incumbent or the interval's lower end is >= -margin (a candidate at most `margin` AUC worse).
The margin absorbs training noise the bootstrap cannot see: six seeds on one window scatter
with sd 0.0097 AUC while the paired CI half-width is 0.003 (bench/bench_seed_noise.py); with
margin 0 equally good seeds blocked each other in 16 of 30 pairs, with 0.025 in 2 of 30.

The incumbent is scored on the candidate's test window. An incumbent whose training or
validation window overlaps that test window has seen those flights: its AUC there is
optimistic, so it is reported but not compared ("comparable": false) and the gate judges the
candidate on the AUC threshold alone.

The incumbent was trained on an older split whose categorical vocabulary may differ, so the
test rows are re-encoded into the incumbent's own vocabulary before it scores them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feature_schema
import gate_defaults
import numpy as np
import pandas as pd
import step_io
import xgboost as xgb
from sklearn import metrics

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "xgboost-model"
METADATA_FILE = "feature_metadata.json"
CALIBRATION_BINS = 10
CONFIDENCE = 0.95
# Bootstrap resamples per vectorised batch: bounds memory to batch x test rows weights.
BOOTSTRAP_BATCH = 50
DEFAULT_MARGIN = gate_defaults.NON_INFERIORITY_MARGIN


@dataclass(frozen=True)
class LoadedModel:
    booster: xgb.Booster
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class TestSet:
    features: pd.DataFrame
    labels: np.ndarray


# ---- Loading ------------------------------------------------------------------------------


def _read_archive(archive: Path) -> dict[str, bytes]:
    """The model files from model.tar.gz, read by name (nothing is extracted to disk)."""
    wanted = {MODEL_FILE, METADATA_FILE}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in wanted and name not in found:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
    except (tarfile.TarError, OSError) as exc:
        raise step_io.StepError(f"{archive} is not a readable model.tar.gz: {exc}") from exc
    return found


def archive_sha256(folder: Path) -> str | None:
    """sha256 of the model.tar.gz in folder (None for an extracted model)."""
    archives = [folder / MODEL_ARCHIVE] if (folder / MODEL_ARCHIVE).is_file() else []
    archives = archives or sorted(folder.glob("*.tar.gz"))
    if len(archives) != 1:
        return None
    digest = hashlib.sha256()
    with archives[0].open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(folder: Path, what: str) -> LoadedModel:
    """A model from model.tar.gz (or the only *.tar.gz, or an extracted xgboost-model)."""
    step_io.existing_dir(folder, what)
    archives = [folder / MODEL_ARCHIVE] if (folder / MODEL_ARCHIVE).is_file() else []
    archives = archives or sorted(folder.glob("*.tar.gz"))
    if len(archives) > 1:
        raise step_io.StepError(f"{what} {folder} holds several .tar.gz files, expected one")
    if archives:
        files = _read_archive(archives[0])
    else:
        files = {
            n: (folder / n).read_bytes()
            for n in (MODEL_FILE, METADATA_FILE)
            if (folder / n).is_file()
        }
    if MODEL_FILE not in files:
        raise step_io.StepError(
            f"{what} {folder}: no {MODEL_FILE} (in {MODEL_ARCHIVE} or as a file)"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(files[MODEL_FILE]))
    except xgb.core.XGBoostError as exc:
        raise step_io.StepError(f"{what}: {MODEL_FILE} is not an XGBoost model") from exc
    metadata = json.loads(files[METADATA_FILE]) if METADATA_FILE in files else None
    return LoadedModel(booster=booster, metadata=metadata)


def load_test_set(folder: Path, feature_order: list[str]) -> TestSet:
    step_io.existing_dir(folder, "--test-dir")
    frame = step_io.read_split(step_io.find_csv(folder, "test.csv"), feature_order)
    labels = frame[feature_schema.TARGET].to_numpy(dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise step_io.StepError("the test split holds only one class: AUC is undefined")
    return TestSet(features=frame[feature_order].astype("float64"), labels=labels)


def recode_categoricals(
    features: pd.DataFrame,
    source: dict[str, list[str]],
    target: dict[str, list[str]],
) -> pd.DataFrame:
    """Re-encode categorical codes from one training vocabulary into another (unknown -1)."""
    recoded = features.copy()
    for name in feature_schema.CATEGORICAL_FEATURES:
        if name not in recoded.columns or source.get(name) == target.get(name):
            continue
        position = {category: i for i, category in enumerate(target.get(name, []))}
        mapping = np.array([position.get(c, -1) for c in source.get(name, [])], dtype=np.float64)
        codes = recoded[name].to_numpy(dtype=np.float64)
        known = ~np.isnan(codes) & (codes >= 0) & (codes < len(mapping))
        out = np.where(np.isnan(codes), np.nan, -1.0)
        out[known] = mapping[codes[known].astype(np.int64)]
        recoded[name] = out
    return recoded


def incumbent_features(test: TestSet, candidate: LoadedModel, incumbent: LoadedModel) -> np.ndarray:
    """The test features as the incumbent expects them (its column order and vocabulary)."""
    if incumbent.metadata is None or candidate.metadata is None:
        return test.features.to_numpy(dtype=np.float64)
    order = list(incumbent.metadata["feature_order"])
    absent = [name for name in order if name not in test.features.columns]
    if absent:
        raise step_io.StepError(
            f"the incumbent needs features the test split lacks: {', '.join(absent)}; "
            "it cannot be compared on this test set"
        )
    recoded = recode_categoricals(
        test.features,
        candidate.metadata["categorical_vocabulary"],
        incumbent.metadata["categorical_vocabulary"],
    )
    return recoded[order].to_numpy(dtype=np.float64)


def predict(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(xgb.DMatrix(features, missing=np.nan)), dtype=np.float64)


# ---- Metrics ------------------------------------------------------------------------------


def calibration_bins(
    labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Equal-width probability bins: mean predicted vs observed delay rate, and the count."""
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    result = []
    for i in range(bins):
        inside = index == i
        count = int(inside.sum())
        result.append(
            {
                "lower": i / bins,
                "upper": (i + 1) / bins,
                "count": count,
                "mean_predicted": float(scores[inside].mean()) if count else None,
                "observed_rate": float(labels[inside].mean()) if count else None,
            }
        )
    return result


def point_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype(np.int64)
    return {
        "auc": float(metrics.roc_auc_score(labels, scores)),
        "log_loss": float(
            metrics.log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])
        ),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "brier_score": float(metrics.brier_score_loss(labels, scores)),
    }


class WeightedAuc:
    """AUC of one model's scores under many row weightings at once (bootstrap counts).

    Rows are sorted by score once and grouped by equal score; for each weighting, AUC =
    sum over positives of (negative weight below + half the tied negative weight), divided
    by (positive weight x negative weight). With all weights 1 it is the ordinary AUC.
    """

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        self.order = np.argsort(scores, kind="mergesort")
        ordered = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        self.positive = labels[self.order].astype(np.float64)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        w = weights[:, self.order]
        pos = np.add.reduceat(w * self.positive, self.starts, axis=1)
        neg = np.add.reduceat(w * (1.0 - self.positive), self.starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        total = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc: np.ndarray = (pos * (below + 0.5 * neg)).sum(axis=1) / total
        return np.where(total > 0, auc, np.nan)


def bootstrap_weights(rng: np.random.Generator, batch: int, rows: int) -> np.ndarray:
    """Resampling with replacement as counts: weights[b, i] = times row i was drawn."""
    draws = rng.integers(0, rows, size=(batch, rows))
    offsets = (np.arange(batch) * rows)[:, None]
    return (
        np.bincount((draws + offsets).ravel(), minlength=batch * rows)
        .reshape(batch, rows)
        .astype(np.float64)
    )


def paired_bootstrap(
    labels: np.ndarray,
    candidate: np.ndarray,
    incumbent: np.ndarray | None,
    iterations: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bootstrap AUCs of the candidate (and the incumbent on the very same resamples)."""
    rng = np.random.default_rng(seed)
    auc_candidate = WeightedAuc(labels, candidate)
    auc_incumbent = WeightedAuc(labels, incumbent) if incumbent is not None else None
    cand: list[np.ndarray] = []
    inc: list[np.ndarray] = []
    done = 0
    while done < iterations:
        batch = min(BOOTSTRAP_BATCH, iterations - done)
        weights = bootstrap_weights(rng, batch, len(labels))
        cand.append(auc_candidate(weights))
        if auc_incumbent is not None:
            inc.append(auc_incumbent(weights))
        done += batch
    return np.concatenate(cand), (np.concatenate(inc) if auc_incumbent is not None else None)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def window_overlap(
    candidate: dict[str, Any] | None, incumbent: dict[str, Any] | None
) -> dict[str, list[str]]:
    """The incumbent's train/validation ranges that overlap the candidate's test range.

    Ranges are [first, last] ISO dates (feature_metadata.json "split"); ISO dates compare as
    text. Metadata without a split (older models) overlaps nothing that can be known.
    """
    test = (candidate or {}).get("split", {}).get("test")
    if not test:
        return {}
    overlapping = {}
    for name in ("train", "validation"):
        own = (incumbent or {}).get("split", {}).get(name)
        if own and own[0] <= test[1] and test[0] <= own[1]:
            overlapping[name] = list(own)
    return overlapping


def build_report(
    labels: np.ndarray,
    candidate: np.ndarray,
    incumbent: np.ndarray | None,
    threshold: float,
    iterations: int,
    seed: int,
    margin: float = DEFAULT_MARGIN,
    overlap: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    point = point_metrics(labels, candidate, threshold)
    boot_candidate, boot_incumbent = paired_bootstrap(
        labels, candidate, incumbent, iterations, seed
    )
    std = float(np.nanstd(boot_candidate, ddof=1)) if iterations > 1 else math.nan
    difference: dict[str, Any] = {
        "value": None,
        "ci_lower": None,
        "ci_upper": None,
        "confidence": CONFIDENCE,
        "bootstrap_iterations": iterations,
    }
    incumbent_auc = None
    comparable = incumbent is not None and not overlap
    non_inferior = 1
    if incumbent is not None and boot_incumbent is not None:
        incumbent_auc = float(metrics.roc_auc_score(labels, incumbent))
        tail = (1 - CONFIDENCE) / 2 * 100
        lower, upper = np.nanpercentile(boot_candidate - boot_incumbent, [tail, 100 - tail])
        difference.update(
            value=point["auc"] - incumbent_auc, ci_lower=float(lower), ci_upper=float(upper)
        )
        if comparable:
            non_inferior = int(lower >= -margin)
    return {
        "binary_classification_metrics": {
            "auc": {"value": point["auc"], "standard_deviation": _finite(std)},
            "log_loss": {"value": point["log_loss"]},
            "precision": {"value": point["precision"]},
            "recall": {"value": point["recall"]},
            "f1": {"value": point["f1"]},
            "brier_score": {"value": point["brier_score"]},
            "threshold": {"value": threshold},
            "calibration": {"bins": calibration_bins(labels, candidate)},
        },
        "incumbent": {
            "present": incumbent is not None,
            "comparable": comparable,
            # The incumbent's own windows that overlap the candidate's test window.
            "window_overlap": dict(overlap or {}),
            "auc": incumbent_auc,
            "auc_difference": difference,
        },
        "comparison": {
            "non_inferior": non_inferior,
            "margin": margin,
            "criterion": "no comparable incumbent, or the 95% CI lower bound of "
            "candidate AUC - incumbent AUC >= -margin",
        },
    }


# ---- Entry point --------------------------------------------------------------------------


def _number_in(value: str, low: float, high: float, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not low <= number <= high:
        raise argparse.ArgumentTypeError(f"{value!r} is not {what} (allowed: {low:g} to {high:g})")
    return number


def probability(value: str) -> float:
    return _number_in(value, 0.0, 1.0, "a probability")


def margin_arg(value: str) -> float:
    return _number_in(value, 0.0, 0.2, "a margin in AUC")


def iterations_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 2:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer >= 2")
    return number


def parse_args(argv: list[str] | None) -> Any:
    parser = step_io.argument_parser("evaluate.py", "Evaluate the candidate vs the incumbent.")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--test-dir", required=True)
    parser.add_argument("--incumbent-dir", default=None)
    parser.add_argument("--has-incumbent", type=step_io.parse_bool, default=False)
    parser.add_argument("--evaluation-dir", required=True)
    parser.add_argument("--threshold", type=probability, default=0.5)
    parser.add_argument("--bootstrap-iterations", type=iterations_arg, default=1000)
    parser.add_argument("--seed", type=int, default=42, help="bootstrap seed")
    parser.add_argument(
        "--margin", type=margin_arg, default=DEFAULT_MARGIN, help="non-inferiority margin (AUC)"
    )
    args = parser.parse_args(argv)
    if args.has_incumbent and not args.incumbent_dir:
        raise step_io.StepError("--has-incumbent true needs --incumbent-dir")
    return args


def run(argv: list[str] | None) -> int:
    args = parse_args(argv)
    candidate = load_model(Path(args.model_dir), "--model-dir")
    if candidate.metadata is None:
        raise step_io.StepError(f"--model-dir {args.model_dir}: the model has no {METADATA_FILE}")
    test = load_test_set(Path(args.test_dir), list(candidate.metadata["feature_order"]))
    scores = predict(candidate.booster, test.features.to_numpy(dtype=np.float64))
    incumbent_scores = None
    overlap: dict[str, list[str]] = {}
    if args.has_incumbent:
        incumbent = load_model(Path(args.incumbent_dir), "--incumbent-dir")
        incumbent_scores = predict(
            incumbent.booster, incumbent_features(test, candidate, incumbent)
        )
        overlap = window_overlap(candidate.metadata, incumbent.metadata)
    report = build_report(
        test.labels,
        scores,
        incumbent_scores,
        args.threshold,
        args.bootstrap_iterations,
        args.seed,
        args.margin,
        overlap,
    )
    # Which window and seeds this verdict rests on.
    report["window"] = candidate.metadata.get("split", {})
    report["seeds"] = {
        "training": candidate.metadata.get("training", {}).get("seed"),
        "bootstrap": args.seed,
    }
    # The served artifact's digest: the release manifest pins it, and each serving region
    # verifies its copy against it.
    report["model"] = {"sha256": archive_sha256(Path(args.model_dir))}
    step_io.write_json(step_io.output_dir(args.evaluation_dir) / "evaluation.json", report)
    auc = report["binary_classification_metrics"]["auc"]
    line = f"evaluate: {len(test.labels)} test rows, AUC {auc['value']:.4f}"
    if auc["standard_deviation"] is not None:
        line += f" (sd {auc['standard_deviation']:.4f})"
    if incumbent_scores is not None:
        diff = report["incumbent"]["auc_difference"]
        line += (
            f"; incumbent AUC {report['incumbent']['auc']:.4f}, difference {diff['value']:+.4f} "
            f"95% CI [{diff['ci_lower']:+.4f}, {diff['ci_upper']:+.4f}]"
        )
    if overlap:
        line += f" (not compared: it trained on {', '.join(overlap)} data inside the test window)"
    comparison = report["comparison"]
    line += f"; non_inferior={comparison['non_inferior']} (margin {comparison['margin']})"
    print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    return step_io.run_main(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
