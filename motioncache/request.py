"""The generation request: one pydantic model shared by the CLI, the API and the worker.

Fields left as None take the model's defaults (its motioncache.json), then diffusers' defaults
for SkyReels-V2 DF. Rules that need no model are checked here; `resolve()` checks the rest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# diffusers' SkyReelsV2DiffusionForcingPipeline defaults
PIPELINE_DEFAULTS = dict(height=544, width=960, num_frames=97, num_inference_steps=50, fps=24, base_num_frames=97,
                         guidance_scale=6.0, ar_step=0, churn=0.0)


def _four_k_plus_one(name: str, value: int | None) -> int | None:
    if value is not None and value % 4 != 1:
        lo = value - (value - 1) % 4
        raise ValueError(f"{name} must be 4k+1 (the VAE packs 4 frames per latent frame after the first): "
                         f"use {lo} or {lo + 4}")
    return value


class CacheSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: str = Field("none", description="none | chunked (more policies: see motioncache.policies)")
    knobs: dict[str, float | int | bool | str] = Field(default_factory=dict)


class GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, max_length=2000)
    negative_prompt: str = Field("", max_length=2000)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    num_frames: int | None = Field(None, ge=1, le=100_000, description="4k+1; includes the conditioning frames")
    height: int | None = Field(None, ge=16, le=4096, multiple_of=16)
    width: int | None = Field(None, ge=16, le=4096, multiple_of=16)
    fps: int | None = Field(None, ge=1, le=120)
    num_inference_steps: int | None = Field(None, ge=1, le=1000)
    guidance_scale: float | None = Field(None, ge=1.0, le=50.0, description="1.0 = no classifier-free guidance")
    shift: float | None = Field(None, gt=0.0, le=100.0, description="flow shift; None = the scheduler's")
    ar_step: int | None = Field(None, ge=0, le=1000, description="0 = synchronous")
    causal_block_size: int | None = Field(None, ge=1, le=1000)
    base_num_frames: int | None = Field(None, ge=1, le=100_000)
    overlap_history: int | None = Field(None, ge=1, le=100_000)
    addnoise_condition: float = Field(0.0, ge=0.0, lt=1000.0)
    churn: float | None = Field(None, ge=0.0, le=1.0, description="share of fresh noise per step (stochastic "
                                "sampling, motioncache/stochastic.py); 0 = the scheduler's deterministic steps")
    max_sequence_length: int = Field(512, ge=1, le=4096)
    image: str | None = Field(None, description="first frame, base64 PNG/JPEG")
    prefix_video: str | None = Field(None, description="video to extend, base64 MP4")
    cache: CacheSpec = Field(default_factory=CacheSpec)
    output_type: Literal["frames"] = "frames"

    @field_validator("num_frames", "base_num_frames", "overlap_history")
    @classmethod
    def _frames(cls, v, info):
        return _four_k_plus_one(info.field_name, v)

    @model_validator(mode="after")
    def _combination(self):
        if self.image and self.prefix_video:
            raise ValueError("give either image or prefix_video, not both")
        return self


class ResolvedRequest(BaseModel):
    """A request with every default filled in and every rule checked against the model."""

    model_config = ConfigDict(frozen=True)

    request: GenerationRequest
    num_frames: int
    guidance_scale: float
    ar_step: int
    height: int
    width: int
    fps: int
    num_inference_steps: int
    shift: float
    churn: float
    causal_block_size: int
    base_num_frames: int
    overlap_history: int | None
    latent_frames: int
    base_latent_frames: int
    overlap_latent_frames: int
    latent_height: int
    latent_width: int

    @property
    def use_cfg(self) -> bool:
        return self.guidance_scale > 1.0


def resolve(req: GenerationRequest, *, model_defaults: dict, scheduler_shift: float, model_block_size: int,
            temporal_scale: int = 4, spatial_scale: int = 8, patch: tuple[int, int, int] = (1, 2, 2)) -> ResolvedRequest:
    """Fill defaults and reject combinations that need knowledge of the model, with a message saying what to change."""

    def pick(name):
        value = getattr(req, name)
        return value if value is not None else model_defaults.get(name, PIPELINE_DEFAULTS.get(name))

    num_frames, height, width = pick("num_frames"), pick("height"), pick("width")
    base = pick("base_num_frames")
    block = req.causal_block_size or model_defaults.get("causal_block_size") or model_block_size
    _four_k_plus_one("num_frames", num_frames)
    _four_k_plus_one("base_num_frames", base)
    unit = spatial_scale * max(patch[1], patch[2])
    if height % unit or width % unit:
        raise ValueError(f"height and width must be multiples of {unit} for this model, got {height}x{width}")
    latent = (num_frames - 1) // temporal_scale + 1
    base_latent = (base - 1) // temporal_scale + 1
    overlap = req.overlap_history
    overlap_latent = 0
    if num_frames > base:
        if overlap is None:
            raise ValueError(f"num_frames {num_frames} exceeds base_num_frames {base}: set overlap_history "
                             "(17 or 37 recommended) to generate it in overlapping windows")
        overlap_latent = (overlap - 1) // temporal_scale + 1
        if overlap_latent >= base_latent:
            raise ValueError(f"overlap_history {overlap} must be smaller than base_num_frames {base}")
    if block > base_latent:
        raise ValueError(f"causal_block_size {block} is larger than a window ({base_latent} latent frames); "
                         f"use at most {base_latent}")
    return ResolvedRequest(
        request=req, num_frames=num_frames, guidance_scale=pick("guidance_scale"), ar_step=pick("ar_step"), height=height, width=width, fps=pick("fps"),
        num_inference_steps=pick("num_inference_steps"), shift=req.shift or model_defaults.get("shift") or scheduler_shift,
        churn=pick("churn"),
        causal_block_size=block, base_num_frames=base, overlap_history=overlap, latent_frames=latent,
        base_latent_frames=base_latent, overlap_latent_frames=overlap_latent,
        latent_height=height // spatial_scale, latent_width=width // spatial_scale,
    )


def describe_validation_error(error) -> str:
    """One line per problem, naming the field: 'num_frames: must be 4k+1 ...'."""
    parts = []
    for e in error.errors():
        where = ".".join(str(x) for x in e["loc"]) or "request"
        parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
