"""EventBridge (S3 Object Created under raw/) -> ingestion.ingest_object.

Environment: WEATHER_FEATURE_GROUP, PLANE_FEATURE_GROUP, LEDGER_PREFIX. A failed invocation
raises, so the asynchronous invocation is retried; a retry is harmless (see ingestion.py).
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict
from typing import Any

import boto3
import ingestion
from botocore.config import Config

# Throttled PutRecords back off and retry; the pool keeps WORKERS calls in flight.
_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    max_pool_connections=ingestion.WORKERS,
)


@functools.cache
def _clients() -> tuple[Any, Any]:
    return (
        boto3.client("s3", config=_BOTO_CONFIG),
        boto3.client("sagemaker-featurestore-runtime", config=_BOTO_CONFIG),
    )


def answer_event(
    event: dict[str, Any], s3: Any, featurestore: Any, env: dict[str, str]
) -> dict[str, Any]:
    detail = event.get("detail", {})
    bucket, key = detail.get("bucket", {}).get("name"), detail.get("object", {}).get("key")
    if not bucket or not key:
        raise ValueError(
            "not an S3 Object Created event: detail.bucket.name / detail.object.key missing"
        )
    result = ingestion.ingest_object(
        s3,
        featurestore,
        bucket=bucket,
        key=key,
        feature_group_names={
            "weather": env["WEATHER_FEATURE_GROUP"],
            "plane": env["PLANE_FEATURE_GROUP"],
        },
        ledger_prefix=env["LEDGER_PREFIX"],
    )
    if result is None:
        return {"ingested": False, "reason": f"{key} feeds no feature group"}
    return {"ingested": not result.skipped, **asdict(result)}


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    s3, featurestore = _clients()
    return answer_event(event, s3, featurestore, dict(os.environ))
