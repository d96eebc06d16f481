"""Profiles (``profiles/<name>.yml``), the resolved run configuration, seeding and provenance.

A profile is a flat file of literal parameters; every notebook's ``parameters`` cell holds the same
keys, so ``papermill -f profiles/<name>.yml`` works on any chapter.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
import numbers
import os
import platform
import random
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import get_type_hints

import numpy as np
import yaml
from threadpoolctl import threadpool_info
from tqdm.auto import tqdm

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
PROFILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # the profile names folders (data/<profile>, artifacts/<profile>)
INJECTED_HEADER = "# Parameters"  # the first line of the cell that papermill injects (papermill.translators)


class ProfileError(ValueError):
    """A profile or a notebook's parameters are not a valid run configuration; the message names the key."""


@dataclass(frozen=True)
class Profile:
    profile: str = "default"
    seed: int = 20240601
    data_root: str = "data"
    artifacts_root: str = "artifacts"
    # A corpus folder (relative to the study's folder, or absolute) that the chapters read as it is, e.g. one
    # imported with `hz corpus import`; "" = the corpus generated from this profile into data_root/profile.
    corpus: str = ""
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
    clip_steps: int = 450
    clip_batch: int = 64
    clip_lr: float = 2e-3
    clip_warmup: int = 30
    clip_shift: int = 4
    clip_negatives: str = "other_class"  # Eq 6's negatives: the paper's other-class pairs, or the whole batch
    sweep_steps: int = 100
    device: str = "cpu"
    # Chapter 8 (evaluation): the trained models (hzlib.baselines.neural.MODELS), the folds of the
    # leakage-free protocol, one training budget (optimiser steps) for all, and the images timed per batch size.
    eval_models: tuple[str, ...] = ("clip", "dan", "item", "vilbert", "m3p", "supervised")
    eval_folds: int = 2
    eval_steps: int = 150
    eval_timing: int = 64

    def __post_init__(self) -> None:
        # Every construction (a profile file, a notebook's parameters, dataclasses.replace) is typed and
        # checked here, so that a bad value stops before any work with its key named.
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _typed(f.name, getattr(self, f.name), _FIELD_TYPES[f.name]))
        self.check()

    @classmethod
    def from_dict(cls, params: dict, *, check_device: bool = True) -> "Profile":
        """The profile of ``params`` (every key optional, defaults from the dataclass). Raises
        :class:`ProfileError` naming the key: unknown, of a wrong type or out of range; with
        ``check_device``, also a ``device`` this machine lacks (:meth:`check_device`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ProfileError(f"unknown profile parameter(s) {unknown}; known: {sorted(known)}")
        try:
            prof = cls(**params)
        except TypeError as e:  # a dataclass refuses nothing else, but keep the message a ProfileError
            raise ProfileError(str(e)) from None
        if check_device:
            prof.check_device()
        return prof

    @classmethod
    def from_namespace(cls, namespace: dict, *, check_device: bool = True) -> "Profile":
        """The profile whose fields are the same-named entries of ``namespace`` (a notebook's
        parameters, e.g. ``globals()``); other entries are ignored, except names that papermill
        injected (``-p``, ``-f``) which must all be profile keys: papermill only warns about them."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ProfileError(f"parameters missing: {missing}")
        unknown = sorted(injected_names(namespace) - set(names))
        if unknown:
            raise ProfileError(f"unknown parameter(s) {unknown} given to papermill; known: {sorted(names)}")
        return cls.from_dict({n: namespace[n] for n in names}, check_device=check_device)

    def check(self) -> None:
        """Ranges and choices of every key (types are checked in ``__post_init__``), in the order of the
        fields: names and folders, the corpus, chapter 5 (CLIP), chapter 8 (evaluation) and the device."""
        self._check_names()
        self._check_corpus()
        self._check_clip()
        self._check_eval()

    def _check_names(self) -> None:
        if not self.profile or not PROFILE_NAME.fullmatch(self.profile):
            raise ProfileError(f"profile={self.profile!r} must be a folder name of [A-Za-z0-9_.-]")
        for name in ("data_root", "artifacts_root"):
            if not getattr(self, name).strip():
                raise ProfileError(f"{name}={getattr(self, name)!r} must name a folder")
        if self.seed < 0:
            raise ProfileError(f"seed={self.seed} must be >= 0")

    def _check_corpus(self) -> None:
        if not 0 <= self.overlap <= 1:
            raise ProfileError(f"overlap={self.overlap} must lie in [0, 1]")
        if not 0 <= self.cue_prob <= 1:
            raise ProfileError(f"cue_prob={self.cue_prob} must lie in [0, 1]")
        if self.corpus_scale <= 0:
            raise ProfileError(f"corpus_scale={self.corpus_scale} must be positive")
        if self.poetry_chars < 0:
            raise ProfileError(f"poetry_chars={self.poetry_chars} must be >= 0 (0 = all)")
        if self.fasttext_epochs < 1:
            raise ProfileError(f"fasttext_epochs={self.fasttext_epochs} must be >= 1")
        if self.image_size < 16:
            raise ProfileError(f"image_size={self.image_size} too small (at least 16)")
        if self.norm_size < 8:
            raise ProfileError(f"norm_size={self.norm_size} too small (at least 8)")
        _at_least(self, orbit_views=1, orbit_width=16, orbit_height=16, workers=1)

    def _check_clip(self) -> None:
        geometries = sorted(p.stem for p in (PROFILE_DIR / "models").glob("*.yml"))
        if self.clip_geometry not in geometries:
            raise ProfileError(f"clip_geometry={self.clip_geometry!r} is not one of {geometries} (profiles/models/)")
        # here, not at the top: normalize loads scikit-image (slow), and it imports this module
        from .normalize import MODEL_INPUTS

        if self.clip_input not in MODEL_INPUTS:
            raise ProfileError(f"clip_input={self.clip_input!r} must be one of {MODEL_INPUTS}")
        _at_least(self, clip_steps=1, clip_batch=2, clip_warmup=0, clip_shift=0, sweep_steps=1)
        if self.clip_negatives not in ("batch", "other_class"):
            raise ProfileError(f"clip_negatives={self.clip_negatives!r} must be batch or other_class")
        if self.clip_lr <= 0:
            raise ProfileError(f"clip_lr={self.clip_lr!r} out of range: must be positive")

    def _check_eval(self) -> None:
        if not self.eval_models or len(set(self.eval_models)) != len(self.eval_models):
            raise ProfileError(f"eval_models={list(self.eval_models)} must be distinct model keys, at least one")
        _at_least(self, eval_folds=2, eval_steps=1, eval_timing=1)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ProfileError(f"device={self.device!r} must be auto, cpu or cuda")

    def check_device(self) -> None:
        """``device: cuda`` needs a CUDA device here (``auto`` falls back to the CPU)."""
        if self.device != "cuda":
            return
        try:
            import torch  # only for this question: the corpus stages run without torch

            available = torch.cuda.is_available()
        except ImportError:
            available = False
        if not available:
            raise ProfileError("device='cuda' but this machine has no CUDA device (torch.cuda.is_available() "
                               "is False); use device: cpu, or auto to take a GPU when there is one")

    def data_dir(self, base: Path | str | None = None) -> Path:
        """Where this profile's corpus is: the folder ``corpus`` names, else ``data_root`` / profile (each
        relative to ``base``, by default the :func:`project_root`)."""
        base = Path(project_root() if base is None else base)
        if self.corpus:
            return base / Path(self.corpus).expanduser()  # an absolute corpus path replaces base
        return base / self.data_root / self.profile

    def artifacts_dir(self, stage: str, base: Path | str | None = None) -> Path:
        return Path(project_root() if base is None else base) / self.artifacts_root / self.profile / stage

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def images_dir(self, base: Path | str | None = None) -> Path:
        """The decoded-image cache that chapters 5-8 share (:func:`hzlib.pairs.corpus_images`)."""
        return self.artifacts_dir("images", base)


_FIELD_TYPES = get_type_hints(Profile)


def _at_least(profile: Profile, **lows: int) -> None:
    for name, low in lows.items():
        if getattr(profile, name) < low:
            raise ProfileError(f"{name}={getattr(profile, name)!r} out of range: must be at least {low}")


def _typed(name: str, value, kind):
    """``value`` as the type ``kind`` of the key ``name`` (a list becomes a tuple, an int a float where a
    float is due, so that ``corpus_scale: 1`` and ``1.0`` are one corpus); else :class:`ProfileError`."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ProfileError(f"{name}={value!r} must be a finite number")
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    if kind == tuple[str, ...] and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    want = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, "a list of strings")
    raise ProfileError(f"{name}={value!r} must be {want}, not {type(value).__name__}")


def injected_names(namespace: dict) -> set[str]:
    """The names papermill assigned in a kernel: its injected cell starts with the line ``# Parameters``
    (the notebooks' own parameters cell starts otherwise); IPython keeps every cell run in ``In``."""
    names = set()
    for source in namespace.get("In") or ():
        if not isinstance(source, str) or source.split("\n", 1)[0].strip() != INJECTED_HEADER:
            continue
        try:
            body = ast.parse(source).body
        except SyntaxError:
            continue
        names |= {t.id for s in body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    return names


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


def load_profile(name_or_path: str | os.PathLike, profile_dir: Path = PROFILE_DIR, *,
                 check_device: bool = True) -> Profile:
    """A profile by name (``smoke``) or path (``profiles/smoke.yml``). Raises :class:`ProfileError`
    naming the file and the key when a key is unknown, of a wrong type or out of range, or (with
    ``check_device``) when it asks for a device this machine lacks."""
    path = Path(name_or_path)
    if not path.suffix:
        path = profile_dir / f"{name_or_path}.yml"
    if not path.exists():
        names = sorted(p.stem for p in profile_dir.glob("*.yml"))
        raise FileNotFoundError(f"profile {name_or_path!r} not found at {path}; available: {names}")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ProfileError(f"{path}: a profile is a mapping of keys to values, not {type(params).__name__}")
    try:
        return Profile.from_dict(params, check_device=check_device)
    except ProfileError as e:
        raise ProfileError(f"{path}: {e}") from None


def params_hash(params: dict) -> str:
    """A short stable hash of resolved parameters (to know whether a stage's outputs are current)."""
    blob = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed every random source from one place; returns a numpy Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch  # lazy: the corpus stages run without torch

        torch.manual_seed(seed)
    except ImportError:  # torch is optional for the corpus stages
        pass
    return np.random.default_rng(seed)


PACKAGES = ("numpy", "scipy", "pandas", "scikit-image", "scikit-learn", "open3d", "pycolmap", "manifold3d",
            "fonttools", "torch", "transformers", "fasttext", "papermill", "jupyter-book", "hzlib")


def hardware(device) -> dict:
    """The device a result was computed on: torch threads, CPU count, and the GPU's name, memory and
    CUDA version on a GPU (``device``: a ``torch.device``)."""
    import torch  # lazy: the corpus stages run without torch

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


def map_files(fn, jobs, *, workers: int = 1, desc: str | None = None, progress: bool = True,
              unit: str = "img", chunksize: int = 16, start: str | None = None) -> list:
    """``[fn(j) for j in jobs]``, in ``workers`` processes when more than one (``fn`` must be a
    module-level function), with a progress bar; the order of the results is the order of ``jobs``.
    ``chunksize``: jobs handed to a process at a time (1 for few long jobs); ``start``: the processes'
    start method ("spawn" where the parent holds native thread pools that a fork would copy; None: the
    platform's default)."""
    jobs = list(jobs)
    bar = dict(total=len(jobs), desc=desc, unit=unit, disable=not progress or desc is None, leave=False)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context(start) if start else None) as ex:
            return list(tqdm(ex.map(fn, jobs, chunksize=chunksize), **bar))
    return [fn(j) for j in tqdm(jobs, **bar)]
