"""Did a run reproduce the reference? Two run records compared value by value.

A *run* is what ``hz record`` keeps in ``results/<profile>/``: ``record.json`` (per chapter, every value
the chapter glued, as text) and one ``<stage>.json`` per stage (that stage's
``artifacts/<profile>/<stage>/summary.json``). :func:`compare_runs` pairs every value of a reference
run with the same value of another run and says, per value, whether it drifted, by how much, and
whether the drift is within the tolerance of its kind. ``hz record --compare`` (or ``hz verify``)
compares the executed chapters of this checkout with ``results/<profile>/``.

Which tolerance a value gets is decided by explicit rules, in this order:

1. **intervals** (:data:`INTERVALS`): a value recorded with a 95% bootstrap interval is a ``ci``
   estimate, which passes inside the recorded interval; the interval's bounds are ``ci bound``, which
   pass within half the recorded width. An interval is either in one glued text
   (``"0.446 [0.385, 0.507]"``) or in sibling keys (``x`` / ``x_lo`` / ``x_hi``, ``ci_low`` /
   ``ci_high`` beside ``value``, ...);
2. **rules** (:data:`RULES`): the first glob pattern that matches the key (a glued key such as
   ``ch05_final_loss``, or a stage summary's path such as ``orbits/0/metrics/sparse/n_points``);
3. **by type**: an integer is a ``count``, another number a ``metric``, text is ``exact``.

The kinds, with their tolerances, are :data:`TOLERANCES`. A glued text with several numbers
(``"12 of 12"``, ``"横 0.93, 竖 1.03, 点 1.66"``) passes when its words are the same and each number is
within its tolerance. A value present on one side only is reported and fails, unless its kind is not
checked (timings, environment, paths, choices).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .reproduce import Layout, current_record
from .summary import glued_text

ALPHA = 0.05  # the significance level a p-value is read against


@dataclass(frozen=True)
class Tolerance:
    """How far a number may drift. ``test``: ``equal``; ``relative`` (|now - recorded| <= atol + rtol
    |recorded|); ``count`` (<= max(atol, rtol |recorded|)); ``interval`` (inside the recorded interval);
    ``half_width`` (<= half the recorded interval's width); ``side`` (on the same side of
    :data:`ALPHA`); ``none`` (reported, not checked)."""
    name: str
    test: str
    rule: str
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def checked(self) -> bool:
        return self.test != "none"

    def within(self, recorded: float, now: float, interval: tuple[float, float] | None = None) -> bool:
        d = abs(now - recorded)
        eps = 1e-12 * max(1.0, abs(recorded))
        if self.test == "none":
            return True
        if self.test == "equal":
            return d <= eps
        if self.test == "relative":
            return d <= self.atol + self.rtol * abs(recorded) + eps
        if self.test == "count":
            return d <= max(self.atol, self.rtol * abs(recorded)) + eps
        if self.test == "side":
            return (recorded < ALPHA) == (now < ALPHA)
        if interval is None:
            raise ValueError(f"tolerance {self.name!r} needs the recorded interval")
        lo, hi = min(interval), max(interval)
        if self.test == "interval":
            return lo - eps <= now <= hi + eps
        if self.test == "half_width":
            return d <= (hi - lo) / 2 + eps
        raise ValueError(f"tolerance {self.name!r}: unknown test {self.test!r}")


TOLERANCES: dict[str, Tolerance] = {t.name: t for t in (
    Tolerance("exact", "equal", "equal: the corpus and its counts, settings, text"),
    Tolerance("count", "count", "within 5% or 1: integers a computation finds (points, iterations, views)",
              rtol=0.05, atol=1),
    Tolerance("loss", "relative", "within 5%: losses, temperatures and their ratios", rtol=0.05),
    Tolerance("metric", "relative", "within 5% + 0.02: scores recorded without an interval", rtol=0.05, atol=0.02),
    Tolerance("geometry", "relative", "within 25% + 0.001: errors of a reconstruction (share of the "
              "diagonal, degrees, pixels)", rtol=0.25, atol=0.001),
    Tolerance("ci", "interval", "inside the recorded 95% interval: estimates recorded with one"),
    Tolerance("ci bound", "half_width", "within half the recorded interval's width: its bounds"),
    Tolerance("p-value", "side", f"on the same side of {ALPHA}"),
    Tolerance("check", "relative", "within 1e-6: values that are 0 or 1 by construction", atol=1e-6),
    Tolerance("choice", "none", "not checked: a choice inside a fit (a setting, C, k); what follows is"),
    Tolerance("timing", "none", "not checked: times and rates"),
    Tolerance("meta", "none", "not checked: environment, paths, stamps"),
)}
HIDDEN = ("timing", "meta")  # drifts of these kinds are listed only on request (``--all``)

# (glob pattern on the key, tolerance name): the first match wins. Keys are glued keys or stage summary
# paths ("orbits/0/metrics/sparse/n_points"); "*" also matches "/".
RULES: tuple[tuple[str, str], ...] = (
    # not checked
    *((p, "meta") for p in ("environment", "environment/*", "*/environment/*", "geometry/source", "*/model_dir",
                            "commit", "recorded", "*finished", "*fingerprint", "*torch_threads", "*cpu_count",
                            "*profile/force")),  # force: recompute rather than resume, the same numbers either way
    *((p, "timing") for p in ("*seconds*", "*_ms", "timing/*", "*/timing/*", "*/times/*", "*per_second*",
                              "*images/s", "train_ips")),
    *((p, "choice") for p in ("best_lr", "best_batch", "best_tau", "sweep/best/*", "*sweep_best/*", "*/chosen",
                              "*/C", "km_*_best_k", "corpus_kmeans/*/k", "ch08_best_kfold")),
    # by construction
    *((p, "check") for p in ("ch02_z_*", "statistics/z_*", "gc_eq_diff")),
    ("*p_value", "p-value"),
    # the corpus, the profile, settings: exact
    *((p, "exact") for p in (
        "profile", "status", "run/profile/*", "profile/*", "*/profile/*", "*config/*", "fit/*", "geometry/*",
        "cards/*", "*params/*", "*params", "parameters/*", "splits/*", "vocabulary", "token_init/*rows",
        "*_ids/*", "zhen_set/*", "fasttext/corpus/*", "fasttext/fasttext_words", "fasttext/sha256", "ft_characters",
        "ft_tokens", "ft_words", "*n_images", "*n_classes", "*class_counts", "*n_test", "test/n", "*/n", "*zhen_n",
        "sweep_n", "*_steps", "*/steps", "train_epochs", "*folds", "ch08_n_models", "ch08_device", "device",
        "ch03_orbits_ok", "orbits/*/ok", "orbits/*/reason", "*chance_r10", "majority", "gc_chance", "map_chance",
        "test/chance/*", "mapping/chance*", "*chance loss", "paper_acc", "ch08_ln_batch", "prompt_unk",
        "*unknown*words", "gc_mask_fraction", "sweep_choice", "*training pairs", "*token_init/*", "orbits/*/views",
        "test/retrieval/*/k", *(f"sweep/table/*/{k}" for k in ("setting", "lr", "batch_size", "learn_tau")))),
    # integers a computation finds
    *((p, "count") for p in ("*n_points", "*iterations", "fig5_iter", "*registered*", "*only_?_correct",
                             "ch08_clip_rank_kfold", "sweep_learnt", "zhen_zero_maps")),
    # losses, temperatures, their ratios
    *((p, "loss") for p in ("*loss*", "*tau", "final_vs_chance", "sweep_max_drop", "*last / chance",
                            "ch08_worst_left")),
    # reconstruction errors
    *((p, "geometry") for p in ("orbits/*/reprojection_px", "orbits/*error*", "orbits/*/accuracy_*",
                                "orbits/*/completeness_*", "orbits/*/chamfer", "ch03_dense_accuracy_pct")),
)

# Sibling keys that hold a 95% interval: (lower, upper, names the estimate may have). "{}" is the
# estimate's name; a name without "{}" is a sibling in the same folder of a stage summary.
INTERVALS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("{}_lo", "{}_hi", ("{}", "{}_mean", "{}_ari")),
    ("{}_ci_low", "{}_ci_high", ("{}",)),
    ("ci_low", "ci_high", ("value", "difference", "recall", "mean")),
    ("lo", "hi", ("mean",)),
    ("ci/0", "ci/1", ("accuracy",)),
)

_NUMBER = re.compile(r"(?<![\w.])[+\-\u2212]?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][+\-]?\d+)?(?!\w)")


def rule_for(key: str) -> Tolerance | None:
    """The tolerance :data:`RULES` gives ``key`` (``None``: none matches; the type decides)."""
    for pattern, name in RULES:
        if fnmatchcase(key, pattern):
            return TOLERANCES[name]
    return None


@dataclass(frozen=True)
class Parsed:
    """A value as words and numbers: ``template`` has ``#`` for each number of ``numbers``; ``groups``
    are the indices i of numbers written ``a [b, c]`` (an estimate i with its interval i+1, i+2)."""
    template: str
    numbers: tuple[float, ...]
    groups: tuple[int, ...] = ()


def parse_value(value, *, glued: bool = False) -> Parsed:
    """Split a value into words and numbers. ``glued``: a glued ``text/plain`` (a Python repr: a
    string's quotes are dropped)."""
    if isinstance(value, bool) or value is None:
        return Parsed(str(value), ())
    if isinstance(value, (int, float)):
        return Parsed("#", (value,))
    text = glued_text(str(value)) if glued else str(value)
    numbers = []
    for m in _NUMBER.finditer(text):
        s = m.group().replace(",", "").replace("\u2212", "-")
        numbers.append(float(s) if any(c in s for c in ".eE") else int(s))
    segs = _NUMBER.split(text)
    groups = tuple(i for i in range(len(numbers) - 2)
                   if segs[i + 1] == " [" and segs[i + 2] == ", " and segs[i + 3].startswith("]"))
    return Parsed("#".join(segs), tuple(numbers), groups)


@dataclass(frozen=True)
class Row:
    """One compared value. ``same``: identical; ``within``: within its tolerance (always for kinds that
    are not checked); ``diff`` / ``rel``: the largest absolute / relative change of its numbers."""
    where: str
    key: str
    recorded: str | None
    now: str | None
    tolerance: str
    same: bool
    within: bool
    diff: float | None = None
    rel: float | None = None
    note: str = ""


def _interval_index(values: dict[str, Parsed]) -> dict[str, tuple[str, tuple[float, float]]]:
    """key -> ("ci" or "ci bound", recorded interval), for every estimate and bound :data:`INTERVALS`
    finds among ``values`` (one section's recorded values)."""
    def single(key):
        p = values.get(key)
        return p.numbers[0] if p is not None and len(p.numbers) == 1 else None

    out: dict[str, tuple[str, tuple[float, float]]] = {}
    for key in values:
        folder, _, name = key.rpartition("/")
        prefix = f"{folder}/" if folder else ""
        for lo_pat, hi_pat, est_pats in INTERVALS:
            if "{}" in lo_pat:
                head, tail = lo_pat.split("{}")
                if not (name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail)):
                    continue
                base = name[len(head):len(name) - len(tail)]
                hi_key = prefix + hi_pat.format(base)
                ests = [prefix + e.format(base) for e in est_pats]
            else:
                if not key.endswith("/" + lo_pat) and key != lo_pat:
                    continue
                root = key[:-len(lo_pat)]
                hi_key, ests = root + hi_pat, [root + e for e in est_pats]
            lo, hi = single(key), single(hi_key)
            est = next((e for e in ests if single(e) is not None), None)
            if lo is None or hi is None or est is None:
                continue
            out[est] = ("ci", (lo, hi))
            out[key] = out[hi_key] = ("ci bound", (lo, hi))
            break
    return out


def _show(value, glued: bool) -> str | None:
    if value is None:
        return None
    return glued_text(str(value)) if glued else json.dumps(value, ensure_ascii=False) if not isinstance(value, str) \
        else value


def compare_value(where: str, key: str, recorded, now, *, glued: bool = False,
                  interval: tuple[str, tuple[float, float]] | None = None, missing=None) -> Row:
    """Compare one value of a reference run (``recorded``) with this run's (``now``); ``missing``
    marks a side that lacks the key. ``interval``: ``("ci" | "ci bound", (lo, hi))`` when the recorded
    value is an interval's estimate or bound."""
    rule = rule_for(key)
    rec_s = _show(None if recorded is missing else recorded, glued)
    now_s = _show(None if now is missing else now, glued)
    if recorded is missing or now is missing:
        tol = rule or TOLERANCES["exact"]
        note = "not in the reference" if recorded is missing else "missing in this run"
        return Row(where, key, rec_s, now_s, tol.name, False, not tol.checked, note=note)
    a, b = parse_value(recorded, glued=glued), parse_value(now, glued=glued)
    same = rec_s == now_s
    if rule is not None and not rule.checked:
        return Row(where, key, rec_s, now_s, rule.name, same, True, note="" if same else "not checked")
    if a.template != b.template or len(a.numbers) != len(b.numbers):
        tol = rule or TOLERANCES["exact"]
        return Row(where, key, rec_s, now_s, tol.name, same, same, note="" if same else "the words differ")
    kinds: list[str] = []
    diffs, rels, notes, ok = [], [], [], True
    bounds = {i + j: (a.numbers[i + 1], a.numbers[i + 2]) for i in a.groups for j in (1, 2)}
    for i, (x, y) in enumerate(zip(a.numbers, b.numbers)):
        span = None
        if i in a.groups:
            tol, span = TOLERANCES["ci"], (a.numbers[i + 1], a.numbers[i + 2])
        elif i in bounds:
            tol, span = TOLERANCES["ci bound"], bounds[i]
        elif interval is not None and len(a.numbers) == 1:
            tol, span = TOLERANCES[interval[0]], interval[1]
        else:
            tol = rule or (TOLERANCES["count"] if isinstance(x, int) else TOLERANCES["metric"])
        if tol.name not in kinds:
            kinds.append(tol.name)
        d = abs(y - x)
        diffs.append(d)
        rels.append(d / abs(x) if x else (0.0 if d == 0 else math.inf))
        if not tol.within(x, y, span):
            ok = False
            notes.append(_why(tol, x, y, span))
    diff = max(diffs) if diffs else None
    rel = max(rels) if rels else None
    return Row(where, key, rec_s, now_s, ", ".join(kinds) or (rule or TOLERANCES["exact"]).name, same, ok,
               diff, rel, "; ".join(notes))


def _why(tol: Tolerance, x, y, span) -> str:
    """Why ``y`` is not within ``tol`` of ``x``, in words."""
    if tol.test == "interval":
        return f"{y:g} outside [{min(span):g}, {max(span):g}]"
    if tol.test == "half_width":
        return f"{x:g} -> {y:g} moves more than {(max(span) - min(span)) / 2:g}"
    if tol.test == "side":
        return f"p {x:g} -> {y:g} crosses {ALPHA}"
    if tol.test == "relative":
        return f"{x:g} -> {y:g} moves more than {tol.atol + tol.rtol * abs(x):.3g}"
    if tol.test == "count":
        return f"{x:g} -> {y:g} moves more than {max(tol.atol, tol.rtol * abs(x)):g}"
    return f"{x:g} -> {y:g}, not equal"


def flatten(obj, prefix: str = "") -> dict:
    """Leaves of nested dicts and lists, keyed by their path (``a/0/b``)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}/{i}" if prefix else str(i)))
        return out
    return {prefix: obj}


@dataclass(frozen=True)
class Run:
    """A run's record (``record.json``) and its stage summaries (by stage name); ``source`` says where
    it was read."""
    record: dict
    stages: dict[str, dict] = field(default_factory=dict)
    source: str = ""


def load_run(folder: str | Path) -> Run:
    """A recorded run: ``<folder>/record.json`` and every other ``<folder>/<stage>.json``."""
    folder = Path(folder)
    path = folder / "record.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record there (write one with `hz record`)")
    stages = {}
    for p in [path, *sorted(q for q in folder.glob("*.json") if q.name != "record.json")]:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not readable JSON ({e})") from None
        if p == path:
            record = data
        else:
            stages[p.stem] = data
    return Run(record, stages, str(folder))


def run_from_layout(layout: Layout) -> Run:
    """The run whose executed chapters are in ``book/chapters`` (read, not written)."""
    record, stage_paths = current_record(layout)
    stages = {}
    for name, p in stage_paths.items():
        try:
            stages[name] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not readable JSON ({e})") from None
    return Run(record, stages, str(layout.chapters))


def _sections(run: Run) -> dict[str, tuple[dict, bool]]:
    """where -> (values by key, glued?): the record's head, each chapter's glue, each stage summary."""
    rec = run.record
    head = {"profile": rec.get("profile"), "status": rec.get("status")}
    head.update(flatten(rec.get("run", {}).get("profile", {}), "run/profile"))
    out = {"record": (head, False)}
    for stem, ch in rec.get("chapters", {}).items():
        out[stem] = (dict(ch.get("glue", {})), True)
    for name, summary in run.stages.items():
        out[f"{name}.json"] = (flatten(summary), False)
    return out


@dataclass
class Comparison:
    """Every compared value of two runs (:func:`compare_runs`)."""
    rows: list[Row]
    reference: str = ""
    current: str = ""

    @property
    def drifted(self) -> list[Row]:
        return [r for r in self.rows if not r.same]

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.within]

    @property
    def ok(self) -> bool:
        return not self.failures

    def frame(self, rows: list[Row] | None = None) -> pd.DataFrame:
        rows = self.rows if rows is None else rows
        cols = ["where", "key", "recorded", "now", "diff", "rel", "tolerance", "within", "same", "note"]
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

    def drift_table(self, *, show_all: bool = False) -> pd.DataFrame:
        """The values that drifted, those outside their tolerance first; timings and environment only
        with ``show_all``."""
        rows = [r for r in self.drifted if show_all or not r.within or r.tolerance not in HIDDEN]
        rows.sort(key=lambda r: r.within)  # stable: failures first, then in record order
        return self.frame(rows)

    def overview(self) -> pd.DataFrame:
        """Per chapter or stage: values compared, identical, drifted within tolerance, outside."""
        out = {}
        for r in self.rows:
            o = out.setdefault(r.where, {"where": r.where, "values": 0, "identical": 0, "drifted, within": 0,
                                         "outside tolerance": 0})
            o["values"] += 1
            o["identical"] += r.same
            o["drifted, within"] += (not r.same) and r.within
            o["outside tolerance"] += not r.within
        return pd.DataFrame(list(out.values()))


def compare_runs(reference: Run, current: Run) -> Comparison:
    """Every value of ``reference`` against ``current`` (and every value only ``current`` has), in the
    reference's order. A chapter or stage one side lacks is one failing row (key ``*``)."""
    missing = object()
    ref, cur = _sections(reference), _sections(current)
    rows: list[Row] = []
    for where in [*ref, *(w for w in cur if w not in ref)]:
        if where not in cur or where not in ref:
            absent = where not in cur
            rows.append(Row(where, "*", None if not absent else "recorded", "ran" if not absent else None,
                            "exact", False, False,
                            note="not run in this run" if absent else "not in the reference"))
            continue
        (a, glued), (b, _) = ref[where], cur[where]
        parsed = {k: parse_value(v, glued=glued) for k, v in a.items()}
        intervals = _interval_index(parsed)
        for key in [*a, *(k for k in b if k not in a)]:
            rows.append(compare_value(where, key, a.get(key, missing), b.get(key, missing), glued=glued,
                                      interval=intervals.get(key), missing=missing))
    return Comparison(rows, reference.source, current.source)


def _environment(run: Run) -> dict:
    env = {f"hz: {k}": v for k, v in flatten(run.record.get("environment", {})).items()}
    for name in sorted(run.stages):  # the chapters' kernels: their thread settings
        e = run.stages[name].get("environment") if isinstance(run.stages[name], dict) else None
        if isinstance(e, dict):
            env.update({f"kernel ({name}): {k}": v for k, v in flatten(e).items()})
            break
    return {k: v for k, v in env.items() if not k.endswith("time_utc")}


def environment_differences(reference: Run, current: Run) -> pd.DataFrame:
    """Environment values (packages, CPU, thread pools) that differ between the runs: not checked, but
    where a drift may come from."""
    a, b = _environment(reference), _environment(current)
    rows = [{"environment": k, "recorded": a.get(k), "now": b.get(k)} for k in [*a, *(k for k in b if k not in a)]
            if a.get(k) != b.get(k)]
    return pd.DataFrame(rows, columns=["environment", "recorded", "now"])


def _cut(v, n: int = 56) -> str:
    s = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    return s if len(s) <= n else s[:n - 1] + "…"


def report(cmp: Comparison, reference: Run, current: Run, *, show_all: bool = False) -> str:
    """The text ``hz record --compare`` prints: per chapter counts, the environment differences, the
    drifted values, and a verdict naming every value outside its tolerance."""
    lines = [f"[hz] this run ({current.source}) against the reference {reference.source} "
             f"(profile {reference.record.get('profile')}, commit {reference.record.get('commit')}, "
             f"recorded {reference.record.get('recorded')})", ""]
    lines += [tabulate(cmp.overview(), headers="keys", tablefmt="simple", showindex=False), ""]
    env = environment_differences(reference, current)
    if len(env):
        lines += ["Environment differences (not checked; where a drift may come from):",
                  tabulate(env.map(_cut), headers="keys", tablefmt="simple", showindex=False), ""]
    table = cmp.drift_table(show_all=show_all)
    if len(table):
        shown = table.drop(columns=["same"]).copy()
        shown["within"] = shown["within"].map({True: "yes", False: "NO"})
        for c in ("diff", "rel"):
            shown[c] = shown[c].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3g}")
        lines += [f"Values that drifted ({len(table)}" + ("" if show_all else "; timings and environment with --all")
                  + "):", tabulate(shown.map(_cut), headers="keys", tablefmt="simple", showindex=False), ""]
    used = {k.strip() for kinds in table["tolerance"] for k in kinds.split(",")} if len(table) else set()
    if used:
        lines += [tabulate([(t.name, t.rule) for t in TOLERANCES.values() if t.name in used],
                           headers=["tolerance", "passes when"], tablefmt="simple"), ""]
    n, d, f = len(cmp.rows), len(cmp.drifted), len(cmp.failures)
    if cmp.ok:
        lines.append(f"[hz] reproduced: {n} values compared, {n - d} identical, {d} drifted, all within tolerance")
    else:
        names = [f"{r.where}::{r.key}" for r in cmp.failures]
        lines.append(f"[hz] NOT reproduced: {f} of {n} values outside tolerance ({d} drifted): "
                     + ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
    return "\n".join(lines)
