"""The training pipeline's SageMaker Pipeline definition, built without the SageMaker SDK.

ValidateData -> Preprocess -> Train (or a Tuning step named Train) -> FindIncumbent (Lambda)
-> Evaluate -> CheckQuality -> RegisterModel | QualityGateFailed. Step names, script
arguments and container paths are the contract in docs/CONTRACTS.md.

Every value comes from the spec, so the same spec gives byte-identical JSON (stable cdk diff).
String fields may be CDK token strings (bucket name, code URI, ARNs): they are only embedded.

The pieces live beside this module (contract, spec, parameters, job_step, processing_steps,
training_steps, gate_steps); this one assembles them and re-exports their public names.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.pipeline_definition import images
from mlops.pipeline_definition.contract import (
    APPROVAL_STATUSES,
    AUC_PATH,
    BASELINE_DIR,
    BOOTSTRAP,
    CHECKPOINT_DIR,
    CODE_DIR,
    DEFINITION_VERSION,
    EVALUATION_DIR,
    EVALUATION_REPORT,
    INCUMBENT_DIR,
    JOINED_DIR,
    METRIC_DEFINITIONS,
    MODEL_DIR,
    MODEL_SHA256_PATH,
    NON_INFERIOR_PATH,
    OBJECTIVE_METRIC,
    RAW_DIR,
    REPORT_DIR,
    SPLIT_DIRS,
    STEP_CHECK_QUALITY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_FIND_INCUMBENT,
    STEP_PREPROCESS,
    STEP_REGISTER,
    STEP_TRAIN,
    STEP_VALIDATE,
    TEST_DIR,
    WINDOW_END_LATEST,
    WINDOW_PATHS,
)
from mlops.pipeline_definition.expressions import join, lambda_output, processing_output_uri
from mlops.pipeline_definition.gate_steps import condition_step, find_incumbent_step
from mlops.pipeline_definition.parameters import PipelineParameters, pipeline_parameters
from mlops.pipeline_definition.processing_steps import joined_input, processing_step
from mlops.pipeline_definition.spec import (
    DEFAULT_RANGES,
    CategoricalRange,
    ContinuousRange,
    HyperparameterRange,
    IntegerRange,
    TrainingPipelineSpec,
    TuningSpec,
)
from mlops.pipeline_definition.training_steps import (
    CODE_CHANNEL,
    TRAINING_CHANNELS,
    candidate_model_uri,
    encode_hyperparameters,
    training_code_path,
    training_step,
    tuning_step,
)

__all__ = [
    "APPROVAL_STATUSES",
    "AUC_PATH",
    "BASELINE_DIR",
    "BOOTSTRAP",
    "CHECKPOINT_DIR",
    "CODE_CHANNEL",
    "CODE_DIR",
    "DEFAULT_RANGES",
    "DEFINITION_VERSION",
    "EVALUATION_DIR",
    "EVALUATION_REPORT",
    "INCUMBENT_DIR",
    "JOINED_DIR",
    "METRIC_DEFINITIONS",
    "MODEL_DIR",
    "MODEL_SHA256_PATH",
    "NON_INFERIOR_PATH",
    "OBJECTIVE_METRIC",
    "RAW_DIR",
    "REPORT_DIR",
    "SPLIT_DIRS",
    "STEP_CHECK_QUALITY",
    "STEP_EVALUATE",
    "STEP_FAIL",
    "STEP_FIND_INCUMBENT",
    "STEP_PREPROCESS",
    "STEP_REGISTER",
    "STEP_TRAIN",
    "STEP_VALIDATE",
    "TEST_DIR",
    "TRAINING_CHANNELS",
    "WINDOW_END_LATEST",
    "WINDOW_PATHS",
    "CategoricalRange",
    "ContinuousRange",
    "HyperparameterRange",
    "IntegerRange",
    "PipelineParameters",
    "TrainingPipelineSpec",
    "TuningSpec",
    "build_definition",
    "candidate_model_uri",
    "definition_json",
    "encode_hyperparameters",
    "pipeline_parameters",
    "training_code_path",
]


def build_definition(spec: TrainingPipelineSpec) -> dict[str, Any]:
    """The pipeline definition as a JSON-ready dict (PipelineDefinitionBody once dumped)."""
    params = pipeline_parameters(spec)
    sklearn = images.sklearn_image_uri(spec.region)
    xgboost = images.xgboost_image_uri(spec.region)
    raw = (("raw", params.input_data_url.ref, RAW_DIR),)

    validate = processing_step(
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
    preprocess = processing_step(
        spec,
        params,
        name=STEP_PREPROCESS,
        image_uri=sklearn,
        script="preprocess.py",
        inputs=[],
        dataset_inputs=(joined_input(spec),),
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
        training_step(spec, params)
        if spec.tuning is None
        else tuning_step(spec, params, spec.tuning)
    )
    evaluate = processing_step(
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
            find_incumbent_step(spec),
            evaluate,
            condition_step(spec, params),
        ],
    }


def definition_json(spec: TrainingPipelineSpec) -> str:
    """Deterministic JSON text of the definition (sorted keys, compact separators)."""
    return json.dumps(build_definition(spec), sort_keys=True, separators=(",", ":"))
