"""Stand-ins for the AWS services the replay needs, with AWS's semantics (not our logic).

- LocalS3: the two S3 calls monitor.py makes (list_objects_v2 pages, download_file) over the
  local S3 tree.
- MetricStore: PutMetricData recorder (what the monitoring job publishes).
- AlarmEmulator: a CloudWatch metric alarm: one datapoint per period, ALARM when at least
  datapoints_to_alarm of the last evaluation_periods datapoints breach. TreatMissingData
  ignore: an evaluation range with no datapoint keeps the state, one with gaps is filled from
  older datapoints (CloudWatch looks back further when datapoints are missing);
  notBreaching: a missing datapoint counts as a good one. Alarms: DescribeAlarms over several.
- PipelineExecutions: ListPipelineExecutions/StartPipelineExecution/ListPipelineExecutionSteps
  as the retrain gate calls them, with StartPipelineExecution's idempotency (one execution per
  ClientRequestToken); the steps come from the local run's summary (pipeline_steps_of). What
  the gate reads to know whether a refusal still holds: ListPipelineParametersForExecution
  (the parameters the trigger passed), DescribePipeline (the deployed definition),
  DescribePipelineExecution/ListPipelineVersions (one version: the replay never redeploys)
  and ListModelPackages (the newest Approved package, from `approved`).
"""

from __future__ import annotations

import json
import operator
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


class LocalS3:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_paginator(self, operation: str) -> LocalS3:
        if operation != "list_objects_v2":
            raise NotImplementedError(operation)
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
        folder = self.root / Bucket / Prefix
        base = self.root / Bucket
        if not folder.is_dir():
            yield {}
            return
        keys = sorted(str(p.relative_to(base)) for p in folder.rglob("*") if p.is_file())
        yield {"Contents": [{"Key": key} for key in keys]}

    def download_file(self, bucket: str, key: str, target: str) -> None:
        # A hard link is a copy the job cannot tell apart (it only reads it, then deletes its
        # work folder), without copying the week of captures every daily job reads again.
        Path(target).unlink(missing_ok=True)  # a download replaces what was there
        try:
            os.link(self.root / bucket / key, target)
        except OSError:  # another file system
            shutil.copyfile(self.root / bucket / key, target)


@dataclass
class MetricStore:
    """Datapoints by (metric name, dimensions), in the order published."""

    now: Callable[[], datetime]
    points: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[datetime, float]]] = field(
        default_factory=dict
    )

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        for datum in MetricData:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in datum.get("Dimensions", [])))
            self.points.setdefault((datum["MetricName"], dims), []).append(
                (self.now(), float(datum["Value"]))
            )

    def latest(self, metric: str, dims: Mapping[str, str], since: datetime) -> float | None:
        """The period's datapoint: the newest value published at or after `since`."""
        key = (metric, tuple(sorted(dims.items())))
        values = [v for t, v in self.points.get(key, []) if t >= since]
        return values[-1] if values else None


COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass
class AlarmEmulator:
    name: str
    metric: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    missing: str = "ignore"  # TreatMissingData: ignore or notBreaching
    state: str = "INSUFFICIENT_DATA"
    state_since: datetime | None = None
    history: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"unknown comparison {self.comparison}")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise ValueError("datapoints_to_alarm must be from 1 to evaluation_periods")
        if self.missing not in ("ignore", "notBreaching"):
            raise ValueError(f"unsupported TreatMissingData {self.missing}")

    def evaluate(self, value: float | None, at: datetime) -> str | None:
        """Add one period's datapoint (None: missing); the new state when it changed."""
        self.history.append(value)
        breaches = COMPARISONS[self.comparison]
        if self.missing == "notBreaching":
            del self.history[: -self.evaluation_periods]  # only the range matters
            recent = [v for v in self.history if v is not None]
        elif all(v is None for v in self.history[-self.evaluation_periods :]):
            return None  # the whole evaluation range missing: ignore keeps the state
        else:
            # Missing periods inside the range: CloudWatch looks further back for datapoints.
            recent = [v for v in self.history if v is not None][-self.evaluation_periods :]
        breaching = sum(breaches(v, self.threshold) for v in recent)
        new_state = "ALARM" if breaching >= self.datapoints_to_alarm else "OK"
        if new_state == self.state:
            return None
        self.state, self.state_since = new_state, at
        return new_state

    def describe_alarms(self, AlarmNames: list[str], AlarmTypes: list[str]) -> dict[str, Any]:
        """CloudWatch's DescribeAlarms for this one alarm (what the gate's recheck asks)."""
        if self.name not in AlarmNames:
            return {"MetricAlarms": []}
        return {
            "MetricAlarms": [
                {
                    "AlarmName": self.name,
                    "StateValue": self.state,
                    "StateUpdatedTimestamp": self.state_since,
                    "StateTransitionedTimestamp": self.state_since,
                }
            ]
        }


@dataclass
class Alarms:
    """CloudWatch's DescribeAlarms over a set of alarms (what the rollback Lambda asks)."""

    alarms: list[AlarmEmulator]

    def describe_alarms(self, AlarmNames: list[str], AlarmTypes: list[str]) -> dict[str, Any]:
        found = [
            alarm.describe_alarms(AlarmNames=AlarmNames, AlarmTypes=AlarmTypes)["MetricAlarms"]
            for alarm in self.alarms
        ]
        return {"MetricAlarms": [a for part in found for a in part], "CompositeAlarms": []}


@dataclass
class Execution:
    arn: str
    started: datetime
    status: str
    display_name: str | None
    parameters: dict[str, str]
    token: str | None
    trigger: str
    steps: list[dict[str, Any]] = field(default_factory=list)  # ListPipelineExecutionSteps
    version: int = 1  # PipelineVersionId


class PipelineExecutions:
    """The pipeline's executions as SageMaker lists them; `run` executes a started one."""

    VERSION = 1

    def __init__(
        self,
        pipeline_name: str,
        run: Callable[[Execution], str],
        definition: Callable[[], Mapping[str, Any]] = lambda: {"Parameters": []},
        approved: Callable[[str], str] = lambda _group: "",
    ) -> None:
        """definition: the deployed pipeline definition; approved: a model package group's
        newest Approved package ARN ("" for none)."""
        self.pipeline_name = pipeline_name
        self.executions: list[Execution] = []
        self._run = run
        self._definition = definition
        self._approved = approved
        self.trigger = "drift-gate"
        self.now: datetime | None = None

    def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        newest = sorted(self.executions, key=lambda e: e.started, reverse=True)[:10]
        return {
            "PipelineExecutionSummaries": [
                {
                    "PipelineExecutionArn": e.arn,
                    "StartTime": e.started,
                    "PipelineExecutionStatus": e.status,
                    **({"PipelineExecutionDisplayName": e.display_name} if e.display_name else {}),
                }
                for e in newest
            ]
        }

    def _execution(self, arn: str) -> Execution:
        for execution in self.executions:
            if execution.arn == arn:
                return execution
        raise ValueError(f"no pipeline execution {arn}")

    def _check(self, pipeline_name: str) -> None:
        if pipeline_name != self.pipeline_name:
            raise ValueError(f"no pipeline {pipeline_name}")

    def list_pipeline_execution_steps(self, PipelineExecutionArn: str, **_: Any) -> dict[str, Any]:
        return {"PipelineExecutionSteps": list(self._execution(PipelineExecutionArn).steps)}

    def list_pipeline_parameters_for_execution(
        self, PipelineExecutionArn: str, **_: Any
    ) -> dict[str, Any]:
        parameters = self._execution(PipelineExecutionArn).parameters
        return {"PipelineParameters": [{"Name": k, "Value": v} for k, v in parameters.items()]}

    def describe_pipeline_execution(self, PipelineExecutionArn: str) -> dict[str, Any]:
        execution = self._execution(PipelineExecutionArn)
        return {"PipelineExecutionArn": execution.arn, "PipelineVersionId": execution.version}

    def describe_pipeline(self, PipelineName: str) -> dict[str, Any]:
        self._check(PipelineName)
        return {"PipelineName": PipelineName, "PipelineDefinition": json.dumps(self._definition())}

    def list_pipeline_versions(self, PipelineName: str, **_: Any) -> dict[str, Any]:
        self._check(PipelineName)
        return {"PipelineVersionSummaries": [{"PipelineVersionId": self.VERSION}]}

    def list_model_packages(self, ModelPackageGroupName: str, **_: Any) -> dict[str, Any]:
        arn = self._approved(ModelPackageGroupName)
        return {"ModelPackageSummaryList": [{"ModelPackageArn": arn}] if arn else []}

    def start_pipeline_execution(
        self,
        PipelineName: str,
        PipelineParameters: list[dict[str, str]] | None = None,
        ClientRequestToken: str | None = None,
        PipelineExecutionDisplayName: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self._check(PipelineName)
        for existing in self.executions:  # idempotent: one execution per token
            if ClientRequestToken and existing.token == ClientRequestToken:
                return {"PipelineExecutionArn": existing.arn}
        assert self.now is not None
        execution = Execution(
            arn=f"arn:aws:sagemaker:local:000000000000:pipeline/{PipelineName}/execution/"
            f"sim{len(self.executions) + 1:03d}",
            started=self.now,
            status="Executing",
            display_name=PipelineExecutionDisplayName,
            parameters={p["Name"]: p["Value"] for p in PipelineParameters or []},
            token=ClientRequestToken,
            trigger=self.trigger,
        )
        self.executions.append(execution)
        execution.status = self._run(execution)
        return {"PipelineExecutionArn": execution.arn}


def pipeline_steps_of(steps: Iterable[Any]) -> list[dict[str, Any]]:
    """ListPipelineExecutionSteps' view of a local run's steps (StepResult), newest first:
    only steps that ran; a Fail step carries Metadata.Fail.ErrorMessage, a condition its
    outcome, a Lambda step its OutputParameters, as SageMaker reports them."""
    listed: list[dict[str, Any]] = []
    for step in steps:
        if step.status not in ("Succeeded", "Failed"):
            continue  # NotStarted and Skipped steps are not listed
        entry: dict[str, Any] = {"StepName": step.name, "StepStatus": step.status}
        if step.failure_reason:
            entry["FailureReason"] = step.failure_reason
        if step.type == "Fail":
            entry["Metadata"] = {"Fail": {"ErrorMessage": step.failure_reason or ""}}
        elif step.type == "Condition" and step.note:
            outcome = step.note.removeprefix("outcome ")
            entry["Metadata"] = {"Condition": {"Outcome": outcome.capitalize()}}
        elif step.type == "Lambda" and step.outputs is not None:
            listed_outputs = [{"Name": k, "Value": v} for k, v in step.outputs.items()]
            entry["Metadata"] = {"Lambda": {"OutputParameters": listed_outputs}}
        listed.append(entry)
    return listed[::-1]
