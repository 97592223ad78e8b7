"""A customer-managed KMS key with rotation: the one key for a stage's data at rest."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops.constructs import cdk_values


class EncryptionKey(Construct):
    """KMS key (rotated yearly) usable by CloudWatch Logs of this account and region, and by
    CloudWatch alarms publishing to the stage's encrypted SNS topics."""

    def __init__(
        self, scope: Construct, construct_id: str, *, description: str, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            pending_window=cdk_values.days(30 if retain else 7),
        )
        # Encrypted log groups need the Logs service principal, scoped to this account's
        # log groups in this region (the key policy cannot use grants for services).
        stack = cdk.Stack.of(self)
        account, region = stack.account, stack.region  # one jsii request per read
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{region}:{account}:*"
                        )
                    }
                },
            )
        )
        # Alarm actions publish to KMS-encrypted topics as the CloudWatch service principal.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        # EventBridge rules forward failures to those topics and dead-letter undeliverable
        # events into the stage's encrypted queue, as the EventBridge service principal. No
        # source condition: the SNS guide states aws:SourceAccount and aws:SourceArn are not
        # supported in a key policy for EventBridge-to-encrypted-topic delivery
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html), so a
        # conditioned grant never matches and delivery would rest on the grant CDK's SnsTopic
        # target adds only where a stage has such a target. Who may publish is decided by the
        # topic and queue policies (the queue's names each rule by aws:SourceArn).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToEncryptedTopicsAndQueues",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
