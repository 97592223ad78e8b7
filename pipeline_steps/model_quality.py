"""Model quality: join captured predictions with ground-truth labels, AUC over the window.

    python3 model_quality.py --capture DIR --labels DIR --report-dir DIR [--min-records 200]
        [--metrics-namespace NS --endpoint-name NAME --publish-metrics [--region R]]

Join key: the inference id. Clients pass InvokeEndpoint's InferenceId; data capture records it
as eventMetadata.inferenceId next to the response (one probability per CSV line of the
request). Row order cannot be the key: capture files are written per instance and per hour,
so their order is not the order in which labels are produced. Labels (*.csv under --labels,
searched recursively) have a header with `inference_id` and `label` (0/1), and optionally
`row`, the 0-based line of a multi-line request (default 0). Labels without a captured
prediction, captures without an inference id and malformed lines are counted, never fatal.

Fewer than --min-records joined labels, or only one class among them: insufficient_data and
no ModelAUC (an AUC of 40 labels is noise, of one class undefined).

CloudWatch (--publish-metrics), dimension EndpointName: ModelAUC (when computed),
LabeledRecordCount, UnmatchedLabelCount.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import step_io
from sklearn import metrics
from step_io import StepError

REPORT_FILE = "model_quality.json"
KEY = ["inference_id", "row"]


def capture_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))


def predictions_of(event: Any, problems: Counter[str]) -> Iterator[tuple[str, int, float]]:
    """(inference id, row, probability) for each line of one captured response."""
    try:
        inference_id = event["eventMetadata"].get("inferenceId")
        output = event["captureData"]["endpointOutput"]
        data, encoding = output["data"], str(output.get("encoding", "CSV")).upper()
    except (KeyError, TypeError, AttributeError):
        problems["bad_capture_record"] += 1
        return
    if not inference_id:
        problems["no_inference_id"] += 1
        return
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            problems["bad_capture_record"] += 1
            return
    for row, line in enumerate(str(data).splitlines()):
        try:
            yield str(inference_id), row, float(line.split(",")[0])
        except ValueError:
            problems["bad_prediction"] += 1


def read_predictions(folder: Path, problems: Counter[str]) -> pd.DataFrame:
    rows: list[tuple[str, int, float]] = []
    for path in capture_files(folder):
        with path.open("r", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    problems["bad_capture_json"] += 1
                    continue
                rows.extend(predictions_of(event, problems))
    frame = pd.DataFrame(rows, columns=[*KEY, "score"])
    # A retried request is captured twice under one id: keep one prediction per key.
    return frame.drop_duplicates(KEY, keep="last")


def read_labels(folder: Path, problems: Counter[str]) -> pd.DataFrame:
    frames = []
    for path in sorted(folder.rglob("*.csv")):
        frame = pd.read_csv(path, dtype={"inference_id": str})
        if not {"inference_id", "label"} <= set(frame.columns):
            raise StepError(
                f"labels file {path} needs the columns inference_id and label (optional: row); "
                f"found {', '.join(map(str, frame.columns))}"
            )
        if "row" not in frame.columns:
            frame["row"] = 0
        frames.append(frame[[*KEY, "label"]])
    if not frames:
        return pd.DataFrame({"inference_id": [], "row": [], "label": []})
    labels = pd.concat(frames, ignore_index=True)
    label = pd.to_numeric(labels["label"], errors="coerce")
    row = pd.to_numeric(labels["row"], errors="coerce")
    good = label.isin([0, 1]) & row.notna() & labels["inference_id"].notna()
    problems["bad_label"] += int((~good).sum())
    labels = labels[good].assign(label=label[good].astype(int), row=row[good].astype(int))
    return labels.drop_duplicates(KEY, keep="last")


def evaluate(predictions: pd.DataFrame, labels: pd.DataFrame, min_records: int) -> dict[str, Any]:
    joined = labels.merge(predictions.astype({"row": int}), on=KEY, how="inner")
    result: dict[str, Any] = {
        "labeled_records": len(joined),
        "unmatched_labels": len(labels) - len(joined),
        "positive_rate": float(joined["label"].mean()) if len(joined) else None,
        "auc": None,
    }
    if len(joined) < min_records:
        return {**result, "status": "insufficient_data"}
    if joined["label"].nunique() < 2:
        return {**result, "status": "single_class"}
    auc = float(metrics.roc_auc_score(joined["label"].to_numpy(), joined["score"].to_numpy()))
    return {**result, "status": "ok", "auc": auc}


def metric_data(report: dict[str, Any], endpoint_name: str) -> list[dict[str, Any]]:
    dims = [{"Name": "EndpointName", "Value": endpoint_name}]
    data = [
        {"MetricName": "LabeledRecordCount", "Dimensions": dims,
         "Value": float(report["labeled_records"]), "Unit": "Count"},
        {"MetricName": "UnmatchedLabelCount", "Dimensions": dims,
         "Value": float(report["unmatched_labels"]), "Unit": "Count"},
    ]  # fmt: skip
    if report["auc"] is not None:
        data.append(
            {"MetricName": "ModelAUC", "Dimensions": dims, "Value": report["auc"], "Unit": "None"}
        )
    return data


def parse_args(argv: Sequence[str]) -> Any:
    parser = step_io.argument_parser("model_quality.py", "AUC of captured predictions.")
    parser.add_argument("--capture", required=True, type=Path)
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--report-dir", required=True, type=Path)
    parser.add_argument("--min-records", type=int, default=200)
    step_io.add_metrics_arguments(parser)
    args = parser.parse_args(argv)
    step_io.check_metrics_arguments(args)
    if args.min_records < 1:
        raise StepError("--min-records must be at least 1")
    return args


def run(argv: Sequence[str], clock: step_io.Clock = step_io.utc_now) -> int:
    args = parse_args(argv)
    problems: Counter[str] = Counter()
    predictions = read_predictions(step_io.existing_dir(args.capture, "--capture"), problems)
    labels = read_labels(step_io.existing_dir(args.labels, "--labels"), problems)
    report = {
        "schema_version": 1,
        "generated_at": step_io.iso_utc(clock()),
        "captured_predictions": len(predictions),
        "min_records": args.min_records,
        **evaluate(predictions, labels, args.min_records),
        "problems": dict(sorted(problems.items())),
    }
    step_io.write_json(step_io.output_dir(args.report_dir) / REPORT_FILE, report)
    auc = "n/a" if report["auc"] is None else f"{report['auc']:.4f}"
    print(f"model quality: {report['status']}, {report['labeled_records']} labeled, AUC {auc}")
    if args.publish_metrics:
        step_io.put_metrics(
            metric_data(report, args.endpoint_name),
            args.metrics_namespace,
            step_io.cloudwatch_client(args.region),
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return step_io.run_main(lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
