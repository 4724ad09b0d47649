"""Seconds per demo-transformer training step, side by side in one process on the same inputs: diffusers' forward
over all 512 (zero-padded) text states (what a plain trainer runs), the project's training_forward over all 512,
training_forward over the caption + one weighted padding key, and that compiled (the recipe); float32, and bf16
autocast where the CPU has native bf16. Compiling takes about a minute per precision before the first round.

    python scripts/transformer_step_time.py --json transformer_step_time.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from motioncache.demo_train import TrainConfig
from motioncache.demo_train_transformer import (ENGINE_TEXT_LEN, PADDED_TEXT_LEN, _tokenize, build_text_model,
                                               compiled_forward, cpu_has_bf16, diffusion_forcing_loss, encode_text,
                                               sample_sigmas)


def diffusers_loss(cfg, transformer, text_encoder, x0, ids, mask, g):
    """diffusion_forcing_loss's computation through diffusers' own forward (block-causal mask, 512 text states)."""
    sigma = sample_sigmas(cfg, x0.shape[0], x0.shape[2], g)
    noise = torch.randn(x0.shape, generator=g)
    s = sigma[:, None, :, None, None]
    pred = transformer((1 - s) * x0 + s * noise, timestep=sigma * 1000, enable_diffusion_forcing=True,
                       encoder_hidden_states=encode_text(text_encoder, ids, mask), return_dict=False)[0]
    return ((pred.float() - (noise - x0)) ** 2).mean()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    torch.manual_seed(0)
    tokenizer, text_encoder, transformer = build_text_model(cfg)
    compiled = compiled_forward()
    x0 = torch.randn(cfg.batch, 16, 2 * cfg.block, cfg.height // 8, cfg.width // 8)  # a short-clip batch
    ids, mask = _tokenize(tokenizer, ["a red circle moves left over a grey background"] * cfg.batch)
    paths = {
        "diffusers, 512 text keys": lambda g: diffusers_loss(cfg, transformer, text_encoder, x0, ids, mask, g),
        "training_forward, 512 text keys": lambda g: diffusion_forcing_loss(
            cfg, transformer, text_encoder, x0, ids, mask, g, text_len=ENGINE_TEXT_LEN),
        "training_forward, cut": lambda g: diffusion_forcing_loss(
            cfg, transformer, text_encoder, x0, ids, mask, g, text_len=PADDED_TEXT_LEN),
        "compiled, cut (recipe)": lambda g: diffusion_forcing_loss(
            cfg, transformer, text_encoder, x0, ids, mask, g, text_len=PADDED_TEXT_LEN, forward=compiled),
    }
    variants = [(path, bf16) for path in paths for bf16 in (False, True) if not bf16 or cpu_has_bf16()]
    params = list(transformer.parameters()) + list(text_encoder.parameters())
    times = {v: [] for v in variants}
    for _ in range(args.repeats + 1):  # interleaved; the first round warms up
        for path, bf16 in variants:
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = paths[path](torch.Generator().manual_seed(0))
            loss.backward()
            for q in params:
                q.grad = None
            times[(path, bf16)].append(time.perf_counter() - t)
    base = min(times[(next(iter(paths)), False)][1:])
    rows = []
    print(f"{'forward':>32} {'precision':>9} {'s/step':>7} {'speedup':>7}")
    for (path, bf16), ts in times.items():
        best = min(ts[1:])
        rows.append({"forward": path, "bf16": bf16, "seconds": best, "speedup": base / best})
        print(f"{path:>32} {'bf16' if bf16 else 'float32':>9} {best:7.3f} {base / best:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": cfg.batch, "repeats": args.repeats, "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
