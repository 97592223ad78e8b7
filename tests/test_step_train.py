"""train.py on features preprocessed from a real January-February slice."""

from __future__ import annotations

from pathlib import Path

import inference
import numpy as np
import pandas as pd
import preprocess
import pytest
import train
import xgboost as xgb
from sklearn.metrics import roc_auc_score
from step_fixtures import preprocess_args, read_json, write_raw_slice


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Preprocess outputs: train/ (with feature_metadata.json), validation/, test/."""
    raw = write_raw_slice(tmp_path_factory.mktemp("raw"))
    out = tmp_path_factory.mktemp("processed")
    assert preprocess.main(preprocess_args(raw, out)) == 0
    return out


@pytest.fixture()
def sm_env(channels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SageMaker training environment, pointed at local folders."""
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channels / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(channels / "validation"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("SM_CHECKPOINT_DIR", str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("SM_CHANNEL_BASELINE", str(channels / "baseline"))
    return tmp_path


def datasets(channels: Path) -> tuple[train.Dataset, train.Dataset]:
    order = list(train.load_metadata(channels / "train")["feature_order"])
    return (
        train.load_dataset(channels / "train" / "train.csv", order),
        train.load_dataset(channels / "validation" / "validation.csv", order),
    )


def test_main_writes_a_loadable_model(
    sm_env: Path, channels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--max_depth", "4", "--eta", "0.3", "--num_round", "300",
        "--early_stopping_rounds", "10", "--seed", "7",
        # Added by the training toolkit / a tuning job: ignored.
        "--sagemaker_program", "train.py", "--_tuning_objective_metric", "validation:auc",
    ]  # fmt: skip
    assert train.main(argv) == 0
    model_dir = sm_env / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "baseline.json",  # the drift baseline travels with the model
        "code",
        "feature_metadata.json",
        "xgboost-model",
    ]
    assert (model_dir / "baseline.json").read_bytes() == (
        channels / "baseline" / "baseline.json"
    ).read_bytes()
    assert sorted(p.name for p in (model_dir / "code").iterdir()) == [
        "feature_schema.py",
        "inference.py",
    ]
    # The feature metadata travels with the model, plus how it was trained (seed, rounds).
    copied = read_json(model_dir / "feature_metadata.json")
    training = copied.pop("training")
    assert copied == read_json(channels / "train" / "feature_metadata.json")

    # Loadable the way the XGBoost container's default inference loads it.
    booster = xgb.Booster(model_file=str(model_dir / "xgboost-model"))
    assert booster.feature_names is None  # bare CSV rows must be accepted
    summary = read_json(sm_env / "output" / "training_summary.json")
    assert booster.num_boosted_rounds() == summary["rounds"] == summary["best_iteration"] + 1
    assert summary["rounds"] < 300  # early stopping kicked in
    assert training == {
        "seed": summary["hyperparameters"]["seed"],
        "best_iteration": summary["best_iteration"],
    }

    validation = pd.read_csv(channels / "validation" / "validation.csv")
    scores = booster.predict(xgb.DMatrix(validation.iloc[:, 1:].to_numpy(), missing=np.nan))
    auc = roc_auc_score(validation["delayed"], scores)
    assert auc == pytest.approx(summary["validation_auc"], abs=1e-4)
    assert auc > 0.6
    out = capsys.readouterr().out
    assert f"best iteration: {summary['best_iteration']}" in out
    assert f"validation-auc: {summary['validation_auc']:.6f}" in out


def test_logloss_can_drive_early_stopping(channels: Path) -> None:
    training, validation = datasets(channels)
    hp = train.Hyperparameters(num_round=15, eval_metric="logloss", eta=0.3)
    assert hp.booster_params()["eval_metric"] == ["auc", "logloss"]  # the last one stops
    result = train.train_model(training, validation, hp)
    assert result.metric == "logloss"
    assert 0.3 < result.best_score < 0.7
    assert result.booster.num_boosted_rounds() == result.best_iteration + 1


def test_checkpoints_are_saved_and_training_resumes(channels: Path, tmp_path: Path) -> None:
    training, validation = datasets(channels)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    first = train.Hyperparameters(num_round=10, early_stopping_rounds=100, checkpoint_interval=5)
    result = train.train_model(training, validation, first, checkpoint_dir=folder)
    assert result.resumed_from == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "xgboost-checkpoint-000005.ubj",
        "xgboost-checkpoint-000010.ubj",
    ]

    # A restarted (spot) job asking for 25 rounds continues from round 10.
    again = train.Hyperparameters(num_round=25, early_stopping_rounds=100, checkpoint_interval=5)
    resumed = train.train_model(training, validation, again, checkpoint_dir=folder)
    assert resumed.resumed_from == 10
    assert 10 <= resumed.best_iteration < 25
    # Only the latest two checkpoints are kept.
    assert sorted(p.name for p in folder.iterdir()) == [
        "xgboost-checkpoint-000020.ubj",
        "xgboost-checkpoint-000025.ubj",
    ]
    latest = xgb.Booster(model_file=str(folder / "xgboost-checkpoint-000025.ubj"))
    assert latest.num_boosted_rounds() == 25
    assert resumed.booster.attr(train.FINGERPRINT_ATTR) is None  # not in the served model


def test_checkpoints_of_another_run_are_not_resumed(channels: Path, tmp_path: Path) -> None:
    training, validation = datasets(channels)
    old = train.Hyperparameters(num_round=10, max_depth=2, checkpoint_interval=10)
    train.train_model(training, validation, old, checkpoint_dir=tmp_path)
    assert (tmp_path / "xgboost-checkpoint-000010.ubj").is_file()
    new = train.Hyperparameters(num_round=4, max_depth=3, checkpoint_interval=10)
    result = train.train_model(training, validation, new, checkpoint_dir=tmp_path)
    assert result.resumed_from == 0
    assert list(tmp_path.iterdir()) == []  # the other run's checkpoints are gone


def test_checkpoint_folder_from_argument_or_environment(
    sm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = sm_env / "explicit"
    assert train.checkpoint_folder(str(explicit)) == explicit and explicit.is_dir()
    assert train.checkpoint_folder(None) is None  # SM_CHECKPOINT_DIR does not exist
    (sm_env / "spot").mkdir()
    monkeypatch.setenv("SM_CHECKPOINT_DIR", str(sm_env / "spot"))
    assert train.checkpoint_folder(None) == sm_env / "spot"


def test_main_resumes_from_the_checkpoint_argument(sm_env: Path) -> None:
    folder = sm_env / "ckpt"
    args = ["--num_round", "6", "--early_stopping_rounds", "50", "--checkpoint_interval", "3"]
    assert train.main([*args, "--checkpoint-dir", str(folder)]) == 0
    assert (folder / "xgboost-checkpoint-000006.ubj").is_file()
    args[1] = "9"
    assert train.main([*args, "--checkpoint-dir", str(folder)]) == 0
    assert read_json(sm_env / "output" / "training_summary.json")["resumed_from_round"] == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max_depht", "6"], "unknown hyperparameter --max_depht (allowed: max_depth, eta"),
        (["--eta", "0"], "--eta must be in (0, 1], got 0.0"),
        (["--max_depth", "deep"], "'deep' is not a positive integer"),
        (["--eval_metric", "error"], "invalid choice: 'error'"),
    ],
)
def test_bad_hyperparameters_give_one_error_line(
    sm_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1
    assert message in err
    assert not (sm_env / "model" / "xgboost-model").exists()


def test_missing_channel_is_an_error(
    sm_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(sm_env / "absent"))
    assert train.main([]) == 1
    assert (
        capsys.readouterr().err
        == f"ERROR: validation channel {sm_env / 'absent'} is not a folder\n"
    )


def test_columns_must_match_the_feature_order(channels: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(channels / "validation" / "validation.csv")
    frame.drop(columns=["seats"]).to_csv(tmp_path / "validation.csv", index=False)
    order = list(train.load_metadata(channels / "train")["feature_order"])
    with pytest.raises(train.step_io.StepError, match="do not match"):
        train.load_dataset(tmp_path / "validation.csv", order)


def test_the_served_model_scores_raw_and_encoded_rows_alike(sm_env: Path, channels: Path) -> None:
    assert train.main(["--num_round", "30", "--seed", "7"]) == 0
    model = inference.model_fn(str(sm_env / "model"))
    metadata = train.load_metadata(channels / "train")
    vocabulary = metadata["categorical_vocabulary"]
    test = pd.read_csv(channels / "test" / "test.csv").head(20)
    encoded = test[metadata["feature_order"]]
    encoded_body = encoded.to_csv(header=False, index=False)
    raw = encoded.astype(object)
    for name, values in vocabulary.items():
        raw[name] = [values[int(code)] if code >= 0 else "ZZ" for code in encoded[name]]
    raw_body = raw.to_csv(header=False, index=False)

    by_code = inference.predict_fn(inference.input_fn(encoded_body, "text/csv"), model)
    # The container passes a bytearray when the content type carries parameters.
    by_name = inference.predict_fn(
        inference.input_fn(bytearray(raw_body.encode()), "text/csv; charset=utf-8"), model
    )
    np.testing.assert_allclose(by_code.probabilities, by_name.probabilities)
    booster = xgb.Booster(model_file=str(sm_env / "model" / "xgboost-model"))
    expected = booster.predict(xgb.DMatrix(encoded.to_numpy(dtype=float), missing=np.nan))
    np.testing.assert_allclose(by_code.probabilities, expected, rtol=1e-6)
    body, content_type = inference.output_fn(by_code, "text/csv")
    assert content_type == "text/csv" and len(body.splitlines()) == 20
    assert body.splitlines()[0] == f"{expected[0]:.6f}"  # no MODEL_VERSION: no version column


def test_the_served_model_names_the_version_its_environment_gives(
    sm_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert train.main(["--num_round", "5"]) == 0
    monkeypatch.setenv("MODEL_VERSION", "7")
    model = inference.model_fn(str(sm_env / "model"))
    monkeypatch.setenv("MODEL_VERSION", "8")  # read once, at start-up
    body = "0,,,,,,,,,,,,,,,,\n1,,,,,,,,,,,,,,,,\n"  # features missing: still scored
    prediction = inference.predict_fn(inference.input_fn(body, "text/csv"), model)
    answer, _ = inference.output_fn(prediction, "text/csv")
    lines = answer.splitlines()
    assert [line.split(",")[1] for line in lines] == ["7", "7"]
    assert float(lines[0].split(",")[0]) == pytest.approx(prediction.probabilities[0], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("", "text/csv", "empty request"),
        ("1,2,3\n", "text/csv", "row 1 has 3 columns; expected 17"),
        ("x\n", "application/json", "content type 'application/json' is not supported"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    sm_env: Path, body: str, content_type: str, message: str
) -> None:
    assert train.main(["--num_round", "5"]) == 0
    model = inference.model_fn(str(sm_env / "model"))
    with pytest.raises(inference.RequestError, match=message):
        inference.predict_fn(inference.input_fn(body, content_type), model)
