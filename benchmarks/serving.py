"""Serving benchmark on loopback (not a test): private redis-server, one `motioncache worker` on a tiny model,
the API under uvicorn. Measures

  * serving overhead: submit -> first chunk received by a websocket client, minus the engine's own
    time to first chunk (what queueing, encoding, Redis and the websocket add);
  * chunk delivery latency: worker publish -> client receive, p50 / p99;
  * submit throughput: POST /v1/videos from 8 client threads (the jobs are cancelled while queued);
  * fan-out: 50 concurrent websocket viewers of one job (every viewer must get every chunk).

    .venv/bin/python benchmarks/serving.py --json docs/results/serving.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.client import ApiError, Client  # noqa: E402
from server.launcher import free_port, start_redis, stop_all  # noqa: E402

REQUEST = dict(prompt="a red circle moves left", num_frames=33, num_inference_steps=4, ar_step=1, causal_block_size=1,
               height=32, width=32)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")


def watch(client: Client, job_id: str, submitted_at: float | None = None) -> dict:
    first, lat, chunks, data = None, [], [], []
    for item in client.stream(job_id):
        now = time.time()
        e = item.event
        if e["type"] == "init":
            data.append(item.data)
        elif e["type"] == "chunk":
            first = first or now
            lat.append(now - e["published_at"])
            chunks.append(e["index"])
            data.append(item.data)
        else:
            return {"first_chunk_at": first, "latencies": lat, "indices": chunks, "bytes": b"".join(data), "end": e}
    raise RuntimeError("stream ended without an end event")


def start_stack(model: Path, workdir: Path):
    redis_port, api_port = free_port(), free_port()
    redis_proc = start_redis(redis_port)
    env = {"MOTIONCACHE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "motioncache.serve_cli", "worker", "--model", str(model)],
                              env=env, cwd=ROOT, stdout=open(workdir / "worker.log", "wb"), stderr=subprocess.STDOUT)
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--port",
                            str(api_port), "--ws-per-message-deflate", "false", "--log-level", "warning"], env=env,
                           cwd=ROOT, stdout=open(workdir / "api.log", "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url, [api, worker, redis_proc]
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_all([api, worker, redis_proc])
    raise RuntimeError(f"stack did not become ready; see {workdir}")


def run(url: str, runs: int, submits: int, viewers: int) -> dict:
    client = Client(url)
    watch(client, client.submit({**REQUEST, "num_frames": 9})["id"])  # warm-up: first request pays lazy inits

    overhead, engine_ttfc, client_ttfc, latencies, queue_wait = [], [], [], [], []
    for i in range(runs):
        t0 = time.time()
        job = client.submit({**REQUEST, "seed": i})
        got = watch(client, job["id"])
        figures = got["end"]["figures"]
        client_ttfc.append(got["first_chunk_at"] - t0)
        engine_ttfc.append(figures["engine_time_to_first_chunk_s"])
        overhead.append(client_ttfc[-1] - figures["engine_time_to_first_chunk_s"])
        queue_wait.append(figures["queue_wait_s"])
        latencies += got["latencies"]
        assert got["bytes"] == client.content(job["id"])

    local = threading.local()

    def submit_one(i):
        if not hasattr(local, "client"):  # one keep-alive connection per thread, as a real client would
            local.client = Client(url)
        return local.client.submit({**REQUEST, "seed": 1000 + i})["id"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit_one, range(submits)))
    submit_s = time.perf_counter() - t0
    for job_id in ids:
        try:
            client.cancel(job_id)
        except ApiError as e:  # the worker already finished one of the first few
            assert e.status == 409, e
    while client.get(ids[-1])["status"] not in ("cancelled", "succeeded", "failed"):
        time.sleep(0.1)
    time.sleep(3.0)  # let the worker finish the few it had already started

    job = client.submit({**REQUEST, "seed": 7, "num_frames": 49, "num_inference_steps": 6})
    results: list[dict | None] = [None] * viewers
    barrier = threading.Barrier(viewers)

    def view(i):
        c = Client(url)
        barrier.wait()
        results[i] = watch(c, job["id"])

    threads = [threading.Thread(target=view, args=(i,)) for i in range(viewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    download = client.content(job["id"])
    complete = sum(1 for r in results if r and r["bytes"] == download and r["indices"] == list(range(len(r["indices"]))))
    fan_lat = [x for r in results if r for x in r["latencies"]]
    total_chunks = client.get(job["id"])["progress"]["chunks_total"]
    return {
        "request": REQUEST, "runs": runs,
        "client_time_to_first_chunk_s": {"p50": statistics.median(client_ttfc), "max": max(client_ttfc)},
        "engine_time_to_first_chunk_s": {"p50": statistics.median(engine_ttfc), "max": max(engine_ttfc)},
        "serving_overhead_s": {"p50": statistics.median(overhead), "max": max(overhead)},
        "queue_wait_s": {"p50": statistics.median(queue_wait), "max": max(queue_wait)},
        "chunk_delivery_latency_ms": {"n": len(latencies), "p50": pct(latencies, 50) * 1e3,
                                      "p99": pct(latencies, 99) * 1e3},
        "submit_throughput_per_s": submits / submit_s, "submits": submits,
        "fanout": {"viewers": viewers, "chunks": total_chunks, "viewers_with_every_chunk": complete,
                   "delivery_latency_ms": {"p50": pct(fan_lat, 50) * 1e3, "p99": pct(fan_lat, 99) * 1e3}},
    }


def table(r: dict) -> str:
    rows = [
        ("engine time to first chunk (p50)", f"{r['engine_time_to_first_chunk_s']['p50'] * 1e3:.0f} ms"),
        ("client time to first chunk (p50)", f"{r['client_time_to_first_chunk_s']['p50'] * 1e3:.0f} ms"),
        ("serving overhead (p50 / max)", f"{r['serving_overhead_s']['p50'] * 1e3:.0f} / "
                                         f"{r['serving_overhead_s']['max'] * 1e3:.0f} ms"),
        ("  of which submit -> worker start (p50)", f"{r['queue_wait_s']['p50'] * 1e3:.0f} ms"),
        ("chunk delivery latency p50 / p99", f"{r['chunk_delivery_latency_ms']['p50']:.1f} / "
                                             f"{r['chunk_delivery_latency_ms']['p99']:.1f} ms "
                                             f"({r['chunk_delivery_latency_ms']['n']} chunks)"),
        ("submit throughput (8 threads)", f"{r['submit_throughput_per_s']:.0f} req/s"),
        (f"{r['fanout']['viewers']} viewers, every chunk", f"{r['fanout']['viewers_with_every_chunk']}/"
                                                          f"{r['fanout']['viewers']} ({r['fanout']['chunks']} chunks)"),
        ("fan-out delivery latency p50 / p99", f"{r['fanout']['delivery_latency_ms']['p50']:.1f} / "
                                               f"{r['fanout']['delivery_latency_ms']['p99']:.1f} ms"),
    ]
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory (default: a tiny random model made in a temp dir)")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--submits", type=int, default=200)
    p.add_argument("--viewers", type=int, default=50)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = Path(args.model) if args.model else None
        if model is None:
            from motioncache.tiny_model import make_tiny_model

            model = make_tiny_model(workdir / "tiny")
        url, procs = start_stack(model, workdir)
        try:
            result = run(url, args.runs, args.submits, args.viewers)
        finally:
            stop_all(procs)
    print(table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
