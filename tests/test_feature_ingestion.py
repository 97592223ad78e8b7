"""Feature ingestion Lambda: raw object in S3 (moto) -> PutRecord per record (Stubber: moto
has no sagemaker-featurestore-runtime), idempotent through the ledger object."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

FOLDER = Path(__file__).resolve().parents[1] / "lambda" / "feature_ingestion"
sys.path.insert(0, str(FOLDER))
import ingestion  # noqa: E402

_spec = importlib.util.spec_from_file_location("feature_ingestion_handler", FOLDER / "handler.py")
assert _spec is not None and _spec.loader is not None
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)

BUCKET = "flightdelay-prod-data-444444444444-us-east-1"
ENV = {
    "WEATHER_FEATURE_GROUP": "flightdelay-prod-weather",
    "PLANE_FEATURE_GROUP": "flightdelay-prod-plane",
    "LEDGER_PREFIX": "feature-store-ingested/",
}
WEATHER_CSV = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour\n"
    "EWR,2013,1,1,1,39.02,26.06,59.37,270,10.35702,NA,0,1012,10,2013-01-01T06:00:00Z\n"
    "JFK,2013,1,1,1,39.02,26.96,61.63,NA,8.05546,NA,0,NA,10,2013-01-01T06:00:00Z\n"
)
PLANES_CSV = "tailnum,year,type,seats\nN10156,2004,Fixed wing,55\nN0NE,NA,Fixed wing,20\n"


def _event(key: str) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }


@pytest.fixture()
def aws() -> Iterator[tuple[Any, Any, Stubber]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="raw/weather.csv", Body=WEATHER_CSV.encode())
        s3.put_object(Bucket=BUCKET, Key="raw/planes.csv", Body=PLANES_CSV.encode())
        store = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
        with Stubber(store) as stub:
            yield s3, store, stub
            stub.assert_no_pending_responses()


def _values(record: dict[str, str]) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in record.items()]


def test_weather_rows_become_records_known_at_hour_51(
    aws: tuple[Any, Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, store, stub = aws
    monkeypatch.setattr(ingestion, "WORKERS", 1)  # Stubber answers in order
    expected = [
        {
            "weather_id": "EWR#2013-01-01T06:00Z",
            "observed_at": "2013-01-01T06:51:00Z",
            "temp": "39.02",
            "dewp": "26.06",
            "humid": "59.37",
            "wind_dir": "270.0",
            "wind_speed": "10.35702",
            "precip": "0.0",
            "pressure": "1012.0",
            "visib": "10.0",
        },
        # Missing values are left out of the record, not sent as text.
        {
            "weather_id": "JFK#2013-01-01T06:00Z",
            "observed_at": "2013-01-01T06:51:00Z",
            "temp": "39.02",
            "dewp": "26.96",
            "humid": "61.63",
            "wind_speed": "8.05546",
            "precip": "0.0",
            "visib": "10.0",
        },
    ]
    for record in expected:
        stub.add_response(
            "put_record",
            {},
            {"FeatureGroupName": ENV["WEATHER_FEATURE_GROUP"], "Record": _values(record)},
        )
    result = handler.answer_event(_event("raw/weather.csv"), s3, store, ENV)
    assert result["ingested"] is True and result["records"] == 2


def test_planes_are_known_from_their_build_year(
    aws: tuple[Any, Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, store, stub = aws
    monkeypatch.setattr(ingestion, "WORKERS", 1)
    for record in (
        {
            "tailnum": "N10156",
            "registered_at": "2004-01-01T00:00:00Z",
            "plane_age": "0.0",
            "seats": "55.0",
        },
        {"tailnum": "N0NE", "registered_at": "1970-01-01T00:00:00Z", "seats": "20.0"},
    ):
        stub.add_response(
            "put_record",
            {},
            {"FeatureGroupName": ENV["PLANE_FEATURE_GROUP"], "Record": _values(record)},
        )
    assert handler.answer_event(_event("raw/planes.csv"), s3, store, ENV)["records"] == 2


def test_the_same_bytes_again_write_nothing(aws: tuple[Any, Any, Stubber]) -> None:
    s3, store, stub = aws
    for _ in range(2):
        stub.add_response("put_record", {}, None)
    first = handler.answer_event(_event("raw/weather.csv"), s3, store, ENV)
    # The same file under another key (a re-upload) is recognised by its content.
    s3.put_object(Bucket=BUCKET, Key="raw/2013/weather.csv", Body=WEATHER_CSV.encode())
    again = handler.answer_event(_event("raw/2013/weather.csv"), s3, store, ENV)
    assert again["ingested"] is False and again["skipped"] is True
    assert again["sha256"] == first["sha256"]
    ledger = s3.list_objects_v2(Bucket=BUCKET, Prefix=ENV["LEDGER_PREFIX"])["Contents"]
    assert [o["Key"] for o in ledger] == [f"{ENV['LEDGER_PREFIX']}{first['sha256']}.json"]


def test_failed_records_fail_the_invocation_and_leave_no_ledger(
    aws: tuple[Any, Any, Stubber],
) -> None:
    s3, store, stub = aws
    stub.add_response("put_record", {}, None)
    stub.add_client_error("put_record", "ThrottlingException", http_status_code=400)
    with pytest.raises(
        ingestion.IngestionError,
        match=r"1 records not written to flightdelay-prod-weather: .*ThrottlingException",
    ):
        handler.answer_event(_event("raw/weather.csv"), s3, store, ENV)
    # No ledger: the retried invocation ingests again (same ids, same event times).
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=ENV["LEDGER_PREFIX"])["KeyCount"] == 0


def test_files_that_feed_no_group_are_ignored(aws: tuple[Any, Any, Stubber]) -> None:
    s3, store, _ = aws
    assert handler.answer_event(_event("raw/flights.csv"), s3, store, ENV)["ingested"] is False


def test_an_event_without_an_object_is_refused(aws: tuple[Any, Any, Stubber]) -> None:
    s3, store, _ = aws
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        handler.answer_event({"detail": {}}, s3, store, ENV)


# ---- The construct, in every stage's data stack --------------------------------------------


def test_every_stage_ingests_raw_weather_and_planes(templates: dict[str, Any]) -> None:
    for path, template in templates.items():
        if not path.endswith("/Data"):
            continue
        resources = template["Resources"]  # type: ignore[index]
        rules = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::Events::Rule"
            and "wildcard" in json.dumps(r["Properties"].get("EventPattern", {}))
        ]
        assert len(rules) == 1, path
        keys = rules[0]["Properties"]["EventPattern"]["detail"]["object"]["key"]
        assert keys == [{"wildcard": "raw/*weather.csv"}, {"wildcard": "raw/*planes.csv"}]
        (function,) = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::Function"
            and "LEDGER_PREFIX" in r["Properties"].get("Environment", {}).get("Variables", {})
        ]
        assert function["Properties"]["Timeout"] == 900
        put = [
            s
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy"
            for s in r["Properties"]["PolicyDocument"]["Statement"]
            if s["Action"] == "sagemaker:PutRecord"
        ]
        (statement,) = put
        rendered = json.dumps(statement["Resource"])
        assert (
            "feature-group/flightdelay-" in rendered
            and "-weather" in rendered
            and "-plane" in rendered
        )
        assert "-flight" not in rendered and "*" not in rendered


def s3_rules_without_eventbridge(resources: dict[str, Any]) -> list[str]:
    """S3 sends "Object Created" to EventBridge only from buckets with EventBridge
    notifications on; a rule on any other bucket never fires, and nothing says so."""
    enabled = [
        json.dumps(r["Properties"]["BucketName"])
        for r in resources.values()
        if r["Type"] == "Custom::S3BucketNotifications"
        and "EventBridgeConfiguration" in r["Properties"].get("NotificationConfiguration", {})
    ]
    problems = []
    for logical_id, rule in resources.items():
        pattern = rule.get("Properties", {}).get("EventPattern", {})
        if rule["Type"] != "AWS::Events::Rule" or pattern.get("source") != ["aws.s3"]:
            continue
        for bucket in pattern["detail"]["bucket"]["name"]:
            if json.dumps(bucket) not in enabled:
                problems.append(f"{logical_id}: {json.dumps(bucket)}")
    return problems


def test_the_ingestion_rule_watches_a_bucket_that_sends_events(templates: dict[str, Any]) -> None:
    for path, template in templates.items():
        if path.endswith("/Data"):
            assert s3_rules_without_eventbridge(template["Resources"]) == [], path  # type: ignore[index]


def test_the_eventbridge_check_can_fail(templates: dict[str, Any]) -> None:
    resources = copy.deepcopy(templates["prod-us-east-1/Data"]["Resources"])  # type: ignore[index]
    for r in resources.values():
        if r["Type"] == "Custom::S3BucketNotifications":
            r["Properties"]["NotificationConfiguration"].pop("EventBridgeConfiguration", None)
    assert len(s3_rules_without_eventbridge(resources)) == 1
