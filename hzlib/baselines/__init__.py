"""Comparators of the evaluation chapter. ``plain``: baselines without a neural backbone (linear probes
on pixels and on the fixed HOG + colour descriptor, a text-only classifier). ``neural``: the trained
models' interface, training loop and registry; importing this package registers CLIP and the paper's
comparators (``dual_attention``, ``instance_embedding``, ``vilbert``, ``m3p``) and a supervised image tower."""
# imported to register their models (dan, item, m3p, supervised, vilbert)
from . import dual_attention, instance_embedding, m3p, supervised, vilbert  # noqa: F401
from .plain import DescriptorProbe, FactorProbe, IndexedProbe, PixelProbe, TextProbe, pixel_features

__all__ = ["IndexedProbe", "PixelProbe", "DescriptorProbe", "FactorProbe", "TextProbe", "pixel_features"]
