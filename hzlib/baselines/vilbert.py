"""ViLBERT (Lu, Batra, Parikh & Lee 2019), one of the paper's comparators, at the scale of our CLIP."""
from __future__ import annotations

import torch
from torch import nn

from ..model import temperature
from . import _pretraining as P
from .neural import ModelSpec, PairModel, register


class CoAttention(nn.Module):
    """One direction of a Co-TRM block: the queries of stream x attend to the keys and values of the
    other stream y (its padding masked), then x's own feed-forward; pre-norm residuals as in CLIP."""

    def __init__(self, width: int, other_width: int, heads: int, mlp_ratio: float, act: str):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(width), nn.LayerNorm(other_width)
        self.attn = P.Attention(width, heads, kv_width=other_width)
        self.norm_ff = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.ff = nn.Sequential(nn.Linear(width, hidden), P.activation(act), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_pad: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm_q(x), self.norm_kv(y), key_padding_mask=y_pad)
        return x + self.ff(self.norm_ff(x))


@register
class ViLBERT(PairModel):
    """ViLBERT (Lu et al. 2019) at the scale of our CLIP: two streams, a vision stream (CLIP's patch
    embedding, a learned <IMG> token and positions) and a text stream (token and position embeddings),
    each with its own pre-norm transformer layers (half the CLIP tower's depth), then co-attentional
    blocks (Co-TRM, half the smaller depth) in which each stream's queries attend to the other stream's
    keys and values, then its own feed-forward; heads and MLP ratios are those of the CLIP towers, and
    both streams have the text tower's width, which keeps the model near CLIP's parameter count (a
    vision stream at the CNN's last width, 256 at cnn_tiny, tripled it and the time per step without
    lowering the loss against its chance level); text padding is masked as keys. Kept: the two pre-
    training objectives on text, multimodal alignment prediction (a linear layer over h_IMG (.) h_CLS,
    both projected to embed_dim; binary cross-entropy; half the batch are the true pairs, the other half
    images paired with the text rolled by one) and masked language modelling on the text stream (30% of
    word tokens, twice BERT's rate for our short budget, 80/10/10, <unk> as [MASK], a head tied to the
    token embedding). Added, because we train from scratch: ALBEF's image-text contrastive term (Li et
    al. 2021) between the two streams before co-attention (the mean of the vision stream and h_CLS,
    each projected to embed_dim; in-batch negatives, learned temperature); ViLBERT starts from a
    pretrained detector and BERT, and without the term its alignment loss stayed at ln 2 and its image
    feature scored no better than its random-init twin. The three terms are summed. Dropped: masked
    region modelling, which regresses a region detector's class distribution that our renderings do
    not have (no Faster R-CNN regions, patches instead); the 12+6-layer BERT-base scale and Conceptual
    Captions pre-training. Image-only feature: the mean of the vision stream's tokens (h_IMG and the
    patches) at the output of its own layers, before the co-attention blocks, where ViLBERT's vision
    stream has read no text, in training as here: what the model was trained to produce from an image
    and to align with its description. The pooled h_IMG that the alignment head reads exists only after
    co-attention with a text, and the model never saw an empty one."""

    key = "vilbert"
    title = "ViLBERT"
    follows = ("Lu, Batra, Parikh & Lee 2019, ViLBERT: Pretraining Task-Agnostic Visiolinguistic "
               "Representations for Vision-and-Language Tasks (NeurIPS)")
    contrast = True  # ALBEF's term (see above); False trains the published objectives alone
    half_negatives = True  # B pairs per step instead of 2B: 0.6x the cost of a step

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        g, v, t = spec.geometry, spec.geometry.vision, spec.geometry.text
        vw = self.vision_width
        self.image_embed = P.PatchEmbedding(v.image_size, v.patch_size, vw)
        self.token = P.token_embedding(spec.vocab_size, t.width)
        self.text_position = nn.Parameter(torch.randn(g.context_length, t.width) * P.INIT_STD)
        self.text_norm = nn.LayerNorm(t.width)
        self.vision_layers = nn.ModuleList(P.encoder_layer(vw, v.heads, v.mlp_ratio, g.hidden_act)
                                           for _ in range(max(1, v.layers // 2)))
        self.text_layers = nn.ModuleList(P.encoder_layer(t.width, t.heads, t.mlp_ratio, g.hidden_act)
                                         for _ in range(max(1, t.layers // 2)))
        n_co = max(1, min(v.layers, t.layers) // 2)
        self.co_vision = nn.ModuleList(CoAttention(vw, t.width, v.heads, v.mlp_ratio, g.hidden_act)
                                       for _ in range(n_co))
        self.co_text = nn.ModuleList(CoAttention(t.width, vw, t.heads, t.mlp_ratio, g.hidden_act)
                                     for _ in range(n_co))
        self.vision_out, self.text_out = nn.LayerNorm(vw), nn.LayerNorm(t.width)
        self.image_pool = nn.Linear(vw, g.embed_dim)  # ViLBERT's poolers, to a common size
        self.text_pool = nn.Linear(t.width, g.embed_dim)
        self.align = nn.Linear(g.embed_dim, 1)
        self.mlm = P.MaskedLMHead(self.token, g.hidden_act)
        self.image_align = nn.Linear(vw, g.embed_dim)  # ALBEF's projections for the contrastive term
        self.text_align = nn.Linear(t.width, g.embed_dim)
        self.logit_scale = temperature()  # CLIP's, at tau 0.07

    # -- the two streams ---------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        x = self.image_embed(images)
        for layer in self.vision_layers:
            x = layer(x)
        return x

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.text_norm(self.token(tokens) + self.text_position[:tokens.shape[1]])
        pad = P.padding_mask(tokens)
        for layer in self.text_layers:
            x = layer(x, src_key_padding_mask=pad)
        return x

    def co_attend(self, v: torch.Tensor, t: torch.Tensor, t_pad: torch.Tensor):
        for co_v, co_t in zip(self.co_vision, self.co_text):
            v, t = co_v(v, t, t_pad), co_t(t, v, None)  # both directions read the block's inputs
        return self.vision_out(v), self.text_out(t)

    def alignment_logits(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B,) logits of 'aligned' from the co-attended streams: linear over h_IMG (.) h_CLS."""
        return self.align(self.image_pool(v[:, 0]) * self.text_pool(t[:, 0])).squeeze(1)

    # -- PairModel ---------------------------------------------------------------------------------
    def loss(self, images, tokens, labels, index):
        g = self.spec.geometry
        inputs, targets = P.mask_tokens(tokens, self.spec.vocab_size, g.context_length, P.MASK_PROB)
        img, txt, aligned = P.itm_pairs(tokens, self.half_negatives)
        v, t = self.encode_image(images), self.encode_text(inputs)  # each stream once per item
        itc = self.unfused_contrast(v, tokens) if self.contrast else 0.0
        v, t = self.co_attend(v[img], t[txt], P.padding_mask(tokens)[txt])
        positive = img == txt  # no language modelling on a mismatched pair, as in ViLBERT
        return itc + P.itm_loss(self.alignment_logits(v, t), aligned) + self.mlm(t[positive], targets[txt][positive])

    def unfused_contrast(self, v: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """ALBEF's contrast before co-attention: the mean of the vision stream ``v`` against h_CLS of the
        text stream over the unmasked text, as ALBEF reads it (a second pass of the text stream: on the
        masked one the loss ended at 0.78 of chance instead of 0.73, for 0.7x the time of a step)."""
        return P.contrastive_loss(self.image_align(v.mean(1)), self.text_align(self.encode_text(tokens)[:, 0]),
                                  self.logit_scale)

    def image_features(self, images):
        return self.encode_image(images).mean(1)  # the vision stream before co-attention: no text

    @property
    def feature_dim(self) -> int:
        return self.vision_width

    @property
    def vision_width(self) -> int:
        """The vision stream's width: the text stream's (see the class docstring)."""
        return self.spec.geometry.text.width

    def token_embedding(self):
        return self.token

    def chance_loss(self, batch_size: int) -> float:
        """Equal similarities, alignment logits 0 and a uniform MLM over the vocabulary: ln B + ln 2 + ln V
        (V = spec.vocab_size; without the contrast, ln 2 + ln V)."""
        return P.chance_loss(self.spec.vocab_size, batch_size if self.contrast else None)
