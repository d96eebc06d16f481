import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Ridge
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hzlib import evaluate as ev


def _predictions(n=300, K=5, seed=0, skill=1.5):
    """Noisy probabilities that favour the true class (and some exact ties in the scores)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K)) + skill * np.eye(K)[y]
    logits = np.round(logits, 1)  # ties, to exercise rank averaging
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, P


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("seed", [0, 1])
def test_metric_table_agrees_with_scikit_learn(seed):
    y, P = _predictions(seed=seed)
    K = P.shape[1]
    t = ev.metric_table(y, P)
    pred = P.argmax(1)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=np.arange(K), zero_division=0)
    Y = np.eye(K)[y]
    per = t.drop(index="macro")
    np.testing.assert_allclose(per["precision"], p, atol=1e-12)
    np.testing.assert_allclose(per["recall"], r, atol=1e-12)
    np.testing.assert_allclose(per["f1"], f, atol=1e-12)
    np.testing.assert_allclose(per["support"], s)
    np.testing.assert_allclose(per["accuracy"], [skm.accuracy_score(y == c, pred == c) for c in range(K)], atol=1e-12)
    np.testing.assert_allclose(per["auc"], [skm.roc_auc_score(y == c, P[:, c]) for c in range(K)], atol=1e-12)
    np.testing.assert_allclose(per["rmse"], np.sqrt(skm.mean_squared_error(Y, P, multioutput="raw_values")), atol=1e-12)
    np.testing.assert_allclose(per["mae"], skm.mean_absolute_error(Y, P, multioutput="raw_values"), atol=1e-12)
    mac = t.loc["macro"]
    pm, rm, fm, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert mac["precision"] == pytest.approx(pm, abs=1e-12)
    assert mac["recall"] == pytest.approx(rm, abs=1e-12)
    assert mac["f1"] == pytest.approx(fm, abs=1e-12)
    assert mac["auc"] == pytest.approx(skm.roc_auc_score(y, P, multi_class="ovr", average="macro"), abs=1e-12)
    assert mac["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(Y, P)), abs=1e-12)
    assert mac["mae"] == pytest.approx(skm.mean_absolute_error(Y, P), abs=1e-12)
    assert mac["top1_accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    # the one-vs-rest macro accuracy is 1 - 2e/K, e the top-1 error rate
    assert mac["accuracy"] == pytest.approx(1 - 2 * (1 - mac["top1_accuracy"]) / K, abs=1e-12)


def test_hand_computed_case():
    # 4 items, 2 classes; predictions 0, 1, 1, 0 against truth 0, 0, 1, 1
    y = np.array([0, 0, 1, 1])
    P = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    t = ev.metric_table(y, P, classes=["a", "b"])
    # class a: TP=1 (item 0), FP=1 (item 3), FN=1 (item 1), TN=1 -> P=R=F1=acc=0.5
    assert t.loc["a", ["precision", "recall", "f1", "accuracy"]].tolist() == [0.5, 0.5, 0.5, 0.5]
    # AUC of class a (scores 0.9, 0.4 positive; 0.2, 0.7 negative): pairs won 0.9>0.2, 0.9>0.7, 0.4>0.2 -> 3/4
    assert t.loc["a", "auc"] == pytest.approx(0.75)
    # errors |p - onehot| of class a: 0.1, 0.6, 0.2, 0.7 -> MAE 0.4, RMSE sqrt(0.9/4)
    assert t.loc["a", "mae"] == pytest.approx(0.4)
    assert t.loc["a", "rmse"] == pytest.approx(np.sqrt(0.9 / 4))
    assert t.loc["macro", "top1_accuracy"] == 0.5
    assert t.loc["macro", "support"] == 4


def test_absent_class_gives_zero_precision_and_undefined_auc():
    y = np.array([0, 0, 1, 1])
    P = np.array([[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])  # class 2 never true
    t = ev.metric_table(y, P)
    assert t.loc["2", "precision"] == 0 and np.isnan(t.loc["2", "auc"])
    assert t.loc["macro", "auc"] == pytest.approx(t.loc[["0", "1"], "auc"].mean())


def test_inputs_are_checked():
    y, P = _predictions(n=20)
    with pytest.raises(ValueError, match="sum to 1"):
        ev.metric_table(y, P * 2)
    with pytest.raises(ValueError, match="class indices"):
        ev.metric_table(y + 10, P)
    with pytest.raises(ValueError, match="classes has"):
        ev.metric_table(y, P, classes=["a"])
    assert ev.encode_labels(["b", "a"], ["a", "b"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="not in classes"):
        ev.encode_labels(["c"], ["a", "b"])


def test_roc_curves_match_roc_curve_and_auc():
    y, P = _predictions(K=3)
    curves = ev.roc_curves(y, P, classes=["a", "b", "c"])
    assert set(curves["class"]) == {"a", "b", "c", "macro"}
    a = curves[curves["class"] == "a"]
    fpr, tpr, _ = skm.roc_curve(y == 0, P[:, 0], drop_intermediate=False)
    np.testing.assert_allclose(a["fpr"], fpr)
    np.testing.assert_allclose(a["tpr"], tpr)
    assert np.trapezoid(a["tpr"], a["fpr"]) == pytest.approx(ev.metric_table(y, P).loc["0", "auc"])
    macro = curves[curves["class"] == "macro"]
    assert macro["tpr"].is_monotonic_increasing and macro["tpr"].iloc[-1] == 1.0


# ---------------------------------------------------------------- uncertainty

def test_metric_cis_bracket_the_estimates_and_are_seeded():
    y, P = _predictions(n=200, K=4)
    ci = ev.metric_cis(y, P, n_resamples=200, seed=1)
    t = ev.metric_table(y, P)
    assert set(ci["metric"]) == {*ev.METRICS, "top1_accuracy"}
    assert len(ci) == len(ev.METRICS) * 5 + 1
    for r in ci.itertuples():
        assert r.value == pytest.approx(t.loc[r[1], r.metric])
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
        assert r.ci_high - r.ci_low > 0
    pd.testing.assert_frame_equal(ci, ev.metric_cis(y, P, n_resamples=200, seed=1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resampled_auc_is_the_weighted_auc_of_scikit_learn_and_exactly_per_class(seed):
    y, P = _predictions(n=150, K=4, seed=seed)  # rounded logits: many tied scores
    P[:5] = P[5]  # and tie groups that cross classes
    rng = np.random.default_rng(seed)
    auc_of = ev.resampled_auc(y, P)
    for _ in range(20):
        idx = rng.integers(0, len(y), len(y))
        w = np.bincount(idx, minlength=len(y))  # multiplicities, zeros included
        got = auc_of(w)
        ref = [skm.roc_auc_score(y == c, P[:, c], sample_weight=w) for c in range(P.shape[1])]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(got, ev.per_class(y[idx], P[idx])["auc"])  # the same value, bit for bit
    np.testing.assert_array_equal(auc_of(np.ones(len(y), dtype=np.int64)), ev.per_class(y, P)["auc"])
    drawn_out = np.where(y == 1, 0, 1)  # class 1 absent from the resample: NaN, as per_class
    assert np.isnan(auc_of(drawn_out)[1]) and np.isfinite(auc_of(drawn_out)[[0, 2, 3]]).all()


def _metric_cis_by_ranks(y, P, n_resamples, seed):
    """metric_cis as it was computed before resampled_auc: every resample ranked by per_class."""
    names, other = [str(c) for c in range(P.shape[1])], [m for m in ev.METRICS if m not in ev.MEAN_METRICS]

    def stat(idx):
        m = ev.per_class(y[idx], P[idx])
        mac = ev._macro(m)
        return np.concatenate([np.r_[m[k], mac[k]] for k in other])

    est, lo, hi = ev.bootstrap(stat, len(y), n_resamples=n_resamples, seed=seed)
    rows = [(r, k) for k in other for r in (*names, "macro")]
    out = [{"class": r, "metric": k, "value": est[s], "ci_low": lo[s], "ci_high": hi[s]}
           for s, (r, k) in enumerate(rows)]
    for k in ev.MEAN_METRICS:
        for r in (["macro"] if k == "top1_accuracy" else [*names, "macro"]):
            v, a, b = ev.mean_ci(ev._per_item(k, r, y, P, names), n_resamples=n_resamples, seed=seed)
            out.append({"class": r, "metric": k, "value": v, "ci_low": a, "ci_high": b})
    return pd.DataFrame(out)


def test_metric_cis_equals_ranking_every_resample():
    y, P = _predictions(n=240, K=5, seed=4)
    y[y == 4] = 3  # class 4 never occurs: its AUC is NaN throughout
    P[:7] = P[10]  # tied scores in every column, across classes
    pd.testing.assert_frame_equal(ev.metric_cis(y, P, n_resamples=300, seed=7),
                                  _metric_cis_by_ranks(y, P, n_resamples=300, seed=7), check_exact=True)


def test_bootstrap_of_a_mean_matches_mean_ci_roughly():
    x = np.random.default_rng(3).normal(size=400)
    est, lo, hi = ev.bootstrap(lambda i: x[i].mean(), len(x), n_resamples=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert est == pytest.approx(x.mean())
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    with pytest.raises(ValueError, match="level"):
        ev.bootstrap(lambda i: 0.0, 3, level=95)


@pytest.mark.parametrize("metric", ["f1", "top1_accuracy", "auc"])
def test_paired_comparison_of_a_model_with_itself(metric):
    y, P = _predictions(n=200)
    r = ev.paired_comparison(y, P, P.copy(), metric=metric, n_resamples=200)
    assert r["difference"] == 0 and r["ci_low"] <= 0 <= r["ci_high"]
    assert r["p_value"] == 1.0 and r["only_a_correct"] == r["only_b_correct"] == 0


def test_paired_comparison_detects_a_clearly_better_model():
    y, good = _predictions(n=300, skill=3.0, seed=4)
    _, bad = _predictions(n=300, skill=3.0, seed=4)
    rng = np.random.default_rng(5)
    bad = 0.2 * bad + 0.8 * rng.dirichlet(np.ones(bad.shape[1]), len(bad))  # mostly noise
    r = ev.paired_comparison(y, good, bad, metric="f1", n_resamples=300)
    assert r["difference"] > 0.1 and r["ci_low"] > 0 and r["p_value"] < 1e-6
    assert r["only_a_correct"] > r["only_b_correct"]
    r2 = ev.paired_comparison(y, bad, good, metric="top1_accuracy", n_resamples=300)
    assert r2["ci_high"] < 0 and r2["difference"] == pytest.approx(r2["a"] - r2["b"])
    with pytest.raises(ValueError, match="metric"):
        ev.paired_comparison(y, good, bad, metric="kappa")


def test_mcnemar_exact_small_case():
    # A alone right on 6 items, B alone right on 0: two-sided p = 2 * 0.5**6
    a = np.r_[np.ones(6, bool), np.ones(4, bool)]
    b = np.r_[np.zeros(6, bool), np.ones(4, bool)]
    r = ev.mcnemar_exact(a, b)
    assert (r["only_a"], r["only_b"]) == (6, 0) and r["p_value"] == pytest.approx(2 * 0.5 ** 6)


# ---------------------------------------------------------------- protocols

def test_kfold_splits_are_stratified_disjoint_covering_and_seeded():
    labels = np.repeat(["a", "b", "c"], [30, 20, 10])
    splits = ev.kfold_splits(labels, 5, seed=7)
    assert len(splits) == 5
    test_all = np.concatenate([te for _, te in splits])
    assert np.array_equal(np.sort(test_all), np.arange(len(labels)))  # every item once
    for tr, te in splits:
        assert np.intersect1d(tr, te).size == 0 and len(tr) + len(te) == len(labels)
        counts = pd.Series(labels[te]).value_counts()
        assert counts.to_dict() == {"a": 6, "b": 4, "c": 2}  # exact class proportions per fold
    again = ev.kfold_splits(labels, 5, seed=7)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    other = ev.kfold_splits(labels, 5, seed=8)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other))
    with pytest.raises(ValueError, match="smallest class"):
        ev.kfold_splits(labels, 11, seed=0)
    with pytest.raises(ValueError, match="k must be"):
        ev.kfold_splits(labels, 1, seed=0)


def test_cross_validate_collects_out_of_fold_probabilities():
    y = np.repeat([0, 1, 2], 10)
    splits = ev.kfold_splits(y, 5, seed=0)
    calls = []

    def fit_predict(tr, te):
        calls.append((tr, te))
        P = np.full((len(te), 3), 0.1)
        P[np.arange(len(te)), y[te]] = 0.8  # an oracle, to check the rows land in place
        return P

    oof = ev.cross_validate(fit_predict, splits, n_items=30, n_classes=3)
    assert len(calls) == 5 and np.array_equal(oof.argmax(1), y)
    with pytest.raises(ValueError, match="exactly once"):
        ev.cross_validate(fit_predict, splits[:4], n_items=30, n_classes=3)
    with pytest.raises(ValueError, match="shape"):
        ev.cross_validate(lambda tr, te: np.ones((len(te), 2)) / 2, splits, n_items=30, n_classes=3)


def _blobs(n_per=8, K=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), n_per)
    X = rng.normal(size=(len(y), d)) + 1.2 * rng.normal(size=(K, d))[y]
    return X, y


def test_loo_ridge_equals_refitting_n_times():
    X, y = _blobs()
    fast = ev.loo_ridge(X, y, n_classes=3, alpha=0.7)
    Y = np.eye(3)[y]
    naive = np.stack([Ridge(alpha=0.7).fit(np.delete(X, i, 0), np.delete(Y, i, 0)).predict(X[i:i + 1])[0]
                      for i in range(len(y))])
    np.testing.assert_allclose(fast, naive, atol=1e-9)


@pytest.mark.parametrize("solver", ["newton-cg", "lbfgs"])
def test_loo_logistic_warm_start_matches_cold_refits(solver):
    X, y = _blobs(seed=1)
    fast = ev.loo_logistic(X, y, n_classes=3, C=0.5, tol=1e-8, solver=solver)
    with threadpool_limits(1):
        naive = np.stack([LogisticRegression(C=0.5, tol=1e-10, max_iter=5000)
                          .fit(np.delete(X, i, 0), np.delete(y, i)).predict_proba(X[i:i + 1])[0]
                          for i in range(len(y))])
    np.testing.assert_allclose(fast, naive, atol=1e-5)
    np.testing.assert_allclose(fast.sum(1), 1.0)
    with pytest.raises(ValueError, match=">= 2 items"):
        ev.loo_logistic(X[:9], y[:9], n_classes=3)


# ---------------------------------------------------------------- timing

def test_time_analysis_report_shape():
    ticks = iter(np.arange(0, 1000, 0.5))
    seen = []
    report = ev.time_analysis(lambda batch: seen.append(len(batch)), [f"p{i}" for i in range(10)],
                              batch_sizes=(1, 4), warmup=2, clock=lambda: next(ticks))
    assert list(report["batch_size"]) == [1, 4]
    assert list(report["calls"]) == [10, 2] and list(report["items"]) == [10, 8]
    assert seen == [1] * 12 + [4] * 4  # warm-up calls, then the timed ones (the partial batch is dropped)
    # each call spans one 0.5 s tick: 500 ms per item at batch 1, 125 ms at batch 4, no spread
    assert report["median_ms"].tolist() == [500.0, 125.0] and (report["iqr_ms"] == 0).all()
    assert {"device", "torch_threads", "cpu_count", "q1_ms", "q3_ms"} <= set(report.columns)
    with pytest.raises(ValueError, match="exceeds"):
        ev.time_analysis(lambda b: None, ["p"], batch_sizes=(2,))


def test_time_models_times_the_heads_it_is_given():
    class Head:
        def __init__(self, k):
            self.k = k

        def predict_proba(self, x):
            return np.full((len(x), 2), self.k)

    used = []

    def analyser(backbone, classify):
        used.append((backbone, classify.__self__.k))
        return lambda batch: classify(batch)

    t = ev.time_models({"A": "a", "B": "b"}, {"A": Head(1), "B": Head(2)}, analyser, ["p1", "p2", "p3"], device="cpu")
    assert used == [("a", 1), ("b", 2)]  # each backbone with its own head, nothing refitted
    assert t["model"].tolist() == ["A", "A", "B", "B"] and t["batch_size"].tolist() == [1, 3, 1, 3]


# ---------------------------------------------------------------- protocols on features

def _features(n=120, d=6, K=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), n // K)
    X = rng.normal(size=(n, d)) + 1.5 * np.eye(K, d)[y]
    return X, y


def test_head_proba_equals_a_scaled_logistic_regression_fitted_on_train_only():
    X, y = _features()
    tr, te = np.arange(0, 120, 2), np.arange(1, 120, 2)
    P = ev.head_proba(X, y, tr, te, n_classes=4)  # a 4th class that never occurs gets probability 0
    C = ev.chosen_C(ev.fit_head(X[tr], y[tr]))
    assert C in ev.DEFAULT_CS
    sc = StandardScaler().fit(X[tr])
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(sc.transform(X[tr]), y[tr]) \
        .predict_proba(sc.transform(X[te]))
    np.testing.assert_allclose(P[:, :3], ref, atol=1e-5)
    assert (P[:, 3] == 0).all()
    # the test rows' labels play no part (C is chosen on the training rows only)
    garbled = y.copy()
    garbled[te] = np.random.default_rng(0).permutation(garbled[te])
    np.testing.assert_allclose(ev.head_proba(X, garbled, tr, te, n_classes=4), P)
    # one C: that C, fixed (the former head)
    ref1 = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(sc.transform(X[tr]), y[tr]) \
        .predict_proba(sc.transform(X[te]))
    np.testing.assert_allclose(ev.head_proba(X, y, tr, te, n_classes=3, Cs=[1.0]), ref1, atol=1e-5)
    with pytest.raises(ValueError, match="overlap"):
        ev.head_proba(X, y, tr, tr[:3], n_classes=3)


def test_kfold_protocol_trains_the_backbone_on_train_folds_only():
    X, y = _features()
    splits = ev.kfold_splits(y, 4, seed=0)
    seen = []

    def embed(train_idx):  # a "backbone" that records what it was trained on
        seen.append(set(train_idx.tolist()))
        return X

    P = ev.kfold_protocol(embed, y, splits, n_classes=3)
    assert len(seen) == 4
    for s, (_, te) in zip(seen, splits):
        assert not s & set(te.tolist())
    np.testing.assert_allclose(P, ev.kfold_protocol(X, y, splits, n_classes=3))  # fixed features: same answer
    assert (P.argmax(1) == y).mean() > 0.6
    with pytest.raises(ValueError, match="119 rows for 120 labels"):
        ev.kfold_protocol(X[:-1], y, splits, n_classes=3)


def test_loo_protocol_standardises_chooses_C_then_leaves_one_out():
    X, y = _features(n=45)
    scaled = 100 * X + 7  # standardisation makes the scale irrelevant
    P, C = ev.loo_protocol(X, y, n_classes=3, return_C=True)
    np.testing.assert_allclose(P, ev.loo_protocol(scaled, y, n_classes=3), atol=1e-5)
    Z = (X - X.mean(0)) / X.std(0)
    # C: LogisticRegressionCV's choice on all items (the protocol's known leak), macro-F1 over 3 inner folds
    ref = LogisticRegressionCV(Cs=ev.DEFAULT_CS, cv=StratifiedKFold(3, shuffle=True, random_state=0),
                               scoring="f1_macro", l1_ratios=(0.0,), max_iter=5000,
                               use_legacy_attributes=False).fit(Z, y)
    assert C == pytest.approx(ref.C_)
    np.testing.assert_allclose(ev.loo_protocol(X, y, n_classes=3, exact=True), ev.loo_logistic(Z, y, n_classes=3, C=C),
                               atol=1e-10)
    np.testing.assert_allclose(P, ev.loo_logistic_newton(Z, y, n_classes=3, C=C), atol=1e-10)
    P1, C1 = ev.loo_protocol(X, y, n_classes=3, Cs=[0.05], return_C=True)
    assert C1 == 0.05
    np.testing.assert_allclose(P1, ev.loo_logistic_newton(Z, y, n_classes=3, C=0.05), atol=1e-10)
    # the head that chose C, for reuse: fit_head on all items, as a caller would fit it again
    P2, C2, head = ev.loo_protocol(X, y, n_classes=3, return_C=True, return_head=True)
    np.testing.assert_array_equal(P2, P)
    assert C2 == C == ev.chosen_C(head)
    np.testing.assert_array_equal(head.predict_proba(X), ev.fit_head(X, y, seed=0).predict_proba(X))
    P3, head3 = ev.loo_protocol(X, y, n_classes=3, return_head=True)
    np.testing.assert_array_equal(P3, P)
    np.testing.assert_array_equal(head3.predict_proba(X), head.predict_proba(X))


def test_sklearn_C_is_the_newton_codes_C():
    """loo_logistic_newton assumes scikit-learn minimises sum_i l_i + ||W||^2 / (2C) (intercepts free):
    the gradient of that objective vanishes at scikit-learn's fit."""
    X, y = _features(n=90, d=5)
    for C in (0.01, 0.3, 5.0):
        clf = LogisticRegression(C=C, tol=1e-12, max_iter=10000, solver="newton-cg").fit(X, y)
        Z = X @ clf.coef_.T + clf.intercept_
        P = np.exp(Z - Z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        G = P - np.eye(3)[y]
        np.testing.assert_allclose(G.T @ X + clf.coef_ / C, 0, atol=1e-6)
        np.testing.assert_allclose(G.sum(0), 0, atol=1e-6)


@pytest.mark.parametrize("n, d, K, C", [(150, 5, 3, 1.0), (300, 12, 6, 0.1)])
def test_newton_step_loo_matches_exact_refits(n, d, K, C):
    rng = np.random.default_rng(n)
    y = np.repeat(np.arange(K), n // K)
    X = rng.normal(size=(len(y), d)) + np.eye(K, d)[y]
    approx = ev.loo_logistic_newton(X, y, n_classes=K, C=C)
    exact = ev.loo_logistic(X, y, n_classes=K, C=C)
    np.testing.assert_allclose(approx.sum(1), 1)
    assert np.abs(approx - exact).max() < 5e-3
    assert np.abs(approx - exact).mean() < 5e-4
    # and it is a leave-one-out: each item's own probability of its class drops against the full fit
    full = LogisticRegression(C=C, tol=1e-8, solver="newton-cg").fit(X, y).predict_proba(X)
    own = np.arange(len(y)), y
    assert (approx[own] <= full[own] + 1e-9).all()


# ---------------------------------------------------------------- the head and the linear probe

def _dense_weak(seed=0, n=240, d=60, a=0.15, n_test=0):
    """Isotropic classes whose means differ a little along every feature, few items per feature:
    the class-mean direction (what heavy L2 shrinkage tends to) beats a near-unregularised fit."""
    rng = np.random.default_rng(seed)
    mu = a * rng.normal(size=(3, d))
    y, yt = np.repeat([0, 1, 2], n // 3), np.repeat([0, 1, 2], n_test // 3)
    return rng.normal(size=(n, d)) + mu[y], y, rng.normal(size=(len(yt), d)) + mu[yt], yt


def _collinear(seed=0, n=300):
    """The label lives in x[:2] - x[2:], each buried in a shared noise 10x larger: shrinking the
    weights towards the class-mean direction (mostly x[:2]) loses it."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    z = 10 * rng.normal(size=(n, 2))
    return np.hstack([z + np.eye(3)[y][:, :2] + 0.05 * rng.normal(size=(n, 2)), z]), y


def test_fit_head_chooses_heavy_regularisation_only_where_it_helps():
    X, y, Xt, yt = _dense_weak(n_test=3000)
    head = ev.fit_head(X, y)
    assert ev.chosen_C(head) <= 0.01 and head.inner_folds_ == 3
    loose = ev.fit_head(X, y, Cs=[10.0])
    assert f1_score(yt, head.predict(Xt), average="macro") > f1_score(yt, loose.predict(Xt), average="macro") + 0.02

    X, y = _collinear()
    head = ev.fit_head(X, y)
    assert ev.chosen_C(head) == max(ev.DEFAULT_CS)
    Xt, yt = _collinear(seed=1)
    assert f1_score(yt, head.predict(Xt), average="macro") > 0.95
    assert f1_score(yt, ev.fit_head(X, y, Cs=[1e-3]).predict(Xt), average="macro") < 0.6


def test_fit_head_reduces_inner_folds_for_small_classes_and_refuses_one_class():
    X, y = _features(n=60)
    y = y.copy()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:2]]  # class 2: two rows
    head = ev.fit_head(X[keep], y[keep], inner_folds=5)
    assert head.inner_folds_ == 2 and list(head.classes_) == [0, 1, 2]
    assert ev.fit_head(X, y, inner_folds=5).inner_folds_ == 5
    assert ev.fit_head(X, y, Cs=[0.3]).inner_folds_ == 0 and ev.chosen_C(ev.fit_head(X, y, Cs=[0.3])) == 0.3
    with pytest.raises(ValueError, match="at least two classes"):
        ev.fit_head(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match="Cs must"):
        ev.fit_head(X, y, Cs=[0.0, 1.0])


def test_fit_head_is_the_same_with_its_inner_folds_fitted_at_once():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 300)
    X = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) + 0.8 * rng.normal(size=(4, 12))[y]
    one = ev.fit_head(X, y, seed=3)
    for jobs in (2, 3):
        many = ev.fit_head(X, y, seed=3, jobs=jobs)
        np.testing.assert_array_equal(many.predict_proba(X), one.predict_proba(X))  # bit for bit
        assert ev.chosen_C(many) == ev.chosen_C(one) and many.inner_folds_ == one.inner_folds_
    splits = ev.kfold_splits(y, 3, seed=0)
    np.testing.assert_array_equal(ev.kfold_protocol(X, y, splits, n_classes=4, jobs=2),
                                  ev.kfold_protocol(X, y, splits, n_classes=4))
    np.testing.assert_array_equal(ev.loo_protocol(X, y, n_classes=4, jobs=2), ev.loo_protocol(X, y, n_classes=4))
    with pytest.raises(ValueError, match="jobs"):
        ev.fit_head(X, y, jobs=0)


def test_standardised_probe_ignores_the_scale_of_a_feature():
    X, y = _features(n=150, d=6)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)  # unit-norm rows, as embeddings
    small = X.copy()
    small[:, 0] *= 1e-3  # the most informative feature, shrunk
    tr, te = np.arange(0, 150, 3), np.setdiff1d(np.arange(150), np.arange(0, 150, 3))
    a, b = ev.probe(X, y, tr, te, n_boot=50), ev.probe(small, y, tr, te, n_boot=50)
    assert a["C"] == b["C"]
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-6)
    # an unstandardised logistic regression (C = 1) is not invariant: it loses the shrunk feature
    raw = [LogisticRegression(max_iter=5000).fit(Z[tr], y[tr]).predict_proba(Z[te]) for Z in (X, small)]
    assert np.abs(raw[0] - raw[1]).max() > 0.01


@pytest.mark.parametrize("K", [2, 4])
def test_linear_weights_reproduce_the_pipeline_on_raw_features(K):
    rng = np.random.default_rng(K)
    labels = np.array(["bronze", "jade", "stone", "wood"][:K])
    y = labels[np.repeat(np.arange(K), 30)]
    X = (50 + 20 * rng.normal(size=(len(y), 7)) * rng.uniform(0.01, 10, 7)
         + np.eye(K, 7)[np.searchsorted(labels, y)] * 30)
    head = ev.fit_head(X, y)
    W, b = ev.linear_weights(head)
    assert W.shape == (K, 7) and b.shape == (K,)
    Xn = 50 + 20 * rng.normal(size=(25, 7))  # unseen raw rows
    logits = Xn @ W.T + b
    dec = head.decision_function(Xn)
    if K == 2:
        np.testing.assert_allclose(logits[:, 1] - logits[:, 0], dec, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(logits.sum(1), 0, atol=1e-8)
    else:
        np.testing.assert_allclose(logits, dec, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(softmax(logits, axis=1), head.predict_proba(Xn), atol=1e-8)
    assert (labels[logits.argmax(1)] == head.predict(Xn)).all()


def test_probe_scores_test_rows_only_with_sklearn_metrics_and_string_labels():
    rng = np.random.default_rng(0)
    names = np.array(["imperial", "literati", "folk", "modern"])
    y = names[np.repeat(np.arange(4), [240, 200, 160, 120])]
    signal = np.eye(4)[np.searchsorted(np.sort(names), y)]
    X_good = np.hstack([3 * signal, rng.normal(size=(len(y), 4))]) + rng.normal(size=(len(y), 8))
    X_noise = rng.normal(size=(len(y), 8))
    tr, te = ev.kfold_splits(y, 3, seed=0)[0]
    good, noise = ev.probe(X_good, y, tr, te, n_boot=300), ev.probe(X_noise, y, tr, te, n_boot=300)
    for r in (good, noise):
        assert list(r["classes"]) == sorted(names)
        assert r["predictions"].dtype.kind == "U" and set(r["predictions"]) <= set(names)
        assert r["accuracy"] == pytest.approx(accuracy_score(y[te], r["predictions"]))
        assert r["macro_f1"] == pytest.approx(f1_score(y[te], r["predictions"], average="macro"))
        assert r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"]
        assert r["macro_f1_ci_low"] <= r["macro_f1"] <= r["macro_f1_ci_high"]
        np.testing.assert_allclose(r["probabilities"].sum(1), 1)
        assert r["C"] in ev.DEFAULT_CS and r["n_test"] == len(te) and r["n_train"] == len(tr)
        assert r["C"] == ev.chosen_C(r["pipeline"])
    assert good["macro_f1_ci_low"] > 0.9 and good["accuracy_ci_low"] > 0.9
    # any rule blind to the label expects at most the majority share (240 / 720) of accuracy
    assert noise["accuracy_ci_low"] < 1 / 3 < noise["accuracy_ci_high"] and noise["macro_f1_ci_high"] < 0.3
    # the probe's C is fitted without the test rows: garbling their labels changes no prediction
    garbled = y.copy()
    garbled[te] = rng.permutation(garbled[te])
    again = ev.probe(X_good, garbled, tr, te, n_boot=10)
    assert again["C"] == good["C"] and (again["predictions"] == good["predictions"]).all()
    with pytest.raises(ValueError, match="overlap"):
        ev.probe(X_good, y, tr, np.r_[te, tr[:1]])
    with pytest.raises(ValueError, match="non-empty"):
        ev.probe(X_good, y, tr, [])


def test_paired_probe_difference_with_string_labels():
    rng = np.random.default_rng(1)
    names = np.array(["a", "b", "c"])
    y = names[np.repeat(np.arange(3), 60)]
    strong = np.eye(3)[np.searchsorted(names, y)] * 3 + rng.normal(size=(len(y), 3))
    weak = np.eye(3)[np.searchsorted(names, y)] * 0.5 + rng.normal(size=(len(y), 3))
    tr, te = ev.kfold_splits(y, 3, seed=0)[0]
    A, B = ev.probe(strong, y, tr, te, n_boot=50), ev.probe(weak, y, tr, te, n_boot=50)
    r = ev.paired_probe_difference(None, A, B, n_resamples=300)
    assert r["a"] == pytest.approx(A["macro_f1"]) and r["b"] == pytest.approx(B["macro_f1"])
    assert r["difference"] == pytest.approx(A["macro_f1"] - B["macro_f1"]) and r["ci_low"] > 0
    # the same from probabilities + classes, and from predicted labels alone
    same = ev.paired_probe_difference(y[te], A["probabilities"], B["probabilities"], classes=A["classes"],
                                      n_resamples=300)
    assert same == r
    preds = ev.paired_probe_difference(y[te], A["predictions"], B["predictions"], n_resamples=300)
    assert preds["difference"] == pytest.approx(r["difference"])
    assert (preds["ci_low"], preds["ci_high"]) == pytest.approx((r["ci_low"], r["ci_high"]))
    itself = ev.paired_probe_difference(None, A, A, n_resamples=100)
    assert itself["difference"] == 0 and itself["ci_low"] <= 0 <= itself["ci_high"]
    other_split = ev.probe(weak, y, *ev.kfold_splits(y, 3, seed=0)[1], n_boot=10)
    with pytest.raises(ValueError, match="different test items"):
        ev.paired_probe_difference(None, A, other_split)


def test_training_table_and_loss_text_read_first_and_last_losses():
    fit = {"steps": 20, "seconds": 1.23, "images_per_second": 99.6, "chance": 2.0, "losses": [3.0] * 10 + [1.0] * 10}
    t = ev.training_table([{"model": "clip", "protocol": "loo", "train_items": 50, "fit": fit}], {"clip": "CLIP"})
    row = t.iloc[0]
    assert (row["model"], row["loss, first 10 steps"], row["loss, last tenth"]) == ("CLIP", 3.0, 1.0)
    assert row["last / chance"] == 0.5 and row["images/s"] == 100
    assert ev.loss_text(fit) == "3.000 → 1.000 (chance 2.000)"
    assert ev.loss_text({**fit, "chance": None}) == "no chance level"


def test_macro_table_keeps_macro_rows_in_the_given_order():
    cis = pd.DataFrame([{"class": c, "protocol": p, "model": m, "metric": "f1", "cell": f"{p}-{m}-{c}"}
                        for c in ("macro", "a") for p in ("loo", "kfold") for m in ("B", "A")])
    t = ev.macro_table(cis, ["A", "B", "missing"], ["kfold", "loo"])
    assert list(t.index) == [("kfold", "A"), ("kfold", "B"), ("loo", "A"), ("loo", "B")]
    assert t.loc[("loo", "A"), "f1"] == "loo-A-macro" and list(t.columns) == list(ev.TABLE_METRICS)


def test_fold_counts_count_each_class_in_each_test_fold():
    splits = ev.kfold_splits(["a"] * 4 + ["b"] * 6, 2, seed=0)
    t = ev.fold_counts(["a"] * 4 + ["b"] * 6, splits, ["b", "a"])
    assert list(t.columns) == ["b", "a", "total"] and list(t.index) == ["fold 1", "fold 2"]
    assert list(t["total"]) == [5, 5] and list(t["a"]) == [2, 2]
