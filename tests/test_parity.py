"""The reference path reproduces diffusers' SkyReelsV2DiffusionForcingPipeline; the chunked path equals it."""

import numpy as np
import pytest
import torch
from diffusers import SkyReelsV2DiffusionForcingPipeline

from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest
from motioncache.tiny_model import make_tiny_model

SCHEDULES = {
    "synchronous": dict(num_frames=17, ar_step=0),
    "autoregressive": dict(num_frames=33, ar_step=2, causal_block_size=3),
    "long-overlap": dict(num_frames=57, base_num_frames=33, overlap_history=9, ar_step=1, causal_block_size=3),
}
MODELS = {  # (model kwargs, height, width): square and not, several depths and head layouts
    "2layer-48x32": (dict(num_layers=2), 32, 48),
    "3layer-32x32": (dict(num_layers=3, heads=3, head_dim=8, seed=1), 32, 32),
}


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request, tmp_path_factory):
    kwargs, h, w = MODELS[request.param]
    path = make_tiny_model(tmp_path_factory.mktemp(request.param) / "m", **kwargs)
    pipe = SkyReelsV2DiffusionForcingPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    return pipe, Engine(load_components(path)), h, w


def run(engine, **kw):
    return np.concatenate([c.frames for c in engine.generate(GenerationRequest(**kw))])


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_reference_path_matches_diffusers(pair, schedule):
    pipe, engine, h, w = pair
    kw = dict(prompt="a red circle moves left", negative_prompt="blue", height=h, width=w, num_inference_steps=4,
              guidance_scale=5.0, **SCHEDULES[schedule])
    expected = pipe(**kw, generator=torch.Generator().manual_seed(11), output_type="np").frames[0]
    got = run(engine, seed=11, cache={"policy": "none"}, **kw)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-3
    chunked = run(engine, seed=11, cache={"policy": "chunked"}, **kw)
    assert np.abs(chunked - got).max() <= 1e-4


def test_without_cfg_matches_diffusers(pair):
    pipe, engine, h, w = pair
    kw = dict(prompt="a green square", height=h, width=w, num_inference_steps=3, guidance_scale=1.0,
              num_frames=21, ar_step=1, causal_block_size=2)  # 6 latent frames = 3 blocks
    expected = pipe(**kw, generator=torch.Generator().manual_seed(2), output_type="np").frames[0]
    assert np.abs(run(engine, seed=2, **kw) - expected).max() <= 1e-3
