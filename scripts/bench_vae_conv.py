"""VAE decode time: diffusers as loaded vs motioncache.fast_conv's conv3d (oneDNN) vs that plus its RMS norm,
same latents, one process.

    .venv/bin/python scripts/bench_vae_conv.py --model models/demo --latent-frames 25 --threads 2 --json out.json
"""

import argparse
import copy
import json
import time

import torch
from diffusers import AutoencoderKLWan

from motioncache.fast_conv import use_fast_conv3d, use_fast_rms_norm
from motioncache.vae_stream import StreamingDecoder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/demo")
    p.add_argument("--latent-frames", type=int, default=25, help="25 latent frames = 97 video frames")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    plain = AutoencoderKLWan.from_pretrained(f"{args.model}/vae").eval()  # diffusers' loader: no patch
    variants = {"pytorch": plain, "onednn": use_fast_conv3d(copy.deepcopy(plain)),
                "onednn+norm": use_fast_rms_norm(use_fast_conv3d(copy.deepcopy(plain)))}
    scale = 2 ** sum(plain.config.temperal_downsample)
    z = torch.randn(1, plain.config.z_dim, args.latent_frames, 16, 16, generator=torch.Generator().manual_seed(0))
    times, frames = {k: [] for k in variants}, {}
    for _ in range(args.repeats):  # interleaved, so all see the same machine load
        for name, vae in variants.items():
            t = time.perf_counter()
            frames[name] = StreamingDecoder(vae).decode(z)
            times[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    report = {"model": args.model, "latent_frames": args.latent_frames, "video_frames": 1 + scale * (args.latent_frames - 1),
              "threads": args.threads, "seconds": times, "best_s": best,
              "speedup": {k: best["pytorch"] / v for k, v in best.items()},
              "max_abs_diff": {k: float(abs(frames["pytorch"] - f).max()) for k, f in frames.items()}}
    print(f"{'path':<12} {'best s':>8} {'speedup':>8} {'max |diff|':>11}  ({report['video_frames']} frames)")
    for k in variants:
        print(f"{k:<12} {best[k]:8.2f} {report['speedup'][k]:7.2f}x {report['max_abs_diff'][k]:11.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
