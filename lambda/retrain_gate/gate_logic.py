"""Retrain gate: a drift alarm entered ALARM -> start the home training pipeline on the
window ending at the alarm's date, at most once per RETRAIN_MIN_HOURS.

The pipeline lives in the hub (training home) account and region; the gate assumes the hub's
retrain-starter role, which may only list and start that one pipeline. Rate limit: the newest
executions (ListPipelineExecutions sorted by CreationTime, newest first; summaries carry
StartTime) decide. No start when one is still Executing (or Stopping), or when the newest
started less than RETRAIN_MIN_HOURS ago, by drift or by anyone else (a scheduled or
data-triggered retrain counts too).

Window: WindowEnd = the UTC date of the event; Preprocess resolves it to the newest data at or
before that date (the same rolling window the schedule and the new-data trigger resolve from
"latest"). Idempotent per window: the ClientRequestToken is derived from the pipeline, the
window and the attempt, so two gates firing at once (two regions' alarms, a redelivered
event) send the same token and SageMaker starts one execution. The attempt is the number of
Failed or Stopped executions of that window (display name retrain-<window>): a retry after a
failure gets a new token.

A failed run does not block retraining: the alarm stays in ALARM, so no new state-change
event comes; a schedule re-invokes the gate every RETRAIN_MIN_HOURS with a recheck event. A
recheck asks CloudWatch for the alarm's state and starts a run (same rules as above) only
while the alarm is in ALARM and no execution started since it entered ALARM has Succeeded.
A succeeded retrain answers the alarm until it clears and fires again.

Refused is not crashed. A run whose evaluation completed and whose candidate the quality
gate refused reached the pipeline's Fail step: ListPipelineExecutionSteps shows a step with
Metadata.Fail (its ErrorMessage says why). That is a decision on the data the run saw: while
the newest execution is such a refusal, and it still holds (it ran with the pipeline's
default parameters, on its current definition, against the incumbent still approved: see
gate_refusal.py), a new run would be refused again and the gate starts nothing. New data ends
the wait: its arrival starts a run of its own (the new-data trigger; the schedule too), which
becomes the newest and is judged in turn. The gate's WindowEnd (the event's date) changes
daily whether or not data arrived, and the resolved window is known only to Preprocess, so
"a newer execution" is the sign of new data the gate can see. A refusal that no longer holds,
a crashed or stopped run (Failed without a Fail step, or Stopped) is retried with the next
attempt's token. The execution summary's FailureReason does not tell them apart: SageMaker
reports a generic step failure there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from botocore.config import Config
from gate_refusal import WINDOW_PARAMETER, Refusal, refusal_lookup
from gate_refusal import quality_gate_refusal as quality_gate_refusal  # re-exported

# Standard mode retries throttling and transient errors with jittered exponential backoff;
# 5 retries back off at most ~1+2+4+8+16 s, inside the 60 s Lambda timeout.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20
)
BUSY_STATUSES = frozenset({"Executing", "Stopping"})
RETRYABLE_STATUSES = frozenset({"Failed", "Stopped"})
RECHECK = "recheck"  # the schedule's event: {"gate": "recheck"}
# A pipeline whose newest execution is older than the window needs one page; a busy
# execution further back than this many is beyond any realistic concurrency.
RECENT_EXECUTIONS = 10
DESCRIPTION_LIMIT = 3072  # StartPipelineExecution's PipelineExecutionDescription


class GateConfigError(ValueError):
    """A missing or malformed environment variable: the function is misconfigured."""


@dataclass(frozen=True)
class GateConfig:
    pipeline_name: str
    pipeline_region: str
    starter_role_arn: str
    min_hours: int
    environment: str
    alarm_name: str
    # The hub's model package group: a refusal holds only against its current incumbent.
    model_package_group: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GateConfig:
        names = ("PIPELINE_NAME", "PIPELINE_REGION", "STARTER_ROLE_ARN", "RETRAIN_MIN_HOURS")
        required = (*names, "ENVIRONMENT_NAME", "ALARM_NAME", "MODEL_PACKAGE_GROUP_NAME")
        missing = [n for n in required if not env.get(n)]
        if missing:
            raise GateConfigError(f"environment variable {missing[0]} is not set")
        try:
            min_hours = int(env["RETRAIN_MIN_HOURS"])
        except ValueError:
            raise GateConfigError("RETRAIN_MIN_HOURS must be a whole number of hours") from None
        if min_hours < 1:
            raise GateConfigError("RETRAIN_MIN_HOURS must be at least 1")
        return cls(
            pipeline_name=env["PIPELINE_NAME"],
            pipeline_region=env["PIPELINE_REGION"],
            starter_role_arn=env["STARTER_ROLE_ARN"],
            min_hours=min_hours,
            environment=env["ENVIRONMENT_NAME"],
            alarm_name=env["ALARM_NAME"],
            model_package_group=env["MODEL_PACKAGE_GROUP_NAME"],
        )


@dataclass(frozen=True)
class Decision:
    start: bool
    reason: str
    # Held because the newest run was refused by the quality gate (a decision, not a fault).
    waiting_for_new_data: bool = False


def display_name(window_end: date) -> str:
    """The execution's display name: which window it retrains (ListPipelineExecutions shows it)."""
    return f"retrain-{window_end.isoformat()}"


def request_token(pipeline_name: str, window_end: date, attempt: int) -> str:
    """ClientRequestToken (32-128 characters): equal for equal pipeline, window and attempt."""
    key = f"{pipeline_name}|{window_end.isoformat()}|{attempt}"
    return hashlib.sha256(key.encode()).hexdigest()


def attempt_of(executions: list[Mapping[str, Any]], window_end: date) -> int:
    """How many runs of this window ended Failed or Stopped: the next attempt's number."""
    name = display_name(window_end)
    return sum(
        1
        for e in executions
        if e.get("PipelineExecutionDisplayName") == name
        and e.get("PipelineExecutionStatus") in RETRYABLE_STATUSES
    )


def started_at(execution: Mapping[str, Any], now: datetime) -> datetime:
    """StartTime is optional in the API's summary (a run being created may lack it): such a
    run counts as started now, so it blocks a second start instead of crashing."""
    value = execution.get("StartTime")
    return value if isinstance(value, datetime) else now


def newest_execution(
    executions: list[Mapping[str, Any]], now: datetime
) -> Mapping[str, Any] | None:
    return max(executions, key=lambda e: started_at(e, now)) if executions else None


def decide(
    executions: list[Mapping[str, Any]],
    now: datetime,
    min_hours: int,
    alarm_since: datetime | None = None,
    refusal: Callable[[Mapping[str, Any]], Refusal | None] | None = None,
) -> Decision:
    """Whether to start, given the newest executions (any order) of the pipeline.

    alarm_since (rechecks only): when the alarm entered ALARM; a run started since then that
    Succeeded has answered it. refusal (see gate_refusal.refusal_lookup): the Refusal of a
    run the quality gate refused, else None; while the newest execution is a refusal that
    still holds, nothing starts.
    """

    def started(execution: Mapping[str, Any]) -> datetime:
        return started_at(execution, now)

    busy = [e for e in executions if e.get("PipelineExecutionStatus") in BUSY_STATUSES]
    if busy:
        return Decision(False, f"execution {busy[0]['PipelineExecutionArn']} is still running")
    if alarm_since is not None:
        answered = [
            e
            for e in executions
            if started(e) >= alarm_since and e.get("PipelineExecutionStatus") == "Succeeded"
        ]
        if answered:
            return Decision(
                False,
                f"execution {answered[0]['PipelineExecutionArn']} succeeded since the alarm "
                f"entered ALARM at {alarm_since.isoformat()}",
            )
    newest = newest_execution(executions, now)
    if newest is not None:
        age = now - started(newest)
        if age < timedelta(hours=min_hours):
            hours = age.total_seconds() / 3600
            return Decision(
                False,
                f"execution {newest['PipelineExecutionArn']} started {hours:.1f} h ago "
                f"(less than {min_hours} h)",
            )
        refused = refusal(newest) if refusal else None
        if refused is not None and refused.lapsed is None:
            return Decision(
                False,
                f"execution {newest['PipelineExecutionArn']} was refused by the quality gate "
                f"({refused.message}); the same data would be refused again, so the next run "
                "waits for new data (its arrival starts one)",
                waiting_for_new_data=True,
            )
        if refused is not None:
            return Decision(
                True,
                f"execution {newest['PipelineExecutionArn']} was refused by the quality gate, "
                f"but {refused.lapsed}: a new run may decide otherwise, so one starts",
            )
    return Decision(True, f"no execution within {min_hours} h and none running")


def event_time(event: Mapping[str, Any], now: datetime) -> datetime:
    """The event's time (EventBridge's ISO `time`, UTC), or now when absent or malformed."""
    raw = event.get("time")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pass
    return now


def recent_executions(sagemaker: Any, pipeline_name: str) -> list[Mapping[str, Any]]:
    response = sagemaker.list_pipeline_executions(
        PipelineName=pipeline_name,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=RECENT_EXECUTIONS,
    )
    return list(response.get("PipelineExecutionSummaries", []))


def description(event: Mapping[str, Any], config: GateConfig) -> str:
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    alarm = detail.get("alarmName", config.alarm_name)
    reason = (detail.get("state") or {}).get("reason", "")
    if event.get("gate") == RECHECK:
        reason = "Recheck: the alarm is still in ALARM and no run since has succeeded."
    text = (
        f"Drift retrain: alarm {alarm} ({config.environment}, {event.get('region', '?')}). {reason}"
    )
    return text[:DESCRIPTION_LIMIT]


def alarm_state(cloudwatch: Any, alarm_name: str) -> tuple[str | None, datetime | None]:
    """The alarm's current state and when it entered it (None, None when it does not exist)."""
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
    found = alarms.get("MetricAlarms", [])
    if not found:
        return None, None
    return found[0].get("StateValue"), found[0].get("StateUpdatedTimestamp")


def handle_alarm_event(
    event: Mapping[str, Any],
    config: GateConfig,
    sagemaker: Any,
    now: datetime,
    cloudwatch: Any = None,
) -> dict[str, Any]:
    """One alarm state change, or a scheduled recheck (needs `cloudwatch`): check the rate
    limit (against `now`), start the pipeline on the event's window or say why not."""
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    alarm_since = None
    if event.get("gate") == RECHECK:
        if cloudwatch is None:
            raise GateConfigError("a recheck event needs a CloudWatch client")
        state, alarm_since = alarm_state(cloudwatch, config.alarm_name)
        if state != "ALARM":
            return {"started": False, "reason": f"recheck: alarm state is {state!r}, not 'ALARM'"}
    else:
        state = (detail.get("state") or {}).get("value")
        if state != "ALARM":  # the rule filters on ALARM; a hand-made test event may not
            return {"started": False, "reason": f"alarm state is {state!r}, not 'ALARM'"}
    executions = recent_executions(sagemaker, config.pipeline_name)
    refusal = refusal_lookup(sagemaker, config.pipeline_name, config.model_package_group)
    decision = decide(executions, now, config.min_hours, alarm_since, refusal)
    if not decision.start:
        held = {"waiting_for_new_data": True} if decision.waiting_for_new_data else {}
        return {"started": False, "reason": decision.reason, **held}
    window_end = event_time(event, now).date()
    attempt = attempt_of(executions, window_end)
    response = sagemaker.start_pipeline_execution(
        PipelineName=config.pipeline_name,
        PipelineExecutionDisplayName=display_name(window_end),
        PipelineExecutionDescription=description(event, config),
        PipelineParameters=[{"Name": WINDOW_PARAMETER, "Value": window_end.isoformat()}],
        ClientRequestToken=request_token(config.pipeline_name, window_end, attempt),
    )
    return {
        "started": True,
        "reason": decision.reason,
        "window_end": window_end.isoformat(),
        "attempt": attempt,
        "execution_arn": response["PipelineExecutionArn"],
    }


def assume_starter_role(sts: Any, config: GateConfig, session_name: str) -> dict[str, str]:
    """Temporary credentials of the hub's retrain-starter role, as boto3 client kwargs."""
    credentials = sts.assume_role(
        RoleArn=config.starter_role_arn, RoleSessionName=session_name[:64]
    )["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
