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
from .stats import mean_ci

__all__ = ["retrieval_metrics", "zero_shot", "class_prompts"]


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
    cell = "{:.3f} [{:.3f}, {:.3f}]".format
    out = {f"{d} R@10": cell(*retr.loc[(d, 10), ["recall", "ci_low", "ci_high"]])
           for d in ("image->text", "text->image")}
    out["zero-shot accuracy"] = cell(zs["accuracy"], *zs["ci"])
    for name, r in probes.items():
        out[f"probe macro-F1, {name}"] = cell(r["macro_f1"], r["macro_f1_ci_low"], r["macro_f1_ci_high"])
    return out
