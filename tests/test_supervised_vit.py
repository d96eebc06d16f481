"""Supervised ViT: CLIP's image tower + projection + a linear classifier, cross-entropy on the labels."""
import math

import pytest
import torch
import torch.nn.functional as F

import hzlib.baselines  # noqa: F401  (registers the models)
from hzlib.baselines import neural as N
from hzlib.pairs import to_model_input

import pairmodel_checks as C

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = "vit"


@pytest.fixture(scope="module")
def geometry():
    return C.small_geometry()


def test_shapes_and_a_finite_loss(geometry):
    C.check_shapes(KEY, geometry)


def test_loss_falls_when_overfitting(geometry):
    C.check_overfits(KEY, geometry)


def test_reads_no_text(geometry):
    C.check_padding_invariance(KEY, geometry)
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    x, y = to_model_input(d.images[:6]), torch.as_tensor(C.labels_of(d)[:6])
    with torch.no_grad():
        torch.testing.assert_close(m.loss(x, d.tokens[:6], y, None), m.loss(x, None, y, None))
    assert m.token_embedding() is None


def test_image_features_ignore_the_batch(geometry):
    C.check_batch_independence(KEY, geometry)


def test_seeded(geometry):
    C.check_seeded(KEY, geometry)


def test_parameter_count_is_comparable_to_clip():
    C.check_parameter_count(KEY)


def test_is_clip_image_tower_of_both_towers_depth(geometry):
    m = N.make_model(KEY, C.spec(geometry))
    cfg = m.vision.config
    v = geometry.vision
    assert (cfg.hidden_size, cfg.patch_size, cfg.image_size, cfg.num_attention_heads) == (v.width, v.patch_size, v.image_size, v.heads)
    assert cfg.num_hidden_layers == v.layers + geometry.text.layers
    card = m.card()
    assert card["uses labels"] and card["title"] == "Supervised ViT" and card["interpretation"].startswith("A supervised ViT")


def test_loss_is_cross_entropy_of_the_linear_classifier(geometry):
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    x, y = to_model_input(d.images[:6]), torch.as_tensor(C.labels_of(d)[:6])
    with torch.no_grad():
        pooled = m.vision(pixel_values=x).last_hidden_state[:, 0]  # [CLS], then the tower's last LayerNorm
        ln = m.vision.post_layernorm
        f = F.layer_norm(pooled, pooled.shape[-1:], ln.weight, ln.bias, ln.eps) @ m.project.weight.T
        logits = f @ m.classify.weight.T + m.classify.bias
        by_hand = -(logits.log_softmax(1)[torch.arange(6), y]).mean()
        torch.testing.assert_close(m.image_features(x), f, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(m.loss(x, None, y, None), by_hand, rtol=1e-5, atol=1e-5)


def test_chance_loss_is_the_loss_of_a_zero_classifier(geometry):
    def learn_nothing(m):
        m.classify.weight.zero_()
        m.classify.bias.zero_()

    m = N.make_model(KEY, C.spec(geometry))
    assert C.check_chance_loss(m, learn_nothing, B=16) == pytest.approx(math.log(4))
