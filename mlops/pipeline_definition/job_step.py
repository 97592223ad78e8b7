"""The envelope every job step shares: retry policies, step caching and the KMS volume-key rule."""

from __future__ import annotations

from typing import Any

from mlops.config import INSTANCE_STORE_FAMILIES
from mlops.pipeline_definition.spec import TrainingPipelineSpec

STEP_RETRY = {
    "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
    "IntervalSeconds": 10,
    "BackoffRate": 2.0,
    "MaxAttempts": 5,
}
_JOB_RETRY = {
    "ExceptionType": [
        "SageMaker.CAPACITY_ERROR",
        "SageMaker.JOB_INTERNAL_ERROR",
        "SageMaker.RESOURCE_LIMIT",
    ],
    "IntervalSeconds": 60,
    "BackoffRate": 2.0,
    "MaxAttempts": 3,
}


def has_instance_storage(instance_type: str) -> bool:
    parts = instance_type.split(".")
    return len(parts) == 3 and parts[1] in INSTANCE_STORE_FAMILIES


def _cache_config(spec: TrainingPipelineSpec) -> dict[str, Any]:
    if spec.cache_expire_after is None:
        return {}
    return {"CacheConfig": {"Enabled": True, "ExpireAfter": spec.cache_expire_after}}


def job_step(
    spec: TrainingPipelineSpec, name: str, step_type: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": step_type,
        "Arguments": arguments,
        "RetryPolicies": [dict(STEP_RETRY), dict(_JOB_RETRY)],
        **_cache_config(spec),
    }
