"""Offline-store join benchmark: the whole bundled year (336,776 flights).

    python bench/bench_offline_join.py [--repeat 3]

Both ways to Preprocess's feature frame, measured in the same run (best of --repeat):
1. pandas, the join preprocess used to run: read flights/weather/planes CSVs, merge_asof on
   weather, merge on planes (preprocess.build_features).
2. the offline-store join it replaces: the pipeline's SQL text run by DuckDB over the local
   offline store (Parquet in Feature Store's layout, one file per event-time hour), written as
   the JSON-lines result Athena hands the job, read back by the step
   (preprocess.read_joined + features_from_joined). Also the query alone, to a DataFrame.
Ingesting the store is not timed here (bench_ingest.py measures it). Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "pipeline_steps"))

import preprocess  # noqa: E402
import step_io  # noqa: E402

from mlops.local.athena import (  # noqa: E402
    CsvTable,
    LocalCatalog,
    OfflineStoreTable,
    run_query,
    write_result,
)
from mlops.local.feature_store.ingest import ingest_folder  # noqa: E402
from mlops.local.feature_store.offline import data_dir  # noqa: E402
from mlops.local.run_local import bundled_data_dir, stage_raw_data  # noqa: E402
from mlops.pipeline_definition.offline_join import (  # noqa: E402
    RAW_FLIGHT_COLUMNS,
    OfflineTables,
    join_query,
)

TABLES = OfflineTables(database="bench")


def best_of(repeat: int, action: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw, store = work / "raw", work / "store"
        stage_raw_data(bundled_data_dir(), raw)
        ingest_folder(store, raw, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
        catalog = LocalCatalog(
            {
                ("AwsDataCatalog", TABLES.database): (
                    OfflineStoreTable(TABLES.weather, data_dir(store, "weather")),
                    OfflineStoreTable(TABLES.plane, data_dir(store, "plane")),
                    CsvTable(TABLES.flights, raw, "s3://b/raw/", RAW_FLIGHT_COLUMNS, "NA", 1),
                )
            }
        )
        query = join_query(TABLES)

        def pandas_join() -> Any:
            tables = {n: step_io.read_table(raw, n) for n in ("flights", "weather", "planes")}
            return preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])

        def store_join() -> Any:
            result = work / "result"
            for old in result.glob("*"):
                old.unlink()
            write_result(
                catalog,
                "AwsDataCatalog",
                TABLES.database,
                query,
                result,
                output_format="JSON",
                compression="GZIP",
                file_stem="part-0",
            )
            return preprocess.features_from_joined(preprocess.read_joined(result))

        def query_only() -> Any:
            return run_query(catalog, "AwsDataCatalog", TABLES.database, query)

        pandas_seconds, pandas_frame = best_of(args.repeat, pandas_join)
        store_seconds, store_frame = best_of(args.repeat, store_join)
        query_seconds, _ = best_of(args.repeat, query_only)
    if len(pandas_frame) != len(store_frame):
        print(f"ERROR: {len(pandas_frame)} rows from pandas, {len(store_frame)} from the store")
        return 1
    rows = len(store_frame)
    print(f"rows: {rows:,} flown flights (best of {args.repeat})")
    print(f"pandas merge_asof from the raw CSVs (baseline): {pandas_seconds:7.2f} s")
    print(
        f"offline-store join, query + JSON result + step read: {store_seconds:7.2f} s "
        f"({store_seconds / pandas_seconds:.2f}x the baseline)"
    )
    print(
        f"offline-store join, query alone (DuckDB -> DataFrame): {query_seconds:7.2f} s "
        f"({query_seconds / pandas_seconds:.2f}x the baseline)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
