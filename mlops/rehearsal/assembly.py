"""The synthesized stacks, with CloudFormation intrinsics resolved to concrete strings.

Resolution is deterministic and offline: a resource's Ref/GetAtt becomes the name or ARN it
would have, built from its explicit name (RoleName, BucketName, AlarmName ...) or, when
CloudFormation generates one, from its logical id. Two references to the same resource
therefore resolve to the same string, in the same or another stack (Fn::GetStackOutput)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARTITION = "aws"

# Type -> (name property, ARN format). {name} is the explicit or generated name.
_NAMED: dict[str, tuple[str | None, str]] = {
    "AWS::IAM::Role": ("RoleName", "arn:{p}:iam::{a}:role/{name}"),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", "arn:{p}:iam::{a}:policy/{name}"),
    "AWS::S3::Bucket": ("BucketName", "arn:{p}:s3:::{name}"),
    "AWS::KMS::Key": (None, "arn:{p}:kms:{r}:{a}:key/{name}"),
    "AWS::Lambda::Function": ("FunctionName", "arn:{p}:lambda:{r}:{a}:function:{name}"),
    "AWS::CloudWatch::Alarm": ("AlarmName", "arn:{p}:cloudwatch:{r}:{a}:alarm:{name}"),
    "AWS::SNS::Topic": ("TopicName", "arn:{p}:sns:{r}:{a}:{name}"),
    "AWS::SQS::Queue": ("QueueName", "arn:{p}:sqs:{r}:{a}:{name}"),
    "AWS::SageMaker::Pipeline": ("PipelineName", "arn:{p}:sagemaker:{r}:{a}:pipeline/{name}"),
    "AWS::SageMaker::Endpoint": ("EndpointName", "arn:{p}:sagemaker:{r}:{a}:endpoint/{name}"),
    "AWS::SageMaker::EndpointConfig": (
        "EndpointConfigName",
        "arn:{p}:sagemaker:{r}:{a}:endpoint-config/{name}",
    ),
    "AWS::SageMaker::Model": ("ModelName", "arn:{p}:sagemaker:{r}:{a}:model/{name}"),
    "AWS::SageMaker::ModelPackageGroup": (
        "ModelPackageGroupName",
        "arn:{p}:sagemaker:{r}:{a}:model-package-group/{name}",
    ),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{p}:logs:{r}:{a}:log-group:{name}:*"),
    "AWS::Events::Rule": ("Name", "arn:{p}:events:{r}:{a}:rule/{name}"),
}
# Ref of these types is the ARN, not the name.
_REF_IS_ARN = {"AWS::SNS::Topic", "AWS::IAM::ManagedPolicy", "AWS::SageMaker::Pipeline"}


@dataclass
class Stack:
    """One stack template and where it deploys."""

    name: str  # the CloudFormation stack name, e.g. prod-us-east-1-Serving
    path: str  # the display path, e.g. prod-us-east-1/Serving
    account: str
    region: str
    template: dict[str, Any]
    dependencies: tuple[str, ...] = ()  # stack names deployed before this one
    assembly: Assembly | None = field(default=None, repr=False, compare=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == kind:
                yield logical_id, resource

    def resource_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        name_prop = _NAMED.get(resource["Type"], (None, ""))[0]
        explicit = resource.get("Properties", {}).get(name_prop) if name_prop else None
        if explicit is not None:
            return str(self.resolve(explicit))
        if resource["Type"] == "AWS::S3::Bucket":
            return f"{self.name}-{logical_id}".lower()
        return f"{self.name}-{logical_id}"

    def arn_of(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        fmt = _NAMED.get(kind, (None, "arn:{p}:generated:{r}:{a}:{name}"))[1]
        return fmt.format(
            p=PARTITION, r=self.region, a=self.account, name=self.resource_name(logical_id)
        )

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.template["Parameters"][name].get("Default", f"param:{name}")
        kind = self.resources[name]["Type"]
        return self.arn_of(name) if kind in _REF_IS_ARN else self.resource_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if attribute in ("Arn", "TopicArn", "QueueArn") or (
            attribute.endswith("Arn") and kind.startswith("AWS::SageMaker::")
        ):
            return self.arn_of(logical_id)
        if attribute.endswith("Name"):
            return self.resource_name(logical_id)
        return f"{self.name}-{logical_id}.{attribute}"

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic replaced by the string it would resolve to."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if fn == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if fn == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if fn == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::GetStackOutput":
                return self._stack_output(arg["StackName"], arg["OutputName"])
            if fn == "Fn::Base64":
                return self.resolve(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", one, text)

    def _stack_output(self, stack_name: str, output: str) -> Any:
        assert self.assembly is not None, "Fn::GetStackOutput needs the whole assembly"
        other = self.assembly.by_name(stack_name)
        return other.resolve(other.template["Outputs"][output]["Value"])

    def depends_on(self, logical_id: str) -> set[str]:
        """Every resource the given one waits for (DependsOn, Ref, GetAtt, Sub), transitively."""
        seen: set[str] = set()
        todo = [logical_id]
        while todo:
            for dep in _direct_dependencies(self.resources[todo.pop()]):
                if dep in self.resources and dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen


def _direct_dependencies(resource: dict[str, Any]) -> set[str]:
    deps = resource.get("DependsOn", [])
    found = {deps} if isinstance(deps, str) else set(deps)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for fn, arg in value.items():
                if fn == "Ref" and isinstance(arg, str):
                    found.add(arg)
                elif fn == "Fn::GetAtt":
                    found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
                elif fn == "Fn::Sub":
                    text = arg if isinstance(arg, str) else arg[0]
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                walk(arg)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(resource.get("Properties", {}))
    return found


@dataclass
class Assembly:
    stacks: list[Stack]
    # Stack name -> position in the delivery pipeline (wave, run order); absent: not delivered.
    deploy_order: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for stack in self.stacks:
            stack.assembly = self

    def by_name(self, name: str) -> Stack:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise KeyError(name)

    def deployed_before(self, first: Stack, then: Stack) -> bool:
        """Whether `first` is certainly deployed before `then` (same pipeline or CLI order)."""
        if first.name in _all_dependencies(self, then):
            return True
        a, b = self.deploy_order.get(first.name), self.deploy_order.get(then.name)
        return a is not None and b is not None and a < b


def _all_dependencies(assembly: Assembly, stack: Stack) -> set[str]:
    seen: set[str] = set()
    todo = list(stack.dependencies)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(assembly.by_name(name).dependencies)
    return seen


def load_assembly(assembly_dir: Path) -> Assembly:
    """Every stack in a cloud assembly directory (nested stage assemblies included)."""
    stacks: list[Stack] = []
    for manifest_path in sorted(assembly_dir.rglob("manifest.json")):
        artifacts = json.loads(manifest_path.read_text()).get("artifacts", {})
        ids = {k: a for k, a in artifacts.items() if a.get("type") == "aws:cloudformation:stack"}
        for artifact_id, artifact in ids.items():
            props = artifact["properties"]
            account, region = artifact["environment"].removeprefix("aws://").split("/")
            stacks.append(
                Stack(
                    name=props.get("stackName", artifact_id),
                    path=artifact.get("displayName", artifact_id),
                    account=account,
                    region=region,
                    template=json.loads((manifest_path.parent / props["templateFile"]).read_text()),
                    dependencies=tuple(
                        ids[d]["properties"].get("stackName", d)
                        for d in artifact.get("dependencies", [])
                        if d in ids
                    ),
                )
            )
    return Assembly(stacks=stacks, deploy_order=_pipeline_order(stacks))


def _pipeline_order(stacks: Iterable[Stack]) -> dict[str, tuple[int, int]]:
    """(stage index, run order) of each stack's Deploy action in CDK Pipelines' pipeline."""
    order: dict[str, tuple[int, int]] = {}
    for stack in stacks:
        for _, pipeline in stack.of_type("AWS::CodePipeline::Pipeline"):
            for index, stage in enumerate(pipeline["Properties"]["Stages"]):
                for action in stage["Actions"]:
                    name = action.get("Configuration", {}).get("StackName")
                    if name and action["Name"].endswith("Deploy"):
                        order[name] = (index, int(action.get("RunOrder", 1)))
    return order
