"""The Train step, a training job or a tuning job, and where its candidate model lands."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

from mlops.pipeline_definition import images
from mlops.pipeline_definition.contract import (
    CHECKPOINT_DIR,
    METRIC_DEFINITIONS,
    OBJECTIVE_METRIC,
    STEP_PREPROCESS,
    STEP_TRAIN,
)
from mlops.pipeline_definition.expressions import (
    Value,
    execution_variable,
    join,
    model_artifacts_uri,
    processing_output_uri,
    tuning_training_job_name,
)
from mlops.pipeline_definition.job_step import has_instance_storage, job_step
from mlops.pipeline_definition.parameters import PipelineParameters
from mlops.pipeline_definition.spec import (
    CategoricalRange,
    HyperparameterRange,
    IntegerRange,
    TrainingPipelineSpec,
    TuningSpec,
)


def encode_hyperparameters(values: Mapping[str, str | int | float]) -> dict[str, str]:
    """Framework-mode encoding, as the SDK does: every value JSON-encoded ('"train.py"')."""
    return {str(k): json.dumps(values[k]) for k in sorted(values)}


def _framework_hyperparameters(spec: TrainingPipelineSpec) -> dict[str, str | int | float]:
    return {
        **spec.hyperparameters,
        "sagemaker_program": "train.py",
        # A local path, not the S3 URI: the container runs with network isolation and finds
        # the archive in the `code` channel (the toolkit extracts a local tar.gz as it would
        # a downloaded one).
        "sagemaker_submit_directory": training_code_path(spec),
        "sagemaker_region": spec.region,
        "sagemaker_container_log_level": 20,
    }


def _model_output_path(spec: TrainingPipelineSpec) -> str:
    # Static (no execution id): training job names are unique, the tuning step's best-model
    # URI is derived from it, and a cached step's artefacts keep resolving.
    return f"s3://{spec.artifact_bucket}/{spec.s3_prefix}/models"


CODE_CHANNEL = "code"


def training_code_path(spec: TrainingPipelineSpec) -> str:
    """Where the step-scripts archive lands in a training container: its `code` channel."""
    return f"/opt/ml/input/data/{CODE_CHANNEL}/{posixpath.basename(spec.code_uri)}"


TRAINING_CHANNELS = (
    ("train", "text/csv"),
    ("validation", "text/csv"),
    ("baseline", "application/json"),
)


def _training_job_core(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
    """Fields shared by CreateTrainingJob and a tuning job's TrainingJobDefinition."""
    resource: dict[str, Any] = {
        "InstanceCount": spec.training_instance_count,
        "InstanceType": params.training_instance_type.ref,
        "VolumeSizeInGB": spec.training_volume_gb,
    }
    output: dict[str, Any] = {"S3OutputPath": _model_output_path(spec)}
    if spec.kms_key_arn:
        output["KmsKeyId"] = spec.kms_key_arn
        if not has_instance_storage(spec.training_instance_type):
            resource["VolumeKmsKeyId"] = spec.kms_key_arn
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.training_max_runtime_seconds}
    core: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": images.xgboost_image_uri(spec.region),
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": n, "Regex": r} for n, r in METRIC_DEFINITIONS],
        },
        "RoleArn": spec.role_arn,
        # The baseline channel only travels along: train.py puts baseline.json into the
        # model, so every served model.tar.gz carries the statistics drift compares against.
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "ContentType": content_type,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": processing_output_uri(STEP_PREPROCESS, channel),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel, content_type in TRAINING_CHANNELS
        ]
        + [
            {
                "ChannelName": CODE_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": spec.code_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        # Inputs and the model travel through SageMaker's channels: no network needed.
        "EnableNetworkIsolation": True,
        "OutputDataConfig": output,
        "ResourceConfig": resource,
        "StoppingCondition": stopping,
    }
    if spec.use_spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_seconds
        core["EnableManagedSpotTraining"] = True
        # Per execution: a new job must not resume from an older run's checkpoints.
        core["CheckpointConfig"] = {
            "S3Uri": join(
                [
                    "s3:/",
                    spec.artifact_bucket,
                    spec.s3_prefix,
                    spec.checkpoint_prefix,
                    execution_variable("PipelineExecutionId"),
                ],
                on="/",
            ),
            "LocalPath": CHECKPOINT_DIR,
        }
    return core


def training_step(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
    arguments = _training_job_core(spec, params)
    arguments["HyperParameters"] = encode_hyperparameters(_framework_hyperparameters(spec))
    return job_step(spec, STEP_TRAIN, "Training", arguments)


def _parameter_ranges(ranges: tuple[HyperparameterRange, ...]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for r in ranges:
        if isinstance(r, CategoricalRange):
            # Framework mode: categorical values are JSON-encoded like static ones.
            out["CategoricalParameterRanges"].append(
                {"Name": r.name, "Values": [json.dumps(v) for v in r.values]}
            )
            continue
        key = (
            "IntegerParameterRanges" if isinstance(r, IntegerRange) else "ContinuousParameterRanges"
        )
        out[key].append(
            {
                "Name": r.name,
                "MinValue": str(r.min_value),
                "MaxValue": str(r.max_value),
                "ScalingType": r.scaling,
            }
        )
    return {k: v for k, v in out.items() if v}


def tuning_step(
    spec: TrainingPipelineSpec, params: PipelineParameters, tuning: TuningSpec
) -> dict[str, Any]:
    tuned = {r.name for r in tuning.ranges}
    static = {k: v for k, v in _framework_hyperparameters(spec).items() if k not in tuned}
    definition = _training_job_core(spec, params)
    definition["StaticHyperParameters"] = encode_hyperparameters(static)
    arguments = {
        "HyperParameterTuningJobConfig": {
            "Strategy": tuning.strategy,
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": OBJECTIVE_METRIC,
            },
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": tuning.max_jobs,
                "MaxParallelTrainingJobs": tuning.max_parallel_jobs,
            },
            "ParameterRanges": _parameter_ranges(tuning.ranges),
            "TrainingJobEarlyStoppingType": tuning.early_stopping,
        },
        "TrainingJobDefinition": definition,
    }
    return job_step(spec, STEP_TRAIN, "Tuning", arguments)


def candidate_model_uri(spec: TrainingPipelineSpec) -> Value:
    """S3 URI of the candidate model.tar.gz: the training job's, or the best tuning job's."""
    if spec.tuning is None:
        return model_artifacts_uri(STEP_TRAIN)
    # A tuning step's TrainingJobSummaries have no artefact path: rebuild it the SDK's way.
    return join(
        [_model_output_path(spec), tuning_training_job_name(STEP_TRAIN, 0), "output/model.tar.gz"],
        on="/",
    )
