"""The gate defaults (join minimums, non-inferiority margin) have one owner,
pipeline_steps/gate_defaults.py, and every reader takes them from it: the steps' flags, the
configuration and the pipeline definition, each read through its own entry (flag parsing,
config parsing, the spec's dataclass defaults)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import data_quality
import evaluate
import gate_defaults
import preprocess

from mlops.config import parse_config
from mlops.pipeline_definition.spec import TrainingPipelineSpec

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "pipeline_steps" / "gate_defaults.py"


def test_the_owner_imports_nothing() -> None:
    """mlops imports it at synth: it must not pull in the steps' pandas or xgboost."""
    tree = ast.parse(OWNER.read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert imported == ["__future__"]


def test_the_steps_flags_default_to_the_owner(tmp_path: Path) -> None:
    dirs = [f"--{n}-dir={tmp_path / n}" for n in ("joined", "train", "validation", "test")]
    args = preprocess.parse_args([*dirs, f"--baseline-dir={tmp_path / 'b'}"])
    assert (args.min_weather_match, args.min_plane_match) == (
        gate_defaults.MIN_WEATHER_MATCH,
        gate_defaults.MIN_PLANE_MATCH,
    )
    assert data_quality.JoinMinimums() == data_quality.JoinMinimums(
        gate_defaults.MIN_WEATHER_MATCH, gate_defaults.MIN_PLANE_MATCH
    )
    margin = evaluate.parse_args(
        ["--model-dir", "m", "--test-dir", "t", "--evaluation-dir", "e"]
    ).margin
    assert margin == gate_defaults.NON_INFERIORITY_MARGIN


def _config_text_without_gate_fields() -> str:
    lines = (ROOT / "config" / "environments.yaml").read_text().splitlines()
    names = ("min_weather_match:", "min_plane_match:", "non_inferiority_margin:")
    return "\n".join(line for line in lines if not line.strip().startswith(names)) + "\n"


def test_mlops_reads_the_owner_rather_than_writing_the_numbers_again() -> None:
    """Identity, not equality: a reader that wrote 0.9 itself would hold another float object
    (the steps import the owner as `gate_defaults`, mlops as `pipeline_steps.gate_defaults`:
    two module objects, so each side is checked against its own)."""
    from pipeline_steps import gate_defaults as owner

    config = parse_config(_config_text_without_gate_fields(), "environments.yaml")
    training = config.environment("dev").training
    assert training is not None
    spec = {f.name: f.default for f in dataclasses.fields(TrainingPipelineSpec)}
    for name, value in (
        ("min_weather_match", owner.MIN_WEATHER_MATCH),
        ("min_plane_match", owner.MIN_PLANE_MATCH),
        ("non_inferiority_margin", owner.NON_INFERIORITY_MARGIN),
    ):
        assert getattr(training, name) is value, name
        assert spec[name] is value, name
    assert data_quality.DEFAULT_MIN_WEATHER_MATCH is gate_defaults.MIN_WEATHER_MATCH
    assert data_quality.DEFAULT_MIN_PLANE_MATCH is gate_defaults.MIN_PLANE_MATCH
    assert evaluate.DEFAULT_MARGIN is gate_defaults.NON_INFERIORITY_MARGIN


def test_the_owner_holds_the_measured_values() -> None:
    """The values themselves (measured: gate_defaults.py), through every reader unpatched."""
    config = parse_config(_config_text_without_gate_fields(), "environments.yaml")
    training = config.environment("dev").training
    assert training is not None
    values = (0.9, 0.7, 0.025)
    assert (
        training.min_weather_match,
        training.min_plane_match,
        training.non_inferiority_margin,
    ) == values
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingPipelineSpec)}
    spec_values = tuple(
        defaults[n] for n in ("min_weather_match", "min_plane_match", "non_inferiority_margin")
    )
    assert spec_values == values
