"""The entry points as users call them: `python app.py`, the README's main job, `mlops ...`.

Each runs as its own process (the exit code and the one-line error are the interface), except
the main job's run itself, which calls run_local like `mlops local run` does, so the clock and
the data slice can be given.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import TEST_NOW, TickingClock
from step_fixtures import write_raw_slice

from mlops.local.registry import LocalRegistry
from mlops.local.run_local import run_local
from mlops.release_manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# One month of the bundled data, split inside the month. A model trained on three weeks
# reaches an AUC near 0.62, so the quality gate's bar is lowered to let it register.
JANUARY = (1,)
JANUARY_RUN = {
    "TrainEnd": "2013-01-20",
    "ValidationEnd": "2013-01-25",
    "TestEnd": "2013-01-31",
    "AucThreshold": 0.55,
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "CDK_"))}
    env.update(extra)
    return env


def _run(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    # A synth here must not fill the checkout's validation cache (make synth would then
    # take a cold cache for warm).
    extra.setdefault("MLOPS_VALIDATION_CACHE", str(tmp_path / "validation-cache"))
    return subprocess.run(
        args, cwd=ROOT, env=_env(**extra), capture_output=True, text=True, timeout=600
    )


# ---- python app.py ------------------------------------------------------------------------

# app.py as `cdk synth` runs it, with one more stack holding a plain S3 bucket (AwsSolutions-S1
# and others). Everything else is the real app, config and exit path.
LEAKY_APP = textwrap.dedent(
    """
    import runpy, sys
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    import mlops.app_builder as builder

    build = builder.build_app

    def build_with_a_leaky_bucket(app, *args, **kwargs):
        build(app, *args, **kwargs)
        stack = cdk.Stack(app, "Leaky", env=cdk.Environment(account="123456789012", region="us-east-1"))
        s3.Bucket(stack, "Plain")

    builder.build_app = build_with_a_leaky_bucket
    sys.argv = ["app.py"]
    runpy.run_path("app.py", run_name="__main__")
    """
)


def test_app_exits_1_on_an_unacknowledged_cdk_nag_finding(tmp_path: Path) -> None:
    """The passing side is the main job below: the same app synthesizes dev with exit 0."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    result = _run(
        [sys.executable, "-c", LEAKY_APP],
        tmp_path,
        CDK_OUTDIR=str(tmp_path / "cdk.out"),
        CDK_CONTEXT_JSON=json.dumps({**context, "env": "dev"}),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "AwsSolutions-S1" in result.stderr and "Leaky/Plain" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("MLOPS_CONFIG", "environments: [", "error: "),
        ("MLOPS_CONFIG", "environments: {}\n", "error: "),
        ("MLOPS_RELEASES", "dev: {current: {version: 1}}\n", "error: "),
    ],
)
def test_app_exits_2_with_one_line_on_bad_config(
    tmp_path: Path, variable: str, text: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = _run(
        [sys.executable, "app.py"],
        tmp_path,
        **{variable: str(bad)},
        CDK_OUTDIR=str(tmp_path / "cdk.out"),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert str(bad) in lines[0] or "bad.yaml" in lines[0]
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


# ---- the README's main job ----------------------------------------------------------------


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`mlops local run` on January 2013: synthesize dev with the CDK CLI, load the training
    pipeline from the assembly, stage its assets and the data, run every step."""
    tmp = tmp_path_factory.mktemp("main-job")
    data = write_raw_slice(tmp / "data", JANUARY)
    clock = TickingClock()
    lines: list[str] = []
    summary = run_local(
        ROOT,
        data,
        tmp / "run",
        tmp / "registry",
        "dev",
        parameters=JANUARY_RUN,
        progress=lines.append,
        clock=clock,
    )
    return {"tmp": tmp, "data": data, "summary": summary, "lines": lines}


@pytest.mark.slow
def test_main_job_registers_a_model_and_writes_the_run_summary(main_job: dict[str, Any]) -> None:
    summary, tmp = main_job["summary"], main_job["tmp"]
    assert summary.status == "Succeeded", summary.failure_reason
    run_dir = tmp / "run"
    # The definition came from the synthesized assembly, and its assets were staged.
    assert (run_dir / "cdk.out" / "manifest.json").is_file()
    definition = json.loads((run_dir / "definition.json").read_text())
    assert {s["Name"] for s in definition["Steps"]} >= {"ValidateData", "Train", "CheckQuality"}
    assert any((run_dir / "s3").rglob("*.tar.gz"))

    written = json.loads((run_dir / "run-summary.json").read_text())
    assert written["status"] == "Succeeded"
    # The clock's first reading is the feature ingestion's write time (before the run, as
    # the ingestion Lambda writes new raw data before training reads the offline store).
    started = TEST_NOW + timedelta(seconds=1)
    assert written["started_at"] == started.isoformat(timespec="seconds")
    assert {p: written["parameters"][p] for p in JANUARY_RUN} == JANUARY_RUN
    statuses = {s["name"]: s["status"] for s in written["steps"]}
    assert statuses["RegisterModel"] == "Succeeded"
    assert "Failed" not in statuses.values()

    registry = LocalRegistry(tmp / "registry")
    (group,) = registry.groups()
    (package,) = registry.list_packages(group)
    assert package.version == written["registered_model"]["version"] == 1
    assert package.status == "Approved"  # dev's training config sets auto_approve
    assert package.created_at.startswith(TEST_NOW.strftime("%Y-%m-%dT%H:%M"))
    auc = package.metrics["ModelQuality"]["Statistics"]["binary_classification_metrics"]["auc"]
    assert 0.5 < auc["value"] < 1.0
    assert Path(package.model_data_path).is_file()


# ---- mlops ... ------------------------------------------------------------------------------


def test_mlops_help_names_every_command(tmp_path: Path) -> None:
    result = _run([str(BIN / "mlops"), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mlops")
    for command in ("local", "promote", "review"):
        assert command in result.stdout


@pytest.mark.slow
def test_mlops_local_drift_scores_the_data_against_the_registered_baseline(
    main_job: dict[str, Any], tmp_path: Path
) -> None:
    tmp = main_job["tmp"]
    out = tmp_path / "drift"
    result = _run(
        [
            str(BIN / "mlops"),
            "local",
            "drift",
            "--registry",
            str(tmp / "registry"),
            "--data",
            str(main_job["data"]),
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "drift_by_month.json").read_text())
    assert [m["month"] for m in report["months"]] == ["2013-01"]
    assert report["months"][0]["in_baseline"] is True
    assert "2013-01" in result.stdout and "Baseline:" in result.stdout


@pytest.mark.slow
def test_mlops_promote_local_pins_the_approved_model_in_the_manifest(
    main_job: dict[str, Any], tmp_path: Path
) -> None:
    registry_dir = main_job["tmp"] / "promote-registry"
    shutil.copytree(main_job["tmp"] / "registry", registry_dir)
    registry = LocalRegistry(registry_dir, TickingClock())
    (group,) = registry.groups()
    manifest = tmp_path / "releases.yaml"
    shutil.copy(ROOT / "config" / "releases.yaml", manifest)
    command = [str(BIN / "mlops"), "promote", "--local", "--registry", str(registry_dir)]
    command += ["--env", "dev", "--version", "1", "--manifest", str(manifest)]

    registry.set_status(group, 1, "PendingManualApproval")
    pending = _run(command, tmp_path)
    assert pending.returncode != 0 and "only Approved packages" in pending.stderr
    assert manifest.read_text() == (ROOT / "config" / "releases.yaml").read_text()

    registry.set_status(group, 1, "Approved")
    promoted = _run(command, tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    dev = load_manifest(manifest, known_envs=("dev", "staging", "prod")).get("dev")
    old = yaml.safe_load((ROOT / "config" / "releases.yaml").read_text())["dev"]["current"]
    assert dev.current is not None and dev.current.version == 1
    assert dev.current.approved_at == "2026-11-26T12:00:01Z"  # the registry clock's 2nd reading
    assert dev.previous is not None and dev.previous.version == old["version"]
