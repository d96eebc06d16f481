"""An imported corpus is the study's data: nothing overwrites it. corpus.json says what a folder is;
the corpus builder (every chapter's first call) writes only into a corpus it generated, checks an
imported one and leaves it byte for byte as it is."""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import cell_python
from hzlib.config import load_profile, params_hash
from hzlib.corpus import build as B, classes as C
from hzlib.corpus.manifest import import_corpus
from hzlib.corpus.provenance import CorpusError, check_imported, declared_classes, imported_changes, read_meta

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LABELS = C.KEYS[:2]  # real labels would do for the corpus; the chapters' first cells list classes from C.KEYS


def snapshot(d: Path) -> dict[str, bytes | None]:
    """Every byte of every file under ``d``, and every folder (None): any write shows."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def real_corpus(src: Path, out: Path) -> Path:
    """Six photographs in two declared classes, imported into ``out``."""
    src.mkdir(parents=True)
    rows = []
    for i in range(6):
        Image.new("RGB", (40, 30), (40 * i, 90, 250 - 40 * i)).save(src / f"photo{i}.jpg")
        rows.append({"id": f"r{i}", "image": f"photo{i}.jpg", "label": LABELS[i % 2],
                     "text": f"第{i}件石刻，字迹清晰。"})
    pd.DataFrame(rows).to_csv(src / "manifest.csv", index=False)
    pd.DataFrame({"key": LABELS, "name_en": ["one", "two"]}).to_csv(src / "classes.csv", index=False)
    return import_corpus(src / "manifest.csv", src, out)


@pytest.fixture
def tiny():
    return replace(load_profile("smoke"), corpus_scale=0.001, image_size=48, orbit_forms=(), workers=1)


# --- what a folder is ----------------------------------------------------------------------------

def test_read_meta_says_what_a_folder_is(tmp_path):
    assert read_meta(tmp_path) is None
    (tmp_path / "corpus.json").write_text("{not json")
    with pytest.raises(CorpusError, match="corpus.json: unreadable"):
        read_meta(tmp_path)
    (tmp_path / "corpus.json").write_text(json.dumps({"source": "scanned"}))
    with pytest.raises(CorpusError, match="'source' is 'scanned'"):
        read_meta(tmp_path)
    corpus = real_corpus(tmp_path / "src", tmp_path / "c")
    assert read_meta(corpus)["source"] == "imported"


# --- the builder never writes into what it did not generate --------------------------------------

def test_an_imported_corpus_in_the_profiles_data_folder_survives_a_forced_build(tmp_path, tiny):
    """The issue's data loss: build_corpus(prof, prof.data_dir(), force=True) replaced four imported rows by
    twenty generated ones. Now it checks the imported corpus and returns it as it is."""
    out = real_corpus(tmp_path / "src", tiny.data_dir(tmp_path))
    before = snapshot(out)
    for force in (False, True):
        assert B.build_corpus(tiny, out, force=force, hanzi_dir=tmp_path / "no-fonts-needed") == out
    assert snapshot(out) == before


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_hz_did_not_write_is_refused(tmp_path, tiny, force):
    out = tmp_path / "mine"
    (out / "images").mkdir(parents=True)
    (out / "images" / "a.png").write_bytes(b"precious")
    (out / "manifest.csv").write_text("id,image,label,text\n")
    before = snapshot(out)
    with pytest.raises(CorpusError, match=r"holds files that hz did not write .*hz corpus import"):
        B.build_corpus(tiny, out, force=force, progress=False)
    (out / "corpus.json").write_text(json.dumps({"source": "hand-made"}))
    with pytest.raises(CorpusError, match=r"'source' is 'hand-made'.*writes nothing into it"):
        B.build_corpus(tiny, out, force=force, progress=False)
    (out / "corpus.json").unlink()
    assert snapshot(out) == before


def test_a_named_corpus_must_exist_and_is_never_built(tmp_path, tiny):
    named = replace(tiny, corpus="data/real")
    with pytest.raises(CorpusError, match=r"data/real.*does not exist: import one there with `hz corpus import"):
        B.build_corpus(named, named.data_dir(tmp_path))
    assert not (tmp_path / "data").exists()


def test_a_named_generated_corpus_is_used_only_with_this_profiles_parameters(tmp_path, tiny):
    named = replace(tiny, corpus=str(tmp_path / "gen"))
    out = named.data_dir()
    out.mkdir()
    (out / "manifest.csv").write_text("id,image,label,text\n")
    (out / "corpus.json").write_text(json.dumps({"source": "generated", "fingerprint": "other"}))
    before = snapshot(out)
    with pytest.raises(CorpusError, match=r"generated with other parameters .*never rebuilt"):
        B.build_corpus(named, out, force=True)
    assert snapshot(out) == before
    fingerprint = params_hash(B.corpus_params(named))
    (out / "corpus.json").write_text(json.dumps({"source": "generated", "fingerprint": fingerprint}))
    before = snapshot(out)
    assert B.build_corpus(named, out, force=True) == out
    assert snapshot(out) == before


# --- an imported corpus is checked before it is read ---------------------------------------------

def test_a_changed_imported_corpus_is_refused_naming_the_file(tmp_path, tiny):
    out = real_corpus(tmp_path / "src", tmp_path / "corpus")
    meta = read_meta(out)
    assert imported_changes(out, meta, full=True) == []
    image = out / "images" / "r2.png"
    data = image.read_bytes()
    image.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit
    assert imported_changes(out, meta) == []  # the chapters' quick check compares sizes...
    changed = "images/r2.png: content changed (sha256 differs from the import's)"
    assert imported_changes(out, meta, full=True) == [changed]  # ... `hz corpus verify` every byte
    image.write_bytes(data)
    (out / "images" / "r9.png").write_bytes(data)
    (out / "images" / "r0.png").unlink()
    manifest = out / "manifest.csv"
    text = manifest.read_text(encoding="utf-8")
    # an edit of the same size: the sha256 sees it
    manifest.write_text(text.replace("第0件", "第9件"), encoding="utf-8")
    assert manifest.stat().st_size == len(text.encode())
    with pytest.raises(CorpusError) as err:
        B.build_corpus(replace(tiny, corpus=str(out)), out)
    msg = str(err.value)
    assert "changed since its import (3 difference(s))" in msg
    assert "images/r0.png: missing" in msg and "images/r9.png: not part of the import" in msg
    assert "manifest.csv: content changed" in msg and "re-import" in msg


def test_an_older_import_without_checksums_is_used_with_a_warning(tmp_path):
    out = real_corpus(tmp_path / "src", tmp_path / "corpus")
    meta = read_meta(out)
    del meta["files"]
    with pytest.warns(UserWarning, match="records no checksums"):
        assert check_imported(out, meta)["source"] == "imported"


# --- every chapter's first cell leaves an imported corpus as it is ----------------------------------

def _first_cells(nb: Path) -> tuple[str, str, str]:
    """The imports, the parameters and the first cell after them (the corpus-loading call)."""
    code = [cell_python(c) for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
    assert "build_corpus(prof, prof.data_dir()" in code[2], f"{nb.name}: the first cell loads the corpus"
    return code[0], code[1], code[2]


@pytest.fixture
def study(tmp_path, monkeypatch):
    """An empty study folder as the working directory (where papermill runs the chapters)."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("root: intro\n")
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


@pytest.mark.parametrize("where", ["named by the corpus key", "in the profile's data folder, force"])
def test_every_chapters_first_cell_leaves_an_imported_corpus_byte_for_byte(study, where):
    smoke = load_profile("smoke").as_dict() | {"workers": 1, "profile": "real"}
    if where.startswith("named"):
        params = smoke | {"corpus": "corpora/real"}
        corpus = real_corpus(study / "src", study / "corpora" / "real")
    else:
        params = smoke | {"force": True}
        corpus = real_corpus(study / "src", study / "data" / "real")
    before = snapshot(corpus)
    for nb in NOTEBOOKS:
        imports, defaults, first = _first_cells(nb)
        ns: dict = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library warnings (tqdm, sklearn) are not the point here
            exec(compile(imports, f"{nb.name}[imports]", "exec"), ns)
            exec(compile(defaults, f"{nb.name}[parameters]", "exec"), ns)
            ns.update(params)  # as papermill injects them
            exec(compile(first, f"{nb.name}[first cell]", "exec"), ns)
        assert ns["root"] == corpus, nb.name
        assert snapshot(corpus) == before, f"{nb.name} wrote into the imported corpus"
    assert check_imported(corpus, full=True)["rows"] == 6
    assert not (study / "data" / "real" / "rows").exists()


def test_declared_classes_are_read_from_an_imported_corpus_only(tmp_path):
    corpus = real_corpus(tmp_path / "src", tmp_path / "c")
    assert declared_classes(corpus) == list(LABELS)
    assert declared_classes(tmp_path / "nothing here") == []
    assert C.class_order(pd.read_csv(corpus / "manifest.csv")["label"], declared_classes(corpus)) == list(LABELS)
