"""Demo trainer, phase 1 and 3: the AutoencoderKLWan (crops around the main object) and its decoder fine-tune."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .demo_data import make_example
from .fast_conv import make_frame_local, use_fast_conv3d
from .train_support import Clock, load_checkpoint, progress_line, save_checkpoint, to_tensor

if TYPE_CHECKING:
    from .demo_train import TrainConfig


def build_vae(cfg: TrainConfig):
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan(base_dim=cfg.vae_base_dim, z_dim=16, dim_mult=list(cfg.vae_dim_mult), num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    return use_fast_conv3d(make_frame_local(vae) if cfg.vae_frame_local else vae)


# -- phase 1: VAE -----------------------------------------------------------------------------

def _decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """vae.decode without the final clamp (it would zero the gradient of overshooting pixels)."""
    x = vae.post_quant_conv(z)
    cache = [None] * vae._cached_conv_counts["decoder"]
    return torch.cat([vae.decoder(x[:, :, i:i + 1], feat_cache=cache, feat_idx=[0], first_chunk=i == 0)
                      for i in range(x.shape[2])], dim=2)


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, object_weight: float) -> tuple[torch.Tensor, float]:
    """Per clip: mean L1 over background pixels + object_weight x mean L1 over object pixels.

    Normalizing each part by its own pixel count matters: with a plain (or fixed-weight) L1, once objects
    cover less than ~1/(1 + weight) of the pixels, the L1-optimal output where the model cannot yet place
    the object is the background (the median), and training stalls there; on whole frames (objects ~4%)
    the VAE learned to drop objects. Returns (loss, object L1 for logging)."""
    dominant = x.flatten(2).median(dim=2).values[:, :, None, None, None]  # the clip's background colour
    obj = ((x - dominant).norm(dim=1, keepdim=True) > 0.45).float()  # objects differ by >= 120/255 RGB
    err = (rec - x).abs().mean(dim=1, keepdim=True)
    dims = (1, 2, 3, 4)
    bg_l1 = (err * (1 - obj)).sum(dims) / (1 - obj).sum(dims).clamp(min=1)
    obj_l1 = (err * obj).sum(dims) / obj.sum(dims).clamp(min=1)
    has_obj = obj.sum(dims) > 0
    loss = (bg_l1 + object_weight * obj_l1 * has_obj).mean()
    return loss, (obj_l1[has_obj].mean().item() if has_obj.any() else float("nan"))


def _vae_batch(cfg: TrainConfig, step: int) -> torch.Tensor:
    """Crops near the main object (jittered), growing: single frames, then clips with every
    vae_image_every-th step single frames."""
    scale = 2 ** sum(step >= s for s in cfg.vae_crop_steps)
    clip_step = step >= cfg.vae_image_steps and step % cfg.vae_image_every != 0  # clips slowed early learning
    frames, batch = (cfg.vae_frames, cfg.vae_clip_batch) if clip_step else (1, cfg.vae_batch)
    return _crops(cfg, np.random.default_rng([cfg.seed, 1, step]), frames, max(1, batch // scale),
                  cfg.vae_crop * scale)


def _crops(cfg: TrainConfig, rng, frames: int, batch: int, crop: int) -> torch.Tensor:
    crop = min(crop, cfg.height, cfg.width)
    clips = []
    for _ in range(batch):
        video, _, scene = make_example(int(rng.integers(2**31)), cfg.clip_frames, cfg.height, cfg.width, paths=cfg.paths)
        t = int(rng.integers(0, cfg.clip_frames - frames + 1))
        o, u = scene.main, (t + frames / 2) / (cfg.clip_frames - 1)
        cx = (o.start[0] + u * o.shift[0]) * cfg.width + rng.uniform(-crop / 3, crop / 3)
        cy = (o.start[1] + u * o.shift[1]) * cfg.height + rng.uniform(-crop / 3, crop / 3)
        x = int(np.clip(cx - crop / 2, 0, cfg.width - crop))
        y = int(np.clip(cy - crop / 2, 0, cfg.height - crop))
        clips.append(video[t:t + frames, y:y + crop, x:x + crop])
    return to_tensor(np.stack(clips))


def train_decoder(cfg: TrainConfig, vae, state: Path, log) -> None:
    """Fine-tune the decoder (encoder frozen, so encoded latents stay valid) on clips as long as the training
    clips: trained on 9 frames only, its causal feature cache drifts after a few latent frames."""
    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.dec_lr, weight_decay=0.0)
    ckpt, step = load_checkpoint(state / "decoder.pt"), 0
    if ckpt:
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
    clock, t0, start, avg = Clock(cfg.checkpoint_minutes), time.monotonic(), step, None
    total = cfg.dec_steps + cfg.dec_whole_steps
    vae.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    latent_std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    while step < total:
        rng = np.random.default_rng([cfg.seed, 2, step])
        if step < cfg.dec_steps:  # alternate long clips on small crops and shorter clips on large crops
            half = (cfg.clip_frames - 1) // 8 * 4 + 1
            frames, crop = (cfg.clip_frames, cfg.dec_crop) if step % 2 == 0 else (half, 2 * cfg.dec_crop)
            x = _crops(cfg, rng, frames, cfg.dec_batch, crop)
        else:  # then whole frames of whole training clips: what the engine decodes
            x = _crops(cfg, rng, cfg.clip_frames, 1, max(cfg.height, cfg.width))
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
            if step >= cfg.dec_steps and cfg.dec_noise > 0:  # the diffusion model's latents are not exact
                noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(step))
                z = z + cfg.dec_noise * latent_std * noise
        l1, _ = reconstruction_loss(_decode_unclamped(vae, z), x, cfg.vae_object_weight)
        for g in opt.param_groups:
            g["lr"] = cfg.dec_lr * min(1.0, (step + 1) / 20)
        opt.zero_grad(set_to_none=True)
        l1.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        avg = l1.item() if avg is None else 0.95 * avg + 0.05 * l1.item()
        if step % 25 == 0 or step == total:
            log(progress_line("decoder", step, total, start, t0, f"loss {avg:.4f}"))
        if clock.due() or step == total:
            save_checkpoint({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step}, state / "decoder.pt")
    vae.eval().requires_grad_(False)


def vae_train_step(cfg: TrainConfig, vae, opt, step: int, device: str = "cpu") -> tuple[torch.Tensor, float, float]:
    """One optimizer step of phase 1 -> (reconstruction loss, object L1, learning rate)."""
    x = _vae_batch(cfg, step).to(device)
    lr = cfg.vae_lr * min(1.0, (step + 1) / 50, 0.1 + 0.9 * (cfg.vae_steps - step) / (0.2 * cfg.vae_steps))
    for g in opt.param_groups:
        g["lr"] = lr
    post = vae.encode(x).latent_dist
    # Decode the mean (plus optional small noise): sampling with the posterior's initial std (~1) drowns the
    # signal and the decoder collapses to the average colour within a short budget.
    rec = _decode_unclamped(vae, post.mean + cfg.vae_noise * torch.randn_like(post.mean))
    l1, obj_l1 = reconstruction_loss(rec, x, cfg.vae_object_weight)
    kl = 0.5 * (post.mean**2).mean()  # only keeps the latent scale in check
    opt.zero_grad(set_to_none=True)
    (l1 + cfg.vae_kl * kl).backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
    opt.step()
    return l1, obj_l1, lr


def train_vae(cfg: TrainConfig, state: Path, log) -> "torch.nn.Module":
    vae = build_vae(cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    ckpt, step = load_checkpoint(state / "vae.pt"), 0
    if ckpt:
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        log(f"vae: resumed at step {step}")
    vae.train()
    clock, t0, avg = Clock(cfg.checkpoint_minutes), time.monotonic(), None
    start = step
    while step < cfg.vae_steps:
        l1, obj_l1, lr = vae_train_step(cfg, vae, opt, step)
        step += 1
        if obj_l1 != obj_l1:  # nan: no object in this batch
            obj_l1 = avg[1] if avg else 0.0
        avg = (l1.item(), obj_l1) if avg is None else (0.95 * avg[0] + 0.05 * l1.item(), 0.95 * avg[1] + 0.05 * obj_l1)
        if step % 50 == 0 or step == cfg.vae_steps:
            log(progress_line("vae", step, cfg.vae_steps, start, t0,
                              f"loss {avg[0]:.4f} object l1 {avg[1]:.4f} lr {lr:.1e}"))
        if clock.due() or step == cfg.vae_steps:
            save_checkpoint({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step}, state / "vae.pt")
    return vae.eval().requires_grad_(False)
