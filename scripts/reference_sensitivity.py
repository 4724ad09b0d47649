"""How far the uncached reference itself moves under small changes: the PSNR scale that cache policies are judged on.

Generates each prompt and seed with the bench's schedule (`motioncache bench`'s defaults: 177 frames in two windows,
ar_step 5, CFG 6; exact `chunked` path, float32, 50 steps) and compares,
by the bench's PSNR and SSIM, the same request with bf16 weights and activations (rounding only) and with fewer
sampling steps (the cheapest way to spend less compute). Prints a table and writes JSON.

    .venv/bin/python scripts/reference_sensitivity.py --model models/demo --seeds 2 --json sensitivity.json
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from motioncache.bench import run_once
from motioncache.cli import BENCH_SCHEDULE, load_engine
from motioncache.quality import psnr, ssim
from motioncache.request import GenerationRequest

PROMPTS = ["a red circle moves right over a grey background", "a blue square moves up over a white background"]


def generate(engine, prompt: str, seed: int, steps: int, frames: int) -> np.ndarray:
    schedule = {**BENCH_SCHEDULE, "num_frames": frames, "num_inference_steps": steps,
                "base_num_frames": min(frames, BENCH_SCHEDULE["base_num_frames"])}
    request = GenerationRequest(prompt=prompt, seed=seed, **schedule, cache={"policy": "chunked", "knobs": {}})
    return run_once(engine, request)["frames"]  # as the bench generates what it scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--reference-steps", type=int, default=50)
    ap.add_argument("--steps", default="40,25,10", help="the fewer-step variants")
    ap.add_argument("--num-frames", type=int, default=BENCH_SCHEDULE["num_frames"])
    ap.add_argument("--prompt", action="append", help=f"a prompt (repeatable; default: {' / '.join(PROMPTS)})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fp32, bf16 = load_engine(args.model, "cpu", "float32"), load_engine(args.model, "cpu", "bfloat16")
    n = args.reference_steps
    variants = {f"bf16, {n} steps": (bf16, n), **{f"{s} steps": (fp32, int(s)) for s in args.steps.split(",")}}
    runs = []
    for prompt in args.prompt or PROMPTS:
        for seed in range(args.seeds):
            reference = generate(fp32, prompt, seed, n, args.num_frames)
            for name, (engine, steps) in variants.items():
                frames = generate(engine, prompt, seed, steps, args.num_frames)
                runs.append({"variant": name, "prompt": prompt, "seed": seed, "psnr": psnr(frames, reference),
                             "ssim": ssim(frames, reference)})
                print(f"  {name:>15} seed {seed}: {runs[-1]['psnr']:.2f} dB  {prompt}", flush=True)
    results = []
    print(f"\n{f'against fp32, {n} steps':>24} {'PSNR median':>12} {'min':>7} {'max':>7} {'SSIM':>7}")
    for name in variants:
        mine = [r for r in runs if r["variant"] == name]
        values = [r["psnr"] for r in mine]
        results.append({"variant": name, "psnr": statistics.median(values), "psnr_min": min(values),
                        "psnr_max": max(values), "ssim": statistics.median(r["ssim"] for r in mine)})
        r = results[-1]
        print(f"{name:>24} {r['psnr']:>9.2f} dB {r['psnr_min']:>7.2f} {r['psnr_max']:>7.2f} {r['ssim']:>7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "runs": runs, "settings": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
