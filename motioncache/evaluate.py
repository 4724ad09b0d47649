"""Procedural evaluator for the moving-shapes demo (no learned metrics).

Heuristics, all tolerant to blur, noise and slight colour shifts of generated video:
- Static background: the per-pixel temporal median, except where an object covers a pixel for more than
  half of the clip (the middle of a short path): there the "two ends" value, the median of the first
  END_SHARE of the frames or that of the last, whichever is nearer the dominant colour (the whole video's
  median colour). A moving object has left its start by the end (demo paths are longer than the object is
  wide), so one end shows the background; a still object is in both ends and stays in the background.
- Moving object: per frame, the largest connected region whose RGB distance to that background exceeds
  DIFF_THRESHOLD; its centroid track gives the direction (robust Theil-Sen slope over frames).
- Still object: it is part of the median image, so instead take the largest region of the median image
  that differs by more than SALIENT_THRESHOLD from the dominant background colour (the global median
  colour; demo textures are low-amplitude brightness patterns over < ~55% of the frame, so they stay below).
- Main object = the larger of the two candidates (the demo's second object is always much smaller).
- Colour: nearest named colour to the median colour of the object's pixels.
- Shape: two medians over frames, measured on the region re-cut at 50% estimated coverage so blur and
  thresholds don't bias them: the share of the area above the bounding box's middle row (demo triangles
  point up: 0.25; circles and squares 0.5) tells triangles apart, then the width of the rows a quarter and
  three quarters down over the widest row's (square 1.0, circle 0.87) squares from circles. Both survive the
  rounded corners a small VAE leaves, which the fill ratio (area / bounding box, still reported) does not:
  through the demo VAE a triangle's fill ratio goes 0.52 -> 0.70-0.75, into the circles' range.
- Flicker: mean |frame[t+1] - frame[t]| over background pixels (never near anything that differs from the
  median), in [0, 255] units.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from motioncache.demo_data import OBJECT_COLORS, PATH_STYLES, SHIPPED_PATHS

DIFF_THRESHOLD = 45.0      # demo objects differ from every background by >= 120 (RGB distance)
SALIENT_THRESHOLD = 70.0   # above any texture's deviation from the base colour (<= 16 * sqrt(3) * 2)
END_SHARE = 0.15           # frames at each end of the clip that give the two-ends background
STILL_FRACTION = 0.1       # displacement below this fraction of the frame counts as "still"
TRIANGLE_TOP = 0.44  # area share above the box's middle: upward triangle 0.25, circle and square 0.5
SQUARE_QUARTER = 0.94  # quarter-row width / widest row: circle 0.87, square 1.0
SECTORS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
FIELDS = ("color", "shape", "direction")

_COLOR_NAMES = list(OBJECT_COLORS)
_COLOR_RGB = np.asarray(list(OBJECT_COLORS.values()), np.float32)


def _largest_regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest 4-connected region of each [H, W] slice of mask [N, H, W] -> (masks, areas)."""
    n, hw = mask.shape[0], mask.shape[1] * mask.shape[2]
    none = mask.size
    lab = np.where(mask, np.arange(mask.size).reshape(mask.shape), none)
    while True:  # min-label propagation + pointer jumping; labels never leave their slice
        p = np.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=none)
        nxt = np.minimum.reduce([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]])
        nxt = np.where(mask, nxt, none)
        flat = nxt.reshape(-1)
        fg = flat < none
        flat[fg] = flat[flat[fg]]
        if np.array_equal(nxt, lab):
            break
        lab = nxt
    counts = np.bincount(lab[mask], minlength=none).reshape(n, hw)
    best = counts.argmax(axis=1)
    areas = counts[np.arange(n), best]
    regions = (lab == (best + np.arange(n) * hw)[:, None, None]) & (areas > 0)[:, None, None]
    return regions, areas


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    p = np.pad(mask, r)
    h, w = mask.shape
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= p[dy:dy + h, dx:dx + w]
    return out


def _shape_measures(region: np.ndarray) -> dict:
    """fill: area / bounding box (square 1.0, circle 0.785, triangle 0.5; rounded corners move it a lot).
    top: share of the area above the box's middle row, a row on it counting half (upward triangle 0.25, circle
    and square 0.5). quarter: mean width of the rows a quarter and three quarters down over the widest row's
    (square 1.0, circle 0.87, triangle 0.5); rounded corners leave those rows nearly untouched."""
    ys, xs = np.nonzero(region)
    y = ys - ys.min()
    widths = np.bincount(y)
    h = len(widths)
    mid = (h - 1) / 2
    quarter = np.mean([widths[int(round(f * (h - 1)))] for f in (0.25, 0.75)]) / widths.max()
    return {"fill": len(ys) / (h * (np.ptp(xs) + 1)),
            "top": float(((y < mid).sum() + 0.5 * (y == mid).sum()) / len(y)), "quarter": float(quarter)}


def _shape_features(cuts: list[np.ndarray]) -> dict:
    """Medians over frames of each shape measure."""
    per_frame = [_shape_measures(c) for c in cuts]
    return {k: float(np.median([m[k] for m in per_frame])) for k in per_frame[0]}


def _half_coverage(region: np.ndarray, pixels: np.ndarray, bg: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Re-cut the region at 50% estimated coverage between background and object colour: the true edge
    of an anti-aliased or blurred shape, whatever the threshold that first found it."""
    near = _dilate(region, 2)
    ys, xs = np.nonzero(near)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))  # only look near the region
    b = bg[box] if bg.ndim == 3 else bg
    d = obj - b
    cov = ((pixels[box] - b) * d).sum(-1) / np.maximum((d * d).sum(-1), 1.0)
    cut = np.zeros_like(region)
    cut[box] = near[box] & (cov > 0.5)
    return cut if cut.any() else region


def _shape(top: float, quarter: float) -> str:
    return "triangle" if top < TRIANGLE_TOP else "square" if quarter >= SQUARE_QUARTER else "circle"


def _color(rgb: np.ndarray) -> str:
    return _COLOR_NAMES[int(np.linalg.norm(_COLOR_RGB - rgb, axis=1).argmin())]


def _direction(dx: float, dy: float) -> str:
    """dx, dy as fractions of the frame (y grows downwards)."""
    if np.hypot(dx, dy) < STILL_FRACTION:
        return "still"
    return SECTORS[int(np.round(np.arctan2(-dy, dx) / (np.pi / 4))) % 8]


def _theil_sen(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Median pairwise slope: ignores the odd frame where another region was picked."""
    if len(t) < 2:
        return np.zeros(c.shape[1])
    i, j = np.triu_indices(len(t), 1)
    return np.median((c[j] - c[i]) / (t[j] - t[i])[:, None], axis=0)


def _median(v: np.ndarray) -> np.ndarray:
    """np.median(v, axis=0), about twice as fast via partition."""
    f = v.shape[0]
    flat = v.reshape(f, -1)
    if f % 2:
        return np.partition(flat, f // 2, axis=0)[f // 2].reshape(v.shape[1:])
    part = np.partition(flat, [f // 2 - 1, f // 2], axis=0)
    return ((part[f // 2 - 1] + part[f // 2]) / 2).reshape(v.shape[1:])


def _background(v: np.ndarray, dominant: np.ndarray) -> np.ndarray:
    """The temporal median (steadiest where nothing moves), with the two-ends value where the median still
    shows an object the two ends do not."""
    k = max(1, round(END_SHARE * v.shape[0]))
    first, last = _median(v[:k]), _median(v[-k:])
    d_first, d_last = (np.linalg.norm(x - dominant, axis=-1) for x in (first, last))
    ends = np.where((d_first <= d_last)[..., None], first, last)
    median = _median(v)
    ghost = np.linalg.norm(median - dominant, axis=-1) - np.minimum(d_first, d_last) > DIFF_THRESHOLD
    return np.where(ghost[..., None], ends, median)


def analyze_video(frames: np.ndarray) -> dict:
    """Predict the main object's colour, shape and direction, plus background flicker, from [F, H, W, 3]."""
    v = np.asarray(frames, np.float32)
    f, h, w, _ = v.shape
    min_area = max(12.0, 0.0015 * h * w)
    dominant = np.median(v[::4].reshape(-1, 3), axis=0)
    bg = _background(v, dominant)
    diff = np.linalg.norm(v - bg, axis=-1) > DIFF_THRESHOLD
    moving, m_areas = _largest_regions(diff)
    present = m_areas >= min_area
    m_area = float(np.median(m_areas[present])) if present.sum() >= max(f / 2, 2) else 0.0
    present &= np.abs(np.log(np.maximum(m_areas, 1) / max(m_area, 1))) < np.log(2)  # drop e.g. flash frames
    salient = np.linalg.norm(bg - dominant, axis=-1) > SALIENT_THRESHOLD
    still, s_area = _largest_regions(salient[None])
    s_area = float(s_area[0])

    out = {"found": True, "moving": False, "color": None, "shape": None, "direction": None,
           "fill": 0.0, "top": 0.5, "quarter": 0.0, "area": 0.0, "displacement": (0.0, 0.0)}
    if m_area >= max(s_area, min_area):
        t = np.flatnonzero(present).astype(np.float64)
        regions = moving[present]
        cent = np.array([[xs.mean(), ys.mean()] for ys, xs in (np.nonzero(r) for r in regions)])
        dx, dy = _theil_sen(t, cent) * (f - 1) / np.array([w, h])
        rgb = np.median(v[present][regions], axis=0)
        cuts = [_half_coverage(r, x, bg, rgb) for r, x in zip(regions, v[present])]
        out.update(moving=True, area=m_area, displacement=(float(dx), float(dy)),
                   direction=_direction(dx, dy), color=_color(rgb), **_shape_features(cuts))
    elif s_area >= min_area:
        rgb = np.median(bg[still[0]], axis=0)
        out.update(area=s_area, direction="still", color=_color(rgb),
                   **_shape_features([_half_coverage(still[0], bg, dominant, rgb)]))
    else:
        out["found"] = False
    if out["found"]:
        out["shape"] = _shape(out["top"], out["quarter"])

    # Background = never differs from the median. Strong flicker makes that (nearly) empty, so then fall
    # back to "away from still objects", then to all pixels: heavy flicker must not hide itself.
    for background in (~_dilate(diff.any(axis=0) | salient, 2), ~_dilate(salient, 2), np.ones((h, w), bool)):
        if background.mean() >= 0.25:
            break
    out["flicker"] = float(np.abs(np.diff(v, axis=0))[:, background].mean()) if f > 1 else 0.0
    return out


def _truth(scene) -> dict:
    main = scene.objects[0]
    return {"color": main.color, "shape": main.shape, "direction": main.motion}


def _summarize(preds: list[dict], refs: list[dict]) -> dict:
    out: dict = {"n": len(preds)}
    for k in FIELDS:
        out[f"{k}_acc"] = float(np.mean([p[k] == r[k] for p, r in zip(preds, refs)])) if preds else 0.0
    out["flicker"] = float(np.mean([p["flicker"] for p in preds])) if preds else 0.0
    conf: dict = {k: {} for k in FIELDS}  # conf[field][reference][prediction] = count
    for p, r in zip(preds, refs):
        for k in FIELDS:
            row = conf[k].setdefault(str(r[k]), {})
            row[str(p[k])] = row.get(str(p[k]), 0) + 1
    out["confusion"] = conf
    return out


def evaluate(videos_with_scenes: Iterable[tuple[np.ndarray, object]]) -> dict:
    """Accuracy of the predicted main-object colour/shape/direction against each demo Scene."""
    preds, refs = [], []
    for frames, scene in videos_with_scenes:
        preds.append(analyze_video(frames))
        refs.append(_truth(scene))
    return _summarize(preds, refs)


def compare(videos_a: Iterable[np.ndarray], videos_b: Iterable[np.ndarray]) -> dict:
    """Agreement of b's predictions with a's (e.g. a = uncached, b = cached); *_acc are agreement rates,
    flicker is b's mean flicker and flicker_ref a's."""
    a = [analyze_video(x) for x in videos_a]
    b = [analyze_video(x) for x in videos_b]
    if len(a) != len(b):
        raise ValueError(f"compare needs paired videos, got {len(a)} and {len(b)}")
    out = _summarize(b, a)
    out["flicker_ref"] = float(np.mean([p["flicker"] for p in a])) if a else 0.0
    return out


def format_report(result: dict) -> str:
    """One-line human summary for a CLI."""
    parts = [f"n={result['n']}"] + [f"{k}={result[f'{k}_acc']:.3f}" for k in FIELDS]
    parts.append(f"flicker={result['flicker']:.2f}")
    if "flicker_ref" in result:
        parts.append(f"flicker_ref={result['flicker_ref']:.2f}")
    return " ".join(parts)


# -- command line: `motioncache evaluate` ------------------------------------------------------

def _generate(engine, prompt: str, seed: int, overrides: dict, policy: str = "none") -> np.ndarray:
    from motioncache.request import GenerationRequest

    request = GenerationRequest(prompt=prompt, seed=seed, cache={"policy": policy}, **overrides)
    frames = np.concatenate([chunk.frames for chunk in engine.generate(request)])
    return (frames * 255.0).round().clip(0, 255).astype(np.uint8)


def reconstruct(vae, scene, num_frames: int, height: int, width: int) -> np.ndarray:
    """The scene's ground truth through a VAE (encode, then the engine's streaming decode), uint8: the ceiling
    any generated video can reach."""
    from motioncache.demo_data import render
    from motioncache.vae_stream import StreamingDecoder, encode_frames

    frames = StreamingDecoder(vae).decode(encode_frames(vae, render(scene, num_frames, height, width)))
    return (frames * 255.0).round().clip(0, 255).astype(np.uint8)


def _table(result: dict) -> str:
    """Per field: accuracy and the most frequent confusions (reference -> prediction)."""
    lines = [format_report(result)]
    for k in FIELDS:
        wrong = sorted(((n, ref, pred) for ref, row in result["confusion"][k].items() for pred, n in row.items()
                        if pred != ref), reverse=True)[:5]
        lines.append(f"  {k:<9} {result[f'{k}_acc']:6.1%}   " + ", ".join(f"{r}->{p} x{n}" for n, r, p in wrong))
    return "\n".join(lines)


def rescore(report: dict) -> dict:
    """Judge the videos a report saved (`--save-videos`) again with this evaluator: the same report, new
    predictions and result (without a --compare-cache agreement: the cached videos are not saved)."""
    items = report.get("videos") or []
    if not items or any("video" not in it for it in items):
        raise ValueError("--rescore needs a report written with --save-videos (its videos list names the files)")
    preds = [analyze_video(np.load(it["video"])["frames"]) for it in items]
    items = [{**it, "prediction": _prediction(p)} for it, p in zip(items, preds)]
    kept = {k: v for k, v in report.items() if k != "compare"}
    return {**kept, "videos": items, "result": _summarize(preds, [it["truth"] for it in items])}


def _prediction(pred: dict) -> dict:
    return {k: pred[k] for k in (*FIELDS, "fill", "top", "quarter", "flicker")}


def cmd_evaluate(args) -> None:
    import json
    import sys
    import time

    from motioncache.cli import load_engine
    from motioncache.demo_data import heldout_captions

    if args.rescore:
        report = {**rescore(json.loads(Path(args.rescore).read_text())), "rescored_from": args.rescore}
        print(_table(report["result"]))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return
    if args.n < 1 or args.seeds < 1:
        raise ValueError("--n and --seeds must be at least 1")
    if args.source == "reconstructed" and args.compare_cache:
        raise ValueError("--compare-cache needs generated videos (--source generated)")
    overrides = {k: v for k, v in (("num_frames", args.num_frames), ("num_inference_steps", args.steps),
                                   ("guidance_scale", args.guidance_scale), ("shift", args.shift),
                                   ("ar_step", args.ar_step), ("churn", args.churn)) if v is not None}
    if args.save_videos:
        Path(args.save_videos).mkdir(parents=True, exist_ok=True)
    engine = load_engine(args.model, args.device, args.dtype, args.threads)
    policies = ["none"] + ([args.compare_cache] if args.compare_cache else [])
    videos: dict[str, list[np.ndarray]] = {p: [] for p in policies}
    scenes, items, started = [], [], time.perf_counter()
    recon_frames = args.num_frames or engine.c.defaults.get("num_frames", 33)
    pairs = heldout_captions(args.n, paths=args.paths)
    for i, (text, scene) in enumerate(pairs):
        for seed in range(args.seeds):
            for p in policies:
                videos[p].append(reconstruct(engine.c.vae, scene, recon_frames, engine.c.defaults.get("height", 128),
                                             engine.c.defaults.get("width", 128)) if args.source == "reconstructed"
                                 else _generate(engine, text, seed, overrides, p))
            scenes.append(scene)
            pred = analyze_video(videos["none"][-1])
            items.append({"caption": text, "seed": seed, "truth": _truth(scene),
                          "prediction": _prediction(pred)})
            if args.save_videos:  # so a changed evaluator can judge the same videos again
                items[-1]["video"] = str(Path(args.save_videos) / f"{i:03d}_seed{seed}.npz")
                np.savez_compressed(items[-1]["video"], frames=videos["none"][-1])
        if not args.quiet:
            print(f"[{i + 1}/{len(pairs)}] {time.perf_counter() - started:.0f}s {text}", file=sys.stderr, flush=True)
    result = evaluate(zip(videos["none"], scenes))
    print(_table(result))
    report = {"model": str(engine.c.path), "source": args.source, "paths": args.paths, "request_overrides": overrides,
              "seeds": args.seeds, "result": result, "videos": items, "wall_s": time.perf_counter() - started}
    if args.compare_cache:
        agreement = compare(videos["none"], videos[args.compare_cache])
        print(f"{args.compare_cache} vs none: " + format_report(agreement))
        report["compare"] = {"policy": args.compare_cache, "agreement": agreement}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="generate held-out demo captions and score colour/shape/direction")
    p.add_argument("--model", default=None, help="model directory (default: the demo model)")
    p.add_argument("--n", type=int, default=50, help="held-out captions")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per caption")
    p.add_argument("--json", help="write the results as JSON")
    p.add_argument("--num-frames", type=int, help="default: the model's (motioncache.json)")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance-scale", type=float)
    p.add_argument("--shift", type=float)
    p.add_argument("--ar-step", type=int)
    p.add_argument("--churn", type=float, help="stochastic steps (generate --churn)")
    p.add_argument("--source", choices=["generated", "reconstructed"], default="generated",
                   help="reconstructed: score the held-out ground truth passed through the model's VAE instead "
                        "(the ceiling for generated videos)")
    p.add_argument("--compare-cache", metavar="POLICY", help="also generate with this cache policy and report "
                   "how often its predictions agree with the uncached ones")
    p.add_argument("--paths", choices=list(PATH_STYLES), default=SHIPPED_PATHS,
                   help="path style the held-out scenes are drawn with (demo_data.PATH_STYLES; the captions differ; "
                        f"default {SHIPPED_PATHS!r}, what the shipped demo model is trained on)")
    p.add_argument("--save-videos", metavar="DIR", help="also write each (uncached) video as DIR/NNN_seedS.npz "
                   "(uint8 frames [F, H, W, 3]); the JSON's videos name them")
    p.add_argument("--rescore", metavar="REPORT", help="judge the videos an earlier report saved (--save-videos) "
                   "again with this evaluator instead of generating; --json writes the new report")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)
