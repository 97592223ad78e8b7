"""CloudFormation custom resource: stage the pinned model artifact (see staging.py)."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from staging import StagingRequest, stage_model

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def _respond(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    # Reads only what every CloudFormation request has: a malformed event still gets FAILED.
    properties = event.get("ResourceProperties")
    properties = properties if isinstance(properties, dict) else {}
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId")
            or f"{properties.get('DestinationBucket')}/{properties.get('StagedKey')}",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30):  # the pre-signed URL CloudFormation gave
        pass


def handler(event: dict[str, Any], context: Any) -> None:
    try:
        if event["RequestType"] == "Delete":
            _respond(event, "SUCCESS", "artifact kept", {})  # the model bucket keeps it
            return
        request = StagingRequest.from_properties(event["ResourceProperties"])
        source = boto3.client(
            "s3", region_name=event["ResourceProperties"].get("SourceRegion"), config=_CONFIG
        )
        destination = boto3.client("s3", region_name=os.environ.get("AWS_REGION"), config=_CONFIG)
        data = stage_model(source, destination, request)
        _respond(event, "SUCCESS", data["Action"], data)
    except Exception as error:  # any failure must reach CloudFormation, or the stack hangs
        print(f"ERROR: {error!r}")
        _respond(event, "FAILED", f"{type(error).__name__}: {error}", {})
