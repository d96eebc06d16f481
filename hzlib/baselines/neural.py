"""The trained models of the evaluation chapter: one interface, one training loop, one budget.

CLIP and the paper's four comparators (and a supervised image tower) are each a :class:`PairModel`: a
``torch.nn.Module`` that defines its own training objective on a batch of image-text pairs
(:meth:`PairModel.loss`) and the image representation that the chapter classifies
(:meth:`PairModel.image_features`). Every model is

* built from one :class:`ModelSpec` (the CLIP geometry sets the image size, patch size, widths,
  depths and the context length, so that all models are of a comparable small scale),
* trained by the one training loop, :class:`hzlib.train.Trainer` (through :func:`fit`: AdamW, linear
  warm-up then cosine decay, gradient clipping, the same seeded batch order, the same number of
  optimiser steps), each with its own objective (:meth:`PairModel.loss`), and
* evaluated the same way: a logistic-regression head on :func:`features` of the image alone.

Why the image alone: the chapter estimates the cultural attribute *of a sculpture*, and the paper's
analysis time covers reading and encoding the image. The descriptions of our corpus name the class
cue in some items (a text-only classifier gets most items right, see the corpus card), so a model
that read the item's own text at analysis time would be measuring the text. ViLBERT is read where its
vision stream has seen no text, in training as here; M3P, whose single stream always read a text in
training, is read over the image and the empty description. Their cards say where and why.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from torch import nn

from ..config import atomic_write_json, params_hash
from ..evaluate import kfold_protocol, loo_protocol
from ..model import Geometry, Vocabulary, build_model, build_vocabulary, chance_level, init_token_embeddings
from ..pairs import PairData, model_image_u8, to_model_input
from ..train import TrainConfig, Trainer


@dataclass(frozen=True)
class ModelSpec:
    """What every model is built from. ``geometry``: the CLIP geometry (image size, patch size, tower
    widths/depths/heads, embedding size, context length) that sets the scale of all models;
    ``n_instances``: the number of training pairs (for instance-level objectives)."""

    geometry: Geometry
    vocab_size: int
    n_classes: int
    n_instances: int
    seed: int = 0
    class_shares: tuple[float, ...] = ()  # of the training labels: the chance level of label-aware losses

    def __post_init__(self):
        for name in ("vocab_size", "n_classes", "n_instances"):
            if getattr(self, name) < 2:
                raise ValueError(f"ModelSpec.{name} must be >= 2, got {getattr(self, name)}")


class PairModel(nn.Module):
    """Base of the trained models. Subclasses set the class attributes and implement :meth:`loss`
    and :meth:`image_features`; their docstring's first paragraph is the card's interpretation."""

    key = "base"          # registry key, used in file names and glue keys
    title = ""            # the name the paper uses
    follows = ""          # the publication the model follows
    supervised = False    # True when the objective uses the class labels
    lr_scale = 1.0        # its learning rate as a multiple of the shared one (the budget in steps is shared)

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec

    def loss(self, images: torch.Tensor, tokens: torch.Tensor, labels: torch.Tensor,
             index: torch.Tensor) -> torch.Tensor:
        """The training objective on a batch: ``images`` (B, 3, S, S) float model inputs, ``tokens``
        (B, L) int64 ids (0 = padding), ``labels`` (B,) class indices, ``index`` (B,) the pairs'
        positions in the training set (0..n_instances-1)."""
        raise NotImplementedError

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) image representation from the image alone (D = :attr:`feature_dim`)."""
        raise NotImplementedError

    def param_lr_scales(self) -> dict[str, float]:
        """{parameter-name prefix: multiple of the model's learning rate} for parameters that train at
        their own rate (the training loop gives them their own optimiser group); none by default."""
        return {}

    @property
    def feature_dim(self) -> int:
        """The size D of :meth:`image_features`: the embedding size unless a model reads its feature
        elsewhere."""
        return self.spec.geometry.embed_dim

    def layer_features(self, images) -> torch.Tensor:
        """The paper's multi-layer representation C (section 4) where a model has one: features of several
        layers, concatenated; by default its image feature."""
        return self.image_features(images)

    def token_embedding(self) -> nn.Embedding | None:
        """The token-embedding table that FastText initialises (None: the model reads no text)."""
        return None

    def chance_loss(self, batch_size: int) -> float | None:
        """The objective's value for a model that has learnt nothing (uniform predictions), at this
        batch size: ln B for in-batch contrastive losses, ln C for classifiers; None where the
        objective has no such level."""
        return None

    def card(self) -> dict:
        doc = (type(self).__doc__ or "").strip().split("\n\n")[0]
        return {"model": self.key, "title": self.title, "follows": self.follows,
                "interpretation": " ".join(doc.split()), "uses labels": self.supervised, "lr scale": self.lr_scale,
                "parameters": sum(p.numel() for p in self.parameters())}


def empty_text(batch: int, context_length: int, device=None) -> torch.Tensor:
    """(batch, L) ids of the empty description ``<bos><eos>`` followed by padding."""
    t = torch.full((batch, context_length), Vocabulary.pad_id, dtype=torch.int64, device=device)
    t[:, 0], t[:, 1] = Vocabulary.bos_id, Vocabulary.eos_id
    return t


class ClipPair(PairModel):
    """CLIP as in chapter 5 (:class:`hzlib.model.ClipModel`: the image and text towers of the
    profile's geometry), trained with the symmetric InfoNCE loss (Eq 5-6) over the batch with a
    learned temperature. Its image feature is the projected image embedding."""

    key = "clip"
    title = "CLIP"
    follows = "Radford et al. 2021 (ICML), as used by Luo 2024"

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.clip = build_model(spec.geometry, spec.vocab_size, seed=spec.seed)

    @property
    def logit_scale(self) -> nn.Parameter:  # the trainer's temperature handling finds it here
        return self.clip.logit_scale

    @property
    def negatives(self) -> str:  # the trainer sets the configuration's choice here
        return self.clip.negatives

    @property
    def supervised(self) -> bool:  # the paper's other-class negatives read the labels
        return self.clip.negatives == "other_class"

    @negatives.setter
    def negatives(self, value: str) -> None:
        self.clip.negatives = value

    def loss(self, images, tokens, labels, index):
        return self.clip.loss(images, tokens, labels)

    def image_features(self, images):
        return self.clip.encode_image(images)

    def layer_features(self, images):
        return self.clip.encode_image_layers(images)

    def token_embedding(self):
        return self.clip.text.token_embedding

    def chance_loss(self, batch_size: int) -> float:
        return chance_level(batch_size, self.negatives, self.spec.class_shares or None)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

MODELS: dict[str, type[PairModel]] = {"clip": ClipPair}


def register(cls: type[PairModel]) -> type[PairModel]:
    """Class decorator: add a model to :data:`MODELS` under its ``key``."""
    if cls.key in MODELS and MODELS[cls.key] is not cls:
        raise ValueError(f"model key {cls.key!r} is already registered by {MODELS[cls.key].__name__}")
    MODELS[cls.key] = cls
    return cls


def make_model(key: str, spec: ModelSpec) -> PairModel:
    """A freshly initialised model ``key`` of :data:`MODELS`, its weights drawn from ``spec.seed``
    (the global RNG is left as it was)."""
    if key not in MODELS:
        raise KeyError(f"unknown model {key!r}; known: {sorted(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return MODELS[key](spec)


# --------------------------------------------------------------------------------------------------
# Training and features
# --------------------------------------------------------------------------------------------------

@dataclass
class FitResult:
    steps: int
    seconds: float
    images_per_second: float
    losses: list = field(default_factory=list)      # every step's loss
    epoch_loss: list = field(default_factory=list)  # the mean loss of each (possibly partial) epoch
    chance: float | None = None                     # the objective's chance level (PairModel.chance_loss)

    def as_dict(self) -> dict:
        return asdict(self)


def fit(model: PairModel, data: PairData, label_ids: Sequence[int], cfg: TrainConfig, *,
        progress: bool = True, desc: str | None = None) -> FitResult:
    """Train ``model`` in place on all pairs of ``data`` (``label_ids``: their class indices) with the
    one training loop (:class:`hzlib.train.Trainer`, nothing written to disk)."""
    labels = torch.as_tensor(np.asarray(label_ids, dtype=np.int64))
    if len(labels) != len(data):
        raise ValueError(f"label_ids has {len(labels)} entries for {len(data)} pairs")
    pairs = PairData(data.images, data.tokens, targets=labels)
    trainer = Trainer(model, pairs, cfg.replace(lr=cfg.lr * model.lr_scale, progress=progress,
                                                log_every=max(cfg.log_every, 10)))
    r = trainer.run()
    epochs = np.arange(len(r.losses)) // trainer.spe
    epoch_loss = [float(np.mean(np.asarray(r.losses)[epochs == e])) for e in np.unique(epochs)]
    model.eval()
    return FitResult(steps=r.steps, seconds=r.seconds, images_per_second=r.images_per_second or 0.0,
                     losses=[float(v) for v in r.losses], epoch_loss=epoch_loss,
                     chance=model.chance_loss(cfg.batch_size))


@torch.no_grad()
def features(model: PairModel, images_u8: torch.Tensor, *, batch_size: int = 256,
             device: str = "cpu", layers: bool = False) -> np.ndarray:
    """(n, D) float32 image features of a uint8 image cache, in eval mode, in batches; with ``layers``
    the model's multi-layer representation C (:meth:`PairModel.layer_features`)."""
    model.to(device).eval()
    read = model.layer_features if layers else model.image_features
    out = [read(to_model_input(images_u8[i:i + batch_size].to(device))).float().cpu()
           for i in range(0, len(images_u8), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.feature_dim), np.float32)


EMBED_VERSION = 1  # bump when what train_and_embed computes changes, so cached results are redone


def _code_digest(key: str) -> str:
    """sha256 (16 hex) of the source of model ``key``'s module and of this one (the training loop):
    a cached run is reused only with the code that produced it."""
    h = hashlib.sha256()
    for mod in dict.fromkeys((MODELS[key].__module__, __name__)):
        h.update(inspect.getsource(sys.modules[mod]).encode())
    return h.hexdigest()[:16]


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def train_and_embed(key: str, *, images: torch.Tensor, texts: Sequence[str], label_ids: Sequence[int],
                    train_idx: Sequence[int], n_classes: int, geometry: Geometry, cfg: TrainConfig,
                    fasttext_model=None, fasttext_id: str = "", cache_dir: str | os.PathLike | None = None,
                    progress: bool = True) -> tuple[np.ndarray, dict, PairModel]:
    """Train model ``key`` on the items ``train_idx`` only and return the image features of *all*
    items, the run's record and the trained model.

    Nothing of a held-out item reaches training: the vocabulary is built from the training texts
    (a word seen only in held-out texts becomes ``<unk>``), token rows are initialised from
    ``fasttext_model`` (chapter 4's, trained on poetry, never on the corpus's labels), and only the
    training pairs are fitted. With ``cache_dir`` the features, record and weights are stored under a
    hash of everything they depend on (the model and its code, geometry, budget, the training items,
    the image and text data, ``fasttext_id``) and reloaded instead of retrained: an interrupted chapter resumes
    from the last finished model.
    """
    tr = np.sort(np.asarray(train_idx, dtype=np.int64))
    y = np.asarray(label_ids, dtype=np.int64)
    texts = list(texts)
    if not (len(images) == len(texts) == len(y)):
        raise ValueError(f"images ({len(images)}), texts ({len(texts)}) and label_ids ({len(y)}) differ in length")
    if tr.size == 0 or tr.min() < 0 or tr.max() >= len(y) or np.unique(tr).size != tr.size:
        raise ValueError(f"train_idx must be distinct indices in 0..{len(y) - 1}")
    if key not in MODELS:
        raise KeyError(f"unknown model {key!r}; known: {sorted(MODELS)}")
    tag = params_hash({"v": EMBED_VERSION, "key": key, "code": _code_digest(key),
                       "geometry": {k: v for k, v in geometry.as_dict().items() if k != "source"},
                       "cfg": cfg.as_dict(), "train": _digest(tr), "labels": _digest(y),
                       "images": _digest(images.numpy()),
                       "texts": _digest(np.array(texts, dtype=object).astype(str)), "n_classes": n_classes,
                       "fasttext": fasttext_id})
    shares = tuple(float(v) for v in np.bincount(y[tr], minlength=n_classes) / len(tr))
    paths = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        paths = {x: cache_dir / f"{key}-{tag}.{x}" for x in ("npy", "json", "pt")}
        if all(p.is_file() for p in paths.values()):
            record = json.loads(paths["json"].read_text())
            model = make_model(key, ModelSpec(geometry, record["vocab_size"], n_classes, len(tr), seed=cfg.seed,
                                              class_shares=shares))
            model.load_state_dict(torch.load(paths["pt"], map_location="cpu", weights_only=True))
            return np.load(paths["npy"]), record, model.eval()
    vocab = build_vocabulary([texts[i] for i in tr])
    tokens = vocab.encode(texts, geometry.context_length)
    model = make_model(key, ModelSpec(geometry, len(vocab), n_classes, len(tr), seed=cfg.seed, class_shares=shares))
    table = model.token_embedding()
    token_init = (init_token_embeddings(table, vocab, fasttext_model, seed=cfg.seed) if table is not None
                  else {"source": "no text"})
    result = fit(model, PairData(images[torch.from_numpy(tr)], tokens[torch.from_numpy(tr)]), y[tr], cfg,
                 progress=progress, desc=f"{key} on {len(tr)} pairs")
    feats = features(model, images, device=str(next(model.parameters()).device))  # where the trainer put it
    model.cpu()
    record = {"model": key, "tag": tag, "vocab_size": len(vocab), "train_items": int(len(tr)), "token_init": token_init,
              "fit": result.as_dict(), "config": cfg.as_dict(), "card": model.card()}
    if paths is not None:
        paths["npy"].parent.mkdir(parents=True, exist_ok=True)
        for x, write in (("pt", lambda f: torch.save(model.state_dict(), f)), ("npy", lambda f: np.save(f, feats))):
            tmp = paths[x].with_name(f".{paths[x].name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, paths[x])
        atomic_write_json(paths["json"], record)  # written last: its presence marks a finished run
    return feats, record, model


PROTOCOLS = ("loo", "kfold")


class ProtocolRun(NamedTuple):
    """What :func:`run_protocol` returns."""
    proba: np.ndarray  # (n, n_classes), every item predicted while held out
    records: list[dict]  # one training record per backbone
    model: PairModel  # the last backbone trained: for "loo", the one trained on every item
    features: np.ndarray  # that backbone's image features of every item
    head: Pipeline | None = None  # for "loo": the head fitted on all those features (None for "kfold")


def run_protocol(key: str, protocol: str, *, images: torch.Tensor, texts: Sequence[str], label_ids: Sequence[int],
                 splits, n_classes: int, geometry: Geometry, cfg: TrainConfig, fasttext_model=None,
                 fasttext_id: str = "", cache_dir=None, progress: bool = True, layers: bool = False,
                 jobs: int = 1) -> ProtocolRun:
    """Class probabilities (n, n_classes) of model ``key`` for every item under ``protocol``:

    * ``"loo"``, protocol (a), our shortcut to leave-one-out (the paper's retrains the model in every
      round): one backbone trained on every item, then the head-only leave-one-out of
      :func:`hzlib.evaluate.loo_protocol` (``splits`` unused);
    * ``"kfold"``, leakage-free: for each (train, test) of ``splits`` a backbone trained on train only
      and a head fitted on train only (:func:`hzlib.evaluate.kfold_protocol`).

    Also returns the training records (one per backbone), the last backbone trained (for "loo", the
    one trained on every item), its features and, for "loo", the head fitted on all of them, which
    chose the protocol's C (:class:`ProtocolRun`; what Table 3 times). With ``layers`` the heads read
    each backbone's multi-layer representation C instead of its image feature (the same backbones:
    with ``cache_dir`` they are reloaded, not retrained). ``jobs``: the heads' inner cross-validation
    folds fitted at once (:func:`hzlib.evaluate.fit_head`; the same results for every value)."""
    y = np.asarray(label_ids, dtype=np.int64)
    common = dict(images=images, texts=texts, label_ids=y, n_classes=n_classes, geometry=geometry, cfg=cfg,
                  fasttext_model=fasttext_model, fasttext_id=fasttext_id, cache_dir=cache_dir, progress=progress)
    records, last = [], []

    def embed(train_idx):
        feats, record, model = train_and_embed(key, train_idx=train_idx, **common)
        if layers:
            feats = features(model, images, layers=True)
        records.append(record)
        last[:] = [model, feats]
        return feats

    head = None
    if protocol == "loo":
        P, head = loo_protocol(embed(np.arange(len(y))), y, n_classes=n_classes, seed=cfg.seed, return_head=True,
                               jobs=jobs)
    elif protocol == "kfold":
        P = kfold_protocol(embed, y, splits, n_classes=n_classes, seed=cfg.seed, jobs=jobs)
    else:
        raise ValueError(f"protocol={protocol!r} is not one of {PROTOCOLS}")
    return ProtocolRun(P, records, *last, head)


def analyser(model: PairModel, head: Callable[[np.ndarray], np.ndarray], *, size: int, mode: str = "luma",
             device: str = "cpu") -> Callable[[list], np.ndarray]:
    """The whole analysis of a batch of image paths, for :func:`hzlib.evaluate.time_analysis`: read,
    Eq 1-3 at ``size`` (:func:`hzlib.normalize.model_image` in ``mode``), encode with ``model``,
    classify with ``head`` (features -> probabilities)."""
    model.to(device).eval()

    def analyse(paths: list) -> np.ndarray:
        batch = torch.from_numpy(np.stack([model_image_u8(p, size, mode) for p in paths]))
        return head(features(model, batch, batch_size=len(paths), device=device))

    return analyse


def cards_markdown(cards: Sequence[dict], *, cfg: TrainConfig, n_items: int, folds: int,
                   results: dict[str, dict[str, str]] | None = None) -> str:
    """Model cards in Markdown, one section per card of :func:`cards`: what the model follows and how
    we read it, its size, what it was trained on and with which budget, how it is evaluated, its
    results (``results``: model key -> {label: formatted value}) and what it is not."""
    out = []
    for c in cards:
        # escaped: the cards quote tokens such as <IMG> and <bos>, which HTML would take for tags
        lines = [f"### {escape(c['title'], quote=False)} (`{c['model']}`)", "",
                 f"- **Follows:** {escape(c['follows'], quote=False)}.",
                 f"- **Our reading:** {escape(c['interpretation'], quote=False)}",
                 f"- **Size:** {c['parameters']:,} parameters (vocabulary of 1,000 words).",
                 "- **Trained on:** the corpus's image–description pairs"
                 f"{' and their attribute labels' if c['uses labels'] else ''}: "
                 f"all {n_items:,} for protocol (a), the training folds of {folds} for protocol (b); from scratch, "
                 "with no pretrained weights.",
                 f"- **Budget:** {_steps(cfg)} optimiser steps, batch {cfg.batch_size}, AdamW (lr {cfg.lr:g}, "
                 f"weight decay {cfg.weight_decay:g}), linear warm-up over {cfg.warmup_steps} steps then cosine decay, "
                 f"gradient clipping at {cfg.grad_clip:g}, seed {cfg.seed}; the same for every model.",
                 "- **Evaluated as:** its image feature (from the image alone) -> standardisation -> multinomial "
                 "logistic regression; Eq 12-17 with 95% bootstrap intervals."]
        if results and c["model"] in results:
            lines.append("- **Results:** " + "; ".join(f"{k} {v}" for k, v in results[c["model"]].items()) + ".")
        lines.append("- **Not:** the published model or its pretraining data; its numbers describe this generated "
                     "corpus at this scale only.")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _steps(cfg: TrainConfig) -> str:
    return f"{cfg.max_steps:,}" if cfg.max_steps else f"{cfg.epochs} epoch(s) of"


def cards(keys: Sequence[str], spec: ModelSpec) -> list[dict]:
    """The card of each model (built once from ``spec`` to count its parameters)."""
    return [make_model(k, spec).card() for k in keys]


__all__ = ["ModelSpec", "PairModel", "ClipPair", "MODELS", "register", "make_model", "FitResult",
           "fit", "features", "train_and_embed", "run_protocol", "ProtocolRun", "PROTOCOLS", "analyser", "cards",
           "cards_markdown", "empty_text"]
