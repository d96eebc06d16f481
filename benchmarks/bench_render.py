"""Benchmark of hzlib.corpus.render: images per second at 224x224 (one process, and a pool of two
processes), seconds per 640x480 view, and where the time goes.

    python benchmarks/bench_render.py [--n 40] [--ao 6]

The sculpture is a relief stele of 寿 built by hzlib.corpus.mesh when the glyph fonts are installed,
otherwise a box stele with a raised cross (manifold3d only). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import manifold3d as m3
import numpy as np

from hzlib.config import load_profile
from hzlib.corpus import glyphs as G, mesh as M, render as R
from hzlib.corpus.build import build_corpus
from hzlib.corpus.types import Glyph, Sculpture

_WORKER: dict = {}


def typical_sculpture():
    """(sculpture, description): a mesh-module relief stele if possible, else a cross stele."""
    try:
        glyph = G.load_glyph("寿", "kai")
        s, _ = M.build_sculpture(glyph, "relief", np.random.default_rng(0))
        return s, f"relief stele of 寿 (kai), {len(s.triangles)} triangles"
    except Exception as exc:  # glyph fonts missing
        def box(x0, x1, y0, y1, z0, z1):
            return m3.Manifold.cube([x1 - x0, y1 - y0, z1 - z0]).translate([x0, y0, z0])

        solid = (box(-0.4, 0.4, 0, 0.2, 0.12, 1.32) + box(-0.5, 0.5, -0.1, 0.3, 0, 0.12)
                 + box(-0.25, 0.25, -0.04, 0, 0.64, 0.76) + box(-0.06, 0.06, -0.04, 0, 0.45, 0.95))
        mesh = solid.to_mesh()
        ras = np.zeros((64, 64), np.int16)
        ras[24:40, :] = 1
        ras[:, 24:40][ras[:, 24:40] == 0] = 2
        s = Sculpture(np.asarray(mesh.vert_properties)[:, :3].astype(np.float32),
                      np.asarray(mesh.tri_verts).astype(np.int32), "relief",
                      Glyph("十", "test", []), (-0.25, 0.25, -0.04, 0.0, 0.45, 0.95), ras)
        return s, f"box stele with a raised cross, {len(s.triangles)} triangles (relief stele unavailable: {exc})"


def workload(sculpture, n: int, size=(224, 224), seed=0):
    """n (camera, look) pairs: views of the front half (azimuth -70..70 degrees, elevation 8 or 20),
    materials, settings and paints cycled."""
    rng = np.random.default_rng(seed)
    lo, hi = sculpture.bounds
    centre = (lo + hi) / 2
    ref = R.orbit_cameras(sculpture, 1, elevations=(0.0,), width=size[0], height=size[1], fov_deg=40.0)[0]
    dist = float(np.linalg.norm(ref.centre - centre))
    out = []
    for i in range(n):
        az = -70.0 + 140.0 * i / max(n - 1, 1)
        eye = centre + dist * R.direction_from_angles(az, (8.0, 20.0)[i % 2])
        cam = R.look_at_camera(eye, centre, fov_deg=40.0, width=size[0], height=size[1])
        look = R.Look(material=R.MATERIALS[i % len(R.MATERIALS)], setting=R.SETTINGS[i % len(R.SETTINGS)],
                      weathering=float(rng.uniform(0, 0.6)), seed=i, azimuth=float(rng.uniform(-120, 120)),
                      elevation=float(rng.uniform(20, 60)), glyph_paint=[None, "red", "gold"][i % 3])
        out.append((cam, look))
    return out


def _init(sculpture, ao):
    _WORKER["r"] = R.Renderer(sculpture, threads=1, ao_samples=ao)


def _job(args):
    cam, look = args
    _WORKER["r"].render(cam, look)
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="images per measurement")
    ap.add_argument("--ao", type=int, default=None, help="ambient-occlusion rays (default: Renderer's)")
    ap.add_argument("--corpus", type=int, default=400, help="images for the end-to-end corpus rate (0: skip)")
    a = ap.parse_args(argv)
    ao = a.ao if a.ao is not None else R.Renderer.__init__.__kwdefaults__["ao_samples"]

    sculpture, desc = typical_sculpture()
    t = time.perf_counter()
    r = R.Renderer(sculpture, threads=1, ao_samples=ao)
    t_first = time.perf_counter() - t  # includes importing open3d
    inits = []
    for _ in range(15):  # median: a single construction is at the mercy of the machine's other load
        t = time.perf_counter()
        r = R.Renderer(sculpture, threads=1, ao_samples=ao)
        inits.append(time.perf_counter() - t)
    t_init = float(np.median(inits))
    jobs = workload(sculpture, a.n)
    r.render(*jobs[0])  # warm-up (noise volume, tables)

    # one process, one Embree thread
    r.timings = {}
    t = time.perf_counter()
    for cam, look in jobs:
        r.render(cam, look)
    t1 = time.perf_counter() - t
    sections = {k: v / len(jobs) for k, v in r.timings.items()}
    r.timings = None

    # one process, one Embree thread, occlusion rays for every pixel (no checkerboard)
    r_full = R.Renderer(sculpture, threads=1, ao_samples=ao, ao_checkerboard=False)
    r_full.render(*jobs[0])
    t = time.perf_counter()
    for cam, look in jobs:
        r_full.render(cam, look)
    t1_full = time.perf_counter() - t

    # one process, Embree on all cores
    r_all = R.Renderer(sculpture, threads=0, ao_samples=ao)
    r_all.render(*jobs[0])
    t = time.perf_counter()
    for cam, look in jobs:
        r_all.render(cam, look)
    t1_all = time.perf_counter() - t

    # a pool of two processes
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(2, initializer=_init, initargs=(sculpture, ao)) as pool:
        pool.map(_job, jobs[:4], chunksize=1)  # warm-up both workers
        t = time.perf_counter()
        pool.map(_job, jobs, chunksize=2)
        t2 = time.perf_counter() - t

    # 640x480
    big = workload(sculpture, 6, size=(640, 480))
    r.render(*big[0])
    t = time.perf_counter()
    for cam, look in big:
        r.render(cam, look)
    t_big = (time.perf_counter() - t) / len(big)

    import open3d  # for its version; here, not at the top: t_first above times its import (as a fresh worker pays it)

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print("# hzlib.corpus.render benchmark\n")
    print(f"- machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}")
    print(f"- python {platform.python_version()}, numpy {np.__version__}, open3d {open3d.__version__}")
    print(f"- sculpture: {desc}; ambient occlusion: {ao} rays (traced on a checkerboard of pixels unless")
    print(f"  said otherwise); shadows on; {a.n} images per row,")
    print("  materials, settings and paints cycled, views of the front half\n")
    print("| measurement | result |")
    print("| --- | --- |")
    print(f"| Renderer init (Embree scene, corner normals), median of 15 | {t_init * 1e3:.1f} ms "
          f"(first: {t_first * 1e3:.0f} ms, importing open3d) |")
    print(f"| 224x224, 1 process, 1 Embree thread | {a.n / t1:.1f} images/s ({t1 / a.n * 1e3:.1f} ms each) |")
    print(f"| 224x224, 1 process, 1 Embree thread, AO traced for every pixel | {a.n / t1_full:.1f} images/s "
          f"({t1_full / a.n * 1e3:.1f} ms each) |")
    print(f"| 224x224, 1 process, Embree on all cores | {a.n / t1_all:.1f} images/s "
          f"({t1_all / a.n * 1e3:.1f} ms each) |")
    print(f"| 224x224, pool of 2 processes (1 thread each) | {a.n / t2:.1f} images/s |")
    print(f"| 640x480, 1 process, 1 thread | {t_big:.3f} s per view |")
    print("\nWhere the time goes at 224x224 (1 thread, ms per image):\n")
    print("| section | ms |")
    print("| --- | --- |")
    for k, v in sorted(sections.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v * 1e3:.1f} |")
    print(f"| total | {sum(sections.values()) * 1e3:.1f} |")
    if a.corpus:
        corpus_rate(a.corpus)


def corpus_rate(n_images: int) -> None:
    """End to end, as the corpus is built: plan, glyph, mesh, render, PNGs and checkpoint rows for real
    corpus samples (every form, style and material), 224x224, 1 and 2 worker processes, no orbits."""
    base = replace(load_profile("default"), corpus_scale=n_images / 1850, image_size=224, orbit_forms=())
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            build_corpus(replace(base, workers=workers), Path(tmp) / "c", progress=False)
            rates[workers] = (sum(1 for _ in (Path(tmp) / "c" / "images").iterdir()), time.perf_counter() - t)
    print("\nEnd to end, real corpus samples (glyph + mesh + render + PNGs + manifest and descriptions):\n")
    print("| workers | images | seconds | images/s | ratio to 1 worker |")
    print("| --- | --- | --- | --- | --- |")
    for w, (n, sec) in rates.items():
        print(f"| {w} | {n} | {sec:.1f} | {n / sec:.1f} | {(n / sec) / (rates[1][0] / rates[1][1]):.2f} |")


if __name__ == "__main__":
    main()
