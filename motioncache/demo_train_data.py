"""Demo trainer, phase 2: encode the training clips with the trained VAE, with object masks on the latent grid."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .demo_data import caption, make_example, object_mask, render, word_scene
from .train_support import Clock, load_checkpoint, save_checkpoint, to_tensor
from .vae_stream import latent_to_pixel_frames

if TYPE_CHECKING:
    from .demo_train import TrainConfig


KINDS = ("short", "long", "word")  # ordinary clips, long ones, and the word clips (TrainConfig.word_share)
SEED_OFFSET = {"short": 0, "long": 500_000, "word": 800_000}  # clip i of a kind: seed * 1e6 + offset + i


# -- phase 2: latents of the training clips ---------------------------------------------------

def encode_data(cfg: TrainConfig, vae, state: Path, log) -> dict:
    """Latents (normalized) and captions of all training clips; statistics go into the VAE config."""
    path = state / "data.pt"
    data = load_checkpoint(path) or {}
    for kind in KINDS:
        for key in (kind, f"{kind}_captions", f"{kind}_mask"):
            data.setdefault(key, [])
    if data.get("done"):
        vae.register_to_config(latents_mean=data["mean"], latents_std=data["std"])
        return data
    counts = {"short": (cfg.clips, cfg.clip_frames), "long": (cfg.long_clips, cfg.long_frames),
              "word": (cfg.word_clips if cfg.word_clips_used else 0,  # word_blocks causal blocks of latent frames
                       latent_to_pixel_frames(0, cfg.block * cfg.word_blocks)[1])}
    clock, t0, n0 = Clock(cfg.checkpoint_minutes), time.monotonic(), sum(len(data[k]) for k in KINDS)
    total = sum(n for n, _ in counts.values())
    for kind, (count, frames) in counts.items():
        while len(data[kind]) < count:
            seed = cfg.seed * 1_000_000 + SEED_OFFSET[kind] + len(data[kind])
            if kind == "word":
                scene = word_scene(np.random.default_rng(seed), cfg.paths, cfg.word_path_share)
                video, text = render(scene, frames, cfg.height, cfg.width), caption(scene)
            else:
                video, text, scene = make_example(seed, frames, cfg.height, cfg.width, paths=cfg.paths)
            with torch.no_grad():
                data[kind].append(vae.encode(to_tensor(video)[None]).latent_dist.mode()[0].half())
            data[f"{kind}_captions"].append(text)
            data[f"{kind}_mask"].append(latent_grid(object_mask(scene, video)))
            done = sum(len(data[k]) for k in KINDS)
            if done % 20 == 0:
                rate = (time.monotonic() - t0) / (done - n0)
                log(f"data: encoded {done}/{total} clips, {rate:.2f}s/clip eta {rate * (total - done) / 60:.1f}min")
            if clock.due():
                save_checkpoint(data, path)
    # per-channel statistics over every latent frame of the ordinary clips; the pipeline normalizes as
    # (z - mean) / std
    allz = torch.cat([z.float().flatten(1) for z in data["short"] + data["long"]], dim=1)
    mean, std = allz.mean(1), allz.std(1)
    for kind in KINDS:
        data[kind] = [((z.float() - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)).half() for z in data[kind]]
    data.update(mean=mean.tolist(), std=std.tolist(), done=True)
    vae.register_to_config(latents_mean=data["mean"], latents_std=data["std"])
    save_checkpoint(data, path)
    log(f"data: {len(data['short'])} short + {len(data['long'])} long + {len(data['word'])} word clips; "
        f"latent std before normalization {std.mean():.3f}")
    return data


def latent_grid(mask: np.ndarray) -> torch.Tensor:
    """bool [F, H, W] pixel mask -> bool [1 + (F-1)/4, H/8, W/8]: a latent pixel is set when any pixel it
    encodes is (the VAE's first latent frame holds frame 0 alone, every later one 4 frames)."""
    m = torch.from_numpy(mask).float()
    groups = torch.cat([m[:1], m[1:].unflatten(0, (-1, 4)).amax(1)])
    return torch.nn.functional.max_pool2d(groups[None], 8)[0].bool()
