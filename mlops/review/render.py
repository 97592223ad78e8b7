"""Markdown for a ReviewReport: what a reviewer must look at first, then the details."""

from __future__ import annotations

from collections import Counter

from mlops.review.model import (
    Finding,
    IamChange,
    ResourceChange,
    ReviewReport,
    StackDiff,
)

NO_CHANGES = "No changes"
# GitHub refuses comments over 65,536 characters; keep room for the marker and a footer.
DEFAULT_MAX_CHARS = 60_000
MAX_DIFF_CHARS = 20_000


def render_markdown(report: ReviewReport, max_chars: int | None = DEFAULT_MAX_CHARS) -> str:
    title = f"### mlops review: `{report.base_label}` → `{report.head_label}`"
    if not report.has_changes:
        return f"{title}\n\n{NO_CHANGES}\n" + _notes(report)
    parts = [title, "", _summary(report), ""]
    parts += _stateful(report)
    parts += _models(report)
    parts += _iam(report)
    parts += _security_groups(report)
    parts += _findings(report)
    parts += _stacks(report)
    body = "\n".join(parts).rstrip() + "\n"
    notes = _notes(report)
    if max_chars is not None and len(body) + len(notes) > max_chars:
        # Only a huge first review (every stack new) gets here: keep the top sections.
        cut = body.rfind("\n", 0, max_chars - len(notes) - 200)
        body = body[:cut] + "\n\n... truncated to fit the comment size limit: run `mlops review`.\n"
        return body + notes
    body += _full_diffs(report, None if max_chars is None else max_chars - len(body) - 500)
    return body + notes


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary(report: ReviewReport) -> str:
    kinds = Counter(c.kind for c in report.changes())
    stacks = Counter(s.status for s in report.stacks)
    stack_part = ", ".join(f"{n} {status}" for status, n in sorted(stacks.items()))
    bits = [f"**{_plural(len(report.stacks), 'stack')} with changes** ({stack_part})"]
    if kinds:
        order = ("added", "modified", "replaced", "removed")
        bits.append("resources: " + ", ".join(f"{kinds[k]} {k}" for k in order if kinds[k]))
    if report.stateful_warnings:
        bits.append(f"⚠️ {_plural(len(report.stateful_warnings), 'stateful resource')} at risk")
    if report.iam:
        broad = sum(1 for c in report.iam if c.broadened)
        bits.append(
            f"IAM: {_plural(len(report.iam), 'statement change')}"
            + (f" (⚠️ {broad} broadened)" if broad else "")
        )
    if report.security_groups:
        bits.append(_plural(len(report.security_groups), "security group rule change"))
    if report.models:
        bits.append(_plural(len(report.models), "model version change"))
    if report.endpoint_updates:
        bits.append(_plural(len(report.endpoint_updates), "endpoint update"))
    if report.new_findings:
        bits.append(f"⚠️ {_plural(len(report.new_findings), 'new cdk-nag finding')}")
    if not report.stacks:
        bits[0] = "**No template changes**"
    return " · ".join(bits)


def _resource_label(c: ResourceChange) -> str:
    return f"{_code(c.logical_id)} ({c.resource_type})"


def _why(c: ResourceChange) -> str:
    reasons = []
    if c.kind == "replaced":
        if c.replacing:
            reasons.append("replaced: " + ", ".join(c.replacing) + " requires replacement")
        else:
            reasons.append("replaced")
    elif c.kind == "removed":
        reasons.append("removed")
    if c.failing:
        reasons.append(
            "update FAILS: " + ", ".join(c.failing) + " cannot change on an existing resource"
        )
    if c.note:
        reasons.append(c.note)
    if c.retained:
        reasons.append("old resource is retained (DeletionPolicy), the new one starts empty")
    elif c.kind in ("replaced", "removed") and c.stateful:
        reasons.append("its data is deleted")
    return "; ".join(reasons)


def _stateful(report: ReviewReport) -> list[str]:
    warnings = report.stateful_warnings
    if not warnings:
        return []
    lines = ["#### ⚠️ Stateful resources replaced or removed", ""]
    lines += ["| Stack | Resource | What happens |", "|---|---|---|"]
    for c in warnings:
        lines.append(f"| {_code(c.stack)} | {_resource_label(c)} | {_why(c)} |")
    return [*lines, ""]


def _models(report: ReviewReport) -> list[str]:
    if not report.models and not report.endpoint_updates:
        return []
    lines = ["#### Model versions", ""]
    explained = {m.environment for m in report.models}
    for m in report.models:
        lines.append(f"- **{m.environment}**: {m.base or 'no model'} → {m.head or 'no model'}")
        lines += [f"  - {d}" for d in m.details]
        for e in report.endpoint_updates:
            if e.environment == m.environment:
                lines.append(
                    f"  - endpoint update: {_code(e.endpoint_name)} in {_code(e.stack)}: {e.reason}"
                )
    other = [e for e in report.endpoint_updates if e.environment not in explained]
    if other:
        lines += ["", "Endpoint updates not explained by a release manifest change:", ""]
        for e in other:
            where = f"{_code(e.logical_id)} in {_code(e.stack)}"
            lines.append(f"- {_code(e.endpoint_name)} ({where}): {e.reason}")
    return [*lines, ""]


def _iam_line(c: IamChange) -> str:
    flag = f" ⚠️ **broadened**: {', '.join(c.broadened)}" if c.broadened else ""
    return (
        f"  - `{c.sign}` {c.effect} {', '.join(_code(a) for a in c.actions)} on "
        f"{', '.join(_code(r) for r in c.resources)}"
        + (f" to {_code(c.principal)}" if c.principal else "")
        + (f" when {_code(c.condition)}" if c.condition else "")
        + flag
    )


def _iam(report: ReviewReport) -> list[str]:
    if not report.iam:
        return []
    lines = ["#### IAM changes", ""]
    groups: dict[tuple[str, str, str, str], list[IamChange]] = {}
    for c in report.iam:
        groups.setdefault((c.stack, c.logical_id, c.resource_type, c.policy), []).append(c)
    for (stack, lid, rtype, policy), changes in groups.items():
        lines.append(f"- {_code(stack)} {_code(lid)} ({rtype}), {policy}:")
        lines += [_iam_line(c) for c in sorted(changes, key=lambda c: c.sign)]
    return [*lines, ""]


def _security_groups(report: ReviewReport) -> list[str]:
    if not report.security_groups:
        return []
    lines = ["#### Security group changes", ""]
    for c in report.security_groups:
        flag = " ⚠️ **open to the internet**" if c.open_to_world else ""
        lines.append(
            f"- `{c.sign}` {_code(c.stack)} {_code(c.group)} {c.direction}: {c.rule}{flag}"
        )
    return [*lines, ""]


def _finding_line(f: Finding) -> str:
    text = f"- {_code(f.rule)} on {_code(f.resource)}"
    if f.description:
        text += f": {f.description.splitlines()[0]}"
    if f.reason:
        text += f" (reason: {f.reason})"
    return text


def _findings(report: ReviewReport) -> list[str]:
    lines: list[str] = []
    if report.new_findings:
        lines += ["#### ⚠️ New cdk-nag findings", ""]
        lines += [_finding_line(f) for f in report.new_findings] + [""]
    if report.new_acknowledgments:
        lines += ["#### Newly acknowledged findings", ""]
        lines += [_finding_line(f) for f in report.new_acknowledgments] + [""]
    if report.resolved_findings:
        lines += ["#### Resolved findings", ""]
        lines += [_finding_line(f) for f in report.resolved_findings] + [""]
    return lines


def _stacks(report: ReviewReport) -> list[str]:
    if not report.stacks:
        return []
    lines = ["#### Resources per stack", ""]
    for s in report.stacks:
        lines += [f"**{_code(s.key)}** ({s.stack_name}, stack {s.status})", ""]
        if s.status == "added":
            types = Counter(c.resource_type for c in s.changes)
            lines.append(", ".join(f"{n} {t}" for t, n in sorted(types.items())) + " added")
            lines.append("")
        elif s.changes:
            lines += ["| Change | Resource | Details |", "|---|---|---|"]
            for c in s.changes:
                details = _why(c) if c.kind in ("replaced", "removed") else ""
                if c.properties:
                    props = ", ".join(c.properties)
                    details = f"{details}; changes: {props}" if details else props
                if c.kind == "modified" and (c.failing or c.note):
                    details = f"{details}; {_why(c)}"
                lines.append(f"| {c.kind} | {_resource_label(c)} | {details} |")
            lines.append("")
        lines += [f"- {section}" for section in s.sections]
        if s.sections:
            lines.append("")
    return lines


def _full_diffs(report: ReviewReport, budget: int | None) -> str:
    diffs = [s for s in report.stacks if s.full_diff]
    if not diffs:
        return ""
    tool = {
        "cdk": "`cdk diff --template` (offline: base template vs. head assembly)",
        "mixed": "`cdk diff --template`, or a JSON diff of the templates where the CLI failed",
    }.get(report.diff_tool, "a JSON diff of the templates")
    out = f"\n#### Full diff\n\nPer stack, from {tool}.\n\n"
    omitted: list[StackDiff] = []
    for s in diffs:
        text = s.full_diff or ""
        if len(text) > MAX_DIFF_CHARS:
            text = text[:MAX_DIFF_CHARS] + "\n... (truncated)"
        block = (
            f"<details><summary>{s.key}</summary>\n\n```diff\n{text.rstrip()}\n```\n\n</details>\n"
        )
        if budget is not None and len(out) + len(block) > budget:
            omitted.append(s)
            continue
        out += block
    if omitted:
        names = ", ".join(_code(s.key) for s in omitted)
        out += (
            f"\nDiff omitted to fit the comment size limit: {names}. Run `mlops review` locally.\n"
        )
    return out


def _notes(report: ReviewReport) -> str:
    if not report.notes:
        return ""
    return "\n" + "\n".join(f"> {n}" for n in report.notes) + "\n"
