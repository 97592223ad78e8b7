"""`mlops review --base REF`: an offline synth-and-diff review of the working tree against REF.

Synthesizes the base ref (exported with `git archive`, no network) and the working tree into
two cloud assemblies with the repository's pinned CDK CLI and virtualenv, compares them
(mlops.review.compare) and renders Markdown (mlops.review.render). No AWS credentials are
used: they are removed from the environment of every CDK CLI call, and `cdk diff` runs with
`--template` against the synthesized assembly, which never contacts CloudFormation.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from mlops.review.compare import compare_assemblies
from mlops.review.model import AssemblyError, ReviewReport, StackDiff
from mlops.review.render import render_markdown
from mlops.review.security import VALIDATION_REPORTS, load_findings

__all__ = [
    "ReviewError",
    "add_arguments",
    "compare_assemblies",
    "render_markdown",
    "review",
    "run",
]

RELEASES = Path("config/releases.yaml")
SYNTH_TIMEOUT_S = 900
DIFF_TIMEOUT_S = 120
# Never let a review pick up credentials, a profile or instance metadata.
CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
EMPTY_MANIFEST = {"version": "36.0.0", "artifacts": {}}


class ReviewError(Exception):
    """A user-facing failure; the CLI prints the message as one `ERROR: ...` line."""


class OutputNotWritten(ReviewError):
    """The review is done but --output could not be written; markdown holds it."""

    def __init__(self, message: str, markdown: str) -> None:
        super().__init__(message)
        self.markdown = markdown


def review(
    base_ref: str,
    repo_root: Path,
    output: Path | None,
    *,
    head_dir: Path | None = None,
) -> str:
    """Review the working tree of repo_root against base_ref; return (and write) Markdown.

    head_dir: an already synthesized cloud assembly to use for the head instead of
    synthesizing the working tree (e.g. the cdk.out of `make synth`).
    """
    repo_root = repo_root.resolve()
    cdk = repo_root / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise ReviewError(f"{cdk} not found: run `make install` (npm ci) first")
    if head_dir is not None and not (head_dir / "manifest.json").is_file():
        raise ReviewError(f"--head-dir {head_dir} is not a cloud assembly (no manifest.json)")
    if output is not None:
        _check_output(output)  # before minutes of synth, not after
    commit = _resolve_ref(repo_root, base_ref)
    env = _cli_env(repo_root)
    with tempfile.TemporaryDirectory(prefix="mlops-review-") as tmp_name:
        tmp = Path(tmp_name)
        base_src, base_out = tmp / "base-src", tmp / "base.out"
        _export_tree(repo_root, commit, base_src)
        head_out = head_dir.resolve() if head_dir is not None else tmp / "head.out"
        notes: list[str] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            base_job = pool.submit(_synth_or_empty, cdk, base_src, base_out, env, "base", notes)
            head_job = (
                pool.submit(_synth, cdk, repo_root, head_out, env, "head")
                if head_dir is None
                else None
            )
            base_job.result()
            if head_job is not None:
                note = head_job.result()
                if note:
                    notes.append(note)
        try:
            report = compare_assemblies(
                base_out,
                head_out,
                read_releases(base_src / RELEASES),
                read_releases(repo_root / RELEASES),
            )
        except AssemblyError as err:
            raise ReviewError(str(err)) from err
        report.base_label = f"{base_ref} ({commit[:8]})"
        report.head_label = "working tree" if head_dir is None else str(head_dir)
        report.notes = notes
        attach_full_diffs(report, cdk, head_out, tmp, env)
        markdown = render_markdown(report)
    if output is not None:
        try:
            _write_atomically(output, markdown)
        except OSError as err:  # e.g. a read-only folder, a full disk: keep the review
            raise OutputNotWritten(
                f"--output {output}: cannot write the review ({err.strerror or err}); it is "
                "on standard output above",
                markdown,
            ) from None
    return markdown


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise ReviewError(f"--output {output} is a folder; give a file path")
    if not output.parent.is_dir():
        raise ReviewError(
            f"--output {output}: {output.parent} is not an existing folder; give a file path in one"
        )


def _write_atomically(output: Path, text: str) -> None:
    """The old file or the new one, never half of one."""
    temporary = output.with_name(f".{output.name}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- CLI glue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `mlops review` (for the subcommand parser in mlops.cli)."""
    parser.add_argument("--base", required=True, metavar="REF", help="git ref to compare with")
    parser.add_argument(
        "--head-dir",
        type=Path,
        metavar="DIR",
        help="an already synthesized cloud assembly to use as the head (default: synthesize "
        "the working tree)",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the Markdown here")


def run(args: argparse.Namespace) -> int:
    """`mlops review`: Markdown on stdout; a user mistake is one ERROR line and exit 2."""
    try:
        markdown = review(args.base, _repo_root(Path.cwd()), args.output, head_dir=args.head_dir)
    except OutputNotWritten as err:
        sys.stdout.write(err.markdown)  # minutes of synth are not thrown away
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    except ReviewError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"ERROR: cannot write the review: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    return 0


def _repo_root(start: Path) -> Path:
    result = _git(start, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise ReviewError(f"{start} is not inside a git repository: run mlops review in one")
    return Path(result.stdout.decode().strip())


# ---------------------------------------------------------------- git


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=repo_root, capture_output=True, check=False)


def _resolve_ref(repo_root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise ReviewError(f"--base {ref!r} is not a git ref: give a branch, tag or commit")
    result = _git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode != 0:
        raise ReviewError(
            f"--base {ref!r} is not a commit in {repo_root}: give a branch, tag or commit "
            "(in CI fetch the history: actions/checkout with fetch-depth: 0)"
        )
    return result.stdout.decode().strip()


def _export_tree(repo_root: Path, commit: str, dest: Path) -> None:
    """The committed tree of `commit` into dest (git archive: no worktree, no network)."""
    result = _git(repo_root, "archive", "--format=tar", commit)
    if result.returncode != 0:
        raise ReviewError(f"git archive {commit[:8]} failed: {result.stderr.decode().strip()}")
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as archive:
        archive.extractall(dest, filter=_safe_member)


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    # A committed symlink out of the tree (e.g. to a local .venv) is skipped, not followed.
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


# ---------------------------------------------------------------- CDK CLI


def _cli_env(repo_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env.update(
        PATH=f"{repo_root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def _synth(cdk: Path, tree: Path, out: Path, env: dict[str, str], label: str) -> str | None:
    """Synthesize tree into out. Returns a note when synth reported policy violations only."""
    cmd = [str(cdk), "synth", "--quiet", "--no-lookups", "--app", "python app.py"]
    cmd += ["--output", str(out)]
    try:
        result = subprocess.run(
            cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as err:
        raise ReviewError(f"cdk synth of the {label} timed out after {SYNTH_TIMEOUT_S} s") from err
    if result.returncode == 0:
        return None
    # Policy validation (cdk-nag) fails synth but still writes the assembly and the report:
    # the review then lists the findings instead of stopping.
    findings = load_findings(out)[0] if (out / "manifest.json").is_file() else []
    if findings:
        return (
            f"cdk synth of the {label} fails policy validation ({len(findings)} open findings; "
            "`make synth` lists them); the review compares the assembly it wrote."
        )
    lines = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    last = lines[-1] if lines else "no output"
    raise ReviewError(
        f"cdk synth of the {label} failed (exit {result.returncode}): {last} "
        f"(reproduce: cd {tree} && {' '.join(cmd[1:5])} ...)"
    )


def _synth_or_empty(
    cdk: Path, tree: Path, out: Path, env: dict[str, str], label: str, notes: list[str]
) -> None:
    if not (tree / "app.py").is_file():
        out.mkdir(parents=True)
        (out / "manifest.json").write_text(json.dumps(EMPTY_MANIFEST))
        notes.append(f"The {label} has no app.py: every stack is reported as added.")
        return
    _synth(cdk, tree, out, env, label)  # a base that fails policy validation is no news


def read_releases(path: Path) -> dict[str, Any] | None:
    """The release manifest, or None when absent or unreadable (the review still runs)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- full diffs


def attach_full_diffs(
    report: ReviewReport, cdk: Path | None, head_out: Path, tmp: Path, env: dict[str, str]
) -> None:
    """Fill StackDiff.full_diff: `cdk diff --template` per stack, a JSON diff as fallback."""
    empty = tmp / "empty.template.json"
    empty.write_text("{}")
    assembly = _without_validation_report(head_out, tmp / "head-for-diff")

    def one(stack: StackDiff) -> bool:
        text = None
        if cdk is not None and stack.head_template is not None:
            text = cdk_template_diff(cdk, assembly, stack.key, stack.base_template or empty, env)
        if text is None:
            stack.full_diff = json_diff(stack.base_template, stack.head_template)
            return False
        stack.full_diff = text
        return True

    with ThreadPoolExecutor(max_workers=2) as pool:
        from_cdk = list(pool.map(one, report.stacks))
    report.diff_tool = "cdk" if all(from_cdk) else "json" if not any(from_cdk) else "mixed"


def _without_validation_report(assembly: Path, dest: Path) -> Path:
    """A view of the assembly (symlinks) without its validation report: the CLI refuses to
    diff stacks with policy violations, which the review lists separately."""
    if not any((assembly / name).exists() for name in VALIDATION_REPORTS):
        return assembly
    dest.mkdir()
    for entry in assembly.iterdir():
        if entry.name not in VALIDATION_REPORTS:
            (dest / entry.name).symlink_to(entry.resolve())
    return dest


def cdk_template_diff(
    cdk: Path, assembly: Path, stack: str, base_template: Path, env: dict[str, str]
) -> str | None:
    """`cdk diff --template` of one stack: offline, no credentials. None if the CLI failed."""
    cmd = [str(cdk), "diff", "--app", str(assembly), "--template", str(base_template)]
    cmd += ["--method", "template", "--exclusively", "--no-color", stack]
    try:
        result = subprocess.run(
            cmd,
            cwd=assembly.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=DIFF_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None
    text = result.stderr + result.stdout
    if result.returncode != 0 or f"Stack {stack}" not in text:
        return None
    keep = [ln for ln in text.splitlines() if "Number of stacks with differences" not in ln]
    return "\n".join(keep).strip()


def json_diff(base: Path | None, head: Path | None) -> str:
    def lines(path: Path | None) -> list[str]:
        if path is None:
            return []
        data = json.loads(path.read_text())
        return json.dumps(data, sort_keys=True, indent=1).splitlines()

    return "\n".join(
        difflib.unified_diff(lines(base), lines(head), "base", "head", lineterm="", n=3)
    )
