"""Front-door benchmark: `mlops local serve` over HTTP against scoring the model in-process.

    python bench/bench_serve.py [--requests 1000] [--threads 4] [--registry DIR]
        [--feature-store DIR]

Requests are real flights of the bundled data (booking-time fields only). Three ways, same
requests, same run:
  model      the served model's own inference.py (input_fn, predict_fn, output_fn) on the
             feature row: what the endpoint container does, the baseline;
  front door front_door.predict in-process: parse, online lookup (SQLite), row, model;
  HTTP       POST /predict to the local server on one keep-alive connection, then from
             --threads clients at once (requests per second).
Uses the local registry and feature store of `make local-run` when they exist; otherwise it
runs the pipeline and the ingestion into a temporary folder first. Prints figures only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops.local.registry import LocalRegistry  # noqa: E402
from mlops.local.run_local import bundled_data_dir, stage_raw_data  # noqa: E402
from mlops.local.serve.served_model import choose_package, load_served_model  # noqa: E402
from mlops.local.serve.server import InferenceServer, front_door  # noqa: E402

NEW_YORK = ZoneInfo("America/New_York")


def booking_requests(count: int, seed: int = 7) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        (flights_csv,) = [
            p for p in stage_raw_data(bundled_data_dir(), Path(folder)) if p.name == "flights.csv"
        ]
        flights = pd.read_csv(flights_csv).dropna(subset=["tailnum"])
    sample = flights.sample(n=count, random_state=seed)
    requests = []
    for row in sample.itertuples():
        local = pd.Timestamp(
            year=row.year,
            month=row.month,
            day=row.day,
            hour=row.sched_dep_time // 100,
            minute=row.sched_dep_time % 100,
        ).tz_localize(NEW_YORK, nonexistent="shift_forward", ambiguous=True)
        requests.append(
            {
                "carrier": row.carrier,
                "flight": int(row.flight),
                "origin": row.origin,
                "dest": row.dest,
                "scheduled_departure": local.isoformat(),
                "tailnum": row.tailnum,
                "distance": float(row.distance),
            }
        )
    return requests


def timed(call: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - started)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, times: Sequence[float], baseline: Sequence[float] | None = None) -> None:
    p50, p99 = statistics.median(times) * 1000, percentile(times, 0.99) * 1000
    line = (
        f"{name:<22} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   {len(times) / sum(times):8.0f} req/s"
    )
    if baseline is not None:
        base50, base99 = statistics.median(baseline) * 1000, percentile(baseline, 0.99) * 1000
        line += f"   overhead p50 +{p50 - base50:.3f} ms ({p50 / base50:.1f}x), p99 +{p99 - base99:.3f} ms"
    print(line, flush=True)


def ensure_local_state(registry: Path, store: Path) -> tuple[Path, Path]:
    if (store / "online.sqlite").is_file() and LocalRegistry(registry).groups():
        return registry, store
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    print(f"No local registry/feature store: running `mlops local run` into {work}", flush=True)
    subprocess.run(
        [
            sys.executable, "-m", "mlops.cli", "local", "run", "--out", str(work / "run"),
            "--registry", str(work / "registry"), "--feature-store", str(work / "store"),
        ],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return work / "registry", work / "store"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--registry", type=Path, default=ROOT / "local-registry")
    parser.add_argument("--feature-store", type=Path, default=ROOT / "local-feature-store")
    args = parser.parse_args(argv)
    registry, store = ensure_local_state(args.registry, args.feature_store)
    model = load_served_model(choose_package(LocalRegistry(registry), None, None))
    server = InferenceServer(("127.0.0.1", 0), model, store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = front_door()
        bodies = [json.dumps(r).encode() for r in booking_requests(args.requests)]
        rows = []
        for body in bodies:
            request = api.parse_request(body)
            candidates = __import__("feature_records").weather_candidates(
                request.origin, request.scheduled_departure
            )
            rows.append(api.feature_row(request, server.lookup(candidates, request.tailnum)))
        host, port = "127.0.0.1", server.server_address[1]
        connection = http.client.HTTPConnection(host, port)

        def post(body: bytes, conn: http.client.HTTPConnection = connection) -> None:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {payload!r}")

        # Warm-up: first calls load code paths and caches.
        for body, row in zip(bodies[:20], rows[:20], strict=True):
            model.invoke(row)
            post(body)
        baseline = timed(model.invoke, rows)
        in_process = timed(lambda b: api.predict(b, server.lookup, server.invoke), bodies)
        over_http = timed(post, bodies)
        print(
            f"{args.requests} real booking requests, model v{model.version}, online store {store}"
        )
        report("model (in-process)", baseline)
        report("front door in-process", in_process, baseline)
        report("HTTP, 1 connection", over_http, baseline)

        local = threading.local()

        def post_from_pool(body: bytes) -> None:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(host, port)
            post(body, local.conn)

        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(post_from_pool, bodies))
        elapsed = time.perf_counter() - started
        print(
            f"HTTP, {args.threads} clients        {len(bodies) / elapsed:8.0f} req/s "
            f"(one model lock, as one model-server worker; 2 shared cores)"
        )
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
