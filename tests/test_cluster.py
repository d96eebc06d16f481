import json

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from hzlib import cluster as K
from hzlib.assets import asset_dir


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=300, centers=[(-5, 0), (5, 0), (0, 8)], cluster_std=1.0, random_state=0)
    return X, y


def test_traced_kmeans_matches_sklearn_fit(blobs):
    X, y = blobs
    init = X[[0, 1, 2]]  # a poor start: three points, possibly from the same blob
    trace = K.kmeans_trace(X, 3, init=init, max_iter=100)
    ref = KMeans(n_clusters=3, init=init, n_init=1, max_iter=100).fit(X)
    assert trace.converged and trace.n_iter >= 2
    np.testing.assert_allclose(trace.final_centres, ref.cluster_centers_, atol=1e-10)
    np.testing.assert_array_equal(trace.final_labels, ref.labels_)
    assert trace.inertia[-1] == pytest.approx(ref.inertia_)
    np.testing.assert_array_equal(trace.centres[0], init)
    assert trace.centres.shape == (trace.n_iter + 1, 3, 2) and trace.labels.shape == (trace.n_iter + 1, 300)
    assert np.all(np.diff(trace.inertia) <= 1e-9)
    assert trace.inertia[0] > trace.inertia[-1]  # the centres did move
    assert adjusted_rand_score(y, trace.final_labels) == 1.0


def test_traced_kmeans_stops_at_max_iter(blobs):
    X, _ = blobs
    init = X[[0, 1, 2]]
    t1 = K.kmeans_trace(X, 3, init=init, max_iter=1)
    ref = KMeans(n_clusters=3, init=init, n_init=1, max_iter=1).fit(X)
    assert t1.n_iter == 1 and not t1.converged
    np.testing.assert_allclose(t1.final_centres, ref.cluster_centers_)
    # Seeded k-means++ start: reproducible.
    a, b = K.kmeans_trace(X, 3, seed=4), K.kmeans_trace(X, 3, seed=4)
    np.testing.assert_array_equal(a.centres, b.centres)
    with pytest.raises(ValueError, match="init"):
        K.kmeans_trace(X, 3, init=X[:2])


def test_figure5_pipeline():
    rng = np.random.default_rng(0)
    img = rng.random((40, 40, 3))
    cam = np.zeros((40, 40))
    cam[5:15, 5:15] = 1.0
    cam[25:35, 5:15] = 0.9
    cam[10:30, 25:35] = 0.8
    feats, Z, trace = K.figure5_data(img, cam, quantile=0.7, k=3, seed=0)
    assert len(feats) == int((cam >= np.quantile(cam, 0.7)).sum())
    assert set(feats.columns) == {"x", "y", "r", "g", "b", "attention"}
    assert feats["x"].between(0, 1).all() and Z.shape == (len(feats), 2)
    assert trace.converged and trace.final_labels.max() == 2
    sub = K.attention_features(img, cam, 0.7, max_points=50, seed=1)
    assert len(sub) == 50


def _zhen_like():
    """A 12x12 'character' of 4 strokes: two horizontals, a vertical, a dot; plus glyph pixels of no
    known stroke."""
    sm = np.zeros((12, 12), np.uint16)
    sm[1, 1:11] = 1  # 横
    sm[2:10, 5] = 2  # 竖
    sm[6, 1:11] = 3  # 横 (crossing: drawn later, wins over stroke 2)
    sm[10, 9] = 4  # 点
    glyph = sm > 0
    glyph[11, 1:3] = True  # glyph, no stroke id
    return sm, glyph


def test_stroke_shares_sum_to_in_glyph_share():
    sm, glyph = _zhen_like()
    cam = np.random.default_rng(0).random((12, 12))
    r = K.stroke_attention(cam, sm, "横竖横点", glyph_mask=glyph)
    assert r.ok
    assert r.per_stroke["share"].sum() + r.unassigned == pytest.approx(r.in_glyph)
    assert r.in_glyph == pytest.approx(cam[glyph].sum() / cam.sum())
    assert r.unassigned == pytest.approx(cam[11, 1:3].sum() / cam.sum())
    assert list(r.per_stroke["pixels"]) == [10, 7, 10, 1]
    pt = r.per_type.set_index("type")
    assert list(pt.index) == ["横", "竖", "点"]  # in STROKE_TYPES order
    assert pt.loc["横", "n_strokes"] == 2
    assert pt["share"].sum() == pytest.approx(r.per_stroke["share"].sum())
    # Attention put on one stroke only goes to that stroke and its type.
    only = (sm == 2).astype(float)
    r2 = K.stroke_attention(only, sm, ["横", "竖", "横", "点"])
    assert r2.per_stroke.set_index("stroke").loc[2, "share"] == 1.0 and r2.in_glyph == 1.0
    assert r2.per_type.set_index("type").loc["竖", "share"] == 1.0


def test_stroke_types_formats():
    assert K.parse_stroke_types("横竖撇点折") == ["横", "竖", "撇", "点", "折"]
    assert K.parse_stroke_types("1225111134") == list("横竖竖折横横横横撇点")
    assert K.parse_stroke_types([1, 2]) == ["横", "竖"]
    assert K.parse_stroke_types("") is None and K.parse_stroke_types(float("nan")) is None
    with pytest.raises(ValueError, match="stroke_types"):
        K.parse_stroke_types("横x")


def test_missing_stroke_data_is_reported():
    sm, glyph = _zhen_like()
    cam = np.ones((12, 12))
    r = K.stroke_attention(cam, None, None, glyph_mask=glyph)
    assert not r.ok and "stroke mask" in r.reason and r.per_stroke.empty
    assert r.in_glyph == pytest.approx(glyph.mean())
    r = K.stroke_attention(cam, np.zeros((12, 12), np.uint16), "")
    assert not r.ok and r.per_stroke.empty
    r = K.stroke_attention(cam, sm, "")  # a mask without types: per stroke yes, per type no
    assert not r.ok and len(r.per_stroke) == 4 and r.per_type.empty
    r = K.stroke_attention(cam, sm, "横竖")
    assert "2 stroke types for 4 strokes" in r.reason
    comp = K.stroke_clusters_vs_components(K.stroke_attention(cam, None), {1: "a"})
    assert np.isnan(comp["ari"]) and comp["reason"]


def test_an_all_zero_map_has_no_shares_and_drops_out_of_the_tables():
    sm, glyph = _zhen_like()
    zero = K.stroke_attention(np.zeros((12, 12)), sm, "横竖横点", glyph_mask=glyph)
    assert not zero.ok and "all zero" in zero.reason and np.isnan(zero.in_glyph) and zero.per_stroke.empty
    ok = K.stroke_attention(np.ones((12, 12)), sm, "横竖横点", glyph_mask=glyph)
    table = K.stroke_table([zero, ok], ["a", "b"])
    assert set(table["id"]) == {"b"} and len(table) == 4
    assert np.isnan(K.stroke_clusters_vs_components(zero, {1: "a", 2: "a", 3: "b", 4: "b"})["ari"])


def test_stroke_clusters_vs_components():
    # Two components far apart: strokes 1-2 top left, 3-4 bottom right; attention differs too.
    sm = np.zeros((20, 20), np.uint16)
    sm[1, 1:6], sm[2:6, 3] = 1, 2
    sm[15, 13:19], sm[14:19, 16] = 3, 4
    cam = np.where(sm > 0, np.where(sm <= 2, 1.0, 0.2), 0.01)
    r = K.stroke_attention(cam, sm, "横竖横竖")
    out = K.stroke_clusters_vs_components(r, ["上", "上", "下", "下"])
    assert out["k"] == 2 and out["ari"] == 1.0  # identical partitions (up to naming)
    assert out["clusters"][1] == out["clusters"][2] != out["clusters"][3]
    bad = K.stroke_clusters_vs_components(r, {1: "上"})
    assert np.isnan(bad["ari"]) and "no component" in bad["reason"]
    assert set(K.ZHEN_COMPONENTS.values()) == {"十", "目", "八"} and len(K.ZHEN_COMPONENTS) == 10


def test_corpus_clustering(blobs):
    X, y = blobs
    curve, table = K.corpus_clustering(X, y, ks=range(2, 6), normalise=False)
    assert list(curve["k"]) == [2, 3, 4, 5]
    assert np.all(np.diff(curve["inertia"]) < 0)  # the elbow curve falls
    assert curve.loc[curve["silhouette"].idxmax(), "k"] == 3
    t = table.set_index("choice")
    assert t.loc["silhouette-best k", "k"] == 3 and t.loc["k = classes", "k"] == 3
    assert t["ari"].min() == 1.0 and t["nmi"].min() == pytest.approx(1.0)
    # Random labels: no agreement.
    r = K.cluster_vs_labels(X, np.random.default_rng(0).integers(0, 3, len(X)), 3)
    assert abs(r["ari"]) < 0.05
    with pytest.raises(ValueError, match="labels"):
        K.cluster_vs_labels(X, y[:10], 3)


def test_zhen_groupings_follow_the_stroke_order():
    """真 in the hanzi-writer data: 十 = 1-2, 目 = 3-7 (open at the bottom), 8 = the long 一, 八 = 9-10."""
    medians = json.loads((asset_dir("hanzi-writer-data") / "真.json").read_text(encoding="utf-8"))["medians"]
    assert len(medians) == 10
    y = [np.mean([p[1] for p in m]) for m in medians]  # y up in hanzi-writer's coordinates
    width = [max(p[0] for p in m) - min(p[0] for p in m) for m in medians]
    assert min(y[0], y[1]) > max(y[2:8])  # 十 on top
    assert int(np.argmax(width)) == 7  # stroke 8 is the long 一
    assert y[7] < min(y[2:7]) and max(y[8], y[9]) < y[7] + 50  # 一 below 目, 八 at the bottom
    for grouping in K.ZHEN_GROUPINGS.values():
        assert sorted(grouping) == list(range(1, 11))
        assert {grouping[s] for s in (1, 2)} == {"十"} and {grouping[s] for s in range(3, 8)} == {"目"}
        assert {grouping[s] for s in (9, 10)} == {"八"}
    assert K.ZHEN_GROUPINGS["十/目/一八"] is K.ZHEN_COMPONENTS


def test_attention_features_stroke_column_is_not_a_feature():
    rng = np.random.default_rng(0)
    img = rng.random((20, 20, 3))
    cam = rng.random((20, 20))
    sm = np.zeros((20, 20), int)
    sm[5:10, 5:10] = 3
    f = K.attention_features(img, cam, 0.5, stroke_mask=sm, max_points=None)
    ys = np.rint(f["y"] * 20 - 0.5).astype(int)
    xs = np.rint(f["x"] * 20 - 0.5).astype(int)
    np.testing.assert_array_equal(f["stroke"], sm[ys, xs])
    Z, pca = K.reduce_2d(f)
    assert pca.n_features_in_ == 6  # x, y, r, g, b, attention


def test_component_crop_and_nearest_texts():
    img = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    sm = np.zeros((10, 10), int)
    sm[1:3, 2:5] = 1
    sm[7:9, 6:9] = 2
    out = K.component_crop(img, sm, [1], margin=0.0, fill=np.zeros(3))
    np.testing.assert_array_equal(out[1:3, 2:5], img[1:3, 2:5])
    assert out[7:9, 6:9].sum() == 0 and out.shape == img.shape
    with pytest.raises(ValueError, match="none visible"):
        K.component_crop(img, sm, [5])
    T = np.eye(3)
    nt = K.nearest_texts(np.array([[0.1, 1.0, 0.0]]), T, ["a", "b", "c"], k=2, names=["q"])
    assert list(nt["text"]) == ["b", "a"] and list(nt["rank"]) == [1, 2] and nt["cosine"].iloc[0] > 0.99


def test_stroke_table_ratio():
    cam = np.zeros((4, 4))
    cam[0, :2] = 1.0  # all attention on stroke 1
    sm = np.zeros((4, 4), int)
    sm[0, :2] = 1
    sm[2, :] = 2
    r = K.stroke_attention(cam, sm, "横竖")
    t = K.stroke_table([r, K.stroke_attention(cam, None)], ["x", "y"])
    assert list(t["id"]) == ["x", "x"]  # the image without strokes contributes no rows
    np.testing.assert_allclose(t["area_share"], [1 / 3, 2 / 3])
    np.testing.assert_allclose(t["ratio"], [3.0, 0.0])


def test_stroke_type_ratios_compare_attention_with_area_per_image():
    strokes = pd.DataFrame({"model": "m", "id": "a", "type": ["横", "横", "竖"], "share": [0.3, 0.3, 0.4],
                            "area_share": [0.25, 0.25, 0.5]})
    sums = K.stroke_type_ratios(strokes).set_index("type")
    assert sums.loc["横", "ratio"] == pytest.approx(0.6 / 0.5) and sums.loc["竖", "ratio"] == pytest.approx(0.4 / 0.5)


def test_kmeans_values_name_every_run_choice_and_score():
    idx = pd.MultiIndex.from_product([["trained, all images", "random init, test split"],
                                      ["k = classes", "silhouette-best k"]], names=["model", "choice"])
    table = pd.DataFrame({"ari": 0.12345, "nmi": 0.5, "k": [10.0, 4.0, 10.0, 3.0]}, index=idx)
    v = K.kmeans_values(table)
    assert v["km_trained_all_k10_ari"] == 0.123 and v["km_random_test_best_k"] == 3 and len(v) == 12


def test_an_imported_corpus_skips_the_set_of_zhen_and_glues_every_key_the_text_reads(tmp_path):
    import re
    from pathlib import Path

    assert K.missing_zhen_set(tmp_path) is None  # no corpus.json: the generated corpus of a profile
    (tmp_path / "corpus.json").write_text(json.dumps({"source": "generated"}), encoding="utf-8")
    assert K.missing_zhen_set(tmp_path) is None
    (tmp_path / "corpus.json").write_text(json.dumps({"source": "imported"}), encoding="utf-8")
    why = K.missing_zhen_set(tmp_path)
    assert "imported corpus" in why
    nb = json.loads((Path(__file__).parent.parent / "notebooks" / "07_clustering.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    read = set(re.findall(r"\{glue:text\}`(\w+)`", text))
    values = K.zhen_values_skipped(why)
    assert read - set(values) and all(k.startswith("km_") for k in read - set(values))  # the rest: every corpus
    assert values["ch07_fig5_ari"] == "skipped: " + why and values["fig5_iter"] == "skipped"
