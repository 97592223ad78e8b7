"""Roll a SageMaker endpoint back to its previous endpoint config when one of its alarms fires.

Plain functions over injected boto3 clients; handler.py only wires environment and clients.
Self-contained: only boto3/botocore and aws_lambda_powertools (from the Powertools layer).

Every decision ends in exactly one of:
  - acted and notified: rolled back (the message says truthfully whether the model package
    was rejected, already rejected, or rejecting it failed), or refused with a reason
    (no previous config, unexpected config serving);
  - ignored and logged: not an alarm event, not ours, not ALARM, or stale (the alarm is no
    longer in ALARM, or a later ALARM episode has its own event);
  - a RetryableError (or an AWS error): Lambda's async retries run it again, then the
    on-failure destination keeps the event and the function's Errors alarm tells the topic.

Idempotency (EventBridge delivers at least once; Lambda retries failed async invocations):
  1. UpdateEndpoint to the previous config, unless the endpoint already serves it or is
     already updating towards it (PendingDeploymentSummary).
  2. Reject the model package (unless already Rejected). A failure here is reported in the
     message, never allowed to stop it.
  3. Publish the notification, unless step 1 was a no-op and the package records that the
     notification went out. A failed publish raises: the retry re-sends it.
  4. Record the notification in the package's ApprovalDescription (the commit marker).
A failure after 1 therefore re-runs 2-4 (at worst one duplicate notification, never a
missing one), and never issues a second UpdateEndpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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
# AutoRollbackConfiguration owns the endpoint: we must not race it. An endpoint is also
# Updating while autoscaling changes its capacity (UpdateEndpointWeightsAndCapacities):
# either way UpdateEndpoint would be refused now and may succeed minutes later.
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
REJECTED = "Rejected"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
# Written into the package's ApprovalDescription once the team has been told.
NOTIFIED_MARK = "[rollback notified]"
# The event's `time` has whole seconds; the alarm's own timestamps have milliseconds.
CLOCK_SLACK = timedelta(seconds=1)


class RetryableError(Exception):
    """The rollback could not be decided or done now; raising hands the event to Lambda's
    async retries and then to the on-failure destination, and counts in the Errors alarm."""


class EndpointBusy(RetryableError):
    pass


class NotificationFailed(RetryableError):
    pass


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
    moment: datetime | None  # when the alarm entered this state, if the event says


def parse_alarm_event(event: Any) -> AlarmChange | None:
    """The alarm state change in an EventBridge event, or None for any other event
    (including malformed ones: a list, a non-dict detail or state)."""
    if not isinstance(event, Mapping) or event.get("detail-type") != ALARM_DETAIL_TYPE:
        return None
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return None
    state = detail.get("state")
    previous = detail.get("previousState")
    previous = previous if isinstance(previous, Mapping) else {}
    if not isinstance(state, Mapping) or not detail.get("alarmName") or not state.get("value"):
        return None
    time = str(event.get("time", state.get("timestamp", "")))
    return AlarmChange(
        alarm_name=str(detail["alarmName"]),
        state=str(state["value"]),
        previous_state=previous.get("value"),
        reason=str(state.get("reason", "")),
        time=time,
        moment=parse_time(state.get("timestamp")) or parse_time(event.get("time")),
    )


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from an AWS timestamp (datetime, or ISO 8601 with Z or +0000)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stale_reason(change: AlarmChange, cloudwatch: Any) -> str | None:
    """Why acting on this ALARM event would be wrong now, or None if the alarm still is in
    the ALARM episode the event reports. EventBridge redelivers and Lambda retries for up to
    hours, so an event can outlive its alarm.

    The endpoint's LastModifiedTime is not used: a capacity change (autoscaling's
    UpdateEndpointWeightsAndCapacities) modifies the endpoint too, so it cannot tell
    "a new release went live after the alarm" from "capacity changed during the incident".
    A release cannot complete while these alarms are in ALARM anyway: the blue/green
    deployment watches the same alarms and rolls itself back."""
    found = cloudwatch.describe_alarms(
        AlarmNames=[change.alarm_name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    alarms = list(found.get("MetricAlarms", [])) + list(found.get("CompositeAlarms", []))
    if not alarms:
        return f"alarm {change.alarm_name} no longer exists"
    alarm = alarms[0]
    state = alarm.get("StateValue")
    if state != "ALARM":
        return f"alarm {change.alarm_name} is {state} now: the ALARM of {change.time} is resolved"
    # StateTransitionedTimestamp: when StateValue last changed (StateUpdatedTimestamp also
    # moves when only the reason is refreshed).
    entered = parse_time(
        alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
    )
    if change.moment is not None and entered is not None and entered > change.moment + CLOCK_SLACK:
        return (
            f"alarm {change.alarm_name} entered ALARM again at {entered.isoformat()}: "
            f"that later episode's own event decides, not this one of {change.time}"
        )
    return None


def handle_alarm_event(
    event: Any,
    config: RollbackConfig,
    sagemaker: Any,
    sns: Any,
    cloudwatch: Any,
    registry: Any = None,
) -> dict[str, Any]:
    """Decide and act on one event; returns what was done (for logs, metrics and tests).

    `registry` is a SageMaker client in the model package's region (the registry lives in
    the training home region, possibly another account); defaults to `sagemaker`.
    Raises RetryableError (or the AWS error) when the event must be retried.
    """
    registry = registry or sagemaker
    change = parse_alarm_event(event)
    if change is None:
        return _result("ignored", "not a CloudWatch alarm state change", config)
    if change.alarm_name not in config.alarm_names:
        return _result("ignored", f"alarm {change.alarm_name} is not ours", config)
    if change.state != "ALARM":
        return _result("ignored", f"state {change.state} is not ALARM", config)
    stale = stale_reason(change, cloudwatch)
    if stale is not None:
        return _result("stale", stale, config)

    endpoint = sagemaker.describe_endpoint(EndpointName=config.endpoint_name)
    status = endpoint["EndpointStatus"]
    serving = endpoint.get("EndpointConfigName")
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    previous = config.previous_config_name
    rollback_started = previous is not None and previous in (serving, pending)

    if status in BUSY_STATUSES and not rollback_started:
        # Skipping would drop the alarm for good: it stays in ALARM, so no new event comes.
        raise EndpointBusy(
            f"endpoint {config.endpoint_name} is {status} (towards {pending or serving}); "
            f"alarm {change.alarm_name} of {change.time} must be retried"
        )
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
    package = _describe_package(registry, config)
    was_rejected = package.status == REJECTED
    rejection = _reject(registry, config, change) if not was_rejected else None
    must_notify = updated or not (was_rejected and NOTIFIED_MARK in package.description)
    if not must_notify:  # implies the package was Rejected already: nothing left to do
        return _result("already_rolled_back", f"endpoint on {previous}", config)
    package_line = _package_line(config, was_rejected, rejection, package.error)
    if must_notify:
        message_id = _publish(
            sns, config, _rollback_message(config, change, package_line, retry=not updated)
        )
        _mark_notified(registry, config, change, message_id, package, rejection)
    return _result(
        "rolled_back",
        f"endpoint -> {previous}",
        config,
        updated_endpoint=updated,
        rejected_package=rejection == "",
        notified=must_notify,
        reject_error=rejection or "",
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


@dataclass(frozen=True)
class PackageState:
    status: str  # "" when it could not be read
    description: str
    error: str  # why it could not be read, or ""


def _describe_package(registry: Any, config: RollbackConfig) -> PackageState:
    """The package's approval; a registry failure (another account, another region) must not
    stop the notification of a rollback that already happened."""
    try:
        package = registry.describe_model_package(ModelPackageName=config.current_model_package_arn)
    except (ClientError, BotoCoreError) as err:
        logger.warning("cannot read the model package", extra={"error": str(err)})
        return PackageState("", "", _error_text(err))
    return PackageState(
        str(package.get("ModelApprovalStatus", "")),
        str(package.get("ApprovalDescription", "")),
        "",
    )


def _rejection_description(config: RollbackConfig, change: AlarmChange) -> str:
    return (
        f"Rejected by automatic rollback: alarm {change.alarm_name} in ALARM at {change.time} "
        f"on endpoint {config.endpoint_name}"
    )


def _reject(registry: Any, config: RollbackConfig, change: AlarmChange) -> str:
    """Mark the package Rejected; "" on success, else why it failed (reported, not raised)."""
    try:
        registry.update_model_package(
            ModelPackageArn=config.current_model_package_arn,
            ModelApprovalStatus=REJECTED,
            ApprovalDescription=_rejection_description(config, change)[:1024],
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning("cannot reject the model package", extra={"error": str(err)})
        return _error_text(err)
    return ""


def _mark_notified(
    registry: Any,
    config: RollbackConfig,
    change: AlarmChange,
    message_id: str,
    package: PackageState,
    rejection: str | None,
) -> None:
    """Best effort: without the mark, a later event re-sends the message (never loses it)."""
    if rejection:
        return  # rejecting failed: the package is not Rejected, there is nothing to mark
    base = _rejection_description(config, change) if rejection == "" else package.description
    mark = f" {NOTIFIED_MARK} SNS message {message_id}"
    try:
        registry.update_model_package(
            ModelPackageArn=config.current_model_package_arn,
            ModelApprovalStatus=REJECTED,
            ApprovalDescription=base[: 1024 - len(mark)] + mark,
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning("cannot record the notification", extra={"error": str(err)})


def _error_text(err: Exception) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return str(err)


def _package_line(
    config: RollbackConfig, was_rejected: bool, rejection: str | None, read_error: str
) -> str:
    arn = config.current_model_package_arn
    if was_rejected:
        return f"Model package {arn} was already marked Rejected."
    if rejection == "":
        return f"Model package {arn} is marked Rejected."
    read = f" (reading it failed too: {read_error})" if read_error else ""
    return (
        f"Rejecting model package {arn} FAILED: {rejection}{read}. It is still approved: "
        f"reject it by hand (aws sagemaker update-model-package --model-package-arn {arn} "
        f"--model-approval-status Rejected)."
    )


def _publish(sns: Any, config: RollbackConfig, message: tuple[str, str]) -> str:
    subject, body = message
    try:
        response = sns.publish(TopicArn=config.topic_arn, Subject=subject[:100], Message=body)
    except (ClientError, BotoCoreError) as err:
        raise NotificationFailed(f"publishing to {config.topic_arn} failed: {err}") from err
    return str(response.get("MessageId", ""))


def _rollback_message(
    config: RollbackConfig, change: AlarmChange, package_line: str, retry: bool
) -> tuple[str, str]:
    subject = f"Rolled back {config.endpoint_name}"
    body = (
        f"Alarm {change.alarm_name} went to ALARM at {change.time}: {change.reason}\n"
        f"Endpoint {config.endpoint_name} is being updated from endpoint config "
        f"{config.current_config_name} back to {config.previous_config_name}.\n"
        f"{package_line}\n"
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


def _result(action: str, reason: str, config: RollbackConfig, **flags: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "action": action,
        "reason": reason,
        "endpoint": config.endpoint_name,
        "updated_endpoint": False,
        "rejected_package": False,
        "notified": False,
        "reject_error": "",
    }
    result.update(flags)
    logger.info("rollback decision", extra=result)
    return result
