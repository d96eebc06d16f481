"""Figure helpers (matplotlib/seaborn), numbered like the paper where the paper has the figure: every
figure of the book is drawn here, from what the chapters' modules compute."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import font_manager
from matplotlib.patches import Rectangle
from PIL import Image

from . import normalize as N, sfm
from .corpus import classes as C, render as R
from .corpus.types import STROKE_TYPES, Camera, Glyph, Sculpture

if TYPE_CHECKING:  # annotations only: cluster loads scikit-learn
    from .cluster import KMeansTrace, StrokeAttention


# CJK fonts installed by the set-up; a regular (400) weight avoids matplotlib's weight-fallback warnings.
CJK_FONTS = ("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf",
             "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def _use_cjk_font() -> None:
    """Latin text in DejaVu Sans, Chinese through matplotlib's per-glyph fallback to a CJK font."""
    for path in CJK_FONTS:
        if Path(path).exists():
            font_manager.fontManager.addfont(path)
            name = font_manager.FontProperties(fname=path).get_name()
            plt.rcParams["font.family"] = ["DejaVu Sans", name]
            plt.rcParams["axes.unicode_minus"] = False
            return


sns.set_theme(context="notebook", style="whitegrid", font="sans-serif")
_use_cjk_font()


def class_label(key: str) -> str:
    spec = C.BY_KEY.get(key)
    return f"{spec.name_en}\n{spec.name_zh}" if spec else key


def class_name(key: str) -> str:
    """The paper's name of a class: its Table 1 cultural aspect (the x-axis of its Figure 7)."""
    spec = C.BY_KEY.get(key)
    return spec.name_en if spec else key


def example_grid(df: pd.DataFrame, root: Path, per_class: int = 6, seed: int = 0, title: str | None = None):
    """One row of example images per class."""
    keys = C.class_order(df["label"])
    fig, axes = plt.subplots(len(keys), per_class, figsize=(1.6 * per_class + 1.6, 1.6 * len(keys)), squeeze=False)
    rng = np.random.default_rng(seed)
    for r, key in enumerate(keys):
        sub = df[df["label"] == key]
        pick = sub.iloc[rng.permutation(len(sub))[:per_class]]
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(pick):
                ax.imshow(Image.open(Path(root) / pick.iloc[c]["image"]))
        axes[r, 0].set_ylabel(class_label(key), rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def factor_heatmaps(df: pd.DataFrame, factors=("style", "form", "material", "glyph_paint", "setting")):
    """Share of each factor value within each class (rows sum to 1)."""
    fig, axes = plt.subplots(1, len(factors), figsize=(4.2 * len(factors), 4.5), sharey=True)
    order = C.class_order(df["label"])
    for ax, f in zip(np.atleast_1d(axes), factors):
        tab = pd.crosstab(df["label"], df[f], normalize="index").reindex(order)
        sns.heatmap(tab, ax=ax, cmap="mako_r", vmin=0, vmax=1, cbar=False, annot=len(tab.columns) <= 8,
                    fmt=".2f", annot_kws={"fontsize": 7})
        ax.set_title(f)
        ax.set_xlabel("")
        ax.set_ylabel("")
    np.atleast_1d(axes)[0].set_yticklabels([class_name(k) for k in order], rotation=0)
    fig.tight_layout()
    return fig


def text_lengths(df: pd.DataFrame):
    """Length in characters of the descriptions, per register (the ``text`` column without registers)."""
    cols = [c for c in df.columns if c.startswith("text_")] or ["text"]  # an imported corpus: one text
    long = pd.concat([pd.DataFrame({"register": c.removeprefix("text_"), "length": df[c].str.len()}) for c in cols])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.histplot(long, x="length", hue="register", element="step", stat="density", common_norm=False, ax=ax)
    ax.set_xlabel("description length (characters)")
    fig.tight_layout()
    return fig


STAGES = (("original", "original"), ("resized", "resized (Eq 1)"), ("standardized", "z-score (Eq 2)"),
          ("equalized", "equalised (Eq 3)"))


def _show(ax, img) -> None:
    """imshow of an RGB image, or of a 2-D stage (grey values in [0, 1]) in grey."""
    img = np.asarray(img)
    ax.imshow(img, **({"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}))


def stage_images(stages: dict[str, np.ndarray], display=None) -> list[np.ndarray]:
    """The four stages of the normalisation as displayable images in [0, 1] (Figure 1's panels);
    ``display`` maps the z-scored image to [0, 1] (default: normalize.to_display)."""
    display = display or N.to_display
    return [stages["original"], np.clip(stages["resized"] / 255.0, 0, 1), display(stages["standardized"]),
            stages["equalized"]]


def figure1(stages: dict[str, np.ndarray], title: str = "", display=None):
    """Figure 1: original, resized (Eq 1), standardised (Eq 2), equalised (Eq 3)."""
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, (k, label), img in zip(axes, STAGES, stage_images(stages, display)):
        _show(ax, img)
        ax.set_title(f"{label}\n{stages[k].shape[1]}×{stages[k].shape[0]}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def channel_histograms(stages: dict[str, np.ndarray]):
    """Pixel-value distributions before and after Eq 2 and Eq 3 (pooled over channels; after Eq 2 the
    grey values with the default :class:`hzlib.normalize.NormalizeConfig`)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for ax, k in zip(axes, ("resized", "standardized", "equalized")):
        ax.hist(np.asarray(stages[k]).ravel(), bins=64, color="0.3")
        ax.set_title(k)
    fig.tight_layout()
    return fig


def ground_truth(df: pd.DataFrame, root: Path, n: int = 4, seed: int = 0):
    """Image, glyph mask and stroke-id mask for a few images that have stroke masks."""
    has = df[df["stroke_mask"].fillna("") != ""] if "stroke_mask" in df else df.iloc[:0]
    pick = (has if len(has) else df).sample(min(n, len(has) or len(df)), random_state=seed)
    fig, axes = plt.subplots(len(pick), 3, figsize=(7.5, 2.5 * len(pick)), squeeze=False)
    for r, (_, row) in enumerate(pick.iterrows()):
        axes[r, 0].imshow(Image.open(Path(root) / row["image"]))
        axes[r, 0].set_title(f"{row['char']} · {row['style']} · {row['form']} · {row['material']}", fontsize=8)
        axes[r, 1].imshow(Image.open(Path(root) / row["glyph_mask"]), cmap="gray")
        axes[r, 1].set_title("glyph mask", fontsize=8)
        if row.get("stroke_mask"):
            ids = np.asarray(Image.open(Path(root) / row["stroke_mask"])).astype(float)
            axes[r, 2].imshow(np.where(ids > 0, ids, np.nan), cmap="tab20", interpolation="nearest")
            axes[r, 2].set_title("stroke ids: " + " ".join(str(row.get("stroke_types", ""))), fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def sample_title(row) -> str:
    """``id: char (label, material, form)`` for a generated sample; of an imported one, the factors it has."""
    facts = [str(row[k]) for k in ("label", "material", "form") if str(row.get(k, "") or "").strip()]
    char = str(row.get("char", "") or "").strip()
    return f"{row['id']}{': ' + char if char else ''} ({', '.join(facts)})"


def figure1_grid(df: pd.DataFrame, root: Path, cfg, seed: int = 0):
    """Figure 1 for one image per class: rows = classes, columns = the four stages."""
    keys = C.class_order(df["label"])
    fig, axes = plt.subplots(len(keys), 4, figsize=(8, 2 * len(keys)), squeeze=False)
    for r, key in enumerate(keys):
        row = df[df["label"] == key].sample(1, random_state=seed).iloc[0]
        st = N.normalize(np.asarray(Image.open(Path(root) / row["image"]).convert("RGB")), cfg)
        for c, img in enumerate(stage_images(st)):
            _show(axes[r, c], img)
            axes[r, c].axis("off")
        axes[r, 0].text(-0.05, 0.5, class_name(key), transform=axes[r, 0].transAxes, ha="right", va="center")
    for c, t in enumerate(["original", "Eq 1", "Eq 2", "Eq 3"]):
        axes[0, c].set_title(t)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- Figure 2 (SfM)

def sfm_matches(orbit_dir: Path, model_dir: Path, ax=None, max_lines: int = 80, seed: int = 0):
    """Figure 2(a): the two registered views sharing the most 3D points, with their correspondences."""
    import pycolmap  # here, not at the top: COLMAP's native library, needed by Figure 2(a) only

    rec = pycolmap.Reconstruction(str(model_dir))
    obs = {}
    for img in rec.images.values():
        if img.has_pose:
            obs[img.name] = {p.point3D_id: p.xy for p in img.points2D if p.has_point3D()}
    names = sorted(obs)
    best = max(((a, b) for i, a in enumerate(names) for b in names[i + 1:]),
               key=lambda ab: len(obs[ab[0]].keys() & obs[ab[1]].keys()))
    a, b = best
    shared = sorted(obs[a].keys() & obs[b].keys())
    ia, ib = (np.asarray(Image.open(Path(orbit_dir) / "images" / n).convert("RGB")) for n in (a, b))
    canvas = np.concatenate([ia, ib], axis=1)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    ax.imshow(canvas)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(shared))[:max_lines]
    for k in pick:
        (xa, ya), (xb, yb) = obs[a][shared[k]], obs[b][shared[k]]
        ax.plot([xa, xb + ia.shape[1]], [ya, yb], lw=0.6, alpha=0.8)
    ax.set_title(f"(a) {len(shared)} matched features triangulated from views {a} and {b}")
    ax.axis("off")
    return ax


def points_on_view(image: np.ndarray, camera: dict, points: np.ndarray, values: np.ndarray, ax=None,
                   title: str = "", vmax: float = 0.02):
    """Points (world frame) projected into a true view, coloured by their error (fraction of the diagonal)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(image, alpha=0.45)
    T, K = np.asarray(camera["world_to_cam"]), np.asarray(camera["K"])
    cam = points @ T[:3, :3].T + T[:3, 3]
    front = cam[:, 2] > 1e-6
    uv = cam[front] @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    sc = ax.scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, c=np.asarray(values)[front], s=1.5, cmap="viridis_r",
                    vmin=0, vmax=vmax)
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.set_title(title)
    ax.axis("off")
    plt.colorbar(sc, ax=ax, fraction=0.035, label="distance to true mesh / diagonal")
    return ax


def mesh_view(vertices: np.ndarray, triangles: np.ndarray, camera: dict, ax=None, title: str = "",
              material: str = "marble"):
    """A triangle mesh rendered from a true camera with the corpus renderer (neutral material, no glyph)."""
    sculpture = Sculpture(np.asarray(vertices, np.float32), np.asarray(triangles, np.int32), "reconstruction",
                          Glyph("", "", []), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), np.zeros((1, 1), np.int16))
    cam = Camera(np.asarray(camera["K"]), np.asarray(camera["world_to_cam"]), int(camera["width"]),
                 int(camera["height"]))
    look = R.Look(material=material, setting="museum", weathering=0.0, noise_sigma=0.0)
    img = R.Renderer(sculpture, threads=1).render(cam, look).image
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(img)
    ax.set_title(title)
    ax.axis("off")
    return ax


def figure2(orbit_dir: Path, work_dir: Path, record: dict, view: str = "000.png"):
    """Figure 2: (a) correspondences, (b) sparse and dense clouds on a true view, (c) surface vs truth."""
    orbit_dir, work_dir = Path(orbit_dir), Path(work_dir)
    cams = sfm.load_orbit_cameras(orbit_dir / "cameras.json")
    cam = cams[view]
    image = np.asarray(Image.open(orbit_dir / "images" / view).convert("RGB"))
    v, t = sfm.load_mesh(orbit_dir / "mesh.ply")
    diag = sfm.mesh_diagonal(v)
    clouds = np.load(work_dir / "clouds.npz")
    fig = plt.figure(figsize=(12, 12))
    grid = fig.add_gridspec(3, 2, height_ratios=[1.1, 1, 1])
    if record.get("model_dir"):
        sfm_matches(orbit_dir, Path(record["model_dir"]), ax=fig.add_subplot(grid[0, :]))
    for col, name in enumerate(("sparse", "dense")):
        pts = clouds[name]
        err = sfm.distance_to_mesh(pts, v, t) / diag if len(pts) else np.zeros(0)
        points_on_view(image, cam, pts, err, ax=fig.add_subplot(grid[1, col]),
                       title=f"(b) {name} cloud, {len(pts):,} points")
    surface = work_dir / "surface.ply"
    if surface.exists():
        sv, st = sfm.load_mesh(surface)
        mesh_view(sv, st, cam, ax=fig.add_subplot(grid[2, 0]), title="(c) reconstructed surface (TSDF)")
    mesh_view(v, t, cam, ax=fig.add_subplot(grid[2, 1]), title="true mesh")
    fig.suptitle(f"Figure 2 — {record['orbit']}: {record['form']}, {record['material']}, "
                 f"{record['registered']}/{record['views']} views registered")
    fig.tight_layout()
    return fig


def text_map(coords: np.ndarray, labels, title: str = ""):
    """Descriptions in two dimensions, coloured by class (the reduction is the caller's)."""
    order = C.class_order(labels)
    data = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1],
                         "class": [class_name(k) for k in labels]})
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    sns.scatterplot(data, x="x", y="y", hue="class", hue_order=[class_name(k) for k in order],
                    palette="tab10", s=12, alpha=0.7, linewidth=0, ax=ax)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8, title="class")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def paired_similarity(paired: np.ndarray, unpaired: np.ndarray, rank: np.ndarray, fold_size: np.ndarray):
    """Left: cosine of each mapped text with its own image and the mean over the other images;
    right: where its own image ranks among the held-out images (0 = first, 1 = last)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    long = pd.DataFrame({"cosine": np.r_[paired, unpaired],
                         "image": ["its own"] * len(paired) + ["mean of the others"] * len(unpaired)})
    sns.histplot(long, x="cosine", hue="image", element="step", stat="density", common_norm=False, ax=axes[0])
    rel = (np.asarray(rank) - 1) / np.maximum(np.asarray(fold_size) - 1, 1)
    sns.histplot(rel, bins=20, stat="density", ax=axes[1])
    axes[1].axhline(1.0, color="0.4", ls="--", lw=1, label="chance")
    axes[1].set_xlabel("relative rank of the own image (0 = nearest)")
    axes[1].legend()
    fig.tight_layout()
    return fig


def attention_by_class(summary: pd.DataFrame, metrics=("pointing", "energy"), methods=None):
    """Ground-truth checks of attention maps per class: for each metric a panel of per-class means
    with their intervals (columns ``<metric>_lo``/``_hi``, as from
    :func:`hzlib.gradcam.class_summary` by label and method), one colour per method."""
    methods = list(methods) if methods is not None else list(dict.fromkeys(summary["method"]))
    labels = C.class_order(summary["label"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 0.35 * len(labels) + 1.6),
                             squeeze=False, sharey=True)
    colours = dict(zip(methods, sns.color_palette("tab10", len(methods))))
    offsets = np.linspace(-0.3, 0.3, len(methods)) if len(methods) > 1 else [0.0]
    for ax, m in zip(axes[0], metrics):
        for off, method in zip(offsets, methods):
            sub = summary[summary["method"] == method].set_index("label").reindex(labels)
            y = np.arange(len(labels)) + off
            ax.errorbar(sub[m], y, xerr=[sub[m] - sub[f"{m}_lo"], sub[f"{m}_hi"] - sub[m]], fmt="o", ms=3,
                        lw=1, color=colours[method], label=method)
        ax.set_xlabel({"pointing": "pointing game (hit rate)", "energy": "share of the map in the glyph"}.get(m, m))
        ax.set_xlim(-0.02, 1.02)
    axes[0, 0].set_yticks(np.arange(len(labels)), [class_name(k) for k in labels])
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def k_curves(curves: pd.DataFrame, n_classes: int | None = None):
    """Inertia (elbow) and silhouette against k, one line per ``model`` (a column of ``curves``)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    sns.lineplot(curves, x="k", y="inertia", hue="model", marker="o", ax=axes[0])
    sns.lineplot(curves, x="k", y="silhouette", hue="model", marker="o", ax=axes[1], legend=False)
    for ax in axes:
        if n_classes:
            ax.axvline(n_classes, color="0.5", ls="--", lw=1)
    axes[0].set_ylabel("inertia (unit-norm embeddings)")
    fig.tight_layout()
    return fig


def _setting_label(row) -> str:
    tau = "τ learnt" if row.get("learn_tau", True) else "τ fixed"
    return f"lr {row['lr']:.1e}, B {int(row['batch_size'])}, {tau}"


def figure3(curves: pd.DataFrame, table: pd.DataFrame, best: int | None = None, select_by: str = "val_mean_recall",
            chosen: str = "best on validation", chance=np.log):
    """Figure 3: training loss against iteration for every setting of the sweep (``curves``: setting,
    step, loss; ``table``: one row per setting with lr, batch_size, learn_tau and ``select_by``), the
    chosen setting (``best``, its number) drawn thick and named in the legend with why (``chosen``);
    ``chance(B)``, the loss of uniform logits at batch size B (ln B for in-batch negatives), dotted."""
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    settings = list(table["setting"])
    colours = dict(zip(settings, sns.color_palette("husl", len(settings))))
    rows = table.set_index("setting")
    for s in settings:
        c = curves[curves["setting"] == s]
        row = rows.loc[s]
        is_best = s == best
        label = f"{s}: {_setting_label(row)}" + (f"  ← {chosen}" if is_best else "")
        ax.plot(c["step"], c["loss"], color=colours[s], lw=2.6 if is_best else 1.0,
                ls="-" if row.get("learn_tau", True) else "--", alpha=1.0 if is_best else 0.75, label=label,
                zorder=3 if is_best else 2)
    for b in sorted(set(table["batch_size"])):  # the loss of uniform logits
        ax.axhline(chance(b), color="0.5", ls=":", lw=1)
        ax.annotate(f"chance, B = {int(b)}", (1, chance(b)), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7, color="0.4")
    ax.set_xlabel("iteration (training step)")
    ax.set_ylabel("contrastive loss (Eq 6)")
    ax.set_title(f"Figure 3: loss against iteration, {len(settings)} settings (chosen by {select_by})")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig


def training_curve(metrics: pd.DataFrame, steps_per_epoch: int | None = None, window: int = 10,
                   chance: float | None = None):
    """Loss (per step and its running mean over ``window`` steps) and temperature tau against the step
    (``metrics``: the rows of :func:`hzlib.train.read_metrics`), epochs marked on the top axis;
    ``chance``: the loss of a model that has learnt nothing (ln B), dotted."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    axes[0].plot(metrics["step"], metrics["loss"], lw=0.6, color="0.7", label="per step")
    axes[0].plot(metrics["step"], metrics["loss"].rolling(window, min_periods=1).mean(), lw=1.8,
                 label=f"running mean ({window} steps)")
    if chance is not None:
        axes[0].axhline(chance, ls=":", color="k", lw=1, label=f"chance (ln B = {chance:.2f})")
    axes[0].set_ylabel("contrastive loss (Eq 6)")
    axes[0].legend(fontsize=8)
    axes[1].plot(metrics["step"], metrics["tau"], lw=1.5)
    axes[1].set_ylabel("temperature τ")
    for ax in axes:
        ax.set_xlabel("step")
        if steps_per_epoch:
            top = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch))
            top.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def loss_curves(losses: dict[str, list[float]], chance: dict[str, float | None], window: int = 10):
    """Each model's training loss against the step (running mean over ``window`` steps), one panel per
    model, with its chance level (``chance``: ln B for in-batch contrastive losses, ln C for a
    classifier; the loss of a model that has learnt nothing) dotted and 0.75x chance dashed."""
    n = len(losses)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, values) in zip(axes.ravel(), losses.items()):
        v = pd.Series(values, dtype=float)
        ax.plot(np.arange(1, len(v) + 1), v, lw=0.5, color="0.75")
        ax.plot(np.arange(1, len(v) + 1), v.rolling(window, min_periods=1).mean(), lw=1.6)
        level = chance.get(name)
        if level is not None:
            ax.axhline(level, ls=":", color="k", lw=1, label="chance")
            ax.axhline(0.75 * level, ls="--", color="0.4", lw=0.8, label="0.75 × chance")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(bottom=0)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("training loss")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure4(images: Sequence[np.ndarray], cams: Sequence[np.ndarray], titles: Sequence[str] | None = None,
            threshold: float = 0.5, max_boxes: int = 3):
    """Figure 4: per example (a row), the image, the image with its focus regions framed
    (:func:`hzlib.gradcam.focus_regions`), and the heat-map overlay (:func:`hzlib.gradcam.overlay`).
    Images (H, W, 3) and maps (H, W) of equal size."""
    # here, not at the top: gradcam imports torch and pytorch_grad_cam (seconds), which no other figure needs
    from .gradcam import focus_regions, overlay

    _use_cjk_font()
    n = len(images)
    if n == 0 or len(cams) != n:
        raise ValueError(f"cams: {len(cams)} maps for {n} images (need at least one, equal counts)")
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i, (img, cam) in enumerate(zip(images, cams)):
        img = np.asarray(img)
        axes[i, 0].imshow(img)
        axes[i, 1].imshow(img)
        for _, r in focus_regions(cam, threshold).head(max_boxes).iterrows():
            axes[i, 1].add_patch(Rectangle((r.col0 - 0.5, r.row0 - 0.5), r.col1 - r.col0, r.row1 - r.row0,
                                           fill=False, edgecolor="red", linewidth=1.5))
        axes[i, 2].imshow(overlay(img, cam))
        for ax in axes[i]:
            ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], rotation=0, ha="right", va="center", fontsize=9)
    for ax, t in zip(axes[0], ("原图 image", "关注区域 focus regions", "热力图 Grad-CAM")):
        ax.set_title(t, fontsize=9)
    fig.tight_layout()
    return fig


def figure5(Z: np.ndarray, trace: KMeansTrace, panels: int = 6):
    """Figure 5: the 2-D points coloured by cluster at successive iterations (up to ``panels``, the
    last one the final state), with each centre's path so far (``Z`` and ``trace`` from
    :func:`hzlib.cluster.figure5_data`)."""
    _use_cjk_font()
    steps = np.unique(np.linspace(0, trace.n_iter, min(panels, trace.n_iter + 1)).round().astype(int))
    fig, axes = plt.subplots(1, len(steps), figsize=(2.6 * len(steps), 2.8), squeeze=False, sharex=True, sharey=True)
    for ax, t in zip(axes[0], steps):
        ax.scatter(Z[:, 0], Z[:, 1], c=trace.labels[t], cmap="tab10", vmin=0, vmax=9, s=3, alpha=0.5, linewidths=0)
        for j in range(trace.centres.shape[1]):
            path = trace.centres[: t + 1, j]
            ax.plot(path[:, 0], path[:, 1], "-", color="black", linewidth=0.8)
            ax.plot(path[-1, 0], path[-1, 1], "X", color="black", markersize=8, markeredgecolor="white")
        ax.set_title(f"迭代 iteration {t}\ninertia {trace.inertia[t]:.0f}", fontsize=8)
        ax.set_xlabel("PC1")
    axes[0, 0].set_ylabel("PC2")
    fig.tight_layout()
    return fig


def figure6(cam: np.ndarray, stroke_mask: np.ndarray, result: StrokeAttention, title: str = "真"):
    """Figure 6: the map over the strokes (numbered), attention share per stroke (coloured by type)
    and per stroke type (``result`` from :func:`hzlib.cluster.stroke_attention`)."""
    _use_cjk_font()
    if not result.ok and result.per_stroke.empty:
        raise ValueError(f"result: nothing to plot ({result.reason})")
    sm = np.asarray(stroke_mask)
    palette = dict(zip(STROKE_TYPES, sns.color_palette("tab10", len(STROKE_TYPES))))  # same colours in both bars
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.4, 1]})
    ax = axes[0]
    ax.imshow(np.ma.masked_where(sm <= 0, cam), cmap="jet", vmin=0, vmax=max(float(np.max(cam)), 1e-12))
    h, w = np.shape(cam)
    for _, r in result.per_stroke[result.per_stroke["pixels"] > 0].iterrows():
        ax.text(r.x * w - 0.5, r.y * h - 0.5, str(int(r.stroke)), fontsize=7, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", alpha=0.7, lw=0))
    rows, cols = np.nonzero(sm > 0)
    pad = max(2, int(0.1 * max(np.ptp(rows), np.ptp(cols))))  # zoom on the glyph: it may be small in the image
    ax.set_xlim(cols.min() - pad, cols.max() + pad), ax.set_ylim(rows.max() + pad, rows.min() - pad)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"{title}: 笔画注意力 stroke attention", fontsize=9)
    strokes = result.per_stroke
    ps = strokes.assign(label=strokes["stroke"].astype(str) + " " + strokes["type"].fillna(""))
    if ps["type"].notna().all():
        sns.barplot(ps, x="label", y="share", hue="type", dodge=False, ax=axes[1], palette=palette)
    else:
        sns.barplot(ps, x="label", y="share", ax=axes[1], color="grey")
    axes[1].set_xlabel("笔画 stroke"), axes[1].set_ylabel("注意力占比 share of the map")
    axes[1].set_title(f"in glyph {result.in_glyph:.3f}, unassigned {result.unassigned:.3f}", fontsize=9)
    if not result.per_type.empty:
        sns.barplot(result.per_type, x="type", y="share", hue="type", ax=axes[2], palette=palette, legend=False)
        axes[2].set_xlabel("笔画类型 stroke type")
    else:
        axes[2].text(0.5, 0.5, result.reason or "", ha="center", va="center", wrap=True)
    axes[2].set_ylabel("")
    fig.tight_layout()
    return fig


def figure7(table: pd.DataFrame, metrics=("precision", "recall", "f1", "accuracy"), paper: dict | None = None,
            title: str = "", paper_by_model: dict | None = None):
    """Figure 7: per-attribute bars of Eq 12-15 for every model (``table``: long format with columns
    model, class, metric, value, ci_low, ci_high, as from :func:`hzlib.evaluate.metric_cis` with a
    ``model`` column; the ``macro`` row is drawn as the last group). One panel per metric, 95% CIs as
    error bars; ``paper`` (metric -> the paper's mean for CLIP) is drawn as a dashed line, and
    ``paper_by_model`` (model -> metric -> the paper's mean for that model) as a black tick on the
    model's ``macro`` bar."""
    models = list(dict.fromkeys(table["model"]))
    rows = [k for k in C.class_order(table["class"]) if k != "macro"] + ["macro"]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(9.0, 0.95 * len(rows) * max(1, len(models) / 4)),
                                                        2.3 * len(metrics) + 0.8), sharex=True, squeeze=False)
    colours = dict(zip(models, sns.color_palette("tab10", len(models))))
    width = 0.8 / len(models)
    x = np.arange(len(rows))
    for ax, m in zip(axes[:, 0], metrics):
        for j, model in enumerate(models):
            sub = table[(table["model"] == model) & (table["metric"] == m)].set_index("class").reindex(rows)
            pos = x - 0.4 + width * (j + 0.5)
            ax.bar(pos, sub["value"], width, color=colours[model], label=model)
            ax.errorbar(pos, sub["value"], yerr=[sub["value"] - sub["ci_low"], sub["ci_high"] - sub["value"]],
                        fmt="none", ecolor="0.25", lw=0.7)
        ticks = [(j, (paper_by_model or {}).get(model, {}).get(m)) for j, model in enumerate(models)]
        ticks = [(j, v) for j, v in ticks if v is not None]
        for n, (j, v) in enumerate(ticks):
            ax.plot(x[-1] - 0.4 + width * (j + 0.5), v, ls="none", marker="_", ms=12, mew=2, color="k",
                    label="the paper's mean" if n == 0 else None)
        if paper and m in paper:
            ax.axhline(paper[m], color="k", ls="--", lw=1)
            ax.annotate(f"paper (CLIP, mean): {paper[m]}", (1, paper[m]), xycoords=("axes fraction", "data"),
                        xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize=7)
        ax.set_ylabel({"accuracy": "accuracy (one-vs-rest)"}.get(m, m))
        ax.set_ylim(0, 1.05)
    axes[-1, 0].set_xticks(x, [class_name(k) for k in rows], rotation=30, ha="right")
    axes[0, 0].legend(ncol=min(len(models), 7), fontsize=8, bbox_to_anchor=(0.5, 1.02), loc="lower center")
    fig.suptitle(title or "Figure 7: precision, recall, F1 and accuracy per cultural attribute", y=1.0)
    fig.tight_layout()
    return fig


def figure8(curves: pd.DataFrame, aucs: dict | None = None, title: str = "", paper_aucs: dict | None = None):
    """Figure 8: one-vs-rest ROC curves, the macro curve of each model (``curves``: long format from
    :func:`hzlib.evaluate.roc_curves` with a ``model`` column); ``aucs`` (model -> macro AUC) and
    ``paper_aucs`` (model -> the paper's mean AUC) go into the legend. A second panel zooms into the
    low false-positive rates."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    macro = curves[curves["class"] == "macro"]
    for ax, lim in zip(axes, (1.0, 0.2)):
        for model, c in macro.groupby("model", sort=False):
            parts = ([f"AUC {aucs[model]:.3f}"] if aucs and model in aucs else []) + \
                ([f"paper {paper_aucs[model]:g}"] if paper_aucs and model in paper_aucs else [])
            label = f"{model} ({'; '.join(parts)})" if parts else model
            ax.plot(c["fpr"], c["tpr"], lw=1.6, label=label)
        ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
        ax.set_xlim(0, lim)
        ax.set_ylim(0, 1.0 if lim == 1.0 else None)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate (macro over attributes)")
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].set_title("low false-positive rates", fontsize=9)
    fig.suptitle(title or "Figure 8: ROC curves (one-vs-rest, macro-averaged over the 10 attributes)")
    fig.tight_layout()
    return fig


def stroke_type_ratios(sums: pd.DataFrame, order: Sequence[str] = ("横", "竖", "撇", "点", "折")):
    """Attention share over area share per stroke type (:func:`hzlib.cluster.stroke_type_ratios`),
    bars per model with 95% CIs over images, and the line of attention in proportion to area."""
    _use_cjk_font()
    ax = sns.barplot(sums, x="type", y="ratio", hue="model", order=list(order), errorbar=("ci", 95))
    ax.axhline(1, color="0.4", ls="--", lw=1)
    ax.set(xlabel="笔画类型 stroke type", ylabel="attention share / area share")
    return ax
