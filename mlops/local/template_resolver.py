"""CloudFormation intrinsics resolved with local placeholders, in one template
(definition_source.py describes the placeholders; this is its resolver, moved out whole)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

# Ref returns a physical name for these types; the property holding it when set.
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::SSM::Parameter": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::Events::Rule": "Name",
}
# Types whose Ref is an ARN rather than a name.
_REF_IS_ARN = ("AWS::SNS::Topic", "AWS::SageMaker::ModelPackageGroup", "AWS::IAM::ManagedPolicy")


class DefinitionSourceError(ValueError):
    """The assembly has no usable pipeline (say what was found and what to pass)."""


class TemplateResolver:
    """Resolves CloudFormation intrinsics in one template with local placeholders."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        account: str,
        region: str,
        stack_name: str,
        imports: Callable[[str], Any] | None = None,
        stack_outputs: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.template = template
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.account = account
        self.region = region
        self.stack_name = stack_name
        self.imports = imports
        self.stack_outputs = stack_outputs
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": (f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local"),
            "AWS::NotificationARNs": [],
        }

    def placeholders(self, text: str) -> str:
        """${AWS::AccountId}-style placeholders of the asset manifest."""
        return re.sub(
            r"\$\{(AWS::[A-Za-z]+)\}", lambda m: str(self.pseudo.get(m.group(1), m.group(0))), text
        )

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key.startswith("Fn::"):
                raise DefinitionSourceError(f"intrinsic {key} cannot be resolved locally")
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default", "")
        resource = self.resources.get(name)
        if resource is None:
            raise DefinitionSourceError(f"Ref to unknown resource or parameter {name!r}")
        kind = resource.get("Type", "")
        resource_name = self.physical_name(name)
        if kind in _REF_IS_ARN:
            return self.arn(name, resource_name)
        return resource_name

    def physical_name(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id, {})
        prop = _NAME_PROPERTIES.get(resource.get("Type", ""))
        if prop and prop in resource.get("Properties", {}):
            return str(self.resolve(resource["Properties"][prop]))
        return logical_id.lower()

    def arn(self, logical_id: str, name: str) -> str:
        kind = self.resources.get(logical_id, {}).get("Type", "")
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.account}:role/{name}"
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:aws:iam::{self.account}:policy/{name}"
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{self.region}:{self.account}:{name}"
        parts = kind.split("::")
        service = parts[1].lower() if len(parts) == 3 else "local"
        resource_type = re.sub(r"(?<!^)(?=[A-Z])", "-", parts[-1]).lower() if parts else "resource"
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource_type}/{name}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise DefinitionSourceError(f"Fn::GetAtt of unknown resource {logical_id!r}")
        properties = resource.get("Properties", {})
        if attribute in properties:
            return self.resolve(properties[attribute])
        name = self.physical_name(logical_id)
        if attribute == "Arn" or attribute.endswith("Arn"):
            return self.arn(logical_id, name)
        if attribute == "DomainName":
            return f"{name}.s3.amazonaws.com"
        if attribute == "RegionalDomainName":
            return f"{name}.s3.{self.region}.amazonaws.com"
        if attribute.endswith("Name"):
            return name
        return f"{name}-{attribute.lower()}"


def _ref(r: TemplateResolver, arg: Any) -> Any:
    return r.ref(str(arg))


def _get_att(r: TemplateResolver, arg: Any) -> Any:
    if isinstance(arg, str):
        logical_id, _, attribute = arg.partition(".")
    else:
        logical_id, attribute = arg[0], str(r.resolve(arg[1]))
    return r.get_att(logical_id, attribute)


def _join(r: TemplateResolver, arg: Any) -> str:
    separator, values = arg
    items = r.resolve(values)
    return str(separator).join(str(v) for v in items)


def _sub(r: TemplateResolver, arg: Any) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
    resolved = {k: r.resolve(v) for k, v in variables.items()}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in resolved:
            return str(resolved[name])
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return str(r.get_att(logical_id, attribute))
        return str(r.ref(name))

    return re.sub(r"\$\{([^}]+)\}", substitute, text)


def _select(r: TemplateResolver, arg: Any) -> Any:
    index, values = int(r.resolve(arg[0])), r.resolve(arg[1])
    return values[index]


def _split(r: TemplateResolver, arg: Any) -> list[str]:
    separator, text = arg
    return str(r.resolve(text)).split(separator)


def _find_in_map(r: TemplateResolver, arg: Any) -> Any:
    name, first, second = (r.resolve(a) for a in arg[:3])
    try:
        return r.template["Mappings"][name][first][second]
    except KeyError:
        raise DefinitionSourceError(f"Fn::FindInMap {name}/{first}/{second} not found") from None


def _import_value(r: TemplateResolver, arg: Any) -> Any:
    name = str(r.resolve(arg))
    if r.imports is None:
        raise DefinitionSourceError(f"Fn::ImportValue {name}: no other stacks to import from")
    return r.imports(name)


def _get_stack_output(r: TemplateResolver, arg: Any) -> Any:
    """CDK's cross-stack (and cross-region) reference: {StackName, Region, OutputName}."""
    spec = r.resolve(arg)
    if r.stack_outputs is None:
        raise DefinitionSourceError("Fn::GetStackOutput: no other stacks to read outputs from")
    return r.stack_outputs(str(spec["StackName"]), str(spec["OutputName"]))


def _get_azs(r: TemplateResolver, arg: Any) -> list[str]:
    return [f"{r.region}{zone}" for zone in "abc"]


def _base64(r: TemplateResolver, arg: Any) -> str:
    return base64.b64encode(str(r.resolve(arg)).encode()).decode()


_INTRINSICS: dict[str, Callable[[TemplateResolver, Any], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::ImportValue": _import_value,
    "Fn::GetStackOutput": _get_stack_output,
    "Fn::GetAZs": _get_azs,
    "Fn::Base64": _base64,
}
