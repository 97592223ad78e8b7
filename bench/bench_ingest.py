"""Feature ingestion benchmark: a year of weather and planes (29,437 records).

    python bench/bench_ingest.py [--latency-ms 15] [--workers 16]

1. Local: `mlops local ingest`'s path into a fresh store (Parquet per event-time hour, as the
   offline store lays it out, plus the SQLite online store); records/s, and the share of
   the time spent just building the records (the baseline every path pays).
2. The Lambda's write path (ingestion.put_records) against an emulated PutRecord that takes
   --latency-ms per call: how close the thread pool gets to workers / latency, which is
   the projection for AWS (PutRecord latency is AWS's, not measured here).
Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lambda" / "feature_ingestion"))
sys.path.insert(0, str(ROOT / "pipeline_steps"))

import ingestion  # noqa: E402

from mlops.local.feature_store.ingest import ingest_folder, read_records  # noqa: E402
from mlops.local.run_local import bundled_data_dir  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=ingestion.WORKERS)
    args = parser.parse_args(argv)
    data = bundled_data_dir()

    started = time.perf_counter()
    records = {
        "weather": read_records(data / "weather.csv", "weather"),
        "plane": read_records(data / "planes.csv", "plane"),
    }
    build_s = time.perf_counter() - started
    total = sum(len(r) for r in records.values())

    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        results = ingest_folder(Path(store), data, clock=lambda: datetime.now(UTC))
        local_s = time.perf_counter() - started
        files = sum(r.offline_files for r in results)
        started = time.perf_counter()
        again = ingest_folder(Path(store), data, clock=lambda: datetime.now(UTC))
        repeat_s = time.perf_counter() - started
    print(f"{total} records (weather {len(records['weather'])}, planes {len(records['plane'])})")
    print(
        f"local ingest   {local_s:6.2f} s  {total / local_s:8,.0f} records/s  "
        f"({files} Parquet files; building the records alone: {build_s:.2f} s, "
        f"{build_s / local_s:.0%} of it)"
    )
    print(
        f"re-ingest      {repeat_s:6.3f} s  (ledger hit: "
        f"{all(r.skipped for r in again)}, nothing written)"
    )

    def emulated_put_record(**_: Any) -> None:
        time.sleep(args.latency_ms / 1000)

    sample = records["weather"][:2000]
    started = time.perf_counter()
    ingestion.put_records(emulated_put_record, "weather", sample, workers=args.workers)
    elapsed = time.perf_counter() - started
    rate = len(sample) / elapsed
    ideal = args.workers / (args.latency_ms / 1000)
    print(
        f"Lambda path    {rate:8,.0f} records/s with {args.workers} in flight at "
        f"{args.latency_ms:g} ms per PutRecord ({rate / ideal:.0%} of workers/latency = "
        f"{ideal:,.0f}/s)"
    )
    print(
        f"projected AWS  a year ({total} records) in {total / rate:.0f} s of one invocation; "
        f"{total} write units (records under 1 KB) per stage and year"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
