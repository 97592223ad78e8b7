"""Pipeline runs started ahead of their data's landing, on the second core, and adopted only
when their outcome is provably the one a run at the landing would have had.

The run on the data through month M starts in AWS when that data lands, on the first day of
month M+1. Its inputs are that data, the pipeline parameters (a new-data start passes none)
and the model registry: FindIncumbent reads it and RegisterModel adds the next version. While
month M is served, the replay changes the registry only through a rollback (a package
Rejected); everything else that starts the pipeline in month M reuses the run on the data
through M-1. So the run starts as month M starts serving, on the data through M and on a copy
of the registry; at the landing it is adopted (its new version moves into the registry) if the
registry still holds exactly the versions and statuses it was copied with, and discarded
otherwise (the run is then started again, at the landing, on the registry as it is).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlops.local.registry import LocalRegistry
from mlops.local.runner import RunSummary
from mlops.local.simulate.cost import children_cpu_seconds

RegistryState = list[tuple[str, int, str]]


def registry_state(registry: LocalRegistry) -> RegistryState:
    """Every package's group, version and approval status."""
    return [
        (group, package.version, package.status)
        for group in registry.groups()
        for package in registry.list_packages(group)
    ]


@dataclass(frozen=True)
class RunOutcome:
    summary: RunSummary
    seconds: float  # wall
    cpu_seconds: float  # the runner's thread and the step scripts it ran


def timed(run: Callable[[], RunSummary]) -> RunOutcome:
    """Run and measure; the CPU of the step scripts counts as they are waited for (nothing
    else in the replay starts child processes while a pipeline runs)."""
    wall, own, children = time.perf_counter(), time.thread_time(), children_cpu_seconds()
    summary = run()
    cpu = time.thread_time() - own + children_cpu_seconds() - children
    return RunOutcome(summary, time.perf_counter() - wall, cpu)


@dataclass
class _Pending:
    registry_dir: Path
    snapshot: RegistryState
    future: Future[RunOutcome]


class RunsAhead:
    def __init__(self, registry: LocalRegistry, scratch: Path) -> None:
        self.registry = registry
        self.scratch = scratch
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-ahead")
        self.pending: dict[int, _Pending] = {}

    def start(self, data: int, run: Callable[[Path], RunSummary]) -> None:
        """Start run(registry_dir) for the data through month `data` on a registry copy."""
        copy = self.scratch / f"registry-through-2013-{data:02d}"
        shutil.copytree(self.registry.root, copy)
        snapshot = registry_state(self.registry)
        self.pending[data] = _Pending(copy, snapshot, self.pool.submit(timed, lambda: run(copy)))

    def take(self, data: int) -> tuple[RunOutcome | None, str]:
        """The run ahead on this data if it is adopted (its registration moved into the
        registry), else None; and why."""
        pending = self.pending.pop(data, None)
        if pending is None:
            return None, "no run ahead on this data"
        outcome = pending.future.result()
        if registry_state(self.registry) != pending.snapshot:
            return None, "the registry changed while it ran (a rollback rejected a package)"
        copy = LocalRegistry(pending.registry_dir)
        known = set(registry_state(self.registry))
        for group, version, status in registry_state(copy):
            if (group, version, status) not in known:
                shutil.copytree(
                    pending.registry_dir / group / f"v{version}",
                    self.registry.root / group / f"v{version}",
                )
        return outcome, "adopted: the registry is the one it ran on"

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
