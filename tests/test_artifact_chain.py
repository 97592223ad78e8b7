"""The artifact chain against an attacker in the hub account, under enforced IAM.

After a model is staged in a serving region, the dev training execution role overwrites the
hub's model.tar.gz (its policy allows that) and S3 replication carries the new bytes to the
serving region's replica. The served copy, its verification (a hash of its bytes) and the
endpoint's model data must not change, and every attempt on the served copy is refused:
by the training role as synthesized, by the same role widened to s3:* (a compromised dev
account controls its own identity policies), by the hub's replication role and by a serving
account role with s3:*. Roles, policies, keys and properties come from the synthesized app.

Two judges, because moto 5.2.5 can only be one of them: moto enforces the roles' identity
policies (IAM from the first request, tests/lambda_iam.run_as_role); it cannot judge bucket
policies (it ignores their principals and conditions: shown below), so tests/bucket_policy.py
judges those, in front of every S3 call the scenario makes. Fixtures show each check of the
attack failing once a defence is taken out.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from bucket_policy import (
    Buckets,
    attempt,
    bucket_policies_enforced,
    bucket_policy,
    bucket_policy_effect,
    bucket_refuses,
)
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
    buckets: Buckets
    training: Actor
    replication: Actor
    stager: Actor
    serving_operator: Actor  # a role of the serving account with s3:* (not the stager)
    fresh_bucket: str = "a-region-added-later"


def _role_starting(stack: Stack, prefix: str) -> str:
    return next(k for k, _ in stack.of_type("AWS::IAM::Role") if k.startswith(prefix))


def _actor(stack: Stack, role: str) -> Actor:
    return Actor(stack, role, role_statements(stack, role), stack.arn_of(role))


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
                bucket_policy(hub_data, artifact["SourceBucket"]),
            ),
            artifact["DestinationBucket"]: (
                data.account,
                bucket_policy(data, artifact["DestinationBucket"]),
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
            return attempt(
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
            return attempt(
                lambda: _s3("eu-west-1").put_object(
                    Bucket=request.destination_bucket, Key=request.staged_key, Body=MALICIOUS
                )
            )

        def delete_staged() -> str:  # the reviewed version, so an older one becomes current
            return attempt(
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
            return attempt(
                lambda: _s3("eu-west-1").put_object(
                    Bucket=bucket, Key=chain.request.staged_key, Body=REVIEWED
                )
            )

        # 403 without a code: moto's bucket-policy check, before the role's policy is read.
        assert as_actor(chain, chain.stager, write, gated=False) == "refused by moto (403)"
