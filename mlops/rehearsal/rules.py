"""The rehearsal's rules: each one a class of mistake AWS refuses at deploy time or at first
use, with the documentation it encodes and the review findings (issue #11) it would have
caught. A rule takes the whole assembly and returns findings; none means it passed."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlops.rehearsal.assembly import Assembly, Stack
from mlops.rehearsal.deliveries import DELIVERIES_DOC, delivery_problems
from mlops.rehearsal.jobs import RUNTIME_VALUE, Job, S3Access, all_jobs
from mlops.rehearsal.limits import LIMITS, violations
from mlops.rehearsal.models import MODELS_DOC, model_problems
from mlops.rehearsal.policy import (
    Request,
    allows,
    bucket_keys,
    key_policy_allows,
    principal_arns,
    role_logical_id,
    role_statements,
)
from mlops.rehearsal.starters import STARTERS_DOC, starter_problems


@dataclass(frozen=True)
class Finding:
    rule: str
    stack: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.stack} {self.resource}: {self.message}"


@dataclass(frozen=True)
class Rule:
    name: str
    source: str  # the documentation the rule encodes
    catches: str  # the issue #11 findings it would have caught
    check: Callable[[Assembly], list[Finding]]


# --- principals must exist before a resource policy names them -----------------------------

# Resource type -> the property holding its resource policy.
POLICY_HOLDERS = {
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::ECR::Repository": "RepositoryPolicyText",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupPolicy",
    "AWS::IAM::Role": "AssumeRolePolicyDocument",
}


def _created_roles(assembly: Assembly) -> dict[str, tuple[Stack, str]]:
    return {
        stack.arn_of(logical_id): (stack, logical_id)
        for stack in assembly.stacks
        for logical_id, _ in stack.of_type("AWS::IAM::Role")
    }


def principals_exist_first(assembly: Assembly) -> list[Finding]:
    roles = _created_roles(assembly)
    findings: list[Finding] = []
    for stack in assembly.stacks:
        for logical_id, resource in stack.resources.items():
            prop = POLICY_HOLDERS.get(resource["Type"])
            document = resource.get("Properties", {}).get(prop) if prop else None
            if not document:
                continue
            statements = stack.resolve(document).get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                for arn in principal_arns(statement):
                    if arn not in roles:
                        continue  # an account, a service, or a role made outside this app
                    role_stack, role_id = roles[arn]
                    if role_stack is stack:
                        ok = role_id == logical_id or role_id in stack.depends_on(logical_id)
                    else:
                        ok = assembly.deployed_before(role_stack, stack)
                    if not ok:
                        findings.append(
                            Finding(
                                "principals-exist-first",
                                stack.path,
                                logical_id,
                                f"policy names {arn}, created by {role_stack.path}/{role_id} "
                                "with no dependency making it exist first",
                            )
                        )
    return findings


# --- every job can read its inputs and write its outputs as SageMaker does -----------------


def _key_by_arn(assembly: Assembly, arn: str) -> tuple[Stack, str] | None:
    for stack in assembly.stacks:
        for logical_id, _ in stack.of_type("AWS::KMS::Key"):
            if stack.arn_of(logical_id) == arn:
                return stack, logical_id
    return None


def _access_requests(access: S3Access, region: str) -> Iterator[Request]:
    bucket_arn = f"arn:aws:s3:::{access.bucket}"
    if access.mode == "read":
        yield Request("s3:GetObject", f"{bucket_arn}/{access.object_key()}")
        if access.data_type == "S3Prefix":
            # SageMaker lists the prefix (ListObjectsV2) before downloading.
            yield Request("s3:ListBucket", bucket_arn, {"s3:prefix": access.key})
    else:
        yield Request("s3:PutObject", f"{bucket_arn}/{access.object_key()}")


def _kms_requests(mode: str, region: str, account: str) -> list[Request]:
    context = {"kms:ViaService": f"s3.{region}.amazonaws.com", "kms:CallerAccount": account}
    actions = ["kms:Decrypt"] if mode == "read" else ["kms:GenerateDataKey", "kms:Decrypt"]
    return [Request(a, "", context) for a in actions]


def _job_findings(
    assembly: Assembly, job: Job, bucket_keys: dict[str, tuple[Stack, str]]
) -> list[Finding]:
    stack = job.stack
    role = role_logical_id(stack, job.role_arn)
    if role is None:
        return [
            Finding(
                "job-io-permissions",
                stack.path,
                job.where,
                f"role {job.role_arn} is not created in this stack",
            )
        ]
    statements = role_statements(stack, role)
    findings: list[Finding] = []

    def need(request: Request, why: str) -> None:
        if not allows(statements, request):
            findings.append(
                Finding(
                    "job-io-permissions", stack.path, job.where, f"{role} may not {request} ({why})"
                )
            )

    def need_key(key_arn: str, mode: str, why: str) -> None:
        for template in _kms_requests(mode, stack.region, stack.account):
            request = Request(template.action, key_arn, template.context)
            need(request, why)
            key = _key_by_arn(assembly, key_arn)
            if key is not None and not key_policy_allows(*key, job.role_arn, request):
                findings.append(
                    Finding(
                        "job-io-permissions",
                        stack.path,
                        job.where,
                        f"key policy of {key_arn} does not allow {role} {request.action} ({why})",
                    )
                )

    for access in job.accesses:
        if access.uri.startswith(RUNTIME_VALUE):
            continue  # e.g. the incumbent's model URI, returned by the FindIncumbent Lambda
        if access.uri.startswith("unresolved:"):
            findings.append(
                Finding("job-io-permissions", stack.path, job.where, f"cannot resolve {access.uri}")
            )
            continue
        for request in _access_requests(access, stack.region):
            need(request, f"{access.mode} {access.uri}")
        if access.bucket in bucket_keys:
            key_stack, key_id = bucket_keys[access.bucket]
            need_key(key_stack.arn_of(key_id), access.mode, f"bucket key of {access.bucket}")
    for key_arn in job.kms_keys:
        need_key(key_arn, "write", "job output KmsKeyId")
    return findings


def job_io_permissions(assembly: Assembly) -> list[Finding]:
    keys = bucket_keys(assembly)
    return [
        finding
        for stack in assembly.stacks
        for job in all_jobs(stack)
        for finding in _job_findings(assembly, job, keys)
    ]


# --- auto-rollback roles can describe their alarms -----------------------------------------


def _by_name(stack: Stack, kind: str, name: str) -> str | None:
    for logical_id, _ in stack.of_type(kind):
        if stack.resource_name(logical_id) == name:
            return logical_id
    return None


def rollback_alarms_describable(assembly: Assembly) -> list[Finding]:
    findings: list[Finding] = []
    for stack in assembly.stacks:
        for endpoint_id, endpoint in stack.of_type("AWS::SageMaker::Endpoint"):
            props = stack.resolve(endpoint["Properties"])
            alarms = (
                props.get("DeploymentConfig", {})
                .get("AutoRollbackConfiguration", {})
                .get("Alarms", [])
            )
            if not alarms:
                continue
            config_id = _by_name(
                stack, "AWS::SageMaker::EndpointConfig", props["EndpointConfigName"]
            )
            if config_id is None:
                continue
            config = stack.resolve(stack.resources[config_id]["Properties"])
            for variant in config["ProductionVariants"]:
                model_id = _by_name(stack, "AWS::SageMaker::Model", variant["ModelName"])
                model = stack.resolve(stack.resources[model_id]["Properties"]) if model_id else {}
                role = role_logical_id(stack, model.get("ExecutionRoleArn", ""))
                statements = role_statements(stack, role) if role else []
                for alarm in alarms:
                    arn = f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:{alarm['AlarmName']}"
                    if not allows(statements, Request("cloudwatch:DescribeAlarms", arn)):
                        findings.append(
                            Finding(
                                "rollback-alarms-describable",
                                stack.path,
                                endpoint_id,
                                f"execution role {role} of model {variant['ModelName']} may not "
                                f"cloudwatch:DescribeAlarms on {arn}",
                            )
                        )
    return findings


# --- documented numeric limits --------------------------------------------------------------


def documented_limits(assembly: Assembly) -> list[Finding]:
    findings: list[Finding] = []
    for stack in assembly.stacks:
        for logical_id, resource in stack.resources.items():
            for limit in LIMITS:
                if not fnmatch.fnmatchcase(resource["Type"], limit.resource_type):
                    continue
                props = stack.resolve(resource.get("Properties", {}))
                for message in violations(limit, props):
                    findings.append(
                        Finding(
                            "documented-limits",
                            stack.path,
                            logical_id,
                            f"{message} ({limit.source})",
                        )
                    )
    return findings


# --- custom resources time out well before CloudFormation's hour ---------------------------

CUSTOM_RESOURCE_DOC = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-resource-cloudformation-customresource.html (ServiceTimeout: 1-3600 s, default 3600)"
)


def custom_resources_time_out(assembly: Assembly) -> list[Finding]:
    findings: list[Finding] = []
    for stack in assembly.stacks:
        for logical_id, resource in stack.resources.items():
            kind = resource["Type"]
            if not (kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"):
                continue
            if "ServiceTimeout" not in resource.get("Properties", {}):
                findings.append(
                    Finding(
                        "custom-resource-timeout",
                        stack.path,
                        logical_id,
                        f"{kind} has no ServiceTimeout: a hung handler holds the stack for an hour",
                    )
                )
    return findings


# --- every CodeBuild project runs a supported Node and the pinned CDK tools -----------------

SUPPORTED_NODE = ("22", "24")  # jsii's supported majors on CodeBuild standard 7.0
PACKAGE_JSON = Path(__file__).resolve().parents[2] / "package.json"


def codebuild_runtime_and_pins(assembly: Assembly) -> list[Finding]:
    pins = json.loads(PACKAGE_JSON.read_text())["devDependencies"]
    findings: list[Finding] = []
    for stack in assembly.stacks:
        for logical_id, project in stack.of_type("AWS::CodeBuild::Project"):
            spec_text = project["Properties"]["Source"].get("BuildSpec")
            if not isinstance(spec_text, str):
                continue
            spec = yaml.safe_load(spec_text)  # JSON is YAML
            install = spec.get("phases", {}).get("install", {})
            node = str(install.get("runtime-versions", {}).get("nodejs", "image default"))
            if node not in SUPPORTED_NODE:
                findings.append(
                    Finding(
                        "codebuild-runtime-and-pins",
                        stack.path,
                        logical_id,
                        f"Node {node}; need one of {SUPPORTED_NODE}",
                    )
                )
            for command in install.get("commands", []):
                for package, version in re.findall(r"npm install -g (\S+?)@(\S+)", command):
                    if pins.get(package) != version:
                        findings.append(
                            Finding(
                                "codebuild-runtime-and-pins",
                                stack.path,
                                logical_id,
                                f"installs {package}@{version}; package.json pins {pins.get(package)}",
                            )
                        )
    return findings


# --- services can deliver what we point them at ------------------------------------------


def service_deliveries_allowed(assembly: Assembly) -> list[Finding]:
    return [
        Finding("service-deliveries-allowed", p.stack.path, p.resource, p.message)
        for p in delivery_problems(assembly)
    ]


def job_starters_allowed(assembly: Assembly) -> list[Finding]:
    return [
        Finding("job-starters-allowed", p.stack.path, p.resource, p.message)
        for p in starter_problems(assembly)
    ]


def models_can_load(assembly: Assembly) -> list[Finding]:
    return [
        Finding("models-can-load", p.stack.path, p.resource, p.message)
        for p in model_problems(assembly)
    ]


RULES: tuple[Rule, ...] = (
    Rule(
        "principals-exist-first",
        "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html "
        "(principals in key, bucket and trust policies must exist when the policy is set)",
        "#1 (HubEncryptsReplicas names the replication role created later in the same stack)",
        principals_exist_first,
    ),
    Rule(
        "job-io-permissions",
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html "
        "(S3Prefix inputs are listed before download: s3:ListBucket with s3:prefix)",
        "#2 (ValidateData cannot list the step-script prefix)",
        job_io_permissions,
    ),
    Rule(
        "rollback-alarms-describable",
        "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html "
        "(the execution role needs cloudwatch:DescribeAlarms on the auto-rollback alarms)",
        "#3 (the model role cannot describe the rollback alarms)",
        rollback_alarms_describable,
    ),
    Rule(
        "documented-limits",
        "mlops/rehearsal/limits.py: one row per property, each with its documentation URL",
        "#5 (linear step 5-9% accepted where the API allows 10-50%)",
        documented_limits,
    ),
    Rule(
        "custom-resource-timeout",
        CUSTOM_RESOURCE_DOC,
        "#7 (Custom::ModelArtifact without ServiceTimeout)",
        custom_resources_time_out,
    ),
    Rule(
        "codebuild-runtime-and-pins",
        "https://docs.aws.amazon.com/codebuild/latest/userguide/runtime-versions.html; "
        "https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.pipelines.CodePipelineProps.html "
        "(cliVersion, cdkAssetsCliVersion)",
        "#6 (Node 18 by default; aws-cdk@2 and cdk-assets@latest unpinned)",
        codebuild_runtime_and_pins,
    ),
    Rule(
        "service-deliveries-allowed",
        DELIVERIES_DOC,
        "none yet: alarm actions, EventBridge targets and dead-letter queues, encrypted log "
        "groups and Lambda failure destinations whose topic, queue, function or key policy "
        "would refuse the service (found by removing each grant from the real templates)",
        service_deliveries_allowed,
    ),
    Rule(
        "job-starters-allowed",
        STARTERS_DOC,
        "none yet: a pipeline role that cannot start a step's job, invoke its Lambda, register "
        "the model or pass the step's role; a schedule role that cannot create the drift job, "
        "pass its role, or names a job longer than SageMaker allows",
        job_starters_allowed,
    ),
    Rule(
        "models-can-load",
        MODELS_DOC,
        "none yet: a model whose execution role cannot pull its image, download its artifact "
        "or decrypt it with the bucket key fails the endpoint deployment after provisioning",
        models_can_load,
    ),
)


def run_all(assembly: Assembly) -> list[Finding]:
    return [finding for rule in RULES for finding in rule.check(assembly)]


def summary(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)
