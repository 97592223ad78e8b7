"""Inference API Lambda: request parsing, feature assembly, and the two AWS calls through
botocore's Stubber (moto has no sagemaker-featurestore-runtime, and no InvokeEndpoint)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import feature_records
import feature_schema
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

FOLDER = Path(__file__).resolve().parents[1] / "lambda" / "inference_api"
sys.path.insert(0, str(FOLDER))
import front_door  # noqa: E402

_spec = importlib.util.spec_from_file_location("inference_api_handler", FOLDER / "handler.py")
assert _spec is not None and _spec.loader is not None
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)

ENV = {
    "ENDPOINT_NAME": "flightdelay-prod",
    "WEATHER_FEATURE_GROUP": "flightdelay-prod-weather",
    "PLANE_FEATURE_GROUP": "flightdelay-prod-plane",
}
REQUEST = dict(front_door.HEALTH_REQUEST)  # 2013-01-01 05:15 EST = 10:15 UTC
# Known at 09:51 (hour 09), 08:51, 07:51; 06:51 is 3 h 24 min old: outside the window.
WEATHER_IDS = ["EWR#2013-01-01T09:00Z", "EWR#2013-01-01T08:00Z", "EWR#2013-01-01T07:00Z"]
WEATHER = {
    "weather_id": WEATHER_IDS[1],
    "observed_at": "2013-01-01T08:51:00Z",
    "temp": "39.02",
    "dewp": "26.06",
    "humid": "59.37",
    "wind_dir": "270.0",
    "wind_speed": "10.357",
    "precip": "0.0",
    "pressure": "1012.0",
    "visib": "10.0",
}
PLANE = {
    "tailnum": "N14228",
    "registered_at": "1999-01-01T00:00:00Z",
    "plane_age": "0.0",
    "seats": "149.0",
}


def _record(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


def _identifiers(tailnum: str | None = "N14228") -> list[dict[str, Any]]:
    ids: list[dict[str, Any]] = [
        {
            "FeatureGroupName": ENV["WEATHER_FEATURE_GROUP"],
            "RecordIdentifiersValueAsString": WEATHER_IDS,
        }
    ]
    if tailnum:
        ids.append(
            {
                "FeatureGroupName": ENV["PLANE_FEATURE_GROUP"],
                "RecordIdentifiersValueAsString": [tailnum],
            }
        )
    return ids


def _records(weather: bool = True, plane: bool = True) -> list[dict[str, Any]]:
    out = []
    if weather:
        out.append(
            {
                "FeatureGroupName": ENV["WEATHER_FEATURE_GROUP"],
                "RecordIdentifierValueAsString": WEATHER_IDS[1],
                "Record": _record(WEATHER),
            }
        )
    if plane:
        out.append(
            {
                "FeatureGroupName": ENV["PLANE_FEATURE_GROUP"],
                "RecordIdentifierValueAsString": "N14228",
                "Record": _record(PLANE),
            }
        )
    return out


def _body(text: str) -> StreamingBody:
    data = text.encode()
    return StreamingBody(io.BytesIO(data), len(data))


class Aws:
    def __init__(self) -> None:
        self.store = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
        self.runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
        self.store_stub, self.runtime_stub = Stubber(self.store), Stubber(self.runtime)
        self.rows: list[str] = []

    def lookup_returns(self, **response: Any) -> None:
        self.store_stub.add_response(
            "batch_get_record",
            {"Records": [], "Errors": [], "UnprocessedIdentifiers": [], **response},
            {"Identifiers": _identifiers()},
        )

    def endpoint_returns(
        self, row: str, probability: str = "0.270000,3\n", inference_id: str | None = None
    ) -> None:
        expected = {
            "EndpointName": ENV["ENDPOINT_NAME"],
            "ContentType": "text/csv",
            "Accept": "text/csv",
            "Body": row,
        }
        if inference_id:
            expected["InferenceId"] = inference_id
        self.runtime_stub.add_response(
            "invoke_endpoint", {"Body": _body(probability), "ContentType": "text/csv"}, expected
        )

    def call(
        self,
        body: Any,
        method: str = "POST",
        resource: str = "/predict",
        cache: front_door.HealthCache | None = None,
    ) -> dict[str, Any]:
        event = {
            "httpMethod": method,
            "resource": resource,
            "body": body if isinstance(body, str) or body is None else json.dumps(body),
        }
        with self.store_stub, self.runtime_stub:
            result: dict[str, Any] = handler.answer_event(
                event, self.store, self.runtime, ENV, cache
            )
            self.store_stub.assert_no_pending_responses()
            self.runtime_stub.assert_no_pending_responses()
        result["json"] = json.loads(result["body"])
        return result


def _row(weather: bool = True, plane: bool = True) -> str:
    request = front_door.parse_request(json.dumps(REQUEST))
    online = front_door.OnlineFeatures(
        weather=WEATHER if weather else None, plane=PLANE if plane else None
    )
    return front_door.feature_row(request, online)


# ---- Request ---------------------------------------------------------------------------


def test_the_feature_row_follows_the_schema_order_and_the_local_clock() -> None:
    values = dict(zip(feature_schema.FEATURE_ORDER, _row().strip().split(","), strict=True))
    assert values["carrier"] == "UA" and values["origin"] == "EWR" and values["dest"] == "IAH"
    # Local wall clock (EST), as training computes them: 05 h, Tuesday (1), January.
    assert (values["sched_dep_hour"], values["day_of_week"], values["month"]) == ("5", "1", "1")
    assert values["temp"] == "39.02" and values["pressure"] == "1012.0"
    assert values["seats"] == "149.0"
    assert values["plane_age"] == "14.0"  # 2013 - 1999, as in training
    assert values["distance"] == ""  # not sent: the model's missing value


def test_missing_online_features_are_the_models_missing_values() -> None:
    values = dict(
        zip(feature_schema.FEATURE_ORDER, _row(False, False).strip().split(","), strict=True)
    )
    for name in (*feature_records.WEATHER_FEATURES, "plane_age", "seats"):
        assert values[name] == "", name


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"carrier": None}, 400, "carrier is required"),
        ({"flight": "1545"}, 400, "flight must be a int"),
        ({"flight": 0}, 400, "between 1 and 9999"),
        ({"scheduled_departure": "2013-01-01T05:15:00"}, 400, "UTC offset"),
        ({"scheduled_departure": "tomorrow"}, 400, "not an ISO 8601 time"),
        ({"origin": "E W R"}, 400, "origin"),
        ({"distance": -3}, 400, "distance must be between"),
        ({"seat": 3}, 400, "unknown field 'seat'"),
    ],
)
def test_bad_requests_are_400_with_the_field_named(
    change: dict[str, Any], status: int, message: str
) -> None:
    body = {k: v for k, v in {**REQUEST, **change}.items() if v is not None}
    answer = Aws().call(body)
    assert answer["statusCode"] == status
    assert message in answer["json"]["error"]


def test_not_json_and_oversized_bodies_are_refused() -> None:
    assert Aws().call("{not json")["statusCode"] == 400
    assert Aws().call("x" * (front_door.MAX_BODY_BYTES + 1))["statusCode"] == 413
    assert Aws().call(None)["statusCode"] == 400


def test_weather_candidates_end_at_the_newest_known_observation() -> None:
    # Departure at 09:51 UTC exactly: the 09:00 row is known (observed 09:51).
    at = datetime(2013, 1, 1, 9, 51, tzinfo=UTC)
    assert feature_records.weather_candidates("EWR", at)[0] == "EWR#2013-01-01T09:00Z"
    # One minute earlier it is not: the newest is 08:00.
    earlier = datetime(2013, 1, 1, 9, 50, tzinfo=UTC)
    assert feature_records.weather_candidates("EWR", earlier)[0] == "EWR#2013-01-01T08:00Z"
    # The oldest candidate is at most 3 h old: at 09:51, 06:51 is exactly 3 h (kept).
    assert feature_records.weather_candidates("EWR", at)[-1] == "EWR#2013-01-01T06:00Z"
    later = datetime(2013, 1, 1, 9, 52, tzinfo=UTC)  # 06:51 is now 3 h 1 min old: dropped
    assert feature_records.weather_candidates("EWR", later)[-1] == "EWR#2013-01-01T07:00Z"


# ---- AWS calls -------------------------------------------------------------------------


def test_found_features_reach_the_endpoint_and_the_answer_names_the_version() -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.endpoint_returns(_row())
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == 200
    assert answer["json"] == {
        "probability_delayed": 0.27,
        "model_version": "3",
        "features": {"weather": "found", "plane": "found"},
    }


def test_newest_weather_candidate_wins() -> None:
    aws = Aws()
    newer = {**WEATHER, "weather_id": WEATHER_IDS[0], "temp": "41.0"}
    records = [
        *_records(plane=False),
        {
            "FeatureGroupName": ENV["WEATHER_FEATURE_GROUP"],
            "RecordIdentifierValueAsString": WEATHER_IDS[0],
            "Record": _record(newer),
        },
    ]
    aws.lookup_returns(Records=records)
    request = front_door.parse_request(json.dumps(REQUEST))
    aws.endpoint_returns(front_door.feature_row(request, front_door.OnlineFeatures(weather=newer)))
    assert aws.call(REQUEST)["json"]["features"] == {"weather": "found", "plane": "missing"}


def test_no_online_records_take_the_missing_value_path_not_a_500() -> None:
    aws = Aws()
    aws.lookup_returns()
    aws.endpoint_returns(_row(False, False), "0.5\n")
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == 200
    assert answer["json"]["features"] == {"weather": "missing", "plane": "missing"}


def test_a_throttled_store_degrades_to_missing_features_flagged_unavailable() -> None:
    aws = Aws()
    aws.store_stub.add_client_error("batch_get_record", "ThrottlingException", http_status_code=400)
    aws.endpoint_returns(_row(False, False))
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == 200
    assert answer["json"]["features"] == {"weather": "unavailable", "plane": "unavailable"}


def test_unprocessed_identifiers_are_unavailable_not_missing() -> None:
    aws = Aws()
    unprocessed = [
        {
            "FeatureGroupName": ENV["PLANE_FEATURE_GROUP"],
            "RecordIdentifiersValueAsString": ["N14228"],
        }
    ]
    aws.lookup_returns(Records=_records(plane=False), UnprocessedIdentifiers=unprocessed)
    aws.endpoint_returns(_row(plane=False))
    assert aws.call(REQUEST)["json"]["features"] == {"weather": "found", "plane": "unavailable"}


def test_a_store_that_refuses_the_request_is_a_502() -> None:
    aws = Aws()
    aws.store_stub.add_client_error("batch_get_record", "AccessForbidden", http_status_code=403)
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == 502
    assert "AccessForbidden" in answer["json"]["error"]


@pytest.mark.parametrize(
    ("code", "http", "status"),
    [
        ("ThrottlingException", 400, 429),
        ("ModelNotReadyException", 429, 503),
        ("ServiceUnavailable", 503, 503),
        ("ModelError", 424, 502),
        ("ValidationError", 400, 502),
    ],
)
def test_endpoint_errors_map_to_clear_codes(code: str, http: int, status: int) -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.runtime_stub.add_client_error("invoke_endpoint", code, http_status_code=http)
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == status
    assert code in answer["json"]["error"]
    assert ("Retry-After" in answer["headers"]) == (status in (429, 503))


def test_a_model_answer_that_is_not_a_probability_is_a_502() -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.endpoint_returns(_row(), "1.7\n")
    assert aws.call(REQUEST)["statusCode"] == 502


def test_health_runs_the_real_path_and_fails_when_the_endpoint_does() -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    # Marked, so the drift job can tell the health check's fixed row from real traffic.
    aws.endpoint_returns(_row(), inference_id=front_door.HEALTH_INFERENCE_ID)
    assert aws.call(None, "GET", "/health")["json"] == {"status": "healthy", "model_version": "3"}
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.endpoint_returns(_row(), "0.270000,2\n", front_door.HEALTH_INFERENCE_ID)
    assert aws.call(None, "GET", "/health")["json"]["model_version"] == "2"  # the model's
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.runtime_stub.add_client_error("invoke_endpoint", "ModelError", http_status_code=424)
    answer = aws.call(None, "GET", "/health")
    assert answer["statusCode"] == 503 and "ModelError" in answer["json"]["reason"]


def test_wrong_methods_and_paths() -> None:
    assert Aws().call(None, "GET", "/predict")["statusCode"] == 405
    assert Aws().call(None, "POST", "/health")["statusCode"] == 405
    assert Aws().call(None, "GET", "/other")["statusCode"] == 404


def test_health_answers_from_the_cache_within_its_ttl_and_checks_again_after() -> None:
    now = [100.0]
    cache = front_door.HealthCache(15.0, lambda: now[0])
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.endpoint_returns(_row(), inference_id=front_door.HEALTH_INFERENCE_ID)
    assert aws.call(None, "GET", "/health", cache)["statusCode"] == 200
    now[0] = 114.9  # inside the ttl: no AWS call (the stubs would fail on one)
    assert aws.call(None, "GET", "/health", cache)["statusCode"] == 200
    now[0] = 115.0  # at the ttl: a real check again, which now fails
    aws.lookup_returns(Records=_records())
    aws.runtime_stub.add_client_error("invoke_endpoint", "ModelError", http_status_code=424)
    assert aws.call(None, "GET", "/health", cache)["statusCode"] == 503


def _failing_client(service: str, operation: str, error: Exception) -> Any:
    """A client (no Stubber) whose call fails in transport, as botocore raises on a timeout
    or a dropped connection; raised just before sending, so nothing leaves the machine."""
    client = boto3.client(service, region_name="us-east-1")

    def fail(**_: Any) -> None:
        raise error

    client.meta.events.register(f"before-send.*.{operation}", fail)
    return client


def test_a_store_that_times_out_is_unavailable_and_the_model_still_answers() -> None:
    aws = Aws()
    aws.store = _failing_client(
        "sagemaker-featurestore-runtime", "BatchGetRecord", ReadTimeoutError(endpoint_url="x")
    )
    aws.endpoint_returns(_row(False, False))
    answer = aws.call(REQUEST)
    assert answer["statusCode"] == 200
    assert answer["json"]["features"] == {"weather": "unavailable", "plane": "unavailable"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ReadTimeoutError(endpoint_url="https://rt"), 504),
        (EndpointConnectionError(endpoint_url="https://rt"), 503),
    ],
)
def test_an_endpoint_that_times_out_or_cannot_be_reached(error: Exception, status: int) -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.runtime = _failing_client("sagemaker-runtime", "InvokeEndpoint", error)
    assert aws.call(REQUEST)["statusCode"] == status


# ---- The version: the model's own answer ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.270000,3\n", (0.27, "3")),
        ("0.270000,3", (0.27, "3")),
        ("0.270000,v3.1-rc_2\r\n", (0.27, "v3.1-rc_2")),
        ("0.270000\n", (0.27, None)),  # a model trained before models named themselves
        ("0.270000, \n", (0.27, None)),
        ("0,3\n", (0.0, "3")),
        ("1,3\n", (1.0, "3")),
    ],
)
def test_the_models_answer_gives_the_probability_and_its_version(
    text: str, expected: tuple[float, str | None]
) -> None:
    assert front_door.parse_answer(text) == expected


@pytest.mark.parametrize(
    "text", ["", "\n", "0.27,3,4\n", "three,3\n", ",3\n", "1.000001,3\n", "-0.1,3\n"]
)
def test_a_model_answer_without_a_probability_first_is_a_502(text: str) -> None:
    with pytest.raises(front_door.ApiError) as raised:
        front_door.parse_answer(text)
    assert raised.value.status == 502


def test_each_answer_names_the_version_that_scored_it_at_once() -> None:
    """One warm Lambda, three requests: the new fleet answers (v3), then the old one (a canary
    splits traffic, or a rollback just happened), then the new one again. Each answer carries
    the version of the container that scored it, with no other AWS call (the stubs would
    fail on one) and nothing cached."""
    aws = Aws()
    for answer in ("0.270000,3\n", "0.310000,2\n", "0.270000,3\n"):
        aws.lookup_returns(Records=_records())
        aws.endpoint_returns(_row(), answer)
    event = {"httpMethod": "POST", "resource": "/predict", "body": json.dumps(REQUEST)}
    with aws.store_stub, aws.runtime_stub:
        bodies = [
            json.loads(handler.answer_event(event, aws.store, aws.runtime, ENV)["body"])
            for _ in range(3)
        ]
        aws.runtime_stub.assert_no_pending_responses()
    assert [(b["model_version"], b["probability_delayed"]) for b in bodies] == [
        ("3", 0.27),
        ("2", 0.31),
        ("3", 0.27),
    ]


def test_an_answer_without_a_version_is_null_not_a_guess() -> None:
    aws = Aws()
    aws.lookup_returns(Records=_records())
    aws.endpoint_returns(_row(), "0.270000\n")
    assert aws.call(REQUEST)["json"]["model_version"] is None
