"""A local model registry: the SageMaker Model Registry's data model in a folder.

Layout (read by `mlops promote --local` and by the local runner's FindIncumbent):

    <root>/
      <model-package-group>/
        v1/
          package.json        the model package (below)
          model.tar.gz        copy of the model artifact
          metrics/<Kind>-<Part>.json   copies of the ModelMetrics files, e.g.
                                       ModelQuality-Statistics.json (evaluation.json)
        v2/ ...
        .tmp-<random>/        a version being written (ignored by readers)

package.json:

    {"model_package_group_name": "flight-delay-dev", "version": 1,
     "status": "PendingManualApproval" | "Approved" | "Rejected",
     "model_data_url": "s3://<bucket>/<key>/model.tar.gz"  (where the artifact was when
                       registered: the ModelDataUrl SageMaker's registry would hold; the
                       release manifest keeps its key),
     "model_data_path": "<absolute path of v1/model.tar.gz>"  (the copy in the registry),
     "image": "<inference image URI>",
     "metrics": {"ModelQuality": {"Statistics": {...evaluation.json...}},
                 "ModelDataQuality": {"Statistics": {...baseline.json...}}},
     "metric_files": {"ModelQuality-Statistics": "<absolute path>"},
     "created_at": "2026-11-26T10:00:00+00:00", "updated_at": "...",
     "approved_at": "..." (when the status became Approved, else absent),
     "approval_description": "..." (UpdateModelPackage's ApprovalDescription, else absent),
     "model_package_arn": "arn:aws:sagemaker:local:000000000000:model-package/<group>/1",
     "sha256": "<hex digest of model.tar.gz>",
     "description": "...", "source": {...pipeline, execution id...}}

Writes are atomic: a new version is assembled in a hidden temp folder and renamed to v<N>
(a rename onto an existing folder fails, so two concurrent writers cannot take the same
number); a status change replaces package.json through os.replace. A crash leaves at most
a hidden temp folder, never a half version. Paths are resolved from where the registry
lives when read, so a moved registry folder keeps working.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from mlops.clock import Clock, utc_now

STATUSES = ("PendingManualApproval", "Approved", "Rejected")
LOCAL_ACCOUNT = "000000000000"
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


class RegistryError(ValueError):
    """A request the registry refuses (unknown group or version, bad status or name)."""


@dataclass(frozen=True)
class ModelPackage:
    model_package_group_name: str
    version: int
    status: str
    model_data_url: str
    model_data_path: str
    image: str
    metrics: dict[str, Any]
    created_at: str
    model_package_arn: str
    sha256: str
    updated_at: str = ""
    metric_files: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    approved_at: str | None = None
    approval_description: str = ""  # SageMaker's ApprovalDescription (why approved/rejected)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["approved_at"] is None:
            del data["approved_at"]
        if not data["approval_description"]:
            del data["approval_description"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelPackage:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def _read_package_json(folder: Path) -> dict[str, Any]:
    """package.json as a mapping, or a RegistryError naming the file (never a traceback)."""
    path = folder / "package.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RegistryError(
            f"{path} is corrupt ({error}); delete {folder} or register the model again"
        ) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path} is corrupt (a {type(data).__name__}, not an object)")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise RegistryError(f"model approval status {status!r} is not one of {', '.join(STATUSES)}")
    return status


def group_name_from(value: str) -> str:
    """A model package group name, or the name inside a model package group ARN."""
    name = value.rsplit("/", 1)[-1] if value.startswith("arn:") else value
    if not _GROUP_NAME.match(name):
        raise RegistryError(
            f"model package group name {value!r} is invalid "
            "(1-63 letters, digits and hyphens, starting with a letter or digit)"
        )
    return name


class LocalRegistry:
    """Versioned model packages with approval status, in a folder (layout in the docstring)."""

    def __init__(self, root: Path, clock: Clock = utc_now) -> None:
        self.root = Path(root)
        self.clock = clock

    def _now(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="seconds")

    def _group_dir(self, group: str) -> Path:
        return self.root / group_name_from(group)

    def groups(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and _GROUP_NAME.match(p.name)
        )

    def _versions(self, group: str) -> list[int]:
        folder = self._group_dir(group)
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            match = _VERSION_DIR.match(child.name)
            if match and (child / "package.json").is_file():
                found.append(int(match.group(1)))
        return sorted(found)

    def _load(self, folder: Path) -> ModelPackage:
        data = _read_package_json(folder)
        # Paths follow the folder, wherever the registry now lives.
        data["model_data_path"] = str((folder / "model.tar.gz").resolve())
        data["metric_files"] = {
            name: str((folder / "metrics" / f"{name}.json").resolve())
            for name in data.get("metric_files", {})
        }
        try:
            return ModelPackage.from_dict(data)
        except TypeError as error:  # a required field is missing
            raise RegistryError(f"{folder / 'package.json'} is corrupt: {error}") from None

    def get(self, group: str, version: int) -> ModelPackage:
        folder = self._group_dir(group) / f"v{int(version)}"
        if not (folder / "package.json").is_file():
            known = ", ".join(f"v{v}" for v in self._versions(group)) or "none"
            raise RegistryError(f"model package {group} v{version} not found (versions: {known})")
        return self._load(folder)

    def list_packages(self, group: str, status: str | None = None) -> list[ModelPackage]:
        """Packages of a group, oldest version first; only those with `status` if given."""
        if status is not None:
            check_status(status)
        packages = [self.get(group, v) for v in self._versions(group)]
        return [p for p in packages if status is None or p.status == status]

    def latest(self, group: str, status: str | None = "Approved") -> ModelPackage | None:
        packages = self.list_packages(group, status)
        return packages[-1] if packages else None

    def register(
        self,
        *,
        group: str,
        model_data: Path,
        model_data_url: str | None = None,
        status: str = "PendingManualApproval",
        image: str = "",
        metrics: Mapping[str, Any] | None = None,
        metric_files: Mapping[str, Path] | None = None,
        description: str = "",
        source: Mapping[str, Any] | None = None,
    ) -> ModelPackage:
        """Add the next version of `group` with a copy of `model_data` (a model.tar.gz);
        model_data_url is the URI it was registered from (default: the registry copy)."""
        name = group_name_from(group)
        check_status(status)
        model_data = Path(model_data)
        if not model_data.is_file():
            raise RegistryError(f"model artifact {model_data} does not exist")
        folder = self._group_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))
        try:
            shutil.copyfile(model_data, staging / "model.tar.gz")
            copied: dict[str, str] = {}
            if metric_files:
                (staging / "metrics").mkdir()
                for metric_name, path in sorted(metric_files.items()):
                    shutil.copyfile(path, staging / "metrics" / f"{metric_name}.json")
                    copied[metric_name] = metric_name
            sha = _sha256(staging / "model.tar.gz")
            created = self._now()
            while True:
                version = max(self._versions(name), default=0) + 1
                target = folder / f"v{version}"
                final = target.resolve()
                package = ModelPackage(
                    model_package_group_name=name,
                    version=version,
                    status=status,
                    model_data_url=model_data_url or str(final / "model.tar.gz"),
                    model_data_path=str(final / "model.tar.gz"),
                    image=image,
                    metrics=dict(metrics or {}),
                    created_at=created,
                    updated_at=created,
                    model_package_arn=(
                        f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:model-package/{name}/{version}"
                    ),
                    sha256=sha,
                    metric_files={k: str(final / "metrics" / f"{k}.json") for k in copied},
                    description=description,
                    source=dict(source or {}),
                    approved_at=created if status == "Approved" else None,
                )
                _write_json_atomic(staging / "package.json", package.to_dict())
                try:
                    os.rename(staging, target)  # atomic; fails if another writer took v<N>
                except OSError:
                    if target.exists():
                        continue
                    raise
                return self._load(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def set_status(
        self, group: str, version: int, status: str, approval_description: str | None = None
    ) -> ModelPackage:
        """UpdateModelPackage: the approval status, and its ApprovalDescription when given."""
        check_status(status)
        self.get(group, version)  # raises a clear error for an unknown version
        folder = self._group_dir(group) / f"v{int(version)}"
        data = _read_package_json(folder)
        if status == "Approved" and data.get("status") != "Approved":
            data["approved_at"] = self._now()
        data["status"] = status
        if approval_description is not None:
            data["approval_description"] = approval_description
        data["updated_at"] = self._now()
        _write_json_atomic(folder / "package.json", data)
        return self._load(folder)
