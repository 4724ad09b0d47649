"""TeaCache's distance: the relative L1 change of the timestep modulation, rescaled by a fitted polynomial.

The polynomial (fitted by TeaCache for Wan2.1-T2V-1.3B, the architecture of SkyReels-V2-DF-1.3B) falls
from 0.14 at x=0 to a minimum near x=0.03, is negative between about 0.17 and 0.33 and then climbs steeply.
`monotone=True` (our default) uses a non-negative, non-decreasing version: a linear ramp from 0 to the
polynomial's minimum, then its running maximum, so a bigger change never counts as less.
"""

from __future__ import annotations

import torch

RESCALE_MODES = ("wan_1_3b", "identity")
WAN_1_3B = (2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01)
_GRID = torch.linspace(0.0, 1.0, 4097, dtype=torch.float64)


def _poly(x: torch.Tensor, coeffs) -> torch.Tensor:
    out = torch.zeros_like(x)
    for c in coeffs:
        out = out * x + c
    return out




def _envelope(coeffs) -> torch.Tensor:
    values = _poly(_GRID, coeffs)
    low = int(torch.argmin(values[: len(_GRID) // 10]))  # the dip at small changes (x < 0.1)
    ramp = values[low].clamp(min=0.0) * _GRID[:low] / _GRID[low]
    rest = torch.cummax(values[low:].clamp(min=0.0), dim=0).values
    return torch.cat([ramp, rest])


_ENVELOPE = _envelope(WAN_1_3B)


def rescale(x: torch.Tensor, mode: str = "wan_1_3b", monotone: bool = True) -> torch.Tensor:
    """Map raw relative L1 changes (any shape) to accumulated distance."""
    x = x.double()
    if mode == "identity":
        return x
    if not monotone:
        return _poly(x, WAN_1_3B)
    idx = (x.clamp(0.0, 1.0) * (len(_GRID) - 1)).round().long()
    inside = _ENVELOPE.to(x.device)[idx]
    return torch.where(x > 1.0, torch.maximum(_poly(x, WAN_1_3B), _ENVELOPE[-1].to(x.device)), inside)


def relative_l1(now: torch.Tensor, before: torch.Tensor, dim=None) -> torch.Tensor:
    """|now - before|_1 / |before|_1 (over `dim`, or everything)."""
    now, before = now.double(), before.double()
    if dim is None:
        return (now - before).abs().mean() / before.abs().mean().clamp(min=1e-12)
    return (now - before).abs().mean(dim) / before.abs().mean(dim).clamp(min=1e-12)
