"""The offline store in Feature Store's S3 layout: Parquet files under
offline-store/<group>/data/year=/month=/day=/hour= of the record's event time, with the
service's three extra columns (write_time, api_invocation_time, is_deleted).

The file name is the ingestion id (digest of the raw file) so writing the same file again
replaces its own Parquet files instead of adding rows; the service itself appends, which is
why the ingestion ledger skips a file already ingested (see ingest.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import feature_schema
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

OFFLINE_DIR = "offline-store"
_ARROW_TYPES = {"String": pa.string(), "Integral": pa.int64(), "Fractional": pa.float64()}
PARTITIONS = ("year", "month", "day", "hour")


def group_spec(group: str) -> feature_schema.FeatureGroupSpec:
    return next(g for g in feature_schema.FEATURE_GROUPS if g.name == group)


def data_dir(store_dir: Path, group: str) -> Path:
    return Path(store_dir) / OFFLINE_DIR / group / "data"


def write_offline(
    store_dir: Path,
    group: str,
    records: Sequence[Mapping[str, str]],
    ingestion_id: str,
    written_at: datetime,
) -> int:
    """Write the records as Parquet partitions; returns the number of files written (none
    for no records: a raw file with a header only)."""
    if not records:
        return 0
    spec = group_spec(group)
    columns = feature_schema.feature_group_columns(spec)
    frame = pd.DataFrame.from_records(list(records), columns=[c for c, _ in columns])
    times = pd.to_datetime(frame[spec.event_time], utc=True)
    stamp = pd.Timestamp(written_at).tz_convert("UTC")
    table = pa.table(
        {
            **{
                name: pa.array(
                    # object first: a column no record has is float NaN, never None
                    frame[name].astype(object).where(frame[name].notna(), None).tolist(),
                    type=pa.string(),
                ).cast(_ARROW_TYPES[kind])
                for name, kind in columns
            },
            "write_time": pa.array([stamp] * len(frame), type=pa.timestamp("ms", tz="UTC")),
            "api_invocation_time": pa.array(
                [stamp] * len(frame), type=pa.timestamp("ms", tz="UTC")
            ),
            "is_deleted": pa.array([False] * len(frame)),
        }
    )
    # One folder per event-time hour, as the service writes them; rows sorted by time so
    # each folder is one contiguous slice (pyarrow's write_dataset is 10x slower here).
    order = np.argsort(times.to_numpy(), kind="stable")
    table = table.take(pa.array(order))
    folders = times.iloc[order].dt.strftime("year=%Y/month=%m/day=%d/hour=%H").to_numpy()
    starts = np.flatnonzero(np.r_[True, folders[1:] != folders[:-1]])
    ends = np.r_[starts[1:], len(folders)]
    target = data_dir(store_dir, group)
    for first, end in zip(starts, ends, strict=True):
        folder = target / str(folders[first])
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(first, end - first), folder / f"{ingestion_id}.parquet")
    return len(starts)


def read_offline(store_dir: Path, group: str) -> pd.DataFrame:
    """Every offline row of a group (partition columns included)."""
    target = data_dir(store_dir, group)
    if not target.is_dir():
        return pd.DataFrame()
    dataset = ds.dataset(target, format="parquet", partitioning="hive")
    return dataset.to_table().to_pandas()


def record_columns(group: str) -> tuple[str, ...]:
    return tuple(c for c, _ in feature_schema.feature_group_columns(group_spec(group)))
