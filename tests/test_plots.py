"""Figure helpers draw without error on small tables."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from hzlib import cluster as K, gradcam as G, normalize as N, plots


def test_figure3_draws_every_setting_and_marks_the_best():
    table = pd.DataFrame({"setting": [0, 1, 2], "lr": [1e-4, 3e-4, 1e-3], "batch_size": [8, 16, 16],
                          "learn_tau": [True, False, True], "val_mean_recall": [0.1, 0.3, 0.2]})
    curves = pd.DataFrame([{"setting": s, "step": j + 1, "loss": 3 - 0.1 * j} for s in range(3) for j in range(5)])
    fig = plots.figure3(curves, table, best=1)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(labels) == 3 and "best" in labels[1] and "best" not in labels[0]
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


def _long_metrics():
    rows = []
    for model in ("CLIP", "DAN"):
        for cls in ("tradition", "urban", "macro"):
            for m in ("precision", "recall", "f1", "accuracy"):
                v = 0.5 if model == "CLIP" else 0.3
                rows.append({"model": model, "class": cls, "metric": m, "value": v,
                             "ci_low": v - 0.1, "ci_high": v + 0.1})
    return pd.DataFrame(rows)


def test_figure7_has_a_panel_per_metric_and_the_paper_line():
    fig = plots.figure7(_long_metrics(), paper={"f1": 0.98})
    axes = fig.axes
    assert len(axes) == 4
    bars = [p for p in axes[0].patches]
    assert len(bars) == 2 * 3  # two models x (two classes + macro)
    assert sorted({round(b.get_height(), 2) for b in bars}) == [0.3, 0.5]
    f1_axis = axes[2]
    assert any(abs(line.get_ydata()[0] - 0.98) < 1e-9 for line in f1_axis.get_lines() if line.get_linestyle() == "--")
    plt.close(fig)


def test_figure7_marks_each_models_paper_mean_on_its_macro_bar():
    fig = plots.figure7(_long_metrics(), paper_by_model={"DAN": {"f1": 0.92, "recall": 0.9}})
    ticks = [ln for ln in fig.axes[2].get_lines() if ln.get_marker() == "_"]
    assert len(ticks) == 1 and ticks[0].get_ydata()[0] == 0.92
    macro_dan = [b for b in fig.axes[2].patches if b.get_height() == 0.3][-1]  # DAN's bars are the 0.3 ones
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


def test_figure4_frames_the_focus_regions():
    imgs = [np.random.default_rng(i).random((32, 32, 3)) for i in range(2)]
    cams = [G.baseline_map("centre", (32, 32)), G.baseline_map("uniform", (32, 32)) * 0.5]
    fig = plots.figure4(imgs, cams, titles=["社会", "艺术"])
    assert len(fig.axes) == 6 and len(fig.axes[1].patches) == 1
    plt.close(fig)


def test_figure5_one_panel_per_step():
    rng = np.random.default_rng(0)
    cam = np.zeros((40, 40))
    cam[5:15, 5:15], cam[25:35, 5:15], cam[10:30, 25:35] = 1.0, 0.9, 0.8
    _, Z, trace = K.figure5_data(rng.random((40, 40, 3)), cam, quantile=0.7, k=3, seed=0)
    fig = plots.figure5(Z, trace, panels=6)
    assert 1 <= len(fig.axes) <= 6
    plt.close(fig)


def test_figure6():
    sm = np.zeros((12, 12), np.uint16)  # 4 strokes (横 竖 横 点) and glyph pixels of no known stroke
    sm[1, 1:11], sm[2:10, 5], sm[6, 1:11], sm[10, 9] = 1, 2, 3, 4
    glyph = sm > 0
    glyph[11, 1:3] = True
    cam = np.random.default_rng(1).random((12, 12))
    fig = plots.figure6(cam, sm, K.stroke_attention(cam, sm, "横竖横点", glyph))
    assert len(fig.axes) >= 3
    plt.close(fig)
