"""Image-text pairs as the models see them: the model input (Eq 1-3, :func:`hzlib.normalize.model_image`,
and Eq 2's standardisation), the decoded-image cache that chapters 5-8 share, tokenised texts, and
the stratified splits.

Images are decoded once into a uint8 tensor cache (:func:`image_cache`, :func:`corpus_images`) and
texts tokenised once (:func:`load_pairs`). The trainer moves the whole cache to the training device,
so a batch is one index operation and the loader is never the bottleneck.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .config import map_files, params_hash
from .normalize import model_image

__all__ = ["to_model_input", "PairData", "image_cache", "corpus_images", "load_pairs", "stratified_split"]


# Eq 2 for the model: one standardisation of the whole input. The cached images lie in [0, 1] with an
# equalised lightness (mean ~1/2, deviation ~1/sqrt(12) for a uniform histogram); these constants
# give them about zero mean and unit variance, the same for every image, so colour differences
# between images survive (a per-image z-score would remove them).
_U_MEAN, _U_STD = 0.5, 1 / math.sqrt(12)


def to_model_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 cache (n, 3, H, W) -> float model input (Eq 2 with fixed constants), on the cache's device."""
    return (images_u8.float() * (1 / 255) - _U_MEAN) * (1 / _U_STD)


@dataclass(frozen=True)
class PairData:
    """Image-text pairs: ``images`` (n, 3, S, S) uint8, ``tokens`` (n, L) int64, optional ``labels``
    and ``ids`` (one per pair), and ``targets``: class indices (n,) int64 for objectives that use
    the labels (zeros when absent)."""

    images: torch.Tensor
    tokens: torch.Tensor
    labels: tuple = ()
    ids: tuple = ()
    targets: torch.Tensor | None = None

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be a (n, 3, S, S) uint8 tensor, "
                             f"got {tuple(self.images.shape)} {self.images.dtype}")
        if self.tokens.ndim != 2 or len(self.tokens) != len(self.images):
            raise ValueError(f"tokens {tuple(self.tokens.shape)} do not match {len(self.images)} images")
        if self.targets is not None and tuple(self.targets.shape) != (len(self.images),):
            raise ValueError(f"targets {tuple(self.targets.shape)} do not match {len(self.images)} images")
        for name in ("labels", "ids"):
            v = getattr(self, name)
            if len(v) not in (0, len(self.images)):
                raise ValueError(f"{name} has {len(v)} entries for {len(self.images)} pairs")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: Sequence[int]) -> "PairData":
        idx = np.asarray(idx, dtype=np.int64)
        t = torch.from_numpy(idx)

        def pick(v):
            return tuple(v[i] for i in idx) if v else ()

        return PairData(self.images[t], self.tokens[t], pick(self.labels), pick(self.ids),
                        None if self.targets is None else self.targets[t])

    def fingerprint(self) -> str:
        """sha256 (16 hex) of the image and token bytes: a checkpoint is resumed only on the same data."""
        h = hashlib.sha256()
        for t in (self.images, self.tokens) + (() if self.targets is None else (self.targets,)):
            h.update(str(tuple(t.shape)).encode())
            h.update(memoryview(t.detach().cpu().contiguous().numpy()).cast("B"))
        return h.hexdigest()[:16]


def model_image_u8(path: str | os.PathLike, size: int, mode: str = "luma") -> np.ndarray:
    """One image file as the models see it (:func:`hzlib.normalize.model_image` at ``size`` in
    ``mode``), as a (3, size, size) uint8 array: one entry of :func:`image_cache`."""
    img = np.asarray(Image.open(path).convert("RGB"))
    return np.clip(np.rint(model_image(img, size, mode) * 255), 0, 255).astype(np.uint8).transpose(2, 0, 1)


def _model_image_task(args) -> np.ndarray:
    return model_image_u8(*args)


def image_cache(paths: Sequence[str | os.PathLike], size: int, cache_path: str | os.PathLike, *,
                mode: str = "luma", workers: int = 1, progress: bool = True) -> torch.Tensor:
    """The images at ``paths`` as the models see them (:func:`hzlib.normalize.model_image` at ``size``
    in ``mode``), as one (n, 3, size, size) uint8 tensor, cached at ``cache_path``.

    The cache is reused when it was made from the same paths (and file sizes and modification
    times) at the same size and mode; otherwise it is rebuilt (``workers`` processes) and written
    atomically."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) missing, e.g. {missing[:3]}")
    key = params_hash({"size": size, "transform": f"model_image {mode} v2",
                       "files": [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]})
    cache_path = Path(cache_path)
    if cache_path.is_file():
        try:
            blob = torch.load(cache_path, map_location="cpu", weights_only=True)
            if blob.get("key") == key:
                return blob["images"]
        except Exception:  # an unreadable cache is rebuilt
            pass
    arrays = map_files(_model_image_task, [(str(p), size, mode) for p in paths], workers=workers,
                       desc=f"{mode} images at {size}px", progress=progress)
    images = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
    torch.save({"key": key, "size": size, "mode": mode, "n": len(paths), "images": images}, tmp)
    os.replace(tmp, cache_path)
    return images


def corpus_images(manifest, corpus_dir: str | os.PathLike, cache_dir: str | os.PathLike, *, size: int,
                  mode: str = "luma", workers: int = 1, progress: bool = True) -> torch.Tensor:
    """Every image of a corpus's manifest, decoded once into the shared cache that chapters 5-8 all
    read (``cache_dir/<mode>_<size>.pt``, e.g. ``artifacts/<profile>/images/``)."""
    return image_cache([Path(corpus_dir) / p for p in manifest["image"]], size,
                       Path(cache_dir) / f"{mode}_{size}.pt", mode=mode, workers=workers, progress=progress)


def load_pairs(manifest, corpus_dir: str | os.PathLike, vocab, *, image_size: int, context_length: int,
               cache_dir: str | os.PathLike, mode: str = "luma", workers: int = 1, progress: bool = True) -> PairData:
    """All rows of a manifest (a DataFrame from :func:`hzlib.corpus.manifest.read_manifest`) as
    :class:`PairData`: images through :func:`corpus_images`, texts through ``vocab.encode``, targets
    the labels' positions among the sorted class names."""
    images = corpus_images(manifest, corpus_dir, cache_dir, size=image_size, mode=mode, workers=workers,
                           progress=progress)
    tokens = vocab.encode(list(manifest["text"]), context_length)
    labels = tuple(manifest["label"])
    classes = {c: i for i, c in enumerate(sorted(set(labels)))}
    return PairData(images, tokens, labels, tuple(manifest["id"]),
                    torch.tensor([classes[c] for c in labels], dtype=torch.int64))


def stratified_split(labels: Sequence, fractions: Sequence[float] = (0.7, 0.15, 0.15), *, seed: int,
                     names: Sequence[str] = ("train", "validation", "test")) -> dict[str, np.ndarray]:
    """Positions of ``labels`` split into parts (``names``) of the given ``fractions``, within each
    class: a class of n items gives each part after the first ``round(n * fraction)`` items (at least
    one while the first part keeps one), the first part the rest. The order within a class is the
    permutation ``default_rng([seed, k])`` of the class's k-th sorted label, so a split depends on the
    seed and the labels only. Returns sorted int64 positions per part; the parts are disjoint and
    cover every position."""
    if len(fractions) != len(names) or len(names) < 2:
        raise ValueError(f"{len(fractions)} fractions for the {len(names)} parts {tuple(names)}")
    if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions {tuple(fractions)} must be non-negative and sum to 1")
    y = np.asarray(labels)
    parts: dict[str, list] = {n: [] for n in names}
    for k, c in enumerate(sorted(set(y.tolist()))):
        pos = np.flatnonzero(y == c)
        pos = pos[np.random.default_rng([seed, k]).permutation(len(pos))]
        start = len(pos)  # the later parts take items from the end of the permutation
        for name, f in zip(names[:0:-1], fractions[:0:-1]):
            take = min(max(int(round(len(pos) * f)), int(f > 0)), start - 1)  # the first part keeps one
            take = max(take, 0)
            parts[name].append(pos[start - take:start])
            start -= take
        parts[names[0]].append(pos[:start])
    return {n: np.sort(np.concatenate(v)).astype(np.int64) if v else np.zeros(0, np.int64) for n, v in parts.items()}
