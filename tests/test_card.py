import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hzlib.corpus import card


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
            "profile": "test", "fingerprint": "x", "orbits": [],
            "environment": {"time_utc": "now", "platform": "p", "cpu_count": 2}}
    df = df.assign(stroke_mask="")
    text = card.card_markdown(df, meta, cal)
    assert "is **outside** the band" in text  # colour baseline 1.0 > 0.75
    assert "text baseline's is below" in text
