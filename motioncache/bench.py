"""`motioncache bench`: every cache policy on the same prompts and seeds, in one process, interleaved.

For each policy: wall speedup vs `none` (ratio per prompt and seed, then the median), CPU-time speedup
(process time: steadier than wall time on a shared machine, especially with --threads 1), compute speedup
(reference FLOPs / FLOPs done), token-skip rate, PSNR and SSIM of its frames against `none`'s, and the
per-chunk PSNR drift. Prints a table and writes JSON.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np

from .policies import resolve_preset
from .quality import psnr, ssim
from .request import GenerationRequest


def run_once(engine, request: GenerationRequest) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    gen = engine.generate(request)
    chunks = list(gen)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    c = gen.counter
    total = c.token_layer_evals + c.token_layer_reused
    return {
        "frames": np.concatenate([ch.frames for ch in chunks]),
        "chunk_bounds": [(ch.frame_start, ch.frame_end) for ch in chunks],
        "wall_s": wall, "cpu_s": cpu, "denoise_s": gen.progress.timings["denoising"],
        "denoise_cpu_s": gen.progress.timings["denoising_cpu"], "flops": c.flops,
        "reference_flops": c.reference_flops,
        "token_layer_evals": c.token_layer_evals, "token_skip_rate": c.token_layer_reused / total if total else 0.0,
        "knobs": dataclasses.asdict(gen.plan.policy),  # after presets (built-in or the model's) and overrides
    }


def benchmark(engine, policies: list[str], prompts: list[str], seeds: int, knobs: dict, log=print,
              cache_knobs: dict | None = None, warmup: bool = False) -> dict:
    """cache_knobs: knob overrides applied to every caching policy that has them (e.g. rescale=identity).
    warmup: run every policy once, unrecorded, first (a GPU loads and tunes kernels on first use)."""
    if "none" not in policies:
        policies = ["none"] + policies  # the reference every figure is relative to

    def request(spec: str, prompt: str, seed: int) -> GenerationRequest:
        name, own_knobs = parse_spec(spec)  # presets are resolved by the engine (the model may recalibrate)
        extra = {k: v for k, v in (cache_knobs or {}).items() if _has_knob(resolve_preset(name)[0], k)}
        return GenerationRequest(prompt=prompt, seed=seed, **knobs,
                                 cache={"policy": name, "knobs": {**extra, **own_knobs}})

    if warmup:
        for spec in policies:
            run_once(engine, request(spec, prompts[0], 0))
            log(f"  {spec:>18} warm-up done")
    runs = []
    for p_index, prompt in enumerate(prompts):
        for seed in range(seeds):
            order = policies[(p_index + seed) % len(policies):] + policies[:(p_index + seed) % len(policies)]
            results = {}
            for spec in order:  # rotate the order so no policy always runs on a cold or warm machine
                results[spec] = run_once(engine, request(spec, prompt, seed))
                log(f"  {spec:>18} prompt {p_index} seed {seed}: {results[spec]['wall_s']:.2f} s")
            ref = results["none"]
            for spec, res in results.items():
                drift = [psnr(res["frames"][a:b], ref["frames"][a:b]) for a, b in res["chunk_bounds"]]
                runs.append({
                    "policy": spec, "prompt": prompt, "seed": seed, "wall_s": res["wall_s"],
                    "denoise_s": res["denoise_s"], "wall_speedup": ref["wall_s"] / res["wall_s"],
                    "cpu_s": res["cpu_s"], "cpu_speedup": ref["cpu_s"] / res["cpu_s"],
                    "denoise_cpu_speedup": ref["denoise_cpu_s"] / res["denoise_cpu_s"],
                    "denoise_speedup": ref["denoise_s"] / res["denoise_s"],
                    "compute_speedup": res["reference_flops"] / res["flops"], "flops": res["flops"],
                    "token_skip_rate": res["token_skip_rate"], "psnr": psnr(res["frames"], ref["frames"]),
                    "ssim": ssim(res["frames"], ref["frames"]), "chunk_psnr": drift, "knobs": res["knobs"],
                })
    results = []
    for spec in policies:
        mine = [r for r in runs if r["policy"] == spec]
        med = lambda key: statistics.median(r[key] for r in mine)  # noqa: E731
        results.append({"policy": spec, **{k: med(k) for k in ("wall_speedup", "cpu_speedup", "denoise_speedup",
                                                                "denoise_cpu_speedup", "compute_speedup",
                                                                "token_skip_rate", "psnr", "ssim", "wall_s")},
                        "psnr_worst": min(r["psnr"] for r in mine),  # a median hides the one video that drifts
                        "chunk_psnr_first": med_first(mine, 0), "chunk_psnr_last": med_first(mine, -1),
                        "knobs": mine[0]["knobs"]})
    return {"results": results, "runs": runs, "settings": {"policies": policies, "prompts": prompts, "seeds": seeds,
                                                           **knobs}}


def parse_spec(spec: str) -> tuple[str, dict]:
    """'motioncache-slow:threshold=0.5:motion_floor=0.3' -> ('motioncache-slow', {knobs}): one bench run
    (one shared reference) can compare several settings of the same policy."""
    name, *pairs = spec.split(":")
    knobs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"policy {spec!r}: knobs are written name=value after ':', got {pair!r}")
        knobs[key] = value
    return name, knobs


def _has_knob(policy: str, knob: str) -> bool:
    from dataclasses import fields

    from .policies import POLICIES

    return knob in {f.name for f in fields(POLICIES[policy])}


def med_first(runs, index):
    return statistics.median(r["chunk_psnr"][index] for r in runs)


def format_table(report: dict) -> str:
    w = max(18, *(len(r["policy"]) for r in report["results"]))
    head = f"{'policy':>{w}} {'wall x':>7} {'cpu x':>6} {'denoise x':>9} {'dn cpu x':>8} {'compute x':>9} {'skip':>6} " \
           f"{'PSNR dB':>8} {'worst':>6} {'SSIM':>6} {'chunk PSNR first/last':>22}"
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(f"{r['policy']:>{w}} {r['wall_speedup']:7.2f} {r['cpu_speedup']:6.2f} {r['denoise_speedup']:9.2f} "
                     f"{r['denoise_cpu_speedup']:8.2f} "
                     f"{r['compute_speedup']:9.2f} {r['token_skip_rate']:6.1%} {_db(r['psnr']):>8} "
                     f"{_db(r['psnr_worst']):>6} {r['ssim']:6.4f} "
                     f"{_db(r['chunk_psnr_first']):>10} / {_db(r['chunk_psnr_last']):<9}")
    return "\n".join(lines)


def _db(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.2f}"


def write_json(report: dict, path: str) -> None:
    """Strict JSON: an infinite PSNR (identical frames) is written as null."""

    def finite(x):
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [finite(v) for v in x]
        return x

    Path(path).write_text(json.dumps(finite(report), indent=1, allow_nan=False))
