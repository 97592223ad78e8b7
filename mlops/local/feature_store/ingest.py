"""Raw weather.csv / planes.csv -> records -> the local offline and online stores, the way
the ingestion Lambda writes them to Feature Store (same record builders).

Idempotent: record ids and event times are functions of the row, the Parquet files are named
after the raw file's digest, and a ledger entry per digest makes a second ingestion of the
same bytes a no-op. The ledger entry is written last: a crash mid-way re-ingests next time,
which rewrites the same files and the same online records.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import feature_records

from mlops.local.feature_store.offline import write_offline
from mlops.local.feature_store.online import LocalOnlineStore, OnlineStoreError

LEDGER_DIR = "ingested"


class IngestionError(ValueError):
    """A raw file that cannot be ingested (one line: the file, the row, the field)."""


@dataclass(frozen=True)
class IngestionResult:
    file: str
    feature_group: str
    sha256: str
    records: int
    online_changed: int
    offline_files: int
    skipped: bool
    seconds: float


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_records(path: Path, group: str) -> list[dict[str, str]]:
    build = feature_records.RECORD_BUILDERS[group]
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            # Line 1 is the header.
            return [build(row, line) for line, row in enumerate(reader, start=2)]
    except feature_records.RecordError as error:
        raise IngestionError(f"{path}: {error}") from None
    except UnicodeDecodeError as error:
        raise IngestionError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); it must be "
            "a UTF-8 CSV file in the nycflights13 layout"
        ) from None
    except csv.Error as error:
        raise IngestionError(f"{path}: not a readable CSV file ({error})") from None


def ingest_file(store_dir: Path, path: Path, *, clock: Callable[[], datetime]) -> IngestionResult:
    path = Path(path)
    group = feature_records.GROUP_OF_FILE.get(path.name)
    if group is None:
        known = ", ".join(sorted(feature_records.GROUP_OF_FILE))
        raise IngestionError(f"{path}: no feature group is fed from {path.name} (known: {known})")
    started = time.perf_counter()
    digest = file_digest(path)
    ledger = Path(store_dir) / LEDGER_DIR / f"{digest}.json"
    if ledger.is_file():
        return IngestionResult(
            str(path), group, digest, 0, 0, 0, True, time.perf_counter() - started
        )
    records = read_records(path, group)
    try:
        files = write_offline(store_dir, group, records, digest[:16], clock())
        store = LocalOnlineStore(store_dir)
        try:
            changed = store.put_records(
                group,
                records,
                feature_records.record_identifier(group),
                feature_records.record_event_time(group),
            )
        finally:
            store.close()
        result = IngestionResult(
            str(path), group, digest, len(records), changed, files, False,
            time.perf_counter() - started,
        )  # fmt: skip
        ledger.parent.mkdir(parents=True, exist_ok=True)
        temporary = ledger.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(result), indent=2) + "\n")
        os.replace(temporary, ledger)
    except OSError as error:
        # Nothing is lost: without its ledger entry the file is ingested again next time.
        raise IngestionError(
            f"cannot write the feature store {store_dir} ({error.strerror or error}); give a "
            "writable --feature-store folder"
        ) from None
    except OnlineStoreError as error:
        raise IngestionError(str(error)) from None
    return result


def ingest_folder(
    store_dir: Path, data_dir: Path, *, clock: Callable[[], datetime]
) -> list[IngestionResult]:
    """Every raw table of data_dir that feeds a feature group."""
    found = [Path(data_dir) / name for name in sorted(feature_records.GROUP_OF_FILE)]
    missing = [p.name for p in found if not p.is_file()]
    if missing:
        raise IngestionError(f"{data_dir} has no {', '.join(missing)}")
    return [ingest_file(store_dir, path, clock=clock) for path in found]
