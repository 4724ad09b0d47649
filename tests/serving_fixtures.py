"""Real processes for the server tests: a redis-server on a free port, `motioncache worker` subprocesses on a
tiny model, and the API under uvicorn in a subprocess, shared by every module that declares
`pytest_plugins = ["serving_fixtures"]` (one set of processes per session).

PYTEST_DONT_REWRITE: test modules import constants from here before pytest loads it as a plugin."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("key-alice", "key-bob")
HEARTBEAT_TTL_S = 2.0
# 17 frames of 32x32, 3 steps: 5 one-latent-frame chunks in about a second.
FAST = dict(prompt="a red circle moves left", num_frames=17, num_inference_steps=3, ar_step=1, causal_block_size=1)
# Many rows and the first chunk early (row 100 of 2500): stays running for ~8 s on the tiny model here (the 270 rows
# it had before the engine got faster took 0.5 s, too short to cancel reliably), for cancel and kill tests.
SLOW = dict(prompt="a blue square moves right", num_frames=97, num_inference_steps=100, ar_step=100,
            causal_block_size=1, height=48, width=48)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def server_env(redis_url: str, **extra) -> dict:
    env = {**os.environ, "MOTIONCACHE_REDIS_URL": redis_url, "MOTIONCACHE_HEARTBEAT_TTL_S": str(HEARTBEAT_TTL_S),
           "MOTIONCACHE_REAPER_INTERVAL_S": "0.5", "MOTIONCACHE_MAX_STEPS": "100", "PYTHONPATH": str(ROOT)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WorkerPool:
    """`motioncache worker` processes; `start` waits until the new worker's heartbeat is in Redis."""

    def __init__(self, model_dir: Path, redis_url: str, log_dir: Path):
        self.model_dir, self.redis_url, self.log_dir = model_dir, redis_url, log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.metrics_ports: dict[str, int] = {}
        self.r = redis.Redis.from_url(redis_url)
        self.count = 0

    def spawn(self) -> str:
        name = f"w{self.count}"
        self.count += 1
        port = free_port()
        log = open(self.log_dir / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "motioncache.serve_cli", "worker", "--model", str(self.model_dir), "--name", name,
             "--metrics-port", str(port)], env=server_env(self.redis_url), cwd=ROOT, stdout=log, stderr=log)
        self.metrics_ports[name] = port
        return name

    def wait_ready(self, names, timeout: float = 90) -> None:
        for name in names:
            wait_until(lambda: self.procs[name].poll() is not None or self.r.exists(f"mc:worker:{name}"), timeout,
                       f"worker {name} to start")
            assert self.procs[name].poll() is None, (self.log_dir / f"{name}.log").read_text()

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def stop_all(self) -> None:
        for p in self.procs.values():
            stop(p)


class Api:
    def __init__(self, url: str, proc: subprocess.Popen):
        self.url, self.proc = url, proc

    def client(self, key: str | None = KEYS[0]):
        from server.client import Client

        return Client(self.url, key)


def start_api(redis_url: str, log_path: Path, **env) -> Api:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--ws-per-message-deflate", "false", "--log-level", "warning"],
        env=server_env(redis_url, **env), cwd=ROOT, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None

    wait_until(up, 30, "the API to start")
    assert proc.poll() is None, log_path.read_text()
    return Api(url, proc)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(up, 10, "redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    stop(proc)


@pytest.fixture(scope="session")
def workers(tiny_dir, redis_url, tmp_path_factory):
    pool = WorkerPool(tiny_dir, redis_url, tmp_path_factory.mktemp("worker-logs"))
    pool.wait_ready([pool.spawn(), pool.spawn()])
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def api(redis_url, workers, tmp_path_factory):
    """The API with two API keys configured (tests act as KEYS[0] unless they say otherwise)."""
    server = start_api(redis_url, tmp_path_factory.mktemp("api") / "api.log", MOTIONCACHE_API_KEYS=",".join(KEYS))
    yield server
    stop(server.proc)


@pytest.fixture
def client(api):
    c = api.client()
    yield c
    c.close()


def wait_for_status(client, job_id: str, statuses, timeout: float = 60) -> dict:
    statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    return wait_until(lambda: (j := client.get(job_id))["status"] in statuses and j, timeout,
                      f"job {job_id} to reach {statuses}")


__all__ = ["api", "client", "redis_url", "workers", "FAST", "SLOW", "KEYS", "HEARTBEAT_TTL_S", "wait_until",
           "wait_for_status", "free_port", "start_api", "stop", "server_env", "ROOT"]
