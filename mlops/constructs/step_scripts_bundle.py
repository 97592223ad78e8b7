"""pipeline_steps/ packaged as one deterministic sourcedir.tar.gz, uploaded as a CDK asset.

SageMaker framework training extracts a tar.gz given as sagemaker_submit_directory, and our
processing entrypoint (BOOTSTRAP) does the same, so one archive serves every step. The
archive is byte-identical for identical sources (sorted entries, zeroed times and owners),
so its asset hash, and with it `cdk diff`, only changes when a script changes.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from mlops.constructs.asset_cache import built_once

_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}


def build_sourcedir_archive(source: Path, destination: Path) -> Path:
    """Write source/**/*.py (and *.json) into destination/sourcedir.tar.gz, reproducibly."""
    files = sorted(
        path
        for path in source.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".json"}
        and not _SKIP_PARTS.intersection(path.relative_to(source).parts)
    )
    if not files:
        raise ValueError(f"no step scripts found under {source}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / "sourcedir.tar.gz"
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(buffer.getvalue())
    return target


def _archive_in_temp_folder(source: Path) -> Path:
    return build_sourcedir_archive(source, Path(tempfile.mkdtemp(prefix="sourcedir-")))


class StepScriptsBundle(Construct):
    """The step scripts as an S3 asset; `s3_uri` goes into the pipeline definition."""

    def __init__(self, scope: Construct, construct_id: str, *, source: Path) -> None:
        super().__init__(scope, construct_id)
        archive = built_once("step-scripts", source, _archive_in_temp_folder)
        self.asset = s3_assets.Asset(self, "Archive", path=str(archive))
        self.s3_uri = self.asset.s3_object_url
