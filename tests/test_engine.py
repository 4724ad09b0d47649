import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from motioncache.denoiser import padding_bias
from motioncache.engine import Cancelled, _new_scheduler
from motioncache.request import CacheSpec, GenerationRequest
from motioncache.stochastic import stochastic_step
from motioncache.text import encode_prompts
from motioncache.vae_stream import StreamingDecoder
from motioncache.video_io import FragmentedMp4Writer

AR = dict(prompt="a blue square moves right", height=32, width=32, num_inference_steps=3, num_frames=33, ar_step=1,
          causal_block_size=3)


def frames(gen):
    return np.concatenate([c.frames for c in gen])


def test_same_request_same_frames(engine):
    a = frames(engine.generate(GenerationRequest(seed=4, **AR)))
    b = frames(engine.generate(GenerationRequest(seed=4, **AR)))
    c = frames(engine.generate(GenerationRequest(seed=5, **AR)))
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_chunks_stream_before_the_video_is_done(engine):
    gen = engine.generate(GenerationRequest(seed=0, **AR))
    seen = []
    for chunk in gen:
        seen.append((chunk.index, chunk.frame_start, chunk.frame_end, gen.progress.rows_done))
    assert [s[0] for s in seen] == [0, 1, 2] == list(range(gen.plan.total_chunks))
    assert [s[1:3] for s in seen] == [(0, 9), (9, 21), (21, 33)]
    assert seen[0][3] < gen.plan.total_rows  # the first chunk came out while later blocks were still denoising
    assert seen[-1][3] == gen.plan.total_rows


def test_incremental_decode_equals_whole_video_decode(tiny_components):
    vae = tiny_components.vae
    latents = torch.randn(1, 16, 7, 4, 6, generator=torch.Generator().manual_seed(0))
    dec = StreamingDecoder(vae)
    streamed = np.concatenate([dec.decode(latents[:, :, a:b]) for a, b in [(0, 1), (1, 4), (4, 6), (6, 7)]])
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    whole = vae.decode(latents * std + mean).sample
    whole = ((whole / 2 + 0.5).clamp(0, 1))[0].permute(1, 2, 3, 0).numpy()
    assert streamed.shape == whole.shape == (25, 32, 48, 3)
    assert np.abs(streamed - whole).max() <= 1e-4


def test_many_steps_whose_integer_timesteps_repeat_still_take_every_step(engine):
    """At shift 8 the rounded timesteps repeat from ~150 steps on; each block must still start at the schedule's
    first step (a timestep lookup picked a later one, and UniPC then failed on its last step)."""
    steps = 200
    sched = engine.c.scheduler_config
    assert sched["flow_shift"] == 8.0
    timesteps = _new_scheduler(sched, 8.0, steps, "cpu").timesteps
    assert len(set(timesteps.tolist())) < steps  # the case this is about
    gen = engine.generate(GenerationRequest(**{**AR, "num_frames": 9, "num_inference_steps": steps, "ar_step": 0}))
    video = frames(gen)
    assert gen.progress.rows_done == steps and np.isfinite(video).all() and video.std() > 0


def test_shared_transformer_config_is_never_mutated(engine):
    before = engine.c.transformer.config.num_frame_per_block
    list(engine.generate(GenerationRequest(**{**AR, "causal_block_size": 2, "num_frames": 17})))
    assert engine.c.transformer.config.num_frame_per_block == before


def test_partial_last_block_is_denoised_not_left_as_noise(engine):
    # 11 latent frames with blocks of 3: the last block has 2 frames; it must converge like the others
    req = GenerationRequest(seed=1, **{**AR, "num_frames": 41})
    gen = engine.generate(req)
    chunks = list(gen)
    assert chunks[-1].latent_end == 11 and chunks[-1].latent_end - chunks[-1].latent_start == 2
    assert sum(len(c.frames) for c in chunks) == 41
    # the decoded noise of a pure-noise latent is far from anything denoised: compare against decoding noise
    noisy = StreamingDecoder(engine.c.vae)
    noise = torch.randn(1, 16, 11, 4, 4, generator=torch.Generator().manual_seed(1))
    noise_frames = np.concatenate([noisy.decode(noise)])[-8:]
    assert np.abs(chunks[-1].frames - noise_frames).mean() > 1e-3


def test_guidance_one_runs_a_single_branch(engine):
    cfg = engine.generate(GenerationRequest(seed=0, guidance_scale=3.0, **{k: v for k, v in AR.items()}))
    list(cfg)
    one = engine.generate(GenerationRequest(seed=0, guidance_scale=1.0, **AR))
    list(one)
    assert one.counter.token_layer_evals * 2 == cfg.counter.token_layer_evals


def test_reference_flops_are_what_the_reference_path_computes(engine):
    embeds = encode_prompts(engine.c.tokenizer, engine.c.text_encoder, [AR["prompt"], ""], 512, torch.float32)
    text_tokens, _ = padding_bias(embeds, torch.float32)
    for policy in ("none", "chunked"):
        gen = engine.generate(GenerationRequest(seed=0, cache={"policy": policy}, **AR))
        chunks = list(gen)
        assert gen.progress.text_tokens == text_tokens < 512  # zero padding cut
        reference = gen.plan.reference_flops(engine.c.transformer, gen.progress.text_tokens)
        assert gen.counter.reference_flops == reference  # accumulated row by row == planned
        assert sum(c.stats["flops"] for c in chunks) == gen.counter.flops
        assert sum(c.stats["reference_flops"] for c in chunks) == reference
        if policy == "none":
            assert gen.counter.flops == reference
        else:
            assert gen.counter.flops < 0.8 * reference


def test_cancel_stops_between_rows(engine):
    gen = engine.generate(GenerationRequest(seed=0, **AR), should_stop=lambda: gen.progress.rows_done >= 2)
    got = []
    with pytest.raises(Cancelled):
        for chunk in gen:
            got.append(chunk)
    assert gen.progress.rows_done == 2 and got == []


def _png(w, h, color):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_image_to_video_and_video_extension(engine):
    req = GenerationRequest(seed=0, image=_png(64, 64, (200, 30, 30)), **AR)
    gen = engine.generate(req)
    chunks = list(gen)
    assert [len(c.frames) for c in chunks] == [1, 12, 12, 8]  # the image is chunk 0, then 3+3+2 latent frames
    assert sum(len(c.frames) for c in chunks) == 33
    other = frames(engine.generate(GenerationRequest(seed=0, image=_png(64, 64, (30, 30, 200)), **AR)))
    assert np.abs(frames(chunks) - other).max() > 1e-3  # the condition really conditions

    w = FragmentedMp4Writer(32, 32, 8)
    clip = (np.linspace(0, 255, 13 * 32 * 32 * 3) % 256).astype(np.uint8).reshape(13, 32, 32, 3)
    init, frag = w.encode_chunk(clip)
    ext = GenerationRequest(seed=0, prefix_video=base64.b64encode(init + frag).decode(), **AR)
    chunks = list(engine.generate(ext))
    assert [len(c.frames) for c in chunks][0] == 13 and sum(len(c.frames) for c in chunks) == 33


@pytest.mark.parametrize("fields,message", [
    (dict(num_frames=32), r"num_frames must be 4k\+1.*use 29 or 33"),
    (dict(height=40), "multiple of 16"),
    (dict(guidance_scale=0.5), "greater than or equal to 1"),
    (dict(num_inference_steps=0), "greater than or equal to 1"),
    (dict(prompt=""), "at least 1 character"),
    (dict(image="aGk=", prefix_video="aGk="), "either image or prefix_video"),
    (dict(cache={"policy": "none", "bogus": 1}), "Extra inputs"),
    (dict(strength=0.3), "Extra inputs"),
])
def test_bad_requests_are_rejected_by_the_schema(fields, message):
    with pytest.raises(ValidationError, match=message):
        GenerationRequest(**{**AR, **fields})


@pytest.mark.parametrize("fields,message", [
    (dict(num_frames=45, base_num_frames=33), "set overlap_history"),
    (dict(num_frames=45, base_num_frames=17, overlap_history=17), "must be smaller than base_num_frames"),
    (dict(causal_block_size=20, base_num_frames=33), "larger than a window"),
    (dict(cache={"policy": "warp-drive"}), "unknown cache policy"),
    (dict(cache={"policy": "chunked", "knobs": {"threshold": 0.1}}), "has no knob"),
    (dict(image="bm90IGFuIGltYWdl"), "image: cannot read image"),
    (dict(image="%%%"), "image:"),
    (dict(prefix_video=base64.b64encode(b"\0" * 64).decode()), "prefix_video:"),
])
def test_bad_combinations_are_rejected_before_any_work(engine, fields, message):
    with pytest.raises(ValueError, match=message):
        engine.generate(GenerationRequest(**{**AR, **fields}))


def test_stochastic_steps_are_seeded_the_same_for_every_policy_and_euler_at_churn_zero(engine):
    plain = frames(engine.generate(GenerationRequest(seed=4, **AR)))
    churned = frames(engine.generate(GenerationRequest(seed=4, churn=0.5, **AR)))
    again = frames(engine.generate(GenerationRequest(seed=4, churn=0.5, **AR)))
    chunked = frames(engine.generate(GenerationRequest(seed=4, churn=0.5, cache=CacheSpec(policy="chunked"), **AR)))
    assert np.array_equal(churned, again) and np.abs(churned - plain).max() > 1e-3
    assert np.abs(churned - chunked).max() <= 1e-4  # the noise draws do not depend on the policy: still exact
    v, x = torch.randn(1, 4, 2, 3, 3), torch.randn(1, 4, 2, 3, 3)
    euler = stochastic_step(v, x, 0.8, 0.6, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(euler, x + (0.6 - 0.8) * v, atol=1e-6)
    with pytest.raises(ValidationError, match="churn"):
        GenerationRequest(prompt="p", churn=1.5)
