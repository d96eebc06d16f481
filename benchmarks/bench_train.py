"""Training throughput (images/s) of hzlib's Trainer against a plain loop on the same ClipModel
and against open_clip (ViT geometries), at the same geometry, batch and precision, measured in this
run on this machine.

Random data (uint8 images, random token ids); every contender does the same work per step: uint8 ->
float input, forward of both towers, symmetric contrastive loss in fp32, backward, gradient clipping
at 1.0, AdamW (fused on CUDA, foreach on the CPU) with weight decay on matrices, logit-scale clamp.
``--warmup`` untimed steps, then ``--steps`` timed steps, the device synchronised around the timing.

    python benchmarks/bench_train.py                         # CPU: tiny geometry, batch 32, fp32
    python benchmarks/bench_train.py --geometry cnn_tiny --batch 64 --only hzlib plain   # the CPU profiles' CLIP
    python benchmarks/bench_train.py --device cuda --geometry vit_b16 --batch 256 --compile

Needs open_clip (``pip install -e .[bench]``); without it only the transformers rows are printed.
Reference (H200, bf16, fused AdamW, batch 256, ViT-B/16 + 12-layer 512 text): open_clip 1,897 img/s
eager, 2,808 compiled; transformers CLIPModel 1,925 eager, 2,950 compiled.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hzlib import model as M, train as T
from hzlib.config import hardware
from hzlib.pairs import PairData, to_model_input


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _optimizer(model, device, lr=5e-4, wd=0.2):
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    fused = device.type == "cuda"
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-6, fused=fused or None, foreach=None if fused else True)


def _time_loop(step, warmup, steps, device):
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def bench_hzlib(geometry, args, device, images, tokens):
    model = M.build_model(geometry, args.vocab, seed=0)
    data = PairData(images, tokens)
    cfg = T.TrainConfig(lr=5e-4, batch_size=args.batch, max_steps=10**9, warmup_steps=0, device=str(device),
                        precision=args.precision, compile=args.compile, log_every=50, progress=False)
    tr = T.Trainer(model, data, cfg, None)
    tr.run(args.warmup)
    _sync(device)
    t0 = time.perf_counter()
    tr.run(args.steps)  # run() synchronises the device at its end
    return time.perf_counter() - t0, sum(p.numel() for p in model.parameters())


def _train_step(model, opt, forward, loss_of, images, tokens, batch, device, dtype):
    """One training step of a plain loop, cycling over the batches: ``forward(pixels, ids)`` under
    autocast, ``loss_of(output)`` in fp32, then clipping, the optimizer step and CLIP's clamp of the
    logit scale, as both open_clip and our trainer do."""
    images, tokens = images.to(device), tokens.to(device)
    n = len(images) // batch
    it = [0]

    def step():
        i = it[0] % n
        it[0] += 1
        x = to_model_input(images[i * batch:(i + 1) * batch])
        ids = tokens[i * batch:(i + 1) * batch]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = forward(x, ids)
        loss = loss_of(out)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

    return step


def bench_plain(geometry, args, device, images, tokens, dtype):
    """The same ClipModel in the shortest loop that does the same work."""
    model = M.build_model(geometry, args.vocab, seed=0).to(device).train()
    opt = _optimizer(model, device)

    def encode(x, ids):
        return model.encode_image(x), model.encode_text(ids)

    fwd = torch.compile(encode) if args.compile else encode
    target = torch.arange(args.batch, device=device)

    def loss_of(out):
        img, txt = (F.normalize(o.float(), dim=-1) for o in out)
        logits = model.logit_scale.exp() * img @ txt.T
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    step = _train_step(model, opt, fwd, loss_of, images, tokens, args.batch, device, dtype)
    return _time_loop(step, args.warmup, args.steps, device), sum(p.numel() for p in model.parameters())


def bench_open_clip(geometry, args, device, images, tokens, dtype):
    # here, not at the top: open_clip is optional (the "bench" extra); the caller reports it when absent
    import open_clip
    from open_clip.loss import ClipLoss

    if geometry.vision.kind != "vit" or geometry.text.kind != "transformer":
        raise ImportError(f"open_clip has no tower of kinds {geometry.vision.kind}/{geometry.text.kind}")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    g, v, t = geometry, geometry.vision, geometry.text
    torch.manual_seed(0)
    model = open_clip.CLIP(
        g.embed_dim,
        vision_cfg=CLIPVisionCfg(layers=v.layers, width=v.width, head_width=v.width // v.heads, mlp_ratio=v.mlp_ratio,
                                 patch_size=v.patch_size, image_size=v.image_size),
        text_cfg=CLIPTextCfg(context_length=g.context_length, vocab_size=args.vocab, width=t.width, heads=t.heads,
                             layers=t.layers, mlp_ratio=t.mlp_ratio),
        quick_gelu=g.hidden_act == "quick_gelu").to(device).train()
    opt = _optimizer(model, device)
    fwd = torch.compile(model) if args.compile else model
    loss_fn = ClipLoss()
    step = _train_step(model, opt, fwd, lambda out: loss_fn(*(o.float() for o in out)),
                       images, tokens, args.batch, device, dtype)
    return _time_loop(step, args.warmup, args.steps, device), sum(p.numel() for p in model.parameters())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--geometry", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--vocab", type=int, default=1000, help="text vocabulary size (ours: ~1k jieba words)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--only", nargs="*", default=["hzlib", "plain", "open_clip"])
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device if args.device != "cuda" else "cuda:0")
    geometry = M.load_geometry(args.geometry)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    dtype = torch.bfloat16 if bf16 else None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    g = torch.Generator().manual_seed(0)
    n = args.batch * 4
    s = geometry.image_size
    images = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g)
    words = torch.randint(4, args.vocab, (n, geometry.context_length - 2), generator=g)
    tokens = torch.cat([torch.full((n, 1), M.Vocabulary.bos_id), words, torch.full((n, 1), M.Vocabulary.eos_id)], 1)

    runners = {"hzlib": ("hzlib Trainer (ClipModel)", lambda: bench_hzlib(geometry, args, device, images, tokens)),
               "plain": ("plain loop, ClipModel", lambda: bench_plain(geometry, args, device, images, tokens, dtype)),
               "open_clip": ("plain loop, open_clip CLIP",
                             lambda: bench_open_clip(geometry, args, device, images, tokens, dtype))}
    rows = []
    for key in args.only:
        name, fn = runners[key]
        try:
            seconds, params = fn()
        except ImportError as e:
            print(f"skipped {name}: {e}", file=sys.stderr)
            continue
        rows.append({"contender": name, "key": key, "params_m": params / 1e6,
                     "img_per_s": args.batch * args.steps / seconds, "ms_per_step": 1000 * seconds / args.steps})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    ref = next((r["img_per_s"] for r in rows if r["key"] == "open_clip"), None)
    hw = hardware(device)
    print(f"\ngeometry {args.geometry}, batch {args.batch}, {'bf16 autocast' if bf16 else 'fp32'}, "
          f"{'torch.compile' if args.compile else 'eager'}, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{hw.get('gpu', 'CPU')} ({hw['torch_threads']} torch threads), torch {torch.__version__}")
    print("| contender | params (M) | img/s | ms/step | vs open_clip |\n|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['img_per_s'] / ref:.2f}" if ref else "n/a"
        print(f"| {r['contender']} | {r['params_m']:.2f} | {r['img_per_s']:,.1f} | {r['ms_per_step']:.1f} | {ratio} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "hardware": hw, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
