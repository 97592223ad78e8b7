"""The mlops command: argument mistakes and the local drift baseline lookup."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from mlops import cli
from mlops.local.registry import LocalRegistry


def _register(registry: LocalRegistry, tmp_path: Path, group: str, baseline: str | None) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"model")
    files = {}
    if baseline is not None:
        path = tmp_path / f"{group}-{baseline}.json"
        path.write_text(baseline)
        files[cli.BASELINE_METRIC] = path
    registry.register(
        group=group,
        model_data=model,
        status="Approved",
        image="img",
        metrics={},
        metric_files=files,
    )


def test_local_drift_takes_the_newest_registered_baseline(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    _register(registry, tmp_path, "group-b", "first")
    _register(registry, tmp_path, "group-a", "second")  # newer, though earlier by name
    _register(registry, tmp_path, "group-a", None)  # newest, but without a baseline
    assert cli._latest_baseline(tmp_path / "registry").read_text() == "second"


def test_local_drift_without_any_registered_model_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["local", "drift", "--registry", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: no registered model with a baseline") and err.count("\n") == 1


def test_local_run_refuses_a_data_folder_without_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["local", "run", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "has no flights.csv (or flights.csv.zip)" in capsys.readouterr().err


def test_run_folders_are_named_from_the_cli_clock_in_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timedelta, timezone

    from helpers import bundled_data_dir

    from mlops.local import run_local as run_local_module
    from mlops.local.runner import RunSummary

    moment = datetime(2026, 11, 26, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    monkeypatch.setattr(cli, "clock", lambda: moment)
    monkeypatch.setattr(cli, "DEFAULT_RUNS", tmp_path / "runs")
    seen: dict[str, object] = {}

    def fake_run_local(root, data, out, registry, env, *, parameters, clock, feature_store):  # type: ignore[no-untyped-def]
        seen.update(out=out, clock=clock, parameters=parameters, store=feature_store)
        return RunSummary(
            status="Succeeded",
            pipeline="p",
            execution_id="e",
            started_at="",
            seconds=0.0,
            steps=[],
            registered_model=None,
            failure_reason=None,
        )

    monkeypatch.setattr(run_local_module, "run_local", fake_run_local)
    assert cli.main(["local", "run", "--data", str(bundled_data_dir())]) == 0
    assert seen["out"] == tmp_path / "runs" / "run-20261126T120005Z"
    assert seen["clock"] is cli.clock  # the registry and the run read the same clock
    assert seen["store"] == cli.DEFAULT_FEATURE_STORE  # the store `mlops local serve` reads


def _data_folder(tmp_path: Path, flights_zip: bytes) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "weather.csv").write_text("origin,year\n")
    (data / "planes.csv").write_text("tailnum\n")
    (data / "flights.csv.zip").write_bytes(flights_zip)
    return data


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"this is not a zip archive", "is not a readable zip archive"),
        (b"", "is not a readable zip archive"),
        (None, "does not contain flights.csv"),  # a valid zip of something else
    ],
)
def test_local_run_refuses_a_corrupt_flights_zip_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, says: str
) -> None:
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("other.csv", "x\n")
        content = buffer.getvalue()
    data = _data_folder(tmp_path, content)
    assert cli.main(["local", "run", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and says in err and err.count("\n") == 1


def test_damaged_zip_content_is_one_error_and_no_half_written_table(tmp_path: Path) -> None:
    """The directory reads fine but the member's bytes are damaged (CRC or deflate error)."""
    from mlops.local.run_local import LocalRunError, stage_raw_data

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("flights.csv", "year,month\n" * 5000)
    raw = bytearray(buffer.getvalue())
    start = raw.find(b"flights.csv") + len("flights.csv")  # the local header's data
    for i in range(start + 10, start + 60):
        raw[i] ^= 0xFF
    data = _data_folder(tmp_path, bytes(raw))
    target = tmp_path / "staged"
    with pytest.raises(LocalRunError, match="is not a readable zip archive"):
        stage_raw_data(data, target)
    assert not (target / "flights.csv").exists()


def test_local_drift_with_a_corrupt_package_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "registry" / "flightdelay-dev" / "v1"
    folder.mkdir(parents=True)
    for content in ("{not json", "[1, 2]", '{"version": 1}', "\udcff"):
        (folder / "package.json").write_bytes(content.encode("utf-8", "surrogateescape"))
        assert cli.main(["local", "drift", "--registry", str(tmp_path / "registry")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ERROR: ") and "package.json is corrupt" in err, err
        assert err.count("\n") == 1


def test_promote_pins_the_hub_registry_region(capsys: pytest.CaptureFixture[str]) -> None:
    """`mlops promote` knows prod's hub (dev, us-east-1): another --region is refused."""
    code = cli.main(["promote", "--env", "prod", "--version", "4", "--region", "eu-west-1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        "ERROR: --region eu-west-1: the registry of prod is dev's in us-east-1; "
        "omit --region or pass us-east-1\n"
    )


def test_local_run_refuses_an_out_folder_holding_another_run_and_leaves_it_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import bundled_data_dir

    earlier = tmp_path / "run-earlier"
    (earlier / "cdk.out").mkdir(parents=True)
    (earlier / "cdk.out" / "manifest.json").write_text("{}")
    (earlier / "run-summary.json").write_text('{"status": "Succeeded"}')
    argv = ["local", "run", "--data", str(bundled_data_dir()), "--out", str(earlier)]
    assert cli.main([*argv, "--registry", str(tmp_path / "registry")]) == 2
    assert capsys.readouterr().err == f"ERROR: --out {earlier} is not empty; give a new folder\n"
    assert (earlier / "cdk.out" / "manifest.json").read_text() == "{}"
    assert (earlier / "run-summary.json").read_text() == '{"status": "Succeeded"}'
    assert sorted(p.name for p in earlier.iterdir()) == ["cdk.out", "run-summary.json"]


def test_local_run_refuses_an_out_path_that_is_a_file_or_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import bundled_data_dir

    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    data = ["local", "run", "--data", str(bundled_data_dir())]
    assert cli.main([*data, "--out", str(a_file)]) == 2
    assert capsys.readouterr().err == f"ERROR: --out {a_file} is a file; give a new folder\n"
    assert a_file.read_text() == "kept"
    below_a_file = a_file / "run"
    assert cli.main([*data, "--out", str(below_a_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: --out {below_a_file}: cannot create the folder (")
    assert err.endswith("); give a writable new folder\n") and err.count("\n") == 1


def test_a_new_or_empty_out_folder_is_taken(tmp_path: Path) -> None:
    from mlops.local.run_local import new_output_folder

    empty = tmp_path / "empty"
    empty.mkdir()
    assert new_output_folder(empty) == empty
    nested = tmp_path / "a" / "b" / "run"
    assert new_output_folder(nested) == nested and nested.is_dir()
    (empty / "one-file").write_text("")
    with pytest.raises(ValueError, match="is not empty"):
        new_output_folder(empty)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"training_environment: [\n", "malformed YAML"),
        (b"\xff\xfe", "not UTF-8 text (byte 0xff at offset 0)"),
    ],
)
def test_local_run_refuses_a_corrupt_configuration_in_one_line_before_the_synth(
    tmp_path: Path, content: bytes, says: str
) -> None:
    from helpers import bundled_data_dir

    from mlops.local.run_local import run_local
    from mlops.local.runner import LocalRunError

    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / "config" / "environments.yaml").write_bytes(content)
    with pytest.raises(LocalRunError) as refused:
        run_local(repo, bundled_data_dir(), tmp_path / "out", tmp_path / "registry")
    message = str(refused.value)
    assert message.startswith(f"{repo / 'config' / 'environments.yaml'}: ") and says in message
    assert "\n" not in message and not (tmp_path / "out").exists()


def test_local_run_runs_the_configured_training_environment() -> None:
    from mlops.local.run_local import _training_environment

    assert _training_environment(cli.ROOT) == "dev"


def test_local_run_refuses_a_registry_that_is_a_file_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import bundled_data_dir

    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    out = tmp_path / "out"
    argv = ["local", "run", "--data", str(bundled_data_dir()), "--out", str(out)]
    assert cli.main([*argv, "--registry", str(a_file)]) == 2
    assert capsys.readouterr().err == f"ERROR: --registry {a_file} is a file; give a folder\n"
    assert a_file.read_text() == "kept" and not out.exists()


def test_local_run_takes_an_existing_registry_folder(tmp_path: Path) -> None:
    from helpers import bundled_data_dir

    from mlops.local.run_local import run_local
    from mlops.local.runner import LocalRunError

    repo = tmp_path / "repo"  # a configuration that stops the run just after the registry
    (repo / "config").mkdir(parents=True)
    (repo / "config" / "environments.yaml").write_text("training_environment: [\n")
    registry = tmp_path / "registry"
    registry.mkdir()
    with pytest.raises(LocalRunError, match="malformed YAML"):
        run_local(repo, bundled_data_dir(), tmp_path / "out", registry)


def test_local_run_refused_for_its_data_leaves_no_out_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no-tables"
    empty.mkdir()
    out = tmp_path / "out"
    argv = ["local", "run", "--data", str(empty), "--out", str(out)]
    assert cli.main([*argv, "--registry", str(tmp_path / "registry")]) == 2
    assert capsys.readouterr().err.startswith(f"ERROR: data folder {empty} has no flights.csv")
    assert not out.exists()
