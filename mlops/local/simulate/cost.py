"""Where the replay's time goes: wall and CPU seconds per phase (CPU includes the step
scripts and cdk synth, which run as child processes)."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Phases:
    """Wall and CPU seconds by phase; a phase entered inside another counts in the outer one."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._depth += 1
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
                self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds() - cpu

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "wall_seconds": round(self.wall[name], 1),
                "cpu_seconds": round(self.cpu[name], 1),
            }
            for name in self.wall
        }
