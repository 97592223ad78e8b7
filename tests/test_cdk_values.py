"""The values built once per process are the values they name, and shared."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from mlops.constructs import cdk_values


def test_each_value_is_the_one_it_names() -> None:
    stack = cdk.Stack()
    assert cdk_values.seconds(90).to_seconds() == 90
    assert cdk_values.hours(2).to_seconds() == 7200
    assert cdk_values.days(3).to_seconds() == 3 * 86400
    assert cdk_values.x86_64().name == lambda_.Architecture.X86_64.name
    block = cdk_values.block_all()
    assert stack.resolve(
        [block.block_public_acls, block.block_public_policy, block.ignore_public_acls]
    ) == [True, True, True]
    assert block.restrict_public_buckets is True


def test_the_same_argument_gives_the_same_object_and_another_a_new_one() -> None:
    assert cdk_values.seconds(5) is cdk_values.seconds(5)
    assert cdk_values.seconds(6) is not cdk_values.seconds(5)
    assert cdk_values.days(7) is cdk_values.days(7)
    lambda_principal = cdk_values.service_principal("lambda.amazonaws.com")
    assert lambda_principal is cdk_values.service_principal("lambda.amazonaws.com")
    assert lambda_principal.service == "lambda.amazonaws.com"
    assert cdk_values.service_principal("events.amazonaws.com").service == "events.amazonaws.com"
