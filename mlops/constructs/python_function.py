"""A Python Lambda the way all of ours are: code from lambda/<name>/, KMS-encrypted log group
with retention, a role with no managed policies, and Powertools vendored from the pinned
local install (the deployed version is the tested version; no layer ARN to keep current)."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops.constructs import cdk_values
from mlops.constructs.asset_cache import built_once
from mlops.nag import acknowledge_lambda_without_vpc

LAMBDA_ROOT = Path(__file__).resolve().parents[2] / "lambda"
STEPS_ROOT = Path(__file__).resolve().parents[2] / "pipeline_steps"
RUNTIME = lambda_.Runtime.PYTHON_3_14
_VENDORED = ("aws_lambda_powertools", "typing_extensions")


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ValueError(f"{name} is not installed; run `make install`")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _bundle(code_dir: Path, powertools: bool, step_modules: tuple[str, ...]) -> Path:
    """The function's own files plus the pure-Python Powertools package and the named
    standard-library step modules (the one feature schema), in a fresh folder."""
    bundle = Path(tempfile.mkdtemp(prefix=f"lambda-{code_dir.name}-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(code_dir, bundle, dirs_exist_ok=True, ignore=ignore)
    for module in step_modules:
        shutil.copy2(STEPS_ROOT / f"{module}.py", bundle / f"{module}.py")
    for name in _VENDORED if powertools else ():
        source = _module_path(name)
        if source.is_dir():
            shutil.copytree(source, bundle / source.name, ignore=ignore)
        else:
            shutil.copy2(source, bundle / source.name)
    return bundle


def _bundle_kind(powertools: bool, step_modules: tuple[str, ...]) -> str:
    """What else goes into a bundle besides code_dir, with the step modules' file state, so
    a cached bundle is rebuilt when one of them changes."""
    modules = [
        f"{module}:{stat.st_size}:{stat.st_mtime_ns}"
        for module in step_modules
        if (stat := (STEPS_ROOT / f"{module}.py").stat())
    ]
    return f"lambda-bundle powertools={powertools} steps={','.join(modules)}"


class PythonFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: str,
        description: str,
        encryption_key: kms.IKey,
        environment: dict[str, str] | None = None,
        timeout_seconds: int = 30,
        memory_mb: int = 256,
        powertools: bool = False,
        role_name: str | None = None,
        step_modules: tuple[str, ...] = (),
        ephemeral_storage_mb: int | None = None,
    ) -> None:
        """role_name: only when another account's policy must name this role.
        step_modules: pipeline_steps modules (standard library only) the handler imports.
        ephemeral_storage_mb: /tmp size (512-10240 MB) for a function that spools files."""
        super().__init__(scope, construct_id)
        code_dir = LAMBDA_ROOT / source
        if not (code_dir / "handler.py").is_file():
            raise ValueError(f"lambda/{source}/handler.py does not exist")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=encryption_key,
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=cdk_values.service_principal("lambda.amazonaws.com"),
            description=f"Lambda {source}: {description}"[:1000],
        )
        bundled = powertools or step_modules
        asset_dir = (
            built_once(
                _bundle_kind(powertools, step_modules),
                code_dir,
                lambda folder: _bundle(folder, powertools, step_modules),
            )
            if bundled
            else code_dir
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=cdk_values.x86_64(),
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(asset_dir), exclude=["__pycache__", "*.pyc"]),
            description=description,
            role=self.role,
            environment={
                "POWERTOOLS_SERVICE_NAME": source,
                # Powertools metrics (one per decision) land in mlops/<function>.
                **({"POWERTOOLS_METRICS_NAMESPACE": f"mlops/{source}"} if powertools else {}),
                **(environment or {}),
            },
            environment_encryption=encryption_key,
            timeout=cdk_values.seconds(timeout_seconds),
            memory_size=memory_mb,
            ephemeral_storage_size=(
                cdk.Size.mebibytes(ephemeral_storage_mb) if ephemeral_storage_mb else None
            ),
            log_group=self.log_group,
        )
        self.log_group.grant_write(self.role)
        acknowledge_lambda_without_vpc(self.function)
