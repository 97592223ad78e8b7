"""Builds the whole CDK app from a validated configuration (no environment reads here)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from mlops.config import ConfigError, EnvironmentConfig, PlatformConfig, bind_cli_account
from mlops.nag import add_rule_packs
from mlops.stacks.stage import PlatformStage


@dataclass(frozen=True, kw_only=True)
class AppOptions:
    """What the caller (app.py, tests) decided: which environment, the CLI identity."""

    only_environment: str | None = None
    cli_account: str | None = None
    cli_region: str | None = None


def selected_environments(platform: PlatformConfig, options: AppOptions) -> list[EnvironmentConfig]:
    """All pipeline-managed environments, or one when asked (`-c env=NAME`).

    Environments bound to the CLI identity (sandbox) are only built when asked for by name:
    they have no fixed account, so the delivery pipeline cannot deploy them.
    """
    if options.only_environment is not None:
        if options.only_environment not in platform.environments:
            raise ConfigError(
                f"-c env={options.only_environment}: unknown environment "
                f"(allowed: {', '.join(platform.environments)})"
            )
        env = platform.environments[options.only_environment]
        return [bind_cli_account(env, options.cli_account, options.cli_region)]
    return [env for env in platform.environments.values() if env.account != "from-cli"]


def build_app(app: cdk.App, platform: PlatformConfig, options: AppOptions) -> list[PlatformStage]:
    environments = selected_environments(platform, options)
    add_rule_packs(app)
    stages = []
    for environment in environments:
        for region in environment.regions:
            stages.append(
                PlatformStage(app, platform=platform, environment=environment, region=region)
            )
    return stages
