"""Two CPU workers on one machine: torch's default threads (one per core in each worker) vs the cores shared out
(`motioncache serve`'s default since 2026-11-27). Starts `motioncache serve --workers 2` once per setting, submits
two requests at a time, and prints each request's wall and denoising seconds; writes JSON.

    .venv/bin/python scripts/bench_worker_threads.py --rounds 2 --json worker_threads.json
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serving_fixtures import free_port, wait_until  # noqa: E402


def run(threads_per_worker: int | None, rounds: int, prompt: str) -> list[dict]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONCACHE_")}
    extra = ["--threads-per-worker", str(threads_per_worker)] if threads_per_worker else []
    proc = subprocess.Popen([sys.executable, "-m", "motioncache.serve_cli", "serve", "--port", str(port), "--workers",
                             "2", "--metrics-base-port", str(free_port()), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready():
            try:
                return httpx.get(f"{url}/readyz", timeout=1).json().get("workers") == 2
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(ready, 120, "two workers", 0.5)
        rows = []
        for round_ in range(rounds):
            ids = [httpx.post(f"{url}/v1/videos", json={"prompt": prompt, "seed": s}).json()["id"] for s in range(2)]
            wait_until(lambda: all(httpx.get(f"{url}/v1/videos/{i}").json()["status"] == "succeeded" for i in ids),
                       600, "both requests", 0.2)
            for i in ids:
                f = httpx.get(f"{url}/v1/videos/{i}").json()["figures"]
                rows.append({"round": round_, "wall_s": f["wall_s"], "denoising_s": f["timings_s"]["denoising"]})
        return rows
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="pairs of concurrent requests per setting")
    ap.add_argument("--prompt", default="a red circle moves right over a grey background")
    ap.add_argument("--json")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    results = {}
    settings = ((f"{cores} threads each (torch's default)", cores), ("cores shared out (serve's default)", None))
    for name, threads in settings:
        rows = run(threads, args.rounds, args.prompt)
        results[name] = {"rows": rows, "median_wall_s": statistics.median(r["wall_s"] for r in rows),
                         "median_denoising_s": statistics.median(r["denoising_s"] for r in rows)}
        print(f"{name:>38}: wall {results[name]['median_wall_s']:.2f} s, denoising "
              f"{results[name]['median_denoising_s']:.2f} s per request (median of {len(rows)})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"cores": cores, "results": results}, indent=1))


if __name__ == "__main__":
    main()
