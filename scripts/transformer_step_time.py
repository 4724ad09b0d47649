"""Seconds per demo-transformer training step: cross-attention over all 512 (zero-padded) text states or the
cut padding (PaddedTextAttention), float32 or bf16 autocast; side by side in one process, same inputs.

    python scripts/transformer_step_time.py --json transformer_step_time.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from motioncache.demo_train import TrainConfig
from motioncache.demo_train_transformer import (ENGINE_TEXT_LEN, _tokenize, build_text_model, cpu_has_bf16,
                                               diffusion_forcing_loss, use_padded_text_attention)


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
    padded = copy.deepcopy(transformer)
    padded_len = use_padded_text_attention(padded)
    x0 = torch.randn(cfg.batch, 16, 2 * cfg.block, cfg.height // 8, cfg.width // 8)  # a short-clip batch
    ids, mask = _tokenize(tokenizer, ["a red circle moves left over a grey background"] * cfg.batch)
    variants = [(text, bf16) for text in ("all 512", "cut") for bf16 in (False, True) if not bf16 or cpu_has_bf16()]
    times = {v: [] for v in variants}
    for _ in range(args.repeats + 1):  # interleaved; the first round warms up
        for text, bf16 in variants:
            model, length = (transformer, ENGINE_TEXT_LEN) if text == "all 512" else (padded, padded_len)
            params = list(model.parameters()) + list(text_encoder.parameters())
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = diffusion_forcing_loss(cfg, model, text_encoder, x0, ids, mask, torch.Generator().manual_seed(0),
                                              text_len=length)
            loss.backward()
            for q in params:
                q.grad = None
            times[(text, bf16)].append(time.perf_counter() - t)
    base = min(times[("all 512", False)][1:])
    rows = []
    print(f"{'text keys':>10} {'precision':>9} {'s/step':>7} {'speedup':>7}")
    for (text, bf16), ts in times.items():
        best = min(ts[1:])
        rows.append({"text": text, "bf16": bf16, "seconds": best, "speedup": base / best})
        print(f"{text:>10} {'bf16' if bf16 else 'float32':>9} {best:7.3f} {base / best:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": cfg.batch, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
