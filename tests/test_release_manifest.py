"""Release manifest: the committed example, validation at each limit, atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.release_manifest import (
    ManifestError,
    RegistryHub,
    check_release_sources,
    dump_manifest,
    foreign_package,
    load_manifest,
    parse_manifest,
    render_manifest,
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


def test_committed_example_pins_models_of_the_training_homes_registry() -> None:
    """Every pinned model comes from the registry the config says serving reads."""
    from mlops.config import load_config
    from mlops.naming import model_package_group_name

    platform = load_config(ROOT / "config" / "environments.yaml")
    home = platform.training_home
    manifest = load_manifest(COMMITTED, tuple(platform.environments))
    pinned = {env: manifest.get(env) for env in platform.environments}
    assert {env for env, r in pinned.items() if r.has_endpoint} >= {"dev", "staging", "prod"}
    for env, release_of_env in pinned.items():
        for model in (release_of_env.current, release_of_env.previous):
            if model is None:
                continue
            assert (model.account, model.region) == (home.account, home.home_region), env
            assert model.group == model_package_group_name(platform, home), env
    prod = pinned["prod"]
    assert prod.previous is not None  # prod can roll back from the first deploy on


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


# ---- each rule at its exact limit: the limit is accepted, one past it refused ------------------


GROUP_63 = "g" * 63


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        ({"sha256": "a" * 64}, True),
        ({"sha256": "a" * 63}, False),
        ({"sha256": "a" * 65}, False),
        ({"image": "sagemaker-xgboost:" + "t" * 128}, True),
        ({"image": "sagemaker-xgboost:" + "t" * 129}, False),
        ({"image": "my-org/flight-model:1"}, True),  # a repository path, no registry host
        ({"image": "registry.example.com/flight-model:1"}, False),
        ({"model_package_arn": ARN.format(1), "version": 1}, True),
        ({"model_package_arn": ARN.format(0), "version": 0}, False),
        ({"model_package_arn": ARN.format(3).replace("flightdelay-dev", GROUP_63)}, True),
        ({"model_package_arn": ARN.format(3).replace("flightdelay-dev", GROUP_63 + "g")}, False),
        ({"model_package_arn": ARN.format(3).replace("222222222222", "2" * 11)}, False),
        ({"artifact_key": "model.tar.gz"}, True),
        ({"artifact_key": "a/..b/model.tar.gz"}, True),  # '..' only refused as a whole segment
        ({"artifact_key": "a/../model.tar.gz"}, False),
        ({"artifact_key": "a//model.tar.gz"}, False),
    ],
)
def test_release_fields_at_their_limits(tmp_path: Path, overrides: dict, accepted: bool) -> None:
    data = {"prod": {"current": release(3, **overrides)}}
    if accepted:
        current = load_manifest(write(tmp_path, data), ENVS).get("prod").current
        assert current is not None
        assert {k: getattr(current, k) for k in overrides} == overrides
    else:
        assert error_for(tmp_path, data).startswith(f"{tmp_path / 'releases.yaml'}: prod.current")


def test_previous_differing_from_current_only_by_version_is_allowed(tmp_path: Path) -> None:
    prod = load_manifest(
        write(tmp_path, {"prod": {"current": release(4), "previous": release(3)}}), ENVS
    ).get("prod")
    assert prod.current is not None and prod.previous is not None
    assert (prod.current.version, prod.previous.version) == (4, 3)


def test_a_timestamp_without_offset_is_read_as_utc(tmp_path: Path) -> None:
    data = {"prod": {"current": release(3, approved_at="2026-11-02T10:15:00")}}
    current = load_manifest(write(tmp_path, data), ENVS).get("prod").current
    assert current is not None and current.approved_at == "2026-11-02T10:15:00Z"


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_below_one_is_named_as_such_not_as_an_arn_mismatch(
    tmp_path: Path, version: int
) -> None:
    message = error_for(tmp_path, {"prod": {"current": release(3, version=version)}})
    assert message.endswith(f"prod.current.version: '{version}' is not a positive integer")


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
