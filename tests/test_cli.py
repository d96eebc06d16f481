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
