import numpy as np
import pytest
from PIL import Image
from scipy import stats
from skimage import color, color as skcolor

from hzlib import normalize as N
from hzlib.normalize import equalize_luminance, model_image, resize


def test_resize_known_small_case_nearest():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    out = N.resize(a, 4, kernel="nearest")
    expected = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out, expected)


def test_resize_bilinear_upsample_matches_closed_form():
    # A linear ramp is reproduced exactly by bilinear interpolation away from the edges.
    x = np.arange(4, dtype=float)
    ramp = np.tile(x, (4, 1))
    out = N.resize(ramp, (4, 8), kernel="bilinear")
    # output pixel centres map to input coordinates (j + 0.5) / 2 - 0.5
    centres = (np.arange(8) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(out[0, 1:-1], centres[1:-1], atol=1e-12)


def test_resize_keeps_channels_and_shape():
    img = np.random.default_rng(0).random((50, 70, 3))
    assert N.resize(img, 32).shape == (32, 32, 3)
    assert N.resize(img, (20, 10)).shape == (20, 10, 3)


def test_resize_rejects_unknown_kernel():
    with pytest.raises(ValueError, match="kernel='lanczos9'"):
        N.resize(np.zeros((4, 4)), 2, kernel="lanczos9")


def test_zscore_gives_mean_zero_std_one_per_channel():
    rng = np.random.default_rng(1)
    img = rng.normal([10, 50, 200], [1, 5, 30], size=(64, 64, 3))
    z, mu, sigma = N.zscore(img)
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(0, 1)), 1, atol=1e-12)
    np.testing.assert_allclose(mu, img.mean(axis=(0, 1)))
    np.testing.assert_allclose(sigma, img.std(axis=(0, 1)))


def test_zscore_constant_image_is_zero_not_nan():
    z, _, _ = N.zscore(np.full((8, 8), 7.0))
    assert np.all(z == 0)


def test_equalize_cdf_is_near_uniform():
    rng = np.random.default_rng(2)
    img = rng.beta(8, 2, size=(128, 128))  # strongly skewed intensities
    eq = N.equalize(img)
    assert eq.min() >= 0 and eq.max() <= 1
    # the equalised values follow U(0, 1): KS distance small (256 bins quantise it)
    d = stats.kstest(eq.ravel(), "uniform").statistic
    assert d < 0.01
    assert stats.kstest(img.ravel(), "uniform").statistic > 0.3


def test_equalize_is_monotone():
    img = np.random.default_rng(3).random((32, 32))
    eq = N.equalize(img)
    order = np.argsort(img.ravel())
    assert np.all(np.diff(eq.ravel()[order]) >= -1e-12)


def test_pipeline_returns_all_stages():
    img = (np.random.default_rng(4).random((60, 80, 3)) * 255).astype(np.uint8)
    out = N.normalize(img, N.NormalizeConfig(size=32, colour="channels"))
    assert set(out) == {"original", "resized", "standardized", "equalized"}
    assert out["standardized"].shape == (32, 32, 3)
    np.testing.assert_allclose(out["standardized"].mean(axis=(0, 1)), 0, atol=1e-9)


def test_eq2_standardises_the_grey_values_by_default():
    rng = np.random.default_rng(5)
    img = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    out = N.normalize(img, N.NormalizeConfig(size=20))
    g = out["resized"] @ np.array([0.2125, 0.7154, 0.0721])  # BT.709 grey of the Eq 1 output
    assert out["standardized"].shape == (20, 20) and out["equalized"].shape == (20, 20)
    np.testing.assert_allclose(out["standardized"], (g - g.mean()) / g.std(), atol=1e-12)  # one mu, one sigma
    np.testing.assert_allclose(N.grey(out["resized"]), g)
    np.testing.assert_allclose(N.grey(out["resized"] / 255), skcolor.rgb2gray(out["resized"] / 255), atol=1e-12)
    with pytest.raises(ValueError, match="colour='hsv'"):
        N.NormalizeConfig(colour="hsv")


def test_corpus_statistics_on_grey_values(tmp_path):
    rng = np.random.default_rng(6)
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for p in paths:
        Image.fromarray(rng.integers(0, 256, (30, 36, 3), dtype=np.uint8)).save(p)
    st = N.corpus_statistics(paths, N.NormalizeConfig(size=16))
    np.testing.assert_allclose(st[["z_std_min", "z_std_max"]].to_numpy(), 1, atol=1e-9)
    assert (st["z_mean"].abs() < 1e-9).all() and (st["eq_ks_uniform"] < 0.2).all()


def test_descriptors_of_files_match_in_one_or_two_processes(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8)).save(paths[-1])
    one = N.descriptors(paths)
    assert np.array_equal(one, N.descriptors(paths, workers=2))
    assert np.allclose(one[3], N.descriptor(np.asarray(Image.open(paths[3]).convert("RGB"))))


def test_luminance_equalisation_flattens_lightness_and_keeps_hue():
    rng = np.random.default_rng(0)
    # a reddish image whose lightness fills only a narrow band
    img = np.stack([0.5 + 0.1 * rng.random((32, 32)), 0.25 + 0.05 * rng.random((32, 32)), np.full((32, 32), 0.2)], -1)
    out = equalize_luminance(img)
    L = color.rgb2lab(out)[..., 0] / 100
    assert np.ptp(L) > 0.8 > 4 * np.ptp(color.rgb2lab(img)[..., 0] / 100)  # the lightness now spans the range
    hue_in, hue_out = (color.rgb2hsv(x)[..., 0] for x in (img, out))
    mid = (L > 0.2) & (L < 0.8)  # away from black and white, where the gamut clips the hue
    assert np.abs(hue_out[mid] - hue_in[mid]).max() < 0.05
    assert out.min() >= 0 and out.max() <= 1


def test_model_image_modes():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    np.testing.assert_allclose(model_image(img, 16, "rgb"), resize(img, 16) / 255)
    grey = np.repeat(img[..., :1], 3, axis=2)
    out = model_image(grey, 16, "luma")
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=2e-3)  # a grey image stays grey
    np.testing.assert_allclose(model_image(img, 16, "channels"),
                               N.normalize(img, N.NormalizeConfig(size=16, colour="channels"))["equalized"])
    g = model_image(img, 16, "grey")  # the paper's Eq 1-3 on grey values, in three equal channels
    assert g.shape == (16, 16, 3) and np.array_equal(g[..., 0], g[..., 2])
    np.testing.assert_allclose(g[..., 1], N.normalize(img, N.NormalizeConfig(size=16))["equalized"])
    with pytest.raises(ValueError, match="mode='hsv'"):
        model_image(img, 16, "hsv")
