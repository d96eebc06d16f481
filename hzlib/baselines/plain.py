"""Plain baselines: what a linear classifier gets from pixels, from a fixed descriptor, or from the text.

Each baseline holds the whole corpus's inputs (features or texts) and labels, and is driven by item
indices, so every model of the chapter runs on the same splits:

    probe = PixelProbe(pixel_features(paths, size=32), labels, classes=classes)
    oof = hzlib.evaluate.cross_validate(probe.fit_predict, splits, n_items=len(labels), n_classes=len(classes))

``fit(train_idx)`` fits the whole scikit-learn pipeline (scaling, vocabulary, classifier) on the
training items only, so no statistic of a held-out item enters a fit. ``predict_proba(idx)`` returns
probabilities whose columns follow ``classes`` (a class absent from the training items gets 0).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..config import map_files
from ..corpus.card import factor_model
from ..normalize import NormalizeConfig, normalize
from ..text import segment


class IndexedProbe:
    """Base of the plain baselines: a scikit-learn pipeline (from :meth:`make_pipeline`) fitted on
    the items ``train_idx`` of ``inputs``. ``classes``: the probability columns' order (default: the
    sorted distinct labels). ``seed`` reaches every randomised step."""

    name = "probe"

    def __init__(self, inputs, labels: Sequence, *, classes: Sequence | None = None, seed: int = 0):
        self.inputs = inputs
        self.labels = np.asarray(labels)
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"inputs has {len(self.inputs)} items but labels has {len(self.labels)}")
        self.classes = list(classes) if classes is not None else sorted(set(self.labels.tolist()))
        missing = sorted(set(self.labels.tolist()) - set(self.classes))
        if missing:
            raise ValueError(f"labels {missing[:5]} are not in classes {self.classes}")
        self.seed = seed
        self.pipeline = None

    def make_pipeline(self):
        raise NotImplementedError

    def _take(self, idx: np.ndarray):
        if isinstance(self.inputs, np.ndarray):
            return self.inputs[idx]
        return [self.inputs[i] for i in idx]

    def _index(self, idx, name: str) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-d array of item indices")
        if idx.min() < 0 or idx.max() >= len(self.labels):
            raise ValueError(f"{name} holds indices outside 0..{len(self.labels) - 1}")
        return idx

    def fit(self, train_idx) -> "IndexedProbe":
        idx = self._index(train_idx, "train_idx")
        if len(set(self.labels[idx].tolist())) < 2:
            raise ValueError("train_idx must contain at least two classes")
        # one BLAS thread: on 2 cores, two made the pixel probe's fit ~25x slower (matrices this small
        # gain nothing from threads and lose their synchronisation at every L-BFGS iteration)
        with threadpool_limits(limits=1):
            self.pipeline = self.make_pipeline().fit(self._take(idx), self.labels[idx])
        return self

    def predict_proba(self, idx) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError(f"{type(self).__name__}.fit must be called before predict_proba")
        idx = self._index(idx, "idx")
        with threadpool_limits(limits=1):
            p = self.pipeline.predict_proba(self._take(idx))
        out = np.zeros((len(idx), len(self.classes)))
        out[:, [self.classes.index(c) for c in self.pipeline.classes_]] = p
        return out

    def fit_predict(self, train_idx, test_idx) -> np.ndarray:
        """:meth:`fit` on ``train_idx``, then :meth:`predict_proba` of ``test_idx`` (the callable that
        :func:`hzlib.evaluate.cross_validate` takes)."""
        return self.fit(train_idx).predict_proba(test_idx)

    def card(self) -> dict:
        """Name, first docstring line and the pipeline's parameters (for the chapter's table)."""
        steps = self.make_pipeline().steps
        return {"name": self.name, "what": (type(self).__doc__ or "").strip().split("\n")[0],
                "pipeline": " -> ".join(type(s).__name__ for _, s in steps),
                **{k: v for k, v in vars(self).items() if k in ("C", "pca", "analyzer", "ngram_range", "seed")}}


def _logistic(C: float, seed: int):
    return LogisticRegression(C=C, max_iter=2000, random_state=seed)


class PixelProbe(IndexedProbe):
    """Image-only linear probe on pixels: the Eq 1-3 normalised image, downsampled and flattened
    (:func:`pixel_features`), standardised, optionally reduced by PCA, then multinomial logistic
    regression. Parameters: ``C`` (inverse L2 strength), ``pca`` (components; None keeps all pixels).
    Answers: how much of the label is readable from raw colour and layout, with no learnt features."""

    name = "pixels + logistic regression"

    def __init__(self, features: np.ndarray, labels: Sequence, *, classes=None, C: float = 0.1,
                 pca: int | None = 128, seed: int = 0):
        features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        super().__init__(features, labels, classes=classes, seed=seed)
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        if pca is not None and pca < 1:
            raise ValueError(f"pca must be a positive number of components or None, got {pca}")
        self.C, self.pca = C, pca

    def make_pipeline(self):
        steps = [StandardScaler()]
        if self.pca is not None:
            steps.append(PCA(n_components=self.pca, random_state=self.seed))
        return make_pipeline(*steps, _logistic(self.C, self.seed))

    def fit(self, train_idx) -> "PixelProbe":
        n = len(self._index(train_idx, "train_idx"))
        if self.pca is not None and self.pca > min(n, self.inputs.shape[1]):
            raise ValueError(f"pca={self.pca} exceeds min(training items, features) = {min(n, self.inputs.shape[1])}")
        return super().fit(train_idx)


class DescriptorProbe(IndexedProbe):
    """Image-only linear probe on the fixed HOG + HSV-colour descriptor
    (:func:`hzlib.normalize.descriptors`; no learning in the features), standardised, then
    multinomial logistic regression. Parameter: ``C`` (inverse L2 strength). Answers: how far shape
    and palette statistics alone go."""

    name = "HOG + colour + logistic regression"

    def __init__(self, features: np.ndarray, labels: Sequence, *, classes=None, C: float = 0.1, seed: int = 0):
        super().__init__(np.asarray(features, dtype=np.float64), labels, classes=classes, seed=seed)
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        self.C = C

    def make_pipeline(self):
        return make_pipeline(StandardScaler(), _logistic(self.C, self.seed))


class FactorProbe(IndexedProbe):
    """The image ceiling: a classifier on the true generating factors of each image (read from the
    manifest, :func:`hzlib.corpus.card.factor_table`) instead of its pixels. No image model can
    separate the classes much better, since the image is drawn from these factors plus draws that do
    not depend on the class."""

    name = "true factors + logistic regression (image ceiling)"

    def __init__(self, factors, labels: Sequence, *, classes=None, seed: int = 0):
        super().__init__(factors.reset_index(drop=True), labels, classes=classes, seed=seed)

    def _take(self, idx):
        return self.inputs.iloc[idx]

    def make_pipeline(self):
        return factor_model(self.inputs)


def _jieba_words(text: str) -> list[str]:
    return segment(text)


class TextProbe(IndexedProbe):
    """Text-only classifier: TF-IDF over jieba words (``analyzer="word"``, :func:`hzlib.text.segment`)
    or over character n-grams (``analyzer="char"``), the vocabulary and IDF fitted on the training
    texts only, then multinomial logistic regression. Parameters: ``analyzer``, ``ngram_range``,
    ``C``. Answers: how much of the label the description states outright."""

    name = "TF-IDF + logistic regression"

    def __init__(self, texts: Sequence[str], labels: Sequence, *, classes=None, analyzer: str = "word",
                 ngram_range: tuple[int, int] = (1, 2), C: float = 10.0, seed: int = 0):
        if analyzer not in ("word", "char"):
            raise ValueError(f"analyzer must be 'word' or 'char', got {analyzer!r}")
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        super().__init__(list(texts), labels, classes=classes, seed=seed)
        self.analyzer, self.ngram_range, self.C = analyzer, tuple(ngram_range), C

    def make_pipeline(self):
        if self.analyzer == "word":
            vec = TfidfVectorizer(tokenizer=_jieba_words, token_pattern=None, lowercase=False,
                                  ngram_range=self.ngram_range, sublinear_tf=True)
        else:
            vec = TfidfVectorizer(analyzer="char", ngram_range=self.ngram_range, lowercase=False, sublinear_tf=True)
        return make_pipeline(vec, _logistic(self.C, self.seed))


def _pixels(args) -> np.ndarray:
    path, size = args
    cfg = NormalizeConfig(size=size, colour="channels")
    return normalize(np.asarray(Image.open(path).convert("RGB")), cfg)["equalized"].ravel()


def pixel_features(paths: Sequence, *, size: int = 32, workers: int = 1) -> np.ndarray:
    """The Eq 1-3 normalised image (:func:`hzlib.normalize.normalize` at ``size`` x ``size``, Eq 2-3 on
    each RGB channel so that the colour stays, the equalised stage, values in [0, 1]) of each file,
    flattened: (n, size * size * 3) float32."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    rows = map_files(_pixels, [(str(p), size) for p in paths], workers=workers)
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, size * size * 3), np.float32)
