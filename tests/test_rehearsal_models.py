"""models-can-load: every hosted model's execution role can pull its image, download its own
artifact and decrypt it with the models bucket's key; each fixture takes one grant out of
the real prod Serving template (or narrows it to the other release) and the rule names the
model that would fail to start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import edited_assembly

from mlops.rehearsal.assembly import Assembly, load_assembly
from mlops.rehearsal.models import model_problems
from mlops.rehearsal.rules import RULES, models_can_load

SERVING = "prod-us-east-1-Serving"
DATA = "prod-us-east-1-Data"
POLICY = "EndpointModelRoleDefaultPolicyB7EE3A3D"
ROLE = "EndpointModelRole9ECE06AC"
CURRENT = "EndpointCurrentV3Model3870EB0B"
PREVIOUS = "EndpointPreviousV2Model5B86E0E0"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def rehearsal(assembly_dir: Path) -> Assembly:
    return load_assembly(assembly_dir)


def _found(assembly: Assembly) -> list[tuple[str, str, str]]:
    return [(p.stack.name, p.resource, p.message) for p in model_problems(assembly)]


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = template["Resources"][POLICY]["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return statements


def _without(matches: Callable[[dict[str, Any]], bool]) -> Edit:
    def edit(template: dict[str, Any]) -> None:
        statements = _statements(template)
        kept = [s for s in statements if not matches(s)]
        assert len(kept) < len(statements)
        statements[:] = kept

    return edit


def test_the_rule_is_registered_and_passes_on_every_model(rehearsal: Assembly) -> None:
    assert "models-can-load" in {rule.name for rule in RULES}
    assert models_can_load(rehearsal) == []
    models = [m for s in rehearsal.stacks for m, _ in s.of_type("AWS::SageMaker::Model")]
    assert len(models) == 12  # current and previous release in each of the 6 stages


def test_a_model_needs_its_artifact(rehearsal: Assembly) -> None:
    found = _found(
        edited_assembly(
            rehearsal, SERVING, _without(lambda s: s.get("Sid") == "ReadPinnedArtifacts")
        )
    )
    assert sorted(resource for _, resource, _ in found) == sorted([CURRENT, PREVIOUS])
    assert all("s3:GetObject" in message and "download s3://" in message for _, _, message in found)


def test_reading_the_other_release_does_not_count(rehearsal: Assembly) -> None:
    """Edge: the grant is per artifact; keep only the previous release's object."""

    def previous_only(template: dict[str, Any]) -> None:
        previous_url = template["Resources"][PREVIOUS]["Properties"]["PrimaryContainer"][
            "ModelDataUrl"
        ]
        for statement in _statements(template):
            if statement.get("Sid") == "ReadPinnedArtifacts":
                statement["Resource"] = [
                    r for r in statement["Resource"] if previous_url.split("/")[-2] in str(r)
                ]
                assert len(statement["Resource"]) == 1

    ((_, resource, _),) = _found(edited_assembly(rehearsal, SERVING, previous_only))
    assert resource == CURRENT


def test_a_model_needs_to_pull_its_image(rehearsal: Assembly) -> None:
    found = _found(
        edited_assembly(
            rehearsal, SERVING, _without(lambda s: s.get("Sid") == "PullPinnedSageMakerImages")
        )
    )
    assert {resource for _, resource, _ in found} == {CURRENT, PREVIOUS}
    assert all("repository/sagemaker-xgboost" in message for _, _, message in found)


def test_a_model_needs_the_bucket_key(rehearsal: Assembly) -> None:
    found = _found(
        edited_assembly(
            rehearsal, SERVING, _without(lambda s: "kms:Decrypt" in s["Action"] and "Sid" not in s)
        )
    )
    assert {resource for _, resource, _ in found} == {CURRENT, PREVIOUS}
    assert all("kms:Decrypt" in message for _, _, message in found)


def test_the_key_policy_must_leave_the_role_to_iam(rehearsal: Assembly) -> None:
    def no_account_statement(template: dict[str, Any]) -> None:
        policy = template["Resources"]["DataKey2A0DE9E6"]["Properties"]["KeyPolicy"]
        kept = [
            s
            for s in policy["Statement"]
            if s.get("Principal") != {"AWS": "arn:aws:iam::444444444444:root"}
            or s.get("Action") != "kms:*"
        ]
        assert len(kept) == len(policy["Statement"]) - 1
        policy["Statement"] = kept

    edited = edited_assembly(rehearsal, DATA, no_account_statement)
    found = _found(edited)
    assert {resource for stack, resource, _ in found if stack == SERVING} == {CURRENT, PREVIOUS}
    assert all("key policy of" in message for _, _, message in found)


def test_the_execution_role_must_trust_sagemaker(rehearsal: Assembly) -> None:
    def untrusted(template: dict[str, Any]) -> None:
        trust = template["Resources"][ROLE]["Properties"]["AssumeRolePolicyDocument"]
        trust["Statement"][0]["Principal"] = {"Service": "lambda.amazonaws.com"}

    found = _found(edited_assembly(rehearsal, SERVING, untrusted))
    assert {resource for _, resource, _ in found} == {CURRENT, PREVIOUS}
    assert all("does not trust sagemaker.amazonaws.com" in message for _, _, message in found)


def test_a_model_needs_each_ecr_pull_action(rehearsal: Assembly) -> None:
    """The registry login and the layer download, not only BatchGetImage."""

    def without_action(action: str) -> Edit:
        def edit(template: dict[str, Any]) -> None:
            for statement in _statements(template):
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                statement["Action"] = [a for a in actions if a != action] or ["ecr:DescribeImages"]

        return edit

    for action in ("ecr:GetAuthorizationToken", "ecr:GetDownloadUrlForLayer"):
        found = _found(edited_assembly(rehearsal, SERVING, without_action(action)))
        assert {resource for _, resource, _ in found} == {CURRENT, PREVIOUS}, action
        assert all(f"may not {action}" in message for _, _, message in found), action
