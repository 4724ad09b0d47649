"""Compute accounting: token evaluations and FLOPs, counted from the shapes the forward really ran.

FLOPs are analytic (2 per multiply-add) from the model config: every linear layer, plus attention
with the query-key pairs really scored (block-causal attention scores each query against its own and
earlier blocks only: denoiser.QueryRuns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelShape:
    dim: int
    ffn_dim: int
    num_layers: int
    patch_volume: int  # in_channels * patch elements
    out_volume: int

    @classmethod
    def of(cls, transformer) -> "ModelShape":
        c = transformer.config
        pv = c.in_channels * c.patch_size[0] * c.patch_size[1] * c.patch_size[2]
        ov = c.out_channels * c.patch_size[0] * c.patch_size[1] * c.patch_size[2]
        return cls(c.num_attention_heads * c.attention_head_dim, c.ffn_dim, c.num_layers, pv, ov)

    def layer_flops(self, queries: int, pairs: int, text_tokens: int) -> int:
        """One transformer layer for `queries` tokens scoring `pairs` query-key pairs (self) and the text."""
        d = self.dim
        linear = 2 * queries * d * d * 6 + 2 * queries * d * self.ffn_dim * 2  # q,k,v,o + cross q,o ; ffn
        attention = 4 * (pairs + queries * text_tokens) * d  # scores + weighted sum, self and cross
        return linear + attention

    def patch_flops(self, tokens: int) -> int:
        return 2 * tokens * self.dim * self.patch_volume

    def head_flops(self, tokens: int) -> int:
        return 2 * tokens * self.dim * self.out_volume

    def text_kv_flops(self, text_tokens: int) -> int:
        """Cross-attention keys/values of the prompt for all layers (computed once per request)."""
        return 2 * text_tokens * self.dim * self.dim * 2 * self.num_layers


@dataclass
class ComputeCounter:
    """Accumulates what the forward actually computed; `snapshot()` for per-chunk deltas."""

    token_layer_evals: int = 0  # tokens x layers run through a transformer block
    token_layer_reused: int = 0  # tokens x layers whose block output came from a cache
    flops: int = 0
    forwards: int = 0  # transformer calls (one per row and per CFG branch batch)
    reference_flops: int = 0  # what the reference path (whole window every row) would have spent so far

    def snapshot(self) -> dict:
        return asdict(self)

    @staticmethod
    def delta(after: dict, before: dict) -> dict:
        return {k: after[k] - before.get(k, 0) for k in after}

    @staticmethod
    def figures(c: dict) -> dict:
        """Compute speedup and token-skip rate of a snapshot or a delta."""
        slots = c["token_layer_evals"] + c["token_layer_reused"]
        return {"compute_speedup": c["reference_flops"] / c["flops"] if c["flops"] else 0.0,
                "token_skip_rate": c["token_layer_reused"] / slots if slots else 0.0}
