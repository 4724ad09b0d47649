"""Cache policies, selectable per request: one config dataclass and one file each.

    none         the reference: the whole window on every row (as diffusers)
    chunked      exact: active blocks only, finished blocks' keys/values from a KV cache
    teacache     step-level TeaCache over the whole window
    flowcache    chunk-level: chunked + a TeaCache decision per block and CFG branch
    motioncache  token-level, motion-aware (DESIGN.md)

`policy-slow` / `policy-fast` name presets; knobs override any field. A model directory may recalibrate
the presets for its own dynamics (motioncache.json: {"cache_presets": {"motioncache": {"slow": {...}}}}), as
TeaCache-style thresholds depend on the model; the preset names stay the same.
"""

from __future__ import annotations

from dataclasses import fields

from .chunked import ChunkedCache
from .flowcache import FlowCache
from .motion import MotionCache
from .none import NoCache
from .teacache import TeaCache

POLICIES = {p.name: p for p in (NoCache, ChunkedCache, TeaCache, FlowCache, MotionCache)}
# The chunk- and token-level presets extrapolate reused residuals half-way (token_runner.py): on the shipped demo
# model factor 0.5 beats 1 by 0.9-4.6 dB median PSNR at the same compute (docs/benchmarks.md, "Residual extrapolation
# half-way"). The knob's own default stays 0, the reference behaviour.
PRESETS = {
    "teacache": {"slow": {"threshold": 0.08}, "fast": {"threshold": 0.2}},
    "flowcache": {"slow": {"threshold": 0.1, "extrapolation": 0.5}, "fast": {"threshold": 0.25, "extrapolation": 0.5}},
    "motioncache": {"slow": {"threshold": 0.1, "extrapolation": 0.5},
                    "fast": {"threshold": 0.25, "extrapolation": 0.5}},
}


def resolve_preset(spec: str, model_presets: dict | None = None) -> tuple[str, dict]:
    """'motioncache-fast' -> ('motioncache', {...}); a plain name has no preset knobs. model_presets: a model's
    recalibration, {policy: {preset: knobs}}, applied over the built-in preset."""
    name, _, preset = spec.partition("-")
    if spec in POLICIES or name not in POLICIES:
        return spec, {}  # make_policy reports an unknown name
    if preset not in PRESETS.get(name, {}):
        known = [f"{n}-{p}" for n, ps in PRESETS.items() for p in ps]
        raise ValueError(f"unknown cache preset {spec!r}; presets: {', '.join(known)}")
    return name, {**PRESETS[name][preset], **((model_presets or {}).get(name) or {}).get(preset, {})}


def make_policy(name: str, knobs: dict | None = None, model_presets: dict | None = None):
    name, preset_knobs = resolve_preset(name, model_presets)
    if name not in POLICIES:
        raise ValueError(f"unknown cache policy {name!r}; choose one of: {', '.join(POLICIES)} "
                         f"(or a preset such as motioncache-slow)")
    cls = POLICIES[name]
    types = {f.name: f.type for f in fields(cls)}
    knobs = {**preset_knobs, **(knobs or {})}
    unknown = set(knobs) - set(types)
    if unknown:
        raise ValueError(f"cache policy {name!r} has no knob(s) {', '.join(sorted(unknown))}; "
                         f"knobs: {', '.join(sorted(types)) or 'none'}")
    values = {}
    for key, value in knobs.items():
        default = getattr(cls, key)
        try:
            values[key] = _coerce(value, type(default))
        except (TypeError, ValueError):
            raise ValueError(f"cache knob {key}={value!r}: expected {type(default).__name__}") from None
    return cls(**values)


def _coerce(value, kind):
    if kind is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return bool(value)
    if kind is float and isinstance(value, bool):
        raise TypeError(value)
    return kind(value)
