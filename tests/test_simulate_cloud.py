"""The AWS stand-ins of `mlops local simulate`: CloudWatch alarm semantics (M of N, missing
data), StartPipelineExecution's idempotency, the S3 listing monitor.py relies on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import load_lambda_module

from mlops.local.runner import StepResult
from mlops.local.simulate.cloud import (
    AlarmEmulator,
    LocalS3,
    MetricStore,
    PipelineExecutions,
    pipeline_steps_of,
)

T0 = dt.datetime(2013, 7, 1, tzinfo=dt.UTC)


def _alarm(
    m: int = 2, n: int = 3, comparison: str = "GreaterThanOrEqualToThreshold"
) -> AlarmEmulator:
    return AlarmEmulator("a", "DriftScore", 0.5, comparison, n, m)


def _feed(alarm: AlarmEmulator, values: list[float | None]) -> list[str | None]:
    return [alarm.evaluate(v, T0 + dt.timedelta(days=i)) for i, v in enumerate(values)]


def test_m_of_n_breaching_datapoints_alarm_and_fewer_do_not() -> None:
    alarm = _alarm(m=2, n=3)
    assert _feed(alarm, [0.6, 0.1]) == ["OK", None]  # one of the last three breaches
    assert alarm.state == "OK"
    assert _feed(alarm, [0.5]) == ["ALARM"]  # 0.6, 0.1, 0.5: two of three, 0.5 at the edge
    assert alarm.state_since == T0 + dt.timedelta(days=0)
    assert _feed(alarm, [0.49]) == ["OK"]  # 0.1, 0.5, 0.49: one of three


def test_missing_datapoints_keep_the_state_and_present_ones_decide() -> None:
    alarm = _alarm(m=2, n=2)
    # One breaching datapoint is not 2 of 2, even with the other period not yet there.
    assert _feed(alarm, [0.9, 0.9]) == ["OK", "ALARM"]
    assert _feed(alarm, [None, None, None]) == [None, None, None]  # nothing present: kept
    assert alarm.state == "ALARM"
    assert _feed(alarm, [0.1]) == ["OK"]  # the two newest present: 0.9, 0.1
    # A gap inside the range is filled from older datapoints: [None, 0.9] counts 0.9, 0.9.
    assert _feed(alarm, [0.9, None, 0.9]) == [None, None, "ALARM"]


def test_not_breaching_missing_data_counts_as_good() -> None:
    """The endpoint alarms: 3 of 3 one-minute datapoints, missing = not breaching."""
    alarm = AlarmEmulator("e", "Invocation5XXErrors", 0.01, "GreaterThanThreshold", 3, 3,
                          missing="notBreaching")  # fmt: skip
    assert _feed(alarm, [1.0, 1.0, None, 1.0, 1.0]) == ["OK", None, None, None, None]
    assert _feed(alarm, [1.0]) == ["ALARM"]  # three breaching minutes in a row
    assert _feed(alarm, [None]) == ["OK"]  # a minute without requests is a good one
    assert _feed(alarm, [1.0, 1.0, 0.01]) == [None, None, None]  # at the threshold: not above
    assert _feed(alarm, [0.0100001]) == [None]  # 1.0, 0.01, 0.0100001: two of three
    # 0.01, 0.0100001, 0.0100001: still two; then three just above the threshold.
    assert _feed(alarm, [0.0100001, 0.0100001]) == [None, "ALARM"]


def test_unknown_missing_data_treatment_is_refused() -> None:
    with pytest.raises(ValueError, match="TreatMissingData"):
        AlarmEmulator("e", "m", 1.0, "GreaterThanThreshold", 1, 1, missing="breaching")


def test_a_lower_is_worse_metric_breaches_below_the_threshold() -> None:
    alarm = _alarm(m=1, n=1, comparison="LessThanThreshold")
    assert _feed(alarm, [0.5, 0.4999]) == ["OK", "ALARM"]


def test_datapoints_to_alarm_beyond_the_periods_is_refused() -> None:
    with pytest.raises(ValueError, match="datapoints_to_alarm"):
        _alarm(m=3, n=2)


def test_the_endpoint_alarms_are_the_deployed_ones() -> None:
    from mlops.constructs import endpoint_alarms
    from mlops.local.simulate import endpoint

    assert endpoint.EVALUATION_PERIODS == endpoint_alarms.EVALUATION_PERIODS
    assert endpoint.DATAPOINTS_TO_ALARM == endpoint_alarms.DATAPOINTS_TO_ALARM
    assert endpoint.PERIOD.total_seconds() == endpoint_alarms.PERIOD.to_seconds()


def test_describe_alarms_answers_for_this_alarm_only() -> None:
    alarm = _alarm(m=1, n=1)
    alarm.evaluate(0.9, T0)
    (found,) = alarm.describe_alarms(AlarmNames=["a"], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    assert (found["StateValue"], found["StateUpdatedTimestamp"]) == ("ALARM", T0)
    assert alarm.describe_alarms(AlarmNames=["b"], AlarmTypes=[])["MetricAlarms"] == []


def test_one_execution_per_client_request_token() -> None:
    ran: list[str] = []
    executions = PipelineExecutions("p", lambda e: ran.append(e.arn) or "Succeeded")
    executions.now = T0
    first = executions.start_pipeline_execution(PipelineName="p", ClientRequestToken="t" * 32)
    again = executions.start_pipeline_execution(PipelineName="p", ClientRequestToken="t" * 32)
    other = executions.start_pipeline_execution(PipelineName="p", ClientRequestToken="u" * 32)
    assert first == again != other
    assert len(ran) == 2
    (newest, _oldest) = executions.list_pipeline_executions()["PipelineExecutionSummaries"][:2]
    assert newest["PipelineExecutionStatus"] == "Succeeded"
    with pytest.raises(ValueError, match="no pipeline q"):
        executions.start_pipeline_execution(PipelineName="q")


def test_local_s3_lists_under_a_prefix_and_downloads(tmp_path: Path) -> None:
    (tmp_path / "b" / "x" / "2013" / "07").mkdir(parents=True)
    (tmp_path / "b" / "x" / "2013" / "07" / "f.jsonl").write_text("{}\n")
    s3 = LocalS3(tmp_path)
    (page,) = s3.get_paginator("list_objects_v2").paginate(Bucket="b", Prefix="x/2013/")
    assert page["Contents"] == [{"Key": "x/2013/07/f.jsonl"}]
    assert list(s3.get_paginator("list_objects_v2").paginate(Bucket="b", Prefix="y/")) == [{}]
    s3.download_file("b", "x/2013/07/f.jsonl", str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_text() == "{}\n"


def test_the_metric_store_gives_the_period_datapoint() -> None:
    now = [T0]
    store = MetricStore(now=lambda: now[0])
    dims = [{"Name": "EndpointName", "Value": "e"}]
    store.put_metric_data("ns", [{"MetricName": "DriftScore", "Dimensions": dims, "Value": 1.0}])
    now[0] = T0 + dt.timedelta(days=1)
    store.put_metric_data("ns", [{"MetricName": "DriftScore", "Dimensions": dims, "Value": 2.0}])
    assert store.latest("DriftScore", {"EndpointName": "e"}, now[0]) == 2.0
    assert store.latest("DriftScore", {"EndpointName": "e"}, now[0] + dt.timedelta(1)) is None
    assert store.latest("ModelAUC", {"EndpointName": "e"}, T0) is None


# ---- ListPipelineExecutionSteps from a local run: what the retrain gate reads ---------------

gate = load_lambda_module("retrain_gate", "gate_logic", "simulate_cloud_gate_logic")
INCUMBENT = "arn:aws:sagemaker:local:000000000000:model-package/g/1"
REFUSED_RUN = [
    StepResult(
        "FindIncumbent",
        "Lambda",
        "Succeeded",
        outputs={"HasIncumbent": "true", "IncumbentModelPackageArn": INCUMBENT},
    ),
    StepResult("Evaluate", "Processing", "Succeeded"),
    StepResult("CheckQuality", "Condition", "Succeeded", note="outcome false"),
    StepResult("RegisterModel", "RegisterModel", "Skipped"),
    StepResult("QualityGateFailed", "Fail", "Failed", failure_reason="Quality gate failed: AUC"),
]
CRASHED_RUN = [
    StepResult("Preprocess", "Processing", "Failed", failure_reason="train split: only 0.0%"),
    StepResult("Train", "Training", "NotStarted"),
]


def test_local_steps_are_listed_as_sagemaker_lists_them() -> None:
    listed = pipeline_steps_of(REFUSED_RUN)
    names = [s["StepName"] for s in listed]
    assert names == ["QualityGateFailed", "CheckQuality", "Evaluate", "FindIncumbent"]
    assert listed[0]["Metadata"] == {"Fail": {"ErrorMessage": "Quality gate failed: AUC"}}
    assert listed[1]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert listed[3]["Metadata"] == {"Lambda": {"OutputParameters": [
        {"Name": "HasIncumbent", "Value": "true"},
        {"Name": "IncumbentModelPackageArn", "Value": INCUMBENT},
    ]}}  # fmt: skip
    assert [s["StepName"] for s in pipeline_steps_of(CRASHED_RUN)] == ["Preprocess"]


@pytest.mark.parametrize(
    ("steps", "approved", "parameters", "starts"),
    [
        (REFUSED_RUN, INCUMBENT, None, False),
        (CRASHED_RUN, INCUMBENT, None, True),
        (REFUSED_RUN, "", None, True),  # its incumbent rolled back since
        (REFUSED_RUN, INCUMBENT, [{"Name": "AucThreshold", "Value": "0.9"}], True),
    ],
    ids=["refused", "crashed", "incumbent-rolled-back", "operator-trial"],
)
def test_the_gate_tells_a_refused_run_from_a_crashed_one_in_the_replay(
    steps: list[StepResult], approved: str, parameters: Any, starts: bool
) -> None:
    """The gate's own decision against the replay's executions: a refusal that holds waits
    for new data; a crash, or a refusal no new run would repeat, starts one; all beyond the
    rate limit and with the alarm in ALARM."""

    def run(execution: object) -> str:
        execution.steps = pipeline_steps_of(steps)  # type: ignore[attr-defined]
        return "Failed"

    definition = {"Parameters": [{"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.6}]}
    executions = PipelineExecutions("p", run, lambda: definition, {"g": approved}.__getitem__)
    executions.now = T0
    executions.start_pipeline_execution(
        PipelineName="p", ClientRequestToken="t" * 32, PipelineParameters=parameters
    )
    executions.now = later = T0 + dt.timedelta(days=2)
    decision = gate.decide(
        executions.list_pipeline_executions()["PipelineExecutionSummaries"],
        later,
        24,
        refusal=gate.refusal_lookup(executions, "p", "g"),
    )
    assert decision.start is starts
    assert decision.waiting_for_new_data is not starts
    with pytest.raises(ValueError, match="no pipeline execution nowhere"):
        executions.list_pipeline_execution_steps(PipelineExecutionArn="nowhere")
