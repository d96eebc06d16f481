"""The Dual-Attention Network comparator (Nam, Ha & Kim, CVPR 2017) at the scale of our CLIP."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..model import Vocabulary
from .neural import ModelSpec, PairModel, empty_text, register

STEPS = 2               # K attention steps, as in the paper
MARGIN_PER_DIM = 0.1    # ranking margin = 0.1 * embed_dim (12.8 at the cnn_tiny geometry), see DualAttentionNetwork


def _groups(width: int) -> int:
    return 8 if width % 8 == 0 else 1


class _Block(nn.Module):
    """Pre-activation residual block (GroupNorm: no batch statistics, so train and eval agree and an
    item's output never depends on the rest of its batch)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(_groups(width), width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1, bias=False),
                                  nn.GroupNorm(_groups(width), width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.body(x)


class RegionGrid(nn.Module):
    """A small residual CNN: log2(patch) stride-2 stages (widths doubling up to ``vision.width``) turn
    the (S, S) image into the (S/patch)^2 grid of region vectors that the paper takes from ResNet-152's
    last conv layer."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        v = spec.geometry.vision
        stages = int(round(math.log2(v.patch_size)))
        if 2 ** stages != v.patch_size or stages < 1:
            raise ValueError(f"RegionGrid needs a power-of-two patch size > 1, got {v.patch_size}")
        widths = [max(v.width >> (stages - 1 - s), 16) for s in range(stages)]
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), _Block(w)]
            c = w
        layers += [_Block(c) for _ in range(max(v.layers // 2 - 1, 0))]
        layers += [nn.GroupNorm(_groups(c), c), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, images):                       # (B, 3, S, S) -> (B, N, width)
        return self.net(images).flatten(2).transpose(1, 2)


class _Attention(nn.Module):
    """One step of the paper's soft attention: h_n = tanh(W x_n + b) * tanh(W_m m + b_m),
    alpha = softmax_n(w_h . h_n), context = sum_n alpha_n x_n, for every (item, memory) pair at once."""

    def __init__(self, d_in: int, d_mem: int, d_hidden: int):
        super().__init__()
        self.feat = nn.Linear(d_in, d_hidden)
        self.mem = nn.Linear(d_mem, d_hidden)
        self.score = nn.Linear(d_hidden, 1, bias=False)  # a bias would cancel in the softmax

    def forward(self, x, mask, m):
        """``x`` (X, N, d_in), ``mask`` (X, N) bool or None, ``m`` (X, Y, d_mem): one memory per
        (item of x, partner) -> context (X, Y, d_in) and weights (X, Y, N)."""
        a = torch.tanh(self.feat(x)) * self.score.weight[0]
        s = torch.bmm(torch.tanh(self.mem(m)), a.transpose(1, 2))
        if mask is not None:
            s = s.masked_fill(~mask[:, None, :], float("-inf"))
        alpha = s.softmax(-1)
        return torch.bmm(alpha, x), alpha


@register
class DualAttentionNetwork(PairModel):
    """Follows the matching model m-DAN of Nam, Ha & Kim (2017): K = 2 steps of visual attention over
    image regions and of textual attention over the words of a bidirectional LSTM, each conditioned on
    its own memory (m_v(k) = m_v(k-1) + v(k), m_u(k) = m_u(k-1) + u(k)), so the image side never reads
    a text; a pair is scored S = sum_k v(k) . u(k) and trained with the bidirectional triplet ranking
    loss summed over all in-batch negatives (margin 0.1 * embed_dim = 12.8 at cnn_tiny; the paper's margin
    is not stated). Kept: the attention form (tanh(W x) * tanh(W_m m), two-layer scores),
    v(k) = tanh(P(k) context), v(0) = tanh(P(0) mean region), u_t = forward + backward LSTM state,
    u(0) = mean word state. Scaled down: ResNet-152 regions -> a small residual CNN whose output is the
    patch grid of the geometry (16 regions, 4 x 4, at cnn_tiny), the 512-d joint space -> embed_dim, trainable
    (FastText-initialised) embeddings. Image-only feature: sum_k v(k) (embed_dim; a concatenation
    would need a projection the loss never trains).

    ``shared_memory = True`` gives the joint memory of the paper's reasoning model r-DAN instead
    (m(0) = v(0) * u(0), m(k) = m(k-1) + v(k) * u(k)): every image-text pair is then its own attention
    pass, and an image-only feature needs the empty text <bos><eos> as its partner.
    """

    key = "dan"
    title = "Dual-Attention Network"
    follows = "Nam, Ha & Kim 2017, Dual Attention Networks for Multimodal Reasoning and Matching (CVPR)"
    shared_memory = False

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        g = spec.geometry
        d, dv = g.embed_dim, g.vision.width
        self.regions = RegionGrid(spec)
        self.embed = nn.Embedding(spec.vocab_size, g.text.width, padding_idx=Vocabulary.pad_id)
        # the two directions of the bidirectional LSTM; hidden = embed_dim so that the word states
        # u_t = forward + backward live in the joint space, as in the paper
        self.forward_lstm = nn.LSTM(g.text.width, d, batch_first=True)
        self.backward_lstm = nn.LSTM(g.text.width, d, batch_first=True)
        self.project = nn.ModuleList([nn.Linear(dv, d) for _ in range(STEPS + 1)])  # P(0..K)
        self.visual = nn.ModuleList([_Attention(dv, d, d) for _ in range(STEPS)])
        self.textual = nn.ModuleList([_Attention(d, d, d) for _ in range(STEPS)])
        self.margin = MARGIN_PER_DIM * d

    # -- encoders ----------------------------------------------------------------------------------
    def words(self, tokens):
        """(B, L) ids -> word states (B, L, D) (zero at padding) and the mask of real tokens."""
        # Padding is trailing, so the forward pass at a real word never saw a pad. The backward pass
        # runs forward over each text reversed within its own length (pads stay at the end), which is
        # exact like pack_padded_sequence but keeps the fused dense LSTM (2-3x faster on the CPU).
        mask = tokens != Vocabulary.pad_id
        x = self.embed(tokens)
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        n = mask.sum(1, keepdim=True)
        flip = torch.where(pos < n, n - 1 - pos, pos).unsqueeze(-1)   # an involution
        fwd = self.forward_lstm(x)[0]
        bwd = self.backward_lstm(x.gather(1, flip.expand_as(x)))[0]
        bwd = bwd.gather(1, flip.expand_as(bwd))
        return (fwd + bwd) * mask.unsqueeze(-1), mask

    def attend(self, images, tokens):
        """S (Bi, Bt) for every image with every text, and the visual context vectors v(0..K),
        each (Bi, Bt, D) (broadcastable: v(0) is (Bi, 1, D), and with separate memories every
        v(k) is (Bi, 1, D))."""
        regions = self.regions(images)
        u_t, mask = self.words(tokens)
        m_f = mask.unsqueeze(-1).to(u_t.dtype)
        v = torch.tanh(self.project[0](regions.mean(1)))                   # (Bi, D)
        u = (u_t * m_f).sum(1) / m_f.sum(1).clamp(min=1)                  # (Bt, D)
        score = v @ u.T
        vs = [v[:, None]]
        if self.shared_memory:
            m = v[:, None] * u[None]                                       # (Bi, Bt, D)
            for k in range(STEPS):
                v = torch.tanh(self.project[k + 1](self.visual[k](regions, None, m)[0]))
                u = self.textual[k](u_t, mask, m.transpose(0, 1))[0].transpose(0, 1)
                m = m + v * u
                score = score + (v * u).sum(-1)
                vs.append(v)
        else:
            m_v, m_u = v, u
            for k in range(STEPS):
                v = torch.tanh(self.project[k + 1](self.visual[k](regions, None, m_v[:, None])[0][:, 0]))
                u = self.textual[k](u_t, mask, m_u[:, None])[0][:, 0]
                m_v, m_u = m_v + v, m_u + u
                score = score + v @ u.T
                vs.append(v[:, None])
        return score, vs

    # -- PairModel ---------------------------------------------------------------------------------
    def loss(self, images, tokens, labels, index):
        score, _ = self.attend(images, tokens)
        return ranking_loss(score, self.margin)

    def image_features(self, images):
        # one empty text shared by all images, so an image's feature cannot depend on its batch
        text = empty_text(1, 2, device=images.device)
        _, vs = self.attend(images, text)
        return sum(vs)[:, 0]

    def token_embedding(self):
        return self.embed

    def chance_loss(self, batch_size: int) -> float:
        """Every score equal: each pair's 2 (B - 1) in-batch hinges are the margin, so 2 (B - 1) margin."""
        return 2 * (batch_size - 1) * self.margin


def ranking_loss(score: torch.Tensor, margin: float) -> torch.Tensor:
    """The paper's bidirectional max-margin loss over a (B, B) score matrix whose diagonal holds the
    true pairs: for every pair, the hinge max(0, margin - S(v, u) + S(v, u')) summed over all other
    texts u' of the batch, plus the same over all other images v'; averaged over the pairs."""
    pos = score.diagonal()
    off = ~torch.eye(len(score), dtype=torch.bool, device=score.device)
    to_texts = (margin - pos[:, None] + score).clamp(min=0)   # row i: image i against every text
    to_images = (margin - pos[None, :] + score).clamp(min=0)  # column j: text j against every image
    return (to_texts[off].sum() + to_images[off].sum()) / len(score)


__all__ = ["DualAttentionNetwork", "RegionGrid", "ranking_loss", "STEPS", "MARGIN_PER_DIM"]
