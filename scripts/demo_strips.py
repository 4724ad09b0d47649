"""Regenerate the sample strips docs/demo.md shows: the first three held-out captions (33 frames, the model's
defaults) and one 97-frame video, seed 0, eight evenly spaced frames each.

    python scripts/demo_strips.py [--model models/demo] [--out docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from motioncache.demo_data import heldout_captions
from motioncache.demo_train import DEFAULT_OUT
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest

LONG_PROMPT = "a red circle moves right over a grey background"


def save_strip(frames: np.ndarray, path: Path, n: int = 8) -> None:
    """n evenly spaced frames of a float [F, H, W, 3] video side by side, as a PNG."""
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    strip = np.concatenate([frames[i] for i in idx], axis=1)
    Image.fromarray((np.clip(strip, 0, 1) * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_OUT))
    parser.add_argument("--out", default="docs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = Engine(load_components(args.model))
    jobs = [(text, "demo_", {}) for text, _ in heldout_captions(3)] + [(LONG_PROMPT, "demo_97frames_", {"num_frames": 97})]
    for prompt, prefix, request in jobs:
        chunks = engine.generate(GenerationRequest(prompt=prompt, seed=0, **request))
        path = Path(args.out) / f"{prefix}{prompt.replace(' ', '_')}.png"
        save_strip(np.concatenate([c.frames for c in chunks]), path)
        print(path)


if __name__ == "__main__":
    main()
