"""Serving entry point for the SageMaker XGBoost framework container (script mode).

train.py copies this file and feature_schema.py into model.tar.gz under code/, and the
endpoint's model sets SAGEMAKER_PROGRAM=inference.py, SAGEMAKER_SUBMIT_DIRECTORY=
/opt/ml/model/code, so the container needs nothing outside the model artifact (the model
runs with network isolation).

Request: text/csv, one flight per line, the columns of feature_schema.FEATURE_ORDER, no
header. Categorical columns take either the raw value ("UA", "JFK") or the integer code of
the model's own vocabulary; empty means missing. Response: text/csv, one line per flight: the
probability of an arrival delay of 15 minutes or more, then, when the container's environment
names the release (MODEL_VERSION, set on every model the serving stack creates), that version:
"0.119273,3". Each answer names the model that made it, whichever fleet served it (a canary, or
the previous release after a rollback). Without MODEL_VERSION (a batch transform, a model
deployed from the registry by hand) the line is the probability alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xgboost as xgb

MODEL_FILE = "xgboost-model"
METADATA_FILE = "feature_metadata.json"
CONTENT_TYPE = "text/csv"
# The container environment variable naming the served release (realtime_endpoint.py sets it).
VERSION_ENV = "MODEL_VERSION"
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestError(ValueError):
    """A bad request: the container answers it with HTTP 400 and this message."""


def _client_error(error: RequestError) -> Exception:
    """Inside the container, the toolkit's error type carries the 400 status; a plain
    exception would be answered with 500 and count on the 5xx alarms as a server fault."""
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:  # not in the container (tests, local use): keep our own error
        return error
    return GenericInferenceToolkitError(400, str(error))


class Predictions(NamedTuple):
    """predict_fn's result: one probability per row, and the version that scored them.
    (Not a dataclass: loaders that exec this file outside sys.modules must still work.)"""

    probabilities: np.ndarray
    model_version: str  # "" when the environment names none


class FlightDelayModel:
    def __init__(self, booster: xgb.Booster, metadata: dict[str, Any], version: str = "") -> None:
        self.booster = booster
        self.version = version
        self.feature_order: list[str] = list(metadata["feature_order"])
        vocabulary: dict[str, list[str]] = metadata["categorical_vocabulary"]
        self.codes = {
            name: {value: index for index, value in enumerate(values)}
            for name, values in vocabulary.items()
        }

    def encode(self, rows: list[list[str]]) -> np.ndarray:
        width = len(self.feature_order)
        matrix = np.full((len(rows), width), np.nan, dtype=np.float64)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise RequestError(
                    f"row {i + 1} has {len(row)} columns; expected {width}: "
                    + ",".join(self.feature_order)
                )
            for j, (name, raw) in enumerate(zip(self.feature_order, row, strict=True)):
                matrix[i, j] = self._value(name, raw.strip(), i)
        return matrix

    def _value(self, name: str, raw: str, row: int) -> float:
        if raw == "":
            return math.nan
        vocabulary = self.codes.get(name)
        try:
            return float(raw)
        except ValueError:
            if vocabulary is None:
                raise RequestError(f"row {row + 1}: {name} must be a number, got {raw!r}") from None
        return float(vocabulary.get(raw, -1))  # unseen category: the training-time "unknown"

    def predict(self, rows: list[list[str]]) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(self.encode(rows)), dtype=np.float64)


def load(model_dir: str | Path, version: str = "") -> FlightDelayModel:
    folder = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(str(folder / MODEL_FILE))
    metadata = json.loads((folder / METADATA_FILE).read_text())
    return FlightDelayModel(booster, metadata, version)


def parse_csv(body: str) -> list[list[str]]:
    rows = [row for row in csv.reader(io.StringIO(body)) if row and any(c.strip() for c in row)]
    if not rows:
        raise RequestError("empty request: send one CSV line per flight")
    return rows


# ---- The four functions the SageMaker XGBoost container calls ----------------------------


def served_version(environ: Mapping[str, str]) -> str:
    """The release the environment names, "" for none; it becomes a CSV column, so a value
    that could break the line stops the container at start-up instead."""
    version = environ.get(VERSION_ENV, "").strip()
    if version and not _VERSION.match(version):
        raise ValueError(f"{VERSION_ENV} {version!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return version


def model_fn(model_dir: str) -> FlightDelayModel:
    # Read once at start-up: the environment is the model's (one release per container).
    return load(model_dir, served_version(os.environ))


def input_fn(request_body: bytes | bytearray | str, content_type: str) -> list[list[str]]:
    try:
        if content_type.split(";")[0].strip() != CONTENT_TYPE:
            raise RequestError(
                f"content type {content_type!r} is not supported; send {CONTENT_TYPE}"
            )
        # The toolkit hands over a bytearray unless the content type is exactly text/csv.
        body = (
            bytes(request_body).decode("utf-8")
            if isinstance(request_body, (bytes, bytearray))
            else request_body
        )
        return parse_csv(body)
    except (RequestError, UnicodeDecodeError) as error:
        raise _client_error(RequestError(str(error))) from None


def predict_fn(rows: list[list[str]], model: FlightDelayModel) -> Predictions:
    try:
        return Predictions(model.predict(rows), model.version)
    except RequestError as error:
        raise _client_error(error) from None


def output_fn(prediction: Predictions, accept: str) -> tuple[str, str]:
    suffix = f",{prediction.model_version}" if prediction.model_version else ""
    return "".join(f"{p:.6f}{suffix}\n" for p in prediction.probabilities), CONTENT_TYPE
