"""`motioncache serve` starts a private Redis, a worker and the API; SIGINT (Ctrl-C) leaves no process behind."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from server.launcher import ServeOptions, worker_threads
from serving_fixtures import ROOT, free_port, wait_until


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_serve_starts_everything_and_ctrl_c_stops_everything(tiny_dir, tmp_path):
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONCACHE_")}
    proc = subprocess.Popen([sys.executable, "-m", "motioncache.serve_cli", "serve", "--model", str(tiny_dir),
                             "--port", str(port), "--workers", "1", "--metrics-base-port", str(metrics_port)],
                            cwd=ROOT, env=env, stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT)
    try:
        def ready():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None
        wait_until(ready, 90, "serve to be ready", interval=0.2)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        kids = children_of(proc.pid)
        names = {Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")[0].rsplit(b"/", 1)[-1] for k in kids}
        # a private redis-server and one worker
        assert len(kids) == 2 and any(n.startswith(b"redis-server") for n in names), names
        worker_cmd = next(Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0") for k in kids
                          if b"worker" in Path(f"/proc/{k}/cmdline").read_bytes())
        cores = len(os.sched_getaffinity(0))
        assert worker_cmd[worker_cmd.index(b"--threads") + 1] == str(cores).encode()  # one worker: every core
        job = httpx.post(f"http://127.0.0.1:{port}/v1/videos", json={"prompt": "a red circle", "num_frames": 9,
                                                                      "num_inference_steps": 2}).json()
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/v1/videos/{job['id']}").json()["status"]
                   == "succeeded", 60, "a job through serve")
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").status_code == 200  # the worker's exporter
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, (tmp_path / "serve.log").read_text()
        assert not [k for k in kids if running(k)]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_serve_without_redis_on_path_says_how_to_install_it(tiny_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONCACHE_")}
    env["PATH"] = str(tmp_path)  # no redis-server here
    out = subprocess.run([sys.executable, "-m", "motioncache.serve_cli", "serve", "--model", str(tiny_dir), "--port",
                          str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "apt-get install -y redis-server" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cpu_workers_share_the_cores_instead_of_each_taking_all():
    # 2 workers x 2 threads on 2 cores made each request 2.8x slower than 1 thread each (docs/benchmarks.md)
    assert worker_threads(ServeOptions(model=None, workers=2), cores=2) == 1
    assert worker_threads(ServeOptions(model=None, workers=1), cores=2) == 2
    assert worker_threads(ServeOptions(model=None, workers=3), cores=8) == 2
    assert worker_threads(ServeOptions(model=None, workers=4), cores=2) == 1  # never 0
    assert worker_threads(ServeOptions(model=None, workers=2, threads_per_worker=3), cores=2) == 3  # the operator's say
    assert worker_threads(ServeOptions(model=None, workers=2, device="cuda"), cores=2) is None  # torch's default
