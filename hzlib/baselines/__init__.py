"""Comparators of the evaluation chapter. ``plain``: baselines without a neural backbone (linear probes
on pixels and on the fixed HOG + colour descriptor, a text-only classifier)."""
from .plain import DescriptorProbe, IndexedProbe, PixelProbe, TextProbe, pixel_features

__all__ = ["IndexedProbe", "PixelProbe", "DescriptorProbe", "TextProbe", "pixel_features"]
from . import vilbert  # registers vilbert
from . import m3p  # registers m3p
from . import supervised_vit  # registers vit
