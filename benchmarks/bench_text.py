"""Benchmark of FastText pretraining (hzlib.text) on the profile's chinese-poetry text: corpus size,
time to read and convert, to segment, to train, and tokens per second, at 1 and N threads.

    python benchmarks/bench_text.py [--profile default] [--threads 1,2] [--processes 2]

Trains into a temporary folder (the chapter's cached model is left alone). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from hzlib import text
from hzlib.assets import asset_dir
from hzlib.config import load_profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated FastText thread counts to time (the chapter uses 1)")
    ap.add_argument("--processes", type=int, default=2, help="segmentation processes")
    a = ap.parse_args()
    prof = load_profile(a.profile)
    t0 = time.perf_counter()
    sentences = text.poetry_sentences(asset_dir("chinese-poetry"), limit_chars=prof.poetry_chars or None,
                                      seed=prof.seed)
    read = time.perf_counter() - t0
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for th in (int(t) for t in a.threads.split(",")):
            t0 = time.perf_counter()
            text.train_fasttext(sentences, Path(tmp) / f"ft{th}.bin", epoch=prof.fasttext_epochs, thread=th,
                                processes=a.processes, seed=prof.seed)
            total = time.perf_counter() - t0
            info = text.model_info(Path(tmp) / f"ft{th}.bin")
            rows[f"{th} thread(s)"] = {"characters": info["corpus"]["characters"], "tokens": info["corpus"]["tokens"],
                                       "epochs": prof.fasttext_epochs, "read + t2s (s)": read,
                                       "segment (s)": info["segment_seconds"], "train (s)": info["train_seconds"],
                                       "tokens/s": info["tokens_per_second"], "pretraining total (s)": read + total}
    print(f"# FastText pretraining, profile {prof.profile} ({platform.machine()}, {os.cpu_count()} cores)\n")
    print(pd.DataFrame(rows).T.to_markdown(floatfmt=".4g"))


if __name__ == "__main__":
    main()
