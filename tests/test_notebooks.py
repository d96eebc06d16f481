"""Notebooks are stored clean, with one literal `parameters` cell right after the imports whose keys
and values are the default profile's; no function or class definitions."""
import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cells(nb):
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def test_there_are_chapters():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(nb):
    for c in _cells(nb):
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{nb.name} has outputs"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_literal_parameters_cell_after_imports_matching_default_profile(nb):
    code = [c for c in _cells(nb) if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [1], f"{nb.name}: the parameters cell must be the second code cell, after the imports"
    imports = ast.parse("".join(code[0]["source"]))
    assert all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in imports.body)
    values = {}
    for stmt in ast.parse("".join(code[1]["source"])).body:
        assert isinstance(stmt, ast.Assign), f"{nb.name}: only assignments of literals in the parameters cell"
        values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
    default = yaml.safe_load(open(ROOT / "profiles" / "default.yml"))
    assert values == default


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_definitions_in_notebooks(nb):
    for c in _cells(nb):
        if c["cell_type"] == "code":
            tree = ast.parse("".join(c["source"]))
            defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, f"{nb.name} defines {[getattr(d, 'name', 'lambda') for d in defs]}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_the_title(nb):
    first = _cells(nb)[0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")
