"""Pieces shared by the pre-trained vision-language transformers (ViLBERT, M3P): BERT's masked language
modelling, image-text matching with deterministic in-batch negatives, ALBEF's image-text contrast
before fusion, and the transformer parts (pre-norm layers, patch embedding) built from the CLIP
geometry.

* :func:`mask_tokens` follows BERT (Devlin et al. 2019), as both papers do: a share of the *word*
  tokens (ids >= 4: never padding, ``<unk>``, ``<bos>`` or ``<eos>``) become targets; of those 80%
  are replaced by ``[MASK]``, 10% by a random word, 10% kept. Our vocabulary has no ``[MASK]``, so
  ``<unk>`` (id 1) plays it. The draws have the shape (B, context_length) whatever the batch's text
  length, so trailing padding changes neither the mask nor the loss. The share is BERT's 15% by
  default; both models use :data:`MASK_PROB` = 30%: twice the targets per step, which the chapter's
  150 steps need (on the default corpus with the cnn_tiny geometry the mean loss of the last 30 steps
  was 0.75 (ViLBERT) and 0.77 (M3P) of the chance level ln 2 + ln V with 15%, 0.72 and 0.74 with
  30%), and masking rates up to 40% train BERT at least as well as 15% (Wettig et al. 2023, Should
  You Mask 15% in Masked Language Modeling?, EACL).
* :func:`itm_pairs` builds the matching task without a second random source: positives are the
  batch's own pairs, negatives pair image i with text i-1 (the texts rolled by one). A "negative" whose
  text is token-for-token the image's own text is labelled aligned.
* :func:`contrastive_loss` aligns the two modalities before they are fused: ALBEF's image-text
  contrastive term (Li et al. 2021, Align before Fuse, NeurIPS), the symmetric InfoNCE of Eq 6 over
  the batch's pairs at a learned temperature. Neither ViLBERT nor M3P has it: they start from a
  pretrained detector and a pretrained BERT / XLM-R, whose features already correspond. From scratch
  their matching term does not learn (on the default corpus at the cnn_tiny geometry: ViLBERT's
  matching loss was still ln 2 after 450 steps, after 300 steps of matching alone at lr 5e-4 or 2e-3,
  and with all B pairs or only other-class pairs as negatives; M3P's after its 150 steps, with either
  kind of negatives), so MLM alone trained them and the image features
  the chapter reads scored no better than their random-init twins. With the term both models' image
  features beat their twins, and ViLBERT's matching leaves ln 2 within 150 steps (M3P's mostly does
  not); ALBEF adds it for this reason ("it is difficult for the fusion encoder to learn image-text
  interactions" from unaligned features). ``benchmarks/bench_pretraining.py`` measures both ways.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..model import SPECIALS, Vocabulary, clip_loss, similarity_logits

MASK_ID = Vocabulary.unk_id      # the [MASK] token: our vocabulary has none, <unk> stands in
FIRST_WORD_ID = len(SPECIALS)    # ids below are <pad> <unk> <bos> <eos>
IGNORE = -100                    # F.cross_entropy's ignore_index: not an MLM target
INIT_STD = 0.02                  # BERT's (and CLIP's) embedding initialisation
MASK_PROB = 0.30                 # the share of word tokens that ViLBERT and M3P mask (BERT: 0.15), see above


def mask_tokens(tokens: torch.Tensor, vocab_size: int, context_length: int, prob: float = 0.15,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking with torch's global RNG: (inputs, targets), targets = the original id at the
    chosen positions and ``IGNORE`` elsewhere."""
    B, L = tokens.shape
    width = max(L, context_length)  # fixed draw shape: a trimmed batch gets the same mask
    pick_u = torch.rand(B, width, device=tokens.device)[:, :L]
    kind_u = torch.rand(B, width, device=tokens.device)[:, :L]
    random_ids = torch.randint(FIRST_WORD_ID, vocab_size, (B, width), device=tokens.device)[:, :L]
    pick = (pick_u < prob) & (tokens >= FIRST_WORD_ID)
    targets = torch.where(pick, tokens, torch.full_like(tokens, IGNORE))
    inputs = torch.where(pick & (kind_u < 0.8), torch.full_like(tokens, MASK_ID), tokens)
    inputs = torch.where(pick & (kind_u >= 0.8) & (kind_u < 0.9), random_ids, inputs)
    return inputs, targets


def itm_pairs(tokens: torch.Tensor, half: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image_idx, text_idx, aligned) of the matching task on a batch of B pairs.

    ``half=False``: all B pairs are positives and all B images are paired again with text i-1
    (2B pairs). ``half=True``: the first B//2 pairs are positives and the other images get text i-1
    (B pairs, half the cost)."""
    B = len(tokens)
    i = torch.arange(B, device=tokens.device)
    if half:
        img, txt = i, torch.where(i < B // 2, i, i - 1)
    else:
        img, txt = torch.cat([i, i]), torch.cat([i, torch.roll(i, 1)])
    aligned = (tokens[txt] == tokens[img]).all(1).float()
    return img, txt, aligned


def chance_loss(vocab_size: int, contrast_batch: int | None = None) -> float:
    """Matching + MLM (+ contrast) of a model that has learnt nothing: alignment logits 0 (binary
    cross-entropy ln 2, whatever the targets), a uniform distribution over the ``vocab_size`` ids that
    the tied MLM head decodes (ln V, for a batch with at least one MLM target) and, for an objective
    with the contrast over batches of ``contrast_batch`` pairs, equal similarities (ln B)."""
    return math.log(2) + math.log(vocab_size) + (math.log(contrast_batch) if contrast_batch else 0.0)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """ALBEF's image-text contrastive term on the unfused (B, D) image and text projections: Eq 6 over
    the batch's pairs, every other pair a negative (labels unused), cosine similarity / tau."""
    return clip_loss(similarity_logits(image, text, logit_scale))


def itm_loss(logits: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the alignment logits (B',) against the 0/1 targets."""
    return F.binary_cross_entropy_with_logits(logits, aligned)


class MaskedLMHead(nn.Module):
    """BERT's prediction head: dense + activation + LayerNorm, then a decoder tied to the token
    embedding (plus a bias). Only the target positions are decoded (the vocabulary projection of
    every position would cost more than the rest of the head)."""

    def __init__(self, embedding: nn.Embedding, act: str):
        super().__init__()
        width = embedding.embedding_dim
        self.embedding = embedding
        self.transform = nn.Sequential(nn.Linear(width, width), activation(act), nn.LayerNorm(width))
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the positions of ``hidden`` (.., L, D) whose ``targets`` (.., L)
        are not ``IGNORE``; 0 (with a graph) when there are none."""
        keep = targets != IGNORE
        h = self.transform(hidden[keep])
        logits = F.linear(h, self.embedding.weight, self.bias)
        return F.cross_entropy(logits, targets[keep], reduction="sum") / keep.sum().clamp(min=1)


# --------------------------------------------------------------------------------------------------
# Transformer parts of the CLIP geometry
# --------------------------------------------------------------------------------------------------

def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class _Act(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def activation_fn(name: str):
    """The geometry's ``hidden_act`` as a function (``F.gelu`` itself keeps PyTorch's fused path)."""
    return {"gelu": F.gelu, "quick_gelu": _quick_gelu,
            "gelu_new": lambda x: F.gelu(x, approximate="tanh")}[name]


def activation(name: str) -> nn.Module:
    return _Act(activation_fn(name))


class Attention(nn.Module):
    """Multi-head attention of the queries ``x`` over the keys and values ``y`` (``x`` itself when
    absent), padded keys masked: one fused projection of q/k/v (of k/v for cross-attention) and
    :func:`torch.nn.functional.scaled_dot_product_attention`. The arithmetic of ``nn.MultiheadAttention``
    (and its initialisation: Xavier-uniform projections, zero biases) without its sequence-first copies,
    whose backward cost about a quarter of a step on the CPU."""

    def __init__(self, width: int, heads: int, kv_width: int | None = None):
        super().__init__()
        if width % heads:
            raise ValueError(f"Attention: width {width} is not a multiple of heads {heads}")
        self.heads, self.cross = heads, kv_width is not None
        if self.cross:
            self.q, self.kv = nn.Linear(width, width), nn.Linear(kv_width, 2 * width)
        else:
            self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        with torch.no_grad():  # as torch: one Xavier draw per packed (3w, w) or separate (w, d) matrix
            for w in (self.q.weight, *self.kv.weight.chunk(2)) if self.cross else (self.qkv.weight,):
                nn.init.xavier_uniform_(w)
            for m in (self.q, self.kv) if self.cross else (self.qkv,):
                nn.init.zeros_(m.bias)
            nn.init.zeros_(self.out.bias)

    def _split(self, t: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
        B, L, _ = t.shape  # (B, L, n*width) -> n tensors (B, heads, L, width/heads)
        return t.view(B, L, n, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cross:
            (q,), (k, v) = self._split(self.q(x), 1), self._split(self.kv(y), 2)
        else:
            q, k, v = self._split(self.qkv(x), 3)
        keep = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.out(a.transpose(1, 2).flatten(2))


class EncoderLayer(nn.Module):
    """A pre-norm self-attention layer like CLIP's (no dropout: CLIP's towers have none either); the
    computation of ``nn.TransformerEncoderLayer(norm_first=True, dropout=0)``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, act: str):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        hidden = int(width * mlp_ratio)
        self.ff = nn.Sequential(nn.Linear(width, hidden), activation(act), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_padding_mask=src_key_padding_mask)
        return x + self.ff(self.norm2(x))


def encoder_layer(width: int, heads: int, mlp_ratio: float, act: str) -> EncoderLayer:
    """A pre-norm self-attention layer of the geometry's width, heads, MLP ratio and activation."""
    return EncoderLayer(width, heads, mlp_ratio, act)


class PatchEmbedding(nn.Module):
    """CLIP's image input: non-overlapping patches projected to ``width`` (a strided convolution
    without bias), a learned leading token (<IMG> / [CLS]) and learned positions, then LayerNorm."""

    def __init__(self, image_size: int, patch_size: int, width: int):
        super().__init__()
        self.patch = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        n = (image_size // patch_size) ** 2
        self.lead = nn.Parameter(torch.randn(width) * INIT_STD)
        self.position = nn.Parameter(torch.randn(n + 1, width) * INIT_STD)
        self.norm = nn.LayerNorm(width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch(images).flatten(2).transpose(1, 2)  # (B, n, width)
        x = torch.cat([self.lead.expand(len(x), 1, -1), x], 1)
        return self.norm(x + self.position)


def token_embedding(vocab_size: int, width: int) -> nn.Embedding:
    emb = nn.Embedding(vocab_size, width, padding_idx=Vocabulary.pad_id)
    nn.init.normal_(emb.weight, std=INIT_STD)
    with torch.no_grad():
        emb.weight[Vocabulary.pad_id].zero_()
    return emb


def padding_mask(tokens: torch.Tensor) -> torch.Tensor:
    """True at padding: the keys every attention over the text must ignore."""
    return tokens == Vocabulary.pad_id
