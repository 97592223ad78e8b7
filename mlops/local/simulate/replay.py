"""The replay: a simulated clock, the triggers that would fire in AWS, and their consequences.

Time advances one day at a time. On the first day of a month the previous month's raw data
lands (flights, weather, planes up to that month): the new-data trigger starts the pipeline,
the promotion policy promotes what the gate registered. Every day the served model scores
the day's flights (traffic), the monitoring job runs at its schedule's times and publishes its
metrics, the alarms evaluate them; the drift alarm entering ALARM invokes the retrain gate,
and the gate's recheck schedule invokes it every retrain_min_hours. The training schedule
fires at its rate.

A pipeline run only sees the data landed so far: a start while the landed data is unchanged
(the schedule between landings, a drift retrain mid-month) would train the same model on the
same window, so the replay reuses that run's outcome (logged as such) instead of running the
deterministic pipeline again. In AWS it would register an identical version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.local.registry import LocalRegistry
from mlops.local.run_local import load_module, run_local, stage_raw_data, synthesize
from mlops.local.simulate.cloud import (
    AlarmEmulator,
    Execution,
    LocalS3,
    MetricStore,
    PipelineExecutions,
    pipeline_steps_of,
)
from mlops.local.simulate.traffic import Endpoint, ServedModel, auc, serve_hour, year_of_flights
from mlops.naming import endpoint_name, training_pipeline_name

_STEPS_DIR = str(Path(__file__).resolve().parents[3] / "pipeline_steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)

import monitor  # noqa: E402
import step_io  # noqa: E402

BUCKET = "simulated-data"
VARIANT = "AllTraffic"
NAMESPACE = "simulation/monitoring"
PROMOTION_POLICIES = ("auto", "never")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_HOURS = {"minute": 1 / 60, "hour": 1, "day": 24}
RAW_FILES = {"flights": "flights.csv", "weather": "weather.csv", "planes": "planes.csv"}


class SimulationError(ValueError):
    """A bad argument or input: the CLI prints it as one line, exit 2."""


def rate_hours(schedule: str) -> float | None:
    match = _RATE.match(schedule)
    if not match:
        return None  # cron(...): not replayed
    return int(match.group(1)) * _HOURS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class Options:
    repo_root: Path
    out_dir: Path
    platform: PlatformConfig
    serving: EnvironmentConfig  # its drift monitoring, alarm and retrain gate
    data_dir: Path
    seed_months: int = 6
    end_month: int = 12
    promotion: str = "auto"
    # Pipeline parameter overrides for every run (e.g. AucThreshold), as `mlops local run`.
    parameters: dict[str, str] = field(default_factory=dict)
    cdk_out: Path | None = None
    progress: Callable[[str], None] = print


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
    retrains_started: int = 0
    pipeline_runs: int = 0
    promotions: int = 0
    rollbacks: int = 0


class Replay:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.out = Path(options.out_dir).resolve()
        self.now = dt.datetime(2013, options.seed_months + 1, 1, tzinfo=dt.UTC)
        self.timeline: list[dict[str, Any]] = []
        self.months: dict[str, Month] = {}
        hub = options.platform.environment(options.platform.training_environment)
        if hub.training is None:
            raise SimulationError(f"environment {hub.name} has no training configuration")
        self.hub, self.training = hub, hub.training
        self.registry = LocalRegistry(self.out / "registry")
        self.endpoint = Endpoint(
            self.out / "s3" / BUCKET, endpoint_name(options.platform, options.serving), VARIANT
        )
        self.metrics = MetricStore(now=lambda: self.now)
        drift = options.serving.drift
        self.period_hours = rate_hours(drift.schedule) or 24.0
        alarm = drift.alarm
        self.drift_alarm = AlarmEmulator(
            name=f"{self.endpoint.name}-DriftPersists",
            metric=alarm.metric,
            threshold=alarm.threshold,
            comparison=alarm.comparison,
            evaluation_periods=alarm.evaluation_periods,
            datapoints_to_alarm=alarm.datapoints_to_alarm,
        )
        self.quality_alarm = AlarmEmulator(
            name=f"{self.endpoint.name}-ModelAucLow",
            metric="ModelAUC",
            threshold=self.training.auc_threshold,
            comparison="LessThanThreshold",
            evaluation_periods=1,
            datapoints_to_alarm=1,
        )
        pipeline = training_pipeline_name(options.platform, hub)
        self.executions = PipelineExecutions(pipeline, self._execute)
        gate_dir = options.repo_root / "lambda" / "retrain_gate"
        if str(gate_dir) not in sys.path:
            sys.path.insert(0, str(gate_dir))
        self.gate = load_module(gate_dir / "gate_logic.py", "simulated_gate_logic")
        self.gate_config = self.gate.GateConfig(
            pipeline_name=pipeline,
            pipeline_region=hub.home_region,
            starter_role_arn="simulated",
            min_hours=drift.retrain_min_hours,
            environment=options.serving.name,
            alarm_name=self.drift_alarm.name,
        )
        self.landed_through: int | None = None  # month of the newest landed data
        self.runs_by_data: dict[int, tuple[str, int | None]] = {}
        self.steps_by_data: dict[int, list[dict[str, Any]]] = {}
        self.served: ServedModel | None = None
        self.never_retrained: ServedModel | None = None
        self.run_count = 0
        self.test_auc: dict[int, float] = {}  # each version's AUC on its own test window

    # ---- events ---------------------------------------------------------------------------

    def event(self, kind: str, **details: Any) -> None:
        self.timeline.append({"time": self.now.isoformat(), "event": kind, **details})

    def month(self, at: dt.datetime | None = None) -> Month:
        key = f"{at or self.now:%Y-%m}"
        return self.months.setdefault(key, Month(key))

    # ---- the pipeline ---------------------------------------------------------------------

    def land(self, raw: dict[str, pd.DataFrame], through: int) -> None:
        folder = self.out / "data" / f"through-2013-{through:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in raw.items():
            part = frame if name == "planes" else frame.loc[frame["month"].astype(int) <= through]
            part.to_csv(folder / RAW_FILES[name], index=False)
        self.landed_through = through
        self.event("data_landed", through=f"2013-{through:02d}", folder=str(folder))

    def start(self, trigger: str) -> None:
        """A trigger whose EventBridge target starts the pipeline with default parameters."""
        self.executions.trigger = trigger
        self.executions.now = self.now
        self.executions.start_pipeline_execution(PipelineName=self.executions.pipeline_name)

    def _execute(self, execution: Execution) -> str:
        assert self.landed_through is not None
        self.month().retrains_started += execution.trigger == "drift-gate"
        data = self.landed_through
        if data in self.runs_by_data:
            status, version = self.runs_by_data[data]
            execution.steps = self.steps_by_data[data]
            self.event(
                "pipeline_reused",
                trigger=execution.trigger,
                execution=execution.arn,
                parameters=execution.parameters,
                reason=f"data unchanged since the run on data through 2013-{data:02d}",
                status=status,
            )
            return status
        self.run_count += 1
        self.month().pipeline_runs += 1
        folder = self.out / "runs" / f"run-{self.run_count:02d}-{execution.trigger}"
        started = time.perf_counter()
        self.o.progress(
            f"  {self.now:%Y-%m-%d} pipeline run {self.run_count} ({execution.trigger}) on data "
            f"through 2013-{data:02d} ..."
        )
        summary = run_local(
            self.o.repo_root,
            self.out / "data" / f"through-2013-{data:02d}",
            folder,
            self.out / "registry",
            self.hub.name,
            parameters={**self.o.parameters, **execution.parameters},
            progress=lambda _line: None,
            cdk_out=self.o.cdk_out,
        )
        registered = summary.registered_model or {}
        report = registered.get("metrics") or self._evaluation(folder)
        version = registered.get("version")
        self.event(
            "pipeline_run",
            trigger=execution.trigger,
            execution=execution.arn,
            parameters=execution.parameters,
            status=summary.status,
            seconds=round(time.perf_counter() - started, 1),
            registered_version=version,
            failure=summary.failure_reason,
            **_gate_facts(report),
        )
        self.o.progress(
            f"    {summary.status} in {time.perf_counter() - started:.0f} s"
            + (f": registered v{version}" if version else f": {summary.failure_reason}")
        )
        self.runs_by_data[data] = (summary.status, version)
        # What the gate reads to tell a quality-gate refusal from a crash.
        execution.steps = self.steps_by_data[data] = pipeline_steps_of(summary.steps)
        if version is not None and report:
            self.test_auc[int(version)] = float(
                report["binary_classification_metrics"]["auc"]["value"]
            )
        if version is not None:
            self.promote(int(version), str(registered.get("status")))
        return summary.status

    def _evaluation(self, folder: Path) -> dict[str, Any] | None:
        found = sorted(folder.glob("s3/**/Evaluate/evaluation/evaluation.json"))
        if not found:
            return None
        import json

        result: dict[str, Any] = json.loads(found[-1].read_text())
        return result

    def promote(self, version: int, status: str) -> None:
        first = self.served is None
        if status != "Approved" or (self.o.promotion == "never" and not first):
            self.event("not_promoted", version=version, status=status, policy=self.o.promotion)
            return
        package = self.registry.get(self.registry.groups()[0], version)
        self.served = ServedModel.load(
            Path(package.model_data_path), version, self.out / "served-models"
        )
        if first:
            self.never_retrained = self.served
        self.month().promotions += 0 if first else 1
        self.event("promoted", version=version, policy=self.o.promotion, seed=first)

    # ---- monitoring and alarms ------------------------------------------------------------

    def monitoring_job(self) -> None:
        assert self.served is not None
        work = self.out / "monitoring" / f"{self.now:%Y%m%dT%H%M}"
        argv = [
            "--bucket", BUCKET, "--endpoint-name", self.endpoint.name, "--variant", VARIANT,
            "--scheduled-time", self.now.isoformat(),
            "--window-hours", str(max(1, round(self.period_hours))),
            "--baseline", str(self.served.archive), "--work-dir", str(work / "work"),
            "--report-dir", str(work / "report"), "--metrics-namespace", NAMESPACE,
            "--psi-threshold", str(self.o.serving.drift.psi_threshold), "--region", "local",
        ]  # fmt: skip
        published = self.now
        original = step_io.cloudwatch_client
        step_io.cloudwatch_client = lambda _region: self.metrics
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                monitor.run(argv, s3=LocalS3(self.out / "s3"))
        finally:
            step_io.cloudwatch_client = original
        dims = {"EndpointName": self.endpoint.name}
        month = self.month(self.now - dt.timedelta(seconds=1))  # the window's month
        for name in ("DriftScore", "OutOfRangeShare", "DriftedFeatureCount", "ModelAUC"):
            value = self.metrics.latest(name, dims, published)
            if value is not None:
                month.metrics.setdefault(name, []).append(value)
        for alarm in (self.drift_alarm, self.quality_alarm):
            value = self.metrics.latest(alarm.metric, dims, published)
            changed = alarm.evaluate(value, self.now)
            if changed:
                self.event("alarm", alarm=alarm.name, state=changed, metric=alarm.metric,
                           value=value)  # fmt: skip
            if alarm is self.drift_alarm:
                month.periods_in_alarm += alarm.state == "ALARM"
                if changed == "ALARM":
                    month.alarms_fired += 1
                    self.invoke_gate(self._alarm_event())
        import shutil

        shutil.rmtree(work / "work", ignore_errors=True)  # the window copies, not the reports

    def _alarm_event(self) -> dict[str, Any]:
        return {
            "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "region": self.o.serving.home_region,
            "detail": {
                "alarmName": self.drift_alarm.name,
                "state": {"value": "ALARM", "reason": "simulated"},
            },
        }

    def invoke_gate(self, event: dict[str, Any]) -> None:
        """The retrain gate Lambda's own decision, against the replay's executions."""
        self.executions.trigger = "drift-gate"
        self.executions.now = self.now
        result = self.gate.handle_alarm_event(
            event, self.gate_config, self.executions, self.now, self.drift_alarm
        )
        kind = "recheck" if event.get("gate") == "recheck" else "alarm"
        if result["started"] or kind == "alarm":
            self.event("retrain_gate", invoked_by=kind, **result)

    # ---- the loop -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        o = self.o
        started = time.perf_counter()
        raw = read_raw_text(o.data_dir)
        staged = self.out / "data" / "full"
        stage_raw_data(o.data_dir, staged)
        o.progress("Building the year's traffic (features of every flown flight) ...")
        flights = year_of_flights(staged)
        if o.cdk_out is None:
            o.progress(f"Synthesizing the app (environment {self.hub.name}) ...")
            object.__setattr__(o, "cdk_out", synthesize(o.repo_root, self.out / "cdk.out",
                                                        self.hub.name))  # fmt: skip
        schedule_hours = rate_hours(self.training.schedule)
        if schedule_hours is None:
            self.event("note", text=f"training schedule {self.training.schedule} not replayed")
        next_schedule = self.now + dt.timedelta(hours=schedule_hours or 1e9)
        next_job = self.now + dt.timedelta(hours=self.period_hours)
        recheck = dt.timedelta(hours=self.gate_config.min_hours)
        next_recheck = self.now + recheck
        end = dt.datetime(2013 + o.end_month // 12, o.end_month % 12 + 1, 1, tzinfo=dt.UTC)
        by_day = {day: part for day, part in flights.groupby(flights["hour"].dt.floor("D"))}
        while self.now < end:
            day = self.now
            if day.day == 1:
                self.land(raw, day.month - 1)
                self.start("new-data")
                if self.served is None:
                    raise SimulationError(
                        "the first pipeline run registered no approved model; see "
                        f"{self.out / 'runs'} (a shorter --seed-months may be too little data)"
                    )
                o.progress(f"{day:%Y-%m}: serving v{self.served.version}")
            self.month().served_versions.append(self.served.version)  # type: ignore[union-attr]
            self.serve_day(by_day.get(pd.Timestamp(day), flights.iloc[0:0]))
            tomorrow = day + dt.timedelta(days=1)
            for when in sorted_times(next_job, next_schedule, next_recheck, tomorrow):
                self.now = when
                if when == next_job:
                    self.monitoring_job()
                    next_job += dt.timedelta(hours=self.period_hours)
                if when == next_schedule:
                    self.start("schedule")
                    next_schedule += dt.timedelta(hours=schedule_hours or 1e9)
                if when == next_recheck:
                    self.invoke_gate({"gate": "recheck", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      "region": o.serving.home_region})  # fmt: skip
                    next_recheck += recheck
            self.now = tomorrow
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 1), "pipeline_runs": self.run_count}

    def serve_day(self, flights: pd.DataFrame) -> None:
        assert self.served is not None and self.never_retrained is not None
        month = self.month()
        for hour, rows in flights.groupby("hour"):
            scores = serve_hour(self.endpoint, self.served, rows, hour)
            if self.never_retrained is self.served:
                baseline = scores
            else:
                _, baseline = self.never_retrained.invoke(_body(rows))
            month.labels.append(rows["delayed"].to_numpy())
            month.served_scores.append(scores)
            month.baseline_scores.append(baseline)


def _body(rows: pd.DataFrame) -> str:
    from mlops.local.simulate.traffic import request_body

    return request_body(rows)


def sorted_times(*times: dt.datetime) -> list[dt.datetime]:
    """The distinct times among `times` before the last one (the next day), in order."""
    limit = times[-1]
    return sorted({t for t in times[:-1] if t <= limit})


def _gate_facts(report: dict[str, Any] | None) -> dict[str, Any]:
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


def read_raw_text(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw tables as text, exactly as the files have them (they are re-written per month)."""
    tables = {}
    for name, file in RAW_FILES.items():
        path = Path(data_dir) / file
        path = path if path.is_file() else Path(data_dir) / f"{file}.zip"
        tables[name] = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    return tables


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
        "retrains_started": month.retrains_started,
        "pipeline_runs": month.pipeline_runs,
        "promotions": month.promotions,
        "rollbacks": month.rollbacks,
    }


def simulate(options: Options) -> dict[str, Any]:
    """Run the replay and write its outputs; the summary (truth figures included)."""
    from mlops.local.simulate import report

    if options.promotion not in PROMOTION_POLICIES:
        raise SimulationError(
            f"--promotion {options.promotion!r} is not a policy (allowed: "
            f"{', '.join(PROMOTION_POLICIES)})"
        )
    if not 2 <= options.seed_months < options.end_month <= 12:
        raise SimulationError(
            f"--seed-months {options.seed_months} and --end-month {options.end_month}: need "
            "2 <= seed months < end month <= 12 (the window needs 8 weeks and a training day)"
        )
    out = Path(options.out_dir)
    if out.exists() and any(out.iterdir()):
        raise SimulationError(f"--out {out} is not empty; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    replay = Replay(options)
    cost = replay.run()
    months = [month_summary(m) for m in replay.months.values()]
    report.annotate_drops(months, replay.test_auc)
    summary = {
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
        "auc_drop_definition": f"served AUC < its own test-window AUC - {report.AUC_DROP}",
        "not_simulated": "endpoint deployment alarms (5xx, latency): no rollbacks are possible",
        "truth": report.truth(months, replay.timeline),
    }
    report.write_outputs(out, replay.timeline, months, summary)
    return {"summary": summary, "months": months, "table": report.monthly_table(months)}
