"""Section 4 of the paper: the CLIP model, its tokeniser, and the contrastive loss (Eq 5-7).

The model is a :class:`ClipModel`: an image tower and a text tower projected into one space and a
learned temperature, with open_clip's interface (``visual``, ``text``, ``encode_image``,
``encode_text``, ``logit_scale``). The geometry chooses the towers: a ViT (``transformers``'
``CLIPVisionModel``, SDPA attention) or a small CNN (CLIP's ResNet family at CPU scale) for images;
a causal transformer (``CLIPTextModel``) or a bag of word embeddings for texts. Built from
configuration only, never downloaded.

* Geometries: small YAML files in ``profiles/models/`` (:func:`load_geometry`), checked field by
  field; ``paper.yml`` records the paper's stated geometry, which cannot be built (see the file).
* Tokeniser: jieba words (:func:`hzlib.text.segment`, punctuation dropped), a word-level vocabulary
  built from the *training* texts only (:func:`build_vocabulary`), with ``<pad> <unk> <bos> <eos>``;
  the ``tokenizers`` library's WordLevel model does the lookup, truncation and padding, and its JSON
  is saved beside the model. A text is ``<bos> w1 ... wn <eos> <pad>...`` (truncated so that
  ``<eos>`` is always kept); the text tower pools the output at ``<eos>``.
* Token embeddings may start from FastText (:func:`init_token_embeddings`): FastText's vector of
  each vocabulary word (its own subword composition, :func:`hzlib.text.fasttext_word_vector`) is
  mapped to the text width by a fixed seeded matrix with orthonormal columns (an isometry when the
  width is at least FastText's dimension, so cosine structure is kept) and rescaled so the rows have
  the norm of CLIP's random initialisation. Without a FastText model the rows stay random (CLIP's
  N(0, 0.02^2)); the returned record says how many rows came from FastText.
* Temperature: ``logit_scale = log(1/tau)`` is a parameter initialised at ``log(1/0.07)`` as in CLIP.

Padding needs no attention mask: the text tower is causal and pads come after ``<eos>``, so no
position up to ``<eos>`` attends to a pad, and the pooled output is the same with or without one
(a test checks this). Leaving the mask out keeps SDPA on its fused causal path.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from safetensors.torch import load_model, save_model
from scipy.stats import binom
from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers, processors
from torch import nn
from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel

from .config import PROFILE_DIR, atomic_write_json
from .text import segment

__all__ = [
    "MODEL_DIR", "GeometryError", "Geometry", "TowerGeometry", "load_geometry", "available_geometries",
    "SPECIALS", "PAD", "UNK", "BOS", "EOS", "Vocabulary", "build_vocabulary", "words",
    "ClipModel", "ViTTower", "ConvTower", "TransformerTextTower", "BagTextTower", "IMAGE_TOWERS", "TEXT_TOWERS",
    "build_model", "init_token_embeddings", "count_parameters", "tau_of", "geometry_from_dict",
    "similarity_logits", "clip_loss", "clip_loss_grad",
    "encode_images", "encode_image_layers", "encode_texts", "save_clip", "load_clip",
]

MODEL_DIR = PROFILE_DIR / "models"
CLIP_TAU_INIT = 0.07  # Radford et al. (2021): logit_scale starts at log(1/0.07)


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------

class GeometryError(ValueError):
    """A geometry file is missing, malformed, or describes a model that cannot be built."""


@dataclass(frozen=True)
class TowerGeometry:
    width: int
    layers: int
    heads: int
    mlp_ratio: float = 4.0
    image_size: int | None = None  # vision tower only
    patch_size: int | None = None  # vision tower only
    kind: str = ""                 # vision: vit | cnn; text: transformer | bag ("" = the first)

    def __post_init__(self):
        if not self.kind:
            object.__setattr__(self, "kind", "vit" if self.image_size is not None else "transformer")


@dataclass(frozen=True)
class Geometry:
    name: str
    embed_dim: int
    context_length: int
    vision: TowerGeometry
    text: TowerGeometry
    hidden_act: str = "gelu"
    source: str = ""  # the file it was read from

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    def as_dict(self) -> dict:
        return asdict(self)


_TOWER_FIELDS = {"vision": ("kind", "image_size", "patch_size", "width", "layers", "heads", "mlp_ratio"),
                 "text": ("kind", "width", "layers", "heads", "mlp_ratio")}
_KINDS = {"vision": ("vit", "cnn"), "text": ("transformer", "bag")}
_TOP_FIELDS = ("embed_dim", "context_length", "hidden_act", "vision", "text")
_ACTS = ("gelu", "quick_gelu", "gelu_new")


def available_geometries(model_dir: Path = MODEL_DIR) -> list[str]:
    return sorted(p.stem for p in Path(model_dir).glob("*.yml"))


def _problems(raw: dict) -> list[str]:
    """Every reason why ``raw`` (a parsed geometry file) cannot be built, as 'field: reason'."""
    out = []
    unknown = sorted(set(raw) - set(_TOP_FIELDS))
    out += [f"{k}: unknown field (known: {', '.join(_TOP_FIELDS)})" for k in unknown]

    def positive_int(key, v):
        if v is None:
            out.append(f"{key}: not stated (null)")
        elif isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            out.append(f"{key}={v!r}: must be a positive integer")
        else:
            return True
        return False

    positive_int("embed_dim", raw.get("embed_dim"))
    ctx_ok = positive_int("context_length", raw.get("context_length"))
    if ctx_ok and raw["context_length"] < 3:
        out.append(f"context_length={raw['context_length']}: needs room for <bos>, a word and <eos>")
    if raw.get("hidden_act", "gelu") not in _ACTS:
        out.append(f"hidden_act={raw.get('hidden_act')!r}: one of {_ACTS}")
    for tower, fields in _TOWER_FIELDS.items():
        t = raw.get(tower)
        if not isinstance(t, dict):
            out.append(f"{tower}: missing section")
            continue
        out += [f"{tower}.{k}: unknown field (known: {', '.join(fields)})" for k in sorted(set(t) - set(fields))]
        ok = {k: positive_int(f"{tower}.{k}", t.get(k)) for k in fields if k not in ("mlp_ratio", "kind")}
        kind = t.get("kind", _KINDS[tower][0])
        if kind not in _KINDS[tower]:
            out.append(f"{tower}.kind={kind!r}: one of {_KINDS[tower]}")
        if kind == "cnn" and ok.get("patch_size") and (t["patch_size"] < 2 or t["patch_size"] & (t["patch_size"] - 1)):
            out.append(f"vision.patch_size={t['patch_size']}: a cnn tower needs a power of two >= 2 "
                       "(one stride-2 stage per halving)")
        r = t.get("mlp_ratio", 4)
        if not isinstance(r, (int, float)) or r <= 0:
            out.append(f"{tower}.mlp_ratio={r!r}: must be a positive number")
        if ok.get("width") and ok.get("heads") and t["width"] % t["heads"]:
            out.append(f"{tower}.width={t['width']} is not divisible by {tower}.heads={t['heads']} "
                       f"({t['width']}/{t['heads']} = {t['width'] / t['heads']:.2f}): attention heads must "
                       f"split the hidden vector equally")
        if tower == "vision" and ok.get("image_size") and ok.get("patch_size") and t["image_size"] % t["patch_size"]:
            out.append(f"vision.image_size={t['image_size']} is not a multiple of vision.patch_size={t['patch_size']}")
    return out


def load_geometry(name_or_path: str | os.PathLike, model_dir: Path = MODEL_DIR) -> Geometry:
    """A named geometry (``"tiny"`` -> ``profiles/models/tiny.yml``) or a path to one.

    Raises GeometryError naming the file and every field that is missing or inconsistent."""
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(model_dir) / f"{name_or_path}.yml"
    if not path.is_file():
        raise GeometryError(f"geometry {str(name_or_path)!r} not found at {path}; available: "
                            f"{available_geometries(model_dir)}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise GeometryError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise GeometryError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    problems = _problems(raw)
    if problems:
        raise GeometryError(f"{path}: cannot build this geometry:\n  " + "\n  ".join(problems))
    towers = {k: TowerGeometry(**{f: raw[k][f] for f in _TOWER_FIELDS[k] if f in raw[k]}) for k in _TOWER_FIELDS}
    return Geometry(name=path.stem, embed_dim=raw["embed_dim"], context_length=raw["context_length"],
                    hidden_act=raw.get("hidden_act", "gelu"), source=str(path), **towers)


# --------------------------------------------------------------------------------------------------
# Tokeniser: jieba words, a WordLevel vocabulary from the training texts
# --------------------------------------------------------------------------------------------------

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3


def words(text: str) -> list[str]:
    """The jieba words of ``text`` that contain a letter, digit or ideograph (punctuation dropped,
    as in :func:`hzlib.text.sentence_embedding`)."""
    return list(_words(text))


@functools.lru_cache(maxsize=1 << 16)
def _words(text: str) -> tuple[str, ...]:
    # cached: chapter 8 builds a vocabulary and encodes the corpus for each of its ~20 training runs,
    # and jieba's segmentation was ~2 s of each (segment() is deterministic)
    return tuple(w for w in segment(text) if any(ch.isalnum() for ch in w))


class Vocabulary:
    """A word-level vocabulary over jieba words, backed by a ``tokenizers`` WordLevel tokenizer.

    ``encode`` segments with jieba, then the tokenizer maps words to ids (unknown -> ``<unk>``), adds
    ``<bos>``/``<eos>``, truncates to the context length keeping ``<eos>``, and pads with ``<pad>``.
    """

    def __init__(self, tokenizer, counts: dict[str, int] | None = None):
        self._tk = tokenizer
        self.counts = dict(counts or {})

    @classmethod
    def from_words(cls, vocab_words: Sequence[str], counts: dict[str, int] | None = None) -> "Vocabulary":
        clash = [w for w in vocab_words if w in SPECIALS]
        if clash:
            raise ValueError(f"words {clash} collide with special tokens {SPECIALS}")
        table = {w: i for i, w in enumerate([*SPECIALS, *vocab_words])}
        if len(table) != len(SPECIALS) + len(vocab_words):
            raise ValueError("vocabulary words must be unique")
        tk = Tokenizer(tokenizer_models.WordLevel(table, unk_token=UNK))
        # Words arrive joined by U+0020 (jieba words contain no whitespace: segment() drops it).
        tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tk.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", special_tokens=[(BOS, table[BOS]), (EOS, table[EOS])])
        return cls(tk, counts)

    def __len__(self) -> int:
        return self._tk.get_vocab_size()

    @property
    def itos(self) -> list[str]:
        v = self._tk.get_vocab()
        return sorted(v, key=v.__getitem__)

    def id(self, word: str) -> int:
        i = self._tk.token_to_id(word)
        return self.unk_id if i is None else i

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def encode_words(self, seqs: Sequence[Sequence[str]], context_length: int) -> torch.Tensor:
        """Pre-segmented texts -> (n, context_length) int64 ids."""
        if context_length < 3:
            raise ValueError(f"context_length={context_length} must be >= 3")
        tk = self._tk
        tk.enable_truncation(context_length)
        tk.enable_padding(length=context_length, pad_id=self.pad_id, pad_token=PAD)
        enc = tk.encode_batch([" ".join(s) for s in seqs]) if seqs else []
        tk.no_truncation()
        tk.no_padding()
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long).reshape(len(enc), context_length)
        return ids

    def encode(self, texts: Sequence[str], context_length: int) -> torch.Tensor:
        """Chinese texts -> (n, context_length) int64 ids: ``<bos> words <eos> <pad>...``."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts")
        return self.encode_words([words(t) for t in texts], context_length)

    def decode(self, ids: Iterable[int]) -> list[str]:
        itos = self.itos
        return [itos[i] for i in ids if i != self.pad_id]

    def to_json(self) -> dict:
        return {"tokenizer": json.loads(self._tk.to_str()), "counts": self.counts, "specials": list(SPECIALS)}

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        try:
            blob = json.loads(Path(path).read_text(encoding="utf-8"))
            tk = Tokenizer.from_str(json.dumps(blob["tokenizer"]))
        except (OSError, ValueError, KeyError, Exception) as e:
            raise ValueError(f"cannot read vocabulary {path}: {e}") from None
        if blob.get("specials") != list(SPECIALS) or [tk.token_to_id(s) for s in SPECIALS] != [0, 1, 2, 3]:
            raise ValueError(f"vocabulary {path}: special tokens are not {SPECIALS} at ids 0-3")
        return cls(tk, blob.get("counts"))


def build_vocabulary(texts: Sequence[str], *, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
    """The vocabulary of the jieba words of ``texts`` (pass the TRAINING texts only) that occur at
    least ``min_count`` times, most frequent first (ties by first occurrence), at most ``max_size``
    words besides the specials."""
    c = Counter(w for t in texts for w in words(t))
    kept = [w for w, n in c.most_common() if n >= min_count]  # most_common is stable on ties
    if max_size is not None:
        kept = kept[:max_size]
    return Vocabulary.from_words(kept, {w: c[w] for w in kept})


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------

def clip_config(geometry: Geometry, vocab_size: int, tau_init: float = CLIP_TAU_INIT):
    """The ``transformers`` CLIPConfig of ``geometry`` (its ViT and transformer-text parts are the
    ``vit`` and ``transformer`` towers of :class:`ClipModel`)."""
    g, v, t = geometry, geometry.vision, geometry.text
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=t.width, intermediate_size=int(t.width * t.mlp_ratio),
                          num_hidden_layers=t.layers, num_attention_heads=t.heads, projection_dim=g.embed_dim,
                          max_position_embeddings=g.context_length, hidden_act=g.hidden_act,
                          pad_token_id=Vocabulary.pad_id, bos_token_id=Vocabulary.bos_id,
                          eos_token_id=Vocabulary.eos_id)  # pooled at the first <eos> (not the legacy argmax)
    vision = CLIPVisionConfig(hidden_size=v.width, intermediate_size=int(v.width * v.mlp_ratio),
                              num_hidden_layers=v.layers, num_attention_heads=v.heads, projection_dim=g.embed_dim,
                              image_size=v.image_size, patch_size=v.patch_size, hidden_act=g.hidden_act)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=g.embed_dim,
                     logit_scale_init_value=math.log(1 / tau_init))
    cfg._attn_implementation = "sdpa"
    cfg.text_config._attn_implementation = cfg.vision_config._attn_implementation = "sdpa"
    return cfg


class ViTTower(nn.Module):
    """CLIP's ViT image tower (``transformers.CLIPVisionModel``: patches, [CLS], pre-norm encoder,
    the LayerNormed [CLS] pooled) and its projection to the shared space.

    Grad-CAM's feature map is the input of an encoder layer seen through its ``layer_norm1``
    (:meth:`cam_layer`): CLIP pools only [CLS] of the last layer's output, so the patch tokens there get
    no gradient, while the last layer's input still reaches [CLS] through its attention."""

    def __init__(self, geometry: Geometry):
        super().__init__()
        self.model = CLIPVisionModel(clip_config(geometry, len(SPECIALS) + 1).vision_config)
        self.proj = nn.Linear(geometry.vision.width, geometry.embed_dim, bias=False)
        self.grid = (geometry.vision.image_size // geometry.vision.patch_size,) * 2
        self.cam_tokens = True  # the cam layer's output is [CLS] + the patch tokens, not a spatial map

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(self.model(pixel_values=pixel_values).pooler_output)

    def layer_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The [CLS] token after each encoder layer, (B, width) each."""
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        return [h[:, 0] for h in out.hidden_states[1:]]

    def cam_layer(self, layer: int = -1) -> nn.Module:
        layers = getattr(self.model, "vision_model", self.model).encoder.layers  # transformers 4 nests it
        if not -len(layers) <= layer < len(layers):
            raise ValueError(f"layer: {layer} outside the {len(layers)} encoder layers")
        return layers[layer].layer_norm1


class ConvTower(nn.Module):
    """A small CNN image tower, CLIP's ResNet family at CPU scale: log2(patch_size) stages, each two
    3x3 convolutions with batch norm and ReLU (the first of stride 2), widths doubling up to
    ``vision.width``; global average pooling and a linear projection to the shared space.
    The image leaves as an (image_size / patch_size)^2 grid, the same grid a ViT of the geometry
    has. Grad-CAM's feature map is a stage's output (:meth:`cam_layer`, the last by default)."""

    def __init__(self, geometry: Geometry):
        super().__init__()
        v = geometry.vision
        n = int(round(math.log2(v.patch_size)))
        widths = [max(v.width >> (n - 1 - s), 16) for s in range(n)]
        stages, c = [], 3
        for w in widths:
            stages.append(nn.Sequential(nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                                        nn.ReLU(inplace=True), nn.Conv2d(w, w, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(w), nn.ReLU(inplace=True)))
            c = w
        self.stages = nn.Sequential(*stages)
        self.proj = nn.Linear(c, geometry.embed_dim)
        self.cam_tokens = False  # a stage's output is already a (B, C, h, w) map

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(self.stages(pixel_values).mean((2, 3)))

    def layer_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's output averaged over its grid, (B, stage width) each: from colour and texture
        at the first stage to the pooled representation the projection reads at the last."""
        out, x = [], pixel_values
        for stage in self.stages:
            x = stage(x)
            out.append(x.mean((2, 3)))
        return out

    def cam_layer(self, layer: int = -1) -> nn.Module:
        if not -len(self.stages) <= layer < len(self.stages):
            raise ValueError(f"layer: {layer} outside the {len(self.stages)} stages")
        return self.stages[layer]


class TransformerTextTower(nn.Module):
    """CLIP's text tower (``transformers.CLIPTextModel``: causal transformer, pooled at ``<eos>``)
    and its projection. Padding needs no mask: pads come after ``<eos>`` and attention is causal."""

    def __init__(self, geometry: Geometry, vocab_size: int):
        super().__init__()
        self.model = CLIPTextModel(clip_config(geometry, vocab_size).text_config)
        self.proj = nn.Linear(geometry.text.width, geometry.embed_dim, bias=False)

    @property
    def token_embedding(self) -> nn.Embedding:
        return getattr(self.model, "text_model", self.model).embeddings.token_embedding  # transformers 4 nests it

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.model(input_ids=input_ids).pooler_output)


class BagTextTower(nn.Module):
    """A bag-of-words text tower: the mean of the description's word embeddings (``<bos>``,
    ``<eos>`` and padding left out), LayerNorm, then a two-layer MLP (``text.width`` ->
    ``text.width * mlp_ratio`` -> GELU -> ``embed_dim``). Word order is ignored: the corpus's
    descriptions carry their class cues in words, and this tower trains ~4x faster than the
    transformer on two CPU cores."""

    def __init__(self, geometry: Geometry, vocab_size: int):
        super().__init__()
        t = geometry.text
        self.embed = nn.Embedding(vocab_size, t.width, padding_idx=Vocabulary.pad_id)
        nn.init.normal_(self.embed.weight, std=0.02)  # CLIP's initialisation of token embeddings
        with torch.no_grad():
            self.embed.weight[Vocabulary.pad_id].zero_()
        hidden = int(t.width * t.mlp_ratio)
        self.mlp = nn.Sequential(nn.LayerNorm(t.width), nn.Linear(t.width, hidden), nn.GELU(),
                                 nn.Linear(hidden, geometry.embed_dim))

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        keep = (input_ids > Vocabulary.eos_id) | (input_ids == Vocabulary.unk_id)
        keep = keep.unsqueeze(-1).to(self.embed.weight.dtype)
        mean = (self.embed(input_ids) * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.mlp(mean)


IMAGE_TOWERS = {"vit": ViTTower, "cnn": ConvTower}
TEXT_TOWERS = {"transformer": TransformerTextTower, "bag": BagTextTower}


# Which pairs of a batch are negatives in Eq 6: every other pair (CLIP's in-batch InfoNCE), or only
# the pairs of other classes (the paper's "samples of different categories").
NEGATIVES = ("batch", "other_class")


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward hands each rank the summed gradient of its own slice
    (every rank computes the same global loss; DDP then averages the parameter gradients)."""

    @staticmethod
    def forward(ctx, x):
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        out = x.new_empty((dist.get_world_size() * x.shape[0], *x.shape[1:]))
        dist.all_gather_into_tensor(out, x.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)  # gloo has no reduce_scatter; the features are small
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class ClipModel(nn.Module):
    """CLIP (section 4 of the paper): an image tower and a text tower mapped into one space, and a
    learned temperature ``logit_scale = log(1/tau)``. The towers are chosen by the geometry
    (``vision.kind``: ``vit`` or ``cnn``; ``text.kind``: ``transformer`` or ``bag``), as open_clip
    offers ViT and ResNet image towers behind one interface.

    ``loss`` is the training objective the trainer calls (Eq 6 over the batch; under DDP over the
    global batch, the features gathered across ranks)."""

    supervised = False

    def __init__(self, geometry: Geometry, vocab_size: int, tau_init: float = CLIP_TAU_INIT):
        super().__init__()
        self.geometry = geometry
        self.visual = IMAGE_TOWERS[geometry.vision.kind](geometry)
        self.text = TEXT_TOWERS[geometry.text.kind](geometry, vocab_size)
        self.logit_scale = temperature(tau_init)
        self.negatives = "batch"  # one of NEGATIVES; the trainer sets its configuration's (TrainConfig.negatives)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.visual(pixel_values)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text(input_ids)

    def encode_image_layers(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The paper's multi-layer representation C = {C_1, ..., C_M} (section 4): the image tower's
        embedding at each of its M layers (CNN stages pooled over the grid, or a ViT's [CLS] after each
        encoder layer), concatenated (B, sum of the layers' widths)."""
        return torch.cat(self.visual.layer_features(pixel_values), dim=1)

    def loss(self, images: torch.Tensor, tokens: torch.Tensor, labels: torch.Tensor | None = None,
             index: torch.Tensor | None = None) -> torch.Tensor:
        img = F.normalize(self.encode_image(images).float(), dim=-1)
        txt = F.normalize(self.encode_text(tokens).float(), dim=-1)
        if _world() > 1:  # every rank computes the loss of the global batch
            img, txt = _GatherWithGrad.apply(img), _GatherWithGrad.apply(txt)
            labels = _GatherWithGrad.apply(labels) if labels is not None else None
        if self.negatives == "other_class" and labels is None:
            raise ValueError("negatives='other_class' needs the batch's labels")
        return clip_loss(self.logit_scale.exp() * img @ txt.T, labels if self.negatives == "other_class" else None)


def build_model(geometry: Geometry, vocab_size: int, *, seed: int, tau_init: float = CLIP_TAU_INIT,
                learn_tau: bool = True) -> ClipModel:
    """A randomly initialised :class:`ClipModel` of ``geometry``, its weights drawn from a generator
    seeded with ``seed`` (the global RNG is restored afterwards). ``learn_tau=False`` freezes the
    temperature at ``tau_init``."""
    if vocab_size <= len(SPECIALS):
        raise ValueError(f"vocab_size={vocab_size} leaves no room for words beside {SPECIALS}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClipModel(geometry, vocab_size, tau_init)
    model.logit_scale.requires_grad_(learn_tau)
    return model


def count_parameters(model) -> dict:
    parts = {"vision": model.visual, "text": model.text}
    out = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def temperature(tau_init: float = CLIP_TAU_INIT) -> nn.Parameter:
    """A learned ``logit_scale = log(1/tau)`` at ``tau_init``: CLIP's, and that of ALBEF's contrast in
    the comparators (the trainer gives every one CLIP's handling: initial value, clamping, no decay)."""
    return nn.Parameter(torch.tensor(math.log(1 / tau_init)))


def tau_of(model) -> float:
    """The current temperature tau = 1 / exp(logit_scale)."""
    return float(torch.exp(-model.logit_scale.detach().float()))


def _orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A fixed (rows, cols) float64 matrix with orthonormal columns (rows >= cols) or rows."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(max(rows, cols), min(rows, cols), generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))  # a unique Q for the draw
    return q if rows >= cols else q.T


def init_token_embeddings(model, vocab: Vocabulary, fasttext_model, *, seed: int) -> dict:
    """Overwrite the text tower's token embedding rows of vocabulary words with FastText vectors.
    ``model``: a CLIP model, or any model's token-embedding table (``torch.nn.Embedding``).

    Row of word w = s * P^T v(w), with v(w) FastText's vector of w (``get_word_vector``: the word's
    own vector averaged with its character n-grams, so words FastText never saw still get one),
    P a fixed (fasttext_dim, width) matrix with orthonormal rows/columns drawn from ``seed``, and s one
    scale for all rows making their mean norm equal the mean norm of the random rows they replace.
    Special tokens and words whose FastText vector is zero or not finite keep their random rows.
    ``fasttext_model=None`` changes nothing. Returns a record: how many rows came from FastText,
    how many of those words are in FastText's own vocabulary (when it exposes ``get_words``), the
    projection and the scale.
    """
    table = model if isinstance(model, torch.nn.Embedding) else model.text.token_embedding
    emb = table.weight
    n, width = emb.shape
    if len(vocab) != n:
        raise ValueError(f"vocabulary has {len(vocab)} tokens but the model's embedding has {n} rows")
    if fasttext_model is None:
        return {"source": "random N(0, 0.02^2) (no FastText model)", "rows": n, "fasttext_rows": 0}
    dim = int(fasttext_model.get_dimension())
    itos = vocab.itos
    rows, vecs = [], []
    for i, w in enumerate(itos):
        if w in SPECIALS:
            continue
        v = np.asarray(fasttext_model.get_word_vector(w), dtype=np.float64)
        if v.shape != (dim,):
            raise ValueError(f"FastText vector of {w!r} has shape {v.shape}, expected ({dim},)")
        if np.all(np.isfinite(v)) and np.linalg.norm(v) > 0:
            rows.append(i)
            vecs.append(v)
    record = {"source": "fasttext", "rows": n, "fasttext_rows": len(rows), "fasttext_dim": dim,
              "projection": f"orthonormal ({dim}, {width}) matrix, seed {seed}"}
    if hasattr(fasttext_model, "get_words"):
        known = set(fasttext_model.get_words())
        record["fasttext_vocabulary_rows"] = sum(itos[i] in known for i in rows)
    if not rows:
        record["scale"] = None
        return record
    P = _orthonormal(dim, width, seed)  # (dim, width)
    projected = torch.from_numpy(np.stack(vecs)) @ P
    with torch.no_grad():
        idx = torch.tensor(rows)
        target = emb[idx].double().norm(dim=1).mean()
        scale = target / projected.norm(dim=1).mean()
        emb[idx] = (projected * scale).to(emb.dtype)
    record["scale"] = float(scale)
    return record


# --------------------------------------------------------------------------------------------------
# Eq 5-7: similarity, contrastive loss and its gradient
# --------------------------------------------------------------------------------------------------

def similarity_logits(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Eq 5 divided by tau: ``logits[i, j] = cos(image_i, text_j) / tau`` with ``1/tau = exp(logit_scale)``."""
    img = F.normalize(image_embeds, dim=-1)
    txt = F.normalize(text_embeds, dim=-1)
    return logit_scale.exp() * img @ txt.T


def clip_loss(logits: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Eq 6: the symmetric InfoNCE over an (N, N) image-by-text logit matrix whose diagonal holds the
    true pairs: the mean of the image->text and text->image cross-entropies.

    With ``labels`` the negatives are only the pairs of other classes, as the paper draws them
    ("selecting samples of different categories", section 4): off-diagonal pairs of the same class
    are left out of both softmaxes."""
    n = logits.shape[0]
    target = torch.arange(n, device=logits.device)
    if labels is not None:
        same = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same, float("-inf"))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def chance_level(batch: int, negatives: str = "batch", shares: Sequence[float] | None = None) -> float:
    """The expected loss of uniform logits over batches of ``batch`` pairs: ln B with in-batch
    negatives; with other-class negatives, a row of a class of share p has K ~ Binomial(B - 1, 1 - p)
    negatives (labels drawn with replacement), so the level is sum_c p_c E[ln(1 + K_c)]."""
    if negatives == "batch":
        return math.log(batch)
    if negatives != "other_class" or shares is None:
        raise ValueError(f"chance_level: negatives={negatives!r} needs the class shares (other_class)")
    p = np.asarray(shares, dtype=float) / np.sum(shares)
    k = np.arange(batch)
    pmf = binom.pmf(k[None, :], batch - 1, 1 - p[:, None])
    return float(p @ (pmf @ np.log1p(k)))


def clip_loss_grad(logits: torch.Tensor) -> torch.Tensor:
    """The gradient of Eq 6 in closed form: dL/dlogits = (softmax_rows(logits) + softmax_cols(logits) - 2 I) / (2N).

    This is what the paper's Eq 7 stands for; Eq 7 as printed subtracts the true pair's probability (a
    number) from the text embedding T (a vector), where the gradient with respect to the image
    embedding has T minus the probability-weighted mean of the candidate texts. (By the chain rule the
    gradient with respect to the cosine similarity s_ij = tau * logits_ij is this divided by tau.)"""
    n = logits.shape[0]
    eye = torch.eye(n, dtype=logits.dtype, device=logits.device)
    return (logits.softmax(dim=1) + logits.softmax(dim=0) - 2 * eye) / (2 * n)


# --------------------------------------------------------------------------------------------------
# Encoding (no grad) and persistence
# --------------------------------------------------------------------------------------------------

def _device_of(model) -> torch.device:
    return next(model.parameters()).device


def _encode_images(model, images: torch.Tensor, batch_size: int, to_input, encode) -> torch.Tensor:
    """``encode(x)`` of every batch of ``images`` (float32 on the CPU, eval mode, no gradients), the
    training flag restored; ``to_input`` maps a uint8 batch to model inputs on the model's device."""
    dev = _device_of(model)
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(dev, non_blocking=True)
            out.append(encode(to_input(x) if to_input is not None else x.float()).float().cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0, model.geometry.embed_dim)


def encode_images(model, images: torch.Tensor, *, batch_size: int = 256, to_input=None) -> torch.Tensor:
    """L2-normalised image embeddings (n, embed_dim), float32 on the CPU, computed in batches.

    ``images``: model inputs (n, 3, H, W) float, or a uint8 cache with ``to_input`` (e.g.
    :func:`hzlib.pairs.to_model_input`) mapping each batch to model inputs on the model's device."""
    return _encode_images(model, images, batch_size, to_input, lambda x: F.normalize(model.encode_image(x), dim=-1))


def encode_image_layers(model, images: torch.Tensor, *, batch_size: int = 256, to_input=None) -> torch.Tensor:
    """The multi-layer representation C of every image (:meth:`ClipModel.encode_image_layers`), float32
    on the CPU, not normalised (a probe standardises each column), computed in batches like
    :func:`encode_images`."""
    return _encode_images(model, images, batch_size, to_input, model.encode_image_layers)


@torch.no_grad()
def encode_texts(model, token_ids: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """L2-normalised text embeddings (n, embed_dim), float32 on the CPU, from token ids (see
    :meth:`Vocabulary.encode`), computed in batches."""
    dev = _device_of(model)
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(token_ids), batch_size):
        ids = token_ids[i:i + batch_size].to(dev)
        out.append(F.normalize(model.encode_text(ids).float(), dim=-1).cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0, model.geometry.embed_dim)


def save_clip(out_dir: str | os.PathLike, model: ClipModel, vocab: Vocabulary, geometry: Geometry,
              info: dict | None = None) -> Path:
    """Save weights (``model.safetensors``), ``vocab.json``, ``geometry.json`` and ``info.json`` into
    ``out_dir``, atomically as a whole (written to a temporary folder, then renamed)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        save_model(model, str(tmp / WEIGHTS))
        vocab.save(tmp / "vocab.json")
        atomic_write_json(tmp / "geometry.json", geometry.as_dict())
        atomic_write_json(tmp / "info.json", info or {})
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


WEIGHTS = "model.safetensors"


def geometry_from_dict(g: dict) -> Geometry:
    return Geometry(**{**g, "vision": TowerGeometry(**g["vision"]), "text": TowerGeometry(**g["text"])})


def load_clip(out_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """The (model, vocab, geometry, info) saved by :func:`save_clip`; the model in eval mode."""
    out_dir = Path(out_dir)
    if not (out_dir / WEIGHTS).is_file():
        raise FileNotFoundError(f"no saved CLIP model in {out_dir} ({WEIGHTS} missing)")
    vocab = Vocabulary.load(out_dir / "vocab.json")
    geometry = geometry_from_dict(json.loads((out_dir / "geometry.json").read_text(encoding="utf-8")))
    model = build_model(geometry, len(vocab), seed=0)
    load_model(model, str(out_dir / WEIGHTS), device=str(device))
    info = json.loads((out_dir / "info.json").read_text(encoding="utf-8"))
    return model.to(device).eval(), vocab, geometry, info
