import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hzlib import model as M
from hzlib.model import Geometry, TowerGeometry
from hzlib.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


MICRO = Geometry(name="micro", embed_dim=32, context_length=16,
                 vision=TowerGeometry(width=32, layers=2, heads=2, image_size=32, patch_size=8),
                 text=TowerGeometry(width=32, layers=2, heads=2))

MICRO_CNN = Geometry(name="micro_cnn", embed_dim=32, context_length=16,
                     vision=TowerGeometry(width=32, layers=2, heads=2, image_size=32, patch_size=8, kind="cnn"),
                     text=TowerGeometry(width=32, layers=2, heads=2, kind="bag"))

TEXTS = ["这件“寿”字雕塑整体完成度较高。", "作品以玉石为材，质感表现到位。", "这件作品用的是温润的玉石。"]


# -- geometry --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny", "vit_s16", "vit_b16"])
def test_named_geometries_build_configs(name):
    g = M.load_geometry(name)
    cfg = M.clip_config(g, vocab_size=1000)
    assert cfg.vision_config.hidden_size == g.vision.width
    assert cfg.text_config.num_hidden_layers == g.text.layers
    assert cfg.projection_dim == g.embed_dim
    assert cfg.text_config.eos_token_id == M.Vocabulary.eos_id


def test_geometry_sizes():
    assert (M.load_geometry("vit_b16").vision.width, M.load_geometry("vit_b16").text.width) == (768, 512)
    m = M.build_model(M.load_geometry("tiny"), 1000, seed=0)
    n = M.count_parameters(m)["total"]
    assert 1e6 <= n <= 3e6
    assert m.visual.model.config._attn_implementation == "sdpa"
    assert float(m.logit_scale.detach()) == pytest.approx(math.log(1 / 0.07))
    cnn = M.build_model(M.load_geometry("cnn_tiny"), 1000, seed=0)
    assert (type(cnn.visual), type(cnn.text)) == (M.ConvTower, M.BagTextTower)
    assert 1e6 <= M.count_parameters(cnn)["total"] <= 3e6


def test_cnn_tower_leaves_the_patch_grid():
    m = M.build_model(M.load_geometry("cnn_tiny"), 100, seed=0).eval()
    x = torch.randn(2, 3, 64, 64)
    assert m.visual.cam_layer(-1)(m.visual.stages[:-1](x)).shape == (2, 256, 4, 4)  # 64 px / 16 px patches
    assert [s[0].out_channels for s in m.visual.stages] == [32, 64, 128, 256]
    assert m.encode_image(x).shape == (2, 128)


@pytest.mark.parametrize("geometry", [MICRO, MICRO_CNN], ids=["vit", "cnn"])
def test_multi_layer_representation_holds_every_layer(geometry):
    m = M.build_model(geometry, 50, seed=0).eval()
    x = torch.randn(3, 3, 32, 32)
    C = M.encode_image_layers(m, x, batch_size=2)
    layers = m.visual.layer_features(x)
    assert len(layers) == (2 if geometry is MICRO else 3)  # two encoder layers; log2(8 px patches) = 3 stages
    assert C.shape == (3, sum(t.shape[1] for t in layers))
    last = layers[-1]
    with torch.no_grad():
        if geometry is MICRO_CNN:  # the projection reads the last stage's pooled output
            torch.testing.assert_close(m.visual.proj(last), m.encode_image(x), rtol=1e-5, atol=1e-6)
        else:  # the ViT's [CLS] after its last layer, before the post-LayerNorm that pools it
            pooled = m.visual.model.vision_model.post_layernorm(last) if hasattr(m.visual.model, "vision_model") \
                else m.visual.model.post_layernorm(last)
            torch.testing.assert_close(m.visual.proj(pooled), m.encode_image(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(C[:, -last.shape[1]:], last, rtol=1e-5, atol=1e-6)


def _load_geometry_file(tmp_path, text: str):
    p = tmp_path / "odd.yml"
    p.write_text(text)
    return M.load_geometry(p)


def test_cnn_geometry_needs_a_power_of_two_patch(tmp_path):
    with pytest.raises(M.GeometryError, match=r"patch_size=12: a cnn tower(.|\n)*text\.kind='bow'"):
        _load_geometry_file(tmp_path, "embed_dim: 8\ncontext_length: 8\nvision: {kind: cnn, image_size: 24, "
                            "patch_size: 12, width: 16, layers: 1, heads: 1}\ntext: {kind: bow, width: 8, layers: 1, "
                            "heads: 1}\n")


def test_bag_tower_is_the_mean_of_word_embeddings_only():
    v = M.build_vocabulary(TEXTS)
    m = M.build_model(MICRO_CNN, len(v), seed=0).eval()
    ids = v.encode(TEXTS, 16)
    emb = m.text.embed.weight.detach()
    words = ids[0][(ids[0] > v.eos_id) | (ids[0] == v.unk_id)]
    with torch.no_grad():
        expected = m.text.mlp(emb[words].mean(0, keepdim=True))
        torch.testing.assert_close(m.encode_text(ids[:1]), expected)
        # <bos>, <eos> and padding do not count: more padding or no specials change nothing
        padded = torch.cat([ids[:1], torch.zeros(1, 8, dtype=torch.long)], 1)
        torch.testing.assert_close(m.encode_text(padded), expected)
        torch.testing.assert_close(m.encode_text(words[None]), expected)


def test_paper_geometry_error_names_file_and_fields():
    with pytest.raises(M.GeometryError) as e:
        M.load_geometry("paper")
    msg = str(e.value)
    assert "paper.yml" in msg
    assert "text.width=1280 is not divisible by text.heads=76" in msg
    assert "vision.layers: not stated" in msg


def test_bad_geometry_file(tmp_path):
    with pytest.raises(M.GeometryError,
                       match=r"odd\.yml(.|\n)*vision\.image_size=30 is not a multiple(.|\n)*text\.depth: unknown"):
        _load_geometry_file(tmp_path, "embed_dim: 64\ncontext_length: 16\nvision: {image_size: 30, patch_size: 8, "
                            "width: 64, layers: 1, heads: 4}\ntext: {width: 64, layers: 1, heads: 4, depth: 3}\n")
    with pytest.raises(M.GeometryError, match="available"):
        M.load_geometry("no_such_geometry")


# -- vocabulary ------------------------------------------------------------------------------------

def test_vocabulary_round_trip_and_unknowns(tmp_path):
    v = M.build_vocabulary(TEXTS[:2])
    assert v.itos[:4] == list(M.SPECIALS)
    assert "玉石" in v.itos and "温润" not in v.itos  # built from the given (training) texts only
    ids = v.encode([TEXTS[2]], 16)[0].tolist()
    assert ids[0] == v.bos_id and v.eos_id in ids
    toks = v.decode(ids)
    assert "玉石" in toks and M.UNK in toks and "温润" not in toks
    assert ids[ids.index(v.eos_id) + 1:] == [v.pad_id] * (15 - ids.index(v.eos_id))
    v.save(tmp_path / "vocab.json")
    w = M.Vocabulary.load(tmp_path / "vocab.json")
    assert w.itos == v.itos
    assert torch.equal(w.encode(TEXTS, 16), v.encode(TEXTS, 16))


def test_truncation_keeps_eos_and_min_count():
    v = M.build_vocabulary(TEXTS, min_count=2)
    assert "玉石" in v.itos and "寿" not in v.itos  # 玉石 occurs twice, 寿 once
    ids = v.encode([TEXTS[0] * 5], 6)[0].tolist()
    assert len(ids) == 6 and ids[0] == v.bos_id and ids[-1] == v.eos_id and v.pad_id not in ids


def test_padding_needs_no_attention_mask():
    v = M.build_vocabulary(TEXTS)
    m = M.build_model(MICRO, len(v), seed=0).eval()
    ids = v.encode(TEXTS, 16)
    hf = m.text.model
    with torch.no_grad():
        a = hf(input_ids=ids).pooler_output
        b = hf(input_ids=ids, attention_mask=(ids != v.pad_id).long()).pooler_output
        c = hf(input_ids=ids[:, :14]).pooler_output  # fewer pads, same pooled output
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(a, c, rtol=0, atol=1e-6)


# -- FastText initialisation -----------------------------------------------------------------------

class FakeFastText:
    def __init__(self, dim, seed=0, zero=()):
        self.dim, self.rng, self.zero, self.cache = dim, np.random.default_rng(seed), set(zero), {}

    def get_dimension(self):
        return self.dim

    def get_word_vector(self, w):
        if w in self.zero:
            return np.zeros(self.dim, dtype=np.float32)
        return self.cache.setdefault(w, self.rng.normal(size=self.dim).astype(np.float32))


def test_fasttext_rows_go_to_the_right_words():
    v = M.build_vocabulary(TEXTS)
    m = M.build_model(MICRO, len(v), seed=0)
    before = m.text.token_embedding.weight.detach().clone()
    ft = FakeFastText(dim=20, zero={"寿"})
    rec = M.init_token_embeddings(m, v, ft, seed=3)
    emb = m.text.token_embedding.weight.detach().double()
    n_words = len(v) - len(M.SPECIALS)
    assert rec["fasttext_rows"] == n_words - 1  # 寿 has a zero FastText vector: random row kept
    i, j, k = v.id("玉石"), v.id("作品"), v.id("寿")
    assert torch.equal(emb[k].float(), before[k]) and torch.equal(emb[:4].float(), before[:4])
    P = M._orthonormal(20, MICRO.text.width, 3)
    expected = torch.from_numpy(ft.get_word_vector("玉石").astype(np.float64)) @ P * rec["scale"]
    torch.testing.assert_close(emb[i], expected, rtol=1e-5, atol=1e-6)
    # the projection is an isometry (width 32 >= dim 20): FastText cosines are kept
    a, b = (torch.from_numpy(ft.get_word_vector(w).astype(np.float64)) for w in ("玉石", "作品"))
    assert float(torch.cosine_similarity(emb[i], emb[j], dim=0)) == pytest.approx(
        float(torch.cosine_similarity(a, b, dim=0)), abs=1e-5)
    assert M.init_token_embeddings(m, v, None, seed=3)["fasttext_rows"] == 0


def test_fasttext_init_with_a_real_model(tmp_path):
    from hzlib.text import fasttext_word_vector, train_fasttext

    rng = np.random.default_rng(0)
    pool = ["作品", "玉石", "质感", "雕塑", "寿", "温润", "整体", "表现"]
    sents = ["".join(rng.choice(pool, size=5)) + "。" for _ in range(500)]
    ft = train_fasttext(sents, tmp_path / "ft.bin", dim=16, epoch=3, minCount=1, thread=1, seed=7, t=1.0,
                        bucket=20000)
    v = M.build_vocabulary(TEXTS)
    m = M.build_model(MICRO, len(v), seed=0)
    rec = M.init_token_embeddings(m, v, ft, seed=0)
    # words FastText cannot compose (no trained n-gram: a zero vector) keep their random rows
    nonzero = [w for w in v.itos[4:] if np.linalg.norm(fasttext_word_vector(ft, w)) > 0]
    known = [w for w in v.itos[4:] if w in set(ft.get_words())]
    assert len(known) >= 5 and set(known) <= set(nonzero)
    assert rec["fasttext_rows"] == len(nonzero) and rec["fasttext_dim"] == 16
    assert rec["fasttext_vocabulary_rows"] == len(known)
    row = m.text.token_embedding.weight[v.id("玉石")].detach().double()
    want = torch.from_numpy(fasttext_word_vector(ft, "玉石")) @ M._orthonormal(16, 32, 0)
    assert float(torch.cosine_similarity(row, want, dim=0)) == pytest.approx(1.0, abs=1e-5)


# -- Eq 5-7 ----------------------------------------------------------------------------------------

def test_loss_matches_float64_formula():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    tau = 0.07
    loss = M.clip_loss(M.similarity_logits(img, txt, torch.tensor(math.log(1 / tau), dtype=torch.float64)))
    a, b = img.numpy(), txt.numpy()
    s = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T / tau
    i2t = -np.mean([s[i, i] - np.log(np.sum(np.exp(s[i, :]))) for i in range(7)])
    t2i = -np.mean([s[i, i] - np.log(np.sum(np.exp(s[:, i]))) for i in range(7)])
    assert float(loss) == pytest.approx((i2t + t2i) / 2, rel=1e-12)


def test_eq7_closed_form_matches_autograd():
    logits = (torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3).requires_grad_()
    M.clip_loss(logits).backward()
    torch.testing.assert_close(M.clip_loss_grad(logits.detach()), logits.grad, rtol=1e-12, atol=1e-14)


def test_the_gradient_that_eq7_stands_for():
    """Chapter 5's reading of Eq 7: for Eq 6 with logits I.T_j / tau, the gradient with respect to the
    image embedding is -(1/tau)(T - sum_j p_j T_j), not T minus a probability."""
    g = torch.Generator().manual_seed(2)
    tau, texts = 0.1, torch.randn(5, 4, dtype=torch.float64, generator=g)  # row 0: the true text T
    image = torch.randn(4, dtype=torch.float64, generator=g).requires_grad_()
    logits = texts @ image / tau
    (-torch.log_softmax(logits, 0)[0]).backward()
    p = torch.softmax(logits.detach(), 0)
    torch.testing.assert_close(image.grad, -(texts[0] - p @ texts) / tau, rtol=1e-12, atol=1e-12)


# -- building, encoding, saving --------------------------------------------------------------------

def test_build_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    a = M.build_model(MICRO, 20, seed=1)
    assert torch.equal(torch.rand(1), expected)
    b, c = M.build_model(MICRO, 20, seed=1), M.build_model(MICRO, 20, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["visual.proj.weight"], sc["visual.proj.weight"])
    assert not M.build_model(MICRO, 20, seed=1, learn_tau=False).logit_scale.requires_grad


@pytest.mark.parametrize("geometry", [MICRO, MICRO_CNN], ids=["vit", "cnn"])
def test_encode_is_normalised_batch_invariant_and_saved(tmp_path, geometry):
    v = M.build_vocabulary(TEXTS)
    m = M.build_model(geometry, len(v), seed=0).eval()
    x = torch.randn(5, 3, 32, 32)
    e1, e2 = M.encode_images(m, x, batch_size=2), M.encode_images(m, x, batch_size=5)
    torch.testing.assert_close(e1, e2, rtol=0, atol=1e-5)
    torch.testing.assert_close(e1.norm(dim=1), torch.ones(5))
    t = M.encode_texts(m, v.encode(TEXTS, 16), batch_size=2)
    assert t.shape == (3, 32) and not m.training  # the training flag is restored
    M.save_clip(tmp_path / "clip", m, v, geometry, {"note": "x"})
    m2, v2, g2, info = M.load_clip(tmp_path / "clip")
    assert g2 == geometry and info == {"note": "x"} and v2.itos == v.itos
    torch.testing.assert_close(M.encode_texts(m2, v2.encode(TEXTS, 16)), t, rtol=0, atol=1e-6)
    torch.testing.assert_close(M.encode_images(m2, x), e1, rtol=0, atol=1e-5)


def _batch_chance(labels, batch: int) -> float:
    """Independent oracle: the loss of uniform logits on one batch, ln B for in-batch negatives, else the
    mean over rows of ln(1 + the row's other-class pairs)."""
    if labels is None:
        return math.log(batch)
    return float(np.mean([math.log1p(int((labels != c).sum())) for c in labels]))


def test_other_class_negatives_leave_same_class_pairs_out():
    torch.manual_seed(0)
    logits = torch.randn(6, 6)
    distinct = torch.arange(6)
    assert torch.allclose(M.clip_loss(logits, distinct), M.clip_loss(logits))  # every pair is another class
    assert M.clip_loss(logits, torch.zeros(6, dtype=torch.long)).item() == 0.0  # no negative left
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    # hand-computed row 0 (image->text): its negatives are texts 2..5, not text 1
    row = torch.cat([logits[0, :1], logits[0, 2:]])
    assert torch.isclose(F.cross_entropy(logits.masked_fill(
        (labels[:, None] == labels[None, :]) & ~torch.eye(6, dtype=torch.bool), float("-inf"))[:1], torch.tensor([0])),
        -torch.log_softmax(row, 0)[0])
    # all logits equal: the loss is the chance level chance_loss states
    flat = torch.zeros(6, 6)
    assert M.clip_loss(flat, labels).item() == pytest.approx(_batch_chance(labels, 6))
    assert M.clip_loss(flat).item() == pytest.approx(_batch_chance(None, 6)) == pytest.approx(math.log(6))


def test_other_class_model_needs_labels():
    g = M.load_geometry("cnn_tiny")
    model = M.build_model(g, 50, seed=0)
    model.negatives = "other_class"  # as the trainer sets it from TrainConfig.negatives
    x = torch.zeros(2, 3, g.image_size, g.image_size)
    t = torch.ones(2, g.context_length, dtype=torch.long)
    with pytest.raises(ValueError, match="labels"):
        model.loss(x, t)
    assert torch.isfinite(model.loss(x, t, torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="negatives='hard'"):
        TrainConfig(negatives="hard")


def test_chance_level_matches_the_mean_loss_of_uniform_logits_over_random_batches():
    assert M.chance_level(64) == pytest.approx(math.log(64))
    shares = [0.5, 0.3, 0.2]
    rng = np.random.default_rng(0)
    draws = [_batch_chance(torch.from_numpy(rng.choice(3, 16, p=shares)), 16) for _ in range(4000)]
    assert M.chance_level(16, "other_class", shares) == pytest.approx(np.mean(draws), abs=0.01)
    assert M.chance_level(16, "other_class", [1.0]) == 0.0  # one class: no negatives at all
    with pytest.raises(ValueError, match="shares"):
        M.chance_level(16, "other_class")


def test_words_are_cached_but_each_call_gets_its_own_list():
    text = "一尊红色的石雕，刻着“真”字。"
    a = M.words(text)
    assert a == [w for w in M.segment(text) if w.strip("，。“”")] and "真" in a
    a.append("x")  # a caller's list is its own: the cache is not changed
    assert M.words(text) == a[:-1]
