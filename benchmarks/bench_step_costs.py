"""What one optimiser step of each chapter-8 model costs on this machine, and what the ways of making it
cheaper that leave the models as they are would give: two threads (the chapter's setting, the baseline)
against one, bf16 autocast, and channels_last memory for the convolutions, each measured in this run.

    python benchmarks/bench_step_costs.py                    # every model, all variants
    python benchmarks/bench_step_costs.py --models dan vilbert --variants fp32-1thread bf16

A step is the model's own objective (``PairModel.loss``) on a batch of synthetic pairs of the chapter's
shapes (the profile geometry's image size, descriptions of 28-91 words as in the default corpus, trimmed
to the batch's longest as the training loop trims them), its backward pass and AdamW's update. Prints a
markdown table: milliseconds per step (best of ``--repeats`` timings of ``--steps`` steps each, after
warm-up steps) and the ratio to the baseline of the same model in the same run. No corpus needed.
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hzlib.baselines import neural as N  # noqa: E402
from hzlib.model import load_geometry  # noqa: E402
from hzlib.train import trim_padding  # noqa: E402

VARIANTS = ("fp32", "fp32-1thread", "bf16", "channels-last")


def batch(geometry, size: int, vocab: int, seed: int = 0):
    """Synthetic images, token ids (``<bos>`` words ``<eos>``, padded), labels and positions."""
    g = torch.Generator().manual_seed(seed)
    s, L = geometry.image_size, geometry.context_length
    images = torch.rand(size, 3, s, s, generator=g) * 2 - 1
    lengths = torch.randint(28, 92, (size,), generator=g)
    tokens = torch.zeros(size, L, dtype=torch.int64)
    for i, n in enumerate(lengths.tolist()):
        tokens[i, 0], tokens[i, 1:n + 1], tokens[i, n + 1] = 2, torch.randint(4, vocab, (n,), generator=g), 3
    return images, trim_padding(tokens), torch.randint(0, 10, (size,), generator=g), torch.arange(size)


def step_ms(key: str, variant: str, geometry, data, *, vocab: int, threads: int, steps: int, repeats: int) -> float:
    spec = N.ModelSpec(geometry, vocab, 10, 1233, seed=0, class_shares=(0.1,) * 10)
    model = N.make_model(key, spec).train()
    images, tokens, labels, index = data
    if variant == "channels-last":
        fmt = torch.channels_last
        model, images = model.to(memory_format=fmt), images.contiguous(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16" else contextlib.nullcontext()
    torch.set_num_threads(1 if variant == "fp32-1thread" else threads)

    def step():
        with autocast:
            loss = model.loss(images, tokens, labels, index).float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    torch.set_num_threads(threads)
    return 1000 * best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["clip", "dan", "item", "vilbert", "m3p", "supervised"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS[1:]), choices=VARIANTS[1:],
                    help="measured beside the baseline (fp32, --threads threads)")
    ap.add_argument("--geometry", default="cnn_tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="the baseline's torch threads (the profile's workers)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    geometry, vocab = load_geometry(a.geometry), 1000
    data = batch(geometry, a.batch, vocab)
    rows = []
    for key in a.models:
        base = step_ms(key, "fp32", geometry, data, vocab=vocab, threads=a.threads, steps=a.steps, repeats=a.repeats)
        rows.append({"model": key, "variant": f"fp32, {a.threads} threads (baseline)", "ms/step": base, "ratio": 1.0})
        for v in a.variants:
            ms = step_ms(key, v, geometry, data, vocab=vocab, threads=a.threads, steps=a.steps, repeats=a.repeats)
            rows.append({"model": key, "variant": v, "ms/step": ms, "ratio": ms / base})
        print(f"{key}: {base:.0f} ms/step", file=sys.stderr, flush=True)
    print(f"# Step costs: geometry {geometry.name}, batch {a.batch}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, best of {a.repeats} x {a.steps} steps\n")
    print(pd.DataFrame(rows).round({"ms/step": 0, "ratio": 2}).to_markdown(index=False))


if __name__ == "__main__":
    main()
