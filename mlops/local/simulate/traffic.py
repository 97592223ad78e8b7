"""The endpoint's traffic: each flown flight is scored by the served model's own serving code
when it is scheduled, captured as SageMaker data capture writes it, and labelled once it lands.

One request per scheduled-departure minute (a client scoring each minute's departures: all
flights of that minute, one CSV line each, with the minute as InferenceId), so the endpoint
has the per-minute invocations its 1-minute alarms evaluate. Capture: one JSON line per request
in <bucket>/datacapture/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl; labels:
<bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/labels-<departure hour>.csv in the hour they
arrive (LABEL_DELAY after departure). Both are the layouts pipeline_steps/monitor.py reads.

Scoring runs in batches: consecutive requests answered by the same model go through
inference.py's input_fn/predict_fn/output_fn as one body, and the response is split back per
request. That is exact: every row is scored on its own (encode and predict are row-wise) and
output_fn writes one line per row, so a request's slice of the batch response is the response
it would have got alone (tests/test_simulate.py checks it).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

_STEPS_DIR = str(Path(__file__).resolve().parents[3] / "pipeline_steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)

import feature_schema  # noqa: E402
import preprocess  # noqa: E402
import step_io  # noqa: E402

from mlops.local.serve.served_model import start_model  # noqa: E402

LABEL_DELAY = pd.Timedelta(hours=6)  # the flight has landed and its delay is known
CAPTURE_PREFIX = "datacapture"
LABELS_PREFIX = "ground-truth"
RAW_FILES = {"flights": "flights.csv", "weather": "weather.csv", "planes": "planes.csv"}


def read_raw_text(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw tables as text, exactly as the files have them (they are re-written per month)."""
    tables = {}
    for name, file in RAW_FILES.items():
        path = Path(data_dir) / file
        path = path if path.is_file() else Path(data_dir) / f"{file}.zip"
        tables[name] = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    return tables


def year_of_flights(raw_dir: Path) -> pd.DataFrame:
    """Every flown flight with its features (as the endpoint receives them), its label, its
    request minute and its request line, in departure order."""
    tables = {name: step_io.read_table(raw_dir, name) for name in ("flights", "weather", "planes")}
    frame = preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])
    frame["minute"] = frame["scheduled_departure"].dt.floor("min")
    frame = frame.sort_values("minute", kind="stable").reset_index(drop=True)
    frame["line"] = request_lines(frame)
    return frame


def request_lines(rows: pd.DataFrame) -> list[str]:
    """CSV lines in FEATURE_ORDER: numbers as text, categoricals as their raw values, '' missing."""
    columns = []
    for name in feature_schema.FEATURE_ORDER:
        values = rows[name]
        if name in feature_schema.CATEGORICAL_FEATURES:
            columns.append(values.astype("object").where(values.notna(), "").astype(str).tolist())
        else:
            numbers = values.astype("float64").tolist()
            columns.append(["" if v != v else repr(v) for v in numbers])  # v != v: NaN
    return [",".join(parts) for parts in zip(*columns, strict=True)]


def request_body(rows: pd.DataFrame) -> str:
    return "".join(line + "\n" for line in request_lines(rows))


@dataclass(frozen=True)
class Request:
    """One InvokeEndpoint: the rows [start, stop) of its day's flights."""

    minute: pd.Timestamp
    start: int
    stop: int

    @property
    def inference_id(self) -> str:
        return self.minute.strftime("%Y-%m-%dT%H:%M")


def requests_of(day: pd.DataFrame) -> list[Request]:
    """The day's requests, one per departure minute (`day` is in departure order)."""
    minutes = day["minute"].astype("int64").to_numpy()  # UTC nanoseconds
    if not len(minutes):
        return []
    starts = np.flatnonzero(np.r_[True, minutes[1:] != minutes[:-1]])
    stops = np.r_[starts[1:], len(minutes)]
    return [
        Request(pd.Timestamp(int(minutes[a]), tz="UTC"), int(a), int(b))
        for a, b in zip(starts, stops, strict=True)
    ]


@dataclass
class ServedModel:
    """A registered model as an endpoint runs it: inference.py from its own model.tar.gz."""

    version: int
    module: ModuleType
    model: Any
    archive: Path

    @classmethod
    def load(cls, archive: Path, version: int, work_dir: Path) -> ServedModel:
        folder = work_dir / f"v{version}"
        if not folder.is_dir():
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(folder, filter="data")
        spec = importlib.util.spec_from_file_location(
            f"served_inference_v{version}", folder / "code" / "inference.py"
        )
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"{archive} has no code/inference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return cls(version, module, start_model(module, folder, version), archive)

    def invoke(self, body: str) -> tuple[str, np.ndarray]:
        """One InvokeEndpoint: the response body and the probabilities."""
        rows = self.module.input_fn(body, "text/csv")
        prediction = self.module.predict_fn(rows, self.model)
        response, _ = self.module.output_fn(prediction, "text/csv")
        return str(response), np.asarray(prediction.probabilities, dtype=np.float64)

    def invoke_batch(self, lines: list[str]) -> tuple[list[str], np.ndarray]:
        """Consecutive requests' lines as one body: one response line and score per line."""
        response, scores = self.invoke("".join(line + "\n" for line in lines))
        answers = response.splitlines()
        if len(answers) != len(lines):
            raise ValueError(f"{len(lines)} lines scored, {len(answers)} answered")
        return answers, scores


def capture_record(inference_id: str, body: str, response: str, at: pd.Timestamp) -> str:
    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": body,
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv",
                "mode": "OUTPUT",
                "data": response,
                "encoding": "CSV",
            },
        },
        "eventMetadata": {
            "eventId": f"event-{inference_id}",
            "inferenceId": inference_id,
            "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": "0",
    }
    return json.dumps(event, separators=(",", ":"))


@dataclass(frozen=True)
class Endpoint:
    bucket_dir: Path  # <s3 root>/<bucket>
    name: str
    variant: str


@dataclass
class Answered:
    """A request the endpoint answered: its body and response lines, and who answered."""

    request: Request
    version: int
    lines: list[str]
    answers: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))


def write_day(endpoint: Endpoint, day: pd.DataFrame, answered: list[Answered]) -> None:
    """The day's capture (one file per hour, a JSON line per request) and, per departure hour,
    the labels of its answered requests, in the hour they arrive. Failed requests (5xx) are
    neither captured nor labelled: their client got no prediction."""
    captures: dict[pd.Timestamp, list[str]] = {}
    labels: dict[pd.Timestamp, list[str]] = {}
    target = day[feature_schema.TARGET].to_numpy().astype(int).tolist()
    for item in answered:
        request = item.request
        hour = request.minute.floor("h")
        body = "".join(line + "\n" for line in item.lines)
        response = "".join(answer + "\n" for answer in item.answers)
        captures.setdefault(hour, []).append(
            capture_record(request.inference_id, body, response, request.minute)
        )
        labels.setdefault(hour, []).extend(
            f"{request.inference_id},{row},{target[request.start + row]}\n"
            for row in range(request.stop - request.start)
        )
    for hour, records in captures.items():
        partition = f"{hour:%Y/%m/%d/%H}"
        folder = endpoint.bucket_dir / CAPTURE_PREFIX / endpoint.name / endpoint.variant / partition
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{endpoint.variant}-{hour:%Y-%m-%dT%H}.jsonl").write_text(
            "\n".join(records) + "\n"
        )
        arrival = hour + LABEL_DELAY
        folder = endpoint.bucket_dir / LABELS_PREFIX / endpoint.name / f"{arrival:%Y/%m/%d/%H}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"labels-{hour:%Y-%m-%dT%H}.csv").write_text(
            "inference_id,row,label\n" + "".join(labels[hour])
        )


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    return float(metrics.roc_auc_score(labels, scores))
