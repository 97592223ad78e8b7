"""Athena on this machine: a ProcessingInput's AthenaDatasetDefinition runs in DuckDB over a
local Glue catalog, and its result is written the way the input delivers it to the container.

The catalog holds the tables of one Glue database, each backed by local files:
- a feature group's offline-store table: the local offline store's Parquet files of the group
  (mlops/local/feature_store/offline.py writes them in the service's layout and columns);
- a CSV table (AWS::Glue::Table with LazySimpleSerDe): every file under its location, read by
  position into the table's columns with the header line skipped; a value that does not parse
  as the column's type, or the table's null format, is NULL, as the SerDe does; each row has
  Athena's "$path" pseudo-column (the object's s3:// URI).

The query text is run as it is (the same text Athena gets); only the table names resolve to
these views. Results: OutputFormat JSON (one object per line, as Athena's
UNLOAD writes JSON; nulls are written as null, which readers treat alike) with
OutputCompression GZIP or none; other formats are refused.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

RESULT_FORMATS = ("JSON",)
RESULT_COMPRESSIONS = ("GZIP", None)
_DUCKDB_TYPES = {
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
}


class AthenaQueryError(ValueError):
    """The query or its catalog cannot run locally (one line: what and where)."""


@dataclass(frozen=True)
class OfflineStoreTable:
    """A feature group's offline-store table: Parquet files under data_dir. columns: the
    group's feature definitions (name, Feature Store type), for the empty table of a group
    nothing was written to yet (Athena then returns no rows, not an error)."""

    name: str
    data_dir: Path
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CsvTable:
    """A CSV table: files under folder; s3_location is its Glue location (for "$path")."""

    name: str
    folder: Path
    s3_location: str
    columns: tuple[tuple[str, str], ...]
    null_format: str = ""
    skip_header_lines: int = 0


@dataclass(frozen=True)
class LocalCatalog:
    """The Glue databases a local run can query: (catalog, database) -> tables."""

    databases: Mapping[tuple[str, str], tuple[OfflineStoreTable | CsvTable, ...]] = field(
        default_factory=dict
    )

    def tables(self, catalog: str, database: str) -> tuple[OfflineStoreTable | CsvTable, ...]:
        key = (catalog.lower(), database.lower())
        found = {(c.lower(), d.lower()): t for (c, d), t in self.databases.items()}
        if key not in found:
            known = ", ".join(f"{c}.{d}" for c, d in sorted(self.databases)) or "none"
            raise AthenaQueryError(
                f"no Glue database {catalog}.{database} in the local catalog (known: {known})"
            )
        return found[key]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_FEATURE_TYPES = {"String": "VARCHAR", "Integral": "BIGINT", "Fractional": "DOUBLE"}
# The columns Feature Store adds to every offline-store row.
_OFFLINE_COLUMNS = (
    ("write_time", "TIMESTAMP WITH TIME ZONE"),
    ("api_invocation_time", "TIMESTAMP WITH TIME ZONE"),
    ("is_deleted", "BOOLEAN"),
)


def _offline_files(table: OfflineStoreTable) -> list[str]:
    if not table.data_dir.is_dir():
        return []
    return sorted(str(p) for p in table.data_dir.rglob("*.parquet"))


def _offline_view(table: OfflineStoreTable) -> str:
    """The view of an offline store without files: empty with the group's columns."""
    if table.columns:
        typed = [(n, _FEATURE_TYPES.get(k, "VARCHAR")) for n, k in table.columns]
        values = ", ".join(
            f"CAST(NULL AS {kind}) AS {_ident(n)}" for n, kind in (*typed, *_OFFLINE_COLUMNS)
        )
        return f"SELECT {values} WHERE false"
    raise AthenaQueryError(
        f"table {table.name}: the local offline store {table.data_dir} has no Parquet "
        "files; run `mlops local ingest` first"
    )


def _csv_view(table: CsvTable) -> str:
    files = (
        sorted(p for p in table.folder.rglob("*") if p.is_file()) if table.folder.is_dir() else []
    )
    if not files:
        raise AthenaQueryError(f"table {table.name}: no files under {table.folder}")
    columns = ", ".join(f"{_quote(name)}: 'VARCHAR'" for name, _ in table.columns)
    selects = []
    for path in files:
        key = path.relative_to(table.folder).as_posix()
        location = table.s3_location.rstrip("/") + "/" + key
        values = ", ".join(
            f"TRY_CAST(NULLIF({_ident(name)}, {_quote(table.null_format)}) AS "
            f"{_duckdb_type(table.name, name, kind)}) AS {_ident(name)}"
            for name, kind in table.columns
        )
        selects.append(
            f'SELECT {values}, {_quote(location)} AS "$path" FROM read_csv({_quote(str(path))}, '
            f"header = false, skip = {table.skip_header_lines}, all_varchar = true, "
            f"null_padding = true, columns = {{{columns}}}, auto_detect = false, quote = '', "
            "escape = '', delim = ',')"
        )
    return " UNION ALL ".join(selects)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_type(table: str, column: str, kind: str) -> str:
    try:
        return _DUCKDB_TYPES[kind.lower()]
    except KeyError:
        raise AthenaQueryError(
            f"table {table}: column {column} has type {kind}, which the local catalog does not "
            f"read (allowed: {', '.join(sorted(_DUCKDB_TYPES))})"
        ) from None


def _connect(catalog: LocalCatalog, catalog_name: str, database: str) -> Any:
    connection = duckdb.connect(":memory:")
    for table in catalog.tables(catalog_name, database):
        if isinstance(table, OfflineStoreTable):
            files = _offline_files(table)
            if files:
                # The file list, not a ** glob: listing ~9k hour folders once here is cheaper.
                relation = connection.read_parquet(files, hive_partitioning=False)
                relation.create_view(table.name)
                continue
            view = _offline_view(table)
        else:
            view = _csv_view(table)
        connection.execute(f"CREATE VIEW {_ident(table.name)} AS {view}")
    return connection


def run_query(catalog: LocalCatalog, catalog_name: str, database: str, query: str) -> Any:
    """The query's result as a pandas DataFrame (for tests and benchmarks)."""
    connection = _connect(catalog, catalog_name, database)
    try:
        return connection.execute(query).df()
    except duckdb.Error as error:
        raise AthenaQueryError(f"the query failed: {_first_line(error)}") from None
    finally:
        connection.close()


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def write_result(
    catalog: LocalCatalog,
    catalog_name: str,
    database: str,
    query: str,
    folder: Path,
    *,
    output_format: str,
    compression: str | None,
    file_stem: str,
) -> Path:
    """Run the query and write its result as one file in folder, in the dataset definition's
    format: JSON is one object per line (nulls written as null)."""
    if output_format not in RESULT_FORMATS:
        raise AthenaQueryError(
            f"OutputFormat {output_format} cannot be emulated locally (allowed: "
            f"{', '.join(RESULT_FORMATS)})"
        )
    if compression not in RESULT_COMPRESSIONS:
        raise AthenaQueryError(
            f"OutputCompression {compression} cannot be emulated locally (allowed: GZIP or none)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / f".{file_stem}.json.tmp"
    path = folder / (f"{file_stem}.gz" if compression == "GZIP" else file_stem)
    connection = _connect(catalog, catalog_name, database)
    try:
        connection.execute(f"COPY ({query}) TO {_quote(str(plain))} (FORMAT json)")
        if compression == "GZIP":
            # DuckDB's own gzip writer is ~6x slower than level 1 here; mtime 0: the same
            # result gives byte-identical files.
            with (
                plain.open("rb") as source,
                path.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as target,
            ):
                shutil.copyfileobj(source, target, 1 << 20)
            plain.unlink()
        else:
            plain.replace(path)
    except duckdb.Error as error:
        raise AthenaQueryError(f"the query failed: {_first_line(error)}") from None
    finally:
        connection.close()
        plain.unlink(missing_ok=True)  # never leave a half-written result behind
    return path
