import json
import os
import socket

import numpy as np
import pytest
import torch

from hzlib import model as M
from hzlib import train as T
from hzlib.model import Geometry, TowerGeometry


pytestmark = pytest.mark.usefixtures("one_torch_thread")


MICRO = Geometry(name="micro", embed_dim=32, context_length=12,
                 vision=TowerGeometry(width=32, layers=2, heads=2, image_size=32, patch_size=8),
                 text=TowerGeometry(width=32, layers=2, heads=2))
VOCAB = 40


def synthetic(n, seed=0, size=32, ctx=12) -> T.PairData:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    words = torch.randint(4, VOCAB, (n, ctx - 2), generator=g)
    tokens = torch.cat([torch.full((n, 1), 2), words, torch.full((n, 1), 3)], dim=1)
    labels = tuple(f"c{i % 3}" for i in range(n))
    return T.PairData(images, tokens, labels, tuple(f"id{i}" for i in range(n)))


def cfg(**kw):
    base = dict(lr=2e-3, batch_size=8, max_steps=12, warmup_steps=2, seed=3, log_every=5, progress=False)
    return T.TrainConfig(**{**base, **kw})


def micro_model(seed=0):
    return M.build_model(MICRO, VOCAB, seed=seed)


# -- data ------------------------------------------------------------------------------------------

def test_batch_order_is_a_seeded_permutation_split_over_ranks():
    n, B = 20, 8
    spe = T.steps_per_epoch(n, B)
    ep0 = np.concatenate([T.batch_indices(n, B, seed=1, step=s) for s in range(spe)])
    assert len(set(ep0)) == spe * B  # no pair twice within an epoch
    ep1 = np.concatenate([T.batch_indices(n, B, seed=1, step=spe + s) for s in range(spe)])
    assert not np.array_equal(ep0, ep1)  # each epoch has its own order
    np.testing.assert_array_equal(ep0, np.concatenate([T.batch_indices(n, B, 1, s) for s in range(spe)]))
    r0, r1 = (T.batch_indices(n, B, 1, 5, rank=r, world=2) for r in (0, 1))
    np.testing.assert_array_equal(np.concatenate([r0, r1]), T.batch_indices(n, B, 1, 5))


def test_image_cache_applies_eq1_3_and_is_reused(tmp_path, monkeypatch):
    from PIL import Image

    from hzlib.normalize import NormalizeConfig, normalize, resize

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    cache = tmp_path / "cache" / "images.pt"
    x = T.image_cache(paths, 16, cache, mode="channels", progress=False)
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.uint8
    img = np.asarray(Image.open(paths[1]).convert("RGB"))
    eq = normalize(img, NormalizeConfig(size=16))["equalized"]
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy() / 255, eq, atol=0.5 / 255 + 1e-9)
    calls, orig = [], T._normalized_u8
    monkeypatch.setattr(T, "_normalized_u8", lambda a: calls.append(a) or orig(a))
    assert torch.equal(T.image_cache(paths, 16, cache, mode="channels", progress=False), x) and calls == []
    assert T.image_cache(paths, 8, cache, mode="channels", progress=False).shape[-1] == 8 and len(calls) == 3
    rgb = T.image_cache(paths, 16, cache, mode="rgb", progress=False)  # another mode: rebuilt
    assert len(calls) == 6
    np.testing.assert_allclose(rgb[1].permute(1, 2, 0).numpy() / 255, resize(img, 16) / 255, atol=0.5 / 255 + 1e-9)


def test_random_shift_moves_each_image_within_its_padding():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    assert torch.equal(T.random_shift(x, 0), x)
    torch.manual_seed(0)
    y = T.random_shift(x, 2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for i in range(2):  # every output is one 5x5 window of its own padded image, all channels alike
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(y[i], padded[i, :, dy:dy + 5, dx:dx + 5])]
        assert len(hits) == 1
    torch.manual_seed(0)
    assert torch.equal(T.random_shift(x, 2), y)  # drawn from torch's seeded RNG


def test_pair_data_checks_shapes():
    d = synthetic(4)
    with pytest.raises(ValueError, match="uint8"):
        T.PairData(d.images.float(), d.tokens)
    with pytest.raises(ValueError, match="labels"):
        T.PairData(d.images, d.tokens, ("a",))
    assert d.subset([2, 0]).ids == ("id2", "id0")


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="lr=-1"):
        cfg(lr=-1)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        cfg().replace(learning_rate=1)
    with pytest.raises(ValueError, match="batch_size=64 exceeds the 20"):
        T.Trainer(micro_model(), synthetic(20), cfg(batch_size=64))


# -- training --------------------------------------------------------------------------------------

def test_overfits_a_tiny_subset(tmp_path):
    r = T.train(micro_model(), synthetic(8), cfg(batch_size=8, max_steps=150, lr=3e-3, warmup_steps=10,
                                                 weight_decay=0.0, log_every=50), tmp_path)
    assert r.losses[0] > 1.5  # about log(8) = 2.08 at the start
    assert r.final_loss < 0.05
    lines = T.read_metrics(tmp_path)
    assert [m["step"] for m in lines] == list(range(1, 151))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["lr"] == 3e-3 and run["environment"]["packages"]["torch"]
    assert run["hardware"]["device"] == "cpu" and run["summary"]["final_loss"] == r.final_loss


class Crash(Exception):
    pass


def test_resume_after_a_crash_repeats_the_uninterrupted_run(tmp_path):
    data, c = synthetic(20), cfg(checkpoint_every=4, max_steps=12)
    full = T.train(micro_model(), data, c, tmp_path / "full")

    def crash_at_6(step):
        if step == 6:
            raise Crash

    with pytest.raises(Crash):
        T.train(micro_model(), data, c, tmp_path / "cut", on_step=crash_at_6)
    assert T.latest_checkpoint(tmp_path / "cut").name == "step_00000004.pt"
    # a fresh process would build a fresh model (other seed: the checkpoint must overwrite it all)
    resumed = T.train(micro_model(seed=99), data, c, tmp_path / "cut")
    assert resumed.final_loss == full.final_loss
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert T.read_metrics(tmp_path / "cut") == T.read_metrics(tmp_path / "full")
    # a finished run is loaded, not retrained
    again = T.train(micro_model(seed=5), data, c, tmp_path / "full")
    assert again.steps == 12 and again.losses == [] and again.final_loss == full.final_loss
    assert torch.equal(again.model.visual.proj.weight, full.model.visual.proj.weight)
    # the timing of the call that trained survives the reload
    summary = T.run_summary(tmp_path / "full")
    assert summary["steps"] == 12 and summary["seconds"] == pytest.approx(full.seconds, abs=1e-3)
    assert T.run_summary(tmp_path / "nowhere") == {}


def test_resume_refuses_another_config_or_data(tmp_path):
    data = synthetic(20)
    T.train(micro_model(), data, cfg(max_steps=2), tmp_path)
    with pytest.raises(ValueError, match=r"config differs in \{'lr'"):
        T.train(micro_model(), data, cfg(max_steps=2, lr=1e-4), tmp_path)
    with pytest.raises(ValueError, match="other data"):
        T.train(micro_model(), synthetic(20, seed=1), cfg(max_steps=2), tmp_path)
    T.train(micro_model(), data, cfg(max_steps=2, log_every=1), tmp_path)  # runtime-only fields may change


def test_fixed_temperature_stays_fixed(tmp_path):
    r = T.train(micro_model(), synthetic(16), cfg(max_steps=3, tau_init=0.1, learn_tau=False), None)
    assert M.tau_of(r.model) == pytest.approx(0.1, rel=1e-6)


# -- DDP (2 processes, gloo) -----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    try:
        r = T.train(M.build_model(MICRO, VOCAB, seed=rank), synthetic(16), cfg(max_steps=4, device="cpu"), None)
        # one gradient of the global-batch loss, each rank holding half of the batch
        from torch.nn.parallel import DistributedDataParallel as DDP

        d = synthetic(8)
        step = DDP(T._Step(M.build_model(MICRO, VOCAB, seed=0), None, trim=False))
        half = slice(rank * 4, rank * 4 + 4)
        step(d.images[half], d.tokens[half], None, None).backward()
        grads = {n: p.grad for n, p in step.module.model.named_parameters() if p.grad is not None}
        torch.save({"state": r.model.state_dict(), "loss": r.final_loss, "grads": grads}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_agree_with_each_other_and_one_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["loss"] == r1["loss"]
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    # rank 1 started from other weights: DDP broadcast rank 0's, and the gathered loss is the one of
    # the global batch, so the run follows the single-process one up to rounding
    single = T.train(micro_model(seed=0), synthetic(16), cfg(max_steps=4), None)
    assert r0["loss"] == pytest.approx(single.final_loss, rel=1e-4)
    s = single.model.state_dict()
    assert max(float((r0["state"][k] - s[k]).abs().max()) for k in s) < 1e-3
    # the gradient itself (Adam hides errors of scale): DDP halves == one process on the whole batch
    d, m = synthetic(8), micro_model(seed=0)
    T._Step(m, None, trim=False)(d.images, d.tokens, None, None).backward()
    for n, p in m.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(r0["grads"][n], p.grad, rtol=1e-4, atol=1e-7)


# -- evaluation ------------------------------------------------------------------------------------

def test_recall_at_k_on_a_hand_computed_case():
    img = np.eye(3)
    txt = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0.1]])  # image 1 prefers text 2; image 2 -> text 2
    r = T.retrieval_metrics(img, txt, ks=(1, 2), n_boot=200)
    got = {(d, k): v for d, k, v in zip(r.direction, r.k, r.recall)}
    # sims rows = images: [1,0,0], [0,0,1], [0,1,.1]; true pair ranks: 0, 1, 1
    assert got[("image->text", 1)] == pytest.approx(1 / 3) and got[("image->text", 2)] == 1.0
    # columns = texts: text0 -> image0 (rank 0); text1 [0,0,1] -> image2 best, rank 1; text2 [0,1,.1] rank 1
    assert got[("text->image", 1)] == pytest.approx(1 / 3) and got[("text->image", 2)] == 1.0
    row = r[(r.direction == "image->text") & (r.k == 1)].iloc[0]
    assert row.ci_low <= row.recall <= row.ci_high


def test_intervals_come_from_the_shared_bootstrap_helper():
    from hzlib.stats import mean_ci

    assert not hasattr(T, "bootstrap_ci")  # one bootstrap helper in the project: hzlib.stats.mean_ci
    img = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]] + np.linspace(0, 0.1, 8)[:, None]
    txt = np.eye(4)[[0, 1, 2, 3, 1, 2, 3, 0]]
    r = T.retrieval_metrics(img, txt, ks=(1,), n_boot=500, seed=4)
    row = r[r.direction == "image->text"].iloc[0]
    sims = img @ txt.T
    hit = (sims > np.diag(sims)[:, None]).sum(1) < 1
    assert (row.recall, row.ci_low, row.ci_high) == pytest.approx(mean_ci(hit.astype(float), n_resamples=500, seed=4))
    none = T.retrieval_metrics(img, txt, ks=(1,), n_boot=0)
    assert none.ci_low.isna().all() and none.ci_high.isna().all()


def test_stratified_split_is_seeded_disjoint_and_keeps_every_class_in_training():
    y = np.repeat(list("abcd"), [2, 3, 20, 101])
    s = T.stratified_split(y, (0.7, 0.15, 0.15), seed=5)
    assert list(s) == ["train", "validation", "test"]
    allpos = np.concatenate(list(s.values()))
    assert sorted(allpos.tolist()) == list(range(len(y)))  # disjoint and complete
    for c, n in zip("abcd", [2, 3, 20, 101]):
        got = {k: int((y[v] == c).sum()) for k, v in s.items()}
        assert got["train"] >= 1 and sum(got.values()) == n
        if n >= 20:
            assert got["validation"] == got["test"] == round(n * 0.15)
    assert all(np.array_equal(a, b) for a, b in zip(s.values(), T.stratified_split(y, seed=5).values()))
    assert not np.array_equal(s["test"], T.stratified_split(y, seed=6)["test"])
    with pytest.raises(ValueError, match="sum to 1"):
        T.stratified_split(y, (0.5, 0.2, 0.2), seed=0)


def test_class_prompts_are_chinese_and_cover_every_class():
    from hzlib.corpus import classes as C

    p = T.class_prompts()
    assert list(p) == list(C.KEYS)
    for spec in C.CLASSES:
        assert len(p[spec.key]) == len(spec.cues) + 2
        assert all(any(cue in q for q in p[spec.key]) for cue in spec.cues)
        assert any(spec.name_zh in q for q in p[spec.key])


def test_linear_probe_never_sees_the_test_split():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 20)
    X = rng.normal(size=(40, 4)) + (y == "a")[:, None] * 3
    tr, te = np.arange(0, 40, 2), np.arange(1, 40, 2)
    with pytest.raises(ValueError, match="overlap in 1"):
        T.linear_probe(X, y, tr, np.r_[te, 0])
    r = T.linear_probe(X, y, tr, te)
    assert r["accuracy"] > 0.9 and r["probabilities"].shape == (20, 2)
    X2 = X.copy()
    X2[te] = rng.normal(size=(20, 4)) * 100  # changing test rows must not change the fitted model
    r2 = T.linear_probe(X2, y, tr, te)
    np.testing.assert_array_equal(r["classifier"].coef_, r2["classifier"].coef_)


def test_zero_shot_uses_the_mean_prompt_embedding():
    texts = ["玉石雕塑", "青铜雕塑", "木材作品"]
    vocab = M.build_vocabulary(texts)
    m = M.build_model(MICRO, len(vocab), seed=0)
    prompts = {"jade": ["玉石雕塑", "玉石"], "bronze": ["青铜雕塑"]}
    img = M.encode_texts(m, vocab.encode(["玉石", "青铜雕塑"], 12))  # stand-ins for image embeddings
    r = T.zero_shot(m, vocab, img, ["jade", "bronze"], prompts, context_length=12, n_boot=10)
    jade = torch.nn.functional.normalize(M.encode_texts(m, vocab.encode(prompts["jade"], 12)).mean(0), dim=0)
    np.testing.assert_allclose(r["scores"][:, 0], (img @ jade).numpy(), rtol=1e-5)
    assert r["predictions"][1] == "bronze" and r["classes"] == ["jade", "bronze"]
    with pytest.raises(ValueError, match="no prompts"):
        T.zero_shot(m, vocab, img, ["jade", "stone"], prompts, context_length=12)


def test_sweep_returns_curves_and_picks_on_validation_among_the_settings_that_learnt(tmp_path, monkeypatch):
    settings = [{"lr": 1e-5, "max_steps": 20}, {"lr": 2e-3, "max_steps": 20}, {"lr": 3e-2, "max_steps": 20}]
    kw = dict(make_model=micro_model, train_data=synthetic(16), val_data=synthetic(8, seed=1),
              base=cfg(batch_size=8), out_dir=tmp_path, select_by="val_loss")
    res = T.sweep(settings, **kw)
    assert list(res.curves.groupby("setting").step.max()) == [20, 20, 20]
    assert set(res.table.columns) >= {"val_loss", "val_mean_recall", "val_i2t_r@1", "final_loss", "lr", "loss_drop"}
    tail = res.curves[res.curves.step > 16].groupby("setting").loss.mean()  # the last fifth of 20 steps
    np.testing.assert_allclose(res.table.loss_drop, np.log(8) - tail.to_numpy())
    assert res.table.learnt.tolist() == (res.table.loss_drop >= 0.05).tolist()
    learnt = res.table[res.table.loss_drop >= 0.05]
    assert 0 < len(learnt) < len(settings)  # the case the rule is for: some settings have not left ln B
    best = learnt.loc[learnt.val_loss.idxmin(), "setting"]
    assert res.best == settings[best] and res.best_setting == best and res.informative
    assert not list(tmp_path.glob("*/checkpoints/*.pt"))
    monkeypatch.setattr(T, "Trainer", lambda *a, **k: pytest.fail("a finished setting was retrained"))
    again = T.sweep(settings, **kw)
    assert again.table.equals(res.table) and again.best == res.best


def test_a_sweep_in_which_nothing_learnt_keeps_the_base_setting(tmp_path):
    base = cfg(batch_size=8, lr=1e-6)  # three steps this small cannot move the loss
    settings = [{"lr": 3e-6, "max_steps": 3}, {"lr": 1e-6, "max_steps": 3}, {"lr": 3e-7, "max_steps": 3}]
    kw = dict(make_model=micro_model, train_data=synthetic(16), val_data=synthetic(8, seed=1), out_dir=tmp_path)
    res = T.sweep(settings, base=base, **kw)
    assert (res.table.loss_drop < 0.05).all()
    assert not res.informative and res.best_setting == 1 and res.best == settings[1]
    with pytest.raises(ValueError, match="none equals the base"):
        T.sweep(settings[::2], base=base, **kw)
