"""The endpoint as its rollback Lambda sees it: releases, the alarms it watches, a configured
fault, and the Lambda's own decision code (lambda/rollback/rollback_logic.py).

- Releases: each promotion deploys a new endpoint config (`<endpoint>-v<version>`); the
  rollback function's environment names it as current and the config serving before as
  previous, as the serving stack wires it (mlops/constructs/endpoint_rollback.py).
- Alarms: ErrorRate5xx (Invocation5XXErrors Average > error_rate_5xx) and ModelLatencyP99
  (ModelLatency p99 > latency_p99_ms), 1-minute periods, 3 of 3, missing data not breaching,
  as mlops/constructs/endpoint_alarms.py deploys them; evaluated every minute of the day.
- A fault (`--inject-fault MONTH:KIND`, off by default): on day FAULT_DAY of MONTH from
  FAULT_START_HOUR:00 UTC for FAULT_HOURS hours, the release serving when it starts answers
  every request with a 5xx (errors) or after FAULT_LATENCY_MS (latency). Healthy requests
  take HEALTHY_LATENCY_MS (make bench: the model's in-process p99 is about 9 ms).
- An ALARM transition is the EventBridge event that invokes the Lambda: handle_alarm_event
  runs with this module's stand-ins for SageMaker (DescribeEndpoint, UpdateEndpoint,
  DescribeModelPackage and UpdateModelPackage over the local registry), SNS (Publish) and
  CloudWatch (DescribeAlarms). UpdateEndpoint takes effect from the next minute (in AWS: the
  few minutes a blue/green update takes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from mlops.alarm_shape import DATAPOINTS_TO_ALARM, EVALUATION_PERIODS, PERIOD_SECONDS
from mlops.config import AlarmConfig
from mlops.local.registry import LocalRegistry
from mlops.local.simulate.cloud import AlarmEmulator, Alarms
from mlops.local.simulate.traffic import Answered, ServedModel, requests_of

# The deployed alarms' shape, read where mlops/constructs/endpoint_alarms.py reads it.
PERIOD = dt.timedelta(seconds=PERIOD_SECONDS)

FAULT_KINDS = ("errors", "latency")
FAULT_DAY = 15
FAULT_START_HOUR = 12  # UTC: 8 am in New York, a busy departure hour
FAULT_HOURS = 6
FAULT_LATENCY_MS = 2_000
HEALTHY_LATENCY_MS = 10
TOPIC_ARN = "arn:aws:sns:local:000000000000:simulated-endpoint-alarms"
MANIFEST_HINT = "config/releases.yaml"


@dataclass(frozen=True)
class Fault:
    month: int
    kind: str

    def span(self) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime(2013, self.month, FAULT_DAY, FAULT_START_HOUR, tzinfo=dt.UTC)
        return start, start + dt.timedelta(hours=FAULT_HOURS)


def parse_fault(text: str) -> Fault:
    """MONTH:KIND, e.g. 8:errors; a ValueError naming what is allowed otherwise."""
    month, _, kind = text.partition(":")
    allowed = f"expected MONTH:KIND, MONTH 1 to 12, KIND one of {', '.join(FAULT_KINDS)}"
    if not month.strip().isdigit() or not 1 <= int(month) <= 12 or kind not in FAULT_KINDS:
        raise ValueError(f"--inject-fault {text!r}: {allowed}")
    return Fault(int(month), kind)


class EndpointService:
    """SageMaker's endpoint and model-package calls and SNS Publish, as the Lambda makes them."""

    def __init__(self, name: str, registry: LocalRegistry) -> None:
        self.name = name
        self.registry = registry
        self.models: dict[str, ServedModel] = {}
        self.config: str | None = None
        self.messages: list[dict[str, str]] = []

    @property
    def serving(self) -> ServedModel | None:
        return self.models[self.config] if self.config else None

    def deploy(self, model: ServedModel) -> str | None:
        """A release: the new config serves; the one it replaces (the rollback target)."""
        previous, self.config = self.config, f"{self.name}-v{model.version}"
        self.models[self.config] = model
        return previous

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        self._check(EndpointName)
        return {"EndpointName": self.name, "EndpointStatus": "InService",
                "EndpointConfigName": self.config}  # fmt: skip

    def update_endpoint(self, EndpointName: str, EndpointConfigName: str, **_: Any) -> None:
        self._check(EndpointName)
        if EndpointConfigName not in self.models:
            raise ClientError(
                {"Error": {"Code": "ValidationException",
                           "Message": f"Could not find endpoint config {EndpointConfigName}"}},
                "UpdateEndpoint",
            )  # fmt: skip
        self.config = EndpointConfigName

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        group, version = _package(ModelPackageName)
        package = self.registry.get(group, version)
        return {"ModelPackageArn": ModelPackageName, "ModelApprovalStatus": package.status,
                "ApprovalDescription": package.approval_description}  # fmt: skip

    def update_model_package(
        self, ModelPackageArn: str, ModelApprovalStatus: str, ApprovalDescription: str = "",
        **_: Any,
    ) -> None:  # fmt: skip
        group, version = _package(ModelPackageArn)
        self.registry.set_status(group, version, ModelApprovalStatus, ApprovalDescription)

    def publish(self, TopicArn: str, Subject: str, Message: str, **_: Any) -> dict[str, str]:
        self.messages.append({"topic": TopicArn, "subject": Subject, "message": Message})
        return {"MessageId": f"simulated-{len(self.messages)}"}

    def _check(self, name: str) -> None:
        if name != self.name:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": f"no endpoint {name}"}},
                "DescribeEndpoint",
            )


def _package(arn: str) -> tuple[str, int]:
    """arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>."""
    group, _, version = arn.rpartition(":model-package/")[2].partition("/")
    return group, int(version)


class EndpointReplay:
    """The endpoint minute by minute: who answers each request, its alarms, its rollbacks."""

    def __init__(
        self,
        service: EndpointService,
        alarms: AlarmConfig,
        fault: Fault | None,
        rollback: ModuleType,
        region: str,
        event: Callable[..., None],
    ) -> None:
        self.service = service
        self.fault = fault
        self.rollback = rollback
        self.region = region
        self.event = event
        self.errors = self._alarm("ErrorRate5xx", "Invocation5XXErrors", alarms.error_rate_5xx)
        self.latency = self._alarm(
            "ModelLatencyP99", "ModelLatency", alarms.latency_p99_ms * 1000.0
        )  # ModelLatency is in microseconds
        self.cloudwatch = Alarms([self.errors, self.latency])
        self.config: Any = None  # the rollback function's RollbackConfig of the live release
        self.faulty_config: str | None = None
        self.rollbacks: list[dict[str, Any]] = []

    def _alarm(self, suffix: str, metric: str, threshold: float) -> AlarmEmulator:
        return AlarmEmulator(
            name=f"{self.service.name}-{suffix}",
            metric=metric,
            threshold=threshold,
            comparison="GreaterThanThreshold",
            evaluation_periods=EVALUATION_PERIODS,
            datapoints_to_alarm=DATAPOINTS_TO_ALARM,
            missing="notBreaching",
        )

    def release(self, model: ServedModel, package_arn: str) -> None:
        """Deploy `model`; the rollback function is redeployed with the new environment."""
        previous = self.service.deploy(model)
        self.config = self.rollback.RollbackConfig(
            endpoint_name=self.service.name,
            alarm_names=frozenset({self.errors.name, self.latency.name}),
            previous_config_name=previous,
            current_config_name=self.service.config,
            current_model_package_arn=package_arn,
            topic_arn=TOPIC_ARN,
            manifest_hint=MANIFEST_HINT,
        )

    def _faulty(self, at: dt.datetime) -> bool:
        if self.fault is None:
            return False
        start, end = self.fault.span()
        if not start <= at < end:
            return False
        if self.faulty_config is None:  # the release serving when the fault starts
            self.faulty_config = self.service.config
        return self.service.config == self.faulty_config

    def serve_day(self, day_start: dt.datetime, day: pd.DataFrame) -> list[Answered]:
        """Every minute of the day: its request (if any) is answered or fails, the alarms
        evaluate the minute's datapoints, an ALARM invokes the rollback. Then each release's
        answered requests are scored in one batch."""
        requests = {int((r.minute - day_start) / PERIOD): r for r in requests_of(day)}
        lines = day["line"].tolist() if len(day) else []
        answered: list[Answered] = []
        for minute in range(24 * 60):
            at = day_start + minute * PERIOD
            request = requests.get(minute)
            error: float | None = None
            latency: float | None = None
            if request is not None:
                faulty = self._faulty(at)
                error = 1.0 if faulty and self.fault and self.fault.kind == "errors" else 0.0
                if not error:  # a failed request reports no model latency
                    slow = faulty and self.fault is not None and self.fault.kind == "latency"
                    latency = (FAULT_LATENCY_MS if slow else HEALTHY_LATENCY_MS) * 1000.0
                    serving = self.service.serving
                    assert serving is not None
                    answered.append(
                        Answered(request, serving.version, lines[request.start : request.stop])
                    )
            for alarm, value in ((self.errors, error), (self.latency, latency)):
                self._evaluate(alarm, value, at + PERIOD)
        by_version: dict[int, list[Answered]] = {}
        for item in answered:
            by_version.setdefault(item.version, []).append(item)
        for version, items in by_version.items():
            model = next(m for m in self.service.models.values() if m.version == version)
            batch = [line for item in items for line in item.lines]
            answers, scores = model.invoke_batch(batch)
            offset = 0
            for item in items:
                size = len(item.lines)
                item.answers = answers[offset : offset + size]
                item.scores = scores[offset : offset + size]
                offset += size
        return answered

    def _evaluate(self, alarm: AlarmEmulator, value: float | None, at: dt.datetime) -> None:
        previous = alarm.state
        changed = alarm.evaluate(value, at)
        if changed is None or previous == "INSUFFICIENT_DATA":
            return  # the first evaluation (no data yet -> OK) is not news
        self.event("endpoint_alarm", at=at, alarm=alarm.name, state=changed, metric=alarm.metric,
                   value=value)  # fmt: skip
        if changed == "ALARM":
            self.invoke_rollback(alarm, at)

    def invoke_rollback(self, alarm: AlarmEmulator, at: dt.datetime) -> None:
        """EventBridge's alarm state change event, handed to the rollback Lambda's decision."""
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "version": "0",
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "time": stamp,
            "region": self.region,
            "detail": {
                "alarmName": alarm.name,
                "state": {"value": "ALARM", "timestamp": at.isoformat(),
                          "reason": f"{DATAPOINTS_TO_ALARM} of {EVALUATION_PERIODS} datapoints "
                                    f"of {alarm.metric} above {alarm.threshold:g}"},
                "previousState": {"value": "OK"},
            },
        }  # fmt: skip
        before = self.service.serving
        result = self.rollback.handle_alarm_event(
            event, self.config, self.service, self.service, self.cloudwatch, self.service
        )
        after = self.service.serving
        record = {
            **result,
            "alarm": alarm.name,
            "from_version": before.version if before else None,
            "to_version": after.version if after else None,
        }
        self.rollbacks.append({"at": at, **record})
        self.event("rollback_decision", at=at, **record)
