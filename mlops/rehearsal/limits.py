"""Documented limits of the properties we set, in one table, each row with its source.

A row names a resource type, a property path ("a.b[].c": [] walks every list item), and
the allowed range or pattern. A value that is still an unresolved token after intrinsic
resolution is skipped (it is computed by AWS, not by us)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SM_API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference"
CFN = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference"
LAMBDA_API = "https://docs.aws.amazon.com/lambda/latest/api"
AAS_API = "https://docs.aws.amazon.com/autoscaling/application/APIReference"
# SageMaker names: the documented pattern and a length of 1-63. The pattern alone does not
# count hyphens ("-*"), so the lookahead bounds the length.
NAME_63 = r"^(?=.{1,63}$)[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"

ENDPOINT = "AWS::SageMaker::Endpoint"
BLUE_GREEN = "DeploymentConfig.BlueGreenUpdatePolicy"
ROUTING = f"{BLUE_GREEN}.TrafficRoutingConfiguration"


@dataclass(frozen=True)
class Limit:
    resource_type: str
    path: str
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    when: tuple[str, Any] | None = None  # (sibling path, value) the row applies to
    source: str = ""

    def describe(self) -> str:
        if self.pattern:
            return f"matches {self.pattern}"
        return f"{self.minimum if self.minimum is not None else '-inf'}..{self.maximum if self.maximum is not None else 'inf'}"


LIMITS: tuple[Limit, ...] = (
    # SageMaker blue/green deployments
    Limit(
        ENDPOINT,
        f"{ROUTING}.WaitIntervalInSeconds",
        0,
        3600,
        source=f"{SM_API}/API_TrafficRoutingConfig.html",
    ),
    Limit(
        ENDPOINT,
        f"{ROUTING}.LinearStepSize.Value",
        10,
        50,
        when=("Type", "CAPACITY_PERCENT"),
        source=f"{SM_API}/API_TrafficRoutingConfig.html (LinearStepSize: 10-50% of the fleet)",
    ),
    Limit(
        ENDPOINT,
        f"{ROUTING}.CanarySize.Value",
        1,
        50,
        when=("Type", "CAPACITY_PERCENT"),
        source=f"{SM_API}/API_TrafficRoutingConfig.html (CanarySize: at most 50% of the fleet)",
    ),
    Limit(
        ENDPOINT,
        f"{BLUE_GREEN}.MaximumExecutionTimeoutInSeconds",
        600,
        28800,
        source=f"{SM_API}/API_BlueGreenUpdatePolicy.html",
    ),
    Limit(
        ENDPOINT,
        f"{BLUE_GREEN}.TerminationWaitInSeconds",
        0,
        3600,
        source=f"{SM_API}/API_BlueGreenUpdatePolicy.html",
    ),
    Limit(
        ENDPOINT,
        "DeploymentConfig.AutoRollbackConfiguration.Alarms#",
        1,
        10,
        source=f"{SM_API}/API_AutoRollbackConfig.html",
    ),
    Limit(ENDPOINT, "EndpointName", pattern=NAME_63, source=f"{SM_API}/API_CreateEndpoint.html"),
    # SageMaker endpoint configs
    Limit(
        "AWS::SageMaker::EndpointConfig",
        "ProductionVariants[].InitialInstanceCount",
        1,
        None,
        source=f"{SM_API}/API_ProductionVariant.html",
    ),
    Limit(
        "AWS::SageMaker::EndpointConfig",
        "ProductionVariants[].VariantName",
        pattern=NAME_63,
        source=f"{SM_API}/API_ProductionVariant.html",
    ),
    Limit(
        "AWS::SageMaker::EndpointConfig",
        "ProductionVariants[].ServerlessConfig.MemorySizeInMB",
        1024,
        6144,
        source=f"{SM_API}/API_ProductionVariantServerlessConfig.html",
    ),
    Limit(
        "AWS::SageMaker::EndpointConfig",
        "ProductionVariants[].ServerlessConfig.MaxConcurrency",
        1,
        200,
        source=f"{SM_API}/API_ProductionVariantServerlessConfig.html",
    ),
    Limit(
        "AWS::SageMaker::EndpointConfig",
        "DataCaptureConfig.InitialSamplingPercentage",
        0,
        100,
        source=f"{SM_API}/API_DataCaptureConfig.html",
    ),
    Limit(
        "AWS::SageMaker::Pipeline",
        "PipelineName",
        pattern=r"^(?=.{1,256}$)[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$",
        source=f"{SM_API}/API_CreatePipeline.html",
    ),
    Limit(
        "AWS::SageMaker::ModelPackageGroup",
        "ModelPackageGroupName",
        pattern=NAME_63,
        source=f"{SM_API}/API_CreateModelPackageGroup.html",
    ),
    Limit(
        "AWS::SageMaker::FeatureGroup",
        "FeatureGroupName",
        pattern=NAME_63,
        source=f"{SM_API}/API_CreateFeatureGroup.html",
    ),
    # Application Auto Scaling
    Limit(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "MinCapacity",
        0,
        None,
        source=f"{AAS_API}/API_RegisterScalableTarget.html",
    ),
    Limit(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "PolicyName",
        pattern=r"^\S{1,256}$",
        source=f"{AAS_API}/API_PutScalingPolicy.html",
    ),
    Limit(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "TargetTrackingScalingPolicyConfiguration.ScaleInCooldown",
        0,
        None,
        source=f"{AAS_API}/API_TargetTrackingScalingPolicyConfiguration.html",
    ),
    Limit(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "TargetTrackingScalingPolicyConfiguration.ScaleOutCooldown",
        0,
        None,
        source=f"{AAS_API}/API_TargetTrackingScalingPolicyConfiguration.html",
    ),
    Limit(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "TargetTrackingScalingPolicyConfiguration.TargetValue",
        -(2.0**360),
        2.0**360,
        source=f"{AAS_API}/API_TargetTrackingScalingPolicyConfiguration.html",
    ),
    # Lambda
    Limit(
        "AWS::Lambda::Function", "Timeout", 1, 900, source=f"{LAMBDA_API}/API_CreateFunction.html"
    ),
    Limit(
        "AWS::Lambda::Function",
        "MemorySize",
        128,
        10240,
        source=f"{LAMBDA_API}/API_CreateFunction.html",
    ),
    Limit(
        "AWS::Lambda::Function",
        "EphemeralStorage.Size",
        512,
        10240,
        source=f"{CFN}/aws-properties-lambda-function-ephemeralstorage.html",
    ),
    Limit(
        "AWS::Lambda::Function",
        "Description",
        pattern=r"(?s)^.{0,256}$",
        source=f"{LAMBDA_API}/API_CreateFunction.html",
    ),
    # Custom resources
    Limit(
        "Custom::*",
        "ServiceTimeout",
        1,
        3600,
        source=f"{CFN}/aws-resource-cloudformation-customresource.html",
    ),
)


def _values(node: Any, parts: list[str]) -> Iterator[tuple[Any, Any]]:
    """(value, parent) for every match of a path under node."""
    if not parts:
        yield node, None
        return
    head, rest = parts[0], parts[1:]
    count = head.endswith("#")
    many = head.endswith("[]")
    key = head.removesuffix("#").removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return
    value = node[key]
    if count:
        yield len(value) if isinstance(value, list) else value, node
    elif many:
        for item in value if isinstance(value, list) else []:
            yield from _values(item, rest)
    elif rest:
        yield from _values(value, rest)
    else:
        yield value, node


def violations(limit: Limit, properties: dict[str, Any]) -> list[str]:
    """Messages for every value under the limit's path that breaks it."""
    found: list[str] = []
    for value, parent in _values(properties, limit.path.split(".")):
        if limit.when is not None and (
            not isinstance(parent, dict) or parent.get(limit.when[0]) != limit.when[1]
        ):
            continue
        if limit.pattern is not None:
            if isinstance(value, str) and not re.match(limit.pattern, value):
                found.append(f"{limit.path}={value!r} must match {limit.pattern}")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
                value = float(value)
            else:
                continue
        if (limit.minimum is not None and value < limit.minimum) or (
            limit.maximum is not None and value > limit.maximum
        ):
            found.append(f"{limit.path}={value} outside {limit.describe()}")
    return found
