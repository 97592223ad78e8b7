"""EventBridge (CloudWatch Alarm State Change) -> roll the endpoint back. Thin entry point."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollback_logic import (
    BOTO_CONFIG,
    RetryableError,
    RollbackConfig,
    handle_alarm_event,
    package_region,
)

logger = Logger(service="rollback")
# The construct sets POWERTOOLS_METRICS_NAMESPACE; the default serves tests and local runs.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "mlops/rollback"))

_clients: dict[str, Any] = {}


def _client(name: str, region: str | None = None) -> Any:
    # Created once per execution environment (warm invocations reuse connections).
    key = f"{name}@{region or 'local'}"
    if key not in _clients:
        _clients[key] = boto3.client(name, region_name=region, config=BOTO_CONFIG)
    return _clients[key]


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = RollbackConfig.from_env(os.environ)
    logger.append_keys(endpoint=config.endpoint_name)
    metrics.add_dimension(name="Endpoint", value=config.endpoint_name)
    # The registry may live in another region (hub and spoke): talk to it there.
    registry = _client("sagemaker", package_region(config.current_model_package_arn))
    try:
        result = handle_alarm_event(
            event, config, _client("sagemaker"), _client("sns"), _client("cloudwatch"), registry
        )
    except RetryableError as error:
        metrics.add_metric(name="Retry", unit=MetricUnit.Count, value=1)
        logger.warning("rollback must be retried", extra={"error": str(error)})
        raise
    except Exception:
        metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
        logger.exception("rollback failed")
        raise
    # One metric per decision: rolled_back, already_rolled_back, ignored, stale, ...
    metrics.add_metric(name=result["action"], unit=MetricUnit.Count, value=1)
    if result["reject_error"]:
        metrics.add_metric(name="RejectFailed", unit=MetricUnit.Count, value=1)
    return result
