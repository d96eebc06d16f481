"""The book's "paper and this study, side by side" page, generated before every build.

Each :class:`Row` pairs a claim of the paper (built from :mod:`hzlib.paper`, or ``NOT_REPORTED``) with
a value a chapter notebook glued (``myst_nb.glue``). The page never holds our numbers: it pastes them
at build time from the executed notebooks with ``{glue:text}`/book/chapters/<stem>.ipynb::<key>:<fmt>```
(myst-nb >= 1.0 resolves such cross-document references after every page is read; the trailing
format spec is required, since the role splits it off at the last ``:``). A key that is not glued
would be a warning, which fails the ``-W`` build, so rows are emitted only for chapters that ran and
whose executed notebook holds every key of the row; the rest are listed as not in this build.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import paper
from .report import SKIPPED

NOT_REPORTED = "not reported"
PAGE = "summary"  # book/generated/summary.md


@dataclass(frozen=True)
class Row:
    section: str  # where in the paper (section, table, figure, equation)
    quantity: str
    paper: str  # the paper's value or statement, from hzlib.paper; NOT_REPORTED where it gives none
    chapter: str  # stem of the chapter notebook that glues ``key`` (and ``ref_key``)
    key: str  # our measured value
    note: str  # comparability, one line
    fmt: str = "s"  # format spec of {glue:text}; numbers glued as numbers take e.g. ",d" or ".3f"
    ref_key: str | None = None  # the level to read it against: baselines, random init, chance


@dataclass(frozen=True)
class Claim:
    """A claim of the paper that no chapter of this book measures yet."""
    section: str
    quantity: str
    paper: str
    chapter: str  # the chapter that will measure it


def _headline(key: str, fmt: str = ".2f") -> str:
    return format(paper.HEADLINE[key], fmt)


def _table2(r: paper.Table2Row) -> str:
    return (f"position ({r.position[0]:g}, {r.position[1]:g}); similarity {r.similarity:g}; vocabulary "
            f"{r.vocabulary}; length {r.length}")


_FIGURE3 = (f"the {paper.HYPERPARAMETERS['best_setting'].value}th setting of its curves performs best "
            f"over {paper.HYPERPARAMETERS['iterations'].value} iterations; no score")
_FIGURE5 = (f"{paper.FIGURE5['clusters']} clusters after {paper.FIGURE5['iterations']} iterations, read as the "
            "structural regions of 真; no measure")
_ACCURACY = f"accuracy {_headline('accuracy')}, the mean over its 10 attributes under its leave-one-out"
_ACC_NOTE = ("not comparable: top-1 on our generated test split, the paper's per-attribute mean on its "
             "private photographs (chapter 8 compares protocols)")

ROWS: tuple[Row, ...] = (
    # --- chapter 1: data (Table 1)
    Row("Table 1", "images", f"{paper.TABLE1_TOTAL:,} photographs (private)", "01_data_statistics",
        "ch01_n_images", "ours are rendered 3D sculptures; the profile's corpus_scale scales the paper's counts",
        fmt=",d"),
    Row("Table 1", "images per class, in the paper's order", ", ".join(map(str, paper.TABLE1_COUNTS)),
        "01_data_statistics", "ch01_class_counts",
        "the paper's ten rows as classes, with its counts (at corpus_scale 1); how each row looks is ours"),
    Row("(ours only)", "calibration: colour histogram + logistic regression, macro accuracy", NOT_REPORTED,
        "01_data_statistics", "ch01_colour_hist_macro_acc",
        "how far colour alone separates our classes; the paper gives no such bound", fmt=".3f"),
    Row("(ours only)", "calibration: bag of characters of the description + logistic regression, macro accuracy",
        NOT_REPORTED, "01_data_statistics", "ch01_text_bow_macro_acc",
        "how far the paired text alone separates our classes", fmt=".3f"),
    # --- chapter 2: normalisation (Section 3, Eq 1-3)
    Row("Section 3, Eq 2", "largest |mean| of an image's grey values after z-scoring", NOT_REPORTED, "02_normalization",
        "ch02_z_mean_max_abs", "0 by construction: a check of our implementation, not of the paper's"),
    Row("Section 3, Eq 2", "standard deviation of the grey values after z-scoring (range over images)", NOT_REPORTED,
        "02_normalization", "ch02_z_std_range", "1 by construction: a check of our implementation"),
    Row("Section 3, Eq 3", "Kolmogorov-Smirnov distance of the equalised image to U(0, 1)", NOT_REPORTED,
        "02_normalization", "ch02_eq_ks", "limited by the 256 bins and by ties; the paper shows Figure 1 only"),
    # --- chapter 3: Structure from Motion (Section 3, Figure 2)
    Row("Section 3, Figure 2", "orbits whose model agrees with the true cameras", NOT_REPORTED,
        "03_structure_from_motion", "ch03_orbits_ok",
        "the paper shows pictures only; our orbits are renders with known cameras and meshes"),
    Row("Section 3, Figure 2", "views registered", NOT_REPORTED, "03_structure_from_motion", "ch03_registered",
        "over all orbits of the profile"),
    Row("Section 3, Figure 2", "dense cloud recall at 2% of the diagonal (median over orbits)", NOT_REPORTED,
        "03_structure_from_motion", "ch03_dense_recall_2pct", "measured against the true mesh, which the paper lacks"),
    Row("Section 3, Figure 2", "dense cloud F-score at 2% of the diagonal (median over orbits)", NOT_REPORTED,
        "03_structure_from_motion", "ch03_dense_fscore_2pct", "as above"),
    Row("Section 3, Figure 2", "dense accuracy: median distance to the true mesh, % of the diagonal",
        NOT_REPORTED, "03_structure_from_motion", "ch03_dense_accuracy_pct", "as above"),
    # --- chapter 4: text mapping (Section 3, Eq 4, Table 2)
    Row("Section 3, Table 2", "cosine of a mapped text with its own image minus with the others (out of fold)",
        NOT_REPORTED, "04_text_mapping", "ch04_map_gap",
        "Table 2 gives a score per text for five texts of its private sculptures, no aggregate; "
        "our image space is a fixed descriptor, not the paper's", ref_key="ch04_map_gap_ref"),
    *(Row(paper.TABLE2_WHERE, f"text {r.text_id}, \"{r.text}\" (read in our Chinese translation): 2-D position; "
          "similarity to the best-matching image; vocabulary; length", _table2(r), "04_text_mapping",
          f"ch04_table2_{r.text_id}", "our 2-D map, image space and corpus, not the paper's; the paper does not say "
          "which image its score is taken with or what its vocabulary counts") for r in paper.TABLE2),
    Row("Section 3", "share of texts whose own image ranks first in its fold", NOT_REPORTED, "04_text_mapping",
        "ch04_map_top1", "a measure of ours", ref_key="ch04_map_top1_ref"),
    # --- chapter 5: CLIP training (Section 4, Eq 5-7, Figure 3)
    Row("Section 4, Figure 3", "hyper-parameter sweep, scored on validation", _FIGURE3, "05_clip_training",
        "ch05_sweep", "the paper shows loss curves only: it states no splits, no score and not what its settings vary",
        ref_key="ch05_sweep_ref"),
    Row("Section 4", "image-to-text recall@10 (test split)", NOT_REPORTED, "05_clip_training", "ch05_i2t_r10",
        "a small CLIP (CNN image tower, bag-of-words text tower) trained from scratch on CPU",
        ref_key="ch05_i2t_r10_ref"),
    Row("Section 4", "text-to-image recall@10 (test split)", NOT_REPORTED, "05_clip_training", "ch05_t2i_r10",
        "as above", ref_key="ch05_t2i_r10_ref"),
    Row(paper.HEADLINE_WHERE["accuracy"], "zero-shot accuracy, 10 classes (test split)", _ACCURACY, "05_clip_training",
        "ch05_zero_shot_acc", _ACC_NOTE, ref_key="ch05_zero_shot_acc_ref"),
    Row(paper.HEADLINE_WHERE["accuracy"],
        "linear-probe macro-F1 on frozen image embeddings, standardised, C by inner CV (test split)", _ACCURACY,
        "05_clip_training", "ch05_probe_acc", _ACC_NOTE, ref_key="ch05_probe_acc_ref"),
    Row(paper.HEADLINE_WHERE["accuracy"], "linear-probe macro-F1 on the multi-layer representation C (test split)",
        _ACCURACY, "05_clip_training", "ch05_probe_layers", _ACC_NOTE, ref_key="ch05_probe_layers_ref"),
    # --- chapter 6: Grad-CAM (Section 5, Eq 8-11, Figure 4)
    Row("Section 5, Figure 4", "pointing game: the map's maximum inside the glyph (test split)", NOT_REPORTED,
        "06_gradcam", "ch06_pointing_trained",
        "the paper shows heat maps without a measure; our glyph masks give one", ref_key="ch06_pointing_ref"),
    Row("Section 5, Figure 4", "share of the map's energy inside the glyph (test split)", NOT_REPORTED,
        "06_gradcam", "ch06_energy_trained", "as above", ref_key="ch06_energy_ref"),
    # --- chapter 7: clustering (Section 5, Figures 5-6)
    Row(paper.FIGURE5_WHERE, "K-means (k = 3) clusters of high-attention pixels of 真 against its parts (ARI)",
        _FIGURE5, "07_clustering", "ch07_fig5_ari",
        "the paper reads its clusters as cultural attributes; our stroke masks check them",
        ref_key="ch07_fig5_ari_ref"),
    Row("Section 5, Figure 6", "attention per unit stroke area on 真, by stroke type", NOT_REPORTED,
        "07_clustering", "ch07_stroke_ratios", "the paper reads 横, 竖 and 点 as carriers of meaning",
        ref_key="ch07_stroke_ratios_ref"),
    Row("Section 5, Figure 6", "K-means on the strokes' attention alone against the parts of 真 (ARI)",
        NOT_REPORTED, "07_clustering", "ch07_strokes_ari_attention", "a check of ours",
        ref_key="ch07_strokes_ari_attention_ref"),
    Row("Section 5", "K-means (k = 10) on all image embeddings against the 10 classes", NOT_REPORTED,
        "07_clustering", "ch07_kmeans_k10", "the paper clusters attributes without comparing to its classes",
        ref_key="ch07_kmeans_k10_ref"),
)

# ====================================================================================================
# CHAPTER 8 (evaluation: Figures 7-8, Table 3). Every result the paper states (hzlib.paper.RESULTS: CLIP
# and the four comparators, each for precision, recall, F1, accuracy, AUC, RMSE, MAE and analysis
# time) is set beside ours for the same model and metric by evaluation_versus(), under both protocols.
# The summary page's rows and chapter 8's own table (versus_table) both come from it. Notebook 08
# glues ch08_<protocol>_<model>_<metric> and ch08_time_<model>_ms for every model it runs.
EVAL_PROTOCOLS = {
    "loo": "(a) leave-one-out on the head only, our shortcut: the backbone was trained on every item",
    "kfold": "(b) stratified k-fold: no part of the model saw its test fold",
}
_REFERENCE = {"loo": ("clip_random", "CLIP at its random initialisation"),
              "kfold": ("pixels", "a linear probe on pixels")}
_EVAL_QUANTITY = {
    "precision": ("mean precision over the 10 attributes", "macro over attributes"),
    "recall": ("mean recall over the 10 attributes", "macro over attributes"),
    "f1": ("mean F1 over the 10 attributes", "macro over attributes"),
    "accuracy": ("mean accuracy over the 10 attributes (one-vs-rest)",
                 "one-vs-rest, = 1 - 2e/K for a top-1 error rate e"),
    "auc": ("mean one-vs-rest AUC", "macro over attributes"),
    "rmse": ("RMSE between probabilities and one-hot truth", "the paper does not define what its RMSE compares"),
    "mae": ("MAE between probabilities and one-hot truth", "the paper does not define what its MAE compares"),
    "time_ms": ("analysis time per sculpture, batch 1 (ms; median and inter-quartile range)",
                "read, Eq 1-3, encode, classify; our small models and hardware, the paper's are not given"),
}
_EVAL_FMT = {"rmse": ".3f", "mae": ".3f", "time_ms": "g"}


@dataclass(frozen=True)
class Versus:
    """One result the paper states (``result``) and the row that sets ours beside it."""
    result: paper.Result
    protocol: str  # a key of EVAL_PROTOCOLS, or "time" (one timing per model)
    row: Row


def _model_name(key: str) -> str:
    return f"{paper.COMPARATORS[key]} (`{key}`)"


def evaluation_versus() -> tuple[Versus, ...]:
    """Every result of :data:`hzlib.paper.RESULTS` beside the glue key of our value for the same model
    and metric: one per protocol for the metrics, one for the analysis time. In the paper's order of
    metrics, then models."""
    out = []
    for metric in paper.METRICS:
        q, note = _EVAL_QUANTITY[metric]
        for model in paper.MODELS:
            r = paper.result(model, metric)
            value = format(r.value, _EVAL_FMT.get(metric, ".2f")) + (" ms" if metric == "time_ms" else "")
            if metric == "time_ms":
                row = Row(r.where, f"{q}, {_model_name(model)}", value, "08_evaluation", f"ch08_time_{model}_ms", note)
                out.append(Versus(r, "time", row))
                continue
            for protocol, label in EVAL_PROTOCOLS.items():
                ref, ref_name = _REFERENCE[protocol]
                row = Row(r.where, f"{q}, {_model_name(model)}, {label}", value, "08_evaluation",
                          f"ch08_{protocol}_{model}_{metric}", f"{note}; read against {ref_name}",
                          ref_key=f"ch08_{protocol}_{ref}_{metric}")
                out.append(Versus(r, protocol, row))
    return tuple(out)


def versus_table(values: Mapping[str, str]) -> pd.DataFrame:
    """Chapter 8's table of :func:`evaluation_versus`: one row per model and metric (models in the
    paper's order), the paper's value and where it states it, and ours under each protocol, from
    ``values`` (glue key -> the value as glued; a key not in it shows as "not run"). The analysis time
    is that of the protocol (a) backbone, so it sits in that column."""
    cols = {"loo": "ours, (a) head-only leave-one-out", "kfold": "ours, (b) k-fold"}
    cols["time"] = cols["loo"]
    rows: dict[tuple[str, str], dict] = {}
    for v in evaluation_versus():
        r = v.result
        row = rows.setdefault((r.model, r.metric), {"model": f"{paper.COMPARATORS[r.model]} ({r.model})",
                                                    "metric": r.metric, "paper": v.row.paper, "where": v.row.section})
        row[cols[v.protocol]] = values.get(v.row.key, "not run")
    order = sorted(rows, key=lambda k: (paper.MODELS.index(k[0]), paper.METRICS.index(k[1])))
    table = pd.DataFrame([rows[k] for k in order]).set_index(["model", "metric"])
    return table.reindex(columns=["paper", "where", cols["loo"], cols["kfold"]]).fillna("")


def stated_by_model(models: Sequence[str], names: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """The paper's results (:data:`hzlib.paper.RESULTS`) for the models of ``models``, by our name of
    the model (``names``), then metric."""
    stated: dict[str, dict[str, float]] = {}
    for r in paper.RESULTS:
        if r.model in models:
            stated.setdefault(names[r.model], {})[r.metric] = r.value
    return stated


def table3(cis: pd.DataFrame, timing: pd.DataFrame, models: Sequence[str], stated: Mapping[str, dict],
           protocols: Sequence[str]) -> pd.DataFrame:
    """Table 3 beside ours: per model (by name), our macro RMSE and MAE under each protocol (the
    ``cell`` of chapter 8's ``cis``), our analysis time per sculpture at batch 1 and in one batch
    (``timing``: :func:`hzlib.evaluate.time_models`), and the paper's RMSE, MAE and time."""
    macro = cis[cis["class"] == "macro"]
    table = pd.DataFrame({(p, m): macro[(macro["protocol"] == p) & (macro["metric"] == m)].set_index("model")["cell"]
                          for p in protocols for m in ("rmse", "mae")}).reindex(models)
    one, batched = timing[timing["batch_size"] == 1], timing[timing["batch_size"] > 1]
    for label, t in (("batch 1", one), (f"batch {int(timing['batch_size'].max())}", batched)):
        table[("time", f"ms per sculpture, {label}")] = t.set_index("model")["median_ms"].reindex(models).round(2)
    for m, label in (("rmse", "RMSE"), ("mae", "MAE"), ("time_ms", "analysis time (ms)")):
        table[("paper, Table 3", label)] = [stated.get(n, {}).get(m, "not reported") for n in models]
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


_VERSUS = evaluation_versus()
CHAPTER8_ROWS: tuple[Row, ...] = tuple(v.row for v in _VERSUS) + tuple(
    Row("(ours only)", f"top-1 accuracy over the 10 attributes, {_model_name('clip')}, {label}", NOT_REPORTED,
        "08_evaluation", f"ch08_{protocol}_clip_top1_accuracy", "the share of sculptures whose attribute is right; "
        f"read against {_REFERENCE[protocol][1]}", ref_key=f"ch08_{protocol}_{_REFERENCE[protocol][0]}_top1_accuracy")
    for protocol, label in EVAL_PROTOCOLS.items()
) + (
    Row(paper.AUC_GAIN_WHERE, f"mean AUC of CLIP, with M3's (read as M3P) as the reference, {EVAL_PROTOCOLS['kfold']}",
        f"{paper.AUC_GAIN_OVER_M3:.1%} higher", "08_evaluation", "ch08_kfold_clip_auc",
        "both trained from scratch on the same pairs with one budget", ref_key="ch08_kfold_m3p_auc"),
)
CHAPTER8_CLAIMS: tuple[Claim, ...] = ()  # every result the paper states about its evaluation has a row above
# ====================================================================================================

ALL_ROWS: tuple[Row, ...] = ROWS + CHAPTER8_ROWS


def glued_values(notebook: Path) -> dict[str, str]:
    """Key -> ``text/plain`` of every value an executed notebook glued (myst_nb.glue writes outputs
    tagged ``scrapbook``, their mime types prefixed when ``display=False``)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    out = {}
    for c in nb.get("cells", []):
        for o in c.get("outputs", []) if c.get("cell_type") == "code" else []:
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                out[meta["name"]] = o.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain", "")
    return out


def glued_keys(notebook: Path) -> set[str]:
    return set(glued_values(notebook))


def _title(notebook: Path, stem: str) -> str:
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"]) if nb.get("cells") else ""
    return first.splitlines()[0].lstrip("# ").strip() if first.startswith("# ") else stem


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _paste(row: Row, key: str, fmt: str) -> str:
    return f"{{glue:text}}`/book/chapters/{row.chapter}.ipynb::{key}:{fmt}`"


def glued_text(text: str) -> str:
    """A glued value's ``text/plain`` as shown: a string's repr loses its quotes."""
    t = text.strip()
    return t[1:-1] if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"" else t


def _recorded(record: dict, row: Row, key: str | None, fmt: str) -> str:
    if key is None:
        return ""
    v = record.get("chapters", {}).get(row.chapter, {}).get("glue", {}).get(key)
    if v is None:
        return "not recorded"
    v = glued_text(v)
    if fmt != "s":
        try:
            return format(float(v) if "f" in fmt or "g" in fmt or "%" in fmt else int(float(v)), fmt)
        except ValueError:
            pass
    return v


def summary_markdown(chapters_dir: Path, toc_chapters: list[str], stamps: dict[str, dict],
                     rows: tuple[Row, ...] | None = None, claims: tuple[Claim, ...] | None = None,
                     records: dict[str, dict] | None = None) -> tuple[str, dict]:
    """The page's MyST text and ``{"rows": [keys emitted], "skipped": {chapter: reason}}``.

    ``toc_chapters``: the chapter stems of ``_toc.yml``, in order; ``stamps``: per chapter that ran, its
    run record (profile, finished, commit); ``rows`` and ``claims`` default to :data:`ALL_ROWS` and
    :data:`CHAPTER8_CLAIMS`; ``records``: committed reference runs (name -> the record written by
    :func:`hzlib.reproduce.record_run`), each shown as one more column with its values as recorded."""
    records = records or {}
    rows = ALL_ROWS if rows is None else rows
    claims = CHAPTER8_CLAIMS if claims is None else claims
    by_chapter: dict[str, list[Row]] = {}
    for r in rows:
        by_chapter.setdefault(r.chapter, []).append(r)
    order = list(toc_chapters) + [c for c in [*by_chapter, *(c.chapter for c in claims)] if c not in toc_chapters]
    order = list(dict.fromkeys(order))
    lines = [
        "# The paper and this study, side by side", "",
        f"For each section of {{cite:t}}`luo2024`: what the paper reports (from `hzlib.paper`; *{NOT_REPORTED}* "
        "where it gives no number), what this study measured, the level to read our value against (chance, "
        "a random initialisation, a baseline) and whether the two are comparable. Our values are pasted "
        "from the executed chapter notebooks when the book is built; none is typed on this page. "
        "Intervals are 95% bootstrap intervals. The paper's data are private photographs; ours are the "
        "generated corpus of the corpus card, so no value here reproduces a value of the paper; "
        "{doc}`/book/limitations` says what else differs.", ""]
    emitted, skipped, profiles = [], {}, set()
    head = len(lines)
    for stem in order:
        nb = chapters_dir / f"{stem}.ipynb"
        chapter_rows = by_chapter.get(stem, [])
        if stem not in toc_chapters:
            skipped[stem] = "not yet part of this book"
            continue
        if not nb.exists():
            skipped[stem] = "not run for this build"
            continue
        if not chapter_rows:
            continue
        glued = glued_values(nb)
        ok = [r for r in chapter_rows if r.key in glued and (r.ref_key is None or r.ref_key in glued)]
        stale = [r.key for r in chapter_rows if r not in ok]
        if stale:  # an executed copy from an older notebook: say so rather than fail the build
            skipped[stem] = (f"ran, but its executed notebook lacks {', '.join(stale)}; rerun it "
                             f"(`hz reproduce --only {stem[:2]}`)")
        if not ok:
            continue
        st = stamps.get(stem, {})
        profiles.add(st.get("profile", "unknown"))
        lines += _chapter_table(nb, stem, st, ok, records, glued)
        emitted += [r.key for r in ok]
    if records:
        lines[head:head] = ["Columns headed *reference run* hold the values of committed runs "
                            "(`results/<profile>/record.json`, written by `hz record` from that run's executed "
                            "chapters), so the book can show a run it did not recompute:", "",
                            *[f"- `{name}`: profile {rec.get('profile', '?')}, git commit `{rec.get('commit', '?')}`, "
                              f"recorded {rec.get('recorded', '?')}, book status: {rec.get('status', '?')}."
                              for name, rec in records.items()], ""]
    if len(profiles) > 1:  # said first: it qualifies every table below
        lines[head:head] = ["```{warning}", f"The chapters below ran with different profiles "
                            f"({', '.join(sorted(profiles))}): their numbers do not come from one run "
                            "(see {doc}`/book/generated/provenance`).", "```", ""]
    if skipped or claims:
        lines += _not_measured(skipped, claims)
    return "\n".join(lines), {"rows": emitted, "skipped": skipped}


def _chapter_table(nb: Path, stem: str, stamp: dict, rows: list[Row], records: dict[str, dict],
                   glued: Mapping[str, str]) -> list[str]:
    """One chapter's section: where its values come from, then a row per quantity (ours, the paper's,
    the reference to read ours against, and each committed reference run's value); ``glued``: the
    chapter's glued values (:func:`glued_values`)."""
    lines = [f"## {_title(nb, stem)}", "",
             f"From {{doc}}`the chapter </book/chapters/{stem}>`, "
             f"run with profile **{stamp.get('profile', 'unknown')}**, "
             f"finished {stamp.get('finished', 'at an unknown time')}, git commit "
             f"`{stamp.get('commit', 'not recorded')}`.", "",
             "| where in the paper | quantity | the paper reports | this study | read against | "
             + "".join(f"reference run `{name}` | " for name in records) + "comparability |",
             "|---|---|---|---|---|" + "---|" * len(records) + "---|"]
    for r in rows:  # a value skipped on this corpus is glued as its reason, a text: pasted as text
        fmt = "s" if glued_text(glued.get(r.key, "")).startswith(SKIPPED) else r.fmt
        ref = _paste(r, r.ref_key, "s") if r.ref_key else ""
        recorded = "".join(f"{_cell(_recorded(rec, r, r.key, r.fmt))}"
                           + (f" (against {_cell(_recorded(rec, r, r.ref_key, 's'))})" if r.ref_key else "") + " | "
                           for rec in records.values())
        lines.append(f"| {_cell(r.section)} | {_cell(r.quantity)} | {_cell(r.paper)} | {_paste(r, r.key, fmt)} "
                     f"| {ref} | {recorded}{_cell(r.note)} |")
    return lines + [""]


def _not_measured(skipped: dict[str, str], claims: tuple[Claim, ...]) -> list[str]:
    lines = ["## Not measured in this build", "", *(f"- `{stem}`: {why}." for stem, why in skipped.items())]
    if claims:  # a claim leaves ``claims`` once a row measures it, so every one left is unmeasured
        lines += ["", "Claims of the paper that no chapter of this book measures yet:", "",
                  "| where in the paper | quantity | the paper reports | to be measured by |", "|---|---|---|---|"]
        lines += [f"| {_cell(c.section)} | {_cell(c.quantity)} | {_cell(c.paper)} | `{c.chapter}` |" for c in claims]
    return lines + [""]
