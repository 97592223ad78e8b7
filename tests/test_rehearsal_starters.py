"""job-starters-allowed: the training pipeline's role can start every step of its definition
(the branches of its Condition step included) and pass each step's role, and every drift
schedule's role can create its processing job; each fixture takes one grant out of the real
templates, or moves it just out of reach, and the rule names the step or schedule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import edited_assembly

from mlops.rehearsal.assembly import Assembly, load_assembly
from mlops.rehearsal.jobs import all_steps
from mlops.rehearsal.rules import RULES, job_starters_allowed
from mlops.rehearsal.starters import SCHEDULER_EXECUTION_ID, starter_problems

TRAINING = "dev-us-east-1-Training"
MONITORING = "prod-us-east-1-Monitoring"
PIPELINE = "TrainingPipeline329DEAEC"
SCHEDULE = "DriftMonitorScheduleBBE06F6D"
SCHEDULER_ROLE = "DriftMonitorSchedulerRoleA3A023DD"
JOB_STEPS = ["ValidateData", "Preprocess", "Train", "Evaluate"]

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def rehearsal(assembly_dir: Path) -> Assembly:
    return load_assembly(assembly_dir)


def _found(assembly: Assembly) -> list[tuple[str, str, str]]:
    return [(p.stack.name, p.resource, p.message) for p in starter_problems(assembly)]


def _policy_statements(template: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (r["Properties"]["PolicyDocument"], s)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _change(
    matches: Callable[[dict[str, Any]], bool], change: Callable[[dict[str, Any]], None]
) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        chosen = [(doc, s) for doc, s in _policy_statements(template) if matches(s)]
        assert chosen
        for _, statement in chosen:
            change(statement)

    return edit


def _drop(matches: Callable[[dict[str, Any]], bool]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        chosen = [(doc, s) for doc, s in _policy_statements(template) if matches(s)]
        assert chosen
        for document, statement in chosen:
            document["Statement"].remove(statement)

    return edit


def _sid(sid: str) -> Callable[[dict[str, Any]], bool]:
    return lambda statement: statement.get("Sid") == sid


def _steps_named(found: list[tuple[str, str, str]]) -> list[str]:
    return [message.split(":", 1)[0].removeprefix("step ") for _, _, message in found]


# --- the real app ----------------------------------------------------------------------------


def test_the_rule_is_registered_and_passes_on_every_stack(rehearsal: Assembly) -> None:
    assert "job-starters-allowed" in {rule.name for rule in RULES}
    assert job_starters_allowed(rehearsal) == []


def test_nested_steps_are_walked(rehearsal: Assembly) -> None:
    import json

    stack = rehearsal.by_name(TRAINING)
    body = stack.resolve(
        stack.resources[PIPELINE]["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    )
    names = [step["Name"] for step in all_steps(json.loads(body)["Steps"])]
    assert "RegisterModel" in names and "QualityGateFailed" in names  # inside CheckQuality
    assert names.index("CheckQuality") < names.index("RegisterModel")


# --- the pipeline role -------------------------------------------------------------------------


def test_every_job_step_needs_the_pipeline_role_to_pass_its_role(rehearsal: Assembly) -> None:
    found = _found(edited_assembly(rehearsal, TRAINING, _drop(_sid("PassOnlyToSageMaker"))))
    assert _steps_named(found) == JOB_STEPS
    assert all("iam:PassRole" in message for _, _, message in found)


def test_passing_the_role_to_another_service_does_not_count(rehearsal: Assembly) -> None:
    def to_lambda(statement: dict[str, Any]) -> None:
        statement["Condition"] = {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}

    found = _found(
        edited_assembly(rehearsal, TRAINING, _change(_sid("PassOnlyToSageMaker"), to_lambda))
    )
    assert _steps_named(found) == JOB_STEPS


def test_a_training_step_needs_the_training_job_resource(rehearsal: Assembly) -> None:
    def processing_only(statement: dict[str, Any]) -> None:
        statement["Resource"] = [r for r in statement["Resource"] if ":processing-job/" in r]

    found = _found(
        edited_assembly(rehearsal, TRAINING, _change(_sid("RunThisPipelinesJobs"), processing_only))
    )
    assert set(_steps_named(found)) == {"Train"}
    assert any("sagemaker:CreateTrainingJob" in message for _, _, message in found)


def test_a_lambda_step_needs_invoke_on_its_function(rehearsal: Assembly) -> None:
    def invokes(statement: dict[str, Any]) -> bool:
        return statement.get("Action") == "lambda:InvokeFunction" and any(
            "FindIncumbent" in str(r) for r in statement["Resource"]
        )

    ((_, resource, message),) = _found(edited_assembly(rehearsal, TRAINING, _drop(invokes)))
    assert resource == PIPELINE
    assert message.startswith("step FindIncumbent:") and "lambda:InvokeFunction" in message


def test_the_nested_register_step_needs_create_model_package(rehearsal: Assembly) -> None:
    ((_, _, message),) = _found(
        edited_assembly(rehearsal, TRAINING, _drop(_sid("RegisterIntoThisGroup")))
    )
    assert message.startswith("step RegisterModel:") and "sagemaker:CreateModelPackage" in message


def test_the_pipeline_role_must_trust_sagemaker(rehearsal: Assembly) -> None:
    def untrusted(template: dict[str, Any]) -> None:
        role = template["Resources"]["TrainingPipelineExecutionRole4CBD9ADB"]["Properties"]
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] = {
            "Service": "lambda.amazonaws.com"
        }

    ((_, resource, message),) = _found(edited_assembly(rehearsal, TRAINING, untrusted))
    assert resource == PIPELINE and "does not trust sagemaker.amazonaws.com" in message


# --- the drift schedules -------------------------------------------------------------------------


def test_a_schedule_role_needs_to_pass_the_job_role(rehearsal: Assembly) -> None:
    ((stack, resource, message),) = _found(
        edited_assembly(rehearsal, MONITORING, _drop(_sid("PassTheJobRole")))
    )
    assert (stack, resource) == (MONITORING, SCHEDULE)
    assert "iam:PassRole" in message and "DriftMonitorJobRole" in message


def test_a_schedule_role_needs_create_on_the_job_name(rehearsal: Assembly) -> None:
    def other_prefix(statement: dict[str, Any]) -> None:
        statement["Resource"] = statement["Resource"].replace("-monitor-*", "-drift-*")

    ((_, resource, message),) = _found(
        edited_assembly(rehearsal, MONITORING, _change(_sid("StartMonitoringJobs"), other_prefix))
    )
    assert resource == SCHEDULE
    assert (
        f"sagemaker:CreateProcessingJob on arn:aws:sagemaker:us-east-1:444444444444:processing-job/flightdelay-prod-monitor-{SCHEDULER_EXECUTION_ID}"
        in message
    )


def test_a_schedule_role_trust_must_match_the_account(rehearsal: Assembly) -> None:
    def other_account(template: dict[str, Any]) -> None:
        trust = template["Resources"][SCHEDULER_ROLE]["Properties"]["AssumeRolePolicyDocument"]
        trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": "1"}}

    ((_, resource, message),) = _found(edited_assembly(rehearsal, MONITORING, other_account))
    assert resource == SCHEDULE and "does not trust scheduler.amazonaws.com" in message


def _scheduler_trust_scoped_to(source_arn: str) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        trust = template["Resources"][SCHEDULER_ROLE]["Properties"]["AssumeRolePolicyDocument"]
        trust["Statement"][0]["Condition"]["ArnEquals"] = {"aws:SourceArn": source_arn}

    return edit


def test_a_schedule_role_trust_is_asked_with_the_schedule_group_arn(rehearsal: Assembly) -> None:
    """Scheduler sends the schedule group's ARN as aws:SourceArn, not the schedule's: a trust
    scoped to the group passes, one scoped to the schedule's own ARN is refused."""
    scheduler = "arn:aws:scheduler:us-east-1:444444444444"
    group = _scheduler_trust_scoped_to(f"{scheduler}:schedule-group/default")
    assert _found(edited_assembly(rehearsal, MONITORING, group)) == []
    # The schedule has no Name: before this fix the rule modelled its ARN with the logical id.
    schedule = _scheduler_trust_scoped_to(f"{scheduler}:schedule/default/{SCHEDULE}")
    ((_, resource, message),) = _found(edited_assembly(rehearsal, MONITORING, schedule))
    assert resource == SCHEDULE and "does not trust scheduler.amazonaws.com" in message


def _job_name_prefix(length: int) -> Edit:
    """The schedule's job name as a prefix of `length` characters + the execution id."""

    def edit(template: dict[str, Any]) -> None:
        import json

        target = template["Resources"][SCHEDULE]["Properties"]["Target"]
        text = json.dumps(target["Input"])
        old = "flightdelay-prod-monitor-"
        assert old in text
        target["Input"] = json.loads(text.replace(old, "p" * (length - 1) + "-"))
        # The role may create any job, so only the name is judged.
        for statement in template["Resources"].values():
            if statement["Type"] == "AWS::IAM::Policy":
                for s in statement["Properties"]["PolicyDocument"]["Statement"]:
                    if s.get("Sid") == "StartMonitoringJobs":
                        s["Resource"] = "*"

    return edit


def test_a_scheduled_job_name_fits_sagemakers_63_characters(rehearsal: Assembly) -> None:
    fits = 63 - len(SCHEDULER_EXECUTION_ID)
    assert _found(edited_assembly(rehearsal, MONITORING, _job_name_prefix(fits))) == []
    ((_, resource, message),) = _found(
        edited_assembly(rehearsal, MONITORING, _job_name_prefix(fits + 1))
    )
    assert resource == SCHEDULE and "must be 1-63 characters" in message


def test_a_processing_step_needs_describe_on_its_job(rehearsal: Assembly) -> None:
    """Pipelines poll every job they start: Create alone is not enough."""

    def no_describe(statement: dict[str, Any]) -> None:
        statement["Action"] = [
            a for a in statement["Action"] if a != "sagemaker:DescribeProcessingJob"
        ]

    found = _found(
        edited_assembly(rehearsal, TRAINING, _change(_sid("RunThisPipelinesJobs"), no_describe))
    )
    assert _steps_named(found) == ["ValidateData", "Preprocess", "Evaluate"]
    assert all("may not sagemaker:DescribeProcessingJob" in message for _, _, message in found)


def _tag_the_scheduled_job(template: dict[str, Any]) -> None:
    """Add Tags to the CreateProcessingJob request the schedule sends (its Input)."""
    parts = template["Resources"][SCHEDULE]["Properties"]["Target"]["Input"]["Fn::Join"][1]
    assert parts[0].startswith("{")
    parts[0] = '{"Tags":[{"Key":"project","Value":"flightdelay"}],' + parts[0][1:]


def test_a_tagged_scheduled_job_needs_add_tags(rehearsal: Assembly) -> None:
    ((_, resource, message),) = _found(
        edited_assembly(rehearsal, MONITORING, _tag_the_scheduled_job)
    )
    assert resource == SCHEDULE and "may not sagemaker:AddTags" in message


def test_a_schedule_of_another_operation_is_reported_not_passed(rehearsal: Assembly) -> None:
    def training(template: dict[str, Any]) -> None:
        target = template["Resources"][SCHEDULE]["Properties"]["Target"]
        target["Arn"] = "arn:aws:scheduler:::aws-sdk:sagemaker:createTrainingJob"

    ((_, resource, message),) = _found(edited_assembly(rehearsal, MONITORING, training))
    assert resource == SCHEDULE
    assert message == "sagemaker:CreateTrainingJob: only CreateProcessingJob is modelled"
