"""M3P: one stream over [CLS] + text + patches, multimodal MLM + image-text matching.
The checks every model passes are in tests/test_comparators.py."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import neural as N
from hzlib.baselines.m3p import IMAGE, TEXT
from hzlib.model import Vocabulary
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


def test_image_features_are_the_stream_over_the_image_and_the_empty_text(geometry):
    """M3P has no image-only path: its feature is the mean of the image tokens at the stream's output,
    the image read with the empty description <bos><eos>. No text and no head changes it; the layers do."""
    m, d = C.model_and_pairs(KEY, geometry)
    x = to_model_input(d.images[:4])
    with torch.no_grad():
        f = m.image_features(x)
        assert f.shape == (4, m.feature_dim) and m.feature_dim == geometry.text.width
        empty = torch.tensor([[Vocabulary.bos_id, Vocabulary.eos_id]] * 4)
        torch.testing.assert_close(f, m.encode(x, empty)[:, 3:].mean(1))
        padded = torch.cat([empty, torch.zeros(4, 5, dtype=torch.int64)], 1)  # padding changes nothing
        torch.testing.assert_close(f, m.encode(x, padded)[:, 8:].mean(1), rtol=1e-5, atol=1e-5)
        for p in [*m.project.parameters(), *m.match.parameters(), *m.mlm.transform.parameters(),
                  *m.image_align.parameters(), *m.text_align.parameters()]:
            p.add_(1.0)
        torch.testing.assert_close(m.image_features(x), f)
        m.layers[-1].ff[2].weight.mul_(3.0)
        assert not torch.allclose(m.image_features(x), f, atol=1e-4)  # the stream, not its input


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


def _unfused(m, x, t):
    """The contrast's inputs: the mean of the patch embeddings at the stream's input (after the input
    LayerNorm) and the <bos> of the unmasked text through the first n_alone layers alone, by hand."""
    image = m.norm_in(m.image_embed(x)[:, 1:] + m.modality[IMAGE]).mean(1)
    h = m.norm_in(m.token(t) + m.text_position[:t.shape[1]] + m.modality[TEXT])
    for layer in m.layers[:m.n_alone]:
        h = layer(h, src_key_padding_mask=t == 0)
    return m.image_align(image), m.text_align(m.norm_out(h)[:, 0])


def test_text_passes_half_the_stream_alone_for_the_contrast(geometry):
    """At the default geometry's depth (4 text layers): a stream of 2 layers, the text's first 1 alone.
    Only that layer reaches the contrast: changing the last layer leaves it as it was."""
    g = replace(geometry, text=replace(geometry.text, layers=4))
    m = N.make_model(KEY, C.spec(g))
    assert len(m.layers) == 2 and m.n_alone == 1
    _, d = C.model_and_pairs(KEY, g)
    x, t = to_model_input(d.images[:4]), trim_padding(d.tokens[:4])
    with torch.no_grad():
        image, _ = m.embed(x, t)
        before = m.unfused_contrast(image, t)
        m.layers[1].ff[2].weight.mul_(3.0)
        torch.testing.assert_close(m.unfused_contrast(image, t), before)
        m.layers[0].ff[2].weight.mul_(3.0)
        assert not torch.isclose(m.unfused_contrast(image, t), before)


def test_loss_is_contrast_matching_and_mlm_on_the_true_pairs(geometry):
    """The contrast of the unfused inputs; half the batch true pairs, the rest image i with text i-1,
    one sequence each; matching on the projected [CLS], MLM on the true pairs' text positions."""
    C.check_matching_plus_mlm_loss(KEY, geometry, _matching_by_pair, _unfused)


def test_chance_loss_is_the_loss_at_zero_logits_and_a_uniform_mlm(geometry):
    C.check_matching_plus_mlm_chance(KEY, geometry, "match")
