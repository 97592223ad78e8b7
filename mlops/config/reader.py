"""Reading YAML for the configuration: a mapping reader that remembers the dotted path of
each field for one-line errors, and a loader that refuses duplicate keys."""

from __future__ import annotations

import re
from typing import Any, NoReturn, TypeVar

import yaml

from mlops.config.model import ConfigError
from mlops.config_rules import fraction_problem

T = TypeVar("T")


class Reader:
    """Reads one YAML mapping, remembering the dotted path for error messages."""

    def __init__(self, source: str, path: str, data: object) -> None:
        self.source, self.path = source, path
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        where = f"{self.path}.{field}" if field and self.path else (field or self.path)
        raise ConfigError(f"{self.source}: {where or '(top level)'}: {message}")

    def _get(self, field: str, default: object) -> object:
        self.seen.add(field)
        if field not in self.data:
            if default is _REQUIRED:
                self.fail("missing required field", field)
            return default
        return self.data[field]

    def typed(self, field: str, kind: type[T], default: object = None) -> T:
        value = self._get(field, _REQUIRED if default is None else default)
        # YAML booleans are ints in Python: refuse them where a number is wanted.
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            self.fail(f"must be {kind.__name__}, got {_type_name(value)}", field)
        return value  # type: ignore[return-value]

    def number(
        self, field: str, kind: type[T], low: float, high: float, default: object = None
    ) -> T:
        value = self.typed(field, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            self.fail(f"must be between {low:g} and {high:g}, got {value}", field)
        return value

    def choice(self, field: str, allowed: tuple[str, ...], default: object = None) -> str:
        value = self.typed(field, str, default)
        if value not in allowed:
            self.fail(f"must be one of {', '.join(allowed)}; got {value!r}", field)
        return value

    def fraction(self, field: str, default: float) -> float:
        value = self.typed(field, float, default)
        problem = fraction_problem(value)
        if problem:
            self.fail(problem, field)
        return value

    def matching(self, field: str, pattern: re.Pattern[str], allowed: str) -> str:
        value = self.typed(field, str)
        if not pattern.match(value):
            self.fail(f"must be {allowed}; got {value!r}", field)
        return value

    def child(self, field: str) -> Reader:
        return Reader(
            self.source, f"{self.path}.{field}" if self.path else field, self._get(field, _REQUIRED)
        )

    def optional_child(self, field: str) -> Reader | None:
        if field not in self.data:
            self.seen.add(field)
            return None
        return self.child(field)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            allowed = ", ".join(sorted(self.seen))
            self.fail(f"unknown field {unknown[0]!r} (allowed: {allowed})", None)


_REQUIRED = object()


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (YAML itself keeps the last silently)."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise ConfigError(
                f"line {key_node.start_mark.line + 1}: duplicate key {key!r} (names must be unique)"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)
