"""Shared pieces of the trainer's tests: a micro CLIP geometry and synthetic image-text pairs."""
import torch

from hzlib import model as M, train as T
from hzlib.model import Geometry, TowerGeometry
from hzlib.pairs import PairData

MICRO = Geometry(name="micro", embed_dim=32, context_length=12,
                 vision=TowerGeometry(width=32, layers=2, heads=2, image_size=32, patch_size=8),
                 text=TowerGeometry(width=32, layers=2, heads=2))
VOCAB = 40


def synthetic(n, seed=0, size=32, ctx=12) -> PairData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    words = torch.randint(4, VOCAB, (n, ctx - 2), generator=g)
    tokens = torch.cat([torch.full((n, 1), 2), words, torch.full((n, 1), 3)], dim=1)
    labels = tuple(f"c{i % 3}" for i in range(n))
    return PairData(images, tokens, labels, tuple(f"id{i}" for i in range(n)))


def cfg(**kw):
    base = dict(lr=2e-3, batch_size=8, max_steps=12, warmup_steps=2, seed=3, log_every=5, progress=False)
    return T.TrainConfig(**{**base, **kw})


def micro_model(seed=0):
    return M.build_model(MICRO, VOCAB, seed=seed)
