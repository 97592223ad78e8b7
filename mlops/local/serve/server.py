"""The local HTTP server: POST /predict and GET /health, answered by front_door.route with
the local online store as the lookup and the served model as the endpoint."""

from __future__ import annotations

import importlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.local.feature_store import online as online_module
from mlops.local.serve.served_model import ServedModel

_API_DIR = str(Path(__file__).resolve().parents[3] / "lambda" / "inference_api")


def front_door() -> ModuleType:
    """The Lambda's own request logic (lambda/ is an asset folder, not a package)."""
    import mlops.local.feature_store  # noqa: F401  (puts pipeline_steps on the path)

    if _API_DIR not in sys.path:
        sys.path.insert(0, _API_DIR)
    return importlib.import_module("front_door")


def online_lookup(store: online_module.LocalOnlineStore) -> Any:
    """front_door's Lookup over the local online store (one query per group)."""
    api = front_door()
    import feature_records

    lock = threading.Lock()

    def lookup(weather_ids: list[str], tailnum: str | None) -> Any:
        with lock:  # one SQLite connection shared by the server's threads
            weather = store.get_records(feature_records.WEATHER_GROUP, weather_ids)
            planes = store.get_records(feature_records.PLANE_GROUP, [tailnum] if tailnum else [])
        newest = next((weather[i] for i in weather_ids if i in weather), None)
        plane = planes.get(tailnum or "")
        return api.OnlineFeatures(
            weather=newest,
            plane=plane,
            status={
                feature_records.WEATHER_GROUP: api.FOUND if newest else api.MISSING,
                feature_records.PLANE_GROUP: api.FOUND if plane else api.MISSING,
            },
        )

    return lookup


class InferenceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: ServedModel, store_dir: Path) -> None:
        # The store first: a failed bind calls server_close, which closes it.
        self.store = online_module.LocalOnlineStore(store_dir)
        super().__init__(address, _Handler)
        self.api = front_door()
        self.lookup = online_lookup(self.store)
        self.model = model
        self.model_lock = threading.Lock()

    def invoke(self, row: str, _inference_id: str | None = None) -> str:
        with self.model_lock:  # one booster, like one model server worker
            return self.model.invoke(row)

    def answer(self, method: str, path: str, body: bytes | None) -> Any:
        return self.api.route(method, path, body, self.lookup, self.invoke)

    def server_close(self) -> None:
        super().server_close()
        self.store.close()


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Keep-alive with headers and body in separate writes: without this, Nagle's
        # algorithm and the client's delayed ACK add about 40 ms to every response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.api.MAX_BODY_BYTES:
            # Not read: answer and drop the connection rather than buffer a large body.
            self.close_connection = True
            answer = self.server.api.Answer(413, {"error": "request body too large"})
        else:
            body = self.rfile.read(length) if length else None
            answer = self.server.answer(method, self.path, body)
        payload = (answer.json() + "\n").encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a load test would print a line per request
