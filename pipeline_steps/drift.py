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
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import baseline_stats
import numpy as np
import pandas as pd
import step_io
from step_io import StepError

REPORT_FILE = "drift_report.json"
CHUNK_LINES = 20_000
MAX_WORKERS = 8
# Categories rarer than this in training are pooled (with unknown) into one PSI bin: many
# tiny bins make PSI noisy on small windows.
MIN_CATEGORY_FRACTION = 0.01
CAPTURE_SUFFIXES = (".jsonl", ".json")
# The inference API's health check (Route 53 calls it through the real endpoint) sends a fixed
# request with this InferenceId (lambda/inference_api/front_door.py HEALTH_INFERENCE_ID): it
# is not traffic, so drift leaves it out.
HEALTH_CHECK_INFERENCE_ID = "health-check"


# ---- window accumulation -------------------------------------------------------------------


@dataclass
class NumericWindow:
    """Additive counts for one numeric feature: PSI bins, ECDF on the baseline grid, moments."""

    edges: np.ndarray
    points: np.ndarray
    rows: int = 0
    missing: int = 0
    total: float = 0.0
    bins: np.ndarray = field(init=False)
    below: np.ndarray = field(init=False)
    at_or_below: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.below = np.zeros(len(self.points), dtype=np.int64)
        self.at_or_below = np.zeros(len(self.points), dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        present = values[~np.isnan(values)]
        self.rows += len(values)
        self.missing += len(values) - len(present)
        self.total += float(present.sum())
        self.bins += np.bincount(
            baseline_stats.bin_index(self.edges, present), minlength=len(self.bins)
        )
        if len(self.points):
            # v < u_j  <=>  #{points <= v} <= j ;  v <= u_j  <=>  #{points < v} <= j
            size = len(self.points) + 1
            right = np.searchsorted(self.points, present, side="right")
            # One binary search: a value equal to a point has left = right - 1.
            left = right - (self.points[np.maximum(right - 1, 0)] == present)
            self.below += np.cumsum(np.bincount(right, minlength=size))[:-1]
            self.at_or_below += np.cumsum(np.bincount(left, minlength=size))[:-1]

    def merge(self, other: NumericWindow) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.total += other.total
        self.bins += other.bins
        self.below += other.below
        self.at_or_below += other.at_or_below


@dataclass
class CategoricalWindow:
    vocabulary_size: int
    rows: int = 0
    missing: int = 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.vocabulary_size + 1, dtype=np.int64)

    def add(self, codes: np.ndarray) -> None:
        present = codes[~np.isnan(codes)]
        self.rows += len(codes)
        self.missing += len(codes) - len(present)
        self.counts += baseline_stats.category_counts(present, self.vocabulary_size)

    def merge(self, other: CategoricalWindow) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.counts += other.counts


class Window:
    """The whole window's per-feature counts; feed it frames of FEATURE columns."""

    def __init__(self, baseline: dict[str, Any]) -> None:
        self.baseline = baseline
        self.features: dict[str, NumericWindow | CategoricalWindow] = {}
        for name in baseline["feature_order"]:
            stats = baseline["features"][name]
            if stats["kind"] == "numeric":
                points = baseline_stats.quantile_grid(stats["quantiles"])[0]
                edges = np.asarray(stats["bin_edges"], dtype=np.float64)
                self.features[name] = NumericWindow(edges=edges, points=points)
            else:
                self.features[name] = CategoricalWindow(len(stats["vocabulary"]))

    def add(self, frame: pd.DataFrame) -> None:
        for name, accumulator in self.features.items():
            accumulator.add(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))

    def merge(self, other: Window) -> None:
        """Add another window's counts (of another file): every statistic is additive."""
        for name, accumulator in self.features.items():
            accumulator.merge(other.features[name])  # type: ignore[arg-type]


# ---- scoring --------------------------------------------------------------------------------


# Calendar features follow the window's dates, not the population: a one-month window always
# "drifts" on month against a multi-month baseline, a short one on day of week. Reported with
# their PSI but status "ignored"; they never raise the alarm.
DEFAULT_IGNORED = ("month", "day_of_week")


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    distance: float = 0.2
    min_records: int = 500
    ignored: frozenset[str] = frozenset(DEFAULT_IGNORED)


def score_numeric(
    stats: dict[str, Any], window: NumericWindow, thresholds: Thresholds
) -> dict[str, Any]:
    present = window.rows - window.missing
    result: dict[str, Any] = {
        "kind": "numeric",
        "count": present,
        "missing_fraction": _share(window.missing, window.rows),
        "baseline_missing_fraction": stats["missing_fraction"],
        "mean": window.total / present if present else None,
        "baseline_mean": stats["mean"],
    }
    if present < thresholds.min_records or stats["count"] < thresholds.min_records:
        return {
            **result,
            "status": "insufficient_data",
            "psi": None,
            "ks": None,
            "outside_baseline_range": None,
        }
    baseline_missing = stats["missing_fraction"]
    expected = np.append(
        np.asarray(stats["bin_fractions"]) * (1 - baseline_missing), baseline_missing
    )
    actual = np.append(window.bins, window.missing) / window.rows
    psi = baseline_stats.psi(expected, actual)
    quantiles = stats["quantiles"]
    ks = baseline_stats.ks_from_counts(quantiles, window.below, window.at_or_below, present)
    outside = baseline_stats.outside_fraction(quantiles, window.below, window.at_or_below, present)
    drifted = psi >= thresholds.psi or ks >= thresholds.distance
    return {
        **result,
        "status": "drift" if drifted else "ok",
        "psi": psi,
        "ks": ks,
        "outside_baseline_range": outside,
    }


def category_pools(frequencies: np.ndarray) -> np.ndarray:
    """PSI bin of each category slot: its own when common in training, else the shared pool.

    Unknown (the last slot) always goes to the pool.
    """
    common = frequencies[:-1] >= MIN_CATEGORY_FRACTION
    pools = np.full(len(frequencies), int(common.sum()), dtype=np.int64)
    pools[:-1][common] = np.arange(int(common.sum()))
    return pools


def score_categorical(
    stats: dict[str, Any], window: CategoricalWindow, thresholds: Thresholds
) -> dict[str, Any]:
    present = window.rows - window.missing
    result: dict[str, Any] = {
        "kind": "categorical",
        "count": present,
        "missing_fraction": _share(window.missing, window.rows),
        "baseline_missing_fraction": stats["missing_fraction"],
    }
    if present < thresholds.min_records or stats["count"] < thresholds.min_records:
        return {
            **result,
            "status": "insufficient_data",
            "psi": None,
            "l_infinity": None,
            "chi_square_pvalue": None,
        }
    names = [*stats["vocabulary"], baseline_stats.UNKNOWN]
    expected_freq = np.array([stats["frequencies"].get(n, 0.0) for n in names])
    actual_freq = window.counts / present
    pools = category_pools(expected_freq)
    size = int(pools.max()) + 1
    expected_pooled = np.bincount(pools, weights=expected_freq, minlength=size)
    actual_counts_pooled = np.bincount(pools, weights=window.counts, minlength=size)
    baseline_missing = stats["missing_fraction"]
    expected = np.append(expected_pooled * (1 - baseline_missing), baseline_missing)
    actual = np.append(actual_counts_pooled, window.missing) / window.rows
    psi = baseline_stats.psi(expected, actual)
    linf = baseline_stats.l_infinity(expected_freq, actual_freq)
    pvalue = baseline_stats.chi_square_pvalue(actual_counts_pooled, expected_pooled)
    drifted = psi >= thresholds.psi or linf >= thresholds.distance
    return {
        **result,
        "status": "drift" if drifted else "ok",
        "psi": psi,
        "l_infinity": linf,
        "chi_square_pvalue": _finite_or_none(pvalue),
        "top_changes": _top_changes(names, expected_freq, actual_freq),
    }


def _top_changes(
    names: Sequence[str], expected: np.ndarray, actual: np.ndarray, top: int = 3
) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(actual - expected), kind="stable")[:top]
    return [
        {"category": names[i], "baseline": float(expected[i]), "window": float(actual[i])}
        for i in order
    ]


def score_window(
    baseline: dict[str, Any], window: Window, thresholds: Thresholds
) -> dict[str, Any]:
    """Per-feature results and the overall verdict (no input bookkeeping)."""
    features: dict[str, Any] = {}
    for name, accumulator in window.features.items():
        stats = baseline["features"][name]
        if isinstance(accumulator, NumericWindow):
            features[name] = score_numeric(stats, accumulator, thresholds)
        else:
            features[name] = score_categorical(stats, accumulator, thresholds)
        if name in thresholds.ignored and features[name]["status"] != "insufficient_data":
            features[name]["status"] = "ignored"
    scored = {n: f for n, f in features.items() if f["status"] in ("drift", "ok")}
    drifted = sorted(n for n, f in scored.items() if f["status"] == "drift")
    if drifted:
        status = "drift"
    elif scored:
        status = "ok"
    else:
        status = "insufficient_data"
    worst = max(scored, key=lambda n: scored[n]["psi"]) if scored else None
    return {
        "overall": {
            "status": status,
            "drift_score": scored[worst]["psi"] if worst else None,
            "worst_feature": worst,
            "drifted_feature_count": len(drifted),
            "drifted_features": drifted,
            "scored_feature_count": len(scored),
        },
        "features": features,
    }


def score_frame(
    baseline: dict[str, Any], frame: pd.DataFrame, thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """Score one in-memory frame of encoded features (used by the local monthly report)."""
    window = Window(baseline)
    window.add(frame)
    return score_window(baseline, window, thresholds or Thresholds())


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None


# ---- reading the window -------------------------------------------------------------------


# Categorical columns may arrive as raw values ("UA") or as vocabulary codes, like the
# endpoint accepts them; raw values are mapped to the baseline's codes (unknown -> -1).
CategoryCodes = Mapping[str, Mapping[str, int]]


def category_codes(baseline: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        name: {value: code for code, value in enumerate(stats["vocabulary"])}
        for name, stats in baseline["features"].items()
        if stats["kind"] == "categorical"
    }


@dataclass
class InputTally:
    files: int = 0
    records: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    health_checks: int = 0

    def merge(self, other: InputTally) -> None:
        self.files += other.files
        self.records += other.records
        self.health_checks += other.health_checks
        self.malformed.update(other.malformed)
        self.skipped_files.extend(other.skipped_files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "valid": self.records,
            "malformed": sum(self.malformed.values()),
            "malformed_by_reason": dict(sorted(self.malformed.items())),
            "skipped_files": self.skipped_files,
            "health_checks_left_out": self.health_checks,
        }


def input_files(capture_dir: Path) -> list[Path]:
    suffixes = (*CAPTURE_SUFFIXES, ".csv", ".parquet")
    return sorted(p for p in capture_dir.rglob("*") if p.is_file() and p.suffix in suffixes)


def read_window(
    capture_dir: Path,
    feature_order: Sequence[str],
    tally: InputTally,
    codes: CategoryCodes | None = None,
) -> Iterator[pd.DataFrame]:
    """Frames of feature columns (float64, NaN = missing) from every input file, streamed."""
    for path in input_files(capture_dir):
        yield from read_file(path, feature_order, tally, codes)


def read_file(
    path: Path,
    feature_order: Sequence[str],
    tally: InputTally,
    codes: CategoryCodes | None = None,
) -> Iterator[pd.DataFrame]:
    """Frames of feature columns from one input file, streamed in chunks."""
    for frame in raw_frames(path, feature_order, tally):
        yield numeric_rows(frame, tally, codes or {})


def raw_frames(
    path: Path, feature_order: Sequence[str], tally: InputTally
) -> Iterator[pd.DataFrame]:
    """One input file's feature columns as parsed (not yet numeric), streamed in chunks."""
    tally.files += 1
    if path.suffix in CAPTURE_SUFFIXES:
        return read_capture_file(path, feature_order, tally)
    if path.suffix == ".csv":
        return read_csv_file(path, feature_order, tally)
    return read_parquet_file(path, feature_order, tally)


def count_window(
    capture_dir: Path, baseline: dict[str, Any], workers: int | None = None
) -> tuple[Window, InputTally]:
    """The window's counts and tally over every input file. With several files and cores,
    files are read in parallel processes (JSON decoding is most of the time and runs in one
    core per process); each streams its file in chunks, so memory is bounded by workers x
    chunk. The counts are added up in file order: the result is the serial one."""
    files = input_files(capture_dir)
    workers = min(workers or os.cpu_count() or 1, MAX_WORKERS, len(files))
    jobs = [(path, baseline) for path in files]
    if workers <= 1:
        return _score_files(files, baseline)
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return _merged(baseline, pool.map(_score_file, jobs))


def _merged(
    baseline: dict[str, Any], parts: Iterable[tuple[Window, InputTally]]
) -> tuple[Window, InputTally]:
    window, tally = Window(baseline), InputTally()
    for part_window, part_tally in parts:
        window.merge(part_window)
        tally.merge(part_tally)
    return window, tally


def _score_files(files: list[Path], baseline: dict[str, Any]) -> tuple[Window, InputTally]:
    """Serial reading: the rows of consecutive files are made numeric together, up to
    CHUNK_LINES at a time. numeric_rows decides row by row and the counts add up, so the
    result is the per-file one; with many small files (a capture file per hour holds a few
    requests) the per-call cost of numeric_rows dominated."""
    window, tally = Window(baseline), InputTally()
    order, codes = baseline["feature_order"], category_codes(baseline)
    pending: list[pd.DataFrame] = []

    def flush() -> None:
        if pending:
            window.add(numeric_rows(pd.concat(pending, ignore_index=True), tally, codes))
            pending.clear()

    for path in files:
        for frame in raw_frames(path, order, tally):
            pending.append(frame)
            if sum(len(f) for f in pending) >= CHUNK_LINES:
                flush()
    flush()
    return window, tally


def _score_file(job: tuple[Path, dict[str, Any]]) -> tuple[Window, InputTally]:
    path, baseline = job
    window, tally = Window(baseline), InputTally()
    for frame in read_file(path, baseline["feature_order"], tally, category_codes(baseline)):
        window.add(frame)
    return window, tally


def read_capture_file(
    path: Path, feature_order: Sequence[str], tally: InputTally
) -> Iterator[pd.DataFrame]:
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        while chunk := list(itertools.islice(lines, CHUNK_LINES)):
            payloads = [
                p for p in map(partial(event_payload, tally=tally), events(chunk, tally)) if p
            ]
            yield parse_csv_text(
                "".join(p if p.endswith("\n") else p + "\n" for p in payloads),
                feature_order,
                tally,
            )


def events(lines: list[str], tally: InputTally) -> list[Any]:
    """Decoded JSON lines; one json.loads for the whole chunk unless some line is broken."""
    lines = [line for line in lines if not line.isspace()]
    try:
        return list(json.loads("[" + ",".join(lines) + "]"))
    except ValueError:
        pass  # a bad or blank line somewhere: decode line by line to keep the good ones
    decoded = []
    for line in lines:
        try:
            decoded.append(json.loads(line))
        except ValueError:
            tally.malformed["bad_capture_json"] += 1
    return decoded


def event_payload(event: Any, tally: InputTally) -> str | None:
    """The CSV text of one data capture event's endpointInput, or None (counted) if unusable."""
    try:
        endpoint_input = event["captureData"]["endpointInput"]
        data = endpoint_input["data"]
        encoding = str(endpoint_input.get("encoding", "CSV")).upper()
        content_type = str(endpoint_input.get("observedContentType", "text/csv"))
    except (KeyError, TypeError, AttributeError):
        tally.malformed["bad_capture_json"] += 1
        return None
    metadata = event.get("eventMetadata")
    if isinstance(metadata, dict) and metadata.get("inferenceId") == HEALTH_CHECK_INFERENCE_ID:
        tally.health_checks += 1
        return None
    if "csv" not in content_type.lower() or not isinstance(data, str):
        tally.malformed["not_csv"] += 1
        return None
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            tally.malformed["bad_base64"] += 1
            return None
    if encoding != "CSV":
        tally.malformed["not_csv"] += 1
        return None
    return data


def parse_csv_text(text: str, names: Sequence[str], tally: InputTally) -> pd.DataFrame:
    """Parse header-less CSV rows ending in newlines; blank rows are ignored, rows with a wrong
    field count or a non-number dropped and counted. The field count is checked on the bytes
    with numpy, so the common all-good chunk goes to the CSV parser untouched."""
    data = text.encode("utf-8")
    if data and not data.endswith(b"\n"):
        data += b"\n"
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    # Each segment is a row plus its newline, so never empty (reduceat needs that).
    commas = np.add.reduceat(raw == ord(","), starts, dtype=np.int64) if len(ends) else ends
    content = ends - starts - (raw[np.maximum(ends - 1, 0)] == ord("\r"))
    blank = content <= 0
    good = (commas == len(names) - 1) & ~blank
    tally.malformed["wrong_column_count"] += int((~good & ~blank).sum())
    if not good.any():
        return pd.DataFrame({n: np.empty(0) for n in names})
    if not good.all():
        data = b"".join(data[s : e + 1] for s, e in zip(starts[good], ends[good], strict=True))
    return pd.read_csv(io.BytesIO(data), header=None, names=list(names))


def numeric_rows(
    frame: pd.DataFrame, tally: InputTally, codes: CategoryCodes | None = None
) -> pd.DataFrame:
    """All columns as float64; rows holding a non-number or an infinity are dropped (counted).

    A categorical column's raw values become the baseline's codes first (unknown -> -1).
    """
    codes = codes or {}
    bad = np.zeros(len(frame), dtype=bool)
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "fiub":
            values = column.to_numpy(dtype=np.float64)
        else:
            coerced = pd.to_numeric(column, errors="coerce")
            text = coerced.isna() & column.notna()
            if name in codes and text.any():
                names = column[text].astype(str).str.strip()
                coerced[text] = names.map(codes[name]).fillna(-1).astype(np.float64)
                coerced[text & (column.astype(str).str.strip() == "")] = np.nan
                text = coerced.isna() & column.notna() & (column.astype(str).str.strip() != "")
            bad |= text.to_numpy()
            values = coerced.to_numpy(dtype=np.float64)
        bad |= np.isinf(values)
        columns[name] = values
    tally.malformed["non_numeric"] += int(bad.sum())
    kept = pd.DataFrame(columns)[~bad]
    tally.records += len(kept)
    return kept


def read_csv_file(
    path: Path, feature_order: Sequence[str], tally: InputTally
) -> Iterator[pd.DataFrame]:
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        header = [h.strip() for h in lines.readline().rstrip("\r\n").split(",")]
        absent = [n for n in feature_order if n not in header]
        if absent:
            tally.skipped_files.append(
                {"file": str(path), "reason": f"header lacks {', '.join(absent)}"}
            )
            return
        while chunk := list(itertools.islice(lines, CHUNK_LINES)):
            yield parse_csv_text("".join(chunk), header, tally)[list(feature_order)]


def read_parquet_file(
    path: Path, feature_order: Sequence[str], tally: InputTally
) -> Iterator[pd.DataFrame]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        tally.skipped_files.append({"file": str(path), "reason": "pyarrow is not installed"})
        return
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=CHUNK_LINES, columns=list(feature_order)):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises many types for unreadable files
        tally.skipped_files.append({"file": str(path), "reason": f"unreadable parquet: {exc}"})


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
