"""Where the app's jsii requests come from: each request by kind and target (create by fqn,
invoke by class and method, get/set by class and property, callbacks by Python method) and
by the line of mlops/ code that sent it, for prod with 1 and with N stages; the difference
is what one more (environment, region) stage sends. A diagnostic, not a benchmark: the
counting itself costs time, so no CPU figure is printed.

    .venv/bin/python bench/jsii_requests.py [--stages 6] [--top 25] [--full]

--full also counts the full app (every stage and the delivery stack). Every run is
`cdk synth --quiet` through this checkout's CLI with CDK_VALIDATION=false, as
bench/bench_synth_app.py does. With --child APP (used by the runs themselves) it runs APP in
this process and writes the counts to $JSII_REQUESTS_OUT.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from synth_rounds import CLI, PYTHON, REGIONS, ROOT, prod_config

OWN_CODE = (f"{os.sep}mlops{os.sep}", f"{os.sep}app.py")


def _class_of(objref: Any) -> str:
    # "aws-cdk-lib.aws_iam.Role@10042" -> "aws_iam.Role"; the id is per object
    ref = getattr(objref, "ref", "?")
    return ref.split("@")[0].replace("aws-cdk-lib.", "")


def _target(request: Any) -> str:
    kind = type(request).__name__.strip("_").removesuffix("Request")
    if kind == "Create":
        return f"create {request.fqn.replace('aws-cdk-lib.', '')}"
    if kind in ("Invoke", "Begin"):
        return f"invoke {_class_of(request.objref)}.{request.method}"
    if kind in ("Get", "Set"):
        return f"{kind.lower()} {_class_of(request.objref)}.{request.property}"
    if kind in ("StaticInvoke", "StaticBegin"):
        return f"static {request.fqn.replace('aws-cdk-lib.', '')}.{request.method}"
    if kind in ("StaticGet", "StaticSet"):
        return f"{kind.lower()} {request.fqn.replace('aws-cdk-lib.', '')}.{request.property}"
    return kind


def _caller() -> str:
    """The innermost frame of our own code (mlops/ or app.py) that led to this request."""
    frame = sys._getframe(3)
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in OWN_CODE):
            return f"{name.split(str(ROOT) + os.sep)[-1]}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "(no mlops frame: jsii/aws_cdk internals)"


def child(app: str) -> None:
    from jsii._kernel.providers import process

    by_target: collections.Counter[str] = collections.Counter()
    by_caller: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    by_pair: collections.Counter[str] = collections.Counter()
    callbacks: collections.Counter[str] = collections.Counter()
    send = process._NodeProcess.send

    def counted(self: Any, request: Any, response_type: Any) -> Any:
        target = _target(request)
        by_target[target] += 1
        caller = _caller()
        by_pair[f"{caller} -> {target}"] += 1
        by_caller[caller] += 1
        by_function[caller.split(":")[0] + " " + caller.rsplit(" ", 1)[-1]] += 1
        response: Any = send(self, request, response_type)
        if type(response).__name__ == "Callback":
            inner = response.invoke or response.get or response.set
            callbacks[f"{_class_of(inner.objref)}.{response.cookie}"] += 1
        return response

    process._NodeProcess.send = counted  # type: ignore[method-assign]

    def report() -> None:
        out = {
            "target": by_target,
            "function": by_function,
            "caller": by_caller,
            "callback": callbacks,
            "pair": by_pair,
        }
        Path(os.environ["JSII_REQUESTS_OUT"]).write_text(json.dumps(out))

    atexit.register(report)  # registered before jsii's: runs after node has stopped
    sys.path[0] = os.getcwd()
    sys.argv = [app]
    runpy.run_path(app, run_name="__main__")


def count(folder: Path, context: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    out = folder / "requests.json"
    command = [str(CLI), "synth", "--quiet", "--output", str(folder / "cdk.out")]
    command += ["--app", f"{PYTHON} {Path(__file__).resolve()} --child app.py"]
    for key, value in context.items():
        command += ["-c", f"{key}={value}"]
    run_env = {
        **os.environ,
        "CDK_VALIDATION": "false",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_REQUESTS_OUT": str(out),
        **env,
    }
    done = subprocess.run(command, cwd=ROOT, env=run_env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ERROR: synth failed: {done.stderr[-800:]}")
    return {key: collections.Counter(value) for key, value in json.loads(out.read_text()).items()}


def prod(folder: Path, stages: int) -> dict[str, Any]:
    path = prod_config(ROOT, folder, stages)
    return count(folder, {"env": "prod"}, {"MLOPS_CONFIG": str(path)})


def show(title: str, counter: collections.Counter[str], per: int, top: int) -> None:
    total = sum(counter.values())
    print(f"\n{title}: {total / per:.0f}")
    for key, value in counter.most_common(top):
        print(f"{value / per:>8.1f}  {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=6)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    if not 2 <= args.stages <= len(REGIONS):
        parser.error(f"--stages must be 2..{len(REGIONS)}")
    with tempfile.TemporaryDirectory(prefix="jsii-requests-") as tmp:
        folder = Path(tmp)
        one, many = prod(folder, 1), prod(folder, args.stages)
        full = count(folder, {}, {}) if args.full else None
    added = args.stages - 1
    print(
        f"prod 1 stage: {sum(one['target'].values())} requests; prod {args.stages} stages: "
        f"{sum(many['target'].values())}; per added stage below"
    )
    for key, title in (
        ("target", "by kind and target"),
        ("function", "by mlops function"),
        ("caller", "by mlops line"),
        ("callback", "callbacks by Python method"),
        ("pair", "by mlops line and target"),
    ):
        diff = many[key].copy()
        diff.subtract(one[key])
        show(f"{title}, per added stage", +diff, added, args.top)
    if full is not None:
        for key, title in (
            ("target", "full app, by kind and target"),
            ("function", "full app, by mlops function"),
            ("caller", "full app, by mlops line"),
            ("callback", "full app, callbacks by Python method"),
            ("pair", "full app, by mlops line and target"),
        ):
            show(title, full[key], 1, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
