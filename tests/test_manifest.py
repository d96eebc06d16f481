"""Tests for hzlib.corpus.manifest: every validation error with its spreadsheet row and file, the
all-or-nothing import, and atomic manifest writes. Corpora are built small, in tmp_path, with PIL."""
from __future__ import annotations

import csv
import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hzlib.corpus import manifest as mf
from hzlib.corpus.manifest import (
    OPTIONAL,
    REQUIRED,
    ImportRejected,
    ManifestError,
    Problem,
    class_counts,
    import_corpus,
    read_manifest,
    validate,
    write_manifest,
)

CLASSES = ["religious", "secular"]
TEXTS = ["石雕汉字，庄严肃穆。", "红色的福字浮雕。", "青铜铸造的寿字。", "木刻的龙字，线条流畅。"]


def save_image(path: Path, colour=(200, 30, 30), size=(8, 6), fmt=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def good_rows() -> list[list[str]]:
    """Four valid rows (spreadsheet rows 2-5): two classes, two samples each."""
    return [
        ["a1", "a1.png", "religious", TEXTS[0]],
        ["a2", "a2.png", "religious", TEXTS[1]],
        ["b1", "b1.png", "secular", TEXTS[2]],
        ["b2", "b2.png", "secular", TEXTS[3]],
    ]


@pytest.fixture
def src(tmp_path) -> Path:
    """A source folder with an image for every good row (no manifest yet)."""
    d = tmp_path / "src"
    for row in good_rows():
        save_image(d / row[1])
    return d


def make_manifest(src: Path, rows, header=REQUIRED, encoding="utf-8") -> Path:
    return write_csv(src / "manifest.csv", list(header), rows, encoding)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- one test per error kind ---------------------------------------------------------------------

def test_valid_corpus_has_no_problems(src):
    assert validate(make_manifest(src, good_rows()), src, CLASSES) == []


def test_missing_image_file(src):
    (src / "a2.png").unlink()
    p = only(validate(make_manifest(src, good_rows()), src))
    assert (p.row, p.column, Path(p.file).name) == (3, "image", "a2.png")
    assert "not found" in p.message


def test_unreadable_image(src):
    (src / "b1.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png at all")
    p = only(validate(make_manifest(src, good_rows()), src))
    assert (p.row, p.column, Path(p.file).name) == (4, "image", "b1.png")
    assert "cannot read image" in p.message


def test_truncated_image_is_unreadable(src):
    save_image(src / "b2.png", size=(64, 64))
    data = (src / "b2.png").read_bytes()
    (src / "b2.png").write_bytes(data[: len(data) // 2])
    p = only(validate(make_manifest(src, good_rows()), src))
    assert (p.row, Path(p.file).name) == (5, "b2.png")


def test_unknown_label(src):
    rows = good_rows() + [["c1", "a1.png", "heroic", TEXTS[0]], ["c2", "a1.png", "heroic", TEXTS[1]]]
    problems = validate(make_manifest(src, rows), src, CLASSES)
    assert [(p.row, p.column) for p in problems] == [(6, "label"), (7, "label")]
    assert all(Path(p.file).name == "manifest.csv" for p in problems)
    assert "'heroic' is not one of the classes" in problems[0].message
    assert validate(src / "manifest.csv", src) == []  # without a class list any label goes


def test_missing_label(src):
    rows = good_rows() + [["c1", "a1.png", "", TEXTS[0]]]
    p = only(validate(make_manifest(src, rows), src))
    assert (p.row, p.column, Path(p.file).name) == (6, "label", "manifest.csv")
    assert "label is empty" in p.message


def test_text_not_utf8_names_the_row(src):
    rows = good_rows()
    rows[1][3] = "Caf\u00e9 sculpture"  # row 3; its é saved as latin-1: the lone byte 0xE9
    path = make_manifest(src, rows)
    path.write_bytes(path.read_bytes().replace("\u00e9".encode("utf-8"), "\u00e9".encode("latin-1")))
    p = only(validate(path, src))
    assert (p.row, p.column, Path(p.file).name) == (3, "text", "manifest.csv")
    assert "not valid UTF-8" in p.message and "\\xe9" in p.message
    with pytest.raises(ManifestError, match="manifest.csv"):
        read_manifest(path)


def test_bad_bytes_after_a_multiline_cell_still_name_the_spreadsheet_row(src):
    rows = good_rows()
    rows[0][3] = "第一行\n第二行"  # a quoted line break: still row 2
    rows[2][3] = "Caf\udce9"  # raw 0xE9 in row 4
    path = src / "manifest.csv"
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([list(REQUIRED)] + rows)
    p = only(validate(path, src))
    assert (p.row, p.column) == (4, "text")


def test_duplicate_id_names_both_rows(src):
    rows = good_rows()
    rows[3][0] = "a2"  # row 5 repeats row 3's id
    p = only(validate(make_manifest(src, rows), src))
    assert (p.row, p.column, Path(p.file).name) == (5, "id", "manifest.csv")
    assert "duplicate id 'a2'" in p.message and "rows 3, 5" in p.message


def test_empty_and_malformed_ids(src):
    rows = good_rows()
    rows[0][0] = ""
    rows[1][0] = "a 2/x"
    problems = validate(make_manifest(src, rows), src)
    assert [(p.row, p.column) for p in problems] == [(2, "id"), (3, "id")]
    assert "id is empty" in problems[0].message
    assert "outside [A-Za-z0-9_-]" in problems[1].message


def test_class_with_one_sample(src):
    rows = good_rows()[:3]  # 'secular' keeps only row 4
    p = only(validate(make_manifest(src, rows), src))
    assert (p.row, p.column, Path(p.file).name) == (4, "label", "manifest.csv")
    assert "class 'secular' has 1 sample(s) (row 4)" in p.message


def test_declared_class_without_samples(src):
    p = only(validate(make_manifest(src, good_rows()), src, CLASSES + ["heroic"]))
    assert p.row is None and "class 'heroic' has 0 sample(s)" in p.message


def test_missing_required_column(src):
    rows = [r[:3] for r in good_rows()]
    p = only(validate(make_manifest(src, rows, header=REQUIRED[:3]), src))
    assert (p.row, p.column, Path(p.file).name) == (1, "text", "manifest.csv")
    assert "required column 'text' is missing" in p.message
    with pytest.raises(ManifestError, match=r"manifest\.csv.*'text'"):
        read_manifest(src / "manifest.csv")


def test_empty_text(src):
    rows = good_rows()
    rows[2][3] = "   "
    p = only(validate(make_manifest(src, rows), src))
    assert (p.row, p.column) == (4, "text") and "text" in p.message


def test_bad_register(src):
    rows = [r + [reg] for r, reg in zip(good_rows(), ["expert", "visitor", "poet", ""])]
    p = only(validate(make_manifest(src, rows, header=REQUIRED + ("register",)), src))
    assert (p.row, p.column) == (4, "register")


def test_several_problems_are_all_reported(src):
    (src / "a1.png").unlink()
    (src / "b1.png").write_bytes(b"garbage")
    rows = good_rows() + [
        ["a2", "a2.png", "", ""],  # row 6: duplicate id, no label, no text
        ["c1", "a2.png", "heroic", TEXTS[0]],  # row 7: unknown label, and a class of 1
    ]
    problems = validate(make_manifest(src, rows), src, CLASSES)
    found = {(p.row, p.column, Path(p.file).name) for p in problems}
    assert found == {
        (2, "image", "a1.png"), (4, "image", "b1.png"),
        (6, "id", "manifest.csv"), (6, "label", "manifest.csv"), (6, "text", "manifest.csv"),
        (7, "label", "manifest.csv"),
    }
    assert [p.row for p in problems] == sorted(p.row for p in problems)
    assert len([p for p in problems if p.row == 7]) == 2  # unknown label + single sample


def test_blank_rows_are_skipped_but_counted(src):
    rows = good_rows()
    rows.insert(1, ["", "", "", ""])  # row 3 is blank (as spreadsheets export it)
    rows[3][1] = "missing.png"  # now row 5
    p = only(validate(make_manifest(src, rows), src))
    assert p.row == 5
    assert len(read_manifest(src / "manifest.csv")) == 4


def test_too_many_fields(src):
    rows = good_rows()
    rows[0].append("extra")
    p = only(validate(make_manifest(src, rows), src))
    assert p.row == 2 and "5 fields" in p.message


def test_missing_manifest(tmp_path):
    p = only(validate(tmp_path / "nope.csv", tmp_path))
    assert Path(p.file).name == "nope.csv" and "not found" in p.message


# --- import --------------------------------------------------------------------------------------

def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_rejected_import_writes_nothing(src, tmp_path):
    (src / "b1.png").unlink()
    rows = good_rows()
    rows[0][3] = ""
    make_manifest(src, rows)
    parent = tmp_path / "out"
    parent.mkdir()
    out = parent / "corpus"
    with pytest.raises(ImportRejected) as err:
        import_corpus(src / "manifest.csv", src, out, classes=CLASSES)
    assert not out.exists()
    assert list(parent.iterdir()) == []  # no temp folder left beside it
    msg = str(err.value)
    assert "row 2" in msg and "text (the Chinese description) is empty" in msg
    assert "row 4" in msg and "b1.png" in msg and "not found" in msg
    assert {p.row for p in err.value.problems} == {2, 4}


def test_rejected_import_does_not_create_missing_parent(src, tmp_path):
    (src / "a1.png").unlink()
    out = tmp_path / "new" / "corpus"
    with pytest.raises(ImportRejected):
        import_corpus(make_manifest(src, good_rows()), src, out, classes=CLASSES)
    assert not (tmp_path / "new").exists()


def test_accepted_import_gives_the_layout(src, tmp_path):
    save_image(src / "a1.jpg", colour=(10, 120, 240), fmt="JPEG")  # a JPEG input
    Image.new("L", (8, 6), 77).save(src / "b1.png")  # a greyscale input
    rows = good_rows()
    rows[0][1] = "a1.jpg"
    rows = [r + [f"{az:.1f}", "train"] for r, az in zip(rows, [0, 90.5, 180, 270])]
    make_manifest(src, rows, header=REQUIRED + ("camera_azimuth", "split"))
    out = import_corpus(src / "manifest.csv", src, tmp_path / "corpus", classes=CLASSES)

    assert listing(out) == ["classes.csv", "corpus.json", "images", "images/a1.png", "images/a2.png",
                            "images/b1.png", "images/b2.png", "manifest.csv"]
    for name in ["a1", "b1"]:
        with Image.open(out / "images" / f"{name}.png") as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (8, 6))
    with Image.open(out / "images" / "a1.png") as im:
        assert np.abs(np.asarray(im, int)[3, 3] - [10, 120, 240]).max() < 10

    df = read_manifest(out / "manifest.csv")
    assert list(df.columns) == ["id", "image", "label", "text", "split", "camera_azimuth"]
    assert list(df["image"]) == [f"images/{i}.png" for i in ["a1", "a2", "b1", "b2"]]
    assert list(df["text"]) == TEXTS
    assert df["camera_azimuth"].dtype == float
    assert validate(out / "manifest.csv", out, CLASSES) == []  # the output is a valid corpus

    info = json.loads((out / "corpus.json").read_text("utf-8"))
    assert info["source"] == "imported" and info["rows"] == 4
    assert info["class_counts"] == {"religious": 2, "secular": 2}
    assert info["config"]["manifest"] == str((src / "manifest.csv").resolve())
    assert info["manifest_sha256"] == hashlib.sha256((src / "manifest.csv").read_bytes()).hexdigest()
    assert info["created"].endswith("+00:00")
    assert info["classes"] == [{"key": k, "name_zh": "", "name_en": ""} for k in CLASSES]
    assert set(info["files"]) == {"classes.csv", "manifest.csv"} | {f"images/{i}.png" for i in ["a1", "a2", "b1", "b2"]}
    for rel, rec in info["files"].items():  # the size and sha256 of every file, corpus.json aside
        data = (out / rel).read_bytes()
        assert rec == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert set(tmp_path.iterdir()) == {src, out}  # no temp folder left beside it


def test_import_converts_transparency_on_white(src, tmp_path):
    Image.new("RGBA", (8, 6), (255, 0, 0, 0)).save(src / "a1.png")
    out = import_corpus(make_manifest(src, good_rows()), src, tmp_path / "corpus", classes=CLASSES)
    with Image.open(out / "images" / "a1.png") as im:
        assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)


def test_import_copies_masks_and_meshes(src, tmp_path):
    Image.new("L", (8, 6), 1).save(src / "a1_mask.png")
    strokes = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000
    Image.fromarray(strokes).save(src / "a1_strokes.png")
    (src / "m").mkdir()
    (src / "m" / "fu.ply").write_text("ply\n")
    rows = [r + ["", "", ""] for r in good_rows()]
    rows[0][4:] = ["a1_mask.png", "a1_strokes.png", "m/fu.ply"]
    make_manifest(src, rows, header=REQUIRED + ("glyph_mask", "stroke_mask", "mesh"))
    out = import_corpus(src / "manifest.csv", src, tmp_path / "corpus", classes=CLASSES)
    df = read_manifest(out / "manifest.csv")
    assert list(df.loc[0, ["glyph_mask", "stroke_mask", "mesh"]]) == [
        "masks/a1_glyph.png", "masks/a1_strokes.png", "meshes/fu.ply"]
    assert list(df.loc[1, ["glyph_mask", "stroke_mask", "mesh"]]) == ["", "", ""]
    assert set(np.unique(np.asarray(Image.open(out / "masks/a1_glyph.png")))) == {255}
    assert np.array_equal(np.asarray(Image.open(out / "masks/a1_strokes.png")), strokes)
    assert (out / "meshes/fu.ply").read_text() == "ply\n"


def test_glyph_mask_must_be_single_channel(src):
    save_image(src / "rgb_mask.png")
    rows = [r + [""] for r in good_rows()]
    rows[2][4] = "rgb_mask.png"
    p = only(validate(make_manifest(src, rows, header=REQUIRED + ("glyph_mask",)), src))
    assert (p.row, p.column, Path(p.file).name) == (4, "glyph_mask", "rgb_mask.png")
    assert "mode 'RGB'" in p.message


def test_import_refuses_existing_out_dir_unless_overwrite(src, tmp_path):
    out = tmp_path / "corpus"
    make_manifest(src, good_rows())
    import_corpus(src / "manifest.csv", src, out, classes=CLASSES)
    before = snapshot(out)
    with pytest.raises(FileExistsError, match="overwrite"):
        import_corpus(src / "manifest.csv", src, out, classes=CLASSES)
    assert snapshot(out) == before

    (src / "a1.png").unlink()  # a rejected overwrite keeps the old corpus
    with pytest.raises(ImportRejected):
        import_corpus(src / "manifest.csv", src, out, classes=CLASSES, overwrite=True)
    assert snapshot(out) == before

    save_image(src / "a1.png", colour=(1, 2, 3))
    import_corpus(src / "manifest.csv", src, out, classes=CLASSES, overwrite=True)
    assert snapshot(out)["images/a1.png"] != before["images/a1.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "src"]


def test_overwrite_replaces_only_a_corpus_folder(src, tmp_path):
    """``--overwrite`` with a mistyped folder (a home, a project) must not delete it."""
    out = tmp_path / "papers"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="holds no corpus"):
        import_corpus(make_manifest(src, good_rows()), src, out, classes=CLASSES, overwrite=True)
    assert listing(out) == ["thesis.tex"]


def test_failure_during_import_leaves_nothing(src, tmp_path, monkeypatch):
    make_manifest(src, good_rows())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mf, "write_manifest", boom)
    with pytest.raises(OSError, match="disk full"):
        import_corpus(src / "manifest.csv", src, tmp_path / "corpus", classes=CLASSES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


# --- the importer's safety rules: every bad corpus is refused, names its row, writes nothing -------

def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid tiny PNG whose header announces ``width`` x ``height`` pixels: decoding it would
    allocate width * height bytes (a decompression bomb; PIL reads the size from the header)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _outside_png(src: Path) -> Path:
    path = src.parent / "outside.png"
    save_image(path, colour=(0, 255, 0))
    return path


def case_parent_path(src):
    _outside_png(src)
    return 3, "image", "../outside.png", r"'\.\./outside\.png' leads out of the images folder"


def case_hidden_parent_path(src):
    _outside_png(src)
    (src / "sub").mkdir()
    return 3, "image", "sub/../../outside.png", "leads out of the images folder"


def case_absolute_path(src):
    return 3, "image", str(_outside_png(src)), "is absolute"


def case_symlink_out(src):
    (src / "link.png").symlink_to(_outside_png(src))
    return 3, "image", "link.png", "'link.png' is a symlink out of the images folder"


def case_symlinked_folder_out(src):
    _outside_png(src)
    (src / "shared").symlink_to(src.parent)
    return 3, "image", "shared/outside.png", "is a symlink out of the images folder"


def case_symlink_loop(src):
    (src / "loop.png").symlink_to(src / "loop.png")
    return 3, "image", "loop.png", "loop.png"


def case_undeclared_label(src):
    return 3, "label", "martian", "'martian' is not one of the classes"


def case_decompression_bomb(src):
    png_bomb(src / "a2.png", 100_000, 100_000)  # 10 G pixels: PIL's own limit refuses it at open
    return 3, "image", "a2.png", "decompression bomb"


def case_bomb_below_pils_limit(src):
    png_bomb(src / "a2.png", 9_000, 9_000)  # 81 M pixels: PIL would only warn, the import refuses
    return 3, "image", "a2.png", "81,000,000 pixels, above the limit of 80,000,000"


def case_not_utf8(src):
    return 3, "text", "Caf\udce9", r"not valid UTF-8: b'Caf\\xe9'"


def case_duplicate_id(src):
    return 3, "id", "a1", "duplicate id 'a1' \\(rows 2, 3\\)"


def case_id_differing_in_case(src):
    return 3, "id", "A1", "differs from row 2's 'a1' only in case"


def case_glyph_mask_out(src):
    _outside_png(src)
    return 3, "glyph_mask", "../outside.png", "glyph mask path '../outside.png' leads out"


def case_mesh_out(src):
    (src.parent / "secret.ply").write_text("ply\n")
    return 3, "mesh", "../secret.ply", "mesh path '../secret.ply' leads out"


SAFETY_CASES = [case_parent_path, case_hidden_parent_path, case_absolute_path, case_symlink_out,
                case_symlinked_folder_out, case_symlink_loop, case_undeclared_label, case_decompression_bomb,
                case_bomb_below_pils_limit, case_not_utf8, case_duplicate_id, case_id_differing_in_case,
                case_glyph_mask_out, case_mesh_out]


@pytest.mark.parametrize("case", SAFETY_CASES, ids=lambda f: f.__name__[5:])
def test_a_bad_corpus_is_refused_names_its_row_and_writes_nothing(src, tmp_path, case):
    row, column, value, reason = case(src)
    header = list(REQUIRED) + [c for c in ("glyph_mask", "mesh") if c == column]
    rows = [r + [""] * (len(header) - 4) for r in good_rows()]
    rows[row - 2][header.index(column)] = value
    with open(src / "manifest.csv", "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header] + rows)
    before = snapshot(src.parent)
    out = tmp_path / "out" / "corpus"
    with pytest.raises(ImportRejected) as err:
        import_corpus(src / "manifest.csv", src, out, classes=CLASSES)
    hits = [p for p in err.value.problems if (p.row, p.column) == (row, column)]
    assert hits, str(err.value)
    assert any(re.search(reason, p.message) for p in hits), str(err.value)
    assert f"row {row}, column '{column}'" in str(err.value)
    assert not (tmp_path / "out").exists()  # no corpus, no temp folder, not even the parent
    assert snapshot(src.parent) == before


def test_a_symlink_that_stays_inside_is_followed(src, tmp_path):
    (src / "alias.png").symlink_to(src / "a1.png")
    rows = good_rows()
    rows[1][1] = "alias.png"
    out = import_corpus(make_manifest(src, rows), src, tmp_path / "corpus", classes=CLASSES)
    assert (out / "images" / "a2.png").read_bytes() == (out / "images" / "a1.png").read_bytes()
    assert not (out / "images" / "a2.png").is_symlink()


def test_the_pixel_limit_is_a_parameter(src, tmp_path):
    make_manifest(src, good_rows())  # 8 x 6 = 48 pixels each
    with pytest.raises(ImportRejected, match="48 pixels, above the limit of 40"):
        import_corpus(src / "manifest.csv", src, tmp_path / "corpus", classes=CLASSES, max_pixels=40)
    assert not (tmp_path / "corpus").exists()
    out = import_corpus(src / "manifest.csv", src, tmp_path / "corpus", classes=CLASSES, max_pixels=48)
    assert json.loads((out / "corpus.json").read_text())["config"]["max_pixels"] == 48


def test_labels_must_be_declared(src, tmp_path):
    """Without --classes and without a classes.csv beside the manifest, the import refuses and says so."""
    make_manifest(src, good_rows())
    with pytest.raises(ImportRejected) as err:
        import_corpus(src / "manifest.csv", src, tmp_path / "corpus")
    p = only(err.value.problems)
    assert (p.row, p.column, Path(p.file).name) == (None, "label", "manifest.csv")
    assert "labels are not declared" in p.message and "classes.csv" in p.message and "--classes" in p.message
    assert not (tmp_path / "corpus").exists()


def test_classes_csv_beside_the_manifest_declares_keys_names_and_order(src, tmp_path):
    write_csv(src / "classes.csv", ["key", "name_zh", "name_en", "region"],
              [["secular", "世俗", "Secular", "江南"], ["religious", "宗教", "Religious", "西北"]])
    out = import_corpus(make_manifest(src, good_rows()), src, tmp_path / "corpus")
    info = json.loads((out / "corpus.json").read_text("utf-8"))
    assert info["classes"] == [{"key": "secular", "name_zh": "世俗", "name_en": "Secular", "region": "江南"},
                               {"key": "religious", "name_zh": "宗教", "name_en": "Religious", "region": "西北"}]
    assert info["config"]["classes"] == ["secular", "religious"]  # the file's order, not sorted
    assert info["config"]["classes_file"] == str((src / "classes.csv").resolve())
    assert (out / "classes.csv").read_text("utf-8").splitlines() == [
        "key,name_zh,name_en,region", "secular,世俗,Secular,江南", "religious,宗教,Religious,西北"]
    rows = good_rows()
    rows[3][2] = "martian"
    rows.append(["m2", "a1.png", "martian", TEXTS[0]])
    with pytest.raises(ImportRejected, match=r"row 5, column 'label'.*'martian' is not one of the classes"):
        import_corpus(make_manifest(src, rows), src, tmp_path / "again")


@pytest.mark.parametrize("text, row, column, message", [
    ("key,name_en\nreligious,R\nreligious,Again\nsecular,S\n", 3, "key", "declared twice \\(rows 2, 3\\)"),
    ("name_en\nReligious\n", 1, "key", "required column 'key' is missing"),
    ("key,name_en\nreligious,R\n,S\nsecular,S\n", 3, "key", "class key is empty"),
])
def test_a_bad_classes_file_names_its_row(src, tmp_path, text, row, column, message):
    (src / "classes.csv").write_text(text, encoding="utf-8")
    make_manifest(src, good_rows())
    with pytest.raises(ImportRejected) as err:
        import_corpus(src / "manifest.csv", src, tmp_path / "corpus")
    p = only(err.value.problems)
    assert (p.row, p.column, Path(p.file).name) == (row, column, "classes.csv")
    assert re.search(message, p.message), p.message
    assert not (tmp_path / "corpus").exists()


def test_a_plain_classes_list_declares_keys(src, tmp_path):
    (tmp_path / "classes.txt").write_text("religious\n\nsecular\n", encoding="utf-8")
    out = import_corpus(make_manifest(src, good_rows()), src, tmp_path / "corpus", classes=tmp_path / "classes.txt")
    assert json.loads((out / "corpus.json").read_text("utf-8"))["config"]["classes"] == CLASSES


# --- reading and writing -------------------------------------------------------------------------

def sample_df() -> pd.DataFrame:
    return pd.DataFrame({
        "sun_elevation": [12.5, float("nan"), 40.0],
        "text": ["石雕“福”字，\n逗号, 引号\"。", "浮雕", "碑刻"],
        "label": ["001", "002", "001"],
        "id": ["x1", "x2", "x3"],
        "image": ["images/x1.png", "images/x2.png", "images/x3.png"],
        "char": ["福", "寿", "龙"],
        "register": ["expert", "visitor", ""],
        "seed": [1, 2, 3],
        "stroke_types": ["横竖", "", "撇点"],  # an extra text column: "" must not become NaN
        "mirrored": [True, False, False],
    })


def test_manifest_round_trips(tmp_path):
    df = sample_df()
    back = read_manifest(write_manifest(df, tmp_path / "manifest.csv"))
    expected = mf.order_columns(df)
    assert list(back.columns) == ["id", "image", "label", "text", "register", "char",
                                  "sun_elevation", "seed", "stroke_types", "mirrored"]
    pd.testing.assert_frame_equal(back, expected)
    assert back["label"].tolist() == ["001", "002", "001"]  # leading zeros kept
    assert back["stroke_types"].tolist() == ["横竖", "", "撇点"]
    assert back["seed"].dtype == "int64" and back["sun_elevation"].dtype == "float64"
    assert (tmp_path / "manifest.csv").read_bytes().decode("utf-8")  # plain UTF-8


def test_write_requires_required_columns(tmp_path):
    with pytest.raises(ManifestError, match="text"):
        write_manifest(sample_df().drop(columns="text"), tmp_path / "manifest.csv")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_no_temp_file(tmp_path):
    write_manifest(sample_df(), tmp_path / "manifest.csv")
    write_manifest(sample_df(), tmp_path / "manifest.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]
    assert (tmp_path / "manifest.csv").stat().st_mode & 0o777 == 0o644


def test_crash_mid_write_keeps_previous_manifest(tmp_path, monkeypatch):
    path = write_manifest(sample_df(), tmp_path / "manifest.csv")
    before = path.read_bytes()

    def half_then_crash(self, f, **kwargs):
        f.write("id,image,label,text\nx1,images/x1")
        raise RuntimeError("crash mid-write")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_crash)
    with pytest.raises(RuntimeError, match="crash mid-write"):
        write_manifest(sample_df().iloc[:1], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_class_counts():
    assert class_counts(sample_df()) == {"001": 2, "002": 1}


def test_schema_constants():
    assert REQUIRED == ("id", "image", "label", "text")
    assert {"register", "glyph_mask", "stroke_mask", "mesh", "orbit", "split"} <= set(OPTIONAL)
    assert not set(REQUIRED) & set(OPTIONAL)


def test_problem_str_names_row_column_and_file():
    p = Problem(3, "text", "/x/manifest.csv", "not valid UTF-8")
    assert str(p) == "row 3, column 'text', file /x/manifest.csv: not valid UTF-8"
