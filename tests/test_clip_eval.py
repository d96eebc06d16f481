import numpy as np
import pytest
import torch

from hzlib import clip_eval as E, model as M
from hzlib.corpus import classes as C
from hzlib.evaluate import probe
from hzlib.pairs import to_model_input
from hzlib.stats import mean_ci
from trainer_checks import MICRO, VOCAB, synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recall_at_k_on_a_hand_computed_case():
    img = np.eye(3)
    txt = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0.1]])  # image 1 prefers text 2; image 2 -> text 2
    r = E.retrieval_metrics(img, txt, ks=(1, 2), n_boot=200)
    got = {(d, k): v for d, k, v in zip(r.direction, r.k, r.recall)}
    # sims rows = images: [1,0,0], [0,0,1], [0,1,.1]; true pair ranks: 0, 1, 1
    assert got[("image->text", 1)] == pytest.approx(1 / 3) and got[("image->text", 2)] == 1.0
    # columns = texts: text0 -> image0 (rank 0); text1 [0,0,1] -> image2 best, rank 1; text2 [0,1,.1] rank 1
    assert got[("text->image", 1)] == pytest.approx(1 / 3) and got[("text->image", 2)] == 1.0
    row = r[(r.direction == "image->text") & (r.k == 1)].iloc[0]
    assert row.ci_low <= row.recall <= row.ci_high


def test_intervals_come_from_the_shared_bootstrap_helper():
    assert not hasattr(E, "bootstrap_ci")  # one bootstrap helper in the project: hzlib.stats.mean_ci
    img = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]] + np.linspace(0, 0.1, 8)[:, None]
    txt = np.eye(4)[[0, 1, 2, 3, 1, 2, 3, 0]]
    r = E.retrieval_metrics(img, txt, ks=(1,), n_boot=500, seed=4)
    row = r[r.direction == "image->text"].iloc[0]
    sims = img @ txt.T
    hit = (sims > np.diag(sims)[:, None]).sum(1) < 1
    assert (row.recall, row.ci_low, row.ci_high) == pytest.approx(mean_ci(hit.astype(float), n_resamples=500, seed=4))
    none = E.retrieval_metrics(img, txt, ks=(1,), n_boot=0)
    assert none.ci_low.isna().all() and none.ci_high.isna().all()


def test_class_prompts_are_chinese_and_cover_every_class():
    p = E.class_prompts()
    assert list(p) == list(C.KEYS)
    for spec in C.CLASSES:
        assert len(p[spec.key]) == len(spec.cues) + 2
        assert all(any(cue in q for q in p[spec.key]) for cue in spec.cues)
        assert any(spec.name_zh in q for q in p[spec.key])


def test_zero_shot_uses_the_mean_prompt_embedding():
    texts = ["玉石雕塑", "青铜雕塑", "木材作品"]
    vocab = M.build_vocabulary(texts)
    m = M.build_model(MICRO, len(vocab), seed=0)
    prompts = {"jade": ["玉石雕塑", "玉石"], "bronze": ["青铜雕塑"]}
    img = M.encode_texts(m, vocab.encode(["玉石", "青铜雕塑"], 12))  # stand-ins for image embeddings
    r = E.zero_shot(m, vocab, img, ["jade", "bronze"], prompts, context_length=12, n_boot=10)
    jade = torch.nn.functional.normalize(M.encode_texts(m, vocab.encode(prompts["jade"], 12)).mean(0), dim=0)
    np.testing.assert_allclose(r["scores"][:, 0], (img @ jade).numpy(), rtol=1e-5)
    assert r["predictions"][1] == "bronze" and r["classes"] == ["jade", "bronze"]
    with pytest.raises(ValueError, match="no prompts"):
        E.zero_shot(m, vocab, img, ["jade", "stone"], prompts, context_length=12)


def test_test_scores_agree_with_the_functions_they_summarise():
    data = synthetic(60, seed=3)
    model = M.build_model(MICRO, VOCAB, seed=0).eval()
    vocab = M.build_vocabulary(["甲 乙 丙", "丁 戊"])
    labels = np.array(data.labels)
    tr, te = np.arange(0, 60, 2), np.arange(1, 60, 2)
    prompts = {c: ["甲 乙"] for c in sorted(set(labels))}
    got = E.test_scores(model, data, vocab, labels, tr, te, prompts, seed=1)
    img = M.encode_images(model, data.images, to_input=to_model_input).numpy()
    txt = M.encode_texts(model, data.tokens).numpy()
    r = E.retrieval_metrics(img[te], txt[te], seed=1).set_index(["direction", "k"])
    assert got["image->text R@10"].startswith(f"{r.loc[('image->text', 10), 'recall']:.3f} [")
    p = probe(img, labels, tr, te, seed=1)
    assert got["probe macro-F1, embedding"] == (f"{p['macro_f1']:.3f} [{p['macro_f1_ci_low']:.3f}, "
                                                f"{p['macro_f1_ci_high']:.3f}]")
    assert set(got) == {"image->text R@10", "text->image R@10", "zero-shot accuracy", "probe macro-F1, embedding",
                        "probe macro-F1, layers C"}


def test_split_counts_count_each_class_in_each_part():
    t = E.split_counts(["a", "a", "b", "b", "b"], {"train": [0, 2, 3], "test": [1, 4]})
    assert list(t.index) == ["train", "test"]
    assert t.loc["train", "a"] == 1 and t.loc["train", "b"] == 2 and t.loc["test", "total"] == 2


def test_classification_table_leaves_blank_what_a_model_lacks():
    r = {"macro_f1": 0.5, "macro_f1_ci_low": 0.4, "macro_f1_ci_high": 0.6, "accuracy": 0.7, "accuracy_ci_low": 0.6,
         "accuracy_ci_high": 0.8}
    t = E.classification_table({"m": {"accuracy": 0.3, "ci": (0.2, 0.4)}}, {"m": r, "hog": r},
                               {"m": {"difference": 0.0, "ci_low": -0.1, "ci_high": 0.1}}, n_classes=10, majority=0.15)
    assert t.loc["zero-shot accuracy", "m"] == "0.300 [0.200, 0.400]" and t.loc["zero-shot accuracy", "hog"] == ""
    assert t.loc["probe minus HOG + colour (macro-F1)", "hog"] == "" and t["chance: uniform guess"].iloc[0] == 0.1
