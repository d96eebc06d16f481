"""The whole smoke book on an imported ("real") corpus, through the README's commands: `hz corpus
import` of the example corpus in tests/data/real_corpus/ (our renders without their ground truth,
made by scripts/make_example_corpus.py), a profile naming it with `corpus:`, `hz reproduce`. Every
chapter runs, those that need ground truth say what they skip, the book builds (-nW) and the corpus
is byte-identical afterwards."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import project_copy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "data" / "real_corpus"
# chapter -> what its skip note names (hzlib.report.skip_note writes "**Skipped: <what>.** <reason>")
SKIPS = {"01_data_statistics": "ground truth", "03_structure_from_motion": "Structure from Motion",
         "06_gradcam": "the pointing game", "07_clustering": "the set of 真", "08_evaluation": "the image ceiling"}


def _hz(*args, cwd, timeout=600):
    run = subprocess.run([str(Path(sys.executable).with_name("hz")), *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"hz {' '.join(map(str, args))} failed:\n{(run.stdout + run.stderr)[-4000:]}"
    return run.stdout + run.stderr


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _notes(nb: Path) -> list[str]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return [o["data"]["text/markdown"] for c in cells for o in c.get("outputs", [])
            if "text/markdown" in o.get("data", {}) and "**Skipped" in "".join(o["data"]["text/markdown"])]


def test_the_example_corpus_is_small_and_has_enough_items_per_class():
    df = pd.read_csv(EXAMPLE / "manifest.csv", dtype=str)
    assert list(df.columns) == ["id", "image", "label", "text"]  # no ground truth at all
    assert sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file()) < 1_000_000
    classes = pd.read_csv(EXAMPLE / "classes.csv", dtype=str)["key"].tolist()
    assert set(df["label"]) == set(classes) and df["label"].value_counts().min() >= 7  # 70/15/15, 2 folds


@pytest.mark.slow
def test_the_smoke_book_runs_on_an_imported_corpus_and_leaves_it_unchanged(tmp_path):
    root = tmp_path / "study"
    root.mkdir()
    project_copy(root)
    _hz("corpus", "import", EXAMPLE / "manifest.csv", EXAMPLE / "images", "data/real", cwd=root)
    smoke = (root / "profiles" / "smoke.yml").read_text(encoding="utf-8")
    real = smoke.replace("profile: smoke", "profile: real", 1).replace('corpus: ""', "corpus: data/real", 1)
    assert real.count("corpus: data/real") == 1 and "profile: real" in real
    (root / "profiles" / "real.yml").write_text(real, encoding="utf-8")
    before = _digests(root / "data" / "real")

    _hz("reproduce", "--profile", "profiles/real.yml", cwd=root, timeout=3600)  # chapters and the -nW book

    _hz("corpus", "verify", "data/real", cwd=root)
    assert _digests(root / "data" / "real") == before
    chapters = root / "book" / "chapters"
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        executed = chapters / nb.name
        assert executed.is_file() and not (chapters / f"{nb.stem}.partial.ipynb").exists(), nb.stem
        outputs = [o for c in json.loads(executed.read_text(encoding="utf-8"))["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], nb.stem
        notes = _notes(executed)
        if nb.stem in SKIPS:
            assert any(SKIPS[nb.stem] in "".join(n) for n in notes), f"{nb.stem} does not say what it skipped"
        else:
            assert not notes, f"{nb.stem} skips {notes}"
    html = root / "_build" / "html"
    summary = (html / "book" / "generated" / "summary.html").read_text(encoding="utf-8")
    assert "skipped: " in summary and "image sequences" in summary and "glyph_mask" in summary
    pages = [html / "book" / "chapters" / f"{nb.stem}.html" for nb in (root / "notebooks").glob("*.ipynb")]
    assert pages and all(p.is_file() for p in pages)
