"""A second oracle for the pipeline definition: the SageMaker Python SDK 2.x builds the same
pipeline with its own step classes, and both definitions must agree step by step.

Our builders (mlops/pipeline_definition/) write the definition JSON by hand. Here the SDK's
Processor, XGBoost estimator, HyperparameterTuner, LambdaStep, ConditionStep, Model.register
and FailStep build the same pipeline, offline: a fixed PipelineSession with default_bucket,
explicit image URIs (no region lookup), fake credentials, and the SDK's one S3 upload (the
training code) going to moto. Every difference between the two definitions fails the test,
except those named, each with its reason, in ALLOWED_DIFFERENCES.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops.pipeline_definition import images
from mlops.pipeline_definition.offline_join import OfflineTables, join_query
from mlops.pipeline_definition.training_pipeline import (
    AUC_PATH,
    BASELINE_DIR,
    BOOTSTRAP,
    CODE_DIR,
    EVALUATION_DIR,
    INCUMBENT_DIR,
    METRIC_DEFINITIONS,
    MODEL_DIR,
    MODEL_SHA256_PATH,
    NON_INFERIOR_PATH,
    RAW_DIR,
    REPORT_DIR,
    SPLIT_DIRS,
    TEST_DIR,
    WINDOW_END_LATEST,
    WINDOW_PATHS,
    CategoricalRange,
    ContinuousRange,
    IntegerRange,
    TrainingPipelineSpec,
    TuningSpec,
    build_definition,
)

# The SDK's notes that a PipelineSession starts no job and that LambdaStep deploys no code.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Running within a PipelineSession:UserWarning",
    "ignore:Lambda function won't be updated:UserWarning",
)

REGION = "eu-west-1"
BUCKET = "artifacts-bucket"
PREFIX = "training-pipeline"
CODE_URI = f"s3://{BUCKET}/assets/0123abcd.gz"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::123456789012:role/PipelineRole"
FIND_INCUMBENT_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:find-incumbent"
STEP_SCRIPTS = Path(__file__).resolve().parents[1] / "pipeline_steps"


def make_spec(**overrides: Any) -> TrainingPipelineSpec:
    values: dict[str, Any] = {
        "region": REGION,
        "role_arn": ROLE,
        "artifact_bucket": BUCKET,
        "code_uri": CODE_URI,
        "model_package_group_name": "flight-delay",
        "offline_tables": OfflineTables(database="mlops_dev_features"),
        "athena_workgroup": "mlops-dev-training",
        "find_incumbent_function_arn": FIND_INCUMBENT_ARN,
        "s3_prefix": PREFIX,
        "hyperparameters": {"max_depth": 6, "eta": 0.1, "objective": "binary:logistic"},
        "kms_key_arn": KMS,
        "inference_environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    values.update(overrides)
    return TrainingPipelineSpec(**values)


SPECS: dict[str, TrainingPipelineSpec] = {
    "training": make_spec(),
    "tuning-spot": make_spec(
        use_spot=True,
        tuning=TuningSpec(
            ranges=(
                IntegerRange(name="max_depth", min_value=3, max_value=10),
                ContinuousRange(name="eta", min_value=0.01, max_value=0.3, scaling="Logarithmic"),
                CategoricalRange(name="grow_policy", values=("depthwise", "lossguide")),
            )
        ),
        cache_expire_after=None,
        approval_status="Approved",
        min_weather_match=0.95,
        min_plane_match=0.8,
    ),
}


# ---- The one allow-list ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ignored:
    """A difference we accept: its path (a regex matched over the whole path) and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Renamed:
    """A name the SDK spells differently (a step or a key); compared under our name."""

    sdk: str
    ours: str
    reason: str


ALLOWED_DIFFERENCES: tuple[Ignored | Renamed, ...] = (
    Renamed(
        "RegisterModel-RegisterModel",
        "RegisterModel",
        "ModelStep suffixes its registration step with -RegisterModel; we name it directly",
    ),
    Renamed(
        "HyperParameterTuningResourceConfig",
        "ResourceConfig",
        "the API takes either in a tuning job definition; ours is the training job's field",
    ),
    Ignored(
        r"PipelineExperimentConfig",
        "the SDK writes null when experiment tracking is off; we leave the key out",
    ),
    Ignored(
        r"Steps\.Train\.Arguments\.(TrainingJobDefinition\.)?InputDataConfig\[3\]"
        r"\.DataSource\.S3DataSource\.S3Uri",
        "the code channel: the SDK uploads train.py's folder itself (to moto here); we use the "
        "CDK code asset",
    ),
    Ignored(
        r"Steps\.Train\.Arguments\.(TrainingJobDefinition\.Static)?HyperParameters"
        r"\.sagemaker_submit_directory",
        "the same archive in the code channel: the SDK's is sourcedir.tar.gz, ours the asset's",
    ),
    Ignored(
        r"Steps\.Train\.Arguments\.TrainingJobDefinition\.StaticHyperParameters"
        r"\.sagemaker_(estimator_class_name|estimator_module|job_name)",
        "SDK bookkeeping for HyperparameterTuner.attach(); the container ignores it",
    ),
    Ignored(
        r"Steps\.Train\.Arguments\.(TrainingJobDefinition\.)?ProfilerConfig",
        "the SDK spells out DisableProfiler; without ProfilerConfig no profiling is configured",
    ),
    Ignored(
        r"Steps\.RegisterModel\.Arguments\.ModelMetrics\.(Bias|Explainability)",
        "the SDK writes empty Bias/Explainability blocks; we omit what we do not produce",
    ),
)
IGNORED = [a for a in ALLOWED_DIFFERENCES if isinstance(a, Ignored)]
RENAMED = [a for a in ALLOWED_DIFFERENCES if isinstance(a, Renamed)]


# ---- Comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    path: str
    ours: Any
    sdk: Any

    def __str__(self) -> str:
        return f"{self.path}: ours={json.dumps(self.ours)} sdk={json.dumps(self.sdk)}"


_MISSING = "<absent>"


def _flatten_steps(steps: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for step in steps:
        yield step["Name"], step
        if step["Type"] == "Condition":
            yield from _flatten_steps(step["Arguments"]["IfSteps"])
            yield from _flatten_steps(step["Arguments"]["ElseSteps"])


def canonical(value: Any) -> Any:
    """The same value with adjacent literal strings of every Std:Join joined, as the service
    evaluates them: Join('/', ['s3:/', 'b', 'p']) and Join('/', ['s3://b/p']) are one value."""
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: canonical(v) for k, v in value.items()}
    join = out.get("Std:Join")
    if len(out) == 1 and isinstance(join, dict) and isinstance(join.get("On"), str):
        merged: list[Any] = []
        for item in join.get("Values", []):
            if isinstance(item, str) and merged and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + join["On"] + item
            else:
                merged.append(item)
        out = {"Std:Join": {**join, "Values": merged}}
    return out


def _diff(path: str, ours: Any, sdk: Any) -> Iterator[Difference]:
    if isinstance(ours, dict) and isinstance(sdk, dict):
        for key in sorted(set(ours) | set(sdk)):
            yield from _diff(f"{path}.{key}", ours.get(key, _MISSING), sdk.get(key, _MISSING))
    elif isinstance(ours, list) and isinstance(sdk, list) and len(ours) == len(sdk):
        for i, (a, b) in enumerate(zip(ours, sdk, strict=True)):
            yield from _diff(f"{path}[{i}]", a, b)
    elif ours != sdk or type(ours) is not type(sdk):
        yield Difference(path, ours, sdk)


def _step_body(step: dict[str, Any]) -> dict[str, Any]:
    """A step without its nested steps (compared as steps of their own)."""
    if step["Type"] != "Condition":
        return step
    arguments = {k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")}
    arguments["IfSteps"] = [s["Name"] for s in step["Arguments"]["IfSteps"]]
    arguments["ElseSteps"] = [s["Name"] for s in step["Arguments"]["ElseSteps"]]
    return {**step, "Arguments": arguments}


def _apply_renames(sdk: dict[str, Any]) -> Any:
    text = json.dumps(sdk)
    for r in RENAMED:
        text = text.replace(json.dumps(r.sdk), json.dumps(r.ours))
        text = text.replace(f"Steps.{r.sdk}.", f"Steps.{r.ours}.")
    return json.loads(text)


def all_differences(ours: dict[str, Any], sdk: dict[str, Any]) -> list[Difference]:
    """Every difference between the two definitions, step by step (renames applied)."""
    ours, sdk = canonical(ours), canonical(_apply_renames(sdk))
    found: list[Difference] = []
    for key in sorted((set(ours) | set(sdk)) - {"Steps"}):
        found += _diff(key, ours.get(key, _MISSING), sdk.get(key, _MISSING))
    found += _diff(
        "Steps.<order>", [s["Name"] for s in ours["Steps"]], [s["Name"] for s in sdk["Steps"]]
    )
    our_steps, sdk_steps = dict(_flatten_steps(ours["Steps"])), dict(_flatten_steps(sdk["Steps"]))
    for name in sorted(set(our_steps) | set(sdk_steps)):
        a, b = our_steps.get(name), sdk_steps.get(name)
        if a is None or b is None:
            found.append(Difference(f"Steps.{name}", a and a["Type"], b and b["Type"]))
            continue
        found += _diff(f"Steps.{name}", _step_body(a), _step_body(b))
    return found


def is_ignored(difference: Difference) -> bool:
    return any(re.fullmatch(a.path, difference.path) for a in IGNORED)


def compare(ours: dict[str, Any], sdk: dict[str, Any]) -> list[Difference]:
    """The differences the allow-list does not name."""
    return [d for d in all_differences(ours, sdk) if not is_ignored(d)]


# ---- The same pipeline, built with the SDK ---------------------------------------------------


@dataclass
class SdkRun:
    definitions: dict[str, dict[str, Any]]  # variant -> the SDK's definition
    uploaded_keys: list[str]  # what the SDK put into (moto's) S3
    connections: list[Any]  # every socket connect attempted meanwhile (must stay empty)


@pytest.fixture(scope="module")
def sdk_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkRun]:
    """The SDK's definition of every variant, built once (importing sagemaker is slow)."""
    aws_dir = tmp_path_factory.mktemp("aws")
    connections: list[Any] = []

    def refuse(sock: socket.socket, address: Any) -> None:
        connections.append(address)
        raise OSError(f"network access attempted during the SDK oracle: {address}")

    mp = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(aws_dir / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws_dir / "credentials"),
    }.items():
        mp.setenv(name, value)
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    try:
        import boto3
        from moto import mock_aws

        with mock_aws():
            from sagemaker.workflow.pipeline_context import PipelineSession

            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            session = PipelineSession(
                boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET
            )
            definitions = {name: build_with_sdk(session, spec) for name, spec in SPECS.items()}
            listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
            yield SdkRun(definitions, [o["Key"] for o in listed], connections)
    finally:
        mp.undo()


def build_with_sdk(session: Any, spec: TrainingPipelineSpec) -> dict[str, Any]:
    from sagemaker.dataset_definition.inputs import AthenaDatasetDefinition, DatasetDefinition
    from sagemaker.inputs import TrainingInput
    from sagemaker.lambda_helper import Lambda
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.network import NetworkConfig
    from sagemaker.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
    from sagemaker.tuner import HyperparameterTuner
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )
    from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TuningStep
    from sagemaker.xgboost import XGBoost

    sklearn_image = images.sklearn_image_uri(spec.region)
    xgboost_image = images.xgboost_image_uri(spec.region)

    input_data_url = ParameterString("InputDataUrl", default_value=f"s3://{BUCKET}/raw/")
    processing_type = ParameterString(
        "ProcessingInstanceType", default_value=spec.processing_instance_type
    )
    processing_count = ParameterInteger(
        "ProcessingInstanceCount", default_value=spec.processing_instance_count
    )
    training_type = ParameterString(
        "TrainingInstanceType", default_value=spec.training_instance_type
    )
    auc_threshold = ParameterFloat("AucThreshold", default_value=spec.auc_threshold)
    approval = ParameterString("ModelApprovalStatus", default_value=spec.approval_status)
    window_end = ParameterString("WindowEnd", default_value=WINDOW_END_LATEST)
    test_weeks = ParameterInteger("TestWeeks", default_value=spec.test_weeks)
    validation_weeks = ParameterInteger("ValidationWeeks", default_value=spec.validation_weeks)
    train_months = ParameterInteger("TrainMonths", default_value=spec.train_months)
    train_end = ParameterString("TrainEnd", default_value="")
    validation_end = ParameterString("ValidationEnd", default_value="")
    test_end = ParameterString("TestEnd", default_value="")
    margin = ParameterFloat("NonInferiorityMargin", default_value=spec.non_inferiority_margin)
    min_weather = ParameterFloat("MinWeatherMatch", default_value=spec.min_weather_match)
    min_plane = ParameterFloat("MinPlaneMatch", default_value=spec.min_plane_match)
    parameters = [
        input_data_url,
        processing_type,
        processing_count,
        training_type,
        auc_threshold,
        approval,
        window_end,
        test_weeks,
        validation_weeks,
        train_months,
        train_end,
        validation_end,
        test_end,
        margin,
        min_weather,
        min_plane,
    ]

    cache = (
        CacheConfig(enable_caching=True, expire_after=spec.cache_expire_after)
        if spec.cache_expire_after
        else None
    )
    step_retry = StepRetryPolicy(
        exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
        interval_seconds=10,
        backoff_rate=2.0,
        max_attempts=5,
    )
    job_retry = SageMakerJobStepRetryPolicy(
        exception_types=[
            SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
            SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
        ],
        interval_seconds=60,
        backoff_rate=2.0,
        max_attempts=3,
    )

    def processor(image: str, script: str, count: Any) -> Processor:
        return Processor(
            role=spec.role_arn,
            image_uri=image,
            instance_count=count,
            instance_type=processing_type,
            entrypoint=["python3", "-c", BOOTSTRAP, CODE_DIR, script],
            volume_size_in_gb=spec.processing_volume_gb,
            volume_kms_key=spec.kms_key_arn,
            output_kms_key=spec.kms_key_arn,
            max_runtime_in_seconds=spec.processing_max_runtime_seconds,
            env={"PYTHONUNBUFFERED": "1"},
            network_config=NetworkConfig(enable_network_isolation=True),
            sagemaker_session=session,
        )

    def output(step: str, name: str, local_path: str) -> ProcessingOutput:
        destination = Join(
            on="/",
            values=["s3:/", BUCKET, PREFIX, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name],
        )
        return ProcessingOutput(output_name=name, source=local_path, destination=destination)

    code = ProcessingInput(input_name="code", source=spec.code_uri, destination=CODE_DIR)
    raw = ProcessingInput(input_name="raw", source=input_data_url, destination=RAW_DIR)
    # The point-in-time join: SageMaker runs the query in Athena before the job starts.
    joined = ProcessingInput(
        input_name="joined",
        dataset_definition=DatasetDefinition(
            athena_dataset_definition=AthenaDatasetDefinition(
                catalog="AwsDataCatalog",
                database=spec.offline_tables.database,
                query_string=join_query(spec.offline_tables),
                work_group=spec.athena_workgroup,
                output_s3_uri=Join(
                    on="/",
                    values=[
                        "s3:/",
                        BUCKET,
                        PREFIX,
                        ExecutionVariables.PIPELINE_EXECUTION_ID,
                        "Preprocess",
                        "joined",
                    ],
                ),
                kms_key_id=spec.kms_key_arn,
                output_format="JSON",
                output_compression="GZIP",
            ),
            local_path="/opt/ml/processing/input/joined",
            data_distribution_type="FullyReplicated",
            input_mode="File",
        ),
    )

    validate = ProcessingStep(
        name="ValidateData",
        step_args=processor(sklearn_image, "validate.py", processing_count).run(
            inputs=[raw, code],
            outputs=[output("ValidateData", "report", REPORT_DIR)],
            arguments=["--input-dir", RAW_DIR, "--report-dir", REPORT_DIR],
        ),
        retry_policies=[step_retry, job_retry],
        cache_config=cache,
    )
    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor(sklearn_image, "preprocess.py", processing_count).run(
            inputs=[joined, code],
            outputs=[
                *(output("Preprocess", n, p) for n, p in SPLIT_DIRS.items()),
                output("Preprocess", "baseline", BASELINE_DIR),
            ],
            arguments=[
                "--joined-dir",
                "/opt/ml/processing/input/joined",
                "--train-dir",
                SPLIT_DIRS["train"],
                "--validation-dir",
                SPLIT_DIRS["validation"],
                "--test-dir",
                SPLIT_DIRS["test"],
                "--baseline-dir",
                BASELINE_DIR,
                "--window-end",
                window_end,
                "--test-weeks",
                Join(values=[test_weeks]),
                "--validation-weeks",
                Join(values=[validation_weeks]),
                "--train-months",
                Join(values=[train_months]),
                "--train-end",
                train_end,
                "--validation-end",
                validation_end,
                "--test-end",
                test_end,
                "--min-weather-match",
                Join(values=[min_weather]),
                "--min-plane-match",
                Join(values=[min_plane]),
            ],
        ),
        depends_on=["ValidateData"],
        retry_policies=[step_retry, job_retry],
        cache_config=cache,
    )

    splits = preprocess.properties.ProcessingOutputConfig.Outputs
    models_path = f"s3://{BUCKET}/{PREFIX}/models"
    estimator = XGBoost(
        entry_point="train.py",
        source_dir=str(STEP_SCRIPTS),
        framework_version="1.7-1",
        image_uri=xgboost_image,
        role=spec.role_arn,
        instance_count=spec.training_instance_count,
        instance_type=training_type,
        volume_size=spec.training_volume_gb,
        volume_kms_key=spec.kms_key_arn,
        output_kms_key=spec.kms_key_arn,
        output_path=models_path,
        max_run=spec.training_max_runtime_seconds,
        hyperparameters=dict(spec.hyperparameters),
        metric_definitions=[{"Name": n, "Regex": r} for n, r in METRIC_DEFINITIONS],
        container_log_level=logging.INFO,
        enable_network_isolation=True,
        disable_profiler=True,
        debugger_hook_config=False,
        use_spot_instances=spec.use_spot,
        max_wait=spec.max_wait_seconds if spec.use_spot else None,
        checkpoint_s3_uri=(
            Join(
                on="/",
                values=[
                    "s3:/",
                    BUCKET,
                    PREFIX,
                    spec.checkpoint_prefix,
                    ExecutionVariables.PIPELINE_EXECUTION_ID,
                ],
            )
            if spec.use_spot
            else None
        ),
        checkpoint_local_path="/opt/ml/checkpoints" if spec.use_spot else None,
        sagemaker_session=session,
    )
    channels = {
        "train": TrainingInput(splits["train"].S3Output.S3Uri, content_type="text/csv"),
        "validation": TrainingInput(splits["validation"].S3Output.S3Uri, content_type="text/csv"),
        "baseline": TrainingInput(
            splits["baseline"].S3Output.S3Uri, content_type="application/json"
        ),
    }
    train: TrainingStep | TuningStep
    if spec.tuning is None:
        train = TrainingStep(
            name="Train",
            step_args=estimator.fit(inputs=channels),
            retry_policies=[step_retry, job_retry],
            cache_config=cache,
        )
        candidate: Any = train.properties.ModelArtifacts.S3ModelArtifacts
    else:
        ranges: dict[str, Any] = {}
        for r in spec.tuning.ranges:
            if isinstance(r, IntegerRange):
                ranges[r.name] = IntegerParameter(r.min_value, r.max_value, r.scaling)
            elif isinstance(r, ContinuousRange):
                ranges[r.name] = ContinuousParameter(r.min_value, r.max_value, r.scaling)
            else:
                ranges[r.name] = CategoricalParameter(list(r.values))
        tuner = HyperparameterTuner(
            estimator,
            objective_metric_name="validation:auc",
            hyperparameter_ranges=ranges,
            metric_definitions=[{"Name": n, "Regex": r} for n, r in METRIC_DEFINITIONS],
            strategy=spec.tuning.strategy,
            objective_type="Maximize",
            max_jobs=spec.tuning.max_jobs,
            max_parallel_jobs=spec.tuning.max_parallel_jobs,
            early_stopping_type=spec.tuning.early_stopping,
        )
        train = TuningStep(
            name="Train",
            step_args=tuner.fit(inputs=channels),
            retry_policies=[step_retry, job_retry],
            cache_config=cache,
        )
        candidate = train.get_top_model_s3_uri(top_k=0, s3_bucket=BUCKET, prefix=f"{PREFIX}/models")

    incumbent_url = LambdaOutput("IncumbentModelUrl", LambdaOutputTypeEnum.String)
    has_incumbent = LambdaOutput("HasIncumbent", LambdaOutputTypeEnum.String)
    # Read by no step: the retrain gate reads it from a refused run's step metadata.
    incumbent_arn = LambdaOutput("IncumbentModelPackageArn", LambdaOutputTypeEnum.String)
    find_incumbent = LambdaStep(
        name="FindIncumbent",
        lambda_func=Lambda(function_arn=spec.find_incumbent_function_arn, session=session),
        inputs={
            "ModelPackageGroupName": spec.model_package_group_name,
            "CandidateModelUrl": candidate,
        },
        outputs=[incumbent_url, has_incumbent, incumbent_arn],
    )
    incumbent_url_value = find_incumbent.properties.Outputs["IncumbentModelUrl"]
    has_incumbent_value = find_incumbent.properties.Outputs["HasIncumbent"]

    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        step_args=processor(xgboost_image, "evaluate.py", 1).run(
            inputs=[
                ProcessingInput(input_name="model", source=candidate, destination=MODEL_DIR),
                ProcessingInput(
                    input_name="test", source=splits["test"].S3Output.S3Uri, destination=TEST_DIR
                ),
                ProcessingInput(
                    input_name="incumbent", source=incumbent_url_value, destination=INCUMBENT_DIR
                ),
                code,
            ],
            outputs=[output("Evaluate", "evaluation", EVALUATION_DIR)],
            arguments=[
                "--model-dir",
                MODEL_DIR,
                "--test-dir",
                TEST_DIR,
                "--incumbent-dir",
                INCUMBENT_DIR,
                "--has-incumbent",
                has_incumbent_value,
                "--evaluation-dir",
                EVALUATION_DIR,
                "--margin",
                Join(values=[margin]),
            ],
        ),
        property_files=[report],
        retry_policies=[step_retry, job_retry],
        cache_config=cache,
    )

    def report_value(path: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)

    evaluation_dir = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"]
    baseline_dir = splits["baseline"].S3Output.S3Uri
    model = Model(
        image_uri=xgboost_image,
        model_data=candidate,
        env=dict(sorted(spec.inference_environment.items())),
        role=spec.role_arn,
        sagemaker_session=session,
    )
    serving = list(spec.serving_instance_types)
    register = ModelStep(
        name="RegisterModel",
        step_args=model.register(
            content_types=["text/csv"],
            response_types=["text/csv"],
            inference_instances=serving,
            transform_instances=serving,
            model_package_group_name=spec.model_package_group_name,
            approval_status=approval,
            description="Flight delay classifier (XGBoost) from the training pipeline",
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[evaluation_dir.S3Output.S3Uri, report.path]),
                ),
                model_data_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=Join(on="/", values=[baseline_dir, "baseline.json"]),
                ),
            ),
            customer_metadata_properties={
                "model_sha256": Join(values=[report_value(MODEL_SHA256_PATH)]),
                "auc": Join(values=[report_value(AUC_PATH)]),
                "auc_threshold": Join(values=[auc_threshold]),
                "has_incumbent": has_incumbent_value,
                **{name: Join(values=[report_value(path)]) for name, path in WINDOW_PATHS.items()},
                "non_inferiority_margin": Join(values=[margin]),
                "training_mode": "tuning" if spec.tuning else "training",
                "pipeline_execution_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
            },
            skip_model_validation="None",
        ),
        retry_policies=[step_retry],
    )
    fail = FailStep(
        name="QualityGateFailed",
        error_message=Join(
            values=[
                "Quality gate failed: candidate AUC ",
                report_value(AUC_PATH),
                " (required >= ",
                auc_threshold,
                "); non-inferior to the incumbent (AUC at most ",
                margin,
                " lower, 95% CI) = ",
                report_value(NON_INFERIOR_PATH),
                " (required 1; incumbent present = ",
                has_incumbent_value,
                ")",
            ]
        ),
    )
    check = ConditionStep(
        name="CheckQuality",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=report_value(AUC_PATH), right=auc_threshold),
            ConditionEquals(left=report_value(NON_INFERIOR_PATH), right=1),
        ],
        if_steps=[register],
        else_steps=[fail],
    )
    pipeline = Pipeline(
        name="oracle",
        parameters=parameters,
        steps=[validate, preprocess, train, find_incumbent, evaluate, check],
        pipeline_experiment_config=None,
        sagemaker_session=session,
    )
    result: dict[str, Any] = json.loads(pipeline.definition())
    return result


# ---- Tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(SPECS))
def test_sdk_builds_the_same_definition(sdk_run: SdkRun, variant: str) -> None:
    differences = compare(build_definition(SPECS[variant]), sdk_run.definitions[variant])
    assert not differences, "\n".join(map(str, differences))


def test_sdk_ran_offline_with_its_upload_in_moto(sdk_run: SdkRun) -> None:
    assert sdk_run.connections == []
    assert any(k.endswith("/sourcedir.tar.gz") for k in sdk_run.uploaded_keys), (
        sdk_run.uploaded_keys
    )


def test_every_allowed_difference_still_occurs(sdk_run: SdkRun) -> None:
    """A stale entry would silently widen the allow-list: each must match a real difference."""
    found = [
        d
        for name, spec in SPECS.items()
        for d in all_differences(build_definition(spec), sdk_run.definitions[name])
    ]
    sdk_text = json.dumps(list(sdk_run.definitions.values()))
    unused = [a.path for a in IGNORED if not any(re.fullmatch(a.path, d.path) for d in found)]
    unused += [a.sdk for a in RENAMED if json.dumps(a.sdk) not in sdk_text]
    assert unused == []


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(_flatten_steps(definition["Steps"]))[name]


def _set_argument(step: str, *path: str | int, value: Any) -> Any:
    def mutate(definition: dict[str, Any]) -> None:
        node: Any = _step(definition, step)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _drop(step: str, key: str) -> Any:
    return lambda definition: _step(definition, step).pop(key)


# (mutation of our definition, the one path the oracle must report)
PERTURBATIONS: dict[str, tuple[Any, str]] = {
    "container argument": (
        _set_argument(
            "Preprocess",
            "Arguments",
            "AppSpecification",
            "ContainerArguments",
            15,
            value="2013-05-01",
        ),
        "Steps.Preprocess.Arguments.AppSpecification.ContainerArguments[15]",
    ),
    "DependsOn": (
        _drop("Preprocess", "DependsOn"),
        "Steps.Preprocess.DependsOn",
    ),
    "step type": (
        _set_argument("FindIncumbent", "Type", value="Processing"),
        "Steps.FindIncumbent.Type",
    ),
    "instance count": (
        _set_argument(
            "Evaluate",
            "Arguments",
            "ProcessingResources",
            "ClusterConfig",
            "InstanceCount",
            value=2,
        ),
        "Steps.Evaluate.Arguments.ProcessingResources.ClusterConfig.InstanceCount",
    ),
    "hyperparameter encoding": (
        _set_argument(
            "Train", "Arguments", "HyperParameters", "objective", value="binary:logistic"
        ),
        "Steps.Train.Arguments.HyperParameters.objective",
    ),
    "stopping condition": (
        _set_argument("Train", "Arguments", "StoppingCondition", "MaxRuntimeInSeconds", value=7200),
        "Steps.Train.Arguments.StoppingCondition.MaxRuntimeInSeconds",
    ),
    "retry policy": (
        _set_argument("ValidateData", "RetryPolicies", 1, "MaxAttempts", value=4),
        "Steps.ValidateData.RetryPolicies[1].MaxAttempts",
    ),
    "properties path": (
        _set_argument(
            "Evaluate",
            "Arguments",
            "ProcessingInputs",
            0,
            "S3Input",
            "S3Uri",
            value={"Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"},
        ),
        "Steps.Evaluate.Arguments.ProcessingInputs[0].S3Input.S3Uri.Get",
    ),
    "output path inside a Join": (
        _set_argument(
            "Preprocess",
            "Arguments",
            "ProcessingOutputConfig",
            "Outputs",
            0,
            "S3Output",
            "S3Uri",
            "Std:Join",
            "Values",
            0,
            value="s3:",
        ),
        "Steps.Preprocess.Arguments.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"
        ".Std:Join.Values[0]",
    ),
    "condition": (
        _set_argument("CheckQuality", "Arguments", "Conditions", 0, "Type", value="GreaterThan"),
        "Steps.CheckQuality.Arguments.Conditions[0].Type",
    ),
    "property file": (
        _set_argument("Evaluate", "PropertyFiles", 0, "FilePath", value="report.json"),
        "Steps.Evaluate.PropertyFiles[0].FilePath",
    ),
    "registration retry policy": (
        _drop("RegisterModel", "RetryPolicies"),
        "Steps.RegisterModel.RetryPolicies",
    ),
    "network isolation off": (
        _set_argument("Train", "Arguments", "EnableNetworkIsolation", value=False),
        "Steps.Train.Arguments.EnableNetworkIsolation",
    ),
    "extra argument": (
        _set_argument("Evaluate", "Arguments", "Environment", "EXTRA", value="1"),
        "Steps.Evaluate.Arguments.Environment.EXTRA",
    ),
    "parameter default": (
        lambda d: d["Parameters"][4].update(DefaultValue=0.8),
        "Parameters[4].DefaultValue",
    ),
    "volume key dropped": (
        lambda d: _step(d, "Train")["Arguments"]["ResourceConfig"].pop("VolumeKmsKeyId"),
        "Steps.Train.Arguments.ResourceConfig.VolumeKmsKeyId",
    ),
}

# The same, on the tuning-with-spot variant.
TUNING_PERTURBATIONS: dict[str, tuple[Any, str]] = {
    "tuning range scaling": (
        lambda d: _step(d, "Train")["Arguments"]["HyperParameterTuningJobConfig"][
            "ParameterRanges"
        ]["ContinuousParameterRanges"][0].update(ScalingType="Linear"),
        "Steps.Train.Arguments.HyperParameterTuningJobConfig.ParameterRanges"
        ".ContinuousParameterRanges[0].ScalingType",
    ),
    "spot checkpoint path": (
        lambda d: _step(d, "Train")["Arguments"]["TrainingJobDefinition"][
            "CheckpointConfig"
        ].update(LocalPath="/opt/ml/checkpoint"),
        "Steps.Train.Arguments.TrainingJobDefinition.CheckpointConfig.LocalPath",
    ),
    "best-model rank": (
        lambda d: _step(d, "FindIncumbent")["Arguments"]["CandidateModelUrl"]["Std:Join"][
            "Values"
        ].__setitem__(1, {"Get": "Steps.Train.TrainingJobSummaries[1].TrainingJobName"}),
        "Steps.FindIncumbent.Arguments.CandidateModelUrl.Std:Join.Values[1].Get",
    ),
}


@pytest.mark.parametrize(
    ("variant", "perturbation"),
    [("training", p) for p in sorted(PERTURBATIONS)]
    + [("tuning-spot", p) for p in sorted(TUNING_PERTURBATIONS)],
)
def test_oracle_reports_a_perturbed_definition(
    sdk_run: SdkRun, variant: str, perturbation: str
) -> None:
    mutate, expected_path = {**PERTURBATIONS, **TUNING_PERTURBATIONS}[perturbation]
    ours = copy.deepcopy(build_definition(SPECS[variant]))
    mutate(ours)
    assert [d.path for d in compare(ours, sdk_run.definitions[variant])] == [expected_path]


def test_canonical_joins_adjacent_literals_only() -> None:
    get = {"Get": "Execution.PipelineExecutionId"}
    split = {"Std:Join": {"On": "/", "Values": ["s3:/", "b", "p", get, "x"]}}
    whole = {"Std:Join": {"On": "/", "Values": ["s3://b/p", get, "x"]}}
    assert canonical(split) == canonical(whole)
    other = {"Std:Join": {"On": "/", "Values": ["s3://b/q", get, "x"]}}
    assert canonical(split) != canonical(other)
    # A different separator is a different value even when the literals concatenate alike.
    assert canonical({"Std:Join": {"On": "", "Values": ["s3:/", "b"]}}) != canonical(
        {"Std:Join": {"On": "/", "Values": ["s3:/", "b"]}}
    )
    # An expression between two literals keeps them apart.
    assert canonical(whole)["Std:Join"]["Values"] == ["s3://b/p", get, "x"]


def test_ignored_differences_are_only_the_named_paths() -> None:
    ours = {"Version": "1", "Steps": [], "Extra": 1}
    sdk = {"Version": "1", "Steps": [], "PipelineExperimentConfig": None}
    assert [d.path for d in compare(ours, sdk)] == ["Extra"]
