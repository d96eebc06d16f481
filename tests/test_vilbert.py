"""ViLBERT: two streams, co-attention, alignment prediction + masked language modelling.
The checks every model passes are in tests/test_comparators.py."""
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


def test_text_stream_ignores_trailing_padding(geometry):
    """Beyond the loss (tests/test_comparators.py): the encoded words themselves."""
    m = N.make_model(KEY, C.spec(geometry)).eval()
    t = C.pairs().tokens[:6]
    with torch.no_grad():
        full, trimmed = m.encode_text(t), m.encode_text(trim_padding(t))
        L = trimmed.shape[1]
        torch.testing.assert_close(full[:, :L][t[:, :L] != 0], trimmed[t[:, :L] != 0], rtol=1e-5, atol=1e-5)


def test_image_features_are_the_vision_stream_before_co_attention(geometry):
    """The feature is what the vision stream produces from the image alone in training too: the mean
    of its tokens before the co-attention blocks, which no text and no co-attention weight changes."""
    m, d = C.model_and_pairs(KEY, geometry)
    x = to_model_input(d.images[:4])
    with torch.no_grad():
        f = m.image_features(x)
        assert f.shape == (4, m.feature_dim) and m.feature_dim == geometry.text.width
        torch.testing.assert_close(f, m.encode_image(x).mean(1))
        t = d.tokens[:4]
        v, _ = m.co_attend(m.encode_image(x), m.encode_text(t), P.padding_mask(t))
        assert not torch.allclose(v.mean(1), f, atol=1e-4)  # after co-attention the text is in it
        for p in [*m.co_vision.parameters(), *m.text_layers.parameters(), *m.image_pool.parameters()]:
            p.add_(1.0)
        torch.testing.assert_close(m.image_features(x), f)


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
    (wq, bq), (wk, wv), (bk, bv) = (a.q.weight, a.q.bias), a.kv.weight.chunk(2), a.kv.bias.chunk(2)
    qx, ky = ln(x, blk.norm_q), ln(y, blk.norm_kv)
    q, k, v = qx @ wq.T + bq, ky @ wk.T + bk, ky @ wv.T + bv
    B, Lq, D = q.shape
    dh = D // heads

    def split(z):
        return z.reshape(B, -1, heads, dh).transpose(1, 2)

    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)
    scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, Lq, D)
    x = x + out @ a.out.weight.T + a.out.bias
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


def _alignment_by_pair(m, x, inputs, t, i, j):
    """h_IMG (.) h_CLS of image i co-attended with text j, and text j's co-attended stream (for MLM)."""
    vi, hj = m.co_attend(m.encode_image(x)[i:i + 1], m.encode_text(inputs)[j:j + 1], t[j:j + 1] == 0)
    return (m.align.weight @ (m.image_pool(vi[0, 0]) * m.text_pool(hj[0, 0])) + m.align.bias)[0], hj[0]


def _unfused(m, x, t):
    """The contrast's inputs: the vision stream's mean and the unmasked text's h_CLS, before co-attention."""
    return m.image_align(m.encode_image(x).mean(1)), m.text_align(m.encode_text(t)[:, 0])


def test_loss_is_contrast_alignment_and_mlm_on_the_true_pairs(geometry):
    """The objective by hand, pair by pair: the streams' contrast before co-attention; half the batch
    true pairs, the rest image i with text i-1; h_IMG (.) h_CLS for alignment; MLM on the true pairs'
    co-attended text stream."""
    C.check_matching_plus_mlm_loss(KEY, geometry, _alignment_by_pair, _unfused)


def test_co_trm_block_updates_both_streams_from_its_inputs(geometry):
    """ViLBERT's Co-TRM: vision reads the text and text reads the vision as they entered the block."""
    m, d = C.model_and_pairs(KEY, geometry)
    assert len(m.co_vision) == len(m.co_text) == 1
    x, t = to_model_input(d.images[:3]), trim_padding(d.tokens[:3])
    with torch.no_grad():
        v, h = m.encode_image(x), m.encode_text(t)
        pad = t == 0
        out_v, out_t = m.co_attend(v, h, pad)
        torch.testing.assert_close(out_v, m.vision_out(m.co_vision[0](v, h, pad)))
        torch.testing.assert_close(out_t, m.text_out(m.co_text[0](h, v, None)))


def test_chance_loss_is_the_loss_at_zero_logits_and_a_uniform_mlm(geometry):
    C.check_matching_plus_mlm_chance(KEY, geometry, "align")
