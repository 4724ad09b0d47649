"""Seconds per demo-VAE training step, ordinary vs frame-local convolutions, side by side in one process.

    python scripts/vae_step_time.py --json vae_step_time.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from motioncache.demo_train import TrainConfig
from motioncache.demo_train_vae import _crops, _decode_unclamped, build_vae, reconstruction_loss

SHAPES = ((1, 8, 128), (9, 1, 128), (17, 1, 128), (17, 4, 32))  # (frames, batch, crop) the recipe uses


def step_seconds(vae, opt, x, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        t = time.perf_counter()
        loss, _ = reconstruction_loss(_decode_unclamped(vae, vae.encode(x).latent_dist.mean), x, 2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return min(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for frames, batch, crop in SHAPES:
        row = {"frames": frames, "batch": batch, "crop": crop}
        for local in (False, True):
            cfg = dataclasses.replace(TrainConfig(), vae_frame_local=local)
            torch.manual_seed(0)
            vae = build_vae(cfg)
            x = _crops(cfg, np.random.default_rng(0), frames, batch, crop)
            row["frame_local_s" if local else "ordinary_s"] = step_seconds(
                vae, torch.optim.AdamW(vae.parameters(), 1e-4), x, args.repeats)
        row["speedup"] = row["ordinary_s"] / row["frame_local_s"]
        rows.append(row)
        print(f"{frames:3d} frames x {batch} at {crop:3d}px: ordinary {row['ordinary_s']:.2f} s, "
              f"frame-local {row['frame_local_s']:.2f} s, {row['speedup']:.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
