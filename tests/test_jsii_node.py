"""The node that runs aws-cdk-lib (mlops/jsii_node.py, scripts/jsii-node): its V8 flags change
how CDK's CloudFormation Validate engine runs, never what it finds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops.jsii_node import TUNED_NODE, use_tuned_node

ROOT = Path(__file__).resolve().parents[1]


def test_jsii_runs_the_tuned_node_unless_the_user_chose_one() -> None:
    environ: dict[str, str] = {}
    use_tuned_node(environ)
    assert environ == {"JSII_NODE": str(TUNED_NODE)}
    chosen = {"JSII_NODE": "/opt/node22/bin/node"}
    use_tuned_node(chosen)
    assert chosen == {"JSII_NODE": "/opt/node22/bin/node"}


def test_the_tuned_node_passes_its_flags_and_the_arguments_on(tmp_path: Path) -> None:
    """jsii calls `$JSII_NODE --max-old-space-size=4069 <runtime>`; node refuses a flag its
    V8 does not know, so this also shows the installed node accepts both: when it asks node
    (an empty verdict cache) and when it replays the verdict."""
    env = {**os.environ, "MLOPS_JSII_NODE_CACHE": str(tmp_path / "verdicts")}
    for _ in ("asked", "replayed"):
        result = subprocess.run(
            [
                str(TUNED_NODE),
                "--max-old-space-size=4069",
                "-e",
                "console.log(JSON.stringify(process.execArgv))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[:3] == [
            "--liftoff-only",
            "--single-threaded-gc",
            "--max-old-space-size=4069",
        ]
    [line] = (tmp_path / "verdicts").read_text().splitlines()
    assert line.startswith(f"tuned {shutil.which('node')} ")


FLAGS = "--liftoff-only --single-threaded-gc"


def fake_node(folder: Path, probe_status: int) -> Path:
    """A `node` on PATH that logs each call. Asked whether it takes the flags (`<flags> -e ""`)
    it exits probe_status: 0 takes them, 9 is node's "bad option" (then it refuses them on
    every call, as a node whose V8 lacks one does), anything else a node that failed for
    another reason. Otherwise it prints what it was started with."""
    folder.mkdir(exist_ok=True)
    node = folder / "node"
    replacement = folder / "node.new"  # a new binary at the same path, as an upgrade leaves
    replacement.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {folder / "calls"}\n'
        # node refuses a bad NODE_OPTIONS with the same exit as a bad flag
        '[ -n "$NODE_OPTIONS" ] && { echo "node: bad option: $NODE_OPTIONS" >&2; exit 9; }\n'
        f'case "$*" in *"-e ") exit {probe_status} ;; esac\n'
        f'case "$*" in *--liftoff-only*) if [ {probe_status} = 9 ]; then\n'
        '  echo "node: bad option: --liftoff-only" >&2; exit 9; fi ;; esac\n'
        'echo "ran: $*"\n'
    )
    replacement.chmod(0o755)
    os.replace(replacement, node)
    return node


def run_wrapper(folder: Path, cache: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "MLOPS_JSII_NODE_CACHE": str(cache),
        **extra,
    }
    return subprocess.run(
        [str(TUNED_NODE), "--max-old-space-size=4069", "runtime.js"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def calls(folder: Path) -> list[str]:
    """What the fake node was started with, and empties the log."""
    log = folder / "calls"
    found = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return found


def signature(node: Path) -> str:
    """The wrapper's key for a binary: device:inode:size:mtime:ctime of the file."""
    st = node.stat()
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{int(st.st_mtime)}:{int(st.st_ctime)}"


ASKED = f"{FLAGS} -e "
TUNED_RUN = f"{FLAGS} --max-old-space-size=4069 runtime.js"
PLAIN_RUN = "--max-old-space-size=4069 runtime.js"


@pytest.mark.parametrize(
    ("probe_status", "verdict", "run"),
    [(9, "plain", PLAIN_RUN), (0, "tuned", TUNED_RUN)],
    ids=["refuses the flags", "takes the flags"],
)
def test_a_node_is_asked_once_and_runs_with_the_flags_only_if_it_takes_them(
    tmp_path: Path, probe_status: int, verdict: str, run: str
) -> None:
    """A node whose V8 lacks a flag exits with "bad option"; the wrapper then runs plain.
    Either way it asks once: the next start replays the recorded verdict."""
    folder, cache = tmp_path / "bin", tmp_path / "cache" / "verdicts"
    node = fake_node(folder, probe_status=probe_status)
    for asked in ([ASKED], []):
        result = run_wrapper(folder, cache)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"ran: {run}\n"
        assert calls(folder) == [*asked, run]
    assert cache.read_text() == f"{verdict} {node} {signature(node)} {FLAGS}\n"


def test_a_recorded_verdict_is_used_without_asking(tmp_path: Path) -> None:
    """The other side of the stale checks below: a line that matches the binary is trusted
    as it stands (here a false "tuned" for a refusing node, so node refuses to start)."""
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    node = fake_node(folder, probe_status=9)
    cache.write_text(f"tuned {node} {signature(node)} {FLAGS}\n")
    result = run_wrapper(folder, cache)
    assert result.returncode == 9
    assert calls(folder) == [TUNED_RUN]


@pytest.mark.parametrize(
    "stale",
    [
        "tuned {node} 1:2:3:4:5 {flags}",  # another binary at that path
        "tuned {node} {sig} --liftoff-only",  # other flags than the wrapper's
    ],
)
def test_a_stale_verdict_is_asked_again(tmp_path: Path, stale: str) -> None:
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    node = fake_node(folder, probe_status=9)
    other = f"tuned /opt/node22/bin/node 7:8:9:10:11 {FLAGS}"  # another node's line stays
    cache.write_text(f"{other}\n{stale.format(node=node, sig=signature(node), flags=FLAGS)}\n")
    result = run_wrapper(folder, cache)
    assert result.returncode == 0, result.stderr
    assert calls(folder) == [ASKED, PLAIN_RUN]
    assert cache.read_text() == f"{other}\nplain {node} {signature(node)} {FLAGS}\n"


@pytest.mark.parametrize(("before", "after"), [(0, 9), (9, 0)])
def test_a_node_replaced_at_the_same_path_is_asked_again(
    tmp_path: Path, before: int, after: int
) -> None:
    """An upgrade in place (a new file at the same path: a new inode, ctime, size) does not
    reuse the old binary's verdict; a stale "tuned" would make the new node refuse to start."""
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    fake_node(folder, probe_status=before)
    assert run_wrapper(folder, cache).returncode == 0
    calls(folder)
    fake_node(folder, probe_status=after)
    result = run_wrapper(folder, cache)
    assert result.returncode == 0, result.stderr
    assert calls(folder) == [ASKED, TUNED_RUN if after == 0 else PLAIN_RUN]
    assert cache.read_text().startswith("tuned " if after == 0 else "plain ")


def test_a_node_that_fails_the_check_otherwise_runs_plain_and_is_asked_again(
    tmp_path: Path,
) -> None:
    """Only node's "bad option" exit is a verdict; any other failure of the check (a node
    that crashed, ran out of memory) runs plain this time and asks again next time."""
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    fake_node(folder, probe_status=1)
    for _ in range(2):
        result = run_wrapper(folder, cache)
        assert result.returncode == 0, result.stderr
        assert calls(folder) == [ASKED, PLAIN_RUN]
    assert not cache.exists()


def test_a_cache_that_cannot_be_written_asks_every_time(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    fake_node(folder, probe_status=0)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for _ in range(2):
        result = run_wrapper(folder, blocked / "verdicts")  # its folder is a file
        assert result.returncode == 0, result.stderr
        assert calls(folder) == [ASKED, TUNED_RUN]


def test_a_bad_node_options_is_not_recorded_as_the_node_refusing_the_flags(
    tmp_path: Path,
) -> None:
    """The check runs without the caller's NODE_OPTIONS: a bad one fails this start (as it
    would with plain node) but does not pin the binary to "plain" for good."""
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    node = fake_node(folder, probe_status=0)
    result = run_wrapper(folder, cache, NODE_OPTIONS="--bogus")
    assert result.returncode == 9 and "bad option: --bogus" in result.stderr
    assert cache.read_text() == f"tuned {node} {signature(node)} {FLAGS}\n"
    calls(folder)
    assert run_wrapper(folder, cache).stdout == f"ran: {TUNED_RUN}\n"
    assert calls(folder) == [TUNED_RUN]


@pytest.mark.parametrize("shim", ["shims/node", "volta-shim"])
def test_a_version_managers_shim_is_asked_every_time(tmp_path: Path, shim: str) -> None:
    """asdf/nodenv put a script at .../shims/node, volta links node to its volta-shim: the
    file stays the same when the node behind it changes, so no verdict is kept for it."""
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    fake = fake_node(tmp_path / "real", probe_status=0)
    target = tmp_path / shim
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(fake, target)
    folder.mkdir()
    if target.name == "node":
        folder = target.parent  # the shim itself is on PATH
    else:
        (folder / "node").symlink_to(target)
    for _ in range(2):
        result = run_wrapper(folder, cache)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"ran: {TUNED_RUN}\n"
    assert not cache.exists()


def test_a_cache_path_that_is_a_folder_asks_every_time_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    folder, cache = tmp_path / "bin", tmp_path / "verdicts"
    fake_node(folder, probe_status=0)
    cache.mkdir()
    for _ in range(2):
        result = run_wrapper(folder, cache)
        assert result.returncode == 0, result.stderr
        assert calls(folder) == [ASKED, TUNED_RUN]
    assert list(cache.iterdir()) == []


# One stack with an error (F3002: a property CloudFormation does not know) and a warning
# (W3030: a value outside the schema's enum), validated by CDK's built-in plugin.
APP_WITH_FINDINGS = textwrap.dedent(
    """
    import sys
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    app = cdk.App(outdir=sys.argv[1], context={"@aws-cdk/core:validateAgainstDefaultRules": True})
    stack = cdk.Stack(app, "Shop", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    bucket = s3.CfnBucket(stack, "Bucket")
    bucket.add_property_override("NoSuchProperty", "x")
    bucket.add_property_override("VersioningConfiguration.Status", "Sometimes")
    try:
        app.synth()
    except RuntimeError as error:
        print(error)
        sys.exit(1)
    """
)


def test_the_engine_finds_the_same_under_both_nodes(tmp_path: Path) -> None:
    results = {}
    for name, node in (("plain", "node"), ("tuned", str(TUNED_NODE))):
        result = subprocess.run(
            [sys.executable, "-c", APP_WITH_FINDINGS, str(tmp_path / name)],
            cwd=ROOT,
            env={**os.environ, "JSII_NODE": node},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 1, result.stderr[-2000:]  # the error fails synth
        assert "F3002" in result.stdout and "W3030" in result.stdout, result.stdout[-2000:]
        report = (tmp_path / name / "validation-report.json").read_text()
        results[name] = (result.stdout + report).replace(str(tmp_path / name), "OUT")
    assert results["tuned"] == results["plain"]
