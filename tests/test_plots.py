"""Figure helpers: what each draws (the images, boxes, bars, curves and lines) on small inputs."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from hzlib import cluster as K, gradcam as G, normalize as N, plots


def test_figure3_draws_every_setting_and_marks_the_best():
    table = pd.DataFrame({"setting": [0, 1, 2], "lr": [1e-4, 3e-4, 1e-3], "batch_size": [8, 16, 16],
                          "learn_tau": [True, False, True], "val_mean_recall": [0.1, 0.3, 0.2]})
    curves = pd.DataFrame([{"setting": s, "step": j + 1, "loss": 3 - 0.1 * j} for s in range(3) for j in range(5)])
    curves["loss"] += 0.5 * curves["setting"]  # a different curve per setting
    fig = plots.figure3(curves, table, best=1)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    labels = [line.get_label() for line in lines]
    assert len(labels) == 3 and "best" in labels[1] and "best" not in labels[0]
    for s, line in enumerate(lines):  # each setting's losses against its steps
        np.testing.assert_allclose(line.get_xdata(), np.arange(1, 6))
        np.testing.assert_allclose(line.get_ydata(), 3 - 0.1 * np.arange(5) + 0.5 * s)
    assert lines[1].get_linewidth() > lines[0].get_linewidth()  # the best drawn thick
    assert lines[1].get_linestyle() == "--" and lines[0].get_linestyle() == "-"  # learn_tau False: dashed
    chance = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_label().startswith("_"))
    np.testing.assert_allclose(chance, np.log([8, 16]))  # ln of each batch size
    plt.close(fig)
    fig = plots.figure3(curves, table, best=2, chosen="kept: no setting learnt")
    labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels[2].endswith("← kept: no setting learnt") and "←" not in labels[1]
    plt.close(fig)


def test_training_curve_has_loss_and_tau_panels():
    m = pd.DataFrame({"step": np.arange(1, 21), "loss": np.linspace(4, 2, 20), "tau": np.full(20, 0.07)})
    fig = plots.training_curve(m, steps_per_epoch=5, chance=np.log(64))
    loss_ax = fig.axes[0]
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), m["loss"])  # the losses plotted, step by step
    assert loss_ax.lines[2].get_ydata()[0] == np.log(64)  # the chance level, ln B
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), m["tau"])
    plt.close(fig)


METRICS = ("precision", "recall", "f1", "accuracy")


def _long_metrics():
    """A different value for every model, class and metric: CLIP about 0.5, DAN about 0.3."""
    rows = []
    for model, base in (("CLIP", 0.5), ("DAN", 0.3)):
        for i, cls in enumerate(("urban", "tradition", "macro")):
            for j, m in enumerate(METRICS):
                v = base + 0.01 * i + 0.001 * j
                rows.append({"model": model, "class": cls, "metric": m, "value": v,
                             "ci_low": v - 0.1, "ci_high": v + 0.1})
    return pd.DataFrame(rows)


def test_figure7_draws_each_metrics_values_and_the_paper_line():
    table = _long_metrics()
    fig = plots.figure7(table, paper={"f1": 0.98})
    for ax, m in zip(fig.axes, METRICS, strict=True):  # a panel per metric
        assert ax.get_ylabel().startswith(m)
        # bars model by model, the classes in the book's order (tradition before urban), macro last
        want = [table.set_index(["model", "class", "metric"]).loc[(model, cls, m), "value"]
                for model in ("CLIP", "DAN") for cls in ("tradition", "urban", "macro")]
        np.testing.assert_allclose([b.get_height() for b in ax.patches], want)
        paper = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert paper == ([0.98] if m == "f1" else [])
    plt.close(fig)


def test_figure7_marks_each_models_paper_mean_on_its_macro_bar():
    fig = plots.figure7(_long_metrics(), paper_by_model={"DAN": {"f1": 0.92, "recall": 0.9}})
    ticks = [ln for ln in fig.axes[2].get_lines() if ln.get_marker() == "_"]
    assert len(ticks) == 1 and ticks[0].get_ydata()[0] == 0.92
    macro_dan = [b for b in fig.axes[2].patches if abs(b.get_height() - 0.322) < 1e-9][0]  # DAN's macro F1 bar
    assert abs(ticks[0].get_xdata()[0] - (macro_dan.get_x() + macro_dan.get_width() / 2)) < 1e-9
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "_"]  # no precision stated for DAN
    plt.close(fig)


def test_figure8_draws_one_macro_curve_per_model_with_auc_in_the_legend():
    curves = pd.concat([pd.DataFrame({"class": "macro", "fpr": [0, 0.5, 1], "tpr": [0, t, 1], "model": m})
                        for m, t in (("CLIP", 0.9), ("DAN", 0.6))]
                       + [pd.DataFrame({"class": "urban", "fpr": [0, 1], "tpr": [0, 1], "model": "CLIP"})])
    fig = plots.figure8(curves, {"CLIP": 0.9, "DAN": 0.6})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["CLIP (AUC 0.900)", "DAN (AUC 0.600)"]
    for ax in fig.axes:  # both panels: each model's macro curve (not the urban one) and the diagonal
        drawn = [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
        assert drawn == [([0, 0.5, 1], [0, 0.9, 1]), ([0, 0.5, 1], [0, 0.6, 1]), ([0, 1], [0, 1])]
    plt.close(fig)
    fig = plots.figure8(curves, {"CLIP": 0.9, "DAN": 0.6}, paper_aucs={"DAN": 0.92})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["CLIP (AUC 0.900)", "DAN (AUC 0.600; paper 0.92)"]
    plt.close(fig)


def test_loss_curves_draw_each_models_losses_and_chance():
    fig = plots.loss_curves({"CLIP": [4.2, 3.0, 1.0], "ViT": [2.3, 2.0]}, {"CLIP": np.log(64), "ViT": None}, window=1)
    clip, vit = fig.axes[:2]
    assert list(clip.lines[1].get_ydata()) == [4.2, 3.0, 1.0]  # the running mean of one step is the loss
    assert clip.lines[2].get_ydata()[0] == pytest.approx(np.log(64))  # chance dotted
    assert clip.lines[3].get_ydata()[0] == pytest.approx(0.75 * np.log(64))
    assert len(vit.lines) == 2  # no chance level stated: none drawn


def test_figure1_draws_grey_stages_in_grey():
    img = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    stages = N.normalize(img, N.NormalizeConfig(size=16))  # Eq 2-3 on the grey values: 2-D stages
    fig = plots.figure1(stages)
    ims = [ax.get_images()[0] for ax in fig.axes]
    assert [im.get_array().ndim for im in ims] == [3, 3, 2, 2]
    assert ims[2].get_cmap().name == ims[3].get_cmap().name == "gray" and ims[3].get_clim() == (0, 1)
    plt.close(fig)


def test_figure4_shows_each_image_its_focus_regions_and_its_overlay():
    imgs = [np.random.default_rng(i).random((32, 32, 3)) for i in range(2)]
    cams = [G.baseline_map("centre", (32, 32)), G.baseline_map("uniform", (32, 32)) * 0.5]
    fig = plots.figure4(imgs, cams, titles=["社会", "艺术"])
    rows = np.array(fig.axes).reshape(2, 3)  # a row per example
    for (plain, framed, heat), img, cam, title in zip(rows, imgs, cams, ["社会", "艺术"], strict=True):
        for ax, want in ((plain, img), (framed, img), (heat, G.overlay(img, cam))):
            assert len(ax.images) == 1
            np.testing.assert_array_equal(ax.images[0].get_array(), want)
        assert plain.get_ylabel() == title
        # the focus regions framed: each box's corner, width and height (pixel edges at -0.5)
        boxes = [(*p.get_xy(), p.get_width(), p.get_height()) for p in framed.patches]
        regions = G.focus_regions(cam, 0.5).head(3)  # at most max_boxes=3
        assert boxes == [(r.col0 - 0.5, r.row0 - 0.5, r.col1 - r.col0, r.row1 - r.row0) for r in regions.itertuples()]
        assert not plain.patches and not heat.patches
    assert len(rows[0, 1].patches) == 1  # the centre map: one region
    plt.close(fig)


def _assert_figure5_shows_the_trace(fig, Z, trace, panels):
    """Each panel: every point coloured by its cluster at the panel's iteration, and each centre's path up
    to it ending in a marker; the iterations from 0 to the last, at most ``panels`` of them."""
    steps = [int(re.search(r"iteration (\d+)", ax.get_title()).group(1)) for ax in fig.axes]
    assert steps[0] == 0 and steps[-1] == trace.n_iter and steps == sorted(set(steps)) and len(steps) <= panels
    k = trace.centres.shape[1]
    for ax, t in zip(fig.axes, steps):
        points = ax.collections[0]
        np.testing.assert_array_equal(points.get_offsets(), Z)
        np.testing.assert_array_equal(points.get_array(), trace.labels[t])
        assert ax.get_title().endswith(f"inertia {trace.inertia[t]:.0f}")
        assert len(ax.lines) == 2 * k  # a path and a marker per centre
        for j in range(k):
            path, marker = ax.lines[2 * j], ax.lines[2 * j + 1]
            np.testing.assert_allclose(np.c_[path.get_xdata(), path.get_ydata()], trace.centres[:t + 1, j])
            np.testing.assert_allclose([marker.get_xdata()[0], marker.get_ydata()[0]], trace.centres[t, j])


def test_figure5_shows_the_trace_of_the_pipeline():
    rng = np.random.default_rng(0)
    cam = np.zeros((40, 40))
    cam[5:15, 5:15], cam[25:35, 5:15], cam[10:30, 25:35] = 1.0, 0.9, 0.8
    _, Z, trace = K.figure5_data(rng.random((40, 40, 3)), cam, quantile=0.7, k=3, seed=0)
    fig = plots.figure5(Z, trace, panels=6)
    _assert_figure5_shows_the_trace(fig, Z, trace, panels=6)
    plt.close(fig)


def test_figure5_panels_on_a_short_trace():
    """Fewer iterations than panels: one panel per iteration, the last the final assignment."""
    X, _ = make_blobs(n_samples=300, centers=[(-5, 0), (5, 0), (0, 8)], cluster_std=1.0, random_state=0)
    trace = K.kmeans_trace(X, 3, init=X[[0, 100, 200]])
    assert trace.n_iter + 1 < 8
    fig = plots.figure5(X, trace, panels=8)
    assert len(fig.axes) == trace.n_iter + 1
    _assert_figure5_shows_the_trace(fig, X, trace, panels=8)
    np.testing.assert_array_equal(fig.axes[-1].collections[0].get_array(), trace.final_labels)
    plt.close(fig)


def _bar_heights(ax) -> dict[str, float]:
    """Tick label -> height of the bar drawn over it (seaborn's zero-width legend patches left out)."""
    ticks = {round(x): t.get_text() for x, t in zip(ax.get_xticks(), ax.get_xticklabels())}
    return {ticks[round(p.get_x() + p.get_width() / 2)]: p.get_height() for p in ax.patches if p.get_width() > 0}


def test_figure6_shows_the_map_on_the_strokes_and_the_shares():
    sm = np.zeros((12, 12), np.uint16)  # 4 strokes (横 竖 横 点) and glyph pixels of no known stroke
    sm[1, 1:11], sm[2:10, 5], sm[6, 1:11], sm[10, 9] = 1, 2, 3, 4
    glyph = sm > 0
    glyph[11, 1:3] = True
    cam = np.random.default_rng(1).random((12, 12))
    result = K.stroke_attention(cam, sm, "横竖横点", glyph)
    fig = plots.figure6(cam, sm, result)
    strokes_ax, per_stroke_ax, per_type_ax = fig.axes
    shown = strokes_ax.images[0].get_array()  # the map on the strokes only
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), sm <= 0)
    np.testing.assert_array_equal(shown.data[sm > 0], cam[sm > 0])
    numbers = {t.get_text(): t.get_position() for t in strokes_ax.texts}  # each stroke numbered at its centre
    assert numbers == {str(r.stroke): pytest.approx((r.x * 12 - 0.5, r.y * 12 - 0.5))
                       for r in result.per_stroke.itertuples()}
    assert _bar_heights(per_stroke_ax) == pytest.approx(
        {f"{r.stroke} {r.type}": r.share for r in result.per_stroke.itertuples()})
    assert _bar_heights(per_type_ax) == pytest.approx(dict(zip(result.per_type["type"], result.per_type["share"])))
    assert list(result.per_type["type"]) == ["横", "竖", "点"]
    plt.close(fig)
