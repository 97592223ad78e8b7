"""service-deliveries-allowed: every alarm action, EventBridge target and dead-letter queue,
encrypted log group and Lambda failure destination of the real app passes, and each fixture
(the real template with one grant taken out or moved just out of reach) fails, naming the
sender and the policy that refuses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import edited_assembly

from mlops.rehearsal.assembly import Assembly, load_assembly
from mlops.rehearsal.deliveries import delivery_problems
from mlops.rehearsal.rules import RULES, service_deliveries_allowed

DATA = "prod-us-east-1-Data"
SERVING = "prod-us-east-1-Serving"
MONITORING = "prod-us-east-1-Monitoring"
TRAINING = "dev-us-east-1-Training"
KEY = "DataKey2A0DE9E6"
TOPIC = "arn:aws:sns:us-east-1:444444444444:prod-us-east-1-Serving-AlarmsNotificationsF5CC238C"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def rehearsal(assembly_dir: Path) -> Assembly:
    return load_assembly(assembly_dir)


def _messages(assembly: Assembly) -> list[tuple[str, str, str]]:
    return [(p.stack.name, p.resource, p.message) for p in delivery_problems(assembly)]


def _of_type(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(k, r) for k, r in template["Resources"].items() if r["Type"] == kind]


def _key_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = template["Resources"][KEY]["Properties"]["KeyPolicy"][
        "Statement"
    ]
    return statements


def _drop_key_statements(keep: Callable[[dict[str, Any]], bool]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        statements = _key_statements(template)
        kept = [s for s in statements if keep(s)]
        assert len(kept) < len(statements)
        statements[:] = kept

    return edit


def _service(statement: dict[str, Any]) -> Any:
    principal = statement.get("Principal")
    return principal.get("Service") if isinstance(principal, dict) else None


# --- the real app ----------------------------------------------------------------------------


def test_the_rule_is_registered_and_passes_on_every_stack(rehearsal: Assembly) -> None:
    assert "service-deliveries-allowed" in {rule.name for rule in RULES}
    assert service_deliveries_allowed(rehearsal) == []


def test_every_kind_of_delivery_is_followed(rehearsal: Assembly) -> None:
    """Not vacuous: the app has senders of every kind the rule follows, in every stage."""
    kinds = {
        "AWS::CloudWatch::Alarm": 0,
        "AWS::Events::Rule": 0,
        "AWS::Logs::LogGroup": 0,
        "AWS::Lambda::EventInvokeConfig": 0,
    }
    for stack in rehearsal.stacks:
        for resource in stack.resources.values():
            if resource["Type"] in kinds:
                kinds[resource["Type"]] += 1
    assert all(count > 0 for count in kinds.values()), kinds


# --- CloudWatch alarms -> encrypted SNS topics ---------------------------------------------------


def test_alarms_need_the_cloudwatch_grant_on_the_topic_key(rehearsal: Assembly) -> None:
    no_grant = edited_assembly(
        rehearsal,
        DATA,
        _drop_key_statements(lambda s: s.get("Sid") != "AllowCloudWatchAlarmsToEncryptedTopics"),
    )
    found = _messages(no_grant)
    assert found
    assert {stack for stack, _, _ in found} == {DATA, SERVING, MONITORING}
    assert all("cloudwatch.amazonaws.com kms:" in message for _, _, message in found)
    # Every other stage keeps its own key: nothing there.
    assert not [f for f in found if not f[0].startswith("prod-us-east-1-")]


def test_the_cloudwatch_key_grant_must_match_the_alarm_account(rehearsal: Assembly) -> None:
    def other_account(template: dict[str, Any]) -> None:
        for statement in _key_statements(template):
            if statement.get("Sid") == "AllowCloudWatchAlarmsToEncryptedTopics":
                statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "999999999999"}}

    found = _messages(edited_assembly(rehearsal, DATA, other_account))
    assert found and all("cloudwatch.amazonaws.com" in m for _, _, m in found)


def test_alarms_need_the_topic_policy_to_allow_cloudwatch(rehearsal: Assembly) -> None:
    def drop(template: dict[str, Any]) -> None:
        for _, policy in _of_type(template, "AWS::SNS::TopicPolicy"):
            document = policy["Properties"]["PolicyDocument"]
            document["Statement"] = [
                s for s in document["Statement"] if s.get("Sid") != "CloudWatchAlarmsOfThisAccount"
            ]

    found = _messages(edited_assembly(rehearsal, SERVING, drop))
    assert found
    # Serving's endpoint alarms and Monitoring's drift alarms both notify Serving's topic.
    refused = f"topic policy of {TOPIC} does not allow cloudwatch.amazonaws.com sns:Publish"
    assert {(stack, message) for stack, _, message in found} == {
        (SERVING, refused),
        (MONITORING, refused),
    }


def test_a_topic_without_any_topic_policy_refuses_services(rehearsal: Assembly) -> None:
    def drop(template: dict[str, Any]) -> None:
        for logical_id, _ in _of_type(template, "AWS::SNS::TopicPolicy"):
            del template["Resources"][logical_id]

    found = _messages(edited_assembly(rehearsal, SERVING, drop))
    # The alarms of Serving and the Monitoring rule that forwards failed jobs to that topic.
    assert {stack for stack, _, _ in found} == {SERVING, MONITORING}
    assert any("events.amazonaws.com sns:Publish" in m for _, _, m in found)


def _point_alarms_at(arn: str) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        for _, alarm in _of_type(template, "AWS::CloudWatch::Alarm"):
            if "AlarmActions" in alarm["Properties"]:
                alarm["Properties"]["AlarmActions"] = [arn]
                alarm["Properties"].pop("OKActions", None)

    return edit


def test_alarm_actions_stay_in_the_alarm_region(rehearsal: Assembly) -> None:
    elsewhere = TOPIC.replace("us-east-1", "eu-west-1")
    found = _messages(edited_assembly(rehearsal, SERVING, _point_alarms_at(elsewhere)))
    assert found
    assert all(f"publishes to {elsewhere} in 444444444444/eu-west-1" in m for _, _, m in found)


def test_a_topic_under_the_aws_managed_key_refuses_services(rehearsal: Assembly) -> None:
    def managed_key(template: dict[str, Any]) -> None:
        for _, topic in _of_type(template, "AWS::SNS::Topic"):
            topic["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"

    found = _messages(edited_assembly(rehearsal, SERVING, managed_key))
    assert found
    assert all("AWS managed alias/aws/sns" in m for _, _, m in found)


# --- EventBridge rules: Lambda targets, role targets, dead-letter queues ---------------------


def test_a_lambda_target_needs_a_permission_for_its_rule(rehearsal: Assembly) -> None:
    def drop(template: dict[str, Any]) -> None:
        for logical_id, permission in _of_type(template, "AWS::Lambda::Permission"):
            if permission["Properties"]["Principal"] == "events.amazonaws.com":
                del template["Resources"][logical_id]

    ((stack, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, drop))
    assert (stack, rule) == (SERVING, "RollbackOnAlarmD0726C26")
    assert "no lambda permission lets events.amazonaws.com invoke" in message


def test_a_lambda_permission_for_another_rule_does_not_count(rehearsal: Assembly) -> None:
    other = "arn:aws:events:us-east-1:444444444444:rule/some-other-rule"

    def retarget(template: dict[str, Any]) -> None:
        for _, permission in _of_type(template, "AWS::Lambda::Permission"):
            if permission["Properties"]["Principal"] == "events.amazonaws.com":
                permission["Properties"]["SourceArn"] = other

    ((_, rule, _),) = _messages(edited_assembly(rehearsal, SERVING, retarget))
    assert rule == "RollbackOnAlarmD0726C26"


def test_a_dead_letter_queue_needs_a_queue_policy_for_its_rule(rehearsal: Assembly) -> None:
    def other_rule(template: dict[str, Any]) -> None:
        for _, policy in _of_type(template, "AWS::SQS::QueuePolicy"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    statement["Condition"] = {
                        "ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/other"}
                    }

    ((stack, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, other_rule))
    assert (stack, rule) == (SERVING, "RollbackOnAlarmD0726C26")
    assert "does not allow events.amazonaws.com sqs:SendMessage (dead-letter queue)" in message


def _is_cdk_events_grant(statement: dict[str, Any]) -> bool:
    """The grant CDK's SnsTopic target adds to the key (no Sid), where a stage has one."""
    return _service(statement) == "events.amazonaws.com" and "Sid" not in statement


def test_the_keys_own_eventbridge_grant_suffices(rehearsal: Assembly) -> None:
    """A stage without an SNS rule target gets no grant from CDK: the key's own statement
    must carry EventBridge's deliveries to its encrypted topics and dead-letter queues."""
    without_cdk_grant = edited_assembly(
        rehearsal, DATA, _drop_key_statements(lambda s: not _is_cdk_events_grant(s))
    )
    assert _messages(without_cdk_grant) == []


def test_eventbridge_grants_with_source_conditions_do_not_count(rehearsal: Assembly) -> None:
    """The SNS guide: aws:SourceAccount and aws:SourceArn are not supported in a key policy
    for EventBridge-to-encrypted-topic delivery. The key's statement as it was before this
    rule (conditioned on the account), without CDK's grant, leaves every EventBridge delivery
    to an encrypted topic or queue of the stage refused."""

    def as_before(template: dict[str, Any]) -> None:
        _drop_key_statements(lambda s: not _is_cdk_events_grant(s))(template)
        for statement in _key_statements(template):
            if statement.get("Sid") == "AllowEventBridgeToEncryptedTopicsAndQueues":
                statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "444444444444"}}

    found = _messages(edited_assembly(rehearsal, DATA, as_before))
    assert found
    assert {stack for stack, _, _ in found} == {DATA, SERVING, MONITORING}
    assert all("events.amazonaws.com kms:" in m for _, _, m in found)
    # The encrypted topic itself, not only the dead-letter queues: the failed-job rule's
    # SNS target is refused for both KMS actions.
    assert sorted(
        (rule, m.split(" for ")[0].rsplit(" ", 1)[-1])
        for stack, rule, m in found
        if m.endswith(f"for topic {TOPIC}")
    ) == [
        ("FailureAlertsProcessingJobFailed27FB7412", "kms:Decrypt"),
        ("FailureAlertsProcessingJobFailed27FB7412", "kms:GenerateDataKey"),
    ]


def test_a_role_target_needs_trust_and_the_start_action(rehearsal: Assembly) -> None:
    def untrusted(template: dict[str, Any]) -> None:
        trust = template["Resources"]["TriggersStartRoleDF6C4C0A"]["Properties"]
        trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] = {
            "Service": "scheduler.amazonaws.com"
        }

    def no_start(template: dict[str, Any]) -> None:
        policy = template["Resources"]["TriggersStartRoleDefaultPolicy821B28CA"]["Properties"]
        policy["PolicyDocument"]["Statement"] = [
            s
            for s in policy["PolicyDocument"]["Statement"]
            if s["Action"] != "sagemaker:StartPipelineExecution"
        ]

    trust_found = _messages(edited_assembly(rehearsal, TRAINING, untrusted))
    assert len(trust_found) == 2  # the schedule rule and the new-data rule
    assert all("does not trust events.amazonaws.com" in m for _, _, m in trust_found)
    start_found = _messages(edited_assembly(rehearsal, TRAINING, no_start))
    assert len(start_found) == 2
    assert all("may not sagemaker:StartPipelineExecution" in m for _, _, m in start_found)


# --- encrypted log groups ---------------------------------------------------------------------


def test_encrypted_log_groups_need_the_logs_grant(rehearsal: Assembly) -> None:
    found = _messages(
        edited_assembly(
            rehearsal,
            DATA,
            _drop_key_statements(lambda s: s.get("Sid") != "AllowCloudWatchLogsOfThisAccount"),
        )
    )
    assert found
    assert {resource for _, resource, _ in found} >= {"RetrainGateLogs5197BB28"}
    assert all("logs.us-east-1.amazonaws.com kms:" in m for _, _, m in found)


def test_the_logs_grant_must_cover_the_log_group_arn(rehearsal: Assembly) -> None:
    """Edge: the grant's encryption-context pattern for another region covers none of ours."""

    def other_region(template: dict[str, Any]) -> None:
        for statement in _key_statements(template):
            if statement.get("Sid") == "AllowCloudWatchLogsOfThisAccount":
                statement["Condition"] = {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:444444444444:*"
                    }
                }

    found = _messages(edited_assembly(rehearsal, DATA, other_region))
    assert found and all("logs.us-east-1.amazonaws.com" in m for _, _, m in found)


# --- Lambda failure destinations -------------------------------------------------------------


def test_a_failure_destination_needs_the_execution_role_to_send(rehearsal: Assembly) -> None:
    def drop(template: dict[str, Any]) -> None:
        policy = template["Resources"]["RetrainGateRoleDefaultPolicy47E5F4E0"]["Properties"]
        policy["PolicyDocument"]["Statement"] = [
            s for s in policy["PolicyDocument"]["Statement"] if "sqs:SendMessage" not in s["Action"]
        ]

    ((stack, config, message),) = _messages(edited_assembly(rehearsal, MONITORING, drop))
    assert (stack, config) == (MONITORING, "RetrainGateFunctionEventInvokeConfig8215469B")
    assert "may not sqs:SendMessage" in message and "(OnFailure)" in message


def _events_permission(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        chosen = [
            p["Properties"]
            for _, p in _of_type(template, "AWS::Lambda::Permission")
            if p["Properties"]["Principal"] == "events.amazonaws.com"
        ]
        assert chosen
        for props in chosen:
            change(props)

    return edit


def test_a_lambda_permission_for_another_principal_does_not_count(rehearsal: Assembly) -> None:
    def other_service(props: dict[str, Any]) -> None:
        props["Principal"] = "s3.amazonaws.com"  # same SourceArn, another service

    ((_, rule, message),) = _messages(
        edited_assembly(rehearsal, SERVING, _events_permission(other_service))
    )
    assert rule == "RollbackOnAlarmD0726C26" and "no lambda permission lets" in message


def test_a_lambda_permissions_source_account_must_be_the_rules(rehearsal: Assembly) -> None:
    def account(value: str) -> Callable[[dict[str, Any]], None]:
        def change(props: dict[str, Any]) -> None:
            props["SourceAccount"] = value

        return change

    assert (
        _messages(edited_assembly(rehearsal, SERVING, _events_permission(account("444444444444"))))
        == []
    )
    ((_, rule, _),) = _messages(
        edited_assembly(rehearsal, SERVING, _events_permission(account("1")))
    )
    assert rule == "RollbackOnAlarmD0726C26"


def test_a_dead_letter_queue_stays_in_the_rule_region(rehearsal: Assembly) -> None:
    def elsewhere(template: dict[str, Any]) -> None:
        rule = template["Resources"]["RollbackOnAlarmD0726C26"]["Properties"]
        rule["Targets"][0]["DeadLetterConfig"]["Arn"] = (
            "arn:aws:sqs:eu-west-1:444444444444:prod-us-east-1-Serving-FailureAlertsDeadLettersFA4F87A5"
        )

    ((_, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, elsewhere))
    assert rule == "RollbackOnAlarmD0726C26"
    assert "dead-letter queue arn:aws:sqs:eu-west-1:" in message
    assert "is not in 444444444444/us-east-1" in message


def test_a_queue_statement_for_the_account_does_not_let_eventbridge_send(
    rehearsal: Assembly,
) -> None:
    """Only statements naming the service principal (or everyone) apply to its request."""

    def account_principal(template: dict[str, Any]) -> None:
        for _, policy in _of_type(template, "AWS::SQS::QueuePolicy"):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    statement["Principal"] = {"AWS": "arn:aws:iam::444444444444:root"}

    ((_, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, account_principal))
    assert rule == "RollbackOnAlarmD0726C26"
    assert "does not allow events.amazonaws.com sqs:SendMessage (dead-letter queue)" in message


def _logs_statement(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        for statement in _key_statements(template):
            if statement.get("Sid") == "AllowCloudWatchLogsOfThisAccount":
                change(statement)

    return edit


def test_logs_ask_the_key_with_the_log_group_arn_itself(rehearsal: Assembly) -> None:
    """The encryption context names the log group's ARN without the ":*" of its GetAtt Arn:
    a grant for exactly that ARN covers that group and no other."""
    exact = "arn:aws:logs:us-east-1:444444444444:log-group:/aws/sagemaker/ProcessingJobs"

    def only_processing_jobs(statement: dict[str, Any]) -> None:
        statement["Condition"] = {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": exact}}

    found = _messages(edited_assembly(rehearsal, DATA, _logs_statement(only_processing_jobs)))
    refused = {resource for _, resource, _ in found}
    assert "RetrainGateLogs5197BB28" in refused
    assert "ProcessingJobsLogsLogGroup19B59722" not in refused


def test_logs_need_to_encrypt_with_the_key(rehearsal: Assembly) -> None:
    def no_encrypt(statement: dict[str, Any]) -> None:
        statement["Action"] = [a for a in statement["Action"] if a != "kms:Encrypt*"]

    found = _messages(edited_assembly(rehearsal, DATA, _logs_statement(no_encrypt)))
    assert found and all("logs.us-east-1.amazonaws.com kms:Encrypt for" in m for _, _, m in found)


def test_a_failure_destination_needs_the_execution_role_to_use_the_queue_key(
    rehearsal: Assembly,
) -> None:
    def drop(template: dict[str, Any]) -> None:
        policy = template["Resources"]["RetrainGateRoleDefaultPolicy47E5F4E0"]["Properties"]
        policy["PolicyDocument"]["Statement"] = [
            s for s in policy["PolicyDocument"]["Statement"] if "kms:Decrypt" not in s["Action"]
        ]

    found = _messages(edited_assembly(rehearsal, MONITORING, drop))
    assert sorted(m.split(" on ")[0].rsplit(" ", 1)[-1] for _, _, m in found) == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    assert all("(OnFailure to " in m for _, _, m in found)


def test_a_success_destination_is_checked_too(rehearsal: Assembly) -> None:
    def on_success(template: dict[str, Any]) -> None:
        config = template["Resources"]["RetrainGateFunctionEventInvokeConfig8215469B"]
        config["Properties"]["DestinationConfig"]["OnSuccess"] = {"Destination": TOPIC}

    ((_, config, message),) = _messages(edited_assembly(rehearsal, MONITORING, on_success))
    assert config == "RetrainGateFunctionEventInvokeConfig8215469B"
    assert f"may not sns:Publish on {TOPIC} (OnSuccess)" in message


def test_a_queue_target_needs_the_queue_policy(rehearsal: Assembly) -> None:
    queue = (
        "arn:aws:sqs:us-east-1:444444444444:prod-us-east-1-Serving-FailureAlertsDeadLettersFA4F87A5"
    )

    def to_queue_without_policy(template: dict[str, Any]) -> None:
        rule = template["Resources"]["RollbackOnAlarmD0726C26"]["Properties"]
        rule["Targets"][0]["Arn"] = queue
        del rule["Targets"][0]["DeadLetterConfig"]
        for logical_id, _ in _of_type(template, "AWS::SQS::QueuePolicy"):
            del template["Resources"][logical_id]

    ((_, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, to_queue_without_policy))
    assert rule == "RollbackOnAlarmD0726C26"
    assert (
        f"queue policy of {queue} does not allow events.amazonaws.com sqs:SendMessage (target)"
        in (message)
    )


def test_unmodelled_alarm_actions_and_targets_are_reported_not_passed(
    rehearsal: Assembly,
) -> None:
    """A delivery the rule cannot follow stays red rather than passing unchecked."""
    function = "arn:aws:lambda:us-east-1:444444444444:function:somewhere"
    found = _messages(edited_assembly(rehearsal, SERVING, _point_alarms_at(function)))
    assert found
    assert all(m == f"alarm action {function}: only SNS actions are modelled" for _, _, m in found)

    log_group = "arn:aws:logs:us-east-1:444444444444:log-group:/aws/events/rollback"

    def to_logs(template: dict[str, Any]) -> None:
        rule = template["Resources"]["RollbackOnAlarmD0726C26"]["Properties"]
        rule["Targets"][0]["Arn"] = log_group

    ((_, rule, message),) = _messages(edited_assembly(rehearsal, SERVING, to_logs))
    assert rule == "RollbackOnAlarmD0726C26"
    assert message == f"target {log_group}: delivery to logs is not modelled"
