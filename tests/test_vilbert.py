"""ViLBERT: two streams, co-attention, alignment prediction + masked language modelling."""
import math

import pytest
import torch
import torch.nn.functional as F

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import _pretraining as P, neural as N
from hzlib.baselines.vilbert import CoAttention
from hzlib.pairs import to_model_input
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = "vilbert"


@pytest.fixture(scope="module")
def geometry():
    return C.small_geometry()


def test_shapes_and_a_finite_loss(geometry):
    C.check_shapes(KEY, geometry)


def test_loss_falls_when_overfitting(geometry):
    C.check_overfits(KEY, geometry)


def test_trailing_padding_changes_nothing(geometry):
    C.check_padding_invariance(KEY, geometry)
    m = N.make_model(KEY, C.spec(geometry)).eval()
    t = C.pairs().tokens[:6]
    with torch.no_grad():
        full, trimmed = m.encode_text(t), m.encode_text(trim_padding(t))
        L = trimmed.shape[1]
        torch.testing.assert_close(full[:, :L][t[:, :L] != 0], trimmed[t[:, :L] != 0], rtol=1e-5, atol=1e-5)


def test_image_features_ignore_the_batch(geometry):
    C.check_batch_independence(KEY, geometry)


def test_image_features_are_the_vision_stream_before_co_attention(geometry):
    """The feature is what the vision stream produces from the image alone in training too: the mean
    of its tokens before the co-attention blocks, which no text and no co-attention weight changes."""
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    x = to_model_input(d.images[:4])
    with torch.no_grad():
        f = m.image_features(x)
        assert f.shape == (4, m.feature_dim) and m.feature_dim == geometry.vision.width
        torch.testing.assert_close(f, m.encode_image(x).mean(1))
        t = d.tokens[:4]
        v, _ = m.co_attend(m.encode_image(x), m.encode_text(t), P.padding_mask(t))
        assert not torch.allclose(v.mean(1), f, atol=1e-4)  # after co-attention the text is in it
        for p in [*m.co_vision.parameters(), *m.text_layers.parameters(), *m.image_pool.parameters()]:
            p.add_(1.0)
        torch.testing.assert_close(m.image_features(x), f)


def test_seeded(geometry):
    C.check_seeded(KEY, geometry)


def test_parameter_count_is_comparable_to_clip():
    ours, clip = C.check_parameter_count(KEY)
    assert 0.9 * clip < ours < 1.1 * clip


def test_card_and_token_embedding(geometry):
    m = N.make_model(KEY, C.spec(geometry))
    card = m.card()
    assert card["model"] == KEY and card["title"] == "ViLBERT" and not card["uses labels"]
    assert card["interpretation"].startswith("ViLBERT (Lu et al. 2019)") and "masked region" in card["interpretation"]
    assert m.token_embedding() is m.token and m.mlm.embedding is m.token


def _co_attention_by_hand(blk, x, y, pad, heads):
    def ln(z, norm):
        return F.layer_norm(z, z.shape[-1:], norm.weight, norm.bias, norm.eps)

    a = blk.attn
    if a.in_proj_weight is not None:
        wq, wk, wv = a.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = a.q_proj_weight, a.k_proj_weight, a.v_proj_weight
    bq, bk, bv = a.in_proj_bias.chunk(3)
    qx, ky = ln(x, blk.norm_q), ln(y, blk.norm_kv)
    q, k, v = qx @ wq.T + bq, ky @ wk.T + bk, ky @ wv.T + bv
    B, Lq, D = q.shape
    dh = D // heads

    def split(z):
        return z.reshape(B, -1, heads, dh).transpose(1, 2)

    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)
    scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, Lq, D)
    x = x + out @ a.out_proj.weight.T + a.out_proj.bias
    l1, l2 = blk.ff[0], blk.ff[2]
    return x + F.gelu(ln(x, blk.norm_ff) @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias


@pytest.mark.parametrize("other_width", [6, 8])
def test_co_attention_by_hand(other_width):
    """Queries of one stream, keys and values of the other, its padding ignored, then the feed-forward."""
    torch.manual_seed(0)
    blk = CoAttention(8, other_width, 2, 2.0, "gelu").eval()
    x, y = torch.randn(2, 3, 8), torch.randn(2, 5, other_width)
    pad = torch.tensor([[False, False, False, True, True], [False] * 5])
    with torch.no_grad():
        torch.testing.assert_close(blk(x, y, pad), _co_attention_by_hand(blk, x, y, pad, 2), rtol=1e-5, atol=1e-5)
        y2 = y.clone()
        y2[0, 3:] = 100.0  # what sits at the padding does not matter
        torch.testing.assert_close(blk(x, y2, pad), blk(x, y, pad))


def test_loss_is_alignment_plus_mlm_on_the_true_pairs(geometry):
    """The objective by hand, pair by pair: half the batch true pairs, the rest image i with text i-1;
    h_IMG (.) h_CLS for alignment; MLM on the true pairs' co-attended text stream."""
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).train()
    x, t = to_model_input(d.images[4:8]), trim_padding(d.tokens[4:8])
    seed = next(s for s in range(100)  # a draw that masks words of the true pairs
                if (torch.manual_seed(s)
                    and P.mask_tokens(t, C.VOCAB, geometry.context_length, P.MASK_PROB)[1][:2] != P.IGNORE).any())
    with torch.no_grad():
        torch.manual_seed(seed)
        loss = m.loss(x, t, None, None)
        torch.manual_seed(seed)
        inputs, targets = P.mask_tokens(t, C.VOCAB, geometry.context_length, P.MASK_PROB)
        v, h = m.encode_image(x), m.encode_text(inputs)
        logits, mlm_hidden = [], []
        for i, j in [(0, 0), (1, 1), (2, 1), (3, 2)]:
            vi, hj = m.co_attend(v[i:i + 1], h[j:j + 1], (t[j:j + 1] == 0))
            logits.append((m.align.weight @ (m.image_pool(vi[0, 0]) * m.text_pool(hj[0, 0])) + m.align.bias)[0])
            mlm_hidden.append(hj[0])
        z = torch.stack(logits)
        y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        itm = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
        mlm = m.mlm(torch.stack(mlm_hidden[:2]), targets[:2])
    torch.testing.assert_close(loss, itm + mlm, rtol=1e-5, atol=1e-5)


def test_co_trm_block_updates_both_streams_from_its_inputs(geometry):
    """ViLBERT's Co-TRM: vision reads the text and text reads the vision as they entered the block."""
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    assert len(m.co_vision) == len(m.co_text) == 1
    x, t = to_model_input(d.images[:3]), trim_padding(d.tokens[:3])
    with torch.no_grad():
        v, h = m.encode_image(x), m.encode_text(t)
        pad = t == 0
        out_v, out_t = m.co_attend(v, h, pad)
        torch.testing.assert_close(out_v, m.vision_out(m.co_vision[0](v, h, pad)))
        torch.testing.assert_close(out_t, m.text_out(m.co_text[0](h, v, None)))


def test_chance_loss_is_the_loss_at_zero_logits_and_a_uniform_mlm(geometry):
    """A zero matching layer (logit 0: ln 2) and a zero MLM transform (logits = the zero bias: ln V)."""
    m = N.make_model(KEY, C.spec(geometry))
    chance = C.check_chance_loss(m, C.zero_matching_and_mlm("align"), B=16)
    assert chance == pytest.approx(math.log(2) + math.log(C.VOCAB))
