"""Benchmark of the description generator (hzlib.corpus.describe): descriptions per second in each
register, for a character whose facts are looked up once and cached, and with facts passed in.

    python benchmarks/bench_describe.py [--n 2000] [--char 真] [--repeats 3]

The corpus builder writes several descriptions per image, so the generator should stay well above
2,000 descriptions/s (formerly asserted in tests/test_describe.py; a wall-clock rate is a benchmark,
not a test: it fails under load). Prints a markdown table; the best of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from hzlib.corpus.describe import REGISTERS, char_facts, describe

FACTORS = {"material": "bronze", "form": "relief", "style": "kai", "setting": "temple", "glyph_paint": "gold"}
CUES = ["皇家气派", "庄重典雅"]
TARGET = 2000  # descriptions per second


def rate(char: str, register: str, n: int, repeats: int, **kw) -> float:
    """Best descriptions per second over ``repeats`` runs of ``n`` descriptions."""
    best = 0.0
    for r in range(repeats):
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        for _ in range(n):
            describe(char, FACTORS, CUES, register, rng, **kw)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="descriptions per run")
    ap.add_argument("--char", default="真")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import pandas as pd

    facts = char_facts(a.char)  # the first lookup loads the dictionaries: not timed
    rows = {}
    for reg in REGISTERS:
        looked_up = rate(a.char, reg, a.n, a.repeats)
        given = rate(a.char, reg, a.n, a.repeats, facts=facts)
        rows[reg] = {"descriptions/s": looked_up, "with facts given (/s)": given,
                     f">= {TARGET}/s": "yes" if min(looked_up, given) >= TARGET else "NO"}
    print(f"# Description generator, {a.n} descriptions x {a.repeats} ({platform.machine()}, "
          f"{os.cpu_count()} cores)\n")
    print(pd.DataFrame(rows).T.to_markdown(floatfmt=".0f"))


if __name__ == "__main__":
    main()
