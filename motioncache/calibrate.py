"""`motioncache calibrate`: the threshold a cache preset needs on a model to hold a target PSNR.

TeaCache-style thresholds depend on the model (how far its timestep modulation moves per step), so presets
calibrated on the demo model do not carry over to a real checkpoint. This runs `none` once per prompt and seed
(shared by every preset calibrated together), then bisects each preset's threshold for the largest one whose
median PSNR against `none` stays at or above the target (threshold 0 recomputes everything: exact).
`write_preset` stores the result in the model's motioncache.json (`cache_presets`), where the engine, the CLI and the
server read it under the same name.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from .bench import run_once
from .policies import make_policy, preset_names
from .quality import psnr
from .request import GenerationRequest


def split_preset(spec: str) -> tuple[str, str]:
    """'motioncache-slow' -> ('motioncache', 'slow'); ValueError unless it names a preset."""
    if spec not in preset_names():
        raise ValueError(f"calibrate takes a preset ({', '.join(preset_names())}), got {spec!r}")
    policy, _, preset = spec.partition("-")
    return policy, preset


def references(engine, prompts: list[str], seeds: int, knobs: dict) -> list[tuple[str, int, np.ndarray]]:
    """(prompt, seed, `none`'s frames) for every prompt and seed: what every threshold is measured against, and the
    costliest runs of a calibration, so several presets share them."""
    return [(p, s, run_once(engine, GenerationRequest(prompt=p, seed=s, **knobs, cache={"policy": "none"}))["frames"])
            for p in prompts for s in range(seeds)]


def calibrate(engine, spec: str, refs: list, knobs: dict, target_psnr: float, high: float = 1.0,
              iterations: int = 6, cache_knobs: dict | None = None, log=print, low: float = 0.0) -> dict:
    """{"threshold", "psnr", "psnr_worst", "compute_speedup", "tried": [...]}: the largest threshold in [low, high]
    found by `iterations` bisection steps whose median PSNR against `refs` (from `references`) is >= target_psnr
    (threshold 0 and compute_speedup None if none there is). A `low` above 0 narrows the search around a point
    expected to hold (a known calibration), so fewer steps reach the same resolution; it is measured only if no
    point above it holds. knobs: the generation's, as `refs` were made with; cache_knobs: the preset's other knobs,
    held fixed."""
    if not 0 <= low < high:
        raise ValueError(f"the search needs 0 <= low < high, got low {low:g}, high {high:g}")
    split_preset(spec)
    tried = []

    def measure(threshold: float) -> dict:
        cache = {"policy": spec, "knobs": {**(cache_knobs or {}), "threshold": threshold}}
        runs = [run_once(engine, GenerationRequest(prompt=p, seed=s, **knobs, cache=cache)) for p, s, _ in refs]
        scores = [psnr(r["frames"], ref) for r, (_, _, ref) in zip(runs, refs)]
        row = {"threshold": threshold, "psnr": statistics.median(scores), "psnr_worst": min(scores),
               "compute_speedup": statistics.median(r["reference_flops"] / r["flops"] for r in runs)}
        tried.append(row)
        log(f"  threshold {threshold:.4g}: {row['compute_speedup']:.2f}x compute, median PSNR {row['psnr']:.2f} dB")
        return row

    best = {"threshold": 0.0, "psnr": None, "psnr_worst": None, "compute_speedup": None}  # none found
    top = measure(high)
    if top["psnr"] >= target_psnr:
        best = top
    else:
        lo, hi = low, high
        for _ in range(iterations):
            mid = float(f"{(lo + hi) / 2:.6g}")  # 0.036, not 0.036000000000000004, in motioncache.json
            row = measure(mid)
            if row["psnr"] >= target_psnr:
                best, lo = row, mid
            else:
                hi = mid
        if best["psnr"] is None and low > 0:
            row = measure(low)
            if row["psnr"] >= target_psnr:
                best = row
    return {"policy": spec, "target_psnr": target_psnr, **best, "tried": tried}


def write_preset(model_dir: str | Path, spec: str, knobs: dict, measured: dict | None = None) -> Path:
    """Set the preset's knobs in model_dir/motioncache.json (cache_presets), keeping everything else there.
    measured: what the calibration found there (operating_point), kept beside it under `cache_calibration` so the
    served model says what each preset buys (GET /v1/model publishes the file)."""
    policy, preset = split_preset(spec)
    checked = make_policy(spec, knobs)  # a bad knob fails here, not in the next request; values stored typed
    path = Path(model_dir) / "motioncache.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.setdefault("cache_presets", {}).setdefault(policy, {}).setdefault(preset, {}).update(
        {key: getattr(checked, key) for key in knobs})
    if measured is not None:
        config.setdefault("cache_calibration", {})[spec] = measured
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def operating_point(result: dict, refs: list, knobs: dict) -> dict:
    """A calibration's result as stored beside the preset: the medians it holds and what they were measured on
    (`request`: the generation knobs given, over the model's defaults)."""
    return {"target_psnr": result["target_psnr"], "psnr": round(result["psnr"], 2),
            "psnr_worst": round(result["psnr_worst"], 2), "compute_speedup": round(result["compute_speedup"], 2),
            "prompts": len({p for p, _, _ in refs}), "videos": len(refs), "request": knobs}
