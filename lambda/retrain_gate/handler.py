"""EventBridge (drift alarm entered ALARM, or the recheck schedule) -> rate-limited start of
the training pipeline on the event's window."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from gate_logic import (
    BOTO_CONFIG,
    RECHECK,
    GateConfig,
    assume_starter_role,
    handle_alarm_event,
)

logger = Logger(service="retrain_gate")
# The construct sets POWERTOOLS_METRICS_NAMESPACE; the default serves tests and local runs.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "mlops/retrain_gate"))


def utc_now() -> datetime:
    return datetime.now(UTC)


# The only clock the gate reads; tests replace it.
clock: Callable[[], datetime] = utc_now

# Why any other event is ignored: it names both kinds of event the gate accepts.
IGNORED_REASON = (
    f'neither a CloudWatch alarm state change nor a recheck event ({{"gate": "{RECHECK}"}})'
)


def is_gate_event(event: Any) -> bool:
    """The shapes gate_logic reads: the recheck schedule's {"gate": "recheck"}, or an alarm
    state change (a mapping whose detail and detail.state are mappings)."""
    if not isinstance(event, dict):
        return False
    if event.get("gate") == RECHECK:
        return True
    detail = event.get("detail")
    return isinstance(detail, dict) and isinstance(detail.get("state"), dict)


def decision_metric(result: dict[str, Any]) -> str:
    """One metric per decision: the pipeline was started, the gate held it back, or it waits
    for new data because the newest run was refused by the quality gate."""
    if result["started"]:
        return "Started"
    return "WaitingForNewData" if result.get("waiting_for_new_data") else "HeldBack"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not is_gate_event(event):  # a list, a hand-made test event: nothing to decide
        logger.warning(IGNORED_REASON, extra={"event": str(event)[:500]})
        metrics.add_metric(name="Ignored", unit=MetricUnit.Count, value=1)
        return {"started": False, "reason": IGNORED_REASON}
    config = GateConfig.from_env(os.environ)
    # Fresh credentials per invocation: alarms are rare, and they expire within the hour.
    sts = boto3.client("sts", config=BOTO_CONFIG)
    credentials = assume_starter_role(sts, config, f"retrain-gate-{config.environment}")
    sagemaker = boto3.client(
        "sagemaker", region_name=config.pipeline_region, config=BOTO_CONFIG, **credentials
    )
    # The alarm lives here, in the serving account: read with the function's own role.
    cloudwatch = boto3.client("cloudwatch", config=BOTO_CONFIG)
    result = handle_alarm_event(event, config, sagemaker, clock(), cloudwatch)
    logger.info("retrain gate", extra=result)
    metrics.add_metric(name=decision_metric(result), unit=MetricUnit.Count, value=1)
    return result
