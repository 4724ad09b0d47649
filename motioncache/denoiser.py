"""The SkyReels-V2 transformer forward, written over diffusers' modules and weights.

`forward` runs a whole window (the reference path); `selective` runs any subset of a window's tokens
over a per-window store of keys/values (the chunked and caching paths). Modulation is kept per frame
([F, 6, C]) instead of per token. Block-causal attention runs as one unmasked attention per causal block
of the queries over the keys up to that block's end (`QueryRuns`): the same result as diffusers' masked
attention without computing the masked scores (a 97-frame window of 5 blocks scores 3/5 of the pairs, and
unmasked attention is the faster kernel). Every call adds what it computed to a ComputeCounter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .accounting import ComputeCounter, ModelShape

TOKEN_BUCKET = 128  # GPU only: the selective forward's token count is rounded up to a multiple of this


@dataclass
class TextContext:
    """Prompt states projected for every layer's cross-attention (constant for a request).

    Prompts are zero-padded to the text encoder's length (512), and equal states give equal keys and
    values, so the padding is cut down to the batch's longest prompt + 1: each row's remaining padding keys
    get + log(padding states / padding keys kept) on their logits (`bias`, [B, 1, 1, tokens]): the same
    softmax over a fraction of the keys."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    tokens: int
    bias: torch.Tensor | None = None

    def rows(self, index) -> "TextContext":
        """The context of some CFG branches (batch rows)."""
        bias = None if self.bias is None else self.bias[index]
        return TextContext([(k[index], v[index]) for k, v in self.kv], self.tokens, bias)


def padding_bias(prompt_embeds: torch.Tensor, dtype) -> tuple[int, torch.Tensor | None]:
    """(keys to keep, logit bias) for zero-padded prompt states [B, L, C]; (L, None) if nothing is cut."""
    total = prompt_embeds.shape[1]
    nonzero = prompt_embeds.abs().amax(dim=-1) > 0
    positions = torch.arange(1, total + 1, device=prompt_embeds.device)
    lengths = (nonzero * positions).amax(dim=1)  # one past each row's last non-zero state
    keep = int(lengths.max()) + 1
    if keep >= total:
        return total, None
    kept_pad = (keep - lengths).double()  # >= 1 padding keys kept per row, each standing for several
    weight = torch.log((total - lengths).double() / kept_pad)
    key = torch.arange(keep, device=prompt_embeds.device)
    bias = torch.where(key[None, :] >= lengths[:, None], weight[:, None], torch.zeros((), dtype=torch.float64))
    return keep, bias[:, None, None, :].to(dtype)


def unpatchify(tokens: torch.Tensor, nf: int, hp: int, wp: int, patch) -> torch.Tensor:
    """Tokens [B, nf*hp*wp, pt*ph*pw*C] (as proj_out writes them) -> video [B, C, nf*pt, hp*ph, wp*pw]."""
    b, (pt, ph, pw) = tokens.shape[0], patch
    x = tokens.reshape(b, nf, hp, wp, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def patchify(video: torch.Tensor, patch) -> torch.Tensor:
    """The inverse of unpatchify: video [B, C, F, H, W] -> tokens [B, tokens, pt*ph*pw*C] in the model's order."""
    (b, c, f, h, w), (pt, ph, pw) = video.shape, patch
    x = video.reshape(b, c, f // pt, pt, h // ph, ph, w // pw, pw).permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.reshape(b, (f // pt) * (h // ph) * (w // pw), -1)


class Denoiser:
    def __init__(self, transformer, counter: ComputeCounter):
        self.model = transformer
        self.counter = counter
        self.shape = ModelShape.of(transformer)
        cfg = transformer.config
        self.heads = cfg.num_attention_heads
        self.patch = tuple(cfg.patch_size)
        self.dtype = transformer.dtype
        # On a GPU the selective forward pads its token set to a multiple of this, so compiled kernels and
        # cuBLAS plans see a few shapes instead of one per token count; on the CPU padding only costs.
        self.token_bucket = TOKEN_BUCKET if transformer.device.type == "cuda" else 0

    # -- per-request constants -------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, prompt_embeds: torch.Tensor) -> TextContext:
        keep, bias = padding_bias(prompt_embeds, self.dtype)
        text = self.model.condition_embedder.text_embedder(prompt_embeds[:, :keep].to(self.dtype))
        kv = []
        for block in self.model.blocks:
            a = block.attn2
            k = a.norm_k(a.to_k(text)).unflatten(2, (self.heads, -1))
            v = a.to_v(text).unflatten(2, (self.heads, -1))
            kv.append((k, v))
        self.counter.flops += text.shape[0] * self.shape.text_kv_flops(text.shape[1])
        return TextContext(kv, text.shape[1], bias)

    @torch.no_grad()
    def time_embedding(self, frame_timesteps: torch.Tensor, fps_flag: int | None):
        """Per-frame time embedding [F, C] and block modulation [F, 6, C] (as diffusers computes them)."""
        emb = self.model.condition_embedder
        t = emb.timesteps_proj(frame_timesteps)
        t = t.to(next(emb.time_embedder.parameters()).dtype)
        temb = emb.time_embedder(t).to(self.dtype)
        proj = emb.time_proj(emb.act_fn(temb)).unflatten(-1, (6, -1))
        if self.model.config.inject_sample_info:
            fps = torch.tensor([0 if fps_flag is None else fps_flag], device=temb.device)
            proj = proj + self.model.fps_projection(self.model.fps_embedding(fps)).unflatten(1, (6, -1))
        return temb, proj

    def rotary(self, f0: int, f1: int, hp: int, wp: int) -> torch.Tensor:
        """RoPE of frames [f0, f1) on an hp x wp grid as unit complex numbers [1, tokens, 1, head_dim / 2]."""
        return torch.complex(*rope_tables(self.model.rope, f0, f1, hp, wp))

    # -- the forward ----------------------------------------------------------------------
    def embed(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, F, H, W] -> tokens [B, F*h*w, dim] (frame-major, as diffusers flattens them)."""
        x = self.model.patch_embedding(latents.to(self.dtype)).flatten(2).transpose(1, 2)
        self.counter.flops += x.shape[0] * self.shape.patch_flops(x.shape[1])
        return x

    def head(self, x: torch.Tensor, temb: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        """Tokens [B, F*hp*wp, dim] with per-frame time embedding [F, dim] -> prediction [B, C, F, H, W]."""
        m = self.model
        b, lq, _ = x.shape
        nf = temb.shape[0]
        mod = m.scale_shift_table[0][:, None, None, :] + temb[None, :, None, :]
        shift, scale = mod[0], mod[1]
        x = (m.norm_out(x.float()).view(b, nf, hp * wp, -1) * (1 + scale) + shift).view(b, lq, -1).type_as(x)
        x = m.proj_out(x)
        self.counter.flops += b * self.shape.head_flops(lq)
        return unpatchify(x, nf, hp, wp, self.patch)

    @torch.no_grad()
    def forward(
        self,
        latents: torch.Tensor,  # [B, C, F, H, W]: the frames to run (one batch row per CFG branch)
        frame_offset: int,  # index of latents' first frame inside the window (RoPE position)
        frame_timesteps: torch.Tensor,  # [F] long
        text: TextContext,
        fps_flag: int | None,
        block_ids: torch.Tensor | None = None,  # [F] causal block per frame; None = full attention
    ) -> torch.Tensor:
        _, _, nf, hh, ww = latents.shape
        hp, wp = hh // self.patch[1], ww // self.patch[2]
        temb, proj = self.time_embedding(frame_timesteps, fps_flag)
        x = self.embed(latents)
        x = self.stack(x, proj, frame_offset, hp, wp, text, block_ids)
        return self.head(x, temb, hp, wp)

    @torch.no_grad()
    def stack(self, x, proj, frame_offset, hp, wp, text, block_ids=None):
        """All transformer blocks over contiguous frames `x` [B, F*hp*wp, dim]; proj: [F, 6, dim]."""
        b, lq, _ = x.shape
        hw = hp * wp
        nf = lq // hw
        freqs = self.rotary(frame_offset, frame_offset + nf, hp, wp).to(x.device)
        runs = QueryRuns.of_window(block_ids, nf, hw)
        for layer, block in enumerate(self.model.blocks):
            e = (block.scale_shift_table[0][:, None, None, :] + proj.float().transpose(0, 1)[:, :, None, :])
            x = self._self_attention(block, x, e, freqs, runs, b, nf, hw)
            x = self._cross_attention_and_ffn(block, x, e, text.kv[layer], text.bias, b, nf, hw)
        self._count(b, lq, runs.pairs, text.tokens)
        return x

    @torch.no_grad()
    def selective(self, x, token_index, token_frame, token_block, proj, freqs, store, key_blocks,
                  text: TextContext, rows: list[int] | None = None):
        """All transformer blocks for an arbitrary subset of a window's tokens.

        x: [R, n, dim] the chosen tokens' input states for R CFG branches (`rows` of the store, None = all);
        token_index: their positions in the window (sorted); token_frame / token_block: their frame and
        causal block; proj: [F_window, 6, dim] per-frame modulation; freqs: RoPE of the chosen tokens.
        Their fresh keys/values are written into `store` (per layer [branches, window_tokens, heads,
        head_dim]) and they attend over the store's first len(key_blocks) tokens, block-causally. Tokens not
        chosen keep the keys/values they had.
        """
        chosen = x.shape[1]
        pad = -chosen % self.token_bucket if self.token_bucket else 0
        if pad:  # repeat the last token: same inputs, same keys/values written twice, extra outputs dropped
            p = torch.cat([torch.arange(chosen), torch.full((pad,), chosen - 1)]).to(token_index.device)
            x, token_index, token_frame, token_block = x[:, p], token_index[p], token_frame[p], token_block[p]
            freqs = freqs[:, p]
        n, keys = x.shape[1], len(key_blocks)
        runs = QueryRuns.of_tokens(token_block, key_blocks)
        first = int(token_index[0])
        contiguous = int(token_index[-1]) - first + 1 == n  # sorted and unique: a plain slice
        where = slice(first, first + n) if contiguous else token_index
        branch = slice(None) if rows is None else torch.tensor(rows, device=x.device)
        text_branches = text if rows is None else text.rows(branch)
        e_tok = proj[token_frame].float().transpose(0, 1)  # [6, n, dim]
        for layer, block in enumerate(self.model.blocks):
            e = block.scale_shift_table[0][:, None, :] + e_tok
            a = block.attn1
            h = (block.norm1(x.float()) * (1 + e[1]) + e[0]).type_as(x)
            q = rope_apply(a.norm_q(a.to_q(h)).unflatten(2, (self.heads, -1)), freqs)
            k = rope_apply(a.norm_k(a.to_k(h)).unflatten(2, (self.heads, -1)), freqs)
            v = a.to_v(h).unflatten(2, (self.heads, -1))
            k_store, v_store = store.k[layer], store.v[layer]
            if rows is None:
                k_store[:, where], v_store[:, where] = k, v
                k_keys, v_keys = k_store[:, :keys], v_store[:, :keys]
            else:
                sel = (branch[:, None], where[None, :]) if not contiguous else (branch, where)
                k_store[sel], v_store[sel] = k, v
                k_keys, v_keys = k_store[branch, :keys], v_store[branch, :keys]
            o = runs.attend(q, k_keys, v_keys).type_as(q)
            x = (x.float() + a.to_out[0](o).float() * e[2]).type_as(x)
            a2 = block.attn2
            h = block.norm2(x.float()).type_as(x)
            q = a2.norm_q(a2.to_q(h)).unflatten(2, (self.heads, -1))
            tk, tv = text_branches.kv[layer]
            x = x + a2.to_out[0](attention(q, tk, tv, text_branches.bias).type_as(q))
            h = (block.norm3(x.float()) * (1 + e[4]) + e[3]).type_as(x)
            x = (x.float() + block.ffn(h).float() * e[5]).type_as(x)
        self._count(x.shape[0], n, runs.pairs, text.tokens)  # padding included: it is computed
        return x[:, :chosen]

    def _count(self, batch: int, queries: int, pairs: int, text_tokens: int) -> None:
        layers = len(self.model.blocks)
        self.counter.token_layer_evals += batch * queries * layers
        self.counter.flops += batch * layers * self.shape.layer_flops(queries, pairs, text_tokens)
        self.counter.forwards += 1

    def _self_attention(self, block, x, e, freqs, runs, b, nf, hw):
        a = block.attn1
        n = modulated(block.norm1, x, e[0], e[1], b, nf, hw)
        q = rope_apply(a.norm_q(a.to_q(n)).unflatten(2, (self.heads, -1)), freqs)
        k = rope_apply(a.norm_k(a.to_k(n)).unflatten(2, (self.heads, -1)), freqs)
        v = a.to_v(n).unflatten(2, (self.heads, -1))
        o = runs.attend(q, k, v).type_as(q)
        return gated(x, a.to_out[0](o), e[2], b, nf, hw)

    def _cross_attention_and_ffn(self, block, x, e, text_kv, text_bias, b, nf, hw):
        a = block.attn2
        n = block.norm2(x.float()).type_as(x)
        q = a.norm_q(a.to_q(n)).unflatten(2, (self.heads, -1))
        k, v = text_kv
        x = x + a.to_out[0](attention(q, k, v, text_bias).type_as(q))
        n = modulated(block.norm3, x, e[3], e[4], b, nf, hw)
        return gated(x, block.ffn(n), e[5], b, nf, hw)


def rope_tables(rope, f0: int, f1: int, hp: int, wp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every rotated pair for frames [f0, f1) on an hp x wp grid, [1, tokens, 1, head_dim / 2]
    each, from diffusers' RoPE module (which stores each pair's cos/sin twice, interleaved)."""
    nf = f1 - f0

    def grid(table):
        t, h, w = table.split((rope.t_dim, rope.h_dim, rope.w_dim), dim=1)
        return torch.cat([t[f0:f1].view(nf, 1, 1, -1).expand(nf, hp, wp, -1),
                          h[:hp].view(1, hp, 1, -1).expand(nf, hp, wp, -1),
                          w[:wp].view(1, 1, wp, -1).expand(nf, hp, wp, -1)], dim=-1).reshape(1, nf * hp * wp, 1, -1)

    return grid(rope.freqs_cos)[..., 0::2].float(), grid(rope.freqs_sin)[..., 1::2].float()


def modulated(norm, x, shift, scale, b, nf, hw):
    """norm(x) * (1 + scale) + shift, with x [B, nf*hw, C] and shift/scale per frame (broadcast over [B, nf, hw, C])."""
    return (norm(x.float()).view(b, nf, hw, -1) * (1 + scale) + shift).view(b, nf * hw, -1).type_as(x)


def gated(x, y, gate, b, nf, hw):
    """x + y * gate, the gate per frame as in `modulated`."""
    return (x.float().view(b, nf, hw, -1) + y.float().view(b, nf, hw, -1) * gate).view(b, nf * hw, -1).type_as(x)


def rope_apply(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Interleaved-pair rotary embedding, as diffusers' SkyReels-V2 attention processor applies it: each pair
    (x[2i], x[2i+1]) is the complex number x[2i] + i x[2i+1], rotated by one multiply (freqs from `rotary`)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * freqs).flatten(-2).type_as(x)


@dataclass(frozen=True)
class QueryRuns:
    """Block-causal attention without a mask. Queries come sorted by causal block; each run of queries
    `[start, stop)` of one block attends over the first `keys` keys (its own block and every earlier one)."""

    runs: tuple[tuple[int, int, int], ...]  # (start, stop, keys)

    @classmethod
    def of_window(cls, block_ids: torch.Tensor | None, frames: int, hw: int) -> "QueryRuns":
        """A whole window, tokens frame-major; block_ids [F] ascending, None = full attention."""
        if block_ids is None:
            return cls(((0, frames * hw, frames * hw),))
        ends = torch.unique_consecutive(block_ids, return_counts=True)[1].cumsum(0).tolist()
        return cls(tuple((hw * s, hw * e, hw * e) for s, e in zip([0] + ends[:-1], ends)))

    @classmethod
    def of_tokens(cls, token_block: torch.Tensor, key_blocks: torch.Tensor) -> "QueryRuns":
        """Chosen tokens (their blocks ascending) over a window's first len(key_blocks) keys."""
        blocks, counts = torch.unique_consecutive(token_block, return_counts=True)
        keys = torch.searchsorted(key_blocks, blocks, right=True).tolist()  # keys of blocks <= each run's
        stops = counts.cumsum(0).tolist()
        return cls(tuple(zip([0] + stops[:-1], stops, keys)))

    @property
    def pairs(self) -> int:
        """Query-key scores computed (per batch row and head)."""
        return sum((stop - start) * keys for start, stop, keys in self.runs)

    def attend(self, q, k, v):
        """q [B, n, H, D] over k, v [B, keys, H, D] -> [B, n, H*D]."""
        if len(self.runs) == 1 and self.runs[0][2] == k.shape[1]:
            return attention(q, k, v, None)
        return torch.cat([attention(q[:, start:stop], k[:, :keys], v[:, :keys], None)
                          for start, stop, keys in self.runs], dim=1)


def attention(q, k, v, mask):
    """[B, L, H, D] layout in and out (flattened heads)."""
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return o.transpose(1, 2).flatten(2, 3)
