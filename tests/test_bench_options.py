"""The synth benchmarks' shared options (bench/synth_rounds.py parse_options) and what
bench_jsii_node.py's --compare asks of the other checkout: a bad option ends the run with
one error line naming the option and what it needs, before anything is measured."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # the benchmarks import each other as siblings
synth_rounds = importlib.import_module("synth_rounds")
bench_jsii_node = importlib.import_module("bench_jsii_node")


def _rejected(
    capsys: pytest.CaptureFixture[str], run: Callable[[list[str]], object], argv: list[str]
) -> str:
    """The error line of a rejected command line (argparse prints usage, then it; exit 2)."""
    with pytest.raises(SystemExit) as stop:
        run(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _parse(argv: list[str]) -> object:
    return synth_rounds.parse_options("a benchmark", argv)


@pytest.mark.parametrize("rounds", ["0", "-1"])
def test_fewer_than_one_round_is_refused(rounds: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = _rejected(capsys, _parse, ["--rounds", rounds])
    assert line.endswith(f"error: --rounds {rounds}: must be at least 1")


def test_one_round_is_the_least_accepted_and_the_default_is_the_callers() -> None:
    assert synth_rounds.parse_options("a benchmark", ["--rounds", "1"]).rounds == 1
    assert synth_rounds.parse_options("a benchmark", [], rounds=40).rounds == 40


def test_compare_needs_an_app_py_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _rejected(capsys, _parse, ["--compare", str(tmp_path)])
    assert line.endswith(f"error: --compare {tmp_path}: no app.py there")


def test_compare_with_an_app_py_is_accepted_and_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "app.py").write_text("")
    monkeypatch.chdir(tmp_path)
    args = synth_rounds.parse_options("a benchmark", ["--compare", "checkout"])
    assert args.compare == tmp_path.resolve() / "checkout"
    assert args.compare.is_absolute()
    assert synth_rounds.parse_options("a benchmark", []).compare is None


def test_jsii_node_compare_needs_the_wrapper_not_an_app_py(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench_jsii_node.py runs only DIR/scripts/jsii-node: an app.py there is not enough."""
    (tmp_path / "app.py").write_text("")
    line = _rejected(capsys, bench_jsii_node.main, ["--compare", str(tmp_path)])
    assert line.endswith(f"error: --compare {tmp_path}: no scripts/jsii-node there")


def test_jsii_node_compare_runs_the_other_checkouts_wrapper_without_an_app_py(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "other"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "jsii-node", checkout / "scripts" / "jsii-node")
    assert bench_jsii_node.main(["--rounds", "1", "--compare", str(checkout)]) == 0
    out = capsys.readouterr().out
    assert "jsii-node of other" in out
    assert "saving per synth:" in out


def test_a_benchmark_with_nothing_to_compare_has_no_compare_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text("")

    def no_compare(argv: list[str]) -> object:
        return synth_rounds.parse_options("a benchmark", argv, compare_needs=None)

    line = _rejected(capsys, no_compare, ["--compare", str(tmp_path)])
    assert "unrecognized arguments: --compare" in line
    assert no_compare(["--rounds", "2"]).rounds == 2  # type: ignore[attr-defined]
