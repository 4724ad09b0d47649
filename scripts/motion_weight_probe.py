"""Do motioncache's motion weights tell moving tokens from static ones? (docs/benchmarks.md)

Runs motioncache on a prompt once per `motion_source` (hidden: the stack's output, the reference; denoised: the
denoised estimate x0) and records every phase-2 weight map the policy computes (cond branch). Per source it
prints, as medians over those maps, the spread of the weights and the shares of tokens near the floor and near
1: weights that separate put most tokens (the static background) near the floor and a few near 1.

    python scripts/motion_weight_probe.py --prompt "a red circle moves right over a grey background" --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motioncache.cli import load_engine  # noqa: E402
from motioncache.policies.motion import MotionCacheRunner  # noqa: E402
from motioncache.request import GenerationRequest  # noqa: E402

SCHEDULE = dict(num_frames=97, base_num_frames=97, num_inference_steps=50, ar_step=5, causal_block_size=5,
                guidance_scale=5.0)  # the bench's schedule


def record_weights(engine, request: GenerationRequest) -> tuple[list, float]:
    """Every motion weight map [tokens] motioncache computed for the cond branch while generating `request`,
    and the policy's motion floor (after the model's presets)."""
    maps, original = [], MotionCacheRunner._motion_weights

    def recording(self, branch, block):
        w = original(self, branch, block)
        if branch == 0:
            maps.append(w.float().cpu())
        return w

    MotionCacheRunner._motion_weights = recording
    try:
        gen = engine.generate(request)
        for _ in gen:
            pass
    finally:
        MotionCacheRunner._motion_weights = original
    return maps, gen.plan.policy.motion_floor


def separation(maps: list, floor: float) -> dict:
    """Medians over the maps: weight std, share of tokens within 0.1 of the floor, share within 0.1 of 1."""
    def med(values):
        return statistics.median(values) if values else float("nan")

    return {"maps": len(maps), "std": med([float(w.std()) for w in maps]),
            "near_floor": med([float((w <= floor + 0.1).double().mean()) for w in maps]),
            "near_one": med([float((w >= 0.9).double().mean()) for w in maps])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: the demo model)")
    ap.add_argument("--prompt", default="a red circle moves right over a grey background")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--tiny", action="store_true", help="a short, small schedule (tests)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    engine = load_engine(args.model, "cpu", "float32", args.threads)
    schedule = dict(SCHEDULE, num_frames=37, base_num_frames=37, num_inference_steps=8, ar_step=2,
                    causal_block_size=3, height=32, width=32) if args.tiny else SCHEDULE
    knobs = {"phase1_updates": 0, "warmup": 1, "threshold": 0.0} if args.tiny else {}
    report = {"prompt": args.prompt, "seed": args.seed, "schedule": schedule}
    for source in ("hidden", "denoised"):
        request = GenerationRequest(prompt=args.prompt, seed=args.seed, **schedule,
                                    cache={"policy": "motioncache-slow",
                                           "knobs": {**knobs, "motion_source": source}})
        maps, floor = record_weights(engine, request)
        report[source] = separation(maps, floor)
        r = report[source]
        print(f"{source:>9}: {r['maps']} weight maps, std {r['std']:.3f}, near the floor {r['near_floor']:.0%}, "
              f"near 1 {r['near_one']:.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
