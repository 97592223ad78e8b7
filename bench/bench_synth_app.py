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

import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import synth_rounds
from synth_rounds import PYTHON, ROOT, STAGE_COUNTS, stages_name

PROBE = ROOT / "bench" / "synth_probe.py"


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


def synth_once(case: Case, output: Path) -> Run:
    probe_out = output.parent / "probe.jsonl"
    probe_out.unlink(missing_ok=True)
    cpu, wall = synth_rounds.synth(
        case.name,
        f"{PYTHON} {PROBE} {case.app}",
        output,
        cwd=case.cwd,
        context=case.context,
        env={"CDK_VALIDATION": "false", "SYNTH_PROBE_OUT": str(probe_out), **case.env},
    )
    probe = json.loads(probe_out.read_text().splitlines()[-1])
    requests = probe["jsii_requests"]
    return Run(
        cpu=cpu,
        wall=wall,
        python_cpu=probe["python_cpu"],
        node_cpu=probe["node_cpu"],
        requests=sum(requests.values()),
        callbacks=requests.get("_CompleteRequest", 0),
    )


def app_cases(checkout: Path, folder: Path, label: str) -> list[Case]:
    found = [Case(f"full app{label}", "app.py", cwd=checkout)]
    for stages in STAGE_COUNTS:
        config = synth_rounds.prod_config(checkout, folder, stages)
        found.append(
            Case(
                f"{stages_name(stages)}{label}",
                "app.py",
                cwd=checkout,
                context={"env": "prod"},
                env={"MLOPS_CONFIG": str(config)},
            )
        )
    return found


def per_stage(by_name: dict[str, Case], label: str, attribute: str) -> float:
    first = by_name[f"{stages_name(STAGE_COUNTS[0])}{label}"].median(attribute)
    last = by_name[f"{stages_name(STAGE_COUNTS[-1])}{label}"].median(attribute)
    return synth_rounds.per_added_stage(first, last)


def main(argv: list[str] | None = None) -> int:
    args = synth_rounds.parse_options(__doc__.splitlines()[0], argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-synth-app-") as tmp:
        folder = Path(tmp)
        runs = [Case("empty app (baseline)", str(ROOT / "bench" / "empty_app.py"))]
        runs += app_cases(ROOT, folder, "")
        labels = [""]
        if args.compare is not None:
            label = f" of {args.compare.name}"
            runs += app_cases(args.compare, folder, label)
            labels.append(label)
        synth_rounds.interleaved(
            runs, args.rounds, lambda case: case.runs.append(synth_once(case, folder / "cdk.out"))
        )
    base = runs[0].median("cpu")
    print(
        f"bench_synth_app (CDK_VALIDATION=false): median of {args.rounds} interleaved runs; "
        f"{synth_rounds.load_note(load)}"
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
