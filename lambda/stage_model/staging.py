"""Put the pinned model artifact into the serving region's model bucket, verified.

S3 replication only copies objects written after a destination exists, so a first
deployment (or a region added later) would find no artifact. This runs as a custom resource
before the endpoint's models are created: it copies the release's model.tar.gz from the
hub's artifact bucket when the regional copy is missing or different, and refuses an
artifact whose sha256 differs from the release manifest.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import Any

CHUNK = 8 * 1024 * 1024
SHA_METADATA = "sha256"


class ArtifactMismatch(RuntimeError):
    """The hub's artifact is not the one the release manifest pinned."""


@dataclass(frozen=True)
class StagingRequest:
    source_bucket: str
    destination_bucket: str
    key: str
    sha256: str
    destination_kms_key: str

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> StagingRequest:
        names = ("SourceBucket", "DestinationBucket", "Key", "Sha256", "DestinationKmsKey")
        missing = [n for n in names if not properties.get(n)]
        if missing:
            raise ValueError(f"stage_model needs {', '.join(missing)}")
        return cls(*(str(properties[n]) for n in names))


def _present(destination: Any, request: StagingRequest) -> bool:
    try:
        head = destination.head_object(Bucket=request.destination_bucket, Key=request.key)
    except destination.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return bool(head.get("Metadata", {}).get(SHA_METADATA) == request.sha256)


def stage_model(source: Any, destination: Any, request: StagingRequest) -> dict[str, str]:
    """Idempotent: a verified copy already in place is left alone."""
    if _present(destination, request):
        return {"Action": "present", "Sha256": request.sha256}
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        body = source.get_object(Bucket=request.source_bucket, Key=request.key)["Body"]
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            spool.write(chunk)
        if digest.hexdigest() != request.sha256:
            raise ArtifactMismatch(
                f"s3://{request.source_bucket}/{request.key} has sha256 {digest.hexdigest()}, "
                f"but the release manifest pins {request.sha256}: refusing to serve it"
            )
        spool.seek(0)
        destination.put_object(
            Bucket=request.destination_bucket,
            Key=request.key,
            Body=spool,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=request.destination_kms_key,
            Metadata={SHA_METADATA: request.sha256},
        )
    return {"Action": "copied", "Sha256": request.sha256}
