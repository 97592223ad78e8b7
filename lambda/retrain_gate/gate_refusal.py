"""Whether a run the quality gate refused still holds the retrain gate.

A refusal is the pipeline's decision on the data a run saw (it reached the Fail step:
ListPipelineExecutionSteps, Metadata.Fail). It predicts that a new run would be refused again
only when the new run would be the same run: the same parameters, the same definition, the
same incumbent. A new run (the gate's, the schedule's, the new-data trigger's) uses the
pipeline's default parameters, its current definition and the currently approved incumbent,
so the refusal holds only when the refused run used all three:

- default parameters: every value ListPipelineParametersForExecution lists equals the current
  definition's DefaultValue (DescribePipeline's PipelineDefinition; listing only overrides or
  every value, both read the same), except WindowEnd, whose dates on or after the run's start
  date resolve to the newest data like the default `latest` (the gate's own runs pass the
  event's date). An operator's trial with explicit dates or a stricter threshold does not hold.
- the current definition: DescribePipelineExecution's PipelineVersionId equals the newest
  version's (ListPipelineVersions, newest first; DescribePipeline has no version id). A
  deployment that changed the definition or a config default makes a new version.
- the incumbent still approved: the FindIncumbent step's IncumbentModelPackageArn output (its
  Lambda metadata) equals the package a run would find now, the newest Approved package of the
  group (ListModelPackages, the find_incumbent Lambda's own query); "" on both sides when there
  was and is none. A rollback (the package Rejected) or a newer approval lapses the refusal.

Anything the gate cannot establish (a run from before the incumbent output existed, an
execution without a version id, an unreadable definition) lapses the refusal too: the gate then
starts a run as after a crash, which is judged in turn. The checks stop at the first lapse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

WINDOW_PARAMETER = "WindowEnd"
INCUMBENT_STEP = "FindIncumbent"  # mlops/pipeline_definition/contract.py STEP_FIND_INCUMBENT
INCUMBENT_OUTPUT = "IncumbentModelPackageArn"
APPROVED = "Approved"


@dataclass(frozen=True)
class Refusal:
    """A run the quality gate refused: its Fail step's message, and why the refusal no longer
    predicts the next run's outcome (None: it still does, and holds the gate)."""

    message: str
    lapsed: str | None = None


def quality_gate_refusal(steps: Iterable[Mapping[str, Any]]) -> str | None:
    """The Fail step's message when the run reached the pipeline's Fail step (its evaluation
    completed and the quality gate refused the candidate), else None (it crashed, was
    stopped, or is not over)."""
    for step in steps:
        metadata = step.get("Metadata")
        fail = metadata.get("Fail") if isinstance(metadata, Mapping) else None
        if isinstance(fail, Mapping):
            message = str(fail.get("ErrorMessage") or "").strip()
            return message or f"step {step.get('StepName', '?')} failed the run"
    return None


def _all_pages(call: Callable[..., Mapping[str, Any]], key: str, **request: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        response = call(**request)
        items.extend(response.get(key, []))
        token = response.get("NextToken")
        if not token:
            return items
        request["NextToken"] = token


def execution_steps(sagemaker: Any, execution_arn: str) -> list[Mapping[str, Any]]:
    """Every step of one execution (ListPipelineExecutionSteps, all pages, newest first)."""
    return _all_pages(
        sagemaker.list_pipeline_execution_steps,
        "PipelineExecutionSteps",
        PipelineExecutionArn=execution_arn,
        SortOrder="Descending",
    )


# ---- the plain decisions ------------------------------------------------------------------


def parameter_defaults(definition: str) -> dict[str, tuple[str, Any]]:
    """Name -> (Type, DefaultValue) of a pipeline definition's parameters; ValueError when the
    definition is not a JSON object."""
    parsed = json.loads(definition)
    if not isinstance(parsed, Mapping):
        raise ValueError("the pipeline definition is not a JSON object")
    return {
        str(p["Name"]): (str(p.get("Type", "String")), p.get("DefaultValue"))
        for p in parsed.get("Parameters", [])
        if isinstance(p, Mapping) and "Name" in p
    }


def _same_value(kind: str, value: str, default: Any) -> bool:
    """A listed value (always a string) against a definition default of type `kind`."""
    if default is None:
        return False
    try:
        if kind == "Float":
            return float(value) == float(default)
        if kind == "Integer":
            return int(value) == int(default)
    except (TypeError, ValueError):
        return False
    if kind == "Boolean":
        return value.strip().lower() == str(default).strip().lower()
    return value == str(default)


def _window_is_latest(value: str, started: date | None) -> bool:
    """A WindowEnd date on or after the run's start date selects the newest data, like
    `latest`: no flight flown after the run started could be in it."""
    try:
        window = date.fromisoformat(value)
    except ValueError:
        return False
    return started is not None and window >= started


def overridden(
    parameters: Mapping[str, str],
    defaults: Mapping[str, tuple[str, Any]],
    started: date | None,
) -> list[str]:
    """The parameters a run set away from the pipeline's defaults, sorted."""
    names = []
    for name, value in parameters.items():
        kind, default = defaults.get(name, ("String", None))
        if _same_value(kind, value, default):
            continue
        if name == WINDOW_PARAMETER and _window_is_latest(value, started):
            continue
        names.append(name)
    return sorted(names)


def run_incumbent(steps: Iterable[Mapping[str, Any]]) -> str | None:
    """The model package the run was judged against ("" for none), from the FindIncumbent
    step's Lambda output; None when the steps do not say."""
    for step in steps:
        if step.get("StepName") != INCUMBENT_STEP:
            continue
        metadata = step.get("Metadata")
        lambda_ = metadata.get("Lambda") if isinstance(metadata, Mapping) else None
        outputs = lambda_.get("OutputParameters") if isinstance(lambda_, Mapping) else None
        for output in outputs if isinstance(outputs, list) else []:
            if isinstance(output, Mapping) and output.get("Name") == INCUMBENT_OUTPUT:
                return str(output.get("Value") or "")
    return None


def parameters_lapse(overrides: list[str]) -> str | None:
    if overrides:
        return f"it ran with parameters of its own ({', '.join(overrides)})"
    return None


def version_lapse(run_version: Any, current_version: Any) -> str | None:
    if run_version is None or current_version is None:
        return "the pipeline version it ran on is not known"
    if run_version != current_version:
        return f"it ran on pipeline version {run_version}, the current one is {current_version}"
    return None


def incumbent_lapse(judged_against: str | None, approved_now: str) -> str | None:
    if judged_against is None:
        return "it does not say which incumbent it was judged against"
    if judged_against != approved_now:
        return (
            f"it was judged against incumbent {judged_against or '(none)'}, "
            f"the approved one now is {approved_now or '(none)'}"
        )
    return None


# ---- what SageMaker says ------------------------------------------------------------------


def execution_parameters(sagemaker: Any, execution_arn: str) -> dict[str, str]:
    listed = _all_pages(
        sagemaker.list_pipeline_parameters_for_execution,
        "PipelineParameters",
        PipelineExecutionArn=execution_arn,
    )
    return {str(p["Name"]): str(p.get("Value", "")) for p in listed}


def current_defaults(sagemaker: Any, pipeline_name: str) -> dict[str, tuple[str, Any]]:
    described = sagemaker.describe_pipeline(PipelineName=pipeline_name)
    return parameter_defaults(str(described.get("PipelineDefinition") or ""))


def current_version(sagemaker: Any, pipeline_name: str) -> Any:
    versions = sagemaker.list_pipeline_versions(
        PipelineName=pipeline_name, SortOrder="Descending", MaxResults=1
    ).get("PipelineVersionSummaries", [])
    return versions[0].get("PipelineVersionId") if versions else None


def approved_incumbent(sagemaker: Any, group_name: str) -> str:
    """The package a run would be judged against now: the newest Approved one, or ""."""
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group_name,
        ModelApprovalStatus=APPROVED,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    ).get("ModelPackageSummaryList", [])
    return str(listed[0]["ModelPackageArn"]) if listed else ""


def _start_date(execution: Mapping[str, Any]) -> date | None:
    started = execution.get("StartTime")
    return started.date() if isinstance(started, datetime) else None


def refusal_lookup(
    sagemaker: Any, pipeline_name: str, group_name: str
) -> Callable[[Mapping[str, Any]], Refusal | None]:
    """For decide: the Refusal of a Failed execution that ended at the Fail step, else None.
    Asks SageMaker only for a Failed execution, and only when decide needs to know."""

    def lapse_of(execution: Mapping[str, Any], arn: str, steps: Any) -> str | None:
        """Why the refusal no longer holds (first reason found), or None if it holds."""
        try:
            defaults = current_defaults(sagemaker, pipeline_name)
        except (ValueError, KeyError, TypeError):
            return "the pipeline's current definition cannot be read"
        overrides = overridden(
            execution_parameters(sagemaker, arn), defaults, _start_date(execution)
        )
        lapsed = parameters_lapse(overrides)
        if lapsed is None:
            run_version = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn).get(
                "PipelineVersionId"
            )
            lapsed = version_lapse(run_version, current_version(sagemaker, pipeline_name))
        if lapsed is None:
            lapsed = incumbent_lapse(
                run_incumbent(steps), approved_incumbent(sagemaker, group_name)
            )
        return lapsed

    def refusal(execution: Mapping[str, Any]) -> Refusal | None:
        if execution.get("PipelineExecutionStatus") != "Failed":
            return None
        arn = str(execution["PipelineExecutionArn"])
        steps = execution_steps(sagemaker, arn)
        message = quality_gate_refusal(steps)
        if message is None:
            return None
        try:
            lapsed = lapse_of(execution, arn, steps)
        except ClientError as error:  # e.g. AccessDenied before the hub's grants are deployed
            code = error.response.get("Error", {}).get("Code", "an error")
            return Refusal(message, f"whether a new run would repeat it cannot be read: {code}")
        return Refusal(message, lapsed)

    return refusal
