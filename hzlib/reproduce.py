"""The papermill driver: run every chapter notebook with a profile's parameters, then build the book.

Executed notebooks go to ``book/chapters/`` (generated, git-ignored) and the book is built from them
with ``execute_notebooks: 'off'``: jupyter-book renders, it does not compute. A chapter whose
executed copy is current (same notebook, same parameters, finished) is skipped, so a re-run after an
interruption resumes; ``force`` recomputes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from jupyter_client.kernelspec import KernelSpecManager
from tqdm.auto import tqdm

from .config import THREAD_VARS, Profile, atomic_write_json, atomic_write_text, environment, params_hash
from .summary import PAGE as SUMMARY_PAGE, glued_values, summary_markdown

KERNEL = "hzlib"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def chapters(self) -> Path:
        return self.root / "book" / "chapters"

    @property
    def build(self) -> Path:
        return self.root / "_build"


class ChapterFailed(RuntimeError):
    pass


def chapter_notebooks(layout: Layout, only: list[str] | None = None) -> list[Path]:
    nbs = sorted(layout.notebooks.glob("[0-9][0-9]_*.ipynb"))
    if only:
        nbs = [p for p in nbs if any(p.name.startswith(o) or p.stem == o for o in only)]
        if not nbs:
            known = [p.stem for p in sorted(layout.notebooks.glob("*.ipynb"))]
            raise ValueError(f"no chapter matches {only}; chapters: {known}")
    return nbs


def check_kernel(name: str = KERNEL) -> None:
    if name not in KernelSpecManager().find_kernel_specs():
        raise RuntimeError(
            f"Jupyter kernel {name!r} is not registered; run `make setup` (or "
            f"`python -m ipykernel install --sys-prefix --name {name}` inside the project's environment)"
        )


def _fingerprint(nb: Path, params: dict) -> str:
    digest = hashlib.sha256(nb.read_bytes()).hexdigest()[:16]
    return f"{digest}-{params_hash(params)}"


HASH_SEED = "0"


def chapter_env(profile: Profile) -> dict[str, str]:
    """The variables every chapter's kernel starts with, whatever the shell sets: each thread pool
    (OpenMP, hence scikit-learn's K-means and torch; OpenBLAS; MKL) gets the profile's ``workers``
    threads, and string hashing a fixed seed. With threads left to the machine, scikit-learn's
    K-means splits its sums by thread, so a machine with more cores, or a shell with
    ``OMP_NUM_THREADS=1``, converges in another number of iterations (measured: 172 against 160 with
    1 and 2 threads on the same data); set order of strings changes per process otherwise."""
    threads = str(max(1, int(profile.workers)))
    return {v: (HASH_SEED if v == "PYTHONHASHSEED" else threads) for v in THREAD_VARS}


@contextmanager
def chapter_environment(profile: Profile):
    """:func:`chapter_env` set in ``os.environ`` (which the kernels papermill starts inherit) for
    the duration, then the previous values restored."""
    env = chapter_env(profile)
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_chapters(profile: Profile, layout: Layout, *, only: list[str] | None = None, force: bool = False,
                 kernel: str = KERNEL, log=print) -> list[dict]:
    """Execute the chapters in order, each kernel with :func:`chapter_env`; returns one record per
    chapter (status, seconds)."""
    check_kernel(kernel)
    with chapter_environment(profile):
        return _run_chapters(profile, layout, only=only, force=force, kernel=kernel, log=log)


def _run_chapters(profile: Profile, layout: Layout, *, only, force, kernel, log) -> list[dict]:
    import papermill as pm  # here, not at the top: it loads nbclient and its engines; only running chapters needs it

    params = profile.as_dict() | {"force": bool(force or profile.force)}
    Profile.from_dict(params)  # what papermill will inject, checked (device included) before any chapter runs
    layout.chapters.mkdir(parents=True, exist_ok=True)
    records = []
    for nb in tqdm(chapter_notebooks(layout, only), desc=f"chapters ({profile.profile})", unit="nb"):
        out = layout.chapters / nb.name
        stamp = layout.chapters / f".{nb.stem}.json"
        fp = _fingerprint(nb, params)
        if not force and out.exists() and stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fp:
            rec = json.loads(stamp.read_text()) | {"status": "current"}
            log(f"[hz] {nb.stem}: current, skipped (use --force to recompute)")
            records.append(rec)
            continue
        log(f"[hz] {nb.stem}: running with profile {profile.profile!r}")
        t0 = time.perf_counter()
        tmp = out.with_suffix(".partial.ipynb")
        try:
            pm.execute_notebook(str(nb), str(tmp), parameters=params, kernel_name=kernel, cwd=str(layout.root),
                                progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as e:
            raise ChapterFailed(
                f"chapter {nb.stem} failed at In [{e.exec_count}] ({e.ename}: {e.evalue}); "
                f"the partly executed notebook is {tmp}"
            ) from None
        hide_injected_parameters(tmp)
        tmp.replace(out)
        rec = {"chapter": nb.stem, "fingerprint": fp, "seconds": round(time.perf_counter() - t0, 1),
               "status": "ran", "profile": profile.profile, "commit": _git_commit(layout.root),
               "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_json(stamp, rec)
        records.append(rec)
    return records


def hide_injected_parameters(notebook: Path) -> None:
    """Tag the cell papermill injected (``injected-parameters``) ``hide-input``, as the notebooks tag
    their own parameters cell: the book folds the profile's values away (a click shows them)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-input"]
    atomic_write_text(notebook, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


PLACEHOLDER_MARK = "<!-- hz: placeholder for a chapter that has not been run -->"


def toc_files(root: Path) -> list[str]:
    """Every page of ``_toc.yml`` (root first, then parts, chapters and sections in order), as paths
    relative to the book root without suffix, e.g. ``book/chapters/01_data_statistics``."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8")) or {}
    out = [toc["root"]] if toc.get("root") else []

    def walk(entries):
        for e in entries or []:
            if e.get("file"):
                out.append(e["file"])
            walk(e.get("chapters"))
            walk(e.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb|rst)$", "", f) for f in out]


def toc_pages(layout: Layout, folder: str) -> list[str]:
    """Stems of the pages ``_toc.yml`` lists under ``folder`` (``book/chapters`` for the executed
    chapters, ``book/generated`` for pages the chapters write)."""
    return [f.split("/")[-1] for f in toc_files(layout.root) if f.startswith(folder.rstrip("/") + "/")]


def prepare_book(layout: Layout, *, log=print) -> dict:
    """Make the book honest about what was run before it is built.

    Every chapter of ``_toc.yml`` without an executed notebook gets a placeholder page that says so
    (and how to run it); a placeholder whose chapter has since been run is removed. Writes
    ``book/generated/provenance.md``: per chapter, the profile it ran with, its time and when, plus the
    git commit and the environment; and ``book/generated/summary.md``, the paper beside the values the
    chapters that ran glued (:mod:`hzlib.summary`). Returns ``{"missing": [...], "profiles": {...},
    "status": ..., "summary": {"rows": [...], "skipped": {...}}}``."""
    gen = layout.root / "book" / "generated"
    layout.chapters.mkdir(parents=True, exist_ok=True)
    rows, missing, profiles, stamps = [], [], {}, {}
    chapters = toc_pages(layout, "book/chapters")
    for stem in chapters:
        nb, md = layout.chapters / f"{stem}.ipynb", layout.chapters / f"{stem}.md"
        stamp = layout.chapters / f".{stem}.json"
        if nb.exists():
            if md.exists() and PLACEHOLDER_MARK in md.read_text(encoding="utf-8"):
                md.unlink()
            rec = stamps[stem] = json.loads(stamp.read_text()) if stamp.exists() else {}
            profiles[stem] = rec.get("profile", "?")
            rows.append(f"| {stem} | {profiles[stem]} | {rec.get('seconds', '?')} | {rec.get('finished', '?')} |")
        else:
            missing.append(stem)
            title = stem.split("_", 1)[-1].replace("_", " ").capitalize()
            atomic_write_text(md, f"{PLACEHOLDER_MARK}\n# {title}\n\n```{{warning}}\nThis chapter has not been run "
                                  f"for this build. Run `hz reproduce --profile <name> --only {stem[:2]}` "
                                  f"(or `make reproduce`) and rebuild the book.\n```\n")
            rows.append(f"| {stem} | not run | | |")
    for stem in toc_pages(layout, "book/generated"):  # e.g. the corpus card, written by chapter 1
        page = gen / f"{stem}.md"
        if stem not in ("provenance", SUMMARY_PAGE) and not page.exists():
            missing.append(stem)
            atomic_write_text(page, f"{PLACEHOLDER_MARK}\n# {stem.replace('_', ' ').capitalize()}\n\n```{{warning}}\n"
                                    f"This page is written by the chapters; run `make reproduce` and rebuild.\n```\n")
    kinds = sorted(set(profiles.values()))
    status = ("complete" if not missing and len(kinds) == 1 else
              "partial: " + "; ".join(filter(None, [f"not run: {', '.join(missing)}" if missing else "",
                                                      f"chapters from several profiles: {', '.join(kinds)}"
                                                      if len(kinds) > 1 else ""])))
    env = environment()
    pkgs = "\n".join(f"| {k} | {v} |" for k, v in env["packages"].items())
    atomic_write_text(gen / "provenance.md", "\n".join([
        "# Provenance of this build", "",
        f"Status: **{status}**. Git commit `{_git_commit(layout.root)}`; built {env['time_utc']} with Python "
        f"{env['python']} on {env['platform']} ({env['cpu_count']} CPU cores).", "",
        "| chapter | profile | seconds | finished (UTC) |", "|---|---|---|---|", *rows, "",
        "Each chapter's resolved parameters, package versions and hardware are also written beside its "
        "results under `artifacts/<profile>/`.", "",
        "| package | version |", "|---|---|", pkgs, ""]))
    # Rewritten on every build (new mtime), so Sphinx re-reads it and re-pastes the chapters' glue even
    # when only a chapter changed.
    summary_text, summary = summary_markdown(layout.chapters, chapters, stamps, records=reference_records(layout))
    atomic_write_text(gen / f"{SUMMARY_PAGE}.md", summary_text)
    if status != "complete":
        log(f"[hz] warning: the book is {status}")
    return {"missing": missing, "profiles": profiles, "status": status, "summary": summary}


RESULTS = "results"  # committed reference runs: results/<profile>/record.json


def reference_records(layout: Layout) -> dict[str, dict]:
    """The committed reference runs (``results/<name>/record.json``), by name."""
    out = {}
    for p in sorted((layout.root / RESULTS).glob("*/record.json")):
        try:
            out[p.parent.name] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not a readable run record ({e})") from None
    return out


def current_record(layout: Layout) -> tuple[dict, dict[str, Path]]:
    """The record of the run whose executed chapters are in ``book/chapters`` (what
    :func:`record_run` writes) and its stages' summaries (``artifacts/<profile>/<stage>/summary.json``
    by stage), without writing anything. Refuses a book with no executed chapter or whose chapters
    ran with several profiles."""
    chapters = toc_pages(layout, "book/chapters")
    stamps = {s: json.loads((layout.chapters / f".{s}.json").read_text()) for s in chapters
              if (layout.chapters / f"{s}.ipynb").exists() and (layout.chapters / f".{s}.json").exists()}
    if not stamps:
        raise ValueError(f"no executed chapters in {layout.chapters}; run `hz reproduce` first")
    kinds = sorted({st.get("profile", "?") for st in stamps.values()})
    if len(kinds) != 1:
        raise ValueError(f"the executed chapters come from several profiles ({', '.join(kinds)}); "
                         "a record must be one run")
    profile = kinds[0]
    missing = [s for s in chapters if s not in stamps]
    record = {"profile": profile, "commit": _git_commit(layout.root),
              "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "status": "complete" if not missing else f"partial: not run: {', '.join(missing)}",
              "environment": environment(),
              "chapters": {s: {**stamps[s], "glue": glued_values(layout.chapters / f"{s}.ipynb")} for s in stamps}}
    run = layout.chapters / "run.json"
    if run.exists():
        record["run"] = {k: v for k, v in json.loads(run.read_text()).items() if k != "environment"}
    stages = {p.parent.name: p for p in sorted((layout.root / "artifacts" / profile).glob("*/summary.json"))}
    return record, stages


def record_run(layout: Layout, out_dir: Path | None = None, *, log=print) -> Path:
    """Keep the run whose executed chapters are in ``book/chapters`` as a reference record:
    ``<out_dir>/record.json`` (default ``results/<profile>/``) holds, per chapter, its run stamp
    (profile, seconds, finished, git commit) and every value it glued, plus the book's status, the
    git commit and the environment; each stage's ``artifacts/<profile>/<stage>/summary.json`` is
    copied beside it. The summary page shows such a record as a column, so a book can show a run it
    did not recompute. Refuses a book whose chapters ran with several profiles."""
    record, stages = current_record(layout)
    out_dir = Path(out_dir) if out_dir is not None else layout.root / RESULTS / record["profile"]
    out_dir.mkdir(parents=True, exist_ok=True)
    for stage, summary in stages.items():
        tmp = out_dir / f".{stage}.json.tmp"
        shutil.copyfile(summary, tmp)
        os.replace(tmp, out_dir / f"{stage}.json")
    atomic_write_json(out_dir / "record.json", record)
    log(f"[hz] recorded {len(record['chapters'])} chapter(s) of profile {record['profile']!r} in {out_dir}")
    return out_dir / "record.json"


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def build_book(layout: Layout, *, log=print) -> Path:
    """``jupyter-book build -nW --keep-going``: any warning fails the build. Chapters that were not run
    get a page that says so (:func:`prepare_book`)."""
    prepare_book(layout, log=log)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(layout.root), "-nW", "--keep-going"]
    log("[hz] building the book: jupyter-book " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=layout.root, capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-40:])
        raise ChapterFailed(f"jupyter-book build failed (exit {res.returncode}):\n{tail}")
    log(f"[hz] book built in {time.perf_counter() - t0:.0f} s: {layout.build / 'html' / 'index.html'}")
    return layout.build / "html" / "index.html"


def reproduce(profile: Profile, root: Path, *, only=None, force=False, book=True, log=print) -> dict:
    layout = Layout(Path(root).resolve())
    t0 = time.perf_counter()
    records = run_chapters(profile, layout, only=only, force=force, log=log)
    summary = {"profile": profile.as_dict(), "chapters": records, "environment": environment()}
    if book:
        tb = time.perf_counter()
        build_book(layout, log=log)
        summary["book_seconds"] = round(time.perf_counter() - tb, 1)
    summary["total_seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(layout.chapters / "run.json", summary)
    return summary
