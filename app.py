#!/usr/bin/env python3
"""CDK entry point. The only place that reads the process environment.

MLOPS_CONFIG     path of the environments file (default config/environments.yaml)
MLOPS_RELEASES   path of the release manifest (default config/releases.yaml)
-c env=NAME      synthesize one environment only (e.g. sandbox, bound to your AWS identity)
-c training-only=true   only the training pipeline's stacks (what `mlops local run` reads)
MLOPS_VALIDATION_CACHE  where CDK's CloudFormation validation records each template's findings
                 (default .cache/cfn-validate; mlops/cfn_validation.py)
CDK_VALIDATION=false    (or `cdk synth --no-validation`) skips that validation, as in any CDK app
JSII_NODE        the node that runs aws-cdk-lib (default scripts/jsii-node; mlops/jsii_node.py)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlops.jsii_node import use_tuned_node

use_tuned_node(os.environ)  # before the first import of aws_cdk starts jsii's node

import aws_cdk as cdk  # noqa: E402

from mlops.app_builder import AppOptions, build_app, context_flag  # noqa: E402
from mlops.app_context import NO_NODE_STACK_TRACES  # noqa: E402
from mlops.cfn_validation import (  # noqa: E402
    add_cached_cfn_validation,
    start_engine_if_cold,
    validation_cache_dir,
)
from mlops.config import ConfigError, load_config  # noqa: E402
from mlops.nag import report_policy_violations  # noqa: E402
from mlops.release_manifest import ManifestError, load_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parent


def main() -> int:
    # CDK's default CloudFormation rules run through the cache (same plugin, same rules),
    # not built in: unchanged templates are not validated again on every synth. No node
    # stack traces: from Python they hold no user frame (mlops/app_context.py).
    app = cdk.App(builtin_cloud_formation_validation=False, context=dict(NO_NODE_STACK_TRACES))
    plugin = None
    try:
        platform = load_config(
            Path(os.environ.get("MLOPS_CONFIG", ROOT / "config/environments.yaml"))
        )
        releases = load_manifest(
            Path(os.environ.get("MLOPS_RELEASES", ROOT / "config/releases.yaml")),
            known_envs=platform.environments,
        )
        only = app.node.try_get_context("env")
        options = AppOptions(
            only_environment=None if only is None else str(only),  # -c env= is refused
            cli_account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            cli_region=os.environ.get("CDK_DEFAULT_REGION"),
            allow_prod_without_model=context_flag(
                "allow-prod-without-model", app.node.try_get_context("allow-prod-without-model")
            ),
            training_only=context_flag("training-only", app.node.try_get_context("training-only")),
        )
        validate = os.environ.get("CDK_VALIDATION") != "false"
        cache = validation_cache_dir(os.environ, ROOT)
        # A cold cache starts the engine before the constructs exist: see its docstring.
        build_app(
            app,
            platform,
            releases,
            options,
            before_constructs=(lambda: start_engine_if_cold(cache)) if validate else None,
        )
        plugin = add_cached_cfn_validation(app, cache) if validate else None
    except (ConfigError, ManifestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        assembly = app.synth()
    except RuntimeError as error:  # jsii raises policy-validation failures in-process
        if "ValidationFailed" not in str(error):
            raise
        print(f"error: {str(error).strip()}", file=sys.stderr)
        return 1
    crashed = {plugin.name: plugin.failure} if plugin is not None and plugin.failure else {}
    return report_policy_violations(Path(assembly.directory), also_unfinished=crashed)


if __name__ == "__main__":
    sys.exit(main())
