"""The Dual-Attention Network comparator: what only it has (the attention recurrence, its words, the
ranking loss, r-DAN's shared memory) checked by hand; the checks every model passes are in
tests/test_comparators.py."""
import pytest
import torch

import pairmodel_checks as C
from hzlib.baselines import neural as N
from hzlib.baselines.dual_attention import STEPS, DualAttentionNetwork, ranking_loss
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def geometry():
    return C.narrow_geometry()


def _model(geometry, seed=0, n=24):
    return N.make_model("dan", N.ModelSpec(geometry, vocab_size=50, n_classes=10, n_instances=n, seed=seed))


class SharedMemory(DualAttentionNetwork):  # the paper's r-DAN memory, not registered
    shared_memory = True


def test_attention_shapes_and_card(geometry):
    m = _model(geometry).eval()
    d = C.short_pairs()
    with torch.no_grad():
        score, vs = m.attend(C.unit_images(d, 5), d.tokens[:3])
        f = m.image_features(C.unit_images(d, 5))
    assert score.shape == (5, 3) and len(vs) == STEPS + 1
    assert f.shape == (5, geometry.embed_dim) and torch.isfinite(f).all()
    assert m.regions(C.unit_images(d, 2)).shape == (2, (32 // 8) ** 2, 32)  # the patch grid of the geometry
    card = m.card()
    assert card["model"] == "dan"
    assert card["interpretation"].startswith("Follows the matching model m-DAN of Nam, Ha & Kim (2017)")
    assert not card["uses labels"]


@pytest.mark.parametrize("cls", [DualAttentionNetwork, SharedMemory])
def test_trailing_padding_changes_nothing(geometry, cls):
    torch.manual_seed(0)
    m = cls(N.ModelSpec(geometry, 50, 10, 24)).eval()
    d = C.short_pairs()
    x, t = C.unit_images(d), d.tokens[:8]
    longer = torch.cat([t, torch.zeros(8, 9, dtype=t.dtype)], 1)
    with torch.no_grad():
        losses = [m.loss(x, tt, None, None) for tt in (trim_padding(t), t, longer)]
        words = [m.words(tt)[0] for tt in (trim_padding(t), longer)]
    for other in losses[1:]:
        torch.testing.assert_close(other, losses[0], rtol=1e-5, atol=1e-4)
    k = words[0].shape[1]
    torch.testing.assert_close(words[1][:, :k], words[0], rtol=1e-5, atol=1e-6)
    assert (words[1][:, k:] == 0).all()


def test_words_are_a_bidirectional_lstm_by_hand(geometry):
    """Forward and backward LSTM over each text alone (no padding), summed: the paper's u_t."""
    m = _model(geometry).eval()
    t = C.short_pairs().tokens[:6]
    with torch.no_grad():
        got, mask = m.words(t)
        for i in range(len(t)):
            n = int(mask[i].sum())
            x = m.embed(t[i, :n])[None]
            fwd = m.forward_lstm(x)[0][0]
            bwd = m.backward_lstm(x.flip(1))[0][0].flip(0)
            torch.testing.assert_close(got[i, :n], fwd + bwd, rtol=1e-5, atol=1e-6)


def _pair_score_by_hand(m, regions, u_t, shared):
    """S(v, u) of one image (regions (N, Dv)) and one text (its real word states (T, D)), written out."""
    def attend(att, x, mem):
        h = torch.tanh(x @ att.feat.weight.T + att.feat.bias) * torch.tanh(mem @ att.mem.weight.T + att.mem.bias)
        alpha = torch.softmax(h @ att.score.weight[0], 0)
        return (alpha[:, None] * x).sum(0)

    v = torch.tanh(m.project[0](regions.mean(0)))
    u = u_t.mean(0)
    s = v @ u
    m_joint, m_v, m_u = v * u, v, u
    for k in range(STEPS):
        v = torch.tanh(m.project[k + 1](attend(m.visual[k], regions, m_joint if shared else m_v)))
        u = attend(m.textual[k], u_t, m_joint if shared else m_u)
        m_joint, m_v, m_u = m_joint + v * u, m_v + v, m_u + u
        s = s + v @ u
    return s


@pytest.mark.parametrize("cls", [DualAttentionNetwork, SharedMemory])
def test_score_matrix_matches_the_recurrence_by_hand(geometry, cls):
    torch.manual_seed(0)
    m = cls(N.ModelSpec(geometry, 50, 10, 24)).eval()
    d = C.short_pairs()
    x, t = C.unit_images(d, 3), d.tokens[3:7]
    with torch.no_grad():
        score, _ = m.attend(x, t)
        regions = m.regions(x)
        u_t, mask = m.words(t)
        for i in range(3):
            for j in range(4):
                want = _pair_score_by_hand(m, regions[i], u_t[j, mask[j]], cls.shared_memory)
                torch.testing.assert_close(score[i, j], want, rtol=1e-5, atol=1e-5)


def test_ranking_loss_by_hand():
    s = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, 2.4], [1.0, -1.0, 1.0]])
    margin = 1.0
    want = 0.0
    for i in range(3):
        for j in range(3):
            if i != j:
                want += max(0.0, margin - s[i, i].item() + s[i, j].item())   # image i, wrong text j
                want += max(0.0, margin - s[j, j].item() + s[i, j].item())   # text j, wrong image i
    # by hand: image rows 0.5 + 1.4 + 1.0 = 2.9, text columns 0 + 0 + (2.5 + 2.4) = 4.9
    assert want == pytest.approx(7.8)
    assert ranking_loss(s, margin).item() == pytest.approx(want / 3)


def test_image_feature_is_the_visual_context_under_the_empty_texts_memory(geometry):
    """However the empty text is padded; batch independence is checked in tests/test_comparators.py."""
    m = _model(geometry).eval()
    x = C.unit_images(C.short_pairs(), 8)
    with torch.no_grad():
        full = m.image_features(x)
        _, vs = m.attend(x, N.empty_text(1, geometry.context_length))
    torch.testing.assert_close(sum(vs)[:, 0], full, rtol=1e-5, atol=1e-5)


def test_separate_memory_keeps_the_image_side_text_free(geometry):
    torch.manual_seed(0)
    m = _model(geometry).eval()  # the registered m-DAN
    shared = SharedMemory(N.ModelSpec(geometry, 50, 10, 24)).eval()
    d = C.short_pairs()
    x = C.unit_images(d, 4)
    with torch.no_grad():
        a = m.attend(x, d.tokens[:2])[1]
        b = m.attend(x, d.tokens[10:13])[1]
        c = shared.attend(x, d.tokens[:2])[1]
    assert all(torch.allclose(p[:, 0], q[:, 0], atol=1e-6) for p, q in zip(a, b))
    assert not torch.allclose(c[1][:, 0], c[1][:, 1], atol=1e-4)  # the joint memory steers the visual attention


def test_chance_loss_is_the_loss_at_equal_scores(geometry):
    """v(k) = tanh(P(k) .) = 0 for every k makes every score 0: each hinge is the margin."""
    def learn_nothing(m):
        for p in m.project:
            p.weight.zero_()
            p.bias.zero_()

    m = _model(geometry)
    chance = C.check_chance_loss(m, learn_nothing, B=16)
    assert chance == pytest.approx(2 * 15 * m.margin)
