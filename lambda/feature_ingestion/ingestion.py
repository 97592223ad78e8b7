"""New raw weather.csv / planes.csv in S3 -> PutRecord into the weather and plane feature
groups (online and offline stores), with the record builders of feature_records.

Write path: PutRecord, WORKERS calls in flight at once, botocore's standard retries on
throttling. Idempotent: ids and event times come from the rows, so a repeated record is
not newer and Feature Store leaves the online store as it is; the ledger object
(<ledger prefix><sha256>.json, written last) makes a second delivery of the same bytes a
no-op, so the offline store does not get the same rows appended again either.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import feature_records
from botocore.exceptions import ClientError

WORKERS = 16
MAX_FAILURES_REPORTED = 3


class IngestionError(RuntimeError):
    """Records that could not be written after retries: the invocation fails and is retried."""


@dataclass(frozen=True)
class IngestionResult:
    bucket: str
    key: str
    feature_group: str
    sha256: str
    records: int
    skipped: bool


def group_of_key(key: str) -> str | None:
    return feature_records.GROUP_OF_FILE.get(key.rsplit("/", 1)[-1])


def records_from_csv(text: str, group: str) -> list[dict[str, str]]:
    build = feature_records.RECORD_BUILDERS[group]
    reader = csv.DictReader(io.StringIO(text))
    return [build(row, line) for line, row in enumerate(reader, start=2)]


def as_feature_values(record: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"FeatureName": name, "ValueAsString": value} for name, value in record.items()]


def put_records(
    put_record: Callable[..., Any],
    feature_group_name: str,
    records: Iterable[Mapping[str, str]],
    workers: int | None = None,
) -> None:
    """PutRecord each record, `workers` at a time; raise with the first failures."""

    def put(record: Mapping[str, str]) -> str | None:
        try:
            put_record(FeatureGroupName=feature_group_name, Record=as_feature_values(record))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            return f"{next(iter(record.values()))}: {code}"
        return None

    # WORKERS is read at call time (None), so a test or caller that changes it is heard.
    with ThreadPoolExecutor(max_workers=workers or WORKERS) as pool:
        failures = [f for f in pool.map(put, records) if f is not None]
    if failures:
        shown = "; ".join(failures[:MAX_FAILURES_REPORTED])
        raise IngestionError(
            f"{len(failures)} records not written to {feature_group_name}: {shown}"
        )


def ingest_object(
    s3: Any,
    featurestore: Any,
    *,
    bucket: str,
    key: str,
    feature_group_names: Mapping[str, str],
    ledger_prefix: str,
    workers: int | None = None,
) -> IngestionResult | None:
    """Ingest one raw object; None when it feeds no feature group."""
    group = group_of_key(key)
    if group is None:
        return None
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    digest = hashlib.sha256(body).hexdigest()
    ledger_key = f"{ledger_prefix}{digest}.json"
    # Listing the exact key needs only s3:ListBucket on the ledger prefix; HeadObject or
    # GetObject of a missing key would answer 403, not 404, without ListBucket on the bucket.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=ledger_key, MaxKeys=1)
    if listed.get("KeyCount", 0) > 0:
        return IngestionResult(bucket, key, group, digest, 0, True)
    records = records_from_csv(body.decode("utf-8"), group)
    put_records(featurestore.put_record, feature_group_names[group], records, workers)
    result = IngestionResult(bucket, key, group, digest, len(records), False)
    s3.put_object(
        Bucket=bucket,
        Key=ledger_key,
        Body=json.dumps(asdict(result), indent=2).encode(),
        ContentType="application/json",
    )
    return result
