"""The floor of synth per stage: what CDK itself costs to emit exactly these templates, even
if our constructs were free.

    .venv/bin/python bench/bench_synth_floor.py [--rounds 3]

The real app (app.py, `-c env=prod` with prod cut or extended to 1 and 6 regions, as
bench_synth.py does) is synthesized once, untimed; each assembly is then rebuilt by the
replay app (bench/replay_app.py, bench/floor_replay.py): the same stages, stacks, accounts,
regions and default synthesizer, each template's resources, outputs, parameters,
conditions, mappings and metadata as plain L1 elements with raw JSON, cross-stack values as
the literal intrinsics of the template. The replayed templates are compared with the
originals first. Then every case runs interleaved, round after round, each a `cdk synth
--quiet` through this checkout's CLI and cdk.json (its CPU: the CLI and all children, from
os.wait4), through bench/synth_probe.py for the Python/node split and the jsii requests:

    empty app            bench/empty_app.py, CDK_VALIDATION=false (the baseline), and with
                         CDK's built-in validation; both on scripts/jsii-node like app.py
    real, N stage(s)     app.py, CDK_VALIDATION=false (bench_synth_app.py's prod rows)
    replay, N stage(s)   the replay app of that assembly, CDK_VALIDATION=false: the floor
    replay, validated    the same with CDK's built-in CloudFormation validation
    real, cold cache     app.py with its validation on (CDK's rules behind its cache,
                         mlops/cfn_validation.py) and an empty cache on every run

Per added stage is (6 stages - 1 stage) / 5 for each. What the floor leaves out (and so
counts as ours, not CDK's): our Python and the jsii calls that build constructs, L2
constructs and their logic, aspects, cdk-nag, assets (staging, hashing), resolving
cross-stack references, the construct hierarchy (tree.json is flat) and CDK's analytics
collection (the AWS::CDK::Metadata resource is replayed as it was). What it keeps: node and
aws-cdk-lib loading, one jsii create per element (and one override per resource attribute
beyond Type and Properties), and CDK's whole synthesis of those elements (resolve, template
rendering, the synthesizer's bootstrap parameter, rule and manifest, assembly writing,
validation when on), and the CLI reading the assembly. Asserts nothing about time.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import assembly_compare
import bench_synth_app
import synth_rounds
from bench_synth_app import Case
from synth_rounds import PYTHON, ROOT, stages_name

STAGES = (1, 6)  # per added stage: (t6 - t1) / 5, as synth_rounds.per_added_stage
TUNED_NODE = ROOT / "scripts" / "jsii-node"
EMPTY_APP = str(ROOT / "bench" / "empty_app.py")
REPLAY_APP = str(ROOT / "bench" / "replay_app.py")
VALIDATED = {"CDK_VALIDATION": "true"}  # bench_synth_app.synth_once turns it off otherwise
REAL, REPLAY, REPLAY_VALIDATED, REAL_COLD = "real", "replay", "replay, validated", "real, cold"


def name(kind: str, stages: int) -> str:
    return f"{kind}, {stages_name(stages)}"


def synth_sources(folder: Path) -> dict[int, Path]:
    """The real app's assembly for 1 and 6 stages (validation off; untimed)."""
    sources = {}
    for stages in STAGES:
        config = synth_rounds.prod_config(ROOT, folder, stages)
        sources[stages] = folder / f"real-{stages}"
        synth_rounds.synth(
            name(REAL, stages),
            f"{PYTHON} app.py",
            sources[stages],
            cwd=ROOT,
            context={"env": "prod"},
            env={"MLOPS_CONFIG": str(config), "CDK_VALIDATION": "false"},
        )
    return sources


def check_replay(folder: Path, sources: dict[int, Path]) -> None:
    """Replay each source once (untimed) and print how close its templates come."""
    for stages, source in sources.items():
        replayed = folder / f"replayed-{stages}"
        synth_rounds.synth(
            name(REPLAY, stages),
            f"{PYTHON} {REPLAY_APP}",
            replayed,
            cwd=ROOT,
            context={},
            env={"REPLAY_ASSEMBLY": str(source), "CDK_VALIDATION": "false"},
        )
        results = assembly_compare.compare_assemblies(source, replayed)
        verdicts = sorted({result.verdict for result in results})
        counts = ", ".join(
            f"{sum(result.verdict == verdict for result in results)} {verdict}"
            for verdict in verdicts
        )
        print(f"replayed templates, {stages_name(stages)}: {len(results)}: {counts}")
        for result in results:
            if result.verdict != "byte-identical":
                print(f"  {result.template}: {result.verdict} {', '.join(result.differences)}")
        kinds = collections.Counter(
            f"{file_kind(Path(file).name)} ({how})"
            for file, how in assembly_compare.other_differences(source, replayed).items()
        )
        print(
            "  other files (assets left out) that differ: "
            + ", ".join(f"{count} x {kind}" for kind, count in sorted(kinds.items()))
        )


def file_kind(file_name: str) -> str:
    """ "prodeuwest1DataABC.assets.json" -> "*.assets.json"; "tree.json" stays."""
    return f"*{file_name[file_name.index('.') :]}" if file_name.count(".") > 1 else file_name


def cases(folder: Path, sources: dict[int, Path]) -> list[Case]:
    tuned = {"JSII_NODE": str(TUNED_NODE)}
    found = [
        Case("empty app (baseline)", EMPTY_APP, env=tuned),
        Case("empty app, validated", EMPTY_APP, env={**tuned, **VALIDATED}),
    ]
    for kind in (REAL, REPLAY, REPLAY_VALIDATED, REAL_COLD):
        for stages in STAGES:
            if kind in (REAL, REAL_COLD):
                config = synth_rounds.prod_config(ROOT, folder, stages)
                env = {"MLOPS_CONFIG": str(config)}
                if kind == REAL_COLD:
                    cache = folder / f"validation-cache-{stages}"  # emptied before each run
                    env.update(VALIDATED, MLOPS_VALIDATION_CACHE=str(cache))
                found.append(Case(name(kind, stages), "app.py", context={"env": "prod"}, env=env))
            else:
                env = {"REPLAY_ASSEMBLY": str(sources[stages])}
                if kind == REPLAY_VALIDATED:
                    env.update(VALIDATED)
                found.append(Case(name(kind, stages), REPLAY_APP, env=env))
    return found


def measure(case: Case, output: Path) -> None:
    cache = case.env.get("MLOPS_VALIDATION_CACHE")
    if cache:
        shutil.rmtree(cache, ignore_errors=True)
    case.runs.append(bench_synth_app.synth_once(case, output))


def per_stage(by_name: dict[str, Case], kind: str, attribute: str) -> float:
    first, last = (by_name[name(kind, stages)].median(attribute) for stages in STAGES)
    return synth_rounds.per_added_stage(first, last)


def report(runs: Sequence[Case], rounds: int, load: float) -> None:
    base = runs[0].median("cpu")
    print(f"bench_synth_floor: median of {rounds} interleaved runs; {synth_rounds.load_note(load)}")
    print(f"{'case':<34}{'cpu s':>7}{'x empty':>9}{'python':>8}{'node':>7}{'jsii req':>10}")
    for case in runs:
        cpu = case.median("cpu")
        print(
            f"{case.name:<34}{cpu:>7.2f}{cpu / base:>8.2f}x{case.median('python_cpu'):>8.2f}"
            f"{case.median('node_cpu'):>7.2f}{case.median('requests'):>10.0f}"
        )
    by_name = {case.name: case for case in runs}
    stage = {kind: per_stage(by_name, kind, "cpu") for kind in (REAL, REPLAY, REPLAY_VALIDATED)}
    stage[REAL_COLD] = per_stage(by_name, REAL_COLD, "cpu")
    print("per added stage ((6 stages - 1 stage) / 5), cpu s:")
    for kind, label in (
        (REAL, "real app, no validation"),
        (REPLAY, "replay (the floor), no validation"),
        (REPLAY_VALIDATED, "replay, CDK's validation"),
        (REAL_COLD, "real app, validation, cold cache"),
    ):
        print(
            f"  {label:<36}{stage[kind]:>6.2f} (python {per_stage(by_name, kind, 'python_cpu'):.2f}, "
            f"node {per_stage(by_name, kind, 'node_cpu'):.2f}, "
            f"{per_stage(by_name, kind, 'requests'):.0f} jsii requests)"
        )
    print(
        f"floor / real per added stage: {stage[REPLAY] / stage[REAL]:.2f} without validation, "
        f"{stage[REPLAY_VALIDATED] / stage[REAL_COLD]:.2f} with it (cold)"
    )


def main(argv: list[str] | None = None) -> int:
    args = synth_rounds.parse_options(__doc__.splitlines()[0], argv, compare_needs=None)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-synth-floor-") as tmp:
        folder = Path(tmp)
        sources = synth_sources(folder)
        check_replay(folder, sources)
        runs = cases(folder, sources)
        synth_rounds.interleaved(runs, args.rounds, lambda case: measure(case, folder / "cdk.out"))
    report(runs, args.rounds, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
