"""Typed, validated platform configuration (config/environments.yaml).

Bad configuration is refused before any construct is built: `load_config` raises ConfigError
whose message is one line naming the file, the field and what is allowed; app.py prints it
and exits 2.

    limits.py   what configuration may name (regions, instance types, drift metrics)
    model.py    the typed configuration (PlatformConfig, EnvironmentConfig, ...)
    reader.py   the YAML reader: dotted field paths for errors, no duplicate keys
    parse.py    environments.yaml -> PlatformConfig, one parser per section
"""

from mlops.config.limits import (
    DRIFT_ALARM_METRICS,
    FROM_CLI,
    INSTANCE_STORE_FAMILIES,
    ISO_DURATION,
    KNOWN_INSTANCE_FAMILIES,
    KNOWN_REGIONS,
    ROLLBACK_METRIC_SECONDS,
    SERVERLESS_MEMORY_MB,
    VCPUS_BY_SIZE,
)
from mlops.config.model import (
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
from mlops.config.parse import bind_cli_account, load_config, parse_config

__all__ = [
    "DEFAULT_DRIFT_ALARM",
    "DEFAULT_MIN_PLANE_MATCH",
    "DEFAULT_MIN_WEATHER_MATCH",
    "DEFAULT_NON_INFERIORITY_MARGIN",
    "DRIFT_ALARM_METRICS",
    "FROM_CLI",
    "INSTANCE_STORE_FAMILIES",
    "ISO_DURATION",
    "KNOWN_INSTANCE_FAMILIES",
    "KNOWN_REGIONS",
    "ROLLBACK_METRIC_SECONDS",
    "SERVERLESS_MEMORY_MB",
    "VCPUS_BY_SIZE",
    "AlarmConfig",
    "ConfigError",
    "DeploymentConfig",
    "DriftAlarmConfig",
    "DriftConfig",
    "EnvironmentConfig",
    "InstanceType",
    "PlatformConfig",
    "RoutingConfig",
    "ServingConfig",
    "ToolingConfig",
    "TrainingConfig",
    "bind_cli_account",
    "load_config",
    "parse_config",
]
