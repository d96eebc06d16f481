"""What CLIP learns on this corpus with each input mode and geometry, at one budget: chapter 5's split
(stratified 70/15/15, the profile's seed), the profile's optimiser settings, then on the test part
image->text and text->image recall@10, zero-shot accuracy and the standardised linear probe's macro-F1,
each beside its random-init twin and the HOG + colour probe, all measured in this run.

    python benchmarks/bench_recipe.py                                  # default corpus: luma/rgb/channels x cnn_tiny
    python benchmarks/bench_recipe.py --modes luma --geometries cnn_tiny tiny --steps 300

Needs the profile's corpus (``hz corpus build --profile default``); the decoded images are cached in
the profile's shared image cache.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hzlib import clip_eval, evaluate as E, model as M, normalize, pairs, train as T
from hzlib.config import load_profile
from hzlib.corpus.manifest import read_manifest


def measure(df, root, prof, split, geometry, mode, steps, hog_probe):
    vocab = M.build_vocabulary(list(df["text"].iloc[split["train"]]))
    data = pairs.load_pairs(df, root, vocab, image_size=geometry.image_size, context_length=geometry.context_length,
                        cache_dir=prof.images_dir(), mode=mode, workers=prof.workers, progress=False)
    cfg = T.TrainConfig(lr=prof.clip_lr, batch_size=prof.clip_batch, max_steps=steps, warmup_steps=prof.clip_warmup,
                        shift=prof.clip_shift, seed=prof.seed, device=prof.device, progress=False)
    y, te = df["label"].to_numpy(), split["test"]
    rows = []
    for name, steps_run in (("trained", steps), ("random init", 0)):
        model = M.build_model(geometry, len(vocab), seed=prof.seed)
        seconds, loss = 0.0, float("nan")
        if steps_run:
            r = T.Trainer(model, data.subset(split["train"]), cfg).run()
            seconds, loss = r.seconds, float(np.mean(r.losses[-max(1, len(r.losses) // 10):]))
        img = M.encode_images(model, data.images, to_input=pairs.to_model_input).numpy()
        txt = M.encode_texts(model, data.tokens).numpy()
        rec = clip_eval.retrieval_metrics(img[te], txt[te], n_boot=0).set_index(["direction", "k"])["recall"]
        zs = clip_eval.zero_shot(model, vocab, img[te], list(y[te]), clip_eval.class_prompts(),
                                 context_length=geometry.context_length, n_boot=1)
        probe = E.probe(img, y, split["train"], te, seed=prof.seed, n_boot=200)
        diff = E.paired_probe_difference(None, probe, hog_probe, n_resamples=200, seed=prof.seed)
        rows.append({"geometry": geometry.name, "mode": mode, "model": name, "steps": steps_run,
                     "seconds": seconds, "loss / ln B": loss / np.log(prof.clip_batch),
                     "i2t R@10": rec["image->text", 10], "t2i R@10": rec["text->image", 10],
                     "zero-shot": zs["accuracy"], "probe F1": probe["macro_f1"],
                     "probe - HOG": f"{diff['difference']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]"})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--modes", nargs="+", default=list(normalize.MODEL_INPUTS))
    ap.add_argument("--geometries", nargs="+", default=["cnn_tiny"])
    ap.add_argument("--steps", type=int, default=0, help="optimiser steps (0: the profile's clip_steps)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the profile's workers)")
    args = ap.parse_args(argv)
    prof = load_profile(args.profile)
    torch.set_num_threads(args.threads or prof.workers)
    root = prof.data_dir()
    if not (root / "manifest.csv").is_file():
        raise SystemExit(f"no corpus at {root}: run `hz corpus build --profile {prof.profile}` first")
    df = read_manifest(root / "manifest.csv")
    split = pairs.stratified_split(list(df["label"]), (0.7, 0.15, 0.15), seed=prof.seed)
    t0 = time.perf_counter()
    hog = normalize.descriptors([root / p for p in df["image"]], workers=prof.workers)
    hog_probe = E.probe(hog, df["label"].to_numpy(), split["train"], split["test"], seed=prof.seed, n_boot=200)
    rows = [r for g in args.geometries for mode in args.modes
            for r in measure(df, root, prof, split, M.load_geometry(g), mode, args.steps or prof.clip_steps, hog_probe)]
    print(f"\nprofile {prof.profile}: {len(df)} pairs, test {len(split['test'])}; batch {prof.clip_batch}, "
          f"lr {prof.clip_lr:g}, "
          f"shift {prof.clip_shift}; {torch.get_num_threads()} torch thread(s); HOG + colour probe macro-F1 "
          f"{hog_probe['macro_f1']:.3f}; chance R@10 {10 / len(split['test']):.3f}; {time.perf_counter() - t0:.0f} s")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return rows


if __name__ == "__main__":
    main()
