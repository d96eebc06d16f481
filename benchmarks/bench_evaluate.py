"""Benchmark of the analysis time per sculpture (the paper's 182 ms; chapter 8's Table 3): each stage
(read, Eq 1-3, encode, classify) and the whole path, at batch 1 and batched, for every trained model
of the profile, beside the plain pixel probe measured in the same run as the baseline.

    python benchmarks/bench_evaluate.py [--profile default] [--n 64] [--device cpu] [--threads 1,2] [--models clip,dan]

The models are freshly initialised (speed does not depend on the weights' values) and the heads are
fitted on their features of the timed images (a logistic regression's cost does not depend on its
coefficients either). Prints a markdown table; medians per sculpture in milliseconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import torch
from PIL import Image

from hzlib import evaluate as E
from hzlib.baselines import neural as N
from hzlib.baselines.plain import PixelProbe
from hzlib.config import load_profile
from hzlib.corpus.build import build_corpus
from hzlib.corpus.manifest import read_manifest
from hzlib.model import load_geometry
from hzlib.normalize import NormalizeConfig, model_image, normalize


def _median_ms(fn, batches, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn(batches[0])
    per = []
    for b in batches:
        t0 = time.perf_counter()
        fn(b)
        per.append((time.perf_counter() - t0) * 1000 / len(b))
    return float(np.median(per))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--n", type=int, default=64, help="images timed")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--models", default=None, help="comma-separated model keys (default: the profile's eval_models)")
    a = ap.parse_args()
    prof = load_profile(a.profile)
    root = build_corpus(prof, prof.data_dir(), progress=False)
    df = read_manifest(root / "manifest.csv")
    paths = [root / p for p in df["image"][:a.n]]
    y = np.arange(len(paths)) % 10
    g = load_geometry(prof.clip_geometry)
    size = g.image_size
    rows = []

    def read(batch):
        return [np.asarray(Image.open(p).convert("RGB")) for p in batch]

    def norm(batch):  # what the models see (the profile's clip_input)
        return [model_image(im, size, prof.clip_input) for im in batch]

    raw = read(paths)
    for threads in (int(t) for t in a.threads.split(",")):
        torch.set_num_threads(threads)
        for bs in (1, len(paths)):
            batches = [paths[i:i + bs] for i in range(0, len(paths) - bs + 1, bs)]
            raw_b = [raw[i:i + bs] for i in range(0, len(paths) - bs + 1, bs)]
            t_read = _median_ms(read, batches)
            t_norm = _median_ms(norm, raw_b)
            # baseline: the pixel probe, the whole path (read, Eq 1-3 at 32 px, PCA, logistic regression)
            pix_cfg = NormalizeConfig(size=32, colour="channels")
            pix = np.stack([normalize(im, pix_cfg)["equalized"].ravel() for im in raw])
            probe = PixelProbe(pix, y, pca=min(32, len(paths) - 1)).fit(np.arange(len(paths)))
            base = _median_ms(lambda b: probe.pipeline.predict_proba(np.stack(
                [normalize(im, pix_cfg)["equalized"].ravel() for im in read(b)])), batches)
            rows.append({"model": "pixels + LR (baseline)", "threads": threads, "batch": bs, "read": t_read,
                         "Eq 1-3": np.nan, "encode": np.nan, "classify": np.nan, "total": base, "vs baseline": 1.0})
            for key in (a.models.split(",") if a.models else prof.eval_models):
                model = N.make_model(key, N.ModelSpec(g, 1000, 10, len(paths), seed=0)).to(a.device).eval()
                u8 = torch.from_numpy(np.stack([np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).transpose(2, 0, 1)
                                                for x in norm(raw)]))
                feats = N.features(model, u8, device=a.device)
                head = E.fit_head(feats, y)
                enc = _median_ms(lambda b: N.features(model, b, batch_size=len(b), device=a.device),
                                 [u8[i:i + bs] for i in range(0, len(paths) - bs + 1, bs)])
                cls = _median_ms(head.predict_proba, [feats[i:i + bs] for i in range(0, len(paths) - bs + 1, bs)])
                analyse = N.analyser(model, head.predict_proba, size=size, mode=prof.clip_input, device=a.device)
                total = _median_ms(analyse, batches)
                rows.append({"model": key, "threads": threads, "batch": bs, "read": t_read, "Eq 1-3": t_norm,
                             "encode": enc, "classify": cls, "total": total, "vs baseline": total / base})
    print(f"# Analysis time per sculpture (ms, median), profile {prof.profile}, {len(paths)} images, "
          f"device {a.device} ({platform.machine()}, {os.cpu_count()} cores), geometry {g.name} ({size} px)\n")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
