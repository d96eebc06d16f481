"""Comparators of the evaluation chapter. ``plain``: baselines without a neural backbone (linear probes
on pixels and on the fixed HOG + colour descriptor, a text-only classifier). ``neural``: the trained
models' interface, training loop and registry; importing this package registers CLIP and the paper's
comparators (``dual_attention``, ``instance_embedding``, ``vilbert``, ``m3p``) and a supervised image tower."""
from . import dual_attention  # noqa: F401  registers dan
from . import instance_embedding  # noqa: F401  registers item
from . import m3p  # noqa: F401  registers m3p
from . import supervised  # noqa: F401  registers supervised
from . import vilbert  # noqa: F401  registers vilbert
from .plain import DescriptorProbe, FactorProbe, IndexedProbe, PixelProbe, TextProbe, pixel_features

__all__ = ["IndexedProbe", "PixelProbe", "DescriptorProbe", "FactorProbe", "TextProbe", "pixel_features"]
