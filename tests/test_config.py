"""Configuration: the committed default loads; every class of mistake is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops.config import ConfigError, bind_cli_account, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = (ROOT / "config" / "environments.yaml").read_text()


def test_default_config_describes_the_example_organisation() -> None:
    config = parse_config(DEFAULT_TEXT, "environments.yaml")
    assert config.environment("dev").regions == ("us-east-1",)
    assert config.environment("staging").regions == ("us-east-1", "eu-west-1")
    assert config.environment("prod").regions == ("us-east-1", "eu-west-1", "ap-southeast-1")
    assert config.environment("prod").serving.min_capacity >= 2
    assert config.training_home.name == "dev"
    assert config.registry_of(config.environment("prod")).name == "dev"
    assert config.registry_of(config.environment("sandbox")).name == "sandbox"
    assert len({env.account for env in config.environments.values()}) == 4


def _mutated(edit) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(DEFAULT_TEXT)
    edit(data)
    return yaml.safe_dump(data, sort_keys=False)


BAD_CONFIGS = {
    "bad account id": (
        lambda d: d["environments"]["prod"].update(account="12345"),
        "environments.prod.account: must be a 12-digit AWS account id",
    ),
    "unquoted numeric account": (
        lambda d: d["environments"]["prod"].update(account=444444444444),
        "environments.prod.account: must be str, got int",
    ),
    "unknown region": (
        lambda d: d["environments"]["staging"].update(regions=["us-east-1", "mars-north-1"]),
        "environments.staging.regions: unknown region 'mars-north-1' (allowed: us-east-1",
    ),
    "unknown instance type family": (
        lambda d: d["environments"]["dev"]["serving"].update(instance_type="ml.z9.large"),
        "environments.dev.serving.instance_type: unknown instance type family in 'ml.z9.large'",
    ),
    "min greater than max": (
        lambda d: d["environments"]["prod"]["serving"].update(min_capacity=12),
        "environments.prod.serving.min_capacity: min_capacity (12) must not exceed max_capacity",
    ),
    "missing field": (
        lambda d: d["environments"]["prod"].pop("alarms"),
        "environments.prod.alarms: missing required field",
    ),
    "unknown field": (
        lambda d: d["environments"]["prod"]["serving"].update(instance_typo="ml.m5.large"),
        "environments.prod.serving: unknown field 'instance_typo' (allowed:",
    ),
    "wrong type": (
        lambda d: d["environments"]["dev"]["training"].update(auc_threshold="high"),
        "environments.dev.training.auc_threshold: must be float, got str",
    ),
    "boolean where a number is expected": (
        lambda d: d["environments"]["dev"]["serving"].update(max_capacity=True),
        "environments.dev.serving.max_capacity: must be int, got bool",
    ),
    "empty regions": (
        lambda d: d["environments"]["dev"].update(regions=[]),
        "environments.dev.regions: must list at least one region",
    ),
    "unknown deployment strategy": (
        lambda d: d["environments"]["prod"]["deployment"].update(strategy="all-at-once"),
        "environments.prod.deployment.strategy: must be one of canary, linear; got 'all-at-once'",
    ),
    "bad step cache duration": (
        lambda d: d["environments"]["dev"]["training"].update(step_cache="30 days"),
        "environments.dev.training.step_cache: must be an ISO 8601 duration such as P30D, or null",
    ),
    "cron drift schedule": (
        lambda d: d["environments"]["prod"]["drift"].update(schedule="cron(0 * * * ? *)"),
        "environments.prod.drift.schedule: must be an EventBridge rate(N unit) expression",
    ),
    "drift alarm needing more datapoints than periods": (
        lambda d: d["environments"]["prod"]["drift"].update(
            alarm={
                "metric": "DriftScore",
                "threshold": 0.2,
                "datapoints_to_alarm": 3,
                "evaluation_periods": 2,
            }
        ),
        "environments.prod.drift.alarm.datapoints_to_alarm: datapoints_to_alarm (3) must not "
        "exceed evaluation_periods (2)",
    ),
    "unknown drift alarm metric": (
        lambda d: d["environments"]["prod"]["drift"].update(alarm={"metric": "MaxPSI"}),
        "environments.prod.drift.alarm.metric: must be one of DriftScore, DriftedFeatureCount, "
        "OutOfRangeShare, ModelAUC; got 'MaxPSI'",
    ),
    "margin beyond 0.2": (
        lambda d: d["environments"]["dev"]["training"].update(non_inferiority_margin=0.3),
        "environments.dev.training.non_inferiority_margin: must be between 0 and 0.2, got 0.3",
    ),
    # Join minimums: a fraction in (0, 1]; just outside on both sides and the open edge.
    "plane minimum 0 (checks nothing)": (
        lambda d: d["environments"]["dev"]["training"].update(min_plane_match=0),
        "environments.dev.training.min_plane_match: must be a fraction greater than 0 and at "
        "most 1 (e.g. 0.9 = 90%), got 0",
    ),
    "plane minimum just below 0": (
        lambda d: d["environments"]["dev"]["training"].update(min_plane_match=-0.01),
        "environments.dev.training.min_plane_match: must be a fraction greater than 0 and at "
        "most 1 (e.g. 0.9 = 90%), got -0.01",
    ),
    "weather minimum just above 1": (
        lambda d: d["environments"]["sandbox"]["training"].update(min_weather_match=1.01),
        "environments.sandbox.training.min_weather_match: must be a fraction greater than 0 "
        "and at most 1 (e.g. 0.9 = 90%), got 1.01",
    ),
    "weather minimum as a percentage": (
        lambda d: d["environments"]["dev"]["training"].update(min_weather_match=90),
        "environments.dev.training.min_weather_match: must be a fraction greater than 0 and "
        "at most 1 (e.g. 0.9 = 90%), got 90",
    ),
    "weather minimum as text": (
        lambda d: d["environments"]["dev"]["training"].update(min_weather_match="90%"),
        "environments.dev.training.min_weather_match: must be float, got str",
    ),
    "zero-week test window": (
        lambda d: d["environments"]["dev"]["training"].update(test_weeks=0),
        "environments.dev.training.test_weeks: must be between 1 and 52, got 0",
    ),
    "training environment without training": (
        lambda d: d.update(training_environment="prod"),
        "training_environment: environment 'prod' has no training section",
    ),
    # What the services would refuse at deploy time (mlops/config_rules.py, issue #12).
    "cron hour 25": (
        lambda d: d["environments"]["dev"]["training"].update(schedule="cron(0 25 * * ? *)"),
        "environments.dev.training.schedule: hours must be 0-23",
    ),
    "rate 0 days": (
        lambda d: d["environments"]["dev"]["training"].update(schedule="rate(0 days)"),
        "environments.dev.training.schedule: the rate must be at least 1",
    ),
    "rate 1 days": (
        lambda d: d["environments"]["dev"]["training"].update(schedule="rate(1 days)"),
        "environments.dev.training.schedule: rate(1 days) must be written rate(1 day)",
    ),
    "drift rate 0 hours": (
        lambda d: d["environments"]["prod"]["drift"].update(schedule="rate(0 hours)"),
        "environments.prod.drift.schedule: the rate must be at least 1",
    ),
    "empty branch": (
        lambda d: d["tooling"].update(branch=""),
        "tooling.branch: must name a branch",
    ),
    "xn-- project": (
        lambda d: d.update(project="xn--flights"),
        "project: must not start with 'xn--' (reserved by S3 for bucket names)",
    ),
    "environment name ending in a dash": (
        lambda d: d["environments"].update({"qa-": d["environments"]["staging"]}),
        "environments.qa-: environment name 'qa-': must not end with '-'",
    ),
    "unknown api gateway logging role mode": (
        lambda d: d["environments"]["prod"]["serving"].update(api_gateway_logging_role="yes"),
        "environments.prod.serving.api_gateway_logging_role: must be one of existing, managed; "
        "got 'yes'",
    ),
    "two stages manage one account's api gateway logging role": (
        lambda d: (
            d["environments"]["prod"].update(account="333333333333"),
            d["environments"]["staging"]["serving"].update(api_gateway_logging_role="managed"),
            d["environments"]["prod"]["serving"].update(api_gateway_logging_role="managed"),
        ),
        "environments.prod.serving.api_gateway_logging_role: managed here and in environment "
        "'staging' for account 333333333333 region us-east-1",
    ),
    "tag value with #": (
        lambda d: d.update(cost_centre="ml#1"),
        "cost_centre: character '#' is not allowed in a tag value",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_naming_file_field_and_allowed(case: str) -> None:
    edit, expected = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as error:
        parse_config(_mutated(edit), "cfg.yaml")
    message = str(error.value)
    assert message.startswith("cfg.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_duplicate_environment_names_are_refused() -> None:
    text = DEFAULT_TEXT.replace("  staging:\n", "  dev:\n", 1)
    with pytest.raises(ConfigError, match=r"cfg.yaml: line \d+: duplicate key 'dev'"):
        parse_config(text, "cfg.yaml")


def test_malformed_yaml_names_line_and_column() -> None:
    with pytest.raises(
        ConfigError, match=r"cfg.yaml: line \d+, column \d+: malformed YAML: expected"
    ):
        parse_config("project: x\nenvironments:\n  dev: [unclosed\n", "cfg.yaml")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(
        ConfigError, match=r"cfg.yaml: \(top level\): must be a mapping, got a list"
    ):
        parse_config("- a\n- b\n", "cfg.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "nope.yaml")


def test_sandbox_binds_to_the_cli_identity() -> None:
    sandbox = parse_config(DEFAULT_TEXT, "x").environment("sandbox")
    bound = bind_cli_account(sandbox, "123456789012", "eu-west-1")
    assert (bound.account, bound.regions) == ("123456789012", ("eu-west-1",))
    with pytest.raises(ConfigError, match="set CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION"):
        bind_cli_account(sandbox, None, None)


def _run_app(config_path: Path, *extra_context: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDK_")}
    env["MLOPS_CONFIG"] = str(config_path)
    env["CDK_OUTDIR"] = str(config_path.parent / "cdk.out")
    return subprocess.run(
        [sys.executable, "app.py", *extra_context],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_app_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "environments.yaml"
    bad.write_text(_mutated(lambda d: d["environments"]["prod"].update(regions=[])))
    result = _run_app(bad)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: {bad}: environments.prod.regions: must list at least one region "
        "(the first is the home region)"
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_the_api_gateway_logging_role_is_left_alone_unless_a_stage_manages_it() -> None:
    config = parse_config(DEFAULT_TEXT, "environments.yaml")
    assert config.environment("dev").serving.api_gateway_logging_role == "managed"
    # Not given: the safe default keeps the account's own setting.
    assert config.environment("prod").serving.api_gateway_logging_role == "existing"


def test_one_stage_per_account_and_region_may_manage_the_logging_role() -> None:
    """The other side of the refusal above: one manager per account and region is fine, and
    so are managers in different accounts."""

    def managed(*names: str, prod_account: str):  # type: ignore[no-untyped-def]
        def edit(d: dict) -> None:  # type: ignore[type-arg]
            d["environments"]["prod"]["account"] = prod_account
            for name in names:
                d["environments"][name]["serving"]["api_gateway_logging_role"] = "managed"

        return edit

    one = parse_config(_mutated(managed("staging", prod_account="333333333333")), "cfg.yaml")
    assert one.environment("prod").account == "333333333333"
    both = parse_config(
        _mutated(managed("staging", "prod", prod_account="444444444444")), "cfg.yaml"
    )
    assert both.environment("prod").serving.api_gateway_logging_role == "managed"


def test_window_margin_and_drift_alarm_default_and_override() -> None:
    config = parse_config(DEFAULT_TEXT, "environments.yaml")
    training = config.environment("dev").training
    assert training is not None
    assert (training.test_weeks, training.validation_weeks, training.train_months) == (4, 4, 6)
    assert training.non_inferiority_margin == 0.025
    # The calibrated default (prod gives none) and staging's explicit copy of it.
    for name in ("staging", "prod"):
        alarm = config.environment(name).drift.alarm
        assert (alarm.metric, alarm.threshold) == ("ModelAUC", 0.70)
        assert (alarm.datapoints_to_alarm, alarm.evaluation_periods) == (5, 7)
        assert alarm.comparison == "LessThanThreshold"  # a low AUC is the bad side

    def psi_alarm(d: dict) -> None:  # type: ignore[type-arg]
        d["environments"]["prod"]["drift"]["alarm"] = {
            "metric": "DriftScore", "threshold": 2.0, "datapoints_to_alarm": 3,
            "evaluation_periods": 3,
        }  # fmt: skip

    prod = parse_config(_mutated(psi_alarm), "cfg.yaml").environment("prod").drift.alarm
    assert (prod.metric, prod.threshold, prod.datapoints_to_alarm) == ("DriftScore", 2.0, 3)
    assert prod.comparison == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("value", [1, 1.0, 0.001])
def test_join_minimums_at_the_edges_are_accepted(value: float) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["environments"]["dev"]["training"].update(min_weather_match=value, min_plane_match=value)

    training = parse_config(_mutated(edit), "cfg.yaml").environment("dev").training
    assert training is not None
    assert (training.min_weather_match, training.min_plane_match) == (value, value)


def test_join_minimums_come_from_the_file_or_default_to_the_measured_ones() -> None:
    config = parse_config(DEFAULT_TEXT, "environments.yaml")
    for name in ("dev", "sandbox"):
        training = config.environment(name).training
        assert training is not None
        assert (training.min_weather_match, training.min_plane_match) == (0.9, 0.7)

    def strict(d: dict) -> None:  # type: ignore[type-arg]
        d["environments"]["dev"]["training"].update(min_plane_match=0.95)
        del d["environments"]["dev"]["training"]["min_weather_match"]

    training = parse_config(_mutated(strict), "cfg.yaml").environment("dev").training
    assert training is not None
    assert (training.min_weather_match, training.min_plane_match) == (0.9, 0.95)
