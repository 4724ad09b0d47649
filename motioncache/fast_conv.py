"""Run the VAE fast on the CPU: its 3-D convolutions and its RMS norms.

- PyTorch picks oneDNN (mkldnn) for a CPU conv3d only when N*C*D*H of the input exceeds 20480; the causal
  VAE convolves a few frames of a batch-1 clip at a time, so nearly every call falls to the im2col path
  (`slow_conv3d`), about 10x slower here. `torch.mkldnn_convolution` computes the same result (to float
  rounding) and has a backward, so both inference and the demo trainer use it.
- A frame-local VAE (the demo's: every 3x3x3 convolution sees only the current frame, its two earlier
  temporal taps are zero; see `make_frame_local`) is computed as 2-D convolutions over all frames at once:
  the same result for a third of the work. The trainer marks those convolutions itself; a loaded VAE is
  recognized by its zero taps.
- The VAE's RMS norm calls `F.normalize` over the channel dimension of [B, C, T, H, W], whose strided
  reduction took half of decoding here; summing the squares over that dimension is the same value, often
  10x faster (`use_fast_rms_norm`).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


def _conv_forward(self, x, weight, bias):
    if getattr(self, "frame_local", False):  # causal padding put 2 earlier frames in front: drop them
        b, _, t = x.shape[:3]
        frames = x[:, :, 2:].transpose(1, 2).flatten(0, 1)
        y = F.conv2d(frames, weight[:, :, -1], bias, self.stride[1:], self.padding[1:], self.dilation[1:],
                     self.groups)
        return y.unflatten(0, (b, t - 2)).transpose(1, 2)
    if (x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and isinstance(self.padding, tuple)):
        return torch.mkldnn_convolution(x.contiguous(), weight, bias, self.padding, self.stride, self.dilation,
                                        self.groups)
    return F.conv3d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def _spatial_3x3x3(m: torch.nn.Module) -> bool:
    return (isinstance(m, torch.nn.Conv3d) and tuple(m.kernel_size) == (3, 3, 3) and tuple(m.stride) == (1, 1, 1)
            and tuple(m.padding) == (0, 0, 0) and tuple(m.dilation) == (1, 1, 1))


def make_frame_local(vae: torch.nn.Module) -> torch.nn.Module:
    """Zero the earlier temporal taps of every 3x3x3 convolution and compute it per frame from now on (its
    gradient reaches the current-frame tap only, so the others stay zero while training). Time is then mixed
    only by the temporal down/upsampling convolutions, whose reach is a latent frame or two: a VAE trained on
    short clips cannot drift on long ones."""
    for m in vae.modules():
        if _spatial_3x3x3(m):
            with torch.no_grad():
                m.weight[:, :, :-1] = 0
            m.frame_local = True
    return vae


def use_fast_conv3d(module: torch.nn.Module) -> torch.nn.Module:
    """Patch every Conv3d inside `module` (in place; returns it); 3x3x3 convolutions whose earlier temporal
    taps are all zero are marked frame-local."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv3d):
            m._conv_forward = types.MethodType(_conv_forward, m)
            if _spatial_3x3x3(m) and not m.weight[:, :, :-1].any():
                m.frame_local = True
    return module


def _rms_norm_forward(self, x):
    """WanRMS_norm: x / max(||x||_channels, 1e-12) * sqrt(C) * gamma + bias, in float32 for half types."""
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    dim = 1 if self.channel_first else -1
    normalized = (xf * torch.rsqrt((xf * xf).sum(dim, keepdim=True).clamp_min(1e-24))).to(x.dtype)
    return normalized * self.scale * self.gamma + self.bias


def use_fast_rms_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Patch every WanRMS_norm inside `module` (in place; returns it)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    for m in module.modules():
        if isinstance(m, WanRMS_norm):
            m.forward = types.MethodType(_rms_norm_forward, m)
    return module
