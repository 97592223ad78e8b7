"""Whoever starts a job may start it: the pipeline's role for every step of its definition, and
a schedule's role for the job its universal target creates.

SageMaker Pipelines call CreateProcessingJob, CreateTrainingJob, CreateHyperParameterTuningJob,
lambda:Invoke and CreateModelPackage as the pipeline's RoleArn, and pass each step's RoleArn to
SageMaker (iam:PassRole); EventBridge Scheduler calls its universal target's API as the
schedule's role. CloudFormation creates the pipeline and the schedule whatever those roles
may do; the first execution then fails at the first step the role cannot start, or the
schedule's invocation fails without anyone seeing it. job-io-permissions checks what each
job's own role can read and write; this checks who starts the job."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlops.rehearsal.assembly import Assembly, Stack
from mlops.rehearsal.jobs import all_steps
from mlops.rehearsal.policy import Request, allows, role_logical_id, role_statements

STARTERS_DOC = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-access.html "
    "(the pipeline role runs every step and passes each step's role); "
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html; "
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets.html "
    "(the schedule's execution role must be allowed the target's API operation); "
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/doc-history.html "
    "(7 September 2023: the execution role's aws:SourceArn is the schedule group's ARN); "
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateProcessingJob.html "
    "(ProcessingJobName: 1-63 characters)"
)
# A probe execution id, shaped like the documented example of <aws.scheduler.execution-id>
# (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
SCHEDULER_EXECUTION_ID = "d32c5kddcf5bb8c3"
# Pipelines name their jobs "pipelines-<execution id>-<step name>-<suffix>".
PIPELINE_JOB_NAME = "pipelines-probeexecution-{step}-probe"
# CreateProcessingJob's ProcessingJobName: length 1-63 and this pattern (its hyphens are not
# counted by the pattern, so the length is checked by the lookahead).
JOB_NAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PASSED_TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}

# Step type -> (the API the pipeline role calls, the job resource type, where the step's role is).
_JOB_STEPS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "Processing": (
        ("sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob"),
        "processing-job",
        ("RoleArn",),
    ),
    "Training": (
        ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"),
        "training-job",
        ("RoleArn",),
    ),
    "Tuning": (
        ("sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob"),
        "hyper-parameter-tuning-job",
        ("TrainingJobDefinition", "RoleArn"),
    ),
}


@dataclass(frozen=True)
class Problem:
    stack: Stack
    resource: str
    message: str


def _trusts(stack: Stack, role: str, service: str, source_arn: str) -> bool:
    """Whether the role trusts the service for a request from this account and resource (the
    context both services send, which trust policies use against the confused deputy)."""
    trust = stack.resolve(stack.resources[role]["Properties"]["AssumeRolePolicyDocument"])
    statements = [
        s
        for s in trust["Statement"]
        if isinstance(s.get("Principal"), dict)
        and service in _listed(s["Principal"].get("Service", []))
    ]
    context = {"aws:SourceAccount": stack.account, "aws:SourceArn": source_arn}
    return allows(statements, Request("sts:AssumeRole", stack.arn_of(role), context))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _step_requests(stack: Stack, step: dict[str, Any]) -> Iterator[Request]:
    arguments = step.get("Arguments", {})
    arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}"
    if step["Type"] in _JOB_STEPS:
        actions, resource_type, role_path = _JOB_STEPS[step["Type"]]
        job = PIPELINE_JOB_NAME.format(step=step["Name"].lower())
        for action in actions:
            yield Request(action, f"{arn}:{resource_type}/{job}")
        if arguments.get("Tags"):
            yield Request("sagemaker:AddTags", f"{arn}:{resource_type}/{job}")
        role: Any = arguments
        for key in role_path:
            role = role.get(key, {}) if isinstance(role, dict) else {}
        if isinstance(role, str):
            yield Request("iam:PassRole", role, PASSED_TO_SAGEMAKER)
    elif step["Type"] == "Lambda":
        yield Request("lambda:InvokeFunction", str(step["FunctionArn"]))
    elif step["Type"] == "RegisterModel":
        group = arguments["ModelPackageGroupName"]
        yield Request("sagemaker:CreateModelPackage", f"{arn}:model-package/{group}/1")


def _pipeline_problems(stack: Stack) -> Iterator[Problem]:
    for pipeline_id, pipeline in stack.of_type("AWS::SageMaker::Pipeline"):
        props = stack.resolve(pipeline["Properties"])
        role = role_logical_id(stack, str(props["RoleArn"]))
        if role is None:
            yield Problem(
                stack, pipeline_id, f"pipeline role {props['RoleArn']} is not of this stack"
            )
            continue
        if not _trusts(stack, role, "sagemaker.amazonaws.com", stack.arn_of(pipeline_id)):
            yield Problem(stack, pipeline_id, f"{role} does not trust sagemaker.amazonaws.com")
        statements = role_statements(stack, role)
        body = props["PipelineDefinition"]["PipelineDefinitionBody"]
        definition = json.loads(body) if isinstance(body, str) else body
        for step in all_steps(definition["Steps"]):
            for request in _step_requests(stack, step):
                if not allows(statements, request):
                    yield Problem(
                        stack, pipeline_id, f"step {step['Name']}: {role} may not {request}"
                    )


def _schedule_problems(stack: Stack) -> Iterator[Problem]:
    for schedule_id, schedule in stack.of_type("AWS::Scheduler::Schedule"):
        target = stack.resolve(schedule["Properties"]["Target"])
        match = re.fullmatch(r"arn:aws:scheduler:::aws-sdk:sagemaker:(\w+)", str(target["Arn"]))
        if match is None:
            continue
        role = role_logical_id(stack, str(target["RoleArn"]))
        if role is None:
            yield Problem(
                stack, schedule_id, f"schedule role {target['RoleArn']} is not of this stack"
            )
            continue
        # Scheduler assumes the role with the schedule group's ARN as aws:SourceArn (since
        # 7 September 2023; the schedule's own ARN only for accounts allowlisted before), so a
        # trust policy scoped to the schedule's ARN alone is refused.
        group_arn = (
            f"arn:aws:scheduler:{stack.region}:{stack.account}:schedule-group/"
            f"{stack.resolve(schedule['Properties'].get('GroupName', 'default'))}"
        )
        if not _trusts(stack, role, "scheduler.amazonaws.com", group_arn):
            yield Problem(stack, schedule_id, f"{role} does not trust scheduler.amazonaws.com")
        operation = match.group(1)
        action = f"sagemaker:{operation[0].upper()}{operation[1:]}"
        request = json.loads(str(target["Input"]))
        if action != "sagemaker:CreateProcessingJob":
            yield Problem(stack, schedule_id, f"{action}: only CreateProcessingJob is modelled")
            continue
        name = str(request["ProcessingJobName"]).replace(
            "<aws.scheduler.execution-id>", SCHEDULER_EXECUTION_ID
        )
        if not JOB_NAME.match(name):
            yield Problem(
                stack,
                schedule_id,
                f"job name {name!r} (with a documented-size execution id) must be 1-63 "
                f"characters matching "
                f"{JOB_NAME.pattern}",
            )
        job_arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}:processing-job/{name}"
        requests = [
            Request(action, job_arn),
            Request("iam:PassRole", str(request["RoleArn"]), PASSED_TO_SAGEMAKER),
        ]
        if request.get("Tags"):
            requests.append(Request("sagemaker:AddTags", job_arn))
        statements = role_statements(stack, role)
        for needed in requests:
            if not allows(statements, needed):
                yield Problem(stack, schedule_id, f"{role} may not {needed}")


def starter_problems(assembly: Assembly) -> list[Problem]:
    return [
        problem
        for stack in assembly.stacks
        for problem in (*_pipeline_problems(stack), *_schedule_problems(stack))
    ]
