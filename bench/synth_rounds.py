"""What bench_synth.py and bench_synth_app.py share: their options (--rounds, --compare), the
prod configs with 1, 3 or 6 stages, one timed `cdk synth`, and the interleaved rounds
(bench_jsii_node.py uses the options and the rounds).

One synth is `cdk synth --quiet` through this checkout's pinned CLI, venv and PATH, into a
fresh folder; its cost is the CPU time (user + system) of the CLI and all its children, from
os.wait4 (on a shared machine CPU time is steadier than wall time). Cases run interleaved,
round after round, so load changes hit every case alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1", "ap-south-1")
STAGE_COUNTS = (1, 3, 6)

Case = TypeVar("Case")


def parse_options(
    description: str,
    argv: Sequence[str] | None,
    rounds: int = 3,
    compare_needs: Path | None = Path("app.py"),
) -> argparse.Namespace:
    """--rounds N (at least 1) and, unless compare_needs is None, --compare DIR (a checkout
    holding compare_needs, the file the benchmark runs from it; resolved)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds)
    if compare_needs is not None:
        parser.add_argument("--compare", type=Path, help="another checkout, e.g. main")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be at least 1")
    if compare_needs is not None and args.compare is not None:
        if not (args.compare / compare_needs).is_file():
            parser.error(f"--compare {args.compare}: no {compare_needs} there")
        args.compare = args.compare.resolve()
    return args


def stages_name(stages: int) -> str:
    return f"prod, {stages} stage{'s' if stages > 1 else ''}"


def prod_config(source: Path, folder: Path, stages: int) -> Path:
    """source's config/environments.yaml with prod serving from `stages` regions."""
    config = yaml.safe_load((source / "config" / "environments.yaml").read_text())
    config["environments"]["prod"]["regions"] = list(REGIONS[:stages])
    path = folder / f"environments-{source.name}-prod-{stages}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def per_added_stage(first: float, last: float) -> float:
    """(prod 6 stages - prod 1 stage) / 5: what one more (environment, region) stage costs."""
    return (last - first) / (STAGE_COUNTS[-1] - STAGE_COUNTS[0])


def synth(
    name: str,
    app: str,
    output: Path,
    *,
    cwd: Path,
    context: Mapping[str, str],
    env: Mapping[str, str],
) -> tuple[float, float]:
    """(cpu seconds of the CLI and its children, wall seconds) of one `cdk synth --app app`;
    env is added to this process's environment. A failed synth ends the benchmark."""
    shutil.rmtree(output, ignore_errors=True)
    command = [str(CLI), "synth", "--quiet", "--app", app, "--output", str(output)]
    for key, value in context.items():
        command += ["-c", f"{key}={value}"]
    environ = {
        **os.environ,
        "PATH": f"{PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        **env,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    err = process.stderr.read()  # drained before waiting: a full pipe would block the CLI
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ERROR: synth of {name} failed: {err.decode()[-800:]}")
    return usage.ru_utime + usage.ru_stime, wall


def interleaved(
    cases: Sequence[Case], rounds: int, measure: Callable[[Case], None], progress: bool = True
) -> None:
    """measure(case) for every case, round after round."""
    for round_number in range(rounds):
        for case in cases:  # interleaved: load changes hit every case alike
            measure(case)
        if progress:
            print(f"round {round_number + 1}/{rounds} done", flush=True)


def load_note(load_before: float) -> str:
    return f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
