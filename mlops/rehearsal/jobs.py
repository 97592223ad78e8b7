"""The SageMaker jobs an assembly will start, as SageMaker sees them: every processing,
training and tuning job of every pipeline definition, and every job a schedule creates
(drift and model-quality monitoring), with S3 URIs made concrete for a probe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops.rehearsal.assembly import Stack

EXECUTION_ID = "execution-id"  # what a pipeline execution variable becomes in a probe URI
# A Lambda step's output known only at run time (the incumbent model's URI): not checkable.
RUNTIME_VALUE = "runtime:"


@dataclass(frozen=True)
class S3Access:
    uri: str
    mode: str  # "read" or "write"
    data_type: str = "S3Prefix"  # how SageMaker reads an input: S3Prefix lists first

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    @property
    def key(self) -> str:
        parts = self.uri.removeprefix("s3://").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    def object_key(self) -> str:
        """An object the job reads or writes: the key itself when it names a file."""
        last = self.key.rstrip("/").rsplit("/", 1)[-1]
        if self.mode == "read" and "." in last:
            return self.key
        return f"{self.key.rstrip('/')}/part-00000"


@dataclass
class Job:
    stack: Stack
    where: str  # e.g. "Pipeline TrainingPipeline329DEAEC, step Preprocess"
    role_arn: str
    accesses: list[S3Access] = field(default_factory=list)
    kms_keys: list[str] = field(default_factory=list)  # OutputConfig/OutputDataConfig keys


def _concrete(value: Any, definition: dict[str, Any]) -> str:
    """A pipeline expression made into a probe string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Std:Join" in value:
        join = value["Std:Join"]
        return str(join["On"]).join(_concrete(v, definition) for v in join["Values"])
    if isinstance(value, dict) and "Get" in value:
        path = str(value["Get"])
        if path.startswith("Execution."):
            return EXECUTION_ID
        if path.startswith("Parameters."):
            name = path.removeprefix("Parameters.")
            for p in definition.get("Parameters", []):
                if p["Name"] == name:
                    return str(p.get("DefaultValue", name))
        match = re.fullmatch(
            r"Steps\.([^.]+)\.ProcessingOutputConfig\.Outputs\['([^']+)'\]\..*", path
        )
        if match:
            step = _step(definition, match.group(1))
            for output in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
                if output["OutputName"] == match.group(2):
                    return _concrete(output["S3Output"]["S3Uri"], definition)
        match = re.fullmatch(r"Steps\.([^.]+)\.ModelArtifacts\.S3ModelArtifacts", path)
        if match:
            out = _step(definition, match.group(1))["Arguments"]["OutputDataConfig"]
            return (
                f"{_concrete(out['S3OutputPath'], definition).rstrip('/')}/job/output/model.tar.gz"
            )
        if re.fullmatch(r"Steps\.[^.]+\.OutputParameters\[.*\]", path):
            return f"{RUNTIME_VALUE}{path}"
    return f"unresolved:{json.dumps(value, sort_keys=True)}"


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in definition["Steps"] if s["Name"] == name)


def _processing(job: Job, args: dict[str, Any], definition: dict[str, Any]) -> None:
    for item in args.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if s3:
            uri = _concrete(s3["S3Uri"], definition)
            job.accesses.append(S3Access(uri, "read", s3.get("S3DataType", "S3Prefix")))
    output_config = args.get("ProcessingOutputConfig", {})
    for item in output_config.get("Outputs", []):
        if "S3Output" in item:
            job.accesses.append(S3Access(_concrete(item["S3Output"]["S3Uri"], definition), "write"))
    if output_config.get("KmsKeyId"):
        job.kms_keys.append(str(output_config["KmsKeyId"]))


def _training(job: Job, args: dict[str, Any], definition: dict[str, Any]) -> None:
    for channel in args.get("InputDataConfig", []):
        s3 = channel.get("DataSource", {}).get("S3DataSource")
        if s3:
            uri = _concrete(s3["S3Uri"], definition)
            job.accesses.append(S3Access(uri, "read", s3.get("S3DataType", "S3Prefix")))
    output = args.get("OutputDataConfig", {})
    if "S3OutputPath" in output:
        job.accesses.append(S3Access(_concrete(output["S3OutputPath"], definition), "write"))
    if output.get("KmsKeyId"):
        job.kms_keys.append(str(output["KmsKeyId"]))
    checkpoint = args.get("CheckpointConfig")
    if checkpoint:  # spot training resumes from (reads) and saves to (writes) checkpoints
        uri = _concrete(checkpoint["S3Uri"], definition)
        job.accesses += [S3Access(uri, "read"), S3Access(uri, "write")]
    for uri_key in ("sagemaker_submit_directory",):
        hp = args.get("HyperParameters", {}).get(uri_key)
        # An s3:// archive is downloaded by the container itself (GetObject); a local path
        # (network isolation) arrives through a channel, already counted above.
        if hp and str(json.loads(hp)).startswith("s3://"):
            job.accesses.append(S3Access(json.loads(hp), "read", "S3Object"))


def all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step, those inside a Condition step's branches included."""
    for step in steps:
        yield step
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            yield from all_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))


def pipeline_jobs(stack: Stack) -> Iterator[Job]:
    for logical_id, resource in stack.of_type("AWS::SageMaker::Pipeline"):
        body = stack.resolve(resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
        definition = json.loads(body) if isinstance(body, str) else body
        for step in all_steps(definition["Steps"]):
            args = step.get("Arguments", {})
            where = f"pipeline {logical_id}, step {step['Name']}"
            if step["Type"] == "Processing":
                job = Job(stack, where, str(args["RoleArn"]))
                _processing(job, args, definition)
                yield job
            elif step["Type"] == "Training":
                job = Job(stack, where, str(args["RoleArn"]))
                _training(job, args, definition)
                yield job
            elif step["Type"] == "Tuning":
                training = args["TrainingJobDefinition"]
                job = Job(stack, where, str(training["RoleArn"]))
                _training(job, training, definition)
                yield job


def scheduled_jobs(stack: Stack) -> Iterator[Job]:
    """Jobs EventBridge Scheduler starts through its universal SageMaker target."""
    for logical_id, resource in stack.of_type("AWS::Scheduler::Schedule"):
        target = resource["Properties"]["Target"]
        if not str(target["Arn"]).endswith(":sagemaker:createProcessingJob"):
            continue
        request = json.loads(stack.resolve(target["Input"]))
        job = Job(stack, f"schedule {logical_id}", str(request["RoleArn"]))
        _processing(job, request, {})
        yield job


def all_jobs(stack: Stack) -> Iterator[Job]:
    yield from pipeline_jobs(stack)
    yield from scheduled_jobs(stack)
