"""What a template change means at deploy time, per CloudFormation resource type.

REPLACE_ON_CHANGE lists the properties whose change makes CloudFormation replace the resource
("Update requires: Replacement"). It is the `createOnlyProperties` of each type's CloudFormation
registry schema (the source of the resource reference pages), checked against the schemas
cfn-lint 1.58.0 ships; "A/B" is a nested property path. Types not listed fall back to those
schemas when cfn-lint is installed, else to "unknown" (the change is shown as an update).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "AWS::S3::Bucket": ("BucketName", "BucketNamePrefix", "BucketNamespace"),
    "AWS::S3::BucketPolicy": ("Bucket",),
    "AWS::KMS::Key": (),
    "AWS::KMS::Alias": ("AliasName",),
    "AWS::KMS::ReplicaKey": ("PrimaryKeyArn",),
    "AWS::SageMaker::FeatureGroup": (
        "Description",
        "EventTimeFeatureName",
        "FeatureGroupName",
        "OfflineStoreConfig",
        "OnlineStoreConfig/EnableOnlineStore",
        "OnlineStoreConfig/SecurityConfig",
        "OnlineStoreConfig/StorageType",
        "RecordIdentifierFeatureName",
        "RoleArn",
        "Tags",
    ),
    "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupDescription", "ModelPackageGroupName"),
    "AWS::SageMaker::Model": (
        "Containers",
        "EnableNetworkIsolation",
        "ExecutionRoleArn",
        "InferenceExecutionConfig",
        "ModelName",
        "PrimaryContainer",
        "VpcConfig",
    ),
    "AWS::SageMaker::EndpointConfig": (
        "AsyncInferenceConfig",
        "DataCaptureConfig",
        "EnableNetworkIsolation",
        "EndpointConfigName",
        "ExecutionRoleArn",
        "ExplainerConfig",
        "KmsKeyId",
        "MetricsConfig",
        "ProductionVariants",
        "ShadowProductionVariants",
        "VpcConfig",
    ),
    "AWS::SageMaker::Endpoint": ("EndpointName",),
    "AWS::SageMaker::Pipeline": ("PipelineName",),
    "AWS::DynamoDB::Table": ("ImportSourceSpecification", "TableName"),
    "AWS::IAM::Role": ("Path", "RoleName"),
    "AWS::IAM::Policy": (),
    "AWS::IAM::ManagedPolicy": ("Description", "ManagedPolicyName", "Path"),
    "AWS::Lambda::Function": ("FunctionName", "PackageType", "TenancyConfig"),
    "AWS::Lambda::Permission": (
        "Action",
        "EventSourceToken",
        "FunctionName",
        "FunctionUrlAuthType",
        "InvokedViaFunctionUrl",
        "Principal",
        "PrincipalOrgID",
        "SourceAccount",
        "SourceArn",
    ),
    "AWS::Lambda::Version": (
        "CodeSha256",
        "Description",
        "FunctionName",
        "ProvisionedConcurrencyConfig",
        "RuntimePolicy",
    ),
    "AWS::Lambda::Alias": ("FunctionName", "Name"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Logs::MetricFilter": ("FilterName", "LogGroupName"),
    "AWS::SNS::Topic": ("FifoTopic", "TopicName"),
    "AWS::SNS::TopicPolicy": (),
    "AWS::SNS::Subscription": ("Endpoint", "Protocol", "TopicArn"),
    "AWS::SQS::Queue": ("FifoQueue", "QueueName"),
    "AWS::SQS::QueuePolicy": (),
    "AWS::Events::Rule": ("Name",),
    "AWS::Events::EventBus": ("Name",),
    "AWS::Scheduler::Schedule": ("Name",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::CloudWatch::CompositeAlarm": ("AlarmName",),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::ApplicationAutoScaling::ScalableTarget": (
        "ResourceId",
        "ScalableDimension",
        "ServiceNamespace",
    ),
    "AWS::ApplicationAutoScaling::ScalingPolicy": (
        "PolicyName",
        "ResourceId",
        "ScalableDimension",
        "ScalingTargetId",
        "ServiceNamespace",
    ),
    "AWS::EC2::SecurityGroup": ("GroupDescription", "GroupName", "VpcId"),
    "AWS::EC2::SecurityGroupIngress": (
        "CidrIp",
        "CidrIpv6",
        "FromPort",
        "GroupId",
        "GroupName",
        "IpProtocol",
        "SourcePrefixListId",
        "SourceSecurityGroupId",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
        "ToPort",
    ),
    "AWS::EC2::SecurityGroupEgress": (
        "CidrIp",
        "CidrIpv6",
        "DestinationPrefixListId",
        "DestinationSecurityGroupId",
        "FromPort",
        "GroupId",
        "IpProtocol",
        "ToPort",
    ),
    "AWS::CodePipeline::Pipeline": ("Name",),
    "AWS::CodeBuild::Project": ("Name",),
    "AWS::CodeStarConnections::Connection": ("ConnectionName", "HostArn", "ProviderType"),
    "AWS::ECR::Repository": ("EncryptionConfiguration", "RepositoryName"),
    "AWS::Glue::Database": ("DatabaseName",),
    "AWS::Glue::Table": ("CatalogId", "DatabaseName", "Name", "TableInput/Name"),
    "AWS::SSM::Parameter": ("Name",),
}

# Immutable properties whose change makes the update FAIL instead of replacing the resource
# (the KMS key reference: "the update request fails, regardless of the value of the
# UpdateReplacePolicy attribute").
FAIL_ON_CHANGE: dict[str, tuple[str, ...]] = {
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion", "Origin"),
}

# Resources whose replacement or removal loses data or breaks everything encrypted with them.
STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
        "AWS::ECR::Repository",
    }
)


def replace_paths(resource_type: str) -> tuple[str, ...] | None:
    """Replacement-requiring property paths of a type, or None when unknown."""
    if resource_type in REPLACE_ON_CHANGE:
        return REPLACE_ON_CHANGE[resource_type]
    return _schema_create_only(resource_type)


@cache
def _schema_create_only(resource_type: str) -> tuple[str, ...] | None:
    # cfn-lint is a dev dependency; without it an unlisted type is simply "unknown".
    try:
        root = resources.files("cfnlint") / "data" / "schemas"
        index = json.loads((root / "providers" / "us-east-1.json").read_text())
        schema_id = index.get(resource_type)
        if not isinstance(schema_id, str):
            return None
        schema = json.loads((root / "resources" / f"{schema_id}.json").read_text())
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    return tuple(
        sorted(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", []))
    )
