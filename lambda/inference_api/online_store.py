"""The two AWS calls of the inference API, with their failures mapped to API answers.

Online store: one BatchGetRecord for the weather candidates and the plane. A record that is
not there is the model's missing value; a store that cannot answer (throttled, unavailable,
unprocessed identifiers) is too, flagged "unavailable" so the caller and the logs can tell.
A request the store refuses (access, validation: a deployment fault) is a 502.
Endpoint: InvokeEndpoint; throttling -> 429, not ready / unavailable -> 503, model errors and
anything else -> 502, timeouts -> 504.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import feature_records
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from front_door import FOUND, MISSING, UNAVAILABLE, ApiError, OnlineFeatures

_STORE_BUSY = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)
_ENDPOINT_STATUS = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 503,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 503,
}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def lookup_online(
    client: Any,
    *,
    weather_group: str,
    plane_group: str,
    weather_ids: list[str],
    tailnum: str | None,
) -> OnlineFeatures:
    identifiers: list[dict[str, Any]] = [
        {"FeatureGroupName": weather_group, "RecordIdentifiersValueAsString": weather_ids}
    ]
    if tailnum:
        identifiers.append(
            {"FeatureGroupName": plane_group, "RecordIdentifiersValueAsString": [tailnum]}
        )
    status = {
        feature_records.WEATHER_GROUP: MISSING,
        feature_records.PLANE_GROUP: MISSING,
    }
    try:
        response = client.batch_get_record(Identifiers=identifiers)
    except (BotoConnectionError, HTTPClientError):  # timeouts and dropped connections
        return OnlineFeatures(status=dict.fromkeys(status, UNAVAILABLE))
    except ClientError as error:
        if _error_code(error) in _STORE_BUSY:
            return OnlineFeatures(status=dict.fromkeys(status, UNAVAILABLE))
        raise ApiError(502, f"feature lookup failed: {_error_code(error)}") from None
    group_of = {
        weather_group: feature_records.WEATHER_GROUP,
        plane_group: feature_records.PLANE_GROUP,
    }
    records: dict[tuple[str, str], dict[str, str]] = {}
    for item in response.get("Records", []):
        group = group_of.get(item["FeatureGroupName"].rsplit("/", 1)[-1])
        if group is not None:
            records[(group, item["RecordIdentifierValueAsString"])] = _as_dict(item["Record"])
    for item in [*response.get("Errors", []), *response.get("UnprocessedIdentifiers", [])]:
        group = group_of.get(item["FeatureGroupName"].rsplit("/", 1)[-1])
        if group is not None and item.get("ErrorCode") != "ResourceNotFound":
            status[group] = UNAVAILABLE
    weather = next(
        (
            records[(feature_records.WEATHER_GROUP, i)]
            for i in weather_ids
            if (feature_records.WEATHER_GROUP, i) in records
        ),
        None,
    )
    plane = records.get((feature_records.PLANE_GROUP, tailnum or ""))
    if weather is not None:
        status[feature_records.WEATHER_GROUP] = FOUND
    if plane is not None:
        status[feature_records.PLANE_GROUP] = FOUND
    return OnlineFeatures(weather=weather, plane=plane, status=status)


def _as_dict(record: list[Mapping[str, Any]]) -> dict[str, str]:
    return {v["FeatureName"]: v["ValueAsString"] for v in record if "ValueAsString" in v}


def invoke_endpoint(
    client: Any, endpoint_name: str, row: str, inference_id: str | None = None
) -> str:
    extra = {"InferenceId": inference_id} if inference_id else {}
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType="text/csv",
            Accept="text/csv",
            Body=row,
            **extra,
        )
    except (ConnectTimeoutError, ReadTimeoutError):
        raise ApiError(504, "the model did not answer in time") from None
    except (BotoConnectionError, HTTPClientError):
        raise ApiError(503, "the model could not be reached", retry_after=1) from None
    except ClientError as error:
        code = _error_code(error)
        status = _ENDPOINT_STATUS.get(code, 502)
        retry_after = 1 if status in (429, 503) else None
        raise ApiError(status, f"the model could not answer: {code}", retry_after) from None
    body: str = response["Body"].read().decode("utf-8")
    return body
