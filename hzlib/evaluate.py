"""Section 6 of the paper: evaluation (Eq 12-17), its uncertainty, the protocols and the timing.

Metrics
-------
Every metric is computed from predicted class probabilities ``proba`` (n items x K classes, rows
summing to 1) and true class indices ``y`` (0..K-1). The predicted class is the arg-max of a row
(ties go to the lowest class index, as scikit-learn's ``predict`` does). Per class c, one-vs-rest:

* Eq 12 precision_c = TP / (TP + FP), Eq 13 recall_c = TP / (TP + FN),
  Eq 14 F1_c = 2 TP / (2 TP + FP + FN) (= 2PR / (P + R)); an empty denominator gives 0, as
  scikit-learn's ``zero_division=0``.
* Eq 15 accuracy_c = (TP + TN) / N, **one-vs-rest**: the share of items whose "is it c?" decision is
  right. This is what a per-attribute accuracy can mean. Its macro mean is 1 - 2 e / K where e is the
  top-1 error rate (each error is one FP and one FN), so with K = 10 a top-1 accuracy of 0.90 reads
  as 0.98: ``top1_accuracy`` (the share of items whose arg-max is right) is reported beside it.
* AUC_c: area under the one-vs-rest ROC curve of the score proba[:, c] (Mann-Whitney statistic,
  ties count one half); undefined (NaN) when c is absent from ``y`` or is every item.
* Eq 16-17, which the paper leaves undefined, are taken between the probability vector and the
  one-hot truth Y: RMSE_c = sqrt(mean_i (p_ic - Y_ic)^2), MAE_c = mean_i |p_ic - Y_ic|.
  Macro: RMSE = sqrt(mean over all n K entries) (= sqrt of the mean per-class MSE, = sqrt(Brier / K)),
  MAE = mean over all entries.
* Macro = the unweighted mean over classes (AUC: over classes where it is defined).

The scalar metrics are computed with numpy (confusion counts, ranks) rather than by calling
scikit-learn, because the bootstrap evaluates them ~1000 times per model and ``roc_auc_score`` costs
milliseconds per class; ``tests/test_evaluate.py`` checks every number against scikit-learn's
``precision_recall_fscore_support``, ``accuracy_score``, ``roc_auc_score``, ``mean_squared_error`` and
``mean_absolute_error``. ROC curves come from ``sklearn.metrics.roc_curve``. In :func:`metric_cis`'s
bootstrap the AUC of a resample is read from its multiplicities over scores sorted once
(:func:`resampled_auc`; the same values as ranking every resample, ~7x cheaper).

Uncertainty
-----------
95% percentile-bootstrap intervals over items, seeded. Metrics that are means over items (top-1
accuracy, one-vs-rest accuracy, MAE) use :func:`hzlib.stats.mean_ci` on per-item values; the others
(precision, recall, F1, AUC, RMSE) use :func:`bootstrap`, which resamples item indices and recomputes
the statistic. :func:`paired_comparison` compares two models on the same items.

Protocols (what the backbone saw)
---------------------------------
* :func:`loo_logistic` / :func:`loo_logistic_newton` / :func:`loo_ridge`: protocol (a), our shortcut to
  leave-one-out, head only, on **frozen** embeddings. Only the head is refitted without item i; the
  backbone that made the embeddings was trained on every item, including i (and on its text). This is
  leaky and is not the paper's protocol: the paper's leave-one-out (section 6) trains the model on the
  remaining samples in each round, which would mean 1,850 backbones per model; it is no estimate of
  performance on new sculptures.
* :func:`kfold_splits` + :func:`cross_validate`: stratified k-fold, the same folds for every model
  (fixed by seed). The caller's ``fit_predict(train_idx, test_idx)`` must train *everything*
  (backbone and head) on ``train_idx`` only; then no part of a model ever sees its held-out fold.

Heads and probes
----------------
:func:`fit_head` (standardisation + multinomial logistic regression, C chosen from :data:`DEFAULT_CS`
by inner stratified CV on macro-F1, on the rows it is given only) is the head of every protocol and
the linear probe: :func:`probe` fits it on training rows and scores test rows with bootstrap CIs;
:func:`paired_probe_difference` compares two probes on the same test items; :func:`linear_weights`
folds the standardisation into the weights (raw features -> logits), for Grad-CAM.
"""
from __future__ import annotations

import time
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import parallel_config
from scipy.stats import binomtest, rankdata
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import f1_score, make_scorer, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .config import hardware
from .report import ci_column, ci_text, skipped
from .stats import mean_ci

METRICS = ("precision", "recall", "f1", "accuracy", "auc", "rmse", "mae")
MEAN_METRICS = ("accuracy", "mae", "top1_accuracy")  # means over items: their CIs come from mean_ci


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

def encode_labels(labels: Sequence, classes: Sequence) -> np.ndarray:
    """Class indices of ``labels`` in the order of ``classes`` (the columns of a probability matrix)."""
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError(f"classes contains duplicates: {list(classes)}")
    unknown = sorted({str(v) for v in labels if v not in index})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not in classes {list(classes)}")
    return np.array([index[v] for v in labels], dtype=np.int64)


def _check(y, proba, atol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if P.ndim != 2 or P.shape[1] < 2:
        raise ValueError(f"proba must be (n items, K >= 2 classes), got shape {P.shape}")
    if y.ndim != 1 or len(y) != len(P):
        raise ValueError(f"y must be 1-d with one label per row of proba ({len(P)}), got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("y and proba are empty")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= P.shape[1]:
        raise ValueError(f"y must hold class indices in 0..{P.shape[1] - 1} (see encode_labels)")
    if not np.isfinite(P).all() or (P < -atol).any() or not np.allclose(P.sum(1), 1.0, atol=atol):
        raise ValueError("proba rows must be finite, non-negative and sum to 1")
    return y.astype(np.int64), P


def _names(classes, K: int) -> list[str]:
    if classes is None:
        return [str(i) for i in range(K)]
    if len(classes) != K:
        raise ValueError(f"classes has {len(classes)} names for {K} probability columns")
    return [str(c) for c in classes]


# --------------------------------------------------------------------------------------------------
# Eq 12-17
# --------------------------------------------------------------------------------------------------

def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def per_class(y: np.ndarray, P: np.ndarray, *, auc: bool = True) -> dict[str, np.ndarray]:
    """The metrics of :data:`METRICS` for each class (arrays of length K), plus ``support`` and
    ``top1_accuracy`` (a scalar). ``y``, ``P`` are assumed checked (see :func:`metric_table`).
    ``auc=False`` skips the ranking (the costly part) and leaves AUC as NaN."""
    n, K = P.shape
    pred = P.argmax(1)
    cm = np.bincount(y * K + pred, minlength=K * K).reshape(K, K).astype(np.float64)
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    tn = n - tp - fp - fn
    Y = np.eye(K)[y]
    err = P - Y
    npos = Y.sum(0)
    nneg = n - npos
    # Mann-Whitney: AUC = (rank sum of positives - npos(npos+1)/2) / (npos nneg), average ranks for ties
    if auc:
        ranks = rankdata(P, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * Y).sum(0) - npos * (npos + 1) / 2) / (npos * nneg)
        auc[(npos == 0) | (nneg == 0)] = np.nan
    else:
        auc = np.full(K, np.nan)
    return {"precision": _safe_div(tp, tp + fp), "recall": _safe_div(tp, tp + fn),
            "f1": _safe_div(2 * tp, 2 * tp + fp + fn), "accuracy": (tp + tn) / n, "auc": auc,
            "rmse": np.sqrt((err ** 2).mean(0)), "mae": np.abs(err).mean(0), "support": npos,
            "top1_accuracy": float((pred == y).mean())}


def resampled_auc(y: np.ndarray, P: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The AUCs of :func:`per_class` for the items taken with multiplicities ``w`` (n,) (a bootstrap
    resample ``idx`` is ``w = np.bincount(idx, minlength=n)``), with no sort per resample: each column
    of ``P`` is sorted once here, and the returned ``auc(w)`` sums over the sorted order

        AUC_c = sum_{i pos} w_i (W_neg(s < s_i) + W_neg(s = s_i) / 2) / (W_pos W_neg),

    W_neg(.) the total multiplicity of the negatives in a range of scores (cumulative sums within tie
    groups of equal scores). This is the Mann-Whitney statistic with ties counted one half, i.e. the
    rank sum with average ranks of the resample's items: both compute the same integer-or-half numerator
    exactly and divide once, so the values are identical, not only close. NaN where a class is absent
    from the resample or is every item. ``y``, ``P`` are assumed checked (see :func:`metric_table`)."""
    n, K = P.shape
    order = np.argsort(P, axis=0, kind="stable")
    s = np.take_along_axis(P, order, 0)
    pos = y[order] == np.arange(K)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, K))
    starts = np.ones((n, K), dtype=bool)
    starts[1:] = s[1:] != s[:-1]
    ends = np.ones((n, K), dtype=bool)
    ends[:-1] = starts[1:]
    # into the cumulative sums with a leading 0 row: the rows before an item's tie group, and to its end
    below = np.maximum.accumulate(np.where(starts, rows, 0), axis=0) * K + np.arange(K)
    upto = (np.minimum.accumulate(np.where(ends, rows, n - 1)[::-1], axis=0)[::-1] + 1) * K + np.arange(K)

    def auc(w: np.ndarray) -> np.ndarray:
        W = np.asarray(w, dtype=np.int64)[order]
        Wp = W * pos
        Wn = W - Wp
        cum = np.zeros((n + 1, K), dtype=np.int64)
        np.cumsum(Wn, axis=0, out=cum[1:])
        cum = cum.ravel()
        twice_u = (Wp * (cum[below] + cum[upto])).sum(0)  # exact integers
        npos, nneg = Wp.sum(0), Wn.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = twice_u / 2 / (npos * nneg)
        out[(npos == 0) | (nneg == 0)] = np.nan
        return out

    return auc


def _macro(m: dict[str, np.ndarray]) -> dict[str, float]:
    out = {k: float(np.mean(m[k])) for k in ("precision", "recall", "f1", "accuracy", "mae")}
    out["auc"] = float(np.nanmean(m["auc"])) if np.isfinite(m["auc"]).any() else float("nan")
    out["rmse"] = float(np.sqrt(np.mean(m["rmse"] ** 2)))  # RMSE over all n K entries
    out["support"] = float(m["support"].sum())
    out["top1_accuracy"] = m["top1_accuracy"]
    return out


def metric_table(y, proba, *, classes: Sequence | None = None) -> pd.DataFrame:
    """Eq 12-17 per class and macro: rows = class names + ``"macro"``, columns = :data:`METRICS`,
    ``support`` and ``top1_accuracy`` (the share of items whose arg-max is right; only in the macro
    row, since per class it equals recall). ``y``: class indices into the columns of ``proba``."""
    y, P = _check(y, proba)
    names = _names(classes, P.shape[1])
    m = per_class(y, P)
    df = pd.DataFrame({k: m[k] for k in (*METRICS, "support")}, index=names)
    df["top1_accuracy"] = np.nan
    df.loc["macro"] = pd.Series(_macro(m))
    df.index.name = "class"
    return df


def roc_curves(y, proba, *, classes: Sequence | None = None, grid: int = 101) -> pd.DataFrame:
    """One-vs-rest ROC curves (``sklearn.metrics.roc_curve``) of every class present in ``y``, plus a
    ``"macro"`` curve: the mean of the per-class TPRs interpolated on ``grid`` FPR values.
    Long format: class, fpr, tpr, threshold (NaN for the macro curve)."""
    y, P = _check(y, proba)
    names = _names(classes, P.shape[1])
    parts, fpr_grid, tprs = [], np.linspace(0, 1, grid), []
    for c, name in enumerate(names):
        pos = y == c
        if pos.all() or not pos.any():
            continue  # ROC undefined for this class
        fpr, tpr, thr = roc_curve(pos, P[:, c], drop_intermediate=False)
        parts.append(pd.DataFrame({"class": name, "fpr": fpr, "tpr": tpr, "threshold": thr}))
        tprs.append(np.interp(fpr_grid, fpr, tpr))
    if tprs:
        parts.append(pd.DataFrame({"class": "macro", "fpr": fpr_grid, "tpr": np.mean(tprs, 0),
                                   "threshold": np.nan}))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# Uncertainty
# --------------------------------------------------------------------------------------------------

def bootstrap(statistic: Callable[[np.ndarray], np.ndarray | float], n: int, *, level: float = 0.95,
              n_resamples: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over items for a statistic that is not a mean (macro F1, AUC, RMSE, a
    difference between two models...). ``statistic(idx)`` gets an index array (``np.arange(n)`` for
    the estimate, then ``n_resamples`` resamples with replacement, seeded) and returns a scalar or
    a 1-d array. Returns (estimate, lower, upper), arrays shaped like the statistic; resamples where
    the statistic is NaN (e.g. a class drawn out) are ignored."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    estimate = np.asarray(statistic(np.arange(n)), dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = np.stack([np.asarray(statistic(rng.integers(0, n, n)), dtype=np.float64)
                      for _ in range(n_resamples)])
    a = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        lo, hi = np.nanquantile(draws, [a, 1 - a], axis=0)
    return estimate, lo, hi


def _per_item(metric: str, row: str, y: np.ndarray, P: np.ndarray, names: list[str]) -> np.ndarray:
    """Per-item values whose mean is ``metric`` of ``row`` (only for :data:`MEAN_METRICS`)."""
    K = P.shape[1]
    pred = P.argmax(1)
    if metric == "top1_accuracy":
        return (pred == y).astype(np.float64)
    Y = np.eye(K)[y]
    vals = ((np.eye(K)[pred] == Y).astype(np.float64) if metric == "accuracy" else np.abs(P - Y))
    return vals.mean(1) if row == "macro" else vals[:, names.index(row)]


def _value(metric: str, row: str, y: np.ndarray, P: np.ndarray, names: list[str]) -> float:
    m = per_class(y, P, auc=metric == "auc")
    if row == "macro":
        return _macro(m)[metric]
    return float(m[metric][names.index(row)])


def metric_cis(y, proba, *, classes: Sequence | None = None, level: float = 0.95,
               n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`metric_table` with ``level`` bootstrap intervals over items. Long format: class,
    metric, value, ci_low, ci_high (``top1_accuracy`` only for the macro row)."""
    y, P = _check(y, proba)
    names = _names(classes, P.shape[1])
    rows_ = [*names, "macro"]
    other = [m for m in METRICS if m not in MEAN_METRICS]

    auc_of = resampled_auc(y, P)  # the AUC of a resample from its multiplicities, without sorting it

    def stat(idx):
        m = per_class(y[idx], P[idx], auc=False)
        m["auc"] = auc_of(np.bincount(idx, minlength=len(y)))
        mac = _macro(m)
        return np.concatenate([np.r_[m[k], mac[k]] for k in other])

    est, lo, hi = bootstrap(stat, len(y), level=level, n_resamples=n_resamples, seed=seed)
    out = []
    for j, k in enumerate(other):
        for i, r in enumerate(rows_):
            s = j * len(rows_) + i
            out.append({"class": r, "metric": k, "value": est[s], "ci_low": lo[s], "ci_high": hi[s]})
    for k in MEAN_METRICS:
        for r in (["macro"] if k == "top1_accuracy" else rows_):
            v, lo_, hi_ = mean_ci(_per_item(k, r, y, P, names), level=level, n_resamples=n_resamples, seed=seed)
            out.append({"class": r, "metric": k, "value": v, "ci_low": lo_, "ci_high": hi_})
    return pd.DataFrame(out)


def mcnemar_exact(correct_a, correct_b) -> dict:
    """McNemar's exact test on paired correctness: under H0 the discordant items split 50:50, so the
    two-sided p-value is ``scipy.stats.binomtest(b, b + c, 0.5)`` with b = items only A gets right
    and c = items only B gets right (p = 1 when there are none)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be 1-d and of equal length")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_value": p}


def paired_comparison(y, proba_a, proba_b, *, metric: str = "f1", row: str = "macro",
                      classes: Sequence | None = None, level: float = 0.95, n_resamples: int = 1000,
                      seed: int = 0) -> dict:
    """Model A against model B on the same items: ``metric`` of ``row`` (a class name or "macro") for
    each, the difference A - B with its paired bootstrap interval (the same resampled items for
    both; :func:`hzlib.stats.mean_ci` of per-item differences for a mean metric), and McNemar's exact
    test on top-1 correctness (``p_value``). The bootstrap interval excluding 0 and a small p-value
    are two views of "A differs from B"; McNemar's p speaks of correctness only."""
    y, Pa = _check(y, proba_a)
    _, Pb = _check(y, proba_b)
    if Pa.shape != Pb.shape:
        raise ValueError(f"proba_a {Pa.shape} and proba_b {Pb.shape} must have the same shape")
    names = _names(classes, Pa.shape[1])
    if metric not in (*METRICS, "top1_accuracy"):
        raise ValueError(f"metric={metric!r} is not one of {[*METRICS, 'top1_accuracy']}")
    if row not in (*names, "macro"):
        raise ValueError(f"row={row!r} is not a class name {names} or 'macro'")
    if metric == "top1_accuracy" and row != "macro":
        raise ValueError("top1_accuracy has only the 'macro' row")
    va, vb = _value(metric, row, y, Pa, names), _value(metric, row, y, Pb, names)
    if metric in MEAN_METRICS:
        d = _per_item(metric, row, y, Pa, names) - _per_item(metric, row, y, Pb, names)
        diff, lo, hi = mean_ci(d, level=level, n_resamples=n_resamples, seed=seed)
    else:
        diff, lo, hi = bootstrap(lambda i: _value(metric, row, y[i], Pa[i], names)
                                 - _value(metric, row, y[i], Pb[i], names), len(y),
                                 level=level, n_resamples=n_resamples, seed=seed)
    mc = mcnemar_exact(Pa.argmax(1) == y, Pb.argmax(1) == y)
    return {"metric": metric, "row": row, "a": va, "b": vb, "difference": float(diff),
            "ci_low": float(lo), "ci_high": float(hi), "p_value": mc["p_value"],
            "only_a_correct": mc["only_a"], "only_b_correct": mc["only_b"], "level": level}


# --------------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------------

def kfold_splits(labels: Sequence, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (``sklearn.model_selection.StratifiedKFold``, shuffled with ``seed``): a list
    of (train_idx, test_idx), sorted index arrays; every item is in exactly one test fold. Use the same
    list for every model so that all are scored on the same splits."""
    y = np.asarray(labels)
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < k:
        raise ValueError(f"k={k} exceeds the size of the smallest class ({counts.min()} items)")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in skf.split(np.zeros(len(y)), y)]


def cross_validate(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   splits: Sequence[tuple[np.ndarray, np.ndarray]], n_items: int, n_classes: int) -> np.ndarray:
    """Out-of-fold probabilities (n_items, n_classes): ``fit_predict(train_idx, test_idx)`` is called
    once per split and must train the whole model (backbone included) on ``train_idx`` only and
    return the probabilities of ``test_idx`` in that order. The test folds must partition the items."""
    seen = np.zeros(n_items, dtype=np.int64)
    for tr, te in splits:
        if np.intersect1d(tr, te).size:
            raise ValueError("a split's train and test indices overlap")
        seen[np.asarray(te)] += 1
    if not (seen == 1).all():
        raise ValueError(f"the test folds must cover each of the {n_items} items exactly once; "
                         f"{int((seen == 0).sum())} never, {int((seen > 1).sum())} more than once")
    out = np.full((n_items, n_classes), np.nan)
    for f, (tr, te) in enumerate(splits):
        p = np.asarray(fit_predict(np.asarray(tr), np.asarray(te)), dtype=np.float64)
        if p.shape != (len(te), n_classes):
            raise ValueError(f"fit_predict returned shape {p.shape} on fold {f}, expected {(len(te), n_classes)}")
        out[te] = p
    _check(np.zeros(n_items, dtype=np.int64), out)  # finite rows summing to 1
    return out


def _loo_inputs(X, y, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d) float and y (n,) int of a leave-one-out, checked: one row per label, every class >= 2 items."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) with one row per label, got {X.shape} for {len(y)} labels")
    _class_counts_ok(y, n_classes)
    return X, y


def _class_counts_ok(y: np.ndarray, n_classes: int) -> None:
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 2:
        raise ValueError(f"leave-one-out needs >= 2 items in every class; class {int(counts.argmin())} has "
                         f"{int(counts.min())}")


def loo_ridge(X, y, *, n_classes: int, alpha: float = 1.0) -> np.ndarray:
    """Exact leave-one-out decision scores (n, n_classes) of a ridge least-squares classifier (one-hot
    targets, unpenalised intercept, L2 penalty ``alpha``) in one fit: with the hat matrix
    H = Xa (Xa'Xa + alpha D)^-1 Xa' (Xa = [X, 1], D = diag(1, ..., 1, 0)), the prediction for item i
    from the fit without i is (F_i - H_ii Y_i) / (1 - H_ii), F = H Y. Equals refitting n times
    (``sklearn.linear_model.Ridge``). Scores, not probabilities: use the arg-max or AUC."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    X, y = _loo_inputs(X, y, n_classes)
    Xa = np.hstack([X, np.ones((len(X), 1))])
    D = np.eye(Xa.shape[1])
    D[-1, -1] = 0.0
    A_inv_Xt = np.linalg.solve(Xa.T @ Xa + alpha * D, Xa.T)  # (d+1, n)
    Y = np.eye(n_classes)[y]
    F = Xa @ (A_inv_Xt @ Y)
    h = np.einsum("ij,ji->i", Xa, A_inv_Xt)
    return (F - h[:, None] * Y) / (1.0 - h[:, None])


def loo_logistic(X, y, *, n_classes: int, C: float = 1.0, tol: float = 1e-6, max_iter: int = 1000,
                 solver: str = "newton-cg", threads: int | None = 1, progress: bool = False) -> np.ndarray:
    """Leave-one-out class probabilities (n, n_classes) of a multinomial logistic-regression head
    (``sklearn.linear_model.LogisticRegression``, L2 with inverse strength ``C``): one full fit, then
    for each item a refit without it, warm-started from the full fit. The objective is strictly
    convex, so the warm refit reaches the cold refit's optimum to within ``tol`` (checked in the
    tests). ``solver="newton-cg"`` needs ~2 Newton steps from the warm start where lbfgs, which
    rebuilds its curvature memory, needs ~35 (on 1850 x 256 features, 10 classes: ~75 ms against
    ~115 ms per refit, so ~2.5 min for the whole LOO on one core).

    ``threads`` caps the BLAS/OpenMP threads during the n small fits (None: leave them): on a shared
    machine, spinning BLAS threads made each small fit ~50x slower than one thread."""
    X, y = _loo_inputs(X, y, n_classes)
    with threadpool_limits(limits=threads):
        return _loo_logistic(X, y, n_classes, C, tol, max_iter, solver, progress)


def _loo_logistic(X, y, n_classes, C, tol, max_iter, solver, progress) -> np.ndarray:
    # the full fit a decade tighter, so that the warm starts sit at its optimum
    full = LogisticRegression(C=C, tol=tol / 10, max_iter=max_iter, solver=solver).fit(X, y)
    out = np.empty((len(y), n_classes))
    keep = np.ones(len(y), dtype=bool)
    it = range(len(y))
    if progress:
        it = tqdm(it, desc="LOO refits", unit="fit", leave=False)
    for i in it:
        keep[i] = False
        clf = LogisticRegression(C=C, tol=tol, max_iter=max_iter, solver=solver, warm_start=True)
        clf.coef_, clf.intercept_ = full.coef_.copy(), full.intercept_.copy()  # the warm start
        clf.fit(X[keep], y[keep])
        out[i, clf.classes_] = clf.predict_proba(X[i:i + 1])[0]
        keep[i] = True
    return out


def loo_logistic_newton(X, y, *, n_classes: int, C: float = 1.0, tol: float = 1e-8, max_iter: int = 1000,
                        chunk: int = 256) -> np.ndarray:
    """Leave-one-out class probabilities (n, n_classes) of the multinomial logistic-regression head
    of :func:`loo_logistic`, each refit replaced by one exact Newton step from the full fit.

    With theta the full fit's parameters (objective sum_i l_i + ||W||^2 / (2C), intercepts not
    penalised), H the objective's Hessian at theta and item i's logits z_i, probabilities p_i and
    one-hot y_i, the Newton step of the objective without item i moves item i's logits to

        z_i + M_i (I - S_i M_i)^-1 (p_i - y_i),   M_i = B_i' H^+ B_i,  S_i = diag(p_i) - p_i p_i',

    with B_i = I_K (x) [x_i, 1] (Woodbury's identity for H minus item i's rank-(K-1) Hessian; H^+
    the pseudo-inverse, since a shift of every intercept changes nothing). Cost: one fit, one
    (K(d+1))^2 eigendecomposition and O(n K^2 d^2), against n refits: seconds instead of minutes for
    1,850 items. The step is the first of the warm-started refit, so it differs from the exact refit
    by the Newton method's quadratic remainder: on well-posed heads (n >> d) in the third decimal or
    less (``tests/test_evaluate.py`` checks it against :func:`loo_logistic`)."""
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    X, y = _loo_inputs(X, y, n_classes)
    full = LogisticRegression(C=C, tol=tol, max_iter=max_iter, solver="newton-cg").fit(X, y)
    K, n = n_classes, len(y)
    Xa = np.hstack([X, np.ones((n, 1))])
    D = Xa.shape[1]
    W = np.hstack([full.coef_, full.intercept_[:, None]])  # (K, D), rows in class order 0..K-1
    Z = Xa @ W.T
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    H = np.empty((K, D, K, D))
    for k in range(K):
        for m in range(k, K):
            blk = (Xa * (P[:, k] * ((k == m) - P[:, m]))[:, None]).T @ Xa
            H[k, :, m, :], H[m, :, k, :] = blk, blk.T
    reg = np.full(D, 1.0 / C)
    reg[-1] = 0.0
    H = H.reshape(K * D, K * D) + np.diag(np.tile(reg, K))
    Hp = np.linalg.pinv(H, hermitian=True).reshape(K, D, K, D)
    Y = np.eye(K)[y]
    out = np.empty((n, K))
    for a in range(0, n, chunk):
        xa, p, z = Xa[a:a + chunk], P[a:a + chunk], Z[a:a + chunk]
        M = np.einsum("ikme,ie->ikm", np.tensordot(xa, Hp, axes=([1], [1])), xa)  # (b, K, K); 3x einsum's path
        S = np.einsum("ik,km->ikm", p, np.eye(K)) - p[:, :, None] * p[:, None, :]
        step = np.linalg.solve(np.eye(K) - S @ M, (p - Y[a:a + chunk])[:, :, None])
        zl = z + (M @ step)[:, :, 0]
        e = np.exp(zl - zl.max(1, keepdims=True))
        out[a:a + chunk] = e / e.sum(1, keepdims=True)
    return out


# --------------------------------------------------------------------------------------------------
# The head and the linear probe (standardised, C chosen by inner cross-validation on training rows)
# --------------------------------------------------------------------------------------------------

DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 1, 5))  # 0.001 ... 10
PROBE_SCORING = "f1_macro"  # see fit_head


def _f1_macro(y_true, y_pred) -> float:
    return f1_score(y_true, y_pred, average="macro", zero_division=0)


def _macro_f1_scorer():
    """scikit-learn's "f1_macro" without its 0/0 warnings (nor, for two string classes, a pos_label)."""
    return make_scorer(_f1_macro)


def fit_head(X, y, *, Cs: Sequence[float] = DEFAULT_CS, inner_folds: int = 3, seed: int = 0,
             max_iter: int = 5000, tol: float = 1e-6, threads: int | None = 1, jobs: int = 1):
    """The classification head of every trained model and the linear probe: a fitted scikit-learn
    pipeline of ``StandardScaler`` then multinomial L2 logistic regression whose inverse strength C
    is chosen from ``Cs`` by ``LogisticRegressionCV`` with ``StratifiedKFold(inner_folds, shuffle,
    random_state=seed)`` **on the rows given only** (pass the training rows; the test rows must not
    be here). The chosen C is refitted on all the rows given; :func:`chosen_C` reads it.

    * Standardisation: an unstandardised head on unit-norm embeddings (entries ~ 1/sqrt(d)) is so
      strongly regularised at C = 1 that on a weak backbone it predicts the majority class only.
    * Scoring ``f1_macro`` (not ``neg_log_loss``): the probes are reported by macro-F1, and log loss
      rewards shrinking towards the class priors: on weak features (a random-init tower) it picks
      the smallest C, whose arg-max is then the majority class or a few classes (on 1,850 x 128
      features with little signal: macro-F1 0.05 against 0.10 for the C that macro-F1 picks). Macro-F1
      is step-valued, so ties happen; scikit-learn then takes the first best C of the grid, i.e. the
      strongest regularisation among the tied.
    * ``Cs`` with one value: that C, fixed, no inner cross-validation (a plain ``LogisticRegression``).
    * Folds: if a class has fewer training rows than ``inner_folds``, the inner folds are reduced to
      that count (at least 2; a class with one row is then absent from one inner training fold, and
      scikit-learn warns). The number used is stored as the pipeline's attribute ``inner_folds_``.
      A single class raises ``ValueError``.

    ``y`` may hold any sortable labels (strings included); ``classes_`` are the sorted distinct
    labels. ``tol`` is tighter than scikit-learn's default (1e-4), so that the fit is reproducible to
    ~1e-6 in probabilities. ``threads`` caps BLAS/OpenMP threads during the fit (None: leave them; on
    a shared 2-core machine, BLAS threads made these small fits ~3x slower). ``jobs``: the inner folds
    fitted at once, in that many processes (``LogisticRegressionCV(n_jobs=jobs)``, joblib's loky pool,
    which stays up between calls; ``threads`` caps each worker's BLAS/OpenMP threads too). Each fold is
    the same computation in any process and the folds are gathered in order, so the head is the same,
    bit for bit, for every ``jobs``; more jobs than inner folds add nothing.

    Cost: from ~0.2 s to several seconds, as the features are easy or hard to fit (1,233 x 128
    features, 10 classes, C = 10 chosen: ~1.7 s on one core; 1,233 x 256: ~4 s). With ``jobs=2`` on 2
    cores: ~1.3x faster, after ~1 s to start the pool on the first call (threads: ~1.2x, as the GIL
    serialises part of each fit; ``benchmarks/bench_eval_costs.py``)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) with one label per row, got X {X.shape} and y {y.shape}")
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise ValueError(f"fit_head needs at least two classes in the training rows, got only "
                         f"{labels.tolist()} ({len(y)} rows)")
    Cs = np.asarray(Cs, dtype=np.float64).ravel()
    if len(Cs) == 0 or not (np.isfinite(Cs) & (Cs > 0)).all():
        raise ValueError(f"Cs must hold positive, finite values, got {Cs.tolist()}")
    if not isinstance(inner_folds, (int, np.integer)) or inner_folds < 2:
        raise ValueError(f"inner_folds must be an integer >= 2, got {inner_folds!r}")
    if not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if len(Cs) == 1:
        folds, clf = 0, LogisticRegression(C=float(Cs[0]), tol=tol, max_iter=max_iter, random_state=seed)
    else:
        folds = int(max(2, min(inner_folds, counts.min())))
        clf = LogisticRegressionCV(Cs=Cs, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                   scoring=_macro_f1_scorer(), l1_ratios=(0.0,), tol=tol, max_iter=max_iter,
                                   random_state=seed, use_legacy_attributes=False, n_jobs=int(jobs))
    with threadpool_limits(limits=threads), parallel_config(backend="loky", inner_max_num_threads=threads):
        head = make_pipeline(StandardScaler(), clf).fit(X, y)
    head.inner_folds_ = folds
    return head


def chosen_C(head) -> float:
    """The C of a :func:`fit_head` pipeline (the one inner cross-validation chose, or the fixed one)."""
    clf = head[-1]
    return float(np.ravel(clf.C_)[0]) if hasattr(clf, "C_") else float(clf.C)


def linear_weights(pipeline) -> tuple[np.ndarray, np.ndarray]:
    """(W (K, D), b (K,)) with ``X @ W.T + b`` = the pipeline's ``decision_function(X)`` on raw
    (unstandardised) X: a ``StandardScaler`` (and any other scaler with ``mean_``/``scale_``) is
    folded into the weights, W = coef / scale, b = intercept - W @ mean. Use it to backpropagate a
    standardised probe through a network (Grad-CAM): the logits are ``features @ W.T + b``.

    Two classes: scikit-learn keeps one row (the logit of ``classes_[1]`` against ``classes_[0]``);
    it is returned as two rows, -w/2 and w/2 (biases -b/2, b/2), one logit per class in the order of
    ``classes_``: their difference is the decision function and their softmax ``predict_proba``."""
    steps = [s for _, s in pipeline.steps] if hasattr(pipeline, "steps") else [pipeline]
    clf = steps[-1]
    W = np.asarray(clf.coef_, dtype=np.float64).copy()
    b = np.asarray(clf.intercept_, dtype=np.float64).copy()
    for step in reversed(steps[:-1]):  # innermost first: W x' + b with x' = (x - mean) / scale
        if step in (None, "passthrough"):
            continue
        if not hasattr(step, "scale_") or not hasattr(step, "mean_"):
            raise ValueError(f"linear_weights folds only affine scalers (mean_, scale_), not {type(step).__name__}")
        scale = np.ones(W.shape[1]) if step.scale_ is None else np.asarray(step.scale_, dtype=np.float64)
        mean = np.zeros(W.shape[1]) if step.mean_ is None else np.asarray(step.mean_, dtype=np.float64)
        W = W / scale
        b = b - W @ mean
    if W.shape[0] == 1:
        W, b = np.vstack([-W / 2, W / 2]), np.r_[-b / 2, b / 2]
    return W, b


def head_proba(X, y, train_idx, test_idx, *, n_classes: int, Cs: Sequence[float] = DEFAULT_CS,
               inner_folds: int = 3, seed: int = 0, jobs: int = 1) -> np.ndarray:
    """:func:`fit_head` on ``train_idx`` only (C chosen by inner CV on those rows, ``jobs`` folds at
    once); probabilities (len(test_idx), n_classes) of ``test_idx`` (a class absent from the training
    items gets 0)."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
    tr, te = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
    if np.intersect1d(tr, te).size:
        raise ValueError("train_idx and test_idx overlap")
    head = fit_head(X[tr], y[tr], Cs=Cs, inner_folds=inner_folds, seed=seed, jobs=jobs)
    out = np.zeros((len(te), n_classes))
    out[:, head.classes_] = head.predict_proba(X[te])
    return out


def kfold_protocol(embed: Callable[[np.ndarray], np.ndarray] | np.ndarray, y, splits, *, n_classes: int,
                   Cs: Sequence[float] = DEFAULT_CS, inner_folds: int = 3, seed: int = 0, jobs: int = 1) -> np.ndarray:
    """Protocol (b): out-of-fold probabilities where ``embed(train_idx)`` returns the features of all
    items from a backbone trained on ``train_idx`` only, and :func:`head_proba` is fitted on the same
    items (its C chosen by inner CV within them): no part of the model sees its held-out fold.
    ``embed`` may also be a fixed (n, d) feature array (a backbone that is never trained, such as a
    random initialisation). ``jobs``: see :func:`fit_head` (the same probabilities for every value)."""
    y = np.asarray(y, dtype=np.int64)
    if not callable(embed):
        fixed = np.asarray(embed)
        if len(fixed) != len(y):
            raise ValueError(f"features have {len(fixed)} rows for {len(y)} labels")

        def embed(_tr):
            return fixed

    return cross_validate(lambda tr, te: head_proba(embed(tr), y, tr, te, n_classes=n_classes, Cs=Cs,
                                                    inner_folds=inner_folds, seed=seed, jobs=jobs),
                          splits, n_items=len(y), n_classes=n_classes)


def loo_protocol(X, y, *, n_classes: int, Cs: Sequence[float] = DEFAULT_CS, inner_folds: int = 3, seed: int = 0,
                 exact: bool = False, return_C: bool = False, return_head: bool = False, jobs: int = 1):
    """Protocol (a), our shortcut to leave-one-out (not the paper's, which retrains the model in every
    round): head only, on standardised frozen features of a backbone that was trained on every item.
    C is chosen from ``Cs`` as :func:`fit_head` chooses it (inner stratified CV, macro-F1), here **on
    all items**; then :func:`loo_logistic_newton` at that
    C (one Newton step per item from the full fit; seconds), or with ``exact`` :func:`loo_logistic`
    (warm-started refits to convergence; minutes). Both fit scikit-learn's ``LogisticRegression(C)``
    on the same standardised features as the pipeline, so C means the same thing: the objective
    sum_i l_i + ||W||^2 / (2C) (``tests/test_evaluate.py`` checks the convention).

    The standardisation and the choice of C use every item too: that is part of this protocol's known
    leak (beside a backbone that saw item i and its text, it adds little; a refit of either per item
    would not make the protocol honest). ``jobs``: see :func:`fit_head` (the same results for every value).

    Returns the probabilities; with ``return_C`` and/or ``return_head`` a tuple of the probabilities
    followed by C and/or the head that chose it, in that order: the :func:`fit_head` pipeline fitted on
    all items (``fit_head(X, y, Cs=Cs, inner_folds=inner_folds, seed=seed)``, the same object), e.g.
    the head that classifies new items in the analysis time of :func:`time_models`."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    _loo_inputs(X, y, n_classes)
    head = fit_head(X, y, Cs=Cs, inner_folds=inner_folds, seed=seed, jobs=jobs)
    C = chosen_C(head)
    sd = X.std(0)
    Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    P = loo_logistic(Z, y, n_classes=n_classes, C=C) if exact else loo_logistic_newton(Z, y, n_classes=n_classes, C=C)
    extra = [v for v, wanted in ((C, return_C), (head, return_head)) if wanted]
    return (P, *extra) if extra else P


def probe(X, y, train_idx, test_idx, *, Cs: Sequence[float] = DEFAULT_CS, inner_folds: int = 3, seed: int = 0,
          n_boot: int = 1000, level: float = 0.95) -> dict:
    """The standard linear probe of chapters 5-7: :func:`fit_head` (standardisation, C chosen by inner
    CV) on ``train_idx`` only, scored on ``test_idx``. ``y``: labels as given (strings allowed).

    Returns a dict:

    * ``accuracy`` (top-1) with ``accuracy_ci_low``/``accuracy_ci_high`` (:func:`hzlib.stats.mean_ci`
      over test items); ``macro_f1`` with ``macro_f1_ci_low``/``macro_f1_ci_high`` (:func:`bootstrap`
      over test items, percentile, ``n_boot`` resamples, seeded). Macro-F1 is the mean over
      ``classes`` of the per-class F1 (``f1_score(..., labels=classes, zero_division=0)``); with every
      class among the test items it is scikit-learn's default macro-F1, and it is the value
      :func:`paired_comparison` / :func:`paired_probe_difference` give for these probabilities;
    * ``classes``: the sorted labels of the training and test rows; ``probabilities`` (n_test,
      len(classes)), 0 for a class absent from the training rows; ``predictions``: the labels of the
      rows' arg-max; ``y_test``, ``test_idx``;
    * ``C`` (chosen), ``inner_folds`` (used), ``pipeline`` (the fitted head, see :func:`linear_weights`),
      ``n_train``, ``n_test``, ``level``.

    Overlapping or empty ``train_idx``/``test_idx`` raise ``ValueError``."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) with one label per row, got X {X.shape} and y {y.shape}")
    tr, te = np.asarray(train_idx, dtype=np.int64).ravel(), np.asarray(test_idx, dtype=np.int64).ravel()
    if len(tr) == 0 or len(te) == 0:
        raise ValueError("train_idx and test_idx must both be non-empty")
    if min(tr.min(), te.min()) < 0 or max(tr.max(), te.max()) >= len(y):
        raise ValueError(f"train_idx/test_idx must lie in 0..{len(y) - 1}")
    if np.intersect1d(tr, te).size:
        raise ValueError(f"train_idx and test_idx overlap ({np.intersect1d(tr, te).size} rows): the probe "
                         "would be scored on items it was fitted on")
    head = fit_head(X[tr], y[tr], Cs=Cs, inner_folds=inner_folds, seed=seed)
    classes = np.unique(np.concatenate([y[tr], y[te]]))
    P = np.zeros((len(te), len(classes)))
    P[:, np.searchsorted(classes, head.classes_)] = head.predict_proba(X[te])
    yi = np.searchsorted(classes, y[te])
    pred = P.argmax(1)
    acc, acc_lo, acc_hi = mean_ci((pred == yi).astype(np.float64), level=level, n_resamples=n_boot, seed=seed)
    f1, f1_lo, f1_hi = bootstrap(lambda i: per_class(yi[i], P[i], auc=False)["f1"].mean(), len(te), level=level,
                                 n_resamples=n_boot, seed=seed)
    return {"accuracy": float(acc), "accuracy_ci_low": float(acc_lo), "accuracy_ci_high": float(acc_hi),
            "macro_f1": float(f1), "macro_f1_ci_low": float(f1_lo), "macro_f1_ci_high": float(f1_hi),
            "level": level, "predictions": classes[pred], "probabilities": P, "classes": classes,
            "y_test": y[te], "test_idx": te, "C": chosen_C(head), "inner_folds": head.inner_folds_,
            "pipeline": head, "n_train": len(tr), "n_test": len(te)}


def _as_proba(v, classes: np.ndarray, n: int, name: str) -> np.ndarray:
    """A probability matrix over ``classes`` from a matrix (returned as is) or 1-d predicted labels (one-hot)."""
    a = np.asarray(v)
    if a.ndim == 1:
        if len(a) != n:
            raise ValueError(f"{name} has {len(a)} predictions for {n} test items")
        return np.eye(len(classes))[encode_labels(a.tolist(), classes.tolist())]
    if a.ndim != 2 or a.shape != (n, len(classes)):
        raise ValueError(f"{name} must be (n test items, {len(classes)} classes) probabilities or 1-d "
                         f"predictions, got shape {a.shape}")
    return a.astype(np.float64)


def paired_probe_difference(y_test, a, b, *, classes: Sequence | None = None, level: float = 0.95,
                            n_resamples: int = 1000, seed: int = 0) -> dict:
    """Macro-F1 of A minus B on the same test items, with its paired bootstrap interval and McNemar's
    p (:func:`paired_comparison`, ``metric="f1"``, ``row="macro"``), for labels as given (strings).

    ``a`` and ``b`` may each be a :func:`probe` result (its probabilities and classes; then
    ``y_test`` may be None and both must have been scored on the same ``test_idx``), a probability
    matrix (n, K) whose columns follow ``classes``, or 1-d predicted labels (one-hot: macro-F1
    depends on the arg-max only). ``classes`` defaults to a probe result's, else to the sorted labels
    of ``y_test`` and of any predictions. E.g. "the linear probe at or above the HOG+colour probe":
    ``paired_probe_difference(None, probe(emb, ...), probe(hog, ...))["ci_low"]``."""
    dicts = [v for v in (a, b) if isinstance(v, dict)]
    if len(dicts) == 2 and not np.array_equal(a["test_idx"], b["test_idx"]):
        raise ValueError("the two probes were scored on different test items")
    if y_test is None:
        if not dicts:
            raise ValueError("y_test is needed unless a or b is a probe() result")
        y_test = dicts[0]["y_test"]
    y_test = np.asarray(y_test)
    if classes is None:
        if dicts:
            classes = dicts[0]["classes"]
            if len(dicts) == 2 and not np.array_equal(a["classes"], b["classes"]):
                raise ValueError(f"the probes have different classes: {list(a['classes'])} and {list(b['classes'])}")
        else:
            preds = [np.asarray(v) for v in (a, b) if np.asarray(v).ndim == 1]
            classes = np.unique(np.concatenate([y_test, *preds]))
    classes = np.asarray(classes)
    Pa = _as_proba(a["probabilities"] if isinstance(a, dict) else a, classes, len(y_test), "a")
    Pb = _as_proba(b["probabilities"] if isinstance(b, dict) else b, classes, len(y_test), "b")
    yi = encode_labels(y_test.tolist(), classes.tolist())
    return paired_comparison(yi, Pa, Pb, metric="f1", row="macro", classes=[str(c) for c in classes],
                             level=level, n_resamples=n_resamples, seed=seed)


# --------------------------------------------------------------------------------------------------
# Analysis time per sculpture (the paper's 182 ms)
# --------------------------------------------------------------------------------------------------

def time_analysis(analyse: Callable[[list], object], paths: Sequence, *, batch_sizes: Sequence[int] = (1, 32),
                  warmup: int = 3, device: str = "cpu", clock: Callable[[], float] = time.perf_counter) -> pd.DataFrame:
    """Time ``analyse(batch_of_paths)``, which must do the whole analysis (read, Eq 1-3, encode,
    classify) and return only when its results are on the host (e.g. ``.cpu()``, so that GPU work has
    finished). For each batch size: ``warmup`` untimed calls on the first batch, then one timed call
    per consecutive full batch of ``paths``; per-item time = call time / batch size.

    Returns one row per batch size: batch_size, calls, items, median_ms, q1_ms, q3_ms, iqr_ms (per
    item), device, and the hardware (:func:`hzlib.config.hardware`: threads, CPU count, GPU name)."""
    import torch  # here, not at the top: seconds to import, and no other function of this module needs it

    paths = list(paths)
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    hw = hardware(torch.device(device))
    rows = []
    for bs in batch_sizes:
        if not isinstance(bs, (int, np.integer)) or bs < 1:
            raise ValueError(f"batch_sizes must hold positive integers, got {bs!r}")
        batches = [paths[i:i + bs] for i in range(0, len(paths) - bs + 1, bs)]
        if not batches:
            raise ValueError(f"batch size {bs} exceeds the {len(paths)} paths given")
        for _ in range(warmup):
            analyse(batches[0])
        per_item = []
        for b in batches:
            t0 = clock()
            analyse(b)
            per_item.append((clock() - t0) * 1000.0 / bs)
        q1, med, q3 = np.percentile(per_item, [25, 50, 75])
        rows.append({"batch_size": int(bs), "calls": len(batches), "items": len(batches) * bs,
                     "median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3), "iqr_ms": float(q3 - q1),
                     **hw})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# What chapter 8 reports
# --------------------------------------------------------------------------------------------------

TABLE_METRICS = ("precision", "recall", "f1", "accuracy", "top1_accuracy", "auc", "rmse", "mae")


def _first_last(losses: Sequence[float]) -> tuple[float, float]:
    """The mean of the first 10 losses and of the last tenth."""
    return float(np.mean(losses[:10])), float(np.mean(losses[-max(1, len(losses) // 10):]))


def fold_counts(labels: Sequence, splits, classes: Sequence) -> pd.DataFrame:
    """Items per class (columns, in ``classes`` order, and ``total``) in the test part of each fold."""
    folds = pd.DataFrame({f"fold {f + 1}": pd.Series(np.asarray(labels)[te]).value_counts().reindex(classes)
                          for f, (_, te) in enumerate(splits)})
    folds.loc["total"] = folds.sum()
    return folds.T


def training_table(records: Sequence[dict], names: dict) -> pd.DataFrame:
    """One row per training run of chapter 8 (records of ``run_protocol`` with their ``protocol``):
    model name, protocol, training pairs, steps, seconds, images/s, the chance loss, the mean loss of
    the first 10 steps and of the last tenth, and the last over the chance level."""
    def row(r):
        fit = r["fit"]
        first, last = _first_last(fit["losses"])
        return {"model": names[r["model"]], "protocol": r["protocol"], "training pairs": r["train_items"],
                "steps": fit["steps"], "seconds": round(fit["seconds"], 1), "images/s": round(fit["images_per_second"]),
                "chance loss": fit["chance"], "loss, first 10 steps": first, "loss, last tenth": last}
    table = pd.DataFrame([row(r) for r in records])
    table["last / chance"] = table["loss, last tenth"] / table["chance loss"].astype(float)
    return table


def loss_text(fit: dict) -> str:
    """A run's loss as chapter 8 writes it: ``first → last (chance c)`` (:func:`_first_last`)."""
    if not fit["chance"]:
        return "no chance level"
    first, last = _first_last(fit["losses"])
    return f"{first:.3f} → {last:.3f} (chance {fit['chance']:.3f})"


def macro_table(cis: pd.DataFrame, order: Sequence[str], protocols: Sequence[str]) -> pd.DataFrame:
    """The macro rows of :func:`metric_cis`' long table (with ``protocol``, ``model`` and the ``cell``
    of :func:`hzlib.report.ci_column`): one row per protocol and model (models in ``order``), one
    column per metric of :data:`TABLE_METRICS`."""
    macro = (cis[cis["class"] == "macro"].pivot(index=["protocol", "model"], columns="metric", values="cell")
             .reindex(columns=list(TABLE_METRICS)))
    return macro.reindex([(p, m) for p in protocols for m in order if (p, m) in macro.index])


def metric_cis_of(y, proba: dict, names: dict, *, classes: Sequence, seed: int) -> pd.DataFrame:
    """:func:`metric_cis` of every ``(protocol, key) -> probabilities`` of ``proba`` in one table, with
    columns ``protocol``, ``model`` (``names[key]``) and ``cell`` (the value and its interval as text)."""
    cis = pd.concat([metric_cis(y, P, classes=classes, seed=seed).assign(protocol=protocol, model=names[key])
                     for (protocol, key), P in proba.items()], ignore_index=True)
    cis["cell"] = ci_column(cis)
    return cis


def roc_by_model(y, proba: dict, cis: pd.DataFrame, protocol: str, keys: Sequence[str], names: dict, *,
                 classes: Sequence) -> tuple[pd.DataFrame, dict]:
    """Figure 8's inputs for one protocol: the ROC curves (:func:`roc_curves`) of every model of
    ``keys`` run under it, and their macro AUCs from ``cis``, by model name."""
    keys = [k for k in keys if (protocol, k) in proba]
    curves = pd.concat([roc_curves(y, proba[protocol, k], classes=classes).assign(model=names[k]) for k in keys])
    macro = cis[(cis["protocol"] == protocol) & (cis["class"] == "macro") & (cis["metric"] == "auc")]
    return curves, macro.set_index("model")["value"].to_dict()


def time_models(backbones: dict, heads: dict, analyser: Callable, paths: Sequence, *, device) -> pd.DataFrame:
    """Table 3's analysis time of each model (``backbones``: name -> backbone; ``heads``: name -> its
    fitted head, e.g. the :func:`fit_head` pipeline on all its features that protocol (a) fits,
    ``hzlib.baselines.neural.ProtocolRun.head``): ``analyser(backbone, head.predict_proba)`` timed by
    :func:`time_analysis` at batch 1 and at one batch of all ``paths``, after one warm-up call. One
    table, column ``model`` added."""
    timings = []
    for name in tqdm(list(backbones), desc="timing"):
        t = time_analysis(analyser(backbones[name], heads[name].predict_proba), paths, batch_sizes=(1, len(paths)),
                          warmup=1, device=device)
        timings.append(t.assign(model=name))
    return pd.concat(timings, ignore_index=True)


def paired_against(y, proba: dict, reference: str, others: Sequence[str], names: dict, protocols: Sequence[str], *,
                   seed: int) -> pd.DataFrame:
    """:func:`paired_comparison` of macro F1, ``reference`` (a) against each of ``others`` (b), under
    every protocol where both ran: one row each, with ``protocol`` and ``other model`` (its name)."""
    return pd.DataFrame([{"protocol": p, "other model": names[k],
                          **paired_comparison(y, proba[p, reference], proba[p, k], metric="f1", seed=seed)}
                         for p in protocols for k in others
                         if k != reference and (p, k) in proba and (p, reference) in proba])


def skipped_runs(keys: Sequence[str], reason: str, protocols: Sequence[str] = ("kfold",)) -> dict:
    """The keys :func:`evaluation_values` would glue for runs this corpus cannot give (the image ceiling
    of an imported corpus, which has no generating factors), each "skipped: <reason>"."""
    return {f"ch08_{p}_{key}_{m}": skipped(reason) for p in protocols for key in keys for m in TABLE_METRICS}


def evaluation_values(cis: pd.DataFrame, runs: Sequence[tuple[str, str]], names: Mapping[str, str],
                      timing: pd.DataFrame, models: Sequence[str], device: str) -> dict[str, str]:
    """What chapter 8 glues for the summary page (:data:`hzlib.summary.CHAPTER8_ROWS`):
    ``ch08_<protocol>_<key>_<metric>`` (e.g. ``ch08_kfold_clip_f1``) for every (protocol, model key)
    of ``runs`` and every metric of :data:`TABLE_METRICS`, the macro value with its interval; and
    ``ch08_time_<key>_ms`` for every model of ``models``, the median at batch 1 with its IQR."""
    ours = cis[cis["class"] == "macro"].set_index(["protocol", "model", "metric"])
    out = {f"ch08_{p}_{key}_{m}": ours.loc[(p, names[key], m), "cell"] for p, key in runs
           for m in TABLE_METRICS}
    t1 = timing[timing["batch_size"] == 1].set_index("model")
    for key in models:
        t = t1.loc[names[key]]
        out[f"ch08_time_{key}_ms"] = f"{t['median_ms']:.2f} [IQR {t['q1_ms']:.2f}, {t['q3_ms']:.2f}] on {device}"
    return out


def difference_text(row) -> str:
    """A paired difference (:func:`paired_comparison`'s row) as ``+0.012 [-0.020, +0.045]``."""
    return ci_text(row["difference"], row["ci_low"], row["ci_high"], fmt="+.3f")
