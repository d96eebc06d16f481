"""The `hz` command line: exit codes and messages a user sees."""
import subprocess
import sys

import pandas as pd
from PIL import Image

from hzlib.cli import main


def test_import_rejection_exits_2_and_names_row_and_file(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (8, 8)).save(imgs / "a.png")
    pd.DataFrame({"id": ["a", "b"], "image": ["a.png", "missing.png"], "label": ["x", "x"],
                  "text": ["一", "二"]}).to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "out"
    assert main(["corpus", "import", str(tmp_path / "m.csv"), str(imgs), str(out)]) == 2
    err = capsys.readouterr().err
    assert "nothing written" in err and "row 3" in err and "missing.png" in err
    assert not out.exists()


def test_import_accepts_a_valid_corpus(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for n in "abcd":
        Image.new("RGB", (8, 8), (10, 20, 30)).save(imgs / f"{n}.jpg")
    pd.DataFrame({"id": list("abcd"), "image": [f"{n}.jpg" for n in "abcd"], "label": ["x", "x", "y", "y"],
                  "text": ["一", "二", "三", "四"]}).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "classes.txt").write_text("x\ny\n")
    out = tmp_path / "out"
    assert main(["corpus", "import", str(tmp_path / "m.csv"), str(imgs), str(out),
                 "--classes", str(tmp_path / "classes.txt")]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png", "c.png", "d.png"]


def test_unknown_profile_is_a_clear_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "hzlib.cli", "corpus", "build", "--profile", "nope"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0
    assert "profile 'nope' not found" in res.stderr and "smoke" in res.stderr


def _real_corpus(tmp_path, labels=("x", "x", "y", "y")):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, n in enumerate("abcd"):
        Image.new("RGB", (8, 8), (10 * i, 20, 30)).save(imgs / f"{n}.png")
    pd.DataFrame({"id": list("abcd"), "image": [f"{n}.png" for n in "abcd"], "label": list(labels),
                  "text": ["一", "二", "三", "四"]}).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv", imgs


def _tree(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_import_without_declared_labels_is_refused(tmp_path, capsys):
    manifest, imgs = _real_corpus(tmp_path, labels=("x", "x", "martian", "martian"))
    assert main(["corpus", "import", str(manifest), str(imgs), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "labels are not declared" in err and "--classes" in err and "classes.csv" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "classes.csv").write_text("key,name_en\nx,Ex\nmartian,Martian\n", encoding="utf-8")
    assert main(["corpus", "import", str(manifest), str(imgs), str(tmp_path / "out")]) == 0


def test_a_bad_profile_stops_hz_before_any_work_naming_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yml").write_text("profile: bad\nclip_batch: 0\n")
    assert main(["corpus", "build", "--profile", str(tmp_path / "bad.yml")]) == 2
    err = capsys.readouterr().err
    assert "[hz] error:" in err and "bad.yml" in err and "clip_batch=0" in err
    (tmp_path / "bad.yml").write_text("profile: bad\ncorpus_sclae: 1\n")
    assert main(["reproduce", "--profile", str(tmp_path / "bad.yml")]) == 2
    assert "corpus_sclae" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yml"]  # no data/, no artifacts/


def test_corpus_build_leaves_an_imported_corpus_as_it_is(tmp_path, monkeypatch, capsys):
    """The issue's data loss: `hz corpus build --force` over data/<profile> holding an imported corpus."""
    monkeypatch.chdir(tmp_path)
    manifest, imgs = _real_corpus(tmp_path)
    (tmp_path / "classes.csv").write_text("key\nx\ny\n", encoding="utf-8")
    out = tmp_path / "data" / "mine"
    assert main(["corpus", "import", str(manifest), str(imgs), str(out)]) == 0
    before = _tree(out)
    (tmp_path / "mine.yml").write_text("profile: mine\n")
    assert main(["corpus", "build", "--profile", str(tmp_path / "mine.yml"), "--force"]) == 0
    assert "imported: checked, left as it is" in capsys.readouterr().out
    (tmp_path / "named.yml").write_text("profile: named\ncorpus: data/mine\n")
    assert main(["corpus", "build", "--profile", str(tmp_path / "named.yml"), "--force"]) == 0
    assert _tree(out) == before
    assert main(["corpus", "verify", str(out)]) == 0
    (out / "images" / "c.png").write_bytes(before["images/c.png"][:-1] + b"\0")  # same size, other bytes
    assert main(["corpus", "verify", str(out)]) == 2
    assert "images/c.png: content changed" in capsys.readouterr().err
