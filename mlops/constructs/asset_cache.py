"""Build an asset folder or archive once per process, not once per stage.

Every (environment, region) stage packages the same Lambda bundles and the same step-script
archive. Built anew per stage, each copy gets its own temporary path and CDK fingerprints
(hashes) every copy; built once, all stages share one path and CDK's asset cache, keyed on the
source path, hashes it once. The content, and with it the asset hash, is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Signature = tuple[tuple[str, int, int], ...]

_BUILT: dict[tuple[str, Path, Signature], Path] = {}


def source_signature(folder: Path) -> Signature:
    """(relative path, size, mtime) of every file under folder, in order: a cached build is
    reused only while its sources are unchanged (tests may rewrite them between builds)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            entries.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def built_once(kind: str, source: Path, build: Callable[[Path], Path]) -> Path:
    """build(source), or the path an earlier identical build of this kind returned."""
    key = (kind, source.resolve(), source_signature(source))
    if key not in _BUILT:
        _BUILT[key] = build(source)
    return _BUILT[key]
