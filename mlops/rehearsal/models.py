"""Every hosted model can be loaded by its own execution role.

When an endpoint is created or updated, SageMaker starts the container as the model's
ExecutionRoleArn: it pulls the image from ECR and downloads ModelDataUrl from S3 (decrypting
it with the bucket's KMS key). CloudFormation creates the Model whatever that role may do;
the endpoint then fails to start after its instances are provisioned, and the stack rolls
back. job-io-permissions covers jobs; this covers models."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mlops.rehearsal.assembly import Assembly, Stack
from mlops.rehearsal.policy import (
    Request,
    allows,
    bucket_keys,
    key_policy_allows,
    role_logical_id,
    role_statements,
)

MODELS_DOC = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html "
    "(CreateModel execution role: s3:GetObject on the model artifacts, ECR pull of the image, "
    "kms:Decrypt for encrypted artifacts)"
)
_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)")


@dataclass(frozen=True)
class Problem:
    stack: Stack
    resource: str
    message: str


def _requests(stack: Stack, image: str, model_url: str) -> Iterator[tuple[Request, str]]:
    match = _ECR_IMAGE.match(image)
    if match:
        account, region, repository = match.groups()
        repo_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
        yield Request("ecr:GetAuthorizationToken", "*"), f"pull {image}"
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            yield Request(action, repo_arn), f"pull {image}"
    if model_url.startswith("s3://"):
        yield (
            Request("s3:GetObject", f"arn:aws:s3:::{model_url.removeprefix('s3://')}"),
            (f"download {model_url}"),
        )


def _model_problems(stack: Stack, keys: Mapping[str, tuple[Stack, str]]) -> Iterator[Problem]:
    for model_id, model in stack.of_type("AWS::SageMaker::Model"):
        props = stack.resolve(model["Properties"])
        role_arn = str(props["ExecutionRoleArn"])
        role = role_logical_id(stack, role_arn)
        if role is None:
            yield Problem(stack, model_id, f"execution role {role_arn} is not of this stack")
            continue
        trust = stack.resolve(stack.resources[role]["Properties"]["AssumeRolePolicyDocument"])
        trusting = [
            s
            for s in trust["Statement"]
            if isinstance(s.get("Principal"), dict)
            and "sagemaker.amazonaws.com" in str(s["Principal"].get("Service", ""))
        ]
        if not allows(trusting, Request("sts:AssumeRole", role_arn)):
            yield Problem(stack, model_id, f"{role} does not trust sagemaker.amazonaws.com")
        statements = role_statements(stack, role)
        containers = props.get("Containers") or [props.get("PrimaryContainer", {})]
        for container in containers:
            model_url = str(container.get("ModelDataUrl", ""))
            for request, why in _requests(stack, str(container.get("Image", "")), model_url):
                if not allows(statements, request):
                    yield Problem(stack, model_id, f"{role} may not {request} ({why})")
            if not model_url.startswith("s3://"):
                continue
            key = keys.get(model_url.removeprefix("s3://").split("/", 1)[0])
            if key is None:
                continue
            key_arn = key[0].arn_of(key[1])
            decrypt = Request(
                "kms:Decrypt",
                key_arn,
                {
                    "kms:ViaService": f"s3.{stack.region}.amazonaws.com",
                    "kms:CallerAccount": stack.account,
                },
            )
            if not allows(statements, decrypt):
                yield Problem(
                    stack, model_id, f"{role} may not {decrypt} (bucket key of {model_url})"
                )
            if not key_policy_allows(key[0], key[1], role_arn, decrypt):
                yield Problem(
                    stack, model_id, f"key policy of {key_arn} does not allow {role} kms:Decrypt"
                )


def model_problems(assembly: Assembly) -> list[Problem]:
    keys = bucket_keys(assembly)  # once: it walks every bucket of every stack
    return [p for stack in assembly.stacks for p in _model_problems(stack, keys)]
