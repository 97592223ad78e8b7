"""One run's state (RunState) and the helpers every step type's handler shares."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.clock import Clock
from mlops.local import athena, contract
from mlops.local.expressions import EvalContext, evaluate
from mlops.local.registry import LocalRegistry
from mlops.local.runner.plan import StepNode
from mlops.local.runner.records import StepFailure

Progress = Callable[[str], None]


LocalLambda = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass
class RunState:
    definition: Mapping[str, Any]
    s3_root: Path
    work_dir: Path
    registry: LocalRegistry
    progress: Progress
    local_lambdas: Mapping[str, LocalLambda]
    region: str
    ctx: EvalContext
    pipeline: str
    execution_id: str
    clock: Clock
    catalog: athena.LocalCatalog | None = None
    chosen: dict[str, bool] = field(default_factory=dict)
    registered: dict[str, Any] | None = None

    def job_name(self, step: str) -> str:
        raw = f"pipelines-{self.execution_id}-{step}"
        return re.sub(r"[^A-Za-z0-9-]", "-", raw)[:63].rstrip("-")

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:000000000000:{kind}/{name}"

    def sandbox(self, step: str) -> Path:
        path = self.work_dir / "steps" / step
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path


def step_arguments(node: StepNode, run: RunState) -> dict[str, Any]:
    args = evaluate(node.spec.get("Arguments", {}), run.ctx)
    if not isinstance(args, dict):
        raise StepFailure("Arguments must be an object")
    return args


def require_uri(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise StepFailure(f"{what} must be a URI string, got {value!r}")
    return value


def script_failure(script: contract.ScriptResult, message_file: Path) -> str:
    """A script's own ERROR line stands alone; anything else points at the full log."""
    reason = contract.failure_reason(script, message_file)
    text = script.stderr.read_text(errors="replace")
    if not any(line.strip().startswith("ERROR:") for line in text.splitlines()):
        reason += f" (log: {script.stderr})"
    return reason
