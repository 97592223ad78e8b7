"""Release manifest: the committed example, validation messages, atomic writes, removal guard."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.release_manifest import (
    EnvironmentRelease,
    ManifestError,
    RegistryHub,
    ReleaseManifest,
    check_release_sources,
    dump_manifest,
    foreign_package,
    load_manifest,
    parse_manifest,
    removal_guard,
    render_manifest,
    summarize_changes,
)

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "config" / "releases.yaml"
ENVS = ("dev", "staging", "prod", "sandbox")
ARN = "arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-dev/{}"


def release(number: int, **overrides: Any) -> dict[str, Any]:
    data = {
        "model_package_arn": ARN.format(number),
        "version": number,
        "artifact_key": f"training/flight-delay/v{number}/output/model.tar.gz",
        "image": "sagemaker-xgboost:3.0-5",
        "sha256": f"{number:064x}",
    }
    data.update(overrides)
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "releases.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def error_for(tmp_path: Path, data: Any) -> str:
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, data), ENVS)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_committed_example_pins_dev_staging_prod() -> None:
    manifest = load_manifest(COMMITTED, ENVS)

    versions = {env: manifest.get(env).current for env in ("dev", "staging", "prod")}
    assert all(v is not None for v in versions.values())
    assert [versions[e].version for e in ("dev", "staging", "prod")] == [5, 4, 3]  # type: ignore[union-attr]
    prod = manifest.get("prod")
    assert prod.previous is not None and prod.previous.version == 2
    assert prod.current is not None
    assert (prod.current.account, prod.current.region, prod.current.group) == (
        "222222222222",
        "us-east-1",
        "flightdelay-dev",
    )
    assert manifest.get("sandbox") == EnvironmentRelease()
    assert not manifest.get("sandbox").has_endpoint


def test_committed_example_is_in_canonical_form() -> None:
    """promote rewrites with render_manifest: the file must not churn on the first promote."""
    assert render_manifest(load_manifest(COMMITTED, ENVS)) == COMMITTED.read_text()


def test_image_uri_prepends_the_regional_registry() -> None:
    current = load_manifest(COMMITTED, ENVS).get("prod").current
    assert current is not None
    assert (
        current.image_uri("683313688378.dkr.ecr.us-east-1.amazonaws.com")
        == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    )


def test_environment_without_model_is_allowed(tmp_path: Path) -> None:
    manifest = load_manifest(
        write(tmp_path, {"dev": {"current": None, "previous": None}, "prod": None}), ENVS
    )
    assert not manifest.get("dev").has_endpoint
    assert not manifest.get("prod").has_endpoint
    assert not manifest.get("staging").has_endpoint


def test_empty_file_is_an_empty_manifest(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    path.write_text("# nothing released yet\n")
    assert dict(load_manifest(path, ENVS).environments) == {}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"qa": None},
            "releases.yaml: unknown environment 'qa'; allowed: dev, prod, sandbox, staging",
        ),
        ({"prod": {"current": release(3), "next": None}}, "prod: unknown field 'next'"),
        (
            {
                "prod": {
                    "current": release(
                        3, model_package_arn="arn:aws:sagemaker:us-east-1:2222:model-package/g/3"
                    )
                }
            },
            "prod.current.model_package_arn: 'arn:aws:sagemaker:us-east-1:2222:model-package/g/3' "
            "is malformed; allowed: "
            "arn:aws:sagemaker:<region>:<12 digits>:model-package/<group>/<version>",
        ),
        (
            {
                "prod": {
                    "current": release(
                        3, model_package_arn=ARN.format(3).replace("model-package", "model")
                    )
                }
            },
            "prod.current.model_package_arn",
        ),
        (
            {"prod": {"current": {k: v for k, v in release(3).items() if k != "sha256"}}},
            "prod.current: missing field 'sha256'; required: model_package_arn, version, "
            "artifact_key, image, sha256",
        ),
        ({"prod": {"current": release(3, colour="red")}}, "prod.current: unknown field 'colour'"),
        ({"prod": {"current": release(3, sha256="ABC")}}, "prod.current.sha256: not a sha256"),
        ({"prod": {"current": release(3, sha256="A" * 64)}}, "64 lowercase hex"),
        ({"prod": {"current": release(3, version=4)}}, "differs from the ARN's version 3"),
        ({"prod": {"current": release(3, version="3")}}, "not a positive integer"),
        ({"prod": {"current": release(3, version=True)}}, "not a positive integer"),
        (
            {
                "prod": {
                    "current": release(
                        3,
                        image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
                    )
                }
            },
            "prod.current.image",
        ),
        ({"prod": {"current": release(3, image="sagemaker-xgboost")}}, "use name:tag"),
        ({"prod": {"current": release(3, artifact_key="s3://bucket/model.tar.gz")}}, "no s3://"),
        ({"prod": {"current": release(3, artifact_key="/models/model.tar.gz")}}, "artifact_key"),
        ({"prod": {"current": release(3, artifact_key="models/../model.tar.gz")}}, "artifact_key"),
        ({"prod": {"current": release(3, artifact_key="models/model.pkl")}}, "ending in .tar.gz"),
        ({"prod": {"current": release(3, approved_at="last tuesday")}}, "not a timestamp"),
        (
            {"prod": {"current": release(3), "previous": release(3)}},
            "prod.previous: equals current (v3)",
        ),
        ({"prod": {"current": None, "previous": release(2)}}, "previous needs current"),
        ({"prod": ["v3"]}, "prod: expected a mapping"),
        (["prod"], "expected a mapping of environment"),
    ],
)
def test_bad_input_gets_one_line_naming_file_field_and_allowed(
    tmp_path: Path, data: Any, expected: str
) -> None:
    message = error_for(tmp_path, data)
    assert expected in message
    assert message.startswith(str(tmp_path / "releases.yaml"))


def test_duplicate_environment_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    path.write_text("prod: null\nprod: null\n")
    with pytest.raises(ManifestError, match="line 2: duplicate key 'prod'"):
        load_manifest(path, ENVS)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    path.write_text("prod: [unclosed\n")
    with pytest.raises(ManifestError, match="invalid YAML at line"):
        load_manifest(path, ENVS)
    with pytest.raises(ManifestError, match=r"nope\.yaml: file not found"):
        load_manifest(tmp_path / "nope.yaml", ENVS)


def test_approved_at_is_normalized_to_utc(tmp_path: Path) -> None:
    data = {"prod": {"current": release(3, approved_at="2026-11-02T12:15:00+02:00")}}
    current = load_manifest(write(tmp_path, data), ENVS).get("prod").current
    assert current is not None and current.approved_at == "2026-11-02T10:15:00Z"


def test_dump_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    manifest = load_manifest(COMMITTED, ENVS)
    target = tmp_path / "releases.yaml"
    target.write_text("old\n")
    target.chmod(0o640)

    dump_manifest(manifest, target)

    assert load_manifest(target, ENVS).to_dict() == manifest.to_dict()
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["releases.yaml"]  # no temp file left


def test_failed_dump_leaves_old_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "releases.yaml"
    target.write_text("old\n")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("mlops.release_manifest.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        dump_manifest(load_manifest(COMMITTED, ENVS), target)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["releases.yaml"]


def _without_prod_model(manifest: ReleaseManifest) -> ReleaseManifest:
    return manifest.with_environment("prod", EnvironmentRelease())


def test_removal_guard_refuses_dropping_prod_model() -> None:
    old = load_manifest(COMMITTED, ENVS)
    with pytest.raises(ManifestError, match=r"prod.current removed \(was v3\).*allow-prod-removal"):
        removal_guard(old, _without_prod_model(old), allow_prod_removal=False)


def test_removal_guard_allows_with_flag_and_other_environments() -> None:
    old = load_manifest(COMMITTED, ENVS)
    removal_guard(old, _without_prod_model(old), allow_prod_removal=True)
    removal_guard(old, old.with_environment("dev", EnvironmentRelease()), allow_prod_removal=False)
    removal_guard(_without_prod_model(old), old, allow_prod_removal=False)  # adding is fine


def test_summarize_changes_lists_model_moves() -> None:
    old = load_manifest(COMMITTED, ENVS)
    data = copy.deepcopy(old.to_dict())
    data["prod"] = {"current": release(4), "previous": data["prod"]["current"]}
    new = parse_manifest(data, ENVS, "x")
    assert summarize_changes(old, new) == [f"prod: v3 ({ARN.format(3)}) -> v4 ({ARN.format(4)})"]
    assert summarize_changes(old, _without_prod_model(old))[0].endswith("-> no model")


# --- packages must come from the environment's hub registry (issue #12) ------------------

HUB = RegistryHub(name="dev", account="222222222222", region="us-east-1", group="flightdelay-dev")


@pytest.mark.parametrize(
    ("arn", "part"),
    [
        ("arn:aws:sagemaker:us-east-1:333333333333:model-package/flightdelay-dev/3", "account"),
        ("arn:aws:sagemaker:eu-west-1:222222222222:model-package/flightdelay-dev/3", "region"),
        ("arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-prod/3", "group"),
        # A group whose name only starts like the hub's is another group.
        ("arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-dev2/3", "group"),
    ],
)
@pytest.mark.parametrize("slot", ["current", "previous"])
def test_a_package_outside_the_hub_registry_is_refused(arn: str, part: str, slot: str) -> None:
    data = {"prod": {"current": release(3), "previous": release(2)}}
    data["prod"][slot] = release(
        3 if slot == "current" else 2,
        model_package_arn=arn[:-1] + ("3" if slot == "current" else "2"),
    )
    manifest = parse_manifest(data, ENVS, "releases.yaml")
    with pytest.raises(ManifestError) as info:
        check_release_sources(manifest, "prod", HUB)
    message = str(info.value)
    assert message.startswith(f"releases.yaml: prod.{slot}.model_package_arn: {part} ")
    assert "is not the hub's (dev: " in message
    assert HUB.arn_prefix in message


def test_the_hubs_own_packages_pass() -> None:
    manifest = parse_manifest(
        {"prod": {"current": release(3), "previous": release(2)}, "dev": {"current": None}},
        ENVS,
        "releases.yaml",
    )
    for env in ("prod", "dev", "staging"):
        check_release_sources(manifest, env, HUB)  # no error
    assert foreign_package(manifest.get("prod").current, HUB) is None  # type: ignore[arg-type]
