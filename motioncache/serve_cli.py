"""`motioncache serve | worker | client`: the HTTP server, a queue worker, and a client of the API.

`register(subparsers)` adds the three subcommands to `motioncache`'s parser; `python -m motioncache.serve_cli`
runs them standalone. Nothing here imports torch until a worker loads its engine.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
from pathlib import Path

from motioncache.knob_rules import parse_knob_args

DEFAULT_SERVER = os.environ.get("MOTIONCACHE_SERVER", "http://127.0.0.1:8000")


class ServeCliError(ValueError):
    """A one-line error for the user (a ValueError so that `motioncache`'s main prints it without a traceback)."""


# -- serve ------------------------------------------------------------------------------------
def cmd_serve(args) -> None:
    from server.launcher import LaunchError, ServeOptions, serve

    from .cli import DEFAULT_MODEL

    model = Path(args.model) if args.model else DEFAULT_MODEL
    if not (model / "model_index.json").exists():
        what = "is not a diffusers pipeline directory (no model_index.json)" if model.exists() else "does not exist"
        raise ServeCliError(f"model directory {model} {what}: pass --model DIR "
                            "(`motioncache make-tiny-model DIR` makes a tiny one)")
    try:
        serve(ServeOptions(model=str(model), host=args.host, port=args.port, workers=args.workers,
                           redis_url=args.redis_url, device=args.device, dtype=args.dtype,
                           threads_per_worker=args.threads_per_worker,
                           metrics_base_port=args.metrics_base_port))
    except LaunchError as e:
        raise ServeCliError(str(e)) from None


# -- worker -----------------------------------------------------------------------------------
def cmd_worker(args) -> None:
    from server.settings import Settings
    from worker.runner import WorkerOptions, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(**{k: v for k, v in (("redis_url", args.redis_url), ("queue_name", args.queue)) if v})
    run_worker(WorkerOptions(model=args.model, redis_url=settings.redis_url, queue=settings.queue_name,
                             device=args.device, dtype=args.dtype, name=args.name, metrics_port=args.metrics_port,
                             metrics_host=args.metrics_host, burst=args.burst, parent_pid=args.parent_pid,
                             threads=args.threads),
               settings)


# -- client -----------------------------------------------------------------------------------
_REQUEST_ARGS = [("--negative-prompt", str), ("--num-frames", int), ("--height", int), ("--width", int),
                 ("--fps", int), ("--steps", int), ("--guidance-scale", float), ("--shift", float),
                 ("--ar-step", int), ("--causal-block-size", int), ("--base-num-frames", int),
                 ("--overlap-history", int), ("--addnoise-condition", float)]


def _request(args) -> dict:
    body = {"prompt": args.prompt, "seed": args.seed, "cache": {"policy": args.cache}}
    if args.cache_knob:
        body["cache"]["knobs"] = parse_knob_args(args.cache_knob)  # the server checks them against the model's rules
    for flag, _ in _REQUEST_ARGS:
        name = flag[2:].replace("-", "_")
        value = getattr(args, name)
        if value is not None:
            body["num_inference_steps" if name == "steps" else name] = value
    for name, path in (("image", args.image), ("prefix_video", args.prefix_video)):
        if path:
            body[name] = base64.b64encode(Path(path).read_bytes()).decode()
    return body


def _figures(f: dict) -> str:
    parts = []
    for key, label, fmt in (("compute_speedup", "speedup", "{:.2f}x"), ("token_skip_rate", "skip", "{:.0%}"),
                            ("time_to_first_chunk_s", "first chunk", "{:.2f}s"), ("wall_s", "wall", "{:.2f}s"),
                            ("real_time_factor", "rtf", "{:.2f}")):
        if f.get(key) is not None:
            parts.append(f"{label} {fmt.format(f[key])}")
    return ", ".join(parts)


def _watch(client, job_id: str, output: str | None, from_chunk: int) -> int:
    """Stream chunks to `output` as they arrive (appending when resuming); returns an exit status."""
    out = open(output, "ab" if from_chunk else "wb") if output else None
    try:
        for item in client.stream(job_id, from_chunk):
            e = item.event
            if e["type"] == "init":
                if out and not from_chunk:
                    out.write(item.data)
            elif e["type"] == "chunk":
                if out:
                    out.write(item.data)
                    out.flush()
                print(f"chunk {e['index']}: frames {e['frame_start']}-{e['frame_end']}, {e['bytes']} B, "
                      f"{_figures(e.get('figures', {}))}", file=sys.stderr)
            elif e["type"] == "end":
                print(f"{e['status']}: {_figures(e.get('figures', {}))}" + (f" -> {output}" if output else ""),
                      file=sys.stderr)
                return 0 if e["status"] == "succeeded" else 1
            else:
                print(f"error: {e.get('message')}", file=sys.stderr)
                return 1
    finally:
        if out:
            out.close()
    return 1


def cmd_client(args) -> None:
    status = _client(args)
    if status:
        raise SystemExit(status)


def _client(args) -> int:
    from server.client import ApiError, Client

    client = Client(args.server, args.api_key)
    try:
        if args.action == "submit":
            job = client.submit(_request(args))
            print(job["id"])
            print(f"job {job['id']} {job['status']} (queue position {job['queue_position']})", file=sys.stderr)
            return 0 if args.no_wait else _watch(client, job["id"], args.output, 0)
        if args.action == "watch":
            return _watch(client, args.id, args.output, args.from_chunk)
        if args.action == "get":
            if args.content:
                Path(args.content).write_bytes(client.content(args.id))
            print(json.dumps(client.get(args.id), indent=2))
            return 0
        if args.action == "cancel":
            print(json.dumps(client.cancel(args.id), indent=2))
            return 0
        if args.action == "model":
            print(json.dumps(client.model(), indent=2))
            return 0
        if args.action == "list":
            print(json.dumps(client.list(args.offset, args.limit), indent=2))
            return 0
    except ApiError as e:
        raise ServeCliError(str(e)) from None
    except OSError as e:
        raise ServeCliError(f"cannot reach {args.server}: {e}") from None
    finally:
        client.close()
    return 2


# -- parser -----------------------------------------------------------------------------------
def register(sub) -> None:
    s = sub.add_parser("serve", help="run the API, N workers and (unless --redis-url) a private redis-server")
    s.add_argument("--model", default=None, help="model directory (default: the demo model)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--redis-url", default=None, help="use this Redis instead of starting a private one")
    s.add_argument("--device", default="cpu")
    s.add_argument("--dtype", default="float32")
    s.add_argument("--metrics-base-port", type=int, default=9100, help="worker i serves /metrics on this port + i")
    s.add_argument("--threads-per-worker", type=int, default=None,
                   help="torch threads of each worker (default on the CPU: the cores divided among the workers)")
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run one queue worker (loads the model once)")
    w.add_argument("--model", default=None)
    w.add_argument("--redis-url", default=None, help="default: $MOTIONCACHE_REDIS_URL or redis://127.0.0.1:6379/0")
    w.add_argument("--queue", default=None)
    w.add_argument("--device", default="cpu")
    w.add_argument("--dtype", default="float32")
    w.add_argument("--name", default=None)
    w.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    w.add_argument("--metrics-host", default="127.0.0.1")
    w.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    w.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    w.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_worker)

    c = sub.add_parser("client", help="submit, watch, get, cancel or list jobs on a running server, or describe it")
    c.add_argument("--server", default=DEFAULT_SERVER)
    c.add_argument("--api-key", default=os.environ.get("MOTIONCACHE_API_KEY"))
    actions = c.add_subparsers(dest="action", required=True)
    sb = actions.add_parser("submit", help="submit a prompt and stream the video to --output as it is made")
    sb.add_argument("--prompt", required=True)
    sb.add_argument("--seed", type=int, default=0)
    sb.add_argument("--cache", default="none")
    sb.add_argument("--cache-knob", action="append", default=[], metavar="NAME=VALUE",
                    help="override a knob of the cache policy (repeatable); `client model` lists them")
    sb.add_argument("--image")
    sb.add_argument("--prefix-video")
    for flag, kind in _REQUEST_ARGS:
        sb.add_argument(flag, type=kind)
    sb.add_argument("--output", "-o", default="out.mp4")
    sb.add_argument("--no-wait", action="store_true", help="print the job id and return")
    wa = actions.add_parser("watch", help="stream an existing job's chunks")
    wa.add_argument("id")
    wa.add_argument("--output", "-o")
    wa.add_argument("--from-chunk", type=int, default=0, help="resume: append chunks from this index on")
    g = actions.add_parser("get", help="print a job's status (and save its video with --content FILE)")
    g.add_argument("id")
    g.add_argument("--content")
    x = actions.add_parser("cancel", help="cancel a job")
    x.add_argument("id")
    ls = actions.add_parser("list", help="list your jobs, newest first")
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--limit", type=int, default=20)
    actions.add_parser("model", help="print the served model: defaults, cache policies with their knobs, limits")
    c.set_defaults(func=cmd_client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="motioncache")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ServeCliError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
