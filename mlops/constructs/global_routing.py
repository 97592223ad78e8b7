"""One region's part of the global front door: `<record>.<zone>` answers with the nearest
healthy region (Route 53 latency records, one per region, each tied to a health check).

Per region: an ACM certificate for the global name (DNS-validated in the zone), a regional
API Gateway custom domain with that name mapped to the inference API's stage, the latency
alias record (set identifier = region), and an HTTPS health check. The check calls the
regional API's own host name at GET /<stage>/health, which runs the real path (online store
lookup + InvokeEndpoint with a fixed request) and answers 503 when either fails: when a
region's endpoint or store is down, Route 53 stops answering with that region and the
next-nearest healthy one takes its callers (failover).

Why an unauthenticated health resource: Route 53 health checkers cannot sign requests
(SigV4), and a CloudWatch-alarm health check would only follow real traffic, so an idle
region would look healthy whatever its state. The resource takes no input and is throttled
(InferenceApi).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from mlops.config import RoutingConfig
from mlops.constructs import cdk_values
from mlops.constructs.inference_api import InferenceApi

# Route 53 checks every 30 s from each checker region; 3 failures in a row mark it unhealthy.
HEALTH_CHECK_INTERVAL_S = 30
HEALTH_CHECK_FAILURE_THRESHOLD = 3


class GlobalRouting(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, routing: RoutingConfig, api: InferenceApi
    ) -> None:
        super().__init__(scope, construct_id)
        region = cdk.Stack.of(self).region
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "Zone",
            hosted_zone_id=routing.hosted_zone_id,
            zone_name=routing.hosted_zone_name,
        )
        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=routing.domain_name,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        self.domain = apigw.DomainName(
            self,
            "DomainName",
            domain_name=routing.domain_name,
            certificate=self.certificate,
            endpoint_type=apigw.EndpointType.REGIONAL,
            security_policy=apigw.SecurityPolicy.TLS_1_2,
        )
        self.domain.add_base_path_mapping(api.api, stage=api.stage)
        self.health_check = route53.HealthCheck(
            self,
            "HealthCheck",
            type=route53.HealthCheckType.HTTPS,
            fqdn=api.hostname,
            port=443,
            resource_path=api.health_path,
            enable_sni=True,
            request_interval=cdk_values.seconds(HEALTH_CHECK_INTERVAL_S),
            failure_threshold=HEALTH_CHECK_FAILURE_THRESHOLD,
        )
        cdk.Tags.of(self.health_check).add("Name", f"{routing.domain_name} {region}")
        self.record = route53.ARecord(
            self,
            "LatencyRecord",
            zone=zone,
            record_name=routing.domain_name + ".",
            target=route53.RecordTarget.from_alias(route53_targets.ApiGatewayDomain(self.domain)),
            region=region,
            set_identifier=region,
            health_check=self.health_check,
            comment=f"Latency-routed inference API, {region}; unhealthy -> next-nearest region.",
        )
