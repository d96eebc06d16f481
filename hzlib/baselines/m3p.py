"""M3 of the paper, read as M3P (Ni et al. 2021), at the scale of our CLIP."""
from __future__ import annotations

import torch
from torch import nn

from . import _pretraining as P
from .neural import ModelSpec, PairModel, register

TEXT, IMAGE = 0, 1  # modality (segment) ids


@register
class M3P(PairModel):
    """M3 read as M3P (Ni et al. 2021): the paper names "M3" without a reference; M3P is the best-known
    multilingual multimodal pre-trained transformer of that name, and its multilingual text side fits
    Chinese descriptions. A single stream: one pre-norm transformer over [CLS] + the text tokens + the
    image patches (CLIP's patch embedding of the geometry), each token with a modality (segment)
    embedding and a position within its modality; text padding is masked as keys. Width, heads and depth
    are the CLIP text tower's (M3P's stream is its text transformer, which takes projected image
    features; fewer parameters than CLIP, but every layer reads text and image together, so a step costs
    more than CLIP's; 1.5x that depth cost 1.5x the time and ended no lower against its chance loss).
    Kept: multimodal masked language modelling (30% of word tokens, twice BERT's rate for our short
    budget, 80/10/10, <unk> as [MASK], a head tied to the token embedding) and image-text matching by a
    linear layer on the projected [CLS] (binary cross-entropy; half the batch are the true pairs, the
    other half images paired with the text rolled by one; MLM on the true pairs only), summed in one
    pass. Dropped: multilingual code-switching (one language) and masked region modelling (no region
    detector or class distribution for our renderings); the XLM-R-base scale and its pre-training
    corpora. Image-only feature: M3P has no image-only path (every layer of its stream reads the text
    with the image, and it never saw an image without one), so the feature is what it computes from the
    image alone: the mean of the image tokens that its stream reads (patch embedding, positions,
    modality embedding and the input LayerNorm). That is shallow by construction: it says how much of an
    attribute M3P's input embedding of the image holds, not what its stream learnt."""

    key = "m3p"
    title = "M3 (read as M3P)"
    follows = ("Ni et al. 2021, M3P: Learning Universal Representations via Multitask Multilingual "
               "Multimodal Pre-training (CVPR)")
    half_negatives = True  # one sequence per item: the whole stream is paid once per pair

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        g, v, t = spec.geometry, spec.geometry.vision, spec.geometry.text
        self.token = P.token_embedding(spec.vocab_size, t.width)
        self.text_position = nn.Parameter(torch.randn(g.context_length, t.width) * P.INIT_STD)
        self.image_embed = P.PatchEmbedding(v.image_size, v.patch_size, t.width)  # its lead token is [CLS]
        self.modality = nn.Parameter(torch.randn(2, t.width) * P.INIT_STD)
        self.norm_in = nn.LayerNorm(t.width)
        self.layers = nn.ModuleList(P.encoder_layer(t.width, t.heads, t.mlp_ratio, g.hidden_act)
                                    for _ in range(t.layers))
        self.norm_out = nn.LayerNorm(t.width)
        self.project = nn.Linear(t.width, g.embed_dim)
        self.match = nn.Linear(g.embed_dim, 1)
        self.mlm = P.MaskedLMHead(self.token, g.hidden_act)

    def encode(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + L + n_patches, width): [CLS], the text tokens, the patches."""
        image = self.image_embed(images)  # [CLS] + patches, with their positions
        text = self.token(tokens) + self.text_position[:tokens.shape[1]] + self.modality[TEXT]
        cls, patches = image[:, :1] + self.modality[TEXT], image[:, 1:] + self.modality[IMAGE]
        x = self.norm_in(torch.cat([cls, text, patches], 1))
        keep = torch.zeros(len(x), 1, dtype=torch.bool, device=x.device)
        pad = torch.cat([keep, P.padding_mask(tokens), keep.expand(-1, patches.shape[1])], 1)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return self.norm_out(x)

    def loss(self, images, tokens, labels, index):
        g = self.spec.geometry
        inputs, targets = P.mask_tokens(tokens, self.spec.vocab_size, g.context_length, P.MASK_PROB)
        img, txt, aligned = P.itm_pairs(tokens, self.half_negatives)
        h = self.encode(images[img], inputs[txt])
        L = tokens.shape[1]
        positive = img == txt  # masked tokens are predicted from their own image only
        match = self.match(self.project(h[:, 0])).squeeze(1)
        return P.itm_loss(match, aligned) + self.mlm(h[positive, 1:1 + L], targets[txt][positive])

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, n_patches, width): the image tokens as the stream reads them, before any layer (the
        input LayerNorm acts on each token alone, so no text is involved)."""
        return self.norm_in(self.image_embed(images)[:, 1:] + self.modality[IMAGE])

    def image_features(self, images):
        return self.image_tokens(images).mean(1)

    @property
    def feature_dim(self) -> int:
        return self.spec.geometry.text.width

    def token_embedding(self):
        return self.token

    def chance_loss(self, batch_size: int) -> float:
        """Alignment logits 0 and a uniform MLM over the vocabulary: ln 2 + ln V (V = spec.vocab_size)."""
        return P.chance_loss(self.spec.vocab_size)
