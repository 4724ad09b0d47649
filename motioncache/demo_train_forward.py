"""The SkyReels-V2 diffusion-forcing forward for training: the function diffusers' forward computes (tested to
1e-5, gradients too), over the same modules and weights, in less time on a CPU.

diffusers builds the modulation per token ([B, 6, tokens, C]: every frame's six vectors copied to each of its
tokens, per layer) and a dense block-causal mask; here the modulation stays per frame ([B, F, 1, C], broadcast
over the frame's tokens), attention runs unmasked per causal block (`denoiser.QueryRuns`, the engine's path),
RoPE is a rotation of pairs, and the zero text padding may be one weighted key (`text_bias`, as the engine cuts
it). Float32 training is where this matters: on a CPU without native bf16 the recipe's step is the budget.
"""

from __future__ import annotations

import math

import torch

from .denoiser import QueryRuns, attention, gated, modulated, rope_tables, unpatchify


def training_forward(transformer, latents: torch.Tensor, timestep: torch.Tensor, text_states: torch.Tensor,
                     text_bias: torch.Tensor | None, fps_flag: int | None = None) -> torch.Tensor:
    """Velocity prediction [B, C, F, H, W] for `latents` [B, C, F, H, W] at per-frame timesteps [B, F];
    `text_states` [B, L, text_dim] are the text encoder's (zero past each prompt), `text_bias` [1, 1, 1, L] is added
    to every cross-attention logit (None: none). Block-causal with the model's `num_frame_per_block`. Models with
    `inject_sample_info` need `fps_flag` (diffusers' `fps`: 0 for 16 fps, 1 for 24)."""
    m = transformer
    b, _, nf, hh, ww = latents.shape
    _, ph, pw = m.config.patch_size
    hp, wp = hh // ph, ww // pw
    hw = hp * wp
    heads = m.config.num_attention_heads
    x = m.patch_embedding(latents).flatten(2).transpose(1, 2)
    temb, proj, text, _ = m.condition_embedder(timestep, text_states, None)  # [B, F, C], [B, F, 6C], [B, L, C]
    proj = proj.unflatten(-1, (6, -1)).float()  # [B, F, 6, C]
    if m.config.inject_sample_info:
        if fps_flag is None:
            raise ValueError("this model embeds the frame rate (inject_sample_info): pass fps_flag")
        fps = m.fps_projection(m.fps_embedding(torch.tensor([fps_flag], device=x.device)))  # [1, 6C]
        proj = proj + fps.unflatten(-1, (6, -1)).float()[:, None]
    freqs = tuple(f.to(x.device) for f in rope_tables(m.rope, 0, nf, hp, wp))
    per_block = m.config.num_frame_per_block
    block_ids = torch.arange(nf) // per_block if per_block > 1 else None
    runs = QueryRuns.of_window(block_ids, nf, hw)
    for block in m.blocks:
        e = (block.scale_shift_table[0][None, None] + proj)[:, :, :, None, :]  # [B, F, 6, 1, C]
        x = _self_attention(block, x, e, freqs, runs, heads, b, nf, hw)
        x = _cross_attention(block, x, text, text_bias, heads)
        n = modulated(block.norm3, x, e[:, :, 3], e[:, :, 4], b, nf, hw)
        x = gated(x, block.ffn(n), e[:, :, 5], b, nf, hw)
    mod = m.scale_shift_table[0][None, None] + temb.float()[:, :, None, :]  # [B, F, 2, C]
    x = modulated(m.norm_out, x, mod[:, :, 0, None], mod[:, :, 1, None], b, nf, hw)
    return unpatchify(m.proj_out(x), nf, hp, wp, m.config.patch_size)


def padding_key_bias(keys: int, copies: int) -> torch.Tensor:
    """Logit bias [1, 1, 1, keys] for text states ending in ONE zero state that stands for `copies` of them."""
    bias = torch.zeros(1, 1, 1, keys)
    bias[..., -1] = math.log(copies)
    return bias


def rope_rotate(x: torch.Tensor, freqs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate each interleaved pair (x[2i], x[2i+1]) of x [B, tokens, heads, head_dim] by its angle; real
    arithmetic (the engine's complex multiply is the same rotation), which torch.compile can fuse."""
    cos, sin = freqs
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)


def _self_attention(block, x, e, freqs, runs, heads, b, nf, hw):
    a = block.attn1
    n = modulated(block.norm1, x, e[:, :, 0], e[:, :, 1], b, nf, hw)
    q = rope_rotate(a.norm_q(a.to_q(n)).unflatten(2, (heads, -1)), freqs)
    k = rope_rotate(a.norm_k(a.to_k(n)).unflatten(2, (heads, -1)), freqs)
    v = a.to_v(n).unflatten(2, (heads, -1))
    return gated(x, a.to_out[0](runs.attend(q, k, v).type_as(q)), e[:, :, 2], b, nf, hw)


def _cross_attention(block, x, text, bias, heads):
    a = block.attn2
    n = block.norm2(x.float()).type_as(x)
    q = a.norm_q(a.to_q(n)).unflatten(2, (heads, -1))
    k = a.norm_k(a.to_k(text)).unflatten(2, (heads, -1)).type_as(q)
    v = a.to_v(text).unflatten(2, (heads, -1)).type_as(q)
    mask = None if bias is None else bias.to(q.dtype)
    return x + a.to_out[0](attention(q, k, v, mask).type_as(q))
