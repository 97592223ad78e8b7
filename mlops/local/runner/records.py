"""The run's record (StepResult, RunSummary, run-summary.json) and the runner's errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class LocalRunError(ValueError):
    """The definition or the run's inputs are unusable (say what and what is allowed)."""


class StepFailure(RuntimeError):
    """A step failed; the message is its one-line failure reason."""


@dataclass
class StepResult:
    name: str
    type: str
    status: str = "NotStarted"  # Succeeded | Failed | Skipped | NotStarted
    seconds: float = 0.0
    failure_reason: str | None = None
    script_seconds: float | None = None
    note: str | None = None
    # A Lambda step's OutputParameters as SageMaker lists them in the step's metadata.
    outputs: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "seconds": round(self.seconds, 3),
        }
        if self.failure_reason is not None:
            data["failure_reason"] = self.failure_reason
        if self.script_seconds is not None:
            data["script_seconds"] = round(self.script_seconds, 3)
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class RunSummary:
    status: str
    pipeline: str
    execution_id: str
    started_at: str
    seconds: float
    steps: list[StepResult]
    registered_model: dict[str, Any] | None
    failure_reason: str | None
    failed_step: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    work_dir: str = ""

    @property
    def script_seconds(self) -> float:
        return sum(s.script_seconds or 0.0 for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "pipeline": self.pipeline,
            "execution_id": self.execution_id,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "script_seconds": round(self.script_seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
            "registered_model": self.registered_model,
            "failure_reason": self.failure_reason,
            "failed_step": self.failed_step,
            "parameters": self.parameters,
            "work_dir": self.work_dir,
        }


def write_summary(summary: RunSummary, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary.to_dict(), indent=2, default=str) + "\n")
    tmp.replace(path)
