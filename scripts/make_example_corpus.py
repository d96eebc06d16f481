#!/usr/bin/env python
"""Write the small example "real" corpus of tests/data/real_corpus/ from a generated corpus.

It keeps what a photographer's corpus has (an image, its label and one description) and drops every
piece of ground truth (masks, strokes, meshes, orbits, factors, cameras), so that the chapters meet a
corpus as `hz corpus import` gives it. Images become small JPEGs (the importer stores them as PNG).

    python scripts/make_example_corpus.py data/smoke tests/data/real_corpus

(made from the smoke profile's corpus, `hz corpus build --profile smoke`). Re-running it rewrites OUT.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from hzlib.corpus.classes import CLASSES
from hzlib.corpus.manifest import read_manifest

KEYS = ("tradition", "tech_art", "innovation", "aesthetics")  # the smoke corpus's four largest classes
PER_CLASS = 10  # chapter 5 splits each class 70/15/15; chapter 8 draws stratified folds
SIZE = 96
QUALITY = 85


def make(src: Path, out: Path, keys=KEYS, per_class: int = PER_CLASS) -> Path:
    df = read_manifest(src / "manifest.csv")
    picks = []
    for key in keys:
        rows = df[df["label"] == key].sort_values("id")
        if len(rows) < per_class:
            raise SystemExit(f"{src}: class {key!r} has {len(rows)} images, {per_class} needed")
        picks.append(rows.iloc[:per_class])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (tmp / "images").mkdir()
    rows = []
    for part in picks:
        for rec in part.to_dict("records"):
            name = f"photo_{len(rows):03d}.jpg"
            with Image.open(src / rec["image"]) as im:
                im.convert("RGB").resize((SIZE, SIZE), Image.LANCZOS).save(tmp / "images" / name, quality=QUALITY)
            rows.append({"id": f"real{len(rows):03d}", "image": name, "label": rec["label"], "text": rec["text"]})
    _write_csv(tmp / "manifest.csv", ["id", "image", "label", "text"], rows)
    spec = {c.key: c for c in CLASSES}
    _write_csv(tmp / "classes.csv", ["key", "name_zh", "name_en"],
               [{"key": k, "name_zh": spec[k].name_zh, "name_en": spec[k].name_en} for k in keys])
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="a generated corpus folder (e.g. data/smoke)")
    ap.add_argument("out", type=Path, help="where to write manifest.csv, classes.csv and images/")
    a = ap.parse_args()
    print(make(a.src, a.out))
