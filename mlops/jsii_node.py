"""Which node runs aws-cdk-lib (jsii starts `$JSII_NODE --max-old-space-size=4069 <runtime>`
when aws_cdk is first imported): scripts/jsii-node, node with V8 flags that halve the CPU
cost of CDK's CloudFormation validation engine. Call before anything imports aws_cdk.
Whether node accepts the flags is asked once per node binary and kept in .cache/jsii-node
(MLOPS_JSII_NODE_CACHE; scripts/jsii-node says how a changed node is noticed)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

TUNED_NODE = Path(__file__).resolve().parents[1] / "scripts" / "jsii-node"


def use_tuned_node(environ: MutableMapping[str, str]) -> None:
    """Point jsii at scripts/jsii-node unless the user chose a node with JSII_NODE."""
    environ.setdefault("JSII_NODE", str(TUNED_NODE))
