"""Runs a CDK app (default app.py of the working directory) and appends to $SYNTH_PROBE_OUT
one JSON line: the CPU seconds of this Python process and of the jsii node runtime it
started, and the jsii requests it sent, by kind. bench/bench_synth_app.py runs every synth
through it; on its own:

    SYNTH_PROBE_OUT=probe.jsonl cdk synth --app ".venv/bin/python bench/synth_probe.py"

The counting wraps jsii's (private) process provider; if jsii changes, the counts are left
out and the CPU figures stay.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import resource
import runpy
import sys
from typing import Any

requests: collections.Counter[str] = collections.Counter()


def _report() -> None:
    """Runs after jsii's own atexit hook has stopped (and waited for) the node runtime."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = {
        "python_cpu": own.ru_utime + own.ru_stime,
        "node_cpu": children.ru_utime + children.ru_stime,
        "jsii_requests": dict(requests),
    }
    with open(os.environ["SYNTH_PROBE_OUT"], "a") as out:
        out.write(json.dumps(line) + "\n")


def _count_requests() -> None:
    try:
        from jsii._kernel.providers import process
    except ImportError:  # pragma: no cover - another jsii layout
        return
    send = process._NodeProcess.send

    def counted(self: Any, request: Any, response_type: Any) -> Any:
        # A "_CompleteRequest" answers a callback: node called our Python code (an Aspect,
        # an interface implemented in Python).
        requests[type(request).__name__] += 1
        return send(self, request, response_type)

    process._NodeProcess.send = counted  # type: ignore[method-assign]


def main() -> None:
    app = sys.argv[1] if len(sys.argv) > 1 else "app.py"
    atexit.register(_report)  # registered first, so it runs last
    _count_requests()
    sys.path[0] = os.getcwd()  # the app's own packages, as `python app.py` would see them
    sys.argv = [app]
    runpy.run_path(app, run_name="__main__")


if __name__ == "__main__":
    main()
