"""The SageMaker Pipeline (validate, preprocess, train, evaluate vs. incumbent, gated
register), its least-privilege execution role and the incumbent-lookup Lambda step."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops.config import EnvironmentConfig, TrainingConfig
from mlops.constructs.feature_store import OFFLINE_STORE_PREFIX
from mlops.constructs.model_registry import ModelRegistry
from mlops.constructs.python_function import PythonFunction
from mlops.constructs.sagemaker_container_access import (
    grant_sagemaker_container,
    grant_volume_key,
)
from mlops.constructs.step_scripts_bundle import StepScriptsBundle
from mlops.nag import acknowledge_each, acknowledge_wildcard_resource
from mlops.pipeline_definition import images
from mlops.pipeline_definition.offline_join import OfflineTables
from mlops.pipeline_definition.training_pipeline import (
    TrainingPipelineSpec,
    TuningSpec,
    build_definition,
)

STEP_SCRIPTS = Path(__file__).resolve().parents[2] / "pipeline_steps"
RAW_PREFIX = "raw/"
PIPELINE_PREFIX = "training-pipeline"


# The Glue database SageMaker Processing creates for the temporary tables of Athena inputs.
PROCESSING_DATABASE = "sagemaker_processing"


class TrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        training: TrainingConfig,
        environment: EnvironmentConfig,
        registry: ModelRegistry,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        offline_tables: OfflineTables,
        workgroup_name: str,
    ) -> None:
        """offline_tables: the Glue tables Preprocess's Athena input queries (the data stack's
        OfflineCatalog); workgroup_name: the Athena workgroup created here for it."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.pipeline_name = pipeline_name
        self.workgroup = athena.CfnWorkGroup(
            self,
            "JoinWorkGroup",
            name=workgroup_name,
            description="The training pipeline's point-in-time join over the offline store.",
            # Deleting the workgroup deletes its saved queries too (it has none of value).
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Not enforced: SageMaker names each execution's result location
                # (AthenaDatasetDefinition.OutputS3Uri, under the pipeline prefix).
                enforce_work_group_configuration=False,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=artifact_bucket.s3_url_for_object(
                        f"{PIPELINE_PREFIX}/athena-results/"
                    ),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=encryption_key.key_arn
                    ),
                ),
            ),
        )
        scripts = StepScriptsBundle(self, "StepScripts", source=STEP_SCRIPTS)
        self.find_incumbent = PythonFunction(
            self,
            "FindIncumbent",
            source="find_incumbent",
            description="Pipeline step: the latest Approved model of the group, if any.",
            encryption_key=encryption_key,
        )
        self.find_incumbent.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                resources=[registry.group_arn, registry.packages_arn],
            )
        )
        acknowledge_wildcard_resource(
            self.find_incumbent.role,
            registry.packages_arn,
            "Reads the versions of this one model package group to find the approved one.",
        )
        self.role = self._execution_role(
            registry=registry,
            data_bucket=data_bucket,
            artifact_bucket=artifact_bucket,
            encryption_key=encryption_key,
        )
        # Exactly the code archive, not the whole CDK assets bucket.
        assets_bucket_arn = f"arn:{stack.partition}:s3:::{scripts.asset.s3_bucket_name}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadStepScripts",
                actions=["s3:GetObject"],
                resources=[f"{assets_bucket_arn}/{scripts.asset.s3_object_key}"],
            )
        )
        # The code input is an S3Prefix input: SageMaker lists the prefix before it downloads
        # (ListObjectsV2 needs s3:ListBucket), so allow listing exactly this key.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListStepScripts",
                actions=["s3:ListBucket"],
                resources=[assets_bucket_arn],
                conditions={"StringEquals": {"s3:prefix": scripts.asset.s3_object_key}},
            )
        )
        self.find_incumbent.function.grant_invoke(self.role)
        self._grant_join_query(offline_tables, workgroup_name, data_bucket)

        spec = TrainingPipelineSpec(
            region=stack.region,
            role_arn=self.role.role_arn,
            artifact_bucket=artifact_bucket.bucket_name,
            code_uri=scripts.s3_uri,
            model_package_group_name=registry.group_name,
            find_incumbent_function_arn=self.find_incumbent.function.function_arn,
            s3_prefix=PIPELINE_PREFIX,
            input_data_url=data_bucket.s3_url_for_object(RAW_PREFIX),
            offline_tables=offline_tables,
            athena_workgroup=workgroup_name,
            processing_instance_type=training.processing_instance_type.name,
            training_instance_type=training.training_instance_type.name,
            auc_threshold=training.auc_threshold,
            test_weeks=training.test_weeks,
            validation_weeks=training.validation_weeks,
            train_months=training.train_months,
            non_inferiority_margin=training.non_inferiority_margin,
            min_weather_match=training.min_weather_match,
            min_plane_match=training.min_plane_match,
            approval_status="Approved" if training.auto_approve else "PendingManualApproval",
            use_spot=training.use_spot,
            tuning=TuningSpec() if training.tuning else None,
            kms_key_arn=encryption_key.key_arn,
            cache_expire_after=training.step_cache,
            serving_instance_types=(environment.serving.instance_type.name,),
        )
        self.definition = build_definition(spec)
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_description="Validate, preprocess, train, evaluate vs. incumbent, register.",
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(self.definition)},
        )
        self.pipeline.node.add_dependency(self.role)
        self.pipeline_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower()
        )

    def _grant_join_query(
        self, tables: OfflineTables, workgroup_name: str, data_bucket: s3.IBucket
    ) -> None:
        """Preprocess's Athena input runs as this role: the query in its one workgroup, reading
        exactly the three tables of the join and the offline-store objects behind them (the raw
        prefix and the result location under the pipeline prefix are granted already)."""
        stack = cdk.Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="RunTheJoinQuery",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                ],
                resources=[
                    stack.format_arn(
                        service="athena", resource="workgroup", resource_name=workgroup_name
                    )
                ],
            )
        )

        def glue_arn(resource: str, name: str | None = None) -> str:
            return stack.format_arn(service="glue", resource=resource, resource_name=name)

        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheJoinTables",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=[
                    glue_arn("catalog"),
                    glue_arn("database", tables.database),
                    *(
                        glue_arn("table", f"{tables.database}/{name}")
                        for name in (tables.weather, tables.plane, tables.flights)
                    ),
                ],
            )
        )
        # SageMaker Processing runs the dataset definition as a CTAS into a temporary table of
        # a Glue database it names sagemaker_processing, creating the database on first use
        # (aws/sagemaker-python-sdk#5176: AccessDenied on glue:CreateDatabase otherwise).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="StageTheQueryResult",
                actions=["glue:CreateDatabase", "glue:GetDatabase"],
                resources=[glue_arn("catalog"), glue_arn("database", PROCESSING_DATABASE)],
            )
        )
        temporary_tables = glue_arn("table", f"{PROCESSING_DATABASE}/*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="StageTheQueryResultTable",
                actions=["glue:CreateTable", "glue:GetTable", "glue:DeleteTable"],
                resources=[glue_arn("database", PROCESSING_DATABASE), temporary_tables],
            )
        )
        acknowledge_wildcard_resource(
            self.role,
            temporary_tables,
            "SageMaker Processing names the temporary result table of each Athena input itself, "
            "inside its own sagemaker_processing database; no other database is writable.",
        )
        data_bucket.grant_read(self.role, f"{OFFLINE_STORE_PREFIX}/*")
        acknowledge_wildcard_resource(
            self.role,
            data_bucket.arn_for_objects(f"{OFFLINE_STORE_PREFIX}/*"),
            "Athena reads the offline-store files Feature Store writes under its prefix; the "
            "object keys are generated by the service.",
        )

    def _execution_role(
        self,
        *,
        registry: ModelRegistry,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        encryption_key: kms.IKey,
    ) -> iam.Role:
        """Pipeline and job role: only this pipeline's data, jobs, images and registry."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker pipeline and its processing/training jobs.",
        )
        data_bucket.grant_read(role, f"{RAW_PREFIX}*")
        artifact_bucket.grant_read_write(role, f"{PIPELINE_PREFIX}/*")
        encryption_key.grant_encrypt_decrypt(role)
        grant_volume_key(role, encryption_key)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunThisPipelinesJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                # Pipelines name their jobs "pipelines-<execution id>-<step>-<suffix>".
                resources=[
                    arn("processing-job", "pipelines-*"),
                    arn("training-job", "pipelines-*"),
                    arn("hyper-parameter-tuning-job", "pipelines-*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterIntoThisGroup",
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup"],
                resources=[registry.group_arn, registry.packages_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyToSageMaker",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        grant_sagemaker_container(
            role,
            registry_account=images.registry_account(stack.region),
            repositories=[images.SKLEARN_REPOSITORY, images.XGBOOST_REPOSITORY],
            log_group_name="/aws/sagemaker/*",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self._acknowledge_role(role, data_bucket, artifact_bucket, registry)
        return role

    def _acknowledge_role(
        self,
        role: iam.Role,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        registry: ModelRegistry,
    ) -> None:
        stack = cdk.Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        wildcard_resources = {
            data_bucket.arn_for_objects(f"{RAW_PREFIX}*"): "Reads the raw tables under raw/ only.",
            artifact_bucket.arn_for_objects(f"{PIPELINE_PREFIX}/*"): (
                "Jobs write outputs under the pipeline prefix; keys include execution ids."
            ),
            registry.packages_arn: "Registers new versions into this one model package group.",
            arn("processing-job", "pipelines-*"): "Job names are generated per execution.",
            arn("training-job", "pipelines-*"): "Job names are generated per execution.",
            arn(
                "hyper-parameter-tuning-job", "pipelines-*"
            ): "Job names are generated per execution.",
            f"{self.find_incumbent.function.function_arn}:*": (
                "Invoke grant covers the function's versions and aliases only."
            ),
        }
        for resource, reason in wildcard_resources.items():
            acknowledge_wildcard_resource(role, resource, reason)
        reasons = {
            "Action::s3:GetObject*": "Bucket grant read actions, limited to the raw/, offline-store "
            "and pipeline prefixes.",
            "Action::s3:GetBucket*": "Bucket grant read actions, limited to the pipeline's buckets.",
            "Action::s3:List*": "Jobs list their input prefixes; limited to the pipeline's buckets.",
            "Action::s3:DeleteObject*": "Jobs overwrite their outputs under the pipeline prefix only.",
            "Action::s3:Abort*": "Multipart uploads of job outputs under the pipeline prefix only.",
            "Action::kms:GenerateDataKey*": "Encrypt/decrypt grant on the stage's own key only.",
            "Action::kms:ReEncrypt*": "Encrypt/decrypt grant on the stage's own key only.",
            "Resource::*": "ecr:GetAuthorizationToken has no resource scope; PutMetricData is "
            "limited by a namespace condition.",
        }
        acknowledge_each(
            role, {f"AwsSolutions-IAM5[{finding}]": reason for finding, reason in reasons.items()}
        )
