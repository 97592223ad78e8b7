"""Seed noise of training vs. the bootstrap's view of it: what the gate's margin must absorb.

    .venv/bin/python bench/bench_seed_noise.py [--seeds 5] [--window-end 2013-06-30]

Preprocesses the bundled data once (the default rolling window ending at --window-end), trains
the default model with several seeds on the same split, and prints each seed's test AUC, the
standard deviation across seeds, the paired-bootstrap standard deviation of one pair's AUC
difference, and for several margins the share of (candidate, incumbent) seed pairs that
evaluate.py's gate passes. Equally good models should pass (nearly) always.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pipeline_steps"))
sys.path.insert(0, str(ROOT / "tests"))

import evaluate  # noqa: E402
import preprocess  # noqa: E402
import train  # noqa: E402
from step_fixtures import reference_join, write_joined  # noqa: E402

from mlops.local.run_local import bundled_data_dir, stage_raw_data  # noqa: E402

MARGINS = (0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--window-end", default="2013-06-30")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = work / "raw"
        stage_raw_data(bundled_data_dir(), raw)
        joined = write_joined(reference_join(raw), work / "joined")
        argv = ["--joined-dir", str(joined), "--window-end", args.window_end]
        for name in ("train", "validation", "test", "baseline"):
            argv += [f"--{name}-dir", str(work / name)]
        assert preprocess.main(argv) == 0
        meta = train.load_metadata(work / "train")
        order = list(meta["feature_order"])
        train_set = train.load_dataset(work / "train" / "train.csv", order)
        validation = train.load_dataset(work / "validation" / "validation.csv", order)
        test = evaluate.load_test_set(work / "test", order)
        features = test.features.to_numpy(dtype=np.float64)
        scores = {}
        for seed in range(1, args.seeds + 1):
            result = train.train_model(train_set, validation, train.Hyperparameters(seed=seed))
            scores[seed] = evaluate.predict(result.booster, features)
            auc = evaluate.point_metrics(test.labels, scores[seed], 0.5)["auc"]
            print(f"seed {seed}: test AUC {auc:.4f}", flush=True)
    aucs = np.array([evaluate.point_metrics(test.labels, s, 0.5)["auc"] for s in scores.values()])
    print(f"seed sd of test AUC: {aucs.std(ddof=1):.4f} (range {aucs.min():.4f}-{aucs.max():.4f})")
    pairs = list(itertools.permutations(scores, 2))
    reports = [
        evaluate.build_report(test.labels, scores[a], scores[b], 0.5, args.iterations, 42, 0.0)
        for a, b in pairs
    ]
    diffs = [r["incumbent"]["auc_difference"] for r in reports]
    half_widths = [(d["ci_upper"] - d["ci_lower"]) / 2 for d in diffs]
    print(
        f"paired bootstrap: mean 95% CI half-width of a pair's difference {np.mean(half_widths):.4f}"
    )
    print(
        f"bootstrap sd of one model's AUC: "
        f"{reports[0]['binary_classification_metrics']['auc']['standard_deviation']:.4f}"
    )
    for margin in MARGINS:
        passed = sum(d["ci_lower"] >= -margin for d in diffs)
        print(f"margin {margin:.3f}: equally good seed pairs passing {passed}/{len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
