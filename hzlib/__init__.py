"""hzlib: an open, reproducible re-implementation of Luo (2024), the cultural attributes of
Chinese character sculpture studied with CLIP. One module per section of the paper."""

__version__ = "0.1.0"
