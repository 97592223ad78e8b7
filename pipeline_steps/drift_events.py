"""SageMaker data capture lines to the CSV text of their endpointInput: exact and fast.

Decoding whole events with json.loads was two thirds of the drift job's time (about 8 us a
line for a dozen objects), yet only three strings of an event matter. Three paths, each giving
the payloads and counts json.loads would for every line:
- a chunk whose lines all have the first line's layout (the same bytes outside the value
  strings: what one endpoint writes) is checked and cut with a few numpy passes over its bytes;
- a line in the layout SageMaker writes (these keys in this order, any JSON whitespace, string
  values) is matched by one regular expression that also proves it is valid JSON;
- any other line (another key order, more keys, numbers, broken JSON) goes to json.loads.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from typing import Any, Protocol

import numpy as np

# The inference API's health check (Route 53 calls it through the real endpoint) sends a fixed
# request with this InferenceId (lambda/inference_api/front_door.py HEALTH_INFERENCE_ID): it
# is not traffic, so drift leaves it out.
HEALTH_CHECK_INFERENCE_ID = "health-check"


class Tally(Protocol):
    malformed: Counter[str]
    health_checks: int


# JSON's grammar (RFC 8259) for the pieces SageMaker writes; json.loads accepts exactly these.
_WS = r"[ \t\n\r]*"
# A string's body: no quote, backslash or control character except in a valid escape.
_BODY = r'[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*'
_STRING = rf'"{_BODY}"'
# An object of string values whose keys have no escapes (so a key is what it reads).
_MEMBER = rf'"[^"\\\x00-\x1f]*"{_WS}:{_WS}{_STRING}'
_FLAT_OBJECT = rf"\{{{_WS}(?:{_MEMBER}{_WS}(?:,{_WS}{_MEMBER}{_WS})*)?\}}"


def _key(name: str) -> str:
    return rf'"{name}"{_WS}:{_WS}'


def _comma() -> str:
    return rf"{_WS},{_WS}"


# One capture line as SageMaker writes it; groups: content type, data, encoding (string
# bodies, still escaped) and the eventMetadata object's text.
EVENT = re.compile(
    rf"{_WS}\{{{_WS}{_key('captureData')}\{{{_WS}{_key('endpointInput')}\{{{_WS}"
    rf'{_key("observedContentType")}"({_BODY})"{_comma()}{_key("mode")}{_STRING}{_comma()}'
    rf'{_key("data")}"({_BODY})"{_comma()}{_key("encoding")}"({_BODY})"{_WS}\}}'
    rf"(?:{_comma()}{_key('endpointOutput')}{_FLAT_OBJECT})?{_WS}\}}{_comma()}"
    rf"{_key('eventMetadata')}({_FLAT_OBJECT}){_comma()}{_key('eventVersion')}{_STRING}"
    rf"{_WS}\}}{_WS}"
)


def capture_csv_text(lines: list[str], tally: Tally) -> str:
    """The CSV rows of a chunk of capture lines, each payload ending in a newline."""
    text = uniform_chunk_text(lines)
    if text is None:
        payloads = capture_payloads(lines, tally)
        text = "".join(p if p.endswith("\n") else p + "\n" for p in payloads)
    return text


# Escapes that can hide neither a quote nor a backslash, and what they stand for.
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "/": "/", "b": "\b", "f": "\f"}
_SIMPLE_ESCAPE_BYTES = np.frombuffer("".join(_SIMPLE_ESCAPES).encode(), dtype=np.uint8)
_QUOTE, _BACKSLASH, _NEWLINE, _SPACE = 0x22, 0x5C, 0x0A, 0x20


def uniform_chunk_text(lines: list[str]) -> str | None:
    """The CSV rows of a chunk whose lines all share the first line's layout, that line being
    a CSV event that EVENT matches; None for any other chunk (its lines are then read one by
    one), or when a line in it is a health check or a data payload lacks its final newline.

    Why it is exact: the first line is valid JSON (EVENT). A line with the same bytes outside
    its value strings (keys, punctuation, whitespace, and the content type and encoding
    values), whose value strings hold only ASCII characters that are not control characters
    and escapes that hide no quote or backslash, is valid JSON with the same keys, content
    type and encoding.
    """
    first = EVENT.fullmatch(lines[0]) if lines else None
    if first is None:
        return None
    # The escapes allowed below (\n \r \t \/ \b \f) neither make nor hide "csv",
    # nor spell the health check's id: the raw bodies decide as the decoded ones would.
    content_type, _, encoding, _ = first.groups()
    if encoding.upper() != "CSV" or "csv" not in content_type.lower():
        return None
    text = "".join(lines)
    if not text.isascii():
        return None
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    if not text.endswith("\n"):  # the file's last line: JSON whitespace, the same event
        text += "\n"
        lengths[-1] += 1
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    line_ends = np.cumsum(lengths)
    line_starts = line_ends - lengths
    # Each line ends in its only newline; no other control character may appear.
    if (raw[line_ends - 1] != _NEWLINE).any() or np.count_nonzero(raw < _SPACE) != len(lines):
        return None
    backslashes = np.flatnonzero(raw == _BACKSLASH)
    if not np.isin(raw[backslashes + 1], _SIMPLE_ESCAPE_BYTES).all():
        return None
    # So every quote delimits a string. The same number on each line, within the line:
    quotes = np.flatnonzero(raw == _QUOTE)
    per_line = lines[0].count('"')
    if len(quotes) != per_line * len(lines):
        return None
    quotes = quotes.reshape(len(lines), per_line)
    # (The segment checks below would refuse a misaligned chunk too; this says why.)
    if (quotes[:, 0] < line_starts).any() or (quotes[:, -1] >= line_ends).any():
        return None
    layout = _layout(lines[0], quotes[0] - line_starts[0], first)
    if layout is None:
        return None
    variable, data_string, health_string = layout
    # Fixed segments: from the line start, or a variable string's closing quote, to the next
    # variable string's opening quote, and from the last one to the line end.
    opens = quotes[:, [2 * k for k in variable]]
    closes = quotes[:, [2 * k + 1 for k in variable]]
    segment_starts = np.column_stack((line_starts, closes))
    segment_ends = np.column_stack((opens + 1, line_ends))
    segment_lengths = segment_ends - segment_starts
    if (segment_lengths != segment_lengths[0]).any():
        return None
    for column, size in enumerate(segment_lengths[0]):
        found = np.lib.stride_tricks.sliding_window_view(raw, size)[segment_starts[:, column]]
        if (found != found[0]).any():
            return None
    if health_string is not None and _any_health_check(raw, quotes, health_string):
        return None
    escapes = np.unique(raw[backslashes + 1]).tobytes().decode("ascii")
    return _data_text(
        text, raw, quotes[:, 2 * data_string], quotes[:, 2 * data_string + 1], escapes
    )


def _layout(
    line: str, quotes: np.ndarray, match: re.Match[str]
) -> tuple[list[int], int, int | None] | None:
    """Of the first line's strings (numbered by their opening quote): the variable ones (every
    value but the content type and encoding), the data one and the inferenceId value, if any."""
    opening = {int(q): k for k, q in enumerate(quotes[::2])}
    content_type, data, encoding = (opening[match.start(g) - 1] for g in (1, 2, 3))
    metadata_start, metadata_end = match.span(4)
    variable, health = [], []
    for k in range(len(opening)):
        after = line[int(quotes[2 * k + 1]) + 1 :].lstrip(" \t\r\n")[:1]
        if after == ":":  # a key
            opened = int(quotes[2 * k])
            if (
                metadata_start < opened < metadata_end
                and line[opened + 1 : int(quotes[2 * k + 1])] == "inferenceId"
            ):
                health.append(k + 1)
        elif k not in (content_type, encoding):
            variable.append(k)
    if len(health) > 1:
        return None
    return variable, data, health[0] if health else None


def _any_health_check(raw: np.ndarray, quotes: np.ndarray, string: int) -> bool:
    """Whether some line's inferenceId is the health check's (escapes here cannot spell it)."""
    starts, ends = quotes[:, 2 * string] + 1, quotes[:, 2 * string + 1]
    wanted = np.frombuffer(HEALTH_CHECK_INFERENCE_ID.encode(), dtype=np.uint8)
    same_length = starts[ends - starts == len(wanted)]
    if not len(same_length):
        return False
    found = raw.take(same_length[:, None] + np.arange(len(wanted)))
    return bool((found == wanted).all(axis=1).any())


def _data_text(
    text: str, raw: np.ndarray, opens: np.ndarray, closes: np.ndarray, escapes: str
) -> str | None:
    """The data strings' bodies, unescaped and joined; None unless each non-empty one ends in
    an escaped newline (then joining needs no separator, as capture_csv_text would add)."""
    empty = closes - opens == 1
    newline_last = (raw[closes - 2] == _BACKSLASH) & (raw[closes - 1] == ord("n"))
    if not (empty | newline_last).all():
        return None
    data = "".join([text[o + 1 : c] for o, c in zip(opens.tolist(), closes.tolist(), strict=True)])
    for escape in escapes:  # only those present; none hides a backslash, so order is free
        data = data.replace("\\" + escape, _SIMPLE_ESCAPES[escape])
    return data


def capture_payloads(lines: list[str], tally: Tally) -> list[str]:
    """The CSV payloads of capture lines, in line order; blank lines are ignored, unusable
    lines counted (bad_capture_json, not_csv, bad_base64) or left out (health checks)."""
    payloads: list[str] = []
    escaped: list[int] = []  # positions in payloads of CSV data still JSON-escaped
    for line in lines:
        match = EVENT.fullmatch(line)
        if match is not None:
            content_type, data, encoding, metadata = match.groups()
            if _is_health_check(metadata):
                tally.health_checks += 1
                continue
            encoding = _unescaped(encoding).upper()
            if encoding == "CSV" and "csv" in _unescaped(content_type).lower():
                escaped.append(len(payloads))
                payloads.append(data)
                continue
            payload = _payload(_unescaped(data), encoding, _unescaped(content_type), tally)
        elif line.isspace():
            continue
        else:
            try:
                payload = event_payload(json.loads(line), tally)
            except ValueError:
                tally.malformed["bad_capture_json"] += 1
                continue
        if payload:
            payloads.append(payload)
    if escaped:  # every body matched _BODY, so the array is valid JSON
        bodies = json.loads('["' + '","'.join(payloads[i] for i in escaped) + '"]')
        for position, text in zip(escaped, bodies, strict=True):
            payloads[position] = text
    return [p for p in payloads if p]


def _is_health_check(metadata: str) -> bool:
    """Whether an eventMetadata object's text (valid JSON) has the health check's inferenceId.
    Without a backslash every string is written as it reads, so that id needs "health"."""
    if "health" not in metadata and "\\" not in metadata:
        return False
    return bool(json.loads(metadata).get("inferenceId") == HEALTH_CHECK_INFERENCE_ID)


def _unescaped(body: str) -> str:
    return json.loads(f'"{body}"') if "\\" in body else body


def event_payload(event: Any, tally: Tally) -> str | None:
    """The CSV text of one decoded capture event's endpointInput, or None (counted) if
    unusable."""
    try:
        endpoint_input = event["captureData"]["endpointInput"]
        data = endpoint_input["data"]
        encoding = str(endpoint_input.get("encoding", "CSV")).upper()
        content_type = str(endpoint_input.get("observedContentType", "text/csv"))
    except (KeyError, TypeError, AttributeError):
        tally.malformed["bad_capture_json"] += 1
        return None
    metadata = event.get("eventMetadata")
    if isinstance(metadata, dict) and metadata.get("inferenceId") == HEALTH_CHECK_INFERENCE_ID:
        tally.health_checks += 1
        return None
    return _payload(data, encoding, content_type, tally)


def _payload(data: Any, encoding: str, content_type: str, tally: Tally) -> str | None:
    if "csv" not in content_type.lower() or not isinstance(data, str):
        tally.malformed["not_csv"] += 1
        return None
    if encoding == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            tally.malformed["bad_base64"] += 1
            return None
    if encoding != "CSV":
        tally.malformed["not_csv"] += 1
        return None
    return data
