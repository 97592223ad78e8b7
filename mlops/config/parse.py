"""environments.yaml -> PlatformConfig: one parser per section, each field checked against
what is allowed (mlops/config/limits.py, mlops/config_rules.py), errors in one line."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mlops.config.limits import (
    DRIFT_ALARM_METRICS,
    FROM_CLI,
    ISO_DURATION,
    KNOWN_INSTANCE_FAMILIES,
    KNOWN_REGIONS,
    ROLLBACK_METRIC_SECONDS,
    SERVERLESS_MEMORY_MB,
    VCPUS_BY_SIZE,
)
from mlops.config.model import (
    API_GATEWAY_LOGGING_ROLES,
    DEFAULT_DRIFT_ALARM,
    DEFAULT_MIN_PLANE_MATCH,
    DEFAULT_MIN_WEATHER_MATCH,
    DEFAULT_NON_INFERIORITY_MARGIN,
    AlarmConfig,
    ConfigError,
    DeploymentConfig,
    DriftAlarmConfig,
    DriftConfig,
    EnvironmentConfig,
    InstanceType,
    PlatformConfig,
    RoutingConfig,
    ServingConfig,
    ToolingConfig,
    TrainingConfig,
)
from mlops.config.reader import Reader, UniqueKeyLoader
from mlops.config_rules import (
    branch_problem,
    name_problem,
    rate_problem,
    schedule_problem,
    tag_value_problem,
)

_ACCOUNT = re.compile(r"^\d{12}$")
_INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9]+)\.([a-z0-9]+)$")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
_RATE = re.compile(r"^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]+$"
)


def _instance_type(reader: Reader, field: str) -> InstanceType:
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


def _schedule(reader: Reader, field: str) -> str:
    value = reader.matching(field, _SCHEDULE, "an EventBridge rate(N unit) or cron(...) expression")
    return _checked(reader, field, value, schedule_problem(value))


def _checked(reader: Reader, field: str, value: str, problem: str | None) -> str:
    if problem:
        reader.fail(f"{problem}; got {value!r}", field)
    return value


def _rate(reader: Reader, field: str) -> str:
    value = reader.matching(field, _RATE, "an EventBridge rate(N unit) expression")
    return _checked(reader, field, value, rate_problem(value))


def _optional_duration(r: Reader, field: str) -> str | None:
    if r.data.get(field) is None:
        r.seen.add(field)
        return None
    return r.matching(field, ISO_DURATION, "an ISO 8601 duration such as P30D, or null")


def _training(r: Reader) -> TrainingConfig:
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
        non_inferiority_margin=r.number(
            "non_inferiority_margin", float, 0.0, 0.2, DEFAULT_NON_INFERIORITY_MARGIN
        ),
        min_weather_match=r.fraction("min_weather_match", DEFAULT_MIN_WEATHER_MATCH),
        min_plane_match=r.fraction("min_plane_match", DEFAULT_MIN_PLANE_MATCH),
        step_cache=_optional_duration(r, "step_cache"),
    )
    r.done()
    return cfg


def _serving(r: Reader) -> ServingConfig:
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


def _deployment(r: Reader) -> DeploymentConfig:
    strategy = r.choice("strategy", ("canary", "linear"))
    cfg = DeploymentConfig(
        strategy=strategy,  # type: ignore[arg-type]
        canary_percent=r.number("canary_percent", int, 1, 50, 10),
        linear_step_percent=r.number("linear_step_percent", int, 10, 50, 20),
        bake_minutes=r.number("bake_minutes", int, 1, 60),
    )
    r.done()
    return cfg


def _alarms(r: Reader) -> AlarmConfig:
    cfg = AlarmConfig(
        latency_p99_ms=r.number("latency_p99_ms", int, 1, 60_000),
        error_rate_5xx=r.number("error_rate_5xx", float, 0.0001, 1.0),
        min_invocations_per_minute=r.number("min_invocations_per_minute", int, 0, 1_000_000),
        rollback_metric_seconds=r.typed("rollback_metric_seconds", int, 60),
    )
    if cfg.rollback_metric_seconds not in ROLLBACK_METRIC_SECONDS:
        r.fail(
            f"must be one of {', '.join(map(str, ROLLBACK_METRIC_SECONDS))}, "
            f"got {cfg.rollback_metric_seconds}",
            "rollback_metric_seconds",
        )
    r.done()
    return cfg


def _drift_alarm(r: Reader | None, defaults: DriftAlarmConfig) -> DriftAlarmConfig:
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


def _drift(r: Reader) -> DriftConfig:
    cfg = DriftConfig(
        # The drift alarm's period is the schedule's: only a rate has one.
        schedule=_rate(r, "schedule"),
        psi_threshold=r.number("psi_threshold", float, 0.01, 5.0),
        retrain_min_hours=r.number("retrain_min_hours", int, 1, 24 * 90),
        alarm=_drift_alarm(r.optional_child("alarm"), DEFAULT_DRIFT_ALARM),
    )
    r.done()
    return cfg


def _routing(r: Reader) -> RoutingConfig:
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


def _environment(name: str, r: Reader) -> EnvironmentConfig:
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
    if env.serving.serverless and env.alarms.rollback_metric_seconds != 60:
        # Enhanced metrics (MetricsConfig) are documented for instance-backed endpoints only.
        r.fail("must be 60 for a serverless endpoint", "alarms.rollback_metric_seconds")
    r.done()
    return env


def _branch(r: Reader) -> str:
    branch = r.typed("branch", str)
    return _checked(r, "branch", branch, branch_problem(branch))


def _tooling(r: Reader) -> ToolingConfig:
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


def parse_config(text: str, source: str) -> PlatformConfig:
    """Validate YAML text into a PlatformConfig; `source` names the file in errors."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}: {where}malformed YAML: {problem}") from None
    root = Reader(source, "", data)
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
    _one_logging_role_per_account_region(envs_reader, environments)
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


def _one_logging_role_per_account_region(
    envs_reader: Reader, environments: dict[str, EnvironmentConfig]
) -> None:
    """API Gateway has ONE CloudWatch logging role per account and region: two stages that
    both set it would overwrite each other (an account resolved at deploy time is skipped)."""
    managers: dict[tuple[str, str], str] = {}
    for name, environment in environments.items():
        if environment.serving.api_gateway_logging_role != "managed":
            continue
        for region in environment.regions:
            key = (environment.account, region)
            if FROM_CLI in key:
                continue
            if key in managers:
                envs_reader.fail(
                    f"managed here and in environment {managers[key]!r} for account "
                    f"{key[0]} region {key[1]}: API Gateway has one logging role per account "
                    "and region, so at most one of them may manage it (the other: existing)",
                    f"{name}.serving.api_gateway_logging_role",
                )
            managers[key] = name


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
