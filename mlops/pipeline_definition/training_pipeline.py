"""The training pipeline's SageMaker Pipeline definition, built without the SageMaker SDK.

ValidateData -> Preprocess -> Train (or a Tuning step named Train) -> FindIncumbent (Lambda)
-> Evaluate -> CheckQuality -> RegisterModel | QualityGateFailed. Step names, script
arguments and container paths are the contract in docs/CONTRACTS.md.

Every value comes from the spec, so the same spec gives byte-identical JSON (stable cdk diff).
String fields may be CDK token strings (bucket name, code URI, ARNs): they are only embedded.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.config import INSTANCE_STORE_FAMILIES, ISO_DURATION
from mlops.pipeline_definition import images
from mlops.pipeline_definition.expressions import (
    Expression,
    Parameter,
    ParameterType,
    PropertyFile,
    Value,
    equals,
    execution_variable,
    greater_than_or_equal_to,
    join,
    lambda_output,
    model_artifacts_uri,
    processing_output_uri,
    tuning_training_job_name,
)
from mlops.pipeline_definition.offline_join import OfflineTables, join_query

DEFINITION_VERSION = "2020-12-01"

STEP_VALIDATE = "ValidateData"
STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_FIND_INCUMBENT = "FindIncumbent"
STEP_EVALUATE = "Evaluate"
STEP_CHECK_QUALITY = "CheckQuality"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "QualityGateFailed"

# Container paths (the local runner re-roots everything under /opt/ml/).
CODE_DIR = "/opt/ml/processing/input/code"
RAW_DIR = "/opt/ml/processing/input/raw"
JOINED_DIR = "/opt/ml/processing/input/joined"
REPORT_DIR = "/opt/ml/processing/report"
SPLIT_DIRS: dict[str, str] = {
    "train": "/opt/ml/processing/train",
    "validation": "/opt/ml/processing/validation",
    "test": "/opt/ml/processing/test",
}
BASELINE_DIR = "/opt/ml/processing/baseline"
MODEL_DIR = "/opt/ml/processing/model"
TEST_DIR = "/opt/ml/processing/test"
INCUMBENT_DIR = "/opt/ml/processing/incumbent"
EVALUATION_DIR = "/opt/ml/processing/evaluation"
CHECKPOINT_DIR = "/opt/ml/checkpoints"

EVALUATION_REPORT = PropertyFile("EvaluationReport", "evaluation", "evaluation.json")
AUC_PATH = "binary_classification_metrics.auc.value"
NON_INFERIOR_PATH = "comparison.non_inferior"
# The candidate's resolved split (preprocess decides it from the data; evaluate reports it).
WINDOW_PATHS = {
    "train_start": "window.train[0]",
    "train_end": "window.train[1]",
    "validation_end": "window.validation[1]",
    "test_start": "window.test[0]",
    "test_end": "window.test[1]",
}
MODEL_SHA256_PATH = "model.sha256"
OBJECTIVE_METRIC = "validation:auc"

# Processing entrypoint: python3 -c BOOTSTRAP <code dir> <script> [args...]. Extracts the one
# *.gz in the code dir (CDK names the asset <hash>.gz) to a temp folder, puts it first on
# sys.path and runs the script as
# __main__ with sys.argv = [script path, *args]. ContainerEntrypoint items are limited to 256
# characters, hence the terse form; shutil (not tarfile directly) keeps Python 3.12's
# extraction-filter DeprecationWarning out of the step's stderr.
BOOTSTRAP = (
    "import glob,runpy,shutil,sys,tempfile;a=sys.argv;"
    "len(f:=glob.glob(a[1]+'/*.gz'))==1 or sys.exit('ERROR: need one .gz in '+a[1]);"
    "d=tempfile.mkdtemp();shutil.unpack_archive(*f,d,'gztar');sys.path[:0]=[d];del a[:2];"
    "runpy.run_path(d+'/'+a[0],None,'__main__')"
)

APPROVAL_STATUSES: tuple[str, ...] = ("Approved", "PendingManualApproval", "Rejected")

# xgboost's evaluation log lines ("[12]\ttrain-auc:0.71\tvalidation-auc:0.70") and train.py's
# last line ("validation-auc: 0.712345", the best score) carry the metrics; the last value
# seen is the job's final one. CloudWatch shows a tab as #011: the patterns ignore it.
METRIC_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("train:auc", r"train-auc:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"),
    ("validation:auc", r"validation-auc:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"),
)

_STEP_RETRY = {
    "ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
    "IntervalSeconds": 10,
    "BackoffRate": 2.0,
    "MaxAttempts": 5,
}
_JOB_RETRY = {
    "ExceptionType": [
        "SageMaker.CAPACITY_ERROR",
        "SageMaker.JOB_INTERNAL_ERROR",
        "SageMaker.RESOURCE_LIMIT",
    ],
    "IntervalSeconds": 60,
    "BackoffRate": 2.0,
    "MaxAttempts": 3,
}

WINDOW_END_LATEST = "latest"


# ---- Spec ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IntegerRange:
    name: str
    min_value: int
    max_value: int
    scaling: str = "Auto"


@dataclass(frozen=True, kw_only=True)
class ContinuousRange:
    name: str
    min_value: float
    max_value: float
    scaling: str = "Auto"


@dataclass(frozen=True, kw_only=True)
class CategoricalRange:
    name: str
    values: tuple[str, ...]


HyperparameterRange = IntegerRange | ContinuousRange | CategoricalRange

DEFAULT_RANGES: tuple[HyperparameterRange, ...] = (
    IntegerRange(name="max_depth", min_value=3, max_value=10),
    ContinuousRange(name="eta", min_value=0.01, max_value=0.3, scaling="Logarithmic"),
    ContinuousRange(name="min_child_weight", min_value=1.0, max_value=10.0),
    ContinuousRange(name="subsample", min_value=0.5, max_value=1.0),
)


@dataclass(frozen=True, kw_only=True)
class TuningSpec:
    """Bayesian tuning that maximises validation:auc over the given ranges."""

    max_jobs: int = 12
    max_parallel_jobs: int = 3
    ranges: tuple[HyperparameterRange, ...] = DEFAULT_RANGES
    strategy: str = "Bayesian"
    early_stopping: str = "Off"

    def __post_init__(self) -> None:
        if not 1 <= self.max_parallel_jobs <= self.max_jobs:
            raise ValueError(
                f"tuning: max_parallel_jobs {self.max_parallel_jobs} must be between 1 and "
                f"max_jobs {self.max_jobs}"
            )
        if not self.ranges:
            raise ValueError("tuning: at least one hyperparameter range is needed")
        names = [r.name for r in self.ranges]
        if len(set(names)) != len(names):
            raise ValueError(f"tuning: hyperparameter ranges repeat a name: {names}")
        for r in self.ranges:
            if isinstance(r, CategoricalRange):
                if not r.values:
                    raise ValueError(f"tuning: categorical range {r.name} has no values")
            elif not r.min_value < r.max_value:
                raise ValueError(
                    f"tuning: range {r.name} needs min_value < max_value, "
                    f"got {r.min_value}..{r.max_value}"
                )


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineSpec:
    """Everything the definition depends on; see build_definition."""

    region: str
    role_arn: str
    artifact_bucket: str
    code_uri: str
    model_package_group_name: str
    find_incumbent_function_arn: str
    # Preprocess's input: the point-in-time join (offline_join.py) run by Athena over these
    # Glue tables, in this workgroup (None: the account's primary workgroup).
    offline_tables: OfflineTables
    athena_workgroup: str | None = None
    s3_prefix: str = "training-pipeline"
    input_data_url: str | None = None  # default s3://<artifact_bucket>/raw/
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    processing_volume_gb: int = 30
    training_volume_gb: int = 30
    processing_max_runtime_seconds: int = 3600
    training_max_runtime_seconds: int = 3600
    auc_threshold: float = 0.7
    approval_status: str = "PendingManualApproval"
    use_spot: bool = False
    max_wait_seconds: int = 7200
    checkpoint_prefix: str = "checkpoints"
    tuning: TuningSpec | None = None
    hyperparameters: Mapping[str, str | int | float] = field(default_factory=dict)
    # Rolling window, resolved by Preprocess from the data: test = the last test_weeks up to
    # WindowEnd ("latest" = the newest flown date), validation the validation_weeks before,
    # train the train_months before that. Each is a pipeline parameter; TrainEnd,
    # ValidationEnd and TestEnd (empty by default) pin explicit dates instead.
    test_weeks: int = 4
    validation_weeks: int = 4
    train_months: int = 6
    # The quality gate passes a candidate whose AUC is at most this much below the
    # incumbent's (lower bound of the paired-bootstrap 95% CI of the difference).
    non_inferiority_margin: float = 0.025
    # Preprocess refuses data where a smaller share of a split's flights found their weather
    # observation or their plane (pipeline parameters MinWeatherMatch, MinPlaneMatch).
    min_weather_match: float = 0.9
    min_plane_match: float = 0.7
    kms_key_arn: str | None = None
    # ISO 8601 duration, or None for no step caching. Caching keys on the input URIs, not
    # on the data behind them: give new data a new InputDataUrl or it is not retrained on.
    cache_expire_after: str | None = "P30D"
    serving_instance_types: tuple[str, ...] = ("ml.m5.large",)
    # Environment of the registered serving container, e.g. SAGEMAKER_PROGRAM and
    # SAGEMAKER_SUBMIT_DIRECTORY for a framework-mode inference script.
    inference_environment: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        images.registry_account(self.region)  # unknown region: fail now, not at deploy
        if self.approval_status not in APPROVAL_STATUSES:
            raise ValueError(
                f"approval_status {self.approval_status!r} is not one of "
                f"{', '.join(APPROVAL_STATUSES)}"
            )
        for name in ("processing_instance_count", "training_instance_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.auc_threshold <= 1.0:
            raise ValueError(f"auc_threshold must be in (0, 1], got {self.auc_threshold}")
        if self.use_spot and self.max_wait_seconds < self.training_max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds {self.max_wait_seconds} must be at least "
                f"training_max_runtime_seconds {self.training_max_runtime_seconds} with spot"
            )
        for name in ("test_weeks", "validation_weeks", "train_months"):
            if not 1 <= getattr(self, name) <= 520:
                raise ValueError(f"{name} must be from 1 to 520, got {getattr(self, name)}")
        if not 0.0 <= self.non_inferiority_margin <= 0.2:
            raise ValueError(
                f"non_inferiority_margin must be from 0 to 0.2, got {self.non_inferiority_margin}"
            )
        for name in ("min_weather_match", "min_plane_match"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.cache_expire_after is not None and not ISO_DURATION.match(self.cache_expire_after):
            raise ValueError(
                f"cache_expire_after {self.cache_expire_after!r} is not an ISO 8601 duration "
                "(e.g. P30D, PT12H)"
            )
        reserved = sorted(k for k in self.hyperparameters if k.startswith("sagemaker_"))
        if reserved:
            raise ValueError(f"hyperparameters may not set reserved names: {reserved}")
        if not self.serving_instance_types:
            raise ValueError("serving_instance_types needs at least one instance type")


# ---- Parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineParameters:
    input_data_url: Parameter
    processing_instance_type: Parameter
    processing_instance_count: Parameter
    training_instance_type: Parameter
    auc_threshold: Parameter
    model_approval_status: Parameter
    window_end: Parameter
    test_weeks: Parameter
    validation_weeks: Parameter
    train_months: Parameter
    train_end: Parameter
    validation_end: Parameter
    test_end: Parameter
    non_inferiority_margin: Parameter
    min_weather_match: Parameter
    min_plane_match: Parameter

    def all(self) -> list[Parameter]:
        return [
            self.input_data_url,
            self.processing_instance_type,
            self.processing_instance_count,
            self.training_instance_type,
            self.auc_threshold,
            self.model_approval_status,
            self.window_end,
            self.test_weeks,
            self.validation_weeks,
            self.train_months,
            self.train_end,
            self.validation_end,
            self.test_end,
            self.non_inferiority_margin,
            self.min_weather_match,
            self.min_plane_match,
        ]


def pipeline_parameters(spec: TrainingPipelineSpec) -> PipelineParameters:
    s, i, f = ParameterType.STRING, ParameterType.INTEGER, ParameterType.FLOAT
    return PipelineParameters(
        input_data_url=Parameter("InputDataUrl", s, _input_data_url(spec)),
        processing_instance_type=Parameter(
            "ProcessingInstanceType", s, spec.processing_instance_type
        ),
        processing_instance_count=Parameter(
            "ProcessingInstanceCount", i, spec.processing_instance_count
        ),
        training_instance_type=Parameter("TrainingInstanceType", s, spec.training_instance_type),
        auc_threshold=Parameter("AucThreshold", f, float(spec.auc_threshold)),
        model_approval_status=Parameter("ModelApprovalStatus", s, spec.approval_status),
        window_end=Parameter("WindowEnd", s, WINDOW_END_LATEST),
        test_weeks=Parameter("TestWeeks", i, spec.test_weeks),
        validation_weeks=Parameter("ValidationWeeks", i, spec.validation_weeks),
        train_months=Parameter("TrainMonths", i, spec.train_months),
        # Empty: resolved from the data. Pipeline parameters cannot be absent, only empty.
        train_end=Parameter("TrainEnd", s, ""),
        validation_end=Parameter("ValidationEnd", s, ""),
        test_end=Parameter("TestEnd", s, ""),
        non_inferiority_margin=Parameter(
            "NonInferiorityMargin", f, float(spec.non_inferiority_margin)
        ),
        min_weather_match=Parameter("MinWeatherMatch", f, float(spec.min_weather_match)),
        min_plane_match=Parameter("MinPlaneMatch", f, float(spec.min_plane_match)),
    )


def _input_data_url(spec: TrainingPipelineSpec) -> str:
    return spec.input_data_url or f"s3://{spec.artifact_bucket}/raw/"


# ---- Building blocks -----------------------------------------------------------------------


def _has_instance_storage(instance_type: str) -> bool:
    parts = instance_type.split(".")
    return len(parts) == 3 and parts[1] in INSTANCE_STORE_FAMILIES


def _cache_config(spec: TrainingPipelineSpec) -> dict[str, Any]:
    if spec.cache_expire_after is None:
        return {}
    return {"CacheConfig": {"Enabled": True, "ExpireAfter": spec.cache_expire_after}}


def _job_step(
    spec: TrainingPipelineSpec, name: str, step_type: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": step_type,
        "Arguments": arguments,
        "RetryPolicies": [dict(_STEP_RETRY), dict(_JOB_RETRY)],
        **_cache_config(spec),
    }


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


def _joined_input(spec: TrainingPipelineSpec) -> dict[str, Any]:
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


def _processing_step(
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
        if not _has_instance_storage(spec.processing_instance_type):
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
    return _job_step(spec, name, "Processing", arguments_json)


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
        if not _has_instance_storage(spec.training_instance_type):
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


def _training_step(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
    arguments = _training_job_core(spec, params)
    arguments["HyperParameters"] = encode_hyperparameters(_framework_hyperparameters(spec))
    return _job_step(spec, STEP_TRAIN, "Training", arguments)


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


def _tuning_step(
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
    return _job_step(spec, STEP_TRAIN, "Tuning", arguments)


def candidate_model_uri(spec: TrainingPipelineSpec) -> Value:
    """S3 URI of the candidate model.tar.gz: the training job's, or the best tuning job's."""
    if spec.tuning is None:
        return model_artifacts_uri(STEP_TRAIN)
    # A tuning step's TrainingJobSummaries have no artefact path: rebuild it the SDK's way.
    return join(
        [_model_output_path(spec), tuning_training_job_name(STEP_TRAIN, 0), "output/model.tar.gz"],
        on="/",
    )


def _find_incumbent_step(spec: TrainingPipelineSpec) -> dict[str, Any]:
    return {
        "Name": STEP_FIND_INCUMBENT,
        "Type": "Lambda",
        "Arguments": {
            "ModelPackageGroupName": spec.model_package_group_name,
            "CandidateModelUrl": candidate_model_uri(spec),
        },
        "FunctionArn": spec.find_incumbent_function_arn,
        "OutputParameters": [
            {"OutputName": "IncumbentModelUrl", "OutputType": "String"},
            {"OutputName": "HasIncumbent", "OutputType": "String"},
        ],
    }


def _auc() -> Expression:
    return EVALUATION_REPORT.json_get(STEP_EVALUATE, AUC_PATH)


def _non_inferior() -> Expression:
    return EVALUATION_REPORT.json_get(STEP_EVALUATE, NON_INFERIOR_PATH)


def _register_step(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
    serving = list(spec.serving_instance_types)
    evaluation_uri = join(
        [processing_output_uri(STEP_EVALUATE, "evaluation"), EVALUATION_REPORT.path], on="/"
    )
    baseline_uri = join([processing_output_uri(STEP_PREPROCESS, "baseline"), "baseline.json"], "/")
    arguments = {
        "ModelPackageGroupName": spec.model_package_group_name,
        "ModelPackageDescription": "Flight delay classifier (XGBoost) from the training pipeline",
        "ModelApprovalStatus": params.model_approval_status.ref,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": images.xgboost_image_uri(spec.region),
                    "ModelDataUrl": candidate_model_uri(spec),
                    "Environment": {
                        k: spec.inference_environment[k] for k in sorted(spec.inference_environment)
                    },
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": serving,
            "SupportedTransformInstanceTypes": serving,
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}
            },
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": baseline_uri}
            },
        },
        # Strings only: Std:Join turns the JSON numbers into text.
        "CustomerMetadataProperties": {
            # mlops promote pins this digest; serving regions verify their copy against it.
            "model_sha256": join([EVALUATION_REPORT.json_get(STEP_EVALUATE, MODEL_SHA256_PATH)]),
            "auc": join([_auc()]),
            "auc_threshold": join([params.auc_threshold.ref]),
            "has_incumbent": lambda_output(STEP_FIND_INCUMBENT, "HasIncumbent"),
            **{
                name: join([EVALUATION_REPORT.json_get(STEP_EVALUATE, path)])
                for name, path in WINDOW_PATHS.items()
            },
            "non_inferiority_margin": join([params.non_inferiority_margin.ref]),
            "training_mode": "tuning" if spec.tuning else "training",
            "pipeline_execution_id": execution_variable("PipelineExecutionId"),
        },
        "SkipModelValidation": "None",
    }
    return {
        "Name": STEP_REGISTER,
        "Type": "RegisterModel",
        "Arguments": arguments,
        # Registration is not a job: only the Step.* exception types apply.
        "RetryPolicies": [dict(_STEP_RETRY)],
    }


def _fail_step(params: PipelineParameters) -> dict[str, Any]:
    message = join(
        [
            "Quality gate failed: candidate AUC ",
            _auc(),
            " (required >= ",
            params.auc_threshold.ref,
            "); non-inferior to the incumbent (AUC at most ",
            params.non_inferiority_margin.ref,
            " lower, 95% CI) = ",
            _non_inferior(),
            " (required 1; incumbent present = ",
            lambda_output(STEP_FIND_INCUMBENT, "HasIncumbent"),
            ")",
        ]
    )
    return {"Name": STEP_FAIL, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


def _condition_step(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
    return {
        "Name": STEP_CHECK_QUALITY,
        "Type": "Condition",
        "Arguments": {
            # The list is an AND: good enough, and non-inferior to the incumbent.
            "Conditions": [
                greater_than_or_equal_to(_auc(), params.auc_threshold.ref),
                equals(_non_inferior(), 1),
            ],
            "IfSteps": [_register_step(spec, params)],
            "ElseSteps": [_fail_step(params)],
        },
    }


# ---- Definition ----------------------------------------------------------------------------


def build_definition(spec: TrainingPipelineSpec) -> dict[str, Any]:
    """The pipeline definition as a JSON-ready dict (PipelineDefinitionBody once dumped)."""
    params = pipeline_parameters(spec)
    sklearn = images.sklearn_image_uri(spec.region)
    xgboost = images.xgboost_image_uri(spec.region)
    raw = (("raw", params.input_data_url.ref, RAW_DIR),)

    validate = _processing_step(
        spec,
        params,
        name=STEP_VALIDATE,
        image_uri=sklearn,
        script="validate.py",
        inputs=list(raw),
        outputs=[("report", REPORT_DIR)],
        arguments=["--input-dir", RAW_DIR, "--report-dir", REPORT_DIR],
        instance_count=params.processing_instance_count.ref,
    )
    preprocess = _processing_step(
        spec,
        params,
        name=STEP_PREPROCESS,
        image_uri=sklearn,
        script="preprocess.py",
        inputs=[],
        dataset_inputs=(_joined_input(spec),),
        outputs=[*SPLIT_DIRS.items(), ("baseline", BASELINE_DIR)],
        arguments=[
            "--joined-dir",
            JOINED_DIR,
            "--train-dir",
            SPLIT_DIRS["train"],
            "--validation-dir",
            SPLIT_DIRS["validation"],
            "--test-dir",
            SPLIT_DIRS["test"],
            "--baseline-dir",
            BASELINE_DIR,
            "--window-end",
            params.window_end.ref,
            "--test-weeks",
            join([params.test_weeks.ref]),  # arguments are strings
            "--validation-weeks",
            join([params.validation_weeks.ref]),  # arguments are strings
            "--train-months",
            join([params.train_months.ref]),  # arguments are strings
            "--train-end",
            params.train_end.ref,
            "--validation-end",
            params.validation_end.ref,
            "--test-end",
            params.test_end.ref,
            "--min-weather-match",
            join([params.min_weather_match.ref]),  # arguments are strings
            "--min-plane-match",
            join([params.min_plane_match.ref]),  # arguments are strings
        ],
        instance_count=params.processing_instance_count.ref,
    )
    # Preprocess reads the join's result, not the validated files: order it explicitly.
    preprocess["DependsOn"] = [STEP_VALIDATE]
    train = (
        _training_step(spec, params)
        if spec.tuning is None
        else _tuning_step(spec, params, spec.tuning)
    )
    evaluate = _processing_step(
        spec,
        params,
        name=STEP_EVALUATE,
        image_uri=xgboost,
        script="evaluate.py",
        inputs=[
            ("model", candidate_model_uri(spec), MODEL_DIR),
            ("test", processing_output_uri(STEP_PREPROCESS, "test"), TEST_DIR),
            ("incumbent", lambda_output(STEP_FIND_INCUMBENT, "IncumbentModelUrl"), INCUMBENT_DIR),
        ],
        outputs=[("evaluation", EVALUATION_DIR)],
        arguments=[
            "--model-dir",
            MODEL_DIR,
            "--test-dir",
            TEST_DIR,
            "--incumbent-dir",
            INCUMBENT_DIR,
            "--has-incumbent",
            lambda_output(STEP_FIND_INCUMBENT, "HasIncumbent"),
            "--evaluation-dir",
            EVALUATION_DIR,
            "--margin",
            join([params.non_inferiority_margin.ref]),
        ],
        instance_count=1,
    )
    evaluate["PropertyFiles"] = [EVALUATION_REPORT.to_json()]
    return {
        "Version": DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": [p.to_json() for p in params.all()],
        "Steps": [
            validate,
            preprocess,
            train,
            _find_incumbent_step(spec),
            evaluate,
            _condition_step(spec, params),
        ],
    }


def definition_json(spec: TrainingPipelineSpec) -> str:
    """Deterministic JSON text of the definition (sorted keys, compact separators)."""
    return json.dumps(build_definition(spec), sort_keys=True, separators=(",", ":"))
