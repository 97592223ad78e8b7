"""Take the pipeline definition out of a synthesized cloud assembly (cdk.out).

The AWS::SageMaker::Pipeline resource carries PipelineDefinition.PipelineDefinitionBody: a
JSON string, or an Fn::Join of strings and CloudFormation tokens (role ARN, bucket names,
region ...), or a PipelineDefinitionS3Location pointing at a file asset. Intrinsics are
resolved with local placeholders so the definition can run locally:

    Ref AWS::AccountId   -> the stack's account when synth knew it, else 000000000000
    Ref AWS::Region      -> the stack's region (us-east-1 for an environment-agnostic stack)
    Ref AWS::Partition   -> aws;  Ref AWS::URLSuffix -> amazonaws.com
    Ref <resource>       -> its physical name property when set (BucketName, FunctionName,
                            RoleName ...), else the logical id lowercased
    Fn::GetAtt           -> a property of that name, else a deterministic ARN or name
    Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::ImportValue and
    Fn::GetStackOutput (from the other stacks of the same assembly), Fn::GetAZs, Fn::Base64

CDK file assets are listed in <stack>.assets.json (source path relative to the assembly
folder, packaging "file" or "zip", destination bucketName/objectKey with ${AWS::AccountId}-
style placeholders). The assets the definition refers to are copied (a folder is zipped)
into the local S3 tree at s3_root/<bucket>/<key>, so the code tar.gz URIs are real files.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The resolver lives in its own module; both names stay importable from here.
from mlops.local.template_resolver import DefinitionSourceError, TemplateResolver

LOCAL_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
PIPELINE_TYPE = "AWS::SageMaker::Pipeline"


@dataclass(frozen=True)
class StackArtifact:
    artifact_id: str
    display_name: str
    stack_name: str
    template_path: Path
    assembly_dir: Path
    account: str | None
    region: str | None
    depth: int

    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())


@dataclass(frozen=True)
class FileAsset:
    asset_id: str
    source: Path
    packaging: str  # "file" or "zip" (a folder uploaded as a zip)
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PipelineSource:
    """Where a definition came from and how its S3 URIs map to local files."""

    pipeline_name: str
    logical_id: str
    stack: StackArtifact
    account: str
    region: str
    assets: tuple[FileAsset, ...] = field(default_factory=tuple)

    def stage_assets(self, s3_root: Path) -> list[Path]:
        """Copy the referenced assets into the local S3 tree; returns the written paths."""
        return [stage_asset(asset, s3_root) for asset in self.assets]


# ---------------------------------------------------------------- cloud assembly


def list_stacks(cdk_out: Path) -> list[StackArtifact]:
    """Every CloudFormation stack in the assembly, nested stage assemblies included."""
    cdk_out = Path(cdk_out)
    if not (cdk_out / "manifest.json").is_file():
        raise DefinitionSourceError(
            f"{cdk_out} is not a cloud assembly (no manifest.json); synth first"
        )
    found: list[StackArtifact] = []
    _collect(cdk_out, 0, found)
    return found


def _collect(directory: Path, depth: int, found: list[StackArtifact]) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        kind = artifact.get("type")
        props = artifact.get("properties", {})
        if kind == "cdk:cloud-assembly":
            nested = directory / props["directoryName"]
            if (nested / "manifest.json").is_file():
                _collect(nested, depth + 1, found)
        elif kind == "aws:cloudformation:stack":
            account, region = _environment(artifact.get("environment", ""))
            found.append(
                StackArtifact(
                    artifact_id=artifact_id,
                    display_name=artifact.get("displayName", artifact_id),
                    stack_name=props.get("stackName", artifact_id),
                    template_path=directory / props["templateFile"],
                    assembly_dir=directory,
                    account=account,
                    region=region,
                    depth=depth,
                )
            )


def _environment(uri: str) -> tuple[str | None, str | None]:
    """aws://123456789012/eu-west-1 -> both; unknown-account/unknown-region -> None."""
    match = re.match(r"^aws://([^/]+)/(.+)$", uri)
    if not match:
        return None, None
    account, region = match.groups()
    return (
        account if re.fullmatch(r"\d{12}", account) else None,
        region if region != "unknown-region" else None,
    )


def _pipeline_resources(template: Mapping[str, Any]) -> dict[str, Any]:
    return {
        lid: res
        for lid, res in template.get("Resources", {}).items()
        if res.get("Type") == PIPELINE_TYPE
    }


def find_pipeline_stack(cdk_out: Path, selector: str | None = None) -> StackArtifact:
    """The one stack with a SageMaker pipeline whose display name or id contains
    `selector` (case-insensitive); the shallowest assembly wins over copies nested deeper
    (e.g. the same stage inside a delivery pipeline)."""
    stacks = [s for s in list_stacks(cdk_out) if _pipeline_resources(s.template())]
    if not stacks:
        raise DefinitionSourceError(f"no stack in {cdk_out} has an {PIPELINE_TYPE} resource")
    if selector:
        wanted = selector.lower()
        matches = [
            s for s in stacks if wanted in s.display_name.lower() or wanted in s.artifact_id.lower()
        ]
        # Prefer the stage named exactly like the selector, e.g. "dev-us-east-1/Training".
        exact = [
            s for s in matches if s.display_name.lower().split("/")[0].startswith(f"{wanted}-")
        ]
        matches = exact or matches
    else:
        matches = stacks
    if matches:
        shallowest = min(s.depth for s in matches)
        matches = [s for s in matches if s.depth == shallowest]
    names = ", ".join(s.display_name for s in stacks)
    if not matches:
        raise DefinitionSourceError(
            f"no pipeline stack matches {selector!r} (stacks with a pipeline: {names})"
        )
    if len(matches) > 1:
        chosen = ", ".join(s.display_name for s in matches)
        raise DefinitionSourceError(
            f"{len(matches)} pipeline stacks match {selector!r}: {chosen}; be more specific"
        )
    return matches[0]


def read_asset_manifest(stack: StackArtifact, resolver: TemplateResolver) -> list[FileAsset]:
    path = stack.template_path.with_name(f"{stack.artifact_id}.assets.json")
    if not path.is_file():
        return []
    manifest = json.loads(path.read_text())
    assets = []
    for asset_id, spec in sorted(manifest.get("files", {}).items()):
        source = spec.get("source", {})
        if "path" not in source:
            continue  # assets built by a command cannot be staged
        for destination in spec.get("destinations", {}).values():
            assets.append(
                FileAsset(
                    asset_id=asset_id,
                    source=(stack.assembly_dir / source["path"]).resolve(),
                    packaging=source.get("packaging", "file"),
                    bucket=resolver.placeholders(destination["bucketName"]),
                    key=resolver.placeholders(destination["objectKey"]),
                )
            )
            break
    return assets


def stage_asset(asset: FileAsset, s3_root: Path) -> Path:
    target = Path(s3_root, asset.bucket, *asset.key.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if asset.packaging == "zip" and asset.source.is_dir():
        _zip_dir(asset.source, target)
    elif asset.source.is_file():
        shutil.copyfile(asset.source, target)
    else:
        raise DefinitionSourceError(f"asset {asset.asset_id} source {asset.source} is missing")
    return target


def _zip_dir(source: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(source)), (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)


def resolver_for(stack: StackArtifact, all_stacks: list[StackArtifact]) -> TemplateResolver:
    """The stack's resolver, with imports and stack outputs from the rest of the assembly."""
    account = stack.account or LOCAL_ACCOUNT
    region = stack.region or DEFAULT_REGION

    def imports(name: str) -> Any:
        for other in all_stacks:
            template = other.template()
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is None:
                    continue
                other_resolver = resolver_for(other, all_stacks)
                if other_resolver.resolve(export) == name:
                    return other_resolver.resolve(output["Value"])
        raise DefinitionSourceError(f"Fn::ImportValue {name}: no stack in the assembly exports it")

    def stack_output(stack_name: str, output_name: str) -> Any:
        for other in all_stacks:
            if stack_name in (other.stack_name, other.artifact_id):
                outputs = other.template().get("Outputs", {})
                if output_name in outputs:
                    return resolver_for(other, all_stacks).resolve(outputs[output_name]["Value"])
        raise DefinitionSourceError(
            f"Fn::GetStackOutput: no stack {stack_name} with output {output_name} in the assembly"
        )

    return TemplateResolver(
        stack.template(),
        account=account,
        region=region,
        stack_name=stack.stack_name,
        imports=imports,
        stack_outputs=stack_output,
    )


# ---------------------------------------------------------------- the entry point


def load_definition_from_assembly(
    cdk_out: Path, stack: str | None = None, *, pipeline: str | None = None
) -> tuple[dict[str, Any], PipelineSource]:
    """(definition, source) of the pipeline in the stack matching `stack` (a substring of
    the stage/stack display name, e.g. "dev" or "dev-us-east-1/Training").

    `pipeline` picks one pipeline by logical id or name when a stack has several.
    """
    chosen = find_pipeline_stack(cdk_out, stack)
    resolver = resolver_for(chosen, list_stacks(cdk_out))
    resources = _pipeline_resources(resolver.template)
    if pipeline:
        resources = {
            lid: res
            for lid, res in resources.items()
            if pipeline
            in (lid, str(resolver.resolve(res.get("Properties", {}).get("PipelineName"))))
        }
    if len(resources) != 1:
        raise DefinitionSourceError(
            f"stack {chosen.display_name} has {len(resources)} matching pipelines "
            f"({', '.join(_pipeline_resources(resolver.template)) or 'none'}); pass pipeline="
        )
    logical_id, resource = next(iter(resources.items()))
    properties = resource.get("Properties", {})
    assets = read_asset_manifest(chosen, resolver)
    body_spec = properties.get("PipelineDefinition", {})
    if "PipelineDefinitionBody" in body_spec:
        body = resolver.resolve(body_spec["PipelineDefinitionBody"])
    elif "PipelineDefinitionS3Location" in body_spec:
        location = resolver.resolve(body_spec["PipelineDefinitionS3Location"])
        asset = next(
            (
                a
                for a in assets
                if a.bucket == location["Bucket"] and a.key == location["ObjectKey"]
            ),
            None,
        )
        if asset is None:
            raise DefinitionSourceError(
                f"the definition lives at s3://{location['Bucket']}/{location['ObjectKey']}, "
                "which is not a file asset of the stack"
            )
        body = asset.source.read_text()
    else:
        raise DefinitionSourceError(f"pipeline {logical_id} has no PipelineDefinition")
    try:
        definition = json.loads(body) if isinstance(body, str) else body
    except ValueError as exc:
        raise DefinitionSourceError(
            f"pipeline {logical_id}: definition is not JSON: {exc}"
        ) from None
    text = json.dumps(definition)
    referenced = tuple(a for a in assets if a.key in text and a.bucket in text)
    source = PipelineSource(
        pipeline_name=str(resolver.resolve(properties.get("PipelineName", logical_id.lower()))),
        logical_id=logical_id,
        stack=chosen,
        account=resolver.account,
        region=resolver.region,
        assets=referenced,
    )
    return definition, source
