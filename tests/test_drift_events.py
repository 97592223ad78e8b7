"""Capture lines read without decoding whole events give what json.loads of each line gives."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import drift_events
import pytest
from drift_capture import InputTally

ROWS = ["4,1,49,944.0,11.0,5.0", "4,0,2,746.0,18.0,,7.0", "9,2,11,1089.0,6.0,2.0,8.0"]


def sagemaker_line(row: str, index: int = 0, inference_id: str | None = None, **input_: Any):
    """One line as SageMaker writes it (compact, this key order)."""
    endpoint_input = {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": row + "\n",
        "encoding": "CSV",
        **input_,
    }
    metadata = {"eventId": f"5f1c-{index:04d}", "inferenceTime": "2026-11-30T12:00:00Z"}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    event = {
        "captureData": {
            "endpointInput": endpoint_input,
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.27",
                "encoding": "CSV",
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }
    return json.dumps(event, separators=(",", ":"))


def reference(lines: list[str]) -> tuple[str, dict[str, int], int]:
    """What the job did before: json.loads of each line, then the endpointInput's payload."""
    tally = InputTally()
    payloads = []
    for line in lines:
        if line.isspace():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            tally.malformed["bad_capture_json"] += 1
            continue
        payload = drift_events.event_payload(event, tally)
        if payload:
            payloads.append(payload)
    text = "".join(p if p.endswith("\n") else p + "\n" for p in payloads)
    return text, dict(+tally.malformed), tally.health_checks


def fast(lines: list[str]) -> tuple[str, dict[str, int], int]:
    tally = InputTally()
    text = drift_events.capture_csv_text(lines, tally)
    return text, dict(+tally.malformed), tally.health_checks


def as_file_lines(lines: list[str]) -> list[str]:
    """Lines as reading a file gives them: each ends in a newline but perhaps the last."""
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def canonical(count: int = 6) -> list[str]:
    return [sagemaker_line(ROWS[i % 3], i) for i in range(count)]


def test_sagemaker_lines_take_the_numpy_path_and_read_as_json_loads_reads_them() -> None:
    lines = as_file_lines(canonical())
    assert drift_events.uniform_chunk_text(lines) is not None
    assert fast(lines) == reference(lines) == ("".join(ROWS[i % 3] + "\n" for i in range(6)), {}, 0)
    assert all(drift_events.EVENT.fullmatch(line) for line in lines)


def test_json_dumps_spacing_also_takes_the_numpy_path() -> None:
    lines = [json.dumps(json.loads(line)) + "\n" for line in canonical()]
    assert ": " in lines[0] and drift_events.uniform_chunk_text(lines) is not None
    assert fast(lines) == reference(lines)


def _event(line: str) -> dict[str, Any]:
    return json.loads(line)


def _variants() -> dict[str, str]:
    """Valid and broken lines that differ from SageMaker's layout in one way each."""
    base = sagemaker_line(ROWS[0], 99)
    event = _event(base)
    reordered = {"eventVersion": "0", **event}
    reordered["captureData"]["endpointInput"] = dict(
        reversed(event["captureData"]["endpointInput"].items())
    )
    no_output = _event(base)
    del no_output["captureData"]["endpointOutput"]
    extra = {**_event(base), "customAttributes": "a=1"}
    numbers = _event(base)
    numbers["eventMetadata"]["sequence"] = 7
    unicode_data = base.replace(ROWS[0], "".join(f"\\u{ord(c):04x}" for c in ROWS[0]))
    b64 = base64.b64encode((ROWS[2] + "\n").encode()).decode()
    return {
        "other key order": json.dumps(reordered),
        "indented": json.dumps(_event(base), indent=2).replace("\n", " "),
        "tabs": base.replace(",", "\t,\t"),
        "no endpointOutput": json.dumps(no_output),
        "extra top-level key": json.dumps(extra),
        "a number in eventMetadata": json.dumps(numbers),
        "unicode escapes in data": unicode_data,
        "escaped slash in content type": base.replace("text/csv", "text\\/csv", 1),
        "escaped backslash in data": base.replace(ROWS[0], "4\\\\1,49"),
        "carriage return and tab escapes": base.replace("\\n", "\\r\\n").replace(",1,", ",\\t1,"),
        "escaped quote in output": base.replace('"0.27"', '"\\"0.27\\""'),
        "lower-case encoding": base.replace('"CSV"', '"csv"', 1),
        "other content type": base.replace("text/csv", "application/json", 1),
        "json encoding": base.replace('"CSV"', '"JSON"', 1),
        "base64": sagemaker_line(b64, encoding="BASE64"),
        "base64 with escaped slashes": sagemaker_line("+/+/", encoding="BASE64").replace(
            "/", "\\/"
        ),
        "bad base64": sagemaker_line("%%%", encoding="BASE64"),
        "health check": sagemaker_line(ROWS[1], inference_id="health-check"),
        "escaped health check": sagemaker_line(ROWS[1], inference_id="health-check").replace(
            "health-", "health\\u002d"
        ),
        "health check, every letter escaped": sagemaker_line(
            ROWS[1], inference_id="health-check"
        ).replace("health-check", "".join(f"\\u{ord(c):04x}" for c in "health-check")),
        "another inference id": sagemaker_line(ROWS[1], inference_id="health-check-2"),
        "duplicate inferenceId, health last": sagemaker_line(ROWS[1], inference_id="b").replace(
            '"inferenceId":"b"', '"inferenceId":"b","inferenceId":"health-check"'
        ),
        "duplicate inferenceId, health first": sagemaker_line(ROWS[1], inference_id="b").replace(
            '"inferenceId":"b"', '"inferenceId":"health-check","inferenceId":"b"'
        ),
        "duplicate data key": base.replace('"data":"', '"data":"1,2\\n","data":"', 1),
        "no trailing newline in data": base.replace("\\n", "", 1),
        "empty data": base.replace(ROWS[0] + "\\n", "", 1),
        "non-ASCII event id": base.replace("5f1c", "5f1ç"),
        "null encoding": base.replace('"CSV"', "null", 1),
        "truncated": base[:-30],
        "control character in a string": base.replace("5f1c", "5f\x01c"),
        "invalid escape": base.replace("\\n", "\\x", 1),
        "short unicode escape": base.replace("\\n", "\\u12", 1),
        "two events on a line": base + " " + base,
        "not an object": '"captureData"',
        "missing endpointInput": json.dumps({"captureData": {}, "eventVersion": "0"}),
        "blank": "   ",
    }


VARIANTS = _variants()


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_alone_among_and_repeated_reads_as_json_loads(name: str) -> None:
    variant = VARIANTS[name]
    others = canonical(4)
    for lines in (
        [variant],
        [variant] * 3,
        [*others[:2], variant, *others[2:]],
        [*others, variant],
        [variant, *others],
    ):
        lines = as_file_lines(lines)
        assert fast(lines) == reference(lines), lines


def test_variants_that_json_loads_refuses_are_counted_as_bad_json() -> None:
    broken = [
        "truncated",
        "control character in a string",
        "invalid escape",
        "two events on a line",
    ]
    for name in broken:
        assert fast([VARIANTS[name]])[1] == {"bad_capture_json": 1}, name
    _, _, health = fast(
        [VARIANTS["escaped health check"], VARIANTS["duplicate inferenceId, health last"]]
    )
    assert health == 2


def test_random_one_character_changes_read_as_json_loads_reads_them() -> None:
    """Every change the numpy path must notice: a byte changed anywhere in one line of a chunk
    in SageMaker's layout, including where it swaps a key, value, quote or escape."""
    generator = random.Random(15)
    lines = canonical(5)
    alphabet = '"\\{}[]:, \tnu0/aACSVBE\x01é'
    for _ in range(400):
        which = generator.randrange(len(lines))
        line = lines[which]
        at = generator.randrange(len(line))
        changed = line[:at] + generator.choice(alphabet) + line[at + 1 :]
        chunk = as_file_lines([*lines[:which], changed, *lines[which + 1 :]])
        assert fast(chunk) == reference(chunk), changed


def test_a_file_of_many_chunks_reads_the_same_either_way() -> None:
    generator = random.Random(7)
    names = list(VARIANTS)
    lines = canonical(200)
    for _ in range(40):
        lines.insert(generator.randrange(len(lines)), VARIANTS[generator.choice(names)])
    for size in (1, 7, 50, 1000):
        chunks = [as_file_lines(lines)[i : i + size] for i in range(0, len(lines), size)]
        expected = [reference(chunk) for chunk in chunks]
        assert [fast(chunk) for chunk in chunks] == expected


def test_a_health_check_among_lines_of_one_layout_is_left_out() -> None:
    ids = ["booking-1", "booking-22", "health-check", "health-chuck", "booking-3"]
    lines = as_file_lines(
        [sagemaker_line(ROWS[i % 3], i, inference_id=n) for i, n in enumerate(ids)]
    )
    assert drift_events.uniform_chunk_text(lines[:2]) is not None  # the layout is uniform
    assert drift_events.uniform_chunk_text(lines) is None  # but a health check is in it
    text, malformed, health = fast(lines)
    assert (text, malformed, health) == reference(lines)
    assert health == 1 and text.count("\n") == 4


def test_duplicate_inference_ids_are_read_as_json_loads_reads_them() -> None:
    def line(first: str, last: str) -> str:
        plain = sagemaker_line(ROWS[0], inference_id=first)
        return plain.replace(
            f'"inferenceId":"{first}"', f'"inferenceId":"{first}","inferenceId":"{last}"'
        )

    for pairs in ([("a", "b"), ("c", "health-check")], [("a", "b"), ("health-check", "c")]):
        lines = as_file_lines([line(*pair) for pair in pairs])
        assert fast(lines) == reference(lines)
    assert fast([line("x", "health-check")])[2] == 1


def test_lines_whose_layouts_differ_only_in_length_or_quote_count_are_read_one_by_one() -> None:
    spaced_end = sagemaker_line(ROWS[0]) + " "
    more_keys = sagemaker_line(ROWS[1]).replace('"eventVersion"', '"a":"b","eventVersion"')
    fewer_keys = sagemaker_line(ROWS[2]).replace('"mode":"INPUT",', "", 1)
    for lines in (
        [spaced_end, sagemaker_line(ROWS[1])],  # the last line's end is shorter than the first's
        [sagemaker_line(ROWS[0]), more_keys, fewer_keys],  # the quotes add up, per line they do not
        [sagemaker_line(ROWS[0]), fewer_keys, more_keys],
    ):
        lines = as_file_lines(lines)
        assert drift_events.uniform_chunk_text(lines) is None
        assert fast(lines) == reference(lines)
