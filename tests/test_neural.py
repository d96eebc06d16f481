"""The trained models' shared interface: registry, seeded construction, the training loop, features."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import pairmodel_checks as C
from hzlib import evaluate as E
from hzlib.baselines import neural as N
from hzlib.model import Vocabulary, build_vocabulary, load_geometry
from hzlib.pairs import to_model_input
from hzlib.train import TrainConfig, trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["tiny", "cnn_tiny"])
def geometry(request):
    g = load_geometry(request.param)
    # a smaller copy keeps the tests fast; the interface does not depend on the size
    return replace(g, vision=replace(g.vision, image_size=32, layers=1), text=replace(g.text, layers=1),
                   context_length=16)


def _data(n=24, size=32, L=16, seed=0):
    return C.pairs(n, size, L, seed, vocab=50, min_len=3, spread=7)


def test_spec_rejects_degenerate_sizes(geometry):
    with pytest.raises(ValueError, match="n_classes"):
        N.ModelSpec(geometry, vocab_size=50, n_classes=1, n_instances=10)


def test_unknown_model_and_key_collision(geometry):
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        N.make_model("nope", N.ModelSpec(geometry, 50, 10, 24))

    class Other(N.PairModel):
        key = "clip"
    with pytest.raises(ValueError, match="already registered"):
        N.register(Other)


def test_make_model_is_seeded_and_leaves_global_rng(geometry):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = N.make_model("clip", N.ModelSpec(geometry, 50, 10, 24, seed=5))
    after = torch.rand(1)
    b = N.make_model("clip", N.ModelSpec(geometry, 50, 10, 24, seed=5))
    c = N.make_model("clip", N.ModelSpec(geometry, 50, 10, 24, seed=6))
    assert torch.equal(before, after)
    wa, wb, wc = ([p for p in m.parameters() if p.ndim == 2][0] for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_trim_padding_drops_only_all_padding_columns():
    t = torch.tensor([[2, 5, 3, 0, 0, 0], [2, 5, 6, 7, 3, 0]])
    assert torch.equal(trim_padding(t), t[:, :5])
    assert trim_padding(torch.zeros(2, 6, dtype=torch.int64)).shape == (2, 2)


def test_clip_loss_does_not_depend_on_trailing_padding(geometry):
    m = N.make_model("clip", N.ModelSpec(geometry, 50, 10, 24, seed=0)).eval()
    d = _data()
    x = d.images[:8].float() / 255
    with torch.no_grad():
        full = m.loss(x, d.tokens[:8], None, None)
        trimmed = m.loss(x, trim_padding(d.tokens[:8]), None, None)
    torch.testing.assert_close(full, trimmed, rtol=1e-5, atol=1e-6)


def test_fit_is_reproducible_and_lowers_the_loss(geometry):
    d = _data()
    labels = np.arange(len(d)) % 10
    cfg = TrainConfig(epochs=6, batch_size=8, lr=2e-3, warmup_steps=1, seed=3)
    runs = []
    for _ in range(2):
        m = N.make_model("clip", N.ModelSpec(geometry, 50, 10, len(d), seed=1))
        r = N.fit(m, d, labels, cfg, progress=False)
        runs.append((r, N.features(m, d.images)))
    (r1, f1), (r2, f2) = runs
    assert r1.steps == 6 * 3 and len(r1.epoch_loss) == 6
    assert r1.epoch_loss == r2.epoch_loss and np.array_equal(f1, f2)
    assert r1.epoch_loss[-1] < r1.epoch_loss[0]  # 24 pairs are easy to memorise
    assert f1.shape == (len(d), geometry.embed_dim) and f1.dtype == np.float32


def test_fit_checks_its_inputs(geometry):
    d = _data()
    m = N.make_model("clip", N.ModelSpec(geometry, 50, 10, len(d)))
    with pytest.raises(ValueError, match="label_ids has 3 entries for 24 pairs"):
        N.fit(m, d, [0, 1, 2], TrainConfig(), progress=False)
    with pytest.raises(ValueError, match="exceeds the 24 training pairs"):
        N.fit(m, d, np.zeros(len(d), int), TrainConfig(batch_size=32), progress=False)


def test_empty_text_is_bos_eos_then_padding():
    t = N.empty_text(2, 5)
    assert t.tolist() == [[Vocabulary.bos_id, Vocabulary.eos_id, 0, 0, 0]] * 2


def test_card_names_the_model_and_counts_parameters(geometry):
    m = N.make_model("clip", N.ModelSpec(geometry, 50, 10, 24))
    card = m.card()
    assert card["model"] == "clip" and card["parameters"] == sum(p.numel() for p in m.parameters())
    assert card["interpretation"].startswith("CLIP as in chapter 5")


def _corpus(n=24):
    d = _data(n=n)
    words = ["石雕", "书法", "宫廷", "民间", "青铜", "木刻"]
    texts = [f"{words[i % 6]}{words[(i + 1) % 6]}作品" for i in range(n)]
    texts[-1] = "独一无二的孤词"  # a text whose words appear nowhere else
    return d.images, texts, np.arange(n) % 3


def test_train_and_embed_sees_only_training_items_and_resumes_from_its_cache(geometry, tmp_path, monkeypatch):
    images, texts, y = _corpus()
    tr = np.arange(len(y) - 1)  # the last item is held out
    kw = dict(images=images, texts=texts, label_ids=y, n_classes=3, geometry=geometry,
              cfg=TrainConfig(epochs=1, batch_size=8, seed=2), cache_dir=tmp_path, progress=False)
    feats, record, model = N.train_and_embed("clip", train_idx=tr, **kw)
    assert feats.shape == (len(y), geometry.embed_dim)
    assert record["train_items"] == len(tr) and record["fit"]["steps"] == len(tr) // 8
    assert record["vocab_size"] == len(build_vocabulary(texts[:-1]))  # the held-out words are not in it
    assert record["vocab_size"] < len(build_vocabulary(texts))

    monkeypatch.setattr(N, "fit", lambda *a, **k: pytest.fail("a cached run was retrained"))
    again, record2, model2 = N.train_and_embed("clip", train_idx=tr, **kw)
    np.testing.assert_array_equal(again, feats)
    assert record2 == record
    np.testing.assert_array_equal(N.features(model2, images), feats)  # the saved weights are the trained ones
    with pytest.raises(pytest.fail.Exception, match="retrained"):  # other training items: a new run
        N.train_and_embed("clip", train_idx=tr[1:], **kw)
    monkeypatch.setattr(N, "_code_digest", lambda key: "edited")
    with pytest.raises(pytest.fail.Exception, match="retrained"):  # the model's code changed: a new run
        N.train_and_embed("clip", train_idx=tr, **kw)


def test_code_digest_follows_the_model_module():
    assert N._code_digest("clip") == N._code_digest("clip")
    assert N._code_digest("dan") != N._code_digest("item")  # different modules, same training loop


def test_train_and_embed_checks_its_inputs(geometry):
    images, texts, y = _corpus()
    kw = dict(images=images, label_ids=y, n_classes=3, geometry=geometry, cfg=TrainConfig(epochs=1, batch_size=8))
    with pytest.raises(ValueError, match="differ in length"):
        N.train_and_embed("clip", texts=texts[:-1], train_idx=[0, 1], **kw)
    with pytest.raises(ValueError, match="distinct indices"):
        N.train_and_embed("clip", texts=texts, train_idx=[0, 0, 1], **kw)


def test_run_protocol_trains_once_for_loo_and_once_per_fold(geometry):
    images, texts, y = _corpus()
    splits = E.kfold_splits(y, 2, seed=0)
    kw = dict(images=images, texts=texts, label_ids=y, splits=splits, n_classes=3, geometry=geometry,
              cfg=TrainConfig(epochs=1, batch_size=8), progress=False)
    P, recs, model, feats, head = N.run_protocol("clip", "loo", **kw)
    assert P.shape == (24, 3) and len(recs) == 1 and recs[0]["train_items"] == 24
    np.testing.assert_allclose(P.sum(1), 1)
    np.testing.assert_allclose(feats, N.features(model, images), atol=1e-5)  # the returned model's own features
    # the head of protocol (a): fitted on all those features, as Table 3's timing would fit it again
    np.testing.assert_array_equal(head.predict_proba(feats), E.fit_head(feats, y, seed=0).predict_proba(feats))
    run = N.run_protocol("clip", "kfold", **kw)
    assert [r["train_items"] for r in run.records] == [len(tr) for tr, _ in splits]
    np.testing.assert_allclose(run.features, N.features(run.model, images), atol=1e-5)
    assert run.head is None
    with pytest.raises(ValueError, match="protocol='both'"):
        N.run_protocol("clip", "both", **kw)


def test_cards_markdown_holds_every_card_and_the_budget(geometry):
    cards = N.cards(["clip"], N.ModelSpec(geometry, 1000, 10, 24))
    md = N.cards_markdown(cards, cfg=TrainConfig(max_steps=300, batch_size=64, seed=9), n_items=1850, folds=3,
                          results={"clip": {"macro F1 (b)": "0.30 [0.28, 0.32]"}})
    assert md.startswith("### CLIP (`clip`)")
    assert f"{cards[0]['parameters']:,} parameters" in md
    assert "300 optimiser steps, batch 64" in md and "seed 9" in md and "all 1,850" in md and "folds of 3" in md
    assert "macro F1 (b) 0.30 [0.28, 0.32]" in md
    assert "attribute labels" not in md  # CLIP does not train on labels
    tagged = N.cards_markdown([{**cards[0], "interpretation": "a learned <IMG> token"}], cfg=TrainConfig(),
                              n_items=10, folds=2)
    assert "a learned &lt;IMG&gt; token" in tagged and "<IMG>" not in tagged  # no stray HTML tag in the book


def test_fit_trains_each_model_at_its_own_multiple_of_the_shared_learning_rate(geometry, monkeypatch):
    seen = []

    class Recorder(N.Trainer):
        def __init__(self, model, data, cfg, *args, **kwargs):
            seen.append(cfg.lr)
            super().__init__(model, data, cfg, *args, **kwargs)

    monkeypatch.setattr(N, "Trainer", Recorder)
    d = C.pairs()
    cfg = TrainConfig(lr=1e-3, batch_size=8, max_steps=1, warmup_steps=0, progress=False)
    for key in ("clip", "item"):
        N.fit(N.make_model(key, C.spec(geometry)), d, C.labels_of(d), cfg, progress=False)
    assert seen == [1e-3, 1e-3 * N.make_model("item", C.spec(geometry)).lr_scale] and seen[1] == 2e-3


def test_layer_features_are_clips_multi_layer_c_and_the_image_feature_elsewhere(geometry):
    d = C.pairs()
    clip = N.make_model("clip", C.spec(geometry)).eval()
    got = N.features(clip, d.images[:6], layers=True)
    with torch.no_grad():
        want = clip.clip.encode_image_layers(to_model_input(d.images[:6])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    dan = N.make_model("dan", C.spec(geometry)).eval()
    np.testing.assert_array_equal(N.features(dan, d.images[:6], layers=True), N.features(dan, d.images[:6]))
