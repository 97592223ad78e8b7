"""The node that runs aws-cdk-lib (mlops/jsii_node.py, scripts/jsii-node): its V8 flags change
how CDK's CloudFormation Validate engine runs, never what it finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlops.jsii_node import TUNED_NODE, use_tuned_node

ROOT = Path(__file__).resolve().parents[1]


def test_jsii_runs_the_tuned_node_unless_the_user_chose_one() -> None:
    environ: dict[str, str] = {}
    use_tuned_node(environ)
    assert environ == {"JSII_NODE": str(TUNED_NODE)}
    chosen = {"JSII_NODE": "/opt/node22/bin/node"}
    use_tuned_node(chosen)
    assert chosen == {"JSII_NODE": "/opt/node22/bin/node"}


def test_the_tuned_node_passes_its_flags_and_the_arguments_on() -> None:
    """jsii calls `$JSII_NODE --max-old-space-size=4069 <runtime>`; node refuses a flag its
    V8 does not know, so this also shows the installed node accepts both."""
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
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[:3] == [
        "--liftoff-only",
        "--single-threaded-gc",
        "--max-old-space-size=4069",
    ]


def test_a_node_that_refuses_the_flags_runs_without_them(tmp_path: Path) -> None:
    """A node whose V8 lacks a flag exits with "bad option"; the wrapper then runs plain."""
    fake = tmp_path / "node"
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *--liftoff-only*) echo "node: bad option" >&2; exit 9;; esac\n'
        'echo "plain: $*"\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(TUNED_NODE), "--max-old-space-size=4069", "runtime.js"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "plain: --max-old-space-size=4069 runtime.js\n"


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
