"""The scheduled monitoring job of one endpoint (drift and model quality), its least-privilege
role, and the alarms on what it publishes.

EventBridge Scheduler calls CreateProcessingJob directly (universal target) with the request
below; <aws.scheduler.execution-id> makes each job name unique (a retry is a new attempt with
a new id) and <aws.scheduler.scheduled-time> tells the job which window to read
(pipeline_steps/monitor.py lists the hourly capture partitions itself).

Drift persists = the configured metric (drift.alarm.metric: DriftScore, DriftedFeatureCount,
OutOfRangeShare or ModelAUC) breaches drift.alarm.threshold in datapoints_to_alarm of
evaluation_periods runs: the alarm's period is the schedule's period. Missing data (no run,
or nothing scored) keeps the alarm's state, so a new, still empty period cannot flip it back
to OK before its run.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops.config import DriftConfig, InstanceType
from mlops.constructs.sagemaker_container_access import (
    grant_sagemaker_container,
    grant_volume_key,
)
from mlops.constructs.step_scripts_bundle import StepScriptsBundle
from mlops.constructs.training_pipeline import STEP_SCRIPTS
from mlops.nag import acknowledge, acknowledge_key_grant, acknowledge_wildcard_resource
from mlops.pipeline_definition import images
from mlops.pipeline_definition.training_pipeline import BOOTSTRAP

CREATE_PROCESSING_JOB = "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
CAPTURE_PREFIX = "datacapture"  # RealtimeEndpoint's DATA_CAPTURE_PREFIX
LABELS_PREFIX = "ground-truth"
REPORTS_PREFIX = "monitoring"
CODE_DIR = "/opt/ml/processing/input/code"
BASELINE_DIR = "/opt/ml/processing/input/baseline"
REPORT_DIR = "/opt/ml/processing/report"
WORK_DIR = "/opt/ml/processing/work"
MAX_RUNTIME_S = 3600
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period(schedule: str, periods: int = 2) -> cdk.Duration:
    """The period of a rate() schedule; alarms evaluate one datapoint per run."""
    match = _RATE.match(schedule)
    if not match:
        raise ValueError(
            f"drift.schedule {schedule!r}: the drift alarm needs a rate(N unit) schedule to "
            "know its period (cron(...) is not supported here)"
        )
    seconds = int(match.group(1)) * _UNIT_S[match.group(2).rstrip("s")]
    # PutMetricAlarm: a multiple of 60 s; periods x evaluations at most 7 days (1 day < 1 h).
    limit = 86400 * (7 if seconds >= 3600 else 1)
    if seconds * periods > limit:
        raise ValueError(
            f"drift.schedule {schedule!r}: {periods} runs span more than "
            f"CloudWatch's {limit // 86400}-day alarm window; schedule more often"
        )
    return cdk.Duration.seconds(seconds)


@dataclass(frozen=True)
class MonitoredEndpoint:
    endpoint_name: str
    variant_name: str
    baseline_key: str  # in the model bucket: the served model.tar.gz, baseline.json inside


class DriftMonitor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: MonitoredEndpoint,
        drift: DriftConfig,
        auc_threshold: float,
        instance_type: InstanceType,
        data_bucket: s3.IBucket,
        model_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        metrics_namespace: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.period = schedule_period(drift.schedule, drift.alarm.evaluation_periods)
        # The job reads whole hourly partitions: a sub-hourly schedule still reads one hour.
        window_hours = max(1, math.ceil(self.period.to_seconds() / 3600))
        name = endpoint.endpoint_name
        scripts = StepScriptsBundle(self, "StepScripts", source=STEP_SCRIPTS)
        self.job_prefix = f"{name}-monitor"
        if len(self.job_prefix) > 40:  # + "-" + execution id within the 63-character limit
            raise ValueError(f"endpoint name {name!r} is too long for monitoring job names")
        self.job_role = self._job_role(
            endpoint, data_bucket, model_bucket, encryption_key, metrics_namespace, scripts
        )
        cluster: dict[str, object] = {
            "InstanceCount": 1,
            "InstanceType": instance_type.name,
            "VolumeSizeInGB": 30,
        }
        if instance_type.supports_volume_kms_key:
            cluster["VolumeKmsKeyId"] = encryption_key.key_arn
        arguments = {
            "--bucket": data_bucket.bucket_name,
            "--endpoint-name": name,
            "--variant": endpoint.variant_name,
            "--scheduled-time": "<aws.scheduler.scheduled-time>",
            "--window-hours": str(window_hours),
            "--baseline": f"{BASELINE_DIR}/{posixpath.basename(endpoint.baseline_key)}",
            "--work-dir": WORK_DIR,
            "--report-dir": REPORT_DIR,
            "--metrics-namespace": metrics_namespace,
            "--psi-threshold": str(drift.psi_threshold),
            "--region": stack.region,
        }
        request = {
            "ProcessingJobName": f"{self.job_prefix}-<aws.scheduler.execution-id>",
            "RoleArn": self.job_role.role_arn,
            "AppSpecification": {
                "ImageUri": images.sklearn_image_uri(stack.region),
                "ContainerEntrypoint": ["python3", "-c", BOOTSTRAP, CODE_DIR, "monitor.py"],
                "ContainerArguments": [part for pair in arguments.items() for part in pair],
            },
            "ProcessingInputs": [
                _s3_input("code", scripts.s3_uri, CODE_DIR),
                _s3_input(
                    "baseline", model_bucket.s3_url_for_object(endpoint.baseline_key), BASELINE_DIR
                ),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "report",
                        "S3Output": {
                            "S3Uri": data_bucket.s3_url_for_object(
                                f"{REPORTS_PREFIX}/{name}/<aws.scheduler.execution-id>"
                            ),
                            "LocalPath": REPORT_DIR,
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ],
                "KmsKeyId": encryption_key.key_arn,
            },
            "ProcessingResources": {"ClusterConfig": cluster},
            # No network isolation: monitor.py lists and reads the capture window itself
            # (S3) and publishes its figures (CloudWatch PutMetricData), both AWS API calls.
            "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
        }
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description=f"EventBridge Scheduler starts the monitoring job of {name}.",
        )
        job_arn = stack.format_arn(
            service="sagemaker", resource="processing-job", resource_name=f"{self.job_prefix}-*"
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                sid="StartMonitoringJobs",
                actions=["sagemaker:CreateProcessingJob"],
                resources=[job_arn],
            )
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTheJobRole",
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resource(
            self.scheduler_role,
            job_arn,
            "Each run's job name ends in the scheduler's execution id.",
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"Drift and model quality of {name}",
            schedule_expression=drift.schedule,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=CREATE_PROCESSING_JOB,
                role_arn=self.scheduler_role.role_arn,
                input=stack.to_json_string(request),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
            ),
        )
        self.schedule.node.add_dependency(self.scheduler_role)
        self.drift_alarm, self.quality_alarm = self._alarms(
            name, drift, auc_threshold, metrics_namespace, topic
        )

    def _alarms(
        self,
        endpoint_name: str,
        drift: DriftConfig,
        auc_threshold: float,
        namespace: str,
        topic: sns.ITopic,
    ) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        def metric(metric_name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=metric_name,
                dimensions_map={"EndpointName": endpoint_name},
                statistic=statistic,
                period=self.period,
            )

        settings = drift.alarm
        # One datapoint per run: the worst value of the period.
        worst = "Minimum" if settings.comparison.startswith("Less") else "Maximum"
        drift_alarm = cloudwatch.Alarm(
            self,
            "DriftPersists",
            metric=metric(settings.metric, worst),
            threshold=settings.threshold,
            comparison_operator=cloudwatch.ComparisonOperator[
                re.sub(r"(?<!^)(?=[A-Z])", "_", settings.comparison).upper()
            ],
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            alarm_description=f"{endpoint_name}: {settings.metric} "
            f"{'<' if worst == 'Minimum' else '>='} {settings.threshold} in "
            f"{settings.datapoints_to_alarm} of {settings.evaluation_periods} monitoring runs; "
            "starts a retrain (rate-limited)",
        )
        quality_alarm = cloudwatch.Alarm(
            self,
            "ModelAucLow",
            metric=metric("ModelAUC", "Minimum"),
            threshold=auc_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            alarm_description=f"{endpoint_name}: AUC on ground-truth labels below "
            f"{auc_threshold} (the training quality gate)",
        )
        notify = cw_actions.SnsAction(topic)  # stateless: one for every action
        for alarm in (drift_alarm, quality_alarm):
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)
        return drift_alarm, quality_alarm

    def _job_role(
        self,
        endpoint: MonitoredEndpoint,
        data_bucket: s3.IBucket,
        model_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        namespace: str,
        scripts: StepScriptsBundle,
    ) -> iam.Role:
        stack = cdk.Stack.of(self)
        name = endpoint.endpoint_name
        role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Monitoring job of {name}: read capture and labels, publish metrics.",
        )
        encryption_key.grant_encrypt_decrypt(role)
        grant_volume_key(role, encryption_key)
        acknowledge_key_grant(role)
        readable = [f"{CAPTURE_PREFIX}/{name}/", f"{LABELS_PREFIX}/{name}/"]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListTheWindow",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in readable]}},
            )
        )
        objects = {
            "ReadCaptureAndLabels": (["s3:GetObject"], [f"{p}*" for p in readable]),
            "WriteReports": (["s3:PutObject"], [f"{REPORTS_PREFIX}/{name}/*"]),
        }
        for sid, (actions, keys) in objects.items():
            arns = [data_bucket.arn_for_objects(k) for k in keys]
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=arns))
            for arn in arns:
                acknowledge_wildcard_resource(
                    role, arn, "Keys under this endpoint's own prefix are generated per hour/run."
                )
        inputs = {
            "Baseline": (model_bucket.bucket_arn, endpoint.baseline_key),
            "StepScripts": (
                f"arn:{stack.partition}:s3:::{scripts.asset.s3_bucket_name}",
                scripts.asset.s3_object_key,
            ),
        }
        for sid, (bucket_arn, key) in inputs.items():
            # SageMaker lists an input's prefix before it downloads: exactly this key.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"Read{sid}",
                    actions=["s3:GetObject"],
                    resources=[f"{bucket_arn}/{key}"],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"List{sid}",
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringEquals": {"s3:prefix": key}},
                )
            )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishMonitoringMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
            )
        )
        grant_sagemaker_container(
            role,
            registry_account=images.registry_account(stack.region),
            repositories=[images.SKLEARN_REPOSITORY],
            log_group_name="/aws/sagemaker/ProcessingJobs:*",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource scope; PutMetricData is limited to the "
            "monitoring namespace by a condition.",
        )
        return role


def _s3_input(name: str, uri: str, local_path: str) -> dict[str, object]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }
