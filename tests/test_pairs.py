import numpy as np
import pytest
import torch
from PIL import Image

from hzlib import pairs as P
from hzlib.normalize import NormalizeConfig, normalize, resize
from trainer_checks import synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_image_cache_applies_eq1_3_and_is_reused(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    cache = tmp_path / "cache" / "images.pt"
    x = P.image_cache(paths, 16, cache, mode="channels", progress=False)
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.uint8
    img = np.asarray(Image.open(paths[1]).convert("RGB"))
    eq = normalize(img, NormalizeConfig(size=16, colour="channels"))["equalized"]
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy() / 255, eq, atol=0.5 / 255 + 1e-9)
    calls, orig = [], P.model_image_u8
    monkeypatch.setattr(P, "model_image_u8", lambda *a: calls.append(a) or orig(*a))
    assert torch.equal(P.image_cache(paths, 16, cache, mode="channels", progress=False), x) and calls == []
    assert P.image_cache(paths, 8, cache, mode="channels", progress=False).shape[-1] == 8 and len(calls) == 3
    rgb = P.image_cache(paths, 16, cache, mode="rgb", progress=False)  # another mode: rebuilt
    assert len(calls) == 6
    np.testing.assert_allclose(rgb[1].permute(1, 2, 0).numpy() / 255, resize(img, 16) / 255, atol=0.5 / 255 + 1e-9)


def test_pair_data_checks_shapes():
    d = synthetic(4)
    with pytest.raises(ValueError, match="uint8"):
        P.PairData(d.images.float(), d.tokens)
    with pytest.raises(ValueError, match="labels"):
        P.PairData(d.images, d.tokens, ("a",))
    assert d.subset([2, 0]).ids == ("id2", "id0")


def test_stratified_split_is_seeded_disjoint_and_keeps_every_class_in_training():
    y = np.repeat(list("abcd"), [2, 3, 20, 101])
    s = P.stratified_split(y, (0.7, 0.15, 0.15), seed=5)
    assert list(s) == ["train", "validation", "test"]
    allpos = np.concatenate(list(s.values()))
    assert sorted(allpos.tolist()) == list(range(len(y)))  # disjoint and complete
    for c, n in zip("abcd", [2, 3, 20, 101]):
        got = {k: int((y[v] == c).sum()) for k, v in s.items()}
        assert got["train"] >= 1 and sum(got.values()) == n
        if n >= 20:
            assert got["validation"] == got["test"] == round(n * 0.15)
    assert all(np.array_equal(a, b) for a, b in zip(s.values(), P.stratified_split(y, seed=5).values()))
    assert not np.array_equal(s["test"], P.stratified_split(y, seed=6)["test"])
    with pytest.raises(ValueError, match="sum to 1"):
        P.stratified_split(y, (0.5, 0.2, 0.2), seed=0)
