"""SageMaker pipeline Lambda step: the latest Approved model in the group (the incumbent).

Self-contained (boto3 only). choose_incumbent is a plain function the local runner calls with
package dicts read from its local registry (package.json, see mlops/promote.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

APPROVED = "Approved"
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def choose_incumbent(
    packages: Sequence[Mapping[str, Any]], candidate_model_url: str
) -> dict[str, str]:
    """Pick the newest Approved package; without one the candidate is compared with itself.

    Each package: {"status", "model_data_url", "created_at" (ISO 8601 or datetime),
    optional "version" (int, breaks ties) and "arn"}; the local registry's package.json
    has exactly these keys (plus others, ignored).
    """
    approved = [p for p in packages if p.get("status") == APPROVED]
    if not approved:
        # Pipeline step outputs are strings; a condition compares HasIncumbent == "true".
        return {
            "IncumbentModelUrl": candidate_model_url,
            "HasIncumbent": "false",
            "IncumbentModelPackageArn": "",
        }
    best = max(approved, key=lambda p: (_as_datetime(p.get("created_at")), p.get("version", 0)))
    return {
        "IncumbentModelUrl": str(best["model_data_url"]),
        "HasIncumbent": "true",
        "IncumbentModelPackageArn": str(best.get("arn", "")),
    }


def _as_datetime(value: Any) -> datetime:
    """Naive UTC, so timestamps with and without offsets compare."""
    if not value:
        return datetime.min
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def latest_approved_package(sagemaker: Any, group_name: str) -> dict[str, Any] | None:
    """The newest Approved package of the group as a choose_incumbent dict, or None."""
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group_name,
        ModelApprovalStatus=APPROVED,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        return None
    arn = listed[0]["ModelPackageArn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    if not containers[0].get("ModelDataUrl"):
        # The step fails with this line as its reason (and the pipeline's failure alarms).
        raise ValueError(
            f"incumbent {arn} has no inference container with a ModelDataUrl: "
            "reject it in the registry or register it with its model artifact"
        )
    return {
        "arn": arn,
        "status": package["ModelApprovalStatus"],
        "model_data_url": containers[0]["ModelDataUrl"],
        "created_at": package["CreationTime"],
        "version": package.get("ModelPackageVersion", 0),
    }


# The pipeline's Lambda step passes its Arguments as the event (see
# mlops/pipeline_definition/gate_steps.py, find_incumbent_step).
EVENT_KEYS = ("ModelPackageGroupName", "CandidateModelUrl")


def parse_event(event: Mapping[str, Any]) -> tuple[str, str]:
    """(model package group, candidate model URL) from the pipeline step's event."""
    missing = [key for key in EVENT_KEYS if not event.get(key)]
    if missing:
        raise ValueError(f"find_incumbent event needs {missing[0]!r}; got keys {sorted(event)}")
    return str(event["ModelPackageGroupName"]), str(event["CandidateModelUrl"])


def find_incumbent(sagemaker: Any, event: Mapping[str, Any]) -> dict[str, str]:
    group, candidate = parse_event(event)
    package = latest_approved_package(sagemaker, group)
    return choose_incumbent([package] if package else [], candidate)


_client: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    global _client
    if _client is None:
        _client = boto3.client("sagemaker", config=_BOTO_CONFIG)
    return find_incumbent(_client, event)
