"""Notebooks are stored clean, with one literal `parameters` cell right after the imports whose keys
and values are the default profile's; no function or class definitions. Each chapter runs standalone
with the papermill command of the README and top to bottom as Jupyter runs it (slow: minutes)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from conftest import cell_python

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
            tree = ast.parse(cell_python(c))
            defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, f"{nb.name} defines {[getattr(d, 'name', 'lambda') for d in defs]}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_the_title(nb):
    first = _cells(nb)[0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_asks_for_the_project_kernel(nb):
    spec = json.loads(nb.read_text(encoding="utf-8"))["metadata"]["kernelspec"]
    # scripts/setup.sh registers the kernel
    assert spec == {"display_name": "Python (hzlib)", "language": "python", "name": "hzlib"}


def _errors(executed) -> list:
    return [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_standalone_with_papermill_and_a_profile_file(smoke_book, nb, tmp_path):
    """``papermill notebooks/NN_….ipynb out.ipynb -f profiles/smoke.yml`` in the study's folder, after
    the smoke run (a chapter reads what the chapters before it wrote)."""
    root, _ = smoke_book
    out = tmp_path / nb.name
    papermill = Path(sys.executable).with_name("papermill")
    run = subprocess.run([str(papermill), f"notebooks/{nb.name}", str(out), "-f", "profiles/smoke.yml"],
                         cwd=root, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, f"{nb.name} failed standalone:\n{run.stderr[-4000:]}"
    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert not _errors(executed)
    assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_top_to_bottom_as_in_jupyter(smoke_book, nb):
    """As a reader runs it: the kernel starts in ``notebooks/``, nothing is injected, the reader has
    typed the smoke profile's values into the parameters cell."""
    root, _ = smoke_book
    book = nbformat.read(root / "notebooks" / nb.name, as_version=4)
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    smoke = yaml.safe_load((root / "profiles" / "smoke.yml").read_text(encoding="utf-8"))
    params[0].source = "\n".join(f"{k} = {v!r}" for k, v in smoke.items())
    NotebookClient(book, kernel_name="hzlib", timeout=1200,
                   resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    assert not _errors(book)
    assert not (root / "notebooks" / "data").exists() and not (root / "notebooks" / "artifacts").exists()


MAX_CELL_LINES = 15  # a code cell is narrative plus a few calls; the parameters cell (literals) is exempt
MAX_LOOP_LINES = 3  # a for/while loop or a comprehension, from its first line to its last


def _code_cells(nb):
    return [c for c in _cells(nb)
            if c["cell_type"] == "code" and "parameters" not in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(nb):
    lines = [len("".join(c["source"]).strip().splitlines()) for c in _code_cells(nb)]
    long = {i: n for i, n in enumerate(lines) if n > MAX_CELL_LINES}
    assert not long, f"{nb.name}: code cells (index: lines) longer than {MAX_CELL_LINES} lines: {long}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_loops_are_short(nb):
    kinds = (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    long = [(i, type(n).__name__, n.lineno) for i, c in enumerate(_code_cells(nb))
            for n in ast.walk(ast.parse(cell_python(c))) if isinstance(n, kinds)
            and n.end_lineno - n.lineno + 1 > MAX_LOOP_LINES]
    assert not long, f"{nb.name}: loops longer than {MAX_LOOP_LINES} lines (cell, kind, line): {long}"


def test_the_limits_catch_what_they_should(tmp_path):
    """The two checks above fail on a long cell and on a long loop."""
    body = "\n".join(f"x{i} = {i}" for i in range(MAX_CELL_LINES + 1))
    loop = "for i in range(3):\n    a = i\n    b = i\n    c = i\n"
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": body, "metadata": {}},
                                        {"cell_type": "code", "source": loop, "metadata": {}}]}), encoding="utf-8")
    with pytest.raises(AssertionError, match="longer than 15 lines"):
        test_code_cells_are_short(nb)
    with pytest.raises(AssertionError, match="For"):
        test_loops_are_short(nb)
