import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hzlib.corpus import card
from hzlib.corpus.manifest import import_corpus, write_manifest
from hzlib.corpus.provenance import file_checksums


def test_colour_histogram_known_answer(tmp_path):
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png")
    a = np.zeros((4, 4, 3), np.uint8)
    a[:2] = (0, 0, 255)  # half blue, half black
    Image.fromarray(a).save(tmp_path / "half.png")
    h = card.colour_histograms([tmp_path / "red.png", tmp_path / "half.png"], bins=2)
    red_bin = (1 * 2 + 0) * 2 + 0
    np.testing.assert_allclose(h[0], np.eye(8)[red_bin])
    np.testing.assert_allclose(h[1][[0, 1]], [np.sqrt(0.5), np.sqrt(0.5)])  # black bin 0, blue bin 1
    assert h[1].sum() == pytest.approx(2 * np.sqrt(0.5))


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = ["a", "b", "c"][i % 3]
        colour = {"a": (200, 30, 30), "b": (30, 200, 30), "c": (30, 30, 200)}[label]
        img = np.clip(rng.normal(colour, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append({"id": str(i), "image": f"{i}.png", "label": label, "text": "石" if i % 2 else "铜",
                     "style": "kai", "form": "relief", "material": "granite", "glyph_paint": "none",
                     "setting": "museum", "char": "真"})
    return tmp_path, pd.DataFrame(rows)


def test_calibration_separates_colour_classes_but_not_uninformative_text(corpus):
    root, df = corpus
    cal = card.calibration(df, root, seed=0)
    assert cal["colour_histogram_lr"]["macro_accuracy"] == 1.0
    assert cal["bag_of_characters_lr"]["macro_accuracy"] < 0.6  # text independent of the class
    assert set(cal["single_factor_lr"]) == set(card.FACTOR_COLUMNS)
    assert cal["single_factor_lr"]["form"]["macro_accuracy"] == pytest.approx(1 / 3, abs=0.1)


def test_card_flags_calibration_outside_the_bands(corpus):
    root, df = corpus
    cal = card.calibration(df, root, seed=0)
    meta = {"params": {"corpus_scale": 1, "image_size": 8, "overlap": 0.2, "cue_prob": 0.2, "orbit_views": 0,
                       "orbit_width": 0, "orbit_height": 0},
            "source": "generated", "profile": "test", "fingerprint": "x", "orbits": [],
            "environment": {"time_utc": "now", "platform": "p", "cpu_count": 2}}
    df = df.assign(stroke_mask="")
    text = card.card_markdown(df, meta, cal)
    assert "is **outside** the band" in text  # colour baseline 1.0 > 0.75
    assert "text baseline's is below" in text


def _manifest(n=150, seed=0, **overrides):
    """A manifest with every generating factor drawn independently of the label, unless overridden."""
    rng = np.random.default_rng(seed)
    label = np.array(["a", "b", "c"])[np.arange(n) % 3]
    df = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "label": label, "text": "石",
                       "region": pd.Series(label).map({"a": "北京", "b": "江南", "c": "岭南"}),
                       "index": np.arange(n) // (n // 3)})  # label-derived: numbered class by class, as built
    for f in card.CEILING_CATEGORICAL:
        df[f] = rng.choice(["p", "q", "r", "s"], n)
    for f in (*card.CEILING_CONTINUOUS, *card.CEILING_OPTIONAL):
        df[f] = rng.normal(size=n)
    for k, v in overrides.items():
        df[k] = v(label, rng) if callable(v) else v
    return df


def test_image_ceiling_is_near_one_when_a_factor_determines_the_label():
    df = _manifest(material=lambda label, rng: pd.Series(label).map({"a": "jade", "b": "bronze", "c": "wood"}))
    r = card.image_ceiling(df, seed=0)
    assert r["macro_accuracy"] == 1.0 and r["macro_f1"] == 1.0 and r["folds"] == 5
    assert set(r["factors"]) == {*card.CEILING_CATEGORICAL, *card.CEILING_CONTINUOUS, *card.CEILING_OPTIONAL}
    assert not {"label", "region", "index", "id", "text"} & set(r["factors"])
    # a continuous factor on a tiny scale (standardised) works as well
    df = _manifest(fog=lambda label, rng: 1e-4 * (pd.Series(label).map({"a": 0, "b": 5, "c": 10})
                                                  + rng.normal(size=len(label))))
    assert card.image_ceiling(df, seed=0)["macro_accuracy"] > 0.95


def test_image_ceiling_is_near_chance_when_the_factors_ignore_the_label():
    # region and index give the label away, but they are not image factors
    r = card.image_ceiling(_manifest(n=300), seed=0)
    assert r["macro_accuracy"] == pytest.approx(1 / 3, abs=0.12)
    assert r["macro_f1"] < 0.45


def test_image_ceiling_is_skipped_with_a_reason_without_factors(corpus):
    df = _manifest().drop(columns=["fog", "style"])
    r = card.image_ceiling(df, seed=0)
    assert set(r) == {"skipped"} and "'style'" in r["skipped"] and "'fog'" in r["skipped"]
    df = _manifest()
    df.loc[3, "warmth"] = np.nan
    assert "warmth" in card.image_ceiling(df, seed=0)["skipped"]
    df = _manifest().drop(columns=list(card.CEILING_OPTIONAL))  # optional factors: used only if present
    assert card.image_ceiling(df, seed=0)["factors"] == [*card.CEILING_CATEGORICAL, *card.CEILING_CONTINUOUS]
    # the fixture's manifest has the categorical factors only: the card says why there is no ceiling
    root, df = corpus
    cal = card.calibration(df, root, seed=0)
    assert "skipped" in cal["image_ceiling_lr"]
    assert "image ceiling" not in " ".join(card.calibration_table(cal).index)
    text = card.card_markdown(df.assign(stroke_mask=""), _meta(), cal)
    assert "is not computed: the manifest has no column(s)" in text


def test_card_reports_the_image_ceiling(corpus):
    root, df = corpus
    full = _manifest(n=len(df), material=lambda label, rng: pd.Series(label).map({"a": "x", "b": "y", "c": "z"}))
    df = df.drop(columns=list(card.FACTOR_COLUMNS)).join(full[[*card.CEILING_CATEGORICAL, *card.CEILING_CONTINUOUS]])
    cal = card.calibration(df, root, seed=0)
    c = cal["image_ceiling_lr"]
    assert c["macro_accuracy"] > 0.95  # 60 items, 13 noise factors beside the one that decides
    assert "macro_f1" in cal["colour_histogram_lr"] and "macro_f1" in cal["bag_of_characters_lr"]
    table = card.calibration_table(cal)
    assert table.loc["image ceiling: true factors + LR", "macro_accuracy"] == round(c["macro_accuracy"], 3)
    text = card.card_markdown(df.assign(stroke_mask=""), _meta(), cal)
    assert (f"**the image ceiling** | {c['accuracy']:.3f} | {c['macro_accuracy']:.3f} | {c['macro_f1']:.3f} |"
            in text)
    assert f"no image model can be expected to exceed its macro accuracy of {c['macro_accuracy']:.2f}" in text


def _meta():
    return {"params": {"corpus_scale": 1, "image_size": 8, "overlap": 0.2, "cue_prob": 0.2, "orbit_views": 0,
                       "orbit_width": 0, "orbit_height": 0},
            "source": "generated", "profile": "test", "fingerprint": "x", "orbits": [],
            "environment": {"time_utc": "now", "platform": "p", "cpu_count": 2}}


def test_write_card_recomputes_a_calibration_of_an_older_version(corpus):
    root, df = corpus
    write_manifest(df, root / "manifest.csv")
    (root / "corpus.json").write_text(json.dumps(_meta()))
    (root / "calibration.json").write_text(json.dumps({"fingerprint": "x", "calibration": {"stale": True}}))
    _, cal = card.write_card(root, seed=0)
    assert "image_ceiling_lr" in cal
    assert json.loads((root / "calibration.json").read_text())["version"] == card.CALIBRATION_VERSION
    _, again = card.write_card(root, seed=0)  # now cached
    assert again == cal


def test_the_card_of_an_imported_corpus_is_written_outside_it(tmp_path):
    """Chapter 1 writes the card of the corpus it reads: never into an imported corpus."""
    src = tmp_path / "src"
    src.mkdir()
    rows = []
    for i in range(8):
        Image.new("RGB", (8, 8), (30 * i, 100, 200 - 20 * i)).save(src / f"p{i}.png")
        rows.append({"id": f"p{i}", "image": f"p{i}.png", "label": "bronze" if i % 2 else "stone",
                     "text": "青铜的字" if i % 2 else "石刻的字"})
    pd.DataFrame(rows).to_csv(src / "manifest.csv", index=False)
    (src / "classes.csv").write_text("key,name_zh,name_en\nstone,石,Stone\nbronze,铜,Bronze\n", encoding="utf-8")
    root = import_corpus(src / "manifest.csv", src, tmp_path / "corpus")
    before = file_checksums(root) | {"corpus.json": (root / "corpus.json").read_bytes()}
    path, cal = card.write_card(root, seed=0, publish_dir=tmp_path / "book")
    assert file_checksums(root) | {"corpus.json": (root / "corpus.json").read_bytes()} == before
    assert path == tmp_path / "book" / "corpus_card.md"
    text = path.read_text(encoding="utf-8")
    assert "An imported corpus" in text and "| stone   | 石 / Stone  |        4 |" in text
    assert cal["bag_of_characters_lr"]["macro_accuracy"] == 1.0  # 青铜 vs 石刻 tells the classes apart
    assert "skipped" in cal["image_ceiling_lr"] and "image ceiling is not computed" in text
    assert card.write_card(root, seed=0)[0] is None  # no publish_dir: no card file at all


def test_missing_ground_truth_names_what_is_missing_and_passes_partial_columns():
    gen = pd.DataFrame({"glyph_mask": ["masks/a_glyph.png", "masks/b_glyph.png"], "stroke_mask": ["", "m.png"]})
    assert card.missing_ground_truth(gen, ["glyph_mask", "stroke_mask"], "The figure") is None
    imported = pd.DataFrame({"id": ["a", "b"], "glyph_mask": ["", " "]})
    why = card.missing_ground_truth(imported, ["glyph_mask", "stroke_mask"], "The pointing game")
    assert why.startswith("The pointing game cannot be computed") and "glyph_mask, stroke_mask" in why
