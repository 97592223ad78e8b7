"""The typed configuration: what mlops/config/parse.py builds from environments.yaml and
every construct reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mlops.config.limits import DRIFT_ALARM_METRICS, INSTANCE_STORE_FAMILIES, VCPUS_BY_SIZE
from pipeline_steps import gate_defaults


class ConfigError(ValueError):
    """A configuration mistake, with a one-line message for the user."""


# ---- Typed configuration -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    name: str

    @property
    def family(self) -> str:
        return self.name.split(".")[1]

    @property
    def vcpus(self) -> int:
        return VCPUS_BY_SIZE[self.name.split(".")[2]]

    @property
    def supports_volume_kms_key(self) -> bool:
        return self.family not in INSTANCE_STORE_FAMILIES


# When training gives none: the steps' own defaults (pipeline_steps/gate_defaults.py, the
# single source; see TrainingConfig).
DEFAULT_MIN_WEATHER_MATCH = gate_defaults.MIN_WEATHER_MATCH
DEFAULT_MIN_PLANE_MATCH = gate_defaults.MIN_PLANE_MATCH
DEFAULT_NON_INFERIORITY_MARGIN = gate_defaults.NON_INFERIORITY_MARGIN


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    processing_instance_type: InstanceType
    training_instance_type: InstanceType
    auc_threshold: float
    auto_approve: bool
    use_spot: bool
    tuning: bool
    schedule: str
    # Rolling training window, resolved by Preprocess from the newest data (see
    # pipeline_steps/preprocess.py): test weeks, validation weeks before, train months before.
    test_weeks: int
    validation_weeks: int
    train_months: int
    # Non-inferiority margin of the quality gate (AUC; default and why: gate_defaults.py).
    non_inferiority_margin: float
    # Least share of each split's flights that must find their weather observation and their
    # plane, else Preprocess refuses the data (pipeline_steps/data_quality.py; defaults and
    # the measurements behind them: gate_defaults.py).
    min_weather_match: float
    min_plane_match: float
    # ISO 8601 duration, or None: SageMaker caches on input URIs, not on the data behind them,
    # so with caching on, new raw data under the same prefix would be silently skipped.
    step_cache: str | None


API_GATEWAY_LOGGING_ROLES = ("existing", "managed")


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    instance_type: InstanceType
    min_capacity: int
    max_capacity: int
    invocations_per_instance_target: int
    serverless: bool
    serverless_memory_mb: int
    serverless_max_concurrency: int
    # False removes the scalable target: the first of the two deploys that change the
    # instance type of an autoscaled variant (README "Changing the serving instance type").
    autoscaling: bool = True
    # API Gateway's CloudWatch logging role is ONE setting per account and region
    # (AWS::ApiGateway::Account): "existing" (default) leaves it alone and needs it set once
    # (README "API Gateway logging role"); "managed" makes the serving stack create the role
    # and set it, replacing whatever role the account had.
    api_gateway_logging_role: Literal["existing", "managed"] = "existing"


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    strategy: Literal["canary", "linear"]
    canary_percent: int
    linear_step_percent: int
    bake_minutes: int


@dataclass(frozen=True, kw_only=True)
class AlarmConfig:
    latency_p99_ms: int
    error_rate_5xx: float
    min_invocations_per_minute: int
    # 10: the endpoint publishes its invocation metrics every 10 s (SageMaker enhanced
    # metrics) and two more rollback alarms watch them, firing on one unbroken minute of
    # breach; the 1-minute alarms stay (README "Breach to rollback"). 60: 1-minute only.
    rollback_metric_seconds: int = 60


@dataclass(frozen=True, kw_only=True)
class DriftAlarmConfig:
    """The alarm that starts a retrain: which metric of the monitoring job it watches, its
    threshold, and M of N (datapoints_to_alarm of evaluation_periods monitoring runs)."""

    metric: str
    threshold: float
    datapoints_to_alarm: int
    evaluation_periods: int

    @property
    def comparison(self) -> str:
        return DRIFT_ALARM_METRICS[self.metric]


# Calibrated on the bundled data (README, "Drift that means something"): over Jul-Dec of
# `mlops local simulate` (bench/calibrate_drift_alarm.py), ground-truth AUC below 0.70 in 5
# of 7 daily runs put 6 of 9 alarms in the 3 months whose AUC really dropped and missed none;
# input drift (max PSI >= 0.2) sat in ALARM all 181 days. Used when drift.alarm is not given.
DEFAULT_DRIFT_ALARM = DriftAlarmConfig(
    metric="ModelAUC", threshold=0.70, datapoints_to_alarm=5, evaluation_periods=7
)


@dataclass(frozen=True, kw_only=True)
class DriftConfig:
    schedule: str
    psi_threshold: float
    retrain_min_hours: int
    alarm: DriftAlarmConfig


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """One global name for the environment's regional inference APIs (Route 53 latency
    records with health checks) in an existing public hosted zone."""

    hosted_zone_id: str
    hosted_zone_name: str
    record_name: str

    @property
    def domain_name(self) -> str:
        return f"{self.record_name}.{self.hosted_zone_name}"


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str
    account: str
    regions: tuple[str, ...]
    retain_data: bool
    training: TrainingConfig | None
    serving: ServingConfig
    deployment: DeploymentConfig
    alarms: AlarmConfig
    drift: DriftConfig
    routing: RoutingConfig | None = None

    @property
    def home_region(self) -> str:
        return self.regions[0]


@dataclass(frozen=True, kw_only=True)
class ToolingConfig:
    account: str
    region: str
    connection_arn: str
    repository: str
    branch: str


@dataclass(frozen=True, kw_only=True)
class PlatformConfig:
    source: str
    project: str
    cost_centre: str
    tooling: ToolingConfig
    training_environment: str
    environments: Mapping[str, EnvironmentConfig]

    def environment(self, name: str) -> EnvironmentConfig:
        return self.environments[name]

    @property
    def training_home(self) -> EnvironmentConfig:
        return self.environments[self.training_environment]

    def registry_of(self, env: EnvironmentConfig) -> EnvironmentConfig:
        """The environment whose Model Registry and artifacts an environment serves from."""
        return env if env.training is not None else self.training_home
