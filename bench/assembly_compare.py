"""How close a replayed cloud assembly (bench/floor_replay.py) comes to the original: each
template byte for byte, else as JSON with the paths that differ; and which other files of
the assembly differ. Plain JSON work: importing this does not start aws_cdk's node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TemplateComparison:
    template: str  # path relative to the assembly
    verdict: str  # "byte-identical", "equal JSON", "differs", "missing", "extra"
    differences: tuple[str, ...] = ()  # JSON paths that differ, at most DIFFERENCE_LIMIT


DIFFERENCE_LIMIT = 5


def compare_assemblies(original: Path, replayed: Path) -> list[TemplateComparison]:
    """Every *.template.json of the original against the replay's file of the same name."""
    before = {path.relative_to(original) for path in original.rglob("*.template.json")}
    after = {path.relative_to(replayed) for path in replayed.rglob("*.template.json")}
    found = [TemplateComparison(str(name), "missing") for name in sorted(before - after)]
    found += [TemplateComparison(str(name), "extra") for name in sorted(after - before)]
    for name in sorted(before & after):
        old, new = (original / name).read_bytes(), (replayed / name).read_bytes()
        if old == new:
            found.append(TemplateComparison(str(name), "byte-identical"))
            continue
        differences = list(_differences(json.loads(old), json.loads(new), ""))
        verdict = "differs" if differences else "equal JSON"
        found.append(TemplateComparison(str(name), verdict, tuple(differences[:DIFFERENCE_LIMIT])))
    return found


def _differences(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(key for key in new if key not in old)]:
            if key not in new or key not in old:
                yield f"{path}/{key} ({'only in the original' if key in old else 'only replayed'})"
            else:
                yield from _differences(old[key], new[key], f"{path}/{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _differences(a, b, f"{path}/{index}")
    elif old != new or type(old) is not type(new):
        yield path or "/"


def other_differences(original: Path, replayed: Path) -> dict[str, str]:
    """The assembly's other files (manifests, tree.json, metadata, assets files) that differ
    or exist on one side only, each with how; staged asset folders and files left out."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file()
            and not path.name.endswith(".template.json")
            and not any(part.startswith("asset.") for part in path.relative_to(root).parts)
        }

    before, after = files(original), files(replayed)
    return {
        name: "differs"
        if name in before and name in after
        else "only in the original"
        if name in before
        else "only replayed"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    }
