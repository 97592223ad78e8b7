"""Nothing in a stack fails silently: every Lambda's Errors metric alarms to the stage's
topic, events that async invocations or EventBridge could not deliver land in one
KMS-encrypted dead-letter queue (which alarms too), and failed pipeline executions and
processing jobs are forwarded to the topic by EventBridge rules."""

from __future__ import annotations

import functools

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops.constructs import cdk_values
from mlops.constructs.alert_topic import alert_topic
from mlops.constructs.python_function import PythonFunction
from mlops.nag import acknowledge, acknowledge_key_grant

# Lambda retries a failed async invocation at most twice (about 1 and 2 minutes later);
# an event older than this goes to the on-failure destination instead of being retried.
ASYNC_RETRIES = 2
MAX_EVENT_AGE = cdk.Duration.hours(6)
DEAD_LETTER_RETENTION = cdk.Duration.days(14)  # the SQS maximum
ALARM_PERIOD = cdk.Duration.minutes(5)


class FailureAlerts(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, topic: sns.ITopic, encryption_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self._notify = cw_actions.SnsAction(topic)  # stateless: one for every alarm
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the stack's functions and rules.",
        )
        self._alarm(
            "DeadLettersWaiting",
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
            "Undelivered or failed events wait in the dead-letter queue "
            f"{self.dead_letters.queue_name}: read them, fix the cause, redrive.",
        )
        self.alarms: list[cloudwatch.Alarm] = []

    def watch_function(self, function: PythonFunction, *, invoked_async: bool) -> None:
        """Errors alarm; for async invocations (EventBridge, CloudFormation custom resources)
        also bounded retries and the dead-letter queue as on-failure destination."""
        fn = function.function
        node = function.node  # each property read is a jsii request: read it once
        self.alarms.append(
            self._alarm(
                f"{node.id}Errors",
                fn.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
                f"Lambda {node.path} raised an error: see its log group.",
            )
        )
        if invoked_async:
            fn.configure_async_invoke(
                on_failure=destinations.SqsDestination(self.dead_letters),
                retry_attempts=ASYNC_RETRIES,
                max_event_age=MAX_EVENT_AGE,
            )
            # Sending to the encrypted queue needs the stage key (CDK's standard grant).
            self.dead_letters.grant_send_messages(function.role)
            acknowledge_key_grant(function.role)

    def watch_rule(self, rule: events.Rule) -> None:
        """Events the rule could not deliver to its targets go to the dead-letter queue."""
        node = rule.node
        cfn_rule = node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        queue_arn = self._queue_arn
        targets_count = len(self._stack.resolve(cfn_rule.targets) or [])
        for index in range(targets_count):
            cfn_rule.add_property_override(f"Targets.{index}.DeadLetterConfig.Arn", queue_arn)
        self.dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"UndeliveredEventsOf{node.id}",
                principals=[cdk_values.service_principal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            )
        )

    # Read once per construct, not once per watched rule (each read is a jsii request).
    @functools.cached_property
    def _queue_arn(self) -> str:
        return self.dead_letters.queue_arn

    @functools.cached_property
    def _stack(self) -> cdk.Stack:
        return cdk.Stack.of(self)

    def watch_pipeline(self, pipeline_name: str, pipeline_arn: str) -> events.Rule:
        return self._forward(
            "PipelineFailed",
            f"{pipeline_name} executions that fail",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={
                    "currentPipelineExecutionStatus": ["Failed"],
                    "pipelineArn": [pipeline_arn],
                },
            ),
            f"Pipeline {pipeline_name}: execution "
            f"{events.EventField.from_path('$.detail.pipelineExecutionArn')} FAILED. "
            "See its steps in SageMaker Studio or DescribePipelineExecution.",
        )

    def watch_processing_jobs(self, job_prefix: str, what: str) -> events.Rule:
        return self._forward(
            "ProcessingJobFailed",
            f"{what} jobs ({job_prefix}-*) that fail",
            events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Processing Job State Change"],
                detail={
                    "ProcessingJobStatus": ["Failed"],
                    "ProcessingJobName": [{"prefix": f"{job_prefix}-"}],
                },
            ),
            f"{what} job {events.EventField.from_path('$.detail.ProcessingJobName')} FAILED: "
            f"{events.EventField.from_path('$.detail.FailureReason')}",
        )

    def _forward(
        self, construct_id: str, description: str, pattern: events.EventPattern, message: str
    ) -> events.Rule:
        rule = events.Rule(
            self,
            construct_id,
            description=description[:512],
            event_pattern=pattern,
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(message),
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=5,
                )
            ],
        )
        return rule

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description[:1024],
        )
        alarm.add_alarm_action(self._notify)
        return alarm


def failure_alerts_with_own_topic(
    scope: Construct, *, display_name: str, encryption_key: kms.IKey
) -> FailureAlerts:
    """FailureAlerts for a stack without an endpoint topic: a topic of its own ("Alerts")
    beside it ("FailureAlerts"), both directly under `scope` so their logical ids stay put."""
    topic = alert_topic(scope, "Alerts", display_name=display_name, encryption_key=encryption_key)
    return FailureAlerts(scope, "FailureAlerts", topic=topic, encryption_key=encryption_key)
