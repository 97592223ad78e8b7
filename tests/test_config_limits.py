"""Every numeric and shape rule of config/environments.yaml at its exact limit: the limit
itself is accepted, one step beyond it is refused with the field named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.config import ConfigError, PlatformConfig, parse_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config" / "environments.yaml").read_text())


def _parse(edit: Callable[[dict[str, Any]], None]) -> PlatformConfig:
    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    edit(data)
    return parse_config(yaml.safe_dump(data, sort_keys=False), "environments.yaml")


def _set(section: str, field: str, value: Any, **also: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["dev"][section].update({field: value, **also})

    return edit


# (section, field, lowest allowed, highest allowed, one step, other fields the edge needs)
LIMITS: list[tuple[str, str, float, float, float, dict[str, Any]]] = [
    ("training", "auc_threshold", 0.5, 1.0, 1e-9, {}),
    ("serving", "min_capacity", 1, 100, 1, {"max_capacity": 100}),
    ("serving", "max_capacity", 1, 100, 1, {"min_capacity": 1}),
    ("serving", "invocations_per_instance_target", 1, 100_000, 1, {}),
    ("serving", "serverless_max_concurrency", 1, 200, 1, {}),
    ("deployment", "canary_percent", 1, 50, 1, {}),
    ("deployment", "linear_step_percent", 10, 50, 1, {}),
    ("deployment", "bake_minutes", 1, 60, 1, {}),
    ("alarms", "latency_p99_ms", 1, 60_000, 1, {}),
    ("alarms", "error_rate_5xx", 0.0001, 1.0, 1e-9, {}),
    ("alarms", "min_invocations_per_minute", 0, 1_000_000, 1, {}),
    ("drift", "psi_threshold", 0.01, 5.0, 1e-9, {}),
    ("drift", "retrain_min_hours", 1, 24 * 90, 1, {}),
]
IDS = [f"{section}.{field}" for section, field, *_ in LIMITS]


def _value(config: PlatformConfig, section: str, field: str) -> Any:
    return getattr(getattr(config.environment("dev"), section), field)


@pytest.mark.parametrize(("section", "field", "low", "high", "step", "also"), LIMITS, ids=IDS)
def test_each_limit_is_allowed(section, field, low, high, step, also) -> None:
    for edge in (low, high):
        assert _value(_parse(_set(section, field, edge, **also)), section, field) == edge


@pytest.mark.parametrize(("section", "field", "low", "high", "step", "also"), LIMITS, ids=IDS)
def test_one_step_beyond_each_limit_is_refused(section, field, low, high, step, also) -> None:
    for beyond in (low - step, high + step):
        with pytest.raises(ConfigError) as error:
            _parse(_set(section, field, beyond, **also))
        message = str(error.value)
        assert f"environments.dev.{section}.{field}: must be between" in message
        assert message.count("\n") == 0


def test_equal_min_and_max_capacity_is_allowed_and_min_above_max_is_refused() -> None:
    assert (
        _parse(_set("serving", "min_capacity", 3, max_capacity=3))
        .environment("dev")
        .serving.min_capacity
        == 3
    )
    with pytest.raises(ConfigError, match=r"min_capacity \(4\) must not exceed max_capacity \(3\)"):
        _parse(_set("serving", "min_capacity", 4, max_capacity=3))


@pytest.mark.parametrize(("memory", "allowed"), [(1024, True), (6144, True), (1023, False),
                                                 (7168, False), (2000, False)])  # fmt: skip
def test_serverless_memory_is_one_of_the_sagemaker_sizes(memory: int, allowed: bool) -> None:
    edit = _set("serving", "serverless_memory_mb", memory)
    if allowed:
        assert _parse(edit).environment("dev").serving.serverless_memory_mb == memory
    else:
        with pytest.raises(ConfigError, match="serverless_memory_mb: must be one of 1024, 2048"):
            _parse(edit)


def _rename_dev(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["environments"][name] = data["environments"].pop("dev")
        data["training_environment"] = name

    return edit


@pytest.mark.parametrize(
    ("name", "allowed"),
    [("ab", True), ("a" * 20, True), ("a", False), ("a" * 21, False), ("a-9", True),
     ("9a", False), ("Ab", False), ("a_b", False)],
)  # fmt: skip
def test_environment_names_are_2_to_20_lowercase_characters(name: str, allowed: bool) -> None:
    if allowed:
        assert name in _parse(_rename_dev(name)).environments
    else:
        with pytest.raises(
            ConfigError, match=r"environment name .*: lowercase letters, digits and dashes \(2-20\)"
        ):
            _parse(_rename_dev(name))


@pytest.mark.parametrize(
    ("account", "allowed"), [("1" * 12, True), ("1" * 11, False), ("1" * 13, False),
                             ("12345678901a", False)],
)  # fmt: skip
def test_accounts_are_exactly_12_digits(account: str, allowed: bool) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["dev"]["account"] = account

    if allowed:
        assert _parse(edit).environment("dev").account == account
    else:
        with pytest.raises(ConfigError, match=r"environments\.dev\.account: must be a 12-digit"):
            _parse(edit)


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ([], "must list at least one region"),
        (["us-east-1", "us-east-1"], "lists a region twice"),
        (["us-east-1", "mars-north-1"], "unknown region 'mars-north-1'"),
    ],
)
def test_region_lists_need_one_known_region_each_once(regions: list[str], message: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["dev"]["regions"] = regions

    with pytest.raises(ConfigError, match=message):
        _parse(edit)


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ("ml.m5.large", None),
        ("ml.m5.24xlarge", None),
        ("ml.x9.large", "unknown instance type family"),
        ("ml.m5.huge", "unknown instance size"),
        ("m5.large", "unknown instance type family"),
    ],
)
def test_instance_types_need_a_known_family_and_size(instance: str, message: str | None) -> None:
    edit = _set("serving", "instance_type", instance)
    if message is None:
        assert _parse(edit).environment("dev").serving.instance_type.name == instance
    else:
        with pytest.raises(ConfigError, match=message):
            _parse(edit)


@pytest.mark.parametrize(
    ("schedule", "allowed"),
    [("rate(1 day)", True), ("rate(12 hours)", True), ("cron(0 3 * * ? *)", False),
     ("rate(1 week)", False), ("rate(day)", False)],
)  # fmt: skip
def test_the_drift_schedule_must_be_a_rate(schedule: str, allowed: bool) -> None:
    edit = _set("drift", "schedule", schedule)
    if allowed:
        assert _parse(edit).environment("dev").drift.schedule == schedule
    else:
        with pytest.raises(ConfigError, match=r"drift\.schedule: must be an EventBridge rate"):
            _parse(edit)


@pytest.mark.parametrize(("value", "allowed"), [(True, True), (1, False), ("yes", False)])
def test_booleans_are_refused_as_numbers_and_numbers_as_booleans(value: Any, allowed: bool) -> None:
    edit = _set("training", "use_spot", value)
    if allowed:
        assert _parse(edit).environment("dev").training.use_spot is True  # type: ignore[union-attr]
    else:
        with pytest.raises(ConfigError, match=r"training\.use_spot: must be bool"):
            _parse(edit)
    with pytest.raises(ConfigError, match="bake_minutes: must be int, got bool"):
        _parse(_set("deployment", "bake_minutes", True))
