"""The replay app of bench/bench_synth_floor.py: the assembly in $REPLAY_ASSEMBLY (a cdk.out
folder) rebuilt from plain L1 elements (bench/floor_replay.py says what that keeps and what
it leaves out), on the node app.py runs aws-cdk-lib with, with app.py's context (no node
stack traces) and CDK's built-in validation unless CDK_VALIDATION=false.

    REPLAY_ASSEMBLY=cdk.out cdk synth --app ".venv/bin/python bench/replay_app.py" -o replayed
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This checkout's mlops (as app.py sees it), then floor_replay; also when run by synth_probe.
sys.path[:0] = [str(HERE.parent), str(HERE)]

from mlops.jsii_node import use_tuned_node  # noqa: E402

use_tuned_node(os.environ)  # before the first import of aws_cdk starts jsii's node

import aws_cdk as cdk  # noqa: E402
from floor_replay import POST_CLI_CONTEXT, ReplayError, read_assembly, replay_app  # noqa: E402

from mlops.app_context import NO_NODE_STACK_TRACES  # noqa: E402


def main() -> int:
    source = os.environ.get("REPLAY_ASSEMBLY")
    if not source:
        print("error: REPLAY_ASSEMBLY is not set (expected a cdk.out folder)", file=sys.stderr)
        return 2
    app = cdk.App(context=dict(NO_NODE_STACK_TRACES), post_cli_context=POST_CLI_CONTEXT)
    try:
        replay_app(app, read_assembly(Path(source)))
    except ReplayError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
