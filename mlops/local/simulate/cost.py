"""Where the replay's time goes: wall and CPU seconds per phase. A phase's CPU is its own
thread's, plus its child processes' (cdk synth, the step scripts) where it starts them."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads) and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime + children_cpu_seconds()


def children_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


class Phases:
    """Wall and CPU seconds by phase; a phase entered inside another counts in the outer one."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._depth = 0

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu

    @contextlib.contextmanager
    def __call__(self, name: str, children: bool = False) -> Iterator[None]:
        """children: the phase's child processes count too (only where nothing else in the
        replay starts one at the same time)."""
        self._depth += 1
        wall, own = time.perf_counter(), time.thread_time()
        spawned = children_cpu_seconds()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                cpu = time.thread_time() - own
                if children:
                    cpu += children_cpu_seconds() - spawned
                self.add(name, time.perf_counter() - wall, cpu)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "wall_seconds": round(self.wall[name], 1),
                "cpu_seconds": round(self.cpu[name], 1),
            }
            for name in self.wall
        }
