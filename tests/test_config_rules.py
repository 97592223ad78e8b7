"""What the services accept (mlops/config_rules.py), each rule on both sides of its limit.
The same rules reached through the configuration file: test_config.py's BAD_CONFIGS."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config import ConfigError, load_config, parse_config
from mlops.config_rules import (
    TAG_VALUE_MAX,
    branch_problem,
    cron_problem,
    fraction_problem,
    name_problem,
    rate_problem,
    schedule_problem,
    tag_value_problem,
)
from mlops.release_manifest import ManifestError, load_manifest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = (ROOT / "config" / "environments.yaml").read_text()


@pytest.mark.parametrize(
    "good", ["rate(1 minute)", "rate(1 hour)", "rate(1 day)", "rate(2 days)", "rate(5 minutes)"]
)
def test_rates_aws_accepts(good: str) -> None:
    assert rate_problem(good) is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("rate(0 days)", "at least 1, got 0"),
        ("rate(0 day)", "at least 1, got 0"),
        ("rate(1 days)", "rate(1 day)"),  # the case: plural for 1
        ("rate(2 day)", "rate(2 days)"),
        ("rate(1 weeks)", "not one of minute(s)"),
        ("rate(-1 days)", "rate(N unit)"),
        ("rate(1.5 hours)", "rate(N unit)"),
    ],
)
def test_rates_aws_refuses(bad: str, says: str) -> None:
    problem = rate_problem(bad)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    "good",
    [
        "cron(0 12 * * ? *)",
        "cron(59 23 31 12 ? 2199)",  # every field at its upper limit
        "cron(0 0 1 1 ? 1970)",  # and at its lower limit
        "cron(0/15 8-17 ? * MON-FRI *)",
        "cron(0 10 ? * 6L 2026)",
        "cron(0 10 ? * 2#3 *)",
        "cron(0 10 L * ? *)",
        "cron(0 10 15W JAN,JUL ? *)",
        "cron(0 10 ? * 1-7 *)",
    ],
)
def test_crons_aws_accepts(good: str) -> None:
    assert cron_problem(good) is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("cron(0 25 * * ? *)", "hours must be 0-23"),  # the case
        ("cron(60 0 * * ? *)", "minutes must be 0-59"),
        ("cron(0 0 32 * ? *)", "day-of-month must be 1-31"),
        ("cron(0 0 0 * ? *)", "day-of-month must be 1-31"),
        ("cron(0 0 * 13 ? *)", "month must be 1-12"),
        ("cron(0 0 ? * 8 *)", "day-of-week must be 1-7"),
        ("cron(0 0 ? * 0 *)", "day-of-week must be 1-7"),
        ("cron(0 0 * * ? 2200)", "year must be 1970-2199"),
        ("cron(0 0 * * ? 1969)", "year must be 1970-2199"),
        ("cron(0 0 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 0 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 0 * * ?)", "6 fields"),
        ("cron(? 0 * * ? *)", "'?' is not allowed in minutes"),
        ("cron(0/0 0 * * ? *)", "step '0' must be a positive integer"),
        ("cron(0 0 ? * 2#6 *)", "#1-#5"),
    ],
)
def test_crons_aws_refuses(bad: str, says: str) -> None:
    problem = cron_problem(bad)
    assert problem is not None and says in problem


def test_schedule_dispatches_on_the_kind() -> None:
    assert schedule_problem("rate(7 days)") is None
    assert schedule_problem("cron(0 3 ? * SUN *)") is None
    assert schedule_problem("cron(0 24 ? * SUN *)") is not None


@pytest.mark.parametrize(
    "good", ["ab", "flightdelay", "a" * 20, "x-1", "xn-a", "x--n", "sthree", "amzn-s3-demo"]
)
def test_names_aws_accepts(good: str) -> None:
    assert name_problem(good) is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("a", "(2-20)"),
        ("a" * 21, "(2-20)"),
        ("prod-", "must not end with '-'"),
        ("xn--abc", "must not start with 'xn--'"),
        ("sthree-ml", "must not start with 'sthree-'"),
        ("amzn-s3-demo-x", "must not start with 'amzn-s3-demo-'"),
        ("1abc", "starting with a letter"),
        ("Prod", "lowercase"),
    ],
)
def test_names_aws_refuses(bad: str, says: str) -> None:
    problem = name_problem(bad)
    assert problem is not None and says in problem


def test_tag_values() -> None:
    assert tag_value_problem("ml-platform: Ops/2026 = é+@_.") is None
    assert tag_value_problem("") is None
    assert tag_value_problem("x" * TAG_VALUE_MAX) is None
    assert "at most 256" in (tag_value_problem("x" * (TAG_VALUE_MAX + 1)) or "")
    assert "'#'" in (tag_value_problem("team#1") or "")
    assert "'!'" in (tag_value_problem("ops!") or "")


@pytest.mark.parametrize("good", ["main", "release/2026.11", "feature-x_1"])
def test_branches_accepted(good: str) -> None:
    assert branch_problem(good) is None


@pytest.mark.parametrize(
    "bad", ["", "   ", "my branch", "a..b", "-x", "x/", "x.lock", "a:b", "a\tb", "x."]
)
def test_branches_refused(bad: str) -> None:
    assert branch_problem(bad) is not None


# --- through the configuration file -----------------------------------------------------


def test_the_limits_themselves_are_accepted_in_the_file() -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["environments"]["dev"]["training"]["schedule"] = "cron(59 23 ? * 7 2199)"
        d["environments"]["prod"]["drift"]["schedule"] = "rate(1 hour)"
        d["tooling"]["branch"] = "m"
        d["cost_centre"] = "x" * TAG_VALUE_MAX

    data = yaml.safe_load(DEFAULT_TEXT)
    edit(data)
    parse_config(yaml.safe_dump(data, sort_keys=False), "environments.yaml")


def test_non_utf8_files_are_one_line_errors(tmp_path: Path) -> None:
    config = tmp_path / "environments.yaml"
    config.write_bytes(
        DEFAULT_TEXT.replace("cost_centre:", "# caf\xe9\ncost_centre:").encode("latin-1")
    )
    with pytest.raises(ConfigError, match=r"environments\.yaml: not UTF-8 text \(byte 0xe9"):
        load_config(config)
    releases = tmp_path / "releases.yaml"
    releases.write_bytes(b"# \xff\xfe\n{}\n")
    with pytest.raises(ManifestError, match=r"releases\.yaml: not UTF-8 text \(byte 0xff"):
        load_manifest(releases, ("dev",))


@pytest.mark.parametrize("good", [1.0, 0.999, 0.7, 1e-9])
def test_fractions_in_0_exclusive_to_1(good: float) -> None:
    assert fraction_problem(good) is None


@pytest.mark.parametrize("bad", [0.0, -1e-9, 1.000001, float("nan"), float("inf")])
def test_fractions_outside_are_refused(bad: float) -> None:
    problem = fraction_problem(bad)
    assert problem is not None and problem.startswith("must be a fraction greater than 0")
