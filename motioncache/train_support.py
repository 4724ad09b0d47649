"""Small pieces the demo trainer's phases share: atomic checkpoints, a checkpoint clock, frame tensors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch


# -- checkpoints ------------------------------------------------------------------------------

def save_checkpoint(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a crash mid-save never leaves a broken checkpoint


def load_checkpoint(path: Path):
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


class Clock:
    """Says when the next periodic checkpoint is due."""

    def __init__(self, minutes: float):
        self.every, self.last = minutes * 60, time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            return True
        return False


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., F, H, W, 3] -> float [..., 3, F, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    return x.movedim(-1, -4)


def progress_line(phase: str, step: int, total: int, start: int, t0: float, detail: str) -> str:
    """'vae step 50/1100 <detail> 0.96s/step eta 7.6min' (rate over the steps of this run)."""
    rate = (time.monotonic() - t0) / max(step - start, 1)
    return f"{phase} step {step}/{total} {detail} {rate:.2f}s/step eta {rate * (total - step) / 60:.1f}min"
