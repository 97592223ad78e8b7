"""`mlops local simulate` end to end on a short span: seeded on January-February, serving March
(a slice of the bundled data), through the synthesized pipeline, the real serving code, the
monitoring job and the retrain gate's own decision functions."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from step_fixtures import raw_tables, write_raw_tables

from mlops import cli
from mlops.config import PlatformConfig
from mlops.local.registry import LocalRegistry
from mlops.local.run_local import load_module
from mlops.local.simulate.endpoint import (
    FAULT_HOURS,
    EndpointReplay,
    EndpointService,
    Fault,
    parse_fault,
)
from mlops.local.simulate.replay import Options, SimulationError, simulate
from mlops.local.simulate.traffic import ServedModel, year_of_flights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def replay(
    assembly_dir: Path, platform: PlatformConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("simulate")
    # One airport keeps the runs short; a two-day monitoring window then still holds the
    # drift job's 500 records per feature.
    tables = raw_tables(months=(1, 2, 3))
    tables["flights"] = tables["flights"].loc[tables["flights"]["origin"] == "EWR"]
    data = write_raw_tables(tmp / "raw", tables)
    staging = platform.environment("staging")
    serving = replace(staging, drift=replace(staging.drift, schedule="rate(2 days)"))
    lines: list[str] = []
    options = Options(
        repo_root=ROOT,
        out_dir=tmp / "out",
        platform=platform,
        serving=serving,
        data_dir=data,
        seed_months=2,
        end_month=3,
        # Two winter months make a weaker model than dev's 0.65 gate asks for.
        parameters={"AucThreshold": "0.55"},
        cdk_out=assembly_dir,
        progress=lines.append,
        # The seed release fails for six hours: its alarm fires, but there is nothing to roll
        # back to (test_a_faulty_release_is_rolled_back has two releases).
        fault=Fault(3, "errors"),
    )
    result = simulate(options)
    return {**result, "out": tmp / "out", "lines": lines, "data": data}


@pytest.fixture(scope="module")
def traffic(replay: dict[str, Any]) -> pd.DataFrame:
    """The e2e slice's flights as the endpoint receives them (request minute and line)."""
    return year_of_flights(replay["data"])


def test_the_replay_writes_its_timeline_table_and_chart(replay: dict[str, Any]) -> None:
    out = replay["out"]
    timeline = json.loads((out / "timeline.json").read_text())
    times = [event["time"] for event in timeline]
    assert times == sorted(times)
    first = [e["event"] for e in timeline[:3]]
    assert first == ["data_landed", "pipeline_run", "promoted"]
    assert timeline[0]["time"].startswith("2013-03-01") and timeline[0]["through"] == "2013-02"
    run = timeline[1]
    assert (run["trigger"], run["status"], run["registered_version"]) == (
        "new-data",
        "Succeeded",
        1,
    )
    assert run["window"]["test"][1] == "2013-02-28"  # resolved from the data landed so far
    assert run["margin"] == 0.025
    assert (out / "simulation.png").stat().st_size > 10_000
    assert (out / "months.md").read_text().startswith("| month | served |")
    assert any(line.startswith("2013-03: serving v1") for line in replay["lines"])


def test_the_month_is_scored_by_the_served_model_and_monitored(replay: dict[str, Any]) -> None:
    (month,) = replay["months"]
    raw = replay["data"] / "flights.csv"
    flights = pd.read_csv(raw, dtype=str, keep_default_na=False)
    flown = flights[(flights["month"] == "3") & (flights["arr_delay"] != "NA")]
    assert set(flights["origin"]) == {"EWR"}
    assert month["month"] == "2013-03" and month["served_versions"] == [1]
    # Scheduled departures cross into April in UTC: the month counts by UTC day.
    assert abs(month["flights"] + month["failed_flights"] - len(flown)) < 100
    assert month["auc_served"] == month["auc_never_retrained"]  # v1 is the seed model
    assert 0.55 < month["auc_served"] < 0.85
    # The daily monitoring job read the capture and the labels and published its metrics.
    assert month["drift_score_mean"] > 0 and 0 <= month["out_of_range_mean"] <= 1
    assert month["monitored_auc_mean"] == pytest.approx(month["auc_served"], abs=0.05)
    capture = replay["out"] / "s3" / "simulated-data" / "datacapture"
    files = sorted(capture.glob("flightdelay-staging/AllTraffic/2013/03/15/*/*.jsonl"))
    assert len(files) > 10  # one file per hour, a JSON line per departure minute's request
    assert files, "no capture in SageMaker's endpoint/variant/yyyy/mm/dd/hh layout"
    record = json.loads(files[0].read_text().splitlines()[0])
    assert record["captureData"]["endpointInput"]["observedContentType"] == "text/csv"
    assert record["eventMetadata"]["inferenceId"]


def test_alarms_and_triggers_follow_their_rules(replay: dict[str, Any]) -> None:
    timeline = json.loads((replay["out"] / "timeline.json").read_text())
    (month,) = replay["months"]
    drift_alarms = [
        e for e in timeline if e["event"] == "alarm" and e["alarm"].endswith("DriftPersists")
    ]
    assert month["alarms_fired"] == sum(e["state"] == "ALARM" for e in drift_alarms)
    states = [e["state"] for e in drift_alarms]
    assert all(a != b for a, b in itertools.pairwise(states))  # transitions only
    gate = [e for e in timeline if e["event"] == "retrain_gate" and e["invoked_by"] == "alarm"]
    assert len(gate) == month["alarms_fired"]  # every ALARM transition invoked the gate
    # No new data lands inside March: every start after the first reuses the first run.
    runs = [e for e in timeline if e["event"] == "pipeline_run"]
    assert len(runs) == 1
    reused = [e for e in timeline if e["event"] == "pipeline_reused"]
    assert {e["trigger"] for e in reused} >= {"schedule"}  # dev trains every 7 days
    summary = json.loads((replay["out"] / "summary.json").read_text())
    assert summary["truth"]["pipeline_runs"] == 1
    assert summary["truth"]["alarms_fired"] == month["alarms_fired"]


def test_bad_spans_and_outputs_are_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    (tmp_path / "a-file").write_text("kept")
    cases = [
        (["--out", str(tmp_path / "a-file")], "is a file; give a new folder"),
        (["--out", str(tmp_path / "a-file" / "out")], "cannot create the folder ("),
        (["--seed-months", "6", "--end-month", "5"], "need 2 <= seed months < end month"),
        (["--seed-months", "0"], "'0' is not a month number"),
        (["--out", str(tmp_path / "busy")], "is not empty"),
        (["--env", "dev"], "serves serverless"),
        (["--env", "qa"], "unknown environment"),
        (["--inject-fault", "8:crash"], "KIND one of errors, latency"),
        (["--inject-fault", "13:errors"], "MONTH 1 to 12"),
    ]
    for args, message in cases:
        try:
            code = cli.main(["local", "simulate", *args])
        except SystemExit as exit_:  # argparse's own checks
            code = int(exit_.code or 0)
        assert code == 2
        err = capsys.readouterr().err
        assert err.startswith("ERROR: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "a-file").read_text() == "kept"


def test_options_are_checked_before_any_work(tmp_path: Path, platform: PlatformConfig) -> None:
    options = Options(
        repo_root=ROOT,
        out_dir=tmp_path / "out",
        platform=platform,
        serving=platform.environment("staging"),
        data_dir=tmp_path,
        promotion="sometimes",
    )
    with pytest.raises(SimulationError, match="not a policy"):
        simulate(options)
    served = replace(options, promotion="auto", seed_months=6, end_month=11)
    for month in (6, 12):  # the last seed month, the month after the end
        with pytest.raises(SimulationError, match="is not a served month"):
            simulate(replace(served, fault=Fault(month, "errors")))
    # The span is checked first: a fault outside a bad span names the span, not the fault.
    with pytest.raises(SimulationError, match="--end-month 5: need"):
        simulate(replace(served, end_month=5, fault=Fault(6, "errors")))
    busy = tmp_path / "busy"
    (busy / "x").mkdir(parents=True)
    for month in (7, 11):  # the first and last served months pass, up to the next check
        with pytest.raises(SimulationError, match="is not empty"):
            simulate(replace(served, out_dir=busy, fault=Fault(month, "errors")))
    assert not (tmp_path / "out").exists()


def test_the_seed_release_has_no_rollback_target(replay: dict[str, Any]) -> None:
    """The fault of the e2e replay hits v1, the only release: the Lambda's own decision is
    "no previous config" (notify, change nothing), so the requests keep failing."""
    timeline = json.loads((replay["out"] / "timeline.json").read_text())
    decisions = [e for e in timeline if e["event"] == "rollback_decision"]
    assert decisions and {d["action"] for d in decisions} == {"no_previous_config"}
    assert all(d["from_version"] == d["to_version"] == 1 for d in decisions)
    (month,) = replay["months"]
    assert month["endpoint_alarms"] == len(decisions) and month["rollbacks"] == 0
    start, end = Fault(3, "errors").span()
    assert start.isoformat() <= decisions[0]["time"] < end.isoformat()
    assert month["failed_requests"] > 60  # EWR departs most minutes of a six-hour day span


def _three_in_a_row(minutes: list[dt.datetime]) -> dt.datetime:
    """When a 3-of-3 one-minute alarm on these minutes' datapoints first fires."""
    present = set(minutes)
    first = next(
        m for m in sorted(minutes)
        if m - dt.timedelta(minutes=1) in present and m - dt.timedelta(minutes=2) in present
    )  # fmt: skip
    return first + dt.timedelta(minutes=1)


@pytest.mark.parametrize("kind", ["errors", "latency"])
def test_a_faulty_release_is_rolled_back(
    replay: dict[str, Any],
    traffic: pd.DataFrame,
    platform: PlatformConfig,
    tmp_path: Path,
    kind: str,
) -> None:
    """Two releases of the e2e replay's model; the second fails or slows down on March 15
    from 12:00: the alarm fires on the third faulty minute in a row, the rollback Lambda's
    decision puts the first release back, rejects the second and notifies."""
    archive = next((replay["out"] / "registry").rglob("model.tar.gz"))
    registry = LocalRegistry(tmp_path / "registry")
    arns = [
        registry.register(group="g", model_data=archive, status="Approved").model_package_arn
        for _ in range(2)
    ]
    models = [ServedModel.load(archive, v, tmp_path / "models") for v in (1, 2)]
    events: list[tuple[str, dt.datetime, dict[str, Any]]] = []
    live = EndpointReplay(
        EndpointService("ep", registry),
        platform.environment("staging").alarms,
        parse_fault(f"3:{kind}"),
        load_module(ROOT / "lambda" / "rollback" / "rollback_logic.py", "test_rollback_logic"),
        "us-east-1",
        lambda name, at, **details: events.append((name, at, details)),
    )
    for model, arn in zip(models, arns, strict=True):
        live.release(model, arn)
    day = dt.datetime(2013, 3, 15, tzinfo=dt.UTC)
    frame = traffic.loc[traffic["minute"].dt.floor("D") == day].reset_index(drop=True)
    answered = live.serve_day(day, frame)

    start, end = Fault(3, kind).span()
    in_span = sorted(m.to_pydatetime() for m in frame["minute"].unique() if start <= m < end)
    fired = _three_in_a_row(in_span)
    (alarm,) = [e for e in events if e[0] == "endpoint_alarm" and e[2]["state"] == "ALARM"]
    suffix = "ErrorRate5xx" if kind == "errors" else "ModelLatencyP99"
    assert alarm[1] == fired and alarm[2]["alarm"] == f"ep-{suffix}"
    (decision,) = [e for e in events if e[0] == "rollback_decision"]
    assert decision[2]["action"] == "rolled_back"
    assert (decision[2]["from_version"], decision[2]["to_version"]) == (2, 1)
    assert registry.get("g", 2).status == "Rejected" and registry.get("g", 1).status == "Approved"
    assert "[rollback notified]" in registry.get("g", 2).approval_description
    assert [m["subject"] for m in live.service.messages] == ["Rolled back ep"]
    # Who answered: v2 until the alarm's minute, v1 after it; failures only in between.
    by_minute = {a.request.minute.to_pydatetime(): a.version for a in answered}
    all_minutes = sorted(m.to_pydatetime() for m in frame["minute"].unique())
    for minute in all_minutes:
        if minute < start:
            assert by_minute[minute] == 2
        elif minute >= fired:
            assert by_minute[minute] == 1
        elif kind == "errors":
            assert minute not in by_minute  # a 5xx: no answer, no capture
        else:
            assert by_minute[minute] == 2  # slow, but answered
    assert fired < end - dt.timedelta(hours=FAULT_HOURS - 1)


def test_batch_answers_are_the_answers_of_single_requests(
    replay: dict[str, Any], traffic: pd.DataFrame, tmp_path: Path
) -> None:
    archive = next((replay["out"] / "registry").rglob("model.tar.gz"))
    model = ServedModel.load(archive, 1, tmp_path)
    lines = traffic["line"].iloc[:400].tolist()
    answers, scores = model.invoke_batch(lines)
    for start, stop in ((0, 1), (1, 7), (7, 400)):
        alone, alone_scores = model.invoke("".join(f"{line}\n" for line in lines[start:stop]))
        assert alone.splitlines() == answers[start:stop]
        assert np.array_equal(alone_scores, scores[start:stop])
