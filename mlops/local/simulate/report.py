"""What the replay writes: timeline.json (every event with its simulated time), months.json and
the monthly table (also printed), simulation.png, and the truth figures of the closing note."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display: the chart only goes to a file

import matplotlib.pyplot as plt

from mlops.local.simulate.traffic import auc

if TYPE_CHECKING:  # the replay imports this module
    from mlops.local.simulate.options import Options
    from mlops.local.simulate.replay import Replay

# A month counts as a real AUC drop when the served model scores this much below the AUC it
# had on its own test window at registration (about twice the monthly AUC's sampling sd).
AUC_DROP = 0.02
DROP_DEFINITION = (
    "a month's AUC really dropped when the ground-truth AUC of the answers served that month "
    f"is more than {AUC_DROP} below the AUC the version serving at the month's start had on "
    "its own test window when it was registered"
)
SECOND_HALF = ("2013-07", "2013-08", "2013-09", "2013-10", "2013-11", "2013-12")


@dataclass
class Month:
    """What happened in one served month (the truth the table reports)."""

    month: str
    served_versions: list[int] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    served_scores: list[np.ndarray] = field(default_factory=list)
    baseline_scores: list[np.ndarray] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    periods_in_alarm: int = 0
    alarms_fired: int = 0
    endpoint_alarms: int = 0
    failed_requests: int = 0
    failed_flights: int = 0  # the rows of the failed requests
    retrains_started: int = 0
    pipeline_runs: int = 0
    promotions: int = 0
    rollbacks: int = 0


def month_summary(month: Month) -> dict[str, Any]:
    labels = np.concatenate(month.labels) if month.labels else np.array([])
    served = np.concatenate(month.served_scores) if month.served_scores else np.array([])
    base = np.concatenate(month.baseline_scores) if month.baseline_scores else np.array([])

    def mean(name: str) -> float | None:
        values = month.metrics.get(name)
        return float(np.mean(values)) if values else None

    return {
        "month": month.month,
        "served_versions": sorted(set(month.served_versions)),
        "flights": len(labels),
        "auc_served": auc(labels, served) if len(labels) else None,
        "auc_never_retrained": auc(labels, base) if len(labels) else None,
        "drift_score_mean": mean("DriftScore"),
        "out_of_range_mean": mean("OutOfRangeShare"),
        "drifted_features_mean": mean("DriftedFeatureCount"),
        "monitored_auc_mean": mean("ModelAUC"),
        "alarms_fired": month.alarms_fired,
        "periods_in_alarm": month.periods_in_alarm,
        "endpoint_alarms": month.endpoint_alarms,
        "failed_requests": month.failed_requests,
        "failed_flights": month.failed_flights,
        "retrains_started": month.retrains_started,
        "pipeline_runs": month.pipeline_runs,
        "promotions": month.promotions,
        "rollbacks": month.rollbacks,
    }


def annotate_drops(months: list[dict[str, Any]], test_auc: dict[int, float]) -> None:
    for row in months:
        version = row["served_versions"][0] if row["served_versions"] else None
        reference = test_auc.get(version) if version is not None else None
        row["served_test_auc"] = reference
        row["auc_drop"] = bool(
            reference is not None
            and row["auc_served"] is not None
            and row["auc_served"] < reference - AUC_DROP
        )


def truth(months: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """The closing figures: alarms vs real drops, retrains, the served vs never-retrained AUC."""
    runs = [e for e in timeline if e["event"] == "pipeline_run"]
    gate = [e for e in timeline if e["event"] == "retrain_gate"]
    late = [m for m in months if m["month"] in SECOND_HALF and m["auc_served"] is not None]

    def mean(key: str) -> float | None:
        values = [m[key] for m in late if m[key] is not None]
        return round(sum(values) / len(values), 4) if values else None

    return {
        "per_month": [
            {
                "month": m["month"],
                "drift_alarms_fired": m["alarms_fired"],
                "auc_drop": m["auc_drop"],
                "retrains_started": m["retrains_started"],
                "pipeline_runs": m["pipeline_runs"],
                "promotions": m["promotions"],
                "endpoint_alarms": m["endpoint_alarms"],
                "rollbacks": m["rollbacks"],
            }
            for m in months
        ],
        "alarms_per_month": {m["month"]: m["alarms_fired"] for m in months},
        "alarms_fired": sum(m["alarms_fired"] for m in months),
        "alarms_in_auc_drop_months": sum(m["alarms_fired"] for m in months if m["auc_drop"]),
        "auc_drop_months": [m["month"] for m in months if m["auc_drop"]],
        "months_in_alarm_without_drop": [
            m["month"] for m in months if m["periods_in_alarm"] and not m["auc_drop"]
        ],
        "retrain_gate_starts": sum(1 for e in gate if e.get("started")),
        "retrains_started": sum(m["retrains_started"] for m in months),
        "pipeline_runs": len(runs),
        "registered": sum(1 for e in runs if e.get("registered_version")),
        "promotions": sum(m["promotions"] for m in months),
        "endpoint_alarms": sum(m["endpoint_alarms"] for m in months),
        "rollbacks": sum(m["rollbacks"] for m in months),
        "mean_auc_jul_dec_served": mean("auc_served"),
        "mean_auc_jul_dec_never_retrained": mean("auc_never_retrained"),
    }


def _fmt(value: Any, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def monthly_table(months: list[dict[str, Any]]) -> str:
    """alarms: drift-alarm ALARM transitions; retrains started: pipeline starts by the retrain
    gate; runs: pipeline runs that trained (a start on unchanged data reuses a run)."""
    header = (
        "| month | served | AUC served | AUC never retrained | drop | drift score | out of range "
        "| monitored AUC | alarms | periods in alarm | retrains started | runs | promotions "
        "| endpoint alarms | failed requests | rollbacks |"
    )
    lines = [header, "|" + "---|" * 16]
    for m in months:
        lines.append(
            f"| {m['month']} | v{','.join(map(str, m['served_versions']))} "
            f"| {_fmt(m['auc_served'])} | {_fmt(m['auc_never_retrained'])} "
            f"| {'yes' if m['auc_drop'] else 'no'} | {_fmt(m['drift_score_mean'], '{:.2f}')} "
            f"| {_fmt(m['out_of_range_mean'], '{:.2f}')} | {_fmt(m['monitored_auc_mean'])} "
            f"| {m['alarms_fired']} | {m['periods_in_alarm']} | {m['retrains_started']} "
            f"| {m['pipeline_runs']} | {m['promotions']} | {m['endpoint_alarms']} "
            f"| {m['failed_requests']} | {m['rollbacks']} |"
        )
    return "\n".join(lines)


def plot(months: list[dict[str, Any]], path: Path) -> None:
    labels = [m["month"][5:] for m in months]
    x = range(len(months))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    nan = float("nan")
    top.plot(x, [m["auc_served"] or nan for m in months], marker="o", label="served model")
    top.plot(x, [m["auc_never_retrained"] or nan for m in months], marker="s", linestyle="--",
             label="never retrained")  # fmt: skip
    for i, m in enumerate(months):
        if m["promotions"]:
            top.axvline(i, color="green", alpha=0.3)
        if m["rollbacks"]:
            top.axvline(i, color="black", linestyle=":", alpha=0.6)
        if m["auc_drop"]:
            top.axvspan(i - 0.4, i + 0.4, color="red", alpha=0.1)
    top.set_ylabel("ground-truth AUC")
    top.legend(loc="lower left")
    top.set_title("Served vs never-retrained AUC (green: promotion, dotted: rollback, red: drop)")
    bottom.bar(x, [m["drift_score_mean"] or 0 for m in months], label="mean drift score")
    bottom.plot(x, [m["out_of_range_mean"] or nan for m in months], color="orange", marker="^",
                label="mean out-of-range share")  # fmt: skip
    for i, m in enumerate(months):
        if m["alarms_fired"]:
            bottom.annotate(f"{m['alarms_fired']} alarm(s)", (i, 0), textcoords="offset points",
                            xytext=(0, 4), ha="center", fontsize=7, color="red")  # fmt: skip
    bottom.set_xticks(list(x), labels)
    bottom.set_xlabel("2013")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    out: Path, timeline: list[dict[str, Any]], months: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    (out / "timeline.json").write_text(json.dumps(timeline, indent=1, default=str) + "\n")
    (out / "months.json").write_text(json.dumps(months, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    notes = (
        f"\ndrop: {DROP_DEFINITION}. alarms: drift-alarm ALARM transitions; retrains started: "
        "pipeline starts by the retrain gate; runs: pipeline runs that trained (a start on "
        "unchanged data reuses the run); endpoint alarms: 5xx/latency ALARM transitions, each "
        "handed to the rollback Lambda's decision; rollbacks: endpoint updates it made.\n"
    )
    (out / "months.md").write_text(monthly_table(months) + "\n" + notes)
    plot(months, out / "simulation.png")


def gate_facts(report: dict[str, Any] | None) -> dict[str, Any]:
    """What the timeline records of an evaluation report: the window, the AUCs, the gate."""
    if not report:
        return {}
    metrics = report.get("binary_classification_metrics", {})
    incumbent = report.get("incumbent", {})
    comparison = report.get("comparison", {})
    return {
        "window": report.get("window"),
        "auc": metrics.get("auc", {}).get("value"),
        "incumbent_auc": incumbent.get("auc"),
        "ci_lower": incumbent.get("auc_difference", {}).get("ci_lower"),
        "non_inferior": comparison.get("non_inferior"),
        "margin": comparison.get("margin"),
    }


def run_summary(
    replay: Replay, options: Options, cost: dict[str, Any], months: list[dict[str, Any]]
) -> dict[str, Any]:
    """summary.json: the run's cost, what was simulated, and the truth figures."""
    fault = options.fault
    return {
        **cost,
        "serving_environment": options.serving.name,
        "promotion": options.promotion,
        "drift_alarm": {
            "metric": replay.drift_alarm.metric,
            "threshold": replay.drift_alarm.threshold,
            "datapoints_to_alarm": replay.drift_alarm.datapoints_to_alarm,
            "evaluation_periods": replay.drift_alarm.evaluation_periods,
            "period_hours": replay.period_hours,
        },
        "auc_drop_definition": DROP_DEFINITION,
        "endpoint_alarms": {
            "alarms": [replay.live.errors.name, replay.live.latency.name],
            "period_minutes": 1,
            "datapoints_to_alarm": replay.live.errors.datapoints_to_alarm,
            "evaluation_periods": replay.live.errors.evaluation_periods,
            "treat_missing_data": replay.live.errors.missing,
        },
        "fault": None
        if fault is None
        else {
            "month": fault.month,
            "kind": fault.kind,
            "span": [t.isoformat() for t in fault.span()],
        },
        "not_simulated": "the blue/green deployment's own bake-time auto-rollback (a fault "
        "starts after it) and UpdateEndpoint's minutes of transition (effective next minute)",
        "truth": truth(months, replay.timeline),
    }
