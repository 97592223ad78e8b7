"""The stage's SNS topic for people: KMS-encrypted, TLS only, open to this account's
CloudWatch alarms (EventBridge rule targets add their own statement)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


def alert_topic(
    scope: Construct, construct_id: str, *, display_name: str, encryption_key: kms.IKey
) -> sns.Topic:
    topic = sns.Topic(scope, construct_id, display_name=display_name, master_key=encryption_key)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="TlsOnly",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        )
    )
    # The TLS statement above creates the topic policy, which replaces SNS's default one:
    # CloudWatch alarms must be allowed explicitly, from this account's alarms only.
    stack = cdk.Stack.of(scope)
    account = stack.account  # one jsii request per read
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{account}:alarm:*"
                },
            },
        )
    )
    return topic
