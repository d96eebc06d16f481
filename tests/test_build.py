"""The corpus builder end to end on a tiny profile: determinism, resume, layout, ground truth."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hzlib import assets
from hzlib.config import load_profile
from hzlib.corpus import build as B, classes as C, render as R
from hzlib.corpus.manifest import read_manifest, validate
from hzlib.corpus.types import Camera


@pytest.fixture(scope="module")
def hanzi_dir():
    try:
        return assets.asset_dir("hanzi-writer-data")
    except assets.AssetError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def tiny():
    return replace(load_profile("smoke"), corpus_scale=0.001, image_size=48, orbit_forms=(), workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny, hanzi_dir):
    return B.build_corpus(tiny, tmp_path_factory.mktemp("c") / "tiny", hanzi_dir=hanzi_dir, progress=False)


def test_layout_and_manifest_valid(corpus, tiny):
    df = read_manifest(corpus / "manifest.csv")
    assert len(df) == 2 * len(C.CLASSES)
    assert validate(corpus / "manifest.csv") == []
    assert set(df["label"]) == set(C.KEYS)
    for col in ("text_expert", "text_visitor", "text_academic", "char", "style", "form", "material", "look"):
        assert (df[col].astype(str).str.len() > 0).all(), col
    meta = json.loads((corpus / "corpus.json").read_text())
    assert meta["source"] == "generated" and meta["n_images"] == len(df)
    img = np.asarray(Image.open(corpus / df["image"].iloc[0]))
    assert img.shape == (48, 48, 3)


def test_paired_text_is_one_of_the_three_registers(corpus):
    df = read_manifest(corpus / "manifest.csv")
    for _, r in df.iterrows():
        assert r["text"] == r[f"text_{r['register']}"]
        assert r["char"] in r["text_academic"] or r["char"] in r["text_expert"] or r["char"] in r["text_visitor"]


def test_glyph_masks_are_present_and_nonempty(corpus):
    df = read_manifest(corpus / "manifest.csv")
    fractions = [np.asarray(Image.open(corpus / p)).astype(bool).mean() for p in df["glyph_mask"]]
    assert np.median(fractions) > 0.01
    strokes = df[df["stroke_mask"] != ""]
    for _, r in strokes.iterrows():
        ids = np.asarray(Image.open(corpus / r["stroke_mask"]))
        assert ids.max() <= int(r["n_strokes"])
        assert set(np.unique(ids[ids > 0])) <= set(range(1, int(r["n_strokes"]) + 1))


def test_same_seed_same_pixels_and_resume(tmp_path, corpus, tiny, hanzi_dir):
    again = tmp_path / "again"
    shutil.copytree(corpus, again)
    df = read_manifest(corpus / "manifest.csv")
    victims = df["id"].iloc[[1, 7]]
    for sid in victims:  # an interrupted build: two samples not yet rendered
        (again / "rows" / f"{sid}.json").unlink()
        (again / "images" / f"{sid}.png").unlink()
    (again / "corpus.json").unlink()
    B.build_corpus(tiny, again, hanzi_dir=hanzi_dir, progress=False)
    for sid in victims:
        a = np.asarray(Image.open(corpus / "images" / f"{sid}.png"))
        b = np.asarray(Image.open(again / "images" / f"{sid}.png"))
        np.testing.assert_array_equal(a, b)
    assert read_manifest(again / "manifest.csv").equals(df)


def test_a_partial_build_with_other_parameters_is_refused(tmp_path, tiny, hanzi_dir):
    out = tmp_path / "c"
    (out / "rows").mkdir(parents=True)
    (out / "build.json").write_text(json.dumps({"fingerprint": "something-else"}))
    with pytest.raises(RuntimeError, match=r"partial corpus built with other parameters.*--force"):
        B.build_corpus(tiny, out, hanzi_dir=hanzi_dir, progress=False)


def test_plan_is_independent_of_profile_workers(tiny, hanzi_dir):
    a = B.plan(tiny, hanzi_dir)
    b = B.plan(replace(tiny, workers=2), hanzi_dir)
    assert a == b
    assert all(B.G.covers(r["style"], r["char"], hanzi_dir) for r in a)


def test_orbit_has_images_true_cameras_and_a_watertight_mesh(tmp_path, tiny, hanzi_dir):
    import open3d as o3d  # here, not at the top: slow to import, and only this test needs it

    prof = replace(tiny, orbit_forms=("relief",), orbit_views=4, orbit_width=64, orbit_height=48)
    info = B.render_orbit(prof, 0, "relief", tmp_path, hanzi_dir)
    folder = tmp_path / "orbits" / info["name"]
    cams = json.loads((folder / "cameras.json").read_text())["cameras"]
    assert len(cams) == 4 == len(list((folder / "images").glob("*.png")))
    centres = []
    for c in cams:
        T = np.array(c["world_to_cam"])
        R = T[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        assert np.array(c["K"])[0, 2] == pytest.approx(32.0)  # principal point at W/2 (pixel-centre convention)
        centres.append(-R.T @ T[:3, 3])
    mesh = o3d.io.read_triangle_mesh(str(folder / "mesh.ply"))
    assert mesh.is_watertight() and len(mesh.triangles) > 100
    lo, hi = mesh.get_min_bound(), mesh.get_max_bound()
    target = (lo + hi) / 2
    d = [np.linalg.norm(c - target) for c in centres]
    assert max(d) - min(d) < 1e-6 * max(d)  # one orbit radius
    # the mesh projects into every view: its centre lands inside the image
    for c in cams:
        p = np.array(c["K"]) @ (np.array(c["world_to_cam"]) @ np.append(target, 1))[:3]
        u, v = p[:2] / p[2]
        assert 0 < u < 64 and 0 < v < 48 and p[2] > 0


def test_manifest_row_regenerates_the_image_exactly(corpus, hanzi_dir):
    """Meshes are not stored per image: the row's factors, geometry, look and camera must rebuild the
    very same picture (and so the mesh the picture shows)."""
    df = read_manifest(corpus / "manifest.csv")
    row = df.iloc[3].to_dict()
    sculpture, geometry = B.sculpture_for(row, hanzi_dir)
    assert geometry == pytest.approx(json.loads(row["geometry"]))
    cam = json.loads(row["camera"])
    camera = Camera(np.array(cam["K"]), np.array(cam["world_to_cam"]), 48, 48)
    image = R.Renderer(sculpture, threads=1).render(camera, R.Look.from_dict(json.loads(row["look"]))).image
    np.testing.assert_array_equal(image, np.asarray(Image.open(corpus / row["image"])))


def test_render_character_set(tmp_path, hanzi_dir):
    prof = replace(load_profile("smoke"), image_size=32)
    rows = B.render_character_set(prof, "真", tmp_path / "zhen", per_class=1, hanzi_dir=hanzi_dir)
    assert len(rows) == 10 and set(rows["char"]) == {"真"} and set(rows["style"]) == {"strokes"}
    assert rows["label"].nunique() == 10 and (rows["index"] >= B.CHARACTER_SET_OFFSET).all()
    assert (rows["n_strokes"] == 10).all() and (rows["stroke_types"] == "横竖竖折横横横横撇点").all()
    assert all((tmp_path / "zhen" / p).is_file() for p in rows["stroke_mask"])
    again = B.render_character_set(prof, "真", tmp_path / "zhen", per_class=1, hanzi_dir=hanzi_dir)  # loaded
    pd.testing.assert_frame_equal(rows, again)
    two = B.render_character_set(prof, "真", tmp_path / "zhen2", per_class=1, hanzi_dir=hanzi_dir, workers=2)
    pd.testing.assert_frame_equal(rows, two)  # rendered in two processes: the same rows, in the same order


def test_plan_sample_is_the_corpus_plan_with_char_and_style_replaced(tiny, hanzi_dir):
    spec = C.CLASSES[3]
    row = B.plan_sample(tiny, spec, 7, hanzi_dir)
    assert row in B.plan(tiny, hanzi_dir) and row["seed"] == tiny.seed
    other = B.plan_sample(tiny, spec, 7, hanzi_dir, char="真", style="strokes", sample_id="x")
    assert other["id"] == "x" and (other["char"], other["style"]) == ("真", "strokes")
    assert {k: v for k, v in other.items() if k not in ("id", "char", "style")} == \
        {k: v for k, v in row.items() if k not in ("id", "char", "style")}
    with pytest.raises(ValueError, match="both or neither"):
        B.plan_sample(tiny, spec, 7, hanzi_dir, char="真")


def test_a_complete_corpus_is_read_without_the_renderer_assets(corpus, tiny, monkeypatch):
    """A machine that only trains (the GPU run) gets the rendered corpus, not the fonts and stroke data."""
    def missing(name):
        raise assets.AssetError(f"{name} is not installed here")

    monkeypatch.setattr(B.assets, "asset_dir", missing)
    assert B.corpus_ready(tiny, corpus) and not B.corpus_ready(replace(tiny, overlap=0.5), corpus)
    assert not B.corpus_ready(tiny, corpus.parent / "absent")
    assert B.build_corpus(tiny, corpus, progress=False) == corpus
    with pytest.raises(assets.AssetError):
        B.build_corpus(tiny, corpus, force=True, progress=False)
    assert (corpus / "manifest.csv").is_file()  # a rebuild that cannot start deletes nothing
