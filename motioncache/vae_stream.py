"""Incremental VAE decoding (chunk by chunk, exactly equal to whole-video decoding) and encoding of conditions.

AutoencoderKLWan's decoder is causal in time and decodes one latent frame at a time through a feature
cache; keeping that cache per request (never on the shared module) lets every chunk be decoded as soon
as its latents are final.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify


def _stats(vae, device):
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(device, torch.float32)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(device, torch.float32)
    return mean, inv_std


def latent_to_pixel_frames(start: int, end: int, temporal_scale: int = 4) -> tuple[int, int]:
    """Pixel frame range [a, b) decoded from latent frames [start, end): frame 0 gives 1, others 4 each."""

    def pixels(n):
        return 0 if n == 0 else 1 + temporal_scale * (n - 1)

    return pixels(start), pixels(end)


class StreamingDecoder:
    def __init__(self, vae):
        self.vae = vae
        self.device = next(vae.parameters()).device
        self.mean, self.inv_std = _stats(vae, self.device)
        self.feat_cache = [None] * vae._cached_conv_counts["decoder"]
        self.frames_in = 0

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalized latents [1, C, f, h, w] -> float32 frames [F, H, W, 3] in [0, 1]."""
        z = latents.to(self.device, torch.float32) / self.inv_std + self.mean
        x = self.vae.post_quant_conv(z)
        outs = []
        for i in range(x.shape[2]):
            outs.append(self.vae.decoder(x[:, :, i:i + 1], feat_cache=self.feat_cache, feat_idx=[0],
                                         first_chunk=self.frames_in == 0))
            self.frames_in += 1
        out = torch.cat(outs, dim=2)
        if self.vae.config.patch_size is not None:
            out = unpatchify(out, patch_size=self.vae.config.patch_size)
        out = (out.clamp(-1.0, 1.0) / 2 + 0.5).clamp(0, 1)
        return out[0].permute(1, 2, 3, 0).float().cpu().numpy()


@torch.no_grad()
def encode_frames(vae, frames: np.ndarray) -> torch.Tensor:
    """uint8 frames [F, H, W, 3] (F = 4k+1) -> normalized latents [1, C, k+1, h, w] (the posterior mode)."""
    device = next(vae.parameters()).device
    x = torch.from_numpy(np.array(frames)).to(device, torch.float32).permute(3, 0, 1, 2)[None] / 127.5 - 1.0
    z = vae.encode(x).latent_dist.mode()
    mean, inv_std = _stats(vae, device)
    return (z - mean) * inv_std
