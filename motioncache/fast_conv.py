"""Route the VAE's 3-D convolutions to oneDNN on the CPU.

PyTorch picks oneDNN (mkldnn) for a CPU conv3d only when N*C*D*H of the input exceeds 20480; the causal
VAE convolves a few frames of a batch-1 clip at a time, so nearly every call falls to the im2col path
(`slow_conv3d`), about 10x slower here. `torch.mkldnn_convolution` computes the same result (to float
rounding) and has a backward, so both inference and the demo trainer use it.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


def _conv_forward(self, x, weight, bias):
    if (x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and isinstance(self.padding, tuple)):
        return torch.mkldnn_convolution(x.contiguous(), weight, bias, self.padding, self.stride, self.dilation,
                                        self.groups)
    return F.conv3d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def use_fast_conv3d(module: torch.nn.Module) -> torch.nn.Module:
    """Patch every Conv3d inside `module` (in place; returns it)."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv3d):
            m._conv_forward = types.MethodType(_conv_forward, m)
    return module
