"""Rollback benchmark: the handler's time per event against the emulator (moto + the narrow
UpdateEndpoint emulation from tests/test_rollback.py), and the designed worst-case time from
the start of a sustained breach to the rollback's UpdateEndpoint call.

    python bench/bench_rollback.py [--events 200] [--period 10] [--evaluation-periods 6]
        [--datapoints-to-alarm 6] [--metric-delay 20] [--evaluation-interval 10]
        [--cold-start 2.0] ...

The defaults are staging's and prod's fast rollback alarms (alarms.rollback_metric_seconds:
10); dev's and the fallback 1-minute alarms are --period 60 --evaluation-periods 3 --datapoints-to-alarm 3
--metric-delay 60 --evaluation-interval 60 (also listed under "Designs compared").

Prints figures only; the emulator time is our code plus moto, not AWS API latency.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The deployed alarms' shape, not a copy of it: the design figures follow the construct,
# which reads the same plain module (importing the construct would start aws_cdk's jsii node).
from mlops.alarm_shape import (  # noqa: E402
    DATAPOINTS_TO_ALARM,
    EVALUATION_PERIODS,
    FAST_DATAPOINTS,
    FAST_PERIOD_SECONDS,
    PERIOD_SECONDS,
)


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    why: str


def worst_case_breach_to_rollback(
    *,
    period_s: int = 60,
    evaluation_periods: int = 3,
    datapoints_to_alarm: int = 3,
    metric_delay_s: float = 60.0,
    evaluation_interval_s: float = 60.0,
    eventbridge_delivery_s: float = 5.0,
    cold_start_s: float = 2.0,
    api_before_update_s: float = 1.0,
) -> list[Stage]:
    """Stages of the worst case, from a sustained breach starting to UpdateEndpoint being sent.

    A breach that starts just after a period boundary may not push that period's statistic
    over the threshold, so one period can be lost; then `datapoints_to_alarm` consecutive
    breaching periods satisfy "M out of N" (N only matters for intermittent breaches).
    The last datapoint is published and ingested late (metric_delay_s), and the alarm is
    evaluated on a fixed cadence (evaluation_interval_s). The state change then travels
    EventBridge -> Lambda async invoke, the function may cold-start, and it calls
    DescribeEndpoint before UpdateEndpoint.
    """
    if period_s <= 0 or period_s % 10:
        raise ValueError(f"period_s must be a positive multiple of 10, got {period_s}")
    if not 1 <= datapoints_to_alarm <= evaluation_periods:
        raise ValueError(
            f"need 1 <= datapoints_to_alarm ({datapoints_to_alarm}) <= evaluation_periods "
            f"({evaluation_periods})"
        )
    return [
        Stage("partial first period", period_s, "breach starts just after a period boundary"),
        Stage(
            f"{datapoints_to_alarm} breaching datapoints",
            datapoints_to_alarm * period_s,
            f"{datapoints_to_alarm} out of {evaluation_periods} x {period_s} s",
        ),
        Stage("metric publication + ingestion", metric_delay_s, "last datapoint arrives late"),
        Stage("alarm evaluation cadence", evaluation_interval_s, "wait for the next evaluation"),
        Stage("EventBridge -> Lambda", eventbridge_delivery_s, "rule match + async invoke"),
        Stage("Lambda cold start", cold_start_s, "Python + boto3 + vendored Powertools"),
        Stage("API calls before UpdateEndpoint", api_before_update_s, "DescribeEndpoint"),
    ]


def best_case_breach_to_rollback(*, period_s: int = 60, datapoints_to_alarm: int = 3) -> float:
    """Lower bound: breach aligned with a period, no delays, warm function."""
    return float(datapoints_to_alarm * period_s)


@dataclass(frozen=True)
class Design:
    name: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    metric_delay_s: float
    evaluation_interval_s: float
    single_spike: str  # what a lone bad spike does to this design


# The false-alarm side of each design: how short a breach it takes to alarm. AWS/SageMaker
# invocation metrics are 1-minute metrics unless the endpoint config enables enhanced metrics
# with MetricPublishFrequencyInSeconds=10 (SageMaker MetricsConfig); a 10-second alarm period
# on a 1-minute metric only sees INSUFFICIENT_DATA (CloudWatch PutMetricAlarm, Period).
DESIGNS = (
    Design(
        f"1-min, {DATAPOINTS_TO_ALARM} of {EVALUATION_PERIODS} (deployed: dev; fallback)",
        PERIOD_SECONDS,
        EVALUATION_PERIODS,
        DATAPOINTS_TO_ALARM,
        60.0,
        60.0,
        "never: needs 3 bad minutes",
    ),
    Design("1-min metrics, 2 of 3", 60, 3, 2, 60.0, 60.0, "2 bad minutes in 3 alarm"),
    Design("1-min metrics, 1 of 1", 60, 1, 1, 60.0, 60.0, "any one bad minute alarms"),
    Design(
        f"10-s enhanced metrics, {FAST_DATAPOINTS} of {FAST_DATAPOINTS} (deployed: staging, prod)",
        FAST_PERIOD_SECONDS,
        FAST_DATAPOINTS,
        FAST_DATAPOINTS,
        20.0,
        10.0,
        "needs a bad minute, unbroken",
    ),
    Design("10-s enhanced metrics, 9 of 9", 10, 9, 9, 20.0, 10.0, "needs 90 s unbroken"),
)


def compare_designs(**delays: float) -> list[tuple[Design, float]]:
    """(design, worst-case seconds) with the same EventBridge/Lambda/API delays for each."""
    return [
        (
            design,
            sum(
                stage.seconds
                for stage in worst_case_breach_to_rollback(
                    period_s=design.period_s,
                    evaluation_periods=design.evaluation_periods,
                    datapoints_to_alarm=design.datapoints_to_alarm,
                    metric_delay_s=design.metric_delay_s,
                    evaluation_interval_s=design.evaluation_interval_s,
                    **delays,
                )
            ),
        )
        for design in DESIGNS
    ]


def time_events(
    run_one: Callable[[], Any], reset: Callable[[], None] | None, count: int
) -> list[float]:
    """Wall time of run_one per call; reset (untimed) restores the starting state."""
    timings = []
    for _ in range(count):
        if reset is not None:
            reset()
        start = time.perf_counter()
        run_one()
        timings.append(time.perf_counter() - start)
    return timings


def bench_handler(events: int) -> dict[str, list[float]]:
    """Per-scenario handler timings inside moto (imports the test emulator)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from moto import mock_aws

    # Loaded by path (not `tests.test_rollback`): one module name for pytest, mypy and us.
    sys.path.insert(0, str(ROOT / "tests"))
    emu = importlib.import_module("test_rollback")

    handler = emu.handler_mod
    # Keep the JSON formatting cost but do not flood the terminal: the handler's log lines
    # go to its logger's stream, its metrics (one EMF JSON line per event, printed to stdout
    # as in Lambda) to sys.stdout; both to devnull, so only the figures are printed.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
    handler.logger.registered_handler.setStream(devnull)
    context = emu.FakeContext()
    results: dict[str, list[float]] = {}
    with mock_aws(), contextlib.redirect_stdout(devnull):
        world = emu.build_world()
        env = {
            "ENDPOINT_NAME": emu.ENDPOINT,
            "ALARM_NAMES": ",".join(emu.OUR_ALARMS),
            "PREVIOUS_ENDPOINT_CONFIG_NAME": emu.OLD_CONFIG,
            "CURRENT_ENDPOINT_CONFIG_NAME": emu.NEW_CONFIG,
            "CURRENT_MODEL_PACKAGE_ARN": world.package_arn,
            "TOPIC_ARN": world.config.topic_arn,
            "MANIFEST_HINT": "config/releases.yaml: prod",
        }
        os.environ.update(env)
        handler._clients.update(
            {
                "sagemaker@local": world.sagemaker,
                "sns@local": world.sns,
                # The world's CloudWatch client pins when each alarm entered ALARM (AlarmTimes);
                # moto's own stamps are the wall clock, which makes the fixed event stale.
                "cloudwatch@local": world.cloudwatch,
                f"sagemaker@{emu.REGION}": world.sagemaker,  # registry region from the ARN
            }
        )
        alarm = emu.alarm_event()

        def reset_to_bad_release() -> None:
            world.emulator.status.pop(emu.ENDPOINT, None)
            world.emulator.pending.pop(emu.ENDPOINT, None)
            world.emulator.serving[emu.ENDPOINT] = emu.NEW_CONFIG
            world.sagemaker.update_model_package(
                ModelPackageArn=world.package_arn, ModelApprovalStatus="Approved"
            )

        def expect(action: str, event: dict[str, Any]) -> Callable[[], None]:
            def run() -> None:
                result = handler.handler(event, context)
                if result["action"] != action:
                    raise RuntimeError(f"expected {action}, got {result}")

            return run

        results["rollback (update+notify+reject)"] = time_events(
            expect("rolled_back", alarm), reset_to_bad_release, events
        )
        # State now: rollback under way, package Rejected -> duplicates are no-ops.
        results["duplicate event (no-op)"] = time_events(
            expect("already_rolled_back", alarm), None, events
        )
        results["other endpoint's alarm (ignored)"] = time_events(
            expect("ignored", emu.alarm_event("flight-delay-staging-latency")), None, events
        )
    return results


def _ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200)
    # prod's fast rollback alarms (alarm_shape.FAST_PERIOD_SECONDS, FAST_DATAPOINTS); a 10-second
    # metric is assumed to arrive within 20 s, and a 10-second alarm is evaluated every 10 s.
    parser.add_argument("--period", type=int, default=FAST_PERIOD_SECONDS)
    parser.add_argument("--evaluation-periods", type=int, default=FAST_DATAPOINTS)
    parser.add_argument("--datapoints-to-alarm", type=int, default=FAST_DATAPOINTS)
    parser.add_argument("--metric-delay", type=float, default=20.0)
    parser.add_argument("--evaluation-interval", type=float, default=10.0)
    parser.add_argument("--eventbridge-delivery", type=float, default=5.0)
    parser.add_argument("--cold-start", type=float, default=2.0)
    parser.add_argument("--api-before-update", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        stages = worst_case_breach_to_rollback(
            period_s=args.period,
            evaluation_periods=args.evaluation_periods,
            datapoints_to_alarm=args.datapoints_to_alarm,
            metric_delay_s=args.metric_delay,
            evaluation_interval_s=args.evaluation_interval,
            eventbridge_delivery_s=args.eventbridge_delivery,
            cold_start_s=args.cold_start,
            api_before_update_s=args.api_before_update,
        )
    except ValueError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2

    print(f"Rollback handler per event against the emulator ({args.events} events each):")
    print(f"  {'scenario':38s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}")
    for name, values in bench_handler(args.events).items():
        print(
            f"  {name:38s} {1000 * statistics.median(values):10.2f} "
            f"{_ms(values, 0.95):8.2f} {1000 * max(values):8.2f}"
        )
    print()
    print(
        f"Designed worst case, sustained breach -> rollback start (period {args.period} s, "
        f"{args.datapoints_to_alarm} of {args.evaluation_periods} datapoints):"
    )
    for stage in stages:
        print(f"  {stage.name:34s} {stage.seconds:7.1f} s   {stage.why}")
    total = sum(s.seconds for s in stages)
    print(f"  {'total':34s} {total:7.1f} s   ({total / 60:.1f} min)")
    best = best_case_breach_to_rollback(
        period_s=args.period, datapoints_to_alarm=args.datapoints_to_alarm
    )
    print(f"  best case (aligned, no delays)     {best:7.1f} s")
    print()
    print(
        "Designs compared (same delays after the alarm; goal: at most 180 s, no alarm on a spike):"
    )
    print(f"  {'design':40s} {'worst s':>8s}   single spike")
    for design, seconds in compare_designs(
        eventbridge_delivery_s=args.eventbridge_delivery,
        cold_start_s=args.cold_start,
        api_before_update_s=args.api_before_update,
    ):
        print(f"  {design.name:40s} {seconds:8.1f}   {design.single_spike}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
