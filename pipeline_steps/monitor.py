"""The scheduled monitoring job: fetch the window from S3, then drift and model quality.

    python3 monitor.py --bucket B --endpoint-name E --variant V --scheduled-time T
        --window-hours H --baseline FILE --work-dir DIR --report-dir DIR
        --metrics-namespace NS [--psi-threshold 0.2] [--label-lookback-hours 168]
        [--drift-workers N]

EventBridge Scheduler starts it with T = <aws.scheduler.scheduled-time>. A processing input
cannot select a time window, so the job lists the hourly partitions itself, memory and disk
bounded by the window, not by the history:
- drift: data capture of the last H whole hours, s3://B/datacapture/E/V/yyyy/mm/dd/hh/
  (SageMaker's layout: destination/endpoint/variant/year/month/day/hour/<file>.jsonl);
- model quality: labels uploaded in the same H hours under s3://B/ground-truth/E/yyyy/mm/dd/hh/
  (the upload hour, UTC), joined with the captures of H + --label-lookback-hours hours (labels
  arrive after the prediction).
Both publish their metrics to NS (see drift.py and model_quality.py).
"""

from __future__ import annotations

import os
import sys
import tarfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import drift
import model_quality
import step_io
from step_io import StepError

CAPTURE_PREFIX = "datacapture"
LABELS_PREFIX = "ground-truth"


def hour_prefixes(base: str, end: datetime, hours: int) -> list[str]:
    """The hourly partitions of [end - hours, end), end rounded down to the hour."""
    last = end.replace(minute=0, second=0, microsecond=0)
    return [f"{base}/{last - timedelta(hours=h):%Y/%m/%d/%H}/" for h in range(hours, 0, -1)]


def download(s3: Any, bucket: str, prefixes: Sequence[str], destination: Path) -> int:
    """Every object under the prefixes into destination (keys keep their path); the count."""
    count = 0
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                target = destination / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                count += 1
    destination.mkdir(parents=True, exist_ok=True)
    return count


BASELINE_MEMBER = "baseline.json"


def scheduled_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StepError(f"--scheduled-time {value!r} is not an ISO 8601 time") from None


def baseline_file(path: Path, work_dir: Path) -> Path:
    """baseline.json itself, or taken out of the model.tar.gz that carries it."""
    if not path.name.endswith(".tar.gz"):
        return path
    with tarfile.open(path, "r:gz") as archive:
        try:
            member = archive.getmember(BASELINE_MEMBER)
        except KeyError:
            raise StepError(f"{path.name} has no {BASELINE_MEMBER}: retrain the model") from None
        source = archive.extractfile(member)
        assert source is not None
        target = work_dir / BASELINE_MEMBER
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())
    return target


def parse_args(argv: Sequence[str]) -> Any:
    parser = step_io.argument_parser("monitor.py", "Drift and model quality over a window.")
    for name in ("--bucket", "--endpoint-name", "--variant", "--metrics-namespace"):
        parser.add_argument(name, required=True)
    parser.add_argument("--scheduled-time", required=True, type=scheduled_time)
    parser.add_argument("--window-hours", required=True, type=int)
    parser.add_argument("--label-lookback-hours", type=int, default=168)
    parser.add_argument("--baseline", required=True, type=Path)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--report-dir", required=True, type=Path)
    parser.add_argument("--psi-threshold", default="0.2")
    # drift.py's --workers (default: the cores). A caller with small windows and a large
    # process (the local simulation) passes 1: forking it per job costs more than it saves.
    parser.add_argument("--drift-workers", type=int, default=None)
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    args = parser.parse_args(argv)
    if args.window_hours < 1 or args.label_lookback_hours < 0:
        raise StepError("--window-hours must be >= 1 and --label-lookback-hours >= 0")
    if args.drift_workers is not None and args.drift_workers < 1:
        raise StepError(f"--drift-workers must be at least 1, got {args.drift_workers}")
    return args


def run(argv: Sequence[str], s3: Any = None) -> int:
    args = parse_args(argv)
    if s3 is None:
        import boto3  # only needed in AWS

        s3 = boto3.client("s3", region_name=args.region)
    baseline = baseline_file(args.baseline, args.work_dir)
    capture_base = f"{CAPTURE_PREFIX}/{args.endpoint_name}/{args.variant}"
    end, hours = args.scheduled_time, args.window_hours
    # Capture only under capture/: model quality scans it for *.json(l), and baseline.json
    # (extracted into work_dir) would otherwise be read as thousands of bad capture lines.
    captures = args.work_dir / "capture"
    window, lookback = captures / "window", captures / "lookback"
    captured = download(s3, args.bucket, hour_prefixes(capture_base, end, hours), window)
    print(f"monitor: {captured} capture files in the last {hours} h")
    publish = [
        "--metrics-namespace", args.metrics_namespace, "--endpoint-name", args.endpoint_name,
        "--publish-metrics", *(["--region", args.region] if args.region else []),
    ]  # fmt: skip
    drift.run(
        [
            "--baseline", str(baseline), "--capture", str(window),
            "--report-dir", str(args.report_dir / "drift"),
            "--psi-threshold", args.psi_threshold, *publish,
            *(["--workers", str(args.drift_workers)] if args.drift_workers else []),
        ]
    )  # fmt: skip
    labels_dir = args.work_dir / "labels"
    label_prefixes = hour_prefixes(f"{LABELS_PREFIX}/{args.endpoint_name}", end, hours)
    labeled = download(s3, args.bucket, label_prefixes, labels_dir)
    print(f"monitor: {labeled} label files in the last {hours} h")
    if labeled:  # no labels, nothing to join: skip fetching the older captures
        start = end - timedelta(hours=hours)
        earlier = hour_prefixes(capture_base, start, args.label_lookback_hours)
        download(s3, args.bucket, earlier, lookback)
    # --capture: window/ and lookback/.
    return model_quality.run(
        [
            "--capture", str(captures), "--labels", str(labels_dir),
            "--report-dir", str(args.report_dir / "model_quality"), *publish,
        ]
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return step_io.run_main(lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
