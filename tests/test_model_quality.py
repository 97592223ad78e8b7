"""Model quality (pipeline_steps/model_quality.py) on synthetic predictions with a known AUC,
and the scheduled monitoring job (pipeline_steps/monitor.py) end to end against moto S3 and
CloudWatch on a real slice of the bundled flights."""

from __future__ import annotations

import base64
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import baseline_stats
import boto3
import feature_schema
import model_quality
import monitor
import numpy as np
import pandas as pd
import preprocess
import pytest
import step_io
from moto import mock_aws
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from tests.step_fixtures import bundled_data_dir

FEATURES = list(feature_schema.FEATURE_ORDER)


def _capture_line(inference_id: str | None, scores: list[float], encoding: str = "CSV") -> str:
    data = "".join(f"{s:.6f}\n" for s in scores)
    if encoding == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    metadata: dict[str, str] = {"eventId": "e", "inferenceTime": "2026-11-26T10:00:00Z"}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": "1,2\n" * len(scores), "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                   "data": data, "encoding": encoding},
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )  # fmt: skip


def _known_auc_data(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Scores N(1, 1) for positives, N(0, 1) for negatives: AUC = Phi(1 / sqrt 2) = 0.760."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, rng.normal(labels.astype(float), 1.0)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _run(tmp_path: Path, *extra: str) -> dict[str, Any]:
    report_dir = tmp_path / "report"
    args = ["--capture", str(tmp_path / "capture"), "--labels", str(tmp_path / "labels")]
    assert model_quality.main([*args, "--report-dir", str(report_dir), *extra]) == 0
    return json.loads((report_dir / model_quality.REPORT_FILE).read_text())


def test_auc_over_the_window_matches_the_known_auc(tmp_path: Path) -> None:
    labels, scores = _known_auc_data(20_000)
    # Requests of 1 to 3 rows, so the join needs the row within the request too.
    lines, label_rows, i, request = [], [], 0, 0
    while i < len(labels):
        size = min(1 + request % 3, len(labels) - i)
        encoding = "BASE64" if request % 5 == 0 else "CSV"
        lines.append(_capture_line(f"req-{request}", list(scores[i : i + size]), encoding))
        label_rows += [(f"req-{request}", row, int(labels[i + row])) for row in range(size)]
        i, request = i + size, request + 1
    half = len(lines) // 2  # two hourly files, like SageMaker writes them
    _write(tmp_path / "capture/primary/2026/11/26/09/a.jsonl", "\n".join(lines[:half]) + "\n")
    _write(tmp_path / "capture/primary/2026/11/26/10/b.jsonl", "\n".join(lines[half:]) + "\n")
    frame = pd.DataFrame(label_rows, columns=["inference_id", "row", "label"]).sample(
        frac=1.0, random_state=1
    )  # label order is not capture order
    _write(tmp_path / "labels/2026/11/26/11/labels.csv", frame.to_csv(index=False))
    report = _run(tmp_path)
    assert report["status"] == "ok"
    assert report["labeled_records"] == 20_000
    assert report["auc"] == pytest.approx(roc_auc_score(labels, np.round(scores, 6)), abs=1e-9)
    assert report["auc"] == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=0.01)


def test_unmatched_labels_missing_ids_and_malformed_lines_are_counted(tmp_path: Path) -> None:
    labels, scores = _known_auc_data(400)
    lines = [_capture_line(f"id-{k}", [scores[k]]) for k in range(400)]
    lines += [_capture_line(None, [0.5]), "{not json", json.dumps({"captureData": {}})]
    _write(tmp_path / "capture/x.jsonl", "\n".join(lines) + "\n")
    rows = [f"id-{k},{labels[k]}" for k in range(400)]
    rows += ["id-unknown,1", "id-0,maybe"]
    _write(tmp_path / "labels/l.csv", "inference_id,label\n" + "\n".join(rows) + "\n")
    report = _run(tmp_path)
    assert report["labeled_records"] == 400
    assert report["unmatched_labels"] == 1
    assert report["problems"] == {
        "bad_capture_json": 1,
        "bad_capture_record": 1,
        "bad_label": 1,
        "no_inference_id": 1,
    }
    assert report["auc"] == pytest.approx(roc_auc_score(labels, np.round(scores, 6)))


def test_too_few_labels_is_insufficient_data_without_an_auc(tmp_path: Path) -> None:
    labels, scores = _known_auc_data(50)
    lines = [_capture_line(f"id-{k}", [scores[k]]) for k in range(50)]
    _write(tmp_path / "capture/x.jsonl", "\n".join(lines) + "\n")
    rows = "".join(f"id-{k},{labels[k]}\n" for k in range(50))
    _write(tmp_path / "labels/l.csv", "inference_id,label\n" + rows)
    report = _run(tmp_path)
    assert (report["status"], report["auc"], report["labeled_records"]) == (
        "insufficient_data",
        None,
        50,
    )
    assert [d["MetricName"] for d in model_quality.metric_data(report, "ep")] == [
        "LabeledRecordCount",
        "UnmatchedLabelCount",
    ]
    assert _run(tmp_path, "--min-records", "10")["status"] == "ok"


def test_one_class_of_labels_has_no_auc(tmp_path: Path) -> None:
    lines = [_capture_line(f"id-{k}", [0.1 * (k % 10)]) for k in range(300)]
    _write(tmp_path / "capture/x.jsonl", "\n".join(lines) + "\n")
    rows = "".join(f"id-{k},0\n" for k in range(300))
    _write(tmp_path / "labels/l.csv", "inference_id,label\n" + rows)
    report = _run(tmp_path)
    assert (report["status"], report["auc"]) == ("single_class", None)


def test_a_labels_file_without_the_key_is_one_error_line(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "capture/x.jsonl", _capture_line("a", [0.2]) + "\n")
    _write(tmp_path / "labels/l.csv", "id,delayed\na,1\n")
    args = ["--capture", str(tmp_path / "capture"), "--labels", str(tmp_path / "labels")]
    assert model_quality.main([*args, "--report-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ERROR: labels file")
    assert "inference_id and label" in err[0]


def test_hour_prefixes_cover_the_window_before_the_scheduled_hour() -> None:
    end = datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    assert monitor.hour_prefixes("datacapture/ep/primary", end, 3) == [
        "datacapture/ep/primary/2026/02/28/21/",
        "datacapture/ep/primary/2026/02/28/22/",
        "datacapture/ep/primary/2026/02/28/23/",
    ]


# ---- the scheduled job end to end (moto S3 + CloudWatch, real January flights) --------------


@pytest.fixture(scope="module")
def january() -> dict[str, Any]:
    folder = bundled_data_dir()
    flights = step_io.read_table(folder, "flights")
    frame = preprocess.build_features(
        flights.loc[flights["month"] == 1].reset_index(drop=True),
        step_io.read_table(folder, "weather"),
        step_io.read_table(folder, "planes"),
    )
    vocabulary = preprocess.build_vocabulary(frame)
    encoded = preprocess.encode(frame, vocabulary)
    return {"encoded": encoded, "vocabulary": vocabulary}


def _capture_file(frame: pd.DataFrame, ids: list[str], scores: np.ndarray) -> str:
    rows = frame[FEATURES].to_csv(header=False, index=False, na_rep="").splitlines()
    lines = []
    for row, inference_id, score in zip(rows, ids, scores, strict=True):
        event = json.loads(_capture_line(inference_id, [float(score)]))
        event["captureData"]["endpointInput"]["data"] = row + "\n"
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"


def test_the_monitoring_job_reads_only_its_window_and_publishes(tmp_path, january) -> None:
    encoded = january["encoded"]
    shuffled = encoded.sample(frac=1.0, random_state=3).reset_index(drop=True)
    train, window, older = shuffled.iloc[:8000], shuffled.iloc[8000:10000], shuffled.iloc[10000:]
    baseline = baseline_stats.compute_baseline(train[FEATURES], january["vocabulary"])
    baseline_path = _write(tmp_path / "baseline.json", json.dumps(baseline, indent=1))
    # As deployed: the baseline inside the served model.tar.gz, extracted into --work-dir.
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(baseline_path, arcname="baseline.json")
    labels, scores = _known_auc_data(len(window) + 1000, seed=11)
    base = "datacapture/flightdelay-dev/primary"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        ids = [f"w{k}" for k in range(len(window))]
        s3.put_object(
            Bucket="data",
            Key=f"{base}/2026/11/26/05/in-window.jsonl",
            Body=_capture_file(window, ids, scores[: len(window)]),
        )
        old_ids = [f"o{k}" for k in range(1000)]
        # Two days before the run: outside the drift window, inside the label lookback.
        s3.put_object(
            Bucket="data",
            Key=f"{base}/2026/11/24/05/older.jsonl",
            Body=_capture_file(older.iloc[:1000], old_ids, scores[len(window) :]),
        )
        label_frame = pd.DataFrame({"inference_id": ids + old_ids, "label": labels})
        s3.put_object(
            Bucket="data",
            Key="ground-truth/flightdelay-dev/2026/11/26/06/labels.csv",
            Body=label_frame.to_csv(index=False),
        )
        argv = [
            "--bucket", "data", "--endpoint-name", "flightdelay-dev", "--variant", "primary",
            "--scheduled-time", "2026-11-27T00:00:00Z", "--window-hours", "24",
            "--baseline", str(archive), "--work-dir", str(tmp_path / "work"),
            "--report-dir", str(tmp_path / "report"), "--metrics-namespace", "flightdelay/monitoring",
            "--region", "us-east-1",
        ]  # fmt: skip
        assert monitor.run(argv, s3=s3) == 0
        metrics = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
            Namespace="flightdelay/monitoring"
        )["Metrics"]
    drift_report = json.loads((tmp_path / "report/drift/drift_report.json").read_text())
    assert drift_report["records"]["valid"] == len(window)  # the older file is not in the window
    assert drift_report["overall"]["status"] == "ok"  # same population as the baseline
    quality = json.loads((tmp_path / "report/model_quality/model_quality.json").read_text())
    assert quality["labeled_records"] == len(window) + 1000  # labels joined across the lookback
    assert quality["auc"] == pytest.approx(roc_auc_score(labels, np.round(scores, 6)))
    assert not any(quality["problems"].values())  # baseline.json is not read as capture
    published = {m["MetricName"] for m in metrics}
    assert {"DriftScore", "DriftedFeatureCount", "ModelAUC", "LabeledRecordCount"} <= published


def test_the_monitor_takes_the_baseline_out_of_the_model_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    import monitor

    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b'{"schema_version": 1}'
        info = tarfile.TarInfo("baseline.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    extracted = monitor.baseline_file(archive, tmp_path / "work")
    assert extracted.read_bytes() == data
    plain = tmp_path / "baseline.json"
    assert monitor.baseline_file(plain, tmp_path / "work") == plain
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(monitor.StepError, match=r"has no baseline\.json"):
        monitor.baseline_file(empty, tmp_path / "work")
