"""Regenerate the sample strips docs/demo.md shows: the first three held-out captions (33 frames, the model's
defaults) and one 97-frame video, seed 0, eight evenly spaced frames each.

    python scripts/demo_strips.py [--model models/demo] [--out docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from motioncache.demo_train import DEFAULT_OUT, preview, save_strip
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest

LONG_PROMPT = "a red circle moves right over a grey background"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_OUT))
    parser.add_argument("--out", default="docs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for path in preview(args.model, args.out, n=3):
        print(path)
    chunks = Engine(load_components(args.model)).generate(GenerationRequest(prompt=LONG_PROMPT, seed=0, num_frames=97))
    path = Path(args.out) / f"demo_97frames_{LONG_PROMPT.replace(' ', '_')}.png"
    save_strip(np.concatenate([c.frames for c in chunks]), path)
    print(path)


if __name__ == "__main__":
    main()
