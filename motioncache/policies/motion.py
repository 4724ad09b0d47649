"""`motioncache`: token-level, motion-aware caching (the method of DESIGN.md).

Per active block and CFG branch: warm-up steps run in full; after that a per-token accumulator grows by
d * w each step, d the rescaled relative L1 change of the block's timestep modulation (or, per token,
of its modulated input), w a per-token weight: 1 during phase 1 (the first `phase1_updates` updating
steps after warm-up), then a motion weight from inter-frame differences of the block's hidden state,
rescaled per frame (`motion_source` denoised: from the inter-frame differences of the block's denoised
estimate x0 instead, which the per-frame noise does not swamp); with `noise_power` p each step's d is weighted by
s^p, s the block's remaining share of its schedule. Tokens whose accumulator passes the threshold are recomputed;
temporal voting makes a spatial position update in all frames of the block or in none; if fewer than
`min_update_ratio` of the tokens would update, the step reuses the residual for all of them. A block's last step
always runs in full. With `shared_choice` the conditional branch's choice holds for the unconditional one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..knob_rules import knob, validate
from .rescale import RESCALE_MODES, relative_l1, rescale
from .token_runner import TokenRunner


@dataclass(frozen=True)
class MotionCache:
    name = "motioncache"
    needs_block_causal = True
    threshold: float = knob(0.1, low=0)
    warmup: int = knob(4, low=0)
    phase1_updates: int = knob(6, low=0)
    motion_weights: str = knob("max_rescale", choices=("mean", "max", "max_rescale"))
    motion_floor: float = knob(0.6, low=0, high=1)  # lowest weight of max_rescale
    # hidden (reference: the stack's output) | denoised (x0 = x_t - sigma v, per token)
    motion_source: str = knob("hidden", choices=("hidden", "denoised"))
    distance: str = knob("global", choices=("global", "token"))  # per block, or per token from the modulated input
    temporal_voting: float = knob(0.5, low=0, high=1)  # share of a position's frames that must want an update; 0 = off
    min_update_ratio: float = knob(0.4, low=0, high=1)
    rescale: str = knob("wan_1_3b", choices=RESCALE_MODES)
    monotone_rescale: bool = True  # fix: non-negative, monotone rescale polynomial
    force_last_step: bool = True  # fix: a block's last step is always computed
    extrapolation: float = knob(0.0, low=0)  # reused tokens extrapolate their last two residuals (token_runner.py)
    # fix: a frame with no previous frame gets full weight (reference: floor)
    missing_prev_weight: float = knob(1.0, low=0, high=1)
    # not in the reference: the unconditional branch recomputes the tokens the conditional one chose, so no token's
    # guided prediction mixes a fresh branch with a stale one, and both branches run as one batch
    shared_choice: bool = False
    # not in the reference: each step's distance is weighted by s^noise_power, s the block's remaining share of its
    # schedule (token_runner.py), moving recomputation from the late, low-noise steps to the early ones; 0 = off
    noise_power: float = knob(0.0, low=0)

    def __post_init__(self):
        validate(self)

    def runner(self, ctx):
        return MotionCacheRunner(ctx, self)


class MotionCacheRunner(TokenRunner):
    def __init__(self, ctx, cfg: MotionCache):
        super().__init__(ctx, cfg.extrapolation)
        self.cfg = cfg
        self.acc: dict[tuple[int, int], torch.Tensor] = {}
        self.prev: dict[tuple[int, int], torch.Tensor] = {}  # previous modulation (global) or modulated input
        self.updates: dict[tuple[int, int], int] = {}  # updating steps after warm-up
        self.cond_choice: dict[int, torch.Tensor | None] = {}  # this row's choice of branch 0, per block
        if cfg.motion_source == "denoised":
            self.denoised = {}  # TokenRunner keeps every active token's denoised estimate in it

    def choose(self, branch, block, row, proj, x_in):
        if branch > 0 and self.cfg.shared_choice:
            return self.cond_choice[block]  # TokenRunner.predict asks branch 0 (conditional) first on every row
        self.cond_choice[block] = self._choose(branch, block, row, proj, x_in)
        return self.cond_choice[block]

    def _choose(self, branch, block, row, proj, x_in):
        cfg, key, step = self.cfg, (branch, block), row.block_steps[block]
        distance_input = self._distance_input(block, proj, x_in)
        prev = self.prev.get(key)
        self.prev[key] = distance_input
        n = x_in.shape[0]
        if step <= cfg.warmup or prev is None or (cfg.force_last_step and step == self.ctx.num_steps):
            self.acc[key] = torch.zeros(n, dtype=torch.float64, device=x_in.device)
            return None
        dim = None if cfg.distance == "global" else -1
        d = self.noise_weighted(rescale(relative_l1(distance_input, prev, dim), cfg.rescale, cfg.monotone_rescale),
                                row, block, cfg.noise_power)
        phase1 = self.updates.get(key, 0) < cfg.phase1_updates
        weight = 1.0 if phase1 else self._motion_weights(branch, block).double()
        acc = self.acc[key] + d * weight
        want = acc >= cfg.threshold
        frames = self.ctx.blocks[block][1] - self.ctx.blocks[block][0]
        if cfg.temporal_voting > 0:
            votes = want.view(frames, -1).double().mean(0) >= cfg.temporal_voting
            want = votes.expand(frames, -1).reshape(-1)
        if want.double().mean() < cfg.min_update_ratio:
            want = torch.zeros_like(want)
        else:
            self.updates[key] = self.updates.get(key, 0) + 1
        self.acc[key] = torch.where(want, torch.zeros_like(acc), acc)
        return want

    def _distance_input(self, block, proj, x_in):
        if self.cfg.distance == "global":
            return proj[self.ctx.blocks[block][0]]  # [6, dim]: the block's timestep modulation
        first = self.ctx.denoiser.model.blocks[0]  # per token: the first layer's modulated input
        e = first.scale_shift_table[0] + proj[self.ctx.blocks[block][0]].float()
        return first.norm1(x_in.float()) * (1 + e[1]) + e[0]

    def _motion_weights(self, branch, block) -> torch.Tensor:
        """Per token in [floor, 1] (max_rescale): how much this position changes from the previous frame."""
        cfg, hw = self.cfg, self.ctx.hw
        source = self.last_out if self.denoised is None else self.denoised
        out = source[(branch, block)].float()
        frames = out.shape[0] // hw
        out = out.view(frames, hw, -1)
        diff = torch.empty(frames, hw, device=out.device)
        diff[1:] = (out[1:] - out[:-1]).abs().mean(-1)
        before = source.get((branch, block - 1))
        missing = before is None
        if not missing:
            diff[0] = (out[0] - before.float().view(-1, hw, out.shape[-1])[-1]).abs().mean(-1)
        else:
            diff[0] = 0.0
        if cfg.motion_weights == "mean":
            w = diff / diff.mean(-1, keepdim=True).clamp(min=1e-12)
        else:
            w = diff / diff.amax(-1, keepdim=True).clamp(min=1e-12)
            if cfg.motion_weights == "max_rescale":
                w = cfg.motion_floor + (1.0 - cfg.motion_floor) * w
        if missing:
            w[0] = cfg.missing_prev_weight
        return w.reshape(-1)
