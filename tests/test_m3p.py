"""M3P: one stream over [CLS] + text + patches, multimodal MLM + image-text matching."""
import math

import pytest
import torch
import torch.nn.functional as F

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import _pretraining as P, neural as N
from hzlib.baselines.m3p import IMAGE, TEXT
from hzlib.pairs import to_model_input
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = "m3p"


@pytest.fixture(scope="module")
def geometry():
    return C.small_geometry()


def test_shapes_and_a_finite_loss(geometry):
    C.check_shapes(KEY, geometry)


def test_loss_falls_when_overfitting(geometry):
    C.check_overfits(KEY, geometry)


def test_trailing_padding_changes_nothing(geometry):
    C.check_padding_invariance(KEY, geometry)
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    x, t = to_model_input(d.images[:6]), d.tokens[:6]
    tt = trim_padding(t)
    with torch.no_grad():
        full, trimmed = m.encode(x, t), m.encode(x, tt)
    L, Lt = t.shape[1], tt.shape[1]
    torch.testing.assert_close(full[:, 0], trimmed[:, 0], rtol=1e-5, atol=1e-5)                  # [CLS]
    torch.testing.assert_close(full[:, 1 + L:], trimmed[:, 1 + Lt:], rtol=1e-5, atol=1e-5)        # patches
    words = tt != 0
    torch.testing.assert_close(full[:, 1:1 + Lt][words], trimmed[:, 1:1 + Lt][words], rtol=1e-5, atol=1e-5)


def test_image_features_ignore_the_batch(geometry):
    C.check_batch_independence(KEY, geometry)


def test_image_features_are_the_image_tokens_the_stream_reads(geometry):
    """M3P has no image-only path: its feature is the mean of the image tokens at the stream's input,
    exactly as the stream receives them with a text, and no layer or text changes it."""
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
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


def test_seeded(geometry):
    C.check_seeded(KEY, geometry)


def test_parameter_count_is_comparable_to_clip():
    C.check_parameter_count(KEY)


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
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
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
        pad = torch.cat([torch.zeros(B, 1, dtype=torch.bool), t == 0,
                         torch.zeros(B, img.shape[1] - 1, dtype=torch.bool)], 1)

        layer = m.layers[0]
        a, heads = layer.self_attn, geometry.text.heads
        D = h.shape[-1]
        dh = D // heads
        q, k, v = (_ln(h, layer.norm1) @ a.in_proj_weight.T + a.in_proj_bias).chunk(3, -1)

        def split(z):
            return z.reshape(B, -1, heads, dh).transpose(1, 2)

        s = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)).masked_fill(pad[:, None, None, :], float("-inf"))
        att = (s.softmax(-1) @ split(v)).transpose(1, 2).reshape(B, -1, D)
        h = h + att @ a.out_proj.weight.T + a.out_proj.bias
        ff = F.gelu(_ln(h, layer.norm2) @ layer.linear1.weight.T + layer.linear1.bias)
        h = h + ff @ layer.linear2.weight.T + layer.linear2.bias
        by_hand = _ln(h, m.norm_out)
        ours = m.encode(x, t)
    keep = ~pad
    torch.testing.assert_close(ours[keep], by_hand[keep], rtol=1e-4, atol=1e-4)


def test_loss_is_matching_plus_mlm_on_the_true_pairs(geometry):
    """Half the batch true pairs, the rest image i with text i-1, one sequence each; matching on the
    projected [CLS], MLM on the true pairs' text positions."""
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).train()
    x, t = to_model_input(d.images[4:8]), trim_padding(d.tokens[4:8])
    L = t.shape[1]
    seed = next(s for s in range(100)  # a draw that masks words of the true pairs
                if (torch.manual_seed(s)
                    and P.mask_tokens(t, C.VOCAB, geometry.context_length, P.MASK_PROB)[1][:2] != P.IGNORE).any())
    with torch.no_grad():
        torch.manual_seed(seed)
        loss = m.loss(x, t, None, None)
        torch.manual_seed(seed)
        inputs, targets = P.mask_tokens(t, C.VOCAB, geometry.context_length, P.MASK_PROB)
        logits, text_hidden = [], []
        for i, j in [(0, 0), (1, 1), (2, 1), (3, 2)]:
            h = m.encode(x[i:i + 1], inputs[j:j + 1])[0]
            logits.append((m.match.weight @ m.project(h[0]) + m.match.bias)[0])
            text_hidden.append(h[1:1 + L])
        z = torch.stack(logits)
        y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        itm = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
        mlm = m.mlm(torch.stack(text_hidden[:2]), targets[:2])
    torch.testing.assert_close(loss, itm + mlm, rtol=1e-5, atol=1e-5)


def test_chance_loss_is_the_loss_at_zero_logits_and_a_uniform_mlm(geometry):
    """A zero matching layer (logit 0: ln 2) and a zero MLM transform (logits = the zero bias: ln V)."""
    m = N.make_model(KEY, C.spec(geometry))
    chance = C.check_chance_loss(m, C.zero_matching_and_mlm("match"), B=16)
    assert chance == pytest.approx(math.log(2) + math.log(C.VOCAB))
