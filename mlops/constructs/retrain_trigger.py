"""The retrain loop across accounts: a drift alarm in a serving stage starts the training
pipeline in the hub (training home account and region), rate-limited.

Serving side (RetrainGate): an EventBridge rule on the drift alarm entering ALARM invokes the
retrain-gate Lambda, whose role has a physical name so the hub can trust it. Hub side
(RetrainStarterRole): a named role that may only list and start the one training pipeline,
read its definition, versions and executions' steps and parameters, and list its group's
approved model packages, trusted by exactly the gate roles of the stages serving from
this hub. The gate always assumes it, also from the hub's own account: one path to test and
to audit.

A second rule re-invokes the gate every `min_hours` with a recheck event: an alarm that stays
in ALARM after its retrain crashed sends no new state change, and the recheck (which reads the
alarm's state itself) retries it; a retrain the quality gate refused waits for new data. See
lambda/retrain_gate/gate_logic.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops.constructs import cdk_values
from mlops.constructs.python_function import PythonFunction
from mlops.nag import acknowledge_wildcard_resource


@dataclass(frozen=True)
class HubPipeline:
    """Where the training pipeline lives, and the role that may start it."""

    account: str
    region: str
    pipeline_name: str
    starter_role_name: str
    # A refused run holds the gate only while its incumbent is still this group's approved one.
    model_package_group_name: str

    def starter_role_arn(self, partition: str) -> str:
        return f"arn:{partition}:iam::{self.account}:role/{self.starter_role_name}"


class RetrainGate(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm: cloudwatch.IAlarm,
        hub: HubPipeline,
        gate_role_name: str,
        min_hours: int,
        environment_name: str,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        partition = cdk.Stack.of(self).partition
        self.gate = PythonFunction(
            self,
            "Gate",
            source="retrain_gate",
            description=f"Start {hub.pipeline_name} on persistent drift, at most every "
            f"{min_hours} h.",
            encryption_key=encryption_key,
            powertools=True,
            timeout_seconds=60,
            environment={
                "PIPELINE_NAME": hub.pipeline_name,
                "PIPELINE_REGION": hub.region,
                "STARTER_ROLE_ARN": hub.starter_role_arn(partition),
                "RETRAIN_MIN_HOURS": str(min_hours),
                "ENVIRONMENT_NAME": environment_name,
                "ALARM_NAME": alarm.alarm_name,
                "MODEL_PACKAGE_GROUP_NAME": hub.model_package_group_name,
            },
        )
        # The hub trusts this role by name (a generated name is unknowable there).
        cfn_role = self.gate.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.role_name = gate_role_name
        self.gate.role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeHubRetrainStarter",
                actions=["sts:AssumeRole"],
                resources=[hub.starter_role_arn(partition)],
            )
        )
        # Rechecks read the alarm's current state (its own account: no role to assume).
        self.gate.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheDriftAlarmState",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn],
            )
        )
        self.rule = events.Rule(
            self,
            "OnDriftAlarm",
            description=f"Drift persists: ask the gate to retrain {hub.pipeline_name}",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[targets.LambdaFunction(self.gate.function, retry_attempts=2)],
        )
        self.recheck_rule = events.Rule(
            self,
            "Recheck",
            description="Retry a drift retrain that failed while the alarm stays in ALARM",
            schedule=events.Schedule.rate(cdk.Duration.hours(min_hours)),
            targets=[
                targets.LambdaFunction(
                    self.gate.function,
                    event=events.RuleTargetInput.from_object(
                        {"gate": "recheck", "time": events.EventField.time}
                    ),
                    retry_attempts=2,
                )
            ],
        )


class RetrainStarterRole(Construct):
    """Hub side: list and start one pipeline and read what decides whether a refused run
    still holds the gate, for the named gate roles only."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        pipeline_arn: str,
        model_package_group_arn: str,
        gate_roles: list[tuple[str, str]],
    ) -> None:
        """gate_roles: (account, role name) of every serving stage's retrain gate."""
        super().__init__(scope, construct_id)
        partition = cdk.Stack.of(self).partition
        accounts = sorted({account for account, _ in gate_roles})
        gate_arns = sorted(f"arn:{partition}:iam::{a}:role/{n}" for a, n in gate_roles)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            # Accounts plus a PrincipalArn condition: a trust policy naming a role ARN fails
            # to deploy while that role does not exist yet in the serving account.
            assumed_by=iam.CompositePrincipal(
                *(iam.AccountPrincipal(account) for account in accounts)
            ).with_conditions({"ArnEquals": {"aws:PrincipalArn": gate_arns}}),
            description="Drift retrain gates of the serving stages start the training pipeline.",
            max_session_duration=cdk_values.hours(1),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListAndStartThisPipeline",
                actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[pipeline_arn],
            )
        )
        # Whether a refusal still holds: the current definition's defaults and version.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadThisPipelinesCurrentDefinition",
                actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineVersions"],
                resources=[pipeline_arn],
            )
        )
        # The gate tells a run the quality gate refused (it reached the Fail step) from a
        # crashed one by its steps, and reads the refused run's parameters and version; the
        # pipeline-execution ARN is pipeline/<name>/execution/<id>.
        executions_arn = f"{pipeline_arn}/execution/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadThisPipelinesExecutionSteps",
                actions=[
                    "sagemaker:ListPipelineExecutionSteps",
                    "sagemaker:DescribePipelineExecution",
                    "sagemaker:ListPipelineParametersForExecution",
                ],
                resources=[executions_arn],
            )
        )
        acknowledge_wildcard_resource(
            self.role,
            executions_arn,
            "Execution ids are generated per run; reads the steps, parameters and version of "
            "this one pipeline's runs.",
        )
        # ... and the incumbent a new run would be judged against (the group's newest Approved).
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="FindThisGroupsApprovedIncumbent",
                actions=["sagemaker:ListModelPackages"],
                resources=[model_package_group_arn],
            )
        )
