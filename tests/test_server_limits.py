"""Submit-time checks of the API (pure: no Redis, no model; the profile is what a worker publishes)."""

from motioncache.request import GenerationRequest
from server.limits import check, job_timeout_s
from server.settings import Settings

PROFILE = {"defaults": {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 4, "fps": 8},
           "scheduler_shift": 8.0, "model_block_size": 1, "temporal_scale": 4, "spatial_scale": 8, "patch": [1, 2, 2],
           "policies": {"none": {}, "chunked": {}, "teacache": {"threshold": {"type": "float", "default": 0.08, "low": 0}},
                        "teacache-fast": {"threshold": {"type": "float", "default": 0.2, "low": 0},
                                          "rescale": {"type": "str", "default": "wan_1_3b",
                                                      "choices": ["wan_1_3b", "identity"]}}}}


def problems(settings=None, profile=PROFILE, **fields):
    found, _ = check(GenerationRequest(prompt="a red circle", **fields), settings or Settings(), profile)
    return [(p.field, p.rule) for p in found]


def test_limits_apply_to_the_resolved_request():
    small = Settings(max_frames=9, max_pixels=32 * 32, max_steps=4)
    assert problems(small) == []  # model defaults are within the limits
    assert problems(small, num_frames=13) == [("num_frames", "max_frames")]
    assert problems(small, height=48) == [("height", "max_pixels")]
    assert problems(Settings(max_steps=3)) == [("num_inference_steps", "max_steps")]  # the model's default is 4
    assert problems(Settings(max_prompt_length=5)) == [("prompt", "max_prompt_length")]


def test_model_rules_and_policies_are_checked_when_a_worker_published_its_profile():
    assert problems(num_frames=101, base_num_frames=97) == [("num_frames", "model")]
    assert problems(cache={"policy": "magic"}) == [("cache.policy", "one_of")]
    assert problems(cache={"policy": "teacache", "knobs": {"treshold": 0.1}}) == [("cache.knobs", "knob_rules")]
    assert problems(cache={"policy": "teacache-fast", "knobs": {"threshold": 0.1, "rescale": "identity"}}) == []
    for bad in ({"threshold": -1}, {"threshold": "lots"}, {"threshold": True}, {"rescale": "cubic"}):
        assert problems(cache={"policy": "teacache-fast", "knobs": bad}) == [("cache.knobs", "knob_rules")], bad
    found, _ = check(GenerationRequest(prompt="x", cache={"policy": "teacache-fast", "knobs": {"threshold": -1}}),
                     Settings(), PROFILE)
    assert found[0].message == "policy 'teacache-fast': threshold must be >= 0, got -1.0"
    assert problems(profile=None, cache={"policy": "magic"}) == []  # no profile yet: the worker checks


def test_job_timeout_grows_with_the_request():
    s = Settings(job_timeout_base_s=60, job_timeout_per_unit_s=1.0, job_timeout_max_s=10_000)
    small = job_timeout_s({"num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 4}, s)
    big = job_timeout_s({"num_frames": 97, "height": 544, "width": 960, "num_inference_steps": 50,
                         "guidance_scale": 1.0}, s)
    cfg = job_timeout_s({"num_frames": 97, "height": 544, "width": 960, "num_inference_steps": 50,
                         "guidance_scale": 6.0}, s)
    assert 60 <= small < big < cfg <= 10_000
