"""Global routing: latency records with health checks in front of the prod regional APIs,
off where no hosted zone is configured; the health check calls the API's real path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops.config import ConfigError, parse_config
from tests.conftest import DEFAULT_CONFIG, of_type

PROD = ["prod-us-east-1", "prod-eu-west-1", "prod-ap-southeast-1"]
WITHOUT_ROUTING = ["dev-us-east-1", "staging-us-east-1", "staging-eu-west-1"]


def _serving(templates: dict[str, Any], stage: str) -> dict[str, Any]:
    return templates[f"{stage}/Serving"]["Resources"]  # type: ignore[no-any-return]


def latency_record_problems(stages: dict[str, dict[str, Any]]) -> list[str]:
    """Route 53 refuses two records with one name and set identifier, and a latency record
    whose Region is not where its target runs sends callers to the wrong place."""
    problems, seen = [], set()
    for region, resources in stages.items():
        for record in of_type(resources, "AWS::Route53::RecordSet"):
            props = record["Properties"]
            if "Region" not in props:
                continue
            key = (props["Name"], props["SetIdentifier"])
            if key in seen:
                problems.append(f"{region}: duplicate set identifier {props['SetIdentifier']}")
            seen.add(key)
            if props["Region"] != region:
                problems.append(f"{region}: latency record says {props['Region']}")
            if "HealthCheckId" not in props:
                problems.append(f"{region}: latency record without a health check")
    return problems


def health_check_problems(resources: dict[str, Any]) -> list[str]:
    """A health check must call an unauthenticated GET method of this stack's API stage."""
    (stage,) = of_type(resources, "AWS::ApiGateway::Stage")
    paths = {}
    for logical_id, r in resources.items():
        if r["Type"] == "AWS::ApiGateway::Resource":
            paths[logical_id] = r["Properties"]["PathPart"]
    open_gets = {
        f"/{stage['Properties']['StageName']}/{paths[m['Properties']['ResourceId']['Ref']]}"
        for m in of_type(resources, "AWS::ApiGateway::Method")
        if m["Properties"]["HttpMethod"] == "GET" and m["Properties"]["AuthorizationType"] == "NONE"
    }
    problems = []
    for check in of_type(resources, "AWS::Route53::HealthCheck"):
        config = check["Properties"]["HealthCheckConfig"]
        if config["ResourcePath"] not in open_gets:
            problems.append(f"{config['ResourcePath']} is not an unauthenticated GET of the API")
        if config["Type"] != "HTTPS" or not config.get("EnableSNI"):
            problems.append("the check must use HTTPS with SNI (API Gateway needs the host name)")
    return problems


@pytest.mark.parametrize("stage", PROD)
def test_each_prod_region_has_a_latency_record_a_health_check_and_a_domain(
    templates: dict[str, Any], stage: str
) -> None:
    resources = _serving(templates, stage)
    region = stage.split("-", 1)[1]
    (record,) = of_type(resources, "AWS::Route53::RecordSet")
    props = record["Properties"]
    assert props["Name"] == "api.flightdelay.example.com."
    assert props["HostedZoneId"] == "Z00000000000000000000"
    assert (props["Region"], props["SetIdentifier"], props["Type"]) == (region, region, "A")
    assert "AliasTarget" in props
    (check,) = of_type(resources, "AWS::Route53::HealthCheck")
    config = check["Properties"]["HealthCheckConfig"]
    assert config["ResourcePath"] == "/v1/health"
    assert config["RequestInterval"] == 30 and config["FailureThreshold"] == 3
    (domain,) = of_type(resources, "AWS::ApiGateway::DomainName")
    assert domain["Properties"]["DomainName"] == "api.flightdelay.example.com"
    assert domain["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    assert len(of_type(resources, "AWS::ApiGateway::BasePathMapping")) == 1
    (certificate,) = of_type(resources, "AWS::CertificateManager::Certificate")
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert health_check_problems(resources) == []


@pytest.mark.parametrize("stage", WITHOUT_ROUTING)
def test_no_zone_configured_means_no_routing_resources(
    templates: dict[str, Any], stage: str
) -> None:
    resources = _serving(templates, stage)
    for kind in (
        "AWS::Route53::RecordSet",
        "AWS::Route53::HealthCheck",
        "AWS::ApiGateway::DomainName",
        "AWS::CertificateManager::Certificate",
    ):
        assert of_type(resources, kind) == [], kind
    assert len(of_type(resources, "AWS::ApiGateway::RestApi")) == 1  # the regional API stays


def test_latency_records_are_unique_and_point_at_their_own_region(
    templates: dict[str, Any],
) -> None:
    stages = {s.split("-", 1)[1]: _serving(templates, s) for s in PROD}
    assert latency_record_problems(stages) == []


def test_the_latency_record_check_can_fail(templates: dict[str, Any]) -> None:
    stages = {s.split("-", 1)[1]: copy.deepcopy(_serving(templates, s)) for s in PROD}
    (record,) = of_type(stages["eu-west-1"], "AWS::Route53::RecordSet")
    record["Properties"]["SetIdentifier"] = "us-east-1"
    record["Properties"]["Region"] = "us-east-1"
    del record["Properties"]["HealthCheckId"]
    assert latency_record_problems(stages) == [
        "eu-west-1: duplicate set identifier us-east-1",
        "eu-west-1: latency record says us-east-1",
        "eu-west-1: latency record without a health check",
    ]


def test_the_health_check_check_can_fail(templates: dict[str, Any]) -> None:
    resources = copy.deepcopy(_serving(templates, "prod-us-east-1"))
    (check,) = of_type(resources, "AWS::Route53::HealthCheck")
    check["Properties"]["HealthCheckConfig"]["ResourcePath"] = "/v1/predict"  # IAM-authenticated
    assert health_check_problems(resources) == [
        "/v1/predict is not an unauthenticated GET of the API"
    ]


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        (
            "{hosted_zone_id: zone1, hosted_zone_name: example.com, record_name: api}",
            "environments.prod.routing.hosted_zone_id: must be a Route 53 hosted zone id",
        ),
        (
            "{hosted_zone_id: Z123, hosted_zone_name: Example.COM, record_name: api}",
            "environments.prod.routing.hosted_zone_name: must be the zone's domain name in lowercase",
        ),
        (
            "{hosted_zone_id: Z123, hosted_zone_name: example.com, record_name: api.v1}",
            "environments.prod.routing.record_name: must be one lowercase DNS label",
        ),
        (
            "{hosted_zone_id: Z123, hosted_zone_name: example.com}",
            "environments.prod.routing.record_name: missing required field",
        ),
    ],
)
def test_bad_routing_config_is_one_line_naming_the_field(routing: str, message: str) -> None:
    text = DEFAULT_CONFIG.read_text()
    start = text.index("    routing:\n")
    end = text.index("\n", text.index("record_name:", start))
    bad = text[:start] + f"    routing: {routing}" + text[end:]
    with pytest.raises(ConfigError, match=message):
        parse_config(bad, "environments.yaml")


def test_routing_is_optional_and_read() -> None:
    platform = parse_config(DEFAULT_CONFIG.read_text(), "environments.yaml")
    assert platform.environment("staging").routing is None
    routing = platform.environment("prod").routing
    assert routing is not None and routing.domain_name == "api.flightdelay.example.com"
