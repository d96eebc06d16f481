import json

import numpy as np
import pandas as pd
import pytest
import torch

from hzlib import gradcam as G
from hzlib.evaluate import fit_head
from hzlib.model import Geometry, TowerGeometry, build_model, build_vocabulary, load_geometry, save_clip


def micro(kind: str) -> Geometry:
    return Geometry(name=f"micro_{kind}", embed_dim=16, context_length=16,
                    vision=TowerGeometry(width=32, layers=2, heads=2, image_size=32, patch_size=8, kind=kind),
                    text=TowerGeometry(width=32, layers=1, heads=2, kind="bag"))


def micro_clip(kind: str, seed: int = 0):
    return build_model(micro(kind), 100, seed=seed).eval()


@pytest.fixture(scope="module", params=["vit", "cnn"])
def clip(request):
    return micro_clip(request.param)


@pytest.fixture(scope="module")
def images():
    return torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _layer_hooks(scorer):
    m = G.target_layer(scorer)
    return len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)


@pytest.mark.parametrize("head", ["cosine", "probe"])
def test_library_map_equals_eq8_to_11(clip, images, head):
    g = torch.Generator().manual_seed(2)
    if head == "cosine":
        # large scores keep max(L) well above float32 noise, so both routes divide by the same maximum
        scorer = G.ClassScores(clip, torch.randn(4, 16, generator=g), logit_scale=1000.0)
    else:
        scorer = G.ClassScores(clip, probe_weight=30 * torch.randn(4, 16, generator=g),
                               probe_bias=torch.randn(4, generator=g))
    classes = [0, 1, 2, 3, 2, 1]
    lib = G.compute_cams(scorer, images, classes, batch_size=4)  # two batches, the second partial
    direct = G.gradcam_direct(scorer, images, classes)
    assert lib.shape == (6, 32, 32)
    assert (lib > 0).mean() > 0.2  # a real map, not an all-zero one that agrees trivially
    np.testing.assert_allclose(lib, direct, atol=1e-5)
    # Different classes give different maps: the target really steers the gradient.
    other = G.gradcam_direct(scorer, images, [3, 3, 3, 0, 0, 0])
    assert np.abs(other - direct).max() > 0.05
    # Eq 11 divides by the maximum only; the stock library's min-max scaling is the documented variant
    stock = G.compute_cams(scorer, images, classes, batch_size=4, library_scaling=True)
    np.testing.assert_allclose(stock, G.gradcam_direct(scorer, images, classes, normalise="minmax"), atol=1e-5)
    np.testing.assert_allclose(lib.max(axis=(1, 2)), 1, atol=1e-6)  # (where they differ: the hand-computed test)


def test_default_target_is_top_class(clip, images):
    # CLIP's own scale (1/tau): with unit logits a map's maximum is ~1e-3, near float32 noise in the ratio
    scorer = G.ClassScores(clip, torch.randn(3, 16, generator=torch.Generator().manual_seed(3)), logit_scale=100.0)
    top = G.predict(scorer, images).argmax(axis=1)
    np.testing.assert_allclose(G.compute_cams(scorer, images), G.gradcam_direct(scorer, images, top), atol=1e-5)


@pytest.mark.parametrize("kind", ["vit", "cnn"])
def test_frozen_tower(images, kind):
    model = micro_clip(kind, seed=5)
    model.requires_grad_(False)  # a linear probe on a frozen backbone
    g = torch.Generator().manual_seed(6)  # large weights: see test_library_map_equals_eq8_to_11
    scorer = G.ClassScores(model, probe_weight=300 * torch.randn(3, 16, generator=g), probe_bias=torch.zeros(3))
    lib = G.compute_cams(scorer, images[:3], [0, 1, 2])
    assert (lib > 0).mean() > 0.2
    np.testing.assert_allclose(lib, G.gradcam_direct(scorer, images[:3], [0, 1, 2]), atol=1e-5)


def test_final_layer_output_has_no_patch_gradient(images):
    """Why a ViT's target is layer_norm1: CLIP pools the last layer's CLS token only."""
    scorer = G.ClassScores(micro_clip("vit"), torch.randn(3, 16))
    out = []
    h = scorer.visual.model.encoder.layers[-1].register_forward_hook(lambda m, i, o: out.append(o))
    try:
        y = scorer(images)[:, 0].sum()
    finally:
        h.remove()
    (grad,) = torch.autograd.grad(y, out[0])
    assert grad[:, 1:].abs().max() == 0 and grad[:, 0].abs().max() > 0


def test_hooks_released_and_no_growth(clip, images):
    scorer = G.ClassScores(clip, torch.randn(3, 16))
    assert _layer_hooks(scorer) == 0
    with G.open_gradcam(scorer) as cam:
        assert _layer_hooks(scorer) == 2  # the library's activation and gradient hooks
        cam(input_tensor=images[:2], targets=None)
    assert _layer_hooks(scorer) == 0
    for _ in range(5):
        G.compute_cams(scorer, [images[:2], images[2:5]], [0, 1, 2, 0, 1])
        assert _layer_hooks(scorer) == 0
        assert all(p.grad is None for p in scorer.parameters())
    # Errors propagate (the library's own __exit__ swallows IndexError) and hooks are still released.
    with pytest.raises(IndexError):
        with G.open_gradcam(scorer):
            [][0]
    assert _layer_hooks(scorer) == 0


def test_compute_cams_memory_state_is_dropped(clip, images):
    scorer = G.ClassScores(clip, torch.randn(3, 16))
    seen = []
    orig = G.GradCAM.__call__

    def spy(self, *a, **k):
        seen.append(self)
        return orig(self, *a, **k)

    G.GradCAM.__call__ = spy
    try:
        G.compute_cams(scorer, images, [0] * 6, batch_size=2)
    finally:
        G.GradCAM.__call__ = orig
    cam = seen[0]
    assert len(set(map(id, seen))) == 1  # one set of hooks for all batches
    assert cam.activations_and_grads.activations == [] and cam.activations_and_grads.gradients == []
    assert cam.outputs is None


def test_bad_arguments(clip, images):
    with pytest.raises(ValueError, match="class_embeddings"):
        G.ClassScores(clip, torch.randn(3, 8))
    with pytest.raises(ValueError, match="exactly one"):
        G.ClassScores(clip)
    scorer = G.ClassScores(clip, torch.randn(3, 16))
    with pytest.raises(ValueError, match="classes"):
        G.compute_cams(scorer, images, [0, 1, 5, 0, 0, 0])
    with pytest.raises(ValueError, match="classes"):
        G.compute_cams(scorer, images, [0, 1])
    with pytest.raises(ValueError, match="layer"):
        G.target_layer(scorer, 7)


def test_reshape_transform():
    t = torch.arange(2 * 17 * 5, dtype=torch.float32).reshape(2, 17, 5)
    out = G.vit_reshape_transform(t)
    assert out.shape == (2, 5, 4, 4)
    # Patch token 1 + 4r + c lands at grid (r, c); the CLS token (0) is gone.
    assert torch.equal(out[1, :, 2, 3], t[1, 1 + 2 * 4 + 3])
    assert G.vit_reshape_transform(torch.zeros(1, 1 + 6, 3), grid=(2, 3)).shape == (1, 3, 2, 3)
    with pytest.raises(ValueError, match="square"):
        G.vit_reshape_transform(torch.zeros(1, 1 + 6, 3))


def test_equations_on_known_values():
    A = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]]])  # K = 2 channels, 2x2
    grad = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]], [[-4.0, -4.0], [0.0, 0.0]]]])
    alpha = G.eq9_channel_weights(grad)  # Eq 9 pools Eq 8's gradient
    np.testing.assert_allclose(alpha, [[1.0, -2.0]])
    L = G.eq10_class_map(alpha, A)
    np.testing.assert_allclose(L, [[[1.0, 0.0], [0.0, 0.0]]])  # -4 at (1,1) is cut by the ReLU
    up = G.eq11_normalise(G.upsample(L, (4, 4)))
    assert up.shape == (1, 4, 4) and float(up.max()) == pytest.approx(1, abs=1e-6) and float(up.min()) == 0
    assert up[0, 0, 0] > up[0, 3, 3]
    assert torch.equal(G.eq11_normalise(torch.zeros(1, 3, 3)), torch.zeros(1, 3, 3))


def test_eq11_divides_by_the_maximum_as_the_paper_writes_it():
    L = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.5], [0.25, 0.0]]])
    # hand-computed: L / max(L); the first map keeps its floor of 1/4, which min-max would move to 0
    np.testing.assert_allclose(G.eq11_normalise(L), [[[0.25, 0.5], [0.75, 1.0]], [[0.0, 1.0], [0.5, 0.0]]])
    np.testing.assert_allclose(G.minmax_normalise(L)[0], [[0.0, 1 / 3], [2 / 3, 1.0]], atol=1e-6)
    assert torch.equal(G.eq11_normalise(torch.zeros(1, 2, 2)), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="normalise"):
        G.gradcam_direct(None, torch.zeros(1, 3, 4, 4), [0], normalise="max")


def test_pointing_and_energy_on_known_maps():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 2:6] = True
    inside = np.zeros((10, 10))
    inside[3, 3] = 1.0
    inside[0, 0] = 0.5
    outside = np.zeros((10, 10))
    outside[8, 8] = 1.0
    outside[3, 3] = 0.5
    assert G.pointing_game(inside, mask) == 1.0
    assert G.pointing_game(outside, mask) == 0.0
    assert G.energy_in_mask(inside, mask) == pytest.approx(1 / 1.5)
    assert G.energy_in_mask(mask * 0.7, mask) == 1.0  # a map entirely inside the mask
    uniform = G.baseline_map("uniform", mask.shape)
    assert G.energy_in_mask(uniform, mask) == pytest.approx(mask.mean())
    assert G.pointing_game(uniform, mask) == pytest.approx(mask.mean())  # ties: expected hit
    assert np.isnan(G.energy_in_mask(np.zeros((10, 10)), mask))
    with pytest.raises(ValueError, match="mask"):
        G.energy_in_mask(uniform, np.ones((5, 5)))


def test_baselines_and_evaluate_maps():
    shape = (21, 21)
    centre = G.baseline_map("centre", shape)
    assert np.unravel_index(centre.argmax(), shape) == (10, 10)
    mask = np.zeros(shape, bool)
    mask[7:14, 7:14] = True
    masks = [mask, mask, ~mask]
    cams = [mask * 1.0, (~mask) * 1.0, mask * 1.0]
    df = G.evaluate_maps(cams, masks, ids=["a", "b", "c"], labels=["x", "x", "y"], seed=5)
    assert len(df) == 3 * 4 and set(df["method"]) == {"gradcam", *G.BASELINES}
    gc = df[df.method == "gradcam"].set_index("id")
    assert list(gc["energy"]) == [1.0, 0.0, 0.0] and list(gc["pointing"]) == [1.0, 0.0, 0.0]
    uni = df[df.method == "uniform"]
    np.testing.assert_allclose(uni["energy"], uni["mask_fraction"])
    c = df[df.method == "centre"].set_index("id")
    assert c.loc["a", "pointing"] == 1.0 and c.loc["a", "energy"] > mask.mean()
    again = G.evaluate_maps(cams, masks, ids=["a", "b", "c"], labels=["x", "x", "y"], seed=5)
    pd.testing.assert_frame_equal(df, again)  # the random baseline is seeded
    r = df[df.method == "random"]
    np.testing.assert_allclose(r["energy"], r["mask_fraction"], atol=0.03)  # ~ the mask's area share


def test_class_summary_bootstrap():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"label": ["a"] * 50 + ["b"] * 50, "method": "gradcam",
                       "energy": np.r_[rng.normal(0.8, 0.05, 50), rng.normal(0.3, 0.05, 50)], "pointing": 1.0})
    s = G.class_summary(df, seed=1).set_index("label")
    assert s.loc["a", "energy_lo"] < s.loc["a", "energy"] < s.loc["a", "energy_hi"]
    assert s.loc["a", "energy_lo"] > s.loc["b", "energy_hi"]
    assert s.loc["a", "energy_hi"] - s.loc["a", "energy_lo"] < 0.05
    assert s.loc["a", "pointing_lo"] == s.loc["a", "pointing_hi"] == 1.0
    pd.testing.assert_frame_equal(s, G.class_summary(df, seed=1).set_index("label"))


def test_focus_regions():
    cam = np.zeros((20, 30))
    cam[2:5, 3:9] = 1.0
    cam[12:18, 20:25] = 0.8
    cam[10, 10] = 0.3  # below the threshold
    r = G.focus_regions(cam, threshold=0.5)
    assert len(r) == 2
    assert tuple(r.iloc[0][["row0", "col0", "row1", "col1"]]) == (12, 20, 18, 25)  # more heat: 24 vs 18
    assert tuple(r.iloc[1][["row0", "col0", "row1", "col1"]]) == (2, 3, 5, 9)
    assert r["heat"].sum() == pytest.approx(1 - 0.3 / cam.sum())


def test_load_trained_clip_says_to_run_chapter_5(tmp_path):
    with pytest.raises(FileNotFoundError, match="run chapter 5"):
        G.load_trained_clip(tmp_path / "clip")


def test_load_trained_clip_reads_model_and_splits(tmp_path):
    g = load_geometry("tiny")
    vocab = build_vocabulary(["石 雕 真", "铜 字"])
    save_clip(tmp_path / "clip" / "model", build_model(g, len(vocab), seed=0), vocab, g)
    with pytest.raises(FileNotFoundError, match="splits.json"):
        G.load_trained_clip(tmp_path / "clip")
    (tmp_path / "clip" / "model" / "splits.json").write_text(json.dumps({"train": ["a", "b"], "test": ["b"]}))
    with pytest.raises(ValueError, match="both train and test"):
        G.load_trained_clip(tmp_path / "clip")
    (tmp_path / "clip" / "model" / "splits.json").write_text(json.dumps({"train": ["a", "c"], "test": ["b"]}))
    model, v, geo, info, splits = G.load_trained_clip(tmp_path / "clip")
    assert geo.vision.image_size == g.vision.image_size and len(v) == len(vocab)
    assert splits == {"train": ["a", "c"], "test": ["b"]}
    np.testing.assert_array_equal(G.split_positions(["c", "b", "a", "d"], splits["train"]), [0, 2])
    with pytest.raises(ValueError, match="not in the manifest"):
        G.split_positions(["a", "b"], splits["train"])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_probe_scorer_matches_the_probe(clip, images, n_classes):
    scorer0 = G.ClassScores(clip, torch.randn(3, 16))
    with torch.no_grad():
        emb = scorer0.embed(images).numpy()
    labels = np.array(["a", "b", "c", "a", "b", "c"])[: len(emb)]
    if n_classes == 2:
        labels = np.where(labels == "c", "a", labels)
    scorer, classes = G.probe_scorer(clip, emb, labels, [0, 1, 2, 3, 4, 5], seed=0)
    assert classes == sorted(set(labels))
    clf = fit_head(emb, labels, seed=0)  # the standardised probe of every chapter, C by inner CV
    scores = G.predict(scorer, images)
    np.testing.assert_array_equal(np.asarray(classes)[scores.argmax(1)], clf.predict(emb))
    np.testing.assert_allclose(torch.softmax(torch.as_tensor(scores), 1).numpy(), clf.predict_proba(emb), atol=1e-4)


def test_paired_against_is_the_mean_difference_over_the_same_images():
    rows = [{"id": i, "method": m, "pointing": p, "energy": p / 2}
            for i in range(20)
            for m, p in (("Grad-CAM, trained", 1.0), ("centre", 0.25), ("Grad-CAM, random init", 0.5))]
    paired = G.paired_against(pd.DataFrame(rows))
    assert paired.loc[("pointing", "centre"), "mean"] == pytest.approx(0.75)
    assert paired.loc[("energy", "random init"), "mean"] == pytest.approx(0.25)
    overall = pd.DataFrame({f"{m}{s}": 0.5 for m in ("pointing", "energy") for s in ("", "_lo", "_hi")},
                           index=list(G.ATTENTION_KEYS.values()))
    values = G.attention_values(overall, paired)
    assert values["gc_pointing_minus_centre_mean"] == 0.75 and values["gc_energy_init_hi"] == 0.5
    assert values["ch06_pointing_trained"] == "0.500 [0.500, 0.500]"


def test_an_imported_corpus_without_masks_gets_a_reason_and_every_glued_key(tmp_path):
    from PIL import Image

    rows = pd.DataFrame({"id": ["a"], "image": ["a.png"], "label": ["x"]})
    Image.new("RGB", (12, 10)).save(tmp_path / "a.png")
    why = G.glyph_masks(tmp_path, rows)
    assert isinstance(why, str) and "glyph_mask" in why
    assert G.image_shapes(tmp_path, rows["image"]) == [(10, 12)]
    Image.new("L", (12, 10), 255).save(tmp_path / "m.png")
    masks = G.glyph_masks(tmp_path, rows.assign(glyph_mask=["m.png"]))
    assert masks[0].shape == (10, 12) and masks[0].all()
    methods = list(G.ATTENTION_KEYS.values())  # the keys of attention_values on any numbers
    overall = pd.DataFrame({c: 0.5 for m in ("pointing", "energy") for c in (m, m + "_lo", m + "_hi")},
                           index=pd.Index(methods, name="method"))
    paired = pd.DataFrame({"mean": 0.1, "lo": 0.0, "hi": 0.2}, index=pd.MultiIndex.from_tuples(
        [(m, r) for m in ("pointing", "energy") for r in ("centre", "random init")]))
    skipped = G.attention_values_skipped("no masks")
    assert set(skipped) == set(G.attention_values(overall, paired))
    assert skipped["ch06_pointing_trained"] == "skipped: no masks" and skipped["gc_pointing_trained"] == "skipped"
