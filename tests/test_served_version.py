"""The answer's model_version, end to end: every served model's container names its release
(the synthesized templates), the real inference.py started with that environment puts it in
each answer, and the inference API passes it through. Two releases give two labels; after a
rollback the very next answer names the previous release."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import inference
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from helpers import load_lambda_module
from step_fixtures import write_small_model

from mlops.config import PlatformConfig
from mlops.constructs.realtime_endpoint import MODEL_VERSION_ENV
from tests.conftest import default_releases, of_type
from tests.test_serving_stack import SERVING_STAGES

handler = load_lambda_module("inference_api", "handler", "served_version_handler")
front_door = load_lambda_module("inference_api", "front_door", "served_version_front_door")


def _environments(templates: dict[str, Any], stage: str) -> dict[str, dict[str, str]]:
    """Each model's container environment, by its model-package-arn tag."""
    resources = templates[f"{stage}/Serving"]["Resources"]
    return {
        next(t["Value"] for t in m["Properties"]["Tags"] if t["Key"] == "model-package-arn"): m[
            "Properties"
        ]["PrimaryContainer"]["Environment"]
        for m in of_type(resources, "AWS::SageMaker::Model")
    }


def test_every_served_model_names_its_own_release(
    templates: dict[str, Any], platform: PlatformConfig
) -> None:
    releases = default_releases(platform)
    for stage in SERVING_STAGES:
        release = releases.get(stage.split("-")[0])
        assert release.current is not None and release.previous is not None
        environments = _environments(templates, stage)
        named = {arn: env[MODEL_VERSION_ENV] for arn, env in environments.items()}
        assert named == {
            release.current.model_package_arn: str(release.current.version),
            release.previous.model_package_arn: str(release.previous.version),
        }
        for env in environments.values():
            # What the container accepts (a bad value would stop it at start-up), within
            # SageMaker's ContainerDefinition limits: keys [a-zA-Z_][a-zA-Z0-9_]*, each key
            # and value at most 1024 bytes, 32 KB in all.
            assert inference.served_version(env) == env[MODEL_VERSION_ENV]
            assert all(k.isidentifier() and k.isascii() and len(k) <= 1024 for k in env)
            assert all(len(v.encode()) <= 1024 for v in env.values())
            assert sum(len(k.encode()) + len(v.encode()) for k, v in env.items()) <= 32 * 1024


@pytest.mark.parametrize(
    ("value", "ok"),
    [("3", True), ("", True), ("v3.1-rc_2", True), ("x" * 64, True), ("x" * 65, False),
     ("3,4", False), ("3\n4", False), ("3 4", False)],
)  # fmt: skip
def test_the_container_refuses_a_version_that_would_break_its_answer(value: str, ok: bool) -> None:
    if ok:
        assert inference.served_version({MODEL_VERSION_ENV: value}) == value
    else:
        with pytest.raises(ValueError, match=r"MODEL_VERSION .* must be 1-64 letters"):
            inference.served_version({MODEL_VERSION_ENV: value})


class Container:
    """One model container as SageMaker starts it: inference.py's model_fn under the
    template's environment, then input_fn -> predict_fn -> output_fn per request."""

    def __init__(self, model_dir: Path, environment: dict[str, str], monkeypatch: Any) -> None:
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            self.model = inference.model_fn(str(model_dir))

    def invoke(self, body: str) -> str:
        rows = inference.input_fn(body, "text/csv")
        answer, _ = inference.output_fn(inference.predict_fn(rows, self.model), "text/csv")
        return answer


def _answer_through_the_api(container: Container) -> dict[str, Any]:
    """One POST /predict through the Lambda's handler; the endpoint's answer is the
    container's own bytes (Stubber: moto has no InvokeEndpoint)."""
    store = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    request = json.dumps(front_door.HEALTH_REQUEST)
    row = front_door.feature_row(front_door.parse_request(request), front_door.OnlineFeatures())
    answer = container.invoke(row).encode()
    env = {
        "ENDPOINT_NAME": "flightdelay-prod",
        "WEATHER_FEATURE_GROUP": "flightdelay-prod-weather",
        "PLANE_FEATURE_GROUP": "flightdelay-prod-plane",
    }
    with Stubber(store) as store_stub, Stubber(runtime) as runtime_stub:
        store_stub.add_response(
            "batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}
        )
        runtime_stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "text/csv"},
        )
        event = {"httpMethod": "POST", "resource": "/predict", "body": request}
        result = handler.answer_event(event, store, runtime, env)
        runtime_stub.assert_no_pending_responses()
    assert result["statusCode"] == 200, result
    body: dict[str, Any] = json.loads(result["body"])
    return body


def test_two_releases_two_labels_and_a_rollback_shows_at_once(
    templates: dict[str, Any],
    platform: PlatformConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = default_releases(platform).get("prod")
    assert release.current is not None and release.previous is not None
    environments = _environments(templates, "prod-us-east-1")
    model_dir = write_small_model(tmp_path)
    current = Container(model_dir, environments[release.current.model_package_arn], monkeypatch)
    previous = Container(model_dir, environments[release.previous.model_package_arn], monkeypatch)
    # The endpoint serves the current release (during a canary some requests reach the old
    # fleet), then is rolled back: the next answer already names the previous release.
    served = [current, previous, current, previous]
    labels = [_answer_through_the_api(container)["model_version"] for container in served]
    now, before = str(release.current.version), str(release.previous.version)
    assert now != before
    assert labels == [now, before, now, before]


def test_a_container_without_the_variable_answers_the_probability_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch transform or a hand deployment from the registry: the answer stays the plain
    probability line, and the API says it does not know the version rather than guess."""
    monkeypatch.delenv(MODEL_VERSION_ENV, raising=False)
    container = Container(write_small_model(tmp_path), {}, monkeypatch)
    row = front_door.feature_row(
        front_door.parse_request(json.dumps(front_door.HEALTH_REQUEST)), front_door.OnlineFeatures()
    )
    assert "," not in container.invoke(row)
    assert _answer_through_the_api(container)["model_version"] is None
