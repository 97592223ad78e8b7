"""What a simulation is asked to do (`mlops local simulate`'s arguments), and their checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.local.simulate.endpoint import Fault

PROMOTION_POLICIES = ("auto", "never")


class SimulationError(ValueError):
    """A bad argument or input: the CLI prints it as one line, exit 2."""


@dataclass(frozen=True)
class Options:
    repo_root: Path
    out_dir: Path
    platform: PlatformConfig
    serving: EnvironmentConfig  # its drift monitoring, alarm and retrain gate
    data_dir: Path
    seed_months: int = 6
    end_month: int = 12
    promotion: str = "auto"
    # Pipeline parameter overrides for every run (e.g. AucThreshold), as `mlops local run`.
    parameters: dict[str, str] = field(default_factory=dict)
    cdk_out: Path | None = None
    fault: Fault | None = None  # a release that fails or slows down (rollback scenario)
    progress: Callable[[str], None] = print


def check_options(options: Options) -> None:
    """A SimulationError naming the bad option and what is allowed; nothing is written."""
    if options.promotion not in PROMOTION_POLICIES:
        raise SimulationError(
            f"--promotion {options.promotion!r} is not a policy (allowed: "
            f"{', '.join(PROMOTION_POLICIES)})"
        )
    if not 2 <= options.seed_months < options.end_month <= 12:
        raise SimulationError(
            f"--seed-months {options.seed_months} and --end-month {options.end_month}: need "
            "2 <= seed months < end month <= 12 (the window needs 8 weeks and a training day)"
        )
    fault = options.fault
    if fault is not None and not options.seed_months < fault.month <= options.end_month:
        raise SimulationError(
            f"--inject-fault month {fault.month} is not a served month (served: "
            f"{options.seed_months + 1} to {options.end_month})"
        )
