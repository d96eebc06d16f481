"""How well a trained CLIP pairs images with texts and names their classes (chapter 5): retrieval
recall@k, zero-shot classification from Chinese class prompts. The linear probe is
:func:`hzlib.evaluate.probe`, shared by every chapter."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .corpus.classes import CLASSES
from .evaluate import probe
from .model import encode_image_layers, encode_images, encode_texts
from .pairs import to_model_input
from .report import ci_text
from .stats import mean_ci

__all__ = ["retrieval_metrics", "zero_shot", "class_prompts", "split_counts", "unknown_share", "sweep_table",
           "sweep_values", "classification_table", "summary_of_test_part"]


def retrieval_metrics(image_emb, text_emb, *, ks: Sequence[int] = (1, 5, 10), n_boot: int = 1000,
                      seed: int = 0):
    """Recall@k of image->text and text->image retrieval where pair i is the only match of i.

    The rank of the true match is the number of candidates scoring strictly higher (ties are won).
    Returns a DataFrame: direction, k, recall, ci_low, ci_high (95% bootstrap over queries,
    :func:`hzlib.stats.mean_ci`; NaN with ``n_boot=0``)."""
    img = torch.as_tensor(image_emb, dtype=torch.float64)
    txt = torch.as_tensor(text_emb, dtype=torch.float64)
    if img.shape != txt.shape:
        raise ValueError(f"image embeddings {tuple(img.shape)} and text embeddings {tuple(txt.shape)} must pair up")
    sim = img @ txt.T
    rows = []
    for direction, s in (("image->text", sim), ("text->image", sim.T)):
        true = s.diagonal().unsqueeze(1)
        rank = (s > true).sum(dim=1).numpy()
        for k in ks:
            hit = (rank < k).astype(np.float64)
            _, lo, hi = mean_ci(hit, n_resamples=n_boot, seed=seed) if n_boot else (None, math.nan, math.nan)
            rows.append({"direction": direction, "k": k, "recall": float(hit.mean()), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def zero_shot(model, vocab, image_emb, labels: Sequence[str], prompts: dict[str, Sequence[str]], *,
              context_length: int, n_boot: int = 1000, seed: int = 0) -> dict:
    """Zero-shot classification: each class's embedding is the normalised mean of its prompts' text
    embeddings (``prompts``: class -> Chinese prompts); an image takes the class of highest cosine.
    Returns accuracy with a 95% bootstrap CI, predictions, scores (n, classes) and the class order."""
    classes = list(prompts)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} have no prompts; prompts cover {classes}")
    cls_emb = []
    for c in classes:
        if not prompts[c]:
            raise ValueError(f"class {c!r} has no prompt")
        e = encode_texts(model, vocab.encode(list(prompts[c]), context_length)).mean(0)
        cls_emb.append(F.normalize(e, dim=0))
    scores = torch.as_tensor(image_emb, dtype=torch.float32) @ torch.stack(cls_emb).T
    pred = [classes[i] for i in scores.argmax(1).tolist()]
    correct = np.array([p == t for p, t in zip(pred, labels)], dtype=np.float64)
    return {"accuracy": float(correct.mean()), "ci": mean_ci(correct, n_resamples=n_boot, seed=seed)[1:],
            "predictions": pred, "scores": scores.numpy(), "classes": classes}


def class_prompts(specs=None) -> dict[str, list[str]]:
    """Chinese zero-shot prompts per class, from :mod:`hzlib.corpus.classes` only (never from the
    descriptions): one sentence per cue phrase of the class in the academic register's wording
    ("其风格特征可概括为“…”"), one naming the class and one naming its cultural aspect and movement."""
    out = {}
    for c in (specs if specs is not None else CLASSES):
        named = [f"这是一件{c.region_zh}{c.movement_zh}风格的汉字雕塑。", f"作品体现{c.name_zh}。"]
        out[c.key] = [f"其风格特征可概括为“{cue}”。" for cue in c.cues] + named
    return out


def test_scores(model, data, vocab, labels: Sequence[str], train_idx, test_idx, prompts: dict[str, Sequence[str]], *,
                seed: int) -> dict[str, str]:
    """One CLIP model's scores on the test items, each with its 95% CI, as chapter 5 states them:
    image→text and text→image recall@10, zero-shot accuracy, and the standardised linear probe's
    macro-F1 (fitted on ``train_idx``) on the final embedding and on the layers C (section 4)."""
    img = encode_images(model, data.images, to_input=to_model_input).numpy()
    txt = encode_texts(model, data.tokens).numpy()
    te, y = np.asarray(test_idx), np.asarray(labels)
    retr = retrieval_metrics(img[te], txt[te], seed=seed).set_index(["direction", "k"])
    zs = zero_shot(model, vocab, img[te], list(y[te]), prompts, context_length=model.geometry.context_length, seed=seed)
    layers = encode_image_layers(model, data.images, to_input=to_model_input).numpy()
    probes = {name: probe(X, y, train_idx, te, seed=seed) for name, X in (("embedding", img), ("layers C", layers))}
    out = {f"{d} R@10": ci_text(*retr.loc[(d, 10), ["recall", "ci_low", "ci_high"]])
           for d in ("image->text", "text->image")}
    out["zero-shot accuracy"] = ci_text(zs["accuracy"], *zs["ci"])
    for name, r in probes.items():
        out[f"probe macro-F1, {name}"] = ci_text(r["macro_f1"], r["macro_f1_ci_low"], r["macro_f1_ci_high"])
    return out


def split_counts(labels: Sequence, split: dict[str, Sequence[int]]) -> pd.DataFrame:
    """Items per class (columns, and ``total``) in each part of ``split`` (rows, in its order)."""
    part = pd.Series(np.repeat(list(split), [len(v) for v in split.values()]),
                     index=np.concatenate(list(split.values()))).sort_index()
    counts = pd.crosstab(pd.Series(list(labels), name="label"), part).reindex(columns=list(split))
    counts.loc["total"] = counts.sum()
    return counts.T


def unknown_share(tokens, vocab) -> float:
    """The share of the words in ``tokens`` (ids from ``vocab.encode``) that the vocabulary does not
    know: ``<unk>`` among the word tokens (every id above ``<eos>``, and ``<unk>``)."""
    return float((tokens == vocab.unk_id).sum() / ((tokens > vocab.eos_id) | (tokens == vocab.unk_id)).sum())


SWEEP_COLUMNS = ["setting", "lr", "batch_size", "learn_tau", "max_steps", "warmup_steps", "final_loss", "loss_drop",
                 "val_loss", "val_i2t_r@1", "val_i2t_r@10", "val_t2i_r@1", "val_t2i_r@10", "val_mean_recall", "seconds"]


def sweep_table(sw) -> pd.DataFrame:
    """Figure 3's sweep (:func:`hzlib.sweep.sweep`) as chapter 5 shows it: one row per setting, the
    chosen one starred."""
    return sw.table[SWEEP_COLUMNS].assign(chosen=np.where(sw.table["setting"] == sw.best_setting, "★", ""))


SWEEP_CHOICE = {True: "The final run takes the setting with the highest mean validation recall among those that learnt",
                False: "Validation cannot rank settings that have not started to learn, so the final run keeps the "
                       "profile's own setting (clip_lr, clip_batch, τ learnt)"}


def sweep_values(sw, *, steps: int, n_validation: int) -> dict:
    """The values chapter 5 glues about its sweep, by glue key."""
    t, n = sw.table, len(sw.table)
    recall, n_learnt = t[sw.select_by], int(t["learnt"].sum())
    chosen = float(t.loc[t["setting"] == sw.best_setting, sw.select_by].iloc[0])
    return {"sweep_n": n, "sweep_steps": steps, "best_lr": f"{sw.best['lr']:.1e}", "best_batch": sw.best["batch_size"],
            "best_tau": "learnt" if sw.best["learn_tau"] else "fixed at 0.07", "best_val_recall": round(chosen, 3),
            "sweep_learnt": f"{n_learnt} of {n}", "sweep_choice": SWEEP_CHOICE[bool(sw.informative)],
            "val_chance_r10": round(10 / n_validation, 3), "sweep_max_drop": round(float(t["loss_drop"].max()), 3),
            "sweep_recall_range": f"{recall.min():.3f}–{recall.max():.3f}",
            "ch05_sweep": f"{n} settings of {steps} steps; mean validation recall "
                          f"{recall.min():.3f} to {recall.max():.3f}",
            "ch05_sweep_ref": f"recall@10 by chance {10 / n_validation:.3f}; largest fall of a loss below its chance "
                              f"level {t['loss_drop'].max():.3f}; {n_learnt} setting(s) learnt"}


def classification_table(zero_shot: dict, probes: dict, vs_reference: dict, *, n_classes: int,
                         majority: float) -> pd.DataFrame:
    """Chapter 5's classification table: per model (columns), zero-shot accuracy, the linear probe's
    macro-F1 and accuracy, and the probe minus the reference descriptor's (each with its CI; blank
    where the model has none), then the two chance levels."""
    def column(name, r):
        zs, ref = zero_shot.get(name), vs_reference.get(name)
        return {"zero-shot accuracy": ci_text(zs["accuracy"], *zs["ci"]) if zs else "",
                "linear-probe macro-F1": ci_text(r["macro_f1"], r["macro_f1_ci_low"], r["macro_f1_ci_high"]),
                "linear-probe accuracy": ci_text(r["accuracy"], r["accuracy_ci_low"], r["accuracy_ci_high"]),
                "probe minus HOG + colour (macro-F1)":
                    ci_text(ref["difference"], ref["ci_low"], ref["ci_high"]) if ref else ""}
    table = pd.DataFrame({name: column(name, r) for name, r in probes.items()})
    table["chance: uniform guess"] = round(1 / n_classes, 3)
    table["chance: majority class"] = round(majority, 3)
    return table


PROBE_KEYS = ("macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "C")


def summary_of_test_part(retrieval: pd.DataFrame, zero_shot: dict, probes: dict, vs_reference: dict, **extra) -> dict:
    """What chapter 5's summary.json records of the test part: retrieval rows, zero-shot accuracy, the
    probes, the probes against the reference descriptor, and ``extra`` (n, chance levels, ...)."""
    return {"n": extra.pop("n"), "retrieval": retrieval.drop(columns="cell", errors="ignore").to_dict("records"),
            "zero_shot": {k: {"accuracy": v["accuracy"], "ci": v["ci"]} for k, v in zero_shot.items()},
            "linear_probe": {k: {m: v[m] for m in PROBE_KEYS} for k, v in probes.items()},
            "probe_vs_hog": {k: {m: v[m] for m in ("difference", "ci_low", "ci_high", "p_value")}
                             for k, v in vs_reference.items()},
            **extra}
