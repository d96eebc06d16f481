"""What a corpus folder is, read from its ``corpus.json``, and the rule that follows from it.

A corpus folder says what it is: ``"source": "generated"`` with the generator's fingerprint
(:mod:`hzlib.corpus.build`), or ``"source": "imported"`` with its source and the size and sha256 of
every file (:func:`hzlib.corpus.manifest.import_corpus`). An imported corpus is the study's data:
nothing writes into it, and every chapter checks it before reading it. A folder whose ``corpus.json``
hz did not write is never written into either.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

META = "corpus.json"
GENERATED, IMPORTED = "generated", "imported"
IMPORT_FORMAT = 1  # the layout of an imported corpus.json ("files": per-file bytes and sha256)
_CHUNK = 1 << 20


class CorpusError(RuntimeError):
    """A corpus folder cannot be used or written as asked; the message names the folder and what to do."""


def read_meta(root: str | os.PathLike) -> dict | None:
    """The parsed ``corpus.json`` of ``root``; None when there is none. Raises :class:`CorpusError`
    when it cannot be read, is not a JSON object, or names no known source."""
    path = Path(root) / META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: unreadable ({e}); hz writes nothing into this folder: restore the file, "
                          "or move the folder away") from None
    if not isinstance(meta, dict) or meta.get("source") not in (GENERATED, IMPORTED):
        source = meta.get("source") if isinstance(meta, dict) else None
        raise CorpusError(f"{path}: 'source' is {source!r}, not {GENERATED!r} or {IMPORTED!r}: hz did not write "
                          "this corpus and writes nothing into it; import it with `hz corpus import`")
    return meta


def declared_classes(root: str | os.PathLike) -> list[str]:
    """The class keys an imported corpus declares, in its order (``[]`` for a generated corpus)."""
    meta = read_meta(root) or {}
    return [c["key"] for c in meta.get("classes", [])] if meta.get("source") == IMPORTED else []


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def corpus_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` but ``corpus.json`` (which holds their checksums), as sorted POSIX
    paths relative to ``root``; symlinks are listed as files (an import writes none)."""
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.relative_to(root).as_posix() != META)


def file_checksums(root: str | os.PathLike) -> dict[str, dict]:
    """``{relative path: {"bytes": size, "sha256": hex}}`` of every file of :func:`corpus_files`."""
    root = Path(root)
    return {rel: {"bytes": (root / rel).stat().st_size, "sha256": sha256_file(root / rel)}
            for rel in corpus_files(root)}


def imported_changes(root: str | os.PathLike, meta: dict, *, full: bool = False) -> list[str]:
    """How the imported corpus at ``root`` differs from what its ``corpus.json`` recorded: missing,
    unexpected and changed files. Sizes are compared for every file and the sha256 of the manifest
    (cheap, at every chapter's start); with ``full`` the sha256 of every file."""
    root = Path(root)
    recorded: dict[str, dict] = meta["files"]
    present = set(corpus_files(root))
    changes = [f"{rel}: missing" for rel in sorted(set(recorded) - present)]
    changes += [f"{rel}: not part of the import" for rel in sorted(present - set(recorded))]
    for rel in sorted(present & set(recorded)):
        path, want = root / rel, recorded[rel]
        if path.is_symlink():
            changes.append(f"{rel}: replaced by a symlink")
        elif path.stat().st_size != want["bytes"]:
            changes.append(f"{rel}: {path.stat().st_size} bytes, {want['bytes']} when imported")
        elif (full or rel == "manifest.csv") and sha256_file(path) != want["sha256"]:
            changes.append(f"{rel}: content changed (sha256 differs from the import's)")
    return changes


def check_imported(root: str | os.PathLike, meta: dict | None = None, *, full: bool = False) -> dict:
    """The ``corpus.json`` of the imported corpus at ``root`` once its files match it
    (:func:`imported_changes`); raises :class:`CorpusError` listing every change otherwise."""
    root = Path(root)
    meta = read_meta(root) if meta is None else meta
    if meta is None or meta["source"] != IMPORTED:
        raise CorpusError(f"{root} holds no imported corpus ({META} missing or not source {IMPORTED!r})")
    if "files" not in meta:  # imported before corpus.json kept checksums: usable, but not checkable
        warnings.warn(f"{root / META} records no checksums (an older import): its files are not verified; "
                      "re-import the corpus to record them", stacklevel=2)
        return meta
    changes = imported_changes(root, meta, full=full)
    if changes:
        shown = "\n  ".join(changes[:20]) + (f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else "")
        raise CorpusError(f"the imported corpus {root} changed since its import ({len(changes)} difference(s)):\n"
                          f"  {shown}\nhz writes nothing into an imported corpus; re-import it from its source "
                          f"(hz corpus import ... --overwrite, source {meta.get('config', {}).get('manifest')})")
    return meta
