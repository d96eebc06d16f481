"""What ViLBERT and M3P learn with and without ALBEF's image-text contrast before fusion: each trained as
chapter 8 trains it (the profile's budget and optimiser, the training part of a fold of protocol (b)),
then its image-text matching term at the start and the end of training, its last loss against its
chance level, and the macro-F1 of chapter 8's standardised head on its image features (held-out part of
the fold) beside the same network at its random initialisation, all measured in this run.

    python benchmarks/bench_pretraining.py                       # default profile, fold 0, both models
    python benchmarks/bench_pretraining.py --folds 0 1 2 --steps 450

Needs the profile's corpus and chapter 4's FastText model (``hz reproduce --profile default --only 01 04``).
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hzlib import evaluate as E, pairs, text as T, train  # noqa: E402
from hzlib.baselines import _pretraining as P, neural as N  # noqa: E402
from hzlib.config import load_profile, seed_everything  # noqa: E402
from hzlib.corpus import classes as C, manifest, provenance  # noqa: E402
from hzlib.model import load_geometry  # noqa: E402


@contextlib.contextmanager
def recorded_matching(into: list):
    """Every value of the matching term (``_pretraining.itm_loss``) while the block runs."""
    original = P.itm_loss

    def record(logits, aligned):
        loss = original(logits, aligned)
        into.append(float(loss.detach()))
        return loss

    P.itm_loss = record
    try:
        yield into
    finally:
        P.itm_loss = original


@contextlib.contextmanager
def contrast(key: str, on: bool):
    cls = N.MODELS[key]
    before = cls.contrast
    cls.contrast = on
    try:
        yield
    finally:
        cls.contrast = before


def macro_f1(feats, y, tr, te, n_classes, seed, jobs) -> float:
    proba = E.head_proba(feats, y, tr, te, n_classes=n_classes, seed=seed, jobs=jobs)
    return float(f1_score(y[te], proba.argmax(1), average="macro"))


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--models", nargs="+", default=["vilbert", "m3p"])
    ap.add_argument("--folds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the profile's eval_steps)")
    a = ap.parse_args(argv)
    prof = load_profile(a.profile)
    seed_everything(prof.seed)
    root = prof.data_dir()
    df = manifest.read_manifest(root / "manifest.csv")
    classes = C.class_order(df["label"], provenance.declared_classes(root))
    y = E.encode_labels(df["label"], classes)
    g = load_geometry(prof.clip_geometry)
    images = pairs.corpus_images(df, root, prof.images_dir(), size=g.image_size, mode=prof.clip_input,
                                 workers=prof.workers, progress=False)
    fasttext = T.load_model(prof.artifacts_dir("text") / "fasttext.bin")
    splits = E.kfold_splits(list(df["label"]), prof.eval_folds, prof.seed)
    steps = a.steps or prof.eval_steps
    cfg = train.TrainConfig(max_steps=steps, batch_size=prof.clip_batch, lr=prof.clip_lr, seed=prof.seed,
                            warmup_steps=max(1, steps // 10), shift=prof.clip_shift, negatives=prof.clip_negatives,
                            device=prof.device, progress=False)
    rows = []
    for k in a.folds:
        tr, te = splits[k]
        for key in a.models:
            for on in (False, True):
                matching: list = []
                with contrast(key, on), recorded_matching(matching):
                    t0 = time.perf_counter()
                    feats, record, _ = N.train_and_embed(
                        key, images=images, texts=list(df["text"]), label_ids=y, train_idx=tr, n_classes=len(classes),
                        geometry=g, cfg=cfg, fasttext_model=fasttext, fasttext_id="bench", progress=False)
                    seconds = time.perf_counter() - t0
                    spec = N.ModelSpec(g, record["vocab_size"], len(classes), len(tr), seed=prof.seed)
                    twin = N.make_model(key, spec)
                fit = record["fit"]
                tenth = max(1, len(fit["losses"]) // 10)
                trained = macro_f1(feats, y, tr, te, len(classes), prof.seed, prof.workers)
                untrained = macro_f1(N.features(twin, images), y, tr, te, len(classes), prof.seed, prof.workers)
                rows.append({"fold": k, "model": key, "contrast": "with" if on else "without", "steps": fit["steps"],
                             "train s": round(seconds, 1),
                             "loss / chance": round(float(np.mean(fit["losses"][-tenth:])) / fit["chance"], 3),
                             "matching, first tenth": round(float(np.mean(matching[:tenth])), 3),
                             "matching, last tenth": round(float(np.mean(matching[-tenth:])), 3),
                             "macro-F1": round(trained, 3), "twin macro-F1": round(untrained, 3),
                             "gain": round(trained - untrained, 3)})
                print(f"fold {k} {key} {rows[-1]['contrast']} the contrast: {seconds:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{platform.node()} · torch {torch.__version__} · {torch.get_num_threads()} threads · profile {a.profile}"
          f" · ln 2 = {np.log(2):.3f}\n")
    print(table.to_markdown(index=False))
    return table


if __name__ == "__main__":
    main()
