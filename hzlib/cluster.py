"""Clustering (paper section 5): K-means traced iteration by iteration (Figure 5), the stroke-level analysis
of a character's attention (Figure 6), and corpus-level K-means over embeddings against the labels. The
figures are drawn by :func:`hzlib.plots.figure5` and :func:`hzlib.plots.figure6`; the set of 真 that
chapter 7 analyses is rendered by :func:`hzlib.corpus.build.render_character_set`.

Conventions followed from the corpus (:mod:`hzlib.corpus.build`, :mod:`hzlib.corpus.types`):

* stroke-id mask: 0 background (or glyph pixels of no known stroke), k >= 1 stroke k in writing
  order (1-based); a glyph mask is a separate 0/255 image.
* manifest column ``stroke_types``: the types concatenated, one character each from
  ``STROKE_TYPES`` = 横 竖 撇 点 折 (e.g. 真: "横竖竖折横横横横撇点"); "" when unknown. char-similar's
  digit code (1 横, 2 竖, 3 撇, 4 点, 5 折) is accepted too.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    pairwise_distances_argmin,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler

from .corpus.glyphs import ORDER_DIGITS
from .corpus.provenance import IMPORTED, read_meta
from .corpus.types import STROKE_TYPES
from .report import skipped

# 真 in the hanzi-writer data (checked against its stroke medians): 1 横 and 2 竖 form 十; 3 竖, 4 横折 and
# the three inner 横 5-7 form 目 (its box is left open at the bottom); 8 is the long 一 that closes 目 and
# carries 八 (9 撇, 10 点), as in 具. The three parts 十 / 目 / 八 need 一 somewhere: the main
# grouping puts it with 八 (the base 一八 of 具); the alternatives are kept for a sensitivity check.
ZHEN_COMPONENTS = {1: "十", 2: "十", 3: "目", 4: "目", 5: "目", 6: "目", 7: "目", 8: "八", 9: "八", 10: "八"}
ZHEN_GROUPINGS = {
    "十/目/一八": ZHEN_COMPONENTS,
    "十/目一/八": {**ZHEN_COMPONENTS, 8: "目"},
    "十/目/一/八": {**ZHEN_COMPONENTS, 8: "一"},
}


# ------------------------------------------------------------------------ K-means, traced (Fig 5)


@dataclass
class KMeansTrace:
    """Every step of Lloyd's K-means. Index t = 0 is the initial centres, t >= 1 the centres after t
    updates; ``labels[t]`` is the assignment of each point to ``centres[t]`` and ``inertia[t]`` its
    sum of squared distances (non-increasing in t)."""

    centres: np.ndarray  # (T + 1, k, d)
    labels: np.ndarray  # (T + 1, n) int
    inertia: np.ndarray  # (T + 1,)
    converged: bool

    @property
    def n_iter(self) -> int:
        return len(self.centres) - 1

    @property
    def final_centres(self) -> np.ndarray:
        return self.centres[-1]

    @property
    def final_labels(self) -> np.ndarray:
        return self.labels[-1]


def kmeans_trace(X: np.ndarray, k: int = 3, init: np.ndarray | None = None, max_iter: int = 100,
                 tol: float = 1e-4, seed: int = 0) -> KMeansTrace:
    """K-means recording each iteration: scikit-learn's ``KMeans(max_iter=1, n_init=1)`` restarted
    from the previous centres, until the assignment stops changing, the centre shift falls within
    ``tol`` (scaled as scikit-learn does, by the mean feature variance), or ``max_iter`` updates.
    This stops where ``KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=tol).fit(X)`` stops, with
    the same centres. ``init`` defaults to seeded k-means++ (scikit-learn's ``kmeans_plusplus``)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < k:
        raise ValueError(f"X: expected (n >= k, d) points, got shape {X.shape} for k={k}")
    if k < 1 or max_iter < 1:
        raise ValueError(f"k and max_iter: must be >= 1, got k={k}, max_iter={max_iter}")
    if init is None:
        init, _ = kmeans_plusplus(X, k, random_state=seed)
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (k, X.shape[1]):
        raise ValueError(f"init: expected shape {(k, X.shape[1])}, got {init.shape}")
    tol_scaled = float(np.mean(np.var(X, axis=0)) * tol)

    def inertia_of(c, lab):
        return float(((X - c[lab]) ** 2).sum())

    lab0 = pairwise_distances_argmin(X, init)
    centres, labels, inertia = [init], [lab0], [inertia_of(init, lab0)]
    converged = False
    for _ in range(max_iter):
        # One Lloyd step: assign to the current centres, move them to the means (scikit-learn then
        # reassigns to the moved centres, which is labels[t]).
        km = KMeans(n_clusters=k, init=centres[-1], n_init=1, max_iter=1, tol=tol, random_state=seed).fit(X)
        centres.append(km.cluster_centers_.copy())
        labels.append(km.labels_.astype(int))
        inertia.append(float(km.inertia_))
        if np.array_equal(labels[-1], labels[-2]) or ((centres[-1] - centres[-2]) ** 2).sum() <= tol_scaled:
            converged = True
            break
    return KMeansTrace(np.stack(centres), np.stack(labels), np.asarray(inertia), converged)


def attention_features(image: np.ndarray, cam: np.ndarray, quantile: float = 0.8,
                       glyph_mask: np.ndarray | None = None, max_points: int | None = 5000,
                       seed: int = 0, stroke_mask: np.ndarray | None = None) -> pd.DataFrame:
    """Features of a map's high-attention pixels (``cam >= its quantile``): position ``x, y`` (in
    [0, 1], x right, y down), colour ``r, g, b`` (in [0, 1]), ``attention``, and ``in_glyph`` when a
    glyph mask is given. At most ``max_points`` pixels, a seeded random subset (for plotting speed).
    With a ``stroke_mask``, a column ``stroke`` (0 = none) labels each pixel; it is ground truth for
    checking clusters, not a feature (:func:`reduce_2d` leaves it out)."""
    cam = np.asarray(cam, dtype=np.float64)
    img = np.asarray(image)
    if img.shape[:2] != cam.shape or img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"image: expected (H, W, 3) matching the map {cam.shape}, got {img.shape}")
    if not 0 <= quantile < 1:
        raise ValueError(f"quantile: must be in [0, 1), got {quantile}")
    ys, xs = np.nonzero(cam >= np.quantile(cam, quantile))
    if max_points is not None and len(ys) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(ys), max_points, replace=False))
        ys, xs = ys[keep], xs[keep]
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    h, w = cam.shape
    df = pd.DataFrame({"x": (xs + 0.5) / w, "y": (ys + 0.5) / h,
                       "r": img[ys, xs, 0] / scale, "g": img[ys, xs, 1] / scale, "b": img[ys, xs, 2] / scale,
                       "attention": cam[ys, xs]})
    if glyph_mask is not None:
        gm = np.asarray(glyph_mask)
        if gm.shape != cam.shape:
            raise ValueError(f"glyph_mask: shape {gm.shape} differs from the map's {cam.shape}")
        df["in_glyph"] = gm[ys, xs] > 0
    if stroke_mask is not None:
        sm = np.asarray(stroke_mask)
        if sm.shape != cam.shape:
            raise ValueError(f"stroke_mask: shape {sm.shape} differs from the map's {cam.shape}")
        df["stroke"] = np.clip(sm[ys, xs].astype(np.int64), 0, None)
    return df


def reduce_2d(features: pd.DataFrame | np.ndarray, columns: Sequence[str] | None = None,
              seed: int = 0) -> tuple[np.ndarray, PCA]:
    """Standardise (zero mean, unit variance per feature, so that position and colour weigh alike)
    and project onto the first two principal components. Returns the (n, 2) points and the PCA."""
    if isinstance(features, pd.DataFrame):
        cols = list(columns) if columns is not None else [c for c in features.columns
                                                         if c not in ("in_glyph", "stroke")]
        X = features[cols].to_numpy(dtype=np.float64)
    else:
        X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"features: need at least 2 points and 2 features, got shape {X.shape}")
    pca = PCA(n_components=2, random_state=seed)
    return pca.fit_transform(StandardScaler().fit_transform(X)), pca


def figure5_data(image: np.ndarray, cam: np.ndarray, quantile: float = 0.8, k: int = 3, max_iter: int = 100,
                 glyph_mask: np.ndarray | None = None, max_points: int | None = 5000,
                 seed: int = 0, stroke_mask: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray, KMeansTrace]:
    """Figure 5's pipeline for one image: high-attention features, 2-D reduction, traced K-means."""
    feats = attention_features(image, cam, quantile, glyph_mask, max_points, seed, stroke_mask)
    Z, _ = reduce_2d(feats, seed=seed)
    return feats, Z, kmeans_trace(Z, k, max_iter=max_iter, seed=seed)


# ------------------------------------------------------------------- stroke-level analysis (Fig 6)


def parse_stroke_types(value) -> list[str] | None:
    """Stroke types as a list of ``STROKE_TYPES`` values, from a list, the manifest's concatenated
    string ("横竖撇"), or char-similar's digits ("123"); None for missing data ("", None, NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    items = list(value)  # a string splits into characters: every type is a single character
    if not items:
        return None
    out = [ORDER_DIGITS.get(str(t), str(t)) for t in items]
    bad = sorted({t for t in out if t not in STROKE_TYPES})
    if bad:
        raise ValueError(f"stroke_types: unknown type(s) {bad}; expected {STROKE_TYPES} or digits 1-5")
    return out


@dataclass
class StrokeAttention:
    """Attention on a character's strokes. Shares are of the whole map's total, so
    ``per_stroke.share.sum() + unassigned == in_glyph`` (``unassigned``: glyph pixels of no known
    stroke). ``reason`` says what could not be computed (None when everything was)."""

    in_glyph: float
    unassigned: float
    per_stroke: pd.DataFrame  # stroke (1-based), type, pixels, heat, share, mean_attention, x, y
    per_type: pd.DataFrame  # type, n_strokes, pixels, share
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


_STROKE_COLS = ["stroke", "type", "pixels", "heat", "share", "mean_attention", "x", "y"]
_TYPE_COLS = ["type", "n_strokes", "pixels", "share"]


def stroke_attention(cam: np.ndarray, stroke_mask: np.ndarray | None, stroke_types=None,
                     glyph_mask: np.ndarray | None = None) -> StrokeAttention:
    """Attention share per stroke and per stroke type of one map.

    ``stroke_mask``: the stroke-id mask (0 none, k stroke k) or None; ``stroke_types``: see
    :func:`parse_stroke_types`; ``glyph_mask``: the glyph (defaults to the strokes' union; give it
    when part of the glyph has no stroke id). Missing stroke data gives a result with ``reason`` set
    and empty tables rather than an error, and so does an all-zero map (NaN shares); types that do not
    match the strokes leave ``per_type`` empty with a reason."""
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2 or (cam < 0).any() or np.isnan(cam).any():
        raise ValueError("cam: expected a 2-D, finite, non-negative map")
    total = cam.sum()
    glyph = None
    if glyph_mask is not None:
        glyph = np.asarray(glyph_mask) > 0
        if glyph.shape != cam.shape:
            raise ValueError(f"glyph_mask: shape {glyph.shape} differs from the map's {cam.shape}")
    empty = StrokeAttention(float(cam[glyph].sum() / total) if glyph is not None and total > 0 else float("nan"),
                            float("nan"), pd.DataFrame(columns=_STROKE_COLS), pd.DataFrame(columns=_TYPE_COLS))
    if total <= 0:  # Grad-CAM's ReLU leaves nothing when no region raises the class score
        empty.reason = "the map is all zero: no share is defined"
        return empty
    if stroke_mask is None:
        empty.reason = "no stroke mask (the glyph source has no per-stroke outlines)"
        return empty
    sm = np.asarray(stroke_mask).astype(np.int64)
    if sm.shape != cam.shape:
        raise ValueError(f"stroke_mask: shape {sm.shape} differs from the map's {cam.shape}")
    sm[sm < 0] = 0  # the renderer's -1 (glyph, unknown stroke) counts as unassigned glyph
    n = int(sm.max())
    if n == 0:
        empty.reason = "the stroke mask holds no strokes"
        return empty
    if glyph is None:
        glyph = sm > 0
    if (sm[~glyph] > 0).any():
        raise ValueError("stroke_mask: stroke pixels outside glyph_mask")
    h, w = cam.shape
    ys, xs = np.mgrid[0:h, 0:w]
    ids = np.arange(1, n + 1)
    pixels = np.bincount(sm.ravel(), minlength=n + 1)[1:]
    heat = np.bincount(sm.ravel(), weights=cam.ravel(), minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(sm.ravel(), weights=(xs.ravel() + 0.5) / w, minlength=n + 1)[1:] / pixels
        cy = np.bincount(sm.ravel(), weights=(ys.ravel() + 0.5) / h, minlength=n + 1)[1:] / pixels
        mean_att = heat / pixels
    types = parse_stroke_types(stroke_types)
    reason = None
    if types is None:
        reason = "no stroke types"
    elif len(types) != n:
        reason = f"{len(types)} stroke types for {n} strokes in the mask"
    per_stroke = pd.DataFrame({"stroke": ids, "type": types if reason is None else [None] * n,
                               "pixels": pixels, "heat": heat, "share": heat / total,
                               "mean_attention": mean_att, "x": cx, "y": cy})
    if reason is None:
        g = per_stroke.groupby("type", sort=False)
        per_type = pd.DataFrame({"n_strokes": g.size(), "pixels": g["pixels"].sum(), "share": g["share"].sum()})
        per_type = per_type.reindex([t for t in STROKE_TYPES if t in per_type.index]).rename_axis("type").reset_index()
    else:
        per_type = pd.DataFrame(columns=_TYPE_COLS)
    in_glyph = float(cam[glyph].sum() / total)
    unassigned = float(cam[glyph & (sm == 0)].sum() / total)
    return StrokeAttention(in_glyph, unassigned, per_stroke, per_type, reason)


def stroke_clusters_vs_components(result: StrokeAttention, components: Mapping[int, str] | Sequence[str],
                                  features: Sequence[str] = ("x", "y", "mean_attention"), k: int | None = None,
                                  seed: int = 0) -> dict:
    """Cluster the strokes (K-means on standardised ``features`` of :func:`stroke_attention`'s
    per-stroke table; ``k`` defaults to the number of components) and compare the clusters with the
    character's components by adjusted Rand index. ``components``: stroke index (1-based) ->
    component, as a mapping or a sequence in stroke order. A result without strokes, or strokes
    missing from ``components``, gives ``ari`` NaN and a ``reason``."""
    out = {"ari": float("nan"), "k": k, "clusters": None, "components": None, "reason": None}
    if result.per_stroke.empty:
        out["reason"] = result.reason or "no strokes"
        return out
    comp = dict(components) if isinstance(components, Mapping) else dict(enumerate(components, start=1))
    present = result.per_stroke[result.per_stroke["pixels"] > 0]  # a stroke hidden by later ones has no pixels
    missing = [int(s) for s in present["stroke"] if int(s) not in comp]
    if missing:
        out["reason"] = f"strokes {missing} have no component"
        return out
    truth = [comp[int(s)] for s in present["stroke"]]
    k = k if k is not None else len(set(truth))
    if not 1 <= k <= len(present):
        out["reason"] = f"k={k} for {len(present)} strokes"
        return out
    X = StandardScaler().fit_transform(present[list(features)].to_numpy(dtype=np.float64))
    with warnings.catch_warnings():
        # Strokes with identical features (e.g. several with zero attention) leave fewer distinct
        # points than k: K-means then returns fewer clusters, which ARI handles; no warning needed.
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    out.update(ari=float(adjusted_rand_score(truth, labels)), k=k,
               clusters=dict(zip(present["stroke"].astype(int).tolist(), labels.astype(int).tolist())),
               components=dict(zip(present["stroke"].astype(int).tolist(), truth)))
    return out


# ------------------------------------------------------------------- corpus level: embeddings


def choose_k(X: np.ndarray, ks: Sequence[int] = range(2, 16), seed: int = 0, n_init: int = 10) -> pd.DataFrame:
    """K-means for each k: ``inertia`` (the elbow curve) and ``silhouette`` (Euclidean)."""
    X = np.asarray(X, dtype=np.float64)
    rows = []
    for k in ks:
        if not 2 <= k < len(X):
            raise ValueError(f"ks: k={k} outside 2..{len(X) - 1} (silhouette needs 2 <= k < n)")
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
        rows.append({"k": int(k), "inertia": float(km.inertia_), "silhouette": float(silhouette_score(X, km.labels_))})
    return pd.DataFrame(rows)


def cluster_vs_labels(X: np.ndarray, labels: Sequence, k: int, seed: int = 0, n_init: int = 10) -> dict:
    """K-means with k clusters compared with the true labels: ARI, NMI, silhouette."""
    X = np.asarray(X, dtype=np.float64)
    if len(labels) != len(X):
        raise ValueError(f"labels: {len(labels)} given for {len(X)} points")
    pred = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(X)
    return {"k": int(k), "ari": float(adjusted_rand_score(labels, pred)),
            "nmi": float(normalized_mutual_info_score(labels, pred)),
            "silhouette": float(silhouette_score(X, pred)) if 2 <= k < len(X) else float("nan"),
            "clusters": pred}


def corpus_clustering(X: np.ndarray, labels: Sequence, ks: Sequence[int] = range(2, 16), seed: int = 0,
                      normalise: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Embeddings (n, d) against labels: the k curve (:func:`choose_k`) and a table comparing the
    silhouette-best k and k = number of classes by ARI and NMI. ``normalise``: unit-norm rows first,
    so Euclidean K-means follows the cosine geometry that CLIP is trained in."""
    X = np.asarray(X, dtype=np.float64)
    if normalise:
        X = X / np.clip(np.linalg.norm(X, axis=1, keepdims=True), 1e-12, None)
    curve = choose_k(X, ks, seed)
    best = int(curve.loc[curve["silhouette"].idxmax(), "k"])
    n_classes = len(set(labels))
    rows = []
    for name, k in (("silhouette-best k", best), ("k = classes", n_classes)):
        r = cluster_vs_labels(X, labels, k, seed)
        rows.append({"choice": name, "k": k, "ari": r["ari"], "nmi": r["nmi"], "silhouette": r["silhouette"]})
    return curve, pd.DataFrame(rows)


def component_crop(image: np.ndarray, stroke_mask: np.ndarray, strokes: Sequence[int], margin: float = 0.05,
                   fill: np.ndarray | None = None) -> np.ndarray:
    """The image with everything outside the bounding box of ``strokes`` (ids in the stroke-id mask),
    widened by ``margin`` × the image side, painted with ``fill`` (default: the image's mean colour):
    what the model sees of one component of a character, at the image's size."""
    img = np.asarray(image)
    sm = np.asarray(stroke_mask)
    if sm.shape != img.shape[:2]:
        raise ValueError(f"stroke_mask: shape {sm.shape} differs from the image's {img.shape[:2]}")
    sel = np.isin(sm, list(strokes))
    if not sel.any():
        raise ValueError(f"strokes {list(strokes)}: none visible in the stroke mask")
    rows, cols = np.nonzero(sel)
    pad = int(round(margin * max(sm.shape)))
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, sm.shape[0])
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, sm.shape[1])
    colour = img.reshape(-1, img.shape[-1]).mean(axis=0) if fill is None else np.asarray(fill)
    out = np.empty_like(img)
    out[...] = colour.astype(img.dtype)
    out[r0:r1, c0:c1] = img[r0:r1, c0:c1]
    return out


def nearest_texts(query: np.ndarray, text_embeddings: np.ndarray, texts: Sequence[str], k: int = 3,
                  names: Sequence[str] | None = None) -> pd.DataFrame:
    """The ``k`` texts of highest cosine to each query embedding (rows of ``query``): one row per
    (query, rank) with ``query`` (its name), ``rank`` (1 = nearest), ``cosine`` and ``text``."""
    Q = np.atleast_2d(np.asarray(query, dtype=np.float64))
    T = np.asarray(text_embeddings, dtype=np.float64)
    if T.shape[0] != len(texts):
        raise ValueError(f"texts: {len(texts)} given for {T.shape[0]} embeddings")
    if Q.shape[1] != T.shape[1]:
        raise ValueError(f"query: dimension {Q.shape[1]} differs from the texts' {T.shape[1]}")
    names = list(names) if names is not None else list(range(len(Q)))
    Q = Q / np.clip(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12, None)
    T = T / np.clip(np.linalg.norm(T, axis=1, keepdims=True), 1e-12, None)
    sims = Q @ T.T
    rows = []
    for qi, name in enumerate(names):
        for r, j in enumerate(np.argsort(-sims[qi], kind="stable")[:k], start=1):
            rows.append({"query": name, "rank": r, "cosine": float(sims[qi, j]), "text": texts[j]})
    return pd.DataFrame(rows)


def stroke_table(results: Sequence[StrokeAttention], ids: Sequence) -> pd.DataFrame:
    """The per-stroke tables of several images in one long table (column ``id`` added), with
    ``area_share`` (the stroke's share of the glyph's stroke pixels) and ``ratio`` (attention share
    over area share: above 1, the stroke draws more attention than its size)."""
    if len(results) != len(ids):
        raise ValueError(f"ids: {len(ids)} given for {len(results)} results")
    parts = []
    for r, i in zip(results, ids):
        if r.per_stroke.empty:
            continue
        t = r.per_stroke.copy()
        t.insert(0, "id", i)
        area = t["pixels"] / max(t["pixels"].sum(), 1)
        stroke_heat = t["share"].sum()
        t["area_share"] = area
        with np.errstate(invalid="ignore", divide="ignore"):
            t["ratio"] = (t["share"] / stroke_heat) / area if stroke_heat > 0 else np.nan
        t.loc[t["pixels"] == 0, "ratio"] = np.nan  # a stroke hidden by others
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["id", *_STROKE_COLS, "area_share", "ratio"])
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------- what chapter 7 reports


def _figure5_row(image, cam, glyph, strokes, components, quantile, k, seed) -> dict:
    if not cam.any():  # an all-zero map has no high-attention pixels
        return {"in_glyph": np.nan, "on_strokes": 0, "iterations": 0, "ari": np.nan}
    f, _, trace = figure5_data(image, cam, quantile, k, glyph_mask=glyph, stroke_mask=strokes, seed=seed)
    on = f["stroke"].to_numpy() > 0
    comp = f["stroke"][on].map(components)
    ari = adjusted_rand_score(comp, trace.final_labels[on]) if comp.nunique() > 1 else np.nan
    return {"in_glyph": f["in_glyph"].mean(), "on_strokes": int(on.sum()), "iterations": trace.n_iter, "ari": ari}


def figure5_all(images: Sequence[np.ndarray], maps: Mapping[str, Sequence[np.ndarray]], glyphs: Sequence[np.ndarray],
                strokes: Sequence[np.ndarray], ids: Sequence, *, components: Mapping[int, str] = ZHEN_COMPONENTS,
                quantile: float = 0.8, k: int = 3, seed: int = 0) -> pd.DataFrame:
    """Figure 5's pipeline on every image, for the maps of each model (``maps``: model -> one map per
    image): per row the model, the image's id, the share of high-attention pixels inside the glyph,
    how many of them lie on a stroke, K-means' iterations, and the adjusted Rand index of the final
    clusters against the ``components`` of the stroke pixels (NaN with fewer than two components; an
    all-zero map gives NaN and 0)."""
    return pd.DataFrame([{"model": name, "id": ids[i],
                          **_figure5_row(images[i], cam, glyphs[i], strokes[i], components, quantile, k, seed)}
                         for name, model_maps in maps.items() for i, cam in enumerate(model_maps)])


def stroke_type_ratios(strokes: pd.DataFrame) -> pd.DataFrame:
    """Per model, image and stroke type (rows of :func:`stroke_table` with a ``model`` column): the
    summed attention and area shares, and ``ratio``, the type's share of the image's attention over
    its share of the stroke area (1: attention in proportion to area)."""
    sums = strokes.groupby(["model", "id", "type"], as_index=False)[["share", "area_share"]].sum()
    sums["ratio"] = sums["share"] / sums.groupby(["model", "id"])["share"].transform("sum") / sums["area_share"]
    return sums


STROKE_FEATURES = {"position + attention": ("x", "y", "mean_attention"), "attention only": ("mean_attention",),
                   "position only": ("x", "y")}


def stroke_ari(results: Mapping[str, Sequence[StrokeAttention]], ids: Sequence, *,
               groupings: Mapping[str, Mapping[int, str]] = ZHEN_GROUPINGS,
               feature_sets: Mapping[str, Sequence[str]] = STROKE_FEATURES, seed: int = 0) -> pd.DataFrame:
    """:func:`stroke_clusters_vs_components` for every model's results (model -> one per image), every
    grouping of the strokes into components and every feature set: one row (model, id, grouping,
    features, ari) each."""
    return pd.DataFrame([{"model": name, "id": ids[i], "grouping": grouping, "features": fname,
                          "ari": stroke_clusters_vs_components(r, comps, features=cols, seed=seed)["ari"]}
                         for name, rs in results.items() for i, r in enumerate(rs)
                         for grouping, comps in groupings.items() for fname, cols in feature_sets.items()])


# the feature sets of :data:`STROKE_FEATURES` as chapter 7's glue keys name them
STROKE_FEATURE_KEYS = {"position + attention": "position", "attention only": "attention", "position only": "geometry"}


def stroke_ari_values(main: pd.DataFrame) -> dict:
    """Chapter 7's glue keys of the stroke ARIs of the main grouping (``main``: :func:`stroke_ari`
    summarised by ``hzlib.gradcam.class_summary``, indexed by features and model):
    ``ari_<position|attention|geometry>_<trained|random>_<ari|lo|hi>``, e.g. ``ari_attention_trained_lo``."""
    return {f"ari_{STROKE_FEATURE_KEYS[fname]}_{name.split()[0]}_{col.split('_')[-1]}": round(float(r[col]), 3)
            for (fname, name), r in main.iterrows() for col in ("ari", "ari_lo", "ari_hi")}


def clustering_runs(runs: Mapping[str, tuple], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`corpus_clustering` for each run (name -> (embeddings, labels, ks)): the k curves in one
    table and the comparison tables in another indexed by (model, choice), each with the run's name
    in column ``model``."""
    out = {name: corpus_clustering(X, y, ks=ks, seed=seed) for name, (X, y, ks) in runs.items()}
    curves = pd.concat([c.assign(model=name) for name, (c, _) in out.items()], ignore_index=True)
    tables = pd.concat([t.assign(model=name) for name, (_, t) in out.items()], ignore_index=True)
    return curves, tables.set_index(["model", "choice"])


# the runs of chapter 7's corpus K-means and the choices of k, as its glue keys name them
KMEANS_RUN_KEYS = {"trained, all images": "trained_all", "random init, all images": "random_all",
                   "trained, test split": "trained_test", "random init, test split": "random_test"}
KMEANS_CHOICE_KEYS = {"k = classes": "k10", "silhouette-best k": "best"}


ZHEN_KEYS = (  # what chapter 7 glues about its rendered set of 真 (Figures 5 and 6, the information fields)
    "zhen_n", "zhen_zero_maps", "fig5_iter", "fig5_converged", "fig5_in_glyph", "fig5_in_glyph_trained",
    "fig5_ari_trained", "fig5_in_glyph_random", "fig5_ari_random", "ch07_fig5_ari", "ch07_fig5_ari_ref",
    "ch07_zhen_n", "fig6_ratio_横", "fig6_ratio_竖", "fig6_ratio_点", "ch07_stroke_ratios", "ch07_stroke_ratios_ref",
    *(f"ari_{f}_{m}_{v}" for f in ("attention", "position", "geometry") for m in ("random", "trained")
      for v in ("ari", "lo", "hi")),
    "ch07_strokes_ari_attention", "ch07_strokes_ari_attention_ref", "fields_zhen_share", "fields_zhen_base")


def missing_zhen_set(root) -> str | None:
    """None when chapter 7 can render its set of 真 for the corpus at ``root`` (a generated corpus), else
    why not: the set is drawn by the generator in its own ten classes, with glyph and stroke masks, and
    the classes and images of an imported corpus are the import's own."""
    meta = read_meta(root)
    if not meta or meta.get("source") != IMPORTED:
        return None
    return ("the set of 真 is rendered by the corpus generator, in the generator's ten classes and with its "
            "glyph and stroke masks; an imported corpus has its own classes and photographs without stroke "
            "ground truth, so Figures 5 and 6 and the information fields are not computed")


def zhen_values_skipped(reason: str) -> dict:
    """:data:`ZHEN_KEYS` for a corpus without the set of 真: the chapter's text reads "skipped", the
    summary page's values (``ch07_*``) say why."""
    return {k: skipped(reason) if k.startswith("ch07_") else "skipped" for k in ZHEN_KEYS}


def kmeans_values(table: pd.DataFrame) -> dict:
    """Chapter 7's glue keys of :func:`clustering_runs`' table: ``km_<run>_<choice>_<ari|nmi|k>``
    (run and choice from :data:`KMEANS_RUN_KEYS` and :data:`KMEANS_CHOICE_KEYS`, e.g.
    ``km_trained_all_k10_ari``), ARI and NMI rounded to 3 decimals."""
    def value(name, c, m):
        v = table.loc[(name, c), m]
        return int(v) if m == "k" else round(float(v), 3)
    return {f"km_{run}_{choice}_{m}": value(name, c, m)
            for name, run in KMEANS_RUN_KEYS.items() if name in table.index.get_level_values("model")
            for c, choice in KMEANS_CHOICE_KEYS.items() for m in ("ari", "nmi", "k")}
