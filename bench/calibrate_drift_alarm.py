"""Calibrate the drift alarm on a finished `mlops local simulate` run.

    .venv/bin/python bench/calibrate_drift_alarm.py local-runs/simulate-<time>

Reads the monitoring job's reports of every run (drift and model quality, in time order) and
the months' truth (months.json: was the served model's AUC really down that month?), replays
candidate alarms (metric, threshold, M of N) through the simulation's CloudWatch alarm
emulator, and prints per candidate: ALARM transitions in months with a real AUC drop, in
months without one, and drop months with no alarm at all. Exact for the replay's served
models: a drift retrain between data landings reuses the same run, so the alarm choice does
not change what is served.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "pipeline_steps"))

import drift  # noqa: E402

from mlops.config import DRIFT_ALARM_METRICS  # noqa: E402
from mlops.local.simulate.cloud import AlarmEmulator  # noqa: E402

CANDIDATES: dict[str, tuple[float, ...]] = {
    "DriftScore": (0.2, 0.5, 1.0, 2.0, 5.0, 8.0),
    "OutOfRangeShare": (0.1, 0.2, 0.3, 0.5, 0.8, 0.95),
    "DriftedFeatureCount": (1, 3, 5, 7),
    "ModelAUC": (0.6, 0.62, 0.64, 0.66, 0.68, 0.7),
}
M_OF_N = ((1, 1), (2, 2), (3, 3), (3, 5), (5, 7), (7, 7))


def job_metrics(sim: Path) -> list[tuple[dt.datetime, dict[str, float | None]]]:
    jobs = []
    for folder in sorted((sim / "monitoring").iterdir()):
        at = dt.datetime.strptime(folder.name, "%Y%m%dT%H%M").replace(tzinfo=dt.UTC)
        report = json.loads((folder / "report" / "drift" / "drift_report.json").read_text())
        quality_file = folder / "report" / "model_quality" / "model_quality.json"
        quality = json.loads(quality_file.read_text()) if quality_file.is_file() else {}
        overall = report["overall"]
        jobs.append(
            (
                at,
                {
                    "DriftScore": overall["drift_score"],
                    "OutOfRangeShare": drift.out_of_range_share(report),
                    "DriftedFeatureCount": float(overall["drifted_feature_count"])
                    if overall["drift_score"] is not None
                    else None,
                    "ModelAUC": quality.get("auc"),
                },
            )
        )
    return jobs


def evaluate(
    jobs: list[tuple[dt.datetime, dict[str, float | None]]],
    drops: dict[str, bool],
    metric: str,
    threshold: float,
    m: int,
    n: int,
) -> dict[str, Any]:
    alarm = AlarmEmulator("a", metric, threshold, DRIFT_ALARM_METRICS[metric], n, m)
    fired: dict[str, int] = {month: 0 for month in drops}
    for at, values in jobs:
        month = f"{at - dt.timedelta(seconds=1):%Y-%m}"
        if alarm.evaluate(values[metric], at) == "ALARM" and month in fired:
            fired[month] += 1
    return {
        "metric": metric,
        "threshold": threshold,
        "m_of_n": f"{m} of {n}",
        "alarms_in_drop_months": sum(c for mo, c in fired.items() if drops[mo]),
        "alarms_in_other_months": sum(c for mo, c in fired.items() if not drops[mo]),
        "drop_months_missed": sum(1 for mo, c in fired.items() if drops[mo] and not c),
        "per_month": fired,
    }


def main() -> int:
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "months.json").is_file():
        print("usage: calibrate_drift_alarm.py SIMULATION_OUT_DIR (with months.json)")
        return 2
    sim = Path(sys.argv[1])
    months = json.loads((sim / "months.json").read_text())
    drops = {m["month"]: bool(m["auc_drop"]) for m in months}
    print("months with a real AUC drop:", [m for m, d in drops.items() if d] or "none")
    jobs = job_metrics(sim)
    results = [
        evaluate(jobs, drops, metric, threshold, m, n)
        for metric, thresholds in CANDIDATES.items()
        for threshold in thresholds
        for m, n in M_OF_N
    ]
    results.sort(
        key=lambda r: (
            r["drop_months_missed"],
            r["alarms_in_other_months"],
            -r["alarms_in_drop_months"],
        )
    )
    print("metric | threshold | M of N | alarms in drop months | in other months | drops missed")
    for r in results[:25]:
        print(
            f"{r['metric']} | {r['threshold']} | {r['m_of_n']} | {r['alarms_in_drop_months']} | "
            f"{r['alarms_in_other_months']} | {r['drop_months_missed']} | {r['per_month']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
