"""Hub and spoke: model artifacts replicate from the hub's artifact bucket to a model bucket in
every serving (environment, region), re-encrypted with the destination's own key."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.nag import acknowledge_wildcard_resource

MODEL_PREFIX = "training-pipeline/models/"


@dataclass(frozen=True)
class ReplicaDestination:
    account: str
    region: str
    bucket_name: str
    key_alias: str  # e.g. alias/flightdelay-prod-models

    def bucket_arn(self, partition: str) -> str:
        return f"arn:{partition}:s3:::{self.bucket_name}"

    def key_alias_arn(self, partition: str) -> str:
        return f"arn:{partition}:kms:{self.region}:{self.account}:{self.key_alias}"


class ModelReplication(Construct):
    """Lives with the hub's artifact bucket (replication is configured on the source)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_bucket: s3.Bucket,
        source_key: kms.IKey,
        role_name: str,
        destinations: list[ReplicaDestination],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        partition = stack.partition
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description="S3 replication of approved model artifacts to the serving regions.",
        )
        models = source_bucket.arn_for_objects(f"{MODEL_PREFIX}*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[source_bucket.bucket_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[models],
            )
        )
        source_key.grant_decrypt(self.role)
        # Replicas keep the hub's keys: only the model prefix, never the staged copies.
        destination_objects = [f"{d.bucket_arn(partition)}/{MODEL_PREFIX}*" for d in destinations]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:ReplicateObject",
                    "s3:ReplicateTags",
                    "s3:ObjectOwnerOverrideToBucketOwner",
                ],
                resources=destination_objects,
            )
        )
        # Destination keys are named by alias: their ARNs live in other accounts.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=sorted(
                    {f"arn:{partition}:kms:{d.region}:{d.account}:key/*" for d in destinations}
                ),
                conditions={
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": sorted({d.key_alias for d in destinations})
                    },
                    # Only S3 may use them on our behalf, in the destinations' regions.
                    "StringEquals": {
                        "kms:ViaService": sorted(
                            {f"s3.{d.region}.amazonaws.com" for d in destinations}
                        )
                    },
                },
            )
        )
        for resource in [models, *destination_objects]:
            acknowledge_wildcard_resource(
                self.role, resource, "Replication copies every object under the model prefix."
            )
        for d in sorted({(d.region, d.account) for d in destinations}):
            acknowledge_wildcard_resource(
                self.role,
                f"arn:{partition}:kms:{d[0]}:{d[1]}:key/*",
                "Destination keys are selected by their alias (kms:ResourceAliases condition).",
            )
        cfn_bucket = source_bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=self.role.role_arn,
            rules=[self._rule(i, d, stack) for i, d in enumerate(destinations)],
        )

    @staticmethod
    def _rule(
        priority: int, destination: ReplicaDestination, stack: cdk.Stack
    ) -> s3.CfnBucket.ReplicationRuleProperty:
        cross_account = destination.account != stack.account
        return s3.CfnBucket.ReplicationRuleProperty(
            id=f"models-to-{destination.bucket_name}"[:255],
            priority=priority,
            status="Enabled",
            filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=MODEL_PREFIX),
            delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(
                status="Disabled"
            ),
            source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(
                    status="Enabled"
                )
            ),
            destination=s3.CfnBucket.ReplicationDestinationProperty(
                bucket=destination.bucket_arn(stack.partition),
                account=destination.account if cross_account else None,
                access_control_translation=(
                    s3.CfnBucket.AccessControlTranslationProperty(owner="Destination")
                    if cross_account
                    else None
                ),
                encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(
                    replica_kms_key_id=destination.key_alias_arn(stack.partition)
                ),
            ),
        )


def allow_hub_replication(
    *,
    bucket: s3.Bucket,
    key: kms.Key,
    hub_role_arn: str,
    region: str,
) -> None:
    """Destination side: the hub's replication role may write replicas under the model prefix
    (nothing else: the served, content-addressed copies are out of its reach), read our
    versioning state (never change it), and use our key only through S3 in this region."""
    # The hub's account, narrowed to its replication role by aws:PrincipalArn: a policy naming
    # the role itself could not be written before the role exists.
    principal = iam.AccountPrincipal(hub_role_arn.split(":")[4])
    by_role = {"ArnEquals": {"aws:PrincipalArn": hub_role_arn}}
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="HubReplicatesModels",
            principals=[principal],
            actions=[
                "s3:ReplicateObject",
                "s3:ReplicateTags",
                "s3:ObjectOwnerOverrideToBucketOwner",
            ],
            resources=[bucket.arn_for_objects(f"{MODEL_PREFIX}*")],
            conditions=by_role,
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="HubChecksVersioning",
            principals=[principal],
            actions=["s3:GetBucketVersioning"],
            resources=[bucket.bucket_arn],
            conditions=by_role,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="HubEncryptsReplicas",
            principals=[principal],
            actions=["kms:Encrypt", "kms:GenerateDataKey"],
            resources=["*"],
            conditions={
                **by_role,
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            },
        )
    )
