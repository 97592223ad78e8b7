"""Training and Tuning steps: one framework-mode training job under the sagemaker-training contract."""

from __future__ import annotations

import math
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.local import contract
from mlops.local.expressions import to_pipeline_string
from mlops.local.runner.plan import StepNode
from mlops.local.runner.records import StepFailure, StepResult
from mlops.local.runner.state import RunState, require_uri, script_failure, step_arguments


@dataclass(frozen=True)
class _TrainingOutcome:
    job_name: str
    model_uri: str
    script_seconds: float
    metrics: list[dict[str, Any]]


def _run_training_job(
    step: str,
    job: Mapping[str, Any],
    hyperparameters: Mapping[str, str],
    job_name: str,
    run: RunState,
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
            require_uri(source.get("S3Uri"), f"channel {channel['ChannelName']}"),
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
            require_uri(checkpoint.get("S3Uri"), "CheckpointConfig.S3Uri"), run.s3_root
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
        reason = script_failure(script, layout.path("/opt/ml/output/failure"))
        raise _TrainingFailed(reason, script.seconds)
    output_path = require_uri(
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


def run_training_step(node: StepNode, run: RunState, result: StepResult) -> None:
    args = step_arguments(node, run)
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


def run_tuning(node: StepNode, run: RunState, result: StepResult) -> None:
    args = step_arguments(node, run)
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
