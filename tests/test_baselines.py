import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hzlib import evaluate as ev
from hzlib.baselines import DescriptorProbe, FactorProbe, PixelProbe, TextProbe, pixel_features
from hzlib.evaluate import cross_validate, kfold_splits

CLASSES = ["imperial", "garden", "folk"]


def _labels(n_per=12):
    return np.repeat(CLASSES, n_per)


def _split(labels, seed=0):
    return ev.kfold_splits(labels, 3, seed=seed)[0]


def _accuracy(probe, labels, train, test):
    P = probe.fit(train).predict_proba(test)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert P.shape == (len(test), len(CLASSES)) and (P >= 0).all()
    return float((np.array(CLASSES)[P.argmax(1)] == labels[test]).mean())


def test_pixel_probe_on_synthetic_images(tmp_path):
    labels = _labels()
    rng = np.random.default_rng(0)
    paths = []
    for i, lab in enumerate(labels):
        img = rng.integers(0, 60, (40, 40, 3)).astype(np.uint8)
        k = CLASSES.index(lab)
        img[:, 13 * k:13 * k + 13] += 150  # a bright band whose position gives the class
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    X = pixel_features(paths, size=8)
    assert X.shape == (len(labels), 8 * 8 * 3) and 0 <= X.min() and X.max() <= 1
    train, test = _split(labels)
    probe = PixelProbe(X, labels, classes=CLASSES, pca=8)
    assert _accuracy(probe, labels, train, test) >= 0.9
    with pytest.raises(ValueError, match="pca"):
        PixelProbe(X, labels, pca=500).fit(train)


def test_descriptor_probe_on_separable_features_and_absent_class():
    labels = _labels()
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 20)) * 2
    X = rng.normal(size=(len(labels), 20)) + centres[[CLASSES.index(c) for c in labels]]
    train, test = _split(labels)
    probe = DescriptorProbe(X, labels, classes=CLASSES)
    assert _accuracy(probe, labels, train, test) >= 0.9
    # a class missing from the training items gets a zero column, and rows still sum to 1
    no_folk = train[labels[train] != "folk"]
    P = probe.fit(no_folk).predict_proba(test)
    assert (P[:, 2] == 0).all() and np.allclose(P.sum(1), 1)
    assert probe.card()["pipeline"] == "StandardScaler -> LogisticRegression"


def _texts(labels, seed=0):
    rng = np.random.default_rng(seed)
    cue = {"imperial": "宫廷气派，金碧辉煌", "garden": "园林清幽，曲径通幽", "folk": "民间吉祥，热闹喜庆"}
    filler = ["这件作品很好看", "字形端正", "材质是石头", "放在院子里", "红色的字很醒目", "线条流畅"]
    return [f"{rng.choice(filler)}。{cue[lab]}。{rng.choice(filler)}。" for lab in labels]


@pytest.mark.parametrize("analyzer", ["char", "word"])
def test_text_probe_reads_the_cue(analyzer):
    labels = _labels()
    texts = _texts(labels)
    train, test = _split(labels)
    assert _accuracy(TextProbe(texts, labels, classes=CLASSES, analyzer=analyzer), labels, train, test) == 1.0


def test_text_probe_vocabulary_comes_from_training_texts_only():
    labels = _labels()
    texts = _texts(labels)
    train, test = _split(labels)
    texts[test[0]] = texts[test[0]] + "饕餮"  # a token that only a held-out text has
    probe = TextProbe(texts, labels, classes=CLASSES, analyzer="char", ngram_range=(1, 1)).fit(train)
    vocab = probe.pipeline[0].vocabulary_
    assert "饕" not in vocab and "宫" in vocab


def test_cross_validation_with_a_baseline_beats_chance():
    labels = _labels(n_per=10)
    probe = TextProbe(_texts(labels, seed=2), labels, classes=CLASSES, analyzer="char")
    splits = ev.kfold_splits(labels, 5, seed=0)
    oof = ev.cross_validate(probe.fit_predict, splits, n_items=len(labels), n_classes=3)
    y = ev.encode_labels(labels, CLASSES)
    assert ev.metric_table(y, oof).loc["macro", "top1_accuracy"] > 0.9


def test_arguments_are_checked():
    labels = _labels()
    X = np.zeros((len(labels), 4))
    with pytest.raises(ValueError, match="labels"):
        DescriptorProbe(X[:5], labels)
    with pytest.raises(ValueError, match="not in classes"):
        DescriptorProbe(X, labels, classes=["imperial"])
    with pytest.raises(ValueError, match="analyzer"):
        TextProbe(["a"] * len(labels), labels, analyzer="bytes")
    with pytest.raises(RuntimeError, match="fit"):
        DescriptorProbe(X, labels).predict_proba([0])
    with pytest.raises(ValueError, match="train_idx"):
        DescriptorProbe(X, labels).fit([len(labels)])


def test_factor_probe_reads_the_factors_it_is_given():
    rng = np.random.default_rng(0)
    n = 120
    labels = np.arange(n) % 3
    X = pd.DataFrame({"material": np.array(["stone", "bronze", "wood"])[labels], "fog": rng.normal(size=n)})
    splits = kfold_splits(labels.tolist(), 3, seed=0)
    P = cross_validate(FactorProbe(X, labels, seed=0).fit_predict, splits, n_items=n, n_classes=3)
    assert (P.argmax(1) == labels).mean() == 1.0  # the material names the class
    noise = X.assign(material=np.array(["stone", "bronze", "wood"])[rng.integers(0, 3, n)])
    P = cross_validate(FactorProbe(noise, labels, seed=0).fit_predict, splits, n_items=n, n_classes=3)
    assert (P.argmax(1) == labels).mean() < 0.6  # factors independent of the class: near chance
