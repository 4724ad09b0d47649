"""`chunked`: only the blocks being denoised run; finished blocks' keys/values come from the KV store.

A finished block re-enters every reference row at timestep 0 with its clean latent and, under block-causal
attention, sees only finished blocks: its keys/values are constant, so they are computed once (on the row
after it finishes, together with the active blocks) and then reused. Exact. It is the token machinery of
the caching policies with nothing to skip. Without block-causal attention (causal_block_size 1) nothing is
constant and the runner falls back to the whole window.
"""

from __future__ import annotations

from dataclasses import dataclass

from .none import FullWindowRunner
from .token_runner import TokenRunner


@dataclass(frozen=True)
class ChunkedCache:
    name = "chunked"
    needs_block_causal = False

    def runner(self, ctx):
        return ChunkedRunner(ctx) if ctx.block_causal else FullWindowRunner(ctx)


class ChunkedRunner(TokenRunner):
    def choose(self, branch, block, row, proj, x_in):
        return None  # every token of every active block is recomputed
