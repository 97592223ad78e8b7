"""The release manifest (config/releases.yaml): which registered model each environment serves.

Format (every environment optional; an absent environment or `current: null` deploys no
endpoint)::

    prod:
      current:                       # the model served, or null
        model_package_arn: arn:aws:sagemaker:us-east-1:222222222222:model-package/flight-delay/3
        version: 3                   # must equal the ARN's trailing version
        artifact_key: models/flight-delay/v3/model.tar.gz   # key in the artifact bucket
        image: sagemaker-xgboost:3.0-5   # name:tag; the region's registry is prepended per region
        sha256: <64 lowercase hex>   # of model.tar.gz
        approved_at: '2026-11-02T10:15:00Z'   # optional, UTC
      previous: {same fields} or null   # kept for rollback; requires current, differs from it

Synth reads it with load_manifest (never "latest approved" from the registry), promote.py
rewrites it with dump_manifest; app_builder refuses a prod without a model unless told
(-c allow-prod-without-model=true).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

RELEASE_FIELDS = ("model_package_arn", "version", "artifact_key", "image", "sha256")
OPTIONAL_RELEASE_FIELDS = ("approved_at",)
STAGED_PREFIX = "models/sha256/"
ENVIRONMENT_FIELDS = ("current", "previous")

ARN_FORMAT = "arn:aws:sagemaker:<region>:<12 digits>:model-package/<group>/<version>"
_ARN = re.compile(
    r"^arn:aws:sagemaker:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"model-package/(?P<group>[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[A-Za-z0-9!_.*'()=+-]+(?:/[A-Za-z0-9!_.*'()=+-]+)*\.tar\.gz$")
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)

HEADER = """\
# Release manifest: which registered model each environment serves. A reviewed change:
# written by `mlops promote --env ENV --version N`, the PR's synth diff shows the model
# change, merging deploys it. Per environment: current (served; null = no endpoint) and
# previous (kept for rollback, or null). Fields: model_package_arn, version, artifact_key
# (key of model.tar.gz in the artifact bucket), image (name:tag; the region's registry is
# prepended per region), sha256 (of model.tar.gz), approved_at (optional, UTC).
"""


class ManifestError(ValueError):
    """Bad manifest input; str() is the one-line message the CLI prints after 'ERROR: '."""


@dataclass(frozen=True)
class ModelRelease:
    model_package_arn: str
    version: int
    artifact_key: str
    image: str
    sha256: str
    approved_at: str | None = None

    @property
    def region(self) -> str:
        return self._arn_part("region")

    @property
    def account(self) -> str:
        return self._arn_part("account")

    @property
    def group(self) -> str:
        return self._arn_part("group")

    def _arn_part(self, name: str) -> str:
        match = _ARN.match(self.model_package_arn)
        assert match is not None, "validated at construction by parse_release"
        return match.group(name)

    @property
    def staged_key(self) -> str:
        """Where each serving region's model bucket holds its verified copy: content-addressed,
        written only by that region's model stager (see lambda/stage_model)."""
        return f"{STAGED_PREFIX}{self.sha256}/model.tar.gz"

    def image_uri(self, registry: str) -> str:
        """Full image URI for one region, e.g. registry '683313688378.dkr.ecr.us-east-1...'."""
        return f"{registry.rstrip('/')}/{self.image}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model_package_arn": self.model_package_arn,
            "version": self.version,
            "artifact_key": self.artifact_key,
            "image": self.image,
            "sha256": self.sha256,
        }
        if self.approved_at is not None:
            data["approved_at"] = self.approved_at
        return data


@dataclass(frozen=True)
class EnvironmentRelease:
    current: ModelRelease | None = None
    previous: ModelRelease | None = None

    @property
    def has_endpoint(self) -> bool:
        return self.current is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict() if self.current else None,
            "previous": self.previous.to_dict() if self.previous else None,
        }


@dataclass(frozen=True)
class RegistryHub:
    """Where an environment's packages must come from: its hub's registry."""

    name: str
    account: str
    region: str
    group: str

    @property
    def arn_prefix(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{self.group}/"

    @property
    def group_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:model-package-group/{self.group}"


def foreign_package(release: ModelRelease, hub: RegistryHub) -> str | None:
    """Why the package is not one of the hub's registry (account, region, group), or None.
    A serving stage can read only its hub's registry and artifacts: anything else fails at
    deploy time, or worse, serves a model nobody reviewed in the hub."""
    for part, found, wanted in (
        ("account", release.account, hub.account),
        ("region", release.region, hub.region),
        ("group", release.group, hub.group),
    ):
        if found != wanted:
            return (
                f"{part} {found} is not the hub's ({hub.name}: {wanted}); allowed: "
                f"{hub.arn_prefix}<version>"
            )
    return None


def check_release_sources(manifest: ReleaseManifest, env: str, hub: RegistryHub) -> None:
    """Refuse (ManifestError) a pinned package of `env` that is not in the hub's registry."""
    release = manifest.get(env)
    for slot, pinned in (("current", release.current), ("previous", release.previous)):
        problem = foreign_package(pinned, hub) if pinned is not None else None
        if problem:
            raise ManifestError(f"{manifest.path}: {env}.{slot}.model_package_arn: {problem}")


@dataclass(frozen=True)
class ReleaseManifest:
    path: str
    environments: Mapping[str, EnvironmentRelease]

    def get(self, env: str) -> EnvironmentRelease:
        """The environment's release; an absent environment serves nothing."""
        return self.environments.get(env, EnvironmentRelease())

    def with_environment(self, env: str, release: EnvironmentRelease) -> ReleaseManifest:
        envs = dict(self.environments)
        envs[env] = release
        return replace(self, environments=MappingProxyType(envs))

    def to_dict(self) -> dict[str, Any]:
        return {env: rel.to_dict() for env, rel in self.environments.items()}


def load_manifest(path: str | os.PathLike[str], known_envs: Collection[str]) -> ReleaseManifest:
    """Read and validate the manifest; any problem raises ManifestError (one line)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{source}: file not found") from None
    except OSError as err:
        raise ManifestError(f"{source}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ManifestError(
            f"{source}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
            f"{err.start}); save the file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ManifestError(f"{source}: invalid YAML{line}: {problem}") from None
    return parse_manifest(data, known_envs, source)


def parse_manifest(data: Any, known_envs: Collection[str], source: str) -> ReleaseManifest:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a mapping of environment -> release")
    allowed = ", ".join(sorted(known_envs))
    envs: dict[str, EnvironmentRelease] = {}
    for env, value in data.items():
        if env not in known_envs:
            raise ManifestError(f"{source}: unknown environment '{env}'; allowed: {allowed}")
        envs[str(env)] = _parse_environment(value, f"{source}: {env}")
    return ReleaseManifest(path=source, environments=MappingProxyType(envs))


def _parse_environment(value: Any, where: str) -> EnvironmentRelease:
    if value is None:
        return EnvironmentRelease()
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a mapping with 'current' and 'previous'")
    unknown = sorted(set(value) - set(ENVIRONMENT_FIELDS))
    if unknown:
        raise ManifestError(
            f"{where}: unknown field '{unknown[0]}'; allowed: {', '.join(ENVIRONMENT_FIELDS)}"
        )
    current = _parse_release(value.get("current"), f"{where}.current")
    previous = _parse_release(value.get("previous"), f"{where}.previous")
    if previous is not None and current is None:
        raise ManifestError(f"{where}.previous: set while current is null; previous needs current")
    if (
        current is not None
        and previous is not None
        and previous.model_package_arn == current.model_package_arn
    ):
        raise ManifestError(
            f"{where}.previous: equals current (v{current.version}); previous must be "
            f"the version served before current, or null"
        )
    return EnvironmentRelease(current=current, previous=previous)


def _parse_release(value: Any, where: str) -> ModelRelease | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a mapping of {', '.join(RELEASE_FIELDS)} or null")
    allowed = RELEASE_FIELDS + OPTIONAL_RELEASE_FIELDS
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ManifestError(f"{where}: unknown field '{unknown[0]}'; allowed: {', '.join(allowed)}")
    missing = [f for f in RELEASE_FIELDS if value.get(f) in (None, "")]
    if missing:
        raise ManifestError(
            f"{where}: missing field '{missing[0]}'; required: {', '.join(RELEASE_FIELDS)}"
        )

    arn = value["model_package_arn"]
    match = _ARN.match(arn) if isinstance(arn, str) else None
    if match is None:
        raise ManifestError(
            f"{where}.model_package_arn: '{arn}' is malformed; allowed: {ARN_FORMAT}"
        )
    version = value["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ManifestError(f"{where}.version: '{version}' is not a positive integer")
    if int(match.group("version")) != version:
        raise ManifestError(
            f"{where}.version: {version} differs from the ARN's version {match.group('version')}"
        )
    key = value["artifact_key"]
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key.split("/"):
        raise ManifestError(
            f"{where}.artifact_key: '{key}' is not allowed; use the S3 key of model.tar.gz in "
            f"the artifact bucket (no s3://, no leading /, ending in .tar.gz)"
        )
    image = value["image"]
    if not isinstance(image, str) or not _valid_image(image):
        raise ManifestError(
            f"{where}.image: '{image}' is not allowed; use name:tag without a registry, e.g. "
            f"sagemaker-xgboost:3.0-5 (the region's registry is prepended per region)"
        )
    sha = value["sha256"]
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ManifestError(f"{where}.sha256: not a sha256; allowed: 64 lowercase hex characters")
    return ModelRelease(
        model_package_arn=arn,
        version=version,
        artifact_key=key,
        image=image,
        sha256=sha,
        approved_at=_parse_time(value.get("approved_at"), f"{where}.approved_at"),
    )


def _valid_image(image: str) -> bool:
    match = _IMAGE.match(image)
    if match is None:
        return False
    first = match.group("name").split("/")[0]
    # A first component with a dot is a registry host (xxx.dkr.ecr.<region>.amazonaws.com).
    return "/" not in match.group("name") or "." not in first


def _parse_time(value: Any, where: str) -> str | None:
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ManifestError(
            f"{where}: '{value}' is not a timestamp; allowed: ISO 8601 such as 2026-11-02T10:15:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # YAML timestamps without offset are UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a bad merge could otherwise pick one silently)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def render_manifest(manifest: ReleaseManifest) -> str:
    """Deterministic text: the committed file is exactly render(load(file))."""
    body = yaml.safe_dump(manifest.to_dict(), sort_keys=False, default_flow_style=False)
    return HEADER + body


def dump_manifest(manifest: ReleaseManifest, path: str | os.PathLike[str]) -> None:
    """Atomic rewrite: readers (and a crash) see the old or the new file, never half of one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render_manifest(manifest))
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
