"""The shape of an endpoint's alarms (period and "M of N" datapoints), as plain numbers: the
construct that deploys them (mlops/constructs/endpoint_alarms.py), the endpoint simulator
(mlops/local/simulate/endpoint.py) and bench/bench_rollback.py's design figures read them here,
so none of them keeps a copy and the last two do not start aws_cdk's jsii runtime to read them.
No aws_cdk import here (tests/test_rollback_bench.py checks bench_rollback stays free of it)."""

from __future__ import annotations

# A sustained breach, not a blip: 3 of 3 one-minute datapoints.
PERIOD_SECONDS = 60
EVALUATION_PERIODS = 3
DATAPOINTS_TO_ALARM = 3
# The fast rollback alarms (alarms.rollback_metric_seconds: 10): one unbroken minute of
# breach, 6 of 6 ten-second datapoints (a period of 10 s makes them high-resolution alarms,
# evaluated every 10 s).
FAST_PERIOD_SECONDS = 10
FAST_DATAPOINTS = 6
