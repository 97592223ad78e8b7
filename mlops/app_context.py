"""Context app.py starts cdk.App with: settings that change no template, manifest or tree
byte, only skip work whose output a Python app cannot use.

aws-cdk-lib records node's call stack for every CfnElement and Stack it creates
(`aws:cdk:creationStack` in *.metadata.json) and for every annotation (`trace`). Called from
Python through jsii, that stack holds only aws-cdk-lib, jsii and node frames ("no user code
in 10 frames"), so it never says where a construct was made, and capturing it costs node
CPU per construct in every stage. `cdk synth --debug` (CDK_DEBUG) still records creation
stacks. Acknowledgements keep their traces (CDK records those unconditionally).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# Read-only: every app of the process (app.py, the tests) starts from it, so no caller may
# change it for the others; they pass a copy, dict(NO_NODE_STACK_TRACES), or unpack it.
NO_NODE_STACK_TRACES: Final[Mapping[str, object]] = MappingProxyType(
    {
        "aws:cdk:disable-creation-stack-traces": True,  # aws:cdk:creationStack per construct
        "aws:cdk:disable-stack-trace": True,  # annotations' trace (cdk.App(stack_traces=False))
    }
)
