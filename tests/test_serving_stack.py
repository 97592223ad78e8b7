"""Serving stacks: blue/green endpoints, autoscaling, alarms, dashboard, rollback, replication."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops.app_builder import AppOptions
from mlops.config import ConfigError, PlatformConfig
from mlops.release_manifest import EnvironmentRelease
from tests.conftest import default_releases, of_type, stack_templates, synth_app

SERVING_STAGES = [
    "dev-us-east-1",
    "staging-us-east-1",
    "staging-eu-west-1",
    "prod-us-east-1",
    "prod-eu-west-1",
    "prod-ap-southeast-1",
]
INSTANCE_STAGES = [s for s in SERVING_STAGES if not s.startswith("dev")]


def _resources(templates: dict[str, Any], stage: str, stack: str = "Serving") -> dict[str, Any]:
    return templates[f"{stage}/{stack}"]["Resources"]  # type: ignore[no-any-return]


def test_every_serving_stage_with_a_pinned_model_has_an_endpoint(templates: dict[str, Any]) -> None:
    for stage in SERVING_STAGES:
        (endpoint,) = of_type(_resources(templates, stage), "AWS::SageMaker::Endpoint")
        env = stage.split("-")[0]
        assert endpoint["Properties"]["EndpointName"] == f"flightdelay-{env}"
        assert endpoint["Properties"]["RetainAllVariantProperties"] is True


@pytest.mark.parametrize("stage", INSTANCE_STAGES)
def test_blue_green_deployment_with_auto_rollback(templates: dict[str, Any], stage: str) -> None:
    resources = _resources(templates, stage)
    (endpoint,) = of_type(resources, "AWS::SageMaker::Endpoint")
    config = endpoint["Properties"]["DeploymentConfig"]
    policy = config["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    if stage.startswith("prod"):
        assert routing == {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 900,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        }
        # canary bake + rest bake + termination wait + provisioning headroom
        assert policy["MaximumExecutionTimeoutInSeconds"] == 2 * 900 + 900 + 1800
    else:
        # Staging's fleet starts with one instance: nothing to split, so all at once + bake.
        assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
        assert policy["MaximumExecutionTimeoutInSeconds"] == 1 * 300 + 300 + 1800
    assert policy["TerminationWaitInSeconds"] == routing["WaitIntervalInSeconds"]
    alarm_refs = [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]]
    alarms = {k: r for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {alarms[ref["Ref"]]["Properties"]["MetricName"] for ref in alarm_refs}
    assert watched == {"Invocation5XXErrors", "ModelLatency"}


def test_dev_serves_serverless_without_guardrails_or_scaling(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "dev-us-east-1")
    (endpoint,) = of_type(resources, "AWS::SageMaker::Endpoint")
    assert "DeploymentConfig" not in endpoint["Properties"]
    for config in of_type(resources, "AWS::SageMaker::EndpointConfig"):
        (variant,) = config["Properties"]["ProductionVariants"]
        assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert not of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")


def test_models_are_isolated_and_read_the_verified_staged_copy(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-ap-southeast-1")
    models = of_type(resources, "AWS::SageMaker::Model")
    assert len(models) == 2  # current and previous (kept for rollback)
    for model in models:
        props = model["Properties"]
        assert props["EnableNetworkIsolation"] is True
        container = props["PrimaryContainer"]
        assert container["Image"].startswith(
            "121021644041.dkr.ecr.ap-southeast-1.amazonaws.com/sagemaker-xgboost:"
        )
        assert container["ModelDataUrl"] == (
            "s3://flightdelay-prod-models-444444444444-ap-southeast-1/models/sha256/"
            f"{next(t['Value'] for t in props['Tags'] if t['Key'] == 'model-sha256')}/model.tar.gz"
        )
        version_tag = next(t for t in props["Tags"] if t["Key"] == "model-artifact-version")
        assert version_tag["Value"]["Fn::GetAtt"][1] == "VersionId"
        assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


def test_endpoint_config_captures_data_under_kms(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-us-east-1")
    configs = of_type(resources, "AWS::SageMaker::EndpointConfig")
    assert len(configs) == 2
    for config in configs:
        props = config["Properties"]
        assert "KmsKeyId" in props  # ml.c5.xlarge has EBS volumes: KMS volume key allowed
        capture = props["DataCaptureConfig"]
        assert capture["EnableCapture"] is True
        assert "KmsKeyId" in capture
        assert (
            capture["DestinationS3Uri"]
            == "s3://flightdelay-prod-data-444444444444-us-east-1/datacapture"
        )
        (variant,) = props["ProductionVariants"]
        assert variant["VariantName"] == "primary"
        assert variant["InstanceType"] == "ml.c5.xlarge"
        assert variant["InitialInstanceCount"] == 2


@pytest.mark.parametrize("stage", INSTANCE_STAGES)
def test_autoscaling_tracks_invocations_per_instance(templates: dict[str, Any], stage: str) -> None:
    resources = _resources(templates, stage)
    (target,) = of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    props = target["Properties"]
    assert props["ResourceId"] == f"endpoint/flightdelay-{stage.split('-')[0]}/variant/primary"
    if stage.startswith("prod"):
        assert (props["MinCapacity"], props["MaxCapacity"]) == (2, 10)
    (policy,) = of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (tracking["ScaleOutCooldown"], tracking["ScaleInCooldown"]) == (300, 600)


def test_alarms_use_one_minute_metrics_and_rates(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-us-east-1")
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm")
        if a["Properties"]["Namespace"] != "AWS/Lambda"  # FailureAlerts (test_failure_alerts)
        and a["Properties"]["Namespace"] != "AWS/SQS"
        and a["Properties"]["Period"] != 10  # the fast rollback alarms (test below)
    }
    assert set(alarms) == {
        "ModelLatency",
        "Invocation5XXErrors",
        "Invocations",
        "CPUUtilization",
        "MemoryUtilization",
    }
    for props in alarms.values():
        assert props["Period"] == 60
        assert len(props["AlarmActions"]) == 1
    assert alarms["Invocation5XXErrors"]["Statistic"] == "Average"
    assert alarms["Invocation5XXErrors"]["Threshold"] == 0.005  # a rate, not a count
    assert alarms["ModelLatency"]["ExtendedStatistic"] == "p99"
    assert alarms["ModelLatency"]["Threshold"] == 150_000  # microseconds
    assert alarms["CPUUtilization"]["Threshold"] == pytest.approx(0.8 * 100 * 4)  # 4 vCPUs
    assert alarms["Invocations"]["ComparisonOperator"] == "LessThanThreshold"
    (topic,) = of_type(resources, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    assert len(of_type(resources, "AWS::CloudWatch::Dashboard")) == 1


def _fast_alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm")
        if a["Properties"].get("Period") == 10
    }


def test_prod_rolls_back_on_a_minute_of_ten_second_breaches(templates: dict[str, Any]) -> None:
    """prod sets alarms.rollback_metric_seconds: 10: its endpoint configs publish invocation
    metrics every 10 s and two high-resolution alarms need 6 of 6 breaching datapoints."""
    resources = _resources(templates, "prod-us-east-1")
    fast = _fast_alarms(resources)
    assert set(fast) == {"Invocation5XXErrors", "ModelLatency"}
    for props in fast.values():
        assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (6, 6)
        assert props["TreatMissingData"] == "notBreaching"
        assert props["Dimensions"] == [
            {"Name": "EndpointName", "Value": "flightdelay-prod"},
            {"Name": "VariantName", "Value": "primary"},
        ]
    assert fast["Invocation5XXErrors"]["Threshold"] == 0.005
    assert fast["ModelLatency"]["Threshold"] == 150_000
    configs = of_type(resources, "AWS::SageMaker::EndpointConfig")
    assert configs and all(
        c["Properties"]["MetricsConfig"]
        == {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10}
        for c in configs
    )
    (endpoint,) = of_type(resources, "AWS::SageMaker::Endpoint")
    watched = endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    fast_ids = {
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Period") == 10
    }
    assert fast_ids <= {ref["AlarmName"]["Ref"] for ref in watched}


def test_staging_rehearses_prods_ten_second_alarms(templates: dict[str, Any]) -> None:
    """Staging deploys before prod: the 10-second series and alarms are seen there first."""
    for stage in ("staging-us-east-1", "staging-eu-west-1"):
        resources = _resources(templates, stage)
        assert set(_fast_alarms(resources)) == {"Invocation5XXErrors", "ModelLatency"}
        configs = of_type(resources, "AWS::SageMaker::EndpointConfig")
        assert configs and all(
            c["Properties"]["MetricsConfig"]["MetricPublishFrequencyInSeconds"] == 10
            for c in configs
        )


def test_one_minute_metrics_add_no_fast_alarms(tmp_path: Path, platform: PlatformConfig) -> None:
    staging = platform.environment("staging")
    one_minute = replace(staging, alarms=replace(staging.alarms, rollback_metric_seconds=60))
    config = replace(platform, environments={**platform.environments, "staging": one_minute})
    options = AppOptions(only_environment="staging", with_delivery_pipeline=False)
    resources = _resources(
        stack_templates(Path(synth_app(config, tmp_path, options).directory)), "staging-us-east-1"
    )
    assert _fast_alarms(resources) == {}
    configs = of_type(resources, "AWS::SageMaker::EndpointConfig")
    assert configs and all("MetricsConfig" not in c["Properties"] for c in configs)


def test_rollback_lambda_listens_to_this_endpoints_alarms(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-eu-west-1")
    (function,) = [
        f
        for f in of_type(resources, "AWS::Lambda::Function")
        # The inference API's Lambda also names the endpoint; the rollback one names a package.
        if "CURRENT_MODEL_PACKAGE_ARN" in f["Properties"]["Environment"]["Variables"]
    ]
    env = function["Properties"]["Environment"]["Variables"]
    assert env["ENDPOINT_NAME"] == "flightdelay-prod"
    assert env["CURRENT_MODEL_PACKAGE_ARN"].endswith("model-package/flightdelay-dev/3")
    assert "PREVIOUS_ENDPOINT_CONFIG_NAME" in env and "TOPIC_ARN" in env
    rules = of_type(resources, "AWS::Events::Rule")
    (rule,) = [r for r in rules if r["Properties"]["EventPattern"]["source"] == ["aws.cloudwatch"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    assert len(pattern["resources"]) == 4  # 1-minute and 10-second error rate and latency
    statements = [
        s
        for p in of_type(resources, "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    reject = next(s for s in statements if s.get("Sid") == "RejectTheBadPackage")
    assert reject["Resource"].endswith("model-package/flightdelay-dev/3")


def test_hub_replicates_models_to_every_serving_region(templates: dict[str, Any]) -> None:
    hub = _resources(templates, "dev-us-east-1", "Data")
    artifact = next(
        r for r in of_type(hub, "AWS::S3::Bucket") if "ReplicationConfiguration" in r["Properties"]
    )
    rules = artifact["Properties"]["ReplicationConfiguration"]["Rules"]
    destinations = {rule["Destination"]["Bucket"]: rule["Destination"] for rule in rules}
    assert len(destinations) == 6
    prod_ap = destinations["arn:aws:s3:::flightdelay-prod-models-444444444444-ap-southeast-1"]
    assert prod_ap["Account"] == "444444444444"
    assert prod_ap["AccessControlTranslation"] == {"Owner": "Destination"}
    assert prod_ap["EncryptionConfiguration"]["ReplicaKmsKeyID"] == (
        "arn:aws:kms:ap-southeast-1:444444444444:alias/flightdelay-prod-models"
    )
    for rule in rules:
        assert rule["Filter"] == {"Prefix": "training-pipeline/models/"}
    spoke = _resources(templates, "prod-ap-southeast-1", "Data")
    policies = json.dumps(of_type(spoke, "AWS::S3::BucketPolicy"))
    assert "arn:aws:iam::222222222222:role/flightdelay-dev-model-replication" in policies


def test_replication_reaches_only_the_model_prefix_and_keys_only_through_s3(
    templates: dict[str, Any],
) -> None:
    replication = "arn:aws:iam::222222222222:role/flightdelay-dev-model-replication"
    spoke = _resources(templates, "prod-ap-southeast-1", "Data")
    granted = [
        s
        for doc in [
            p["Properties"]["PolicyDocument"] for p in of_type(spoke, "AWS::S3::BucketPolicy")
        ]
        + [k["Properties"]["KeyPolicy"] for k in of_type(spoke, "AWS::KMS::Key")]
        for s in doc["Statement"]
        if s["Effect"] == "Allow"
        and s.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn") == replication
    ]
    assert {s["Sid"] for s in granted} == {
        "HubReplicatesModels",
        "HubChecksVersioning",
        "HubEncryptsReplicas",
    }
    by_sid = {s["Sid"]: s for s in granted}
    assert by_sid["HubChecksVersioning"]["Action"] == "s3:GetBucketVersioning"  # never Put
    assert by_sid["HubReplicatesModels"]["Resource"]["Fn::Join"][1][-1] == (
        "/training-pipeline/models/*"
    )
    for statement in granted:
        assert statement["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert by_sid["HubEncryptsReplicas"]["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.ap-southeast-1.amazonaws.com"
    }
    hub = _resources(templates, "dev-us-east-1", "Data")
    (role_policy,) = [
        p
        for k, p in hub.items()
        if p["Type"] == "AWS::IAM::Policy" and k.startswith("ModelReplicationRole")
    ]
    statements = role_policy["Properties"]["PolicyDocument"]["Statement"]
    (write,) = [s for s in statements if "s3:ReplicateObject" in s["Action"]]
    assert all(r.endswith("/training-pipeline/models/*") for r in write["Resource"])
    (encrypt,) = [s for s in statements if "kms:Encrypt" in s["Action"]]
    assert (
        "s3.ap-southeast-1.amazonaws.com" in encrypt["Condition"]["StringEquals"]["kms:ViaService"]
    )


def test_no_pinned_model_means_no_endpoint_and_no_error(
    tmp_path: Path, platform: PlatformConfig
) -> None:
    releases = default_releases(platform)
    releases = releases.with_environment("staging", EnvironmentRelease())
    templates = stack_templates(Path(synth_app(platform, tmp_path, releases=releases).directory))
    assert not any(p.startswith("staging") and p.endswith("/Serving") for p in templates)
    assert "staging-us-east-1/Data" in templates


def test_removing_the_prod_model_needs_an_explicit_flag(
    tmp_path: Path, platform: PlatformConfig
) -> None:
    releases = default_releases(platform).with_environment("prod", EnvironmentRelease())
    with pytest.raises(
        ConfigError, match=r"prod.current: no model pinned.*allow-prod-without-model"
    ):
        synth_app(platform, tmp_path / "a", releases=releases)
    options = AppOptions(allow_prod_without_model=True, only_environment="prod")
    templates = stack_templates(
        Path(synth_app(platform, tmp_path / "b", options, releases).directory)
    )
    assert not any(p.endswith("/Serving") for p in templates)
    assert replace(options, allow_prod_without_model=False) != options


def test_alarms_may_publish_to_the_encrypted_topic(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-us-east-1")
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    allow = statements["CloudWatchAlarmsOfThisAccount"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "444444444444"}
    assert statements["TlsOnly"]["Effect"] == "Deny"


def test_serverless_models_run_without_network_isolation(templates: dict[str, Any]) -> None:
    for model in of_type(_resources(templates, "dev-us-east-1"), "AWS::SageMaker::Model"):
        assert model["Properties"]["EnableNetworkIsolation"] is False  # unsupported serverless


def test_roles_that_start_sagemaker_with_a_volume_key_may_grant_it(
    templates: dict[str, Any],
) -> None:
    statements = [
        s
        for p in of_type(_resources(templates, "prod-us-east-1"), "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "SageMakerVolumeKeyGrants"
    ]
    assert len(statements) == 2  # the model role and the rollback Lambda (UpdateEndpoint)
    for statement in statements:
        assert statement["Action"] == ["kms:CreateGrant", "kms:DescribeKey"]
        assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_hub_keeps_its_data_and_orders_same_stack_replication(
    templates: dict[str, Any],
) -> None:
    hub = _resources(templates, "dev-us-east-1", "Data")
    (artifact_id,) = [
        k for k, r in hub.items() if "ReplicationConfiguration" in r.get("Properties", {})
    ]
    artifact = hub[artifact_id]
    assert artifact["DeletionPolicy"] == "Retain"  # dev's data, but the hub of every env
    model_bucket_id = next(
        k for k in hub if k.startswith("ModelBucket") and hub[k]["Type"] == "AWS::S3::Bucket"
    )
    assert model_bucket_id in artifact["DependsOn"]


def test_pinned_artifacts_are_staged_and_verified_before_the_models(
    templates: dict[str, Any], platform: PlatformConfig
) -> None:
    resources = _resources(templates, "prod-ap-southeast-1")
    staged = {k: r for k, r in resources.items() if r["Type"] == "Custom::ModelArtifact"}
    prod = default_releases(platform).get("prod")
    assert prod.current is not None and prod.previous is not None
    expected = {
        (release.artifact_key, release.staged_key, release.sha256)
        for release in (prod.current, prod.previous)
    }
    assert {
        (r["Properties"]["Key"], r["Properties"]["StagedKey"], r["Properties"]["Sha256"])
        for r in staged.values()
    } == expected
    for artifact in staged.values():
        props = artifact["Properties"]
        assert props["SourceBucket"] == "flightdelay-dev-artifacts-222222222222-us-east-1"
        assert props["SourceRegion"] == "us-east-1"
        assert props["DestinationBucket"] == "flightdelay-prod-models-444444444444-ap-southeast-1"
    for model in of_type(resources, "AWS::SageMaker::Model"):
        assert set(staged) <= set(model.get("DependsOn", []))
    hub = _resources(templates, "dev-us-east-1", "Data")
    policies = json.dumps(of_type(hub, "AWS::S3::BucketPolicy"))
    assert "flightdelay-prod-ap-southeast-1-model-stager" in policies
