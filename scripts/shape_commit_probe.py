"""At which noise level does a demo model decide the object's shape? (docs/demo.md)

For each of the first N held-out captions, the ground truth's first causal block (17 frames = 5 latent frames) is
encoded by the model's VAE, noised to a start level S and denoised from there with the caption (the Euler sampler
of scripts/frame_lag_probe.py, block-synchronous, only the schedule's levels below S). The evaluator then reads
colour, shape and direction of each result: where the scores fall from the VAE's ceiling (S = 0) towards free
generation (S = 1), the model stops keeping what the noisy input shows and decides for itself. `--caption` asks
whether the caption's shape word is what it decides with: `empty` denoises without a caption, `other-shape` with
the main object's shape word replaced by another (the scores still compare with the ground truth's shape).

    .venv/bin/python scripts/shape_commit_probe.py --model models/demo --n 20 --levels 0,0.3,0.5,0.7,0.85,1
"""
from __future__ import annotations

import argparse

import numpy as np

from frame_lag_probe import FRAMES, sample, scored, write_report
from motioncache.cli import load_engine
from motioncache.demo_data import PATH_STYLES, SHAPES, SHIPPED_PATHS, heldout_captions, render
from motioncache.evaluate import reconstruct
from motioncache.vae_stream import encode_frames

CAPTIONS = ("true", "empty", "other-shape")
OTHER_SHAPE = dict(zip(SHAPES, SHAPES[1:] + SHAPES[:1]))


def probe_caption(text: str, scene, kind: str) -> str:
    """The caption the block is denoised with: as written, empty, or with the main object's shape word (the first
    shape word: the main object is described first) replaced."""
    if kind == "empty":
        return ""
    if kind == "other-shape":
        return text.replace(scene.main.shape, OTHER_SHAPE[scene.main.shape], 1)
    return text


def from_level(c, text: str, scene, level: float, args) -> np.ndarray:
    """The scene's first block, noised to `level` and denoised with the caption; level 0 is the VAE alone."""
    h, w = (c.defaults.get(k, 128) for k in ("height", "width"))
    frames = 4 * (FRAMES - 1) + 1
    if level == 0:
        return reconstruct(c.vae, scene, frames, h, w)
    x0 = encode_frames(c.vae, render(scene, frames, h, w))
    return sample(c, probe_caption(text, scene, args.caption), 0, args.steps, args.shift, args.guidance_scale, args.seed,
                  init=x0, start_level=level, churn=args.churn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--paths", choices=list(PATH_STYLES), default=SHIPPED_PATHS,
                    help="scene style of the held-out captions (as evaluate --paths)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--levels", default="0,0.3,0.5,0.7,0.85,1", help="start noise levels in [0, 1]")
    ap.add_argument("--steps", type=int, default=30, help="steps of the whole schedule (from level 1)")
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--caption", choices=CAPTIONS, default="true", help="what the block is denoised with (above)")
    ap.add_argument("--churn", type=float, default=0.0,
                    help="stochastic steps: share of fresh noise in each step's noise (frame_lag_probe.sample)")
    ap.add_argument("--seed", type=int, default=0, help="of the noise")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    try:
        levels = [float(x) for x in args.levels.split(",")]
    except ValueError:
        ap.error(f"--levels {args.levels}: give comma-separated numbers, e.g. 0,0.5,1")
    if any(not 0 <= x <= 1 for x in levels):
        ap.error(f"--levels {args.levels}: every level must lie in [0, 1]")
    import torch

    torch.set_num_threads(args.threads)
    c = load_engine(args.model, "cpu", "float32").c
    c.transformer.eval()
    pairs = heldout_captions(args.n, paths=args.paths)
    out = {}
    for level in levels:
        out[str(level)], line = scored([(from_level(c, text, scene, level, args), scene) for text, scene in pairs],
                                       "shape")
        print(f"start level {level}: {line}", flush=True)
    write_report(args.json, args, out)


if __name__ == "__main__":
    main()
