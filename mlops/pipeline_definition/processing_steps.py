"""Processing steps: S3 and Athena inputs, per-execution outputs, the bootstrap entrypoint."""

from __future__ import annotations

from typing import Any

from mlops.pipeline_definition.contract import BOOTSTRAP, CODE_DIR, JOINED_DIR, STEP_PREPROCESS
from mlops.pipeline_definition.expressions import Expression, Value, execution_variable, join
from mlops.pipeline_definition.job_step import has_instance_storage, job_step
from mlops.pipeline_definition.offline_join import join_query
from mlops.pipeline_definition.parameters import PipelineParameters
from mlops.pipeline_definition.spec import TrainingPipelineSpec


def _s3_input(input_name: str, s3_uri: Value, local_path: str) -> dict[str, Any]:
    return {
        "InputName": input_name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": s3_uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def joined_input(spec: TrainingPipelineSpec) -> dict[str, Any]:
    """The offline-store join as a dataset definition: SageMaker runs the query in Athena,
    writes the result under OutputS3Uri and hands the files to the job at LocalPath."""
    athena: dict[str, Any] = {
        "Catalog": spec.offline_tables.catalog,
        "Database": spec.offline_tables.database,
        "QueryString": join_query(spec.offline_tables),
        "OutputS3Uri": _processing_output_path(spec, STEP_PREPROCESS, "joined"),
        "OutputFormat": "JSON",
        "OutputCompression": "GZIP",
    }
    if spec.athena_workgroup:
        athena["WorkGroup"] = spec.athena_workgroup
    if spec.kms_key_arn:
        athena["KmsKeyId"] = spec.kms_key_arn
    return {
        "InputName": "joined",
        "AppManaged": False,
        "DatasetDefinition": {
            "AthenaDatasetDefinition": athena,
            "LocalPath": JOINED_DIR,
            "DataDistributionType": "FullyReplicated",
            "InputMode": "File",
        },
    }


def _processing_output_path(spec: TrainingPipelineSpec, step: str, output: str) -> Expression:
    # Per execution, so runs never mix files; caching ignores outputs (not in the cache key).
    return join(
        [
            "s3:/",
            spec.artifact_bucket,
            spec.s3_prefix,
            execution_variable("PipelineExecutionId"),
            step,
            output,
        ],
        on="/",
    )


def processing_step(
    spec: TrainingPipelineSpec,
    params: PipelineParameters,
    *,
    name: str,
    image_uri: str,
    script: str,
    inputs: list[tuple[str, Value, str]],
    outputs: list[tuple[str, str]],
    arguments: list[Value],
    instance_count: Value,
    dataset_inputs: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    output_config: dict[str, Any] = {
        "Outputs": [
            {
                "OutputName": output_name,
                "AppManaged": False,
                "S3Output": {
                    "S3Uri": _processing_output_path(spec, name, output_name),
                    "LocalPath": local_path,
                    "S3UploadMode": "EndOfJob",
                },
            }
            for output_name, local_path in outputs
        ]
    }
    cluster: dict[str, Any] = {
        "InstanceCount": instance_count,
        "InstanceType": params.processing_instance_type.ref,
        "VolumeSizeInGB": spec.processing_volume_gb,
    }
    if spec.kms_key_arn:
        output_config["KmsKeyId"] = spec.kms_key_arn
        if not has_instance_storage(spec.processing_instance_type):
            cluster["VolumeKmsKeyId"] = spec.kms_key_arn
    arguments_json: dict[str, Any] = {
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python3", "-c", BOOTSTRAP, CODE_DIR, script],
            "ContainerArguments": arguments,
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "ProcessingInputs": [
            *(_s3_input(n, uri, path) for n, uri, path in inputs),
            *dataset_inputs,
            _s3_input("code", spec.code_uri, CODE_DIR),
        ],
        "ProcessingOutputConfig": output_config,
        "ProcessingResources": {"ClusterConfig": cluster},
        # The step scripts read and write only the mounted inputs and outputs: no network.
        "NetworkConfig": {"EnableNetworkIsolation": True},
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.processing_max_runtime_seconds},
        "RoleArn": spec.role_arn,
    }
    return job_step(spec, name, "Processing", arguments_json)
