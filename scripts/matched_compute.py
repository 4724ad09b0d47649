"""Two cache policies compared at the same compute: each video's PSNR interpolated along each policy's thresholds.

A preset is one point per policy, and two presets calibrated to the same PSNR land at different speeds, so their
medians alone cannot say which policy is better. Given `motioncache bench` reports that ran several thresholds of each
policy (e.g. `flowcache-slow:threshold=0.032,flowcache-slow,...`) on the same prompts and seeds, this interpolates every
video's PSNR at a given compute speedup (linear in log compute, between the two thresholds around it; no
extrapolation) for both policies and prints, per speedup, the median and mean over the videos both reach and on how
many the first policy is higher. Reports made on disjoint prompts (e.g. two processes) are merged.

    .venv/bin/python scripts/matched_compute.py motioncache flowcache BENCH.json [BENCH.json ...] [--at 2.9,3.0,3.1]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict

from motioncache.bench import parse_spec
from motioncache.policies import resolve_preset


def curves(runs: list[dict], policy: str) -> dict[tuple[str, int], list[tuple[float, float]]]:
    """(prompt, seed) -> [(compute speedup, PSNR)] over every run of `policy` (a name, any preset or knobs),
    sorted by compute."""
    out = defaultdict(list)
    for r in runs:
        if resolve_preset(parse_spec(r["policy"])[0])[0] == policy:
            out[(r["prompt"], r["seed"])].append((r["compute_speedup"], r["psnr"]))
    return {video: sorted(points) for video, points in out.items()}


def psnr_at(points: list[tuple[float, float]], speedup: float) -> float | None:
    """PSNR at `speedup`, linear in log compute between the nearest points either side; None outside them."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= speedup <= x1:
            if x1 == x0:
                return max(y0, y1)
            return y0 + (y1 - y0) * (math.log(speedup) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return None


def compare(runs: list[dict], first: str, second: str, speedups: list[float]) -> list[dict]:
    a, b = curves(runs, first), curves(runs, second)
    rows = []
    for x in speedups:
        pairs = [(pa, pb) for video in a.keys() & b.keys()
                 if (pa := psnr_at(a[video], x)) is not None and (pb := psnr_at(b[video], x)) is not None]
        if not pairs:
            continue
        rows.append({"speedup": x, "videos": len(pairs),
                     first: {"median": statistics.median(p for p, _ in pairs), "mean": statistics.mean(p for p, _ in pairs)},
                     second: {"median": statistics.median(q for _, q in pairs), "mean": statistics.mean(q for _, q in pairs)},
                     "first_higher": sum(p > q for p, q in pairs)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", help="policy name, e.g. motioncache")
    ap.add_argument("second", help="policy name, e.g. flowcache")
    ap.add_argument("reports", nargs="+", help="motioncache bench --json files")
    ap.add_argument("--at", default="2.8,2.9,3.0,3.1,3.2,3.3,3.4", help="compute speedups, comma-separated")
    args = ap.parse_args()
    runs = [r for path in args.reports for r in json.load(open(path))["runs"]]
    rows = compare(runs, args.first, args.second, [float(x) for x in args.at.split(",")])
    if not rows:
        raise SystemExit(f"no video has both {args.first} and {args.second} runs on either side of those speedups")
    print(f"{'compute x':>9} {'videos':>6} {args.first + ' median / mean':>26} {args.second + ' median / mean':>26} "
          f"{args.first + ' higher':>18}")
    for r in rows:
        m, f = r[args.first], r[args.second]
        print(f"{r['speedup']:>9.2f} {r['videos']:>6} {m['median']:>14.2f} / {m['mean']:<9.2f} "
              f"{f['median']:>14.2f} / {f['mean']:<9.2f} {r['first_higher']:>18}")


if __name__ == "__main__":
    main()
