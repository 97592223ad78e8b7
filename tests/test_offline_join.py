"""The offline-store join (one SQL text, run locally by DuckDB over the local offline store)
equals the pandas merge_asof join preprocess used to run on the raw CSVs, row for row, on the
whole bundled year; and its dedup and point-in-time edges, on both sides."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import preprocess
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import step_io
from step_fixtures import raw_tables, write_raw_tables

from mlops.local.athena import (
    AthenaQueryError,
    CsvTable,
    LocalCatalog,
    OfflineStoreTable,
    run_query,
    write_result,
)
from mlops.local.feature_store.ingest import ingest_folder
from mlops.local.feature_store.offline import data_dir, write_offline
from mlops.local.run_local import stage_raw_data
from mlops.pipeline_definition.offline_join import (
    JOINED_COLUMNS,
    MAX_QUERY_LENGTH,
    RAW_FLIGHT_COLUMNS,
    OfflineTables,
    join_query,
)

WRITTEN = datetime(2026, 1, 1, tzinfo=UTC)
OFFLINE_COLUMNS = ["write_time", "api_invocation_time", "is_deleted"]
TABLES = OfflineTables(database="mlops_test")
RAW_LOCATION = "s3://data/raw/"


def catalog_for(store: Path, raw: Path) -> LocalCatalog:
    return LocalCatalog(
        {
            ("AwsDataCatalog", TABLES.database): (
                OfflineStoreTable(TABLES.weather, data_dir(store, "weather")),
                OfflineStoreTable(TABLES.plane, data_dir(store, "plane")),
                CsvTable(
                    TABLES.flights,
                    raw,
                    RAW_LOCATION,
                    RAW_FLIGHT_COLUMNS,
                    null_format="NA",
                    skip_header_lines=1,
                ),
            )
        }
    )


def query_frame(store: Path, raw: Path) -> pd.DataFrame:
    return run_query(catalog_for(store, raw), "AwsDataCatalog", TABLES.database, join_query(TABLES))


def test_the_query_fits_athenas_limit_and_names_the_tables() -> None:
    query = join_query(OfflineTables(database="db", weather="w_t", plane="p_t", flights="f_t"))
    assert len(query) <= MAX_QUERY_LENGTH
    assert "FROM w_t" in query and "FROM p_t" in query and "FROM f_t" in query
    # Portable text: nothing DuckDB-only (ASOF, QUALIFY, ::casts) that Athena would reject.
    for duckdb_only in ("ASOF", "QUALIFY", "::", "STRFTIME", "EPOCH(", "INTERVAL 3"):
        assert duckdb_only not in query.upper()


def test_bad_table_names_are_refused() -> None:
    with pytest.raises(ValueError, match="is not a Glue name"):
        OfflineTables(database="my-db")


@pytest.mark.slow
def test_local_offline_store_join_equals_merge_asof_on_the_whole_year(tmp_path: Path) -> None:
    """All of 2013: ingest the bundled weather and planes into a local offline store, run the
    pipeline's query through the local Athena into the JSON result preprocess reads, and
    compare build_features' frame with the pandas merge_asof join on the raw CSVs."""
    raw = tmp_path / "raw"
    stage_raw_data(step_fixtures_data(), raw)
    store = tmp_path / "store"
    ingest_folder(store, raw, clock=lambda: WRITTEN)
    # Re-ingest the weather as a second file (another write of the very same records):
    # duplicates in the offline store must not change the result.
    again = tmp_path / "again"
    again.mkdir()
    shutil.copyfile(raw / "weather.csv", again / "weather.csv")
    (again / "weather.csv").open("a").write("\n")  # other bytes: not skipped by the ledger
    shutil.copyfile(raw / "planes.csv", again / "planes.csv")
    (again / "planes.csv").open("a").write("\n")
    ingest_folder(store, again, clock=lambda: datetime(2026, 2, 1, tzinfo=UTC))

    result = tmp_path / "result"
    write_result(
        catalog_for(store, raw),
        "AwsDataCatalog",
        TABLES.database,
        join_query(TABLES),
        result,
        output_format="JSON",
        compression="GZIP",
        file_stem="part-0",
    )
    from_store = preprocess.features_from_joined(preprocess.read_joined(result))
    flights = step_io.read_table(raw, "flights")
    oracle = preprocess.build_features(
        flights, step_io.read_table(raw, "weather"), step_io.read_table(raw, "planes")
    )
    assert len(from_store) == len(oracle) == int(flights["arr_delay"].notna().sum())
    assert list(from_store.columns) == list(oracle.columns)
    assert (from_store.dtypes == oracle.dtypes).all()
    matched = oracle["observed_at"].notna()
    assert 0.9 < matched.mean() < 1.0  # both sides of the tolerance occur in the data
    for column in oracle.columns:
        left, right = from_store[column], oracle[column]
        if column in preprocess.WEATHER_COLUMNS:
            # Same text, parsed twice: pandas' default CSV float parser (the oracle) may be
            # one unit in the last place off the exact value the ingestion stores.
            assert (left.isna() == right.isna()).all(), column
            np.testing.assert_array_max_ulp(
                left.dropna().to_numpy(), right.dropna().to_numpy(), maxulp=1
            )
        else:
            pd.testing.assert_series_equal(left, right, check_names=False, obj=column)


def step_fixtures_data() -> Path:
    from helpers import bundled_data_dir

    return bundled_data_dir()


# ---- Edges: dedup, deletes, the point-in-time window, on both sides -----------------------


def weather_row(hour: str, temp: float, origin: str = "EWR") -> dict[str, str]:
    return {
        "weather_id": f"{origin}#{hour[:13]}:00Z",
        "observed_at": f"{hour[:13]}:51:00Z",
        "temp": repr(temp),
    }


def small_store(tmp_path: Path, departures: list[str]) -> tuple[Path, Path]:
    """A raw flights file with one flight per departure ([ORIGIN@]HH:MM UTC, EWR by default)
    on 2013-01-01, all by plane N1 (built 2003)."""
    tables = raw_tables((1,))
    flights = tables["flights"].iloc[: len(departures)].copy()
    for i, spec in enumerate(departures):
        origin, _, departure = spec.rpartition("@")
        hour, minute = departure.split(":")
        local_hour = int(hour) - 5  # EST
        flights.iloc[i, flights.columns.get_loc("sched_dep_time")] = f"{local_hour}{minute}"
        flights.iloc[i, flights.columns.get_loc("time_hour")] = f"2013-01-01T{hour}:00:00Z"
        flights.iloc[i, flights.columns.get_loc("origin")] = origin or "EWR"
        flights.iloc[i, flights.columns.get_loc("flight")] = str(9000 + i)
        flights.iloc[i, flights.columns.get_loc("tailnum")] = "N1"
    raw = write_raw_tables(tmp_path / "raw", {"flights": flights})
    store = tmp_path / "store"
    plane = {"tailnum": "N1", "registered_at": "2003-01-01T00:00:00Z", "plane_age": "0.0"}
    write_offline(store, "plane", [{**plane, "seats": "50.0"}], "p", WRITTEN)
    return raw, store


def test_the_newest_observation_known_at_departure_within_three_hours(tmp_path: Path) -> None:
    # Departures 12:51 (the 12:00 row is known exactly then), 12:50 (not yet: 11:51's),
    # and at JFK (only 11:51's): 14:51 (3 h after: still in), 14:52 (3 h 1 min: missing).
    raw, store = small_store(tmp_path, ["12:51", "12:50", "JFK@14:51", "JFK@14:52"])
    rows = [weather_row("2013-01-01T11", 11.0), weather_row("2013-01-01T12", 12.0)]
    rows.append(weather_row("2013-01-01T11", 21.0, origin="JFK"))
    write_offline(store, "weather", rows, "w", WRITTEN)
    frame = query_frame(store, raw).sort_values("flight")
    temps = frame["temp"].tolist()
    assert temps[:2] == [12.0, 11.0]
    assert temps[2] == 21.0 and np.isnan(temps[3])
    assert list(frame.columns) == list(JOINED_COLUMNS)


def test_the_latest_write_wins_and_a_deleted_record_is_gone(tmp_path: Path) -> None:
    raw, store = small_store(tmp_path, ["13:00", "13:00"])
    first, second = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    write_offline(store, "weather", [weather_row("2013-01-01T12", 1.0)], "a", first)
    write_offline(store, "weather", [weather_row("2013-01-01T12", 2.0)], "b", second)
    frame = query_frame(store, raw)
    assert frame["temp"].tolist() == [2.0, 2.0]  # the later write, once per flight

    # A delete of the newest observation hides it; the one before is then the answer.
    write_offline(store, "weather", [weather_row("2013-01-01T11", 7.0)], "c", first)
    deleted = data_dir(store, "weather") / "year=2013/month=01/day=01/hour=12/b.parquet"
    table = pq.read_table(deleted)
    table = table.set_column(
        table.schema.get_field_index("is_deleted"), "is_deleted", pa.array([True])
    )
    index = table.schema.get_field_index("write_time")
    later = pa.array([datetime(2026, 1, 3, tzinfo=UTC)], type=table.schema.field(index).type)
    pq.write_table(table.set_column(index, "write_time", later), deleted.with_name("d.parquet"))
    assert query_frame(store, raw)["temp"].tolist() == [7.0, 7.0]


def test_a_plane_registered_after_departure_is_not_known(tmp_path: Path) -> None:
    raw, store = small_store(tmp_path, ["13:00"])
    write_offline(store, "weather", [weather_row("2013-01-01T12", 1.0)], "w", WRITTEN)
    later = {"tailnum": "N1", "registered_at": "2013-01-01T13:00:01Z", "plane_age": "0.0"}
    write_offline(store, "plane", [{**later, "seats": "99.0"}], "q", WRITTEN)
    frame = query_frame(store, raw)
    # The 2003 record (age 10 in 2013), not the one registered a second after departure.
    assert frame[["plane_age", "seats"]].values.tolist() == [[10.0, 50.0]]
    at = {**later, "registered_at": "2013-01-01T13:00:00Z"}
    write_offline(store, "plane", [{**at, "seats": "99.0"}], "r", WRITTEN)
    assert query_frame(store, raw)[["plane_age", "seats"]].values.tolist() == [[0.0, 99.0]]


def test_only_flights_files_feed_the_raw_flights_table(tmp_path: Path) -> None:
    raw, store = small_store(tmp_path, ["13:00"])
    write_offline(store, "weather", [weather_row("2013-01-01T12", 1.0)], "w", WRITTEN)
    shutil.copyfile(step_fixtures_data() / "planes.csv", raw / "planes.csv")
    assert len(query_frame(store, raw)) == 1


def test_an_empty_offline_store_is_a_clear_error(tmp_path: Path) -> None:
    raw, store = small_store(tmp_path, ["13:00"])
    with pytest.raises(AthenaQueryError, match="run `mlops local ingest` first"):
        query_frame(store, raw)


def test_a_group_nothing_was_written_to_is_an_empty_table(tmp_path: Path) -> None:
    """Athena answers an empty offline store with no rows; the local catalog too, when it
    knows the group's feature definitions (from the assembly)."""
    columns = (("flight_id", "String"), ("distance", "Fractional"))
    table = OfflineStoreTable("flight", tmp_path / "nothing", columns)
    catalog = LocalCatalog({("AwsDataCatalog", "db"): (table,)})
    frame = run_query(catalog, "AwsDataCatalog", "db", "SELECT * FROM flight")
    assert frame.empty
    assert list(frame.columns) == ["flight_id", "distance", *OFFLINE_COLUMNS]


def test_an_unknown_database_is_a_clear_error(tmp_path: Path) -> None:
    catalog = LocalCatalog({("AwsDataCatalog", "db"): ()})
    with pytest.raises(AthenaQueryError, match=r"no Glue database AwsDataCatalog\.other"):
        run_query(catalog, "AwsDataCatalog", "other", "SELECT 1")


def test_the_query_returns_exactly_the_columns_preprocess_reads() -> None:
    """The contract between the definition (mlops) and the step (pipeline_steps)."""
    assert list(JOINED_COLUMNS) == list(preprocess.JOINED_TYPES)
    select = join_query(TABLES).rsplit("SELECT ", 1)[1].split("\nFROM", 1)[0]
    named = [part.strip().split(" AS ")[-1] for part in select.split(",")]
    assert named == list(JOINED_COLUMNS)
