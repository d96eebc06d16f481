"""Chapter 8's costs outside training, before and after, measured in this run on this machine: the
heads that Table 3 times (refitted per model, or protocol (a)'s reused), ``fit_head``'s inner
cross-validation (one fold at a time, or ``jobs`` folds at once in processes as fit_head runs them;
threads, and one process per fold, for comparison) and the bootstrap of ``metric_cis`` (every resample
ranked, or its AUC read from scores sorted once).

    python benchmarks/bench_eval_costs.py [--n 925 1850] [--dims 128 256] [--jobs 2] [--models 6] [--repeats 2]

Synthetic, seeded inputs of the chapter's sizes (925 items: the training rows of a 2-fold split of
1,850; 10 classes): standardised features with a decaying spectrum and a weak class signal, like a
small backbone's embedding (the head's C is then the largest of the grid, the slowest fit), and
probabilities with ties. Each variant checks that its result is identical to the "before" one.
Prints markdown tables: seconds, best of ``--repeats`` (the first call of a process pool, which
starts its workers, is shown apart).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from hzlib import evaluate as E


def features(n: int, d: int, K: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    Z = 0.6 * rng.normal(size=(K, d))[y] + rng.normal(size=(n, d))
    spectrum = 1.0 / np.arange(1, d + 1) ** 2
    X = (Z * spectrum) @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 1e-3 * rng.normal(size=(n, d))
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def probabilities(n: int, K: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    P = np.exp(rng.normal(size=(n, K)) + np.eye(K)[y])
    P = np.round(P / P.sum(1, keepdims=True), 3)  # ties
    return y, P / P.sum(1, keepdims=True)


def timed(fn, repeats: int):
    """(best seconds, first seconds, result of the last call)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times[0], out


def bench_heads(a) -> pd.DataFrame:
    """fit_head with one job and with ``a.jobs`` (processes, as fit_head runs them); for comparison, the
    same pipeline refitted with ``a.jobs`` threads and with one process per inner fold."""
    rows = []
    for n in a.n:
        for d in a.dims:
            X, y = features(n, d)
            base, _, one = timed(lambda: E.fit_head(X, y, seed=1), a.repeats)
            ref = one.predict_proba(X)
            folds = one.inner_folds_
            variants = {f"jobs={a.jobs}, processes (fit_head)": lambda: E.fit_head(X, y, seed=1, jobs=a.jobs),
                        f"jobs={a.jobs}, threads": lambda: _refit(one, X, y, a.jobs, "threading"),
                        f"jobs={folds} (the inner folds), processes": lambda: _refit(one, X, y, folds, "loky")}
            rows.append({"items x features": f"{n} x {d}", "fit_head": "jobs=1", "s": base, "first call s": np.nan,
                         "speed-up": 1.0, "identical": True, "C": E.chosen_C(one)})
            for name, fn in variants.items():
                best, first, head = timed(fn, a.repeats)
                rows.append({"items x features": f"{n} x {d}", "fit_head": name, "s": best, "first call s": first,
                             "speed-up": base / best, "identical": bool(np.array_equal(head.predict_proba(X), ref)),
                             "C": E.chosen_C(head)})
    return pd.DataFrame(rows)


def _refit(head, X, y, jobs: int, backend: str):
    """``head``'s pipeline (same parameters) fitted again with its inner folds in ``jobs`` workers of
    joblib's ``backend``, one BLAS thread each (fit_head's cap)."""
    again = clone(head).set_params(logisticregressioncv__n_jobs=jobs)
    cap = {"inner_max_num_threads": 1} if backend == "loky" else {}  # threads share the process's cap
    with threadpool_limits(1), parallel_config(backend=backend, **cap):
        again.fit(np.asarray(X, dtype=np.float64), y)
    return again


def bench_bootstrap(a) -> pd.DataFrame:
    y, P = probabilities(a.n[0])
    other = [m for m in E.METRICS if m not in E.MEAN_METRICS]
    auc_of = E.resampled_auc(y, P)

    def stat(idx, ranked: bool):
        m = E.per_class(y[idx], P[idx], auc=ranked)
        if not ranked:
            m["auc"] = auc_of(np.bincount(idx, minlength=len(y)))
        mac = E._macro(m)
        return np.concatenate([np.r_[m[k], mac[k]] for k in other])

    before, _, ref = timed(lambda: E.bootstrap(lambda i: stat(i, True), len(y), seed=1), a.repeats)
    after, _, got = timed(lambda: E.bootstrap(lambda i: stat(i, False), len(y), seed=1), a.repeats)
    whole, _, _ = timed(lambda: E.metric_cis(y, P, seed=1), a.repeats)
    same = all(np.array_equal(r, g, equal_nan=True) for r, g in zip(ref, got))
    return pd.DataFrame([{"metric_cis, 1000 resamples": f"bootstrap of per_class, {len(y)} x {P.shape[1]}",
                          "before s": before, "after s": after, "speed-up": before / after, "identical": same},
                         {"metric_cis, 1000 resamples": "the whole metric_cis (after)", "before s": np.nan,
                          "after s": whole, "speed-up": np.nan, "identical": same}])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[925, 1850],
                    help="items: a k-fold head's training rows and protocol (a)'s (the first also sizes the bootstrap)")
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 256], help="feature sizes")
    ap.add_argument("--jobs", type=int, default=2, help="fit_head's jobs (the profile's workers)")
    ap.add_argument("--models", type=int, default=6, help="models whose heads Table 3 times")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    print(f"# Chapter 8's costs outside training ({platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})\n")
    heads = bench_heads(a)
    print(heads.to_markdown(index=False, floatfmt=".3g"), "\n")
    one = heads[heads["fit_head"] == "jobs=1"].iloc[-len(a.dims)]  # the most items, the first feature size
    print(f"Table 3's heads: before, {a.models} refits of {one['s']:.2f} s ({one['items x features']}) = "
          f"{a.models * one['s']:.1f} s; after, 0 s (protocol (a)'s heads reused).\n")
    print(bench_bootstrap(a).to_markdown(index=False, floatfmt=".3g"))
    print(f"\n(load at the end {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
