"""The inference API's logic, without AWS: booking request -> feature row -> probability.

The same functions answer in the Lambda (online store = Feature Store, model = the endpoint)
and in `mlops local serve` (online store = the local one, model = the registry's artifact
run through its own inference.py). Only the two callables differ.

Request (JSON): {"carrier": "UA", "flight": 1545, "origin": "EWR", "dest": "IAH",
"scheduled_departure": "2013-01-01T05:15:00-05:00", "tailnum": "N14228"} plus an optional
"distance" (miles). The scheduled departure carries the airport's UTC offset: its wall-clock
hour, weekday and month are features; its instant picks the weather.
Response: 200 {"probability_delayed": 0.27, "model_version": "3",
"features": {"weather": "found" | "missing" | "unavailable", "plane": ...}}; errors are
{"error": "<one line>"} with 400, 404, 405, 413, 429, 502, 503 or 504. model_version is the
model's own: its container answers "probability,version" (pipeline_steps/inference.py), so it
names the model that scored this request; null for a model that does not name itself (one
trained before models did).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import feature_records
import feature_schema

MAX_BODY_BYTES = 4096
FOUND, MISSING, UNAVAILABLE = "found", "missing", "unavailable"
_CODE = re.compile(r"^[A-Z0-9]{2,4}$")
_TAILNUM = re.compile(r"^[A-Z0-9]{2,10}$")
# The health check's fixed request (a flight of the bundled data; any valid request works).
HEALTH_REQUEST: dict[str, Any] = {
    "carrier": "UA",
    "flight": 1545,
    "origin": "EWR",
    "dest": "IAH",
    "scheduled_departure": "2013-01-01T05:15:00-05:00",
    "tailnum": "N14228",
}


class ApiError(Exception):
    """An answer other than 200: HTTP status and a one-line message for the caller."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class BookingRequest:
    carrier: str
    flight: int
    origin: str
    dest: str
    scheduled_departure: datetime  # timezone-aware, in the airport's local offset
    tailnum: str | None
    distance: float | None


@dataclass(frozen=True)
class OnlineFeatures:
    """What the online store returned: the newest usable record per group, or None."""

    weather: Mapping[str, str] | None = None
    plane: Mapping[str, str] | None = None
    # Per group: found / missing / unavailable (the store could not answer in time).
    status: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


# The online store: (weather ids, newest first; tail number or None) -> features.
Lookup = Callable[[list[str], str | None], OnlineFeatures]
# The model: (one CSV line in feature_schema.FEATURE_ORDER, inference id or None) -> the
# response body ("probability,version" or "probability").
Invoke = Callable[[str, str | None], str]
# Marks the health check's requests in data capture, so the drift job can leave them out.
HEALTH_INFERENCE_ID = "health-check"


# ---- Request ------------------------------------------------------------------------------


def _field(body: Mapping[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name} is required")
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ApiError(400, f"{name} must be a {'number' if kind is float else kind.__name__}")
    return value


def _code(body: Mapping[str, Any], name: str, pattern: re.Pattern[str], required: bool) -> Any:
    value = _field(body, name, str, required)
    if value is None:
        return None
    value = value.strip().upper()
    if not pattern.match(value):
        raise ApiError(400, f"{name} {value!r} must be {pattern.pattern[1:-1]} (letters, digits)")
    return value


def parse_request(raw: bytes | str | None) -> BookingRequest:
    if raw is None or not raw:
        raise ApiError(400, "empty request: send a JSON object (see docs/CONTRACTS.md)")
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"request larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    allowed = {*HEALTH_REQUEST, "distance"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    flight = _field(body, "flight", int)
    if not 1 <= flight <= 9999:
        raise ApiError(400, f"flight must be between 1 and 9999, got {flight}")
    when_text = _field(body, "scheduled_departure", str)
    try:
        when = datetime.fromisoformat(when_text)
    except ValueError:
        raise ApiError(400, f"scheduled_departure {when_text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ApiError(
            400,
            "scheduled_departure needs the airport's UTC offset, e.g. 2013-06-01T14:30:00-04:00",
        )
    distance = _field(body, "distance", float, required=False)
    if distance is not None and not (math.isfinite(distance) and 0 < distance <= 20_000):
        raise ApiError(400, f"distance must be between 0 and 20000 miles, got {distance}")
    return BookingRequest(
        carrier=_code(body, "carrier", _CODE, True),
        flight=flight,
        origin=_code(body, "origin", _CODE, True),
        dest=_code(body, "dest", _CODE, True),
        scheduled_departure=when,
        tailnum=_code(body, "tailnum", _TAILNUM, False),
        distance=distance,
    )


# ---- Features -----------------------------------------------------------------------------


def feature_values(request: BookingRequest, online: OnlineFeatures) -> dict[str, str]:
    """Every model input as the endpoint's CSV text; "" is the model's missing value."""
    local = request.scheduled_departure  # wall clock at the airport, as in training
    values = {
        "carrier": request.carrier,
        "origin": request.origin,
        "dest": request.dest,
        "distance": "" if request.distance is None else repr(request.distance),
        "sched_dep_hour": str(local.hour),
        "day_of_week": str(local.weekday()),
        "month": str(local.month),
    }
    weather = online.weather or {}
    for name in feature_records.WEATHER_FEATURES:
        values[name] = weather.get(name, "")
    plane = online.plane or {}
    values["seats"] = plane.get("seats", "")
    values["plane_age"] = feature_records.plane_age_at(plane, local.year) if plane else ""
    return values


def feature_row(request: BookingRequest, online: OnlineFeatures) -> str:
    """One CSV line in the model's own input order (feature_schema.FEATURE_ORDER)."""
    values = feature_values(request, online)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [values[name] for name in feature_schema.FEATURE_ORDER]
    )
    return out.getvalue()


def parse_answer(text: str) -> tuple[float, str | None]:
    """The model's line: (probability, the version that scored it, or None if unnamed)."""
    try:
        fields = text.strip().splitlines()[0].split(",")
        if len(fields) > 2:
            raise ValueError
        value = float(fields[0])
    except (ValueError, IndexError):
        raise ApiError(502, "the model answered with something other than a probability") from None
    if not 0.0 <= value <= 1.0:
        raise ApiError(502, f"the model answered {value}, not a probability")
    version = fields[1].strip() if len(fields) == 2 else ""
    return value, version or None


# ---- The API ------------------------------------------------------------------------------


def predict(
    body: bytes | str | None,
    lookup: Lookup,
    invoke: Invoke,
    inference_id: str | None = None,
) -> Answer:
    """Request -> online lookup -> model -> answer. Every failure is an ApiError answer."""
    try:
        request = parse_request(body)
        departure = request.scheduled_departure
        online = lookup(
            feature_records.weather_candidates(request.origin, departure), request.tailnum
        )
        probability, model_version = parse_answer(
            invoke(feature_row(request, online), inference_id)
        )
    except ApiError as error:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        return Answer(error.status, {"error": error.message}, headers)
    return Answer(
        200,
        {
            "probability_delayed": round(probability, 6),
            "model_version": model_version,
            "features": {
                feature_records.WEATHER_GROUP: online.status.get(
                    feature_records.WEATHER_GROUP, MISSING
                ),
                feature_records.PLANE_GROUP: online.status.get(
                    feature_records.PLANE_GROUP, MISSING
                ),
            },
        },
    )


def health(lookup: Lookup, invoke: Invoke) -> Answer:
    """The real path with a fixed request: 200 only when the store and the model answer."""
    answer = predict(json.dumps(HEALTH_REQUEST), lookup, invoke, HEALTH_INFERENCE_ID)
    if answer.status != 200:
        return Answer(503, {"status": "unhealthy", "reason": answer.body.get("error", "")})
    return Answer(200, {"status": "healthy", "model_version": answer.body["model_version"]})


class HealthCache:
    """One real health check per `ttl_s` per process: Route 53 checks a region from many
    places every 30 s, and each real check is one more endpoint call (and captured row)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._answer: Answer | None = None
        self._at = 0.0

    def answer(self, compute: Callable[[], Answer]) -> Answer:
        now = self.clock()
        if self._answer is None or now - self._at >= self.ttl_s:
            self._answer, self._at = compute(), now
        return self._answer


def route(
    method: str,
    path: str,
    body: bytes | str | None,
    lookup: Lookup,
    invoke: Invoke,
    health_cache: HealthCache | None = None,
) -> Answer:
    """The API's two resources (API Gateway's proxy event, or the local server)."""
    resource = "/" + path.split("?", 1)[0].strip("/")
    if resource == "/predict":
        if method != "POST":
            return Answer(405, {"error": "use POST /predict"}, {"Allow": "POST"})
        return predict(body, lookup, invoke)
    if resource == "/health":
        if method != "GET":
            return Answer(405, {"error": "use GET /health"}, {"Allow": "GET"})
        if health_cache is None:
            return health(lookup, invoke)
        return health_cache.answer(lambda: health(lookup, invoke))
    return Answer(404, {"error": f"no resource {resource}: use POST /predict or GET /health"})
