import json
import random
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from hzlib import assets, paper, stats, text

WORDS = ["花岗岩", "大理石", "青铜", "木材", "雕塑", "楷书", "行书", "草书", "庭院", "广场", "博物馆",
         "传统", "文化", "作品", "字形", "笔画", "山水", "明月", "春风", "石头"]
TINY = dict(dim=32, epoch=3, minCount=1, bucket=20000, thread=1, seed=7, lr=0.05, t=1.0)
# fasttext 0.9.3 leaves 90 % of the input matrix uninitialised at thread=1; text.py makes those rows
# zero (fresh mmap pages). Without that, these tiny models gave NaN or differing vectors.


def _sentences(n=1000, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "。" for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "tiny.bin"
    return text.train_fasttext(_sentences(), out, **TINY), out


class _Mock:
    def __init__(self, vecs):
        self.vecs = vecs

    def get_word_vector(self, w):
        return np.asarray(self.vecs[w], dtype=np.float32)

    def get_dimension(self):
        return 2


def test_eq4_hand_computed():
    m = _Mock({"石": [1.0, 0.0], "头": [0.0, 2.0], "山": [3.0, 3.0], "石头": [9.0, 9.0]})
    # Eq 4: mean of the character vectors; the word's own vector ("石头" -> [9, 9]) is not used.
    assert np.allclose(text.eq4_word_vector(m, "石头"), [0.5, 1.0])
    assert np.allclose(text.eq4_word_vector(m, "山石头"), [4 / 3, 5 / 3])
    assert np.allclose(text.fasttext_word_vector(m, "石头"), [9.0, 9.0])
    with pytest.raises(ValueError):
        text.eq4_word_vector(m, "")


def test_sentence_embedding_is_normalised_mean_of_eq4_tokens(monkeypatch):
    m = _Mock({"石": [1.0, 0.0], "头": [0.0, 2.0], "山": [3.0, 3.0]})
    monkeypatch.setattr(text, "segment", lambda s: ["石头", "，", "山"])
    v = np.mean([[0.5, 1.0], [3.0, 3.0]], axis=0)
    assert np.allclose(text.sentence_embedding(m, "石头，山"), v / np.linalg.norm(v))


def test_eq4_on_real_tiny_model(tiny):
    model, _ = tiny
    chars = [model.get_word_vector(c) for c in "花岗岩"]
    assert np.allclose(text.eq4_word_vector(model, "花岗岩"), np.mean(chars, axis=0), atol=1e-6)
    # FastText's own vector of the word differs (it adds the word and its bigrams)
    assert not np.allclose(text.fasttext_word_vector(model, "花岗岩"), text.eq4_word_vector(model, "花岗岩"))
    # for one character the two coincide
    assert np.allclose(text.fasttext_word_vector(model, "石"), text.eq4_word_vector(model, "石"))
    e = text.sentence_embeddings(model, ["花岗岩雕塑", "楷书作品。"])
    assert e.shape == (2, 32) and np.allclose(np.linalg.norm(e, axis=1), 1.0)


def test_t2s_and_clauses():
    assert text.t2s("國學經典") == "国学经典"
    assert text.t2s("綺殿千尋起，離宮百雉餘。") == "绮殿千寻起，离宫百雉余。"
    assert text.split_clauses("秦川雄帝宅，函谷壯皇居。冰□已鏤津 (注1)") == \
        ["秦川雄帝宅", "函谷壯皇居", "冰已鏤津", "注"]


def test_segment_known_sentence():
    assert text.segment("这件花岗岩雕塑的字体为楷书") == ["这件", "花岗岩", "雕塑", "的", "字体", "为", "楷书"]
    assert text.segment("  ") == []


def test_missing_poetry_asset_names_it(tmp_path):
    with pytest.raises(assets.AssetError, match=r"chinese-poetry@2\.0\.1.*hz assets fetch"):
        assets.asset_dir("chinese-poetry", tmp_path)


def test_corrupted_model_names_file(tiny, tmp_path):
    _, out = tiny
    bad = tmp_path / "bad.bin"
    data = out.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.bin.json").write_text(out.with_name(out.name + ".json").read_text(encoding="utf-8"))
    with pytest.raises(text.ModelError, match=r"bad\.bin.*corrupted"):
        text.load_model(bad)
    with pytest.raises(text.ModelError, match=r"nothere\.bin"):
        text.load_model(tmp_path / "nothere.bin")


def test_load_or_train_reuses_and_retrains(tmp_path):
    out = tmp_path / "m.bin"
    s = _sentences(800)
    m1, trained1 = text.load_or_train(out, s, **TINY)
    m2, trained2 = text.load_or_train(out, s, **TINY)
    assert trained1 and not trained2
    assert np.array_equal(m1.get_word_vector("石"), m2.get_word_vector("石"))
    info = json.loads((tmp_path / "m.bin.json").read_text(encoding="utf-8"))
    assert info["params"]["dim"] == 32 and info["corpus"]["sentences"] == 800
    _, trained3 = text.load_or_train(out, s, **{**TINY, "epoch": 2})
    assert trained3
    # with a corpus id the sentences are only produced when training
    _, t4 = text.load_or_train(out, lambda: s, corpus_id="demo", **TINY)
    _, t5 = text.load_or_train(out, lambda: pytest.fail("corpus read on load"), corpus_id="demo", **TINY)
    assert t4 and not t5


def test_deterministic_one_thread(tiny, tmp_path):
    model, _ = tiny
    again = text.train_fasttext(_sentences(), tmp_path / "again.bin", **TINY)
    for w in ["石", "花岗岩", "楷书"]:
        assert np.array_equal(model.get_word_vector(w), again.get_word_vector(w))
    a = text.sentence_embeddings(model, ["青铜雕塑放在广场"])
    b = text.sentence_embeddings(again, ["青铜雕塑放在广场"])
    assert np.array_equal(a, b)


def test_parallel_segmentation_gives_the_same_file(tmp_path):
    s = _sentences(300) + ["", "。。", "石头，山水"]
    a = text.write_training_file(s, tmp_path / "a.txt", processes=1, block=50)
    b = text.write_training_file(s, tmp_path / "b.txt", processes=2, block=50)
    assert a == b and a["sentences"] == 301
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert (tmp_path / "a.txt").read_text(encoding="utf-8").endswith("石头 山水\n")


def test_poetry_subset_is_simplified_and_deterministic():
    try:
        d = assets.asset_dir("chinese-poetry")
    except assets.AssetError:
        pytest.skip("chinese-poetry not fetched: run `hz assets fetch`")
    a = text.poetry_sentences(d, limit_chars=5000, seed=3)
    assert a == text.poetry_sentences(d, limit_chars=5000, seed=3)
    assert a != text.poetry_sentences(d, limit_chars=5000, seed=4)
    n = sum(map(len, a))
    assert 5000 <= n < 5000 + max(map(len, a))
    joined = "".join(a)
    assert text.t2s(joined) == joined  # already simplified
    assert all(text._NON_HAN.search(s) is None for s in a)


# --- the text -> image map (Table 2's similarity column) ---------------------------------------------

def _paired_data(n=120, d_text=12, d_img=30, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d_text))
    Y = X @ rng.normal(size=(d_text, d_img)) + noise * rng.normal(size=(n, d_img))
    return X, Y, np.arange(n) % 4


def test_map_finds_a_linear_relation_out_of_fold():
    X, Y, y = _paired_data()
    m = text.map_text_to_images(X, Y, y, n_splits=4, n_components=10, seed=1)
    # an exact linear relation: every held-out text is nearest its own image
    assert (m.rank == 1).mean() > 0.9 and m.paired.mean() > 0.9
    assert (m.gap > 0).all() and len(m.alpha) == 4
    assert sorted(np.bincount(m.fold)) == [30, 30, 30, 30] and (m.fold_size == 30).all()


def test_map_of_unrelated_pairs_has_no_gap():
    X, Y, y = _paired_data(n=200)
    Y = np.random.default_rng(5).permutation(Y)  # pairs broken
    m = text.map_text_to_images(X, Y, y, n_splits=4, n_components=10, seed=1)
    mean, lo, hi = stats.mean_ci(m.gap, seed=0)
    assert lo < 0 < hi or abs(mean) < 0.05
    assert 0.3 < np.median(m.rank / m.fold_size) < 0.7  # the own image sits mid-list


def test_map_unpaired_mean_matches_direct_formula():
    X, Y, y = _paired_data(n=40, noise=1.0)
    m = text.map_text_to_images(X, Y, y, n_splits=2, n_components=5, seed=3)
    # the unpaired mean and the paired value put back together give the row mean of the fold's matrix:
    # (paired + (k - 1) * unpaired) / k lies between the min and max similarity, and rank >= 1
    assert ((m.rank >= 1) & (m.rank <= m.fold_size)).all()
    assert np.all(np.abs(m.paired) <= 1 + 1e-12) and np.all(np.abs(m.unpaired) <= 1 + 1e-12)


def test_map_rejects_misaligned_inputs():
    X, Y, y = _paired_data()
    with pytest.raises(ValueError, match="differ in length"):
        text.map_text_to_images(X, Y[:-1], y)


def test_text_statistics_counts(tiny):
    model, _ = tiny
    st = text.text_statistics(model, "花岗岩雕塑，花岗岩！abc")
    # jieba: 花岗岩 / 雕塑 / 花岗岩 / abc -> 4 tokens, 3 distinct; 5 distinct 汉字 counted with repeats = 8
    assert st["tokens"] == 4 and st["vocabulary"] == 3 and st["characters"] == 8
    assert st["in_fasttext_vocabulary"] == 2  # 花岗岩 and 雕塑 are in the tiny model, abc is not


def test_eq4_against_fasttext_single_character_coincides(tiny):
    model, _ = tiny
    t = text.eq4_against_fasttext(model, ["石", "花岗岩"])
    assert t.loc[0, "cosine_eq4_fasttext"] == pytest.approx(1.0, abs=1e-6)
    assert t.loc[1, "cosine_eq4_fasttext"] < 1 - 1e-6
    # FastText's own vector is the mean of the input rows of the word and its n-grams (the docstring's
    # claim), which Eq 4 does not reproduce for a multi-character word
    subwords, ids = model.get_subwords("花岗岩")
    assert "花岗岩" in subwords and "<花" in subwords
    direct = np.mean([model.get_input_vector(i) for i in ids], axis=0)
    np.testing.assert_allclose(text.fasttext_word_vector(model, "花岗岩"), direct, rtol=1e-5, atol=1e-6)


def test_fit_text_map_recovers_a_linear_relation_and_matches_the_folds():
    X, Y, y = _paired_data()
    tmap = text.fit_text_map(X, Y, n_components=10, seed=1)
    S = tmap.similarity(X, Y)
    assert S.shape == (len(X), len(X)) and (S.argmax(1) == np.arange(len(X))).mean() > 0.9
    np.testing.assert_allclose(np.linalg.norm(tmap.texts(X), axis=1), 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        text.fit_text_map(X, Y[:-1])


def test_table2_translations_cover_the_papers_five_texts():
    assert list(text.TABLE2_ZH) == [r.text_id for r in paper.TABLE2]
    han = re.compile(r"^[\u4e00-\u9fff]+$")
    assert all(han.match(zh) for zh in text.TABLE2_ZH.values())


def test_paper_table2_places_each_text_on_our_corpus(tiny, monkeypatch):
    model, _ = tiny
    corpus = _sentences(60, seed=3)
    emb = text.sentence_embeddings(model, corpus)
    rng = np.random.default_rng(0)
    images = emb @ rng.normal(size=(emb.shape[1], 12)) + 0.01 * rng.normal(size=(len(emb), 12))
    df = pd.DataFrame({"id": [f"s{i:03d}" for i in range(len(corpus))],
                       "label": [f"c{i % 3}" for i in range(len(corpus))]})
    pca = PCA(2, random_state=0).fit(emb)
    tmap = text.fit_text_map(emb, images, n_components=8)
    # the tiny model knows only corpus words: give the five texts words it knows, so their vectors differ
    monkeypatch.setattr(text, "TABLE2_ZH", {r.text_id: corpus[i] for i, r in enumerate(paper.TABLE2)})
    t = text.paper_table2(model, pca, tmap, images, df, k=3)
    assert list(t.index) == ["001", "002", "003", "004", "005"]
    assert list(t["text (paper, English)"]) == [r.text for r in paper.TABLE2]
    assert list(t["paper: similarity"]) == [r.similarity for r in paper.TABLE2]
    for i, (tid, row) in enumerate(t.iterrows()):
        e = text.sentence_embedding(model, corpus[i])[None]
        np.testing.assert_allclose([row["x"], row["y"]], pca.transform(e)[0])
        sims = tmap.similarity(e, images)[0]
        assert row["similarity (best image)"] == pytest.approx(sims.max())
        assert row["best image"].startswith(df["id"].iloc[int(sims.argmax())])
        assert row["similarity (best image)"] >= row["similarity (mean of best 3)"]
        st = text.text_statistics(model, corpus[i])
        assert (row["vocabulary"], row["length_characters"]) == (st["vocabulary"], st["characters"])
        assert f"vocabulary {st['vocabulary']}; length {st['characters']}" in row["ours"]
