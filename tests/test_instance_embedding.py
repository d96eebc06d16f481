"""The Image-Text Embedding Model comparator: what only it has (one shared instance classifier, its text
path, the instance and ranking losses, batch-norm paths) checked by hand; the checks every model passes
are in tests/test_comparators.py."""
import numpy as np
import pytest
import torch

import pairmodel_checks as C
from hzlib.baselines import neural as N
from hzlib.baselines.instance_embedding import INSTANCE_WEIGHT, RANK_MARGIN, RANK_WEIGHT, hardest_negative_ranking_loss
from hzlib.train import trim_padding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def geometry():
    return C.narrow_geometry(text_layers=2)


def _model(geometry, seed=0, n=30):
    return N.make_model("item", N.ModelSpec(geometry, vocab_size=50, n_classes=10, n_instances=n, seed=seed))


def test_shapes_card_and_one_shared_classifier(geometry):
    m = _model(geometry).eval()
    d = C.short_pairs()
    with torch.no_grad():
        f = m.image_features(C.unit_images(d, 5))
        t = m.text(d.tokens[:3])
    assert f.shape == (5, geometry.embed_dim) and t.shape == (3, geometry.embed_dim)
    heads = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear) and mod.out_features == 30]
    assert heads == [m.classifier] and m.classifier.weight.shape == (30, geometry.embed_dim)
    card = m.card()
    assert card["model"] == "item" and card["interpretation"].startswith("Follows Zheng et al. (2020)")
    assert not card["uses labels"]


def test_trailing_padding_changes_nothing(geometry):
    m = _model(geometry).eval()
    d = C.short_pairs()
    x, t, idx = C.unit_images(d), d.tokens[:8], torch.arange(8)
    longer = torch.cat([t, torch.zeros(8, 9, dtype=t.dtype)], 1)
    with torch.no_grad():
        losses = [m.loss(x, tt, None, idx) for tt in (trim_padding(t), t, longer)]
        texts = [m.text(tt) for tt in (trim_padding(t), t, longer)]
    for other in losses[1:]:
        torch.testing.assert_close(other, losses[0], rtol=1e-5, atol=1e-6)
    for other in texts[1:]:
        torch.testing.assert_close(other, texts[0], rtol=1e-5, atol=1e-6)


def test_text_is_each_text_alone(geometry):
    """A text's embedding is the one it gets with no padding and no batch around it."""
    m = _model(geometry).eval()
    t = C.short_pairs().tokens[:6]
    with torch.no_grad():
        batch = m.text(t)
        alone = torch.cat([m.text(t[i:i + 1, :int((t[i] != 0).sum())]) for i in range(len(t))])
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6)


def test_loss_by_hand(geometry):
    """The instance loss (one shared W, each pair its own class) plus the hardest-negative ranking
    loss, written out with plain tensor operations."""
    m = _model(geometry).eval()
    d = C.short_pairs()
    x, t, idx = C.unit_images(d, 5), d.tokens[:5], torch.tensor([3, 0, 17, 9, 29])
    with torch.no_grad():
        got = m.loss(x, t, None, idx)
        img, txt = m.image(x), m.text(t)
        W = m.classifier.weight

        def cross_entropy(f):
            logits = f @ W.T
            return (torch.log(torch.exp(logits).sum(1)) - logits[torch.arange(5), idx]).mean()

        a = img / img.norm(dim=1, keepdim=True)
        b = txt / txt.norm(dim=1, keepdim=True)
        rank = 0.0
        for i in range(5):
            s_pos = a[i] @ b[i]
            hard_text = max(a[i] @ b[j] for j in range(5) if j != i)
            hard_image = max(a[j] @ b[i] for j in range(5) if j != i)
            rank += max(0.0, RANK_MARGIN - s_pos + hard_text) + max(0.0, RANK_MARGIN - s_pos + hard_image)
        want = INSTANCE_WEIGHT * (cross_entropy(img) + cross_entropy(txt)) + RANK_WEIGHT * rank / 5
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_hardest_negative_ranking_loss_known_answer():
    s = torch.tensor([[0.9, 0.1, 0.5], [0.3, 0.2, -0.4], [0.8, 0.0, 0.6]])
    # pair 0: hardest text 0.5, hardest image 0.8 -> (1 - 0.9 + 0.5) + (1 - 0.9 + 0.8) = 1.5
    # pair 1: 0.3, 0.1 -> 1.1 + 0.9 = 2.0 ; pair 2: 0.8, 0.5 -> 1.2 + 0.9 = 2.1
    assert hardest_negative_ranking_loss(s, 1.0).item() == pytest.approx((1.5 + 2.0 + 2.1) / 3)
    # margin 0: only pair 1's text (0.3 > 0.2) and pair 2's text (0.8 > 0.6) violate
    assert hardest_negative_ranking_loss(s, 0.0).item() == pytest.approx((0.1 + 0.2) / 3)


def test_chance_loss_is_the_loss_at_uniform_logits_and_equal_scores(geometry):
    """A zero instance classifier (uniform logits) and one embedding for every image and text (the
    fc's LayerNorm bias, all cosine similarities 1)."""
    def learn_nothing(m):
        m.classifier.weight.zero_()
        common = torch.randn(geometry.embed_dim)
        for path in (m.image, m.text):
            path.fc[0].weight.zero_()
            path.fc[0].bias.zero_()
            path.fc[1].bias.copy_(common)

    m = _model(geometry, n=30)
    chance = C.check_chance_loss(m, learn_nothing, B=16)
    assert chance == pytest.approx(INSTANCE_WEIGHT * 2 * np.log(30) + RANK_WEIGHT * 2 * RANK_MARGIN)


def test_paths_end_in_batch_norm_centred_over_the_batch(geometry):
    """The paper's batch norm after each fc: in training a batch's embeddings are centred (mean = the
    norm's bias), which the instance classifier needs; in eval mode the running statistics are used."""
    m = _model(geometry).train()
    d = C.short_pairs()
    with torch.no_grad():
        m.image.fc[1].bias.copy_(torch.randn(geometry.embed_dim))
        for path, x in ((m.image, C.unit_images(d, 8)), (m.text, d.tokens[:8])):
            assert isinstance(path.fc[1], torch.nn.BatchNorm1d)
            torch.testing.assert_close(path(x).mean(0), path.fc[1].bias, rtol=1e-4, atol=1e-4)


def test_the_instance_classifier_trains_at_its_own_rate(geometry):
    """The one loop gives W_share CLASSIFIER_LR_SCALE times the model's rate, and every other parameter
    the model's own."""
    from hzlib.baselines.instance_embedding import CLASSIFIER_LR_SCALE
    from hzlib.pairs import PairData
    from hzlib.train import TrainConfig, Trainer

    m = _model(geometry, n=8)
    d = C.short_pairs()
    data = PairData(d.images[:8], d.tokens[:8], targets=torch.arange(8) % 3)
    tr = Trainer(m, data, TrainConfig(lr=1e-3, batch_size=8, max_steps=1, warmup_steps=0, progress=False))
    rates = {id(p): g["lr"] for g in tr.opt.param_groups for p in g["params"]}
    assert CLASSIFIER_LR_SCALE > 1 and rates.pop(id(m.classifier.weight)) == pytest.approx(1e-3 * CLASSIFIER_LR_SCALE)
    assert rates and all(v == pytest.approx(1e-3) for v in rates.values())
    assert len(rates) == len(list(m.parameters())) - 1
