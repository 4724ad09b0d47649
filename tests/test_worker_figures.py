"""Figures a worker reports while a request runs (pure functions, no Redis)."""

from motioncache.accounting import ComputeCounter
from motioncache.request import GenerationRequest
from worker.figures import so_far

REQ = dict(prompt="a blue square moves right", height=32, width=32, num_inference_steps=3, num_frames=33, ar_step=1,
           causal_block_size=3)


def test_reference_flops_so_far_grows_with_rows_and_ends_at_the_plans_total(engine):
    gen = engine.generate(GenerationRequest(**REQ))
    plan = gen.plan
    values = [gen.counter.reference_flops]
    gen.progress.on_row = lambda p: values.append(gen.counter.reference_flops)
    list(gen)
    assert values == sorted(values) and values[0] < values[-1]
    assert 0 < gen.progress.text_tokens < 512  # the prompts' zero padding is cut
    assert values[-1] == plan.reference_flops(engine.c.transformer, gen.progress.text_tokens)


def test_figures_of_a_finished_request_match_the_cli_summary(engine):
    from motioncache.cli import summarize

    gen = engine.generate(GenerationRequest(**{**REQ, "cache": {"policy": "chunked"}}), counter=ComputeCounter())
    frames = sum(len(c.frames) for c in gen)
    f = so_far(gen, engine.c.transformer, created_at=0.0, started_at=1.0, first_chunk_at=1.5, frames_done=frames,
               now=3.0)
    summary = summarize(gen.plan, engine, gen.counter, gen.progress, 2.0)
    assert f["compute_speedup"] == summary["compute_speedup"] > 1.0
    assert f["time_to_first_chunk_s"] == 1.5 and f["engine_time_to_first_chunk_s"] == 0.5
    assert f["real_time_factor"] == frames / gen.plan.resolved.fps / 2.0


def test_token_skip_rate():
    def token_skip_rate(evals, reused):
        return ComputeCounter.figures({"token_layer_evals": evals, "token_layer_reused": reused, "flops": 0,
                                       "reference_flops": 0})["token_skip_rate"]

    assert token_skip_rate(0, 0) == 0.0
    assert token_skip_rate(30, 10) == 0.25
