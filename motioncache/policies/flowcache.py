"""`flowcache`: chunk-level caching. `chunked` plus a TeaCache decision per chunk and per CFG branch.

Each active block keeps its own accumulator of the rescaled modulation change (with `noise_power` p, each step's
change weighted by s^p, s the block's remaining share of its schedule); it is computed in full during warm-up, on
its last step, and whenever the accumulator passes the threshold; otherwise every token of the block reuses the
block's residual (and its keys/values stay as last computed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..knob_rules import knob, validate
from .rescale import RESCALE_MODES, relative_l1, rescale
from .token_runner import TokenRunner


@dataclass(frozen=True)
class FlowCache:
    name = "flowcache"
    needs_block_causal = True
    threshold: float = knob(0.1, low=0)
    warmup: int = knob(4, low=0)  # steps of each block computed in full
    rescale: str = knob("wan_1_3b", choices=RESCALE_MODES)
    monotone_rescale: bool = True
    force_last_step: bool = True
    extrapolation: float = knob(0.0, low=0)  # reused tokens extrapolate their last two residuals (token_runner.py)
    noise_power: float = knob(0.0, low=0)  # not in FlowCache: each step's distance times s^p (token_runner.py)

    def __post_init__(self):
        validate(self)

    def runner(self, ctx):
        return FlowCacheRunner(ctx, self)


class FlowCacheRunner(TokenRunner):
    def __init__(self, ctx, cfg: FlowCache):
        super().__init__(ctx, cfg.extrapolation)
        self.cfg = cfg
        self.acc: dict[tuple[int, int], float] = {}
        self.prev_mod: dict[tuple[int, int], torch.Tensor] = {}

    def choose(self, branch, block, row, proj, x_in):
        key, step = (branch, block), row.block_steps[block]
        mod = proj[self.ctx.blocks[block][0]]  # every frame of a block shares its timestep: [6, dim]
        prev = self.prev_mod.get(key)
        self.prev_mod[key] = mod
        n = x_in.shape[0]
        if step <= self.cfg.warmup or prev is None or (self.cfg.force_last_step and step == self.ctx.num_steps):
            self.acc[key] = 0.0
            return None
        d = float(rescale(relative_l1(mod, prev), self.cfg.rescale, self.cfg.monotone_rescale))
        self.acc[key] = self.acc.get(key, 0.0) + self.noise_weighted(d, row, block, self.cfg.noise_power)
        if self.acc[key] >= self.cfg.threshold:
            self.acc[key] = 0.0
            return None
        return torch.zeros(n, dtype=torch.bool, device=x_in.device)
