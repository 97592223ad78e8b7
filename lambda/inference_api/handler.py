"""API Gateway (REST, proxy integration) -> front_door: POST /predict, GET /health.

Thin: builds the two clients once per container and passes the online lookup and the
endpoint call to front_door's plain functions. Environment: ENDPOINT_NAME,
WEATHER_FEATURE_GROUP, PLANE_FEATURE_GROUP. The answer's model_version is the model's own
(its container names its release in every answer), so the function needs no release.
"""

from __future__ import annotations

import base64
import functools
import os
import time
from typing import Any

import boto3
import front_door
import online_store
from botocore.config import Config

# Inside API Gateway's 29 s and the function's 25 s, even at the worst: the online lookup
# gives up after 2 x (1 + 1) s (then the features are "unavailable"), the endpoint call
# after 2 x (2 + 5) s (then 504).
_STORE_CONFIG = Config(
    connect_timeout=1, read_timeout=1, retries={"mode": "standard", "max_attempts": 2}
)
_RUNTIME_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}
)

# Per warm container: at most one real health check every 15 s (Route 53 checks every 30 s
# from each of its checker regions).
HEALTH_CACHE = front_door.HealthCache(15.0, time.monotonic)


@functools.cache
def _clients() -> tuple[Any, Any]:
    return (
        boto3.client("sagemaker-featurestore-runtime", config=_STORE_CONFIG),
        boto3.client("sagemaker-runtime", config=_RUNTIME_CONFIG),
    )


def answer_event(
    event: dict[str, Any],
    store: Any,
    runtime: Any,
    env: dict[str, str],
    health_cache: front_door.HealthCache | None = None,
) -> dict[str, Any]:
    def lookup(weather_ids: list[str], tailnum: str | None) -> front_door.OnlineFeatures:
        return online_store.lookup_online(
            store,
            weather_group=env["WEATHER_FEATURE_GROUP"],
            plane_group=env["PLANE_FEATURE_GROUP"],
            weather_ids=weather_ids,
            tailnum=tailnum,
        )

    def invoke(row: str, inference_id: str | None) -> str:
        return online_store.invoke_endpoint(runtime, env["ENDPOINT_NAME"], row, inference_id)

    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    answer = front_door.route(
        event.get("httpMethod", ""),
        event.get("resource") or event.get("path", ""),
        body,
        lookup,
        invoke,
        health_cache,
    )
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json", **answer.headers},
        "body": answer.json(),
    }


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    store, runtime = _clients()
    return answer_event(event, store, runtime, dict(os.environ), HEALTH_CACHE)
