"""Shared fixtures: one synthesized app per test session, built like `cdk synth` builds it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.jsii_node import use_tuned_node

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# Nothing in tests may reach AWS: fake credentials make an accidental call fail fast.
for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
):
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
# The node app.py runs aws-cdk-lib with (scripts/jsii-node), before anything imports aws_cdk.
use_tuned_node(os.environ)

import aws_cdk as cdk  # noqa: E402
from clock_guard import (  # noqa: E402, F401  (the future-clock guard's hooks)
    pytest_addoption,
    pytest_configure,
    pytest_report_header,
    pytest_unconfigure,
)

from mlops.app_builder import AppOptions, build_app  # noqa: E402
from mlops.app_context import NO_NODE_STACK_TRACES  # noqa: E402
from mlops.config import PlatformConfig, load_config  # noqa: E402
from mlops.release_manifest import ReleaseManifest, load_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "environments.yaml"


def cdk_json_context() -> dict[str, object]:
    """What `cdk synth` passes: cdk.json's feature flags (`python app.py` alone would not
    read them) and the CLI's own defaults, so tests see the templates the CLI writes."""
    context = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    context.update({"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True})
    return context


def run_dev_training_app(
    args: list[str], tmp_path: Path, context: dict[str, object] | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run app.py (or a variant given by args) from the repo root as `cdk synth -c env=dev
    -c training-only=true` would (plus `context`): cdk.json's context, the assembly in
    tmp_path/cdk.out, the validation cache in tmp_path/validation-cache (never the
    checkout's), none of the caller's MLOPS_/CDK_ variables but `extra`."""
    cdk_json = json.loads((ROOT / "cdk.json").read_text())["context"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "CDK_"))}
    env.update(
        CDK_OUTDIR=str(tmp_path / "cdk.out"),
        CDK_CONTEXT_JSON=json.dumps(
            {**cdk_json, "env": "dev", "training-only": "true", **(context or {})}
        ),
        MLOPS_VALIDATION_CACHE=str(tmp_path / "validation-cache"),
    )
    env.update(extra)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


DEFAULT_RELEASES = ROOT / "config" / "releases.yaml"


def default_releases(platform: PlatformConfig) -> ReleaseManifest:
    return load_manifest(DEFAULT_RELEASES, known_envs=platform.environments)


def synth_app(
    platform: PlatformConfig,
    outdir: Path,
    options: AppOptions | None = None,
    releases: ReleaseManifest | None = None,
) -> cdk.cx_api.CloudAssembly:
    # app.py's own context too (no node stack traces: no template byte changes)
    app = cdk.App(context={**cdk_json_context(), **NO_NODE_STACK_TRACES}, outdir=str(outdir))
    build_app(app, platform, releases or default_releases(platform), options or AppOptions())
    return app.synth()


@pytest.fixture(scope="session", autouse=True)
def _validation_cache_outside_the_checkout(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Synths the tests start (app.py, `mlops local run`, the CLI) record CloudFormation
    findings in a folder of their own, not in the checkout's .cache/cfn-validate: a test run
    would otherwise leave a `make synth` after it (scripts/pipeline-synth.sh) a cache that
    looks warm, so the engine would start late (mlops/cfn_validation.py). A cache the caller
    chose is kept."""
    chosen = os.environ.get("MLOPS_VALIDATION_CACHE")
    if not chosen:
        os.environ["MLOPS_VALIDATION_CACHE"] = str(tmp_path_factory.mktemp("validation-cache"))
    yield
    if not chosen:
        os.environ.pop("MLOPS_VALIDATION_CACHE", None)


@pytest.fixture(scope="session")
def platform() -> PlatformConfig:
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def assembly_dir(tmp_path_factory: pytest.TempPathFactory, platform: PlatformConfig) -> Path:
    """The default app (every environment and region + delivery), synthesized once."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    synth_app(platform, outdir)
    return outdir


def stack_templates(assembly_dir: Path) -> dict[str, dict[str, object]]:
    """Every stack template in the assembly (nested stage assemblies included), by path."""
    templates: dict[str, dict[str, object]] = {}
    for manifest_path in sorted(assembly_dir.rglob("manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        for artifact in manifest.get("artifacts", {}).values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            path = artifact.get("displayName") or artifact["properties"]["templateFile"]
            template_file = manifest_path.parent / artifact["properties"]["templateFile"]
            templates[path] = json.loads(template_file.read_text())
    return templates


@pytest.fixture(scope="session")
def templates(assembly_dir: Path) -> dict[str, dict[str, object]]:
    return stack_templates(assembly_dir)


def of_type(resources: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The template resources of one CloudFormation type."""
    return [r for r in resources.values() if r["Type"] == kind]


@pytest.fixture()
def moto_sagemaker() -> Iterator[Any]:
    """A SageMaker client against moto's in-process emulator."""
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "MLOPS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    yield
