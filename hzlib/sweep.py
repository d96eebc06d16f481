"""The hyper-parameter sweep of Figure 3: short runs of the one training loop from one initial model,
each scored on the validation split, the best chosen among those that have left ln B."""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
from torch import nn

from .clip_eval import retrieval_metrics
from .config import atomic_write_json, params_hash
from .model import clip_loss, encode_images, encode_texts
from .pairs import PairData, to_model_input
from .train import TrainConfig, Trainer, read_metrics

__all__ = ["SweepResult", "default_sweep", "sweep"]


@dataclass
class SweepResult:
    curves: "object"   # DataFrame: setting, step, loss
    table: "object"    # DataFrame: setting, its parameters, final_loss, val metrics, seconds
    best: dict         # the chosen setting's parameters (by select_by on the validation split)
    select_by: str
    best_setting: int = -1  # the chosen setting's number (its position in the settings)
    informative: bool = True  # False: no setting's loss left ln B, and the base setting was kept


def default_sweep(steps: int, base_lr: float, base_batch: int) -> list[dict]:
    """12 short-run settings around (base_lr, base_batch): learning rate x batch size x temperature
    (learnable from 0.07, or fixed at 0.07). Warm-up is a fifth of the run: with the full run's warm-up,
    a short setting would end before reaching its learning rate and every setting would look alike."""
    out = []
    for lr_mult in (0.3, 1.0, 3.0):
        for batch in (max(2, base_batch // 2), base_batch):
            for learn_tau in (True, False):
                out.append({"lr": base_lr * lr_mult, "batch_size": batch, "learn_tau": learn_tau, "max_steps": steps,
                            "warmup_steps": max(1, steps // 5)})
    return out


def _val_metrics(model, val: PairData, batch_size: int) -> dict:
    img = encode_images(model, val.images, batch_size=batch_size, to_input=to_model_input)
    txt = encode_texts(model, val.tokens, batch_size=batch_size)
    r = retrieval_metrics(img, txt, n_boot=0)
    loss = float(clip_loss(model.logit_scale.detach().float().exp().cpu() * img @ txt.T))
    out = {f"val_{d.split('->')[0][0]}2{d.split('->')[1][0]}_r@{k}": v
           for d, k, v in zip(r.direction, r.k, r.recall)}
    out["val_mean_recall"] = float(r.recall.mean())
    out["val_loss"] = loss
    return out


def sweep(settings: Sequence[dict], *, make_model: Callable[[], nn.Module], train_data: PairData,
          val_data: PairData, base: TrainConfig, out_dir: str | os.PathLike,
          select_by: str = "val_mean_recall", min_drop: float = 0.05,
          chance: Callable[[int], float] = math.log) -> SweepResult:
    """Train one short run per setting (each a dict of :class:`TrainConfig` overrides on ``base``)
    from a fresh ``make_model()``, log its loss every step, and score it on ``val_data`` (retrieval
    recall and loss). A setting *has learnt* when the mean loss of its last fifth of steps lies at
    least ``min_drop`` below ``chance(B)``, the loss of uniform logits at its batch size B (ln B for
    in-batch negatives; :func:`hzlib.model.chance_level`) (columns ``loss_drop``, ``learnt``).
    The best setting is the one of those that maximises ``select_by`` (``val_loss`` is minimised),
    chosen on the validation split only. When none has learnt, the validation scores are noise and cannot rank
    the settings: the one equal to ``base`` (on the keys the settings vary) is kept, with
    ``informative`` False. A setting whose ``result.json`` exists in ``out_dir`` with the same
    parameters is read, not retrained; checkpoints are deleted after scoring."""
    out_dir = Path(out_dir)
    curves, rows = [], []
    for i, s in enumerate(settings):
        cfg = base.replace(**s, log_every=1, checkpoint_every=0)
        key = params_hash({"cfg": cfg.result_params(), "train": train_data.fingerprint(),
                           "val": val_data.fingerprint()})
        run_dir = out_dir / f"s{i:02d}-{key}"
        res_path = run_dir / "result.json"
        if res_path.is_file():
            rec = json.loads(res_path.read_text(encoding="utf-8"))
        else:
            r = Trainer(make_model(), train_data, cfg, run_dir, resume=True).run()
            metrics = _val_metrics(r.model, val_data, max(cfg.batch_size, 256))
            rec = {"setting": i, **s, "final_loss": r.final_loss, **metrics, "seconds": r.seconds,
                   "losses": [m["loss"] for m in read_metrics(run_dir)]}
            atomic_write_json(res_path, rec)
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        curves += [{"setting": i, "step": j + 1, "loss": v} for j, v in enumerate(rec["losses"])]
        rows.append({k: v for k, v in rec.items() if k != "losses"})
    table = pd.DataFrame(rows)
    if select_by not in table:
        raise ValueError(f"select_by={select_by!r} is not a validation column: {list(table.columns)}")
    curves = pd.DataFrame(curves)
    tail = curves.groupby("setting")["loss"].apply(lambda v: float(v.iloc[-max(1, len(v) // 5):].mean()))
    batch = table.get("batch_size", pd.Series(base.batch_size, index=table.index))
    table["loss_drop"] = batch.map(lambda b: chance(int(b))) - table["setting"].map(tail)
    table["learnt"] = table["loss_drop"] >= min_drop
    learnt = table[table["learnt"]]
    if len(learnt):
        best_row = learnt[select_by].idxmin() if select_by == "val_loss" else learnt[select_by].idxmax()
        best_setting = int(table.loc[best_row, "setting"])
        return SweepResult(curves, table, dict(settings[best_setting]), select_by, best_setting)
    same = [i for i, st in enumerate(settings)
            if all(getattr(base, k) == v for k, v in st.items() if k not in ("max_steps", "warmup_steps"))]
    if not same:
        raise ValueError("no setting learnt and none equals the base configuration: add the base to the sweep")
    return SweepResult(curves, table, dict(settings[same[0]]), select_by, same[0], informative=False)
