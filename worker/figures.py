"""A request's figures while it runs and when it ends: compute speedup, token-skip rate, latencies."""

from __future__ import annotations

from motioncache.engine import Generation, Plan


def reference_flops_so_far(plan: Plan, transformer, text_tokens: int, rows_done: int) -> int:
    """Reference (uncached) FLOPs of the first `rows_done` rows: the plan cut after those rows."""
    rows, left = [], rows_done
    for n in plan.rows_per_window:
        rows.append(min(n, left))
        left -= rows[-1]
    k = max(1, sum(1 for n in rows if n))
    return Plan(plan.resolved, plan.windows[:k], rows[:k], plan.context_pixel_frames).reference_flops(transformer,
                                                                                                        text_tokens)


def token_skip_rate(evals: int, reused: int) -> float:
    return reused / (evals + reused) if evals + reused else 0.0


def so_far(gen: Generation, transformer, *, created_at: float, started_at: float, first_chunk_at: float | None,
           frames_done: int, now: float) -> dict:
    plan, counter = gen.plan, gen.counter
    reference = reference_flops_so_far(plan, transformer, plan.resolved.request.max_sequence_length,
                                       gen.progress.rows_done)
    wall = max(now - started_at, 1e-9)
    video_s = frames_done / plan.resolved.fps
    return {
        "compute_speedup": reference / counter.flops if counter.flops else None,
        "token_skip_rate": token_skip_rate(counter.token_layer_evals, counter.token_layer_reused),
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
