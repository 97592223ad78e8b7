"""The training pipeline definition builder: structure, determinism, images, BOOTSTRAP."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlops.pipeline_definition import expressions as ex
from mlops.pipeline_definition import images
from mlops.pipeline_definition.offline_join import OfflineTables, join_query
from mlops.pipeline_definition.training_pipeline import (
    BOOTSTRAP,
    CODE_DIR,
    STEP_CHECK_QUALITY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_FIND_INCUMBENT,
    STEP_PREPROCESS,
    STEP_TRAIN,
    STEP_VALIDATE,
    CategoricalRange,
    TrainingPipelineSpec,
    TuningSpec,
    build_definition,
    definition_json,
)

KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def make_spec(**overrides: Any) -> TrainingPipelineSpec:
    values: dict[str, Any] = {
        "region": "eu-west-1",
        "role_arn": "arn:aws:iam::123456789012:role/PipelineRole",
        "artifact_bucket": "artifacts-bucket",
        "code_uri": "s3://artifacts-bucket/assets/0123abcd.tar.gz",
        "model_package_group_name": "flight-delay",
        "offline_tables": OfflineTables(database="mlops_dev_features"),
        "athena_workgroup": "mlops-dev-training",
        "find_incumbent_function_arn": (
            "arn:aws:lambda:eu-west-1:123456789012:function:find-incumbent"
        ),
        "hyperparameters": {"max_depth": 6, "eta": 0.1, "objective": "binary:logistic"},
        "kms_key_arn": KMS,
    }
    values.update(overrides)
    return TrainingPipelineSpec(**values)


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            for nested in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                found[nested["Name"]] = nested
    return found


def test_steps_follow_the_contract() -> None:
    definition = build_definition(make_spec())
    assert [s["Name"] for s in definition["Steps"]] == [
        STEP_VALIDATE,
        STEP_PREPROCESS,
        STEP_TRAIN,
        STEP_FIND_INCUMBENT,
        STEP_EVALUATE,
        STEP_CHECK_QUALITY,
    ]
    steps = steps_by_name(definition)
    assert {n: s["Type"] for n, s in steps.items()} == {
        "ValidateData": "Processing",
        "Preprocess": "Processing",
        "Train": "Training",
        "FindIncumbent": "Lambda",
        "Evaluate": "Processing",
        "CheckQuality": "Condition",
        "RegisterModel": "RegisterModel",
        "QualityGateFailed": "Fail",
    }
    assert steps["Preprocess"]["DependsOn"] == ["ValidateData"]
    params = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert params["AucThreshold"] == ("Float", 0.7)
    assert params["ProcessingInstanceCount"] == ("Integer", 1)
    assert params["ModelApprovalStatus"] == ("String", "PendingManualApproval")
    assert params["InputDataUrl"] == ("String", "s3://artifacts-bucket/raw/")


def test_join_minimums_are_parameters_passed_to_preprocess() -> None:
    """Config -> spec -> a Float parameter per minimum -> Preprocess's arguments, so an
    operator can override them per execution."""
    definition = build_definition(make_spec(min_weather_match=0.95, min_plane_match=0.8))
    params = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert params["MinWeatherMatch"] == ("Float", 0.95)
    assert params["MinPlaneMatch"] == ("Float", 0.8)
    arguments = steps_by_name(definition)["Preprocess"]["Arguments"]["AppSpecification"][
        "ContainerArguments"
    ]
    for flag, name in (
        ("--min-weather-match", "MinWeatherMatch"),
        ("--min-plane-match", "MinPlaneMatch"),
    ):
        value = arguments[arguments.index(flag) + 1]
        assert value == {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{name}"}]}}
    defaults = build_definition(make_spec())["Parameters"]
    assert {p["Name"]: p["DefaultValue"] for p in defaults if p["Name"].startswith("Min")} == {
        "MinWeatherMatch": 0.9,
        "MinPlaneMatch": 0.7,
    }


def test_processing_steps_run_scripts_through_bootstrap() -> None:
    steps = steps_by_name(build_definition(make_spec()))
    expected_images = {
        "ValidateData": images.sklearn_image_uri("eu-west-1"),
        "Preprocess": images.sklearn_image_uri("eu-west-1"),
        "Evaluate": images.xgboost_image_uri("eu-west-1"),
    }
    for name, image in expected_images.items():
        app = steps[name]["Arguments"]["AppSpecification"]
        assert app["ImageUri"] == image
        assert app["ContainerEntrypoint"][:4] == ["python3", "-c", BOOTSTRAP, CODE_DIR]
        inputs = {
            i["InputName"]: i["S3Input"]
            for i in steps[name]["Arguments"]["ProcessingInputs"]
            if "S3Input" in i
        }
        assert inputs["code"]["S3Uri"] == "s3://artifacts-bucket/assets/0123abcd.tar.gz"
        assert inputs["code"]["LocalPath"] == CODE_DIR
    assert steps["ValidateData"]["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--input-dir",
        "/opt/ml/processing/input/raw",
        "--report-dir",
        "/opt/ml/processing/report",
    ]
    evaluate_inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"]
        for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    }
    assert evaluate_inputs["model"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert evaluate_inputs["incumbent"] == {
        "Get": "Steps.FindIncumbent.OutputParameters['IncumbentModelUrl']"
    }
    assert steps["Evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]


def test_preprocess_reads_the_offline_store_join_through_athena() -> None:
    """Preprocess's only data input is the point-in-time join, run by Athena over the
    stage's Glue tables before the job starts; the raw tables are ValidateData's."""
    steps = {s["Name"]: s for s in build_definition(make_spec())["Steps"]}
    arguments = steps["Preprocess"]["Arguments"]
    inputs = {i["InputName"]: i for i in arguments["ProcessingInputs"]}
    assert set(inputs) == {"joined", "code"}
    dataset = inputs["joined"]["DatasetDefinition"]
    assert "S3Input" not in inputs["joined"]
    assert dataset["LocalPath"] == "/opt/ml/processing/input/joined"
    assert (dataset["DataDistributionType"], dataset["InputMode"]) == ("FullyReplicated", "File")
    athena = dataset["AthenaDatasetDefinition"]
    assert athena["Catalog"] == "AwsDataCatalog"
    assert athena["Database"] == "mlops_dev_features"
    assert athena["WorkGroup"] == "mlops-dev-training"
    assert athena["KmsKeyId"] == KMS
    assert (athena["OutputFormat"], athena["OutputCompression"]) == ("JSON", "GZIP")
    assert athena["QueryString"] == join_query(OfflineTables(database="mlops_dev_features"))
    # Per execution, under the pipeline prefix: runs never read each other's results.
    assert athena["OutputS3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                "artifacts-bucket",
                "training-pipeline",
                {"Get": "Execution.PipelineExecutionId"},
                "Preprocess",
                "joined",
            ],
        }
    }
    container = arguments["AppSpecification"]["ContainerArguments"]
    assert container[:2] == ["--joined-dir", "/opt/ml/processing/input/joined"]
    assert "--input-dir" not in container
    assert steps["Preprocess"]["DependsOn"] == ["ValidateData"]


def test_without_a_key_or_workgroup_the_athena_input_names_neither() -> None:
    spec = make_spec(kms_key_arn=None, athena_workgroup=None)
    steps = {s["Name"]: s for s in build_definition(spec)["Steps"]}
    inputs = steps["Preprocess"]["Arguments"]["ProcessingInputs"]
    athena = inputs[0]["DatasetDefinition"]["AthenaDatasetDefinition"]
    assert "KmsKeyId" not in athena and "WorkGroup" not in athena


def test_same_spec_gives_byte_identical_json() -> None:
    first = definition_json(make_spec(tuning=TuningSpec(), use_spot=True))
    second = definition_json(make_spec(tuning=TuningSpec(), use_spot=True))
    assert first == second
    assert json.dumps(json.loads(first), sort_keys=True) == json.dumps(
        build_definition(make_spec(tuning=TuningSpec(), use_spot=True)), sort_keys=True
    )
    # Hyperparameter insertion order does not leak into the output.
    reordered = make_spec(
        hyperparameters={"objective": "binary:logistic", "eta": 0.1, "max_depth": 6}
    )
    assert definition_json(reordered) == definition_json(make_spec())


def test_condition_is_auc_threshold_and_not_worse_than_incumbent() -> None:
    condition = steps_by_name(build_definition(make_spec()))["CheckQuality"]["Arguments"]
    report = {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert condition["Conditions"] == [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": {
                "Std:JsonGet": {
                    "PropertyFile": report,
                    "Path": "binary_classification_metrics.auc.value",
                }
            },
            "RightValue": {"Get": "Parameters.AucThreshold"},
        },
        {
            "Type": "Equals",
            "LeftValue": {
                "Std:JsonGet": {
                    "PropertyFile": report,
                    "Path": "comparison.non_inferior",
                }
            },
            "RightValue": 1,
        },
    ]
    assert [s["Name"] for s in condition["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in condition["ElseSteps"]] == ["QualityGateFailed"]


def test_fail_message_names_auc_threshold_and_incumbent_comparison() -> None:
    message = steps_by_name(build_definition(make_spec()))[STEP_FAIL]["Arguments"]["ErrorMessage"]
    join = message["Std:Join"]
    assert join["On"] == ""
    values = join["Values"]
    paths = [v["Std:JsonGet"]["Path"] for v in values if isinstance(v, dict) and "Std:JsonGet" in v]
    assert paths == [
        "binary_classification_metrics.auc.value",
        "comparison.non_inferior",
    ]
    assert {"Get": "Parameters.AucThreshold"} in values
    assert {"Get": "Parameters.NonInferiorityMargin"} in values
    assert {"Get": "Steps.FindIncumbent.OutputParameters['HasIncumbent']"} in values
    text = "".join(v for v in values if isinstance(v, str))
    assert "AUC" in text and "incumbent" in text


def test_retry_policies_and_cache_config_on_job_steps() -> None:
    for tuning in (None, TuningSpec()):
        steps = steps_by_name(build_definition(make_spec(tuning=tuning)))
        for name in ("ValidateData", "Preprocess", "Train", "Evaluate"):
            step = steps[name]
            kinds = {k for p in step["RetryPolicies"] for k in p["ExceptionType"]}
            assert kinds == {
                "Step.THROTTLING",
                "Step.SERVICE_FAULT",
                "SageMaker.JOB_INTERNAL_ERROR",
                "SageMaker.CAPACITY_ERROR",
                "SageMaker.RESOURCE_LIMIT",
            }, name
            assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}, name
        register = steps["RegisterModel"]
        assert {k for p in register["RetryPolicies"] for k in p["ExceptionType"]} == {
            "Step.THROTTLING",
            "Step.SERVICE_FAULT",
        }
        # Never cache the incumbent lookup or the registration.
        assert "CacheConfig" not in steps["FindIncumbent"]
        assert "CacheConfig" not in register
    uncached = steps_by_name(build_definition(make_spec(cache_expire_after=None)))
    assert all("CacheConfig" not in s for s in uncached.values())


def test_training_uses_framework_mode_hyperparameters_encoded_like_the_sdk() -> None:
    train = steps_by_name(build_definition(make_spec()))["Train"]["Arguments"]
    assert train["HyperParameters"] == {
        "eta": "0.1",
        "max_depth": "6",
        "objective": '"binary:logistic"',
        "sagemaker_container_log_level": "20",
        "sagemaker_program": '"train.py"',
        "sagemaker_region": '"eu-west-1"',
        # Network isolation: the archive arrives through the `code` channel, not from S3.
        "sagemaker_submit_directory": '"/opt/ml/input/data/code/0123abcd.tar.gz"',
    }
    assert train["AlgorithmSpecification"]["TrainingImage"] == images.xgboost_image_uri("eu-west-1")
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://artifacts-bucket/assets/0123abcd.tar.gz"
    )
    assert train["EnableNetworkIsolation"] is True
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    assert "EnableManagedSpotTraining" not in train


def test_spot_training_sets_max_wait_and_checkpoints() -> None:
    spec = make_spec(use_spot=True, training_max_runtime_seconds=3600, max_wait_seconds=5400)
    train = steps_by_name(build_definition(spec))["Train"]["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    stopping = train["StoppingCondition"]
    assert stopping == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 5400}
    assert train["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    values = train["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert values[:4] == ["s3:/", "artifacts-bucket", "training-pipeline", "checkpoints"]
    with pytest.raises(ValueError, match="max_wait_seconds 600 must be at least"):
        make_spec(use_spot=True, max_wait_seconds=600)


def test_tuning_step_and_best_model_uri() -> None:
    tuning = TuningSpec(
        max_jobs=4,
        max_parallel_jobs=2,
        ranges=(*TuningSpec().ranges, CategoricalRange(name="grow_policy", values=("depthwise",))),
    )
    steps = steps_by_name(build_definition(make_spec(tuning=tuning)))
    train = steps["Train"]
    assert train["Type"] == "Tuning"
    config = train["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:auc",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    ranges = config["ParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "grow_policy", "Values": ['"depthwise"']}
    ]
    static = train["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    # Tuned names are not also static; the framework ones are.
    assert "max_depth" not in static and "eta" not in static
    assert static["sagemaker_program"] == '"train.py"'
    best_model = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://artifacts-bucket/training-pipeline/models",
                {"Get": "Steps.Train.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }
    evaluate_inputs = {
        i["InputName"]: i["S3Input"]["S3Uri"]
        for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]
    }
    assert evaluate_inputs["model"] == best_model
    assert steps["FindIncumbent"]["Arguments"]["CandidateModelUrl"] == best_model
    container = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == best_model
    assert (
        train["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
        == best_model["Std:Join"]["Values"][0]
    )


def test_find_incumbent_is_a_lambda_step_with_string_outputs() -> None:
    step = steps_by_name(build_definition(make_spec()))["FindIncumbent"]
    assert step["FunctionArn"] == "arn:aws:lambda:eu-west-1:123456789012:function:find-incumbent"
    assert step["Arguments"] == {
        "ModelPackageGroupName": "flight-delay",
        "CandidateModelUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
    }
    assert step["OutputParameters"] == [
        {"OutputName": "IncumbentModelUrl", "OutputType": "String"},
        {"OutputName": "HasIncumbent", "OutputType": "String"},
        {"OutputName": "IncumbentModelPackageArn", "OutputType": "String"},
    ]


def test_register_model_attaches_metrics_baseline_and_approval_parameter() -> None:
    register = steps_by_name(build_definition(make_spec()))["RegisterModel"]["Arguments"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    metrics = register["ModelMetrics"]
    quality = metrics["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert quality[-1] == "evaluation.json"
    baseline = metrics["ModelDataQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert baseline == [
        {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"},
        "baseline.json",
    ]
    inference = register["InferenceSpecification"]
    assert inference["SupportedContentTypes"] == ["text/csv"]
    assert inference["Containers"][0]["Image"] == images.xgboost_image_uri("eu-west-1")
    # The registered window is the one Preprocess resolved, as Evaluate reports it.
    metadata = register["CustomerMetadataProperties"]
    assert metadata["train_end"]["Std:Join"]["Values"][0]["Std:JsonGet"]["Path"] == (
        "window.train[1]"
    )
    assert metadata["test_start"]["Std:Join"]["Values"][0]["Std:JsonGet"]["Path"] == (
        "window.test[0]"
    )
    assert metadata["non_inferiority_margin"] == {
        "Std:Join": {"On": "", "Values": [{"Get": "Parameters.NonInferiorityMargin"}]}
    }
    assert inference["Containers"][0]["Environment"] == {}
    env = {"SAGEMAKER_PROGRAM": "inference.py"}
    served = steps_by_name(build_definition(make_spec(inference_environment=env)))
    container = served["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["Environment"] == env


def test_kms_key_on_outputs_and_volumes_unless_instance_storage() -> None:
    steps = steps_by_name(build_definition(make_spec()))
    preprocess = steps["Preprocess"]["Arguments"]
    assert preprocess["ProcessingOutputConfig"]["KmsKeyId"] == KMS
    assert preprocess["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS
    assert steps["Train"]["Arguments"]["OutputDataConfig"]["KmsKeyId"] == KMS
    assert steps["Train"]["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] == KMS
    nvme = steps_by_name(build_definition(make_spec(training_instance_type="ml.m5d.xlarge")))
    assert "VolumeKmsKeyId" not in nvme["Train"]["Arguments"]["ResourceConfig"]
    plain = steps_by_name(build_definition(make_spec(kms_key_arn=None)))
    assert "KmsKeyId" not in plain["Train"]["Arguments"]["OutputDataConfig"]


def test_cdk_token_strings_are_embedded_verbatim() -> None:
    token = "${Token[TOKEN.123]}"
    text = definition_json(make_spec(artifact_bucket=token, code_uri=f"s3://{token}/code.tar.gz"))
    assert token in text
    assert json.loads(text)["Parameters"][0]["DefaultValue"] == f"s3://{token}/raw/"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"approval_status": "Approve"}, "approval_status 'Approve' is not one of"),
        ({"test_weeks": 0}, "test_weeks must be from 1 to 520, got 0"),
        ({"non_inferiority_margin": 0.3}, "non_inferiority_margin must be from 0 to 0.2"),
        ({"min_weather_match": 0.0}, r"min_weather_match must be in \(0, 1\], got 0.0"),
        ({"min_plane_match": 1.01}, r"min_plane_match must be in \(0, 1\], got 1.01"),
        ({"cache_expire_after": "30 days"}, "not an ISO 8601 duration"),
        ({"hyperparameters": {"sagemaker_program": "x.py"}}, "reserved names"),
        ({"region": "mars-north-1"}, "mars-north-1"),
    ],
)
def test_spec_refuses_bad_values_with_a_clear_message(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_spec(**overrides)


def test_tuning_spec_refuses_bad_limits() -> None:
    with pytest.raises(ValueError, match="max_parallel_jobs 5 must be between 1 and max_jobs 2"):
        TuningSpec(max_jobs=2, max_parallel_jobs=5)


# ---- expressions ---------------------------------------------------------------------------


def test_expression_helpers() -> None:
    threshold = ex.Parameter("AucThreshold", ex.ParameterType.FLOAT, 0.8)
    assert threshold.ref == {"Get": "Parameters.AucThreshold"}
    assert threshold.to_json() == {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.8}
    with pytest.raises(ValueError, match="not a Integer"):
        ex.Parameter("Count", ex.ParameterType.INTEGER, True)
    assert ex.execution_variable("PipelineExecutionId") == {"Get": "Execution.PipelineExecutionId"}
    with pytest.raises(ValueError, match="unknown execution variable"):
        ex.execution_variable("ExecutionId")
    a = ex.equals(1, 1)
    b = ex.greater_than(2, 1)
    assert ex.and_(a, b) == {
        "Type": "Not",
        "Expression": {
            "Type": "Or",
            "Conditions": [{"Type": "Not", "Expression": a}, {"Type": "Not", "Expression": b}],
        },
    }
    assert ex.is_expression(ex.join(["a", "b"], "/"))
    assert not ex.is_expression({"Get": "x", "Other": 1})


# ---- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("us-east-1", "683313688378"),
        ("us-east-2", "257758044811"),
        ("us-west-2", "246618743249"),
        ("eu-west-1", "141502667606"),
        ("eu-central-1", "492215442770"),
        ("eu-west-2", "764974769150"),
        ("ap-southeast-1", "121021644041"),
        ("ap-southeast-2", "783357654285"),
        ("ap-northeast-1", "354813040037"),
    ],
)
def test_image_uris_for_known_regions(region: str, account: str) -> None:
    registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
    assert images.sklearn_image_uri(region) == f"{registry}/sagemaker-scikit-learn:1.4-2-cpu-py3"
    assert images.xgboost_image_uri(region) == f"{registry}/sagemaker-xgboost:3.0-5"


def test_unknown_region_names_the_region_and_the_known_ones() -> None:
    with pytest.raises(images.UnknownRegionError) as caught:
        images.xgboost_image_uri("xx-nowhere-9")
    message = str(caught.value)
    assert "'xx-nowhere-9'" in message
    assert "eu-west-1" in message and "us-east-1" in message


def test_image_table_covers_the_config_regions() -> None:
    from mlops.config import KNOWN_REGIONS

    assert set(KNOWN_REGIONS) <= set(images.KNOWN_REGIONS)


# ---- BOOTSTRAP -----------------------------------------------------------------------------


def _code_archive(folder: Path) -> Path:
    source = folder / "src"
    source.mkdir()
    (source / "helper.py").write_text("SUFFIX = 'from-helper'\n")
    (source / "script.py").write_text(
        "import json, sys\n"
        "import helper\n"
        "out = sys.argv[sys.argv.index('--out') + 1]\n"
        "with open(out, 'w') as f:\n"
        "    json.dump({'argv': sys.argv, 'name': __name__, 'helper': helper.SUFFIX}, f)\n"
    )
    code = folder / "code"
    code.mkdir()
    archive = code / "0123abcd.gz"  # how CDK names the uploaded asset
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("helper.py", "script.py"):
            tar.add(source / name, arcname=name)
    return code


def test_bootstrap_runs_the_script_from_the_archive(tmp_path: Path) -> None:
    assert len(BOOTSTRAP) <= 256  # CreateProcessingJob's ContainerEntrypoint item limit
    assert "\n" not in BOOTSTRAP
    code = _code_archive(tmp_path)
    out = tmp_path / "argv.json"
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(code), "script.py", "--x", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    seen = json.loads(out.read_text())
    assert Path(seen["argv"][0]).name == "script.py"
    assert seen["argv"][1:] == ["--x", "1", "--out", str(out)]
    assert seen["name"] == "__main__"
    assert seen["helper"] == "from-helper"


@pytest.mark.parametrize("archives", [0, 2])
def test_bootstrap_needs_exactly_one_archive(tmp_path: Path, archives: int) -> None:
    code = tmp_path / "code"
    code.mkdir()
    for index in range(archives):
        with tarfile.open(code / f"a{index}.tar.gz", "w:gz"):
            pass
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(code), "script.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"ERROR: need one .gz in {code}\n"


def test_bootstrap_passes_the_script_exit_code(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    script = tmp_path / "fail.py"
    script.write_text("import sys\nprint('ERROR: bad input', file=sys.stderr)\nsys.exit(1)\n")
    with tarfile.open(code / "src.tar.gz", "w:gz") as tar:
        tar.add(script, arcname="fail.py")
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(code), "fail.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "ERROR: bad input\n"


# ---- The step scripts accept what the definition passes them ---------------------------------


def _resolve(value: Any, definition: dict[str, Any]) -> str:
    """A plausible run-time value for an argument: parameter defaults, lambda outputs."""
    if isinstance(value, str):
        return value
    if "Std:Join" in value:  # a number parameter as text
        return "".join(_resolve(v, definition) for v in value["Std:Join"]["Values"])
    reference = value["Get"]
    if reference.startswith("Parameters."):
        name = reference.removeprefix("Parameters.")
        return str(next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == name))
    assert reference == "Steps.FindIncumbent.OutputParameters['HasIncumbent']", reference
    return "false"


@pytest.mark.parametrize(
    ("step_name", "module_name"),
    [("ValidateData", "validate"), ("Preprocess", "preprocess"), ("Evaluate", "evaluate")],
)
def test_processing_scripts_parse_their_container_arguments(
    step_name: str, module_name: str
) -> None:
    import importlib

    definition = build_definition(make_spec())
    app = steps_by_name(definition)[step_name]["Arguments"]["AppSpecification"]
    assert app["ContainerEntrypoint"][-1] == f"{module_name}.py"
    argv = [_resolve(v, definition) for v in app["ContainerArguments"]]
    module = importlib.import_module(module_name)
    parsed = vars(module.parse_args(argv))
    # Empty dates and "latest" mean "resolve from the data": the scripts parse them as None.
    unset = {"", "latest"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        parsed_value = parsed[flag.removeprefix("--").replace("-", "_")]
        expected = None if value in unset else value
        assert str(parsed_value).lower() == str(expected).lower(), flag


def test_train_script_accepts_the_hyperparameters_and_tuned_names() -> None:
    import train

    spec = make_spec(hyperparameters={"max_depth": 6, "eta": 0.1, "num_round": 50})
    encoded = steps_by_name(build_definition(spec))["Train"]["Arguments"]["HyperParameters"]
    # The training toolkit passes each hyperparameter as --name <JSON-decoded value>.
    argv = [t for k, v in sorted(encoded.items()) for t in (f"--{k}", str(json.loads(v)))]
    hyperparameters, _ = train.parse_args(argv)
    chosen = (hyperparameters.max_depth, hyperparameters.eta, hyperparameters.num_round)
    assert chosen == (6, 0.1, 50)
    samples = {"max_depth": "4", "eta": "0.1", "min_child_weight": "2.0", "subsample": "0.8"}
    tuned = [t for r in TuningSpec().ranges for t in (f"--{r.name}", samples[r.name])]
    hyperparameters, _ = train.parse_args(tuned)
    assert hyperparameters.subsample == 0.8


def test_metric_definitions_match_the_training_log() -> None:
    import re

    from mlops.pipeline_definition.training_pipeline import METRIC_DEFINITIONS

    patterns = dict(METRIC_DEFINITIONS)
    xgboost_line = "[25]#011train-auc:0.74120#011validation-auc:0.70311"

    def value(metric: str, line: str) -> str | None:
        found = re.search(patterns[metric], line)
        return found.group(1) if found else None

    assert value("train:auc", xgboost_line) == "0.74120"
    assert value("validation:auc", xgboost_line) == "0.70311"
    assert value("validation:auc", "validation-auc: 0.712345") == "0.712345"
    assert value("validation:auc", "validation-logloss: 0.5") is None


def test_training_tuning_and_processing_jobs_run_without_network() -> None:
    for spec in (make_spec(), make_spec(tuning=TuningSpec())):
        steps = steps_by_name(build_definition(spec))
        for step in steps.values():
            if step["Type"] == "Processing":
                assert step["Arguments"]["NetworkConfig"] == {"EnableNetworkIsolation": True}
            if step["Type"] == "Training":
                assert step["Arguments"]["EnableNetworkIsolation"] is True
            if step["Type"] == "Tuning":
                definition = step["Arguments"]["TrainingJobDefinition"]
                assert definition["EnableNetworkIsolation"] is True
                assert "code" in {c["ChannelName"] for c in definition["InputDataConfig"]}
        assert {s["Type"] for s in steps.values()} >= {"Processing"}
