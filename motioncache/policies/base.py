"""What a cache policy sees of a window and a row, and the interface its runner implements.

The engine owns the schedule, the schedulers and CFG; a policy's runner only answers: given this row,
what does the transformer predict for the frames of the active blocks, and what did that cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..denoiser import Denoiser, TextContext
from ..schedule import Window


@dataclass
class WindowContext:
    denoiser: Denoiser
    window: Window
    text: TextContext
    fps_flag: int
    branches: int  # 2 with classifier-free guidance (cond, uncond), else 1
    block_causal: bool
    num_steps: int
    hp: int  # tokens per latent frame: hp x wp
    wp: int

    @property
    def hw(self) -> int:
        return self.hp * self.wp

    @property
    def blocks(self) -> tuple[tuple[int, int], ...]:
        return self.window.blocks


@dataclass
class RowInput:
    row: int
    model_input: torch.Tensor  # [1, C, F_window, H, W] in the transformer's dtype (context re-noised if asked)
    frame_timesteps: torch.Tensor  # [F_window] long
    active: list[int]  # blocks taking a scheduler step on this row (contiguous, ascending)
    block_steps: list[int]  # per block: 0 not started, 1..S the step being taken, S+1 finished
    finishing: list[int]  # active blocks taking their last step on this row


class Runner:
    """Per window and request: holds the policy's state (caches, accumulators) for that window only."""

    def __init__(self, ctx: WindowContext):
        self.ctx = ctx

    def predict(self, row: RowInput) -> tuple[torch.Tensor, int]:
        """Prediction [branches, C, f, H, W] covering frames [f0, f0 + f) that include every active block."""
        raise NotImplementedError

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(self.ctx.branches, *x.shape[1:])
