"""Typed, validated platform configuration (config/environments.yaml).

Bad configuration is refused before any construct is built: `load_config` raises ConfigError
whose message is one line naming the file, the field and what is allowed; app.py prints it
and exits 2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import yaml

from mlops.config_rules import (
    branch_problem,
    name_problem,
    rate_problem,
    schedule_problem,
    tag_value_problem,
)

# Commercial regions where SageMaker real-time inference and pipelines are available and our
# image table (mlops/pipeline_definition/images.py) has entries.
KNOWN_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "sa-east-1",
)

# SageMaker instance families (CPU and GPU) we allow; the size part is checked separately.
KNOWN_INSTANCE_FAMILIES: tuple[str, ...] = (
    "t2", "t3", "m4", "m5", "m5d", "m6i", "m6id", "m7i", "c4", "c5", "c5d", "c6i", "c6id",
    "c7i", "r5", "r5d", "r6i", "r6id", "r7i", "g4dn", "g5", "g6", "p3", "p4d", "inf1", "inf2",
)  # fmt: skip

# vCPUs per instance size: alarm thresholds on CPUUtilization scale with it (100% per core).
VCPUS_BY_SIZE: dict[str, int] = {
    "medium": 2,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "9xlarge": 36,
    "12xlarge": 48,
    "16xlarge": 64,
    "18xlarge": 72,
    "24xlarge": 96,
}

# Families with NVMe instance storage: SageMaker rejects a KMS volume key for them.
INSTANCE_STORE_FAMILIES: frozenset[str] = frozenset(
    {"m5d", "m6id", "c5d", "c6id", "r5d", "r6id", "g4dn", "g5", "g6", "p4d"}
)

SERVERLESS_MEMORY_MB: tuple[int, ...] = (1024, 2048, 3072, 4096, 5120, 6144)

FROM_CLI = "from-cli"
_ACCOUNT = re.compile(r"^\d{12}$")
_INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9]+)\.([a-z0-9]+)$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_RATE = re.compile(r"^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]+$"
)


# What the drift alarm may watch (published by pipeline_steps/drift.py and model_quality.py)
# and the comparison that means "bad" for each.
DRIFT_ALARM_METRICS: dict[str, str] = {
    "DriftScore": "GreaterThanOrEqualToThreshold",  # highest feature PSI of the window
    "DriftedFeatureCount": "GreaterThanOrEqualToThreshold",
    "OutOfRangeShare": "GreaterThanOrEqualToThreshold",  # see drift.py
    "ModelAUC": "LessThanThreshold",  # ground truth, where labels arrive
}


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
    # Non-inferiority margin of the quality gate (AUC). Default 0.025: six seeds on the same
    # window scatter with sd 0.0097 (bench/bench_seed_noise.py), so two equally good models
    # differ with sd 0.014; 1.645 x 0.014 + the paired CI half-width 0.003 = 0.025 passes 95%.
    non_inferiority_margin: float
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


# ---- Parsing ---------------------------------------------------------------------------------

T = TypeVar("T")


class _Reader:
    """Reads one YAML mapping, remembering the dotted path for error messages."""

    def __init__(self, source: str, path: str, data: object) -> None:
        self.source, self.path = source, path
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        where = f"{self.path}.{field}" if field and self.path else (field or self.path)
        raise ConfigError(f"{self.source}: {where or '(top level)'}: {message}")

    def _get(self, field: str, default: object) -> object:
        self.seen.add(field)
        if field not in self.data:
            if default is _REQUIRED:
                self.fail("missing required field", field)
            return default
        return self.data[field]

    def typed(self, field: str, kind: type[T], default: object = None) -> T:
        value = self._get(field, _REQUIRED if default is None else default)
        # YAML booleans are ints in Python: refuse them where a number is wanted.
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            self.fail(f"must be {kind.__name__}, got {_type_name(value)}", field)
        return value  # type: ignore[return-value]

    def number(
        self, field: str, kind: type[T], low: float, high: float, default: object = None
    ) -> T:
        value = self.typed(field, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            self.fail(f"must be between {low:g} and {high:g}, got {value}", field)
        return value

    def choice(self, field: str, allowed: tuple[str, ...], default: object = None) -> str:
        value = self.typed(field, str, default)
        if value not in allowed:
            self.fail(f"must be one of {', '.join(allowed)}; got {value!r}", field)
        return value

    def matching(self, field: str, pattern: re.Pattern[str], allowed: str) -> str:
        value = self.typed(field, str)
        if not pattern.match(value):
            self.fail(f"must be {allowed}; got {value!r}", field)
        return value

    def child(self, field: str) -> _Reader:
        return _Reader(
            self.source, f"{self.path}.{field}" if self.path else field, self._get(field, _REQUIRED)
        )

    def optional_child(self, field: str) -> _Reader | None:
        if field not in self.data:
            self.seen.add(field)
            return None
        return self.child(field)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            allowed = ", ".join(sorted(self.seen))
            self.fail(f"unknown field {unknown[0]!r} (allowed: {allowed})", None)


_REQUIRED = object()


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _instance_type(reader: _Reader, field: str) -> InstanceType:
    value = reader.typed(field, str)
    match = _INSTANCE_TYPE.match(value)
    if not match or match.group(1) not in KNOWN_INSTANCE_FAMILIES:
        families = ", ".join(f"ml.{f}" for f in KNOWN_INSTANCE_FAMILIES)
        reader.fail(f"unknown instance type family in {value!r} (allowed: {families})", field)
    if match and match.group(2) not in VCPUS_BY_SIZE:
        reader.fail(
            f"unknown instance size in {value!r} (allowed: {', '.join(VCPUS_BY_SIZE)})", field
        )
    return InstanceType(name=value)


def _schedule(reader: _Reader, field: str) -> str:
    value = reader.matching(field, _SCHEDULE, "an EventBridge rate(N unit) or cron(...) expression")
    return _checked(reader, field, value, schedule_problem(value))


def _checked(reader: _Reader, field: str, value: str, problem: str | None) -> str:
    if problem:
        reader.fail(f"{problem}; got {value!r}", field)
    return value


def _rate(reader: _Reader, field: str) -> str:
    value = reader.matching(field, _RATE, "an EventBridge rate(N unit) expression")
    return _checked(reader, field, value, rate_problem(value))


def _optional_duration(r: _Reader, field: str) -> str | None:
    if r.data.get(field) is None:
        r.seen.add(field)
        return None
    return r.matching(field, ISO_DURATION, "an ISO 8601 duration such as P30D, or null")


def _training(r: _Reader) -> TrainingConfig:
    cfg = TrainingConfig(
        processing_instance_type=_instance_type(r, "processing_instance_type"),
        training_instance_type=_instance_type(r, "training_instance_type"),
        auc_threshold=r.number("auc_threshold", float, 0.5, 1.0),
        auto_approve=r.typed("auto_approve", bool),
        use_spot=r.typed("use_spot", bool),
        tuning=r.typed("tuning", bool),
        schedule=_schedule(r, "schedule"),
        test_weeks=r.number("test_weeks", int, 1, 52, 4),
        validation_weeks=r.number("validation_weeks", int, 1, 52, 4),
        train_months=r.number("train_months", int, 1, 120, 6),
        non_inferiority_margin=r.number("non_inferiority_margin", float, 0.0, 0.2, 0.025),
        step_cache=_optional_duration(r, "step_cache"),
    )
    r.done()
    return cfg


def _serving(r: _Reader) -> ServingConfig:
    cfg = ServingConfig(
        instance_type=_instance_type(r, "instance_type"),
        min_capacity=r.number("min_capacity", int, 1, 100),
        max_capacity=r.number("max_capacity", int, 1, 100),
        invocations_per_instance_target=r.number(
            "invocations_per_instance_target", int, 1, 100_000
        ),
        serverless=r.typed("serverless", bool, False),
        serverless_memory_mb=r.typed("serverless_memory_mb", int, 2048),
        serverless_max_concurrency=r.number("serverless_max_concurrency", int, 1, 200, 5),
        autoscaling=r.typed("autoscaling", bool, True),
        api_gateway_logging_role=r.choice(  # type: ignore[arg-type]
            "api_gateway_logging_role", API_GATEWAY_LOGGING_ROLES, "existing"
        ),
    )
    if cfg.min_capacity > cfg.max_capacity:
        r.fail(
            f"min_capacity ({cfg.min_capacity}) must not exceed max_capacity ({cfg.max_capacity})",
            "min_capacity",
        )
    if cfg.serverless_memory_mb not in SERVERLESS_MEMORY_MB:
        r.fail(
            f"must be one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}; "
            f"got {cfg.serverless_memory_mb}",
            "serverless_memory_mb",
        )
    r.done()
    return cfg


def _deployment(r: _Reader) -> DeploymentConfig:
    strategy = r.choice("strategy", ("canary", "linear"))
    cfg = DeploymentConfig(
        strategy=strategy,  # type: ignore[arg-type]
        canary_percent=r.number("canary_percent", int, 1, 50, 10),
        linear_step_percent=r.number("linear_step_percent", int, 10, 50, 20),
        bake_minutes=r.number("bake_minutes", int, 1, 60),
    )
    r.done()
    return cfg


def _alarms(r: _Reader) -> AlarmConfig:
    cfg = AlarmConfig(
        latency_p99_ms=r.number("latency_p99_ms", int, 1, 60_000),
        error_rate_5xx=r.number("error_rate_5xx", float, 0.0001, 1.0),
        min_invocations_per_minute=r.number("min_invocations_per_minute", int, 0, 1_000_000),
    )
    r.done()
    return cfg


def _drift_alarm(r: _Reader | None, defaults: DriftAlarmConfig) -> DriftAlarmConfig:
    if r is None:
        return defaults
    cfg = DriftAlarmConfig(
        metric=r.choice("metric", tuple(DRIFT_ALARM_METRICS), defaults.metric),
        threshold=r.number("threshold", float, 0.0, 100.0, defaults.threshold),
        datapoints_to_alarm=r.number(
            "datapoints_to_alarm", int, 1, 30, defaults.datapoints_to_alarm
        ),
        evaluation_periods=r.number("evaluation_periods", int, 1, 30, defaults.evaluation_periods),
    )
    if cfg.datapoints_to_alarm > cfg.evaluation_periods:
        r.fail(
            f"datapoints_to_alarm ({cfg.datapoints_to_alarm}) must not exceed "
            f"evaluation_periods ({cfg.evaluation_periods})",
            "datapoints_to_alarm",
        )
    r.done()
    return cfg


def _drift(r: _Reader) -> DriftConfig:
    cfg = DriftConfig(
        # The drift alarm's period is the schedule's: only a rate has one.
        schedule=_rate(r, "schedule"),
        psi_threshold=r.number("psi_threshold", float, 0.01, 5.0),
        retrain_min_hours=r.number("retrain_min_hours", int, 1, 24 * 90),
        alarm=_drift_alarm(r.optional_child("alarm"), DEFAULT_DRIFT_ALARM),
    )
    r.done()
    return cfg


def _routing(r: _Reader) -> RoutingConfig:
    cfg = RoutingConfig(
        hosted_zone_id=r.matching(
            "hosted_zone_id", _HOSTED_ZONE_ID, "a Route 53 hosted zone id such as Z0123456789ABC"
        ),
        hosted_zone_name=r.matching(
            "hosted_zone_name", _DOMAIN, "the zone's domain name in lowercase, e.g. example.com"
        ),
        record_name=r.matching(
            "record_name", _DNS_LABEL, "one lowercase DNS label, e.g. api (-> api.<zone>)"
        ),
    )
    r.done()
    return cfg


def _environment(name: str, r: _Reader) -> EnvironmentConfig:
    problem = name_problem(name)
    if problem:
        r.fail(f"environment name {name!r}: {problem}")
    account = r.typed("account", str)
    if account != FROM_CLI and not _ACCOUNT.match(account):
        r.fail(
            f"must be a 12-digit AWS account id (quoted) or {FROM_CLI!r}; got {account!r}",
            "account",
        )
    regions_value = r.typed("regions", list)
    if not regions_value:
        r.fail("must list at least one region (the first is the home region)", "regions")
    for region in regions_value:
        if region != FROM_CLI and region not in KNOWN_REGIONS:
            r.fail(f"unknown region {region!r} (allowed: {', '.join(KNOWN_REGIONS)})", "regions")
    if len(set(regions_value)) != len(regions_value):
        r.fail("lists a region twice", "regions")
    if (account == FROM_CLI) != (regions_value == [FROM_CLI]):
        r.fail(f"account and regions must both be {FROM_CLI!r} or neither", "regions")
    training_reader = r.optional_child("training")
    routing_reader = r.optional_child("routing")
    env = EnvironmentConfig(
        name=name,
        account=account,
        regions=tuple(regions_value),
        retain_data=r.typed("retain_data", bool),
        training=_training(training_reader) if training_reader else None,
        serving=_serving(r.child("serving")),
        deployment=_deployment(r.child("deployment")),
        alarms=_alarms(r.child("alarms")),
        drift=_drift(r.child("drift")),
        routing=_routing(routing_reader) if routing_reader else None,
    )
    r.done()
    return env


def _branch(r: _Reader) -> str:
    branch = r.typed("branch", str)
    return _checked(r, "branch", branch, branch_problem(branch))


def _tooling(r: _Reader) -> ToolingConfig:
    cfg = ToolingConfig(
        account=r.matching("account", _ACCOUNT, "a 12-digit AWS account id (quoted)"),
        region=r.choice("region", KNOWN_REGIONS),
        connection_arn=r.matching(
            "connection_arn", _CONNECTION_ARN, "a CodeConnections connection ARN"
        ),
        repository=r.matching(
            "repository", re.compile(r"^[\w.-]+/[\w.-]+$"), "owner/name of the source repository"
        ),
        branch=_branch(r),
    )
    r.done()
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (YAML itself keeps the last silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise ConfigError(
                f"line {key_node.start_mark.line + 1}: duplicate key {key!r} (names must be unique)"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def parse_config(text: str, source: str) -> PlatformConfig:
    """Validate YAML text into a PlatformConfig; `source` names the file in errors."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}: {where}malformed YAML: {problem}") from None
    root = _Reader(source, "", data)
    project = root.matching("project", _NAME, "lowercase letters, digits and dashes (2-20)")
    _checked(root, "project", project, name_problem(project))
    cost_centre = root.typed("cost_centre", str)
    # Every resource is tagged with it (cost-centre).
    _checked(root, "cost_centre", cost_centre, tag_value_problem(cost_centre))
    tooling = _tooling(root.child("tooling"))
    training_environment = root.typed("training_environment", str)
    envs_reader = root.child("environments")
    if not envs_reader.data:
        envs_reader.fail("must define at least one environment")
    environments = {
        name: _environment(str(name), envs_reader.child(str(name))) for name in envs_reader.data
    }
    root.done()
    if training_environment not in environments:
        root.fail(
            f"names no environment (allowed: {', '.join(environments)})", "training_environment"
        )
    if environments[training_environment].training is None:
        root.fail(
            f"environment {training_environment!r} has no training section",
            "training_environment",
        )
    return PlatformConfig(
        source=source,
        project=project,
        cost_centre=cost_centre,
        tooling=tooling,
        training_environment=training_environment,
        environments=environments,
    )


def load_config(path: Path) -> PlatformConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    return parse_config(text, str(path))


def bind_cli_account(
    env: EnvironmentConfig, account: str | None, region: str | None
) -> EnvironmentConfig:
    """Resolve a `from-cli` environment (sandbox) to the deploying identity's account/region."""
    if env.account != FROM_CLI:
        return env
    if not account or not region:
        raise ConfigError(
            f"environment {env.name!r} takes its account and region from the AWS CLI: set "
            "CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION (or configure an AWS profile)"
        )
    if region not in KNOWN_REGIONS:
        raise ConfigError(
            f"region {region!r} is not supported (allowed: {', '.join(KNOWN_REGIONS)})"
        )
    return EnvironmentConfig(**{**env.__dict__, "account": account, "regions": (region,)})
