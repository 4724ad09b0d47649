"""Cache policies: exactness where they must be exact, honest accounting, presets and knobs."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from motioncache.accounting import ComputeCounter
from motioncache.denoiser import Denoiser, QueryRuns, padding_bias, patchify, rope_apply, unpatchify
from motioncache.knob_rules import check_request
from motioncache.policies import PRESETS, make_policy, published_rules
from motioncache.policies.base import RowInput
from motioncache.policies.flowcache import FlowCacheRunner
from motioncache.policies.motion import MotionCache, MotionCacheRunner
from motioncache.policies.rescale import rescale
from motioncache.policies.token_runner import MAX_EXTRAPOLATION, TokenRunner, TokenStore
from motioncache.request import GenerationRequest

AR = dict(prompt="a red circle moves left", height=32, width=32, num_inference_steps=8, num_frames=37, ar_step=2,
          causal_block_size=3)  # 10 latent frames: blocks of 3, 3, 3, 1
SKIPPY = {"rescale": "identity", "threshold": 0.3, "warmup": 2}  # the tiny random model's modulation moves a lot


def generate(engine, policy, knobs=None, **kw):
    gen = engine.generate(GenerationRequest(**{**AR, **kw}, cache={"policy": policy, "knobs": knobs or {}}))
    return np.concatenate([c.frames for c in gen]), gen


def test_selective_forward_over_all_tokens_equals_the_full_forward(tiny_components):
    d = Denoiser(tiny_components.transformer, ComputeCounter())
    g = torch.Generator().manual_seed(0)
    frames, hp, wp = 6, 3, 4
    latents = torch.randn(1, 16, frames, hp * 2, wp * 2, generator=g)
    text = d.encode_text(torch.randn(1, 7, 16, generator=g))
    frame_t = torch.tensor([0, 0, 400, 400, 900, 900])
    block_ids = torch.tensor([0, 0, 1, 1, 2, 2])
    _, proj = d.time_embedding(frame_t, 1)
    x = d.embed(latents)
    full = d.stack(x, proj, 0, hp, wp, text, block_ids=block_ids)
    cfg = tiny_components.transformer.config
    store = TokenStore(cfg.num_layers, 1, frames * hp * wp, cfg.num_attention_heads, cfg.attention_head_dim,
                       torch.float32, "cpu")
    idx = torch.arange(frames * hp * wp)
    token_frame = idx // (hp * wp)
    freqs = d.rotary(0, frames, hp, wp)
    sel = d.selective(x, idx, token_frame, block_ids[token_frame], proj, freqs, store, block_ids[token_frame],
                      text)
    assert (sel - full).abs().max() <= 1e-5
    # a subset (every other token) writes exactly its own keys into the store and leaves the rest alone
    before = store.k[0].clone()
    part = idx[::2]
    d.selective(x[:, part], part, token_frame[part], block_ids[token_frame][part], proj, freqs[:, part],
                store, block_ids[token_frame], text, rows=[0])
    assert torch.equal(store.k[0][:, 1::2], before[:, 1::2])


def test_rope_rotates_each_interleaved_pair_by_its_angle():
    g = torch.Generator().manual_seed(0)
    x, angle = torch.randn(2, 5, 3, 8, generator=g), torch.rand(1, 5, 1, 4, generator=g) * 6
    out = rope_apply(x, torch.polar(torch.ones_like(angle), angle))
    even, odd, c, s = x[..., 0::2], x[..., 1::2], angle.cos(), angle.sin()
    assert torch.allclose(out[..., 0::2], even * c - odd * s, atol=1e-6)
    assert torch.allclose(out[..., 1::2], even * s + odd * c, atol=1e-6)
    assert out.dtype == x.dtype and torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # a rotation


def test_block_causal_runs_equal_masked_attention_and_count_the_pairs_they_score():
    g = torch.Generator().manual_seed(0)
    hw, block_ids = 4, torch.tensor([0, 0, 1, 1, 1, 2])  # blocks of 2, 3, 1 frames
    q, k, v = (torch.randn(2, 6 * hw, 3, 8, generator=g) for _ in range(3))
    ids = block_ids.repeat_interleave(hw)
    runs = QueryRuns.of_window(block_ids, 6, hw)

    def masked(q, keys, mask):
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k[:, :keys].transpose(1, 2),
                                           v[:, :keys].transpose(1, 2), attn_mask=mask)
        return o.transpose(1, 2).flatten(2, 3)

    assert torch.allclose(runs.attend(q, k, v), masked(q, 6 * hw, ids[:, None] >= ids[None, :]), atol=1e-6)
    assert runs.pairs == hw * hw * (2 * 2 + 3 * 5 + 1 * 6)
    assert QueryRuns.of_window(None, 6, hw).pairs == (6 * hw) ** 2
    # chosen tokens from blocks 0 and 1 over the keys of blocks 0-1 (a selective call)
    chosen = torch.tensor([1, 5, 9, 12, 17])
    sub = QueryRuns.of_tokens(ids[chosen], ids[:5 * hw])
    mask = ids[chosen][:, None] >= ids[:5 * hw][None, :]
    assert torch.allclose(sub.attend(q[:, chosen], k[:, :5 * hw], v[:, :5 * hw]),
                          masked(q[:, chosen], 5 * hw, mask), atol=1e-6)
    assert sub.pairs == 2 * 2 * hw + 3 * 5 * hw


@pytest.mark.parametrize("policy,knobs", [("motioncache", {}), ("motioncache", {"motion_source": "denoised"}),
                                          ("motioncache", {"distance": "token", "shared_choice": True}),
                                          ("flowcache", {})])
def test_threshold_zero_equals_chunked(engine, policy, knobs):
    chunked, _ = generate(engine, "chunked")
    cached, gen = generate(engine, policy, {"threshold": 0.0, **knobs})
    assert np.abs(cached - chunked).max() <= 1e-4
    assert gen.counter.token_layer_reused == 0


@pytest.mark.parametrize("policy", ["motioncache", "flowcache"])
def test_extrapolation_changes_reused_tokens_only(engine, policy):
    chunked, _ = generate(engine, "chunked")
    exact, _ = generate(engine, policy, {"threshold": 0.0, "extrapolation": 1.0})  # nothing reused: nothing changes
    assert np.abs(exact - chunked).max() <= 1e-4
    plain, gen_plain = generate(engine, policy, SKIPPY)
    extrapolated, gen = generate(engine, policy, {**SKIPPY, "extrapolation": 1.0})
    assert gen.counter.token_layer_reused == gen_plain.counter.token_layer_reused > 0  # same decisions and cost
    assert np.abs(extrapolated - plain).max() > 1e-3


def test_extrapolation_follows_each_tokens_last_two_residuals():
    """Two tokens: both computed at t=900 and 800; token 0 again at 700, token 1 reused there; at 600 both
    are reused and extrapolate from their own last two computations."""
    runner = TokenRunner.__new__(TokenRunner)
    runner.extrapolation, runner.residual, runner.prev_residual, runner.times = 1.0, {}, {}, {}
    key, t = (0, 0), float
    runner._store_residual(key, torch.tensor([[1.0], [10.0]]), None, t(900))
    assert torch.equal(runner._reused_residual(key, t(800)), torch.tensor([[1.0], [10.0]]))  # one point: as is
    runner._store_residual(key, torch.tensor([[2.0], [12.0]]), None, t(800))
    assert torch.allclose(runner._reused_residual(key, t(700)), torch.tensor([[3.0], [14.0]]))
    runner._store_residual(key, torch.tensor([[4.0], [99.0]]), torch.tensor([True, False]), t(700))
    assert torch.equal(runner.residual[key], torch.tensor([[4.0], [12.0]]))  # a reused token keeps its residual
    # token 0: (800, 2) -> (700, 4), one step on: 6; token 1: (900, 10) -> (800, 12), two steps on: 16
    assert torch.allclose(runner._reused_residual(key, t(600)), torch.tensor([[6.0], [16.0]]))
    # far from the last computation the step is capped at MAX_EXTRAPOLATION intervals
    assert torch.allclose(runner._reused_residual(key, t(0))[1], torch.tensor([12.0 + 2 * MAX_EXTRAPOLATION]))


def test_teacache_threshold_zero_equals_the_reference(engine):
    reference, _ = generate(engine, "none")
    cached, _ = generate(engine, "teacache", {"threshold": 0.0})
    assert np.abs(cached - reference).max() <= 1e-4


def test_long_video_and_no_cfg_with_motioncache(engine):
    kw = dict(num_frames=57, base_num_frames=33, overlap_history=9)  # two windows: state restarts per window
    chunked, _ = generate(engine, "chunked", **kw)
    cached, _ = generate(engine, "motioncache", {"threshold": 0.0}, **kw)
    assert np.abs(cached - chunked).max() <= 1e-4
    one, gen = generate(engine, "motioncache", SKIPPY, guidance_scale=1.0)
    assert one.shape == (37, 32, 32, 3) and gen.counter.token_layer_reused > 0


class TokenAudit:
    """Counts, with hooks on the real modules, what the transformer actually computed."""

    def __init__(self, transformer, monkeypatch):
        self.ffn_tokens, self.flops = 0, 0
        import motioncache.denoiser as dn

        real = dn.attention

        def counted(q, k, v, mask):
            self.flops += 4 * q.shape[0] * q.shape[1] * k.shape[1] * q.shape[2] * q.shape[3]
            return real(q, k, v, mask)

        monkeypatch.setattr(dn, "attention", counted)
        for block in transformer.blocks:
            block.ffn.register_forward_hook(self._ffn)
            for m in block.modules():
                if isinstance(m, torch.nn.Linear):
                    m.register_forward_hook(self._linear)
        transformer.proj_out.register_forward_hook(self._linear)
        transformer.patch_embedding.register_forward_hook(self._conv)

    def _ffn(self, module, inputs, output):
        self.ffn_tokens += inputs[0].shape[0] * inputs[0].shape[1]

    def _linear(self, module, inputs, output):
        self.flops += 2 * inputs[0].numel() // inputs[0].shape[-1] * module.in_features * module.out_features

    def _conv(self, module, inputs, output):
        self.flops += 2 * output.numel() * module.weight[0].numel()


@pytest.mark.parametrize("policy,knobs", [("none", {}), ("chunked", {}), ("teacache", SKIPPY),
                                          ("flowcache", SKIPPY), ("motioncache", SKIPPY)])
def test_reported_compute_is_what_the_forward_computed(tiny_dir, policy, knobs, monkeypatch):
    from motioncache.engine import Engine
    from motioncache.model_files import load_components

    engine = Engine(load_components(tiny_dir))  # a private copy: hooks stay off the shared model
    audit = TokenAudit(engine.c.transformer, monkeypatch)
    _, gen = generate(engine, policy, knobs)
    c = gen.counter
    assert c.token_layer_evals == audit.ffn_tokens  # every computed token-layer passes one FFN
    assert c.flops == audit.flops
    if policy in ("flowcache", "motioncache", "teacache"):
        assert c.token_layer_reused > 0  # it really skipped, and the skipped work is not in the FLOPs
        _, ref = generate(engine, "chunked" if policy != "teacache" else "none")
        assert c.token_layer_evals + c.token_layer_reused == ref.counter.token_layer_evals


def test_shared_choice_gives_the_unconditional_branch_the_conditional_ones_tokens(monkeypatch):
    runner = MotionCacheRunner.__new__(MotionCacheRunner)
    runner.cond_choice = {}
    own = {0: torch.tensor([True, False]), 1: torch.tensor([False, True])}  # what each branch would choose
    monkeypatch.setattr(MotionCacheRunner, "_choose", lambda self, branch, block, *rest: own[branch])
    for shared, expected in ((False, own[1]), (True, own[0])):
        runner.cfg = MotionCache(shared_choice=shared)
        assert torch.equal(runner.choose(0, 3, None, None, None), own[0])
        assert torch.equal(runner.choose(1, 3, None, None, None), expected)


def test_shared_choice_runs_end_to_end_with_both_branches_in_one_batch(engine, monkeypatch):
    calls = []
    selective = Denoiser.selective

    def spy(self, *args, rows=None, **kwargs):
        calls.append(rows)
        return selective(self, *args, rows=rows, **kwargs)

    monkeypatch.setattr(Denoiser, "selective", spy)
    knobs = {**SKIPPY, "threshold": 0.05, "distance": "token", "phase1_updates": 0, "temporal_voting": 0.0,
             "min_update_ratio": 0.0, "shared_choice": True}  # partial choices on the tiny model
    _, gen = generate(engine, "motioncache", knobs)
    assert calls and all(rows is None for rows in calls)  # rows None: one batch of both branches
    assert gen.counter.token_layer_reused > 0


def test_motioncache_skips_tokens_and_stays_close(engine):
    chunked, ref = generate(engine, "chunked")
    cached, gen = generate(engine, "motioncache", SKIPPY)
    c = gen.counter
    skip = c.token_layer_reused / (c.token_layer_evals + c.token_layer_reused)
    assert 0.05 < skip < 0.95 and c.flops < ref.counter.flops
    assert 0 < np.abs(cached - chunked).max() < 0.5


def test_presets_and_knobs():
    slow, fast = make_policy("motioncache-slow"), make_policy("motioncache-fast")
    assert fast.threshold > slow.threshold
    assert (slow.warmup, slow.phase1_updates, slow.motion_weights, slow.motion_floor, slow.temporal_voting,
            slow.min_update_ratio) == (4, 6, "max_rescale", 0.6, 0.5, 0.4)
    assert (slow.distance, slow.shared_choice, fast.distance, fast.shared_choice) == ("token", True, "token", True)
    assert (slow.noise_power, fast.noise_power) == (1.0, 0.5)
    assert make_policy("motioncache").distance == "global" and not make_policy("motioncache").shared_choice
    for preset in (slow, fast, make_policy("flowcache-slow"), make_policy("flowcache-fast")):
        assert preset.extrapolation == 0.5  # presets extrapolate half-way ...
    assert make_policy("motioncache").extrapolation == 0.0  # ... the plain policy is the reference method
    with pytest.raises(ValueError, match=r"^motion_floor must lie in \[0, 1\], got -0.1"):
        make_policy("motioncache", {"motion_floor": -0.1})
    tuned = make_policy("motioncache-fast", {"threshold": "0.3", "force_last_step": "false"})
    assert tuned.threshold == 0.3 and tuned.force_last_step is False
    with pytest.raises(ValueError, match="no knob"):
        make_policy("flowcache", {"motion_floor": 0.5})
    with pytest.raises(ValueError, match="expected float"):
        make_policy("teacache", {"threshold": "lots"})
    with pytest.raises(ValueError, match="unknown cache preset"):
        make_policy("motioncache-medium")
    with pytest.raises(ValueError, match="must be one of"):
        make_policy("motioncache", {"motion_weights": "median"})


BAD_KNOBS = [("motioncache-slow", {"motion_floor": 2}), ("motioncache", {"temporal_voting": -0.5}),
             ("motioncache-fast", {"motion_source": "optical_flow"}), ("flowcache-slow", {"warmup": 4.5}),
             ("flowcache", {"extrapolation": -1}), ("teacache", {"force_last_step": "maybe"}),
             ("teacache-slow", {"rescale": "cubic"}), ("chunked", {"threshold": 0.1})]


@pytest.mark.parametrize("spec, knobs", BAD_KNOBS)
def test_the_api_checks_knobs_with_the_engines_rules_and_words(spec, knobs):
    """The rules a worker publishes reject exactly what building the policy rejects, with the same message."""
    with pytest.raises(ValueError) as engine_error:
        make_policy(spec, knobs)
    api_problems = check_request(published_rules()[spec], knobs)
    assert len(api_problems) == 1 and api_problems[0] in str(engine_error.value), \
        (api_problems, str(engine_error.value))


def test_published_rules_carry_types_ranges_and_resolved_defaults():
    rules = published_rules({"motioncache": {"slow": {"threshold": 0.095}}})
    assert rules["none"] == {} and rules["motioncache"]["threshold"] == {"type": "float", "default": 0.1, "low": 0}
    assert rules["motioncache-slow"]["threshold"]["default"] == 0.095  # the model's recalibration
    assert rules["motioncache-fast"]["extrapolation"]["default"] == 0.5  # the preset's value
    assert rules["motioncache"]["motion_floor"] == {"type": "float", "default": 0.6, "low": 0, "high": 1}
    assert rules["flowcache"]["rescale"]["choices"] == ["wan_1_3b", "identity"]
    assert rules["teacache"]["warmup"]["type"] == "int" and rules["teacache"]["force_last_step"]["type"] == "bool"
    good = {"threshold": "0.3", "warmup": 6, "force_last_step": "off", "motion_weights": "mean"}
    assert check_request(rules["motioncache-slow"], good) == []
    assert make_policy("motioncache-slow", good).warmup == 6


def test_a_model_directory_recalibrates_presets(tiny_components):
    """motioncache.json "cache_presets" replace a preset's knobs for that model; request knobs still win."""
    from motioncache.engine import Engine

    calibrated = {"motioncache": {"slow": {"threshold": 0.7, "warmup": 3}}}
    slow = make_policy("motioncache-slow", None, calibrated)
    assert (slow.threshold, slow.warmup, slow.phase1_updates) == (0.7, 3, 6)
    assert make_policy("motioncache-slow", {"threshold": 0.2}, calibrated).threshold == 0.2
    fast = make_policy("motioncache-fast", None, calibrated)
    assert fast.threshold == PRESETS["motioncache"]["fast"]["threshold"]  # not recalibrated: built-in
    engine = Engine(dataclasses.replace(tiny_components, defaults={**tiny_components.defaults,
                                                                     "cache_presets": calibrated}))
    plan = engine.plan(GenerationRequest(**AR, cache={"policy": "motioncache-slow"}))
    assert plan.policy.threshold == 0.7


def test_token_policies_need_block_causal_attention(engine):
    with pytest.raises(ValueError, match="needs block-causal attention"):
        engine.generate(GenerationRequest(**{**AR, "causal_block_size": 1}, cache={"policy": "motioncache"}))


def test_fixed_rescale_is_non_negative_and_monotone():
    x = torch.linspace(0, 1.5, 3001)
    fixed = rescale(x)
    assert (fixed >= 0).all() and (fixed[1:] >= fixed[:-1]).all() and fixed[0] == 0
    raw = rescale(x, monotone=False)
    assert (raw < 0).any() and not (raw[1:] >= raw[:-1]).all()  # the reference polynomial's defect


def test_bucket_padding_changes_the_cost_not_the_result(tiny_components):
    """GPU bucket padding (forced on here): the chosen tokens' outputs and the store are unchanged; the
    padded evaluations are counted, because they are computed."""
    g = torch.Generator().manual_seed(1)
    frames, hp, wp = 4, 3, 4
    latents = torch.randn(1, 16, frames, hp * 2, wp * 2, generator=g)
    results = []
    for bucket in (0, 16):
        d = Denoiser(tiny_components.transformer, ComputeCounter())
        d.token_bucket = bucket
        text = d.encode_text(torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(2)))
        _, proj = d.time_embedding(torch.tensor([0, 0, 500, 500]), 1)
        x = d.embed(latents)
        cfg = tiny_components.transformer.config
        store = TokenStore(cfg.num_layers, 1, frames * hp * wp, cfg.num_attention_heads, cfg.attention_head_dim,
                           torch.float32, "cpu")
        block_of_token = (torch.arange(frames * hp * wp) // (hp * wp)) // 2
        part = torch.tensor([0, 3, 5, 14, 20, 31, 33, 47])  # 8 tokens -> padded to 16
        freqs = d.rotary(0, frames, hp, wp)
        d.counter.token_layer_evals = 0
        out = d.selective(x[:, part], part, part // (hp * wp), block_of_token[part], proj, freqs[:, part],
                          store, block_of_token, text)
        results.append((out, store.k[0].clone(), d.counter.token_layer_evals))
    (plain, k_plain, evals_plain), (padded, k_padded, evals_padded) = results
    assert padded.shape == plain.shape and (padded - plain).abs().max() <= 1e-5
    assert torch.allclose(k_padded, k_plain, atol=1e-6)
    assert evals_padded == 2 * evals_plain


def test_padding_bias_keeps_the_softmax_of_all_padding_states():
    """Cross-attention over the cut padding with its logit bias == over all zero-padded states."""
    torch.manual_seed(0)
    states = torch.zeros(2, 40, 6)
    states[0, :5], states[1, :2] = torch.randn(5, 6), torch.randn(2, 6)
    keep, bias = padding_bias(states, torch.float64)
    assert keep == 6 and bias.shape == (2, 1, 1, 6)
    assert torch.equal(bias[0, 0, 0, :5], torch.zeros(5)) and bias[0, 0, 0, 5] == pytest.approx(math.log(35))
    assert bias[1, 0, 0, 2:].allclose(torch.full((4,), math.log(38 / 4), dtype=torch.float64))
    proj_k, proj_v = torch.nn.Linear(6, 8).double(), torch.nn.Linear(6, 8).double()  # biases: zero states matter
    q = torch.randn(2, 1, 3, 8, dtype=torch.float64)
    states = states.double()
    full = F.scaled_dot_product_attention(q, proj_k(states)[:, None], proj_v(states)[:, None])
    cut = F.scaled_dot_product_attention(q, proj_k(states[:, :keep])[:, None], proj_v(states[:, :keep])[:, None],
                                         attn_mask=bias)
    assert torch.allclose(full, cut, atol=1e-12)
    assert padding_bias(torch.randn(2, 4, 3), torch.float32) == (4, None)  # nothing to cut


@pytest.mark.parametrize("patch", [(1, 2, 2), (2, 2, 2)])
def test_patchify_is_the_inverse_of_the_heads_unpatchify(patch):
    pt, ph, pw = patch
    nf, hp, wp, c = 2, 3, 4, 5
    tokens = torch.randn(2, nf * hp * wp, pt * ph * pw * c)
    video = unpatchify(tokens, nf, hp, wp, patch)
    assert video.shape == (2, c, nf * pt, hp * ph, wp * pw)
    assert torch.equal(patchify(video, patch), tokens)
    # token (frame 1, row 2, column 3) holds exactly that patch of the video
    token = tokens[0, (1 * hp + 2) * wp + 3]
    area = video[0, :, pt:2 * pt, 2 * ph:3 * ph, 3 * pw:4 * pw]
    assert torch.equal(token.sort().values, area.flatten().sort().values)


def test_denoised_motion_weights_single_out_the_token_that_changes():
    """motion_source=denoised reads the inter-frame change of the denoised estimate: a static background at
    the floor, the one position whose content changes at 1 (in the frames where it changes)."""
    runner = MotionCacheRunner.__new__(MotionCacheRunner)
    runner.cfg = MotionCache(motion_source="denoised", motion_floor=0.6)
    runner.ctx = type("Ctx", (), {"hw": 4})()
    frames = torch.ones(3, 4, 8)  # 3 frames x 4 positions x 8 channels, static...
    frames[1:, 2] += 0.5          # ...but for position 2 from frame 1 on
    runner.denoised = {(0, 1): frames.reshape(12, 8), (0, 0): torch.ones(12, 8)}
    runner.last_out = {}  # the hidden-state source is not read
    w = runner._motion_weights(0, 1).view(3, 4)
    assert torch.allclose(w[1], torch.tensor([0.6, 0.6, 1.0, 0.6]))
    assert torch.allclose(w[0], torch.full((4,), 0.6)) and torch.allclose(w[2], torch.full((4,), 0.6))


@pytest.mark.parametrize("policy", ["motioncache", "flowcache"])
@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_noise_power_weights_each_steps_distance_by_the_blocks_remaining_schedule(policy, power):
    """The same modulation change adds s^p as much to the accumulator, s the block's remaining share of its
    schedule (not the shifted timestep): a change on step 6 of 50 (s 0.9) counts 3^p times one on step 36 (s 0.3)."""
    runner_class = {"motioncache": MotionCacheRunner, "flowcache": FlowCacheRunner}[policy]

    def accumulated(first_step: int) -> float:
        runner = runner_class.__new__(runner_class)
        runner.cfg = make_policy(policy, {"noise_power": power, "warmup": 0, "threshold": 1e9, "rescale": "identity",
                                          **({"temporal_voting": 0.0, "min_update_ratio": 0.0}
                                             if policy == "motioncache" else {})})
        runner.ctx = type("Ctx", (), {"blocks": [(0, 2)], "num_steps": 50, "hw": 4})()
        runner.acc, runner.prev, runner.prev_mod, runner.updates, runner.cond_choice = {}, {}, {}, {}, {}
        t = torch.full((2,), 500)  # the same timestep on every step: the weight must not read it
        proj = torch.ones(2, 6, 8)
        for step, scale in ((first_step - 1, 1.0), (first_step, 1.5)):  # the first call only stores the modulation
            row = RowInput(step, torch.zeros(1), t, [0], [step], [])
            runner.choose(0, 0, row, proj * scale, torch.zeros(8, 8))
        return float(torch.as_tensor(runner.acc[(0, 0)]).flatten()[0])

    high, low = accumulated(6), accumulated(36)
    assert high == pytest.approx(0.5 * 0.9 ** power) and low == pytest.approx(0.5 * 0.3 ** power)
    assert high / low == pytest.approx(3.0 ** power)
