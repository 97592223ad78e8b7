"""`mlops promote --env ENV --version N [--local [--registry DIR]]`: pin a registered model in
the release manifest. The manifest change is the reviewed promotion; merging deploys it.

Registries (both implement ModelRegistry.get_package):

* AwsRegistry: the SageMaker Model Registry, one model package group. The package must be
  Approved; ModelDataUrl and image come from its first inference container, the sha256 from
  CustomerMetadataProperties["model_sha256"] (set by the register step; computing it here
  would mean downloading the artifact, which promotion deliberately does not do).

* LocalRegistry: the folder the local runner's register step writes::

      <registry>/<group>/v<N>/package.json
      <registry>/<group>/v<N>/model.tar.gz

  package.json (the comments below explain; the file is plain JSON)::

      {
        "version": 3,                         # int, equals N in the folder name
        "status": "Approved",                 # PendingManualApproval | Approved | Rejected
        "model_data_url": "s3://<artifact bucket>/<key>/model.tar.gz",
        "image": "sagemaker-xgboost:3.0-5",   # name:tag (a full ECR URI is accepted)
        "metrics": {"auc": 0.71, ...},        # evaluation report, free-form
        "created_at": "2026-11-26T10:00:00Z", # ISO 8601
        "model_package_arn": "arn:...",       # optional; else built from account/region
        "sha256": "<64 hex>",                 # optional; checked against model.tar.gz
        "approved_at": "2026-11-26T11:00:00Z" # optional
      }

  model_data_url is the S3 URI the artifact has once uploaded (the local runner maps S3
  URIs to folders, so it knows it); the manifest keeps only its key. The sha256 is computed
  from model.tar.gz itself.

promote() rewrites the manifest atomically: the promoted version becomes current and the old
current becomes previous (the rollback target).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from mlops.release_manifest import (
    ManifestError,
    RegistryHub,
    dump_manifest,
    foreign_package,
    load_manifest,
    parse_manifest,
)

APPROVED = "Approved"
SHA256_METADATA_KEY = "model_sha256"
DEFAULT_ENVS = ("dev", "staging", "prod", "sandbox")
DEFAULT_MANIFEST = "config/releases.yaml"
DEFAULT_LOCAL_REGISTRY = "local-registry"
LOCAL_ACCOUNT = "000000000000"


class PromoteError(ValueError):
    """A refused promotion; str() is one line for 'ERROR: ...'."""


@dataclass(frozen=True)
class RegistryPackage:
    model_package_arn: str
    version: int
    status: str
    model_data_url: str
    image: str
    sha256: str
    approved_at: str | None = None


class ModelRegistry(Protocol):
    description: str

    def get_package(self, version: int) -> RegistryPackage:
        """The package with this version; PromoteError when it does not exist."""
        ...


@dataclass(frozen=True)
class PromotionResult:
    env: str
    version: int
    replaced_version: int | None
    manifest_path: str

    def summary(self) -> str:
        before = "no model" if self.replaced_version is None else f"v{self.replaced_version}"
        return (
            f"{self.env}: {before} -> v{self.version} written to {self.manifest_path}; "
            f"review the synth diff and open a pull request"
        )


def promote(
    env: str,
    version: int,
    manifest_path: str | Path,
    registry: ModelRegistry,
    *,
    known_envs: Collection[str] = DEFAULT_ENVS,
    hub: RegistryHub | None = None,
) -> PromotionResult:
    """Pin `version` as env's current model; the old current becomes previous.
    With `hub`, a package outside the hub's registry (account, region, group) is refused."""
    manifest = load_manifest(manifest_path, known_envs)
    if env not in known_envs:
        raise PromoteError(f"unknown environment '{env}'; allowed: {', '.join(sorted(known_envs))}")
    package = registry.get_package(version)
    if package.status != APPROVED:
        raise PromoteError(
            f"{registry.description} v{version} is {package.status}; only Approved packages "
            f"can be promoted"
        )
    if hub is not None:
        pinned = parse_manifest(
            {env: {"current": _release_fields(package), "previous": None}},
            known_envs,
            f"{registry.description} v{version}",
        ).get(env)
        assert pinned.current is not None
        problem = foreign_package(pinned.current, hub)
        if problem:
            raise PromoteError(f"{package.model_package_arn}: {problem}")
    old = manifest.get(env)
    if old.current is not None and old.current.model_package_arn == package.model_package_arn:
        raise PromoteError(f"{env} already serves v{version}; nothing to promote")
    new_current = _release_fields(package)
    data = manifest.to_dict()
    data[env] = {
        "current": new_current,
        "previous": old.current.to_dict() if old.current else None,
    }
    # Re-validate the whole result before writing: the registry is input too.
    updated = parse_manifest(data, known_envs, str(manifest_path))
    try:
        dump_manifest(updated, manifest_path)
    except OSError as error:  # the atomic rewrite leaves the manifest as it was
        raise PromoteError(
            f"cannot write {manifest_path} ({error.strerror or error}); it is unchanged"
        ) from None
    return PromotionResult(
        env=env,
        version=version,
        replaced_version=old.current.version if old.current else None,
        manifest_path=str(manifest_path),
    )


def _release_fields(package: RegistryPackage) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model_package_arn": package.model_package_arn,
        "version": package.version,
        "artifact_key": artifact_key(package.model_data_url),
        "image": image_name(package.image),
        "sha256": package.sha256,
    }
    if package.approved_at:
        fields["approved_at"] = package.approved_at
    return fields


def artifact_key(model_data_url: str) -> str:
    """s3://bucket/key -> key (the manifest names the key in the artifact bucket)."""
    if not model_data_url.startswith("s3://") or "/" not in model_data_url[5:]:
        raise PromoteError(f"model data URL '{model_data_url}' is not an s3://bucket/key URI")
    return model_data_url[5:].split("/", 1)[1]


def image_name(image: str) -> str:
    """Full ECR URI -> name:tag; images are per region, the registry is added per region."""
    if "@" in image:
        raise PromoteError(f"image '{image}' is pinned by digest; the manifest needs name:tag")
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return image


class AwsRegistry:
    """One model package group in the SageMaker Model Registry (boto3 sagemaker client)."""

    def __init__(self, sagemaker_client: Any, group_name: str) -> None:
        """group_name: a name (the caller's account) or a group ARN (the hub's, from any
        account the hub's registry policy lets read it)."""
        self._sm = sagemaker_client
        self.group = group_name
        self.description = f"model package group {group_name}"

    def get_package(self, version: int) -> RegistryPackage:
        summaries = self._summaries()
        found = [s for s in summaries if s.get("ModelPackageVersion") == version]
        if not found:
            available = sorted(int(s["ModelPackageVersion"]) for s in summaries)
            raise PromoteError(
                f"version {version} not found in {self.description}; available: "
                f"{_versions(available)}"
            )
        arn = found[0]["ModelPackageArn"]
        desc = self._sm.describe_model_package(ModelPackageName=arn)
        containers = desc.get("InferenceSpecification", {}).get("Containers", [])
        if not containers or not containers[0].get("ModelDataUrl"):
            raise PromoteError(f"{arn} has no inference container with a ModelDataUrl")
        sha = (desc.get("CustomerMetadataProperties") or {}).get(SHA256_METADATA_KEY)
        if not sha:
            raise PromoteError(
                f"{arn} has no CustomerMetadataProperties.{SHA256_METADATA_KEY}; the register "
                f"step must record the artifact's sha256 (promote does not download artifacts)"
            )
        # The registry has no approval timestamp; for an Approved package the last
        # modification is the approval in the normal flow.
        modified = desc.get("LastModifiedTime")
        return RegistryPackage(
            model_package_arn=arn,
            version=version,
            status=str(desc.get("ModelApprovalStatus", "")),
            model_data_url=containers[0]["ModelDataUrl"],
            image=containers[0]["Image"],
            sha256=str(sha),
            approved_at=_utc(modified) if isinstance(modified, datetime) else None,
        )

    def _summaries(self) -> list[dict[str, Any]]:
        paginator = self._sm.get_paginator("list_model_packages")
        pages = paginator.paginate(ModelPackageGroupName=self.group, ModelPackageType="Versioned")
        return [s for page in pages for s in page.get("ModelPackageSummaryList", [])]


class LocalRegistry:
    """The local runner's registry folder (layout in the module docstring)."""

    def __init__(
        self,
        root: str | Path,
        group_name: str,
        *,
        account: str = LOCAL_ACCOUNT,
        region: str = "us-east-1",
    ) -> None:
        self.root = Path(root)
        self.group = group_name
        self.account = account
        self.region = region
        self.description = f"local registry {self.root / group_name}"

    def get_package(self, version: int) -> RegistryPackage:
        folder = self.root / self.group / f"v{version}"
        meta_path = folder / "package.json"
        if not meta_path.is_file():
            raise PromoteError(
                f"version {version} not found in {self.description}; available: "
                f"{_versions(self.versions())}"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise PromoteError(f"{meta_path}: invalid JSON at line {err.lineno}") from None
        except UnicodeDecodeError as err:
            raise PromoteError(
                f"{meta_path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                f"{err.start}); register the model again"
            ) from None
        except OSError as err:
            raise PromoteError(f"{meta_path}: cannot read ({err.strerror or err})") from None
        if not isinstance(meta, dict):
            raise PromoteError(
                f"{meta_path}: a JSON {type(meta).__name__}, not an object with version, "
                "status, model_data_url and image; register the model again"
            )
        missing = [k for k in ("version", "status", "model_data_url", "image") if k not in meta]
        if missing:
            raise PromoteError(f"{meta_path}: missing field '{missing[0]}'")
        if meta["version"] != version:
            raise PromoteError(f"{meta_path}: version {meta['version']} but folder is v{version}")
        artifact = folder / "model.tar.gz"
        if not artifact.is_file():
            raise PromoteError(f"{artifact}: missing; the package has no model artifact")
        sha = file_sha256(artifact)
        if meta.get("sha256") and meta["sha256"] != sha:
            raise PromoteError(
                f"{artifact}: sha256 {sha} differs from package.json's {meta['sha256']}"
            )
        arn = meta.get("model_package_arn", "")
        if ":sagemaker:local:" in arn or not arn:
            # The local runner stands in for the hub: pin the ARN the hub registry would give
            # (its pseudo ARN, region "local", is not one a deployed stage could read).
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{self.group}/{version}"
        return RegistryPackage(
            model_package_arn=arn,
            version=version,
            status=str(meta["status"]),
            model_data_url=str(meta["model_data_url"]),
            image=str(meta["image"]),
            sha256=sha,
            approved_at=meta.get("approved_at"),
        )

    def versions(self) -> list[int]:
        group = self.root / self.group
        if not group.is_dir():
            return []
        return sorted(
            int(p.name[1:])
            for p in group.iterdir()
            if p.name.startswith("v") and p.name[1:].isdigit() and (p / "package.json").is_file()
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions(versions: list[int]) -> str:
    return ", ".join(f"v{v}" for v in versions) if versions else "none"


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CLI glue: the lead's `mlops` command adds these arguments and calls promote_command. ---


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="environment to promote into")
    parser.add_argument("--version", required=True, type=int, help="model package version")
    parser.add_argument("--local", action="store_true", help="read the local registry")
    parser.add_argument(
        "--registry", default=None, help=f"local registry folder (default {DEFAULT_LOCAL_REGISTRY})"
    )
    parser.add_argument("--manifest", default=DEFAULT_MANIFEST, help="release manifest path")
    parser.add_argument("--region", default=None, help="registry region (AWS registry only)")


def promote_command(
    args: argparse.Namespace,
    *,
    group_name: str,
    known_envs: Collection[str] = DEFAULT_ENVS,
    sagemaker_client: Any = None,
    registry_account: str = LOCAL_ACCOUNT,
    registry_region: str = "us-east-1",
    hub: RegistryHub | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run a promotion from parsed arguments; returns the exit code, prints one line.
    With `hub`, the AWS path reads the hub's group (by ARN) in the hub's region, whatever
    the profile's region, and refuses packages from anywhere else."""
    # The streams of call time (a default argument would keep those of import time).
    out, err = out or sys.stdout, err or sys.stderr
    if args.registry and not args.local:
        print("ERROR: --registry needs --local (it names the local registry folder)", file=err)
        return 2
    region = getattr(args, "region", None)
    if hub is not None and region and region != hub.region:
        print(
            f"ERROR: --region {region}: the registry of {args.env} is {hub.name}'s in "
            f"{hub.region}; omit --region or pass {hub.region}",
            file=err,
        )
        return 2
    try:
        registry: ModelRegistry
        if args.local:
            registry = LocalRegistry(
                args.registry or DEFAULT_LOCAL_REGISTRY,
                group_name,
                account=registry_account,
                region=registry_region,
            )
        else:
            registry = AwsRegistry(
                sagemaker_client or _sagemaker_client(hub.region if hub else region),
                hub.group_arn if hub else group_name,
            )
        result = promote(
            args.env, args.version, args.manifest, registry, known_envs=known_envs, hub=hub
        )
    except ManifestError as error:
        print(f"ERROR: {error}", file=err)
        return 2
    except PromoteError as error:
        print(f"ERROR: {error}", file=err)
        return 1
    except Exception as error:  # botocore: no credentials, access denied, throttled...
        if type(error).__module__.startswith("botocore"):
            print(f"ERROR: registry {group_name}: {error}", file=err)
            return 1
        raise
    print(result.summary(), file=out)
    return 0


def _sagemaker_client(region: str | None) -> Any:
    import boto3  # only the AWS path needs it
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("sagemaker", region_name=region, config=config)
