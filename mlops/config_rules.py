"""What the AWS services accept, as plain checks for mlops/config/: each returns None when
the value is fine, else one phrase saying what is wrong and what is allowed.

Sources: EventBridge schedule expressions (rate: a positive integer, singular unit for 1 and
plural otherwise; cron: six fields with the ranges below, one of day-of-month/day-of-week
must be '?'), S3 bucket naming (no 'xn--', 'sthree-' or 'amzn-s3-demo-' prefix; our names
embed the project and environment), SageMaker resource names (no trailing '-'), and tag
values (Unicode letters, digits, spaces and _ . : / = + - @, at most 256 characters).
"""

from __future__ import annotations

import re
import unicodedata

RATE_UNITS = {"minute": "minutes", "hour": "hours", "day": "days"}
_RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>[a-z]+)\)$")
_CRON = re.compile(r"^cron\((?P<fields>[^()]*)\)$")

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, low, high, names for 1.., extra special values)
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, ()),
)
RESERVED_NAME_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
TAG_VALUE_MAX = 256
_TAG_PUNCTUATION = set("_.:/=+-@")


def rate_problem(expression: str) -> str | None:
    match = _RATE.match(expression)
    if not match:
        return "rate(N unit) with unit minute(s), hour(s) or day(s)"
    value, unit = int(match["value"]), match["unit"]
    singular = {plural: single for single, plural in RATE_UNITS.items()}
    base = singular.get(unit, unit)
    if base not in RATE_UNITS:
        return f"unit {unit!r} is not one of minute(s), hour(s), day(s)"
    if value < 1:
        return f"the rate must be at least 1, got {value}"
    wanted = base if value == 1 else RATE_UNITS[base]
    if unit != wanted:
        return f"rate({value} {unit}) must be written rate({value} {wanted})"
    return None


def cron_problem(expression: str) -> str | None:
    match = _CRON.match(expression)
    if not match:
        return "cron(minutes hours day-of-month month day-of-week year)"
    fields = match["fields"].split()
    if len(fields) != len(_CRON_FIELDS):
        return f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value, name, low, high, names)
        if problem:
            return problem
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return "exactly one of day-of-month and day-of-week must be '?'"
    return None


def _cron_field_problem(
    value: str, name: str, low: int, high: int, names: tuple[str, ...]
) -> str | None:
    allowed = f"{name} must be {low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    if value == "?":
        return None if name in ("day-of-month", "day-of-week") else f"'?' is not allowed in {name}"
    for item in value.split(","):
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return f"{name}: step {step!r} must be a positive integer"
        if base == "*" or (name == "day-of-month" and base in ("L", "LW")):
            continue
        if name == "day-of-month" and base.endswith("W"):
            base = base[:-1]
        if name == "day-of-week":
            if base == "L":
                continue
            if base.endswith("L"):
                base = base[:-1]
            elif "#" in base:
                base, _, nth = base.partition("#")
                if not (nth.isdigit() and 1 <= int(nth) <= 5):
                    return f"{name}: '#{nth}' must be #1-#5"
        for bound in base.split("-") if base.count("-") == 1 else [base]:
            number = _cron_number(bound, names)
            if number is None or not low <= number <= high:
                return f"{allowed}; got {value!r}"
    return None


def _cron_number(text: str, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text.upper() in names:
        return names.index(text.upper()) + 1
    return None


def schedule_problem(expression: str) -> str | None:
    """A rate(...) or cron(...) EventBridge schedule expression."""
    if expression.startswith("cron("):
        return cron_problem(expression)
    return rate_problem(expression)


def name_problem(name: str) -> str | None:
    """Project and environment names: they go into bucket, endpoint and pipeline names."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,19}", name):
        return "lowercase letters, digits and dashes (2-20), starting with a letter"
    if name.endswith("-"):
        return "must not end with '-' (SageMaker names end with a letter or digit)"
    for prefix in RESERVED_NAME_PREFIXES:
        if name.startswith(prefix):
            return f"must not start with {prefix!r} (reserved by S3 for bucket names)"
    return None


def tag_value_problem(value: str) -> str | None:
    if len(value) > TAG_VALUE_MAX:
        return f"at most {TAG_VALUE_MAX} characters, got {len(value)}"
    for char in value:
        category = unicodedata.category(char)
        if not (category[0] in "LNZ" or char in _TAG_PUNCTUATION):
            return (
                f"character {char!r} is not allowed in a tag value (allowed: letters, digits, "
                "spaces and _ . : / = + - @)"
            )
    return None


def fraction_problem(value: float) -> str | None:
    """A share of rows (a join's least match rate): above 0 (0 would check nothing) and at
    most 1 (every row)."""
    if not 0.0 < value <= 1.0:
        return f"must be a fraction greater than 0 and at most 1 (e.g. 0.9 = 90%), got {value:g}"
    return None


def branch_problem(branch: str) -> str | None:
    """A git branch name the source action can track (git check-ref-format, in short)."""
    if not branch.strip():
        return "must name a branch, got an empty string"
    if any(c.isspace() or c in "~^:?*[\\" or ord(c) < 32 for c in branch):
        return f"{branch!r} is not a git branch name (no spaces or any of ~^:?*[\\)"
    if branch.startswith(("-", "/")) or branch.endswith(("/", ".", ".lock")) or ".." in branch:
        return f"{branch!r} is not a git branch name"
    return None
