"""`teacache`: step-level TeaCache over the whole window.

Per CFG branch an accumulator grows by the rescaled relative L1 change of the window's timestep
modulation; while it stays below the threshold the whole transformer stack is skipped and its last
residual (h_out - h_in) is reused for every token of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Runner, RowInput
from ..knob_rules import knob, validate
from .rescale import RESCALE_MODES, relative_l1, rescale


@dataclass(frozen=True)
class TeaCache:
    name = "teacache"
    needs_block_causal = False
    threshold: float = knob(0.08, low=0)
    warmup: int = knob(4, low=0)  # rows computed in full at the start of a window
    rescale: str = knob("wan_1_3b", choices=RESCALE_MODES)
    monotone_rescale: bool = True  # fix: non-negative, monotone polynomial
    force_last_step: bool = True  # fix: a row where a block takes its last step is always computed

    def __post_init__(self):
        validate(self)

    def runner(self, ctx):
        return TeaCacheRunner(ctx, self)


class TeaCacheRunner(Runner):
    def __init__(self, ctx, cfg: TeaCache):
        super().__init__(ctx)
        self.cfg = cfg
        self.acc = [0.0] * ctx.branches
        self.residual: list[torch.Tensor | None] = [None] * ctx.branches
        self.prev_mod = None
        self.rows = 0

    def predict(self, row: RowInput):
        c, d = self.ctx, self.ctx.denoiser
        temb, proj = d.time_embedding(row.frame_timesteps, c.fps_flag)
        x_in = d.embed(row.model_input)  # the same input for every branch
        change = None if self.prev_mod is None else float(rescale(relative_l1(proj, self.prev_mod),
                                                                  self.cfg.rescale, self.cfg.monotone_rescale))
        self.prev_mod = proj
        forced = self.rows < self.cfg.warmup or (self.cfg.force_last_step and row.finishing)
        self.rows += 1
        compute = []
        for b in range(c.branches):
            if forced or change is None or self.residual[b] is None:
                compute.append(b)
                continue
            self.acc[b] += change
            if self.acc[b] >= self.cfg.threshold:
                compute.append(b)
        out = [None] * c.branches
        if compute:
            ids = c.window.block_of_frame() if c.block_causal else None
            text = _branch_text(c.text, compute, c.branches)
            x_out = d.stack(x_in.expand(len(compute), -1, -1), proj, 0, c.hp, c.wp, text, block_ids=ids)
            for i, b in enumerate(compute):
                out[b] = x_out[i:i + 1]
                self.residual[b] = out[b] - x_in
                self.acc[b] = 0.0
        for b in range(c.branches):
            if out[b] is None:
                out[b] = x_in + self.residual[b]
                d.counter.token_layer_reused += x_in.shape[1] * len(d.model.blocks)
        return d.head(torch.cat(out), temb, c.hp, c.wp), 0


def _branch_text(text, branches: list[int], total: int):
    """The text context restricted to some CFG branches (batch rows)."""
    if len(branches) == total:
        return text
    return text.rows(torch.tensor(branches))
