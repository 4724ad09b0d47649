"""`chunked`: only the blocks being denoised run; finished blocks' keys/values come from a per-layer KV cache.

A finished block re-enters every reference row at timestep 0 with its clean latent and, under block-causal
attention, sees only finished blocks: its keys/values are constant, so they are computed once (on the row
after it finishes, together with the active blocks) and then reused. Exact. Without block-causal attention
(causal_block_size 1) nothing is constant and the runner falls back to the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..denoiser import KVCache
from .base import Runner, RowInput
from .none import FullWindowRunner


@dataclass(frozen=True)
class ChunkedCache:
    name = "chunked"
    needs_block_causal = False

    def runner(self, ctx):
        return ChunkedRunner(ctx) if ctx.block_causal else FullWindowRunner(ctx)


class ChunkedRunner(Runner):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.cache = KVCache(len(ctx.denoiser.model.blocks))
        self.cached_blocks = 0
        self.block_ids = ctx.block_of_frame()

    def predict(self, row: RowInput):
        c = self.ctx
        f0, f1 = c.blocks[self.cached_blocks][0], c.blocks[row.active[-1]][1]
        commit = c.blocks[row.active[0]][0] - f0  # finished frames not cached yet: compute their K/V once
        self.cached_blocks = row.active[0]
        pred = c.denoiser.forward(self.expand(row.model_input[:, :, f0:f1]), f0, row.frame_timesteps[f0:f1],
                                  c.text, c.fps_flag, block_ids=self.block_ids[f0:f1], cache=self.cache,
                                  commit_frames=commit)
        return pred, f0
