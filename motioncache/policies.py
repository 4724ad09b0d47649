"""Cache policies, selectable per request. Each is a small config; the engine reads what it needs.

`none`: the reference path: the whole window goes through the transformer on every row (as diffusers).
`chunked`: only the blocks being denoised run; finished blocks' keys/values come from a per-layer KV
cache, computed once with their clean latents at timestep 0. Exact under block-causal attention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class NoCache:
    name = "none"
    kv_cache = False


@dataclass(frozen=True)
class ChunkedCache:
    name = "chunked"
    kv_cache = True


POLICIES = {p.name: p for p in (NoCache, ChunkedCache)}


def make_policy(name: str, knobs: dict | None = None):
    if name not in POLICIES:
        raise ValueError(f"unknown cache policy {name!r}; choose one of: {', '.join(POLICIES)}")
    cls = POLICIES[name]
    allowed = {f.name for f in fields(cls)}
    unknown = set(knobs or {}) - allowed
    if unknown:
        raise ValueError(f"cache policy {name!r} has no knob(s) {', '.join(sorted(unknown))}; "
                         f"knobs: {', '.join(sorted(allowed)) or 'none'}")
    return cls(**(knobs or {}))
