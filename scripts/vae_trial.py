"""Train the demo VAE alone (phase 1 of `motioncache train-demo`) with overridden options and score it.

For recipe experiments on a CPU or a GPU: prints the loss curve and, at the given steps, the evaluator's
scores on held-out ground truth passed through the VAE (the ceiling for generated videos), then writes JSON.

    python scripts/vae_trial.py --set vae_lr=1e-3 --set vae_steps=4000 --eval-at 2400 --minutes 30 --json out.json
    python scripts/vae_trial.py --checkpoint OUT/.train/vae.pt --eval-n 50   # score a train-demo checkpoint
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from motioncache.demo_data import heldout_captions, render
from motioncache.demo_train import TrainConfig, config_overrides
from motioncache.demo_train_vae import build_vae, vae_train_step
from motioncache.evaluate import evaluate, reconstruct


@torch.no_grad()
def score(vae, n: int, frames: int, cfg: TrainConfig) -> dict:
    videos, l1 = [], []
    for _, scene in heldout_captions(n):
        truth = render(scene, frames, cfg.height, cfg.width)
        rec = reconstruct(vae, scene, frames, cfg.height, cfg.width)
        l1.append(np.abs(rec.astype(np.float32) - truth).mean(axis=(1, 2, 3)))
        videos.append((rec, scene))
    result = evaluate(videos)
    per_frame = np.mean(l1, axis=0)  # drift shows as error growing with the frame index
    return {k: result[k] for k in ("color_acc", "shape_acc", "direction_acc", "flicker")} | {
        "l1_255": float(per_frame.mean()), "l1_255_per_frame": [round(float(v), 1) for v in per_frame]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE", help="a TrainConfig option")
    p.add_argument("--checkpoint", help="score this train-demo VAE checkpoint (.train/vae.pt or decoder.pt) "
                                        "instead of training")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--minutes", type=float, default=1e9, help="stop (and score) after this much training time")
    p.add_argument("--eval-at", default="", help="comma-separated steps to score at (the last step always is)")
    p.add_argument("--eval-n", type=int, default=20, help="held-out scenes per score")
    p.add_argument("--eval-frames", type=int, default=33)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        cfg = TrainConfig(**config_overrides(args.set))
    except ValueError as e:
        raise SystemExit(str(e)) from None
    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg).to(args.device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    eval_at = {int(s) for s in args.eval_at.split(",") if s}
    report = {"options": args.set, "device": args.device, "curve": [], "scores": []}
    t0, avg, step = time.monotonic(), None, 0
    if args.checkpoint:
        saved = torch.load(args.checkpoint, map_location=args.device, weights_only=True)
        vae.load_state_dict(saved["model"])
        report["checkpoint"], step = args.checkpoint, saved["step"]
    while not args.checkpoint and step < cfg.vae_steps and time.monotonic() - t0 < args.minutes * 60:
        l1, _, lr = vae_train_step(cfg, vae, opt, step, args.device)
        step += 1
        avg = l1.item() if avg is None else 0.95 * avg + 0.05 * l1.item()
        if step % 100 == 0:
            report["curve"].append({"step": step, "loss": avg, "minutes": (time.monotonic() - t0) / 60})
            print(f"step {step} loss {avg:.4f} lr {lr:.1e} {(time.monotonic() - t0) / 60:.1f} min", flush=True)
        if step in eval_at:
            report["scores"].append({"step": step, **score(vae.eval(), args.eval_n, args.eval_frames, cfg)})
            print("score", report["scores"][-1], flush=True)
            vae.train()
    report["scores"].append({"step": step, **score(vae.eval(), args.eval_n, args.eval_frames, cfg)})
    report["train_minutes"] = (time.monotonic() - t0) / 60
    print("final", report["scores"][-1], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
