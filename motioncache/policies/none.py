"""`none`: the reference path. The whole window goes through the transformer on every row, as diffusers does."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Runner, RowInput


@dataclass(frozen=True)
class NoCache:
    name = "none"
    needs_block_causal = False

    def runner(self, ctx):
        return FullWindowRunner(ctx)


class FullWindowRunner(Runner):
    def predict(self, row: RowInput):
        c = self.ctx
        ids = c.window.block_of_frame() if c.block_causal else None
        pred = c.denoiser.forward(self.expand(row.model_input), 0, row.frame_timesteps, c.text, c.fps_flag,
                                  block_ids=ids)
        return pred, 0
