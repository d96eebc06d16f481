"""Supervised image tower: CLIP's image tower (with its projection) + a linear classifier, cross-entropy on
the labels. The checks every model passes are in tests/test_comparators.py."""
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


def test_reads_no_text(geometry):
    m, d = C.model_and_pairs(KEY, geometry)
    x, y = to_model_input(d.images[:6]), torch.as_tensor(C.labels_of(d)[:6])
    with torch.no_grad():
        torch.testing.assert_close(m.loss(x, d.tokens[:6], y, None), m.loss(x, None, y, None))
    assert m.token_embedding() is None


def test_is_clip_image_tower(geometry):
    m = N.make_model(KEY, C.spec(geometry))
    clip = build_model(geometry, 50, seed=0)
    assert type(m.visual) is type(clip.visual)
    shapes = [{k: v.shape for k, v in tower.state_dict().items()} for tower in (m.visual, clip.visual)]
    assert shapes[0] == shapes[1]
    card = m.card()
    assert card["uses labels"] and card["title"] == "Supervised image tower"


def test_loss_is_cross_entropy_of_the_linear_classifier(geometry):
    m, d = C.model_and_pairs(KEY, geometry)
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
