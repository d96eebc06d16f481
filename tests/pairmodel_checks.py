"""Checks that every trained model of the evaluation chapter must pass (tests/test_comparators.py runs them
on every registered model) and helpers the model-specific tests/test_<model>.py share."""
import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from hzlib.baselines import _pretraining as P, neural as N
from hzlib.model import Vocabulary, load_geometry
from hzlib.pairs import PairData, to_model_input
from hzlib.train import TrainConfig, trim_padding

VOCAB = 60


def small_geometry():
    """The tiny geometry with 32 px images, one layer per tower and 16 tokens: fast, same widths."""
    g = load_geometry("tiny")
    return replace(g, vision=replace(g.vision, image_size=32, layers=1), text=replace(g.text, layers=1),
                   context_length=16)


def narrow_geometry(text_layers: int = 1):
    """The tiny geometry at 32 px, 32 wide with 24-wide embeddings, one vision layer and 16 tokens: for
    the comparators whose by-hand tests loop over pairs and words (DAN, the instance embedding)."""
    g = load_geometry("tiny")
    return replace(g, vision=replace(g.vision, image_size=32, width=32, layers=1),
                   text=replace(g.text, width=32, layers=text_layers), embed_dim=24, context_length=16)


def pairs(n=16, size=32, L=16, seed=0, *, vocab=VOCAB, min_len=4, spread=9) -> PairData:
    """Random images and texts of ``min_len`` to ``min_len + spread - 1`` tokens (<bos> words <eos>), padded to L."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(n, L, dtype=torch.int64)
    for i in range(n):
        k = min_len + i % spread  # texts of different lengths; the rest is padding
        tokens[i, 0], tokens[i, k - 1] = Vocabulary.bos_id, Vocabulary.eos_id
        tokens[i, 1:k - 1] = torch.randint(4, vocab, (k - 2,), generator=g)
    return PairData(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), tokens)


def short_pairs(n=24, seed=0) -> PairData:
    """32 px images and texts of 3 to 9 tokens from a 50-word vocabulary, padded to 16."""
    return pairs(n, 32, 16, seed, vocab=50, min_len=3, spread=7)


def unit_images(d: PairData, n=8) -> torch.Tensor:
    """The first ``n`` images as floats in [-0.5, 0.5]."""
    return d.images[:n].float() / 255 - 0.5


def spec(geometry, n=16, seed=0) -> N.ModelSpec:
    return N.ModelSpec(geometry, vocab_size=VOCAB, n_classes=4, n_instances=n, seed=seed)


def model_and_pairs(key, geometry, *, train: bool = False):
    """A fresh model ``key`` of :func:`spec` (in eval mode unless ``train``) and the pairs it is checked on."""
    return N.make_model(key, spec(geometry)).train(train), pairs()


def labels_of(d: PairData) -> np.ndarray:
    return np.arange(len(d)) % 4


def check_shapes(key, geometry):
    m, d = model_and_pairs(key, geometry)
    x = to_model_input(d.images[:5])
    f = m.image_features(x)
    assert f.shape == (5, m.feature_dim) and torch.isfinite(f).all()
    loss = m.train().loss(x, trim_padding(d.tokens[:5]), torch.as_tensor(labels_of(d)[:5]), torch.arange(5))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert sum(p.grad.abs().sum() for p in m.parameters() if p.grad is not None) > 0
    f = N.features(m, d.images)
    assert f.shape == (len(d), m.feature_dim) and f.dtype == np.float32


def check_overfits(key, geometry, epochs=25):
    d = pairs()
    m = N.make_model(key, spec(geometry, seed=1))
    r = N.fit(m, d, labels_of(d), TrainConfig(epochs=epochs, batch_size=8, lr=2e-3, warmup_steps=1, seed=2),
              progress=False)
    assert np.isfinite(r.epoch_loss).all()
    first, last = np.mean(r.epoch_loss[:3]), np.mean(r.epoch_loss[-3:])
    assert last < 0.8 * first, r.epoch_loss
    return r


def check_padding_invariance(key, geometry):
    """Eval mode, the same RNG state: the loss on a batch and on the batch trimmed of its padding."""
    m, d = model_and_pairs(key, geometry)
    x, t = to_model_input(d.images[:8]), d.tokens[:8]
    assert trim_padding(t).shape[1] < t.shape[1]
    lab = torch.as_tensor(labels_of(d)[:8])
    with torch.no_grad():
        torch.manual_seed(7)
        full = m.loss(x, t, lab, torch.arange(8))
        torch.manual_seed(7)
        trimmed = m.loss(x, trim_padding(t), lab, torch.arange(8))
    torch.testing.assert_close(full, trimmed, rtol=1e-5, atol=1e-5)


def check_batch_independence(key, geometry):
    """An image's feature does not depend on the other images of its batch, nor on the texts the model
    read before (a loss in eval mode leaves no state behind)."""
    m, d = model_and_pairs(key, geometry)
    x = to_model_input(d.images[:8])
    with torch.no_grad():
        alone = m.image_features(x[:3])
        mixed = m.image_features(to_model_input(torch.cat([d.images[8:13], d.images[:3]])))[5:]
        single = m.image_features(x[1:2])
        before = m.image_features(x)
        m.loss(x, trim_padding(d.tokens[:8]), torch.as_tensor(labels_of(d)[:8]), torch.arange(8))
        after = m.image_features(x)
    torch.testing.assert_close(alone, mixed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone[1:2], single, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(before[:3], alone, rtol=1e-5, atol=1e-5)
    assert torch.equal(after, before)


def check_seeded(key, geometry):
    d = pairs()
    a, b, c = (N.make_model(key, spec(geometry, seed=s)) for s in (3, 3, 4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=1, seed=5)
    ra, rb = (N.fit(m, d, labels_of(d), cfg, progress=False) for m in (a, b))
    assert ra.epoch_loss == rb.epoch_loss
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the same trained weights
    assert np.array_equal(N.features(a, d.images), N.features(b, d.images))


def check_parameter_count(key, geometry: str = "tiny", low: float = 0.5, high: float = 2.0):
    """Within ``low``-``high`` times CLIP's at a real geometry (with a 1,000-word vocabulary)."""
    s = N.ModelSpec(load_geometry(geometry), vocab_size=1000, n_classes=10, n_instances=1850)
    m = N.make_model(key, s)
    ours = m.card()["parameters"]
    assert ours == sum(p.numel() for p in m.parameters())
    clip = N.make_model("clip", s).card()["parameters"]
    assert low * clip <= ours <= high * clip, (ours, clip)
    return ours, clip


def check_card(key, geometry, uses_labels: bool):
    card = N.make_model(key, spec(geometry)).card()
    assert card["model"] == key and card["uses labels"] is uses_labels
    return card


def check_chance_loss(model, learn_nothing, *, B=16, seed=0):
    """``learn_nothing(model)`` (under no_grad) makes every score the model compares equal / every
    predicted distribution uniform; then its loss on a batch of B pairs is ``chance_loss(B)``, while
    a freshly initialised model's is not."""
    g, s = model.spec.geometry, model.spec
    d = pairs(max(B, 16), g.vision.image_size, g.context_length, seed, vocab=s.vocab_size)
    x, t = to_model_input(d.images[:B]), trim_padding(d.tokens[:B])
    y = torch.as_tensor(np.arange(B) % s.n_classes)
    index = torch.randperm(s.n_instances, generator=torch.Generator().manual_seed(seed))[:B]
    model.train()

    def loss():
        torch.manual_seed(seed)  # the same masking draws
        with torch.no_grad():
            return model.loss(x, t, y, index).item()

    chance = model.chance_loss(B)
    assert isinstance(chance, float) and chance > 0
    before = loss()
    with torch.no_grad():
        learn_nothing(model)
    after = loss()
    assert abs(after - chance) <= 1e-5 * max(1.0, chance), (after, chance)
    assert abs(before - chance) > 1e-3, (before, chance)
    return chance


ITM_PAIRS = [(0, 0), (1, 1), (2, 1), (3, 2)]  # (image, text): half the batch true pairs, then image i with text i-1


def masking_seed(tokens, geometry, true_pairs: int = 2) -> int:
    """A seed under which BERT masking (hzlib.baselines._pretraining) masks words of the first
    ``true_pairs`` texts: the pairs whose MLM loss counts."""
    return next(s for s in range(100) if torch.manual_seed(s) is not None and (
        P.mask_tokens(tokens, VOCAB, geometry.context_length, P.MASK_PROB)[1][:true_pairs] != P.IGNORE).any())


def contrastive_by_hand(image, text, logit_scale):
    """ALBEF's image-text contrast written out: cosine similarities / tau, then the mean of the two
    directions' cross-entropies with the true pair on the diagonal."""
    s = torch.stack([torch.stack([F.cosine_similarity(a, b, dim=0, eps=1e-12) for b in text]) for a in image])
    s = s * logit_scale.exp()
    n = len(s)
    rows = -sum(s[i, i] - torch.logsumexp(s[i], 0) for i in range(n)) / n
    cols = -sum(s[i, i] - torch.logsumexp(s[:, i], 0) for i in range(n)) / n
    return (rows + cols) / 2


def check_matching_plus_mlm_loss(key, geometry, by_pair, unfused):
    """The loss of a model pretrained with image-text contrast, matching and masked language modelling,
    by hand on a batch of 4: the contrast of the unfused projections (:func:`contrastive_by_hand`), the
    binary cross-entropy of the matching logits of :data:`ITM_PAIRS`, plus the MLM loss on the true
    pairs' texts. ``by_pair(m, x, inputs, t, i, j)`` (``inputs`` the masked ``t``) is the model-specific
    part: the matching logit of image i with text j and text j's hidden states; ``unfused(m, x, t)`` the
    projected image and text embeddings that the contrast compares, from the unmasked ``t``."""
    m, d = model_and_pairs(key, geometry, train=True)
    x, t = to_model_input(d.images[4:8]), trim_padding(d.tokens[4:8])
    seed = masking_seed(t, geometry)
    with torch.no_grad():
        torch.manual_seed(seed)
        loss = m.loss(x, t, None, None)
        torch.manual_seed(seed)
        inputs, targets = P.mask_tokens(t, VOCAB, geometry.context_length, P.MASK_PROB)
        logits, hidden = zip(*(by_pair(m, x, inputs, t, i, j) for i, j in ITM_PAIRS))
        z = torch.stack(logits)
        y = torch.tensor([1.0, 1.0, 0.0, 0.0])
        itm = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
        mlm = m.mlm(torch.stack(hidden[:2]), targets[:2])
        itc = contrastive_by_hand(*unfused(m, x, t), m.logit_scale)
        assert itc > 0.1  # not a vanishing term
        m.contrast = False  # the published objectives alone
        torch.manual_seed(seed)
        published = m.loss(x, t, None, None)
    torch.testing.assert_close(loss, itc + itm + mlm, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(published, itm + mlm, rtol=1e-5, atol=1e-5)


def check_matching_plus_mlm_chance(key, geometry, head: str):
    """The "learnt nothing" state of a model with image-text contrast, an image-text matching layer
    ``head`` and an MLM head: a zero image projection (equal similarities: ln B), a zero matching layer
    (logit 0: ln 2) and a zero MLM transform (logits = the zero bias: ln V)."""
    def learn_nothing(m):
        m.image_align.weight.zero_()
        m.image_align.bias.zero_()
        getattr(m, head).weight.zero_()
        getattr(m, head).bias.zero_()
        m.mlm.transform[2].weight.zero_()
        m.mlm.transform[2].bias.zero_()
        m.mlm.bias.zero_()

    chance = check_chance_loss(N.make_model(key, spec(geometry)), learn_nothing, B=16)
    assert math.isclose(chance, math.log(16) + math.log(2) + math.log(VOCAB), rel_tol=1e-6), chance
    m = N.make_model(key, spec(geometry))
    m.contrast = False
    assert math.isclose(check_chance_loss(m, learn_nothing, B=16), math.log(2) + math.log(VOCAB), rel_tol=1e-6)
