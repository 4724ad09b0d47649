"""Does a per-caption negative prompt make a demo model use the caption's motion word? (docs/demo.md)

CFG pushes the prediction from the negative prompt's towards the caption's. With the negative prompt being the
same caption with the motion changed ("stays still", or the opposite direction), the push is the motion word's
effect alone, times the guidance scale. Scores the first N held-out captions (one --seed) with each of --kinds:
the usual empty negative prompt, `still`, `opposite` (captions whose main object stays still keep the empty one),
`shape` (the main object's shape word swapped: a square or triangle against a circle, the shape the model rounds
them to, a circle against a square) and `shape+opposite` (both).

    .venv/bin/python scripts/negative_prompt_probe.py --model /work/demo_v13 --paths large --n 20 --json out.json
"""
from __future__ import annotations

import argparse
import json

from motioncache.cli import load_engine
from motioncache.demo_data import OPPOSITE, heldout_captions
from motioncache.evaluate import _generate, evaluate

KINDS = ("empty", "still", "opposite", "shape", "shape+opposite")
SHAPE_CONTRAST = {"circle": "square", "square": "circle", "triangle": "circle"}


def negative_prompt(caption: str, kind: str) -> str:
    words = caption.split()  # "a red circle moves left over ..." / "a red circle stays still over ..."
    moving = words[3] == "moves"
    if kind == "empty" or (kind in ("still", "opposite") and not moving):
        return ""
    if kind == "still":
        words[3:5] = ["stays", "still"]
    if "shape" in kind:
        words[2] = SHAPE_CONTRAST[words[2]]
    if "opposite" in kind and moving:
        words[4] = OPPOSITE[words[4]]
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--paths", default="long", help="scene style of the held-out captions (as evaluate --paths)")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--kinds", default=",".join(KINDS[:3]), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        ap.error(f"unknown --kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    engine = load_engine(args.model, "cpu", "float32")
    pairs = heldout_captions(args.n, paths=args.paths)
    out = {}
    for kind in kinds:
        videos = [(_generate(engine, caption, args.seed, {"negative_prompt": negative_prompt(caption, kind),
                                                   "guidance_scale": args.guidance_scale}), scene)
                  for caption, scene in pairs]
        result = evaluate(videos)
        out[kind] = {k: result[k] for k in ("color_acc", "shape_acc", "direction_acc", "flicker")}
        out[kind]["direction_confusion"] = result["confusion"]["direction"]
        print(f"{kind:8s} colour {result['color_acc']:.0%} shape {result['shape_acc']:.0%} "
              f"direction {result['direction_acc']:.0%} flicker {result['flicker']:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "paths": args.paths, "n": args.n,
                       "guidance_scale": args.guidance_scale, "seed": args.seed, "results": out}, f, indent=2)


if __name__ == "__main__":
    main()
