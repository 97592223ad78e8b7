"""The run: walk the plan, skip unchosen branches, run each step by type, write the summary."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.clock import Clock, utc_now
from mlops.local import athena, contract
from mlops.local.contract import ContractError
from mlops.local.expressions import EvalContext, ExpressionError
from mlops.local.registry import LocalRegistry, RegistryError
from mlops.local.runner.control import run_condition, run_fail, run_lambda
from mlops.local.runner.images import preflight
from mlops.local.runner.plan import StepNode, parse_steps, resolve_parameters
from mlops.local.runner.processing import run_processing
from mlops.local.runner.records import (
    LocalRunError,
    RunSummary,
    StepFailure,
    StepResult,
    write_summary,
)
from mlops.local.runner.register import run_register
from mlops.local.runner.state import LocalLambda, Progress, RunState
from mlops.local.runner.training import run_training_step, run_tuning


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
    run = RunState(
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


def _run_step(node: StepNode, run: RunState, result: StepResult) -> None:
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


def _outcome(node: StepNode, run: RunState, result: StepResult) -> str:
    if result.status != "Succeeded":
        return f"FAILED: {result.failure_reason}"
    if node.type == "Condition" and node.name in run.chosen:
        return f"ok ({'true: if' if run.chosen[node.name] else 'false: else'} branch)"
    return "ok"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _type_note(node: StepNode) -> str:
    if node.type == "Tuning":
        return ", one local trial at the midpoints of the hyperparameter ranges"
    return ""


def _skip_reason(node: StepNode, results: Mapping[str, StepResult], run: RunState) -> str | None:
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


def _execute(node: StepNode, run: RunState, result: StepResult) -> None:
    handlers: dict[str, Callable[[StepNode, RunState, StepResult], None]] = {
        "Processing": run_processing,
        "Training": run_training_step,
        "Tuning": run_tuning,
        "Lambda": run_lambda,
        "Condition": run_condition,
        "RegisterModel": run_register,
        "Fail": run_fail,
    }
    handlers[node.type](node, run, result)
