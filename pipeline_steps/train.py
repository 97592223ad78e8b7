"""Train step (XGBoost framework mode, run by the sagemaker-training toolkit).

    python3 train.py --max_depth 6 --eta 0.1 --num_round 500 ...

Hyperparameters arrive as command-line arguments; folders come from SM_CHANNEL_TRAIN,
SM_CHANNEL_VALIDATION, SM_MODEL_DIR and SM_OUTPUT_DATA_DIR (the /opt/ml paths are only
fallbacks). Early stopping watches the validation metric. With a checkpoint folder
(--checkpoint-dir, SM_CHECKPOINT_DIR, or /opt/ml/checkpoints when it exists: managed spot
training), the booster is saved every --checkpoint_interval rounds and a restarted job resumes
from the latest one.

Writes SM_MODEL_DIR/xgboost-model (XGBoost's own UBJSON format, cut at the best iteration and
without feature names, so the XGBoost container's default inference can serve CSV rows) and
copies feature_metadata.json next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feature_schema
import numpy as np
import step_io
import xgboost as xgb

METADATA_FILE = "feature_metadata.json"
BASELINE_FILE = "baseline.json"
MODEL_FILE = "xgboost-model"
CHECKPOINT_PATTERN = re.compile(r"^xgboost-checkpoint-(\d+)\.ubj$")
CHECKPOINTS_KEPT = 2
EVAL_METRICS = ("auc", "logloss")


@dataclass(frozen=True)
class Hyperparameters:
    max_depth: int = 6
    eta: float = 0.1
    num_round: int = 500
    early_stopping_rounds: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    seed: int = 42
    eval_metric: str = "auc"
    checkpoint_interval: int = 10

    def booster_params(self) -> dict[str, Any]:
        # The early-stopping metric goes last: XGBoost stops on the last metric of the last set.
        metrics = [m for m in EVAL_METRICS if m != self.eval_metric] + [self.eval_metric]
        return {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.eta,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "seed": self.seed,
            "eval_metric": metrics,
        }


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray
    labels: np.ndarray


# ---- Data ---------------------------------------------------------------------------------


def load_metadata(channel: Path) -> dict[str, Any]:
    path = channel / METADATA_FILE
    if not path.is_file():
        raise step_io.StepError(f"{METADATA_FILE} not found in the train channel {channel}")
    metadata: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return metadata


def load_dataset(path: Path, feature_order: list[str]) -> Dataset:
    frame = step_io.read_split(path, feature_order)
    labels = frame[feature_schema.TARGET].to_numpy(dtype=np.float64)
    if not np.isin(labels, (0.0, 1.0)).all():
        raise step_io.StepError(f"{path.name}: the {feature_schema.TARGET} column must be 0 or 1")
    features = frame[feature_order].to_numpy(dtype=np.float64)
    return Dataset(features=features, labels=labels)


def to_dmatrix(data: Dataset) -> xgb.DMatrix:
    # No feature names: the served model receives bare CSV rows in feature_order.
    return xgb.DMatrix(data.features, label=data.labels, missing=np.nan)


# ---- Checkpoints (managed spot training) --------------------------------------------------


FINGERPRINT_ATTR = "checkpoint_fingerprint"


def run_fingerprint(train: Dataset, validation: Dataset, hp: Hyperparameters) -> str:
    """What a checkpoint must match to be resumed: the data and the model hyperparameters.

    num_round and checkpoint_interval may change between attempts without changing the trees.
    """
    digest = hashlib.sha256()
    params = {k: v for k, v in hp.__dict__.items() if k not in ("num_round", "checkpoint_interval")}
    digest.update(json.dumps(params, sort_keys=True).encode())
    for data in (train, validation):
        digest.update(np.ascontiguousarray(data.features).tobytes())
        digest.update(np.ascontiguousarray(data.labels).tobytes())
    return digest.hexdigest()


def checkpoint_files(folder: Path) -> list[tuple[int, Path]]:
    """Checkpoints in the folder by round, oldest first."""
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := CHECKPOINT_PATTERN.match(p.name)) is not None
    ]
    return sorted(found)


def save_checkpoint(folder: Path, booster: xgb.Booster) -> Path:
    rounds = booster.num_boosted_rounds()
    path = folder / f"xgboost-checkpoint-{rounds:06d}.ubj"
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(bytes(booster.save_raw(raw_format="ubj")))
    temporary.replace(path)  # atomic: a reclaimed spot instance never leaves half a file
    for _, old in checkpoint_files(folder)[:-CHECKPOINTS_KEPT]:
        old.unlink()
    return path


def resume_point(folder: Path, fingerprint: str) -> xgb.Booster | None:
    """The latest checkpoint of THIS run; checkpoints of another run are removed, not used."""
    found = checkpoint_files(folder)
    if not found:
        return None
    booster = xgb.Booster(model_file=str(found[-1][1]))
    if booster.attr(FINGERPRINT_ATTR) == fingerprint:
        return booster
    print(f"ignoring {len(found)} checkpoints in {folder}: another run's data or hyperparameters")
    for _, path in found:
        path.unlink()
    return None


class CheckpointCallback(xgb.callback.TrainingCallback):
    """Save the booster (tagged with the run fingerprint) every `interval` rounds."""

    def __init__(self, folder: Path, interval: int, fingerprint: str) -> None:
        super().__init__()
        self.folder = folder
        self.interval = interval
        self.fingerprint = fingerprint

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if model.num_boosted_rounds() % self.interval == 0:
            model.set_attr(**{FINGERPRINT_ATTR: self.fingerprint})
            save_checkpoint(self.folder, model)
        return False


# ---- Training -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingResult:
    booster: xgb.Booster
    best_iteration: int
    best_score: float
    metric: str
    resumed_from: int


def train_model(
    train: Dataset,
    validation: Dataset,
    hp: Hyperparameters,
    checkpoint_dir: Path | None = None,
    verbose_every: int | bool = False,
) -> TrainingResult:
    """Train with early stopping on validation; returns the booster cut at the best round."""
    dtrain, dvalid = to_dmatrix(train), to_dmatrix(validation)
    callbacks: list[xgb.callback.TrainingCallback] = [
        xgb.callback.EarlyStopping(rounds=hp.early_stopping_rounds, save_best=False)
    ]
    start: xgb.Booster | None = None
    if checkpoint_dir is not None:
        fingerprint = run_fingerprint(train, validation, hp)
        callbacks.append(CheckpointCallback(checkpoint_dir, hp.checkpoint_interval, fingerprint))
        start = resume_point(checkpoint_dir, fingerprint)
    resumed_from = start.num_boosted_rounds() if start is not None else 0
    remaining = max(hp.num_round - resumed_from, 0)
    booster = start
    if remaining:
        booster = xgb.train(
            hp.booster_params(),
            dtrain,
            num_boost_round=remaining,
            evals=[(dtrain, "train"), (dvalid, "validation")],
            callbacks=callbacks,
            xgb_model=start,
            verbose_eval=verbose_every,
        )
    assert booster is not None
    best_iteration = int(booster.attr("best_iteration") or booster.num_boosted_rounds() - 1)
    best = booster[: best_iteration + 1]
    best.set_attr(**{FINGERPRINT_ATTR: None})  # a training detail, not part of the model
    score = booster.attr("best_score")
    if score is None:  # no early-stopping record (resumed at the end): score the cut model
        found = re.search(
            rf"validation-{hp.eval_metric}:([-+.0-9eE]+)", best.eval(dvalid, "validation")
        )
        score = found.group(1) if found else "nan"
    return TrainingResult(best, best_iteration, float(score), hp.eval_metric, resumed_from)


# The serving code travels inside model.tar.gz (code/): endpoints run with network isolation.
SERVING_CODE = ("inference.py", "feature_schema.py")


def save_model(
    result: TrainingResult, model_dir: Path, metadata_source: Path, hp: Hyperparameters
) -> Path:
    path = model_dir / MODEL_FILE
    path.write_bytes(bytes(result.booster.save_raw(raw_format="ubj")))
    # The feature metadata travels with the model, plus how it was trained (evaluate reports
    # the seed: two seeds of the same data differ by about 0.008 AUC).
    metadata = json.loads(metadata_source.read_text(encoding="utf-8"))
    metadata["training"] = {"seed": hp.seed, "best_iteration": result.best_iteration}
    step_io.write_json(model_dir / METADATA_FILE, metadata)
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for name in SERVING_CODE:
        shutil.copyfile(Path(__file__).with_name(name), code_dir / name)
    return path


def copy_baseline(baseline_channel: Path, model_dir: Path) -> Path | None:
    """The drift baseline travels inside the model: whoever serves it can monitor it."""
    source = baseline_channel / BASELINE_FILE
    if not source.is_file():
        return None
    return Path(shutil.copyfile(source, model_dir / BASELINE_FILE))


# ---- Entry point --------------------------------------------------------------------------


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def parse_args(argv: list[str] | None) -> tuple[Hyperparameters, Path | None]:
    parser = step_io.argument_parser("train.py", "Train the XGBoost flight-delay model.")
    defaults = Hyperparameters()
    parser.add_argument("--max_depth", type=positive_int, default=defaults.max_depth)
    parser.add_argument("--eta", type=float, default=defaults.eta)
    parser.add_argument("--num_round", type=positive_int, default=defaults.num_round)
    parser.add_argument(
        "--early_stopping_rounds", type=positive_int, default=defaults.early_stopping_rounds
    )
    parser.add_argument("--subsample", type=float, default=defaults.subsample)
    parser.add_argument("--colsample_bytree", type=float, default=defaults.colsample_bytree)
    parser.add_argument("--min_child_weight", type=float, default=defaults.min_child_weight)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval_metric", choices=EVAL_METRICS, default=defaults.eval_metric)
    parser.add_argument(
        "--checkpoint_interval", type=positive_int, default=defaults.checkpoint_interval
    )
    parser.add_argument("--checkpoint-dir", dest="checkpoint_dir", default=None)
    args, unknown = parser.parse_known_args(argv)
    # The toolkit and tuning jobs add their own (sagemaker_*, _tuning_objective_metric).
    rejected = [
        token
        for token in unknown
        if token.startswith("--") and not token[2:].startswith(("sagemaker_", "_"))
    ]
    if rejected:
        allowed = ", ".join(f.name for f in Hyperparameters.__dataclass_fields__.values())
        raise step_io.StepError(f"unknown hyperparameter {rejected[0]} (allowed: {allowed})")
    for name in ("eta", "subsample", "colsample_bytree"):
        value = getattr(args, name)
        if not 0.0 < value <= 1.0:
            raise step_io.StepError(f"--{name} must be in (0, 1], got {value}")
    hp = Hyperparameters(
        **{name: getattr(args, name) for name in Hyperparameters.__dataclass_fields__}
    )
    return hp, checkpoint_folder(args.checkpoint_dir)


def checkpoint_folder(explicit: str | None) -> Path | None:
    """The explicit folder (created), else SM_CHECKPOINT_DIR / /opt/ml/checkpoints if present."""
    if explicit:
        return step_io.output_dir(explicit)
    folder = step_io.env_path("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints")
    return folder if folder.is_dir() else None


def run(argv: list[str] | None) -> int:
    hp, checkpoint_dir = parse_args(argv)
    train_channel = step_io.existing_dir(
        step_io.env_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"), "train channel"
    )
    validation_channel = step_io.existing_dir(
        step_io.env_path("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
        "validation channel",
    )
    model_dir = step_io.output_dir(step_io.env_path("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = step_io.output_dir(step_io.env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))

    metadata = load_metadata(train_channel)
    order = list(metadata["feature_order"])
    train = load_dataset(step_io.find_csv(train_channel, "train.csv"), order)
    validation = load_dataset(step_io.find_csv(validation_channel, "validation.csv"), order)

    result = train_model(train, validation, hp, checkpoint_dir, verbose_every=25)
    save_model(result, model_dir, train_channel / METADATA_FILE, hp)
    copy_baseline(step_io.env_path("SM_CHANNEL_BASELINE", "/opt/ml/input/data/baseline"), model_dir)
    summary = {
        "best_iteration": result.best_iteration,
        "rounds": result.best_iteration + 1,
        f"validation_{result.metric}": result.best_score,
        "resumed_from_round": result.resumed_from,
        "hyperparameters": hp.__dict__,
    }
    step_io.write_json(output_dir / "training_summary.json", summary)
    # One stable line for tuning-job metric definitions: `validation-auc: ([0-9.]+)`.
    print(f"best iteration: {result.best_iteration}")
    print(f"validation-{result.metric}: {result.best_score:.6f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return step_io.run_main(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
