"""The data layer of a stage: assertions on properties, and pinned stateful logical ids."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mlops.config import PlatformConfig
from mlops.stacks.data_stack import DataStack
from pipeline_steps import feature_schema
from tests.conftest import cdk_json_context


def _data_template(platform: PlatformConfig, env_name: str) -> Template:
    app = cdk.App(context=cdk_json_context())
    environment = platform.environment(env_name)
    stack = DataStack(
        app,
        "Data",
        platform=platform,
        environment=environment,
        region=environment.home_region,
        env=cdk.Environment(account=environment.account, region=environment.home_region),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def prod(platform: PlatformConfig) -> Template:
    return _data_template(platform, "prod")


@pytest.fixture(scope="module")
def dev(platform: PlatformConfig) -> Template:
    return _data_template(platform, "dev")


# Renaming any of these replaces a bucket, key or feature group: data loss in prod.
PINNED_LOGICAL_IDS = {
    "DataKey2A0DE9E6": "AWS::KMS::Key",
    "AccessLogsBucketCD784A59": "AWS::S3::Bucket",
    "DataBucketBD860FE1": "AWS::S3::Bucket",
    "ArtifactBucketC3871E62": "AWS::S3::Bucket",
    "ModelBucketEBB1ADF4": "AWS::S3::Bucket",
    "FeatureStoreFlightFeatureGroup3C4B59A1": "AWS::SageMaker::FeatureGroup",
    "FeatureStoreWeatherFeatureGroup504C7D20": "AWS::SageMaker::FeatureGroup",
    "FeatureStorePlaneFeatureGroup89252D7B": "AWS::SageMaker::FeatureGroup",
    "OfflineCatalogDatabase": "AWS::Glue::Database",
    "OfflineCatalogRawFlights": "AWS::Glue::Table",
}


def test_stateful_logical_ids_are_pinned(prod: Template) -> None:
    resources = prod.to_json()["Resources"]
    stateful = {
        logical_id: resource["Type"]
        for logical_id, resource in resources.items()
        if resource["Type"]
        in {
            "AWS::KMS::Key",
            "AWS::S3::Bucket",
            "AWS::SageMaker::FeatureGroup",
            "AWS::Glue::Database",
            "AWS::Glue::Table",
        }
    }
    # CDK appends a hash to these two: compare without it.
    stateful = {
        re.sub(r"^(OfflineCatalog\w+?)[0-9A-F]{8}$", r"\1", k): v for k, v in stateful.items()
    }
    assert stateful == PINNED_LOGICAL_IDS


def test_key_rotates_and_is_retained_outside_dev(prod: Template, dev: Template) -> None:
    prod.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )
    dev.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Delete"})


def test_data_buckets_are_kms_encrypted_versioned_private_and_logged(prod: Template) -> None:
    for bucket_id in ("DataBucketBD860FE1", "ArtifactBucketC3871E62"):
        resource = prod.to_json()["Resources"][bucket_id]
        assert resource["DeletionPolicy"] == "Retain"
        props = resource["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
            "Fn::GetAtt": ["DataKey2A0DE9E6", "Arn"]
        }
        assert sse["BucketKeyEnabled"] is True
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": "AccessLogsBucketCD784A59"
        }
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in rule for rule in rules)


def test_buckets_refuse_plain_http(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": "DataBucketBD860FE1"},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_feature_groups_come_from_the_one_schema(prod: Template) -> None:
    groups = prod.find_resources("AWS::SageMaker::FeatureGroup")
    by_name = {g["Properties"]["FeatureGroupName"]: g["Properties"] for g in groups.values()}
    assert set(by_name) == {f"flightdelay-prod-{g.name}" for g in feature_schema.FEATURE_GROUPS}
    for spec in feature_schema.FEATURE_GROUPS:
        props = by_name[f"flightdelay-prod-{spec.name}"]
        assert props["RecordIdentifierFeatureName"] == spec.record_identifier
        assert props["EventTimeFeatureName"] == spec.event_time
        declared = [(d["FeatureName"], d["FeatureType"]) for d in props["FeatureDefinitions"]]
        assert declared == list(feature_schema.feature_group_columns(spec))
    every_feature = {d["FeatureName"] for g in by_name.values() for d in g["FeatureDefinitions"]}
    assert set(feature_schema.FEATURE_ORDER) <= every_feature


def test_offline_store_tables_are_named_in_the_stage_database(prod: Template) -> None:
    """The training join names its tables: each group's Glue table is pinned by
    DataCatalogConfig in the stage's database, next to the raw flights table over raw/."""
    groups = prod.find_resources("AWS::SageMaker::FeatureGroup")
    for group in groups.values():
        catalog = group["Properties"]["OfflineStoreConfig"]["DataCatalogConfig"]
        name = group["Properties"]["FeatureGroupName"].rsplit("-", 1)[1]
        assert catalog == {
            "Catalog": "AwsDataCatalog",
            "Database": "flightdelay_prod_features",
            "TableName": name,
        }
    (table,) = prod.find_resources("AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert table["Properties"]["DatabaseName"] == "flightdelay_prod_features"
    assert table_input["Name"] == "raw_flights"
    storage = table_input["StorageDescriptor"]
    assert "/raw/" in json.dumps(storage["Location"])  # s3://<data bucket>/raw/
    assert storage["SerdeInfo"]["Parameters"]["serialization.null.format"] == "NA"
    assert table_input["Parameters"]["skip.header.line.count"] == "1"


def test_feature_store_is_encrypted_online_and_offline(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::SageMaker::FeatureGroup",
        {
            "OnlineStoreConfig": {
                "EnableOnlineStore": True,
                "SecurityConfig": {"KmsKeyId": {"Fn::GetAtt": ["DataKey2A0DE9E6", "Arn"]}},
            },
            "OfflineStoreConfig": {
                "S3StorageConfig": {
                    "S3Uri": Match.any_value(),
                    "KmsKeyId": {"Fn::GetAtt": ["DataKey2A0DE9E6", "Arn"]},
                },
                "DisableGlueTableCreation": False,
            },
        },
    )


def test_feature_store_role_writes_only_the_offline_prefix(prod: Template) -> None:
    prod.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            # PutObjectAcl: the offline store writes with an object ACL.
                            "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"],
                            "Effect": "Allow",
                            "Resource": {
                                "Fn::Join": [
                                    "",
                                    [
                                        {"Fn::GetAtt": ["DataBucketBD860FE1", "Arn"]},
                                        "/feature-store/*",
                                    ],
                                ]
                            },
                        }
                    ]
                )
            }
        },
    )


def test_key_lets_logs_and_alarm_notifications_use_it(prod: Template) -> None:
    (key,) = prod.find_resources("AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    alarms = statements["AllowCloudWatchAlarmsToEncryptedTopics"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": "444444444444"}}
    logs = statements["AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    # EventBridge's requests carry no source keys a key policy could match (SNS guide).
    events = statements["AllowEventBridgeToEncryptedTopicsAndQueues"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert "Condition" not in events


def test_feature_groups_and_the_flights_table_wait_for_their_database(prod: Template) -> None:
    """They name the database by a literal (no Ref, so no implicit order): without DependsOn
    CloudFormation may create them first, and CreateFeatureGroup's Glue table (or the raw
    flights table) fails on a database that does not exist yet."""
    (database,) = prod.find_resources("AWS::Glue::Database")
    waiting = {
        **prod.find_resources("AWS::SageMaker::FeatureGroup"),
        **prod.find_resources("AWS::Glue::Table"),
    }
    assert len(waiting) == 4
    for logical_id, resource in waiting.items():
        assert database in resource.get("DependsOn", []), logical_id
