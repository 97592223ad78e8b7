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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.local.definition_source import load_definition_from_assembly
from mlops.local.registry import LocalRegistry
from mlops.local.run_local import (
    load_module,
    new_output_folder,
    run_local,
    stage_raw_data,
    synthesize,
)
from mlops.local.runner import RunSummary
from mlops.local.simulate import cost
from mlops.local.simulate.ahead import RunsAhead, timed
from mlops.local.simulate.cloud import (
    AlarmEmulator,
    Execution,
    LocalS3,
    MetricStore,
    PipelineExecutions,
    pipeline_steps_of,
)
from mlops.local.simulate.endpoint import EndpointReplay, EndpointService
from mlops.local.simulate.options import Options, SimulationError, check_options
from mlops.local.simulate.report import Month, gate_facts
from mlops.local.simulate.schedule import rate_hours, sorted_times
from mlops.local.simulate.traffic import (
    LABEL_DELAY,
    RAW_FILES,
    Endpoint,
    ServedModel,
    read_raw_text,
    requests_of,
    write_day,
    year_of_flights,
)
from mlops.naming import endpoint_name, model_package_group_name, training_pipeline_name

_STEPS_DIR = str(Path(__file__).resolve().parents[3] / "pipeline_steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)

import monitor  # noqa: E402
import step_io  # noqa: E402

BUCKET = "simulated-data"
VARIANT = "AllTraffic"
NAMESPACE = "simulation/monitoring"
LABEL_LOOKBACK_HOURS = 24
assert pd.Timedelta(hours=LABEL_LOOKBACK_HOURS) >= LABEL_DELAY


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
        self.executions = PipelineExecutions(
            pipeline, self._execute, self.deployed_definition, self.approved_incumbent
        )
        self._definition: dict[str, Any] | None = None
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
            model_package_group=model_package_group_name(options.platform, hub),
        )
        self.landed_through: int | None = None  # month of the newest landed data
        self.runs_by_data: dict[int, tuple[str, int | None]] = {}
        rollback_dir = options.repo_root / "lambda" / "rollback"
        self.live = EndpointReplay(
            EndpointService(self.endpoint.name, self.registry),
            options.serving.alarms,
            options.fault,
            load_module(rollback_dir / "rollback_logic.py", "simulated_rollback_logic"),
            options.serving.home_region,
            self._endpoint_event,
        )
        self.steps_by_data: dict[int, list[dict[str, Any]]] = {}
        self.never_retrained: ServedModel | None = None
        self.phase = cost.Phases()
        self.ahead = RunsAhead(self.registry, self.out / "ahead")
        self.run_count = 0
        self.test_auc: dict[int, float] = {}  # each version's AUC on its own test window

    # ---- events ---------------------------------------------------------------------------

    def event(self, kind: str, at: dt.datetime | None = None, **details: Any) -> None:
        self.timeline.append({"time": (at or self.now).isoformat(), "event": kind, **details})

    def _endpoint_event(self, kind: str, at: dt.datetime, **details: Any) -> None:
        month = self.month(at - dt.timedelta(seconds=1))  # the period's month
        if kind == "endpoint_alarm" and details["state"] == "ALARM":
            month.endpoint_alarms += 1
        if kind == "rollback_decision" and details.get("updated_endpoint"):
            month.rollbacks += 1
        self.event(kind, at=at, **details)

    @property
    def served(self) -> ServedModel | None:
        """What the endpoint serves now (a rollback changes it)."""
        return self.live.service.serving

    def month(self, at: dt.datetime | None = None) -> Month:
        key = f"{at or self.now:%Y-%m}"
        return self.months.setdefault(key, Month(key))

    # ---- the pipeline ---------------------------------------------------------------------

    def data_through(self, raw: dict[str, pd.DataFrame], through: int) -> Path:
        """The raw files as they stand at the end of month `through` (written once)."""
        folder = self.out / "data" / f"through-2013-{through:02d}"
        if not folder.is_dir():
            partial = folder.with_name(folder.name + ".partial")
            partial.mkdir(parents=True, exist_ok=True)
            for name, frame in raw.items():
                months = frame["month"].astype(int) if name != "planes" else None
                part = frame if months is None else frame.loc[months <= through]
                part.to_csv(partial / RAW_FILES[name], index=False)
            partial.rename(folder)
        return folder

    def land(self, raw: dict[str, pd.DataFrame], through: int) -> None:
        folder = self.data_through(raw, through)
        self.landed_through = through
        self.event("data_landed", through=f"2013-{through:02d}", folder=str(folder))

    def start(self, trigger: str) -> None:
        """A trigger whose EventBridge target starts the pipeline with default parameters."""
        self.executions.trigger = trigger
        self.executions.now = self.now
        self.executions.start_pipeline_execution(PipelineName=self.executions.pipeline_name)

    def _execute(self, execution: Execution) -> str:
        assert self.landed_through is not None
        # The gate acts on the monitoring window that just closed: at 00:00 on the 1st, that
        # is the previous month's (the last one's, at the end of the span).
        if execution.trigger == "drift-gate":
            self.month(self.now - dt.timedelta(seconds=1)).retrains_started += 1
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
        folder = self.run_folder(data)
        self.o.progress(
            f"  {self.now:%Y-%m-%d} pipeline run {self.run_count} ({execution.trigger}) on data "
            f"through 2013-{data:02d} ..."
        )
        outcome, why = None, "started by a trigger with parameters of its own"
        if not execution.parameters:
            outcome, why = self.ahead.take(data)
        ran_ahead = outcome is not None
        if outcome is None:
            if folder.exists():  # the discarded run ahead's
                folder = folder.with_name(folder.name + "-again")
            outcome = timed(lambda: self.run_pipeline(data, folder, self.out / "registry",
                                                      execution.parameters))  # fmt: skip
            self.phase.add("pipeline runs (inline)", outcome.seconds, outcome.cpu_seconds)
        summary = outcome.summary
        registered = summary.registered_model or {}
        report = registered.get("metrics") or self._evaluation(folder)
        version = registered.get("version")
        self.event(
            "pipeline_run",
            trigger=execution.trigger,
            execution=execution.arn,
            parameters=execution.parameters,
            status=summary.status,
            seconds=round(outcome.seconds, 1),
            ran_ahead=ran_ahead,
            ahead=why,
            registered_version=version,
            failure=summary.failure_reason,
            **gate_facts(report),
        )
        self.o.progress(
            f"    {summary.status} in {outcome.seconds:.0f} s"
            + (" (ran ahead)" if ran_ahead else "")
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

    def deployed_definition(self) -> dict[str, Any]:
        """The synthesized pipeline definition, its defaults as the replay deploys them (the
        simulation's own --parameter values)."""
        if self._definition is None:
            assert self.o.cdk_out is not None
            definition, _ = load_definition_from_assembly(Path(self.o.cdk_out), self.hub.name)
            for parameter in definition.get("Parameters", []):
                if parameter.get("Name") in self.o.parameters:
                    parameter["DefaultValue"] = self.o.parameters[parameter["Name"]]
            self._definition = definition
        return self._definition

    def approved_incumbent(self, group: str) -> str:
        """What FindIncumbent would pick now: the newest Approved package's ARN, or ""."""
        approved = (
            self.registry.list_packages(group, "Approved")
            if group in self.registry.groups()
            else []
        )
        return approved[-1].model_package_arn if approved else ""

    def run_folder(self, data: int) -> Path:
        return self.out / "runs" / f"run-on-data-through-2013-{data:02d}"

    def run_pipeline(
        self, data: int, folder: Path, registry: Path, parameters: dict[str, str]
    ) -> RunSummary:
        """`mlops local run` of the synthesized definition on the data through `data`."""
        return run_local(
            self.o.repo_root,
            self.out / "data" / f"through-2013-{data:02d}",
            folder,
            registry,
            self.hub.name,
            parameters={**self.o.parameters, **parameters},
            progress=lambda _line: None,
            cdk_out=self.o.cdk_out,
        )

    def run_ahead(self, raw: dict[str, pd.DataFrame], data: int) -> None:
        """Start the run on the data through `data` now, on the second core (see ahead.py)."""
        self.data_through(raw, data)

        def run(registry: Path) -> RunSummary:
            outcome = timed(lambda: self.run_pipeline(data, self.run_folder(data), registry, {}))
            self.phase.add("pipeline runs (ahead, in parallel)", outcome.seconds,
                           outcome.cpu_seconds)  # fmt: skip
            return outcome.summary

        self.ahead.start(data, run)

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
        model = ServedModel.load(Path(package.model_data_path), version, self.out / "served-models")
        self.live.release(model, package.model_package_arn)
        if first:
            self.never_retrained = model
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
            "--drift-workers", "1",  # a day of captures: forking this process costs more
            # Labels arrive LABEL_DELAY after their prediction: a day of earlier captures holds
            # every prediction the window's labels refer to, so the metrics are the 168 h
            # default's, without linking a week of captures into every daily job.
            "--label-lookback-hours", str(LABEL_LOOKBACK_HOURS),
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
        cpu = cost.cpu_seconds()
        with self.phase("synth and traffic", children=True), ThreadPoolExecutor(1) as pool:
            synth = None
            if o.cdk_out is None:  # one synth for every run: a node process, in parallel
                o.progress(f"Synthesizing the app (environment {self.hub.name}) ...")
                synth = pool.submit(synthesize, o.repo_root, self.out / "cdk.out", self.hub.name)
            raw = read_raw_text(o.data_dir)  # once: each landing writes a slice of it
            staged = self.out / "data" / "full"
            stage_raw_data(o.data_dir, staged)
            o.progress("Building the year's traffic (features of every flown flight) ...")
            flights = year_of_flights(staged)
            if synth is not None:
                object.__setattr__(o, "cdk_out", synth.result())
        schedule_hours = rate_hours(self.training.schedule)
        if schedule_hours is None:
            self.event("note", text=f"training schedule {self.training.schedule} not replayed")
        next_schedule = self.now + dt.timedelta(hours=schedule_hours or 1e9)
        next_job = self.now + dt.timedelta(hours=self.period_hours)
        recheck = dt.timedelta(hours=self.gate_config.min_hours)
        next_recheck = self.now + recheck
        end = dt.datetime(2013 + o.end_month // 12, o.end_month % 12 + 1, 1, tzinfo=dt.UTC)
        by_day = {day: part for day, part in flights.groupby(flights["minute"].dt.floor("D"))}
        try:
            while self.now < end:
                day = self.now
                if day.day == 1:
                    with self.phase("pipeline runs (landing: waiting for the run or running it)"):
                        self.land(raw, day.month - 1)
                        self.start("new-data")
                    if self.served is None:
                        raise SimulationError(
                            "the first pipeline run registered no approved model; see "
                            f"{self.out / 'runs'} (a few seed months may train a model below the "
                            "quality bar: give more --seed-months, or lower it for a trial with "
                            "--parameter AucThreshold=0.55)"
                        )
                    o.progress(
                        f"{day:%Y-%m}: serving v{self.served.version} "
                        f"({time.perf_counter() - started:.0f} s)"
                    )
                    if day.month < o.end_month:  # this month's data lands on the next month's 1st
                        self.run_ahead(raw, day.month)
                self.month().served_versions.append(self.served.version)  # type: ignore[union-attr]
                self.serve_day(day, by_day.get(pd.Timestamp(day), flights.iloc[0:0]))
                tomorrow = day + dt.timedelta(days=1)
                for when in sorted_times(next_job, next_schedule, next_recheck, tomorrow):
                    self.now = when
                    if when == next_job:
                        with self.phase("monitoring jobs and alarms"):
                            self.monitoring_job()
                        next_job += dt.timedelta(hours=self.period_hours)
                    if when == next_schedule:
                        self.start("schedule")  # between landings: reuses the landing's run
                        next_schedule += dt.timedelta(hours=schedule_hours or 1e9)
                    if when == next_recheck:
                        self.invoke_gate({"gate": "recheck", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                          "region": o.serving.home_region})  # fmt: skip
                        next_recheck += recheck
                self.now = tomorrow
        finally:
            self.ahead.close()
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cost.cpu_seconds() - cpu, 1),
            "phases": self.phase.summary(),
            "pipeline_runs": self.run_count,
        }

    def serve_day(self, day: dt.datetime, flights: pd.DataFrame) -> None:
        """The day's requests through the endpoint (and its alarms, and rollbacks), their
        capture and labels; the month's truth: served and never-retrained scores."""
        assert self.never_retrained is not None
        with self.phase("serving and endpoint alarms"):
            answered = self.live.serve_day(day, flights)
        with self.phase("capture and labels"):
            write_day(self.endpoint, flights, answered)
        month = self.month()
        month.failed_requests += len(requests_of(flights)) - len(answered)
        if not answered:
            month.failed_flights += len(flights)
            return
        rows = np.concatenate([np.arange(a.request.start, a.request.stop) for a in answered])
        month.failed_flights += len(flights) - len(rows)
        served = np.concatenate([a.scores for a in answered])
        if all(a.version == self.never_retrained.version for a in answered):
            baseline = served
        else:
            with self.phase("never-retrained scoring"):
                lines = [line for a in answered for line in a.lines]
                _, baseline = self.never_retrained.invoke_batch(lines)
        month.labels.append(flights["delayed"].to_numpy()[rows])
        month.served_scores.append(served)
        month.baseline_scores.append(baseline)


def simulate(options: Options) -> dict[str, Any]:
    """Run the replay and write its outputs; the summary (truth figures included)."""
    from mlops.local.simulate import report

    check_options(options)
    out = new_output_folder(Path(options.out_dir), SimulationError)
    replay = Replay(options)
    cost = replay.run()
    months = [report.month_summary(m) for m in replay.months.values()]
    report.annotate_drops(months, replay.test_auc)
    summary = report.run_summary(replay, options, cost, months)
    timeline = sorted(replay.timeline, key=lambda e: e["time"])  # stable: causes stay first
    report.write_outputs(out, timeline, months, summary)
    return {"summary": summary, "months": months, "table": report.monthly_table(months)}
