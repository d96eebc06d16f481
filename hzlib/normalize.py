"""Section 3 of the paper: image normalisation (Eq 1-3).

Eq 1  resize with an interpolation kernel, I_a(x, y) = sum_i sum_j I_o(i, j) K(x - i, y - j);
Eq 2  z-score standardisation of the grey values, I_s(x, y) = (I_a(x, y) - mu) / sigma, mu the mean grey
      value of the image and sigma its standard deviation;
Eq 3  histogram equalisation, I_b(x, y) = HistEqualize(I_s(x, y)): the CDF mapped to a uniform one.

scikit-image does the work; this module fixes the choices (kernel order, anti-aliasing, grey weights)
in one place so the chapter and the models use the same transform. :class:`NormalizeConfig` ``colour``
selects Eq 2-3 on grey values (``"grey"``, the paper's) or on each RGB channel (``"channels"``, ours,
which keeps three channels). What the models read is :func:`model_image` in one of
:data:`MODEL_INPUTS` (the profile key ``clip_input``): the classes of our corpus differ in material,
paint and setting, that is in colour, which grey values discard.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from skimage import color, exposure, feature, transform
from tqdm.auto import tqdm

from .config import map_files

KERNELS = {"nearest": 0, "bilinear": 1, "biquadratic": 2, "bicubic": 3}


COLOURS = ("grey", "channels")
GREY_WEIGHTS = (0.2125, 0.7154, 0.0721)  # ITU-R BT.709 luma, as skimage.color.rgb2gray


@dataclass(frozen=True)
class NormalizeConfig:
    size: int = 224
    kernel: str = "bilinear"  # a triangle kernel; skimage's bicubic (spline prefilter) costs ~20x more
    colour: str = "grey"  # Eq 2-3 on the grey values (the paper's) or on each RGB channel ("channels")
    eps: float = 1e-8

    def __post_init__(self):
        if self.colour not in COLOURS:
            raise ValueError(f"colour={self.colour!r} is not one of {COLOURS}")


def grey(image: np.ndarray) -> np.ndarray:
    """The grey values of an RGB image (H, W, 3) -> (H, W), BT.709 weights, in the input's value range;
    a 2-D image is returned as it is."""
    img = np.asarray(image, dtype=np.float64)
    return img if img.ndim == 2 else img[..., :3] @ np.asarray(GREY_WEIGHTS)


def resize(image: np.ndarray, size: int | tuple[int, int], kernel: str = "bilinear") -> np.ndarray:
    """Eq 1: resample to ``size`` (int = square) with a polynomial interpolation kernel.

    Anti-aliasing is applied when shrinking (a Gaussian pre-filter), as any careful resize must.
    Returns float64 in the input's value range.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r} is not one of {sorted(KERNELS)}")
    shape = (size, size) if isinstance(size, int) else tuple(size)
    if min(shape) < 1:
        raise ValueError(f"size={size!r} must be positive")
    img = np.asarray(image, dtype=np.float64)
    out_shape = shape + img.shape[2:]
    shrinking = any(o < i for o, i in zip(shape, img.shape[:2]))
    return transform.resize(img, out_shape, order=KERNELS[kernel], mode="edge",
                            anti_aliasing=shrinking, preserve_range=True)


def zscore(image: np.ndarray, per_channel: bool = True, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq 2: Z = (I - mu) / sigma; returns (Z, mu, sigma). A constant image maps to zeros."""
    img = np.asarray(image, dtype=np.float64)
    axes = (0, 1) if (per_channel and img.ndim == 3) else None
    mu = img.mean(axis=axes, keepdims=True)
    sigma = img.std(axis=axes, keepdims=True)
    z = (img - mu) / np.maximum(sigma, eps)
    return z, np.squeeze(mu), np.squeeze(sigma)


def equalize(image: np.ndarray, nbins: int = 256) -> np.ndarray:
    """Eq 3: histogram equalisation of each channel; returns values in [0, 1] whose CDF is near uniform."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        return exposure.equalize_hist(img, nbins=nbins)
    return np.stack([exposure.equalize_hist(img[..., c], nbins=nbins) for c in range(img.shape[2])], axis=-1)


def normalize(image: np.ndarray, cfg: NormalizeConfig = NormalizeConfig()) -> dict[str, np.ndarray]:
    """The paper's pipeline, every stage kept (Figure 1 shows all four): Eq 1 on the image, then with
    ``cfg.colour == "grey"`` Eq 2 and Eq 3 on its grey values (2-D stages), with ``"channels"`` on each
    RGB channel (3-D stages)."""
    resized = resize(image, cfg.size, cfg.kernel)
    values = grey(resized) if cfg.colour == "grey" else resized
    z, _, _ = zscore(values, per_channel=True, eps=cfg.eps)
    return {"original": np.asarray(image), "resized": resized, "standardized": z, "equalized": equalize(z)}


def equalize_luminance(image: np.ndarray, nbins: int = 256) -> np.ndarray:
    """Eq 3 on brightness only: histogram-equalise the lightness L* of CIELAB and keep a* and b*, so
    the hue and saturation of the material survive ("brightness equalisation" in the paper's words).
    ``image``: RGB in [0, 1]; returns RGB in [0, 1]."""
    lab = color.rgb2lab(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0))
    lab[..., 0] = 100.0 * exposure.equalize_hist(lab[..., 0], nbins=nbins)
    with warnings.catch_warnings():  # colours pushed out of the sRGB gamut are clipped, as intended
        warnings.filterwarnings("ignore", message=".*negative Z values.*")
        return np.clip(color.lab2rgb(lab), 0.0, 1.0)


MODEL_INPUTS = ("luma", "rgb", "channels", "grey")


def model_image(image: np.ndarray, size: int, mode: str = "luma") -> np.ndarray:
    """The image a model sees, RGB in [0, 1] at ``size`` x ``size``; Eq 2 is then also the model's
    standardisation of its whole input (:func:`hzlib.pairs.to_model_input`), one mean and deviation
    for the data rather than per image. The models need colour (the classes differ in material, paint
    and setting), which the paper's grey pipeline discards; hence the modes:

    * ``luma``: Eq 1, then Eq 3 on the lightness only (:func:`equalize_luminance`): colour kept.
    * ``rgb``: Eq 1 only.
    * ``channels``: Eq 1-3 with Eq 2 and Eq 3 per RGB channel, which flattens every channel's
      histogram and with it most of the colour.
    * ``grey``: Eq 1-3 as the paper writes them, on grey values (chapter 2's Figure 1), the grey image
      repeated in the three channels: no colour at all."""
    if mode not in MODEL_INPUTS:
        raise ValueError(f"mode={mode!r} is not one of {MODEL_INPUTS}")
    if mode in ("channels", "grey"):
        eq = normalize(image, NormalizeConfig(size=size, colour=mode))["equalized"]
        return eq if mode == "channels" else np.repeat(eq[..., None], 3, axis=2)
    img = np.asarray(image)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    resized = np.clip(resize(img, size) / scale, 0.0, 1.0)
    return equalize_luminance(resized) if mode == "luma" else resized


def to_display(z: np.ndarray, k: float = 2.5) -> np.ndarray:
    """Map a z-scored image to [0, 1] for display (clip at +-k standard deviations)."""
    return np.clip((np.asarray(z) + k) / (2 * k), 0.0, 1.0)


def corpus_statistics(paths, cfg: NormalizeConfig = NormalizeConfig()):
    """Per image: mean and std after Eq 2 (of the grey values, or the extremes over channels with
    ``cfg.colour == "channels"``), and the Kolmogorov-Smirnov distance of the Eq 3 output to U(0, 1);
    one row per image (a pandas DataFrame)."""
    rows = []
    for p in tqdm(list(paths), desc="Eq 1-3 on the corpus", unit="img", leave=False):
        st = normalize(np.asarray(Image.open(p).convert("RGB")), cfg)
        z, eq = st["standardized"], np.sort(st["equalized"].ravel())
        n = eq.size
        ks = float(np.max(np.maximum(np.arange(1, n + 1) / n - eq, eq - np.arange(n) / n)))
        sd = np.atleast_1d(z.std(axis=(0, 1)))
        rows.append({"z_mean": float(z.mean()), "z_std_min": float(sd.min()), "z_std_max": float(sd.max()),
                     "eq_ks_uniform": ks})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DescriptorConfig:
    """A fixed, hand-designed image descriptor (no learning): the image space that text is mapped into
    before a CLIP image tower exists, and the pixel baseline of the evaluation."""
    size: int = 64  # Eq 1 side before the descriptor
    hog_cell: int = 8
    hog_orientations: int = 9
    colour_bins: int = 8  # per HSV channel


def descriptor(image: np.ndarray, cfg: DescriptorConfig = DescriptorConfig()) -> np.ndarray:
    """HOG of the Eq 1-resized grey image (shape) concatenated with HSV colour histograms (material,
    palette, setting), each part L2-normalised so neither dominates by its length."""
    img = resize(np.asarray(image, dtype=np.float64) / 255.0, cfg.size, "bilinear").clip(0, 1)
    hog = feature.hog(color.rgb2gray(img), orientations=cfg.hog_orientations,
                      pixels_per_cell=(cfg.hog_cell, cfg.hog_cell), cells_per_block=(2, 2), feature_vector=True)
    hsv = color.rgb2hsv(img)
    hist = np.concatenate([np.histogram(hsv[..., c], bins=cfg.colour_bins, range=(0, 1))[0] for c in range(3)])
    parts = [hog, hist.astype(np.float64)]
    return np.concatenate([p / max(np.linalg.norm(p), 1e-12) for p in parts])


def _file_descriptor(args) -> np.ndarray:
    path, cfg = args
    return descriptor(np.asarray(Image.open(path).convert("RGB")), cfg)


def descriptors(paths, cfg: DescriptorConfig = DescriptorConfig(), *, workers: int = 1) -> np.ndarray:
    """:func:`descriptor` of each image file, stacked (n, d), in ``workers`` processes."""
    return np.stack(map_files(_file_descriptor, [(str(p), cfg) for p in paths], workers=workers,
                              desc="image descriptors"))
