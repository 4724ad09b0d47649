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

from ..knob_rules import coerce, rules_of, unknown_knobs
from .chunked import ChunkedCache
from .flowcache import FlowCache
from .motion import MotionCache
from .none import NoCache
from .teacache import TeaCache

POLICIES = {p.name: p for p in (NoCache, ChunkedCache, TeaCache, FlowCache, MotionCache)}
# The chunk- and token-level presets extrapolate reused residuals half-way (token_runner.py): on the shipped demo
# model factor 0.5 beats 1 by 0.9-4.6 dB median PSNR at the same compute (docs/benchmarks.md, "Residual extrapolation
# half-way"). The knob's own default stays 0, the reference behaviour. Both motioncache presets measure each token's
# own input change (distance token) and recompute the same tokens in both CFG branches: from ~3x compute up this
# beats flowcache at the same speed by 3-4 dB (docs/benchmarks.md, "Per-token distance, one choice for both CFG
# branches"); the plain policy keeps the reference's global distance and per-branch choices. Every flowcache and
# motioncache preset weights each step's distance by the block's remaining share of its schedule (noise_power 1,
# 0.5 for motioncache-fast): errors made late in a block's schedule cost the video little, so recomputation moves
# to the early steps (docs/benchmarks.md, "Noise-weighted distance" and "Weighting by the schedule, not the shifted
# sigma"). These thresholds were calibrated on an earlier demo model (the starting point for a new checkpoint); the
# shipped one carries its own in models/demo/motioncache.json (`motioncache calibrate --write`: slow presets 30 dB,
# fast 25 dB at the bench's defaults).
PRESETS = {
    "teacache": {"slow": {"threshold": 0.08}, "fast": {"threshold": 0.2}},
    "flowcache": {"slow": {"threshold": 0.05, "noise_power": 1.0, "extrapolation": 0.5},
                  "fast": {"threshold": 0.08, "noise_power": 1.0, "extrapolation": 0.5}},
    "motioncache": {"slow": {"threshold": 0.05, "noise_power": 1.0, "extrapolation": 0.5, "distance": "token",
                             "shared_choice": True},
                    "fast": {"threshold": 0.15, "noise_power": 0.5, "extrapolation": 0.5, "distance": "token",
                             "shared_choice": True}},
}


def preset_names() -> list[str]:
    """Every preset as a request names it: 'teacache-slow', ..., 'motioncache-fast'."""
    return [f"{name}-{preset}" for name, presets in PRESETS.items() for preset in presets]


def resolve_preset(spec: str, model_presets: dict | None = None) -> tuple[str, dict]:
    """'motioncache-fast' -> ('motioncache', {...}); a plain name has no preset knobs. model_presets: a model's
    recalibration, {policy: {preset: knobs}}, applied over the built-in preset."""
    name, _, preset = spec.partition("-")
    if spec in POLICIES or name not in POLICIES:
        return spec, {}  # make_policy reports an unknown name
    if preset not in PRESETS.get(name, {}):
        raise ValueError(f"unknown cache preset {spec!r}; presets: {', '.join(preset_names())}")
    return name, {**PRESETS[name][preset], **((model_presets or {}).get(name) or {}).get(preset, {})}


def make_policy(name: str, knobs: dict | None = None, model_presets: dict | None = None):
    name, preset_knobs = resolve_preset(name, model_presets)
    if name not in POLICIES:
        raise ValueError(f"unknown cache policy {name!r}; choose one of: {', '.join(POLICIES)} "
                         f"(or a preset such as motioncache-slow)")
    cls = POLICIES[name]
    rules = rules_of(cls)
    knobs = {**preset_knobs, **(knobs or {})}
    unknown = unknown_knobs(knobs, rules)
    if unknown:
        raise ValueError(f"cache policy {name!r} has {unknown}")
    return cls(**{key: coerce(key, value, rules[key]["type"]) for key, value in knobs.items()})


def published_rules(model_presets: dict | None = None) -> dict[str, dict]:
    """{policy or preset: {knob: rule with the default it resolves to}}: what a worker publishes so the API can
    check knobs (knob_rules.check_request) without torch."""
    out = {name: rules_of(cls) for name, cls in POLICIES.items()}
    for name, presets in PRESETS.items():
        for preset in presets:
            spec = f"{name}-{preset}"
            out[spec] = rules_of(POLICIES[name], resolve_preset(spec, model_presets)[1])
    return out
