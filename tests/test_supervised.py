"""Supervised image tower: CLIP's image tower (with its projection) + a linear classifier, cross-entropy on the
labels."""
import math
from dataclasses import replace

import pytest
import torch

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import neural as N
from hzlib.model import build_model
from hzlib.pairs import to_model_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = "supervised"


@pytest.fixture(scope="module", params=["vit", "cnn"])
def geometry(request):
    g = C.small_geometry()
    return replace(g, vision=replace(g.vision, kind=request.param))


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
    C.check_parameter_count(KEY, "cnn_tiny")


def test_is_clip_image_tower(geometry):
    m = N.make_model(KEY, C.spec(geometry))
    clip = build_model(geometry, 50, seed=0)
    assert type(m.visual) is type(clip.visual)
    shapes = {k: v.shape for k, v in clip.visual.state_dict().items()}
    assert {k: v.shape for k, v in m.visual.state_dict().items()} == shapes
    card = m.card()
    assert card["uses labels"] and card["title"] == "Supervised image tower"


def test_loss_is_cross_entropy_of_the_linear_classifier(geometry):
    d = C.pairs()
    m = N.make_model(KEY, C.spec(geometry)).eval()
    x, y = to_model_input(d.images[:6]), torch.as_tensor(C.labels_of(d)[:6])
    with torch.no_grad():
        f = m.visual(x)
        logits = f @ m.classify.weight.T + m.classify.bias
        by_hand = -(logits.log_softmax(1)[torch.arange(6), y]).mean()
        torch.testing.assert_close(m.image_features(x), f)
        torch.testing.assert_close(m.loss(x, None, y, None), by_hand, rtol=1e-5, atol=1e-5)


def test_chance_loss_is_the_loss_of_a_zero_classifier(geometry):
    def learn_nothing(m):
        m.classify.weight.zero_()
        m.classify.bias.zero_()

    m = N.make_model(KEY, C.spec(geometry))
    assert C.check_chance_loss(m, learn_nothing, B=16) == pytest.approx(math.log(4))
