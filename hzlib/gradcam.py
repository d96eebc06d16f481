"""Grad-CAM on the CLIP vision tower (paper section 5, Eq 8-11, Figure 4) and its check against the
true glyph mask.

The paper's equations: Eq 8, the gradient ∂y_c/∂A^(k) of the class score with respect to the feature
map of the last layer; Eq 9, the channel weights α_k, the gradient's spatial mean (global average
pooling); Eq 10, the heat map L_c = ReLU(Σ_k α_k A^(k)); Eq 11, its normalisation L_c / max(L_c). The
paper maps the heat map "back to the original image space" without saying how: we upsample it
bilinearly (:func:`upsample`, pixel centres aligned) before Eq 11, which commutes with it.

Two routes to the same map:

* :func:`compute_cams`: the grad-cam library on a :class:`ClassScores` wrapper, batched, hooks released
  after each use (:func:`open_gradcam`), as :class:`PaperGradCAM`: the library's ``GradCAM`` with its
  min-max scaling replaced by Eq 11.
* :func:`gradcam_direct`: Eq 8-11 written out with plain torch hooks, one short function per equation
  (:func:`eq8_gradient`, :func:`eq9_channel_weights`, :func:`eq10_class_map`, :func:`eq11_normalise`);
  a test checks that both agree (allclose) on a small model.

Eq 11 divides by the maximum only, so a map keeps its zero: the share of a map's energy inside the
glyph is that of L_c itself. The grad-cam library's own scaling, (L - min L) / (max L - min L), is
kept as a documented variant (:func:`minmax_normalise`, ``gradcam_direct(..., normalise="minmax")``,
which equals the stock library's maps); no figure of the book uses it. An all-zero map stays zero.

Ground truth: :func:`pointing_game` and :func:`energy_in_mask` against the glyph mask, beside three
baseline maps (uniform, seeded random, centre Gaussian) in :func:`evaluate_maps`; per-class means with
bootstrap intervals in :func:`class_summary`; Figure 4's framed focus regions from
:func:`focus_regions` (the figure: :func:`hzlib.plots.figure4`).
"""
from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage import measure
from transformers.utils import logging as hf_logging

from .corpus.card import missing_ground_truth
from .evaluate import fit_head, linear_weights
from .model import build_model, encode_images, load_clip
from .pairs import corpus_images, to_model_input
from .report import ci_text, skipped
from .stats import mean_ci

BASELINES = ("uniform", "random", "centre")
METHOD = "gradcam"


# ------------------------------------------------------------------------------ the model wrapper


class ClassScores(torch.nn.Module):
    """Images in, class scores out: the shape the grad-cam library expects (it calls ``model(x)`` and
    picks ``output[:, c]``), which CLIP's own forward (images *and* texts) is not.

    Scores are either the cosine similarity of the image embedding to each class's text embedding
    (``class_embeddings``, (C, D) in the projection space; the zero-shot score, times
    ``logit_scale``), or a linear probe's logits on the normalised image embedding (``probe_weight``
    (C, D), ``probe_bias`` (C,)). ``model`` is a :class:`hzlib.model.ClipModel` (anything whose
    ``visual`` tower maps pixels to the projected embedding and names its ``cam_layer``).
    """

    def __init__(self, model: torch.nn.Module, class_embeddings: torch.Tensor | None = None, *,
                 probe_weight: torch.Tensor | None = None, probe_bias: torch.Tensor | None = None,
                 logit_scale: float = 1.0):
        super().__init__()
        if not hasattr(getattr(model, "visual", None), "cam_layer"):
            raise TypeError(f"model: expected a ClipModel with a .visual tower, got {type(model).__name__}")
        if (class_embeddings is None) == (probe_weight is None):
            raise ValueError("give exactly one of class_embeddings and probe_weight")
        if probe_weight is None and probe_bias is not None:
            raise ValueError("probe_bias needs probe_weight")
        self.visual = model.visual
        self.logit_scale = float(logit_scale)
        dim = model.geometry.embed_dim
        head = class_embeddings if class_embeddings is not None else probe_weight
        name = "class_embeddings" if class_embeddings is not None else "probe_weight"
        head = torch.as_tensor(head, dtype=torch.float32).detach()
        if head.ndim != 2 or head.shape[1] != dim:
            raise ValueError(f"{name}: expected shape (n_classes, {dim}), got {tuple(head.shape)}")
        self.cosine = class_embeddings is not None
        # Buffers, not parameters: the targets are fixed, only the image path carries gradients.
        self.register_buffer("head", F.normalize(head, dim=-1) if self.cosine else head)
        if probe_bias is not None:
            bias = torch.as_tensor(probe_bias, dtype=torch.float32).detach()
            if bias.shape != (head.shape[0],):
                raise ValueError(f"probe_bias: expected shape ({head.shape[0]},), got {tuple(bias.shape)}")
        else:
            bias = torch.zeros(head.shape[0])
        self.register_buffer("bias", bias)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings (B, D)."""
        return F.normalize(self.visual(pixel_values), dim=-1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and not pixel_values.requires_grad and \
                not any(p.requires_grad for p in self.visual.parameters()):
            # A frozen tower (e.g. under a linear probe) builds no graph, so Grad-CAM would find no
            # gradient at the target layer: let the graph start at the pixels instead.
            pixel_values = pixel_values.detach().requires_grad_(True)
        z = self.embed(pixel_values)
        return self.logit_scale * (z @ self.head.T) + self.bias


def target_layer(scorer: ClassScores, layer: int = -1) -> torch.nn.Module:
    """The module whose output is Grad-CAM's feature map A (the tower's ``cam_layer``): for a CNN
    tower a stage's output (the last by default, as Grad-CAM prescribes); for a ViT ``layer_norm1``
    of an encoder layer, as grad-cam's docs recommend.

    Why not a ViT's last layer's output: CLIP pools only the CLS token of the last layer, so the
    patch tokens of the last layer's *output* get zero gradient and the map would be empty. The input
    of the last layer (seen through its ``layer_norm1``) still reaches the CLS token through that
    layer's attention, so its patch tokens carry gradients and are still spatial.
    """
    return scorer.visual.cam_layer(layer)


def _to_map(scorer: ClassScores, grid: tuple[int, int] | None):
    """The reshape from the target layer's output to (B, K, h, w): none for a CNN tower, the token
    grid for a ViT (``grid``: the tower's own by default)."""
    if not scorer.visual.cam_tokens:
        return None
    return partial(vit_reshape_transform, grid=grid or scorer.visual.grid)


def vit_reshape_transform(tokens: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """ViT tokens (B, 1 + h*w, D) -> a CNN-like feature map (B, D, h, w): the CLS token (first) is
    dropped, the patch tokens are laid out row by row. ``grid`` defaults to the square from the patch
    count."""
    if tokens.ndim != 3:
        raise ValueError(f"tokens: expected (batch, tokens, channels), got shape {tuple(tokens.shape)}")
    n = tokens.shape[1] - 1
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"tokens: {n} patch tokens do not form a square grid; pass grid=(h, w)")
        grid = (side, side)
    if grid[0] * grid[1] != n:
        raise ValueError(f"grid: {grid} does not hold {n} patch tokens")
    return tokens[:, 1:, :].reshape(tokens.shape[0], grid[0], grid[1], tokens.shape[2]).permute(0, 3, 1, 2)


def _eq11_numpy(cams: np.ndarray) -> np.ndarray:
    """Eq 11 on a stack of maps (N, H, W): each divided by its maximum; an all-zero map stays zero."""
    peak = cams.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cams / np.where(peak > 0, peak, 1), 0).astype(np.float32)


class PaperGradCAM(GradCAM):
    """The grad-cam library's ``GradCAM`` with the paper's Eq 11 in place of the library's min-max
    scaling: each target layer's map, ReLU(Σ_k α_k A^k) (Eq 9-10, the library's ``get_cam_image``), is
    divided by its maximum and resized to the input with ``cv2.resize`` (as the library resizes), and
    the mean over target layers is divided by its maximum again. A positive scale commutes with the
    (linear) resize, so each map is L / max(L) of the upsampled L."""

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
        size = self.get_target_width_height(input_tensor)
        grads = self.activations_and_grads
        out = []
        for layer, acts, grad in zip(self.target_layers, grads.activations, grads.gradients):
            cam = self.get_cam_image(input_tensor, layer, targets, acts.cpu().data.numpy(), grad.cpu().data.numpy(),
                                     eigen_smooth)
            cam = _eq11_numpy(np.maximum(cam, 0))
            out.append(np.float32([cv2.resize(c, size) for c in cam])[:, None])
        return out

    def aggregate_multi_layers(self, cam_per_target_layer):
        return _eq11_numpy(np.maximum(np.concatenate(cam_per_target_layer, axis=1), 0).mean(axis=1))


@contextlib.contextmanager
def open_gradcam(scorer: ClassScores, layer: int = -1, grid: tuple[int, int] | None = None,
                 library_scaling: bool = False) -> Iterator[GradCAM]:
    """:class:`PaperGradCAM` on ``scorer`` (with ``library_scaling`` the stock ``GradCAM``, whose maps
    are min-max scaled), hooks released on exit.

    Use this rather than ``with GradCAM(...)``: the library's ``__exit__`` prints and *swallows* an
    IndexError raised inside the block; here every error propagates.
    """
    kind = GradCAM if library_scaling else PaperGradCAM
    cam = kind(model=scorer, target_layers=[target_layer(scorer, layer)], reshape_transform=_to_map(scorer, grid))
    try:
        yield cam
    finally:
        cam.activations_and_grads.release()


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"images: expected (N, 3, H, W), got shape {tuple(images.shape)}")
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
    else:
        yield from images


def compute_cams(scorer: ClassScores, images: torch.Tensor | Iterable[torch.Tensor],
                 classes: Sequence[int] | None = None, *, layer: int = -1, batch_size: int = 16,
                 grid: tuple[int, int] | None = None, library_scaling: bool = False) -> np.ndarray:
    """Grad-CAM maps (N, H, W) float32 in [0, 1] with the grad-cam library (:class:`PaperGradCAM`, Eq 8-11;
    ``library_scaling``: the stock library's min-max scaling instead), batch by batch.

    ``images``: preprocessed pixel values, a tensor (N, 3, H, W) (cut into ``batch_size`` batches) or
    an iterable of batch tensors (e.g. a DataLoader's images). ``classes``: the target class of each
    image in order, or None for each image's top-scoring class.

    Memory stays flat over many batches: one set of hooks for the whole run, and after each batch
    the library's stored activations, gradients and output graph (kept by its
    ``backward(retain_graph=True)``) and the parameters' gradients are dropped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    n_classes = scorer.head.shape[0]
    classes = None if classes is None else [int(c) for c in classes]  # a Series or array slices by position too
    out, start = [], 0
    with open_gradcam(scorer, layer, grid, library_scaling) as cam:
        for batch in _batches(images, batch_size):
            b = len(batch)
            if classes is None:
                targets = None
            else:
                cls = classes[start:start + b]
                if len(cls) != b:
                    raise ValueError(f"classes: {len(classes)} given, fewer than the images")
                bad = [c for c in cls if not 0 <= c < n_classes]
                if bad:
                    raise ValueError(f"classes: {bad[0]} outside 0..{n_classes - 1}")
                targets = [ClassifierOutputTarget(c) for c in cls]
            out.append(cam(input_tensor=batch, targets=targets))
            cam.activations_and_grads.clear()
            cam.outputs = None
            scorer.zero_grad(set_to_none=True)
            start += b
    if classes is not None and start != len(classes):
        raise ValueError(f"classes: {len(classes)} given for {start} images")
    if not out:
        raise ValueError("images: empty")
    return np.concatenate(out).astype(np.float32)


@torch.no_grad()
def predict(scorer: ClassScores, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Class scores (N, C) without gradients."""
    dev = next(scorer.parameters()).device
    return np.concatenate([scorer(b.to(dev)).cpu().numpy() for b in _batches(images, batch_size)])


# ----------------------------------------------------------------- Eq 8-11 with plain torch hooks


def eq8_gradient(scorer: ClassScores, images: torch.Tensor, classes: Sequence[int], layer: int = -1,
                 grid: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq 8: ∂y_c/∂A^(k), the gradient of each image's class score y_c with respect to the feature map
    A^(k) of the target layer (a forward hook, removed before returning). Returns A (B, K, h, w) and
    the gradient (B, K, h, w)."""
    captured = []
    handle = target_layer(scorer, layer).register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        scores = scorer(images)
    finally:
        handle.remove()
    tokens = captured[0]
    y = scores[torch.arange(len(images)), torch.as_tensor(list(classes))]
    (grad,) = torch.autograd.grad(y.sum(), tokens)  # images are independent: sum = per-image grads
    to_map = _to_map(scorer, grid) or (lambda t: t)
    return to_map(tokens.detach()), to_map(grad)


def eq9_channel_weights(grad: torch.Tensor) -> torch.Tensor:
    """Eq 9: α_k = (1/Z) Σ_i Σ_j ∂y_c/∂A^(k)(i, j), the spatial mean of the gradient (B, K)."""
    return grad.mean(dim=(2, 3))


def eq10_class_map(alpha: torch.Tensor, feature_map: torch.Tensor) -> torch.Tensor:
    """Eq 10: L_c = ReLU(Σ_k α_k A^(k)) on the feature map's grid (B, h, w)."""
    return torch.relu((alpha[:, :, None, None] * feature_map).sum(dim=1))


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The map on the image (B, H, W): bilinear upsampling, pixel centres aligned (torch
    ``align_corners=False``, as the library's ``cv2.resize``). The paper maps the heat map back to the
    image without saying how, and gives this step no equation."""
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def eq11_normalise(cam: torch.Tensor) -> torch.Tensor:
    """Eq 11: L̂_c(i, j) = L_c(i, j) / max(L_c), per image (B, H, W); an all-zero map stays zero."""
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(cam))


def minmax_normalise(cam: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """A variant of Eq 11, not the paper's: per-image min-max scaling (L - min L) / (max L - min L + eps),
    as the grad-cam library scales its maps. It moves a map's minimum to 0, which changes its energy
    shares; kept to document the difference (the chapters use :func:`eq11_normalise`)."""
    lo = cam.amin(dim=(1, 2), keepdim=True)
    return (cam - lo) / ((cam - lo).amax(dim=(1, 2), keepdim=True) + eps)


NORMALISE = {"eq11": eq11_normalise, "minmax": minmax_normalise}


def gradcam_direct(scorer: ClassScores, images: torch.Tensor, classes: Sequence[int], layer: int = -1,
                   grid: tuple[int, int] | None = None, normalise: str = "eq11") -> np.ndarray:
    """Grad-CAM (N, H, W) by Eq 8-11 directly, for checking the library's maps; ``normalise="minmax"``
    gives the stock library's scaling instead of Eq 11."""
    if normalise not in NORMALISE:
        raise ValueError(f"normalise={normalise!r} is not one of {sorted(NORMALISE)}")
    scorer.eval()
    images = images.to(next(scorer.parameters()).device)
    A, dA = eq8_gradient(scorer, images, classes, layer, grid)
    cam = eq10_class_map(eq9_channel_weights(dA), A)
    scorer.zero_grad(set_to_none=True)
    return NORMALISE[normalise](upsample(cam, tuple(images.shape[-2:]))).cpu().numpy().astype(np.float32)


# ---------------------------------------------------------------------- ground-truth agreement


def _check_pair(cam: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam, mask = np.asarray(cam, dtype=np.float64), np.asarray(mask).astype(bool)
    if cam.ndim != 2:
        raise ValueError(f"cam: expected a 2-D map, got shape {cam.shape}")
    if cam.shape != mask.shape:
        raise ValueError(f"mask: shape {mask.shape} differs from the map's {cam.shape} "
                         "(resize one with resize_map first)")
    if np.isnan(cam).any() or (cam < 0).any():
        raise ValueError("cam: values must be finite and non-negative")
    return cam, mask


def pointing_game(cam: np.ndarray, mask: np.ndarray, rtol: float = 1e-6) -> float:
    """Is the map's maximum inside the mask? 1.0 or 0.0 for a single peak; with tied maxima (within
    ``rtol`` of the peak), the share of them inside the mask, i.e. the expected hit under random
    tie-breaking (so a uniform map scores the mask's area fraction, not whatever pixel argmax finds
    first). NaN for an all-zero map."""
    cam, mask = _check_pair(cam, mask)
    peak = cam.max()
    if peak <= 0:
        return float("nan")
    top = cam >= peak * (1 - rtol)
    return float((top & mask).sum() / top.sum())


def energy_in_mask(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's energy (sum of its values) inside the mask; NaN for an all-zero map."""
    cam, mask = _check_pair(cam, mask)
    total = cam.sum()
    return float(cam[mask].sum() / total) if total > 0 else float("nan")


def baseline_map(kind: str, shape: tuple[int, int], rng: np.random.Generator | None = None,
                 centre_sigma: float = 0.25) -> np.ndarray:
    """A reference map of ``shape``: ``uniform`` (ones), ``random`` (uniform noise from ``rng``), or
    ``centre`` (a Gaussian at the image centre, σ = ``centre_sigma`` × the shorter side: the photographer's
    centre bias that a model could exploit without looking at the glyph)."""
    h, w = shape
    if kind == "uniform":
        return np.ones(shape)
    if kind == "random":
        if rng is None:
            raise ValueError("rng: the random baseline needs a seeded numpy Generator")
        return rng.random(shape)
    if kind == "centre":
        if centre_sigma <= 0:
            raise ValueError(f"centre_sigma: must be > 0, got {centre_sigma}")
        y, x = np.mgrid[0:h, 0:w]
        s = centre_sigma * min(h, w)
        return np.exp(-(((x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2) / (2 * s * s)))
    raise ValueError(f"kind: {kind!r} not one of {BASELINES}")


def resize_map(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a map to ``shape`` (rows, cols), e.g. a model-input-size map to the mask."""
    t = torch.as_tensor(np.asarray(cam, dtype=np.float32))[None]
    return upsample(t, tuple(shape))[0].numpy() if t.shape[-2:] != tuple(shape) else t[0].numpy()


def evaluate_maps(cams: Sequence[np.ndarray] | np.ndarray, masks: Sequence[np.ndarray], *,
                  ids: Sequence | None = None, labels: Sequence | None = None,
                  baselines: Sequence[str] = BASELINES, seed: int = 0,
                  centre_sigma: float = 0.25) -> pd.DataFrame:
    """One row per image and method (``gradcam`` and each baseline): ``pointing`` (pointing game),
    ``energy`` (share of the map inside the mask) and ``mask_fraction`` (the mask's area share, the
    uniform map's expected score). Maps and masks must have equal shapes (see :func:`resize_map`).
    The random baseline draws from one Generator seeded by ``seed``, image by image in order."""
    if len(cams) != len(masks):
        raise ValueError(f"masks: {len(masks)} given for {len(cams)} maps")
    for name, seq in (("ids", ids), ("labels", labels)):
        if seq is not None and len(seq) != len(cams):
            raise ValueError(f"{name}: {len(seq)} given for {len(cams)} maps")
    rng = np.random.default_rng(seed)
    rows = []
    for i, (cam, mask) in enumerate(zip(cams, masks)):
        mask = np.asarray(mask).astype(bool)
        maps = {METHOD: cam} | {b: baseline_map(b, mask.shape, rng, centre_sigma) for b in baselines}
        for method, m in maps.items():
            rows.append({"id": ids[i] if ids is not None else i,
                         "label": labels[i] if labels is not None else None,
                         "method": method, "pointing": pointing_game(m, mask),
                         "energy": energy_in_mask(m, mask), "mask_fraction": float(mask.mean())})
    return pd.DataFrame(rows)


def class_summary(results: pd.DataFrame, metrics: Sequence[str] = ("pointing", "energy"),
                  by: Sequence[str] = ("label", "method"), n_boot: int = 2000, level: float = 0.95,
                  seed: int = 0) -> pd.DataFrame:
    """Mean of each metric per group of :func:`evaluate_maps`' rows with its bootstrap interval:
    columns ``<metric>``, ``<metric>_lo``, ``<metric>_hi``, and ``n``. Each group is resampled with
    the same seed, so a group's interval does not depend on which other groups exist."""
    missing = [c for c in (*metrics, *by) if c not in results.columns]
    if missing:
        raise ValueError(f"results: no column(s) {missing}")
    rows = []
    for key, g in results.groupby(list(by), sort=True, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row["n"] = len(g)
        for m in metrics:
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(g[m].to_numpy(), level=level, n_resamples=n_boot,
                                                             seed=seed)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- Figure 4: focus regions


def focus_regions(cam: np.ndarray, threshold: float = 0.5, min_area: int = 1) -> pd.DataFrame:
    """The model's focus regions: connected components (8-connectivity) of ``cam >= threshold``, one
    row each with the bounding box (``row0, col0, row1, col1``; rows/cols 1 exclusive, as skimage's
    ``bbox``), ``area`` in pixels and ``heat`` (share of the map's total inside the region), by
    decreasing heat. ``threshold`` is on the map's own scale (maps from this module are in [0, 1])."""
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"cam: expected a 2-D map, got shape {cam.shape}")
    labels = measure.label(cam >= threshold, connectivity=2)
    total = cam.sum()
    rows = []
    for r in measure.regionprops(labels, intensity_image=cam):
        if r.area < min_area:
            continue
        r0, c0, r1, c1 = r.bbox
        heat = float(cam[labels == r.label].sum() / total) if total > 0 else float("nan")
        rows.append({"row0": r0, "col0": c0, "row1": r1, "col1": c1, "area": int(r.area), "heat": heat})
    cols = ["row0", "col0", "row1", "col1", "area", "heat"]
    return pd.DataFrame(rows, columns=cols).sort_values("heat", ascending=False, ignore_index=True)


def overlay(image: np.ndarray, cam: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """The heat map over the image (RGB float in [0, 1]) with the library's ``show_cam_on_image``."""
    img = np.asarray(image, dtype=np.float32)
    if img.max() > 1:
        img = img / 255.0
    if img.shape[:2] != np.shape(cam):
        raise ValueError(f"cam: shape {np.shape(cam)} differs from the image's {img.shape[:2]}")
    return show_cam_on_image(img, np.clip(cam, 0, 1), use_rgb=True, image_weight=image_weight) / 255.0


# ------------------------------------------------------------------ chapter 5's model and a probe


def load_trained_clip(clip_dir, device: str | torch.device = "cpu") -> tuple:
    """Chapter 5's trained CLIP and its data splits: ``(model, vocab, geometry, info, splits)``.

    ``clip_dir`` is ``prof.artifacts_dir("clip")``; the model is read from ``clip_dir / "model"``
    (:func:`hzlib.model.load_clip`) and the splits from ``splits.json`` there or in ``clip_dir``
    (a mapping split name -> manifest ids, with at least ``train`` and ``test``). A missing model or
    split file raises FileNotFoundError saying to run chapter 5 first."""
    clip_dir = Path(clip_dir)
    model_dir = clip_dir / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"no trained CLIP model at {model_dir}: run chapter 5 (notebooks/05_*.ipynb) first with the "
            "same profile; chapters 6 and 7 explain that model and do not train one")
    candidates = [model_dir / "splits.json", clip_dir / "splits.json"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"no splits.json beside the model ({', '.join(map(str, candidates))}): "
                                "run chapter 5 first with the same profile")
    splits = json.loads(found.read_text(encoding="utf-8"))
    if not isinstance(splits, dict) or not {"train", "test"} <= set(splits):
        raise ValueError(f"{found}: expected a mapping with 'train' and 'test' id lists, got {type(splits).__name__} "
                         f"with keys {sorted(splits) if isinstance(splits, dict) else None}")
    overlap = set(map(str, splits["train"])) & set(map(str, splits["test"]))
    if overlap:
        raise ValueError(f"{found}: {len(overlap)} id(s) in both train and test, e.g. {sorted(overlap)[:3]}")
    hf_logging.disable_progress_bar()  # a "Loading weights" bar in every executed notebook otherwise
    model, vocab, geometry, info = load_clip(model_dir, device)
    return model, vocab, geometry, info, {k: [str(i) for i in v] for k, v in splits.items()}


def split_positions(ids: Sequence, split_ids: Sequence) -> np.ndarray:
    """Positions in ``ids`` (e.g. the manifest's id column) of ``split_ids``, in manifest order;
    an id not in ``ids`` raises (a split from another corpus)."""
    ids = [str(i) for i in ids]
    wanted = {str(i) for i in split_ids}
    unknown = wanted - set(ids)
    if unknown:
        raise ValueError(f"{len(unknown)} split id(s) not in the manifest, e.g. {sorted(unknown)[:3]}: "
                         "the model was trained on another corpus; rerun chapter 5")
    return np.array([i for i, x in enumerate(ids) if x in wanted], dtype=np.int64)


def probe_scorer(model: torch.nn.Module, embeddings: np.ndarray, labels: Sequence, train_idx: Sequence[int], *,
                 seed: int = 0) -> tuple[ClassScores, list]:
    """The standardised linear probe of every chapter (:func:`hzlib.evaluate.fit_head`: scaling and
    multinomial logistic regression with C chosen by inner CV, fitted on the unit-norm image
    embeddings of the *training* rows only) as Grad-CAM's class scores: ``(ClassScores, classes)``,
    the classes in the probe's order (sorted labels). The scaler is folded into the weights
    (:func:`hzlib.evaluate.linear_weights`), so the scores are the probe's logits."""
    X = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    tr = np.asarray(train_idx, dtype=np.int64)
    if len(X) != len(y):
        raise ValueError(f"labels: {len(y)} given for {len(X)} embeddings")
    if len(np.unique(y[tr])) < 2:
        raise ValueError("train_idx: the probe needs at least two classes among the training rows")
    head = fit_head(X[tr], y[tr], seed=seed)
    w, b = linear_weights(head)
    scorer = ClassScores(model, probe_weight=torch.as_tensor(w, dtype=torch.float32),
                         probe_bias=torch.as_tensor(b, dtype=torch.float32))
    return scorer, list(head.classes_)


@dataclass
class Chapter5:
    """Chapter 5's trained CLIP, its random-init twin, and their standardised probes as Grad-CAM class
    scores: what chapters 6 and 7 explain (:func:`load_chapter5`)."""

    model: torch.nn.Module
    init_model: torch.nn.Module
    vocab: object
    geometry: object
    info: dict
    train_idx: np.ndarray
    test_idx: np.ndarray
    images: torch.Tensor       # the shared uint8 cache of every manifest row, as the model sees it
    embeddings: np.ndarray     # unit-norm image embeddings of every row, trained model
    init_embeddings: np.ndarray  # the same, random-init twin
    scorer: ClassScores
    init_scorer: ClassScores
    classes: list


def load_chapter5(clip_dir, manifest: pd.DataFrame, corpus_dir, images_dir, *, mode: str, seed: int,
                  workers: int = 1) -> Chapter5:
    """Chapter 5's model (:func:`load_trained_clip`), the twin of the same geometry from the same
    seed with no training, the images of ``manifest`` from the shared cache, and for each model the
    standardised linear probe on its image embeddings of the training rows (:func:`probe_scorer`)."""
    model, vocab, geometry, info, splits = load_trained_clip(clip_dir)
    train_idx = split_positions(manifest["id"], splits["train"])
    images = corpus_images(manifest, corpus_dir, images_dir, size=geometry.image_size, mode=mode, workers=workers,
                           progress=False)
    init_model = build_model(geometry, len(vocab), seed=seed).eval()
    emb = [encode_images(m, images, to_input=to_model_input).numpy() for m in (model, init_model)]
    scorers = [probe_scorer(m, e, manifest["label"], train_idx, seed=seed) for m, e in zip((model, init_model), emb)]
    return Chapter5(model, init_model, vocab, geometry, info, train_idx,
                    split_positions(manifest["id"], splits["test"]), images, emb[0], emb[1], scorers[0][0],
                    scorers[1][0], scorers[0][1])


# ---------------------------------------------------------------------- what chapter 6 reports


def probe_accuracy(scorer: ClassScores, images: torch.Tensor, labels: Sequence, classes: Sequence) -> float:
    """The share of ``images`` whose highest class score is their label."""
    return float(np.mean(np.asarray(classes)[predict(scorer, images).argmax(1)] == np.asarray(labels)))


def paired_against(results: pd.DataFrame, method: str = "Grad-CAM, trained",
                   references: Sequence[str] = ("centre", "Grad-CAM, random init"),
                   metrics: Sequence[str] = ("pointing", "energy"), seed: int = 0) -> pd.DataFrame:
    """``method`` minus each reference map, paired over images (:func:`evaluate_maps`' rows, one per
    image and method): the mean difference of each metric with its 95% bootstrap interval. Rows
    (metric, trained minus), the reference named by its last words ("random init")."""
    wide = results.pivot_table(index="id", columns="method", values=list(metrics))
    rows = [mean_ci((wide[m][method] - wide[m][ref]).to_numpy(), seed=seed) for m in metrics for ref in references]
    short = [ref.removeprefix("Grad-CAM, ") for ref in references]
    return pd.DataFrame(rows, columns=["mean", "lo", "hi"],
                        index=pd.MultiIndex.from_product([metrics, short], names=["metric", "trained minus"]))


# glue key -> the method of :func:`class_summary`'s ``overall`` table it reports
ATTENTION_KEYS = {"trained": "Grad-CAM, trained", "init": "Grad-CAM, random init", "centre": "centre",
                  "uniform": "uniform", "random": "random"}


def glyph_masks(root: str | Path, rows: pd.DataFrame) -> list[np.ndarray] | str:
    """The true glyph mask of every row (True on the glyph), or why the corpus has none (an imported
    corpus carries no masks): the measures of where the maps fall are then skipped."""
    why = missing_ground_truth(rows, ["glyph_mask"], "The pointing game and the energy share")
    if why:
        return why
    return [np.asarray(Image.open(Path(root) / p)) > 127 for p in rows["glyph_mask"]]


def image_shapes(root: str | Path, paths: Iterable[str]) -> list[tuple[int, int]]:
    """(height, width) of every image, read from its header: the size maps are shown at without masks."""
    shapes = []
    for p in paths:
        with Image.open(Path(root) / p) as im:
            shapes.append((im.height, im.width))
    return shapes


def attention_results(maps, init_maps, masks, test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """:func:`evaluate_maps` of the trained model's maps (with the centre and uniform baselines) and of
    the random initialisation's, one table with the method named."""
    ids, labels = list(test["id"]), list(test["label"])
    res = evaluate_maps(maps, masks, ids=ids, labels=labels, seed=seed)
    res_init = evaluate_maps(init_maps, masks, ids=ids, labels=labels, baselines=())
    res["method"] = res["method"].replace({"gradcam": "Grad-CAM, trained"})
    res_init["method"] = "Grad-CAM, random init"
    return pd.concat([res, res_init], ignore_index=True)


def attention_values_skipped(reason: str) -> dict:
    """The keys of :func:`attention_values` for a corpus without glyph masks: the chapter's text reads
    "skipped", the summary page's headline values say why."""
    out = {f"gc_{m}_{key}{s}": "skipped" for key in ATTENTION_KEYS for m in ("pointing", "energy")
           for s in ("", "_lo", "_hi")}
    out |= {f"gc_{m}_minus_{ref}_{col}": "skipped" for m in ("pointing", "energy") for ref in ("centre", "random")
            for col in ("mean", "lo", "hi")}
    return out | {f"ch06_{m}_{k}": skipped(reason) for m in ("pointing", "energy") for k in ("trained", "ref")}


def attention_values(overall: pd.DataFrame, paired: pd.DataFrame) -> dict:
    """The values chapter 6 glues about where the maps fall, by key: ``gc_<metric>_<map>[_lo|_hi]``
    (metric ``pointing`` or ``energy``; map a key of :data:`ATTENTION_KEYS`, e.g.
    ``gc_pointing_trained_lo``), ``gc_<metric>_minus_<centre|random>_<mean|lo|hi>`` from
    :func:`paired_against`, and the headline texts ``ch06_pointing_trained``, ``ch06_energy_trained``,
    ``ch06_pointing_ref`` and ``ch06_energy_ref`` of the summary page."""
    out = {f"gc_{m}_{key}{s}": round(float(overall.loc[method, m + s]), 3)
           for key, method in ATTENTION_KEYS.items() for m in ("pointing", "energy") for s in ("", "_lo", "_hi")}
    out |= {f"gc_{m}_minus_{ref.split()[0]}_{col}": round(float(r[col]), 3)
            for (m, ref), r in paired.iterrows() for col in ("mean", "lo", "hi")}
    tr = overall.loc["Grad-CAM, trained"]
    for m in ("pointing", "energy"):
        out[f"ch06_{m}_trained"] = ci_text(tr[m], tr[m + "_lo"], tr[m + "_hi"])
        out[f"ch06_{m}_ref"] = (f"centre Gaussian {overall.loc['centre', m]:.3f}; Grad-CAM of the random init "
                                f"{overall.loc['Grad-CAM, random init', m]:.3f}; "
                                f"uniform map {overall.loc['uniform', m]:.3f}")
    return out
