"""The artifact chain against an attacker in the hub account, under enforced IAM.

After a model is staged in a serving region, the dev training execution role overwrites the
hub's model.tar.gz (its policy allows that) and S3 replication carries the new bytes to the
serving region's replica. The served copy, its verification (a hash of its bytes) and the
endpoint's model data must not change, and every attempt on the served copy is refused:
by the training role as synthesized, by the same role widened to s3:* (a compromised dev
account controls its own identity policies), by the hub's replication role and by a serving
account role with s3:*. Roles, policies, keys and properties come from the synthesized app.

Two judges, because moto 5.2.5 can only be one of them:
- identity policies: moto itself (IAM enforced from the first request, as the role), via
  tests/lambda_iam.run_as_role;
- bucket policies: moto evaluates them for object requests but ignores their principals and
  every condition it has no value for, which for S3 is all of them (tested below): it would
  apply our ArnNotEquals-conditioned Deny to the stager as well, and CDK's TLS-only Deny to
  every request. So the bucket policies are judged by this test's own evaluator (nothing in
  mlops), hooked into every S3 call the scenario makes before moto sees it. The evaluator is
  checked on S3's documented rules, against moto where moto can judge (no conditions), and
  fixtures show each check of the attack failing once a defence is taken out.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import inspect
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.session
import pytest
from aws_cdk import aws_sagemaker as sagemaker
from botocore.exceptions import ClientError
from moto import mock_aws
from test_stage_model import staging

from mlops.rehearsal.assembly import Assembly, Stack, load_assembly
from mlops.rehearsal.policy import Request, allows, role_statements
from tests.lambda_iam import run_as_role

HUB, SERVING = "dev-us-east-1", "staging-eu-west-1"
REVIEWED = b"the reviewed model.tar.gz"
MALICIOUS = b"a model the reviewers never saw"
SHA = hashlib.sha256(REVIEWED).hexdigest()
EVERYTHING_S3 = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
# What the serving bucket's Deny must cover: every action that creates, replaces or removes an
# object version (CopyObject and multipart uploads are authorized as s3:PutObject).
VERSION_WRITES = {
    "s3:PutObject",
    "s3:ReplicateObject",
    "s3:RestoreObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _account(arn: str) -> str:
    return arn.split(":")[4]


# --- the test's own bucket-policy evaluator --------------------------------------------------


def _principal_matches(principal: Any, arn: str) -> bool:
    if principal == "*":
        return True
    for value in _listed(principal.get("AWS", [])):
        root = value if re.fullmatch(r"\d{12}", value) else None
        root = root or (value.split(":")[4] if value.endswith(":root") else None)
        if value == "*" or value == arn or root == _account(arn):
            return True
    return False


def _condition_holds(operator: str, key: str, expected: Any, principal_arn: str) -> bool:
    if (operator, key) == ("Bool", "aws:SecureTransport"):
        return str(expected).lower() == "true"  # every request here uses TLS
    if key != "aws:PrincipalArn":
        pytest.fail(f"condition {operator} {key} is not modelled by this test's evaluator")
    negated = "Not" in operator
    base = operator.replace("Not", "")
    if base in ("ArnEquals", "ArnLike", "StringLike"):  # Arn* operators take * and ? too
        hit = any(fnmatch.fnmatchcase(principal_arn, e) for e in _listed(expected))
    elif base == "StringEquals":
        hit = principal_arn in _listed(expected)
    else:
        pytest.fail(f"condition operator {operator} is not modelled by this test's evaluator")
    return not hit if negated else hit


def bucket_policy_effect(
    statements: list[dict[str, Any]], action: str, resource: str, principal_arn: str
) -> str:
    """'Deny', 'Allow' or 'Neutral': what a bucket policy says about one request (an explicit
    deny wins). Conditions it does not model fail the test instead of guessing."""
    effects = set()
    for statement in statements:
        if not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
            continue
        if not _principal_matches(statement.get("Principal", {}), principal_arn):
            continue
        if all(
            _condition_holds(operator, key, expected, principal_arn)
            for operator, block in statement.get("Condition", {}).items()
            for key, expected in block.items()
        ):
            effects.add(statement["Effect"])
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "Neutral"


def bucket_refuses(
    bucket: tuple[str, list[dict[str, Any]]], action: str, resource: str, principal_arn: str
) -> bool:
    """S3's resource side: an explicit Deny refuses; another account also needs an Allow."""
    account, statements = bucket
    effect = bucket_policy_effect(statements, action, resource, principal_arn)
    return effect == "Deny" or (_account(principal_arn) != account and effect != "Allow")


def _s3_request(operation: str, params: dict[str, Any]) -> tuple[str, str]:
    bucket, key = params["Bucket"], params.get("Key")
    if operation in ("GetObject", "HeadObject"):
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    elif operation == "DeleteObject":
        action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
    elif operation == "PutObject":
        action = "s3:PutObject"
    elif operation in ("ListObjectVersions", "ListObjectsV2"):
        action = "s3:ListBucketVersions" if operation == "ListObjectVersions" else "s3:ListBucket"
    else:
        pytest.fail(f"S3 {operation} is not modelled by this test's bucket-policy hook")
    return action, f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"


@contextmanager
def bucket_policies_enforced(
    buckets: dict[str, tuple[str, list[dict[str, Any]]]], principal_arn: str
) -> Iterator[None]:
    """Every S3 client created in the block is refused (AccessDenied) what the buckets'
    policies refuse to principal_arn, before moto sees the request."""
    original_client = boto3.client

    def refuse(model: Any, params: dict[str, Any], **_: Any) -> None:
        action, resource = _s3_request(model.name, params)
        if bucket_refuses(buckets[params["Bucket"]], action, resource, principal_arn):
            error = {"Code": "AccessDenied", "Message": f"bucket policy refuses {action}"}
            raise ClientError({"Error": error}, model.name)

    def gated_client(*args: Any, **kwargs: Any) -> Any:
        client = original_client(*args, **kwargs)
        if client.meta.service_model.service_name == "s3":
            client.meta.events.register("before-parameter-build.s3", refuse)
        return client

    with mock.patch.object(boto3, "client", gated_client):
        yield


BUCKET = "arn:aws:s3:::serving"
STAGER = "arn:aws:iam::333333333333:role/stager"
ONLY_THE_STAGER = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": ["s3:PutObject", "s3:DeleteObject*"],
    "Resource": f"{BUCKET}/models/sha256/*",
    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": STAGER}},
}
HUB_MAY_REPLICATE = {
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
    "Action": "s3:ReplicateObject",
    "Resource": f"{BUCKET}/training-pipeline/models/*",
    "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::222222222222:role/rep*"}},
}


@pytest.mark.parametrize(
    ("action", "key", "principal", "refused"),
    [
        ("s3:PutObject", "models/sha256/d/m", STAGER, False),  # the exempted role
        ("s3:PutObject", "models/sha256/d/m", "arn:aws:iam::333333333333:role/other", True),
        ("s3:DeleteObjectVersion", "models/sha256/d/m", "arn:aws:iam::333333333333:root", True),
        (
            "s3:PutObject",
            "elsewhere",
            "arn:aws:iam::333333333333:role/other",
            False,
        ),  # same account
        ("s3:PutObject", "elsewhere", "arn:aws:iam::222222222222:role/other", True),  # no Allow
        (
            "s3:ReplicateObject",
            "training-pipeline/models/m",
            "arn:aws:iam::222222222222:role/rep1",
            False,
        ),
        (
            "s3:ReplicateObject",
            "training-pipeline/models/m",
            "arn:aws:iam::222222222222:role/x",
            True,
        ),
        ("s3:ReplicateObject", "models/sha256/d/m", "arn:aws:iam::222222222222:role/rep1", True),
    ],
)
def test_the_evaluator_reads_bucket_policies_as_s3_does(
    action: str, key: str, principal: str, refused: bool
) -> None:
    bucket = ("333333333333", [ONLY_THE_STAGER, HUB_MAY_REPLICATE])
    assert bucket_refuses(bucket, action, f"{BUCKET}/{key}", principal) is refused


def test_the_evaluator_refuses_to_guess_a_condition() -> None:
    unknown = {**ONLY_THE_STAGER, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    with pytest.raises(pytest.fail.Exception, match="not modelled"):
        bucket_policy_effect([unknown], "s3:PutObject", f"{BUCKET}/models/sha256/d/m", STAGER)


@pytest.mark.parametrize("effect", ["Deny", "Allow"])
@pytest.mark.parametrize("resource", ["arn:aws:s3:::serving/models/*", "arn:aws:s3:::serving/x/*"])
@pytest.mark.parametrize("action", ["s3:PutObject", "s3:Get*", "s3:*"])
def test_the_evaluator_agrees_with_moto_where_moto_can_judge(
    effect: str, resource: str, action: str
) -> None:
    """moto judges a bucket policy without conditions (principal '*'): a second opinion."""
    statement = {
        "Effect": effect,
        "Principal": {"AWS": "*"},
        "Action": action,
        "Resource": resource,
    }
    with mock_aws():
        s3 = _s3("us-east-1")
        s3.create_bucket(Bucket="serving")
        s3.put_bucket_policy(Bucket="serving", Policy=json.dumps({"Statement": [statement]}))
        for call, iam_action in (
            (lambda: s3.put_object(Bucket="serving", Key="models/m", Body=b"x"), "s3:PutObject"),
            (lambda: s3.get_object(Bucket="serving", Key="models/m"), "s3:GetObject"),
        ):
            ours = bucket_policy_effect(
                [statement], iam_action, "arn:aws:s3:::serving/models/m", STAGER
            )
            assert (_attempt(call) == "refused by moto (403)") is (ours == "Deny")


# --- the chain, as synthesized ---------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    stack: Stack  # where its role is (and so its account)
    role: str  # logical id, or a name for a role the template does not have
    statements: list[dict[str, Any]]
    arn: str


@dataclass
class Chain:
    """What the synthesized app says about one serving region's current model."""

    request: Any  # staging.StagingRequest, with this test's bytes standing in
    model_data_url: str  # the endpoint's current model (resolved)
    buckets: dict[str, tuple[str, list[dict[str, Any]]]]  # name -> (account, policy)
    training: Actor
    replication: Actor
    stager: Actor
    serving_operator: Actor  # a role of the serving account with s3:* (not the stager)
    fresh_bucket: str = "a-region-added-later"


def _role_starting(stack: Stack, prefix: str) -> str:
    return next(k for k, _ in stack.of_type("AWS::IAM::Role") if k.startswith(prefix))


def _actor(stack: Stack, role: str) -> Actor:
    return Actor(stack, role, role_statements(stack, role), stack.arn_of(role))


def _bucket_policy(stack: Stack, bucket: str) -> list[dict[str, Any]]:
    (statements,) = [
        stack.resolve(p["Properties"]["PolicyDocument"])["Statement"]
        for _, p in stack.of_type("AWS::S3::BucketPolicy")
        if stack.resolve(p["Properties"]["Bucket"]) == bucket
    ]
    return list(statements)


def synthesized_chain(assembly: Assembly) -> Chain:
    training, hub_data = assembly.by_name(f"{HUB}-Training"), assembly.by_name(f"{HUB}-Data")
    serving, data = assembly.by_name(f"{SERVING}-Serving"), assembly.by_name(f"{SERVING}-Data")
    (current,) = [
        m["Properties"] for k, m in serving.of_type("AWS::SageMaker::Model") if "Current" in k
    ]
    sha_tag = next(t["Value"] for t in current["Tags"] if t["Key"] == "model-sha256")
    (artifact,) = [
        serving.resolve(r["Properties"])
        for _, r in serving.of_type("Custom::ModelArtifact")
        if r["Properties"]["Sha256"] == sha_tag
    ]
    stager_function = next(
        f for k, f in serving.of_type("AWS::Lambda::Function") if k.startswith("ModelStagingStager")
    )
    stager_role = stager_function["Properties"]["Role"]["Fn::GetAtt"][0]
    operator_arn = f"arn:aws:iam::{serving.account}:role/serving-operator"
    return Chain(
        # The synthesized keys (what the roles may touch) hold this test's bytes.
        request=staging.StagingRequest(
            source_bucket=artifact["SourceBucket"],
            destination_bucket=artifact["DestinationBucket"],
            key=artifact["Key"],
            staged_key=artifact["StagedKey"],
            sha256=SHA,
            destination_kms_key="",  # set once moto has the key
        ),
        model_data_url=serving.resolve(current["PrimaryContainer"]["ModelDataUrl"]),
        buckets={
            artifact["SourceBucket"]: (
                hub_data.account,
                _bucket_policy(hub_data, artifact["SourceBucket"]),
            ),
            artifact["DestinationBucket"]: (
                data.account,
                _bucket_policy(data, artifact["DestinationBucket"]),
            ),
            "a-region-added-later": (data.account, []),
        },
        training=_actor(training, _role_starting(training, "TrainingPipelineExecutionRole")),
        replication=_actor(hub_data, _role_starting(hub_data, "ModelReplicationRole")),
        stager=_actor(serving, stager_role),
        serving_operator=Actor(serving, "ServingOperator", EVERYTHING_S3, operator_arn),
    )


@pytest.fixture(scope="module")
def chain(assembly_dir: Path) -> Chain:
    return synthesized_chain(load_assembly(assembly_dir))


# --- the attack ------------------------------------------------------------------------------


@dataclass
class Outcome:
    hub_write: str = ""
    hub_bytes: bytes = b""
    attempts: dict[str, str] = field(default_factory=dict)  # who tried what -> what happened
    staged_sha: str = ""
    staged_version: str = ""
    first_version: str = ""
    version_shas: list[str] = field(default_factory=list)
    restaged: Any = None
    served_sha: str = ""
    fresh_region: Any = None


@contextmanager
def account(number: str) -> Iterator[None]:
    with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": number}):
        yield


def _s3(region: str) -> Any:
    return boto3.client("s3", region_name=region)


def _attempt(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if "bucket policy" in str(error):
            return "refused by bucket policy"  # this test's evaluator
        return (
            "refused by identity (moto)" if code == "AccessDenied" else f"refused by moto ({code})"
        )
    return "written"


_CALLS = itertools.count()


def as_actor(chain: Chain, actor: Actor, body: Callable[[], Any], *, gated: bool = True) -> Any:
    """body's result as the actor's role, moto enforcing its identity policy and (gated)
    this test's evaluator the bucket policies."""
    stack = actor.stack
    name = f"{actor.role[:40]}-{next(_CALLS)}"  # a role of its own in moto for each run

    def run() -> Any:
        return run_as_role(stack, name, stack.region, body, statements=actor.statements)[0]

    with account(stack.account):
        if not gated:
            return run()
        with bucket_policies_enforced(chain.buckets, actor.arn):
            return run()


def replicate(chain: Chain, actor: Actor, key: str, body: bytes) -> str:
    """S3 replication writing into the serving bucket as the hub's replication role: it is
    authorized as s3:ReplicateObject by the role's policy and the destination's policy."""
    bucket = chain.request.destination_bucket
    resource = f"arn:aws:s3:::{bucket}/{key}"
    if not allows(actor.statements, Request("s3:ReplicateObject", resource)):
        return "refused by identity (policy evaluator)"
    if bucket_refuses(chain.buckets[bucket], "s3:ReplicateObject", resource, actor.arn):
        return "refused by bucket policy"
    with account(chain.buckets[bucket][0]):
        _s3("eu-west-1").put_object(Bucket=bucket, Key=key, Body=body)
    return "written"


def _sha(response: Any) -> str:
    return hashlib.sha256(response["Body"].read()).hexdigest()


def _read(client: Any, bucket: str, key: str, **version: str) -> tuple[str, str]:
    """(sha256 of the bytes, version id), or ('missing', '')."""
    try:
        response = client.get_object(Bucket=bucket, Key=key, **version)
    except client.exceptions.NoSuchKey:
        return "missing", ""
    return _sha(response), response.get("VersionId", "")


def attack(chain: Chain) -> Outcome:
    request, outcome = chain.request, Outcome()
    hub_account, serving_account = (
        chain.buckets[b][0] for b in (request.source_bucket, request.destination_bucket)
    )
    with mock_aws():
        with account(hub_account):
            _s3("us-east-1").create_bucket(Bucket=request.source_bucket)
            _s3("us-east-1").put_object(
                Bucket=request.source_bucket, Key=request.key, Body=REVIEWED
            )
        with account(serving_account):
            for bucket in (request.destination_bucket, chain.fresh_bucket):
                _s3("eu-west-1").create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
                )
                _s3("eu-west-1").put_bucket_versioning(
                    Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
                )
            key_arn = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"][
                "Arn"
            ]
        request = replace(request, destination_kms_key=key_arn)

        def stage(target: Any = request) -> Any:
            try:
                return staging.stage_model(_s3("us-east-1"), _s3("eu-west-1"), target)
            except staging.ArtifactMismatch as error:
                return error

        first = as_actor(chain, chain.stager, stage)
        assert isinstance(first, dict), first  # the stager itself works under both judges
        outcome.first_version = first["VersionId"]

        # The attack's premise: the training role overwrites the hub's object.
        def overwrite_hub() -> str:
            return _attempt(
                lambda: _s3("us-east-1").put_object(
                    Bucket=request.source_bucket, Key=request.key, Body=MALICIOUS
                )
            )

        outcome.hub_write = as_actor(chain, chain.training, overwrite_hub)
        # Replication carries it into the serving region, under the hub's key.
        outcome.attempts["replication writes the replica"] = replicate(
            chain, chain.replication, request.key, MALICIOUS
        )

        def overwrite_staged() -> str:
            return _attempt(
                lambda: _s3("eu-west-1").put_object(
                    Bucket=request.destination_bucket, Key=request.staged_key, Body=MALICIOUS
                )
            )

        def delete_staged() -> str:  # the reviewed version, so an older one becomes current
            return _attempt(
                lambda: _s3("eu-west-1").delete_object(
                    Bucket=request.destination_bucket,
                    Key=request.staged_key,
                    VersionId=outcome.first_version,
                )
            )

        widened = replace(chain.training, statements=EVERYTHING_S3)
        outcome.attempts.update(
            {
                # Each layer on its own: the role's policy (moto), the bucket policy.
                "training role writes the served copy (identity only)": as_actor(
                    chain, chain.training, overwrite_staged, gated=False
                ),
                "training role writes the served copy": as_actor(
                    chain, chain.training, overwrite_staged
                ),
                "training role widened to s3:* writes the served copy": as_actor(
                    chain, widened, overwrite_staged
                ),
                "replication replicates onto the served copy": replicate(
                    chain,
                    replace(chain.replication, statements=EVERYTHING_S3),
                    request.staged_key,
                    MALICIOUS,
                ),
                "serving-account role with s3:* writes the served copy": as_actor(
                    chain, chain.serving_operator, overwrite_staged
                ),
                "serving-account role with s3:* deletes a served version": as_actor(
                    chain, chain.serving_operator, delete_staged
                ),
            }
        )

        with account(hub_account):
            hub_object = _s3("us-east-1").get_object(Bucket=request.source_bucket, Key=request.key)
            outcome.hub_bytes = hub_object["Body"].read()
        with account(serving_account):
            region = _s3("eu-west-1")
            outcome.staged_sha, outcome.staged_version = _read(
                region, request.destination_bucket, request.staged_key
            )
            versions = region.list_object_versions(
                Bucket=request.destination_bucket, Prefix=request.staged_key
            )
            outcome.version_shas = [
                _read(
                    region, request.destination_bucket, request.staged_key, VersionId=v["VersionId"]
                )[0]
                for v in versions.get("Versions", [])
            ]
            # What SageMaker reads at the next scale-out: the model's URL, no version.
            bucket, key = chain.model_data_url.removeprefix("s3://").split("/", 1)
            outcome.served_sha = _read(region, bucket, key)[0]
        # The next deployment verifies the served copy by its bytes...
        outcome.restaged = as_actor(chain, chain.stager, stage)
        # ...and a region staging for the first time refuses the tampered bytes.
        fresh = replace(request, destination_bucket=chain.fresh_bucket)
        with account(serving_account):
            outcome.fresh_region = (
                stage(fresh),
                _s3("eu-west-1").list_objects_v2(Bucket=chain.fresh_bucket)["KeyCount"],
            )
    return outcome


def attack_problems(outcome: Outcome) -> list[str]:
    """What went wrong for the defender ([] = the served model could not be changed)."""
    found = []
    if outcome.hub_write != "written" or outcome.hub_bytes != MALICIOUS:
        found.append(f"the premise failed: the training role's hub write was {outcome.hub_write}")
    if outcome.attempts.get("replication writes the replica") != "written":
        found.append("the premise failed: replication did not carry the new bytes")
    expected_refusals = {
        "training role writes the served copy (identity only)": "refused by identity (moto)",
        "training role writes the served copy": "refused by bucket policy",
        "training role widened to s3:* writes the served copy": "refused by bucket policy",
        "replication replicates onto the served copy": "refused by bucket policy",
        "serving-account role with s3:* writes the served copy": "refused by bucket policy",
        "serving-account role with s3:* deletes a served version": "refused by bucket policy",
    }
    found += [
        f"{who}: {outcome.attempts.get(who)}"
        for who, refused in expected_refusals.items()
        if outcome.attempts.get(who) != refused
    ]
    if (outcome.staged_sha, outcome.staged_version) != (SHA, outcome.first_version):
        found.append("the served copy changed")
    if not outcome.version_shas or set(outcome.version_shas) != {SHA}:
        found.append("a version of the served copy holds other bytes")
    if outcome.restaged != {"Action": "present", "Sha256": SHA, "VersionId": outcome.first_version}:
        found.append(f"verifying the served copy gave {outcome.restaged!r}")
    if outcome.served_sha != SHA:
        found.append("the endpoint's model data is not the reviewed bytes")
    mismatch, keys = outcome.fresh_region
    if not isinstance(mismatch, staging.ArtifactMismatch) or keys != 0:
        found.append(f"a new region staged {mismatch!r}")
    return found


def test_the_hub_training_role_cannot_change_what_a_serving_region_serves(chain: Chain) -> None:
    assert attack_problems(attack(chain)) == []


def _without_the_deny(chain: Chain) -> Chain:
    bucket = chain.request.destination_bucket
    owner, statements = chain.buckets[bucket]
    kept = [s for s in statements if s.get("Sid") != "OnlyTheStagerWritesServedModels"]
    assert len(kept) == len(statements) - 1
    return replace(chain, buckets={**chain.buckets, bucket: (owner, kept)})


def test_without_the_deny_a_serving_account_role_swaps_the_served_model(chain: Chain) -> None:
    problems = attack_problems(attack(_without_the_deny(chain)))
    assert "serving-account role with s3:* writes the served copy: written" in problems
    assert "the served copy changed" in problems
    assert "a version of the served copy holds other bytes" in problems
    assert "the endpoint's model data is not the reviewed bytes" in problems
    assert any(p.startswith("verifying the served copy gave ArtifactMismatch") for p in problems)


def test_the_reviews_replication_grant_lets_the_hub_swap_the_served_model(chain: Chain) -> None:
    """The review's finding: no Deny and the hub's replication allowed on the whole bucket."""
    broken = _without_the_deny(chain)
    bucket = broken.request.destination_bucket
    owner, statements = broken.buckets[bucket]
    statements = copy.deepcopy(statements)
    for statement in statements:
        if statement.get("Sid") == "HubReplicatesModels":
            statement["Resource"] = f"arn:aws:s3:::{bucket}/*"
    broken = replace(broken, buckets={**broken.buckets, bucket: (owner, statements)})
    problems = attack_problems(attack(broken))
    assert "replication replicates onto the served copy: written" in problems
    assert "the served copy changed" in problems


def test_a_model_reading_the_replica_serves_the_attackers_bytes(chain: Chain) -> None:
    replica = f"s3://{chain.request.destination_bucket}/{chain.request.key}"
    problems = attack_problems(attack(replace(chain, model_data_url=replica)))
    assert problems == ["the endpoint's model data is not the reviewed bytes"]


def test_an_attacker_who_cannot_write_the_hub_proves_nothing(chain: Chain) -> None:
    read_only = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]
    problems = attack_problems(
        attack(
            replace(
                chain,
                training=replace(chain.training, statements=read_only),
                replication=replace(chain.replication, statements=read_only),
            )
        )
    )
    assert problems[0].startswith("the premise failed: the training role's hub write was refused")
    assert "the premise failed: replication did not carry the new bytes" in problems
    # Nothing was tampered with, so a new region stages the artifact: that check can fail too.
    assert any(p.startswith("a new region staged {'Action': 'copied-from-hub'") for p in problems)


def test_the_training_roles_own_policy_is_not_what_protects_the_served_copy(chain: Chain) -> None:
    """A compromised dev account widens its role: only the serving bucket's policy holds."""
    widened = replace(chain.training, statements=EVERYTHING_S3)
    problems = attack_problems(attack(replace(chain, training=widened)))
    # Without the bucket-policy judge (moto alone), the widened role overwrites the copy...
    assert "training role writes the served copy (identity only): written" in problems
    assert "the served copy changed" in problems
    # ...with it, the same role is refused.
    assert not any(p.startswith("training role writes the served copy:") for p in problems)


def test_moto_ignores_the_conditions_of_a_bucket_policy(chain: Chain) -> None:
    """Why the bucket policies need this test's evaluator: moto 5.2.5 applies the Deny to the
    very stager it exempts. If this fails, moto judges conditions: let it judge ours."""
    bucket = chain.request.destination_bucket
    owner, statements = chain.buckets[bucket]
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyTheStagerWritesServedModels"]
    assert (
        bucket_policy_effect(
            [deny],
            "s3:PutObject",
            f"arn:aws:s3:::{bucket}/{chain.request.staged_key}",
            chain.stager.arn,
        )
        == "Neutral"
    )
    with mock_aws(), account(owner):
        _s3("eu-west-1").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        _s3("eu-west-1").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [deny]}))

        def write() -> str:
            return _attempt(
                lambda: _s3("eu-west-1").put_object(
                    Bucket=bucket, Key=chain.request.staged_key, Body=REVIEWED
                )
            )

        # 403 without a code: moto's bucket-policy check, before the role's policy is read.
        assert as_actor(chain, chain.stager, write, gated=False) == "refused by moto (403)"


# --- the served copy, over every synthesized serving stage -----------------------------------


def staged_copy_problems(serving: Stack, data: Stack) -> list[str]:
    """Every model reads a content-addressed copy that only the stage's stager can change."""
    found = []
    artifacts = [
        serving.resolve(r["Properties"]) for _, r in serving.of_type("Custom::ModelArtifact")
    ]
    stager_function = next(
        f for k, f in serving.of_type("AWS::Lambda::Function") if k.startswith("ModelStagingStager")
    )
    stager_arn = serving.arn_of(stager_function["Properties"]["Role"]["Fn::GetAtt"][0])
    buckets = set()
    for logical_id, model in serving.of_type("AWS::SageMaker::Model"):
        container = model["Properties"]["PrimaryContainer"]
        url = serving.resolve(container.get("ModelDataUrl", ""))
        digest = next(
            (t["Value"] for t in model["Properties"]["Tags"] if t["Key"] == "model-sha256"), ""
        )
        served = [
            a
            for a in artifacts
            if a["Sha256"] == digest
            and a["StagedKey"] == f"models/sha256/{digest}/model.tar.gz"
            and url == f"s3://{a['DestinationBucket']}/{a['StagedKey']}"
        ]
        if not served or "ModelDataSource" in container:
            found.append(f"{logical_id} reads {url}, not the staged copy of its sha256")
        buckets |= {a["DestinationBucket"] for a in served}
    for bucket in sorted(buckets):
        statements = _bucket_policy(data, bucket)
        served_copy = f"arn:aws:s3:::{bucket}/models/sha256/{'0' * 64}/model.tar.gz"
        for action in sorted(VERSION_WRITES):
            for principal in (
                stager_arn.replace("model-stager", "other"),
                f"arn:aws:iam::{data.account}:root",
            ):
                if bucket_policy_effect(statements, action, served_copy, principal) != "Deny":
                    found.append(f"{bucket}: {action} by {principal} is not denied")
            if bucket_policy_effect(statements, action, served_copy, stager_arn) != "Neutral":
                found.append(f"{bucket}: the policy denies or grants {action} to the stager")
        denies = [
            s
            for s in statements
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("ArnNotEquals")
        ]
        exempt = {
            a for s in denies for a in _listed(s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
        }
        if exempt != {stager_arn}:
            found.append(f"{bucket}: the Deny exempts {sorted(exempt)}, not exactly the stager")
    return found


def _serving_stages(assembly: Assembly) -> list[tuple[Stack, Stack]]:
    return [
        (stack, assembly.by_name(stack.name.replace("-Serving", "-Data")))
        for stack in assembly.stacks
        if stack.name.endswith("-Serving") and any(stack.of_type("Custom::ModelArtifact"))
    ]


def test_every_served_model_reads_a_copy_only_its_stager_can_change(assembly_dir: Path) -> None:
    stages = _serving_stages(load_assembly(assembly_dir))
    assert len(stages) == 6  # dev, staging x2, prod x3
    assert {(s.name, p) for s, d in stages for p in staged_copy_problems(s, d)} == set()


def _edited(stack: Stack, edit: Callable[[dict[str, Any]], None]) -> Stack:
    template = copy.deepcopy(stack.template)
    edit(template)
    return replace(stack, template=template)


def test_the_served_copy_check_finds_each_mistake(assembly_dir: Path) -> None:
    serving, data = _serving_stages(load_assembly(assembly_dir))[0]

    def deny(template: dict[str, Any]) -> dict[str, Any]:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::S3::BucketPolicy":
                for s in resource["Properties"]["PolicyDocument"]["Statement"]:
                    if s.get("Sid") == "OnlyTheStagerWritesServedModels":
                        return s
        raise AssertionError("no Deny")

    def drop_delete(template: dict[str, Any]) -> None:
        deny(template)["Action"].remove("s3:DeleteObjectVersion")

    def exempt_everyone(template: dict[str, Any]) -> None:
        deny(template)["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}

    def read_the_replica(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SageMaker::Model":
                resource["Properties"]["PrimaryContainer"]["ModelDataUrl"] = (
                    "s3://elsewhere/model.tar.gz"
                )

    assert staged_copy_problems(serving, data) == []
    assert any(
        "s3:DeleteObjectVersion by" in p
        for p in staged_copy_problems(serving, _edited(data, drop_delete))
    )
    assert any(
        "is not denied" in p for p in staged_copy_problems(serving, _edited(data, exempt_everyone))
    )
    assert all(
        "not the staged copy" in p
        for p in staged_copy_problems(_edited(serving, read_the_replica), data)
    )


def test_cloudformation_cannot_pin_the_served_object_version() -> None:
    """The limit README's security section explains: SageMaker's CreateModel takes an ETag
    for the model data (S3ModelDataSource.ETag), CloudFormation's AWS::SageMaker::Model (and
    so CDK's CfnModel) takes neither an ETag nor a version. When this fails, CDK can pin it:
    pin the staged copy's ETag in RealtimeEndpoint and drop the limit from the README."""
    api = botocore.session.get_session().get_service_model("sagemaker")
    assert "ETag" in api.shape_for("S3ModelDataSource").members
    for cfn_type in (
        sagemaker.CfnModel.S3DataSourceProperty,
        sagemaker.CfnModel.ContainerDefinitionProperty,
    ):
        parameters = set(inspect.signature(cfn_type).parameters)
        assert not {p for p in parameters if "tag" in p or "version" in p}, cfn_type
