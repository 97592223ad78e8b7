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
                         empty validation cache: the full app and `mlops local run`'s
                         synth, to set against the cold rows of this checkout

app.py runs aws-cdk-lib on scripts/jsii-node (mlops/jsii_node.py) and validates each
distinct template once (mlops/cfn_validation.py), so each app case runs twice: "cold" with
an empty validation cache on every run (a clean clone, CI, the pipeline's first synth) and
"warm" with the cache of an identical earlier synth (a second `make synth`, `mlops local run`
after the first); the warm cache is filled once, untimed, before the rounds.

Asserts nothing about time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import synth_rounds
from synth_rounds import PYTHON, ROOT, STAGE_COUNTS, stages_name

TUNED_NODE = ROOT / "scripts" / "jsii-node"


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


def synth_once(case: Case, output: Path) -> tuple[float, float]:
    """(cpu seconds of the CLI and its children, wall seconds) of one `cdk synth`."""
    cache = output.parent / f"validation-cache-{case.name}"
    if case.cache == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    env = {**({"MLOPS_VALIDATION_CACHE": str(cache)} if case.cache else {}), **case.env}
    return synth_rounds.synth(
        case.name, case.app, output, cwd=case.cwd, context=case.context, env=env
    )


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
        config = synth_rounds.prod_config(ROOT, folder, stages)
        apps.append(Case(stages_name(stages), app, {"env": "prod"}, {"MLOPS_CONFIG": str(config)}))
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
        found.append(
            Case(
                f"mlops local run's synth of {compare.name}",
                f"{PYTHON} app.py",
                {"env": "dev", "training-only": "true"},
                cwd=compare,
                cache="cold",
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = synth_rounds.parse_options(__doc__.splitlines()[0], argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        folder = Path(tmp)
        runs = cases(folder, args.compare)
        for case in runs:
            if case.cache == "warm":
                synth_once(case, folder / "cdk.out")  # fills its cache; not timed

        def measure(case: Case) -> None:
            cpu, wall = synth_once(case, folder / "cdk.out")
            case.cpu.append(cpu)
            case.wall.append(wall)

        synth_rounds.interleaved(runs, args.rounds, measure)
    base = statistics.median(runs[0].cpu)
    print(f"bench_synth: median of {args.rounds} interleaved runs; {synth_rounds.load_note(load)}")
    print(f"{'case':<40}{'cpu s':>8}{'x empty':>9}{'wall s':>9}")
    for case in runs:
        cpu = statistics.median(case.cpu)
        wall = statistics.median(case.wall)
        print(f"{case.name:<40}{cpu:>8.2f}{cpu / base:>8.2f}x{wall:>9.1f}")
    by_name = {case.name: statistics.median(case.cpu) for case in runs}
    for cache in ("cold", "warm"):
        first = by_name[f"{stages_name(STAGE_COUNTS[0])}, {cache}"]
        last = by_name[f"{stages_name(STAGE_COUNTS[-1])}, {cache}"]
        print(
            f"per added stage, {cache} validation cache: "
            f"{synth_rounds.per_added_stage(first, last):.2f} s cpu "
            "((prod 6 stages - prod 1 stage) / 5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
