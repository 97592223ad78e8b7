"""Put the pinned model artifact into the serving region's model bucket, verified.

The endpoint's models read a content-addressed copy, `models/sha256/<digest>/model.tar.gz`,
that only this function writes (the model bucket's policy denies everyone else), so nobody
who can write the hub's artifact bucket (or the replicas S3 replication writes under the
hub's own keys) can change what a serving region serves.

Every deployment hashes bytes, never trusts metadata: the staged copy, if present, must hash
to the pinned sha256; otherwise the regional replica, then the hub's object, are read and
the first whose bytes hash to the pinned sha256 is written to the staged key. S3 replication
only copies objects written after a destination exists, hence the fallback to the hub.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO, Any

CHUNK = 8 * 1024 * 1024
MISSING = ("404", "NoSuchKey", "NotFound")


class ArtifactMismatch(RuntimeError):
    """No readable copy of the artifact is the one the release manifest pinned."""


@dataclass(frozen=True)
class StagingRequest:
    source_bucket: str  # the hub's artifact bucket
    destination_bucket: str  # this region's model bucket
    key: str  # the artifact's key at the hub (and of its replica here)
    staged_key: str  # the content-addressed key the models read
    sha256: str
    destination_kms_key: str

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> StagingRequest:
        names = (
            "SourceBucket",
            "DestinationBucket",
            "Key",
            "StagedKey",
            "Sha256",
            "DestinationKmsKey",
        )
        missing = [n for n in names if not properties.get(n)]
        if missing:
            raise ValueError(f"stage_model needs {', '.join(missing)}")
        request = cls(*(str(properties[n]) for n in names))
        if request.sha256 not in request.staged_key.split("/"):
            raise ValueError(
                f"StagedKey {request.staged_key} must contain the pinned sha256 {request.sha256}"
            )
        return request


def _read_verified(
    client: Any, bucket: str, key: str, sha256: str, spool: IO[bytes]
) -> tuple[bool, str, str]:
    """Stream the object into spool while hashing it: (matches, digest or 'missing', version)."""
    spool.seek(0)
    spool.truncate()
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING:
            return False, "missing", ""
        raise
    digest = hashlib.sha256()
    body = response["Body"]
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
        spool.write(chunk)
    spool.seek(0)
    return digest.hexdigest() == sha256, digest.hexdigest(), response.get("VersionId") or ""


def stage_model(source: Any, destination: Any, request: StagingRequest) -> dict[str, str]:
    """Idempotent: a staged copy whose bytes hash to the pinned sha256 is left alone.

    source: S3 client in the hub's region; destination: S3 client in this region.
    Returns Action (present | copied-from-replica | copied-from-hub), Sha256, VersionId
    (the staged object's version the endpoint serves)."""
    seen: list[str] = []
    with tempfile.TemporaryFile() as spool:
        ok, digest, version = _read_verified(
            destination, request.destination_bucket, request.staged_key, request.sha256, spool
        )
        if ok:
            return {"Action": "present", "Sha256": request.sha256, "VersionId": version}
        seen.append(f"s3://{request.destination_bucket}/{request.staged_key}: {digest}")
        candidates = (
            ("replica", destination, request.destination_bucket),
            ("hub", source, request.source_bucket),
        )
        for origin, client, bucket in candidates:
            ok, digest, _ = _read_verified(client, bucket, request.key, request.sha256, spool)
            if not ok:
                seen.append(f"s3://{bucket}/{request.key}: {digest}")
                continue
            written = destination.put_object(
                Bucket=request.destination_bucket,
                Key=request.staged_key,
                Body=spool,
                ChecksumSHA256=_base64_digest(request.sha256),
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=request.destination_kms_key,
            )
            return {
                "Action": f"copied-from-{origin}",
                "Sha256": request.sha256,
                "VersionId": written.get("VersionId") or "",
            }
    raise ArtifactMismatch(
        f"no copy of the artifact has the sha256 the release manifest pins ({request.sha256}): "
        f"{'; '.join(seen)}; refusing to serve it"
    )


def _base64_digest(hex_digest: str) -> str:
    """S3 verifies the upload against this (x-amz-checksum-sha256) and rejects a mismatch."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
