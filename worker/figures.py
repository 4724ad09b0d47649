"""A request's figures while it runs and when it ends: compute speedup, token-skip rate, latencies."""

from __future__ import annotations

from motioncache.accounting import ComputeCounter
from motioncache.engine import Generation


def so_far(gen: Generation, transformer, *, created_at: float, started_at: float, first_chunk_at: float | None,
           frames_done: int, now: float) -> dict:
    plan, counter = gen.plan, gen.counter
    reference = counter.reference_flops  # the engine adds each row's uncached cost as it runs it
    compute = ComputeCounter.figures(counter.snapshot())
    wall = max(now - started_at, 1e-9)
    video_s = frames_done / plan.resolved.fps
    return {
        "compute_speedup": compute["compute_speedup"] if counter.flops else None,
        "token_skip_rate": compute["token_skip_rate"],
        "time_to_first_chunk_s": None if first_chunk_at is None else first_chunk_at - created_at,
        "engine_time_to_first_chunk_s": None if first_chunk_at is None else first_chunk_at - started_at,
        "queue_wait_s": started_at - created_at,
        "wall_s": wall,
        "video_s": video_s,
        "real_time_factor": video_s / wall,
        "flops": counter.flops,
        "reference_flops": reference,
        "token_layer_evals": counter.token_layer_evals,
        "token_layer_reused": counter.token_layer_reused,
        "timings_s": dict(gen.progress.timings),
    }
