"""FindIncumbent and the quality gate: CheckQuality -> RegisterModel | QualityGateFailed."""

from __future__ import annotations

from typing import Any

from mlops.pipeline_definition import images
from mlops.pipeline_definition.contract import (
    AUC_PATH,
    EVALUATION_REPORT,
    MODEL_SHA256_PATH,
    NON_INFERIOR_PATH,
    STEP_CHECK_QUALITY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_FIND_INCUMBENT,
    STEP_PREPROCESS,
    STEP_REGISTER,
    WINDOW_PATHS,
)
from mlops.pipeline_definition.expressions import (
    Expression,
    equals,
    execution_variable,
    greater_than_or_equal_to,
    join,
    lambda_output,
    processing_output_uri,
)
from mlops.pipeline_definition.job_step import STEP_RETRY
from mlops.pipeline_definition.parameters import PipelineParameters
from mlops.pipeline_definition.spec import TrainingPipelineSpec
from mlops.pipeline_definition.training_steps import candidate_model_uri


def find_incumbent_step(spec: TrainingPipelineSpec) -> dict[str, Any]:
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
            # Not used by a step: the retrain gate reads it from a refused run's step
            # metadata to know which incumbent refused it ("" for none).
            {"OutputName": "IncumbentModelPackageArn", "OutputType": "String"},
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
        "RetryPolicies": [dict(STEP_RETRY)],
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


def condition_step(spec: TrainingPipelineSpec, params: PipelineParameters) -> dict[str, Any]:
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
