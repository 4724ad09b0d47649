"""Submit-time checks beyond the request schema: server limits and model-dependent rules.

Workers publish a model profile (defaults, block size, VAE scales, cache policies and their knobs' rules) to
Redis, so the API can resolve a request exactly as the engine will (pure pydantic, no torch) and reject
it with a 422 naming the field instead of letting it fail on a worker. Before any worker has published a
profile, only the fields the client set are checked; the worker re-checks the resolved request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from motioncache.knob_rules import check_request
from motioncache.request import PIPELINE_DEFAULTS, GenerationRequest, resolve

from . import keys
from .settings import Settings


@dataclass
class Problem:
    field: str
    message: str
    rule: str


def load_profile(r) -> dict | None:
    raw = r.get(keys.MODEL_PROFILE)
    return json.loads(raw) if raw else None


def _field_of(message: str) -> str:
    first = message.split(" ", 1)[0].rstrip(":,")
    return first if first in GenerationRequest.model_fields else "request"


def check(req: GenerationRequest, settings: Settings, profile: dict | None) -> tuple[list[Problem], dict]:
    """Problems (empty = accept) and the sizes the limits were checked on (resolved when a profile exists)."""
    problems: list[Problem] = []
    sizes = {k: getattr(req, k) for k in ("num_frames", "height", "width", "num_inference_steps", "guidance_scale")}
    if profile:
        policies = profile["policies"]
        if req.cache.policy not in policies:
            problems.append(Problem("cache.policy", f"unknown cache policy {req.cache.policy!r}; choose one of: "
                                    f"{', '.join(policies)}", "one_of"))
        else:
            problems += [Problem("cache.knobs", f"policy {req.cache.policy!r}: {message}", "knob_rules")
                         for message in check_request(policies[req.cache.policy], req.cache.knobs)]
        try:
            resolved = resolve(req, model_defaults=profile["defaults"], scheduler_shift=profile["scheduler_shift"],
                               model_block_size=profile["model_block_size"], temporal_scale=profile["temporal_scale"],
                               spatial_scale=profile["spatial_scale"], patch=tuple(profile["patch"]))
            sizes = {k: getattr(resolved, k) for k in sizes}
        except ValueError as e:
            problems.append(Problem(_field_of(str(e)), str(e), "model"))
    if sizes["num_frames"] is not None and sizes["num_frames"] > settings.max_frames:
        problems.append(Problem("num_frames", f"{sizes['num_frames']} frames exceed this server's limit of "
                                f"{settings.max_frames}", "max_frames"))
    if sizes["height"] and sizes["width"] and sizes["height"] * sizes["width"] > settings.max_pixels:
        problems.append(Problem("height", f"{sizes['width']}x{sizes['height']} = {sizes['height'] * sizes['width']} "
                                f"pixels per frame exceed this server's limit of {settings.max_pixels}",
                                "max_pixels"))
    if sizes["num_inference_steps"] is not None and sizes["num_inference_steps"] > settings.max_steps:
        problems.append(Problem("num_inference_steps", f"{sizes['num_inference_steps']} steps exceed this server's "
                                f"limit of {settings.max_steps}", "max_steps"))
    for name in ("prompt", "negative_prompt"):
        if len(getattr(req, name)) > settings.max_prompt_length:
            problems.append(Problem(name, f"{len(getattr(req, name))} characters exceed this server's limit of "
                                    f"{settings.max_prompt_length}", "max_prompt_length"))
    return problems, sizes


def job_timeout_s(sizes: dict, settings: Settings) -> int:
    """RQ job timeout that grows with the work: frames x pixels x steps (x2 with classifier-free guidance)."""
    value = {k: sizes.get(k) or PIPELINE_DEFAULTS[k] for k in ("num_frames", "height", "width", "num_inference_steps",
                                                                "guidance_scale")}
    units = value["num_frames"] * value["height"] * value["width"] * value["num_inference_steps"] / 1e6
    units *= 2 if value["guidance_scale"] > 1.0 else 1
    return int(min(settings.job_timeout_max_s, settings.job_timeout_base_s + settings.job_timeout_per_unit_s * units))
