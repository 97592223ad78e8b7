"""Builds the whole CDK app from validated configuration (no environment reads here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import aws_cdk as cdk

from mlops.config import FROM_CLI, ConfigError, EnvironmentConfig, PlatformConfig, bind_cli_account
from mlops.nag import add_rule_packs
from mlops.naming import model_package_group_name
from mlops.release_manifest import RegistryHub, ReleaseManifest, check_release_sources
from mlops.stacks.delivery_stack import DeliveryStack
from mlops.stacks.stage import PlatformStage, is_training_hub

PROTECTED_ENVIRONMENTS = ("prod",)


@dataclass(frozen=True, kw_only=True)
class AppOptions:
    """What the caller (app.py, tests) decided: which environment, the CLI identity."""

    only_environment: str | None = None
    cli_account: str | None = None
    cli_region: str | None = None
    # Serving nothing in prod deletes its endpoints: only with -c allow-prod-without-model=true.
    allow_prod_without_model: bool = False
    with_delivery_pipeline: bool = True
    # -c training-only=true: only the stages with a training pipeline, each without its
    # serving and monitoring stacks (what `mlops local run` reads), and no delivery pipeline.
    training_only: bool = False


def context_flag(name: str, value: object) -> bool:
    """A `-c NAME=true|false` switch (cdk.json may hold a JSON boolean); absent is false.
    Anything else is refused: `-c training-only=yes` must not quietly mean false."""
    if value is None or value is False or value == "false":
        return False
    if value is True or value == "true":
        return True
    raise ConfigError(f"-c {name}={value}: must be true or false")


def resolve_platform(platform: PlatformConfig, options: AppOptions) -> PlatformConfig:
    """Bind a selected `from-cli` environment to the CLI identity; drop unbound ones."""
    if (
        options.only_environment is not None
        and options.only_environment not in platform.environments
    ):
        raise ConfigError(
            f"-c env={options.only_environment}: unknown environment "
            f"(allowed: {', '.join(platform.environments)})"
        )
    environments: dict[str, EnvironmentConfig] = {}
    for name, env in platform.environments.items():
        if env.account == FROM_CLI:
            if name != options.only_environment:
                continue  # no fixed account: only built when asked for by name
            env = bind_cli_account(env, options.cli_account, options.cli_region)
        environments[name] = env
    return replace(platform, environments=environments)


def registry_hub(platform: PlatformConfig, env: EnvironmentConfig) -> RegistryHub:
    hub = platform.registry_of(env)
    return RegistryHub(
        name=hub.name,
        account=hub.account,
        region=hub.home_region,
        group=model_package_group_name(platform, hub),
    )


def check_releases(
    platform: PlatformConfig, releases: ReleaseManifest, options: AppOptions
) -> None:
    for env in platform.environments.values():
        check_release_sources(releases, env.name, registry_hub(platform, env))
    if options.allow_prod_without_model:
        return
    for name in PROTECTED_ENVIRONMENTS:
        if name in platform.environments and releases.get(name).current is None:
            raise ConfigError(
                f"{releases.path}: {name}.current: no model pinned, which removes the {name} "
                "endpoints; pin a version with `mlops promote`, or synth with "
                "-c allow-prod-without-model=true to remove them on purpose"
            )


def build_app(
    app: cdk.App,
    platform: PlatformConfig,
    releases: ReleaseManifest,
    options: AppOptions,
    before_constructs: Callable[[], object] | None = None,
) -> list[PlatformStage]:
    """The app's stages (and the delivery stack); before_constructs runs once the
    configuration has passed its checks, before the first construct is built."""
    platform = resolve_platform(platform, options)
    check_releases(platform, releases, options)
    if before_constructs is not None:
        before_constructs()
    selected = [
        env
        for env in platform.environments.values()
        if options.only_environment in (None, env.name)
    ]
    add_rule_packs(app)
    stages = [
        PlatformStage(
            app,
            platform=platform,
            environment=environment,
            region=region,
            release=releases.get(environment.name),
            training_only=options.training_only,
        )
        for environment in selected
        for region in environment.regions
        if not options.training_only or is_training_hub(environment, region)
    ]
    if (
        options.with_delivery_pipeline
        and options.only_environment is None
        and not options.training_only
    ):
        waves = [
            (env, [stage for stage in stages if stage.environment_name == env.name])
            for env in selected
        ]
        DeliveryStack(
            app,
            "Delivery",
            platform=platform,
            waves=waves,
            env=cdk.Environment(account=platform.tooling.account, region=platform.tooling.region),
        )
    return stages
