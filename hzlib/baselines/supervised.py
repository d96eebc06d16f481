"""A supervised image tower: CLIP's image tower trained on the class labels instead of the descriptions."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from ..model import IMAGE_TOWERS
from .neural import ModelSpec, PairModel, register


@register
class SupervisedTower(PairModel):
    """The reference that learns from the class labels rather than the descriptions: CLIP's image
    tower of the same geometry (the small CNN of the CPU profiles, or the ViT of Dosovitskiy et al.
    2021 on the GPU profile; its projection to embed_dim included) and a linear classifier over the
    classes, trained with cross-entropy on the labels; it reads no text. Image-only feature: the
    projected embedding, the same as CLIP's."""

    key = "supervised"
    title = "Supervised image tower"
    follows = ("supervised training of CLIP's image tower (a CNN as in CLIP's ResNet family, or the ViT of "
               "Dosovitskiy et al. 2021, ICLR)")
    supervised = True

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        g = spec.geometry
        self.visual = IMAGE_TOWERS[g.vision.kind](g)
        self.classify = nn.Linear(g.embed_dim, spec.n_classes)

    def image_features(self, images):
        return self.visual(images)

    def loss(self, images, tokens, labels, index):
        return F.cross_entropy(self.classify(self.image_features(images)), labels)

    def chance_loss(self, batch_size: int) -> float:
        """Uniform class probabilities: ln C (C = spec.n_classes)."""
        return math.log(self.spec.n_classes)
