"""Run Lambda code in moto as the role the synthesized template gives it, with IAM enforced.

Two checks on every call the code makes:
- moto enforces IAM (moto.core.set_initial_no_auth_action_count) with the role's policy from
  the template. moto checks actions for every service but resources only for S3, and it
  treats an unmet condition as a deny; so its copy of the policy keeps S3 resources, widens
  other services' resources to "*" and drops conditions.
- every request is also recorded (botocore before-parameter-build event) and judged by the
  rehearsal's own evaluator against the unmodified statements, with the resource ARN the
  operation acts on: this is where resources and conditions of non-S3 calls are checked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import botocore.session
from moto.core import set_initial_no_auth_action_count

from mlops.rehearsal.assembly import Stack
from mlops.rehearsal.policy import Request, allows, role_statements


def _s3_object(p: dict[str, Any]) -> str:
    return f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"


# (service, operation) -> (IAM action, resource ARN from the request parameters)
ArnOf = Callable[[dict[str, Any], str, str], str | list[str]]
OPERATIONS: dict[tuple[str, str], tuple[str, ArnOf]] = {
    ("s3", "HeadObject"): ("s3:GetObject", lambda p, r, a: _s3_object(p)),
    ("s3", "GetObject"): ("s3:GetObject", lambda p, r, a: _s3_object(p)),
    ("s3", "PutObject"): ("s3:PutObject", lambda p, r, a: _s3_object(p)),
    ("sagemaker", "ListModelPackages"): (
        "sagemaker:ListModelPackages",
        lambda p, r, a: (
            f"arn:aws:sagemaker:{r}:{a}:model-package-group/{p['ModelPackageGroupName'].lower()}"
        ),
    ),
    ("sagemaker", "DescribeModelPackage"): (
        "sagemaker:DescribeModelPackage",
        lambda p, r, a: p["ModelPackageName"],
    ),
    ("sagemaker", "ListPipelineExecutions"): (
        "sagemaker:ListPipelineExecutions",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:pipeline/{p['PipelineName'].lower()}",
    ),
    ("sagemaker", "StartPipelineExecution"): (
        "sagemaker:StartPipelineExecution",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:pipeline/{p['PipelineName'].lower()}",
    ),
    ("sagemaker", "ListPipelineExecutionSteps"): (
        "sagemaker:ListPipelineExecutionSteps",
        lambda p, r, a: p["PipelineExecutionArn"],
    ),
    ("sagemaker", "DescribePipelineExecution"): (
        "sagemaker:DescribePipelineExecution",
        lambda p, r, a: p["PipelineExecutionArn"],
    ),
    ("sagemaker", "ListPipelineParametersForExecution"): (
        "sagemaker:ListPipelineParametersForExecution",
        lambda p, r, a: p["PipelineExecutionArn"],
    ),
    ("sagemaker", "DescribePipeline"): (
        "sagemaker:DescribePipeline",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:pipeline/{p['PipelineName'].lower()}",
    ),
    ("sagemaker", "ListPipelineVersions"): (
        "sagemaker:ListPipelineVersions",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:pipeline/{p['PipelineName'].lower()}",
    ),
    ("sts", "AssumeRole"): ("sts:AssumeRole", lambda p, r, a: p["RoleArn"]),
    ("sagemaker", "DescribeEndpoint"): (
        "sagemaker:DescribeEndpoint",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:endpoint/{p['EndpointName'].lower()}",
    ),
    # UpdateEndpoint is authorized on the endpoint and on the config it switches to.
    ("sagemaker", "UpdateEndpoint"): (
        "sagemaker:UpdateEndpoint",
        lambda p, r, a: [
            f"arn:aws:sagemaker:{r}:{a}:endpoint/{p['EndpointName'].lower()}",
            f"arn:aws:sagemaker:{r}:{a}:endpoint-config/{p['EndpointConfigName'].lower()}",
        ],
    ),
    ("sagemaker", "UpdateModelPackage"): (
        "sagemaker:UpdateModelPackage",
        lambda p, r, a: p["ModelPackageArn"],
    ),
    ("sns", "Publish"): ("sns:Publish", lambda p, r, a: p["TopicArn"]),
    ("monitoring", "DescribeAlarms"): (  # CloudWatch signs as "monitoring"
        "cloudwatch:DescribeAlarms",
        lambda p, r, a: [f"arn:aws:cloudwatch:{r}:{a}:alarm:{n}" for n in p["AlarmNames"]],
    ),
    ("s3", "ListObjectsV2"): ("s3:ListBucket", lambda p, r, a: f"arn:aws:s3:::{p['Bucket']}"),
    # Feature Store runtime signs as "sagemaker".
    ("sagemaker", "PutRecord"): (
        "sagemaker:PutRecord",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:feature-group/{p['FeatureGroupName'].lower()}",
    ),
    ("sagemaker", "BatchGetRecord"): (
        "sagemaker:BatchGetRecord",
        lambda p, r, a: [
            f"arn:aws:sagemaker:{r}:{a}:feature-group/{i['FeatureGroupName'].lower()}"
            for i in p["Identifiers"]
        ],
    ),
    ("sagemaker", "InvokeEndpoint"): (
        "sagemaker:InvokeEndpoint",
        lambda p, r, a: f"arn:aws:sagemaker:{r}:{a}:endpoint/{p['EndpointName'].lower()}",
    ),
}
# Condition keys a request carries (the evaluator checks statements' conditions against them).
CONTEXTS: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("s3", "ListObjectsV2"): lambda p: {"s3:prefix": p.get("Prefix", "")},
}


@dataclass
class CallLog:
    account: str
    statements: list[dict[str, Any]]
    calls: list[tuple[str, str]] = field(default_factory=list)  # (IAM action, resource)
    contexts: list[dict[str, Any]] = field(default_factory=list)  # condition keys, per call
    unknown: list[str] = field(default_factory=list)

    def record(self, model: Any, params: dict[str, Any], region: str) -> None:
        service = model.service_model.signing_name
        entry = OPERATIONS.get((service, model.name))
        if entry is None:
            self.unknown.append(f"{service}:{model.name}")
            return
        action, arn_of = entry
        resources = arn_of(params, region, self.account)
        context_of = CONTEXTS.get((service, model.name))
        for resource in [resources] if isinstance(resources, str) else resources:
            self.calls.append((action, resource))
            self.contexts.append(context_of(params) if context_of else {})

    def denied(self) -> list[str]:
        """Recorded calls the unmodified policy does not allow, and unmapped operations."""
        return [
            f"{action} on {resource}"
            for (action, resource), context in zip(self.calls, self.contexts, strict=True)
            if not allows(self.statements, Request(action, resource, context or None))
        ] + [f"unmapped operation {op}" for op in self.unknown]


def moto_view(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    view = []
    for statement in statements:
        s = {k: v for k, v in statement.items() if k != "Condition"}
        actions = s.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if not all(str(a).lower().startswith("s3:") for a in actions):
            s["Resource"] = "*"
        view.append(s)
    return view


@contextmanager
def recording(log: CallLog) -> Iterator[None]:
    """Every boto3 client created in the block records its calls into the log."""
    original_client = boto3.client

    def recorded_client(*args: Any, **kwargs: Any) -> Any:
        client = original_client(*args, **kwargs)
        client_region = client.meta.region_name
        client.meta.events.register(
            "before-parameter-build.*.*",
            lambda model, params, **_: log.record(model, params, client_region),
        )
        return client

    with mock.patch.object(boto3, "client", recorded_client):
        yield


def run_as_role(
    stack: Stack,
    role: str,
    region: str,
    body: Callable[[], Any],
    *,
    statements: list[dict[str, Any]] | None = None,
) -> tuple[Any, CallLog]:
    """Inside mock_aws (set up by the caller): run body with every boto3 client it creates
    calling as `role` of `stack`, IAM enforced from the first request. Returns body's result
    (or the exception it raised) and the log of its calls. statements: the role's policy
    instead of the template's (a role the template does not have, or one an attacker widened)."""
    if statements is None:
        statements = role_statements(stack, role)
    log = CallLog(stack.account, statements)
    iam = boto3.client("iam", region_name=region)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{stack.account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = f"rehearsal-{role}"[:64]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": moto_view(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="template", PolicyDocument=json.dumps(document))
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName="rehearsal")["Credentials"]
    role_env = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }

    @set_initial_no_auth_action_count(0)
    def enforced() -> Any:
        try:
            return body()
        except Exception as error:  # the caller asserts on it
            return error

    with (
        mock.patch.dict(os.environ, role_env),
        recording(log),
    ):
        _new_default_session()  # the default session cached the setup credentials
        try:
            result = enforced()
        finally:
            _new_default_session()
    return result, log


_LOADER = botocore.session.get_session().get_component("data_loader")


def _new_default_session() -> None:
    """A default session that reads credentials afresh but keeps the service models already
    loaded (loading them again is most of a run's time)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER)
    boto3.setup_default_session(botocore_session=session)
