"""bench/mutants.py (`make mutants`) is not run by CI; these checks are: every mutant must
still apply to the code it names (a refactor that moves a snippet would otherwise stop the
mutation check at that mutant, as a preprocess split once did) and name tests that exist."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
mutants = importlib.import_module("mutants")


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda mutant: mutant.name)
def test_each_mutant_applies_once_and_changes_the_code(mutant) -> None:
    source = (ROOT / mutant.path).read_text()
    assert source.count(mutant.old) == 1, f"{mutant.name}: snippet not found once in {mutant.path}"
    assert mutant.old != mutant.new


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda mutant: mutant.name)
def test_each_mutant_names_existing_tests(mutant) -> None:
    assert mutant.tests
    for test in mutant.tests:
        assert (ROOT / test.split("::")[0]).is_file(), f"{mutant.name}: no {test}"


def test_a_moved_snippet_stops_the_run_without_touching_the_file() -> None:
    path = ROOT / "pipeline_steps" / "preprocess.py"
    before = path.read_text()
    moved = mutants.Mutant("moved", "pipeline_steps/preprocess.py", "no such code", "x", ())
    with pytest.raises(SystemExit, match="moved: expected the snippet once"):
        mutants.run_mutant(moved)
    assert path.read_text() == before
