"""Drift job: compare a window of captured inference inputs with the training baseline.

    python3 drift.py --baseline baseline.json --capture DIR --report-dir DIR
        [--min-records 500] [--psi-threshold 0.2] [--distance-threshold 0.2] [--workers N]
        [--metrics-namespace NS --endpoint-name NAME --publish-metrics [--region R]]

Inputs under --capture (searched recursively, streamed in chunks so memory is bounded by the
chunk, not by the window or the history; with several files, one process per core reads
them in parallel, each bounded by its chunk):
- *.jsonl / *.json: SageMaker data capture lines; the endpointInput CSV payload (CSV or
  BASE64 encoding) may hold several rows.
- *.csv: plain CSV with a header naming the features (extra columns such as `delayed` are
  ignored), encoded as the endpoint receives them.
- *.parquet: read when pyarrow is installed, otherwise skipped and listed in the report.
Malformed records (bad JSON, not CSV, wrong column count, non-numeric values) are skipped and
counted by reason; they never stop the job.

Per feature: PSI over the baseline bins plus a missing-value bin, and a distance: KS on the
baseline percentile grid (numeric) or L-infinity of category frequencies (categorical, with a
chi-square p-value reported for context: on large windows any difference is "significant", so
it does not decide). A feature drifts when PSI >= --psi-threshold or the distance >=
--distance-threshold; fewer than --min-records non-missing values is insufficient_data.
Calendar features (--ignore-features, default month and day_of_week) are scored but "ignored".

CloudWatch metrics (--publish-metrics), namespace --metrics-namespace:
- dimensions EndpointName, FeatureName: FeaturePSI, FeatureDistance (scored features only),
  FeatureOutOfRange (numeric only: share of the window outside the baseline's 1st-99th
  percentiles, ~0.02 when nothing changed; reported, not part of the verdict)
- dimension EndpointName: DriftScore (max PSI, only when some feature was scored),
  OutOfRangeShare (the largest FeatureOutOfRange of the scored numeric features),
  DriftedFeatureCount, RecordCount, MalformedRecordCount

Split by responsibility: drift_capture.py reads the inputs (drift_events.py the capture
lines), drift_window.py counts them,
drift_scoring.py scores them and gives the verdicts; this file: baseline, report, metrics, CLI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import step_io
from drift_capture import MAX_WORKERS, InputTally, count_window

# `X as X` re-exports: the local monthly report and the tests use drift.<name>.
from drift_events import HEALTH_CHECK_INFERENCE_ID as HEALTH_CHECK_INFERENCE_ID
from drift_scoring import DEFAULT_IGNORED, Thresholds, score_window
from drift_scoring import score_frame as score_frame
from drift_window import Window
from step_io import StepError

REPORT_FILE = "drift_report.json"


# ---- baseline, report, metrics ----------------------------------------------------------


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StepError(f"cannot read baseline {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise StepError(f"baseline {path} is not valid JSON: {exc}") from exc
    if not isinstance(baseline, dict) or baseline.get("schema_version") != 1:
        raise StepError(f"baseline {path} is not a schema_version 1 baseline.json")
    order = baseline.get("feature_order")
    features = baseline.get("features")
    if not isinstance(order, list) or not isinstance(features, dict):
        raise StepError(f"baseline {path} lacks feature_order or features")
    absent = [n for n in order if n not in features]
    if absent:
        raise StepError(f"baseline {path} has no statistics for {', '.join(absent)}")
    return baseline


def build_report(
    baseline: dict[str, Any],
    window: Window,
    tally: InputTally,
    thresholds: Thresholds,
    sources: dict[str, str],
    clock: step_io.Clock = step_io.utc_now,
) -> dict[str, Any]:
    scores = score_window(baseline, window, thresholds)
    return {
        "schema_version": 1,
        "generated_at": step_io.iso_utc(clock()),
        **sources,
        "baseline_split": baseline.get("split"),
        "thresholds": {
            "psi": thresholds.psi,
            "distance": thresholds.distance,
            "min_records": thresholds.min_records,
        },
        "ignored_features": sorted(thresholds.ignored),
        "records": tally.as_dict(),
        **scores,
    }


def metric_data(report: dict[str, Any], endpoint_name: str) -> list[dict[str, Any]]:
    endpoint = [{"Name": "EndpointName", "Value": endpoint_name}]
    overall = report["overall"]
    data: list[dict[str, Any]] = [
        _datum("DriftedFeatureCount", overall["drifted_feature_count"], endpoint, "Count"),
        _datum("RecordCount", report["records"]["valid"], endpoint, "Count"),
        _datum("MalformedRecordCount", report["records"]["malformed"], endpoint, "Count"),
    ]
    if overall["drift_score"] is not None:
        data.append(_datum("DriftScore", overall["drift_score"], endpoint, "None"))
    outside = out_of_range_share(report)
    if outside is not None:
        data.append(_datum("OutOfRangeShare", outside, endpoint, "None"))
    for name, result in report["features"].items():
        if result["status"] not in ("drift", "ok"):
            continue
        dims = [*endpoint, {"Name": "FeatureName", "Value": name}]
        distance = result["ks"] if result["kind"] == "numeric" else result["l_infinity"]
        data.append(_datum("FeaturePSI", result["psi"], dims, "None"))
        data.append(_datum("FeatureDistance", distance, dims, "None"))
        if result.get("outside_baseline_range") is not None:
            outside = result["outside_baseline_range"]
            data.append(_datum("FeatureOutOfRange", outside, dims, "None"))
    return data


def out_of_range_share(report: dict[str, Any]) -> float | None:
    """The largest share of a scored numeric feature outside the training 1st-99th percentiles
    (about 0.02 when nothing changed); None when no numeric feature was scored."""
    shares = [
        result["outside_baseline_range"]
        for result in report["features"].values()
        if result["status"] in ("drift", "ok") and result.get("outside_baseline_range") is not None
    ]
    return max(shares) if shares else None


def _datum(name: str, value: float, dims: list[dict[str, str]], unit: str) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit}


def publish_metrics(
    report: dict[str, Any], namespace: str, endpoint_name: str, cloudwatch: Any
) -> int:
    return step_io.put_metrics(metric_data(report, endpoint_name), namespace, cloudwatch)


def json_safe(value: Any) -> Any:
    """NaN/inf become null and numpy scalars plain numbers, so the report is strict JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


# ---- entry point ------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Any:
    parser = step_io.argument_parser("drift.py", "Score captured inputs against the baseline.")
    parser.add_argument("--baseline", required=True, type=Path)
    parser.add_argument("--capture", required=True, type=Path)
    parser.add_argument("--report-dir", required=True, type=Path)
    parser.add_argument("--min-records", type=int, default=500)
    parser.add_argument("--psi-threshold", type=float, default=0.2)
    parser.add_argument("--distance-threshold", type=float, default=0.2)
    parser.add_argument(
        "--ignore-features",
        default=",".join(DEFAULT_IGNORED),
        help="comma-separated features scored but never alarmed on ('' for none)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"processes reading files in parallel (default: the cores, at most {MAX_WORKERS})",
    )
    step_io.add_metrics_arguments(parser)
    args = parser.parse_args(argv)
    step_io.check_metrics_arguments(args)
    if args.min_records < 1:
        raise StepError("--min-records must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise StepError(f"--workers must be at least 1, got {args.workers}")
    if not args.psi_threshold > 0 or not 0 < args.distance_threshold <= 1:
        raise StepError("--psi-threshold must be > 0 and --distance-threshold in (0, 1]")
    names = args.ignore_features.split(",")
    args.ignore_features = frozenset(n.strip() for n in names if n.strip())
    return args


def run(argv: Sequence[str], clock: step_io.Clock = step_io.utc_now) -> int:
    args = parse_args(argv)
    baseline = load_baseline(args.baseline)
    capture_dir = step_io.existing_dir(args.capture, "--capture")
    unknown = sorted(args.ignore_features - set(baseline["feature_order"]))
    if unknown:
        raise StepError(
            f"--ignore-features names unknown features {', '.join(unknown)} "
            f"(allowed: {', '.join(baseline['feature_order'])})"
        )
    thresholds = Thresholds(
        args.psi_threshold, args.distance_threshold, args.min_records, args.ignore_features
    )
    window, tally = count_window(capture_dir, baseline, args.workers)
    sources = {"baseline": str(args.baseline), "capture": str(capture_dir)}
    report = json_safe(build_report(baseline, window, tally, thresholds, sources, clock))
    report_dir = step_io.output_dir(args.report_dir)
    step_io.write_json(report_dir / REPORT_FILE, report)
    overall = report["overall"]
    print(
        f"drift: {overall['status']}, {tally.records} records "
        f"({report['records']['malformed']} malformed), "
        f"drifted: {', '.join(overall['drifted_features']) or 'none'}"
    )
    if args.publish_metrics:
        cloudwatch = step_io.cloudwatch_client(args.region)
        count = publish_metrics(report, args.metrics_namespace, args.endpoint_name, cloudwatch)
        print(f"drift: published {count} metrics to {args.metrics_namespace}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return step_io.run_main(lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
