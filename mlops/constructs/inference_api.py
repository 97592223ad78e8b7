"""The regional inference API: API Gateway (REST, IAM auth) -> a Lambda that looks up the
weather and plane features in the online Feature Store and invokes this region's endpoint.

    POST /predict   IAM (SigV4) auth; the small booking-time request (docs/CONTRACTS.md)
    GET  /health    no auth, throttled to a few requests per second: Route 53 health
                    checkers cannot sign requests, so the check gets its own resource that
                    runs the real path (store + endpoint) with a fixed request and no input.

The Lambda's role reads only the two groups' online records, invokes only this endpoint and
decrypts with the stage key (Feature Store's data-plane calls need kms:Decrypt). The answer's
model version is the model's own (each model container names its release), so the function
knows no release and is not changed by deploying one.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops.constructs.python_function import PythonFunction
from mlops.nag import NIST, acknowledge, acknowledge_each

STAGE_NAME = "v1"
PREDICT_PATH = "predict"
HEALTH_PATH = "health"


@dataclass(frozen=True)
class ApiThrottling:
    """Requests per second and burst, for the stage and for the unauthenticated health path.
    Route 53 checks from about 16 places every 30 s: about 0.5 requests per second."""

    rate: int = 200
    burst: int = 400
    health_rate: int = 2
    health_burst: int = 5


class InferenceApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api_name: str,
        endpoint_name: str,
        weather_feature_group: str,
        plane_feature_group: str,
        encryption_key: kms.IKey,
        throttling: ApiThrottling | None = None,
        manage_logging_role: bool = False,
    ) -> None:
        """manage_logging_role: create API Gateway's account-wide CloudWatch role and set it
        (AWS::ApiGateway::Account: one per account and region, replacing the account's current
        setting); False expects the account to have one already."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        limits = throttling or ApiThrottling()
        self.handler = PythonFunction(
            self,
            "Handler",
            source="inference_api",
            description=f"Inference API: online features + endpoint {endpoint_name}.",
            encryption_key=encryption_key,
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "WEATHER_FEATURE_GROUP": weather_feature_group,
                "PLANE_FEATURE_GROUP": plane_feature_group,
            },
            # Inside API Gateway's 29 s, above the handler's worst case of 18 s (handler.py).
            timeout_seconds=25,
            memory_mb=512,
            step_modules=("feature_schema", "feature_records"),
        )
        role = self.handler.role
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower()
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[self.endpoint_arn],
            )
        )
        self.feature_group_arns = [
            stack.format_arn(service="sagemaker", resource="feature-group", resource_name=name)
            for name in (weather_feature_group, plane_feature_group)
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                # The handler calls BatchGetRecord; GetRecord too, as which action AWS checks
                # for batch reads is not clearly documented: both only read these two groups.
                actions=["sagemaker:GetRecord", "sagemaker:BatchGetRecord"],
                resources=self.feature_group_arns,
            )
        )
        encryption_key.grant_decrypt(role)

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            encryption_key=encryption_key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description=f"Flight-delay predictions from endpoint {endpoint_name}.",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logging need the account's API Gateway CloudWatch role:
            # set here only when asked to (config serving.api_gateway_logging_role).
            cloud_watch_role=manage_logging_role,
            # Retained: deleting the stack leaves the account setting naming this role, and
            # every API in the account and region would lose its logs with it.
            cloud_watch_role_removal_policy=(
                cdk.RemovalPolicy.RETAIN if manage_logging_role else None
            ),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies stay out of the logs
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=limits.rate,
                throttling_burst_limit=limits.burst,
                method_options={
                    f"/{HEALTH_PATH}/GET": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=limits.health_rate,
                        throttling_burst_limit=limits.health_burst,
                    )
                },
            ),
            disable_execute_api_endpoint=False,
        )
        integration = apigw.LambdaIntegration(self.handler.function, proxy=True)
        self.predict_method = self.api.root.add_resource(PREDICT_PATH).add_method(
            "POST", integration, authorization_type=apigw.AuthorizationType.IAM
        )
        self.health_method = self.api.root.add_resource(HEALTH_PATH).add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.NONE
        )
        self.stage = self.api.deployment_stage
        self._acknowledge()

    @property
    def hostname(self) -> str:
        """The regional execute-api host name (what health checks and custom domains target)."""
        stack = cdk.Stack.of(self)
        return f"{self.api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"

    @property
    def health_path(self) -> str:
        return f"/{STAGE_NAME}/{HEALTH_PATH}"

    def _acknowledge(self) -> None:
        for method in (self.predict_method, self.health_method):
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Callers are AWS principals authorized by IAM (SigV4), not Cognito users; the health method runs a fixed request.",
            )
        acknowledge(
            self.health_method,
            "AwsSolutions-APIG4",
            "Route 53 health checkers cannot sign requests; the method takes no input, runs a fixed request and is throttled to a few per second.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "The Lambda validates the body and answers 400 naming the field; a gateway model would answer a generic message.",
        )
        stage = self.stage
        acknowledge(
            stage,
            "AwsSolutions-APIG3",
            "IAM auth on /predict and method throttling on the unauthenticated /health; no WAF until a public, unauthenticated route exists.",
        )
        reasons = {
            "APIGWAssociatedWithWAF": "IAM auth and stage/method throttling; see AwsSolutions-APIG3.",
            "APIGWCacheEnabledAndEncrypted": "Predictions depend on fresh online features; responses are not cached.",
            "APIGWSSLEnabled": "The backend is a Lambda proxy integration, not an HTTP backend that a client certificate would authenticate.",
        }
        acknowledge_each(stage, {f"{NIST}-{rule}": reason for rule, reason in reasons.items()})
        cloud_watch_role = self.api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            acknowledge(
                cloud_watch_role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role; AWS maintains the policy for exactly this use.",
            )
