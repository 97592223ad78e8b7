"""The replay app of bench/bench_synth_floor.py: rebuilds a synthesized cloud assembly as a
CDK app of plain L1 elements, and compares the templates it writes with the originals.

What the replay keeps: every Stage and Stack with its id, account, region, stack name,
termination protection, tags and stack dependencies, and the default synthesizer (so the
bootstrap parameter, rule and manifest properties come out of CDK as before); each
template's resources as `CfnResource` (type and properties as raw JSON, every other
attribute - DependsOn, policies, Metadata, Condition - as a raw override), its outputs,
parameters, conditions, mappings, rules and template metadata as `CfnOutput`,
`CfnParameter`, `CfnCondition`, `CfnMapping`, `CfnRule` and template options. Cross-stack
values stay the literal intrinsics the template holds (`Fn::GetStackOutput`,
`Fn::ImportValue`, ...).

What it leaves out, on purpose: L2 constructs and the construct hierarchy under each stack
(every element is a direct child of its stack), aspects, cdk-nag, assets (the templates
still name the original asset objects; no file is staged or hashed), reference resolution,
and CDK's analytics collection (each stack's `AWS::CDK::Metadata` resource is replayed
literally, with the stack's own analytics reporting off, so the Analytics string stays the
original's). So the assembly's templates match; tree.json, *.metadata.json, *.assets.json and
the assets manifests do not (bench/assembly_compare.py tells which).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

# Written by the default synthesizer of every replayed stack: not replayed from the template.
SYNTHESIZER_PARAMETER = "BootstrapVersion"
SYNTHESIZER_RULE = "CheckBootstrapVersion"
# Stack manifest properties the replay sets, and the ones the synthesizer writes itself.
REPLAYED_PROPERTIES = ("stackName", "terminationProtection", "tags", "notificationArns")
SYNTHESIZER_PROPERTIES = (
    "templateFile",
    "validateOnSynth",
    "assumeRoleArn",
    "assumeRoleExternalId",
    "cloudFormationExecutionRoleArn",
    "stackTemplateAssetObjectUrl",
    "requiresBootstrapStackVersion",
    "bootstrapStackVersionSsmParameter",
    "additionalDependencies",
    "lookupRole",
)
TEMPLATE_SECTIONS = (
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Transform",
    "Parameters",
    "Mappings",
    "Conditions",
    "Rules",
    "Resources",
    "Outputs",
)
OUTPUT_KEYS = ("Value", "Description", "Export", "Condition")
UNKNOWN_ENV = ("unknown-account", "unknown-region")
# The replay App's context after the CLI's: each resource's Metadata (aws:cdk:path with the
# original construct path among it) comes from the template, so CDK must not add its own
# first: a resource's keys then render in the template's order (CDK appends overrides).
POST_CLI_CONTEXT = {"aws:cdk:enable-path-metadata": False}


class ReplayError(ValueError):
    """The assembly holds something the replay cannot rebuild as plain L1 elements."""


@dataclass
class StackArtifact:
    artifact_id: str
    path: str  # construct path, e.g. "prod-us-east-1/Data"
    account: str | None
    region: str | None
    properties: dict[str, Any]
    dependencies: list[str]  # artifact ids of other stacks
    template: dict[str, Any]


@dataclass
class Assembly:
    directory: Path
    path: str  # construct path of the stage ("" for the app)
    stacks: list[StackArtifact] = field(default_factory=list)
    stages: list[Assembly] = field(default_factory=list)


def read_assembly(directory: Path, path: str = "") -> Assembly:
    """The stacks and nested stage assemblies of a cloud assembly, in manifest order."""
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise ReplayError(f"{directory}: no manifest.json (expected a cdk.out cloud assembly)")
    manifest = json.loads(manifest_file.read_text())
    assembly = Assembly(directory=directory, path=path)
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        kind = artifact["type"]
        properties = artifact.get("properties", {})
        if kind == "cdk:cloud-assembly":
            nested = directory / properties["directoryName"]
            assembly.stages.append(read_assembly(nested, properties["displayName"]))
        elif kind == "aws:cloudformation:stack":
            assembly.stacks.append(_stack_artifact(directory, artifact_id, artifact))
    return assembly


def _stack_artifact(directory: Path, artifact_id: str, artifact: dict[str, Any]) -> StackArtifact:
    properties = artifact["properties"]
    unknown = set(properties) - set(REPLAYED_PROPERTIES) - set(SYNTHESIZER_PROPERTIES)
    if unknown:
        raise ReplayError(
            f"stack {artifact_id}: manifest properties {sorted(unknown)} are not replayed "
            f"(replayed: {', '.join(REPLAYED_PROPERTIES)}; written by the synthesizer: "
            f"{', '.join(SYNTHESIZER_PROPERTIES)})"
        )
    account, region = _environment(artifact["environment"])
    return StackArtifact(
        artifact_id=artifact_id,
        path=artifact.get("displayName", artifact_id),
        account=account,
        region=region,
        properties=properties,
        dependencies=[
            dep for dep in artifact.get("dependencies", []) if not dep.endswith(".assets")
        ],
        template=json.loads((directory / properties["templateFile"]).read_text()),
    )


def _environment(uri: str) -> tuple[str | None, str | None]:
    """ "aws://123456789012/us-east-1" -> (account, region); CDK's unknown-* -> None."""
    account, region = uri.removeprefix("aws://").split("/", 1)
    return (
        None if account == UNKNOWN_ENV[0] else account,
        None if region == UNKNOWN_ENV[1] else region,
    )


def replay_app(scope: Construct, assembly: Assembly) -> None:
    """Add the assembly's stacks and stages to scope (the App, or the Stage of a nested one)."""
    stacks: dict[str, cdk.Stack] = {}
    for artifact in assembly.stacks:
        stacks[artifact.artifact_id] = replay_stack(_parent_of(scope, assembly, artifact), artifact)
    for artifact in assembly.stacks:
        for dependency in artifact.dependencies:
            if dependency not in stacks:
                raise ReplayError(
                    f"stack {artifact.artifact_id}: depends on {dependency}, which is not a "
                    "stack of the same assembly"
                )
            stacks[artifact.artifact_id].add_stack_dependency(stacks[dependency])
    for nested in assembly.stages:
        stage = cdk.Stage(scope, _child_id(assembly.path, nested.path))
        replay_app(stage, nested)


def _child_id(parent_path: str, path: str) -> str:
    relative = path[len(parent_path) + 1 :] if parent_path else path
    if (parent_path and not path.startswith(parent_path + "/")) or "/" in relative:
        raise ReplayError(f"stage {path}: not a direct child of {parent_path or 'the app'}")
    return relative


def _parent_of(scope: Construct, assembly: Assembly, artifact: StackArtifact) -> Construct:
    """The construct a stack sits in: its stage, or plain scopes between the two."""
    relative = artifact.path[len(assembly.path) + 1 :] if assembly.path else artifact.path
    parent = scope
    for part in relative.split("/")[:-1]:
        found = parent.node.try_find_child(part)
        parent = found if found is not None else Construct(parent, part)
    return parent


def replay_stack(scope: Construct, artifact: StackArtifact) -> cdk.Stack:
    template = artifact.template
    unknown = set(template) - set(TEMPLATE_SECTIONS)
    if unknown:
        raise ReplayError(
            f"stack {artifact.artifact_id}: template sections {sorted(unknown)} are not "
            f"replayed (allowed: {', '.join(TEMPLATE_SECTIONS)})"
        )
    properties = artifact.properties
    stack = cdk.Stack(
        scope,
        artifact.path.rsplit("/", 1)[-1],
        env=cdk.Environment(account=artifact.account, region=artifact.region),
        stack_name=properties.get("stackName"),
        termination_protection=properties.get("terminationProtection"),
        tags=properties.get("tags"),
        notification_arns=properties.get("notificationArns"),
        description=template.get("Description"),
        analytics_reporting=False,  # AWS::CDK::Metadata comes from the template as it was
    )
    options = stack.template_options
    if "AWSTemplateFormatVersion" in template:
        options.template_format_version = template["AWSTemplateFormatVersion"]
    if "Metadata" in template:
        options.metadata = template["Metadata"]
    transforms = template.get("Transform", [])
    for transform in [transforms] if isinstance(transforms, str) else transforms:
        stack.add_transform(transform)
    conditions: dict[str, cdk.CfnCondition] = {}
    for section in template:  # the template's own section order, as CDK renders it
        for logical_id, body in _section(template, section):
            if section == "Parameters":
                _parameter(stack, logical_id, body)
            elif section == "Mappings":
                cdk.CfnMapping(stack, _element_id(logical_id), mapping=body)
            elif section == "Conditions":
                conditions[logical_id] = cdk.CfnCondition(
                    stack, _element_id(logical_id), expression=cdk.Token.as_any(body)
                )
            elif section == "Rules":
                _rule(stack, logical_id, body)
            elif section == "Resources":
                _resource(stack, logical_id, body)
            elif section == "Outputs":
                _output(stack, logical_id, body, conditions)
    return stack


def _section(template: dict[str, Any], section: str) -> Iterator[tuple[str, Any]]:
    if section not in ("Parameters", "Mappings", "Conditions", "Rules", "Resources", "Outputs"):
        return
    for logical_id, body in template[section].items():
        if (section, logical_id) in (
            ("Parameters", SYNTHESIZER_PARAMETER),
            ("Rules", SYNTHESIZER_RULE),
        ):
            continue
        yield logical_id, body


def _element_id(logical_id: str) -> str:
    """A direct child of a stack whose id is alphanumeric keeps that id as its logical id."""
    if not re.fullmatch(r"[A-Za-z0-9]+", logical_id) or logical_id == "Default":
        raise ReplayError(f"logical id {logical_id!r}: not alphanumeric, or CDK's 'Default'")
    return logical_id


def _resource(stack: cdk.Stack, logical_id: str, body: dict[str, Any]) -> None:
    resource = cdk.CfnResource(
        stack, _element_id(logical_id), type=body["Type"], properties=body.get("Properties")
    )
    for key, value in body.items():  # DependsOn, policies, Metadata, Condition, in order
        if key not in ("Type", "Properties"):
            resource.add_override(key, value)


def _output(
    stack: cdk.Stack,
    logical_id: str,
    body: dict[str, Any],
    conditions: Mapping[str, cdk.CfnCondition],
) -> None:
    unknown = set(body) - set(OUTPUT_KEYS)
    if unknown:
        raise ReplayError(f"output {logical_id}: keys {sorted(unknown)} are not replayed")
    export = body.get("Export", {}).get("Name")
    cdk.CfnOutput(
        stack,
        _element_id(logical_id),
        value=_as_string(body["Value"]),
        description=_as_string(body["Description"]) if "Description" in body else None,
        export_name=None if export is None else _as_string(export),
        condition=conditions[body["Condition"]] if "Condition" in body else None,
    )


def _as_string(value: Any) -> str:
    return value if isinstance(value, str) else cdk.Token.as_string(value)


def _parameter(stack: cdk.Stack, logical_id: str, body: dict[str, Any]) -> None:
    # CloudFormation's keys (Type, AllowedValues, NoEcho, ...) are CfnParameter's, snake_cased.
    options = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in body.items()}
    cdk.CfnParameter(stack, _element_id(logical_id), **options)


def _rule(stack: cdk.Stack, logical_id: str, body: dict[str, Any]) -> None:
    cdk.CfnRule(
        stack,
        _element_id(logical_id),
        rule_condition=cdk.Token.as_any(body["RuleCondition"]) if "RuleCondition" in body else None,
        assertions=[
            cdk.CfnRuleAssertion(
                assert_=cdk.Token.as_any(assertion["Assert"]),
                assert_description=assertion["AssertDescription"],
            )
            for assertion in body.get("Assertions", [])
        ],
    )
