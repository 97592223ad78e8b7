"""Compare two synthesized cloud assemblies (base and head) and say what a deploy would do.

Pure functions over files: no CDK CLI, no git, no AWS. `compare_assemblies` returns a
ReviewReport (mlops.review.model); mlops.review.render turns it into Markdown. IAM, security
group and cdk-nag changes come from mlops.review.security.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlops.review.model import (
    AssemblyError,
    EndpointUpdate,
    ModelChange,
    ResourceChange,
    ReviewReport,
    StackDiff,
    StackTemplate,
    cdk_path,
    get_path,
    props_of,
    references,
    render_value,
    resources_of,
    retained,
)
from mlops.review.security import (
    diff_iam,
    diff_security_groups,
    load_findings,
    new_findings,
)
from mlops.review.tables import FAIL_ON_CHANGE, replace_paths

STACK_ARTIFACT = "aws:cloudformation:stack"
NESTED_ASSEMBLY = "cdk:cloud-assembly"
# Resource attributes whose change matters at deploy time (Metadata and DependsOn do not).
RESOURCE_ATTRIBUTES = (
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Condition",
    "UpdatePolicy",
    "CreationPolicy",
)
TEMPLATE_SECTIONS = ("Parameters", "Outputs", "Conditions", "Mappings", "Rules")
LABEL_FIELDS = ("version", "model_version", "model_package_arn")  # shown in the release label

# ---------------------------------------------------------------- reading assemblies


def load_assembly(directory: Path) -> dict[str, StackTemplate]:
    """All stacks of a cloud assembly, nested stage assemblies included, by display path."""
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(f"{directory} is not a cloud assembly: it has no manifest.json")
    stacks: dict[str, StackTemplate] = {}
    for artifact_id, artifact in _artifacts(manifest_file):
        kind = artifact.get("type")
        props = artifact.get("properties") or {}
        if kind == STACK_ARTIFACT:
            template_file = directory / props.get("templateFile", f"{artifact_id}.template.json")
            key = artifact.get("displayName") or artifact_id
            stacks[key] = StackTemplate(
                key=key,
                artifact_id=artifact_id,
                stack_name=props.get("stackName") or artifact_id,
                template_file=template_file,
                template=_read_json(template_file),
            )
        elif kind == NESTED_ASSEMBLY and props.get("directoryName"):
            stacks.update(load_assembly(directory / props["directoryName"]))
    return stacks


def _artifacts(manifest_file: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    manifest = _read_json(manifest_file)
    artifacts = manifest.get("artifacts") or {}
    if not isinstance(artifacts, dict):
        raise AssemblyError(f"{manifest_file}: 'artifacts' is not a mapping")
    for artifact_id, artifact in artifacts.items():
        if isinstance(artifact, dict):
            yield artifact_id, artifact


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise AssemblyError(f"{path} is missing") from err
    except ValueError as err:
        raise AssemblyError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise AssemblyError(f"{path} does not hold a JSON object")
    return data


# ---------------------------------------------------------------- resources


def _changed_properties(base: dict[str, Any], head: dict[str, Any]) -> set[str]:
    return {k for k in set(base) | set(head) if base.get(k) != head.get(k)}


def _replacing(
    rtype: str, base: dict[str, Any], head: dict[str, Any], changed: set[str]
) -> list[str]:
    paths = replace_paths(rtype) or ()
    hits = []
    for path in paths:
        top = path.split("/")[0]
        if top in changed and get_path(base, path) != get_path(head, path):
            hits.append(path)
    return hits


def _pair_renames(
    removed: dict[str, dict[str, Any]], added: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Removed logical id -> added logical id for what looks like the same resource moved."""
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    for old_id, old in removed.items():
        for new_id, new in added.items():
            if new_id in taken or new.get("Type") != old.get("Type"):
                continue
            same_path = cdk_path(old) and cdk_path(old) == cdk_path(new)
            if same_path or (props_of(old) and props_of(old) == props_of(new)):
                pairs[old_id] = new_id
                taken.add(new_id)
                break
    return pairs


def diff_resources(
    key: str, base_t: dict[str, Any], head_t: dict[str, Any]
) -> list[ResourceChange]:
    """Resource-level changes of one stack, with replacement propagated through references."""
    base, head = resources_of(base_t), resources_of(head_t)
    removed = {k: v for k, v in base.items() if k not in head}
    added = {k: v for k, v in head.items() if k not in base}
    renames = _pair_renames(removed, added)
    changes: list[ResourceChange] = []
    for old_id, new_id in renames.items():
        changes.append(
            ResourceChange(
                key,
                new_id,
                str(head[new_id].get("Type")),
                "replaced",
                note=f"logical ID changed from {old_id}",
                construct_path=cdk_path(head[new_id]),
                retained=retained(base[old_id]),
            )
        )
    for lid, r in removed.items():
        if lid not in renames:
            changes.append(
                ResourceChange(
                    key,
                    lid,
                    str(r.get("Type")),
                    "removed",
                    construct_path=cdk_path(r),
                    retained=retained(r),
                )
            )
    for lid, r in added.items():
        if lid not in renames.values():
            changes.append(
                ResourceChange(key, lid, str(r.get("Type")), "added", construct_path=cdk_path(r))
            )
    changes.extend(_diff_common(key, base, head))
    return sorted(changes, key=lambda c: (c.kind, c.logical_id))


def _diff_common(
    key: str, base: dict[str, dict[str, Any]], head: dict[str, dict[str, Any]]
) -> list[ResourceChange]:
    common = sorted(set(base) & set(head))
    changed = {lid: _changed_properties(props_of(base[lid]), props_of(head[lid])) for lid in common}
    type_changed = {lid for lid in common if base[lid].get("Type") != head[lid].get("Type")}
    replaced = set(type_changed) | {
        lid
        for lid in common
        if _replacing(
            str(head[lid].get("Type")), props_of(base[lid]), props_of(head[lid]), changed[lid]
        )
    }
    # A resource replaced under the same logical id gets a new physical id and attributes:
    # a replace-only property that refers to it changes at deploy time although its text does
    # not (new model -> new endpoint config -> endpoint update). Propagate to a fixed point.
    grew = True
    while grew:
        grew = False
        for lid in common:
            if lid not in replaced and _implied(head[lid], replaced, replace_only=True):
                replaced.add(lid)
                grew = True
    out: list[ResourceChange] = []
    for lid in common:
        b, h = base[lid], head[lid]
        rtype = str(h.get("Type"))
        implied = _implied(h, replaced, replace_only=False) - changed[lid]
        attrs = [a for a in RESOURCE_ATTRIBUTES if b.get(a) != h.get(a)]
        if not (changed[lid] or attrs or implied or lid in type_changed):
            continue
        shown = sorted(changed[lid])
        shown += [f"{p} (via replaced {_via(h, p, replaced)})" for p in sorted(implied)]
        shown += [f"{a}: {b.get(a, '-')} -> {h.get(a, '-')}" for a in attrs]
        failing = tuple(p for p in FAIL_ON_CHANGE.get(rtype, ()) if p in changed[lid])
        note = ""
        if lid in type_changed:
            note = f"type changed from {b.get('Type')}"
        elif "DeletionPolicy" in attrs and retained(b) and not retained(h):
            note = "retention removed: the resource would be deleted with its stack"
        kind, replacing = "modified", tuple[str, ...]()
        if lid in replaced:
            kind = "replaced"
            replacing = tuple(
                _replacing(rtype, props_of(b), props_of(h), changed[lid])
                + sorted(implied & _replace_tops(rtype))
            )
        out.append(
            ResourceChange(
                key,
                lid,
                rtype,
                kind,
                tuple(shown),
                replacing,
                failing,
                note,
                cdk_path(h),
                retained(b) and kind == "replaced",
            )
        )
    return out


def _replace_tops(rtype: str) -> set[str]:
    return {p.split("/")[0] for p in replace_paths(rtype) or ()}


def _implied(resource: dict[str, Any], replaced: set[str], *, replace_only: bool) -> set[str]:
    """Properties of a resource that refer to a resource replaced in place."""
    props = props_of(resource)
    names = _replace_tops(str(resource.get("Type"))) if replace_only else set(props)
    return {p for p in names if references(props.get(p)) & replaced}


def _via(resource: dict[str, Any], prop: str, replaced: set[str]) -> str:
    return ", ".join(sorted(references(props_of(resource).get(prop)) & replaced))


def diff_sections(base_t: dict[str, Any], head_t: dict[str, Any]) -> list[str]:
    """Changes outside Resources (Outputs, Parameters, ...), one line per section."""
    lines = []
    for section in TEMPLATE_SECTIONS:
        b, h = base_t.get(section) or {}, head_t.get(section) or {}
        marks = [f"+{k}" for k in sorted(set(h) - set(b))]
        marks += [f"-{k}" for k in sorted(set(b) - set(h))]
        marks += [f"~{k}" for k in sorted(set(b) & set(h)) if b[k] != h[k]]
        if marks:
            lines.append(f"{section}: {', '.join(marks)}")
    return lines


# ---------------------------------------------------------------- models and endpoints


def _releases(manifest: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(manifest, dict):
        return {}
    envs = manifest.get("environments", manifest)
    return envs if isinstance(envs, dict) else {}


def _release_label(release: Any) -> str | None:
    if not isinstance(release, dict) or not release:
        return None
    version = release.get("version", release.get("model_version"))  # LABEL_FIELDS
    arn = release.get("model_package_arn")
    label = f"version {version}" if version is not None else "unversioned"
    return f"{label} ({arn})" if arn else label


def diff_models(
    base_manifest: dict[str, Any] | None, head_manifest: dict[str, Any] | None
) -> list[ModelChange]:
    """Per environment, the served model version before and after (release manifest)."""
    b_envs, h_envs = _releases(base_manifest), _releases(head_manifest)
    out = []
    for env in sorted(set(b_envs) | set(h_envs), key=str):
        b_cur = (
            (b_envs.get(env) or {}).get("current") if isinstance(b_envs.get(env), dict) else None
        )
        h_cur = (
            (h_envs.get(env) or {}).get("current") if isinstance(h_envs.get(env), dict) else None
        )
        if b_cur == h_cur:
            continue
        details = []
        if isinstance(b_cur, dict) and isinstance(h_cur, dict):
            for field_name in sorted(set(b_cur) | set(h_cur), key=str):
                if field_name in LABEL_FIELDS:
                    continue
                if b_cur.get(field_name) != h_cur.get(field_name):
                    before, after = b_cur.get(field_name, "-"), h_cur.get(field_name, "-")
                    details.append(f"{field_name}: {before} -> {after}")
        out.append(
            ModelChange(str(env), _release_label(b_cur), _release_label(h_cur), tuple(details))
        )
    return out


def stage_environment(stack_key: str, environments: Iterable[str]) -> str | None:
    """The environment of a stack from its stage name (dev-us-east-1/Data, X/DevUsEast1/Y)."""
    envs = sorted(environments, key=len, reverse=True)
    for stage in stack_key.split("/")[:-1]:
        for env in envs:
            rest = stage[len(env) :]
            if stage.lower().startswith(env.lower()) and (
                not rest or rest[0] in "-_." or rest[0].isupper() or rest[0].isdigit()
            ):
                return env
    return None


def endpoint_updates(
    stacks: list[StackDiff],
    head: dict[str, StackTemplate],
    environments: Iterable[str],
) -> list[EndpointUpdate]:
    """Endpoints whose endpoint config changes: each one is a (blue/green) endpoint update."""
    envs = list(environments)
    out = []
    for stack in stacks:
        template = head.get(stack.key)
        res = resources_of(template.template) if template else {}
        for change in stack.changes:
            if change.resource_type != "AWS::SageMaker::Endpoint":
                continue
            props = props_of(res.get(change.logical_id, {}))
            name = render_value(props.get("EndpointName", change.logical_id))
            if change.kind == "added":
                reason = "new endpoint"
            elif change.kind == "removed":
                reason = "endpoint removed"
            elif any(p.startswith("EndpointConfigName") for p in change.properties):
                config = render_value(props.get("EndpointConfigName"))
                via = [p for p in change.properties if p.startswith("EndpointConfigName (via")]
                reason = f"EndpointConfigName changes (now {config})"
                if via:
                    reason += ": its endpoint config is replaced"
            else:
                continue
            out.append(
                EndpointUpdate(
                    stack.key, change.logical_id, name, reason, stage_environment(stack.key, envs)
                )
            )
    return out


# ---------------------------------------------------------------- the whole comparison


def compare_assemblies(
    base_dir: Path,
    head_dir: Path,
    base_manifest: dict[str, Any] | None,
    head_manifest: dict[str, Any] | None,
) -> ReviewReport:
    """Everything that changes between two cloud assemblies and two release manifests."""
    base, head = load_assembly(base_dir), load_assembly(head_dir)
    report = ReviewReport()
    for key in sorted(set(base) | set(head)):
        b, h = base.get(key), head.get(key)
        b_t = b.template if b else {}
        h_t = h.template if h else {}
        if b and h and _semantic(b_t) == _semantic(h_t):
            continue
        status = "changed" if b and h else "added" if h else "removed"
        stack = StackDiff(
            key,
            (h or b).stack_name if (h or b) else key,  # type: ignore[union-attr]
            status,
            diff_resources(key, b_t, h_t),
            diff_sections(b_t, h_t) if status == "changed" else [],
            base_template=b.template_file if b else None,
            head_template=h.template_file if h else None,
        )
        b_res, h_res = resources_of(b_t), resources_of(h_t)
        renames = _pair_renames(
            {k: v for k, v in b_res.items() if k not in h_res},
            {k: v for k, v in h_res.items() if k not in b_res},
        )
        report.iam.extend(diff_iam(key, b_res, h_res, renames))
        report.security_groups.extend(diff_security_groups(key, b_res, h_res))
        if stack.changes or stack.sections or status != "changed":
            report.stacks.append(stack)
    report.models = diff_models(base_manifest, head_manifest)
    environments = set(_releases(base_manifest)) | set(_releases(head_manifest))
    report.endpoint_updates = endpoint_updates(report.stacks, head, map(str, environments))
    b_open, b_acked = load_findings(base_dir)
    h_open, h_acked = load_findings(head_dir)
    report.new_findings = new_findings(h_open, b_open)
    report.resolved_findings = new_findings(b_open, h_open)
    report.new_acknowledgments = new_findings(h_acked, b_acked)
    return report


def _semantic(template: dict[str, Any]) -> dict[str, Any]:
    """The parts of a template that matter at deploy time (no resource Metadata)."""
    res = {
        lid: {k: v for k, v in r.items() if k not in ("Metadata", "DependsOn")}
        for lid, r in resources_of(template).items()
    }
    return {"Resources": res, **{s: template.get(s) for s in TEMPLATE_SECTIONS}}
