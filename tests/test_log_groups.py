"""Every log group SageMaker and CodeBuild write to is created by the stacks: stage key,
retention, and kept where the stage keeps its data."""

from __future__ import annotations

from typing import Any

from conftest import of_type


def _log_groups(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"].get("LogGroupName", logical_id): r
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::Logs::LogGroup"
    }


def test_sagemaker_job_and_endpoint_logs_are_ours(templates: dict[str, Any]) -> None:
    hub = _log_groups(templates["dev-us-east-1/Data"])
    assert {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"} <= set(hub)
    for path, template in templates.items():
        stage, _, stack = path.partition("/")
        if stack == "Monitoring":  # the drift job is a processing job
            assert "/aws/sagemaker/ProcessingJobs" in _log_groups(templates[f"{stage}/Data"])
        if stack == "Serving":
            (endpoint,) = of_type(template["Resources"], "AWS::SageMaker::Endpoint")
            name = endpoint["Properties"]["EndpointName"]
            groups = _log_groups(template)
            assert f"/aws/sagemaker/Endpoints/{name}" in groups
            group_id = next(
                k
                for k, r in template["Resources"].items()
                if r["Properties"].get("LogGroupName") == f"/aws/sagemaker/Endpoints/{name}"
            )
            assert group_id in endpoint["DependsOn"]  # before SageMaker creates its own
        if stack == "Data" and not stage.startswith("dev-"):
            # Serving-only stages without monitoring run no training: no TrainingJobs group.
            assert "/aws/sagemaker/TrainingJobs" not in _log_groups(template)


def test_every_log_group_has_a_key_and_a_retention_and_prod_keeps_them(
    templates: dict[str, Any],
) -> None:
    seen = 0
    for path, template in templates.items():
        for name, group in _log_groups(template).items():
            seen += 1
            assert "KmsKeyId" in group["Properties"], (path, name)
            assert group["Properties"]["RetentionInDays"] in (90, 365), (path, name)
            if path.startswith(("prod-", "staging-")):
                assert group.get("DeletionPolicy") == "Retain", (path, name)
    assert seen > 30
    dev_lambdas = [
        g
        for n, g in _log_groups(templates["dev-us-east-1/Serving"]).items()
        if not n.startswith("/aws/sagemaker/")
    ]
    assert dev_lambdas and {g.get("DeletionPolicy") for g in dev_lambdas} == {"Delete"}


def test_every_codebuild_project_logs_to_the_delivery_group(templates: dict[str, Any]) -> None:
    resources = templates["Delivery"]["Resources"]
    (group_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert resources[group_id]["DeletionPolicy"] == "Retain"
    projects = of_type(resources, "AWS::CodeBuild::Project")
    assert len(projects) > 6
    for project in projects:
        assert project["Properties"]["LogsConfig"]["CloudWatchLogs"] == {
            "GroupName": {"Ref": group_id},
            "Status": "ENABLED",
        }
