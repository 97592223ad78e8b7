"""Before a serving stage's models are created, make sure the pinned artifacts are in its
model bucket, byte for byte the ones the release manifest pinned (sha256), under a
content-addressed key (`models/sha256/<digest>/model.tar.gz`) that only the stager writes.

S3 replication carries artifacts written after a region's bucket exists, under the hub's own
keys; the stager copies from that replica, or from the hub when there is none (a first
deployment, a region added later), and hashes the bytes on every deploy.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.constructs import cdk_values
from mlops.constructs.model_replication import MODEL_PREFIX
from mlops.constructs.python_function import PythonFunction
from mlops.nag import acknowledge_key_grant, acknowledge_wildcard_resource
from mlops.release_manifest import STAGED_PREFIX, ModelRelease


@dataclass(frozen=True)
class HubArtifacts:
    """Where the pinned artifacts come from: the hub's artifact bucket and key (by alias)."""

    account: str
    region: str
    bucket_name: str
    key_alias: str


STAGER_TIMEOUT_S = 600
STAGER_TMP_MB = 10240  # the largest model.tar.gz a stage can serve (Lambda's /tmp maximum)


class ModelStaging(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        releases: list[ModelRelease],
        hub: HubArtifacts,
        model_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        role_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.function = PythonFunction(
            self,
            "Stager",
            source="stage_model",
            description="Copy and verify pinned model artifacts into this region's model bucket.",
            encryption_key=encryption_key,
            timeout_seconds=STAGER_TIMEOUT_S,
            memory_mb=1024,
            role_name=role_name,
            # The artifact is spooled to /tmp while its sha256 is checked: the default 512 MB
            # would cap model size there. Lambda allows 512-10240 MB (EphemeralStorage).
            ephemeral_storage_mb=STAGER_TMP_MB,
        )
        role = self.function.role
        keys = sorted({release.artifact_key for release in releases})
        hub_objects = [f"arn:{stack.partition}:s3:::{hub.bucket_name}/{key}" for key in keys]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadPinnedArtifactsAtTheHub", actions=["s3:GetObject"], resources=hub_objects
            )
        )
        hub_keys = f"arn:{stack.partition}:kms:{hub.region}:{hub.account}:key/*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptWithTheHubKey",
                actions=["kms:Decrypt"],
                resources=[hub_keys],
                conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": [hub.key_alias]}},
            )
        )
        staged = sorted({release.staged_key for release in releases})
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteAndCheckTheStagedCopy",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[model_bucket.arn_for_objects(key) for key in staged],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheRegionalReplica",
                actions=["s3:GetObject"],
                resources=[model_bucket.arn_for_objects(key) for key in keys],
            )
        )
        # GetObject of a missing key answers 404 only with ListBucket (403 otherwise).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TellMissingFromForbidden",
                actions=["s3:ListBucket"],
                resources=[model_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{MODEL_PREFIX}*", f"{STAGED_PREFIX}*"]}},
            )
        )
        encryption_key.grant_encrypt_decrypt(role)
        acknowledge_key_grant(role)
        acknowledge_wildcard_resource(
            role,
            hub_keys,
            "The hub's key lives in another account: selected by its alias (kms:ResourceAliases).",
        )
        self.artifacts = [
            cdk.CustomResource(
                self,
                f"V{release.version}",
                service_token=self.function.function.function_arn,
                resource_type="Custom::ModelArtifact",
                # Fail a hung copy after the function's own timeout, not CloudFormation's hour.
                service_timeout=cdk_values.seconds(STAGER_TIMEOUT_S + 60),
                properties={
                    "SourceBucket": hub.bucket_name,
                    "SourceRegion": hub.region,
                    "DestinationBucket": model_bucket.bucket_name,
                    "Key": release.artifact_key,
                    "StagedKey": release.staged_key,
                    "Sha256": release.sha256,
                    "DestinationKmsKey": encryption_key.key_arn,
                },
            )
            for release in releases
        ]
        for artifact in self.artifacts:
            artifact.node.add_dependency(role)

    def staged_version(self, release: ModelRelease) -> str:
        """The version id of the verified copy the release's model serves (for tags/audit)."""
        index = [a.node.id for a in self.artifacts].index(f"V{release.version}")
        return self.artifacts[index].get_att_string("VersionId")


# Every S3 action that creates, replaces or removes an object version (CopyObject and
# multipart uploads are authorized as s3:PutObject).
STAGED_COPY_WRITES = (
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:RestoreObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
)


def protect_staged_models(*, bucket: s3.Bucket, stager_role_arn: str) -> None:
    """Serving side: only this region's model stager may write or delete versions of the
    content-addressed copies the endpoints serve. Explicit deny, so no identity policy (the
    hub's replication role, a training role, anyone in the serving account) can grant it back.

    This is what pins the served bytes: CloudFormation's AWS::SageMaker::Model cannot name an
    object version or ETag, so SageMaker reads whatever version is current under the key. The
    stager only writes bytes that hash to the digest in the key (and S3 checks the upload's
    sha256), so every version any principal could make current holds the same bytes. Emptying
    the bucket (a dev teardown) needs this statement removed first."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyTheStagerWritesServedModels",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(STAGED_COPY_WRITES),
            resources=[bucket.arn_for_objects(f"{STAGED_PREFIX}*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": stager_role_arn}},
        )
    )


def allow_model_stagers(
    *, bucket: s3.Bucket, key: kms.Key, stager_roles: list[tuple[str, str]], region: str
) -> None:
    """Hub side: the serving stages' stager roles may read model artifacts and decrypt them
    through S3. Accounts plus a PrincipalArn condition: a policy naming a role that does
    not exist yet (later waves) would fail to deploy."""
    if not stager_roles:
        return
    partition = cdk.Stack.of(bucket).partition
    accounts = sorted({account for account, _ in stager_roles})
    arns = sorted(f"arn:{partition}:iam::{a}:role/{n}" for a, n in stager_roles)
    principals = [iam.AccountPrincipal(account) for account in accounts]
    condition = {"ArnEquals": {"aws:PrincipalArn": arns}}
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ModelStagersReadArtifacts",
            principals=principals,
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{MODEL_PREFIX}*")],
            conditions=condition,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ModelStagersDecryptThroughS3",
            principals=principals,
            actions=["kms:Decrypt"],
            resources=["*"],
            conditions={
                **condition,
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            },
        )
    )
