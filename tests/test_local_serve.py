"""Local feature store (ingestion, offline layout, online semantics) and `mlops local serve`
on an ephemeral port, answering with the model's own inference.py."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from step_fixtures import bundled_data_dir, pack_model, write_small_model

from mlops import cli
from mlops.local.feature_store.ingest import IngestionError, ingest_file, ingest_folder
from mlops.local.feature_store.offline import read_offline
from mlops.local.feature_store.online import LocalOnlineStore
from mlops.local.registry import LocalRegistry
from mlops.local.serve.served_model import choose_package, load_served_model
from mlops.local.serve.server import InferenceServer, front_door

ROOT = Path(__file__).resolve().parents[1]
CLOCK = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731
# A flight of the bundled data (the health check's fixed request).
REQUEST = dict(front_door().HEALTH_REQUEST)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two days of weather and every plane, as the bundled files have them."""
    folder = tmp_path_factory.mktemp("raw")
    weather = pd.read_csv(bundled_data_dir() / "weather.csv", dtype=str, keep_default_na=False)
    weather.loc[weather["month"].eq("1") & weather["day"].isin(["1", "2"])].to_csv(
        folder / "weather.csv", index=False
    )
    shutil.copyfile(bundled_data_dir() / "planes.csv", folder / "planes.csv")
    return folder


@pytest.fixture(scope="module")
def store(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store")
    ingest_folder(folder, raw, clock=CLOCK)
    return folder


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> LocalRegistry:
    """An Approved package whose model.tar.gz is laid out as train.py packs it: a small real
    booster, feature_metadata.json, and code/inference.py from pipeline_steps."""
    folder = write_small_model(tmp_path_factory.mktemp("model"))
    archive = pack_model(folder, tmp_path_factory.mktemp("artifact"))
    local = LocalRegistry(tmp_path_factory.mktemp("registry"))
    local.register(group="flightdelay-dev", model_data=archive, status="Approved")
    local.register(group="flightdelay-dev", model_data=archive, status="Rejected")
    return local


@pytest.fixture(scope="module")
def server(registry: LocalRegistry, store: Path) -> Iterator[InferenceServer]:
    model = load_served_model(choose_package(registry, None, None))
    running = InferenceServer(("127.0.0.1", 0), model, store)  # port 0: any free port
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


def _call(
    server: InferenceServer, path: str, body: Any = None, method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    host, port = server.server_address[:2]
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(f"http://{host}:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ---- Ingestion -------------------------------------------------------------------------


def test_weather_records_are_known_at_hour_51_and_keyed_by_origin_and_hour(store: Path) -> None:
    online = LocalOnlineStore(store)
    record = online.get_records("weather", ["EWR#2013-01-01T06:00Z"])["EWR#2013-01-01T06:00Z"]
    online.close()
    assert record["observed_at"] == "2013-01-01T06:51:00Z"
    assert record["temp"] == "39.02" and "wind_gust" not in record


def test_the_offline_store_has_the_service_layout(store: Path) -> None:
    files = sorted((store / "offline-store" / "weather" / "data").rglob("*.parquet"))
    first = files[0].relative_to(store / "offline-store" / "weather" / "data")
    # Partitioned by the event time's hour (06:51 -> hour=06), one folder per hour.
    assert first.parts[:4] == ("year=2013", "month=01", "day=01", "hour=06")
    rows = read_offline(store, "weather")
    assert {"write_time", "api_invocation_time", "is_deleted"} <= set(rows.columns)
    assert rows["weather_id"].is_unique


def test_reingesting_the_same_file_changes_nothing(raw: Path, store: Path) -> None:
    before = read_offline(store, "weather").sort_values("weather_id").reset_index(drop=True)
    assert ingest_file(store, raw / "weather.csv", clock=CLOCK).skipped
    # Even without the ledger (a crash before it was written) the result is the same.
    for ledger in (store / "ingested").glob("*.json"):
        ledger.unlink()
    again = ingest_file(store, raw / "weather.csv", clock=CLOCK)
    assert not again.skipped and again.online_changed == 0  # same event times: not newer
    after = read_offline(store, "weather").sort_values("weather_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)


def test_the_online_store_keeps_the_newest_event_time(tmp_path: Path) -> None:
    online = LocalOnlineStore(tmp_path)

    def put(time: str, seats: str) -> int:
        record = {"tailnum": "N1", "registered_at": time, "seats": seats}
        return online.put_records("plane", [record], "tailnum", "registered_at")

    assert put("2000-01-01T00:00:00Z", "100.0") == 1
    assert put("1999-01-01T00:00:00Z", "50.0") == 0  # older: offline only
    assert put("2000-01-01T00:00:00Z", "60.0") == 0  # equal: offline only
    assert put("2000-01-01T00:00:01Z", "70.0") == 1  # newer
    assert online.get_records("plane", ["N1"])["N1"]["seats"] == "70.0"
    online.close()


def test_a_bad_raw_row_names_the_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "weather.csv").write_text("origin,time_hour,temp\nEWR,2013-01-01T06:00:00Z,warm\n")
    with pytest.raises(IngestionError, match=r"weather.csv: line 2: temp must be a number"):
        ingest_file(tmp_path / "store", tmp_path / "weather.csv", clock=CLOCK)
    (tmp_path / "flights.csv").write_text("x\n")
    with pytest.raises(IngestionError, match=r"no feature group is fed from flights\.csv"):
        ingest_file(tmp_path / "store", tmp_path / "flights.csv", clock=CLOCK)


# ---- Serving ---------------------------------------------------------------------------


def test_choose_package_is_the_newest_approved(registry: LocalRegistry) -> None:
    assert choose_package(registry, None, None).version == 1  # v2 is Rejected
    assert choose_package(registry, "flightdelay-dev", 2).version == 2


def test_predict_over_http_equals_scoring_the_model_in_process(
    server: InferenceServer, store: Path
) -> None:
    status, body = _call(server, "/predict", REQUEST)
    assert status == 200
    assert body["model_version"] == "1"
    assert body["features"] == {"weather": "found", "plane": "found"}
    # The same row, scored directly by the model's own inference functions.
    api = front_door()
    online = server.lookup(
        __import__("feature_records").weather_candidates(
            "EWR", datetime(2013, 1, 1, 10, 15, tzinfo=UTC)
        ),
        "N14228",
    )
    row = api.feature_row(api.parse_request(json.dumps(REQUEST)), online)
    direct = server.model.module.predict_fn([row.strip().split(",")], server.model.model)
    assert body["probability_delayed"] == pytest.approx(direct.probabilities[0], abs=1e-6)


def test_each_version_answers_with_its_own_label_from_the_model(
    registry: LocalRegistry, store: Path, tmp_path: Path
) -> None:
    """As on AWS: the model is started with MODEL_VERSION and names itself in each answer;
    the server passes that through. Two versions of the same bytes, two labels."""
    labels = []
    for version in (1, 2):
        model = load_served_model(
            registry.get("flightdelay-dev", version), tmp_path / f"v{version}"
        )
        assert model.invoke(_row_of(REQUEST)).rstrip("\n").endswith(f",{version}")
        running = InferenceServer(("127.0.0.1", 0), model, store)
        try:
            labels.append(running.answer("POST", "/predict", json.dumps(REQUEST).encode()))
        finally:
            running.server_close()
    assert [a.body["model_version"] for a in labels] == ["1", "2"]
    assert "MODEL_VERSION" not in os.environ  # set only while each model started


def _row_of(request: dict[str, Any]) -> str:
    api = front_door()
    return str(api.feature_row(api.parse_request(json.dumps(request)), api.OnlineFeatures()))


def test_unknown_plane_and_weather_take_the_missing_value_path(server: InferenceServer) -> None:
    far_future = {**REQUEST, "scheduled_departure": "2030-01-01T05:15:00-05:00", "tailnum": "N0NE"}
    status, body = _call(server, "/predict", far_future)
    assert status == 200
    assert body["features"] == {"weather": "missing", "plane": "missing"}


def test_errors_and_health(server: InferenceServer) -> None:
    assert _call(server, "/predict", {**REQUEST, "flight": "x"})[0] == 400
    assert _call(server, "/predict", b"x" * 5000)[0] == 413
    assert _call(server, "/nowhere", REQUEST)[0] == 404
    assert _call(server, "/health", method="GET") == (
        200,
        {"status": "healthy", "model_version": "1"},
    )


def test_serve_without_a_store_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["local", "serve", "--feature-store", str(tmp_path), "--port", "0"])
    assert code == 2
    assert "no online store" in capsys.readouterr().err


def test_mlops_local_ingest_reports_and_then_skips(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local", "ingest", "--data", str(raw), "--feature-store", str(tmp_path)]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "planes.csv -> plane: 3322 records, 3322 online" in first
    assert cli.main(argv) == 0
    assert "weather.csv already ingested" in capsys.readouterr().out


def test_mlops_local_ingest_without_the_tables_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["local", "ingest", "--data", str(tmp_path), "--feature-store", str(tmp_path / "s")]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"ERROR: {tmp_path} has no planes.csv, weather.csv"


def test_a_port_in_use_is_a_one_line_error(
    registry: LocalRegistry, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["local", "serve", "--port", str(port), "--feature-store", str(store)]
        code = cli.main([*argv, "--registry", str(registry.root)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"ERROR: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1
    assert "give another --port (0 picks a free one)" in err


def test_a_free_port_still_serves(registry: LocalRegistry, store: Path) -> None:
    model = load_served_model(choose_package(registry, None, None))
    running = InferenceServer(("127.0.0.1", 0), model, store)
    try:
        assert running.server_address[1] > 0 and running.store.count("plane") == 3322
    finally:
        running.server_close()


def test_a_corrupt_online_store_is_a_one_line_error_whose_advice_restores_it(
    raw: Path,
    store: Path,
    registry: LocalRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingested = tmp_path / "store"
    shutil.copytree(store, ingested)  # with its ingestion ledger, as a user's store has
    (ingested / "online.sqlite").write_bytes(b"not a database, just text\n" * 100)
    argv = ["local", "serve", "--port", "0", "--feature-store", str(ingested)]
    assert cli.main([*argv, "--registry", str(registry.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"ERROR: {ingested / 'online.sqlite'} is not a usable online store (")
    assert err.endswith(f"; delete the folder {ingested} and run `mlops local ingest` again\n")
    # Following it brings the records back; deleting only the file would not: the ledger
    # beside it skips every table already ingested.
    shutil.rmtree(ingested)
    assert cli.main(["local", "ingest", "--data", str(raw), "--feature-store", str(ingested)]) == 0
    assert LocalOnlineStore(ingested).count("plane") == 3322


def test_a_raw_table_that_is_not_utf8_is_a_one_line_error(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(raw, data)
    (data / "weather.csv").write_bytes((raw / "weather.csv").read_bytes()[:200] + b"\xff\n")
    argv = ["local", "ingest", "--data", str(data), "--feature-store", str(tmp_path / "s")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ERROR: {data / 'weather.csv'}: not UTF-8 text (byte 0xff); it must be a UTF-8 CSV "
        "file in the nycflights13 layout\n"
    )


@pytest.mark.parametrize("content", [b"", b"tailnum,year,type,manufacturer,model,engines,seats\n"])
def test_a_raw_table_without_rows_ingests_nothing_as_the_lambda_does(
    raw: Path, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(raw, data)
    (data / "planes.csv").write_bytes(content)
    argv = ["local", "ingest", "--data", str(data), "--feature-store", str(tmp_path / "s")]
    assert cli.main(argv) == 0
    assert "planes.csv -> plane: 0 records, 0 online, 0 offline files" in capsys.readouterr().out
    assert LocalOnlineStore(tmp_path / "s").count("plane") == 0


def test_a_feature_store_path_that_cannot_be_written_is_a_one_line_error(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["local", "ingest", "--data", str(raw), "--feature-store", str(blocker)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"ERROR: cannot write the feature store {blocker} (")
        and err.count("\n") == 1
    )
    assert err.rstrip().endswith("give a writable --feature-store folder")
    assert blocker.read_text() == "not a folder"


def test_ingesting_into_a_corrupt_online_store_is_a_one_line_error(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s"
    store.mkdir()
    (store / "online.sqlite").write_bytes(b"not a database, just text\n" * 100)
    argv = ["local", "ingest", "--data", str(raw), "--feature-store", str(store)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: {store / 'online.sqlite'} is not a usable online store (")
    assert err.count("\n") == 1
    assert not (store / "ingested").exists()  # nothing marked done: the next ingestion retries


def test_a_raw_table_the_csv_reader_refuses_is_a_one_line_error(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(raw, data)
    with (data / "planes.csv").open("a") as planes:
        planes.write("N1," + "x" * 200_000 + "\n")  # past the csv module's field limit
    argv = ["local", "ingest", "--data", str(data), "--feature-store", str(tmp_path / "s")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: {data / 'planes.csv'}: not a readable CSV file (field larger")
    assert err.count("\n") == 1
