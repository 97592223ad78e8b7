"""What scripts/jsii-node adds to each synth: jsii starts it once per `python app.py`.

    .venv/bin/python bench/bench_jsii_node.py [--rounds 40] [--compare DIR]

Each case starts node on an empty program (`-e ""`), so what is measured is the start and
whatever the wrapper does before it execs node; its cost is the CPU time (user + system) of
the process and its children, from os.wait4. The cases run interleaved, round after round;
medians are printed with the difference to plain node:

    plain node                  `node -e ""` (the baseline)
    verdict recorded            scripts/jsii-node with its verdict in the cache (every synth
                                but the first on this node)
    first use                   scripts/jsii-node with an empty verdict cache: it asks node
                                whether it takes the flags, then records the answer
    --compare DIR               DIR/scripts/jsii-node with a recorded verdict cache of its own
                                (a checkout before the cache asks node on every start): the
                                saving per synth is its median minus "verdict recorded"

Asserts nothing about time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import synth_rounds

WRAPPER = Path("scripts") / "jsii-node"


@dataclass
class Case:
    name: str
    command: list[str]
    cache: Path | None = None  # the wrapper's MLOPS_JSII_NODE_CACHE
    first_use: bool = False  # the cache is emptied before each run
    cpu: list[float] = field(default_factory=list)


def start_once(case: Case) -> float:
    """CPU seconds of one start of case.command and its children."""
    env = dict(os.environ)
    if case.cache is not None:
        env["MLOPS_JSII_NODE_CACHE"] = str(case.cache)
        if case.first_use:
            case.cache.unlink(missing_ok=True)
    process = subprocess.Popen(case.command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ERROR: {case.name} failed: {' '.join(case.command)}")
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    # --compare runs only the other checkout's wrapper, not its app.py.
    args = synth_rounds.parse_options(
        __doc__.splitlines()[0], argv, rounds=40, compare_needs=WRAPPER
    )
    node = shutil.which("node")
    if node is None:
        raise SystemExit("ERROR: no node on PATH")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-jsii-node-") as tmp:
        folder = Path(tmp)
        ours = str(synth_rounds.ROOT / WRAPPER)
        runs = [
            Case("plain node (baseline)", [node, "-e", ""]),
            Case("jsii-node, verdict recorded", [ours, "-e", ""], folder / "recorded"),
            Case("jsii-node, first use", [ours, "-e", ""], folder / "first", first_use=True),
        ]
        if args.compare is not None:
            theirs = str(args.compare / WRAPPER)
            runs.append(Case(f"jsii-node of {args.compare.name}", [theirs, "-e", ""], folder / "c"))
        for case in runs:
            if case.cache is not None and not case.first_use:
                start_once(case)  # records the verdict; not timed
        synth_rounds.interleaved(
            runs, args.rounds, lambda case: case.cpu.append(start_once(case)), progress=False
        )
    base = statistics.median(runs[0].cpu)
    print(
        f"bench_jsii_node: median of {args.rounds} interleaved runs; {synth_rounds.load_note(load)}"
    )
    print(f"{'case':<34}{'cpu ms':>8}{'+ ms':>8}")
    for case in runs:
        cpu = statistics.median(case.cpu)
        print(f"{case.name:<34}{1000 * cpu:>8.1f}{1000 * (cpu - base):>8.1f}")
    if args.compare is not None:
        saved = statistics.median(runs[-1].cpu) - statistics.median(runs[1].cpu)
        print(
            f"saving per synth: {1000 * saved:.1f} ms cpu "
            f"(jsii-node of {args.compare.name} - jsii-node, verdict recorded)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
