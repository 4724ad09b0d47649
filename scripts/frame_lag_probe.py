"""Does settling frame 0 first let a demo model's motion word set the direction? (docs/demo.md)

Samples one causal block (5 latent frames = 17 frames) for each of the first N held-out captions with a plain
Euler flow-matching sampler over diffusers' forward, frame j trailing frame 0 by j * LAG steps (attention inside
the block stays full, as in training; LAG 0 is the usual block-synchronous schedule; LAG "first" denoises frame 0
completely, then frames 1-4 together), CFG with the empty prompt, and scores the videos with the evaluator.

    .venv/bin/python scripts/frame_lag_probe.py --model /work/ft16/model --paths large --n 20 --lags 0,3,6
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from motioncache.cli import load_engine
from motioncache.demo_data import heldout_captions
from motioncache.evaluate import evaluate
from motioncache.stochastic import stochastic_step
from motioncache.text import encode_prompts
from motioncache.vae_stream import StreamingDecoder

FRAMES = 5  # latent frames of one causal block
FIRST = -1  # the lag "first": frame 0 is denoised completely before frames 1-4 start (the word trials' case)
SCORES = ("color_acc", "shape_acc", "direction_acc", "flicker")


def scored(videos_with_scenes, confusion: str) -> tuple[dict, str]:
    """The evaluator's scores and one attribute's confusion (for the JSON), and a one-line summary (to print)."""
    r = evaluate(videos_with_scenes)
    line = (f"colour {r['color_acc']:.0%} shape {r['shape_acc']:.0%} direction {r['direction_acc']:.0%} "
            f"flicker {r['flicker']:.2f}")
    return {**{k: r[k] for k in SCORES}, f"{confusion}_confusion": r["confusion"][confusion]}, line


def write_report(path: str | None, args, results: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


def sample(c, caption: str, lag: int, steps: int, shift: float, guidance: float, seed: int,
           init: torch.Tensor | None = None, start_level: float = 1.0, churn: float = 0.0) -> np.ndarray:
    """`init` (normalized latents of one block) noised to `start_level` replaces pure noise; the schedule then
    runs only its levels below `start_level` (scripts/shape_commit_probe.py). `churn` > 0: stochastic steps
    (motioncache/stochastic.py) instead of Euler steps."""
    s = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    sigmas = (shift * s / (1 + (shift - 1) * s)).float()  # the flow-matching shift of the engine's scheduler
    if start_level < 1:
        sigmas = torch.cat([torch.tensor([start_level]), sigmas[sigmas < start_level]])
        steps = len(sigmas) - 1
    emb = encode_prompts(c.tokenizer, c.text_encoder, [caption, ""], 512, torch.float32)
    h, w = (c.defaults.get(k, 128) // c.vae_scale_spatial for k in ("height", "width"))
    shape = (1, c.transformer.config.in_channels, FRAMES, h, w)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    if init is not None:
        x = (1 - sigmas[0]) * init + sigmas[0] * x
    fps = {"fps": [1]} if c.transformer.config.inject_sample_info else {}  # the engine's flag for fps != 16

    def level(row: int) -> torch.Tensor:  # each frame's noise level on this row
        return sigmas[torch.tensor([min(max(row - start(j), 0), steps) for j in range(FRAMES)])]

    def start(frame: int) -> int:  # the row a frame starts denoising on
        if lag == FIRST:
            return 0 if frame == 0 else steps  # frame 0 all the way first, then frames 1-4 together
        return frame * lag  # frame j trails frame 0 by j * lag steps

    with torch.no_grad():
        for row in range(start(FRAMES - 1) + steps):
            now, nxt = level(row), level(row + 1)
            v = c.transformer(x.expand(2, -1, -1, -1, -1), timestep=(now * 1000)[None].expand(2, FRAMES),
                              encoder_hidden_states=emb, enable_diffusion_forcing=True, return_dict=False, **fps)[0]
            v = v[1:2] + guidance * (v[0:1] - v[1:2])
            n, s = now.view(1, 1, FRAMES, 1, 1), nxt.view(1, 1, FRAMES, 1, 1)
            # frames whose index did not move on this row stay put
            x = torch.where(s != n, stochastic_step(v, x, n, s, churn, g), x) if churn else x + (s - n) * v
    frames = StreamingDecoder(c.vae).decode(x)
    return (np.asarray(frames) * 255).round().clip(0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--paths", default="long", help="scene style of the held-out captions (as evaluate --paths)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--lags", default="0,3,6", help="steps frame j trails frame j-1; 'first': frame 0 completes first")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    c = load_engine(args.model, "cpu", "float32").c
    c.transformer.eval()
    pairs = heldout_captions(args.n, paths=args.paths)
    out = {}
    for lag in (FIRST if x == "first" else int(x) for x in args.lags.split(",")):
        videos = [(sample(c, text, lag, args.steps, args.shift, args.guidance_scale, 0), scene)
                  for text, scene in pairs]
        name = "first" if lag == FIRST else f"lag {lag}"
        out[name], line = scored(videos, "direction")
        print(f"{name}: {line}", flush=True)
    write_report(args.json, args, out)


if __name__ == "__main__":
    main()
