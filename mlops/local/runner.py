"""Execute a SageMaker pipeline definition on this machine, without Docker.

run_pipeline walks the definition's DAG (Get Steps.X references, DependsOn, and condition
branches: a step inside IfSteps/ElseSteps runs only when its branch is chosen) and runs
each step under the container contract emulated in contract.py: processing and framework
training scripts run as subprocesses of this Python interpreter, in a sandbox under
work_dir/steps/<step>/ where /opt/ml/... lives; S3 is the folder tree s3_root/<bucket>/<key>.
Lambda steps call local functions, RegisterModel writes the LocalRegistry, Fail fails.

Only the SageMaker scikit-learn and XGBoost images can be emulated (the local environment
pins the same library versions); any other image fails the run before anything runs.

The result is a RunSummary, also written to work_dir/run-summary.json. Invalid input to the
runner itself (malformed definition, unknown parameter override) raises LocalRunError;
everything that happens while running (a refused image, a failing script, a Fail step)
ends as a Failed summary with a one-line failure_reason.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.clock import Clock, utc_now
from mlops.local import athena, contract
from mlops.local.contract import ContractError
from mlops.local.expressions import (
    EvalContext,
    ExpressionError,
    PropertyFile,
    evaluate,
    evaluate_conditions,
    referenced_steps,
    to_pipeline_string,
)
from mlops.local.registry import LocalRegistry, RegistryError, group_name_from

Progress = Callable[[str], None]
LocalLambda = Callable[[dict[str, Any]], Mapping[str, Any]]

EMULATED_REPOSITORIES = ("sagemaker-scikit-learn", "sagemaker-xgboost")
_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+)(?::(?P<tag>[A-Za-z0-9._-]+)|@sha256:[0-9a-f]{64})?$"
)
SUPPORTED_TYPES = (
    "Processing",
    "Training",
    "Tuning",
    "Lambda",
    "Condition",
    "RegisterModel",
    "Fail",
)
METRIC_PARTS = ("Statistics", "Constraints", "Report", "PreTrainingReport", "PostTrainingReport")


class LocalRunError(ValueError):
    """The definition or the run's inputs are unusable (say what and what is allowed)."""


class StepFailure(RuntimeError):
    """A step failed; the message is its one-line failure reason."""


@dataclass
class StepResult:
    name: str
    type: str
    status: str = "NotStarted"  # Succeeded | Failed | Skipped | NotStarted
    seconds: float = 0.0
    failure_reason: str | None = None
    script_seconds: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "seconds": round(self.seconds, 3),
        }
        if self.failure_reason is not None:
            data["failure_reason"] = self.failure_reason
        if self.script_seconds is not None:
            data["script_seconds"] = round(self.script_seconds, 3)
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class RunSummary:
    status: str
    pipeline: str
    execution_id: str
    started_at: str
    seconds: float
    steps: list[StepResult]
    registered_model: dict[str, Any] | None
    failure_reason: str | None
    failed_step: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    work_dir: str = ""

    @property
    def script_seconds(self) -> float:
        return sum(s.script_seconds or 0.0 for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "pipeline": self.pipeline,
            "execution_id": self.execution_id,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "script_seconds": round(self.script_seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
            "registered_model": self.registered_model,
            "failure_reason": self.failure_reason,
            "failed_step": self.failed_step,
            "parameters": self.parameters,
            "work_dir": self.work_dir,
        }


@dataclass
class _Node:
    name: str
    type: str
    spec: dict[str, Any]
    index: int
    branch_of: tuple[str, bool] | None = None  # (condition step, True for IfSteps)
    depends: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- definition parsing


def _flatten(steps: list[Any], branch_of: tuple[str, bool] | None, out: list[_Node]) -> None:
    for spec in steps:
        if not isinstance(spec, dict) or "Name" not in spec or "Type" not in spec:
            raise LocalRunError(f"every step needs a Name and a Type, got {str(spec)[:80]}")
        node = _Node(spec["Name"], spec["Type"], spec, len(out), branch_of)
        out.append(node)
        if node.type == "Condition":
            args = spec.get("Arguments", {})
            _flatten(args.get("IfSteps", []), (node.name, True), out)
            _flatten(args.get("ElseSteps", []), (node.name, False), out)


def _dependencies(node: _Node) -> set[str]:
    spec = node.spec
    if node.type == "Condition":
        refs = referenced_steps(spec.get("Arguments", {}).get("Conditions", []))
    else:
        refs = referenced_steps({k: v for k, v in spec.items() if k != "Name"})
    refs |= set(spec.get("DependsOn", []))
    if node.branch_of:
        refs.add(node.branch_of[0])
    refs.discard(node.name)
    return refs


def parse_steps(definition: Mapping[str, Any]) -> list[_Node]:
    """All steps (branch steps included) in an order that respects every dependency."""
    nodes: list[_Node] = []
    _flatten(list(definition.get("Steps", [])), None, nodes)
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LocalRunError(f"step names must be unique; repeated: {', '.join(duplicates)}")
    by_name = {n.name: n for n in nodes}
    for node in nodes:
        node.depends = _dependencies(node)
        unknown = sorted(node.depends - by_name.keys())
        if unknown:
            raise LocalRunError(f"step {node.name} refers to unknown steps: {', '.join(unknown)}")
    ordered: list[_Node] = []
    done: set[str] = set()
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if n.depends <= done]
        if not ready:
            cycle = ", ".join(n.name for n in pending)
            raise LocalRunError(f"the step dependencies form a cycle among: {cycle}")
        node = min(ready, key=lambda n: n.index)  # stable: definition order
        ordered.append(node)
        done.add(node.name)
        pending.remove(node)
    return ordered


def resolve_parameters(
    definition: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides or {}) - declared.keys())
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise LocalRunError(
            f"unknown pipeline parameter(s) {', '.join(unknown)} (defined: {known})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        kind = spec.get("Type", "String")
        if overrides and name in overrides:
            raw = overrides[name]
        elif "DefaultValue" in spec:
            raw = spec["DefaultValue"]
        else:
            raise LocalRunError(f"pipeline parameter {name} has no default; give a value")
        values[name] = _coerce_parameter(name, kind, raw)
    return values


def _coerce_parameter(name: str, kind: str, raw: Any) -> Any:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise LocalRunError(f"pipeline parameter {name} must be a {kind}, got {raw!r}") from None


# ---------------------------------------------------------------- images


def _step_images(node: _Node, ctx: EvalContext) -> list[str]:
    args = node.spec.get("Arguments", {})
    if node.type == "Processing":
        specs = [args.get("AppSpecification", {}).get("ImageUri")]
    elif node.type == "Training":
        specs = [args.get("AlgorithmSpecification", {}).get("TrainingImage")]
    elif node.type == "Tuning":
        definitions = args.get("TrainingJobDefinitions") or [args.get("TrainingJobDefinition", {})]
        specs = [d.get("AlgorithmSpecification", {}).get("TrainingImage") for d in definitions]
    else:
        return []
    images = []
    for spec in specs:
        try:
            images.append(to_pipeline_string(evaluate(spec, ctx)) if spec else "")
        except ExpressionError:
            images.append(str(spec))
    return images


def image_refusal(step: str, image: str) -> str | None:
    """None if the image can be emulated, else the one-line reason."""
    match = _IMAGE.match(image)
    if match and match.group("repository") in EMULATED_REPOSITORIES:
        return None
    allowed = " or ".join(f"{r} images" for r in EMULATED_REPOSITORIES)
    shown = image or "(no image; algorithm resources cannot be emulated)"
    return f"step {step} uses image {shown}; the local runner can only emulate {allowed}"


def preflight(nodes: list[_Node], ctx: EvalContext) -> str | None:
    """The first reason the run cannot start, or None."""
    for node in nodes:
        if node.type not in SUPPORTED_TYPES:
            return (
                f"step {node.name} has type {node.type}; the local runner supports "
                f"{', '.join(SUPPORTED_TYPES)}"
            )
        for image in _step_images(node, ctx):
            refusal = image_refusal(node.name, image)
            if refusal:
                return refusal
        if node.type in ("Training", "Tuning"):
            args = node.spec.get("Arguments", {})
            definitions = (
                [args]
                if node.type == "Training"
                else args.get("TrainingJobDefinitions") or [args.get("TrainingJobDefinition", {})]
            )
            for d in definitions:
                hps = {**d.get("HyperParameters", {}), **d.get("StaticHyperParameters", {})}
                if "sagemaker_program" not in hps or "sagemaker_submit_directory" not in hps:
                    return (
                        f"step {node.name} trains without sagemaker_program and "
                        "sagemaker_submit_directory hyperparameters; the local runner emulates "
                        "framework (script) mode only, not the built-in algorithm"
                    )
    return None


# ---------------------------------------------------------------- the run


@dataclass
class _Run:
    definition: Mapping[str, Any]
    s3_root: Path
    work_dir: Path
    registry: LocalRegistry
    progress: Progress
    local_lambdas: Mapping[str, LocalLambda]
    region: str
    ctx: EvalContext
    pipeline: str
    execution_id: str
    clock: Clock
    catalog: athena.LocalCatalog | None = None
    chosen: dict[str, bool] = field(default_factory=dict)
    registered: dict[str, Any] | None = None

    def job_name(self, step: str) -> str:
        raw = f"pipelines-{self.execution_id}-{step}"
        return re.sub(r"[^A-Za-z0-9-]", "-", raw)[:63].rstrip("-")

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:000000000000:{kind}/{name}"

    def sandbox(self, step: str) -> Path:
        path = self.work_dir / "steps" / step
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path


def run_pipeline(
    definition: Mapping[str, Any],
    *,
    s3_root: Path,
    work_dir: Path,
    registry: LocalRegistry,
    parameters: Mapping[str, Any] | None = None,
    progress: Progress = print,
    local_lambdas: Mapping[str, LocalLambda] | None = None,
    pipeline_name: str = "local-pipeline",
    region: str = "us-east-1",
    execution_id: str | None = None,
    clock: Clock = utc_now,
    catalog: athena.LocalCatalog | None = None,
    stop_after: str | None = None,
) -> RunSummary:
    """Run every step of `definition` locally; write and return the run summary.

    local_lambdas: step name, function name or function ARN -> callable(arguments) -> dict.
    catalog: the Glue tables an Athena dataset definition input may query (mlops/local/athena).
    stop_after: end the run (status Stopped) once this step has succeeded, e.g. to check
    what Preprocess makes of some data without training on it.
    """
    started = time.perf_counter()
    started_at = clock().astimezone(UTC)
    nodes = parse_steps(definition)
    values = resolve_parameters(definition, parameters)
    if stop_after is not None and stop_after not in {n.name for n in nodes}:
        known = ", ".join(n.name for n in nodes)
        raise LocalRunError(f"stop_after: no step {stop_after!r} (steps: {known})")
    work_dir = Path(work_dir).resolve()
    s3_root = Path(s3_root).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    s3_root.mkdir(parents=True, exist_ok=True)
    exec_id = execution_id or secrets.token_hex(6)
    ctx = EvalContext(
        parameters=values,
        execution={
            "PipelineName": pipeline_name,
            "PipelineExecutionId": exec_id,
            "PipelineExecutionArn": (
                f"arn:aws:sagemaker:{region}:000000000000:pipeline/{pipeline_name}/execution/{exec_id}"
            ),
            "PipelineArn": f"arn:aws:sagemaker:{region}:000000000000:pipeline/{pipeline_name}",
            "StartDateTime": started_at.isoformat(timespec="seconds"),
            "CurrentDateTime": started_at.isoformat(timespec="seconds"),
        },
        read_json=lambda uri: _read_json(uri, s3_root),
    )
    run = _Run(
        definition,
        s3_root,
        work_dir,
        registry,
        progress,
        local_lambdas or {},
        region,
        ctx,
        pipeline_name,
        exec_id,
        clock,
        catalog,
    )
    results = {n.name: StepResult(n.name, n.type) for n in nodes}
    failure: tuple[str | None, str] | None = None
    stopped = False
    progress(f"Pipeline {pipeline_name}: execution {exec_id}, {len(nodes)} steps, in {work_dir}")

    refusal = preflight(nodes, ctx)
    if refusal:
        failure = (None, refusal)
        progress(f"ERROR: {refusal}")
    total = len(nodes)
    for position, node in enumerate(nodes, start=1):
        if failure:
            break
        result = results[node.name]
        label = f"[{position}/{total}] {node.name}"
        skip = _skip_reason(node, results, run)
        if skip:
            result.status, result.note = "Skipped", skip
            progress(f"{label} ... skipped ({skip})")
            continue
        progress(f"{label} ({node.type}{_type_note(node)}) running")
        _run_step(node, run, result)
        progress(f"{label} ... {result.seconds:.1f} s {_outcome(node, run, result)}")
        if result.status == "Failed":
            failure = (node.name, result.failure_reason or "failed")
        elif node.name == stop_after:
            stopped = True
            progress(f"stopped after {node.name} (stop_after)")
            break

    seconds = time.perf_counter() - started
    summary = RunSummary(
        status="Failed" if failure else "Stopped" if stopped else "Succeeded",
        pipeline=pipeline_name,
        execution_id=exec_id,
        started_at=started_at.isoformat(timespec="seconds"),
        seconds=seconds,
        steps=[results[n.name] for n in nodes],
        registered_model=run.registered,
        failure_reason=None,
        parameters=values,
        work_dir=str(work_dir),
    )
    if failure:
        step, reason = failure
        summary.failed_step = step
        summary.failure_reason = f"step {step} failed: {reason}" if step else reason
    write_summary(summary, work_dir / "run-summary.json")
    progress(
        f"{summary.status} in {seconds:.1f} s"
        + (f": {summary.failure_reason}" if summary.failure_reason else "")
        + f" (summary: {work_dir / 'run-summary.json'})"
    )
    return summary


def _run_step(node: _Node, run: _Run, result: StepResult) -> None:
    """Run one step; every failure becomes the step's one-line reason, never a traceback
    that would lose the run's record."""
    started = time.perf_counter()
    run.ctx.execution = {**run.ctx.execution, "CurrentDateTime": _iso(run.clock())}
    try:
        _execute(node, run, result)
        result.status = "Succeeded"
    except (StepFailure, ExpressionError, ContractError, RegistryError) as exc:
        result.status, result.failure_reason = "Failed", str(exc)
    except (KeyError, TypeError, ValueError, IndexError, OSError) as exc:
        # A malformed step or a filesystem problem.
        result.status, result.failure_reason = "Failed", f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started


def _outcome(node: _Node, run: _Run, result: StepResult) -> str:
    if result.status != "Succeeded":
        return f"FAILED: {result.failure_reason}"
    if node.type == "Condition" and node.name in run.chosen:
        return f"ok ({'true: if' if run.chosen[node.name] else 'false: else'} branch)"
    return "ok"


def write_summary(summary: RunSummary, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=str) + "\n")
    tmp.replace(path)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _type_note(node: _Node) -> str:
    if node.type == "Tuning":
        return ", one local trial at the midpoints of the hyperparameter ranges"
    return ""


def _skip_reason(node: _Node, results: Mapping[str, StepResult], run: _Run) -> str | None:
    if node.branch_of:
        condition, branch = node.branch_of
        chosen = run.chosen.get(condition)
        if chosen is not None and chosen != branch:
            return f"{condition} chose the {'if' if chosen else 'else'} branch"
    skipped = sorted(d for d in node.depends if results[d].status == "Skipped")
    if skipped:
        return f"depends on skipped {', '.join(skipped)}"
    return None


def _read_json(uri: str, s3_root: Path) -> Any:
    path = contract.local_path_for_uri(uri, s3_root)
    if not path.is_file():
        raise ExpressionError(f"no JSON object at {uri}")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ExpressionError(f"{uri} is not valid JSON: {exc}") from None


def _execute(node: _Node, run: _Run, result: StepResult) -> None:
    handlers: dict[str, Callable[[_Node, _Run, StepResult], None]] = {
        "Processing": _run_processing,
        "Training": _run_training_step,
        "Tuning": _run_tuning,
        "Lambda": _run_lambda,
        "Condition": _run_condition,
        "RegisterModel": _run_register,
        "Fail": _run_fail,
    }
    handlers[node.type](node, run, result)


def _arguments(node: _Node, run: _Run) -> dict[str, Any]:
    args = evaluate(node.spec.get("Arguments", {}), run.ctx)
    if not isinstance(args, dict):
        raise StepFailure("Arguments must be an object")
    return args


def _uri(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise StepFailure(f"{what} must be a URI string, got {value!r}")
    return value


# ---------------------------------------------------------------- processing


def _run_processing(node: _Node, run: _Run, result: StepResult) -> None:
    args = _arguments(node, run)
    sandbox = run.sandbox(node.name)
    job_name = run.job_name(node.name)
    for item in args.get("ProcessingInputs", []):
        if "DatasetDefinition" in item:
            _dataset_input(item, run, sandbox, job_name)
            continue
        if "S3Input" not in item:
            raise StepFailure(
                f"input {item.get('InputName')} is neither an S3Input nor a DatasetDefinition"
            )
        s3 = item["S3Input"]
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailure(
                f"input {item.get('InputName')}: only S3DataType S3Prefix is emulated"
            )
        local = contract.sandbox_path(s3["LocalPath"], sandbox)
        contract.download(
            _uri(s3.get("S3Uri"), f"input {item.get('InputName')}"), local, run.s3_root
        )
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        if "S3Output" not in item:
            raise StepFailure(f"output {item.get('OutputName')}: only S3 outputs can be emulated")
        contract.sandbox_path(item["S3Output"]["LocalPath"], sandbox).mkdir(
            parents=True, exist_ok=True
        )
    contract.write_processing_config(sandbox, job_name, args)
    app = args.get("AppSpecification", {})
    command = contract.container_command(
        app.get("ContainerEntrypoint", []), app.get("ContainerArguments", []), sandbox
    )
    env = contract.base_environment(run.region)
    env.update(
        {
            k: contract.reroot(to_pipeline_string(v), sandbox)
            for k, v in args.get("Environment", {}).items()
        }
    )
    timeout = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    script = contract.run_script(
        command, cwd=sandbox, env=env, log_dir=sandbox / "logs", timeout=timeout
    )
    result.script_seconds = script.seconds
    if script.returncode != 0:
        raise StepFailure(_script_failure(script, sandbox / "opt/ml/output/message"))
    for item in outputs:
        s3 = item["S3Output"]
        local = contract.sandbox_path(s3["LocalPath"], sandbox)
        contract.upload(
            local, _uri(s3.get("S3Uri"), f"output {item.get('OutputName')}"), run.s3_root
        )
    run.ctx.property_files[node.name] = _load_property_files(node, outputs, sandbox)
    run.ctx.steps[node.name] = {
        **args,
        "ProcessingJobName": job_name,
        "ProcessingJobArn": run.arn("processing-job", job_name),
        "ProcessingJobStatus": "Completed",
        "ExitMessage": "",
    }


def _dataset_input(item: Mapping[str, Any], run: _Run, sandbox: Path, job_name: str) -> None:
    """An Athena dataset definition: the query runs in the local Athena (DuckDB over the local
    catalog), its result lands under OutputS3Uri, and the job gets it at LocalPath, as
    SageMaker runs it before the job starts."""
    name = item.get("InputName")
    dataset = item["DatasetDefinition"]
    query = dataset.get("AthenaDatasetDefinition")
    if query is None:
        raise StepFailure(f"input {name}: only Athena dataset definitions can be emulated")
    if run.catalog is None:
        raise StepFailure(
            f"input {name} queries Athena, but this run has no local Glue catalog "
            "(`mlops local run` builds it from the assembly and the local feature store)"
        )
    output_uri = _uri(query.get("OutputS3Uri"), f"input {name} OutputS3Uri")
    try:
        athena.write_result(
            run.catalog,
            str(query.get("Catalog", "")),
            str(query.get("Database", "")),
            str(query.get("QueryString", "")),
            contract.local_path_for_uri(output_uri, run.s3_root),
            output_format=str(query.get("OutputFormat", "")),
            compression=query.get("OutputCompression"),
            file_stem=f"{job_name}-{name}",
        )
    except athena.AthenaQueryError as error:
        raise StepFailure(f"input {name}: {error}") from None
    local = contract.sandbox_path(
        _uri(dataset.get("LocalPath"), f"input {name} LocalPath"), sandbox
    )
    contract.download(output_uri, local, run.s3_root)


def _script_failure(script: contract.ScriptResult, message_file: Path) -> str:
    """A script's own ERROR line stands alone; anything else points at the full log."""
    reason = contract.failure_reason(script, message_file)
    text = script.stderr.read_text(errors="replace")
    if not any(line.strip().startswith("ERROR:") for line in text.splitlines()):
        reason += f" (log: {script.stderr})"
    return reason


def _load_property_files(
    node: _Node, outputs: list[dict[str, Any]], sandbox: Path
) -> dict[str, PropertyFile]:
    local_by_output = {
        o.get("OutputName"): contract.sandbox_path(o["S3Output"]["LocalPath"], sandbox)
        for o in outputs
    }
    loaded: dict[str, PropertyFile] = {}
    for spec in node.spec.get("PropertyFiles", []):
        name, output, file_path = spec["PropertyFileName"], spec["OutputName"], spec["FilePath"]
        folder = local_by_output.get(output)
        if folder is None:
            loaded[name] = PropertyFile(error=f"the step has no output named {output!r}")
            continue
        path = folder / file_path
        try:
            loaded[name] = PropertyFile(data=json.loads(path.read_text()))
        except FileNotFoundError:
            loaded[name] = PropertyFile(error=f"{file_path} was not written to output {output!r}")
        except ValueError as exc:
            loaded[name] = PropertyFile(error=f"{file_path} is not valid JSON: {exc}")
    return loaded


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class _TrainingOutcome:
    job_name: str
    model_uri: str
    script_seconds: float
    metrics: list[dict[str, Any]]


def _run_training_job(
    step: str, job: Mapping[str, Any], hyperparameters: Mapping[str, str], job_name: str, run: _Run
) -> _TrainingOutcome:
    """One framework-mode training job under the sagemaker-training toolkit's contract."""
    sandbox = run.sandbox(step)
    layout = contract.TrainingLayout(sandbox)
    decoded = contract.decode_hyperparameters(hyperparameters)
    program = str(decoded["sagemaker_program"])
    submit_uri = str(decoded["sagemaker_submit_directory"])
    channels = list(job.get("InputDataConfig", []))
    for channel in channels:
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None:
            raise StepFailure(
                f"channel {channel.get('ChannelName')}: only S3 data sources are emulated"
            )
        contract.download(
            _uri(source.get("S3Uri"), f"channel {channel['ChannelName']}"),
            layout.channel_dir(channel["ChannelName"]),
            run.s3_root,
        )
    submit = (
        layout.path(submit_uri)  # inside a channel, as network-isolated jobs get their code
        if submit_uri.startswith("/opt/ml/")
        else contract.local_path_for_uri(submit_uri, run.s3_root)
    )
    if submit.is_dir():
        shutil.copytree(submit, layout.code_dir, dirs_exist_ok=True)
    elif submit.is_file():
        contract.extract_tar(submit, layout.code_dir)
    else:
        raise StepFailure(
            f"sagemaker_submit_directory {submit_uri} does not exist (local {submit})"
        )
    if not (layout.code_dir / program).is_file():
        raise StepFailure(f"sagemaker_program {program} is not in {submit_uri}")
    for folder in (
        layout.model_dir,
        layout.output_data_dir,
        layout.path("/opt/ml/output/intermediate"),
    ):
        folder.mkdir(parents=True, exist_ok=True)
    instance_type = to_pipeline_string(job.get("ResourceConfig", {}).get("InstanceType", "local"))
    contract.write_training_config(
        layout, hyperparameters=hyperparameters, channels=channels, instance_type=instance_type
    )
    checkpoint = job.get("CheckpointConfig")
    checkpoint_dir: Path | None = None
    if checkpoint:
        checkpoint_dir = layout.path(checkpoint.get("LocalPath", "/opt/ml/checkpoints"))
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        existing = contract.local_path_for_uri(
            _uri(checkpoint.get("S3Uri"), "CheckpointConfig.S3Uri"), run.s3_root
        )
        if existing.is_dir():
            shutil.copytree(existing, checkpoint_dir, dirs_exist_ok=True)
    env = contract.base_environment(run.region)
    env.update(
        contract.training_environment(
            layout,
            job_name=job_name,
            hyperparameters=decoded,
            channels=[c["ChannelName"] for c in channels],
            program=program,
            submit_dir_uri=submit_uri,
            instance_type=instance_type,
            checkpoint_dir=checkpoint_dir,
        )
    )
    env.update(
        {
            k: contract.reroot(to_pipeline_string(v), sandbox)
            for k, v in job.get("Environment", {}).items()
        }
    )
    env["PYTHONPATH"] = str(layout.code_dir)
    command = [
        sys.executable,
        program,
        *contract.to_cmd_args(contract.user_hyperparameters(decoded)),
    ]
    timeout = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    script = contract.run_script(
        command, cwd=layout.code_dir, env=env, log_dir=sandbox / "logs", timeout=timeout
    )
    if script.returncode != 0:
        reason = _script_failure(script, layout.path("/opt/ml/output/failure"))
        raise _TrainingFailed(reason, script.seconds)
    output_path = _uri(
        job.get("OutputDataConfig", {}).get("S3OutputPath"), "OutputDataConfig.S3OutputPath"
    )
    model_uri = contract.join_uri(output_path, job_name, "output", "model.tar.gz")
    packaged = sandbox / "model.tar.gz"
    contract.package_dir(layout.model_dir, packaged)
    contract.put_file(packaged, model_uri, run.s3_root)
    if any(layout.output_data_dir.iterdir()):
        packaged_output = sandbox / "output.tar.gz"
        contract.package_dir(layout.output_data_dir, packaged_output)
        contract.put_file(
            packaged_output,
            contract.join_uri(output_path, job_name, "output", "output.tar.gz"),
            run.s3_root,
        )
    if checkpoint and checkpoint_dir is not None:
        contract.upload(checkpoint_dir, checkpoint["S3Uri"], run.s3_root)
    metrics = _final_metrics(
        job.get("AlgorithmSpecification", {}).get("MetricDefinitions", []), script
    )
    return _TrainingOutcome(job_name, model_uri, script.seconds, metrics)


class _TrainingFailed(StepFailure):
    def __init__(self, reason: str, script_seconds: float) -> None:
        super().__init__(reason)
        self.script_seconds = script_seconds


def _final_metrics(
    definitions: list[Mapping[str, Any]], script: contract.ScriptResult
) -> list[dict[str, Any]]:
    """Apply MetricDefinitions regexes to the logs, as SageMaker does; last match wins."""
    if not definitions:
        return []
    text = (
        script.stdout.read_text(errors="replace") + "\n" + script.stderr.read_text(errors="replace")
    )
    metrics = []
    for definition in definitions:
        try:
            matches = re.findall(definition["Regex"], text)
        except re.error:
            continue
        if matches:
            last = matches[-1]
            value = last[0] if isinstance(last, tuple) else last
            try:
                metrics.append({"MetricName": definition["Name"], "Value": float(value)})
            except ValueError:
                continue
    return metrics


def _hyperparameter_strings(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): to_pipeline_string(v) for k, v in values.items()}


def _run_training_step(node: _Node, run: _Run, result: StepResult) -> None:
    args = _arguments(node, run)
    job_name = run.job_name(node.name)
    try:
        outcome = _run_training_job(
            node.name, args, _hyperparameter_strings(args.get("HyperParameters", {})), job_name, run
        )
    except _TrainingFailed as exc:
        result.script_seconds = exc.script_seconds
        raise
    result.script_seconds = outcome.script_seconds
    run.ctx.steps[node.name] = {
        **args,
        "TrainingJobName": job_name,
        "TrainingJobArn": run.arn("training-job", job_name),
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": outcome.model_uri},
        "FinalMetricDataList": outcome.metrics,
    }


def range_midpoints(ranges: Mapping[str, Any]) -> dict[str, str]:
    """One value per tuned hyperparameter: the middle of its range (in log space for
    Logarithmic scaling), the middle item of a categorical list."""
    chosen: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []):
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        logarithmic = spec.get("ScalingType") == "Logarithmic" and low > 0
        value = math.sqrt(low * high) if logarithmic else (low + high) / 2
        chosen[spec["Name"]] = format(value, ".10g")
    for spec in ranges.get("IntegerParameterRanges", []):
        low, high = int(spec["MinValue"]), int(spec["MaxValue"])
        logarithmic = spec.get("ScalingType") == "Logarithmic" and low > 0
        value = math.sqrt(low * high) if logarithmic else (low + high) / 2
        chosen[spec["Name"]] = str(round(value))
    for spec in ranges.get("CategoricalParameterRanges", []):
        values = list(spec["Values"])
        chosen[spec["Name"]] = str(values[(len(values) - 1) // 2])
    return chosen


def _run_tuning(node: _Node, run: _Run, result: StepResult) -> None:
    args = _arguments(node, run)
    config = args.get("HyperParameterTuningJobConfig", {})
    job = (args.get("TrainingJobDefinitions") or [args.get("TrainingJobDefinition", {})])[0]
    ranges = job.get("HyperParameterRanges") or config.get("ParameterRanges", {})
    tuned = range_midpoints(ranges)
    hyperparameters = {**_hyperparameter_strings(job.get("StaticHyperParameters", {})), **tuned}
    tuning_name = run.job_name(node.name)[:32].rstrip("-")
    job_name = f"{tuning_name}-001-local"
    try:
        outcome = _run_training_job(node.name, job, hyperparameters, job_name, run)
    except _TrainingFailed as exc:
        result.script_seconds = exc.script_seconds
        raise
    result.script_seconds = outcome.script_seconds
    result.note = "one local trial at the midpoints: " + ", ".join(
        f"{k}={v}" for k, v in sorted(tuned.items())
    )
    objective = config.get("HyperParameterTuningJobObjective", {})
    summary: dict[str, Any] = {
        "TrainingJobName": job_name,
        "TrainingJobArn": run.arn("training-job", job_name),
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": tuned,
    }
    metric = next(
        (m for m in outcome.metrics if m["MetricName"] == objective.get("MetricName")), None
    )
    if metric is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective.get("Type", "Maximize"),
            "MetricName": metric["MetricName"],
            "Value": metric["Value"],
        }
    run.ctx.steps[node.name] = {
        **args,
        "HyperParameterTuningJobName": tuning_name,
        "HyperParameterTuningJobStatus": "Completed",
        "TrainingJobSummaries": [summary],
        "BestTrainingJob": summary,
    }


# ---------------------------------------------------------------- lambda, condition, fail


def _function_keys(node: _Node, run: _Run) -> list[str]:
    keys = [node.name]
    arn = node.spec.get("FunctionArn")
    if arn is not None:
        try:
            value = to_pipeline_string(evaluate(arn, run.ctx))
        except ExpressionError:
            value = ""
        if value:
            keys.append(value)
            keys.append(value.split(":function:")[-1].split(":")[0])
    return keys


def _coerce_output(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        return to_pipeline_string(value)
    except (TypeError, ValueError):
        raise StepFailure(f"Lambda output {name} is not a {kind}: {value!r}") from None


def _run_lambda(node: _Node, run: _Run, result: StepResult) -> None:
    args = _arguments(node, run)
    keys = _function_keys(node, run)
    function = next((run.local_lambdas[k] for k in keys if k in run.local_lambdas), None)
    if function is None:
        raise StepFailure(
            f"no local implementation for Lambda step {node.name} (looked up {', '.join(keys)})"
        )
    started = time.perf_counter()
    try:
        returned = function(args)
    except Exception as exc:  # the function's own error is the step's failure reason
        raise StepFailure(f"Lambda function raised {type(exc).__name__}: {exc}") from exc
    result.script_seconds = time.perf_counter() - started
    if not isinstance(returned, Mapping):
        raise StepFailure(f"Lambda function returned {type(returned).__name__}, not an object")
    outputs: dict[str, Any] = {}
    for spec in node.spec.get("OutputParameters", []):
        name = spec["OutputName"]
        if name not in returned:
            raise StepFailure(
                f"Lambda function returned no output {name!r} (got {sorted(returned)})"
            )
        outputs[name] = _coerce_output(name, spec.get("OutputType", "String"), returned[name])
    run.ctx.steps[node.name] = {"OutputParameters": outputs}


def _run_condition(node: _Node, run: _Run, result: StepResult) -> None:
    conditions = node.spec.get("Arguments", {}).get("Conditions", [])
    outcome = evaluate_conditions(conditions, run.ctx)
    run.chosen[node.name] = outcome
    result.note = f"outcome {str(outcome).lower()}"
    run.ctx.steps[node.name] = {"Outcome": outcome}


def _run_fail(node: _Node, run: _Run, result: StepResult) -> None:
    message = evaluate(node.spec.get("Arguments", {}).get("ErrorMessage", ""), run.ctx)
    raise StepFailure(to_pipeline_string(message) or "the pipeline reached a Fail step")


# ---------------------------------------------------------------- register


def _metric_documents(
    model_metrics: Mapping[str, Any], run: _Run
) -> tuple[dict[str, Any], dict[str, Path]]:
    documents: dict[str, Any] = {}
    files: dict[str, Path] = {}
    for kind, parts in sorted(model_metrics.items()):
        if not isinstance(parts, Mapping):
            continue
        for part in METRIC_PARTS:
            source = parts.get(part)
            if not isinstance(source, Mapping) or "S3Uri" not in source:
                continue
            uri = _uri(source["S3Uri"], f"ModelMetrics.{kind}.{part}.S3Uri")
            path = contract.local_path_for_uri(uri, run.s3_root)
            if not path.is_file():
                raise StepFailure(f"ModelMetrics.{kind}.{part}: no file at {uri}")
            try:
                documents.setdefault(kind, {})[part] = json.loads(path.read_text())
            except ValueError as exc:
                raise StepFailure(f"ModelMetrics.{kind}.{part}: {uri} is not JSON: {exc}") from None
            files[f"{kind}-{part}"] = path
    return documents, files


def _run_register(node: _Node, run: _Run, result: StepResult) -> None:
    args = _arguments(node, run)
    group = group_name_from(to_pipeline_string(args.get("ModelPackageGroupName", "")))
    containers = args.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise StepFailure("InferenceSpecification.Containers is empty")
    container = containers[0]
    model_url = _uri(container.get("ModelDataUrl"), "ModelDataUrl")
    model_path = contract.local_path_for_uri(model_url, run.s3_root)
    if not model_path.is_file():
        raise StepFailure(f"model artifact {model_url} does not exist (local {model_path})")
    metrics, files = _metric_documents(args.get("ModelMetrics", {}), run)
    package = run.registry.register(
        group=group,
        model_data=model_path,
        model_data_url=model_url,
        status=to_pipeline_string(args.get("ModelApprovalStatus", "PendingManualApproval")),
        image=to_pipeline_string(container.get("Image", "")),
        metrics=metrics,
        metric_files=files,
        description=to_pipeline_string(args.get("ModelPackageDescription", "")),
        source={
            "pipeline": run.pipeline,
            "execution_id": run.execution_id,
            "step": node.name,
            "customer_metadata": args.get("CustomerMetadataProperties", {}),
        },
    )
    run.ctx.steps[node.name] = {
        **args,
        "ModelPackageArn": package.model_package_arn,
        "ModelPackageVersion": package.version,
    }
    run.registered = {
        "model_package_group_name": package.model_package_group_name,
        "version": package.version,
        "status": package.status,
        "model_package_arn": package.model_package_arn,
        "model_data_url": package.model_data_url,
        "model_data_path": package.model_data_path,
        "metrics": metrics.get("ModelQuality", {}).get("Statistics", {}),
    }
    result.note = f"{group} v{package.version} ({package.status})"
