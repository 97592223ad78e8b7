"""evaluate.py: metrics, the paired bootstrap and the incumbent comparison, on real data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import pandas as pd
import preprocess
import pytest
import train
import xgboost as xgb
from feature_schema import FEATURE_ORDER
from sklearn.metrics import roc_auc_score
from step_fixtures import pack_model, preprocess_args, read_json, write_raw_slice


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = write_raw_slice(tmp_path_factory.mktemp("raw"))
    out = tmp_path_factory.mktemp("processed")
    assert preprocess.main(preprocess_args(raw, out)) == 0
    return out


def train_and_pack(processed: Path, folder: Path, hp: train.Hyperparameters, rows: int) -> Path:
    """Train on the first `rows` training rows; returns the folder holding model.tar.gz."""
    order = list(train.load_metadata(processed / "train")["feature_order"])
    full = train.load_dataset(processed / "train" / "train.csv", order)
    subset = train.Dataset(full.features[:rows], full.labels[:rows])
    validation = train.load_dataset(processed / "validation" / "validation.csv", order)
    result = train.train_model(subset, validation, hp)
    model_dir = folder / "model"
    model_dir.mkdir(parents=True)
    train.save_model(result, model_dir, processed / "train" / "feature_metadata.json", hp)
    return pack_model(model_dir, folder / "packed").parent


@pytest.fixture(scope="module")
def strong_model(processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Regularised: two winter months are little data, and the test week's weather is new.
    hp = train.Hyperparameters(max_depth=3, min_child_weight=50, num_round=200)
    return train_and_pack(processed, tmp_path_factory.mktemp("strong"), hp, rows=10**9)


@pytest.fixture(scope="module")
def weak_model(processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One stump on 300 rows: a clearly worse model.
    hp = train.Hyperparameters(max_depth=1, num_round=1, early_stopping_rounds=1)
    return train_and_pack(processed, tmp_path_factory.mktemp("weak"), hp, rows=300)


def run_evaluate(
    model: Path,
    test: Path,
    out: Path,
    incumbent: Path | None,
    iterations: int = 300,
    threshold: float = 0.5,
) -> int:
    argv = ["--model-dir", str(model), "--test-dir", str(test), "--evaluation-dir", str(out)]
    argv += ["--incumbent-dir", str(incumbent or model)]
    argv += ["--has-incumbent", "true" if incumbent else "false"]
    argv += ["--bootstrap-iterations", str(iterations), "--seed", "42"]
    argv += ["--threshold", str(threshold)]
    return evaluate.main(argv)


def report_of(out: Path) -> dict[str, Any]:
    return read_json(out / "evaluation.json")


def test_weighted_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    scores = np.round(rng.random(2000) * 0.5 + labels * 0.2, 1)  # many ties
    auc = evaluate.WeightedAuc(labels, scores)
    assert auc(np.ones((1, 2000)))[0] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # Bootstrap counts give the AUC of the explicitly resampled rows.
    weights = evaluate.bootstrap_weights(np.random.default_rng(1), 3, 2000)
    assert (weights.sum(axis=1) == 2000).all()
    for row, w in zip(auc(weights), weights, strict=True):
        index = np.repeat(np.arange(2000), w.astype(int))
        assert row == pytest.approx(roc_auc_score(labels[index], scores[index]), abs=1e-12)


def test_calibration_bins_cover_every_row() -> None:
    labels = np.array([0, 1, 1, 0, 1])
    scores = np.array([0.05, 0.15, 0.18, 0.55, 1.0])
    bins = evaluate.calibration_bins(labels, scores)
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 5
    assert bins[1] == {
        "lower": 0.1,
        "upper": 0.2,
        "count": 2,
        "mean_predicted": pytest.approx(0.165),
        "observed_rate": 1.0,
    }
    assert bins[9]["count"] == 1  # a score of exactly 1 is in the last bin
    assert bins[2]["mean_predicted"] is None and bins[2]["observed_rate"] is None


def test_without_incumbent(strong_model: Path, processed: Path, tmp_path: Path) -> None:
    test_dir = processed / "test"
    assert run_evaluate(strong_model, test_dir, tmp_path, incumbent=None, threshold=0.3) == 0
    report = report_of(tmp_path)
    assert list(report) == [
        "binary_classification_metrics",
        "incumbent",
        "comparison",
        "window",
        "seeds",
        "model",
    ]
    assert (
        report["window"]
        == json.loads((processed / "train" / "feature_metadata.json").read_text())["split"]
    )
    assert report["seeds"] == {"training": 42, "bootstrap": 42}
    assert report["model"]["sha256"] == evaluate.archive_sha256(strong_model)
    assert len(report["model"]["sha256"]) == 64
    metrics = report["binary_classification_metrics"]
    assert list(metrics) == [
        "auc",
        "log_loss",
        "precision",
        "recall",
        "f1",
        "brier_score",
        "threshold",
        "calibration",
    ]
    test = pd.read_csv(processed / "test" / "test.csv")
    model = evaluate.load_model(strong_model, "model")
    scores = evaluate.predict(model.booster, test.iloc[:, 1:].to_numpy(dtype=float))
    assert metrics["auc"]["value"] == pytest.approx(roc_auc_score(test["delayed"], scores))
    assert 0.6 < metrics["auc"]["value"] < 0.95
    assert 0.001 < metrics["auc"]["standard_deviation"] < 0.05
    assert metrics["threshold"]["value"] == 0.3
    predicted = scores >= 0.3
    true_positive = int((predicted & (test["delayed"] == 1)).sum())
    assert metrics["precision"]["value"] == pytest.approx(true_positive / predicted.sum())
    assert metrics["recall"]["value"] == pytest.approx(true_positive / test["delayed"].sum())
    assert metrics["brier_score"]["value"] == pytest.approx(
        np.mean((scores - test["delayed"]) ** 2)
    )
    assert sum(b["count"] for b in metrics["calibration"]["bins"]) == len(test)
    assert report["incumbent"] == {
        "present": False,
        "comparable": False,
        "window_overlap": {},
        "auc": None,
        "auc_difference": {
            "value": None,
            "ci_lower": None,
            "ci_upper": None,
            "confidence": 0.95,
            "bootstrap_iterations": 300,
        },
    }
    assert report["comparison"]["non_inferior"] == 1
    assert report["comparison"]["margin"] == evaluate.DEFAULT_MARGIN


def test_same_model_as_incumbent_is_not_worse(
    strong_model: Path, processed: Path, tmp_path: Path
) -> None:
    assert run_evaluate(strong_model, processed / "test", tmp_path, incumbent=strong_model) == 0
    report = report_of(tmp_path)
    difference = report["incumbent"]["auc_difference"]
    assert report["incumbent"]["present"] is True
    assert difference["value"] == 0 and difference["ci_lower"] == difference["ci_upper"] == 0
    assert report["comparison"]["non_inferior"] == 1


def test_clearly_better_incumbent_blocks_the_candidate(
    strong_model: Path, weak_model: Path, processed: Path, tmp_path: Path
) -> None:
    assert run_evaluate(weak_model, processed / "test", tmp_path, incumbent=strong_model) == 0
    report = report_of(tmp_path)
    difference = report["incumbent"]["auc_difference"]
    candidate_auc = report["binary_classification_metrics"]["auc"]["value"]
    assert report["incumbent"]["auc"] > candidate_auc
    assert difference["value"] == pytest.approx(candidate_auc - report["incumbent"]["auc"])
    assert difference["ci_lower"] <= difference["value"] <= difference["ci_upper"] < 0
    assert report["comparison"]["non_inferior"] == 0


def test_better_candidate_passes(
    strong_model: Path, weak_model: Path, processed: Path, tmp_path: Path
) -> None:
    assert run_evaluate(strong_model, processed / "test", tmp_path, incumbent=weak_model) == 0
    difference = report_of(tmp_path)["incumbent"]["auc_difference"]
    assert 0 < difference["ci_lower"] <= difference["ci_upper"]
    assert report_of(tmp_path)["comparison"]["non_inferior"] == 1


def test_bootstrap_is_reproducible_with_the_seed(
    strong_model: Path, weak_model: Path, processed: Path, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        assert run_evaluate(weak_model, processed / "test", tmp_path / name, strong_model) == 0
    assert (tmp_path / "a" / "evaluation.json").read_bytes() == (
        tmp_path / "b" / "evaluation.json"
    ).read_bytes()


def test_incumbent_scores_in_its_own_vocabulary() -> None:
    features = pd.DataFrame({"carrier": [0.0, 1.0, 2.0, -1.0, np.nan], "distance": [1.0] * 5})
    recoded = evaluate.recode_categoricals(
        features,
        source={"carrier": ["AA", "B6", "ZZ"]},
        target={"carrier": ["9E", "AA", "B6"]},
    )
    assert recoded["carrier"].tolist()[:4] == [1.0, 2.0, -1.0, -1.0]
    assert np.isnan(recoded["carrier"].iloc[4])
    assert recoded["distance"].tolist() == [1.0] * 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--has-incumbent": "maybe"}, "'maybe' is not a boolean (allowed: true, false)"),
        ({"--threshold": "1.5"}, "'1.5' is not a probability"),
        ({"--margin": "0.3"}, "'0.3' is not a margin in AUC (allowed: 0 to 0.2)"),
        ({"--margin": "-0.01"}, "'-0.01' is not a margin in AUC"),
        ({"--bootstrap-iterations": "1"}, "'1' is not an integer >= 2"),
        ({"--has-incumbent": "true", "--incumbent-dir": "EMPTY"}, "no xgboost-model"),
        ({"--model-dir": "EMPTY"}, "no xgboost-model"),
    ],
)
def test_bad_input_gives_one_error_line(
    strong_model: Path,
    processed: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "empty").mkdir()
    options = {
        "--model-dir": str(strong_model),
        "--test-dir": str(processed / "test"),
        "--incumbent-dir": str(strong_model),
        "--has-incumbent": "false",
        "--evaluation-dir": str(tmp_path / "out"),
    }
    options.update({k: str(tmp_path / "empty") if v == "EMPTY" else v for k, v in change.items()})
    assert evaluate.main([part for pair in options.items() for part in pair]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_incumbent_features_follow_its_metadata() -> None:
    columns = ["carrier", "distance"]
    test = evaluate.TestSet(
        features=pd.DataFrame({"carrier": [0.0, 1.0], "distance": [10.0, 20.0]}),
        labels=np.array([0, 1]),
    )
    candidate = evaluate.LoadedModel(
        xgb.Booster(),
        {"feature_order": columns, "categorical_vocabulary": {"carrier": ["AA", "B6"]}},
    )
    incumbent = evaluate.LoadedModel(
        xgb.Booster(),
        {"feature_order": columns[::-1], "categorical_vocabulary": {"carrier": ["B6"]}},
    )
    assert evaluate.incumbent_features(test, candidate, incumbent).tolist() == [
        [10.0, -1.0],
        [20.0, 0.0],
    ]
    older = evaluate.LoadedModel(
        xgb.Booster(), {"feature_order": ["wingspan"], "categorical_vocabulary": {}}
    )
    with pytest.raises(evaluate.step_io.StepError, match="lacks: wingspan"):
        evaluate.incumbent_features(test, candidate, older)


def test_the_bootstrap_is_paired_so_correlated_models_differ_little() -> None:
    """Two models that mostly agree: resampling the SAME rows for both cancels the shared
    noise, so the difference varies far less than with independent resamples."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 5000).astype(np.float64)
    signal = labels + rng.normal(0, 1.2, labels.size)
    candidate = signal + rng.normal(0, 0.1, labels.size)
    incumbent = signal + rng.normal(0, 0.1, labels.size)
    cand, inc = evaluate.paired_bootstrap(labels, candidate, incumbent, iterations=400, seed=1)
    assert inc is not None
    paired_sd = float(np.std(cand - inc))
    independent, _ = evaluate.paired_bootstrap(labels, incumbent, None, iterations=400, seed=2)
    unpaired_sd = float(np.std(cand - independent))
    assert paired_sd < unpaired_sd / 3


def test_evaluation_records_the_digest_of_the_model_archive(tmp_path: Path) -> None:
    import hashlib

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.tar.gz").write_bytes(b"archive bytes")
    assert evaluate.archive_sha256(folder) == hashlib.sha256(b"archive bytes").hexdigest()
    assert evaluate.archive_sha256(tmp_path) is None  # an extracted model has no archive


def test_the_margin_decides_at_the_lower_bound(
    strong_model: Path, weak_model: Path, processed: Path, tmp_path: Path
) -> None:
    """Non-inferior exactly when the CI's lower end is >= -margin: both sides of the edge."""
    assert run_evaluate(weak_model, processed / "test", tmp_path / "m", strong_model) == 0
    lower = report_of(tmp_path / "m")["incumbent"]["auc_difference"]["ci_lower"]
    assert lower < 0
    test = evaluate.load_test_set(processed / "test", list(FEATURE_ORDER))
    weak = evaluate.load_model(weak_model, "weak")
    strong = evaluate.load_model(strong_model, "strong")
    features = test.features.to_numpy(dtype=np.float64)
    cand = evaluate.predict(weak.booster, features)
    inc = evaluate.predict(strong.booster, features)

    def verdict(margin: float) -> int:
        report = evaluate.build_report(test.labels, cand, inc, 0.5, 300, 42, margin)
        assert report["comparison"]["margin"] == margin
        return int(report["comparison"]["non_inferior"])

    assert verdict(-lower) == 1  # at the edge
    assert verdict(-lower - 1e-9) == 0
    assert verdict(0.0) == 0


def test_an_incumbent_trained_on_the_test_window_is_not_compared(
    strong_model: Path, weak_model: Path, processed: Path, tmp_path: Path
) -> None:
    test = {"split": {"test": ["2013-02-21", "2013-02-28"]}}
    assert evaluate.window_overlap(test, {"split": {"train": ["2013-01-01", "2013-02-20"]}}) == {}
    assert evaluate.window_overlap(
        test, {"split": {"train": ["2013-01-01", "2013-02-21"], "validation": ["x", "y"]}}
    ) == {"train": ["2013-01-01", "2013-02-21"]}
    assert evaluate.window_overlap(
        test, {"split": {"validation": ["2013-02-28", "2013-03-10"]}}
    ) == {"validation": ["2013-02-28", "2013-03-10"]}
    assert evaluate.window_overlap(test, None) == {}

    labels = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    good = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4])
    bad = 1.0 - good
    overlap = {"train": ["2013-01-01", "2013-02-21"]}
    report = evaluate.build_report(labels, bad, good, 0.5, 50, 1, 0.02, overlap)
    assert report["incumbent"]["comparable"] is False
    assert report["incumbent"]["window_overlap"] == overlap
    assert report["incumbent"]["auc"] == 1.0  # reported, not compared
    assert report["comparison"]["non_inferior"] == 1
    assert (
        evaluate.build_report(labels, bad, good, 0.5, 50, 1, 0.02)["comparison"]["non_inferior"]
        == 0
    )


# ---- the quality gate's interval: straddling zero, and its width -------------------------------


def _scored_pair(rows: int, seed: int, flip: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, an incumbent with informative scores, and a candidate: the incumbent's scores
    plus noise (a slightly worse model), with `flip` positive rows scored lowest."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.3).astype(np.int64)
    incumbent = np.clip(0.3 + 0.25 * labels + rng.normal(0, 0.2, rows), 0.001, 0.999)
    candidate = np.clip(incumbent + rng.normal(0, 0.1, rows), 0.001, 0.999)
    positives = np.flatnonzero(labels == 1)
    candidate[rng.choice(positives, size=flip, replace=False)] = 0.0005
    return labels, candidate, incumbent


# Issue 10 replaced "upper end >= 0" with non-inferiority: lower end >= -margin. The same
# intervals, judged by the new rule on both sides of the margin.


def test_an_interval_straddling_zero_passes_within_the_margin_not_without_one() -> None:
    labels, candidate, incumbent = _scored_pair(rows=600, seed=0, flip=0)
    report = evaluate.build_report(labels, candidate, incumbent, 0.5, iterations=400, seed=1)
    difference = report["incumbent"]["auc_difference"]
    assert difference["value"] < 0  # the candidate is worse on these rows ...
    lower = difference["ci_lower"]
    assert -0.03 <= lower < 0 < difference["ci_upper"]  # ... but not significantly
    wide = evaluate.build_report(labels, candidate, incumbent, 0.5, 400, 1, margin=0.03)
    assert wide["comparison"]["non_inferior"] == 1  # the lower end is within a 0.03 margin
    assert report["comparison"]["non_inferior"] == int(lower >= -evaluate.DEFAULT_MARGIN)
    strict = evaluate.build_report(labels, candidate, incumbent, 0.5, 400, 1, margin=0.0)
    assert strict["comparison"]["non_inferior"] == 0  # no margin: the lower end decides


@pytest.mark.parametrize("flip", [0, 40])  # just below zero; far below
def test_an_interval_wholly_below_zero_fails_without_a_margin(flip: int) -> None:
    labels, candidate, incumbent = _scored_pair(rows=600, seed=1, flip=flip)
    report = evaluate.build_report(labels, candidate, incumbent, 0.5, 400, 1, margin=0.0)
    difference = report["incumbent"]["auc_difference"]
    assert difference["ci_lower"] <= difference["ci_upper"] < 0
    assert report["comparison"]["non_inferior"] == 0
    # With the default margin only an interval reaching below -margin fails.
    default = evaluate.build_report(labels, candidate, incumbent, 0.5, iterations=400, seed=1)
    lower = default["incumbent"]["auc_difference"]["ci_lower"]
    assert lower < -evaluate.DEFAULT_MARGIN
    assert default["comparison"]["non_inferior"] == 0


def test_the_interval_is_the_central_95_percent_of_the_paired_bootstrap() -> None:
    labels, candidate, incumbent = _scored_pair(rows=400, seed=5, flip=6)
    iterations = 2000
    report = evaluate.build_report(labels, candidate, incumbent, 0.5, iterations, seed=7)
    difference = report["incumbent"]["auc_difference"]
    assert difference["confidence"] == 0.95
    # The same resamples, drawn again: 2.5% of them fall below the interval, 2.5% above.
    boot_c, boot_i = evaluate.paired_bootstrap(labels, candidate, incumbent, iterations, 7)
    assert boot_i is not None
    deltas = boot_c - boot_i
    below = float(np.mean(deltas < difference["ci_lower"]))
    above = float(np.mean(deltas > difference["ci_upper"]))
    assert 0.015 <= below <= 0.03 and 0.015 <= above <= 0.03
    assert difference["ci_lower"] < difference["value"] < difference["ci_upper"]


def test_without_an_incumbent_the_gate_passes_and_no_interval_is_reported() -> None:
    labels, candidate, _ = _scored_pair(rows=300, seed=1, flip=0)
    report = evaluate.build_report(labels, candidate, None, 0.5, iterations=50, seed=1)
    difference = report["incumbent"]["auc_difference"]
    assert report["incumbent"]["present"] is False
    assert difference["ci_lower"] is None and difference["ci_upper"] is None
    assert report["comparison"]["non_inferior"] == 1


@pytest.mark.parametrize(
    ("threshold", "precision", "recall"),
    [(0.4, 2 / 3, 1.0), (0.4000001, 1.0, 0.5), (0.0, 0.5, 1.0), (1.0, 1.0, 0.5)],
)
def test_the_decision_threshold_counts_a_score_equal_to_it_as_positive(
    threshold: float, precision: float, recall: float
) -> None:
    labels = np.array([0, 1, 1, 0])
    scores = np.array([0.0, 0.4, 1.0, 0.4])  # two rows exactly at 0.4, one of them positive
    point = evaluate.point_metrics(labels, scores, threshold)
    assert point["precision"] == pytest.approx(precision)
    assert point["recall"] == pytest.approx(recall)


def test_bootstrap_iterations_start_at_two() -> None:
    """Two resamples are the fewest with a spread; one is refused, as is a non-number."""
    assert evaluate.iterations_arg("2") == 2
    for value in ("1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not an integer >= 2"):
            evaluate.iterations_arg(value)
