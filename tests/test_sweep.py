import numpy as np
import pytest

from hzlib import sweep as S
from trainer_checks import cfg, micro_model, synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sweep_returns_curves_and_picks_on_validation_among_the_settings_that_learnt(tmp_path, monkeypatch):
    settings = [{"lr": 1e-5, "max_steps": 20}, {"lr": 2e-3, "max_steps": 20}, {"lr": 3e-2, "max_steps": 20}]
    kw = dict(make_model=micro_model, train_data=synthetic(16), val_data=synthetic(8, seed=1),
              base=cfg(batch_size=8), out_dir=tmp_path, select_by="val_loss")
    res = S.sweep(settings, **kw)
    assert list(res.curves.groupby("setting").step.max()) == [20, 20, 20]
    assert set(res.table.columns) >= {"val_loss", "val_mean_recall", "val_i2t_r@1", "final_loss", "lr", "loss_drop"}
    tail = res.curves[res.curves.step > 16].groupby("setting").loss.mean()  # the last fifth of 20 steps
    np.testing.assert_allclose(res.table.loss_drop, np.log(8) - tail.to_numpy())
    assert res.table.learnt.tolist() == (res.table.loss_drop >= 0.05).tolist()
    learnt = res.table[res.table.loss_drop >= 0.05]
    assert 0 < len(learnt) < len(settings)  # the case the rule is for: some settings have not left ln B
    best = learnt.loc[learnt.val_loss.idxmin(), "setting"]
    assert res.best == settings[best] and res.best_setting == best and res.informative
    assert not list(tmp_path.glob("*/checkpoints/*.pt"))
    monkeypatch.setattr(S, "Trainer", lambda *a, **k: pytest.fail("a finished setting was retrained"))
    again = S.sweep(settings, **kw)
    assert again.table.equals(res.table) and again.best == res.best


def test_a_sweep_in_which_nothing_learnt_keeps_the_base_setting(tmp_path):
    base = cfg(batch_size=8, lr=1e-6)  # three steps this small cannot move the loss
    settings = [{"lr": 3e-6, "max_steps": 3}, {"lr": 1e-6, "max_steps": 3}, {"lr": 3e-7, "max_steps": 3}]
    kw = dict(make_model=micro_model, train_data=synthetic(16), val_data=synthetic(8, seed=1), out_dir=tmp_path)
    res = S.sweep(settings, base=base, **kw)
    assert (res.table.loss_drop < 0.05).all()
    assert not res.informative and res.best_setting == 1 and res.best == settings[1]
    with pytest.raises(ValueError, match="none equals the base"):
        S.sweep(settings[::2], base=base, **kw)
