"""The local model registry: versioning, status, atomic writes, the documented layout."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import TickingClock

from mlops.local.registry import LocalRegistry, RegistryError


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"not really a tarball but bytes")
    return path


@pytest.fixture()
def metrics_file(tmp_path: Path) -> Path:
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({"binary_classification_metrics": {"auc": {"value": 0.69}}}))
    return path


def test_register_writes_the_documented_layout(
    tmp_path: Path, model: Path, metrics_file: Path
) -> None:
    registry = LocalRegistry(tmp_path / "reg")
    package = registry.register(
        group="flight-delay-dev",
        model_data=model,
        model_data_url="s3://artifacts/models/job-1/output/model.tar.gz",
        status="PendingManualApproval",
        image="img:1",
        metrics={"ModelQuality": {"Statistics": json.loads(metrics_file.read_text())}},
        metric_files={"ModelQuality-Statistics": metrics_file},
    )
    folder = tmp_path / "reg" / "flight-delay-dev" / "v1"
    on_disk = json.loads((folder / "package.json").read_text())
    assert on_disk["version"] == 1
    assert on_disk["status"] == "PendingManualApproval"
    assert on_disk["model_data_url"] == "s3://artifacts/models/job-1/output/model.tar.gz"
    assert on_disk["model_data_path"] == str((folder / "model.tar.gz").resolve())
    assert "approved_at" not in on_disk
    assert on_disk["model_package_arn"] == (
        "arn:aws:sagemaker:local:000000000000:model-package/flight-delay-dev/1"
    )
    assert on_disk["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert on_disk["metrics"]["ModelQuality"]["Statistics"]["binary_classification_metrics"]
    assert on_disk["created_at"].endswith("+00:00")
    assert (folder / "model.tar.gz").read_bytes() == model.read_bytes()
    assert (folder / "metrics" / "ModelQuality-Statistics.json").read_text() == (
        metrics_file.read_text()
    )
    assert package.model_data_path == on_disk["model_data_path"]


def test_versions_increase_and_filter_by_status(tmp_path: Path, model: Path) -> None:
    registry = LocalRegistry(tmp_path)
    for status in ("Approved", "PendingManualApproval", "Rejected"):
        registry.register(group="g", model_data=model, status=status)
    assert [p.version for p in registry.list_packages("g")] == [1, 2, 3]
    assert [p.version for p in registry.list_packages("g", status="Approved")] == [1]
    assert registry.latest("g").version == 1  # type: ignore[union-attr]
    assert registry.get("g", 1).approved_at == registry.get("g", 1).created_at
    assert registry.get("g", 2).approved_at is None
    registry.set_status("g", 2, "Approved")
    assert registry.get("g", 2).status == "Approved"
    assert registry.get("g", 2).approved_at is not None
    assert registry.latest("g").version == 2  # type: ignore[union-attr]
    assert registry.list_packages("other") == []
    assert registry.groups() == ["g"]


def test_invalid_requests_are_refused(tmp_path: Path, model: Path) -> None:
    registry = LocalRegistry(tmp_path)
    with pytest.raises(RegistryError, match="not one of PendingManualApproval, Approved"):
        registry.register(group="g", model_data=model, status="Maybe")
    with pytest.raises(RegistryError, match="model package group name 'bad name!' is invalid"):
        registry.register(group="bad name!", model_data=model)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register(group="g", model_data=tmp_path / "missing.tar.gz")
    registry.register(group="g", model_data=model)
    with pytest.raises(RegistryError, match=r"g v7 not found \(versions: v1\)"):
        registry.get("g", 7)
    with pytest.raises(RegistryError, match="not one of"):
        registry.set_status("g", 1, "approved")


def test_group_arn_is_accepted(tmp_path: Path, model: Path) -> None:
    registry = LocalRegistry(tmp_path)
    arn = "arn:aws:sagemaker:us-east-1:111111111111:model-package-group/flights"
    assert registry.register(group=arn, model_data=model).model_package_group_name == "flights"


def test_a_crash_mid_write_leaves_no_version(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = LocalRegistry(tmp_path)
    registry.register(group="g", model_data=model)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("mlops.local.registry.shutil.copyfile", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.register(group="g", model_data=model)
    monkeypatch.undo()
    assert [p.version for p in registry.list_packages("g")] == [1]
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["v1"]
    # The next successful write takes v2, not a number burnt by the crash.
    assert registry.register(group="g", model_data=model).version == 2


def test_leftover_temp_folder_is_invisible(tmp_path: Path, model: Path) -> None:
    registry = LocalRegistry(tmp_path)
    (tmp_path / "g" / ".tmp-abandoned").mkdir(parents=True)
    (tmp_path / "g" / "v9").mkdir()  # a folder without package.json is not a version
    assert registry.list_packages("g") == []
    assert registry.register(group="g", model_data=model).version == 1


def test_status_change_replaces_package_json_atomically(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = LocalRegistry(tmp_path)
    registry.register(group="g", model_data=model)
    before = (tmp_path / "g" / "v1" / "package.json").read_text()

    def fail_replace(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr("mlops.local.registry.os.replace", fail_replace)
    with pytest.raises(OSError, match="power cut"):
        registry.set_status("g", 1, "Approved")
    assert (tmp_path / "g" / "v1" / "package.json").read_text() == before


def test_concurrent_writers_get_distinct_versions(tmp_path: Path, model: Path) -> None:
    registry = LocalRegistry(tmp_path)
    errors: list[BaseException] = []

    def register() -> None:
        try:
            LocalRegistry(tmp_path).register(group="g", model_data=model)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.version for p in registry.list_packages("g")] == list(range(1, 9))


def test_a_moved_registry_still_points_at_its_files(tmp_path: Path, model: Path) -> None:
    LocalRegistry(tmp_path / "a").register(group="g", model_data=model)
    os.rename(tmp_path / "a", tmp_path / "b")
    package = LocalRegistry(tmp_path / "b").get("g", 1)
    assert Path(package.model_data_path).read_bytes() == model.read_bytes()


# ---- time comes from the registry's clock ----------------------------------------------


def test_registry_stamps_creation_approval_and_update_with_its_clock(
    tmp_path: Path, model: Path
) -> None:
    clock = TickingClock(datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    registry = LocalRegistry(tmp_path / "reg", clock)
    pending = registry.register(group="g", model_data=model, status="PendingManualApproval")
    assert pending.created_at == pending.updated_at == "2026-11-26T12:00:00+00:00"
    assert pending.approved_at is None

    approved = registry.set_status("g", 1, "Approved")
    assert approved.approved_at == "2026-11-26T12:00:01+00:00"
    assert approved.updated_at == "2026-11-26T12:00:02+00:00"
    again = registry.set_status("g", 1, "Approved")  # already approved: keeps its approval time
    assert again.approved_at == "2026-11-26T12:00:01+00:00"
    assert again.updated_at == "2026-11-26T12:00:03+00:00"
    assert registry.register(group="g", model_data=model, status="Approved").approved_at == (
        "2026-11-26T12:00:04+00:00"
    )
