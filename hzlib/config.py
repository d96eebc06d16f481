"""Profiles (``profiles/<name>.yml``), the resolved run configuration, seeding and provenance.

A profile is a flat file of literal parameters; every notebook's ``parameters`` cell holds the same
keys, so ``papermill -f profiles/<name>.yml`` works on any chapter.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_info

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True)
class Profile:
    profile: str = "default"
    seed: int = 20240601
    data_root: str = "data"
    artifacts_root: str = "artifacts"
    corpus_scale: float = 1.0
    image_size: int = 224
    overlap: float = 0.2
    cue_prob: float = 0.2
    orbit_forms: tuple[str, ...] = ("freestanding", "relief", "carved", "slab", "openwork")
    orbit_views: int = 36
    orbit_width: int = 640
    orbit_height: int = 480
    norm_size: int = 128
    poetry_chars: int = 0  # FastText pretraining text: 0 = all of chinese-poetry, else a seeded subset of N 汉字
    fasttext_epochs: int = 3
    workers: int = 2
    force: bool = False
    # Chapter 5 (CLIP): a geometry of profiles/models/, what the models see (hzlib.normalize.model_image),
    # training length in optimiser steps, optimiser, augmentation, sweep length.
    clip_geometry: str = "cnn_tiny"
    clip_input: str = "luma"
    clip_steps: int = 300
    clip_batch: int = 64
    clip_lr: float = 2e-3
    clip_warmup: int = 30
    clip_shift: int = 4
    sweep_steps: int = 100
    device: str = "cpu"
    # Chapter 8 (evaluation): the trained models (hzlib.baselines.neural.MODELS), the folds of the
    # leakage-free protocol, one training budget (optimiser steps) for all, and the images timed per batch size.
    eval_models: tuple[str, ...] = ("clip", "dan", "item", "vilbert", "m3p", "supervised")
    eval_folds: int = 3
    eval_steps: int = 150
    eval_timing: int = 64

    @classmethod
    def from_dict(cls, params: dict) -> "Profile":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown profile parameter(s) {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        prof = cls(**values)
        prof.check()
        return prof

    @classmethod
    def from_namespace(cls, namespace: dict) -> "Profile":
        """The profile whose fields are the same-named entries of ``namespace`` (a notebook's
        parameters, e.g. ``globals()``); other entries are ignored."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ValueError(f"parameters missing: {missing}")
        return cls.from_dict({n: namespace[n] for n in names})

    def check(self) -> None:
        if not 0 <= self.overlap <= 1:
            raise ValueError(f"overlap={self.overlap} must lie in [0, 1]")
        if not 0 <= self.cue_prob <= 1:
            raise ValueError(f"cue_prob={self.cue_prob} must lie in [0, 1]")
        if self.corpus_scale <= 0:
            raise ValueError(f"corpus_scale={self.corpus_scale} must be positive")
        if self.poetry_chars < 0 or self.fasttext_epochs < 1:
            raise ValueError(f"poetry_chars={self.poetry_chars} must be >= 0 (0 = all) and "
                             f"fasttext_epochs={self.fasttext_epochs} >= 1")
        if self.image_size < 16 or self.norm_size < 8:
            raise ValueError(f"image_size={self.image_size} / norm_size={self.norm_size} too small")
        geometries = sorted(p.stem for p in (PROFILE_DIR / "models").glob("*.yml"))
        if self.clip_geometry not in geometries:
            raise ValueError(f"clip_geometry={self.clip_geometry!r} is not one of {geometries} (profiles/models/)")
        from .normalize import MODEL_INPUTS

        if self.clip_input not in MODEL_INPUTS:
            raise ValueError(f"clip_input={self.clip_input!r} must be one of {MODEL_INPUTS}")
        for name, ok in (("clip_steps", self.clip_steps >= 1), ("clip_batch", self.clip_batch >= 2),
                         ("clip_lr", self.clip_lr > 0), ("clip_warmup", self.clip_warmup >= 0),
                         ("clip_shift", self.clip_shift >= 0),
                         ("sweep_steps", self.sweep_steps >= 1)):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} out of range")
        if not self.eval_models or len(set(self.eval_models)) != len(self.eval_models):
            raise ValueError(f"eval_models={list(self.eval_models)} must be distinct model keys, at least one")
        for name, ok in (("eval_folds", self.eval_folds >= 2), ("eval_steps", self.eval_steps >= 1),
                         ("eval_timing", self.eval_timing >= 1)):
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} out of range")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device={self.device!r} must be auto, cpu or cuda")

    def data_dir(self, base: Path | str | None = None) -> Path:
        """Where this profile's corpus is: ``data_root`` (relative to ``base``, by default the
        :func:`project_root`) / profile."""
        return Path(project_root() if base is None else base) / self.data_root / self.profile

    def artifacts_dir(self, stage: str, base: Path | str | None = None) -> Path:
        return Path(project_root() if base is None else base) / self.artifacts_root / self.profile / stage

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def images_dir(self, base: Path | str | None = None) -> Path:
        """The decoded-image cache that chapters 5-8 share (:func:`hzlib.pairs.corpus_images`)."""
        return self.artifacts_dir("images", base)


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The study's folder: the nearest of ``start`` (default: the working directory) and its parents
    that holds ``_toc.yml`` and ``notebooks/``; ``start`` itself when none does. A notebook opened in
    Jupyter runs in ``notebooks/``, papermill and ``hz`` in the study's folder: both find the same
    data and artefacts through it."""
    start = Path(Path.cwd() if start is None else start).resolve()
    for d in (start, *start.parents):
        if (d / "_toc.yml").is_file() and (d / "notebooks").is_dir():
            return d
    return start


def load_profile(name_or_path: str | os.PathLike, profile_dir: Path = PROFILE_DIR) -> Profile:
    """A profile by name (``smoke``) or path (``profiles/smoke.yml``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = profile_dir / f"{name_or_path}.yml"
    if not path.exists():
        names = sorted(p.stem for p in profile_dir.glob("*.yml"))
        raise FileNotFoundError(f"profile {name_or_path!r} not found at {path}; available: {names}")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    try:
        return Profile.from_dict(params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def params_hash(params: dict) -> str:
    """A short stable hash of resolved parameters (to know whether a stage's outputs are current)."""
    blob = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed every random source from one place; returns a numpy Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # torch is optional for the corpus stages
        pass
    return np.random.default_rng(seed)


PACKAGES = ("numpy", "scipy", "pandas", "scikit-image", "scikit-learn", "open3d", "pycolmap", "manifold3d",
            "fonttools", "torch", "transformers", "fasttext", "papermill", "jupyter-book", "hzlib")


def hardware(device) -> dict:
    """The device a result was computed on: torch threads, CPU count, and the GPU's name, memory and
    CUDA version on a GPU (``device``: a ``torch.device``)."""
    import torch

    out = {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        out.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   gpu_count=torch.cuda.device_count())
    return out


# What decides a result's last digits besides the code and the seed: the thread count of each pool
# (OpenMP reductions, BLAS) and the hash seed (the order of a set of strings). ``hz reproduce`` sets
# them for every chapter's kernel (:func:`hzlib.reproduce.chapter_environment`).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def thread_pools() -> list[dict]:
    """Each thread pool loaded in this process: its library (openblas, openmp, mkl; torch when torch
    is imported), threads, and the kernel architecture it dispatched to (e.g. OpenBLAS ``Haswell``,
    torch ``AVX2``): two machines whose pools differ may differ in the last digits."""
    pools = [{k: p.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
             for p in threadpool_info()]
    torch = sys.modules.get("torch")
    if torch is not None:
        pools.append({"internal_api": "torch", "num_threads": torch.get_num_threads(),
                      "architecture": torch.backends.cpu.get_cpu_capability(), "version": torch.__version__})
    return pools


def environment() -> dict:
    """Package versions and hardware, recorded beside every result: the CPU model, the thread pools
    and the variables that set them (:data:`THREAD_VARS`, ``None`` where unset)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "threads": {v: os.environ.get(v) for v in THREAD_VARS},
        "thread_pools": thread_pools(),
        "packages": versions,
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None):
    """Open ``path`` for writing text so that readers see the old file or the whole new one, never a
    part: write a temp file in the same folder, fsync, then rename over ``path`` (mode kept, else 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp would give 0600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def map_files(fn, jobs, *, workers: int = 1, desc: str | None = None, progress: bool = True) -> list:
    """``[fn(j) for j in jobs]``, in ``workers`` processes when more than one (``fn`` must be a
    module-level function), with a progress bar; the order of the results is the order of ``jobs``."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    jobs = list(jobs)
    bar = dict(total=len(jobs), desc=desc, unit="img", disable=not progress or desc is None, leave=False)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as ex:
            return list(tqdm(ex.map(fn, jobs, chunksize=16), **bar))
    return [fn(j) for j in tqdm(jobs, **bar)]
