import io
import tarfile

import pytest

from hzlib import assets


def _fake_tarball(path, content=b'{"strokes": []}'):
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("package/x.json")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))


def test_missing_asset_names_it_and_how_to_fetch(tmp_path):
    with pytest.raises(assets.AssetError, match=r"hanzi-writer-data@2\.0\.1.*hz assets fetch"):
        assets.asset_dir("hanzi-writer-data", tmp_path)


def test_unknown_asset():
    with pytest.raises(assets.AssetError, match="unknown asset 'nope'"):
        assets.fetch("nope")


def test_corrupted_tarball_is_refused_and_not_unpacked(tmp_path, monkeypatch):
    fake = assets.Asset("demo", "1.0.0", "sha512-AAAA", "MIT", "test")
    monkeypatch.setitem(assets.ASSETS, "demo", fake)
    (tmp_path / "npm").mkdir()
    _fake_tarball(tmp_path / "npm" / fake.tarball)
    with pytest.raises(assets.AssetError, match=r"checksum mismatch.*demo-1\.0\.0\.tgz"):
        assets.fetch("demo", tmp_path)
    with pytest.raises(assets.AssetError):
        assets.asset_dir("demo", tmp_path)


def test_verified_tarball_is_unpacked(tmp_path, monkeypatch):
    (tmp_path / "npm").mkdir()
    tgz = tmp_path / "npm" / "demo-1.0.0.tgz"
    _fake_tarball(tgz)
    fake = assets.Asset("demo", "1.0.0", assets.sri_digest(tgz), "MIT", "test")
    monkeypatch.setitem(assets.ASSETS, "demo", fake)
    pkg = assets.fetch("demo", tmp_path)
    assert (pkg / "x.json").read_bytes() == b'{"strokes": []}'
    assert assets.asset_dir("demo", tmp_path) == pkg


def test_sri_digest_matches_known_value(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    # sha512("abc") in base64, as npm's integrity field writes it
    assert assets.sri_digest(p) == (
        "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==")


def test_missing_npm_is_explained(tmp_path, monkeypatch):
    fake = assets.Asset("demo", "1.0.0", "sha512-x", "MIT", "test")
    monkeypatch.setitem(assets.ASSETS, "demo", fake)
    with pytest.raises(assets.AssetError, match="apt-get install npm"):
        assets.fetch("demo", tmp_path, npm="npm-that-does-not-exist")
