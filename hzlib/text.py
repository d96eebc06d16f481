"""Chinese text for chapter 4: a real pretraining corpus, segmentation, FastText, and Eq 4.

Luo (2024) embeds sculpture descriptions with FastText (skipgram with character n-grams) and, in
Eq 4, writes a word's vector as the mean of its characters' vectors. Vectors trained only on our
generated descriptions would learn the templates rather than Chinese, so we pretrain on real text:

* corpus: the ``chinese-poetry`` 2.0.1 npm package (MIT; pinned and sha512-checked in
  :mod:`hzlib.assets`): Tang and Song shi, Song ci, Yuan qu, the Shijing, Chuci, the Four Books and
  the primers, in traditional characters, converted to simplified with OpenCC ``t2s``
  (:func:`poetry_sentences`, :data:`POETRY_SOURCES` lists exactly what is read);
* segmentation: jieba's default dictionary, precise mode with HMM (:func:`segment`);
* FastText: ``fasttext.train_unsupervised`` (skipgram, character n-grams ``minn=1``, ``maxn=2``) on
  space-separated jieba tokens (:func:`train_fasttext`); the model is saved atomically beside a JSON
  of its parameters and the sha256 of the file, and :func:`load_or_train` loads it when both match.

Continued training: the ``fasttext`` package cannot resume training a saved model (its
``pretrainedVectors`` option only initialises the *word* vectors, not the n-gram buckets that Eq 4
reads for characters). So the descriptions are added by **joint** training: pass
``poetry + descriptions`` as one sentence list. The descriptions are a small fraction of the text,
so the vectors stay those of classical Chinese while the corpus vocabulary (材质, 花岗岩, 楷书...) is
also learned.

Eq 4 versus FastText's own word vector (both are exposed):

* :func:`eq4_word_vector` — Eq 4 exactly as written: the mean over the word's characters ``c`` of
  ``model.get_word_vector(c)``.
* :func:`fasttext_word_vector` — ``model.get_word_vector(word)``: FastText averages the input vector
  of the word itself (when it is in the vocabulary) with the vectors of all its character n-grams
  (here: single characters and character bigrams, including the bigrams with the ``<``/``>`` word
  boundary markers). It therefore carries whole-word and bigram information that Eq 4 averages away;
  for a single character the two coincide.

A character vector ``model.get_word_vector(c)`` is itself FastText's composition for the one-character
word ``<c>``: the mean of the vectors of ``c`` (as a word, when in vocabulary), ``c``, ``<c`` and
``c>``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import json
import logging
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import fasttext
import jieba
import numpy as np
import opencc
import pandas as pd
from fasttext import FastText as F
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import paper

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "POETRY_SOURCES", "ModelError", "poetry_files", "poetry_sentences", "t2s", "segment",
    "train_fasttext", "load_or_train", "load_model", "eq4_word_vector", "fasttext_word_vector",
    "sentence_embedding", "sentence_embeddings", "DEFAULT_PARAMS", "split_clauses", "write_training_file",
    "model_info", "pretrain", "Mapping", "map_text_to_images", "text_statistics", "neighbours",
    "eq4_against_fasttext", "table2", "TextMap", "fit_text_map", "TABLE2_ZH", "paper_table2",
]

# --------------------------------------------------------------------------------------------------
# The poetry corpus
# --------------------------------------------------------------------------------------------------

# Files read from the package's dist/ folder (glob patterns, relative to dist/). Left out on purpose:
# strains/ (tonal patterns, not text), rank/ (popularity counts), quantangshi/error/ (poems flagged
# as damaged), authors*/author* (biographies, not poetry), quantangshi/表面结构字.json (a glyph
# table), and selections that duplicate the full collections: yudingquantangshi/ (a second edition
# of the Quan Tang shi), quantangshi/唐诗三百首.json, songci/宋词三百首.json,
# mengxue/tangshisanbaishou.json, mengxue/qianjiashi.json and mengxue/sanzijing-traditional.json
# (sanzijing-new.json is kept).
POETRY_SOURCES: tuple[str, ...] = (
    "quantangshi/poet.tang.*.json",  # Tang shi
    "quantangshi/poet.song.*.json",  # Song shi
    "quantangshi/唐诗补录.json",
    "songci/ci.song.*.json",  # Song ci (ci.song.N.json and ci.song.2019y.json)
    "yuanqu/yuanqu.json",
    "wudaishici/huajianji/huajianji-*-juan.json",
    "wudaishici/nantang/poetrys.json",
    "shijing/shijing.json",
    "chuci/chuci.json",
    "lunyu/lunyu.json",
    "sishuwujing/*.json",
    "mengxue/baijiaxing.json", "mengxue/dizigui.json", "mengxue/guwenguanzhi.json",
    "mengxue/qianziwen.json", "mengxue/sanzijing-new.json", "mengxue/shenglvqimeng.json",
    "mengxue/wenzimengqiu.json", "mengxue/youxueqionglin.json", "mengxue/zengguangxianwen.json",
    "mengxue/zhuzijiaxun.json",
    "caocaoshiji/caocao.json",
    "nalanxingde/*.json",
    "shuimotangshi/shuimotangshi.json",
    "youmengying/youmengying.json",
)
# JSON keys whose values are the primary text (strings, lists of strings, or nested records); every
# other key (title, author, notes, prologue, comment, abstract, biography...) is metadata and skipped.
_TEXT_KEYS = frozenset({"paragraphs", "content", "para"})

# Clause boundaries: Chinese and ASCII punctuation, brackets, quotes and whitespace. Within a clause
# only CJK ideographs are kept (this drops □ placeholders for lost characters, digits, and Latin).
_SPLIT = re.compile(r"[\s，。！？；：、,.!?;:·・…—\-\"'“”‘’「」『』《》〈〉（）()\[\]【】{}<>/|]+")
_NON_HAN = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af]+")


def poetry_files(poetry_dir: str | os.PathLike) -> list[Path]:
    """The JSON files of :data:`POETRY_SOURCES` in ``poetry_dir`` (the package folder or its dist/),
    sorted by relative path. Raises FileNotFoundError if a pattern matches nothing."""
    root = Path(poetry_dir)
    if (root / "dist").is_dir():
        root = root / "dist"
    files: list[Path] = []
    for pattern in POETRY_SOURCES:
        found = sorted(root.glob(pattern))
        if not found:
            raise FileNotFoundError(f"no file matches {pattern!r} under {root}: is this chinese-poetry 2.0.1?")
        files += found
    return sorted(dict.fromkeys(files), key=lambda p: p.relative_to(root).as_posix())


def _texts(node, take: bool = False) -> Iterable[str]:
    """Primary-text strings of a JSON value, depth first, in file order."""
    if isinstance(node, str):
        if take:
            yield node
    elif isinstance(node, list):
        for x in node:
            yield from _texts(x, take)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k in _TEXT_KEYS:
                yield from _texts(v, True)
            elif isinstance(v, (list, dict)):
                yield from _texts(v, False)


def split_clauses(text: str) -> list[str]:
    """Clauses of ``text`` at punctuation, whitespace and brackets, keeping ideographs only."""
    out = []
    for part in _SPLIT.split(text):
        part = _NON_HAN.sub("", part)
        if part:
            out.append(part)
    return out


@functools.lru_cache(maxsize=1)
def _converter():
    return opencc.OpenCC("t2s")


def t2s(text: str) -> str:
    """Traditional to simplified Chinese with OpenCC's ``t2s`` profile (one converter per process)."""
    return _converter().convert(text)


def _file_sentences(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    # Convert once per file (OpenCC works on whole phrases, so convert before splitting).
    text = t2s("\n".join(_texts(data)))
    return split_clauses(text)


def poetry_sentences(poetry_dir: str | os.PathLike, *, limit_chars: int | None = None,
                     seed: int = 0) -> list[str]:
    """Simplified-Chinese clauses of the chinese-poetry collections (see :data:`POETRY_SOURCES`).

    Full corpus (``limit_chars=None``): files in sorted path order, clauses in file order.
    Subset (``limit_chars=N``, the smoke profile): the files are shuffled with
    ``random.Random(seed)`` and clauses are taken in that file order until the clauses taken hold at
    least N characters (the last clause is kept whole). Only the files needed are read.
    Both are deterministic: the same directory, N and seed give the same list.
    """
    files = poetry_files(poetry_dir)
    if limit_chars is None:
        return [s for f in files for s in _file_sentences(f)]
    if limit_chars <= 0:
        raise ValueError(f"limit_chars must be positive, got {limit_chars}")
    random.Random(seed).shuffle(files)
    out, n = [], 0
    for f in files:
        for s in _file_sentences(f):
            out.append(s)
            n += len(s)
            if n >= limit_chars:
                return out
    return out


# --------------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _tokenizer():
    """jieba's default dictionary, loaded once without its start-up messages."""
    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    tk.initialize()
    return tk


def segment(text: str) -> list[str]:
    """jieba tokens of ``text`` (precise mode, HMM on; deterministic), whitespace tokens dropped."""
    return [w for w in _tokenizer().lcut(text, HMM=True) if w.strip()]


def _has_word_char(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


# --------------------------------------------------------------------------------------------------
# FastText
# --------------------------------------------------------------------------------------------------

class ModelError(RuntimeError):
    """A saved FastText model is missing, corrupted, or does not match its parameters."""


# Skipgram with character unigrams and bigrams as subwords (Chinese words are 1-4 characters, so
# minn=1, maxn=2 covers characters and their pairs). bucket 200k (vs FastText's 2M) keeps the model
# file ~80 MB at dim 100; the corpus has ~10k characters and a few hundred thousand bigrams.
DEFAULT_PARAMS: dict = dict(model="skipgram", dim=100, epoch=5, minn=1, maxn=2, ws=5, neg=5, lr=0.05,
                            minCount=5, bucket=200_000, thread=2, seed=0)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _params_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".json")


def _segment_block(block: Sequence[str]) -> list[str]:
    out = []
    for s in block:
        toks = [t for t in segment(s) if _has_word_char(t)]
        if toks:
            out.append(" ".join(toks))
    return out


def write_training_file(sentences: Iterable[str], path: str | os.PathLike, *, processes: int = 1,
                        block: int = 20_000) -> dict:
    """Segment each sentence with jieba and write one line of space-separated tokens per sentence
    (punctuation-only tokens dropped, empty lines skipped). ``processes > 1`` segments blocks of
    ``block`` sentences in forked worker processes; the output is identical (blocks keep their
    order). Returns counts: sentences, tokens, characters."""
    sentences = list(sentences)
    blocks = [sentences[i:i + block] for i in range(0, len(sentences), block)]
    n_sent = n_tok = n_chr = 0
    _tokenizer()  # load the dictionary before forking, so workers inherit it
    with open(path, "w", encoding="utf-8") as f:
        if processes > 1 and len(blocks) > 1:
            with get_context("fork").Pool(processes) as pool:
                results = pool.imap(_segment_block, blocks)
                for lines in results:
                    n_sent, n_tok, n_chr = _write_lines(f, lines, n_sent, n_tok, n_chr)
        else:
            for b in blocks:
                n_sent, n_tok, n_chr = _write_lines(f, _segment_block(b), n_sent, n_tok, n_chr)
    return {"sentences": n_sent, "tokens": n_tok, "characters": n_chr}


def _write_lines(f, lines, n_sent, n_tok, n_chr):
    for line in lines:
        f.write(line + "\n")
        toks = line.split(" ")
        n_sent, n_tok, n_chr = n_sent + 1, n_tok + len(toks), n_chr + sum(map(len, toks))
    return n_sent, n_tok, n_chr


def train_fasttext(sentences: Iterable[str], out_path: str | os.PathLike, *, dim: int = 100,
                   epoch: int = 5, minn: int = 1, maxn: int = 2, seed: int = 0, thread: int = 2,
                   extra: dict | None = None, processes: int | None = None, **params):
    """Train a FastText skipgram on jieba-segmented ``sentences`` and save it atomically.

    Keyword arguments beyond the named ones are passed to ``fasttext.train_unsupervised`` (ws, neg,
    lr, minCount, bucket...; defaults in :data:`DEFAULT_PARAMS`). With ``thread=1`` and a fixed
    ``seed`` the vectors are reproducible bit for bit; with more threads FastText's Hogwild updates
    make them vary slightly between runs. ``processes`` (default: ``thread``) is the number of
    processes that segment the text (:func:`write_training_file`). Writes ``out_path`` and ``out_path + ".json"`` (the
    parameters, the file's sha256, corpus counts, timings, and ``extra``). Returns the model.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    p = {**DEFAULT_PARAMS, **params, "dim": dim, "epoch": epoch, "minn": minn, "maxn": maxn,
         "seed": seed, "thread": thread}
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".ft-") as tmp:
        t0 = time.perf_counter()
        corpus = Path(tmp) / "corpus.txt"
        counts = write_training_file(sentences, corpus, processes=processes or thread)
        t1 = time.perf_counter()
        tmp_model = Path(tmp) / "model.bin"
        # In a fresh process: its heap hands FastText zeroed pages (see _zero_fresh_allocations), which
        # a long-lived process (a notebook, the test run) cannot promise once memory has been recycled.
        with get_context("spawn").Pool(1) as pool:
            n_words = pool.apply(_train_and_save, (str(corpus), str(tmp_model), p))
        t2 = time.perf_counter()
        meta = {"params": p, "extra": extra or {}, "corpus": counts, "sha256": _sha256(tmp_model),
                "segment_seconds": round(t1 - t0, 3), "train_seconds": round(t2 - t1, 3),
                "tokens_per_second": round(counts["tokens"] * p["epoch"] / max(t2 - t1, 1e-9)),
                "fasttext_words": n_words}
        tmp_meta = Path(tmp) / "meta.json"
        tmp_meta.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp_model, out_path)
        os.replace(tmp_meta, _params_path(out_path))
    return load_model(out_path)


def _train_and_save(corpus: str, model_path: str, params: dict) -> int:
    """Train and save (run in a spawned child process); returns the vocabulary size."""
    model = _train_unsupervised(corpus, verbose=0, **params)
    model.save_model(model_path)
    return len(model.words)


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


@functools.lru_cache(maxsize=1)
def _zero_fresh_allocations() -> bool:
    """Make large allocations fresh (zero-filled) pages, so FastText's matrices start deterministic.

    fasttext 0.9.3 initialises its input matrix (words + n-gram buckets) at random only in blocks of
    a tenth, one block per thread (``DenseMatrix::uniformThread``): with ``thread=1`` rows beyond the
    first 10 % keep whatever the allocator returns. In a fresh process that is zeros (a new mmap), but
    after earlier allocations glibc may hand back recycled heap memory: vectors then differ between
    runs and tiny models even raise "Encountered NaN". Fixing glibc's mmap threshold at 32 KiB (which
    also stops it from growing) makes every allocation of that size a fresh, zeroed mapping, so the
    uninitialised rows are always zero. Process-wide and harmless for Python's small objects; a no-op
    where glibc's ``mallopt`` is not available. Returns whether it was applied.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024))
    except (OSError, AttributeError):
        return False


def _train_unsupervised(input: str, **kw):
    """``fasttext.train_unsupervised`` with ``seed`` honoured.

    fasttext 0.9.3's Python wrapper lists ``seed`` in its defaults but rejects it as a keyword of
    ``train_unsupervised`` (only ``train_supervised`` accepts it), although the C++ trainer uses
    ``args.seed`` for both (matrix initialisation and each thread's RNG). So we build the arguments
    the way the wrapper does and call the trainer ourselves.
    """
    unknown = set(kw) - set(F.unsupervised_default)
    if unknown:
        raise TypeError(f"unexpected FastText parameter(s): {', '.join(sorted(unknown))}")
    _zero_fresh_allocations()
    args = {**F.unsupervised_default, **kw, "input": input}
    a = F._build_args(args, set(kw) | {"input"})
    ft = F._FastText(args=a)
    try:
        F.fasttext.train(ft.f, a)
    except RuntimeError as e:  # "Encountered NaN": seen on tiny, repetitive corpora
        raise ModelError(f"FastText training on {input} failed: {e} (lr={args['lr']}, dim={args['dim']}); "
                         f"on a tiny corpus set t=1.0 (no subsampling) or lower lr") from None
    ft.set_args(ft.f.getArgs())
    return ft


def model_info(out_path: str | os.PathLike) -> dict:
    """The JSON written beside a model by :func:`train_fasttext`."""
    pp = _params_path(Path(out_path))
    try:
        return json.loads(pp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the parameters of model {out_path} from {pp}: {e}") from None


def load_model(out_path: str | os.PathLike):
    """Load a model saved by :func:`train_fasttext`, after checking its sha256 against the JSON
    beside it (so a truncated or corrupted file gives a ModelError naming it, not a crash in C++)."""
    out_path = Path(out_path)
    if not out_path.is_file():
        raise ModelError(f"FastText model {out_path} does not exist")
    info = model_info(out_path)
    digest = _sha256(out_path)
    if digest != info.get("sha256"):
        raise ModelError(f"FastText model {out_path} is corrupted (sha256 {digest[:12]}… does not match "
                         f"{str(info.get('sha256'))[:12]}… recorded in {_params_path(out_path).name}); "
                         f"delete it to retrain")
    try:
        return fasttext.load_model(str(out_path))
    except Exception as e:  # fasttext raises ValueError on a bad header
        raise ModelError(f"cannot load FastText model {out_path}: {e}") from None


def load_or_train(out_path: str | os.PathLike, sentences: Sequence[str] | Callable[[], Sequence[str]], *,
                  corpus_id: str | None = None, processes: int | None = None, **params):
    """Load the model at ``out_path`` if it was trained with the same parameters on the same corpus,
    else train it (:func:`train_fasttext`) and save it there.

    ``sentences``: a list, or a zero-argument callable returning one (called only when training, so
    loading never reads the corpus). ``corpus_id`` names the corpus (e.g.
    ``"chinese-poetry@2.0.1 limit=None + descriptions <sha>"``); without it the sha256 of the
    sentences is used, which needs them materialised. ``processes`` segment the text (it does not
    change the model, so it is not one of the parameters compared). Returns ``(model, trained: bool)``.
    """
    out_path = Path(out_path)
    p = {**DEFAULT_PARAMS, **params}
    if corpus_id is None:
        if callable(sentences):
            sentences = sentences()
        h = hashlib.sha256()
        for s in sentences:
            h.update(s.encode("utf-8") + b"\n")
        corpus_id = "sha256:" + h.hexdigest()
    if out_path.is_file() and _params_path(out_path).is_file():
        info = model_info(out_path)
        if info.get("params") == p and info.get("extra", {}).get("corpus_id") == corpus_id:
            return load_model(out_path), False
    if callable(sentences):
        sentences = sentences()
    return train_fasttext(sentences, out_path, extra={"corpus_id": corpus_id}, processes=processes, **p), True


def pretrain(out_path: str | os.PathLike, poetry_dir: str | os.PathLike, descriptions: Sequence[str], *,
             limit_chars: int | None = None, seed: int = 0, **params):
    """FastText trained jointly on chinese-poetry (all of it, or a seeded subset of ``limit_chars``
    characters) and the corpus ``descriptions`` (their text only, never their labels); loaded from
    ``out_path`` when it was trained on the same corpus with the same parameters. Returns
    ``(model, trained)``."""
    desc = [d for d in descriptions if isinstance(d, str) and d]
    h = hashlib.sha256("\n".join(desc).encode("utf-8")).hexdigest()[:16]
    corpus_id = (f"{Path(poetry_dir).resolve().parent.name} limit_chars={limit_chars} seed={seed} "
                 f"+ {len(desc)} descriptions sha256:{h}")
    return load_or_train(out_path, lambda: poetry_sentences(poetry_dir, limit_chars=limit_chars, seed=seed) + desc,
                         corpus_id=corpus_id, **{"seed": seed, **params})


# --------------------------------------------------------------------------------------------------
# Eq 4 and sentence embeddings
# --------------------------------------------------------------------------------------------------

def eq4_word_vector(model, word: str) -> np.ndarray:
    """Eq 4 as written: the mean over the characters of ``word`` of ``model.get_word_vector(ch)``."""
    if not word:
        raise ValueError("eq4_word_vector needs a non-empty word")
    return np.mean([np.asarray(model.get_word_vector(ch), dtype=np.float64) for ch in word], axis=0)


def fasttext_word_vector(model, word: str) -> np.ndarray:
    """FastText's own subword vector: mean of the word's vector (if in vocabulary) and its n-gram
    vectors, i.e. ``model.get_word_vector(word)``."""
    return np.asarray(model.get_word_vector(word), dtype=np.float64)


def sentence_embedding(model, text: str) -> np.ndarray:
    """L2-normalised mean of the Eq 4 vectors of the jieba tokens of ``text`` (tokens without a
    letter, digit or ideograph, i.e. punctuation, are skipped; each token counts once whatever its
    length). A text with no such token, or whose mean is zero, gives the zero vector."""
    toks = [t for t in segment(text) if _has_word_char(t)]
    if not toks:
        return np.zeros(model.get_dimension())
    v = np.mean([eq4_word_vector(model, t) for t in toks], axis=0)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def sentence_embeddings(model, texts: Sequence[str]) -> np.ndarray:
    """:func:`sentence_embedding` of each text, stacked into an (n, dim) float64 array."""
    if not texts:
        return np.zeros((0, model.get_dimension()))
    return np.stack([sentence_embedding(model, t) for t in texts])


# --------------------------------------------------------------------------------------------------
# Text -> image space: the paper's "weight matrix is adjusted" so text lands beside its image
# --------------------------------------------------------------------------------------------------

@dataclass
class Mapping:
    """Out-of-fold results of :func:`map_text_to_images`; row i belongs to fold ``fold[i]`` and every
    similarity is measured in that fold's image space, against that fold's held-out images only."""

    fold: np.ndarray  # (n,) fold index
    paired: np.ndarray  # (n,) cos(mapped text i, image i)
    unpaired: np.ndarray  # (n,) mean over held-out images j != i of cos(mapped text i, image j)
    rank: np.ndarray  # (n,) rank of image i among the fold's images for text i (1 = nearest)
    fold_size: np.ndarray  # (n,) number of held-out images ranked for row i
    alpha: list  # ridge penalty chosen inside each training fold
    n_components: int

    @property
    def gap(self) -> np.ndarray:
        return self.paired - self.unpaired


@dataclass
class TextMap:
    """A linear map from text embeddings into an image space, fitted on paired rows by
    :func:`fit_text_map`: ``space`` turns image embeddings into the image space (standardisation, PCA),
    ``ridge`` turns text embeddings into that space (standardisation, ridge regression)."""

    space: object
    ridge: object

    @property
    def alpha(self) -> float:
        return float(self.ridge[-1].alpha_)

    def images(self, image_emb: np.ndarray) -> np.ndarray:
        """Unit rows of the images in the image space."""
        return _unit(self.space.transform(np.asarray(image_emb, np.float64)))

    def texts(self, text_emb: np.ndarray) -> np.ndarray:
        """Unit rows of the mapped texts in the image space."""
        return _unit(self.ridge.predict(np.asarray(text_emb, np.float64)))

    def similarity(self, text_emb: np.ndarray, image_emb: np.ndarray) -> np.ndarray:
        """S[a, b] = cos(mapped text a, image b)."""
        return self.texts(text_emb) @ self.images(image_emb).T


def fit_text_map(text_emb: np.ndarray, image_emb: np.ndarray, *, n_components: int = 64,
                 alphas: Sequence[float] = tuple(np.logspace(-2, 4, 13)), seed: int = 0) -> TextMap:
    """The paper's "weight matrix is adjusted" so that text lands beside its image (section 3), on
    paired rows: the image embeddings are standardised and reduced by PCA to ``n_components`` (the
    image space), and a ridge regression text -> image space is fitted on standardised text
    embeddings, its penalty chosen among ``alphas`` by efficient leave-one-out (``RidgeCV``)."""
    X, Y = np.asarray(text_emb, np.float64), np.asarray(image_emb, np.float64)
    if len(X) != len(Y):
        raise ValueError(f"text_emb ({len(X)}) and image_emb ({len(Y)}) differ in length")
    k_comp = min(n_components, len(Y) - 1, Y.shape[1])
    space = make_pipeline(StandardScaler(), PCA(k_comp, random_state=seed)).fit(Y)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)).fit(X, space.transform(Y))
    return TextMap(space, ridge)


def map_text_to_images(text_emb: np.ndarray, image_emb: np.ndarray, labels: Sequence, *, n_splits: int = 5,
                       n_components: int = 64, alphas: Sequence[float] = tuple(np.logspace(-2, 4, 13)),
                       seed: int = 0) -> Mapping:
    """Learn a linear map W from text embeddings to an image embedding space and measure it out of fold.

    Stratified ``n_splits``-fold by ``labels``. In each training fold only, :func:`fit_text_map` builds
    the image space and the map. The held-out texts are then mapped, and each is compared by cosine
    with its own image and with the other held-out images. Nothing about a held-out pair is seen
    before it is scored."""
    X, Y, y = np.asarray(text_emb, np.float64), np.asarray(image_emb, np.float64), np.asarray(labels)
    if len(X) != len(Y) or len(X) != len(y):
        raise ValueError(f"text_emb ({len(X)}), image_emb ({len(Y)}) and labels ({len(y)}) differ in length")
    n = len(X)
    fold, paired, unpaired = np.empty(n, int), np.empty(n), np.empty(n)
    rank, size, chosen = np.empty(n, int), np.empty(n, int), []
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(X, y)):
        tmap = fit_text_map(X[tr], Y[tr], n_components=n_components, alphas=alphas, seed=seed)
        chosen.append(tmap.alpha)
        S = tmap.similarity(X[te], Y[te])  # S[a, b] = cos(mapped text a, image b), held-out rows only
        diag = np.diag(S)
        fold[te], paired[te] = k, diag
        unpaired[te] = (S.sum(1) - diag) / max(len(te) - 1, 1)
        rank[te] = 1 + (S > diag[:, None]).sum(1)
        size[te] = len(te)
    return Mapping(fold, paired, unpaired, rank, size, chosen, n_components)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def text_statistics(model, text: str) -> dict:
    """Length and vocabulary of one description: 汉字 count, jieba tokens (punctuation dropped),
    distinct tokens (the text's vocabulary size) and how many of those FastText knows as whole words
    (the rest get vectors from their characters and bigrams only)."""
    toks = [t for t in segment(text) if _has_word_char(t)]
    distinct = set(toks)
    known = sum(1 for t in distinct if model.get_word_id(t) >= 0)
    return {"characters": len(_NON_HAN.sub("", text)), "tokens": len(toks), "vocabulary": len(distinct),
            "in_fasttext_vocabulary": known}


def neighbours(model, words: Sequence[str], k: int = 6) -> "pd.DataFrame":
    """FastText's nearest neighbours (cosine) of each word, one row per (word, rank)."""
    rows = [{"word": w, "rank": r + 1, "neighbour": nb, "cosine": float(s)}
            for w in words for r, (s, nb) in enumerate(model.get_nearest_neighbors(w, k))]
    return pd.DataFrame(rows)


def eq4_against_fasttext(model, words: Sequence[str]) -> "pd.DataFrame":
    """Cosine between Eq 4's vector and FastText's own subword vector for each word (1.0 for a single
    character, where the two coincide)."""
    rows = []
    for w in words:
        a, b = eq4_word_vector(model, w), fasttext_word_vector(model, w)
        cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        rows.append({"word": w, "characters": len(w), "in_vocabulary": model.get_word_id(w) >= 0,
                     "cosine_eq4_fasttext": cos})
    return pd.DataFrame(rows)


def table2(df: "pd.DataFrame", model, mapping: Mapping, coords: np.ndarray, rows: Sequence[int]) -> "pd.DataFrame":
    """The columns of the paper's Table 2 for the given row positions of ``df`` (its ``text`` column):
    the text, its 2-D position (``coords``), the out-of-fold similarity to its own image against the
    mean over the fold's other images, the rank of its image, the text's vocabulary size and length."""
    out = []
    for i in rows:
        st = text_statistics(model, df["text"].iloc[i])
        out.append({"id": df["id"].iloc[i], "class": df["label"].iloc[i], "text": df["text"].iloc[i],
                    "x": float(coords[i, 0]), "y": float(coords[i, 1]),
                    "similarity_paired": float(mapping.paired[i]),
                    "similarity_unpaired_mean": float(mapping.unpaired[i]),
                    "image_rank": f"{int(mapping.rank[i])}/{int(mapping.fold_size[i])}",
                    "vocabulary": st["vocabulary"], "in_fasttext_vocabulary": st["in_fasttext_vocabulary"],
                    "length_characters": st["characters"]})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------------
# Table 2: the paper's five texts on our corpus
# --------------------------------------------------------------------------------------------------

# The paper prints Table 2's texts in English under the heading "Chinese text" (hzlib.paper.TABLE2).
# These are OUR translations into Chinese, so that FastText, jieba and Eq 4 can read them; the English
# original stays beside them wherever they are shown.
TABLE2_ZH: dict[str, str] = {
    "001": "古典风格的雕塑",
    "002": "现代创新设计的中国雕塑",
    "003": "传统文化的表达",
    "004": "抽象艺术作品",
    "005": "当代艺术家的独特创作",
}


def paper_table2(model, pca, text_map: TextMap, image_emb: np.ndarray, df: "pd.DataFrame", *,
                 k: int = 5) -> "pd.DataFrame":
    """Table 2's columns for the paper's five texts (:data:`hzlib.paper.TABLE2`, read in our Chinese
    translation :data:`TABLE2_ZH`), computed on our corpus, beside the paper's values.

    ``pca``: the fitted 2-D PCA of the corpus's sentence embeddings (the map of chapter 4), which
    places each text; ``text_map``: :func:`fit_text_map` on all the corpus's pairs (these texts are
    none of the corpus's, so nothing is held out); ``image_emb``: the image embeddings of the rows of
    ``df`` (its ``id`` and ``label`` columns name the images). *Similarity* is the cosine of the mapped
    text with its best-matching image, with that image and the mean over the ``k`` best; *vocabulary*
    the distinct jieba words of the text (and how many FastText knows as whole words); *length* its
    汉字. ``ours`` sums a row up in one line."""
    rows = []
    images = text_map.images(image_emb)
    for r in paper.TABLE2:
        zh = TABLE2_ZH[r.text_id]
        emb = sentence_embedding(model, zh)[None]
        x, y = (float(v) for v in pca.transform(emb)[0])
        sims = text_map.texts(emb)[0] @ images.T
        top = np.argsort(-sims, kind="stable")[:k]
        st = text_statistics(model, zh)
        best_id, best_class = df["id"].iloc[top[0]], df["label"].iloc[top[0]]
        rows.append({"text_id": r.text_id, "text (paper, English)": r.text, "text (our Chinese translation)": zh,
                     "x": x, "y": y, "paper: position": f"({r.position[0]:g}, {r.position[1]:g})",
                     "similarity (best image)": float(sims[top[0]]), "best image": f"{best_id} ({best_class})",
                     f"similarity (mean of best {k})": float(sims[top].mean()), "paper: similarity": r.similarity,
                     "vocabulary": st["vocabulary"], "in_fasttext_vocabulary": st["in_fasttext_vocabulary"],
                     "paper: vocabulary": r.vocabulary, "length_characters": st["characters"],
                     "paper: length": r.length,
                     "ours": f"position ({x:.2f}, {y:.2f}); similarity {sims[top[0]]:.3f} with {best_id} "
                             f"({best_class}); vocabulary {st['vocabulary']}; length {st['characters']}"})
    return pd.DataFrame(rows).set_index("text_id")
