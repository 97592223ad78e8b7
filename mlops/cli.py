"""The `mlops` command: run the pipeline and drift locally, promote a model, review a change.

    mlops local run   [--data DIR] [--out DIR] [--registry DIR] [--env ENV]
                      [--parameter NAME=VALUE ...]
    mlops local drift [--baseline FILE] [--data DIR] [--out DIR] [--registry DIR]
    mlops local simulate [--data DIR] [--out DIR] [--env ENV] [--seed-months 6]
                      [--end-month 12] [--promotion auto|never] [--parameter NAME=VALUE ...]
                      [--inject-fault MONTH:errors|latency]
    mlops local ingest [--data DIR] [--feature-store DIR]
    mlops local serve [--port N] [--host H] [--registry DIR] [--feature-store DIR]
                      [--group G --version N]
    mlops promote     --env ENV --version N [--local [--registry DIR]]
    mlops review      --base REF [--head-dir DIR] [--output FILE]

A user mistake is one `ERROR: ...` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from mlops.clock import Clock, utc_now

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REGISTRY = ROOT / "local-registry"
DEFAULT_RUNS = ROOT / "local-runs"
DEFAULT_FEATURE_STORE = ROOT / "local-feature-store"
CONFIG = ROOT / "config" / "environments.yaml"


def _error(message: str, code: int = 2) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one ERROR line (no usage block) and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ERROR: {self.prog}: {message} (see --help)\n")
        sys.exit(2)


# The only clock the CLI reads (run folder names, registry and run timestamps); tests pin it.
clock: Clock = utc_now


def _run_dir(kind: str, now: datetime) -> Path:
    return DEFAULT_RUNS / f"{kind}-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _parameter(value: str) -> tuple[str, str]:
    name, equals, text = value.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE (e.g. WindowEnd=2013-06-30)")
    return name, text


def _existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not a folder")
    return path


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return int(value)


# ---- mlops local run --------------------------------------------------------------------


def local_run(args: argparse.Namespace) -> int:
    from mlops.local.registry import RegistryError
    from mlops.local.run_local import run_local
    from mlops.local.runner import LocalRunError

    out = args.out or _run_dir("run", clock())
    try:
        summary = run_local(
            ROOT,
            args.data,
            out,
            args.registry,
            args.env,
            parameters=dict(args.parameter),
            clock=clock,
            # The new raw data feeds the feature groups first (in AWS: the ingestion Lambda);
            # Preprocess's join reads the offline store, `mlops local serve` the online one.
            feature_store=args.feature_store,
        )
    except (LocalRunError, RegistryError) as error:
        return _error(str(error))
    print(f"Run summary: {out / 'run-summary.json'}")
    print(f"Feature store: {args.feature_store}")
    if summary.status != "Succeeded":
        return _error(f"the pipeline failed: {summary.failure_reason}", 1)
    return 0


# ---- mlops local ingest / serve ---------------------------------------------------------


def _ingest(store: Path, data: Path | None) -> int:
    from mlops.local.feature_store.ingest import IngestionError, ingest_folder
    from mlops.local.run_local import bundled_data_dir

    try:
        results = ingest_folder(store, data or bundled_data_dir(), clock=lambda: datetime.now(UTC))
    except IngestionError as error:
        return _error(str(error))
    for result in results:
        name = Path(result.file).name
        if result.skipped:
            print(
                f"Features: {name} already ingested (sha256 {result.sha256[:12]}), nothing written"
            )
        else:
            rate = result.records / result.seconds if result.seconds else 0.0
            print(
                f"Features: {name} -> {result.feature_group}: {result.records} records, "
                f"{result.online_changed} online, {result.offline_files} offline files, "
                f"{rate:,.0f} records/s"
            )
    print(f"Feature store: {store}")
    return 0


def local_ingest(args: argparse.Namespace) -> int:
    return _ingest(args.feature_store, args.data)


def local_serve(args: argparse.Namespace) -> int:
    from mlops.local.feature_store.online import OnlineStoreError
    from mlops.local.registry import LocalRegistry, RegistryError
    from mlops.local.serve.served_model import choose_package, load_served_model
    from mlops.local.serve.server import InferenceServer

    if not (args.feature_store / "online.sqlite").is_file():
        return _error(
            f"no online store in {args.feature_store}: run `make local-run` or `mlops local ingest`"
        )
    try:
        package = choose_package(LocalRegistry(args.registry), args.group, args.version)
        model = load_served_model(package)
        server = InferenceServer((args.host, args.port), model, args.feature_store)
    except (RegistryError, OnlineStoreError) as error:
        return _error(str(error))
    except OSError as error:
        return _error(
            f"cannot listen on {args.host}:{args.port}: {error.strerror}; give another "
            "--port (0 picks a free one) or --host (an address of this machine)"
        )
    host, port = args.host, server.server_address[1]
    print(
        f"Serving {package.model_package_group_name} v{package.version} on "
        f"http://{host}:{port} (POST /predict, GET /health); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.")
    finally:
        server.server_close()
    return 0


# ---- mlops local drift ------------------------------------------------------------------


BASELINE_METRIC = "ModelDataQuality-Statistics"  # where RegisterModel files baseline.json


def _latest_baseline(registry: Path) -> Path:
    """The drift baseline of the newest model the local runs registered."""
    from mlops.local.registry import LocalRegistry

    local = LocalRegistry(registry)
    packages = [
        package
        for group in local.groups()
        for package in local.list_packages(group)
        if BASELINE_METRIC in package.metric_files
    ]
    if not packages:
        raise FileNotFoundError(
            f"no registered model with a baseline in {registry}: run `mlops local run` first, "
            "or pass --baseline FILE"
        )
    newest = max(packages, key=lambda p: (p.created_at, p.version))
    return Path(newest.metric_files[BASELINE_METRIC])


def local_drift(args: argparse.Namespace) -> int:
    from mlops.local.drift_report import DriftReportError, format_monthly_table, run_local_drift
    from mlops.local.registry import RegistryError
    from mlops.local.run_local import bundled_data_dir

    try:
        baseline = args.baseline or _latest_baseline(args.registry)
    except (FileNotFoundError, RegistryError) as error:
        return _error(str(error))
    out = args.out or _run_dir("drift", clock())
    try:
        result = run_local_drift(baseline, args.data or bundled_data_dir(), out)
    except DriftReportError as error:
        return _error(str(error))
    print(f"Baseline: {baseline}")
    print(format_monthly_table(result))
    print(f"Report: {out / 'drift_by_month.json'} and {out / 'drift_by_month.png'}")
    return 0


# ---- mlops local simulate ---------------------------------------------------------------


def _monitored_environment(platform: object, name: str | None) -> object:
    """--env, or the first environment whose endpoint is monitored (instance-backed)."""
    environments = platform.environments  # type: ignore[attr-defined]
    if name is not None:
        if name not in environments:
            raise ValueError(
                f"--env {name}: unknown environment (allowed: {', '.join(environments)})"
            )
        chosen = environments[name]
        if chosen.serving.serverless:
            raise ValueError(
                f"--env {name} serves serverless: no data capture, no drift monitoring"
            )
        return chosen
    for environment in environments.values():
        if not environment.serving.serverless:
            return environment
    raise ValueError("no environment serves from instances: nothing is monitored")


def local_simulate(args: argparse.Namespace) -> int:
    from mlops.config import ConfigError, load_config
    from mlops.local.registry import RegistryError
    from mlops.local.run_local import bundled_data_dir, check_raw_data
    from mlops.local.runner import LocalRunError
    from mlops.local.simulate.replay import Options, SimulationError, simulate

    try:
        platform = load_config(CONFIG)
        serving = _monitored_environment(platform, args.env)
        data = args.data or bundled_data_dir()
        check_raw_data(data)
    except (ConfigError, ValueError) as error:
        return _error(str(error))
    out = args.out or _run_dir("simulate", clock())
    options = Options(
        repo_root=ROOT,
        out_dir=out,
        platform=platform,
        serving=serving,  # type: ignore[arg-type]
        data_dir=Path(data),
        seed_months=args.seed_months,
        end_month=args.end_month,
        promotion=args.promotion,
        parameters=dict(args.parameter),
        fault=args.inject_fault,
        progress=lambda line: print(line, flush=True),
    )
    try:
        result = simulate(options)
    except (SimulationError, LocalRunError, RegistryError) as error:
        return _error(str(error))
    print(result["table"])
    truth = result["summary"]["truth"]
    print(json.dumps(truth, indent=1))
    summary = result["summary"]
    print(f"Cost: {summary['seconds']} s wall, {summary['cpu_seconds']} s CPU (per phase: "
          "summary.json)")  # fmt: skip
    print(f"Outputs: {out}/timeline.json, months.md, months.json, summary.json, simulation.png")
    return 0


def _fault(value: str) -> object:
    from mlops.local.simulate.endpoint import parse_fault

    try:
        return parse_fault(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _month(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 12:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month number (allowed: 1 to 12)")
    return number


# ---- mlops promote ----------------------------------------------------------------------


def promote(args: argparse.Namespace) -> int:
    from mlops.config import ConfigError, load_config
    from mlops.naming import model_package_group_name
    from mlops.promote import promote_command
    from mlops.release_manifest import RegistryHub

    try:
        platform = load_config(CONFIG)
    except ConfigError as error:
        return _error(str(error))
    if args.env not in platform.environments:
        return _error(
            f"--env {args.env}: unknown environment (allowed: {', '.join(platform.environments)})"
        )
    hub = platform.registry_of(platform.environment(args.env))
    if args.local and args.registry is None:
        args.registry = str(DEFAULT_REGISTRY)
    group = model_package_group_name(platform, hub)
    account = hub.account if hub.account != "from-cli" else "000000000000"
    region = hub.home_region if hub.home_region != "from-cli" else "us-east-1"
    return promote_command(
        args,
        group_name=group,
        known_envs=tuple(platform.environments),
        registry_account=account,
        registry_region=region,
        # The sandbox's hub is whoever runs the command: no fixed registry to check against.
        hub=None
        if hub.account == "from-cli"
        else RegistryHub(name=hub.name, account=account, region=region, group=group),
    )


# ---- mlops review -----------------------------------------------------------------------


def review(args: argparse.Namespace) -> int:
    from mlops import review as review_module

    return review_module.run(args)


# ---- Parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from mlops import review as review_module
    from mlops.promote import add_promote_arguments

    parser = _Parser(prog="mlops", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run on this machine, without AWS")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    run = local_commands.add_parser("run", help="run the training pipeline locally")
    run.add_argument("--data", type=_existing_dir, help="folder with flights/weather/planes.csv")
    run.add_argument("--out", type=Path, help="output folder (default local-runs/run-<time>)")
    run.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="local registry")
    run.add_argument("--env", help="environment whose pipeline to run (default: the training one)")
    run.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter override, e.g. WindowEnd=2013-06-30 (repeatable)",
    )
    run.add_argument(
        "--feature-store", type=Path, default=DEFAULT_FEATURE_STORE, help="local feature store"
    )
    run.set_defaults(handler=local_run)

    drift = local_commands.add_parser("drift", help="score the data month by month for drift")
    drift.add_argument("--baseline", type=Path, help="baseline.json (default: newest registered)")
    drift.add_argument("--data", type=_existing_dir, help="folder with flights/weather/planes.csv")
    drift.add_argument("--out", type=Path, help="output folder (default local-runs/drift-<time>)")
    drift.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="local registry")
    drift.set_defaults(handler=local_drift)

    sim = local_commands.add_parser(
        "simulate", help="replay a year of operation on the bundled data (about 10 minutes)"
    )
    sim.add_argument("--data", type=_existing_dir, help="folder with flights/weather/planes.csv")
    sim.add_argument("--out", type=Path, help="output folder (default local-runs/simulate-<time>)")
    sim.add_argument("--env", help="serving environment to replay (default: first monitored)")
    sim.add_argument("--seed-months", type=_month, default=6,
                     help="months of data that seed the first model (default 6: serve Jul-Dec)")  # fmt: skip
    sim.add_argument("--end-month", type=_month, default=12, help="last month served")
    sim.add_argument("--promotion", choices=("auto", "never"), default="auto",
                     help="auto: serve every approved model; never: keep the first")  # fmt: skip
    sim.add_argument("--parameter", type=_parameter, action="append", default=[],
                     metavar="NAME=VALUE", help="pipeline parameter override for every run")  # fmt: skip
    sim.add_argument("--inject-fault", type=_fault, metavar="MONTH:KIND",
                     help="the release serving on the 15th of MONTH, 12:00-18:00 UTC, answers "
                          "with 5xx (errors) or slowly (latency): its alarms roll it back")  # fmt: skip
    sim.set_defaults(handler=local_simulate)

    ingest = local_commands.add_parser("ingest", help="raw weather/planes -> local feature store")
    ingest.add_argument("--data", type=_existing_dir, help="folder with weather.csv, planes.csv")
    ingest.add_argument("--feature-store", type=Path, default=DEFAULT_FEATURE_STORE)
    ingest.set_defaults(handler=local_ingest)

    serve = local_commands.add_parser("serve", help="the inference API on localhost")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    serve.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="local registry")
    serve.add_argument("--feature-store", type=Path, default=DEFAULT_FEATURE_STORE)
    serve.add_argument("--group", help="model package group (default: every group)")
    serve.add_argument("--version", type=int, help="model version (default: newest Approved)")
    serve.set_defaults(handler=local_serve)

    promote_parser = commands.add_parser("promote", help="pin a model version in releases.yaml")
    add_promote_arguments(promote_parser)
    promote_parser.set_defaults(handler=promote)

    review_parser = commands.add_parser("review", help="offline synth diff against a git ref")
    review_module.add_arguments(review_parser)
    review_parser.set_defaults(handler=review)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return _error("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
