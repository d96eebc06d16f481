"""Time the whole book per chapter: corpus + chapters (papermill) + HTML build, from nothing.

    python benchmarks/bench_book.py --profile smoke [--profile default]

Each profile runs in a fresh copy of the project (so nothing is reused from an earlier run) with
`--force`; prints a markdown table of seconds per chapter and the machine it ran on.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from hzlib.config import environment, load_profile
from hzlib.reproduce import reproduce

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", action="append", help="profile(s) to time (default: smoke)")
    args = ap.parse_args()
    env = environment()
    rows = []
    for name in args.profile or ["smoke"]:
        with tempfile.TemporaryDirectory(prefix=f"hz-bench-{name}-") as tmp:
            root = Path(tmp)
            for d in ("notebooks", "profiles", "book"):
                shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("chapters", "generated"))
            for f in ("_config.yml", "_toc.yml"):
                shutil.copy(ROOT / f, root / f)
            s = reproduce(load_profile(name), root, force=True, log=lambda *_: None)
        for r in s["chapters"]:
            rows.append((name, r["chapter"], r["seconds"]))
        rows.append((name, "book build", s["book_seconds"]))
        rows.append((name, "**total**", s["total_seconds"]))
    print(f"Book times on {env['platform']}, {env['cpu_count']} CPUs, Python {env['python']}\n")
    print("| profile | step | seconds |\n|---|---|---:|")
    for name, step, sec in rows:
        print(f"| {name} | {step} | {sec:.1f} |")


if __name__ == "__main__":
    main()
