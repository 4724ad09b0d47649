"""SSIM of one 97-frame 128x128 video pair: the explicit 11x11-window conv2d (the definition, as the tests compute
it) vs `motioncache.quality.ssim` (the same window as two band matrices). Prints a table, writes JSON.

    .venv/bin/python scripts/bench_ssim.py --threads 1 --json ssim.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_quality import _reference_ssim  # noqa: E402

from motioncache.quality import ssim  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    a = rng.random((97, 128, 128, 3))
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)
    rows = []
    for name, fn in (("conv2d, 11x11 window", _reference_ssim), ("band matrices (motioncache.quality)", ssim)):
        t = time.perf_counter()
        value = fn(a, b)
        rows.append({"method": name, "seconds": time.perf_counter() - t, "ssim": value})
    for r in rows:
        print(f"{r['method']:38s} {r['seconds']:7.2f} s  ssim {r['ssim']:.15f}")
    gap = abs(rows[0]["ssim"] - rows[1]["ssim"])
    print(f"speedup {rows[0]['seconds'] / rows[1]['seconds']:.1f}x, difference {gap:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
