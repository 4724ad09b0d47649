"""Does the caption's motion word decide where a demo model puts the object and where it goes?

The training clips tie the two together: a path spans most of the frame and stays in view, so an object that
moves right starts in the left third. This probe generates one caption per motion word (same colour, shape and
background; model defaults; seeds 0..n-1), finds the object by its colour, and reports the mean centre of the
first and last four frames, next to the same figures for the training scenes of that motion. A model that
uses the word starts its objects where the training scenes do and moves them the same way.

    .venv/bin/python scripts/placement_probe.py --model models/demo --n 8 --json placement.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from motioncache.demo_data import BACKGROUND_COLORS, OBJECT_COLORS, SHAPES, sample_scene
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest

WORDS = ("left", "right", "up", "down", "still")
COLOR_DISTANCE = 90.0  # 0-255 RGB: the object's colour, not the background's
MIN_PIXELS = 20


def caption(color: str, shape: str, word: str, background: str) -> str:
    verb = "stays still" if word == "still" else f"moves {word}"
    return f"a {color} {shape} {verb} over a {background} background"


def object_centres(frames: np.ndarray, rgb) -> np.ndarray:
    """[F, 2] centre (x, y) as fractions of the frame of the pixels near rgb; NaN where too few."""
    near = np.linalg.norm(frames * 255.0 - np.asarray(rgb, np.float32), axis=-1) < COLOR_DISTANCE
    out = np.full((len(frames), 2), np.nan)
    for i, mask in enumerate(near):
        ys, xs = np.nonzero(mask)
        if len(xs) >= MIN_PIXELS:
            out[i] = xs.mean() / mask.shape[1], ys.mean() / mask.shape[0]
    return out


def start_and_move(centres: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    first, last = centres[:k], centres[-k:]
    if np.isnan(first).all() or np.isnan(last).all():
        return np.full(2, np.nan), np.full(2, np.nan)
    start = np.nanmean(first, axis=0)
    return start, np.nanmean(last, axis=0) - start


def training_reference(word: str, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean start centre and displacement over the whole clip of training scenes whose main object has this
    motion (the path's start and shift; the first/last four frames of a 33-frame clip sit ~5% inside them)."""
    rng = np.random.default_rng(seed)
    starts, shifts = [], []
    while len(starts) < n:
        main = sample_scene(rng, "train").main
        if main.motion == word:
            starts.append(main.start)
            shifts.append(main.shift)
    return np.mean(starts, axis=0), np.mean(shifts, axis=0)


def _fmt(v) -> str:
    return "   nan" if v is None else f"{v:+.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--n", type=int, default=8, help="seeds per motion word")
    ap.add_argument("--color", default="red", choices=sorted(OBJECT_COLORS))
    ap.add_argument("--shape", default="circle", choices=SHAPES)
    ap.add_argument("--background", default="grey", choices=sorted(BACKGROUND_COLORS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    engine = Engine(load_components(args.model))
    rgb = OBJECT_COLORS[args.color]

    rows = []
    print(f"{'word':6s} {'start x':>8s} {'start y':>8s} {'dx':>6s} {'dy':>6s}   training: {'x':>5s} {'y':>5s} "
          f"{'dx':>6s} {'dy':>6s}  found")
    for word in WORDS:
        text = caption(args.color, args.shape, word, args.background)
        starts, moves = [], []
        for seed in range(args.n):
            chunks = engine.generate(GenerationRequest(prompt=text, seed=seed))
            start, move = start_and_move(object_centres(np.concatenate([c.frames for c in chunks]), rgb))
            if not np.isnan(start).any():
                starts.append(start)
                moves.append(move)
        gen_start = np.mean(starts, axis=0).tolist() if starts else [None, None]
        gen_move = np.mean(moves, axis=0).tolist() if moves else [None, None]
        ref_start, ref_move = training_reference(word)
        row = {"word": word, "caption": text, "found": len(starts), "seeds": args.n,
               "start": gen_start, "displacement": gen_move,
               "training_start": ref_start.tolist(), "training_displacement": ref_move.tolist()}
        rows.append(row)
        print(f"{word:6s} {_fmt(gen_start[0]):>8s} {_fmt(gen_start[1]):>8s} {_fmt(gen_move[0]):>6s} "
              f"{_fmt(gen_move[1]):>6s}   training: {ref_start[0]:5.2f} {ref_start[1]:5.2f} "
              f"{ref_move[0]:+6.2f} {ref_move[1]:+6.2f}  {len(starts)}/{args.n}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
