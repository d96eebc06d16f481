"""Benchmark of hzlib.sfm on one orbit, from images to metrics: seconds per step, registration and
dense quality, for the chapter's settings and for the first prototype's (8192 features, affine SIFT,
one thread) measured in the same run.

    python benchmarks/bench_sfm.py [--orbit data/default/orbits/orbit_01_relief] [--no-baseline]

Needs a built corpus (`hz corpus build --profile default`). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hzlib import sfm

SETTINGS = {
    "chapter (4096 features, affine only under 400 px, 1 thread)": dict(),
    "chapter, 2 extraction threads (not reproducible)": dict(threads=2),
    "prototype (8192 features, affine, 1 thread)": dict(max_features=8192, affine=True, threads=1),
}


def run(orbit: Path, work: Path, **kw) -> dict:
    t0 = time.perf_counter()
    res = sfm.reconstruct(orbit, work, **kw)
    row = {"registered": f"{res.n_registered}/{res.n_images}", **{k: res.times.get(k, np.nan)
                                                                  for k in ("features", "matching", "mapping")}}
    if res.ok:
        al = sfm.align_to_truth(res, orbit / "cameras.json")
        dense = sfm.densify(res, orbit, al)
        row |= {"dense": sum(dense.times.values())}
        t = time.perf_counter()
        if dense.ok:
            m = sfm.evaluate_dense(dense, al, orbit / "mesh.ply")["dense"]
            row |= {"recall@2%": m.recall[1], "accuracy median (% diag)": 100 * m.accuracy_median}
        row["metrics"] = time.perf_counter() - t
    row["total"] = time.perf_counter() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orbit", type=Path, default=Path("data/default/orbits/orbit_01_relief"))
    ap.add_argument("--no-baseline", action="store_true", help="time the chapter's settings only")
    a = ap.parse_args()
    if not (a.orbit / "cameras.json").is_file():
        raise SystemExit(f"{a.orbit}: no orbit there; build the corpus first (hz corpus build --profile default)")
    settings = dict(list(SETTINGS.items())[:1]) if a.no_baseline else SETTINGS
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kw) in enumerate(settings.items()):
            rows[name] = run(a.orbit, Path(tmp) / str(i), **kw)
    table = pd.DataFrame(rows).T
    if len(table) > 1:
        table["speed-up vs prototype"] = table["total"].iloc[-1] / table["total"]
    print(f"# SfM on {a.orbit} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"seconds unless stated)\n")
    print(table.to_markdown(floatfmt=".3g"))


if __name__ == "__main__":
    main()
