"""The local runner on a small synthetic pipeline: real subprocesses, real files.

The pipeline mirrors ours (processing -> training -> Lambda -> evaluation with a property
file -> condition -> register or fail) with tiny stdlib-only scripts written here, so every
contract detail the scripts see can be asserted.
"""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mlops.local.contract import package_dir
from mlops.local.definition_source import (
    DefinitionSourceError,
    FileAsset,
    load_definition_from_assembly,
    stage_asset,
)
from mlops.local.registry import LocalRegistry
from mlops.local.run_local import bundled_data_dir, find_incumbent_lambda, stage_raw_data
from mlops.local.runner import LocalRunError, range_midpoints, run_pipeline

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
XGBOOST = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"

# Same idea as the project's processing bootstrap: extract the one archive in argv[1] (CDK
# names a tar.gz file asset <hash>.gz), run the named script as __main__ with the rest.
BOOTSTRAP = """
import glob, runpy, sys, tarfile, tempfile
code_dir, script, args = sys.argv[1], sys.argv[2], sys.argv[3:]
target = tempfile.mkdtemp()
with tarfile.open(glob.glob(code_dir + "/*")[0]) as tar:
    tar.extractall(target, filter="data")
sys.path.insert(0, target)
sys.argv = [script, *args]
runpy.run path(target + "/" + script, run_name="__main__")
""".replace("run path", "run_path")

PREP = """
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--input-dir"); parser.add_argument("--train-dir")
parser.add_argument("--report-dir"); parser.add_argument("--mode")
args = parser.parse_args()
if args.mode == "fail":
    print("some noise", file=sys.stderr)
    print("ERROR: numbers.csv: column value has 2 non-numeric rows", file=sys.stderr)
    sys.exit(1)
values = open(os.path.join(args.input_dir, "numbers.csv")).read().split()
open(os.path.join(args.train_dir, "train.csv"), "w").write("\\n".join(values))
seen = {"argv": sys.argv, "env": os.environ.get("OUTPUT_HINT"),
        "inputs": sorted(os.listdir(args.input_dir))}
json.dump(seen, open(os.path.join(args.report_dir, "seen.json"), "w"))
"""

TRAIN = """
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--eta", type=float); parser.add_argument("--max_depth", type=int)
parser.add_argument("--objective")
args = parser.parse_args()
if args.eta < 0:
    print("Traceback-free failure follows", file=sys.stderr)
    print("ERROR: eta must be positive, got " + str(args.eta), file=sys.stderr)
    sys.exit(1)
model_dir = os.environ["SM_MODEL_DIR"]
config = "/".join(model_dir.split("/")[:-1]) + "/input/config"
seen = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
    "hyperparameters": json.load(open(config + "/hyperparameters.json")),
    "inputdataconfig": json.load(open(config + "/inputdataconfig.json")),
    "resourceconfig": json.load(open(config + "/resourceconfig.json")),
    "train_files": os.listdir(os.environ["SM_CHANNEL_TRAIN"]),
}
json.dump(seen, open(os.path.join(model_dir, "contract.json"), "w"))
open(os.path.join(model_dir, "model.bin"), "w").write("weights")
print("validation-auc:0.61"); print("validation-auc:0.73")
"""

EVALUATE = """
import argparse, json, os, tarfile
parser = argparse.ArgumentParser()
parser.add_argument("--auc", type=float); parser.add_argument("--incumbent")
args = parser.parse_args()
with tarfile.open("/".join([os.environ["MODEL_DIR"], "model.tar.gz"])) as tar:
    names = tar.getnames()
report = {"binary_classification_metrics": {"auc": {"value": args.auc}},
          "comparison": {"not_significantly_worse": 1}, "incumbent": args.incumbent,
          "model_files": sorted(names)}
json.dump(report, open("/opt/ml/processing/evaluation/evaluation.json".replace(
    "/opt/ml", os.environ["OPT_ML"]), "w"))
"""


def _output_uri(step: str, output: str) -> dict[str, Any]:
    return {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://work-bucket/demo",
                {"Get": "Execution.PipelineExecutionId"},
                step,
                output,
            ],
        }
    }


def _processing(name: str, script: str, image: str, inputs, outputs, arguments, env=None):
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": image,
                "ContainerEntrypoint": [
                    "python3",
                    "-c",
                    BOOTSTRAP,
                    "/opt/ml/processing/input/code",
                    script,
                ],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": [
                *[
                    {
                        "InputName": n,
                        "S3Input": {
                            "LocalPath": path,
                            "S3Uri": uri,
                            "S3DataType": "S3Prefix",
                            "S3InputMode": "File",
                        },
                    }
                    for n, uri, path in inputs
                ],
                {
                    "InputName": "code",
                    "S3Input": {
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3Uri": "s3://assets-bucket/code/sourcedir.tar.gz",
                        "S3DataType": "S3Prefix",
                    },
                },
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": n,
                        "S3Output": {
                            "LocalPath": path,
                            "S3Uri": _output_uri(name, n),
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for n, path in outputs
                ]
            },
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "x"}},
            "Environment": env or {},
            "RoleArn": "arn:aws:iam::000000000000:role/r",
        },
    }


def make_definition() -> dict[str, Any]:
    model_uri = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    auc = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "binary_classification_metrics.auc.value",
        }
    }
    evaluation_json = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {
                    "Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation']"
                    ".S3Output.S3Uri"
                },
                "evaluation.json",
            ],
        }
    }
    evaluate = _processing(
        "Evaluate",
        "evaluate.py",
        XGBOOST,
        [("model", model_uri, "/opt/ml/processing/model")],
        [("evaluation", "/opt/ml/processing/evaluation")],
        [
            "--auc",
            {"Get": "Parameters.FakeAuc"},
            "--incumbent",
            {"Get": "Steps.FindIncumbent.OutputParameters['HasIncumbent']"},
        ],
        env={"MODEL_DIR": "/opt/ml/processing/model", "OPT_ML": "/opt/ml"},
    )
    evaluate["PropertyFiles"] = [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://data-bucket/raw"},
            {"Name": "Mode", "Type": "String", "DefaultValue": "ok"},
            {"Name": "Eta", "Type": "Float", "DefaultValue": 0.3},
            {"Name": "FakeAuc", "Type": "Float", "DefaultValue": 0.8},
            {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.7},
            {"Name": "Approval", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": [
            _processing(
                "Prep",
                "prep.py",
                SKLEARN,
                [("raw", {"Get": "Parameters.InputDataUrl"}, "/opt/ml/processing/input/raw")],
                [("train", "/opt/ml/processing/train"), ("report", "/opt/ml/processing/report")],
                [
                    "--input-dir",
                    "/opt/ml/processing/input/raw",
                    "--train-dir",
                    "/opt/ml/processing/train",
                    "--report-dir",
                    "/opt/ml/processing/report",
                    "--mode",
                    {"Get": "Parameters.Mode"},
                ],
                env={"OUTPUT_HINT": "/opt/ml/processing/train"},
            ),
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "AlgorithmSpecification": {
                        "TrainingImage": XGBOOST,
                        "TrainingInputMode": "File",
                        "MetricDefinitions": [
                            {"Name": "validation:auc", "Regex": "validation-auc:([0-9.]+)"}
                        ],
                    },
                    "HyperParameters": {
                        "sagemaker_program": '"train.py"',
                        "sagemaker_submit_directory": '"s3://assets-bucket/code/sourcedir.tar.gz"',
                        "sagemaker_region": '"eu-west-1"',
                        "max_depth": "5",
                        "objective": '"binary:logistic"',
                        "eta": {"Get": "Parameters.Eta"},
                    },
                    "InputDataConfig": [
                        {
                            "ChannelName": "train",
                            "ContentType": "text/csv",
                            "DataSource": {
                                "S3DataSource": {
                                    "S3DataType": "S3Prefix",
                                    "S3Uri": {
                                        "Get": "Steps.Prep.ProcessingOutputConfig"
                                        ".Outputs['train'].S3Output.S3Uri"
                                    },
                                }
                            },
                        }
                    ],
                    "OutputDataConfig": {"S3OutputPath": "s3://work-bucket/models"},
                    "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"},
                    "CheckpointConfig": {"S3Uri": "s3://work-bucket/checkpoints/train"},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                    "RoleArn": "arn:aws:iam::000000000000:role/r",
                },
            },
            {
                "Name": "FindIncumbent",
                "Type": "Lambda",
                "Arguments": {
                    "model_package_group_name": "demo-models",
                    "candidate_model_url": model_uri,
                },
                "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:find-incumbent",
                "OutputParameters": [
                    {"OutputName": "IncumbentModelUrl", "OutputType": "String"},
                    {"OutputName": "HasIncumbent", "OutputType": "String"},
                ],
            },
            evaluate,
            {
                "Name": "CheckQuality",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": auc,
                            "RightValue": {"Get": "Parameters.AucThreshold"},
                        },
                        {
                            "Type": "Equals",
                            "LeftValue": {
                                "Std:JsonGet": {
                                    "PropertyFile": {
                                        "Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"
                                    },
                                    "Path": "comparison.not_significantly_worse",
                                }
                            },
                            "RightValue": 1,
                        },
                    ],
                    "IfSteps": [
                        {
                            "Name": "RegisterModel",
                            "Type": "RegisterModel",
                            "Arguments": {
                                "ModelPackageGroupName": "demo-models",
                                "ModelApprovalStatus": {"Get": "Parameters.Approval"},
                                "InferenceSpecification": {
                                    "Containers": [{"Image": XGBOOST, "ModelDataUrl": model_uri}],
                                    "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"],
                                },
                                "ModelMetrics": {
                                    "ModelQuality": {
                                        "Statistics": {
                                            "ContentType": "application/json",
                                            "S3Uri": evaluation_json,
                                        }
                                    }
                                },
                            },
                        }
                    ],
                    "ElseSteps": [
                        {
                            "Name": "QualityGateFailed",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": [
                                            "AUC",
                                            auc,
                                            "is below",
                                            {"Get": "Parameters.AucThreshold"},
                                        ],
                                    }
                                }
                            },
                        }
                    ],
                },
            },
        ],
    }


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, Any]:
    s3_root = tmp_path / "s3"
    raw = s3_root / "data-bucket" / "raw"
    raw.mkdir(parents=True)
    (raw / "numbers.csv").write_text("1\n2\n3\n")
    code = tmp_path / "code"
    code.mkdir()
    for name, text in (("prep.py", PREP), ("train.py", TRAIN), ("evaluate.py", EVALUATE)):
        (code / name).write_text(text)
    target = s3_root / "assets-bucket" / "code" / "sourcedir.tar.gz"
    target.parent.mkdir(parents=True)
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(code.iterdir()):
            tar.add(path, arcname=path.name)
    registry = LocalRegistry(tmp_path / "registry")
    calls: list[dict[str, Any]] = []

    def find_incumbent(arguments: dict[str, Any]) -> dict[str, str]:
        calls.append(arguments)
        approved = registry.list_packages("demo-models", "Approved")
        if approved:
            return {"IncumbentModelUrl": approved[-1].model_data_path, "HasIncumbent": "true"}
        return {"IncumbentModelUrl": arguments["candidate_model_url"], "HasIncumbent": "false"}

    return {
        "s3_root": s3_root,
        "registry": registry,
        "tmp": tmp_path,
        "calls": calls,
        "lambdas": {"FindIncumbent": find_incumbent},
    }


def _run(env: dict[str, Any], definition=None, name="run", **parameters):
    lines: list[str] = []
    summary = run_pipeline(
        definition or make_definition(),
        s3_root=env["s3_root"],
        work_dir=env["tmp"] / name,
        registry=env["registry"],
        parameters=parameters,
        progress=lines.append,
        local_lambdas=env["lambdas"],
        pipeline_name="demo",
    )
    return summary, lines


def _statuses(summary) -> dict[str, str]:
    return {s.name: s.status for s in summary.steps}


def _model_contract(env: dict[str, Any], summary) -> dict[str, Any]:
    model = next(env["s3_root"].glob("work-bucket/models/*/output/model.tar.gz"))
    with tarfile.open(model) as tar:
        member = tar.extractfile("contract.json")
        assert member is not None
        return json.load(member)


def test_full_run_registers_with_metrics_and_writes_summary(env: dict[str, Any]) -> None:
    summary, lines = _run(env)

    assert summary.status == "Succeeded", summary.failure_reason
    assert _statuses(summary) == {
        "Prep": "Succeeded",
        "Train": "Succeeded",
        "FindIncumbent": "Succeeded",
        "Evaluate": "Succeeded",
        "CheckQuality": "Succeeded",
        "RegisterModel": "Succeeded",
        "QualityGateFailed": "Skipped",
    }
    package = env["registry"].get("demo-models", 1)
    assert package.status == "PendingManualApproval"
    assert package.metrics["ModelQuality"]["Statistics"]["binary_classification_metrics"] == {
        "auc": {"value": 0.8}
    }
    assert package.model_data_url.startswith("s3://work-bucket/models/pipelines-")
    with tarfile.open(package.model_data_path) as tar:
        assert sorted(tar.getnames()) == ["contract.json", "model.bin"]
    written = json.loads((env["tmp"] / "run" / "run-summary.json").read_text())
    assert written["status"] == "Succeeded"
    assert written["registered_model"]["version"] == 1
    assert written["registered_model"]["metrics"]["binary_classification_metrics"]["auc"] == {
        "value": 0.8
    }
    assert written["failure_reason"] is None
    prep = next(s for s in written["steps"] if s["name"] == "Prep")
    assert prep["script_seconds"] > 0 and prep["seconds"] >= prep["script_seconds"]
    assert any(line.startswith("[1/7] Prep ... ") and line.endswith(" s ok") for line in lines)
    # The Lambda got the evaluated model URI; its output reached the evaluation script.
    assert env["calls"][0]["candidate_model_url"].endswith("/output/model.tar.gz")
    assert package.metrics["ModelQuality"]["Statistics"]["incumbent"] == "false"
    assert package.metrics["ModelQuality"]["Statistics"]["model_files"] == [
        "contract.json",
        "model.bin",
    ]


def test_processing_contract_reroots_arguments_and_environment(env: dict[str, Any]) -> None:
    summary, _ = _run(env)
    assert summary.status == "Succeeded"
    report = next(env["s3_root"].glob("work-bucket/demo/*/Prep/report/seen.json"))
    seen = json.loads(report.read_text())
    sandbox = str(env["tmp"] / "run" / "steps" / "Prep")
    assert seen["argv"][1:3] == ["--input-dir", f"{sandbox}/opt/ml/processing/input/raw"]
    assert seen["argv"][-2:] == ["--mode", "ok"]
    assert seen["env"] == f"{sandbox}/opt/ml/processing/train"
    assert seen["inputs"] == ["numbers.csv"]
    train = next(env["s3_root"].glob("work-bucket/demo/*/Prep/train/train.csv"))
    assert train.read_text() == "1\n2\n3"


def test_training_contract_matches_the_toolkit(env: dict[str, Any]) -> None:
    summary, _ = _run(env)
    assert summary.status == "Succeeded"
    seen = _model_contract(env, summary)
    sandbox = env["tmp"] / "run" / "steps" / "Train"
    # hyperparameters.json holds the strings SageMaker passes (JSON-encoded by the SDK).
    assert seen["hyperparameters"]["objective"] == '"binary:logistic"'
    assert seen["hyperparameters"]["eta"] == "0.3"
    # CLI: sorted user hyperparameters, decoded, sagemaker_* removed.
    assert seen["argv"] == ["--eta", "0.3", "--max_depth", "5", "--objective", "binary:logistic"]
    sm = seen["env"]
    assert sm["SM_CHANNEL_TRAIN"] == f"{sandbox}/opt/ml/input/data/train"
    assert sm["SM_CHANNELS"] == '["train"]'
    assert sm["SM_MODEL_DIR"] == f"{sandbox}/opt/ml/model"
    assert sm["SM_OUTPUT_DATA_DIR"] == f"{sandbox}/opt/ml/output/data"
    assert sm["SM_HP_MAX_DEPTH"] == "5"
    assert sm["SM_HP_OBJECTIVE"] == "binary:logistic"
    assert json.loads(sm["SM_HPS"]) == {"eta": 0.3, "max_depth": 5, "objective": "binary:logistic"}
    assert sm["SM_CURRENT_HOST"] == "algo-1" and sm["SM_HOSTS"] == '["algo-1"]'
    assert int(sm["SM_NUM_CPUS"]) >= 1
    assert sm["SM_CHECKPOINT_DIR"] == f"{sandbox}/opt/ml/checkpoints"
    assert seen["cwd"] == f"{sandbox}/opt/ml/code"
    assert seen["train_files"] == ["train.csv"]
    assert seen["inputdataconfig"]["train"]["ContentType"] == "text/csv"
    assert seen["resourceconfig"]["current_instance_type"] == "ml.m5.xlarge"
    props = summary.steps[1]
    assert props.script_seconds is not None and props.script_seconds > 0


def test_condition_false_runs_the_fail_step_and_registers_nothing(env: dict[str, Any]) -> None:
    summary, _ = _run(env, FakeAuc=0.5)

    assert summary.status == "Failed"
    assert summary.failed_step == "QualityGateFailed"
    assert summary.failure_reason == "step QualityGateFailed failed: AUC 0.5 is below 0.7"
    assert _statuses(summary)["RegisterModel"] == "Skipped"
    assert env["registry"].list_packages("demo-models") == []


def test_script_error_line_is_the_failure_reason_and_stops_the_run(env: dict[str, Any]) -> None:
    summary, lines = _run(env, Mode="fail")

    assert summary.status == "Failed"
    assert summary.failed_step == "Prep"
    prep = summary.steps[0]
    assert prep.failure_reason == "numbers.csv: column value has 2 non-numeric rows"
    assert {s.name: s.status for s in summary.steps[1:]} == dict.fromkeys(
        [
            "Train",
            "FindIncumbent",
            "Evaluate",
            "CheckQuality",
            "RegisterModel",
            "QualityGateFailed",
        ],
        "NotStarted",
    )
    assert env["registry"].groups() == []
    written = json.loads((env["tmp"] / "run" / "run-summary.json").read_text())
    assert written["failure_reason"] == (
        "step Prep failed: numbers.csv: column value has 2 non-numeric rows"
    )
    assert lines[-1].startswith("Failed in ")


def test_training_failure_reason_comes_from_the_script(env: dict[str, Any]) -> None:
    summary, _ = _run(env, Eta=-1)

    assert summary.failed_step == "Train"
    train = summary.steps[1]
    assert train.failure_reason == "eta must be positive, got -1.0"
    assert train.script_seconds is not None and train.script_seconds > 0
    assert summary.steps[2].status == "NotStarted"
    assert not list(env["s3_root"].glob("work-bucket/models/*/output/model.tar.gz"))
    assert env["registry"].groups() == []


def test_a_malformed_step_fails_with_a_reason_and_a_summary(env: dict[str, Any]) -> None:
    definition = make_definition()
    del definition["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"][
        "LocalPath"
    ]
    summary, _ = _run(env, definition)

    assert summary.failed_step == "Prep"
    assert summary.steps[0].failure_reason == "KeyError: 'LocalPath'"
    assert json.loads((env["tmp"] / "run" / "run-summary.json").read_text())["status"] == "Failed"


def test_unknown_image_is_refused_before_anything_runs(env: dict[str, Any]) -> None:
    definition = make_definition()
    custom = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:latest"
    definition["Steps"][1]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = custom
    summary, lines = _run(env, definition)

    assert summary.status == "Failed"
    assert summary.failure_reason == (
        f"step Train uses image {custom}; the local runner can only emulate "
        "sagemaker-scikit-learn images or sagemaker-xgboost images"
    )
    assert all(s.status == "NotStarted" for s in summary.steps)
    assert not (env["tmp"] / "run" / "steps").exists()
    assert f"ERROR: {summary.failure_reason}" in lines


def test_second_run_sees_the_approved_incumbent(env: dict[str, Any]) -> None:
    first, _ = _run(env, name="first", Approval="Approved")
    assert first.status == "Succeeded"
    second, _ = _run(env, name="second")

    assert second.status == "Succeeded"
    assert second.registered_model is not None
    assert second.registered_model["version"] == 2
    assert second.registered_model["metrics"]["incumbent"] == "true"
    assert [p.status for p in env["registry"].list_packages("demo-models")] == [
        "Approved",
        "PendingManualApproval",
    ]


def test_tuning_step_runs_one_trial_at_the_midpoints(env: dict[str, Any]) -> None:
    definition = make_definition()
    train = definition["Steps"][1]
    args = train["Arguments"]
    static = {k: v for k, v in args["HyperParameters"].items() if k != "eta"}
    definition["Steps"][1] = {
        "Name": "Train",
        "Type": "Tuning",
        "Arguments": {
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {
                    "Type": "Maximize",
                    "MetricName": "validation:auc",
                },
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "eta", "MinValue": "0.1", "MaxValue": "0.3"}
                    ],
                },
            },
            "TrainingJobDefinition": {
                "StaticHyperParameters": static,
                **{k: v for k, v in args.items() if k != "HyperParameters"},
            },
        },
    }
    top_model = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://work-bucket/models",
                {"Get": "Steps.Train.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }
    text = json.dumps(definition).replace(
        json.dumps({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}), json.dumps(top_model)
    )
    summary, lines = _run(env, json.loads(text))

    assert summary.status == "Succeeded", summary.failure_reason
    assert "--eta" in (seen := _model_contract(env, summary))["argv"]
    assert seen["argv"][seen["argv"].index("--eta") + 1] == "0.2"
    assert any("Train (Tuning, one local trial at the midpoints" in line for line in lines)
    assert env["registry"].get("demo-models", 1).status == "PendingManualApproval"


def test_range_midpoints() -> None:
    assert range_midpoints(
        {
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.1", "MaxValue": "0.3"},
                {
                    "Name": "alpha",
                    "MinValue": "0.01",
                    "MaxValue": "1",
                    "ScalingType": "Logarithmic",
                },
            ],
            "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "3", "MaxValue": "8"}],
            "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}],
        }
    ) == {"eta": "0.2", "alpha": "0.1", "max_depth": "6", "booster": "gbtree"}


def test_missing_lambda_implementation_fails_the_step(env: dict[str, Any]) -> None:
    env["lambdas"] = {}
    summary, _ = _run(env)
    assert summary.failed_step == "FindIncumbent"
    assert "no local implementation for Lambda step FindIncumbent" in (summary.failure_reason or "")


def test_bad_parameter_override_is_refused() -> None:
    with pytest.raises(LocalRunError, match=r"unknown pipeline parameter\(s\) Nope"):
        run_pipeline(
            make_definition(),
            s3_root=Path("/nonexistent-s3"),
            work_dir=Path("/tmp/never-used-by-runner-test"),
            registry=LocalRegistry(Path("/nonexistent-registry")),
            parameters={"Nope": 1},
            progress=lambda _: None,
        )


def test_dependency_order_follows_references_not_list_order(env: dict[str, Any]) -> None:
    definition = make_definition()
    definition["Steps"] = list(reversed(copy.deepcopy(definition["Steps"])))
    summary, _ = _run(env, definition)
    assert summary.status == "Succeeded"
    assert [s.name for s in summary.steps][:4] == ["Prep", "Train", "FindIncumbent", "Evaluate"]


# ---------------------------------------------------------------- definition from cdk.out

ASSET_HASH = "ab" * 32


def _join_with_tokens(text: str, tokens: dict[str, Any]) -> dict[str, Any]:
    """Fn::Join the way CDK renders a JSON string holding tokens."""
    parts: list[Any] = []
    rest = text
    while True:
        positions = [(rest.find(m), m) for m in tokens if m in rest]
        if not positions:
            parts.append(rest)
            break
        index, marker = min(positions)
        parts.extend([rest[:index], tokens[marker]])
        rest = rest[index + len(marker) :]
    return {"Fn::Join": ["", [p for p in parts if p != ""]]}


def make_assembly(root: Path, code_archive: Path) -> Path:
    """A cloud assembly shaped like `cdk synth` output: a nested stage assembly with a data
    stack and an environment-agnostic training stack, its asset manifest and asset files."""
    cdk_out = root / "cdk.out"
    nested = cdk_out / "assembly-dev-us-east-1"
    nested.mkdir(parents=True)
    (cdk_out / f"asset.{ASSET_HASH}.tar.gz").write_bytes(code_archive.read_bytes())
    lambda_dir = cdk_out / f"asset.{'cd' * 32}"
    lambda_dir.mkdir()
    (lambda_dir / "handler.py").write_text("def handler(e, c):\n    return {}\n")
    (cdk_out / "manifest.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    "assembly-dev-us-east-1": {
                        "type": "cdk:cloud-assembly",
                        "properties": {
                            "directoryName": "assembly-dev-us-east-1",
                            "displayName": "dev-us-east-1",
                        },
                    }
                },
            }
        )
    )
    stacks = {
        "devuseast1DataAAAA": ("dev-us-east-1/Data", "aws://111111111111/us-east-1"),
        "devuseast1TrainingBBBB": ("dev-us-east-1/Training", "aws://unknown-account/us-east-1"),
    }
    (nested / "manifest.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    artifact: {
                        "type": "aws:cloudformation:stack",
                        "environment": environment,
                        "properties": {
                            "templateFile": f"{artifact}.template.json",
                            "stackName": display.replace("/", "-"),
                        },
                        "displayName": display,
                    }
                    for artifact, (display, environment) in stacks.items()
                },
            }
        )
    )
    data_template = {
        "Resources": {"DataKey1234": {"Type": "AWS::KMS::Key", "Properties": {}}},
        "Outputs": {
            "ExportBucket": {"Value": "flights-raw-data", "Export": {"Name": "DataBucketName"}},
            "PublishKeyArn": {"Value": {"Fn::GetAtt": ["DataKey1234", "Arn"]}},
        },
    }
    (nested / "devuseast1DataAAAA.template.json").write_text(json.dumps(data_template))
    asset_bucket = "@@ASSET_BUCKET@@"
    text = json.dumps(make_definition())
    text = text.replace(
        "s3://assets-bucket/code/sourcedir.tar.gz", f"s3://{asset_bucket}/{ASSET_HASH}.gz"
    )
    text = text.replace('"RoleArn": "arn:aws:iam::000000000000:role/r"', '"RoleArn": "@@ROLE@@"')
    text = text.replace("s3://data-bucket/raw", "s3://@@DATA_BUCKET@@/raw")
    definition = json.loads(text)
    definition["Metadata"] = {"Region": "@@REGION@@", "Key": "@@KEY@@", "Pick": "@@PICK@@"}
    tokens = {
        asset_bucket: {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
        "@@ROLE@@": {"Fn::GetAtt": ["PipelineRoleC0FFEE", "Arn"]},
        "@@DATA_BUCKET@@": {"Fn::ImportValue": "DataBucketName"},
        "@@REGION@@": {"Ref": "AWS::Region"},
        "@@KEY@@": {
            "Fn::GetStackOutput": {
                "StackName": "dev-us-east-1-Data",
                "Region": "us-east-1",
                "OutputName": "PublishKeyArn",
            }
        },
        "@@PICK@@": {"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]},
    }
    training_template = {
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>"}},
        "Resources": {
            "PipelineRoleC0FFEE": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Pipeline1234": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": {"Fn::Join": ["-", ["demo", {"Ref": "AWS::Region"}]]},
                    "RoleArn": {"Fn::GetAtt": ["PipelineRoleC0FFEE", "Arn"]},
                    "PipelineDefinition": {
                        "PipelineDefinitionBody": _join_with_tokens(
                            json.dumps(definition, separators=(",", ":")), tokens
                        )
                    },
                },
            },
        },
    }
    (nested / "devuseast1TrainingBBBB.template.json").write_text(json.dumps(training_template))
    destination = {
        "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
        "region": "us-east-1",
        "assumeRoleArn": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-file-publishing",
    }
    (nested / "devuseast1TrainingBBBB.assets.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "files": {
                    ASSET_HASH: {
                        "displayName": "TrainingPipeline/Code",
                        "source": {"path": f"../asset.{ASSET_HASH}.tar.gz", "packaging": "file"},
                        "destinations": {
                            "current_account-us-east-1": {
                                **destination,
                                "objectKey": f"{ASSET_HASH}.gz",
                            }
                        },
                    },
                    "cd" * 32: {
                        "source": {"path": f"../asset.{'cd' * 32}", "packaging": "zip"},
                        "destinations": {
                            "current_account-us-east-1": {
                                **destination,
                                "objectKey": f"{'cd' * 32}.zip",
                            }
                        },
                    },
                },
                "dockerImages": {},
            }
        )
    )
    return cdk_out


def test_definition_from_a_synthesized_assembly_runs(env: dict[str, Any]) -> None:
    archive = env["s3_root"] / "assets-bucket" / "code" / "sourcedir.tar.gz"
    cdk_out = make_assembly(env["tmp"], archive)
    archive_bytes = archive.read_bytes()
    shutil.rmtree(env["s3_root"] / "assets-bucket")  # only the staged asset may serve the code

    definition, source = load_definition_from_assembly(cdk_out, "dev")

    asset_bucket = "cdk-hnb659fds-assets-000000000000-us-east-1"
    assert source.pipeline_name == "demo-us-east-1"
    assert source.stack.display_name == "dev-us-east-1/Training"
    assert (source.account, source.region) == ("000000000000", "us-east-1")
    assert definition["Metadata"] == {
        "Region": "us-east-1",
        "Key": "arn:aws:kms:us-east-1:111111111111:key/datakey1234",
        "Pick": "b",
    }
    prep = definition["Steps"][0]["Arguments"]
    assert prep["RoleArn"] == "arn:aws:iam::000000000000:role/pipelinerolec0ffee"
    assert prep["ProcessingInputs"][1]["S3Input"]["S3Uri"] == f"s3://{asset_bucket}/{ASSET_HASH}.gz"
    assert definition["Parameters"][0]["DefaultValue"] == "s3://flights-raw-data/raw"
    # Only the referenced asset is staged (not the Lambda's zip).
    assert [a.asset_id for a in source.assets] == [ASSET_HASH]
    staged = source.stage_assets(env["s3_root"])
    assert staged == [env["s3_root"] / asset_bucket / f"{ASSET_HASH}.gz"]
    assert staged[0].read_bytes() == archive_bytes

    raw = env["s3_root"] / "flights-raw-data" / "raw"
    raw.mkdir(parents=True)
    (raw / "numbers.csv").write_text("4\n5\n")
    summary, _ = _run(env, definition)
    assert summary.status == "Succeeded", summary.failure_reason
    assert env["registry"].get("demo-models", 1).status == "PendingManualApproval"


def test_stack_selection_errors_name_the_candidates(env: dict[str, Any]) -> None:
    archive = env["s3_root"] / "assets-bucket" / "code" / "sourcedir.tar.gz"
    cdk_out = make_assembly(env["tmp"], archive)
    with pytest.raises(DefinitionSourceError, match=r"no pipeline stack matches 'prod'.*dev-us"):
        load_definition_from_assembly(cdk_out, "prod")
    with pytest.raises(DefinitionSourceError, match="not a cloud assembly"):
        load_definition_from_assembly(env["tmp"], "dev")


def test_a_folder_asset_is_staged_as_a_zip(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    asset = FileAsset("id", folder, "zip", "bucket", "k/code.zip")
    target = stage_asset(asset, tmp_path / "s3")
    with zipfile.ZipFile(target) as archive:
        assert archive.read("a.py") == b"x = 1\n"


# ---------------------------------------------------------------- run_local helpers


def test_stage_raw_data_extracts_the_zipped_flights(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with zipfile.ZipFile(data / "flights.csv.zip", "w") as archive:
        archive.writestr("flights.csv", "year,month\n2013,1\n")
    (data / "weather.csv").write_text("w\n")
    (data / "planes.csv").write_text("p\n")
    written = stage_raw_data(data, tmp_path / "raw")
    assert [p.name for p in written] == ["flights.csv", "weather.csv", "planes.csv"]
    assert (tmp_path / "raw" / "flights.csv").read_text() == "year,month\n2013,1\n"
    (data / "planes.csv").unlink()
    with pytest.raises(LocalRunError, match=r"has no planes\.csv \(or planes\.csv\.zip\)"):
        stage_raw_data(data, tmp_path / "raw2")


def test_find_incumbent_lambda_answers_from_the_local_registry(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "reg")
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"m")
    find = find_incumbent_lambda(Path(__file__).resolve().parents[1], registry)
    args = {"ModelPackageGroupName": "g", "CandidateModelUrl": "s3://b/candidate.tar.gz"}
    assert find(args)["HasIncumbent"] == "false"
    assert find(args)["IncumbentModelUrl"] == "s3://b/candidate.tar.gz"
    registry.register(group="g", model_data=model, status="Approved")
    registry.register(group="g", model_data=model, status="Rejected")
    answer = find(args)
    assert answer["HasIncumbent"] == "true"
    assert answer["IncumbentModelUrl"] == registry.get("g", 1).model_data_path
    assert answer["IncumbentModelPackageArn"].endswith("model-package/g/1")


# ---------------------------------------------------------------- our pipeline, real scripts


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January-March of the bundled flights (weather and planes whole), staged once."""
    import pandas as pd

    root = tmp_path_factory.mktemp("slice")
    stage_raw_data(bundled_data_dir(), root)
    flights = pd.read_csv(root / "flights.csv")
    flights[flights["month"] <= 3].to_csv(root / "flights.csv", index=False)
    return root


def _our_pipeline(tmp_path: Path, raw: Path) -> tuple[dict[str, Any], Path]:
    """The project's own definition builder and step scripts, with a local code URI."""
    from mlops.pipeline_definition.offline_join import OfflineTables
    from mlops.pipeline_definition.training_pipeline import TrainingPipelineSpec, build_definition

    s3_root = tmp_path / "s3"
    code = tmp_path / "code"
    code.mkdir()
    for script in (Path(__file__).resolve().parents[1] / "pipeline_steps").glob("*.py"):
        shutil.copyfile(script, code / script.name)
    package_dir(code, s3_root / "assets" / "sourcedir.tar.gz")
    shutil.copytree(raw, s3_root / "artifacts" / "raw")
    spec = TrainingPipelineSpec(
        region="eu-west-1",
        role_arn="arn:aws:iam::111111111111:role/pipeline",
        artifact_bucket="artifacts",
        code_uri="s3://assets/sourcedir.tar.gz",
        model_package_group_name="flights",
        find_incumbent_function_arn="arn:aws:lambda:eu-west-1:111111111111:function:find",
        offline_tables=OfflineTables(database="local_features"),
        auc_threshold=0.55,
    )
    return build_definition(spec), s3_root


SLICE_SPLIT = {"TrainEnd": "2013-01-31", "ValidationEnd": "2013-02-28", "TestEnd": "2013-03-31"}


def _local_catalog(tmp_path: Path, s3_root: Path) -> Any:
    """The slice's weather and planes ingested into a local offline store, and the Glue
    tables of _our_pipeline's database over it and over the staged raw folder."""
    from datetime import UTC, datetime

    from mlops.local.athena import CsvTable, LocalCatalog, OfflineStoreTable
    from mlops.local.feature_store.ingest import ingest_folder
    from mlops.local.feature_store.offline import data_dir
    from mlops.pipeline_definition.offline_join import RAW_FLIGHT_COLUMNS

    store, raw = tmp_path / "store", s3_root / "artifacts" / "raw"
    ingest_folder(store, raw, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    tables = (
        OfflineStoreTable("weather", data_dir(store, "weather")),
        OfflineStoreTable("plane", data_dir(store, "plane")),
        CsvTable("raw_flights", raw, "s3://artifacts/raw/", RAW_FLIGHT_COLUMNS, "NA", 1),
    )
    return LocalCatalog({("AwsDataCatalog", "local_features"): tables})


def _run_ours(tmp_path: Path, s3_root: Path, definition: dict[str, Any], name: str, **params):
    registry = LocalRegistry(tmp_path / "registry")
    repo = Path(__file__).resolve().parents[1]
    catalog_dir = tmp_path / "catalog"
    return run_pipeline(
        definition,
        s3_root=s3_root,
        work_dir=tmp_path / name,
        registry=registry,
        parameters={**SLICE_SPLIT, **params},
        progress=lambda _: None,
        local_lambdas={"FindIncumbent": find_incumbent_lambda(repo, registry)},
        region="eu-west-1",
        catalog=_local_catalog(catalog_dir, s3_root),
    ), registry


def test_our_pipeline_registers_then_compares_with_the_incumbent(
    tmp_path: Path, real_slice: Path
) -> None:
    definition, s3_root = _our_pipeline(tmp_path, real_slice)
    first, registry = _run_ours(
        tmp_path, s3_root, definition, "first", ModelApprovalStatus="Approved"
    )

    assert first.status == "Succeeded", first.failure_reason
    assert first.registered_model is not None
    auc = first.registered_model["metrics"]["binary_classification_metrics"]["auc"]["value"]
    assert 0.55 <= auc < 0.9
    assert first.registered_model["metrics"]["incumbent"]["present"] is False
    assert registry.get("flights", 1).metrics["ModelDataQuality"]["Statistics"]["schema_version"]

    second, _ = _run_ours(tmp_path, s3_root, definition, "second")
    assert second.status == "Succeeded", second.failure_reason
    assert second.registered_model is not None
    assert second.registered_model["version"] == 2
    assert second.registered_model["metrics"]["incumbent"]["present"] is True


def test_our_pipeline_fails_at_validation_on_a_corrupted_table(
    tmp_path: Path, real_slice: Path
) -> None:
    import pandas as pd

    definition, s3_root = _our_pipeline(tmp_path, real_slice)
    weather = s3_root / "artifacts" / "raw" / "weather.csv"
    pd.read_csv(weather).drop(columns=["temp"]).to_csv(weather, index=False)
    summary, registry = _run_ours(tmp_path, s3_root, definition, "run")

    assert summary.status == "Failed"
    assert summary.failed_step == "ValidateData"
    assert "weather.temp" in (summary.failure_reason or "")
    assert "missing" in (summary.failure_reason or "")
    assert registry.groups() == []


# ---- step ordering: DependsOn, references, condition branches --------------------------------


def _step(name: str, depends: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"Name": name, "Type": "Fail", "Arguments": {}, **spec}
    if depends is not None:
        step["DependsOn"] = depends
    return step


def _order(steps: list[dict[str, Any]]) -> list[str]:
    from mlops.local.runner import parse_steps

    return [node.name for node in parse_steps({"Steps": steps})]


def test_depends_on_alone_orders_steps_listed_before_what_they_wait_for() -> None:
    assert _order([_step("B", ["A"]), _step("C"), _step("A")]) == ["C", "A", "B"]
    assert _order([_step("B"), _step("A")]) == ["B", "A"]  # no dependency: definition order


def test_a_property_reference_is_a_dependency_like_depends_on() -> None:
    uses = _step("B", Arguments={"x": {"Get": "Steps.A.ProcessingOutputConfig.Outputs"}})
    assert _order([uses, _step("A")]) == ["A", "B"]


def test_branch_steps_run_after_their_condition_and_what_the_condition_reads() -> None:
    condition = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {"Type": "Equals", "LeftValue": {"Get": "Steps.Eval.Outputs"}, "RightValue": 1}
            ],
            "IfSteps": [_step("Yes")],
            "ElseSteps": [_step("No")],
        },
    }
    assert _order([condition, _step("Eval")]) == ["Eval", "Check", "Yes", "No"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([_step("A", ["B"]), _step("B", ["A"])], "form a cycle among: A, B"),
        ([_step("A", ["Missing"])], "step A refers to unknown steps: Missing"),
        ([_step("A"), _step("A")], "step names must be unique; repeated: A"),
    ],
)
def test_impossible_orders_are_refused_naming_the_steps(steps, message: str) -> None:
    with pytest.raises(LocalRunError, match=message):
        _order(steps)


def test_a_step_waiting_on_the_branch_not_taken_is_skipped_too(env: dict[str, Any]) -> None:
    definition = make_definition()
    definition["Steps"].append(_step("AfterFail", ["QualityGateFailed"], Type="Fail"))
    definition["Steps"][-1]["Arguments"] = {"ErrorMessage": "should not run"}
    summary, _ = _run(env, definition)
    statuses = _statuses(summary)
    assert statuses["QualityGateFailed"] == "Skipped"
    assert statuses["AfterFail"] == "Skipped"
    assert summary.status == "Succeeded"


def test_the_run_and_its_steps_read_time_from_the_clock_given(env: dict[str, Any]) -> None:
    from helpers import TickingClock

    clock = TickingClock()
    summary = run_pipeline(
        make_definition(),
        s3_root=env["s3_root"],
        work_dir=env["tmp"] / "clocked",
        registry=env["registry"],
        progress=lambda _: None,
        local_lambdas=env["lambdas"],
        pipeline_name="demo",
        clock=clock,
    )
    assert summary.started_at == "2026-11-26T12:00:00+00:00"
    # one reading for the start, one per step that ran
    ran = [s for s in summary.steps if s.status != "Skipped"]
    assert len(clock.readings) == 1 + len(ran)


# ---- Athena dataset definition inputs ----------------------------------------------------


def _with_athena_input(query: str, output_format: str = "JSON") -> dict[str, Any]:
    definition = make_definition()
    prep = next(s for s in definition["Steps"] if s["Name"] == "Prep")
    athena_input = {
        "Catalog": "AwsDataCatalog",
        "Database": "db",
        "QueryString": query,
        "OutputS3Uri": "s3://work-bucket/athena/prep",
        "OutputFormat": output_format,
        "OutputCompression": "GZIP",
    }
    prep["Arguments"]["ProcessingInputs"].append(
        {
            "InputName": "joined",
            "DatasetDefinition": {
                "AthenaDatasetDefinition": athena_input,
                "LocalPath": "/opt/ml/processing/input/joined",
                "DataDistributionType": "FullyReplicated",
                "InputMode": "File",
            },
        }
    )
    return definition


def _numbers_catalog(tmp_path: Path) -> Any:
    from mlops.local.athena import CsvTable, LocalCatalog

    folder = tmp_path / "numbers-table"
    folder.mkdir()
    (folder / "numbers.csv").write_text("n,label\n1,a\n2,NA\nx,c\n")
    table = CsvTable(
        "numbers", folder, "s3://b/numbers/", (("n", "int"), ("label", "string")), "NA", 1
    )
    return LocalCatalog({("AwsDataCatalog", "db"): (table,)})


def test_an_athena_input_runs_its_query_locally_and_reaches_the_job(
    env: dict[str, Any],
) -> None:
    import gzip

    summary = run_pipeline(
        _with_athena_input('SELECT n, label, "$path" AS p FROM numbers ORDER BY n'),
        s3_root=env["s3_root"],
        work_dir=env["tmp"] / "athena",
        registry=env["registry"],
        progress=lambda _: None,
        local_lambdas=env["lambdas"],
        catalog=_numbers_catalog(env["tmp"]),
    )
    assert summary.status == "Succeeded", summary.failure_reason
    delivered = list((env["tmp"] / "athena/steps/Prep/opt/ml/processing/input/joined").iterdir())
    assert len(delivered) == 1 and delivered[0].suffix == ".gz"
    rows = [json.loads(line) for line in gzip.decompress(delivered[0].read_bytes()).splitlines()]
    # "x" is not an int (NULL, as LazySimpleSerDe reads it), "NA" is the null format.
    assert rows == [
        {"n": 1, "label": "a", "p": "s3://b/numbers/numbers.csv"},
        {"n": 2, "label": None, "p": "s3://b/numbers/numbers.csv"},
        {"n": None, "label": "c", "p": "s3://b/numbers/numbers.csv"},
    ]
    # The result also stays at OutputS3Uri, as Athena leaves it.
    assert list((env["s3_root"] / "work-bucket/athena/prep").iterdir())


@pytest.mark.parametrize(
    ("catalog", "query", "output_format", "says"),
    [
        (False, "SELECT 1", "JSON", "has no local Glue catalog"),
        (True, "SELECT nope FROM numbers", "JSON", "input joined: the query failed"),
        (True, "SELECT n FROM numbers", "PARQUET", "OutputFormat PARQUET cannot be emulated"),
    ],
)
def test_an_athena_input_that_cannot_run_fails_its_step_in_one_line(
    env: dict[str, Any], catalog: bool, query: str, output_format: str, says: str
) -> None:
    summary = run_pipeline(
        _with_athena_input(query, output_format),
        s3_root=env["s3_root"],
        work_dir=env["tmp"] / "athena",
        registry=env["registry"],
        progress=lambda _: None,
        local_lambdas=env["lambdas"],
        catalog=_numbers_catalog(env["tmp"]) if catalog else None,
    )
    assert summary.status == "Failed" and summary.failed_step == "Prep"
    assert says in (summary.failure_reason or "")
    assert "\n" not in (summary.failure_reason or "")
