"""Roll a SageMaker endpoint back to its previous endpoint config when one of its alarms fires.

Plain functions over injected boto3 clients; handler.py only wires environment and clients.
Self-contained: only boto3/botocore and aws_lambda_powertools (from the Powertools layer).

Idempotency (EventBridge delivers at least once; Lambda retries failed async invocations):
the steps are ordered so that every partial failure leaves state from which a re-run
finishes the job without repeating what is done:
  1. UpdateEndpoint to the previous config, unless the endpoint already serves it or is
     already updating towards it (PendingDeploymentSummary).
  2. Publish the notification, unless the package is already Rejected and step 1 was a no-op.
  3. Reject the model package. This is the commit marker: once Rejected, a re-run is a no-op.
A failure after 1 therefore re-runs 2 and 3 (at worst one duplicate notification, never a
missing one), and never issues a second UpdateEndpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import ClientError

logger = Logger(service="rollback", child=True)

# Standard mode retries throttling and transient errors with jittered exponential backoff
# (capped at 20 s per wait). botocore's max_attempts counts retries after the first
# attempt: 5 retries back off at most ~1+2+4+8+16 s, inside a 120 s Lambda timeout.
RETRY_MAX_ATTEMPTS = 5
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": RETRY_MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=20,
)

# While SageMaker deploys (blue/green with baking, or its own rollback), the native
# AutoRollbackConfiguration owns the endpoint: we must not race it.
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
REJECTED = "Rejected"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"


@dataclass(frozen=True)
class RollbackConfig:
    """What this function instance guards; one instance per endpoint and region."""

    endpoint_name: str
    alarm_names: frozenset[str]
    previous_config_name: str | None
    current_config_name: str
    current_model_package_arn: str
    topic_arn: str
    manifest_hint: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RollbackConfig:
        missing = [
            k
            for k in (
                "ENDPOINT_NAME",
                "ALARM_NAMES",
                "CURRENT_ENDPOINT_CONFIG_NAME",
                "CURRENT_MODEL_PACKAGE_ARN",
                "TOPIC_ARN",
            )
            if not env.get(k, "").strip()
        ]
        if missing:
            raise ValueError(f"rollback function misconfigured: missing {', '.join(missing)}")
        alarms = frozenset(a.strip() for a in env["ALARM_NAMES"].split(",") if a.strip())
        return cls(
            endpoint_name=env["ENDPOINT_NAME"].strip(),
            alarm_names=alarms,
            # The first deployment of an environment has no previous config: empty string.
            previous_config_name=env.get("PREVIOUS_ENDPOINT_CONFIG_NAME", "").strip() or None,
            current_config_name=env["CURRENT_ENDPOINT_CONFIG_NAME"].strip(),
            current_model_package_arn=env["CURRENT_MODEL_PACKAGE_ARN"].strip(),
            topic_arn=env["TOPIC_ARN"].strip(),
            manifest_hint=env.get("MANIFEST_HINT", "config/releases.yaml").strip(),
        )


@dataclass(frozen=True)
class AlarmChange:
    alarm_name: str
    state: str
    previous_state: str | None
    reason: str
    time: str


def parse_alarm_event(event: Mapping[str, Any]) -> AlarmChange | None:
    """The alarm state change in an EventBridge event, or None for any other event."""
    if event.get("detail-type") != ALARM_DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    state = detail.get("state") or {}
    previous = detail.get("previousState") or {}
    if not detail.get("alarmName") or not state.get("value"):
        return None
    return AlarmChange(
        alarm_name=str(detail["alarmName"]),
        state=str(state["value"]),
        previous_state=previous.get("value"),
        reason=str(state.get("reason", "")),
        time=str(event.get("time", state.get("timestamp", ""))),
    )


def handle_alarm_event(
    event: Mapping[str, Any],
    config: RollbackConfig,
    sagemaker: Any,
    sns: Any,
    registry: Any = None,
) -> dict[str, Any]:
    """Decide and act on one event; returns what was done (for logs and tests).

    `registry` is a SageMaker client in the model package's region (the registry lives in
    the training home region, possibly another account); defaults to `sagemaker`.
    """
    registry = registry or sagemaker
    change = parse_alarm_event(event)
    if change is None:
        return _result("ignored", "not a CloudWatch alarm state change", config)
    if change.alarm_name not in config.alarm_names:
        return _result("ignored", f"alarm {change.alarm_name} is not ours", config)
    if change.state != "ALARM":
        return _result("ignored", f"state {change.state} is not ALARM", config)

    endpoint = sagemaker.describe_endpoint(EndpointName=config.endpoint_name)
    status = endpoint["EndpointStatus"]
    serving = endpoint.get("EndpointConfigName")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    previous = config.previous_config_name
    rollback_started = previous is not None and previous in (serving, pending)

    if status in BUSY_STATUSES and not rollback_started:
        return _result("skipped", f"endpoint is {status}: native guardrails own it", config)
    if previous is None:
        _publish(sns, config, _no_previous_message(config, change))
        return _result("no_previous_config", "no previous endpoint config", config, notified=True)
    if not rollback_started and serving != config.current_config_name:
        # Our environment variables describe a release that is not the one serving:
        # rolling back to a config we did not expect could make things worse.
        _publish(sns, config, _unexpected_message(config, change, serving))
        return _result("unexpected_config", f"endpoint serves {serving}", config, notified=True)

    updated = False
    if not rollback_started:
        updated = _update_endpoint(sagemaker, config)
    package_rejected = _approval_status(registry, config) == REJECTED
    notified = False
    if updated or not package_rejected:
        _publish(sns, config, _rollback_message(config, change, retry=not updated))
        notified = True
    rejected_now = False
    if not package_rejected:
        registry.update_model_package(
            ModelPackageArn=config.current_model_package_arn,
            ModelApprovalStatus=REJECTED,
            ApprovalDescription=f"Rejected by automatic rollback: alarm {change.alarm_name} "
            f"in ALARM at {change.time} on endpoint {config.endpoint_name}"[:1024],
        )
        rejected_now = True
    if not (updated or rejected_now):
        return _result("already_rolled_back", f"endpoint on {previous}", config)
    return _result(
        "rolled_back",
        f"endpoint -> {previous}",
        config,
        updated_endpoint=updated,
        rejected_package=rejected_now,
        notified=notified,
    )


def _update_endpoint(sagemaker: Any, config: RollbackConfig) -> bool:
    """UpdateEndpoint to the previous config; False if a concurrent invocation beat us."""
    try:
        sagemaker.update_endpoint(
            EndpointName=config.endpoint_name,
            EndpointConfigName=config.previous_config_name,
            # Keep autoscaled instance counts: the old fleet must take full traffic now.
            RetainAllVariantProperties=True,
            # Do not reuse the canary/linear deployment config: its auto-rollback alarms are
            # the ones in ALARM right now and would roll this rollback back.
            RetainDeploymentConfig=False,
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        # A duplicate event processed concurrently already started the update.
        again = sagemaker.describe_endpoint(EndpointName=config.endpoint_name)
        pending = (again.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if config.previous_config_name not in (again.get("EndpointConfigName"), pending):
            raise
        logger.info("rollback already started by another invocation")
        return False
    logger.info(
        "endpoint update started",
        extra={"endpoint": config.endpoint_name, "to_config": config.previous_config_name},
    )
    return True


def package_region(model_package_arn: str) -> str | None:
    """arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n> -> region."""
    parts = model_package_arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def _approval_status(registry: Any, config: RollbackConfig) -> str:
    package = registry.describe_model_package(ModelPackageName=config.current_model_package_arn)
    return str(package.get("ModelApprovalStatus", ""))


def _publish(sns: Any, config: RollbackConfig, message: tuple[str, str]) -> None:
    subject, body = message
    sns.publish(TopicArn=config.topic_arn, Subject=subject[:100], Message=body)


def _rollback_message(config: RollbackConfig, change: AlarmChange, retry: bool) -> tuple[str, str]:
    subject = f"Rolled back {config.endpoint_name}"
    body = (
        f"Alarm {change.alarm_name} went to ALARM at {change.time}: {change.reason}\n"
        f"Endpoint {config.endpoint_name} is being updated from endpoint config "
        f"{config.current_config_name} back to {config.previous_config_name}.\n"
        f"Model package {config.current_model_package_arn} is marked Rejected.\n"
        f"To make this permanent, revert the last promotion in {config.manifest_hint} "
        f"(put 'previous' back as 'current') and merge; until then the next deployment "
        f"of the current manifest would redeploy the rejected model."
    )
    if retry:
        body += "\n(Re-sent by a retried invocation; the endpoint update was already under way.)"
    return subject, body


def _no_previous_message(config: RollbackConfig, change: AlarmChange) -> tuple[str, str]:
    return (
        f"Alarm on {config.endpoint_name}: no rollback target",
        f"Alarm {change.alarm_name} went to ALARM at {change.time}: {change.reason}\n"
        f"Endpoint {config.endpoint_name} has no previous endpoint config "
        f"({config.manifest_hint} has previous: null), so nothing was rolled back. "
        f"Investigate, or promote a known-good version in {config.manifest_hint}.",
    )


def _unexpected_message(
    config: RollbackConfig, change: AlarmChange, serving: str | None
) -> tuple[str, str]:
    return (
        f"Alarm on {config.endpoint_name}: rollback refused",
        f"Alarm {change.alarm_name} went to ALARM at {change.time}: {change.reason}\n"
        f"Endpoint {config.endpoint_name} serves {serving}, which is neither the released "
        f"config {config.current_config_name} nor the previous one "
        f"{config.previous_config_name}; no automatic rollback. Check {config.manifest_hint}.",
    )


def _result(action: str, reason: str, config: RollbackConfig, **flags: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "action": action,
        "reason": reason,
        "endpoint": config.endpoint_name,
        "updated_endpoint": False,
        "rejected_package": False,
        "notified": False,
    }
    result.update(flags)
    logger.info("rollback decision", extra=result)
    return result
