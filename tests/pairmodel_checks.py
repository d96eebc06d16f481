"""Checks that every trained model of the evaluation chapter must pass (used by tests/test_<model>.py)."""
from dataclasses import replace

import numpy as np
import torch

from hzlib.baselines import neural as N
from hzlib.model import Vocabulary, load_geometry
from hzlib.pairs import PairData, to_model_input
from hzlib.train import TrainConfig, trim_padding

VOCAB = 60


def small_geometry():
    """The tiny geometry with 32 px images, one layer per tower and 16 tokens: fast, same widths."""
    g = load_geometry("tiny")
    return replace(g, vision=replace(g.vision, image_size=32, layers=1), text=replace(g.text, layers=1),
                   context_length=16)


def pairs(n=16, size=32, L=16, seed=0, *, vocab=VOCAB, min_len=4, spread=9) -> PairData:
    """Random images and texts of ``min_len`` to ``min_len + spread - 1`` tokens (<bos> words <eos>), padded to L."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(n, L, dtype=torch.int64)
    for i in range(n):
        k = min_len + i % spread  # texts of different lengths; the rest is padding
        tokens[i, 0], tokens[i, 1:k - 1], tokens[i, k - 1] = (
            Vocabulary.bos_id, torch.randint(4, vocab, (k - 2,), generator=g), Vocabulary.eos_id)
    return PairData(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), tokens)


def spec(geometry, n=16, seed=0) -> N.ModelSpec:
    return N.ModelSpec(geometry, vocab_size=VOCAB, n_classes=4, n_instances=n, seed=seed)


def labels_of(d: PairData) -> np.ndarray:
    return np.arange(len(d)) % 4


def check_shapes(key, geometry):
    d = pairs()
    m = N.make_model(key, spec(geometry)).eval()
    x = to_model_input(d.images[:5])
    f = m.image_features(x)
    assert f.shape == (5, m.feature_dim) and torch.isfinite(f).all()
    loss = m.train().loss(x, trim_padding(d.tokens[:5]), torch.as_tensor(labels_of(d)[:5]), torch.arange(5))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert sum(p.grad.abs().sum() for p in m.parameters() if p.grad is not None) > 0
    assert N.features(m, d.images).shape == (len(d), m.feature_dim)


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
    d = pairs()
    m = N.make_model(key, spec(geometry)).eval()
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
    d = pairs()
    m = N.make_model(key, spec(geometry)).eval()
    with torch.no_grad():
        alone = m.image_features(to_model_input(d.images[:3]))
        mixed = m.image_features(to_model_input(torch.cat([d.images[8:13], d.images[:3]])))[5:]
        single = m.image_features(to_model_input(d.images[1:2]))
    torch.testing.assert_close(alone, mixed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone[1:2], single, rtol=1e-5, atol=1e-5)


def check_seeded(key, geometry):
    d = pairs()
    a, b, c = (N.make_model(key, spec(geometry, seed=s)) for s in (3, 3, 4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=1, seed=5)
    ra, rb = (N.fit(m, d, labels_of(d), cfg, progress=False) for m in (a, b))
    assert ra.epoch_loss == rb.epoch_loss
    assert np.array_equal(N.features(a, d.images), N.features(b, d.images))


def check_parameter_count(key, geometry: str = "tiny"):
    """Within 0.5x-2x of CLIP at a real geometry (with a 1,000-word vocabulary)."""
    s = N.ModelSpec(load_geometry(geometry), vocab_size=1000, n_classes=10, n_instances=1850)
    ours = N.make_model(key, s).card()["parameters"]
    clip = N.make_model("clip", s).card()["parameters"]
    assert 0.5 * clip <= ours <= 2 * clip, (ours, clip)
    return ours, clip


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


def zero_matching_and_mlm(head: str):
    """The "learnt nothing" state of a model with an image-text matching head ``head`` and an MLM head:
    a zero matching layer (logit 0: ln 2) and a zero MLM transform (logits = the zero bias: ln V)."""
    def learn_nothing(m):
        getattr(m, head).weight.zero_()
        getattr(m, head).bias.zero_()
        m.mlm.transform[2].weight.zero_()
        m.mlm.transform[2].bias.zero_()
        m.mlm.bias.zero_()

    return learn_nothing
