"""The diffusion-forcing schedule: windows over the latent video, causal blocks, the timestep matrix.

Block-level and exact to diffusers' `generate_timestep_matrix`: a row advances block 0 by one step;
block i follows block i-1 by `ar_step` steps until block i-1 is done. Step index 0 means "not
started" (timestep 999), 1..S the scheduler's timesteps, S+1 "finished" (timestep 0).
Unlike diffusers, the last block of a window may be shorter than `causal_block_size`, so no
trailing latent frame is left as noise, and given (context) frames form their own blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first latent frame of the window in the whole video
    num_frames: int  # latent frames in the window (noise is drawn for this many)
    context_frames: int  # leading frames that are given (conditioning or overlap), never denoised
    blocks: tuple[tuple[int, int], ...]  # [start, end) frame ranges inside the window
    num_context_blocks: int

    @property
    def new_frames(self) -> int:
        return self.num_frames - self.context_frames

    def block_of_frame(self) -> torch.Tensor:
        """[F] the causal block of every frame (ascending)."""
        sizes = torch.tensor([e - s for s, e in self.blocks])
        return torch.arange(len(self.blocks)).repeat_interleave(sizes)


def split_blocks(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, end)) for s in range(start, end, size)]


def plan_windows(
    total_frames: int, base_frames: int, overlap_frames: int, context_frames: int, block_size: int
) -> list[Window]:
    """Cover `total_frames` latent frames with windows of at most `base_frames`.

    Window 0 starts with `context_frames` given frames (image or prefix video); every later window
    starts with the last `overlap_frames` finished frames of the video so far.
    """
    windows, done = [], context_frames
    while done < total_frames or not windows:
        ctx = context_frames if not windows else min(overlap_frames, done)
        new = min(total_frames - done, base_frames - ctx)
        if new <= 0:
            raise ValueError("the overlap leaves no room for new frames in a window")
        blocks = split_blocks(0, ctx, block_size) + split_blocks(ctx, ctx + new, block_size)
        windows.append(Window(len(windows), done - ctx, ctx + new, ctx, tuple(blocks),
                              len(split_blocks(0, ctx, block_size))))
        done += new
    return windows


@dataclass(frozen=True)
class StepMatrix:
    step_index: torch.Tensor  # [rows, blocks] long
    update: torch.Tensor  # [rows, blocks] bool: the block takes a scheduler step on this row
    num_steps: int

    @property
    def rows(self) -> int:
        return self.step_index.shape[0]

    def timesteps(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Timestep value per [row, block] for the scheduler's `timesteps`."""
        template = torch.cat([torch.tensor([999]), timesteps.long().cpu(), torch.tensor([0])])
        return template[self.step_index]

    def finishing(self, row: int) -> torch.Tensor:
        """Blocks whose last denoising step happens on `row`."""
        return self.update[row] & (self.step_index[row] == self.num_steps)


def step_matrix(num_blocks: int, num_steps: int, ar_step: int, num_ready_blocks: int = 0) -> StepMatrix:
    finished = num_steps + 1
    pre = torch.zeros(num_blocks, dtype=torch.long)
    pre[:num_ready_blocks] = finished
    rows, updates = [], []
    while not bool(torch.all(pre >= num_steps)):
        new = torch.zeros(num_blocks, dtype=torch.long)
        for i in range(num_blocks):
            if i == 0 or pre[i - 1] >= num_steps:
                new[i] = pre[i] + 1
            else:
                new[i] = new[i - 1] - ar_step
        new = new.clamp(0, finished)
        updates.append((new != pre) & (new != finished))
        rows.append(new)
        pre = new
    if not rows:  # every block given: nothing to denoise
        return StepMatrix(torch.zeros(0, num_blocks, dtype=torch.long), torch.zeros(0, num_blocks, dtype=torch.bool),
                          num_steps)
    return StepMatrix(torch.stack(rows), torch.stack(updates), num_steps)
