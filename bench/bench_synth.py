"""Synth cost of the app against an empty one-stack app, measured in the same run.

    .venv/bin/python bench/bench_synth.py [--rounds 3] [--compare DIR]

Every run is `cdk synth --quiet` through the pinned CLI, the venv and cdk.json of this
checkout, into a fresh folder; its cost is the CPU time (user + system) of the CLI and all
its children (python app.py and the jsii node process), from os.wait4: on a shared machine
CPU time is steadier than wall time. The cases run interleaved, round after round, and the
median of each is printed with its ratio to the empty app's median:

    empty app            bench/empty_app.py: one stack, one resource (the baseline), with
                         CDK's built-in CloudFormation validation like any CDK app
    empty app, no CFN validation   the same with CDK_VALIDATION=false (for reference: what
                         the baseline spends outside CDK's validation engine)
    empty app, tuned node  the same with JSII_NODE=scripts/jsii-node, the node app.py runs
                         aws-cdk-lib with (for reference: what its V8 flags save any app)
    full app             app.py: every stage and the delivery pipeline (`make synth`)
    prod, N stage(s)     -c env=prod with prod's regions cut or extended to N (1, 3, 6):
                         the cost of one more (environment, region) stage is (t6 - t1) / 5
    mlops local run      -c env=dev -c training-only=true (what `mlops local run` synthesizes)
    --compare DIR        app.py of another checkout (e.g. main before a change), same CLI,
                         empty validation cache: the full app and -c env=dev (what
                         `mlops local run` used to synth)

app.py runs aws-cdk-lib on scripts/jsii-node (mlops/jsii_node.py) and validates each
distinct template once (mlops/cfn_validation.py), so each app case runs twice: "cold" with
an empty validation cache on every run (a clean clone, CI, the pipeline's first synth) and
"warm" with the cache of an identical earlier synth (a second `make synth`, `mlops local run`
after the first); the warm cache is filled once, untimed, before the rounds.

Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TUNED_NODE = ROOT / "scripts" / "jsii-node"
CLI = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1", "ap-south-1")
STAGE_COUNTS = (1, 3, 6)


@dataclass
class Case:
    name: str
    app: str
    context: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    cache: str | None = None  # "cold" or "warm": app.py's validation cache (see above)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def prod_config(folder: Path, stages: int) -> Path:
    """config/environments.yaml with prod serving from `stages` regions."""
    config = yaml.safe_load((ROOT / "config" / "environments.yaml").read_text())
    config["environments"]["prod"]["regions"] = list(REGIONS[:stages])
    path = folder / f"environments-prod-{stages}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def synth_once(case: Case, output: Path) -> tuple[float, float]:
    """(cpu seconds of the CLI and its children, wall seconds) of one `cdk synth`."""
    shutil.rmtree(output, ignore_errors=True)
    cache = output.parent / f"validation-cache-{case.name}"
    if case.cache == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    command = [str(CLI), "synth", "--quiet", "--app", case.app, "--output", str(output)]
    for key, value in case.context.items():
        command += ["-c", f"{key}={value}"]
    env = {
        **os.environ,
        "PATH": f"{PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        **({"MLOPS_VALIDATION_CACHE": str(cache)} if case.cache else {}),
        **case.env,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=case.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    err = process.stderr.read()  # drained before waiting: a full pipe would block the CLI
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ERROR: synth of {case.name} failed: {err.decode()[-800:]}")
    return usage.ru_utime + usage.ru_stime, wall


def cases(folder: Path, compare: Path | None) -> list[Case]:
    app = f"{PYTHON} app.py"
    empty = f"{PYTHON} {ROOT / 'bench' / 'empty_app.py'}"
    found = [
        Case("empty app (baseline)", empty),
        Case("empty app, no CFN validation", empty, env={"CDK_VALIDATION": "false"}),
        Case("empty app, tuned node", empty, env={"JSII_NODE": str(TUNED_NODE)}),
    ]
    apps = [Case("full app (make synth)", app)]
    for stages in STAGE_COUNTS:
        config = prod_config(folder, stages)
        apps.append(
            Case(
                f"prod, {stages} stage{'s' if stages > 1 else ''}",
                app,
                {"env": "prod"},
                {"MLOPS_CONFIG": str(config)},
            )
        )
    apps.append(Case("mlops local run's synth", app, {"env": "dev", "training-only": "true"}))
    for cache in ("cold", "warm"):
        found += [
            replace(case, name=f"{case.name}, {cache}", cache=cache, cpu=[], wall=[])
            for case in apps
        ]
    if compare is not None:
        # Cold like a clean clone: a checkout with the validation cache would otherwise use
        # whatever its own .cache/cfn-validate holds.
        found.append(
            Case(f"full app of {compare.name}", f"{PYTHON} app.py", cwd=compare, cache="cold")
        )
        # Before -c training-only, `mlops local run` synthesized the whole environment.
        found.append(
            Case(
                f"-c env=dev of {compare.name}",
                f"{PYTHON} app.py",
                {"env": "dev"},
                cwd=compare,
                cache="cold",
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout's app, e.g. main")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.compare is not None and not (args.compare / "app.py").is_file():
        parser.error(f"--compare {args.compare}: no app.py there")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        folder = Path(tmp)
        runs = cases(folder, args.compare.resolve() if args.compare else None)
        for case in runs:
            if case.cache == "warm":
                synth_once(case, folder / "cdk.out")  # fills its cache; not timed
        for round_number in range(args.rounds):
            for case in runs:  # interleaved: load changes hit every case alike
                cpu, wall = synth_once(case, folder / "cdk.out")
                case.cpu.append(cpu)
                case.wall.append(wall)
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    base = statistics.median(runs[0].cpu)
    print(
        f"bench_synth: median of {args.rounds} interleaved runs; load average "
        f"{load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'case':<40}{'cpu s':>8}{'x empty':>9}{'wall s':>9}")
    for case in runs:
        cpu = statistics.median(case.cpu)
        wall = statistics.median(case.wall)
        print(f"{case.name:<40}{cpu:>8.2f}{cpu / base:>8.2f}x{wall:>9.1f}")
    by_name = {case.name: statistics.median(case.cpu) for case in runs}
    for cache in ("cold", "warm"):
        first = by_name[f"prod, 1 stage, {cache}"]
        last = by_name[f"prod, {STAGE_COUNTS[-1]} stages, {cache}"]
        print(
            f"per added stage, {cache} validation cache: "
            f"{(last - first) / (STAGE_COUNTS[-1] - 1):.2f} s cpu "
            "((prod 6 stages - prod 1 stage) / 5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
