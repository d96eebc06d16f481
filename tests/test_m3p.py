"""M3P: one stream over [CLS] + text + patches, multimodal MLM + image-text matching.
The checks every model passes are in tests/test_comparators.py."""
import math

import pytest
import torch
import torch.nn.functional as F

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import neural as N
from hzlib.baselines.m3p import IMAGE, TEXT
from hzlib.pairs import to_model_input
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = "m3p"


def test_sequence_ignores_trailing_padding(geometry):
    """Beyond the loss (tests/test_comparators.py): [CLS], the patches and the words of the sequence."""
    m, d = C.model_and_pairs(KEY, geometry)
    x, t = to_model_input(d.images[:6]), d.tokens[:6]
    tt = trim_padding(t)
    with torch.no_grad():
        full, trimmed = m.encode(x, t), m.encode(x, tt)
    L, Lt = t.shape[1], tt.shape[1]
    torch.testing.assert_close(full[:, 0], trimmed[:, 0], rtol=1e-5, atol=1e-5)                  # [CLS]
    torch.testing.assert_close(full[:, 1 + L:], trimmed[:, 1 + Lt:], rtol=1e-5, atol=1e-5)        # patches
    words = tt != 0
    torch.testing.assert_close(full[:, 1:1 + Lt][words], trimmed[:, 1:1 + Lt][words], rtol=1e-5, atol=1e-5)


def test_image_features_are_the_image_tokens_the_stream_reads(geometry):
    """M3P has no image-only path: its feature is the mean of the image tokens at the stream's input,
    exactly as the stream receives them with a text, and no layer or text changes it."""
    m, d = C.model_and_pairs(KEY, geometry)
    x, t = to_model_input(d.images[:4]), d.tokens[:4]
    seen = []
    hook = m.layers[0].register_forward_pre_hook(lambda mod, args, kwargs: seen.append(args[0]), with_kwargs=True)
    with torch.no_grad():
        try:
            m.encode(x, t)
        finally:
            hook.remove()
        f = m.image_features(x)
        assert f.shape == (4, m.feature_dim) and m.feature_dim == geometry.text.width
        torch.testing.assert_close(m.image_tokens(x), seen[0][:, 1 + t.shape[1]:])  # the patches, as read with a text
        torch.testing.assert_close(f, seen[0][:, 1 + t.shape[1]:].mean(1))
        for p in [*m.layers.parameters(), *m.project.parameters(), *m.token.parameters()]:
            p.add_(1.0)
        torch.testing.assert_close(m.image_features(x), f)


def test_card_and_token_embedding(geometry):
    m = N.make_model(KEY, C.spec(geometry))
    card = m.card()
    assert card["model"] == KEY and card["title"] == "M3 (read as M3P)" and not card["uses labels"]
    assert "M3P" in card["follows"] and "code-switching" in card["interpretation"]
    assert m.token_embedding() is m.token and m.mlm.embedding is m.token


def _ln(z, norm):
    return F.layer_norm(z, z.shape[-1:], norm.weight, norm.bias, norm.eps)


def test_single_stream_by_hand(geometry):
    """One layer written out: [CLS] + text + patches with modality embeddings and per-modality positions,
    joint self-attention in which every token (text or patch) reads every non-padding token."""
    m, d = C.model_and_pairs(KEY, geometry)
    assert len(m.layers) == 1
    x, t = to_model_input(d.images[:3]), trim_padding(d.tokens[:3])
    B, L = t.shape
    with torch.no_grad():
        pe = m.image_embed
        P_ = geometry.vision.patch_size
        patches = x.unfold(2, P_, P_).unfold(3, P_, P_).permute(0, 2, 3, 1, 4, 5).reshape(B, -1, 3 * P_ * P_)
        img = torch.cat([pe.lead.expand(B, 1, -1), patches @ pe.patch.weight.reshape(len(pe.lead), -1).T], 1)
        img = _ln(img + pe.position, pe.norm)
        text = m.token.weight[t] + m.text_position[:L] + m.modality[TEXT]
        seq = torch.cat([img[:, :1] + m.modality[TEXT], text, img[:, 1:] + m.modality[IMAGE]], 1)
        h = _ln(seq, m.norm_in)
        no = torch.zeros(B, img.shape[1], dtype=torch.bool)  # [CLS] and the patches: never padding
        pad = torch.cat([no[:, :1], t == 0, no[:, 1:]], 1)

        layer = m.layers[0]
        a, heads = layer.attn, geometry.text.heads
        D = h.shape[-1]
        dh = D // heads
        q, k, v = (_ln(h, layer.norm1) @ a.qkv.weight.T + a.qkv.bias).chunk(3, -1)

        def split(z):
            return z.reshape(B, -1, heads, dh).transpose(1, 2)

        s = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)).masked_fill(pad[:, None, None, :], float("-inf"))
        att = (s.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, -1, D)
        h = h + att @ a.out.weight.T + a.out.bias
        ff = F.gelu(_ln(h, layer.norm2) @ layer.ff[0].weight.T + layer.ff[0].bias)
        h = h + ff @ layer.ff[2].weight.T + layer.ff[2].bias
        by_hand = _ln(h, m.norm_out)
        ours = m.encode(x, t)
    keep = ~pad
    torch.testing.assert_close(ours[keep], by_hand[keep], rtol=1e-4, atol=1e-4)


def _matching_by_pair(m, x, inputs, t, i, j):
    """The matching logit of the projected [CLS] of image i with text j, one sequence, and its text positions."""
    h = m.encode(x[i:i + 1], inputs[j:j + 1])[0]
    return (m.match.weight @ m.project(h[0]) + m.match.bias)[0], h[1:1 + t.shape[1]]


def test_loss_is_matching_plus_mlm_on_the_true_pairs(geometry):
    """Half the batch true pairs, the rest image i with text i-1, one sequence each; matching on the
    projected [CLS], MLM on the true pairs' text positions."""
    C.check_matching_plus_mlm_loss(KEY, geometry, _matching_by_pair)


def test_chance_loss_is_the_loss_at_zero_logits_and_a_uniform_mlm(geometry):
    C.check_matching_plus_mlm_chance(KEY, geometry, "match")
