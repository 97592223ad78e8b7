"""`make bench`: every benchmark, one after the other, each printing its own figures.

Each benchmark measures its baseline in the same run and reports ratios, because this
machine is shared and noisy; none asserts a time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    ("Synth (full app, 1/3/6 stages, mlops local run) vs. an empty app", "bench_synth.py"),
    (
        "Synth outside CloudFormation validation: Python/node split, jsii calls",
        "bench_synth_app.py",
    ),
    (
        "Synth floor: the real app vs. its own templates replayed as plain L1 elements",
        "bench_synth_floor.py",
    ),
    ("The node aws-cdk-lib runs on: scripts/jsii-node vs. plain node", "bench_jsii_node.py"),
    ("Local pipeline run (full bundled data)", "bench_local_run.py"),
    ("Drift job (one million captured records)", "bench_drift.py"),
    ("Rollback handler (emulated AWS)", "bench_rollback.py"),
    ("Feature ingestion (a year of weather and planes)", "bench_ingest.py"),
    ("Offline-store join (a year) vs. the pandas merge_asof it replaces", "bench_offline_join.py"),
    ("Inference front door: local serve vs. in-process scoring", "bench_serve.py"),
)


def main() -> int:
    failures = 0
    for title, script in BENCHMARKS:
        print(f"\n=== {title} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script)])
        print(f"--- {script}: exit {code}, {time.perf_counter() - started:.1f} s", flush=True)
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
