"""Post-deploy check run by the delivery pipeline after each serving stage.

SageMaker's blue/green auto-rollback can revert an update and still report InService (and
CloudFormation may report success): the only proof the release is live is DescribeEndpoint's
EndpointConfigName equal to the config we deployed.

    python -m mlops.post_deploy_check --endpoint-name X --expected-config Y \
        [--region R] [--wait-seconds N] [--invoke-sample FILE]

Exit 0 with one OK line, 1 with one ERROR line when the check fails, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    status: str | None = None
    config_name: str | None = None


def check_endpoint(
    sagemaker_client: Any,
    endpoint_name: str,
    expected_config_name: str,
    *,
    wait_seconds: float = 0,
    poll_seconds: float = 15,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """InService on the expected config, waiting up to wait_seconds while it is transitional."""
    deadline = clock() + wait_seconds
    while True:
        desc = sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
        status = str(desc["EndpointStatus"])
        config = desc.get("EndpointConfigName")
        if status == "InService":
            if config == expected_config_name:
                return CheckResult(
                    True, f"endpoint {endpoint_name} InService on {config}", status, config
                )
            return CheckResult(
                False,
                f"endpoint {endpoint_name} is InService on {config}, expected "
                f"{expected_config_name}: the deployment was rolled back",
                status,
                config,
            )
        remaining = deadline - clock()
        if status not in TRANSITIONAL or remaining <= 0:
            reason = f" ({desc['FailureReason']})" if desc.get("FailureReason") else ""
            waited = f" after waiting {wait_seconds:g} s" if wait_seconds else ""
            return CheckResult(
                False,
                f"endpoint {endpoint_name} is {status}{reason}{waited}, expected InService on "
                f"{expected_config_name}",
                status,
                config,
            )
        sleep(min(poll_seconds, remaining))


def invoke_sample(runtime_client: Any, endpoint_name: str, sample_csv: str) -> CheckResult:
    """Send CSV rows (no header, features in inference order); expect one answer line each,
    its probability first (then the model's version: pipeline_steps/inference.py)."""
    rows = [line for line in sample_csv.splitlines() if line.strip()]
    if not rows:
        return CheckResult(False, "sample file has no rows")
    response = runtime_client.invoke_endpoint(
        EndpointName=endpoint_name,
        ContentType="text/csv",
        Accept="text/csv",
        Body="\n".join(rows).encode("utf-8"),
    )
    text = response["Body"].read().decode("utf-8").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        scores = [float(line.split(",")[0]) for line in lines]
    except ValueError:
        return CheckResult(False, f"endpoint {endpoint_name} returned non-numeric {text[:80]!r}")
    if len(scores) != len(rows):
        return CheckResult(
            False, f"endpoint {endpoint_name} returned {len(scores)} scores for {len(rows)} rows"
        )
    bad = [s for s in scores if math.isnan(s) or not 0.0 <= s <= 1.0]
    if bad:
        return CheckResult(
            False, f"endpoint {endpoint_name} returned {bad[0]}, not a probability in [0, 1]"
        )
    return CheckResult(True, f"endpoint {endpoint_name} scored {len(rows)} sample rows")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops.post_deploy_check",
        description="Fail when the endpoint does not serve the deployed endpoint config.",
    )
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--expected-config", required=True, help="endpoint config deployed")
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--wait-seconds", type=float, default=0, help="wait this long for InService"
    )
    parser.add_argument("--poll-seconds", type=float, default=15, help=argparse.SUPPRESS)
    parser.add_argument("--invoke-sample", metavar="FILE", help="CSV rows to score")
    parser.add_argument(
        "--role-arn",
        default=None,
        help="assume this role first (the serving account's smoke-test role)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    sagemaker_client: Any = None,
    runtime_client: Any = None,
) -> int:
    args = build_parser().parse_args(argv)
    if args.wait_seconds < 0:
        print("ERROR: --wait-seconds must be >= 0", file=sys.stderr)
        return 2
    sample = None
    if args.invoke_sample:
        try:
            sample = Path(args.invoke_sample).read_text(encoding="utf-8")
        except OSError as error:
            print(f"ERROR: --invoke-sample {args.invoke_sample}: {error.strerror}", file=sys.stderr)
            return 2
    try:
        session = _session(args.role_arn, args.region) if args.role_arn else None
        sm = sagemaker_client or _client("sagemaker", args.region, session)
        result = check_endpoint(
            sm,
            args.endpoint_name,
            args.expected_config,
            wait_seconds=args.wait_seconds,
            poll_seconds=args.poll_seconds,
        )
        if result.ok and sample is not None:
            runtime = runtime_client or _client("sagemaker-runtime", args.region, session)
            result = invoke_sample(runtime, args.endpoint_name, sample)
    except Exception as error:  # botocore: endpoint not found, no credentials, throttled
        if not type(error).__module__.startswith("botocore"):
            raise
        print(f"ERROR: {args.endpoint_name}: {error}", file=sys.stderr)
        return 1
    if not result.ok:
        print(f"ERROR: {result.message}", file=sys.stderr)
        return 1
    print(f"OK: {result.message}")
    return 0


def _session(role_arn: str, region: str | None) -> Any:
    """Credentials of the serving account: the delivery pipeline runs in the tooling account."""
    import boto3

    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=role_arn, RoleSessionName="post-deploy-check"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _client(service: str, region: str | None, session: Any = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return (session or boto3).client(service, region_name=region, config=config)


if __name__ == "__main__":
    sys.exit(main())
