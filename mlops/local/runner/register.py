"""RegisterModel steps: the model and its metric documents into the LocalRegistry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.local import contract
from mlops.local.expressions import to_pipeline_string
from mlops.local.registry import group_name_from
from mlops.local.runner.plan import StepNode
from mlops.local.runner.records import StepFailure, StepResult
from mlops.local.runner.state import RunState, require_uri, step_arguments

METRIC_PARTS = ("Statistics", "Constraints", "Report", "PreTrainingReport", "PostTrainingReport")


def _metric_documents(
    model_metrics: Mapping[str, Any], run: RunState
) -> tuple[dict[str, Any], dict[str, Path]]:
    documents: dict[str, Any] = {}
    files: dict[str, Path] = {}
    for kind, parts in sorted(model_metrics.items()):
        if not isinstance(parts, Mapping):
            continue
        for part in METRIC_PARTS:
            source = parts.get(part)
            if not isinstance(source, Mapping) or "S3Uri" not in source:
                continue
            uri = require_uri(source["S3Uri"], f"ModelMetrics.{kind}.{part}.S3Uri")
            path = contract.local_path_for_uri(uri, run.s3_root)
            if not path.is_file():
                raise StepFailure(f"ModelMetrics.{kind}.{part}: no file at {uri}")
            try:
                documents.setdefault(kind, {})[part] = json.loads(path.read_text())
            except ValueError as exc:
                raise StepFailure(f"ModelMetrics.{kind}.{part}: {uri} is not JSON: {exc}") from None
            files[f"{kind}-{part}"] = path
    return documents, files


def run_register(node: StepNode, run: RunState, result: StepResult) -> None:
    args = step_arguments(node, run)
    group = group_name_from(to_pipeline_string(args.get("ModelPackageGroupName", "")))
    containers = args.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise StepFailure("InferenceSpecification.Containers is empty")
    container = containers[0]
    model_url = require_uri(container.get("ModelDataUrl"), "ModelDataUrl")
    model_path = contract.local_path_for_uri(model_url, run.s3_root)
    if not model_path.is_file():
        raise StepFailure(f"model artifact {model_url} does not exist (local {model_path})")
    metrics, files = _metric_documents(args.get("ModelMetrics", {}), run)
    package = run.registry.register(
        group=group,
        model_data=model_path,
        model_data_url=model_url,
        status=to_pipeline_string(args.get("ModelApprovalStatus", "PendingManualApproval")),
        image=to_pipeline_string(container.get("Image", "")),
        metrics=metrics,
        metric_files=files,
        description=to_pipeline_string(args.get("ModelPackageDescription", "")),
        source={
            "pipeline": run.pipeline,
            "execution_id": run.execution_id,
            "step": node.name,
            "customer_metadata": args.get("CustomerMetadataProperties", {}),
        },
    )
    run.ctx.steps[node.name] = {
        **args,
        "ModelPackageArn": package.model_package_arn,
        "ModelPackageVersion": package.version,
    }
    run.registered = {
        "model_package_group_name": package.model_package_group_name,
        "version": package.version,
        "status": package.status,
        "model_package_arn": package.model_package_arn,
        "model_data_url": package.model_data_url,
        "model_data_path": package.model_data_path,
        "metrics": metrics.get("ModelQuality", {}).get("Statistics", {}),
    }
    result.note = f"{group} v{package.version} ({package.status})"
