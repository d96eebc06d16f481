"""The "paper and this study" page: its rows name keys the notebooks really glue, paper values come
from hzlib.paper, only chapters that ran are pasted from, and the page builds without warnings."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from hzlib import paper
from hzlib.reproduce import Layout, prepare_book
from hzlib.summary import (
    ALL_ROWS,
    CHAPTER8_CLAIMS,
    CHAPTER8_ROWS,
    NOT_REPORTED,
    ROWS,
    Claim,
    Row,
    evaluation_versus,
    glued_keys,
    summary_markdown,
    versus_table,
)

ROOT = Path(__file__).resolve().parent.parent
# A glued key: the first argument of glue(), or a key of the dict a notebook or an hzlib function gives
# hzlib.report.glue_values (a dict key, "key": value, or an out[...] item)
GLUE_CALL = re.compile(r"""(?:\bglue\(\s*|^\s*\{?\s*|[{,]\s*|\bout\[)(f?)["']"""
                       r"""((?:ch\d\d|gc|km|ari|fig\d|zhen|fields|sweep)[^"'\s]*)["']\s*[]:,)]""", re.M)


def _source_keys(notebook: Path) -> tuple[set[str], list[re.Pattern]]:
    """Keys a stored notebook glues with a literal name, and the patterns of the names it glues with
    an f-string (each ``{...}`` field stands for a lower-case identifier part)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    src += "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "hzlib").glob("*.py"))
                      if p.name not in ("summary.py", "paper.py"))  # where the rows name the keys they read
    found = GLUE_CALL.findall(src)
    templates = [re.compile("".join("[a-z0-9_]+" if part.startswith("{") else re.escape(part)
                                    for part in re.split(r"(\{[^}]*\})", key))) for f, key in found if f]
    return {key for f, key in found if not f}, templates


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: r.key)
def test_every_key_of_a_row_is_glued_by_its_chapter_notebook(row):
    nb = ROOT / "notebooks" / f"{row.chapter}.ipynb"
    assert nb.exists(), f"{row.key}: no notebook {nb.name}"
    keys, templates = _source_keys(nb)
    for key in filter(None, (row.key, row.ref_key)):
        glued = key in keys or any(t.fullmatch(key) for t in templates)
        assert glued, f"{nb.name} does not glue {key!r} (renamed?); the summary page pastes it"
        assert key.startswith(f"ch{row.chapter[:2]}_"), f"{key}: summary keys carry their chapter's prefix"


def test_rows_are_unique_and_chapter8_keeps_its_key_scheme():
    pairs = [(r.key, r.ref_key) for r in ALL_ROWS]  # a value may be read against two references
    assert len(pairs) == len(set(pairs))
    assert {r.chapter[:2] for r in ROWS} == {f"{i:02d}" for i in range(1, 8)}
    assert CHAPTER8_ROWS
    for r in CHAPTER8_ROWS:  # its keys follow ch08_<protocol>_<model>_<metric>
        assert r.chapter == "08_evaluation" and re.fullmatch(r"ch08_[a-z0-9]+_[a-z0-9]+_[a-z0-9_]+", r.key)


def _paper_numbers() -> set[str]:
    table2 = [abs(v) for r in paper.TABLE2 for v in (*r.position, r.similarity, r.vocabulary, r.length)]
    vals = [*paper.TABLE1_COUNTS, paper.TABLE1_TOTAL, len(paper.TABLE1_COUNTS), paper.N_ATTRIBUTES,
            *(r.value for r in paper.RESULTS), 100 * paper.AUC_GAIN_OVER_M3, *table2, *paper.FIGURE5.values(),
            *(s.value for s in paper.HYPERPARAMETERS.values())]
    return {format(v, "g") for v in vals}


def test_every_result_of_the_paper_has_rows_beside_ours():
    """The summary function gives a row for each model x metric the paper reports (per protocol), with
    the paper's value and where it is stated, and the summary page's chapter 8 rows are those rows."""
    by = {}
    for v in evaluation_versus():
        by.setdefault((v.result.model, v.result.metric), []).append(v)
    assert set(by) == {(r.model, r.metric) for r in paper.RESULTS} and len(by) == 5 * 8
    for (model, metric), vs in by.items():
        r = paper.result(model, metric)
        assert [v.protocol for v in vs] == (["time"] if metric == "time_ms" else ["loo", "kfold"])
        for v in vs:
            assert v.row in CHAPTER8_ROWS and v.row.section == r.where and v.result is r
            assert float(v.row.paper.removesuffix(" ms")) == r.value
            assert v.row.key.endswith(f"_{model}_{metric}" if metric != "time_ms" else f"_{model}_ms")
            assert paper.COMPARATORS[model] in v.row.quantity


def test_the_chapter8_table_comes_from_the_same_rows():
    values = {v.row.key: f"ours {i}" for i, v in enumerate(evaluation_versus())}
    table = versus_table(values)
    assert len(table) == len(paper.RESULTS)
    for v in evaluation_versus():
        name = f"{paper.COMPARATORS[v.result.model]} ({v.result.model})"
        row = table.loc[(name, v.result.metric)]
        assert row["paper"] == v.row.paper and row["where"] == v.row.section
        assert values[v.row.key] in row.tolist()
    assert (versus_table({}) == "not run").sum().sum() == 5 * 7 * 2 + 5  # nothing typed in
    src = json.loads((ROOT / "notebooks" / "08_evaluation.ipynb").read_text(encoding="utf-8"))
    assert any("summary.versus_table(" in "".join(c["source"]) for c in src["cells"] if c["cell_type"] == "code")


def test_the_summary_page_shows_every_paper_result_beside_ours(tmp_path):
    keys = {k for r in CHAPTER8_ROWS for k in (r.key, r.ref_key) if k}
    _executed(tmp_path / "08_evaluation.ipynb", {k: f"v{i}" for i, k in enumerate(sorted(keys))})
    text, info = summary_markdown(tmp_path, ["08_evaluation"], {}, rows=CHAPTER8_ROWS, claims=())
    assert info["rows"] == [r.key for r in CHAPTER8_ROWS] and not info["skipped"]
    lines = text.splitlines()
    for v in evaluation_versus():
        row = [ln for ln in lines if f"::{v.row.key}:" in ln and ln.startswith(f"| {v.row.section} |")
               and f"{paper.COMPARATORS[v.result.model]} (`{v.result.model}`)" in ln]
        assert row and f"| {v.row.paper} |" in row[0], v.row.key


@pytest.mark.parametrize("claim", [*ALL_ROWS, *CHAPTER8_CLAIMS], ids=lambda r: r.quantity[:40])
def test_the_paper_column_holds_only_numbers_of_hzlib_paper(claim):
    # every number in the paper's column must be one hzlib.paper states: none is typed or invented here
    stated = re.sub(r"\b(Table|Figure|Section|Eq) [\d.]+", "", claim.paper)  # where it is said is no claim
    for num in re.findall(r"\d[\d,]*(?:\.\d+)?", stated):
        assert format(float(num.replace(",", "")), "g") in _paper_numbers(), f"{num!r} in {claim.paper!r}"
    if claim.paper != NOT_REPORTED and isinstance(claim, Row):
        assert re.search(r"\d", claim.paper), "a paper statement without a number is NOT_REPORTED"


def _executed(path: Path, values: dict) -> None:
    """An executed notebook whose outputs are what ``glue(key, value, display=False)`` writes."""
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": repr(v)},
                                           metadata={"scrapbook": {"name": k,
                                                                   "mime_prefix": "application/papermill.record/"}})
                    for k, v in values.items()]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter A"), cell])
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)


TEST_ROWS = (
    Row("Table 1", "images", f"{paper.TABLE1_TOTAL:,}", "01_a", "ch01_n", "generated", fmt=",d"),
    Row("Section 3", "score", NOT_REPORTED, "01_a", "ch01_score", "ours only", ref_key="ch01_score_ref"),
    Row("Section 3", "other", NOT_REPORTED, "02_b", "ch02_other", "not run"),
)
TEST_CLAIMS = (Claim("Abstract", "RMSE", str(paper.HEADLINE["rmse"]), "08_evaluation"),)


def test_rows_are_pasted_only_from_chapters_that_ran(tmp_path):
    _executed(tmp_path / "01_a.ipynb",
              {"ch01_n": 1234, "ch01_score": "0.617 [0.5, 0.7]", "ch01_score_ref": "chance 0.1"})
    text, info = summary_markdown(tmp_path, ["01_a", "02_b"], {"01_a": {"profile": "smoke", "commit": "deadbee"}},
                                  rows=TEST_ROWS, claims=TEST_CLAIMS)
    assert info["rows"] == ["ch01_n", "ch01_score"]
    assert info["skipped"] == {"02_b": "not run for this build", "08_evaluation": "not yet part of this book"}
    assert "{glue:text}`/book/chapters/01_a.ipynb::ch01_n:,d`" in text
    assert "{glue:text}`/book/chapters/01_a.ipynb::ch01_score_ref:s`" in text
    assert "ch02_other" not in text and "0.617" not in text and "1234" not in text  # pasted, never typed
    assert "**smoke**" in text and "deadbee" in text and "# Chapter A" in text
    assert f"| {paper.HEADLINE['rmse']} | `08_evaluation` |" in text


def test_a_stale_executed_notebook_is_reported_not_pasted(tmp_path):
    _executed(tmp_path / "01_a.ipynb", {"ch01_n": 1})  # run before ch01_score existed
    text, info = summary_markdown(tmp_path, ["01_a"], {}, rows=TEST_ROWS[:2], claims=())
    assert info["rows"] == ["ch01_n"] and "lacks ch01_score" in info["skipped"]["01_a"]
    assert "ch01_score_ref" not in text
    assert glued_keys(tmp_path / "01_a.ipynb") == {"ch01_n"}


def test_mixed_profiles_are_flagged_above_the_tables(tmp_path):
    _executed(tmp_path / "01_a.ipynb", {"ch01_n": 1})
    _executed(tmp_path / "02_b.ipynb", {"ch02_other": "x"})
    text, _ = summary_markdown(tmp_path, ["01_a", "02_b"],
                               {"01_a": {"profile": "smoke"}, "02_b": {"profile": "default"}},
                               rows=(TEST_ROWS[0], TEST_ROWS[2]), claims=())
    assert text.index("different profiles (default, smoke)") < text.index("## Chapter A")


def test_the_summary_page_builds_without_warnings_and_shows_the_glued_values(tmp_path, monkeypatch):
    """jupyter-book -nW on a tiny book: one executed chapter, the generated summary page (cross-document
    glue) and a chapter that was not run (a placeholder page)."""
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    for name in ("intro.md", "references.md", "references.bib"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book" / name)
    (tmp_path / "book" / "limitations.md").write_text("# Limitations\n", encoding="utf-8")
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    chapters:\n"
        "      - file: book/chapters/01_a\n      - file: book/chapters/02_b\n      - file: book/generated/summary\n"
        "      - file: book/limitations\n      - file: book/generated/provenance\n      - file: book/references\n",
        encoding="utf-8")
    lay = Layout(tmp_path)
    _executed(lay.chapters / "01_a.ipynb",
              {"ch01_n": 1234, "ch01_score": "0.617 [0.5, 0.7]", "ch01_score_ref": "chance 0.1"})
    monkeypatch.setattr("hzlib.summary.ALL_ROWS", TEST_ROWS)
    monkeypatch.setattr("hzlib.summary.CHAPTER8_CLAIMS", TEST_CLAIMS)
    info = prepare_book(lay, log=lambda *_: None)
    assert info["summary"]["rows"] == ["ch01_n", "ch01_score"] and "02_b" in info["missing"]
    jb = Path(sys.executable).parent / "jupyter-book"
    res = subprocess.run([str(jb), "build", str(tmp_path), "-nW", "--keep-going"], capture_output=True, text=True)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    html = (tmp_path / "_build" / "html" / "book" / "generated" / "summary.html").read_text(encoding="utf-8")
    assert '<span class="pasted-text">1,234</span>' in html
    assert "0.617 [0.5, 0.7]" in html and "chance 0.1" in html


def test_a_reference_record_is_one_more_column_with_its_values_and_provenance(tmp_path):
    _executed(tmp_path / "01_a.ipynb", {"ch01_n": 93, "ch01_score": "0.5 [0.4, 0.6]", "ch01_score_ref": "0.1"})
    record = {"profile": "default", "commit": "abc123", "recorded": "2026-11-28T04:00:00+00:00", "status": "complete",
              "chapters": {"01_a": {"glue": {"ch01_n": "1850", "ch01_score": "'0.7 [0.6, 0.8]'",
                                             "ch01_score_ref": "'0.2'"}}}}
    text, _ = summary_markdown(tmp_path, ["01_a"], {"01_a": {"profile": "smoke"}}, rows=TEST_ROWS[:2], claims=(),
                               records={"default": record})
    assert "reference run `default`" in text and "git commit `abc123`" in text
    assert "| 1,850 |" in text  # formatted as the row asks (",d")
    assert "0.7 [0.6, 0.8] (against 0.2)" in text  # a string's repr loses its quotes
    other = {**record, "chapters": {}}
    text, _ = summary_markdown(tmp_path, ["01_a"], {"01_a": {"profile": "smoke"}}, rows=TEST_ROWS[:1], claims=(),
                               records={"old": other})
    assert "not recorded" in text


def test_evaluation_values_give_every_key_the_summary_page_reads():
    from hzlib.evaluate import evaluation_values
    from hzlib.summary import CHAPTER8_ROWS, stated_by_model
    names = {"clip": "CLIP", "dan": "DAN"}
    metrics = ("precision", "recall", "f1", "accuracy", "top1_accuracy", "auc", "rmse", "mae")
    cis = pd.DataFrame([{"class": "macro", "protocol": p, "model": n, "metric": m, "cell": f"{p} {n} {m}"}
                        for p in ("loo", "kfold") for n in names.values() for m in metrics])
    timing = pd.DataFrame({"model": ["CLIP", "DAN"], "batch_size": 1, "median_ms": [1.0, 2.0], "q1_ms": 0.5,
                           "q3_ms": 3.0})
    v = evaluation_values(cis, [(p, k) for p in ("loo", "kfold") for k in names], names, timing, list(names), "cpu")
    assert v["ch08_kfold_dan_f1"] == "kfold DAN f1" and v["ch08_time_clip_ms"] == "1.00 [IQR 0.50, 3.00] on cpu"
    assert {r.key for r in CHAPTER8_ROWS if "_clip_" in r.key or "_dan_" in r.key} <= set(v)
    assert stated_by_model(["clip"], names)["CLIP"]["f1"] == paper.result("clip", "f1").value


def test_a_value_skipped_on_this_corpus_is_pasted_as_its_reason(tmp_path):
    """A chapter that cannot compute a value on an imported corpus glues "skipped: <reason>": the page
    pastes it as text (a number's format spec on a text would fail the build)."""
    _executed(tmp_path / "01_a.ipynb", {"ch01_n": "skipped: no masks in this corpus", "ch01_score": "0.5",
                                         "ch01_score_ref": "chance 0.1"})
    text, info = summary_markdown(tmp_path, ["01_a"], {}, rows=TEST_ROWS[:2], claims=())
    assert info["rows"] == ["ch01_n", "ch01_score"]
    assert "{glue:text}`/book/chapters/01_a.ipynb::ch01_n:s`" in text
    assert "::ch01_n:,d`" not in text
