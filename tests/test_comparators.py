"""The checks every registered trained model passes (tests/pairmodel_checks.py): shapes and a finite,
differentiable loss, overfitting a small set, trailing padding, batch independence, seeding, its card
and a parameter count near CLIP's. What only one model has is tested in tests/test_<model>.py."""
from dataclasses import dataclass, replace

import pytest

import hzlib.baselines  # noqa: F401  (registers the models)
import pairmodel_checks as C
from hzlib.baselines import neural as N

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Case:
    key: str
    geometry: object  # () -> Geometry: the small geometry the model is checked at
    uses_labels: bool = False


def _small(kind: str | None = None):
    def geometry():
        g = C.small_geometry()
        return g if kind is None else replace(g, vision=replace(g.vision, kind=kind))

    return geometry


CASES = {
    "clip": Case("clip", _small()),
    "dan": Case("dan", C.narrow_geometry),
    "item": Case("item", lambda: C.narrow_geometry(text_layers=2)),
    "vilbert": Case("vilbert", _small()),
    "m3p": Case("m3p", _small()),
    "supervised-vit": Case("supervised", _small("vit"), uses_labels=True),
    "supervised-cnn": Case("supervised", _small("cnn"), uses_labels=True),
}
# model -> (geometry, low, high): its parameters within low-high times CLIP's at that geometry (M3P's
# one stream has half the depth of CLIP's text tower and no image tower: about a third of CLIP's)
PARAMETER_COUNT = {"clip": ("tiny", 1.0, 1.0), "dan": ("tiny", 0.5, 2.0), "item": ("tiny", 0.5, 2.0),
                   "vilbert": ("tiny", 0.9, 1.1), "m3p": ("tiny", 0.25, 2.0), "supervised": ("cnn_tiny", 0.5, 2.0)}


# what every model passes, at its small geometry
CHECKS = {"shapes_and_a_finite_loss": C.check_shapes, "loss_falls_when_overfitting": C.check_overfits,
          "trailing_padding_changes_nothing": C.check_padding_invariance,
          "image_features_ignore_the_batch_and_the_texts_read_before": C.check_batch_independence,
          "seeded": C.check_seeded}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    c = CASES[request.param]
    return c, c.geometry()


def test_every_registered_model_is_checked():
    assert {c.key for c in CASES.values()} == set(N.MODELS) == set(PARAMETER_COUNT)


@pytest.mark.parametrize("check", list(CHECKS))
def test_model_passes(case, check):
    c, geometry = case
    CHECKS[check](c.key, geometry)


def test_card_names_the_model_and_whether_it_uses_labels(case):
    c, geometry = case
    C.check_card(c.key, geometry, c.uses_labels)


@pytest.mark.parametrize("key", sorted(PARAMETER_COUNT))
def test_parameter_count_is_comparable_to_clip(key):
    C.check_parameter_count(key, *PARAMETER_COUNT[key])
