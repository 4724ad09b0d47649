"""`motioncache serve`: a private redis-server (unless --redis-url), N worker processes and the API, all on
loopback by default. SIGINT/SIGTERM stop everything it started; workers also exit if this process dies."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger("motioncache.serve")


class LaunchError(RuntimeError):
    pass


class Stop(Exception):
    """Raised by our SIGINT/SIGTERM handler, also when uvicorn re-raises the signal it handled."""


@dataclass
class ServeOptions:
    model: str | None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    metrics_base_port: int = 9100  # worker i exports metrics on metrics_base_port + i
    threads_per_worker: int | None = None  # torch threads of each worker; None: the CPU's cores shared out (cpu only)


def worker_threads(opts: ServeOptions, cores: int | None = None) -> int | None:
    """Torch threads per worker. On the CPU every worker would otherwise start one thread per core, and N workers
    on the same cores slow each other down far more than N times (2 workers x 2 threads on 2 cores: each request
    2.8x slower than with 1 thread each, docs/benchmarks.md)."""
    if opts.threads_per_worker:
        return opts.threads_per_worker
    if opts.device != "cpu":
        return None  # a GPU worker's CPU threads only launch kernels: torch's default
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, cores // opts.workers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux delivers SIGTERM to it when `serve` dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: workers still watch their parent pid; redis-server would outlive a SIGKILLed serve


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise LaunchError("redis-server is not on PATH: install it (apt-get install -y redis-server) "
                          "or pass --redis-url")
    return binary


def start_redis(port: int) -> subprocess.Popen:
    binary = redis_binary()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--loglevel", "warning"], start_new_session=True,
                            stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if proc.poll() is not None:
                raise LaunchError(f"redis-server exited with status {proc.returncode}") from None
            time.sleep(0.05)
    proc.kill()
    raise LaunchError("redis-server did not answer within 5 s")


def start_worker(i: int, opts: ServeOptions, redis_url: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "motioncache.serve_cli", "worker", "--redis-url", redis_url, "--device", opts.device,
           "--dtype", opts.dtype, "--metrics-port", str(opts.metrics_base_port + i), "--parent-pid", str(os.getpid())]
    if opts.model:
        cmd += ["--model", opts.model]
    threads = worker_threads(opts)
    if threads:
        cmd += ["--threads", str(threads)]
    # Own session: a terminal's Ctrl-C reaches only us; we stop the workers in order.
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent)


def stop_all(procs: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def watch_workers(workers: list[subprocess.Popen], stopping: threading.Event) -> None:
    """Say so at once when a worker dies on its own (bad model, out of memory at load): /readyz turns 503."""
    reported = set()
    while not stopping.wait(1.0):
        for i, p in enumerate(workers):
            if p.poll() is not None and i not in reported:
                reported.add(i)
                print(f"worker {i} exited with status {p.returncode} (its log is above)", file=sys.stderr)


def serve(opts: ServeOptions) -> None:
    import uvicorn

    from .app import create_app
    from .settings import Settings

    if opts.redis_url is None:
        redis_binary()  # fail with the install hint before starting anything

    def on_signal(signum, frame):
        raise Stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    workers: list[subprocess.Popen] = []
    redis_proc = None
    stopping = threading.Event()
    try:
        redis_url = opts.redis_url
        if redis_url is None:
            port = free_port()
            redis_proc = start_redis(port)
            redis_url = f"redis://127.0.0.1:{port}/0"
            print(f"private redis-server on 127.0.0.1:{port}", file=sys.stderr)
        os.environ["MOTIONCACHE_REDIS_URL"] = redis_url  # the workers' Settings read it too
        workers = [start_worker(i, opts, redis_url) for i in range(opts.workers)]
        threading.Thread(target=watch_workers, args=(workers, stopping), daemon=True).start()
        settings = Settings(redis_url=redis_url)
        print(f"API on http://{opts.host}:{opts.port} (playground /, docs /docs), {opts.workers} worker(s), "
              f"worker metrics on ports {opts.metrics_base_port}..{opts.metrics_base_port + opts.workers - 1}",
              file=sys.stderr)
        config = uvicorn.Config(create_app(settings), host=opts.host, port=opts.port, ws_per_message_deflate=False,
                                log_level="warning", timeout_graceful_shutdown=3)
        uvicorn.Server(config).run()
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping.set()
        stop_all(workers)
        if redis_proc is not None:
            stop_all([redis_proc], grace_s=5)
        print("stopped", file=sys.stderr)
