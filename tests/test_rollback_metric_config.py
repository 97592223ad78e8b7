"""alarms.rollback_metric_seconds: 10 or 60, and 60 for a serverless endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config" / "environments.yaml").read_text())


def _parse(env: str, **alarms: object) -> int:
    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    data["environments"][env]["alarms"].update(alarms)
    config = parse_config(yaml.safe_dump(data, sort_keys=False), "cfg.yaml")
    return config.environment(env).alarms.rollback_metric_seconds


def test_the_default_is_one_minute_and_staging_and_prod_ask_for_ten_seconds() -> None:
    data = yaml.safe_load(yaml.safe_dump(DEFAULT))
    data["environments"]["staging"]["alarms"].pop("rollback_metric_seconds", None)
    config = parse_config(yaml.safe_dump(data, sort_keys=False), "cfg.yaml")
    assert config.environment("staging").alarms.rollback_metric_seconds == 60
    assert _parse("staging") == 10  # the example config sets it, as for prod
    assert config.environment("prod").alarms.rollback_metric_seconds == 10


@pytest.mark.parametrize("seconds", [10, 60])
def test_ten_and_sixty_are_allowed(seconds: int) -> None:
    assert _parse("staging", rollback_metric_seconds=seconds) == seconds


@pytest.mark.parametrize("seconds", [9, 11, 30, 59, 61, 120])
def test_other_periods_are_refused_with_the_allowed_ones(seconds: int) -> None:
    with pytest.raises(ConfigError) as error:
        _parse("staging", rollback_metric_seconds=seconds)
    assert str(error.value) == (
        "cfg.yaml: environments.staging.alarms.rollback_metric_seconds: "
        f"must be one of 10, 60, got {seconds}"
    )


def test_a_serverless_endpoint_keeps_one_minute_metrics() -> None:
    """dev serves serverless: enhanced metrics are documented for instance endpoints only."""
    assert _parse("dev", rollback_metric_seconds=60) == 60
    with pytest.raises(ConfigError, match=r"dev\.alarms\.rollback_metric_seconds: must be 60"):
        _parse("dev", rollback_metric_seconds=10)
