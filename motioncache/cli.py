"""`motioncache` command line: generate, bench, calibrate, make-tiny-model, serve, worker, client, train-demo, evaluate.

Errors are one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path

from .knob_rules import parse_knob_args

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "demo"


class CliError(Exception):
    pass


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=f"diffusers-format SkyReels-V2 DF directory (default {DEFAULT_MODEL})")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--num-frames", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--fps", type=int)
    p.add_argument("--steps", type=int, dest="num_inference_steps")
    p.add_argument("--guidance-scale", type=float)
    p.add_argument("--shift", type=float)
    p.add_argument("--ar-step", type=int)
    p.add_argument("--causal-block-size", type=int)
    p.add_argument("--base-num-frames", type=int)
    p.add_argument("--overlap-history", type=int)
    p.add_argument("--addnoise-condition", type=float)
    p.add_argument("--churn", type=float, help="stochastic steps: share of fresh noise per step, 0-1 (default: the "
                   "model's, else 0 = the scheduler's deterministic steps)")
    p.add_argument("--max-sequence-length", type=int, default=512)
    p.add_argument("--cache", default="none",
                   help="cache policy: none | chunked | teacache | flowcache | motioncache, or a preset such as "
                        "motioncache-slow / motioncache-fast")
    p.add_argument("--cache-knob", action="append", default=[], metavar="NAME=VALUE",
                   help="override a knob of the cache policy (repeatable), e.g. threshold=0.15")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")


def _request_fields(args) -> dict:
    names = ["negative_prompt", "num_frames", "height", "width", "fps", "num_inference_steps", "guidance_scale",
             "shift", "ar_step", "causal_block_size", "base_num_frames", "overlap_history", "addnoise_condition",
             "churn", "max_sequence_length"]
    fields = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    fields["cache"] = {"policy": args.cache, "knobs": parse_knob_args(args.cache_knob)}
    return fields


def _read_b64(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return base64.b64encode(Path(path).read_bytes()).decode()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror}") from None


def load_engine(model: str | None, device: str, dtype: str, threads: int | None = None):
    """The engine over a model directory (default: the demo model); threads sets torch's CPU threads first."""
    import torch

    from .engine import Engine
    from .model_files import load_components

    if threads is not None:
        if threads < 1:
            raise CliError("--threads must be at least 1")
        torch.set_num_threads(threads)
    path = Path(model) if model else DEFAULT_MODEL
    if not path.exists():
        hint = "" if model else " (the demo model is not there: pass --model DIR; `motioncache make-tiny-model DIR` makes a tiny one)"
        raise CliError(f"model directory {path} does not exist{hint}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CliError(f"--device {device}: no CUDA device is available on this machine")
    return Engine(load_components(path, device=device, dtype=dtype))


def cmd_generate(args) -> None:
    import numpy as np
    from tqdm import tqdm

    from .request import GenerationRequest
    from .video_io import write_mp4

    request = GenerationRequest(prompt=args.prompt, seed=args.seed, image=_read_b64(args.image, "image"),
                                prefix_video=_read_b64(args.prefix_video, "prefix video"), **_request_fields(args))
    engine = load_engine(args.model, args.device, args.dtype)
    generation = engine.generate(request)  # validates and plans before any work
    plan, progress, counter = generation.plan, generation.progress, generation.counter
    bar = tqdm(total=plan.total_rows, unit="row", desc="denoising", file=sys.stderr, disable=args.quiet)
    progress.on_row = lambda p: bar.update(1)
    started = time.perf_counter()
    frames, chunk_stats = [], []
    for chunk in generation:
        frames.append(chunk.frames)
        chunk_stats.append({"index": chunk.index, "frames": [chunk.frame_start, chunk.frame_end], **chunk.stats})
        bar.set_postfix(chunks=f"{chunk.index + 1}/{plan.total_chunks}")
    bar.close()
    video = (np.concatenate(frames) * 255.0).round().clip(0, 255).astype(np.uint8)
    t = time.perf_counter()
    write_mp4(video, args.output, plan.resolved.fps)
    progress.timings["encoding"] = time.perf_counter() - t
    if args.frames_npy:
        np.save(args.frames_npy, video)
    stats = summarize(plan, engine, counter, progress, time.perf_counter() - started)
    stats["chunks"] = chunk_stats
    if args.stats:
        Path(args.stats).write_text(json.dumps(stats, indent=2))
    print(f"wrote {args.output}: {len(video)} frames {video.shape[2]}x{video.shape[1]} in {stats['wall_s']:.1f} s, "
          f"{stats['chunks_total']} chunks, compute speedup {stats['compute_speedup']:.2f}x vs reference")


def summarize(plan, engine, counter, progress, wall_s: float) -> dict:
    from .accounting import ComputeCounter

    r = plan.resolved
    return {
        "request": r.request.model_dump(exclude={"image", "prefix_video"}),
        "resolved": {k: getattr(r, k) for k in ("num_frames", "guidance_scale", "ar_step", "height", "width", "fps", "num_inference_steps", "shift", "churn",
                                                "causal_block_size", "base_num_frames", "latent_frames")},
        "windows": len(plan.windows), "rows_total": plan.total_rows, "chunks_total": plan.total_chunks,
        **counter.snapshot(), **ComputeCounter.figures(counter.snapshot()),
        "timings_s": dict(progress.timings), "wall_s": wall_s,
    }


# The paper's schedule shape (SkyReels-V2-DF long video); any flag overrides it.
BENCH_SCHEDULE = dict(num_inference_steps=50, ar_step=5, causal_block_size=5, base_num_frames=97, num_frames=177,
                      overlap_history=17, addnoise_condition=20.0, guidance_scale=6.0)
BENCH_POLICIES = "none,chunked,teacache-slow,flowcache-slow,motioncache-slow,motioncache-fast"


def _prompts(args) -> list[str]:
    """--prompt (repeatable) and the lines of --prompts FILE."""
    prompts = list(args.prompt or [])
    if args.prompts:
        try:
            prompts += [line.strip() for line in Path(args.prompts).read_text().splitlines() if line.strip()]
        except OSError as e:
            raise CliError(f"cannot read --prompts {args.prompts}: {e.strerror}") from None
    if not prompts:
        raise CliError("give --prompt TEXT (repeatable) or --prompts FILE (one prompt per line)")
    return prompts


def cmd_bench(args) -> None:
    from .bench import benchmark, format_table, write_json
    from .request import GenerationRequest

    prompts = _prompts(args)
    knobs = {**BENCH_SCHEDULE, **_request_fields(args)}
    cache_knobs = knobs.pop("cache")["knobs"]
    GenerationRequest(prompt=prompts[0], **knobs)  # fail fast on bad knobs, before loading the model
    from .bench import parse_spec
    from .policies import make_policy

    for spec in args.policies.split(","):
        make_policy(*parse_spec(spec))
    engine = load_engine(args.model, args.device, args.dtype, args.threads)
    report = benchmark(engine, args.policies.split(","), prompts, args.seeds, knobs, cache_knobs=cache_knobs,
                       warmup=args.warmup,
                       log=(lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr)))
    print(format_table(report))
    if args.json:
        write_json(report, args.json)


def _per_preset(text: str, specs: list[str], flag: str, kind=float) -> list:
    """'30' or '30,25' -> one value per preset in specs (a single value holds for all)."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        noun = "whole numbers" if kind is int else "numbers"
        raise CliError(f"{flag} takes {noun} separated by commas, got {text!r}") from None
    if len(values) == 1:
        values *= len(specs)
    if len(values) != len(specs):
        raise CliError(f"{flag}: give one value, or one per preset ({len(specs)})")
    return values


def cmd_calibrate(args) -> None:
    from .bench import write_json
    from .calibrate import calibrate, operating_point, references, split_preset, write_preset
    from .policies import make_policy
    from .request import GenerationRequest

    specs = args.cache.split(",")
    targets = _per_preset(args.target_psnr, specs, "--target-psnr")
    highs = _per_preset(args.high, specs, "--high")
    lows = _per_preset(args.low, specs, "--low")
    iterations = _per_preset(args.iterations, specs, "--iterations", int)
    if min(targets) <= 0 or min(highs) <= 0 or min(iterations) < 1:
        raise CliError("--target-psnr and --high must be positive and --iterations at least 1")
    if any(not 0 <= low < high for low, high in zip(lows, highs)):
        raise CliError("--low must be at least 0 and below --high for every preset")
    prompts = _prompts(args)
    knobs = _request_fields(args)  # unset knobs: the model's defaults, as served (not the bench's schedule)
    cache_knobs = knobs.pop("cache")["knobs"]
    for spec in specs:  # fail fast, before loading the model
        split_preset(spec)
        GenerationRequest(prompt=prompts[0], **knobs, cache={"policy": spec, "knobs": cache_knobs})
        make_policy(spec, cache_knobs)
    engine = load_engine(args.model, args.device, args.dtype, args.threads)
    log = (lambda *_: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    refs = references(engine, prompts, args.seeds, knobs)
    results = []
    for spec, target, low, high, steps in zip(specs, targets, lows, highs, iterations):
        log(f"{spec}, target {target:g} dB:")
        result = calibrate(engine, spec, refs, knobs, target, high, steps, cache_knobs, log=log, low=low)
        results.append(result)
        if result["compute_speedup"] is None:
            last = result["tried"][-1]
            where = "above 0" if not low else f"from {low:g} up"
            print(f"{spec}: no threshold {where} held {target:g} dB (smallest tried {last['threshold']:.4g}: "
                  f"{last['psnr']:.2f} dB); nothing written")
            continue
        print(f"{spec}: threshold {result['threshold']:.4g} -> {result['compute_speedup']:.2f}x compute, "
              f"median PSNR {result['psnr']:.2f} dB (worst {result['psnr_worst']:.2f}) against none")
        if args.write:
            path = write_preset(args.model or DEFAULT_MODEL, spec, {**cache_knobs, "threshold": result["threshold"]},
                                operating_point(result, refs, knobs))
            print(f"wrote {spec} threshold {result['threshold']:.4g} to {path}")
    if args.json:
        write_json({"results": results}, args.json)


def cmd_make_tiny_model(args) -> None:
    from .tiny_model import make_tiny_model

    out = make_tiny_model(args.dir, num_layers=args.layers, heads=args.heads, head_dim=args.head_dim,
                          ffn_dim=args.ffn_dim, text_dim=args.text_dim,
                          causal_block_size=args.causal_block_size, seed=args.seed)
    print(f"wrote a tiny random SkyReels-V2 DF pipeline to {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motioncache", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a video from a prompt")
    g.add_argument("--prompt", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--image", help="PNG/JPEG used as the first frame")
    g.add_argument("--prefix-video", help="MP4 to extend")
    g.add_argument("--output", default="out.mp4")
    g.add_argument("--frames-npy", help="also save the frames as uint8 .npy [F,H,W,3]")
    g.add_argument("--stats", help="write the request's figures as JSON")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_generation_args(g)
    g.set_defaults(func=cmd_generate)
    b = sub.add_parser("bench", help="compare cache policies on the same prompts and seeds")
    b.add_argument("--policies", default=BENCH_POLICIES, help="comma-separated policies (none is always included); "
                   "knobs per policy after colons: motioncache:threshold=0.5:motion_floor=0.3")
    b.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    b.add_argument("--prompts", help="file with one prompt per line")
    b.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per prompt")
    b.add_argument("--json", help="write results as JSON")
    b.add_argument("--threads", type=int, help="torch CPU threads (1 makes CPU time a steady measure)")
    b.add_argument("--warmup", action="store_true",
                   help="run every policy once, unrecorded, before measuring (GPU: first-use kernel loading)")
    b.add_argument("--quiet", action="store_true")
    _add_generation_args(b)
    b.set_defaults(func=cmd_bench)
    c = sub.add_parser("calibrate", help="find the threshold a preset needs on this model for a target PSNR")
    c.add_argument("--target-psnr", required=True,
                   help="median PSNR (dB) against none to hold: one value, or one per preset in --cache (comma-separated)")
    c.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    c.add_argument("--prompts", help="file with one prompt per line")
    c.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per prompt")
    c.add_argument("--high", default="1",
                   help="largest threshold to consider: one value, or one per preset in --cache (comma-separated)")
    c.add_argument("--low", default="0",
                   help="smallest threshold to consider, expected to hold the target (e.g. a known calibration): "
                        "one value, or one per preset in --cache (comma-separated)")
    c.add_argument("--iterations", default="6", help="bisection steps: one value, or one per preset in --cache")
    c.add_argument("--write", action="store_true", help="store the threshold in the model's motioncache.json")
    c.add_argument("--json", help="write every threshold tried as JSON")
    c.add_argument("--threads", type=int, help="torch CPU threads")
    c.add_argument("--quiet", action="store_true")
    _add_generation_args(c)  # --cache names the presets to calibrate, comma-separated; they share the none runs
    c.set_defaults(func=cmd_calibrate)
    t = sub.add_parser("make-tiny-model", help="write a tiny random-weight model directory (tests, smoke runs)")
    t.add_argument("dir")
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--heads", type=int, default=2)
    t.add_argument("--head-dim", type=int, default=12)
    t.add_argument("--ffn-dim", type=int, default=48)
    t.add_argument("--text-dim", type=int, default=16, help="text encoder width (SkyReels-V2/Wan: 4096)")
    t.add_argument("--causal-block-size", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_make_tiny_model)
    import importlib
    import importlib.util

    for name in ("motioncache.serve_cli", "motioncache.demo_train", "motioncache.evaluate"):  # subcommands that live with their feature
        if importlib.util.find_spec(name):
            module = importlib.import_module(name)
            if hasattr(module, "register"):
                module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from .request import describe_validation_error

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValidationError as e:
        print(f"error: {describe_validation_error(e)}", file=sys.stderr)
        return 2
    except (CliError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    # `python -m motioncache.cli` runs this file as __main__, a second copy of the module: call the package's own
    # main, so the subcommands that import from motioncache.cli raise the CliError it catches
    from motioncache.cli import main as package_main

    sys.exit(package_main())
