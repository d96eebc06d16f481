"""The one training loop (section 4 of the paper and chapter 8's comparators): :class:`Trainer` trains any
model through its own objective on :class:`hzlib.pairs.PairData`.

Training (:class:`Trainer`, :func:`train`): AdamW (fused on CUDA, foreach on the CPU), linear warm-up
then cosine decay, gradient clipping, bf16 autocast on CUDA, optional ``torch.compile``, DDP under
``torchrun`` (features gathered across ranks, so the loss is the one of the global batch).
The data order is a function of (seed, epoch, step) only: each epoch's permutation is drawn from
``numpy.random.default_rng([seed, epoch])``, and step ``j`` of an epoch takes its ``j``-th slice (each
rank a contiguous part of it). A checkpoint therefore needs only the step besides the model,
optimizer, scheduler and RNG states, and a resumed run repeats the uninterrupted one exactly (on the
CPU; CUDA kernels are not all deterministic). The loss is read back from the device only every
``log_every`` steps (one sync), when the per-step values are written to ``metrics.jsonl``.

Files of a run directory: ``run.json`` (resolved config, data fingerprint, model size, environment,
hardware; updated at the end with the timing), ``metrics.jsonl`` (one line per step),
``checkpoints/step_XXXXXXXX.pt`` (written atomically; the last ``keep_checkpoints`` kept).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .config import atomic_open, atomic_write_json, environment, hardware
from .corpus.manifest import read_manifest
from .model import NEGATIVES, build_model, build_vocabulary, load_geometry, save_clip
from .pairs import PairData, load_pairs, to_model_input

__all__ = ["TrainConfig", "TrainResult", "Trainer", "train", "steps_per_epoch", "batch_indices", "random_shift",
           "trim_padding", "read_metrics", "latest_checkpoint", "run_summary"]


# --------------------------------------------------------------------------------------------------
# Configuration and data order
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    lr: float = 5e-4
    batch_size: int = 64            # global batch: split over DDP ranks, one contrastive matrix
    epochs: int = 10
    max_steps: int | None = None    # if set, overrides epochs
    warmup_steps: int = 50          # linear warm-up, then cosine decay to 0 (clamped to the run length)
    weight_decay: float = 0.05      # on matrices only (not biases, norms, class token, logit_scale)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    tau_init: float = 0.07          # temperature at step 0: logit_scale = log(1/tau_init)
    learn_tau: bool = True
    max_logit_scale: float = math.log(100)  # CLIP clamps 1/tau at 100
    negatives: str = "batch"        # Eq 6's negatives: every other pair of the batch, or "other_class" only
    grad_clip: float | None = 1.0   # max global gradient norm; None = no clipping
    shift: int = 0                  # augmentation: each training image moved by up to this many pixels
    seed: int = 0
    device: str = "auto"            # auto (cuda if available) | cpu | cuda | cuda:N
    precision: str = "auto"         # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False           # torch.compile the training step's forward
    checkpoint_every: int = 0       # steps; 0 = only at the end
    keep_checkpoints: int = 2
    log_every: int = 10             # steps between device->host reads of the loss (one sync each)
    progress: bool = True

    # Fields that do not change the numbers a run produces (a run may resume with other values).
    RUNTIME_ONLY = ("device", "compile", "checkpoint_every", "keep_checkpoints", "log_every", "progress")

    def __post_init__(self):
        checks = [("lr", self.lr > 0), ("batch_size", self.batch_size >= 2), ("epochs", self.epochs >= 1),
                  ("max_steps", self.max_steps is None or self.max_steps >= 1),
                  ("warmup_steps", self.warmup_steps >= 0), ("weight_decay", self.weight_decay >= 0),
                  ("tau_init", 0 < self.tau_init), ("grad_clip", self.grad_clip is None or self.grad_clip > 0),
                  ("precision", self.precision in ("auto", "fp32", "bf16")),
                  ("device", self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")),
                  ("checkpoint_every", self.checkpoint_every >= 0), ("keep_checkpoints", self.keep_checkpoints >= 1),
                  ("shift", self.shift >= 0), ("negatives", self.negatives in NEGATIVES),
                  ("log_every", self.log_every >= 1)]
        bad = [name for name, ok in checks if not ok]
        if bad:
            raise ValueError("TrainConfig: invalid " + ", ".join(f"{b}={getattr(self, b)!r}" for b in bad))

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}")
        return dataclasses.replace(self, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})

    def result_params(self) -> dict:
        return {k: v for k, v in self.as_dict().items() if k not in self.RUNTIME_ONLY}


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped: every step is one B x B matrix)."""
    return n // batch_size


def batch_indices(n: int, batch_size: int, seed: int, step: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """Pair indices of global step ``step`` for ``rank``: epoch e = step // steps_per_epoch uses the
    permutation ``default_rng([seed, e]).permutation(n)``; the step takes its next ``batch_size``
    entries and the rank its contiguous ``batch_size / world`` of them."""
    spe = steps_per_epoch(n, batch_size)
    e, j = divmod(step, spe)
    perm = np.random.default_rng([seed, e]).permutation(n)
    b = perm[j * batch_size:(j + 1) * batch_size]
    per = batch_size // world
    return b[rank * per:(rank + 1) * per]


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

class _Step(nn.Module):
    """uint8 images, token ids, class ids and positions -> the model's training objective
    (``model.loss``: Eq 6 for CLIP, each comparator's own loss). One module so that DDP and
    torch.compile see the whole step; the model stays intact as ``.model``."""

    def __init__(self, model, autocast_dtype, trim: bool, shift: int = 0):
        super().__init__()
        self.model, self.dtype, self.trim, self.shift = model, autocast_dtype, trim, shift

    def forward(self, images_u8, ids, targets, index):
        x = to_model_input(images_u8)
        if self.shift:
            x = random_shift(x, self.shift)
        if self.trim:  # exact: every text tower masks or never reaches the padding
            ids = trim_padding(ids)
        with torch.autocast(x.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            return self.model.loss(x, ids, targets, index).float()


def _param_groups(model: nn.Module, weight_decay: float, lr: float, exclude=None) -> list[dict]:
    """AdamW's parameter groups: matrices decayed, vectors (biases, norms) not; and, where the model
    names some parameters in ``param_lr_scales()`` ({name prefix: multiple of the rate}), those at
    their own rate (the scheduler scales every group's rate alike). ``exclude``: a parameter left out."""
    scales = dict(model.param_lr_scales()) if hasattr(model, "param_lr_scales") else {}
    named = [(n, p) for n, p in model.named_parameters() if p is not exclude]
    unused = [k for k in scales if not any(n.startswith(k) for n, _ in named)]
    if unused:
        raise ValueError(f"{type(model).__name__}.param_lr_scales(): no parameter is named {unused}")
    groups: dict[tuple[bool, float], list] = {(True, 1.0): [], (False, 1.0): []}  # the plain groups first
    for n, p in named:
        scale = next((v for k, v in scales.items() if n.startswith(k)), 1.0)
        groups.setdefault((p.ndim >= 2, float(scale)), []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0, **({"lr": lr * scale} if scale != 1 else {})}
            for (decay, scale), ps in groups.items() if ps or scale == 1.0]


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image moved by its own random offset of up to ``pad`` pixels in x and y (edges
    replicated), drawn from torch's global RNG: the one augmentation of the training loop."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = (torch.randint(0, 2 * pad + 1, (b, 1), device=x.device) for _ in range(2))
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channels = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Drop the columns after a batch's longest text: exact for text towers that mask padding or pool
    before it (all of ours), and it shortens the text sequences of most batches by a third or more."""
    used = (tokens != 0).any(0).nonzero()  # 0 = <pad>
    return tokens[:, :int(used.max()) + 1] if len(used) else tokens[:, :2]


@dataclass
class TrainResult:
    model: nn.Module
    steps: int                     # global steps done (in total, across resumes)
    total_steps: int
    final_loss: float | None       # loss of the last step (None if no step was ever run)
    losses: list[float]            # per step, from this call's start step (a resumed call: its part)
    seconds: float                 # wall time of the steps run in this call
    images_per_second: float | None
    run_dir: Path | None


def _dist_info() -> tuple[int, int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _resolve_device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={spec!r} but CUDA is not available")
        return torch.device(spec if ":" in spec else f"cuda:{local_rank}")
    return torch.device("cpu")


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    ck = sorted((Path(run_dir) / "checkpoints").glob("step_*.pt"))
    return ck[-1] if ck else None


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


class Trainer:
    """The one training loop: trains any model whose ``loss(images, tokens, targets, index)`` is its
    objective (CLIP's :meth:`hzlib.model.ClipModel.loss`, each comparator's
    :meth:`hzlib.baselines.neural.PairModel.loss`) on :class:`PairData`, as open_clip's
    ``train_one_epoch`` calls the task's loss. A model with a ``logit_scale`` gets CLIP's temperature
    handling (initialised at ``tau_init``, learnt or frozen, clamped at ``max_logit_scale``), and one
    with ``negatives`` the configuration's choice of them.

    ``run_dir=None`` writes nothing (benchmarks); otherwise the run resumes from the latest
    checkpoint there if ``resume`` and its result-relevant config and data fingerprint match.
    Under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised here (NCCL on CUDA, gloo on
    the CPU); only rank 0 writes files.
    """

    def __init__(self, model, data: PairData, cfg: TrainConfig, run_dir: str | os.PathLike | None = None, *,
                 resume: bool = True):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            use_cuda = cfg.device != "cpu" and torch.cuda.is_available()
            dist.init_process_group("nccl" if use_cuda else "gloo")
        self.rank, self.world, local_rank = _dist_info()
        self.cfg, self.data = cfg, data
        self.device = _resolve_device(cfg.device, local_rank)
        if cfg.batch_size % self.world:
            raise ValueError(f"batch_size={cfg.batch_size} is not divisible by the {self.world} ranks")
        self.spe = steps_per_epoch(len(data), cfg.batch_size)
        if self.spe == 0:
            raise ValueError(f"batch_size={cfg.batch_size} exceeds the {len(data)} training pairs")
        self.total = cfg.max_steps or cfg.epochs * self.spe
        self.run_dir = Path(run_dir) if run_dir is not None else None
        use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device.type == "cuda")
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None

        self.model = model.to(self.device).train()
        self.images = data.images.to(self.device)  # the whole uint8 cache lives on the device
        self.tokens = data.tokens.to(self.device)
        self.targets = (data.targets if data.targets is not None
                        else torch.zeros(len(data), dtype=torch.int64)).to(self.device)
        self.scale = getattr(model, "logit_scale", None)
        if hasattr(model, "negatives"):  # CLIP's Eq 6: which pairs are its negatives (other models keep their own)
            model.negatives = cfg.negatives

        groups = _param_groups(model, cfg.weight_decay, cfg.lr, exclude=self.scale)
        if self.scale is not None:
            groups.append({"params": [self.scale], "weight_decay": 0.0})
        fused = self.device.type == "cuda"
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                     fused=fused or None, foreach=None if fused else True)
        self.sched = get_cosine_schedule_with_warmup(self.opt, min(cfg.warmup_steps, self.total), self.total)
        self.step = 0
        self.last_loss: float | None = None
        self.fingerprint = data.fingerprint()

        ckpt = latest_checkpoint(self.run_dir) if (self.run_dir is not None and resume) else None
        if ckpt is not None:
            self._load(ckpt)  # restores the RNG states too
        else:
            # dropout and any sampling inside a loss (masks, negatives) follow the run's seed
            torch.manual_seed(cfg.seed)
            if self.scale is not None:
                with torch.no_grad():
                    self.scale.fill_(math.log(1 / cfg.tau_init))
                self.scale.requires_grad_(cfg.learn_tau)

        step_module = _Step(model, self.autocast_dtype, trim=not cfg.compile, shift=cfg.shift)
        if self.world > 1:
            step_module = DDP(step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.step_fn = torch.compile(step_module) if cfg.compile else step_module
        if self.run_dir is not None and self.rank == 0:
            self._write_run_json()

    # -- files -------------------------------------------------------------------------------------
    def _run_record(self) -> dict:
        return {"config": self.cfg.as_dict(), "result_params": self.cfg.result_params(), "world_size": self.world,
                "total_steps": self.total, "steps_per_epoch": self.spe, "pairs": len(self.data),
                "data_fingerprint": self.fingerprint, "precision": "bf16 autocast" if self.autocast_dtype else "fp32",
                "model": {"class": type(self.model).__name__,
                          "parameters": sum(p.numel() for p in self.model.parameters()),
                          "geometry": _geometry_of(self.model)},
                "environment": environment(), "hardware": hardware(self.device)}

    def _write_run_json(self, **extra) -> None:
        path = self.run_dir / "run.json"
        rec = self._run_record()
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            rec["history"] = old.get("history", []) + ([old["summary"]] if "summary" in old else [])
        rec.update(extra)
        atomic_write_json(path, rec)

    def _save(self) -> None:
        if self.rank == 0:
            d = self.run_dir / "checkpoints"
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"step_{self.step:08d}.pt"
            blob = {"step": self.step, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                    "scheduler": self.sched.state_dict(), "rng": _rng_state(), "last_loss": self.last_loss,
                    "result_params": self.cfg.result_params(), "data_fingerprint": self.fingerprint,
                    "world_size": self.world}
            tmp = d / f".{path.name}.tmp"
            torch.save(blob, tmp)
            os.replace(tmp, path)
            for old in sorted(d.glob("step_*.pt"))[:-self.cfg.keep_checkpoints]:
                old.unlink()
        self._barrier()

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def _load(self, path: Path) -> None:
        blob = torch.load(path, map_location=self.device, weights_only=False)
        mismatch = {k: (v, blob["result_params"].get(k)) for k, v in self.cfg.result_params().items()
                    if json.dumps(v) != json.dumps(blob["result_params"].get(k))}
        if mismatch:
            raise ValueError(f"cannot resume from {path}: its config differs in {mismatch} (now, then); "
                             f"use another run directory or resume=False")
        if blob["data_fingerprint"] != self.fingerprint:
            raise ValueError(f"cannot resume from {path}: it was trained on other data "
                             f"(fingerprint {blob['data_fingerprint']} != {self.fingerprint})")
        self.model.load_state_dict(blob["model"])
        if self.scale is not None:
            self.scale.requires_grad_(self.cfg.learn_tau)
        self.opt.load_state_dict(blob["optimizer"])
        self.sched.load_state_dict(blob["scheduler"])
        _set_rng_state(blob["rng"])
        self.step, self.last_loss = blob["step"], blob["last_loss"]
        if self.rank == 0:  # drop the log lines of steps after the checkpoint (they will be redone)
            kept = [m for m in read_metrics(self.run_dir) if m["step"] <= self.step]
            with atomic_open(self.run_dir / "metrics.jsonl") as f:
                f.writelines(json.dumps(m) + "\n" for m in kept)

    # -- loop --------------------------------------------------------------------------------------
    def _batch(self, step: int, perm_cache: dict):
        e, j = divmod(step, self.spe)
        if e not in perm_cache:
            perm_cache.clear()
            perm = np.random.default_rng([self.cfg.seed, e]).permutation(len(self.data))
            perm_cache[e] = torch.from_numpy(perm).to(self.device)
        per = self.cfg.batch_size // self.world
        start = j * self.cfg.batch_size + self.rank * per
        idx = perm_cache[e][start:start + per]
        return self.images[idx], self.tokens[idx], self.targets[idx], idx

    def _train_step(self, params: list, perms: dict) -> tuple[float, torch.Tensor, torch.Tensor]:
        """One optimiser step on the next batch: its learning rate, loss and gradient norm (tensors, not
        read back: the loss is checked for a finite value only every ``log_every`` steps)."""
        cfg = self.cfg
        lr = self.sched.get_last_lr()[0]
        loss = self.step_fn(*self._batch(self.step, perms))
        if not self.step % cfg.log_every and not torch.isfinite(loss):
            raise FloatingPointError(f"{type(self.model).__name__}: loss {loss.item()} at step {self.step}")
        loss.backward()
        gn = (torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True) if cfg.grad_clip
              else torch.zeros((), device=self.device))
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        if self.scale is not None:
            with torch.no_grad():
                self.scale.clamp_(0, cfg.max_logit_scale)
        self.step += 1
        return lr, loss, gn

    def _checkpoint_due(self):
        """Whether the step just done is saved: with a run folder, the run's last step and every
        ``checkpoint_every`` steps."""
        cfg = self.cfg
        return self.run_dir is not None and (
            self.step == self.total or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0))

    def _flush(self, buf: list[tuple], losses: list[float], log, bar) -> None:
        """Read the buffered steps' values in one device sync: append their losses to ``losses``, write
        them to the metrics log (when there is one) and show the last on the progress bar."""
        if not buf:
            return
        vals = torch.stack([torch.stack([b[2], b[3], b[4]]) for b in buf]).float().cpu().tolist()  # one sync
        for (s, lr, *_), (loss, scale, gn) in zip(buf, vals):
            losses.append(loss)
            if log:
                rec = {"step": s, "epoch": s // self.spe, "loss": loss, "lr": lr, "grad_norm": gn}
                if self.scale is not None:
                    rec["tau"] = math.exp(-scale)
                log.write(json.dumps(rec) + "\n")
        if log:
            log.flush()
        self.last_loss = losses[-1]
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        buf.clear()

    def run(self, steps: int | None = None, on_step: Callable[[int], None] | None = None) -> TrainResult:
        """Train until the run's last step (or ``steps`` more). ``on_step(step)`` is called after each
        step (after any checkpoint of that step); an exception there stops the run as a crash would."""
        cfg = self.cfg
        end = self.total if steps is None else min(self.total, self.step + steps)
        start = self.step
        params = [p for p in self.model.parameters() if p.requires_grad]
        buf: list[tuple] = []  # (step, lr, loss tensor, logit_scale tensor, grad-norm tensor) not yet read
        no_scale = torch.full((), math.log(1 / cfg.tau_init), device=self.device)
        losses: list[float] = []
        perms: dict = {}
        log = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") if (self.run_dir and self.rank == 0) else None
        bar = tqdm(total=self.total, initial=start, desc="CLIP training", unit="step", leave=False,
                   disable=not cfg.progress or self.rank != 0)

        t0 = time.perf_counter()
        try:
            while self.step < end:
                lr, loss, gn = self._train_step(params, perms)
                scale = self.scale.detach().clone() if self.scale is not None else no_scale
                buf.append((self.step, lr, loss.detach(), scale, gn.detach()))
                bar.update(1)
                ckpt = self._checkpoint_due()
                if len(buf) >= cfg.log_every or ckpt or self.step == end:
                    self._flush(buf, losses, log, bar)
                if ckpt:
                    self._save()
                if on_step is not None:
                    on_step(self.step)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        finally:
            bar.close()
            if log:
                log.close()
        seconds = time.perf_counter() - t0
        done = self.step - start
        ips = done * cfg.batch_size / seconds if done and seconds > 0 else None
        if self.run_dir is not None and self.rank == 0 and done:
            self._write_run_json(summary={"steps": self.step, "steps_this_call": done, "seconds": round(seconds, 3),
                                          "images_per_second": ips, "final_loss": self.last_loss})
        return TrainResult(self.model, self.step, self.total, self.last_loss, losses, seconds, ips, self.run_dir)


def _geometry_of(model) -> dict | None:
    g = getattr(model, "geometry", None) or getattr(getattr(model, "spec", None), "geometry", None)
    return g.as_dict() if g is not None else None


def run_summary(run_dir: str | os.PathLike) -> dict:
    """The timing record of the last call that trained in ``run_dir`` (steps, seconds, images per
    second, final loss), read from its ``run.json`` (a later call that only reloaded the finished run
    moves it to ``history``); ``{}`` if no step was ever run there."""
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        return {}
    rec = json.loads(p.read_text(encoding="utf-8"))
    return rec.get("summary") or (rec.get("history") or [{}])[-1]


def train(model, data: PairData, cfg: TrainConfig, run_dir: str | os.PathLike | None = None, *,
          resume: bool = True, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``model`` on ``data`` with ``cfg`` (resuming from ``run_dir`` when possible); see
    :class:`Trainer`. A run already complete in ``run_dir`` loads its final weights and returns."""
    return Trainer(model, data, cfg, run_dir, resume=resume).run(on_step=on_step)


# --------------------------------------------------------------------------------------------------
# Command line (one process, or several GPUs under torchrun)
# --------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    """``[torchrun --nproc_per_node N] python -m hzlib.train --corpus data/gpu --out artifacts/gpu/clip/run``

    Trains on the manifest rows whose ids are listed in ``--train-ids`` (one per line; default: all
    rows), with the vocabulary built from those rows' texts, and saves the model with
    :func:`hzlib.model.save_clip` into ``<out>/model`` (rank 0)."""
    ap = argparse.ArgumentParser(prog="python -m hzlib.train", description=main.__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="corpus folder holding manifest.csv")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, metrics, run.json, model/)")
    ap.add_argument("--train-ids", help="file of manifest ids to train on (default: every row)")
    ap.add_argument("--geometry", default="tiny")
    for name, typ in (("epochs", int), ("batch_size", int), ("lr", float), ("warmup_steps", int), ("seed", int),
                      ("checkpoint_every", int), ("max_steps", int)):
        ap.add_argument(f"--{name.replace('_', '-')}", type=typ, default=getattr(TrainConfig, name, None))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args(argv)

    corpus, out = Path(a.corpus), Path(a.out)
    df = read_manifest(corpus / "manifest.csv")
    if a.train_ids:
        ids = [s.strip() for s in Path(a.train_ids).read_text(encoding="utf-8").splitlines() if s.strip()]
        unknown = sorted(set(ids) - set(df["id"]))
        if unknown:
            raise SystemExit(f"{a.train_ids}: {len(unknown)} id(s) not in {corpus / 'manifest.csv'}, "
                             f"e.g. {unknown[:3]}")
        df = df[df["id"].isin(set(ids))].reset_index(drop=True)
    geometry = load_geometry(a.geometry)
    vocab = build_vocabulary(list(df["text"]))
    data = load_pairs(df, corpus, vocab, image_size=geometry.image_size, context_length=geometry.context_length,
                      cache_path=out / f"images_{geometry.image_size}.pt", progress=False)
    cfg = TrainConfig(lr=a.lr, batch_size=a.batch_size, epochs=a.epochs, max_steps=a.max_steps,
                      warmup_steps=a.warmup_steps, seed=a.seed, device=a.device, compile=a.compile,
                      checkpoint_every=a.checkpoint_every)
    r = train(build_model(geometry, len(vocab), seed=a.seed), data, cfg, out)
    if _dist_info()[0] == 0:
        save_clip(out / "model", r.model, vocab, geometry, {"train_ids": list(df["id"]), "final_loss": r.final_loss})
        print(json.dumps({"steps": r.steps, "final_loss": r.final_loss, "images_per_second": r.images_per_second}))


if __name__ == "__main__":
    main()
