import json
import os
import socket

import numpy as np
import pytest
import torch

from hzlib import model as M, train as T
from trainer_checks import MICRO, VOCAB, cfg, micro_model, synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="lr=-1"):
        cfg(lr=-1)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        cfg().replace(learning_rate=1)
    with pytest.raises(ValueError, match="batch_size=64 exceeds the 20"):
        T.Trainer(micro_model(), synthetic(20), cfg(batch_size=64))


def test_param_lr_scales_give_named_parameters_their_own_rate():
    model = micro_model()
    model.param_lr_scales = lambda: {"text.": 3.0}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tr = T.Trainer(model, synthetic(8), cfg(batch_size=8, max_steps=1, warmup_steps=0, weight_decay=0.0))
    lrs = [g["lr"] for g in tr.opt.param_groups]
    tr.run()
    # AdamW's first step moves every element by lr * g / (|g| + eps): its group's rate wherever g is not tiny
    checked = []
    for n, p in model.named_parameters():
        step = (p.detach() - before[n]).abs().max().item()
        if n == "logit_scale" or step < 1e-4:  # the temperature has its own group; k biases get no gradient
            continue
        want = 3 * 2e-3 if n.startswith("text.") else 2e-3
        assert step == pytest.approx(want, rel=1e-2), n
        checked.append(n.startswith("text."))
    assert sum(checked) > 5 and len(checked) - sum(checked) > 5
    assert sorted(set(lrs)) == [2e-3, 6e-3]
    model.param_lr_scales = lambda: {"txt.": 3.0}
    with pytest.raises(ValueError, match=r"no parameter is named \['txt.'\]"):
        T.Trainer(model, synthetic(8), cfg(batch_size=8))


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
