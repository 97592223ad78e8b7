"""The endpoint's traffic: each flown flight is scored by the served model's own serving code
when it is scheduled, captured as SageMaker data capture writes it, and labelled once it lands.

One request per departure hour (a batch client: all flights of that hour, one CSV line each,
with the hour as InferenceId). Capture: <bucket>/datacapture/<endpoint>/<variant>/yyyy/mm/dd/hh/
<name>.jsonl; labels: <bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/labels.csv in the hour they
arrive (LABEL_DELAY after departure). Both are the layouts pipeline_steps/monitor.py reads.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from dataclasses import dataclass
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

LABEL_DELAY = pd.Timedelta(hours=6)  # the flight has landed and its delay is known
CAPTURE_PREFIX = "datacapture"
LABELS_PREFIX = "ground-truth"


def year_of_flights(raw_dir: Path) -> pd.DataFrame:
    """Every flown flight with its features (as the endpoint receives them) and its label."""
    tables = {name: step_io.read_table(raw_dir, name) for name in ("flights", "weather", "planes")}
    frame = preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])
    frame["hour"] = frame["scheduled_departure"].dt.floor("h")
    return frame


def request_body(rows: pd.DataFrame) -> str:
    """CSV lines in FEATURE_ORDER: numbers as text, categoricals as their raw values, '' missing."""
    columns = []
    for name in feature_schema.FEATURE_ORDER:
        values = rows[name]
        if name in feature_schema.CATEGORICAL_FEATURES:
            text = values.astype("object").where(values.notna(), "").astype(str)
        else:
            text = values.map(lambda v: "" if pd.isna(v) else repr(float(v)))
        columns.append(text.to_numpy())
    return "".join(",".join(parts) + "\n" for parts in zip(*columns, strict=True))


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
        return cls(version, module, module.model_fn(str(folder)), archive)

    def invoke(self, body: str) -> tuple[str, np.ndarray]:
        """One InvokeEndpoint: the response body and the probabilities."""
        rows = self.module.input_fn(body, "text/csv")
        scores = np.asarray(self.module.predict_fn(rows, self.model), dtype=np.float64)
        response, _ = self.module.output_fn(scores, "text/csv")
        return str(response), scores


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


def serve_hour(
    endpoint: Endpoint, served: ServedModel, rows: pd.DataFrame, hour: pd.Timestamp
) -> np.ndarray:
    """Score one hour's flights, write the capture and the (later) labels; the scores."""
    inference_id = hour.strftime("%Y-%m-%dT%H")
    body = request_body(rows)
    response, scores = served.invoke(body)
    partition = f"{hour:%Y/%m/%d/%H}"
    capture = endpoint.bucket_dir / CAPTURE_PREFIX / endpoint.name / endpoint.variant / partition
    capture.mkdir(parents=True, exist_ok=True)
    (capture / f"{endpoint.variant}-{inference_id}.jsonl").write_text(
        capture_record(inference_id, body, response, hour) + "\n"
    )
    arrival = hour + LABEL_DELAY
    labels = endpoint.bucket_dir / LABELS_PREFIX / endpoint.name / f"{arrival:%Y/%m/%d/%H}"
    labels.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "inference_id": inference_id,
            "row": np.arange(len(rows)),
            "label": rows[feature_schema.TARGET].to_numpy(),
        }
    ).to_csv(labels / f"labels-{inference_id}.csv", index=False)
    return scores


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    return float(metrics.roc_auc_score(labels, scores))
