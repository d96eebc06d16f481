"""Figure helpers of chapter 5 draw without error on small tables."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hzlib import plots  # noqa: E402


def test_figure3_draws_every_setting_and_marks_the_best():
    table = pd.DataFrame({"setting": [0, 1, 2], "lr": [1e-4, 3e-4, 1e-3], "batch_size": [8, 16, 16],
                          "learn_tau": [True, False, True], "val_mean_recall": [0.1, 0.3, 0.2]})
    curves = pd.DataFrame([{"setting": s, "step": j + 1, "loss": 3 - 0.1 * j} for s in range(3) for j in range(5)])
    fig = plots.figure3(curves, table, best=1)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(labels) == 3 and "best" in labels[1] and "best" not in labels[0]
    plt.close(fig)


def test_training_curve_has_loss_and_tau_panels():
    m = pd.DataFrame({"step": np.arange(1, 21), "loss": np.linspace(4, 2, 20), "tau": np.full(20, 0.07)})
    fig = plots.training_curve(m, steps_per_epoch=5)
    assert len([a for a in fig.axes if a.get_ylabel()]) >= 2
    plt.close(fig)
