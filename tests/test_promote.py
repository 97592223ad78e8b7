"""mlops promote: AWS registry (moto), local registry (tmp_path), manifest rewrite, refusals."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.promote import (
    AwsRegistry,
    LocalRegistry,
    PromoteError,
    add_promote_arguments,
    artifact_key,
    image_name,
    promote,
    promote_command,
)
from mlops.release_manifest import ManifestError, RegistryHub, load_manifest, render_manifest

ROOT = Path(__file__).resolve().parents[1]
ENVS = ("dev", "staging", "prod", "sandbox")
GROUP = "flightdelay-dev"
ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
PROD_V3 = "arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-dev/3"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "releases.yaml"
    shutil.copy(ROOT / "config" / "releases.yaml", path)
    return path


# --- local registry -----------------------------------------------------------------------


def add_local_package(root: Path, version: int, status: str = "Approved", **overrides: Any) -> str:
    folder = root / GROUP / f"v{version}"
    folder.mkdir(parents=True)
    content = f"model bytes v{version}".encode()
    (folder / "model.tar.gz").write_bytes(content)
    meta = {
        "version": version,
        "status": status,
        "model_data_url": f"s3://artifacts-222222222222/training/v{version}/output/model.tar.gz",
        "image": f"{ECR}/sagemaker-xgboost:3.0-5",
        "metrics": {"auc": 0.7},
        "created_at": "2026-11-26T10:00:00Z",
    }
    meta.update(overrides)
    (folder / "package.json").write_text(json.dumps(meta))
    return hashlib.sha256(content).hexdigest()


def test_local_promotion_moves_current_to_previous(tmp_path: Path, manifest: Path) -> None:
    registry_root = tmp_path / "registry"
    sha = add_local_package(registry_root, 4)
    before = load_manifest(manifest, ENVS)

    result = promote("prod", 4, manifest, LocalRegistry(registry_root, GROUP), known_envs=ENVS)

    after = load_manifest(manifest, ENVS)
    prod = after.get("prod")
    assert prod.current is not None and prod.previous is not None
    assert prod.current.version == 4
    assert prod.current.model_package_arn == (
        "arn:aws:sagemaker:us-east-1:000000000000:model-package/flightdelay-dev/4"
    )
    assert prod.current.artifact_key == "training/v4/output/model.tar.gz"
    assert prod.current.image == "sagemaker-xgboost:3.0-5"
    assert prod.current.sha256 == sha
    assert prod.previous == before.get("prod").current
    # Nothing else moves: the PR diff shows only prod.
    assert after.get("dev") == before.get("dev")
    assert after.get("staging") == before.get("staging")
    assert list(after.environments) == list(before.environments)
    assert result.replaced_version == 3
    assert result.summary().startswith("prod: v3 -> v4 written to")
    assert manifest.read_text() == render_manifest(after)


def test_local_promotion_into_an_environment_without_model(tmp_path: Path, manifest: Path) -> None:
    add_local_package(
        tmp_path / "r",
        1,
        model_package_arn=(
            "arn:aws:sagemaker:eu-west-1:333333333333:model-package/flightdelay-dev/1"
        ),
    )
    result = promote("sandbox", 1, manifest, LocalRegistry(tmp_path / "r", GROUP), known_envs=ENVS)

    sandbox = load_manifest(manifest, ENVS).get("sandbox")
    assert sandbox.current is not None and sandbox.previous is None
    assert sandbox.current.region == "eu-west-1"
    assert result.replaced_version is None


@pytest.mark.parametrize(
    ("setup", "env", "version", "message"),
    [
        (lambda r: add_local_package(r, 4), "qa", 4, "unknown environment 'qa'; allowed: dev"),
        (lambda r: add_local_package(r, 4), "prod", 9, "version 9 not found in local registry"),
        (
            lambda r: add_local_package(r, 4, status="PendingManualApproval"),
            "prod",
            4,
            "v4 is PendingManualApproval; only Approved packages can be promoted",
        ),
        (
            lambda r: add_local_package(r, 3, model_package_arn=PROD_V3),
            "prod",
            3,
            "prod already serves v3",
        ),
        (lambda r: add_local_package(r, 4, sha256="0" * 64), "prod", 4, "differs from package"),
        (
            lambda r: add_local_package(r, 4, model_data_url="/tmp/model.tar.gz"),
            "prod",
            4,
            "is not an s3://bucket/key URI",
        ),
        (
            lambda r: add_local_package(r, 4, image=f"{ECR}/sagemaker-xgboost@sha256:abc"),
            "prod",
            4,
            "pinned by digest",
        ),
    ],
)
def test_local_refusals_leave_manifest_untouched(
    tmp_path: Path, manifest: Path, setup: Any, env: str, version: int, message: str
) -> None:
    setup(tmp_path / "r")
    original = manifest.read_text()
    with pytest.raises(PromoteError, match=message.replace("(", r"\(")):
        promote(env, version, manifest, LocalRegistry(tmp_path / "r", GROUP), known_envs=ENVS)
    assert manifest.read_text() == original


def test_not_found_lists_available_versions(tmp_path: Path, manifest: Path) -> None:
    add_local_package(tmp_path / "r", 1)
    add_local_package(tmp_path / "r", 2)
    with pytest.raises(PromoteError, match=r"available: v1, v2$"):
        promote("prod", 7, manifest, LocalRegistry(tmp_path / "r", GROUP), known_envs=ENVS)


def test_only_v_number_folders_with_a_package_are_versions(tmp_path: Path) -> None:
    add_local_package(tmp_path / "r", 1)
    group = tmp_path / "r" / GROUP
    (group / "v3").mkdir()  # no package.json (a register step that did not finish)
    for name in ("vnext", "notes"):  # package.json, but not v<number>
        (group / name).mkdir()
        (group / name / "package.json").write_text("{}")
    assert LocalRegistry(tmp_path / "r", GROUP).versions() == [1]


def test_promote_rejects_a_broken_manifest_first(tmp_path: Path) -> None:
    bad = tmp_path / "releases.yaml"
    bad.write_text("prod:\n  current: {version: 1}\n")
    add_local_package(tmp_path / "r", 1)
    with pytest.raises(ManifestError, match="missing field 'model_package_arn'"):
        promote("prod", 1, bad, LocalRegistry(tmp_path / "r", GROUP), known_envs=ENVS)


def test_helpers() -> None:
    assert artifact_key("s3://b/a/b/model.tar.gz") == "a/b/model.tar.gz"
    assert image_name(f"{ECR}/sagemaker-xgboost:3.0-5") == "sagemaker-xgboost:3.0-5"
    assert image_name("sagemaker-xgboost:3.0-5") == "sagemaker-xgboost:3.0-5"
    assert image_name("localhost:5000/xgb:1") == "xgb:1"
    # A registry host is named by a dot, a port or localhost; else the part is a namespace.
    assert image_name("localhost/xgb:1") == "xgb:1"
    assert image_name("myorg/xgb:1") == "myorg/xgb:1"


@pytest.mark.parametrize("url", ["s3://bucket", "https://bucket/model.tar.gz"])
def test_a_model_data_url_needs_both_the_s3_scheme_and_a_key(url: str) -> None:
    with pytest.raises(PromoteError, match="is not an s3://bucket/key URI"):
        artifact_key(url)


# --- AWS registry (moto) --------------------------------------------------------------------


@pytest.fixture
def sagemaker(moto_sagemaker: Any) -> Any:
    moto_sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return moto_sagemaker


def register(
    client: Any,
    status: str,
    sha: str | None = "ab" * 32,
    model_data_url: str | None = "s3://artifacts/training/job-1/output/model.tar.gz",
) -> str:
    kwargs: dict[str, Any] = {}
    if sha:
        kwargs["CustomerMetadataProperties"] = {"model_sha256": sha}
    container = {"Image": f"{ECR}/sagemaker-xgboost:3.0-5"}
    if model_data_url:
        container["ModelDataUrl"] = model_data_url
    return str(
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            **kwargs,
        )["ModelPackageArn"]
    )


def test_aws_promotion_pins_registry_package(sagemaker: Any, manifest: Path) -> None:
    for _ in range(3):
        register(sagemaker, "Approved")
    arn4 = register(sagemaker, "Approved", sha="cd" * 32)

    promote("prod", 4, manifest, AwsRegistry(sagemaker, GROUP), known_envs=ENVS)

    prod = load_manifest(manifest, ENVS).get("prod")
    assert prod.current is not None and prod.previous is not None
    assert prod.current.model_package_arn == arn4
    assert prod.current.sha256 == "cd" * 32
    assert prod.current.artifact_key == "training/job-1/output/model.tar.gz"
    assert prod.current.image == "sagemaker-xgboost:3.0-5"
    assert prod.previous.version == 3


def test_aws_refuses_unapproved_missing_sha_and_unknown_version(
    sagemaker: Any, manifest: Path
) -> None:
    register(sagemaker, "Rejected")
    register(sagemaker, "Approved", sha=None)
    registry = AwsRegistry(sagemaker, GROUP)
    with pytest.raises(PromoteError, match="v1 is Rejected"):
        promote("dev", 1, manifest, registry, known_envs=ENVS)
    with pytest.raises(PromoteError, match=r"no CustomerMetadataProperties\.model_sha256"):
        promote("dev", 2, manifest, registry, known_envs=ENVS)
    with pytest.raises(PromoteError, match=r"version 3 not found.*available: v1, v2"):
        promote("dev", 3, manifest, registry, known_envs=ENVS)


def test_aws_refuses_a_container_without_model_data(sagemaker: Any, manifest: Path) -> None:
    """A container is there but has no artifact (a model baked into the image)."""
    register(sagemaker, "Approved", model_data_url=None)
    with pytest.raises(PromoteError, match="no inference container with a ModelDataUrl"):
        promote("dev", 1, manifest, AwsRegistry(sagemaker, GROUP), known_envs=ENVS)


# --- CLI glue -------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_promote_arguments(parser)
    return parser.parse_args(argv)


def test_command_success_and_errors_are_one_line(tmp_path: Path, manifest: Path) -> None:
    add_local_package(tmp_path / "r", 4)
    base = ["--local", "--registry", str(tmp_path / "r"), "--manifest", str(manifest)]
    out, err = io.StringIO(), io.StringIO()

    code = promote_command(
        parse(["--env", "prod", "--version", "4", *base]), group_name=GROUP, out=out, err=err
    )
    assert (code, err.getvalue()) == (0, "")
    assert out.getvalue().startswith("prod: v3 -> v4 written to")

    err = io.StringIO()
    code = promote_command(
        parse(["--env", "prod", "--version", "4", *base]), group_name=GROUP, err=err
    )
    assert code == 1
    assert err.getvalue() == "ERROR: prod already serves v4; nothing to promote\n"

    err = io.StringIO()
    code = promote_command(
        parse(["--env", "prod", "--version", "4", "--registry", "x"]), group_name=GROUP, err=err
    )
    assert code == 2 and err.getvalue().startswith("ERROR: --registry needs --local")


def test_command_aws_without_credentials_is_one_line(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )

    def no_network(**_: Any) -> None:
        from botocore.exceptions import NoCredentialsError

        raise NoCredentialsError()

    client.meta.events.register_first("before-call.sagemaker.*", no_network)
    err = io.StringIO()
    code = promote_command(
        parse(["--env", "prod", "--version", "4", "--manifest", str(manifest)]),
        group_name=GROUP,
        sagemaker_client=client,
        err=err,
    )
    assert code == 1
    assert err.getvalue() == "ERROR: registry flightdelay-dev: Unable to locate credentials\n"


def test_a_local_runner_package_is_pinned_under_the_hub_registry(
    tmp_path: Path, manifest: Path
) -> None:
    add_local_package(
        tmp_path / "r",
        4,
        model_package_arn="arn:aws:sagemaker:local:000000000000:model-package/flightdelay-dev/4",
    )
    registry = LocalRegistry(tmp_path / "r", GROUP, account="222222222222", region="us-east-1")
    promote("prod", 4, manifest, registry, known_envs=ENVS)
    current = load_manifest(manifest, ENVS).get("prod").current
    assert current is not None
    assert current.model_package_arn == (
        "arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-dev/4"
    )


# --- the hub's registry only, in the hub's region (issue #12) -----------------------------

MOTO_ACCOUNT = "123456789012"


def hub(account: str = MOTO_ACCOUNT, region: str = "us-east-1") -> RegistryHub:
    return RegistryHub(name="dev", account=account, region=region, group=GROUP)


def test_aws_promotion_reads_the_hub_group_by_arn(sagemaker: Any, manifest: Path) -> None:
    arn = register(sagemaker, "Approved")
    registry = AwsRegistry(sagemaker, hub().group_arn)
    promote("prod", 1, manifest, registry, known_envs=ENVS, hub=hub())
    current = load_manifest(manifest, ENVS).get("prod").current
    assert current is not None and current.model_package_arn == arn


@pytest.mark.parametrize(
    ("expected", "part"),
    [(hub(account="222222222222"), "account"), (hub(region="eu-west-1"), "region")],
)
def test_aws_promotion_refuses_a_package_outside_the_hub(
    sagemaker: Any, manifest: Path, expected: RegistryHub, part: str
) -> None:
    """The caller's profile points at another account or region than the hub's."""
    register(sagemaker, "Approved")
    before = manifest.read_text()
    with pytest.raises(PromoteError, match=rf"{part} \S+ is not the hub's \(dev: "):
        promote("prod", 1, manifest, AwsRegistry(sagemaker, GROUP), known_envs=ENVS, hub=expected)
    assert manifest.read_text() == before


def test_local_promotion_refuses_a_package_of_another_group(tmp_path: Path, manifest: Path) -> None:
    add_local_package(
        tmp_path / "r",
        4,
        model_package_arn="arn:aws:sagemaker:us-east-1:222222222222:model-package/other/4",
    )
    registry = LocalRegistry(tmp_path / "r", GROUP, account="222222222222", region="us-east-1")
    with pytest.raises(PromoteError, match="group other is not the hub's"):
        promote("prod", 4, manifest, registry, known_envs=ENVS, hub=hub("222222222222"))


def test_command_talks_to_the_hub_region_not_the_profiles(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops.promote as promote_module

    regions: list[str | None] = []

    def client_in(region: str | None) -> Any:
        regions.append(region)
        raise PromoteError("stop here")

    monkeypatch.setattr(promote_module, "_sagemaker_client", client_in)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the profile's region
    args = parse(["--env", "prod", "--version", "4", "--manifest", str(manifest)])
    assert promote_command(args, group_name=GROUP, hub=hub(), err=io.StringIO()) == 1
    assert regions == ["us-east-1"]


def test_command_refuses_a_region_other_than_the_hubs(manifest: Path) -> None:
    err = io.StringIO()
    args = parse(["--env", "prod", "--version", "4", "--region", "eu-west-1"])
    assert promote_command(args, group_name=GROUP, hub=hub(), err=err) == 2
    assert err.getvalue().startswith("ERROR: --region eu-west-1: the registry of prod is dev's")
    args = parse(["--env", "prod", "--version", "4", "--region", "us-east-1", "--manifest", "x"])
    err = io.StringIO()
    assert promote_command(args, group_name=GROUP, hub=hub(), err=err) == 2  # passes on to x
    assert "x: file not found" in err.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"3", r"package.json: a JSON int, not an object with version, status"),
        (b'["version", "status", "model_data_url", "image"]', r"a JSON list, not an object"),
        (b'"version status model_data_url image"', r"a JSON str, not an object"),
        (b"\xff\xfe{}", r"package.json: not UTF-8 text \(byte 0xff at offset 0\)"),
        (b'{"version": 4', r"package.json: invalid JSON at line 1"),
    ],
)
def test_a_corrupt_local_package_json_is_one_refusal_and_the_manifest_is_untouched(
    tmp_path: Path, manifest: Path, content: bytes, message: str
) -> None:
    add_local_package(tmp_path / "r", 4)
    (tmp_path / "r" / GROUP / "v4" / "package.json").write_bytes(content)
    original = manifest.read_text()
    args = ["--env", "prod", "--version", "4", "--local", "--registry", str(tmp_path / "r")]
    err = io.StringIO()
    code = promote_command(parse([*args, "--manifest", str(manifest)]), group_name=GROUP, err=err)
    assert code == 1 and err.getvalue().count("\n") == 1
    assert re.search(message, err.getvalue()), err.getvalue()
    assert manifest.read_text() == original


def test_a_well_formed_local_package_json_is_still_promoted(tmp_path: Path, manifest: Path) -> None:
    add_local_package(tmp_path / "r", 4)
    result = promote("prod", 4, manifest, LocalRegistry(tmp_path / "r", GROUP), known_envs=ENVS)
    assert result.version == 4 and result.replaced_version == 3


def test_a_manifest_that_cannot_be_written_is_one_line_and_stays_as_it_was(
    tmp_path: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    add_local_package(tmp_path / "r", 4)
    original = manifest.read_text()

    def disk_full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", disk_full)
    args = ["--env", "prod", "--version", "4", "--local", "--registry", str(tmp_path / "r")]
    err = io.StringIO()
    code = promote_command(parse([*args, "--manifest", str(manifest)]), group_name=GROUP, err=err)
    assert code == 1
    assert err.getvalue() == (
        f"ERROR: cannot write {manifest} (No space left on device); it is unchanged\n"
    )
    assert manifest.read_text() == original
    assert sorted(p.name for p in manifest.parent.iterdir()) == ["r", "releases.yaml"]
