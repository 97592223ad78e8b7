"""Drift inputs: captured records read in chunks, one worker process per file."""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from drift_events import capture_csv_text
from drift_window import Window

CHUNK_LINES = 20_000
MAX_WORKERS = 8
CAPTURE_SUFFIXES = (".jsonl", ".json")


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
            yield parse_csv_text(capture_csv_text(chunk, tally), feature_order, tally)


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
