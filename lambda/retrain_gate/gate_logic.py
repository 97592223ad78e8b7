"""Retrain gate: a drift alarm entered ALARM -> start the home training pipeline, at most once
per RETRAIN_MIN_HOURS.

The pipeline lives in the hub (training home) account and region; the gate assumes the hub's
retrain-starter role, which may only list and start that one pipeline. Rate limit: the newest
executions (ListPipelineExecutions sorted by CreationTime, newest first; summaries carry
StartTime) decide. No start when one is still Executing (or Stopping), or when the newest
started less than RETRAIN_MIN_HOURS ago, by
drift or by anyone else (a scheduled or data-triggered retrain counts too). Two gates firing in
the same second could both start: each then sees the other's run next time; the window is
seconds wide, the cost one extra run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.config import Config

# Standard mode retries throttling and transient errors with jittered exponential backoff;
# 5 retries back off at most ~1+2+4+8+16 s, inside the 60 s Lambda timeout.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20
)
BUSY_STATUSES = frozenset({"Executing", "Stopping"})
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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GateConfig:
        names = ("PIPELINE_NAME", "PIPELINE_REGION", "STARTER_ROLE_ARN", "RETRAIN_MIN_HOURS")
        missing = [n for n in (*names, "ENVIRONMENT_NAME") if not env.get(n)]
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
        )


@dataclass(frozen=True)
class Decision:
    start: bool
    reason: str


def decide(executions: list[Mapping[str, Any]], now: datetime, min_hours: int) -> Decision:
    """Whether to start, given the newest executions (any order) of the pipeline."""
    busy = [e for e in executions if e.get("PipelineExecutionStatus") in BUSY_STATUSES]
    if busy:
        return Decision(False, f"execution {busy[0]['PipelineExecutionArn']} is still running")
    if executions:
        newest = max(executions, key=lambda e: e["StartTime"])
        age = now - newest["StartTime"]
        if age < timedelta(hours=min_hours):
            hours = age.total_seconds() / 3600
            return Decision(
                False,
                f"execution {newest['PipelineExecutionArn']} started {hours:.1f} h ago "
                f"(less than {min_hours} h)",
            )
    return Decision(True, f"no execution within {min_hours} h and none running")


def recent_executions(sagemaker: Any, pipeline_name: str) -> list[Mapping[str, Any]]:
    response = sagemaker.list_pipeline_executions(
        PipelineName=pipeline_name,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=RECENT_EXECUTIONS,
    )
    return list(response.get("PipelineExecutionSummaries", []))


def description(event: Mapping[str, Any], environment: str) -> str:
    detail = event.get("detail", {})
    alarm = detail.get("alarmName", "unknown alarm")
    reason = detail.get("state", {}).get("reason", "")
    text = f"Drift retrain: alarm {alarm} ({environment}, {event.get('region', '?')}). {reason}"
    return text[:DESCRIPTION_LIMIT]


def handle_alarm_event(
    event: Mapping[str, Any], config: GateConfig, sagemaker: Any, now: datetime
) -> dict[str, Any]:
    """One alarm state change: check the rate limit (against `now`), start the pipeline or say
    why not."""
    state = event.get("detail", {}).get("state", {}).get("value")
    if state != "ALARM":  # the rule filters on ALARM; a hand-made test event may not
        return {"started": False, "reason": f"alarm state is {state!r}, not 'ALARM'"}
    decision = decide(
        recent_executions(sagemaker, config.pipeline_name),
        now,
        config.min_hours,
    )
    if not decision.start:
        return {"started": False, "reason": decision.reason}
    response = sagemaker.start_pipeline_execution(
        PipelineName=config.pipeline_name,
        PipelineExecutionDescription=description(event, config.environment),
    )
    return {
        "started": True,
        "reason": decision.reason,
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
