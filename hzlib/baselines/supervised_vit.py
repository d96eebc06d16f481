"""A supervised ViT: CLIP's image tower trained on the class labels instead of the descriptions."""
from __future__ import annotations

import copy
import math

import torch.nn.functional as F
from torch import nn

from ..model import clip_config
from .neural import ModelSpec, PairModel, register


@register
class SupervisedViT(PairModel):
    """A supervised ViT (Dosovitskiy et al. 2021), the reference that learns from the class labels
    rather than the descriptions: CLIP's image tower of the same geometry (``transformers``
    CLIPVisionModel: patch size, width, heads, the pooled and LayerNormed [CLS]) with a projection to
    embed_dim and a linear classifier over the classes, trained with cross-entropy on the labels; it
    reads no text. Its depth is that of CLIP's two towers together (8 layers at tiny), so that its
    parameter count matches CLIP's (the image tower alone has 0.47x). Image-only feature: the
    projected pooled embedding."""

    key = "vit"
    title = "Supervised ViT"
    follows = ("Dosovitskiy et al. 2021, An Image is Worth 16x16 Words: Transformers for Image "
               "Recognition at Scale (ICLR)")
    supervised = True

    def __init__(self, spec: ModelSpec):
        from transformers import CLIPVisionModel

        super().__init__(spec)
        g = spec.geometry
        cfg = copy.deepcopy(clip_config(g, spec.vocab_size).vision_config)
        cfg.num_hidden_layers = g.vision.layers + g.text.layers
        self.vision = CLIPVisionModel(cfg)
        self.project = nn.Linear(g.vision.width, g.embed_dim, bias=False)  # as CLIP's visual_projection
        self.classify = nn.Linear(g.embed_dim, spec.n_classes)

    def image_features(self, images):
        return self.project(self.vision(pixel_values=images).pooler_output)

    def loss(self, images, tokens, labels, index):
        return F.cross_entropy(self.classify(self.image_features(images)), labels)

    def chance_loss(self, batch_size: int) -> float:
        """Uniform class probabilities: ln C (C = spec.n_classes)."""
        return math.log(self.spec.n_classes)
