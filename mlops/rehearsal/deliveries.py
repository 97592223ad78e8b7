"""Deliveries AWS services make on our behalf, and whether every policy on the way lets them.

An alarm action, an EventBridge target or dead-letter queue, an encrypted log group and a
Lambda's asynchronous-failure destination are each a call a service makes later, as a
service principal or as the function's role. CloudFormation accepts a template whose policies
forbid that call; the first alarm or event is then dropped without an error anywhere
(EventBridge counts a FailedInvocation, CloudWatch logs an action failure in the alarm's
history), or, for a log group, CreateLogGroup fails at deploy. cfn-lint and cdk-nag read each
resource alone; this rule follows every delivery to its target and asks the resource policy,
the KMS key policy and (for a role) the identity policy, with our IAM evaluator, whether the
service's request is allowed.

Request context: the evaluator treats a condition on a key the request does not carry as
unmet. CloudWatch alarms' requests carry aws:SourceAccount and aws:SourceArn (the alarm);
EventBridge's KMS requests for SNS and SQS targets are given no context keys (the SNS guide,
sns-key-management.html: aws:SourceAccount and aws:SourceArn in a key policy are not
supported for EventBridge-to-encrypted-topic delivery; we assume the same of its dead-letter
queues); Logs' carry the log group's encryption context."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.rehearsal.assembly import Assembly, Stack
from mlops.rehearsal.policy import Request, allows, role_logical_id, role_statements

ALARM_ACTIONS = ("AlarmActions", "OKActions", "InsufficientDataActions")
DELIVERIES_DOC = (
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changed.html; "
    "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html "
    "(compatibility between event sources from AWS services and encrypted topics); "
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html; "
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html; "
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html; "
    "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"
)


@dataclass(frozen=True)
class Problem:
    stack: Stack
    resource: str  # logical id of the sender (alarm, rule, log group, event invoke config)
    message: str


@dataclass(frozen=True)
class _Target:
    stack: Stack
    logical_id: str


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _index(assembly: Assembly) -> dict[str, _Target]:
    """ARN (and, for functions, name) -> the resource of the assembly it names."""
    found: dict[str, _Target] = {}
    for stack in assembly.stacks:
        for logical_id, resource in stack.resources.items():
            target = _Target(stack, logical_id)
            found[stack.arn_of(logical_id)] = target
            if resource["Type"] == "AWS::Lambda::Function":
                found[stack.resource_name(logical_id)] = target
    return found


def _service_statements(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """The statements that apply to a service principal (Deny to everyone applies too)."""
    chosen = []
    for statement in statements:
        principal = statement.get("Principal", {})
        if principal == "*" or (
            isinstance(principal, dict)
            and (
                service in _listed(principal.get("Service", []))
                or "*" in _listed(principal.get("AWS", []))
            )
        ):
            chosen.append(statement)
    return chosen


def _resource_policy(
    target: _Target, policy_type: str, list_prop: str
) -> list[dict[str, Any]] | None:
    """Resolved statements of the SNS topic or SQS queue policies naming the target, or None
    when none does (then the service's default policy applies: owner account only)."""
    wanted = {target.stack.arn_of(target.logical_id), target.stack.resource_name(target.logical_id)}
    statements: list[dict[str, Any]] = []
    found = False
    for _, policy in target.stack.of_type(policy_type):
        props = target.stack.resolve(policy["Properties"])
        named = {str(v) for v in _listed(props.get(list_prop, []))}
        # A queue policy lists queue URLs; a Ref of a queue resolves to its name here.
        if named & wanted or any(n.rsplit("/", 1)[-1] in wanted for n in named):
            found = True
            statements += _listed(props["PolicyDocument"]["Statement"])
    return statements if found else None


def _key_problems(
    index: Mapping[str, _Target],
    key_id: Any,
    service: str,
    actions: tuple[str, ...],
    context: Mapping[str, Any],
    what: str,
) -> list[str]:
    """Whether the key policy of key_id lets the service principal use it."""
    if key_id is None:
        return []
    key_arn = str(key_id)
    if key_arn.startswith("alias/aws/") or ":alias/aws/" in key_arn:
        return [
            f"{what} is encrypted with the AWS managed {key_arn}, whose key policy no service "
            f"principal but its own can use: {service} cannot deliver"
        ]
    key = index.get(key_arn)
    if key is None or key.stack.resources[key.logical_id]["Type"] != "AWS::KMS::Key":
        return [
            f"{what} is encrypted with {key_arn}, not a key of this app: its key policy cannot be checked"
        ]
    policy = key.stack.resolve(key.stack.resources[key.logical_id]["Properties"]["KeyPolicy"])
    statements = _service_statements(_listed(policy["Statement"]), service)
    return [
        f"key policy of {key_arn} does not allow {service} {action} for {what}"
        for action in actions
        if not allows(statements, Request(action, key_arn, context))
    ]


# --- CloudWatch alarm actions -> SNS ------------------------------------------------------


def _alarm_problems(assembly: Assembly, index: Mapping[str, _Target]) -> Iterator[Problem]:
    for stack in assembly.stacks:
        for alarm_id, alarm in stack.of_type("AWS::CloudWatch::Alarm"):
            props = stack.resolve(alarm["Properties"])
            alarm_arn = stack.arn_of(alarm_id)
            context = {"aws:SourceAccount": stack.account, "aws:SourceArn": alarm_arn}
            for action in sorted({a for key in ALARM_ACTIONS for a in props.get(key, [])}):
                if not str(action).startswith("arn:aws:sns:"):
                    # Lambda, Systems Manager, EC2 and Auto Scaling actions need grants of
                    # their own that this rule does not follow: red, not silently passed.
                    yield Problem(
                        stack, alarm_id, f"alarm action {action}: only SNS actions are modelled"
                    )
                    continue
                yield from _sns_problems(
                    stack,
                    alarm_id,
                    index,
                    str(action),
                    "cloudwatch.amazonaws.com",
                    context,
                    context,
                )


def _sns_problems(
    stack: Stack,
    sender: str,
    index: Mapping[str, _Target],
    topic_arn: str,
    service: str,
    context: Mapping[str, Any],
    key_context: Mapping[str, Any],
) -> Iterator[Problem]:
    """context: what the service's sns:Publish carries; key_context: what its KMS requests
    for the topic carry (not the same for EventBridge, see the module docstring)."""
    _, _, _, region, account, _ = topic_arn.split(":", 5)
    if (region, account) != (stack.region, stack.account):
        yield Problem(
            stack,
            sender,
            f"publishes to {topic_arn} in {account}/{region}: "
            f"{service} delivers only within {stack.account}/{stack.region}",
        )
        return
    topic = index.get(topic_arn)
    if topic is None:
        yield Problem(stack, sender, f"publishes to {topic_arn}, not a topic of this app")
        return
    statements = _resource_policy(topic, "AWS::SNS::TopicPolicy", "Topics")
    if statements is None or not allows(
        _service_statements(statements, service), Request("sns:Publish", topic_arn, context)
    ):
        yield Problem(
            stack, sender, f"topic policy of {topic_arn} does not allow {service} sns:Publish"
        )
    key = topic.stack.resolve(
        topic.stack.resources[topic.logical_id]["Properties"].get("KmsMasterKeyId")
    )
    for message in _key_problems(
        index,
        key,
        service,
        ("kms:GenerateDataKey", "kms:Decrypt"),
        key_context,
        f"topic {topic_arn}",
    ):
        yield Problem(stack, sender, message)


# --- EventBridge rule targets and dead-letter queues --------------------------------------


def _sqs_problems(
    stack: Stack,
    sender: str,
    index: Mapping[str, _Target],
    queue_arn: str,
    what: str,
    context: Mapping[str, Any],
) -> Iterator[Problem]:
    service = "events.amazonaws.com"
    _, _, _, region, account, _ = queue_arn.split(":", 5)
    if (region, account) != (stack.region, stack.account):
        yield Problem(stack, sender, f"{what} {queue_arn} is not in {stack.account}/{stack.region}")
        return
    queue = index.get(queue_arn)
    if queue is None:
        yield Problem(stack, sender, f"{what} {queue_arn} is not a queue of this app")
        return
    statements = _resource_policy(queue, "AWS::SQS::QueuePolicy", "Queues")
    if statements is None or not allows(
        _service_statements(statements, service), Request("sqs:SendMessage", queue_arn, context)
    ):
        yield Problem(
            stack,
            sender,
            f"queue policy of {queue_arn} does not allow {service} sqs:SendMessage ({what})",
        )
    key = queue.stack.resolve(
        queue.stack.resources[queue.logical_id]["Properties"].get("KmsMasterKeyId")
    )
    for message in _key_problems(
        index, key, service, ("kms:GenerateDataKey", "kms:Decrypt"), {}, f"{what} {queue_arn}"
    ):
        yield Problem(stack, sender, message)


def _lambda_permission_allows(
    index: Mapping[str, _Target], function: _Target, principal: str, source_arn: str, account: str
) -> bool:
    stack = function.stack
    names = {stack.arn_of(function.logical_id), stack.resource_name(function.logical_id)}
    for _, permission in stack.of_type("AWS::Lambda::Permission"):
        props = stack.resolve(permission["Properties"])
        if str(props.get("FunctionName")) not in names or props.get("Principal") != principal:
            continue
        statement = {
            "Effect": "Allow",
            "Action": props.get("Action"),
            "Resource": "*",
            "Condition": {
                **(
                    {"ArnLike": {"aws:SourceArn": props["SourceArn"]}}
                    if "SourceArn" in props
                    else {}
                ),
                **(
                    {"StringEquals": {"aws:SourceAccount": props["SourceAccount"]}}
                    if "SourceAccount" in props
                    else {}
                ),
            },
        }
        request = Request(
            "lambda:InvokeFunction",
            "*",
            {"aws:SourceArn": source_arn, "aws:SourceAccount": account},
        )
        if allows([statement], request):
            return True
    return False


# Target service -> the action EventBridge calls with the target's RoleArn.
_ROLE_TARGET_ACTIONS = {
    "sagemaker": "sagemaker:StartPipelineExecution",
    "events": "events:PutEvents",
    "states": "states:StartExecution",
}


def _role_target_problems(
    stack: Stack, rule_id: str, target_arn: str, role_arn: str, sender_service: str
) -> Iterator[Problem]:
    source = {"aws:SourceAccount": stack.account, "aws:SourceArn": stack.arn_of(rule_id)}
    role = role_logical_id(stack, role_arn)
    if role is None:
        yield Problem(stack, rule_id, f"target role {role_arn} is not a role of this stack")
        return
    trust = stack.resolve(stack.resources[role]["Properties"]["AssumeRolePolicyDocument"])
    if not allows(
        _service_statements(_listed(trust["Statement"]), sender_service),
        Request("sts:AssumeRole", stack.arn_of(role), source),
    ):
        yield Problem(
            stack, rule_id, f"{role} does not trust {sender_service} (target {target_arn})"
        )
    action = _ROLE_TARGET_ACTIONS.get(target_arn.split(":")[2])
    if action is None:
        yield Problem(stack, rule_id, f"target {target_arn} with a role: no action modelled for it")
    elif not allows(role_statements(stack, role), Request(action, target_arn)):
        yield Problem(stack, rule_id, f"{role} may not {action} on {target_arn}")


def _rule_problems(assembly: Assembly, index: Mapping[str, _Target]) -> Iterator[Problem]:
    service = "events.amazonaws.com"
    for stack in assembly.stacks:
        for rule_id, rule in stack.of_type("AWS::Events::Rule"):
            rule_arn = stack.arn_of(rule_id)
            context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": stack.account}
            for target in stack.resolve(rule["Properties"]).get("Targets", []):
                arn = str(target["Arn"])
                kind = arn.split(":")[2]
                if "RoleArn" in target:
                    yield from _role_target_problems(
                        stack, rule_id, arn, str(target["RoleArn"]), service
                    )
                elif kind == "lambda":
                    function = index.get(arn)
                    if function is None:
                        yield Problem(stack, rule_id, f"target {arn} is not a function of this app")
                    elif not _lambda_permission_allows(
                        index, function, service, rule_arn, stack.account
                    ):
                        yield Problem(
                            stack,
                            rule_id,
                            f"no lambda permission lets {service} invoke {arn} for {rule_arn}",
                        )
                elif kind == "sns":
                    # No source keys on EventBridge's KMS requests (SNS guide).
                    yield from _sns_problems(stack, rule_id, index, arn, service, context, {})
                elif kind == "sqs":
                    yield from _sqs_problems(stack, rule_id, index, arn, "target", context)
                else:
                    yield Problem(
                        stack, rule_id, f"target {arn}: delivery to {kind} is not modelled"
                    )
                dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
                if dead_letters:
                    yield from _sqs_problems(
                        stack, rule_id, index, str(dead_letters), "dead-letter queue", context
                    )


# --- encrypted log groups -------------------------------------------------------------------


def _log_group_problems(assembly: Assembly, index: Mapping[str, _Target]) -> Iterator[Problem]:
    for stack in assembly.stacks:
        service = f"logs.{stack.region}.amazonaws.com"
        for group_id, group in stack.of_type("AWS::Logs::LogGroup"):
            props = stack.resolve(group["Properties"])
            if "KmsKeyId" not in props:
                continue
            group_arn = stack.arn_of(group_id).removesuffix(":*")
            context = {"kms:EncryptionContext:aws:logs:arn": group_arn}
            for message in _key_problems(
                index,
                props["KmsKeyId"],
                service,
                ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
                context,
                f"log group {group_arn}",
            ):
                yield Problem(stack, group_id, message)


# --- Lambda asynchronous destinations (sent with the function's execution role) -------------


_DESTINATION_ACTIONS = {
    "sqs": "sqs:SendMessage",
    "sns": "sns:Publish",
    "lambda": "lambda:InvokeFunction",
}


def _destination_problems(assembly: Assembly, index: Mapping[str, _Target]) -> Iterator[Problem]:
    for stack in assembly.stacks:
        for config_id, config in stack.of_type("AWS::Lambda::EventInvokeConfig"):
            props = stack.resolve(config["Properties"])
            function = index.get(str(props["FunctionName"]))
            if function is None:
                yield Problem(
                    stack, config_id, f"function {props['FunctionName']} is not of this app"
                )
                continue
            role_arn = function.stack.resolve(
                function.stack.resources[function.logical_id]["Properties"]["Role"]
            )
            role = role_logical_id(function.stack, str(role_arn))
            statements = role_statements(function.stack, role) if role else []
            for outcome in ("OnFailure", "OnSuccess"):
                destination = props.get("DestinationConfig", {}).get(outcome, {}).get("Destination")
                if not destination:
                    continue
                kind = str(destination).split(":")[2]
                action = _DESTINATION_ACTIONS.get(kind)
                if action is None or not allows(statements, Request(action, str(destination))):
                    yield Problem(
                        stack,
                        config_id,
                        f"execution role {role} may not {action} on {destination} ({outcome})",
                    )
                target = index.get(str(destination))
                if target is None or kind not in ("sqs", "sns"):
                    continue
                key_prop = target.stack.resources[target.logical_id]["Properties"].get(
                    "KmsMasterKeyId"
                )
                key_arn = target.stack.resolve(key_prop)
                if key_arn is None:
                    continue
                via = {
                    "kms:ViaService": f"{kind}.{stack.region}.amazonaws.com",
                    "kms:CallerAccount": stack.account,
                }
                for kms_action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    if not allows(statements, Request(kms_action, str(key_arn), via)):
                        yield Problem(
                            stack,
                            config_id,
                            f"execution role {role} may not {kms_action} on {key_arn} ({outcome} to {destination})",
                        )


def delivery_problems(assembly: Assembly) -> list[Problem]:
    index = _index(assembly)
    return [
        *_alarm_problems(assembly, index),
        *_rule_problems(assembly, index),
        *_log_group_problems(assembly, index),
        *_destination_problems(assembly, index),
    ]
