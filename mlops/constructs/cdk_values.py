"""Immutable CDK values built once per process: every cdk.Duration.x(...) and every read of a
static property (Architecture.X86_64, BlockPublicAccess.BLOCK_ALL) is a jsii request, and the
same values recur in every stage. Sharing one value object between constructs renders the
same template: these objects hold nothing but their value."""

from __future__ import annotations

import functools

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3


@functools.cache
def seconds(amount: int) -> cdk.Duration:
    return cdk.Duration.seconds(amount)


@functools.cache
def hours(amount: int) -> cdk.Duration:
    return cdk.Duration.hours(amount)


@functools.cache
def days(amount: int) -> cdk.Duration:
    return cdk.Duration.days(amount)


@functools.cache
def service_principal(service: str) -> iam.ServicePrincipal:
    """e.g. "lambda.amazonaws.com": the principal holds nothing but the service name."""
    return iam.ServicePrincipal(service)


@functools.cache
def x86_64() -> lambda_.Architecture:
    return lambda_.Architecture.X86_64


@functools.cache
def block_all() -> s3.BlockPublicAccess:
    return s3.BlockPublicAccess.BLOCK_ALL
