"""Shared machinery of the block- and token-level caches (flowcache, motioncache).

Every window keeps, per CFG branch, a store of every token's latest self-attention keys/values per layer
and, per active block, the residual R = h_out - h_in of the whole stack. On each row a subclass chooses
which tokens of each active block to recompute; those run through `Denoiser.selective` (fresh Q/K/V
written into the store, attention over the whole block-causal prefix, cross-attention and FFN for them
only); every other token takes h_in + R. Finished blocks are computed once in full, like `chunked`.

With `extrapolation` > 0 a reused token takes h_in + R1 + a * (R1 - R0) * (t - t1) / (t1 - t0) instead: R1 and
R0 its last two computed residuals, at timesteps t1 and t0 (per token), t the current one; the ratio is
capped at MAX_EXTRAPOLATION so a long run of reuse does not extrapolate far.

`noise_weighted` (the `noise_power` knob of flowcache and motioncache, not in the reference) scales a step's distance
by s^p, s the block's remaining share of its schedule (1 on its first step, 1/S on its last): its noise level before
the flow shift. An error made late in a block's schedule costs the finished video little, one made early changes
what it shows; the shifted sigma would hardly discount the late steps (at shift 5 it is still 0.36 five steps
before the end of 50).
"""

from __future__ import annotations

import torch

from ..denoiser import patchify
from .base import Runner, RowInput

MAX_EXTRAPOLATION = 2.0


class TokenStore:
    """Latest self-attention keys/values of every token of a window, per layer: [branches, tokens, heads, dim]."""

    def __init__(self, layers: int, branches: int, tokens: int, heads: int, head_dim: int, dtype, device):
        shape = (branches, tokens, heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]


class TokenRunner(Runner):
    def __init__(self, ctx, extrapolation: float = 0.0):
        super().__init__(ctx)
        self.extrapolation = extrapolation
        d = ctx.denoiser
        cfg = d.model.config
        hw, frames = ctx.hw, ctx.window.num_frames
        device = next(d.model.parameters()).device
        self.store = TokenStore(cfg.num_layers, ctx.branches, frames * hw, cfg.num_attention_heads,
                                cfg.attention_head_dim, d.dtype, device)
        self.token_frame = torch.arange(frames, device=device).repeat_interleave(hw)
        self.token_block = ctx.window.block_of_frame().to(device)[self.token_frame]
        self.freqs = d.rotary(0, frames, ctx.hp, ctx.wp).to(device)
        self.committed = 0  # blocks whose final keys/values are in the stores
        self.residual: dict[tuple[int, int], torch.Tensor] = {}  # (branch, block) -> [f*hw, dim]
        self.last_out: dict[tuple[int, int], torch.Tensor] = {}  # (branch, block) -> latest h_out [f*hw, dim]
        # for extrapolation: the residual before the latest, and the timesteps of both (per token)
        self.prev_residual: dict[tuple[int, int], torch.Tensor] = {}
        self.times: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}  # (t1, t0), NaN = none yet
        # (branch, block) -> latest denoised estimate x0 = x_t - sigma * v per token [f*hw, C*patch]; None = not
        # kept (a subclass that reads it sets {}: motion.py's motion weights)
        self.denoised: dict[tuple[int, int], torch.Tensor] | None = None

    # subclasses: which tokens of an active block to recompute on this row (bool [f*hw]); None = all
    def choose(self, branch: int, block: int, row: RowInput, proj: torch.Tensor, x_in: torch.Tensor):
        raise NotImplementedError

    def noise_weighted(self, distance, row: RowInput, block: int, power: float):
        """distance * s^power, s in (0, 1] the block's remaining share of its schedule on this row (power 0: as is)."""
        if not power:
            return distance
        return distance * (1.0 - (row.block_steps[block] - 1) / self.ctx.num_steps) ** power

    def tokens(self, block: int) -> slice:
        s, e = self.ctx.blocks[block]
        return slice(s * self.ctx.hw, e * self.ctx.hw)

    def predict(self, row: RowInput):
        c, d = self.ctx, self.ctx.denoiser
        commit = list(range(self.committed, row.active[0]))
        self.committed = row.active[0]
        first = commit[0] if commit else row.active[0]
        t0 = self.tokens(first).start
        t_act, t1 = self.tokens(row.active[0]).start, self.tokens(row.active[-1]).stop
        temb, proj = d.time_embedding(row.frame_timesteps, c.fps_flag)
        f0 = c.blocks[first][0]
        x_in = d.embed(row.model_input[:, :, f0:c.blocks[row.active[-1]][1]])[0]  # [tokens, dim], all branches
        layers = len(d.model.blocks)
        chosen, masks = [], []
        for b in range(c.branches):
            parts = [torch.arange(self.tokens(k).start, self.tokens(k).stop) for k in commit]
            masks.append({})
            for k in row.active:
                sl = self.tokens(k)
                mask = self.choose(b, k, row, proj, x_in[sl.start - t0:sl.stop - t0])
                if (b, k) not in self.residual:
                    mask = None  # never computed yet: nothing to reuse
                masks[b][k] = mask
                idx = torch.arange(sl.start, sl.stop)
                parts.append(idx if mask is None else idx[mask.cpu()])
            chosen.append(torch.cat(parts).to(x_in.device))
        x_out = x_in[None].repeat(c.branches, 1, 1)
        for group in _same_choice(chosen):  # branches that chose the same tokens run as one batch
            index = chosen[group[0]]
            if not len(index):
                continue
            rows = None if len(group) == c.branches else group
            x_out[torch.tensor(group, device=x_in.device)[:, None], (index - t0)[None, :]] = d.selective(
                x_in[index - t0][None].expand(len(group), -1, -1), index, self.token_frame[index],
                self.token_block[index], proj, self.freqs[:, index], self.store,
                self.token_block[:t1], c.text, rows=rows)
        for b in range(c.branches):
            for k in commit:
                sl = self.tokens(k)
                self.last_out[(b, k)] = x_out[b, sl.start - t0:sl.stop - t0]
            for k in row.active:
                sl = slice(self.tokens(k).start - t0, self.tokens(k).stop - t0)
                mask = masks[b][k]
                t = float(row.frame_timesteps[c.blocks[k][0]]) if self.extrapolation else 0.0
                whole = mask is not None and not mask.any()  # every token reuses: no gather, nothing new to store
                if whole:
                    x_out[b, sl] = x_in[sl] + self._reused_residual((b, k), t)
                elif mask is not None:
                    keep = ~mask
                    x_out[b, sl][keep] = x_in[sl][keep] + self._reused_residual((b, k), t)[keep]
                if mask is not None:
                    d.counter.token_layer_reused += int((~mask).sum()) * layers
                if not whole:
                    self._store_residual((b, k), x_out[b, sl] - x_in[sl], mask, t)
                self.last_out[(b, k)] = x_out[b, sl]
        outs = x_out[:, t_act - t0:]
        fa, fe = c.blocks[row.active[0]][0], c.blocks[row.active[-1]][1]
        pred = d.head(outs, temb[fa:fe], c.hp, c.wp)
        if self.denoised is not None:
            self._keep_denoised(row, pred, fa)
        return pred, fa

    def _keep_denoised(self, row: RowInput, pred: torch.Tensor, fa: int) -> None:
        """x0 = x_t - sigma * v of every active token (flow matching: x_t = (1 - sigma) x0 + sigma noise, v = noise - x0;
        the scheduler's timesteps are 1000 sigma). The head runs for every token each row, so this is fresh even
        for tokens that reused their residual, and it is free of the noise that x_t and the hidden states carry."""
        f, hw = pred.shape[2], self.ctx.hw
        sigma = row.frame_timesteps[fa:fa + f].float() / 1000.0
        x0 = row.model_input[:, :, fa:fa + f].float() - sigma[None, None, :, None, None] * pred.float()
        tokens = patchify(x0, self.ctx.denoiser.patch)  # [branches, f*hw, C*patch]
        for k in row.active:
            sl = slice(self.tokens(k).start - fa * hw, self.tokens(k).stop - fa * hw)
            for branch in range(len(tokens)):
                self.denoised[(branch, k)] = tokens[branch, sl]

    def _reused_residual(self, key, t: float) -> torch.Tensor:
        r1 = self.residual[key]
        if not self.extrapolation:
            return r1
        t1, t0 = self.times[key]  # per token, on the CPU (small)
        ratio = ((t - t1) / (t1 - t0)).nan_to_num(0.0, 0.0, 0.0).clamp(0.0, MAX_EXTRAPOLATION)
        step = (self.extrapolation * ratio)[:, None].to(r1.device, r1.dtype)
        return r1 + step * (r1 - self.prev_residual[key])

    def _store_residual(self, key, residual: torch.Tensor, computed: torch.Tensor | None, t: float) -> None:
        """Keep the computed tokens' residuals (None = all); reused tokens keep theirs (their output is h_in + the
        residual they reused, not a new one)."""
        old = self.residual.get(key)
        self.residual[key] = residual if computed is None or old is None else \
            torch.where(computed[:, None], residual, old)
        if not self.extrapolation:
            return
        if old is None:
            n = residual.shape[0]
            self.prev_residual[key] = residual
            self.times[key] = (torch.full((n,), t), torch.full((n,), float("nan")))  # one point: no slope yet
            return
        t1, t0 = self.times[key]
        if computed is None:
            self.prev_residual[key], self.times[key] = old, (torch.full_like(t1, t), t1)
        else:
            self.prev_residual[key] = torch.where(computed[:, None], old, self.prev_residual[key])
            computed = computed.cpu()
            self.times[key] = (torch.where(computed, t, t1), torch.where(computed, t1, t0))


def _same_choice(chosen: list[torch.Tensor]) -> list[list[int]]:
    groups: list[list[int]] = []
    for b, index in enumerate(chosen):
        for g in groups:
            if torch.equal(chosen[g[0]], index):
                g.append(b)
                break
        else:
            groups.append([b])
    return groups
