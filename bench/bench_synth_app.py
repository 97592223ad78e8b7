"""What synth costs outside CDK's CloudFormation validation: the app's own constructs, jsii
calls, the cdk-nag packs, assets, per stage. Everything runs with CDK_VALIDATION=false
(bench/bench_synth.py measures the validation engine and its cache).

    .venv/bin/python bench/bench_synth_app.py [--rounds 3] [--compare DIR]

Every run is `cdk synth --quiet` through this checkout's CLI, venv and cdk.json, into a
fresh folder; its cost is the CPU time (user + system) of the CLI and all its children, from
os.wait4 (on a shared machine CPU time is steadier than wall time). Each app runs through
bench/synth_probe.py, which also reports the Python process's own CPU, the jsii node
runtime's CPU and the number of jsii requests (callbacks: node calling into Python). The
cases run interleaved, round after round; medians are printed with their ratio to the empty
app's median:

    empty app            bench/empty_app.py: one stack, one resource (the baseline)
    full app             app.py: every stage and the delivery pipeline
    prod, N stage(s)     -c env=prod with prod's regions cut or extended to N (1, 3, 6):
                         one more (environment, region) stage costs (t6 - t1) / 5
    --compare DIR        the same app cases with app.py of another checkout (e.g. main
                         before a change), same CLI and venv: before and after in one run

Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"
PROBE = ROOT / "bench" / "synth_probe.py"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1", "ap-south-1")
STAGE_COUNTS = (1, 3, 6)


@dataclass
class Run:
    cpu: float  # the CLI and all its children
    wall: float
    python_cpu: float  # the app's Python process alone
    node_cpu: float  # the jsii runtime it started
    requests: int  # jsii requests, callbacks' answers included
    callbacks: int


@dataclass
class Case:
    name: str
    app: str  # script path relative to cwd
    cwd: Path = ROOT
    context: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def prod_config(source: Path, folder: Path, stages: int) -> Path:
    """source's config/environments.yaml with prod serving from `stages` regions."""
    config = yaml.safe_load((source / "config" / "environments.yaml").read_text())
    config["environments"]["prod"]["regions"] = list(REGIONS[:stages])
    path = folder / f"environments-{source.name}-prod-{stages}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def synth_once(case: Case, output: Path) -> Run:
    shutil.rmtree(output, ignore_errors=True)
    probe_out = output.parent / "probe.jsonl"
    probe_out.unlink(missing_ok=True)
    command = [
        str(CLI),
        "synth",
        "--quiet",
        "--app",
        f"{PYTHON} {PROBE} {case.app}",
        "--output",
        str(output),
    ]
    for key, value in case.context.items():
        command += ["-c", f"{key}={value}"]
    env = {
        **os.environ,
        "PATH": f"{PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "CDK_VALIDATION": "false",
        "SYNTH_PROBE_OUT": str(probe_out),
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
    probe = json.loads(probe_out.read_text().splitlines()[-1])
    requests = probe["jsii_requests"]
    return Run(
        cpu=usage.ru_utime + usage.ru_stime,
        wall=wall,
        python_cpu=probe["python_cpu"],
        node_cpu=probe["node_cpu"],
        requests=sum(requests.values()),
        callbacks=requests.get("_CompleteRequest", 0),
    )


def app_cases(checkout: Path, folder: Path, label: str) -> list[Case]:
    found = [Case(f"full app{label}", "app.py", cwd=checkout)]
    for stages in STAGE_COUNTS:
        config = prod_config(checkout, folder, stages)
        found.append(
            Case(
                f"prod, {stages} stage{'s' if stages > 1 else ''}{label}",
                "app.py",
                cwd=checkout,
                context={"env": "prod"},
                env={"MLOPS_CONFIG": str(config)},
            )
        )
    return found


def per_stage(by_name: dict[str, Case], label: str, attribute: str) -> float:
    first = by_name[f"prod, 1 stage{label}"].median(attribute)
    last = by_name[f"prod, {STAGE_COUNTS[-1]} stages{label}"].median(attribute)
    return (last - first) / (STAGE_COUNTS[-1] - 1)


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
    with tempfile.TemporaryDirectory(prefix="bench-synth-app-") as tmp:
        folder = Path(tmp)
        runs = [Case("empty app (baseline)", str(ROOT / "bench" / "empty_app.py"))]
        runs += app_cases(ROOT, folder, "")
        labels = [""]
        if args.compare is not None:
            label = f" of {args.compare.resolve().name}"
            runs += app_cases(args.compare.resolve(), folder, label)
            labels.append(label)
        for round_number in range(args.rounds):
            for case in runs:  # interleaved: load changes hit every case alike
                case.runs.append(synth_once(case, folder / "cdk.out"))
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    base = runs[0].median("cpu")
    print(
        f"bench_synth_app (CDK_VALIDATION=false): median of {args.rounds} interleaved runs; "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"{'case':<34}{'cpu s':>7}{'x empty':>9}{'python':>8}{'node':>7}"
        f"{'jsii req':>10}{'callbk':>8}{'wall s':>8}"
    )
    for case in runs:
        cpu = case.median("cpu")
        print(
            f"{case.name:<34}{cpu:>7.2f}{cpu / base:>8.2f}x{case.median('python_cpu'):>8.2f}"
            f"{case.median('node_cpu'):>7.2f}{case.median('requests'):>10.0f}"
            f"{case.median('callbacks'):>8.0f}{case.median('wall'):>8.1f}"
        )
    by_name = {case.name: case for case in runs}
    for label in labels:
        print(
            f"per added stage{label or ' (this checkout)'}: "
            f"{per_stage(by_name, label, 'cpu'):.2f} s cpu "
            f"(python {per_stage(by_name, label, 'python_cpu'):.2f}, "
            f"node {per_stage(by_name, label, 'node_cpu'):.2f}), "
            f"{per_stage(by_name, label, 'requests'):.0f} jsii requests "
            "((prod 6 stages - prod 1 stage) / 5)"
        )
    if args.compare is not None:
        label = labels[1]
        for case in runs[1 : 1 + len(STAGE_COUNTS) + 1]:
            before = by_name[f"{case.name}{label}"].median("cpu")
            print(f"{case.name}: {case.median('cpu') / before:.2f}x the cpu of {label[4:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
