"""The papermill driver, the book's honesty about what was run, and the smoke book build (slow: minutes)."""
import ast
import json
from pathlib import Path

import nbformat
import pytest

from hzlib.config import load_profile
from hzlib.reproduce import (
    PLACEHOLDER_MARK,
    ChapterFailed,
    Layout,
    chapter_notebooks,
    prepare_book,
    record_run,
    reference_records,
    reproduce,
    run_chapters,
)
from hzlib.summary import ALL_ROWS, glued_values


@pytest.mark.slow
def test_smoke_profile_runs_every_chapter_and_builds_the_book(smoke_book):
    root, summary = smoke_book  # built once per session (conftest), also opened in a browser (test_browser)
    chapters = [r["chapter"] for r in summary["chapters"]]
    assert chapters == [p.stem for p in chapter_notebooks(Layout(root))]
    html = root / "_build" / "html"
    assert (html / "index.html").exists()
    page = (html / "book" / "chapters" / "01_data_statistics.html").read_text(encoding="utf-8")
    assert "Table 1" in page and "<img" in page
    card = (html / "book" / "generated" / "corpus_card.html").read_text(encoding="utf-8")
    assert "colour histogram" in card
    assert (html / "book" / "chapters" / "02_normalization.html").exists()
    # the summary page pastes every row's values from the executed chapters (cross-document glue)
    summary_html = (html / "book" / "generated" / "summary.html").read_text(encoding="utf-8")
    assert summary_html.count('class="pasted-text"') == sum(1 + bool(r.ref_key) for r in ALL_ROWS)
    glued = glued_values(root / "book" / "chapters" / "05_clip_training.ipynb")
    assert ast.literal_eval(glued["ch05_i2t_r10"]) in summary_html
    n_images = int(glued_values(root / "book" / "chapters" / "01_data_statistics.ipynb")["ch01_n_images"])
    assert f'<span class="pasted-text">{n_images:,}</span>' in summary_html
    # the executed notebooks carry the smoke parameters
    nb = nbformat.read(root / "book" / "chapters" / "01_data_statistics.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "profile = \"smoke\"" in injected[0].source
    # a second run resumes: every chapter is current
    again = reproduce(load_profile("smoke"), root, book=False)
    assert {r["status"] for r in again["chapters"]} == {"current"}
    assert json.loads((root / "book" / "chapters" / "run.json").read_text())["profile"]["profile"] == "smoke"


@pytest.mark.slow
def test_a_failing_chapter_names_the_cell(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("profile = 'default'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError('broken on purpose')"),
    ])
    nb.metadata["kernelspec"] = {"name": "hzlib", "display_name": "Python (hzlib)", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "01_broken.ipynb")
    with pytest.raises(ChapterFailed, match=r"01_broken failed at In \[4\] \(ValueError: broken on purpose\)"):
        run_chapters(load_profile("smoke"), Layout(tmp_path), log=lambda *_: None)


def _toc_project(tmp_path: Path) -> Layout:
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    chapters:\n"
        "      - file: book/generated/corpus_card\n      - file: book/chapters/01_a\n"
        "      - file: book/chapters/02_b\n      - file: book/generated/provenance\n", encoding="utf-8")
    return Layout(tmp_path)


def test_prepare_book_marks_chapters_not_run_and_removes_stale_placeholders(tmp_path):
    lay = _toc_project(tmp_path)
    nbformat.write(nbformat.v4.new_notebook(), lay.chapters / "01_a.ipynb")
    (lay.chapters / ".01_a.json").write_text(json.dumps({"profile": "smoke", "seconds": 3.5}))
    info = prepare_book(lay, log=lambda *_: None)
    assert info["missing"] == ["02_b", "corpus_card"] and info["status"].startswith("partial")
    assert PLACEHOLDER_MARK in (lay.chapters / "02_b.md").read_text()
    assert "--only 02" in (lay.chapters / "02_b.md").read_text()
    assert not (lay.chapters / "01_a.md").exists()
    prov = (tmp_path / "book" / "generated" / "provenance.md").read_text()
    assert "| 01_a | smoke | 3.5 |" in prov and "| 02_b | not run |" in prov and "partial" in prov

    # chapter 2 is run later (with another profile): its placeholder goes, and the mix is reported
    nbformat.write(nbformat.v4.new_notebook(), lay.chapters / "02_b.ipynb")
    (lay.chapters / ".02_b.json").write_text(json.dumps({"profile": "default", "seconds": 9}))
    (tmp_path / "book" / "generated" / "corpus_card.md").write_text("# Corpus card\n")
    info = prepare_book(lay, log=lambda *_: None)
    assert info["missing"] == [] and not (lay.chapters / "02_b.md").exists()
    assert "several profiles: default, smoke" in info["status"]


def test_prepare_book_complete_when_every_chapter_ran_with_one_profile(tmp_path):
    lay = _toc_project(tmp_path)
    (tmp_path / "book" / "generated").mkdir()
    (tmp_path / "book" / "generated" / "corpus_card.md").write_text("# Corpus card\n")
    for stem in ("01_a", "02_b"):
        nbformat.write(nbformat.v4.new_notebook(), lay.chapters / f"{stem}.ipynb")
        (lay.chapters / f".{stem}.json").write_text(json.dumps({"profile": "smoke", "seconds": 1}))
    assert prepare_book(lay, log=lambda *_: None)["status"] == "complete"


def test_record_run_keeps_stamps_glue_and_stage_summaries_and_refuses_mixed_profiles(tmp_path):
    lay = _toc_project(tmp_path)
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "'0.5'"},
                                           metadata={"scrapbook": {"name": "ch01_x",
                                                                   "mime_prefix": "application/papermill.record/"}})]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), lay.chapters / "01_a.ipynb")
    (lay.chapters / ".01_a.json").write_text(json.dumps({"profile": "default", "seconds": 12.5, "commit": "c0ffee"}))
    stage = tmp_path / "artifacts" / "default" / "evaluation"
    stage.mkdir(parents=True)
    (stage / "summary.json").write_text(json.dumps({"macro": [1, 2]}))
    path = record_run(lay, log=lambda *_: None)
    assert path == tmp_path / "results" / "default" / "record.json"
    rec = json.loads(path.read_text())
    assert rec["profile"] == "default" and rec["status"] == "partial: not run: 02_b"
    assert rec["chapters"]["01_a"]["glue"] == {"ch01_x": "'0.5'"} and rec["chapters"]["01_a"]["seconds"] == 12.5
    assert json.loads((path.parent / "evaluation.json").read_text()) == {"macro": [1, 2]}
    assert reference_records(lay) == {"default": rec}

    nbformat.write(nbformat.v4.new_notebook(), lay.chapters / "02_b.ipynb")
    (lay.chapters / ".02_b.json").write_text(json.dumps({"profile": "smoke", "seconds": 1}))
    with pytest.raises(ValueError, match="several profiles"):
        record_run(lay, log=lambda *_: None)
    (tmp_path / "results" / "broken").mkdir()
    (tmp_path / "results" / "broken" / "record.json").write_text("{")
    with pytest.raises(ValueError, match="broken/record.json: not a readable run record"):
        prepare_book(lay, log=lambda *_: None)


def test_the_injected_parameters_cell_is_folded_in_the_book(tmp_path):
    from hzlib.reproduce import hide_injected_parameters
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")])
    nb.cells[1].metadata["tags"] = ["injected-parameters"]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    hide_injected_parameters(path)
    back = nbformat.read(path, as_version=4)
    assert back.cells[1].metadata["tags"] == ["injected-parameters", "hide-input"]
    assert "tags" not in back.cells[0].metadata and back.cells[1].source == "y = 2"
