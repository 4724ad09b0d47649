import dataclasses
import json

import numpy as np
import pytest
import torch

from motioncache.demo_train import TrainConfig, config_overrides, tiny_config, train
from motioncache.demo_train_transformer import (ENGINE_TEXT_LEN, PADDED_TEXT_LEN, TextAttributeHeads, _tf_batch,
                                               _tokenize, build_text_model, compiled_forward, diffusion_forcing_loss,
                                               encode_text, loss_weight, sample_sigmas, sample_word_sigmas,
                                               text_padding_bias, tokenized_captions, transformer_lr)
from motioncache.demo_train_forward import training_forward
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest


def test_tiny_training_resumes_and_the_model_generates(tmp_path):
    out = tmp_path / "demo"
    cfg = tiny_config()
    train(cfg, out, log=lambda m: None)
    first = torch.load(out / ".train" / "transformer.pt", weights_only=False)
    assert first["step"] == cfg.tf_steps and cfg.text_attribute_loss > 0 and "text_heads" in first

    decoder_steps = lambda: torch.load(out / ".train" / "decoder.pt", weights_only=False)["step"]  # noqa: E731
    assert decoder_steps() == cfg.dec_steps + cfg.dec_whole_steps

    cfg.tf_steps += 2  # a rerun resumes from the checkpoint instead of starting over
    cfg.dec_whole_steps += 1  # ... also in a finished decoder phase (the latents stay valid: encoder frozen)
    logs = []
    train(cfg, out, log=logs.append)
    assert any("resumed at step 3" in m for m in logs)
    assert torch.load(out / ".train" / "transformer.pt", weights_only=False)["step"] == cfg.tf_steps
    assert decoder_steps() == cfg.dec_steps + cfg.dec_whole_steps

    c = load_components(out)
    assert c.transformer.config.num_frame_per_block == cfg.block
    assert len(c.vae.config.latents_mean) == 16 and min(c.vae.config.latents_std) > 0
    assert json.loads((out / "motioncache.json").read_text())["causal_block_size"] == cfg.block
    chunks = list(Engine(c).generate(GenerationRequest(prompt="a red circle moves left over a grey background")))
    frames = np.concatenate([ch.frames for ch in chunks])
    assert frames.shape == (9, 32, 32, 3) and np.isfinite(frames).all()


def test_text_attribute_heads_teach_every_token_state_the_whole_caption():
    from motioncache.demo_data import caption, caption_labels, sample_scene

    torch.manual_seed(0)
    cfg = TrainConfig()
    tokenizer, text_encoder, _ = build_text_model(cfg)
    captions = [caption(sample_scene(np.random.default_rng(i))) for i in range(16)]
    ids, mask = _tokenize(tokenizer, captions)
    labels = torch.tensor([caption_labels(t) for t in captions])
    keep = torch.ones(len(captions), dtype=torch.bool)
    heads = TextAttributeHeads(cfg.text_dim)
    assert float(heads.loss(text_encoder, ids, mask, labels, torch.zeros_like(keep))) == 0.0  # no caption, no loss
    opt = torch.optim.AdamW(list(text_encoder.parameters()) + list(heads.parameters()), lr=3e-3)
    first = heads.loss(text_encoder, ids, mask, labels, keep).item()
    for _ in range(60):
        opt.zero_grad()
        heads.loss(text_encoder, ids, mask, labels, keep).backward()
        opt.step()
    assert heads.loss(text_encoder, ids, mask, labels, keep).item() < 0.2 * first
    with torch.no_grad():  # the motion is readable from every caption token, not only from its own word
        states = text_encoder(ids, mask).last_hidden_state
        motion = heads.heads[2](states).argmax(-1)  # [captions, tokens]
    assert (motion == labels[:, 2:3])[mask.bool()].float().mean() > 0.9


def test_resume_refuses_different_architecture(tmp_path):
    cfg = tiny_config()
    train(cfg, tmp_path / "m", stop_after="vae", log=lambda m: None)
    cfg.layers = 2
    with pytest.raises(ValueError, match="layers"):
        train(cfg, tmp_path / "m", log=lambda m: None)
    saved = tmp_path / "m" / ".train" / "config.json"  # a checkpoint from before an option existed ...
    old = json.loads(saved.read_text())
    del old["paths"]
    saved.write_text(json.dumps(old))
    cfg.layers = tiny_config().layers
    train(cfg, tmp_path / "m", stop_after="vae", log=lambda m: None)  # ... resumes with its default
    cfg.paths = "short"
    with pytest.raises(ValueError, match="paths"):
        train(cfg, tmp_path / "m", log=lambda m: None)


def test_diffusion_forcing_noise_levels_per_block_or_per_frame():
    cfg = TrainConfig(frame_noise_prob=0.0)
    s = sample_sigmas(cfg, 256, 25, torch.Generator().manual_seed(0)).view(256, 5, 5)  # 5 blocks of 5 frames
    assert (s >= 0).all() and (s < 1).all()
    assert (s[:, -1] > 0).all()  # the last block always has a target
    assert (s == s[..., :1]).all()  # one level per block ...
    assert s[..., 0].std(dim=1).mean() > 0.1  # ... and blocks of one clip get different levels
    cfg.frame_noise_prob = 1.0
    s = sample_sigmas(cfg, 256, 25, torch.Generator().manual_seed(0)).view(256, 5, 5)
    clean = (s == 0).all(dim=2)
    assert clean.any() and ((s == 0).any(dim=2) == clean).all()  # clean context is still whole blocks
    assert s[~clean].std(dim=1).mean() > 0.05  # frames of one block get different levels
    assert (s.flatten(1).diff(dim=1)[(s.flatten(1) > 0).all(dim=1)] >= 0).float().mean() > 0.7  # half sorted


def test_word_noise_levels_hide_or_show_the_first_frame():
    cfg = TrainConfig(word_visible=0.6)
    s = sample_word_sigmas(cfg, 2000, 5, torch.Generator().manual_seed(0))
    visible = (s[:, 0] < 0.3) & (s[:, 1:] >= 0.7).all(dim=1) & (s[:, 1:].std(dim=1) > 0)
    assert 0.55 < visible.float().mean() < 0.65
    rest = s[~visible]
    assert (rest == rest[:, :1]).all() and rest[:, 0].std() > 0.2  # one level per clip, spread over (0, 1)
    assert (s > 0).all()  # every frame has a target


def test_mid_level_share_moves_that_share_of_levels_into_the_band_and_nothing_at_zero():
    base = TrainConfig()
    zero = TrainConfig(mid_level_share=0.0, mid_low=0.4, mid_high=0.5)  # the band is unused at share 0
    for draw, frames in ((sample_sigmas, 25), (sample_word_sigmas, 5)):
        assert torch.equal(draw(base, 512, frames, torch.Generator().manual_seed(3)),
                           draw(zero, 512, frames, torch.Generator().manual_seed(3)))  # same draws: reproducible
    cfg = TrainConfig(mid_level_share=0.5, mid_low=0.3, mid_high=0.7, frame_noise_prob=0.0)
    s = sample_sigmas(cfg, 4000, 25, torch.Generator().manual_seed(0)).view(4000, 5, 5)
    assert (s == s[..., :1]).all()  # still one level per block
    levels = s[..., 0][s[..., 0] > 0]
    in_band = ((levels >= 0.3) & (levels < 0.7)).float().mean().item()
    shifted = sample_sigmas(base, 4000, 25, torch.Generator().manual_seed(0))
    base_band = ((shifted >= 0.3) & (shifted < 0.7))[shifted > 0].float().mean().item()
    assert abs(in_band - (0.5 + 0.5 * base_band)) < 0.03  # half redrawn into the band, half as before
    word = sample_word_sigmas(dataclasses.replace(cfg, word_visible=0.0, mid_level_share=1.0), 500, 5,
                              torch.Generator().manual_seed(0))
    assert ((word >= 0.3) & (word < 0.7)).all() and (word == word[:, :1]).all()
    with pytest.raises(ValueError, match="mid_low"):
        TrainConfig(mid_low=0.8, mid_high=0.2)


def test_two_block_word_clips_never_get_cleaner_and_train(tmp_path):
    cfg = TrainConfig(word_blocks=2, clean_block_prob=0.2)
    one = sample_word_sigmas(TrainConfig(), 2000, 5, torch.Generator().manual_seed(1))
    s = sample_word_sigmas(cfg, 2000, 10, torch.Generator().manual_seed(1))
    kept = (s[:, :5] > 0).any(dim=1)
    assert torch.equal(s[kept, :5], one[kept])  # the first block drawn as with one block
    second = s[:, 5:]
    assert (second == second[:, :1]).all() and (second[:, 0] >= s[:, 4]).all() and (second > 0).all()
    clean = (s[:, :5] == 0).all(dim=1)
    assert 0.15 < clean.float().mean() < 0.25  # clean context: the continuation task
    assert second[:, 0].std() > 0.05
    with pytest.raises(ValueError, match="word_blocks"):
        TrainConfig(word_blocks=0)
    tiny = dataclasses.replace(tiny_config(), word_phase=(0, 2), word_clips=2, word_blocks=2, tf_steps=2)
    train(tiny, tmp_path / "m", log=lambda m: None)
    data = torch.load(tmp_path / "m" / ".train" / "data.pt", weights_only=False)
    assert data["word"][0].shape[1] == 2 * tiny.block and data["word_mask"][0].shape[0] == 2 * tiny.block
    ids = tokenized_captions(build_text_model(tiny)[0], data)
    for batch in (1, 3):  # word batches take word_batch clips, the others batch
        sized = dataclasses.replace(tiny, word_batch=batch)
        x0, *_, kind, _, _ = _tf_batch(sized, data, ids, 0, torch.Generator())
        assert kind == "word" and x0.shape[0] == batch
    x0, *_, kind, _, _ = _tf_batch(dataclasses.replace(tiny, word_phase=(), word_share=0.0), data, ids, 0,
                                   torch.Generator())
    assert kind == "short" and x0.shape[0] == tiny.batch
    with pytest.raises(ValueError, match="word_batch"):
        TrainConfig(word_batch=0)


def test_word_scenes_tie_direction_to_the_caption_only():
    from motioncache.demo_data import caption, sample_scene, word_scene

    scenes = [word_scene(np.random.default_rng(i), "large", 0.5) for i in range(400)]
    assert all(len(s.objects) == 1 and s.texture == "none" and s.main.motion != "still" for s in scenes)
    assert all(" and " not in caption(s) and "moves" in caption(s) for s in scenes)
    # Where an object starts says nothing about where it goes: right-movers start in both halves of the frame,
    # as do left-movers (ordinary scenes start every right-mover on the left, so the whole path stays in view).
    for motion in ("right", "left"):
        xs = np.array([s.main.start[0] for s in scenes if s.main.motion == motion])
        assert len(xs) > 10 and (xs < 0.4).any() and (xs > 0.6).any()
    ordinary = [sample_scene(np.random.default_rng(i), paths="large") for i in range(400)]
    assert max(s.main.start[0] for s in ordinary if s.main.motion == "right") < 0.5


def test_free_start_keeps_the_direction_and_draws_the_start_anywhere():
    from motioncache.demo_data import free_start, sample_scene

    rng = np.random.default_rng(0)
    starts = []
    for _ in range(200):
        main = sample_scene(rng).main
        if main.motion == "right":
            moved = free_start(main, 0.5, rng)
            assert moved.shift == (0.5 * main.shift[0], 0.0) and moved.motion == "right"
            starts.append(moved.start[0])
    assert min(starts) < 0.3 and max(starts) > 0.7  # a right-mover may now start on the right


def test_word_share_draws_first_block_batches(tmp_path):
    cfg = dataclasses.replace(tiny_config(), word_share=0.5, word_clips=3, tf_steps=8)
    logs = []
    train(cfg, tmp_path / "m", log=logs.append)
    data = torch.load(tmp_path / "m" / ".train" / "data.pt", weights_only=False)
    assert len(data["word"]) == 3 and data["word"][0].shape[1] == cfg.block  # one causal block of latent frames
    assert all(" and " not in t for t in data["word_captions"])
    ids = tokenized_captions(build_text_model(cfg)[0], data)
    kinds = [_tf_batch(cfg, data, ids, step, torch.Generator())[4] for step in range(200)]
    assert 0.4 < kinds.count("word") / 200 < 0.6 and "short" in kinds and "long" in kinds
    assert any("word" in m and "transformer step" in m for m in logs)  # its own running loss in the progress
    off = dataclasses.replace(cfg, word_share=0.0)  # off: the ordinary schedule, step for step
    assert [_tf_batch(off, data, ids, s, torch.Generator())[4] for s in range(200)] == \
        ["long" if s % cfg.long_every == cfg.long_every - 1 else "short" for s in range(200)]


def test_word_phase_trains_word_batches_alone_at_the_peak_rate(tmp_path):
    cfg = dataclasses.replace(tiny_config(), word_share=0.0, word_phase=(2, 5), word_clips=3, tf_steps=8, warmup=1)
    train(cfg, tmp_path / "m", stop_after="data", log=lambda m: None)
    data = torch.load(tmp_path / "m" / ".train" / "data.pt", weights_only=False)
    assert len(data["word"]) == 3  # encoded for the phase although word_share is 0
    ids = tokenized_captions(build_text_model(cfg)[0], data)
    kinds = [_tf_batch(cfg, data, ids, step, torch.Generator())[4] for step in range(8)]
    assert kinds[2:5] == ["word"] * 3 and "word" not in kinds[:2] + kinds[5:]
    plain = dataclasses.replace(cfg, word_phase=(), tf_steps=5)  # the same schedule without the phase
    lrs = [transformer_lr(cfg, s) for s in range(8)]
    assert lrs[:2] == [transformer_lr(plain, s) for s in range(2)] and lrs[2:5] == [cfg.lr] * 3
    assert lrs[5:] == [transformer_lr(plain, s) for s in range(2, 5)]  # the cosine resumes where it paused
    assert lrs[1] < cfg.lr and lrs[-1] < lrs[5]
    assert config_overrides(["word_phase="]) == {"word_phase": ()}  # --set word_phase= turns it off
    with pytest.raises(ValueError, match="word_phase"):
        TrainConfig(word_phase=(5, 2))


def test_object_mask_on_the_latent_grid_follows_the_main_object():
    from motioncache.demo_data import make_example, object_mask
    from motioncache.demo_train_data import latent_grid

    video, _, scene = make_example(3, num_frames=37)
    mask = object_mask(scene, video)
    assert mask.shape == video.shape[:3] and 0 < mask.mean() < 0.1  # objects only, never the textured background
    grid = latent_grid(mask)
    assert grid.shape == (10, 16, 16)
    o = scene.main
    for f, frame in ((0, 0), (9, 36)):  # the first latent frame holds frame 0, the last one frames 33-36
        t = frame / 36
        x, y = int((o.start[0] + t * o.shift[0]) * 16), int((o.start[1] + t * o.shift[1]) * 16)
        assert grid[f, min(y, 15), min(x, 15)]
    assert grid[0].float().mean() < 0.2


def test_reconstruction_loss_does_not_let_the_background_win_on_whole_frames():
    """Dropping a small object must cost more than a slight error everywhere, though plain L1 says otherwise."""
    from motioncache.demo_data import make_example
    from motioncache.demo_train_vae import reconstruction_loss
    from motioncache.train_support import to_tensor

    video, _, scene = make_example(5, num_frames=1)
    x = to_tensor(video[None])
    dropped = x.clone()
    dominant = x.flatten(2).median(dim=2).values[:, :, None, None, None]
    on_object = (x - dominant).norm(dim=1, keepdim=True) > 0.45
    assert 0 < on_object.float().mean() < 0.08  # a small object on a whole frame
    dropped = torch.where(on_object, dominant.expand_as(x), x)
    everywhere = x + 0.1
    assert (dropped - x).abs().mean() < (everywhere - x).abs().mean()  # plain L1 prefers dropping it
    assert reconstruction_loss(dropped, x, 2.0)[0] > reconstruction_loss(everywhere, x, 2.0)[0]


def test_vae_batches_follow_the_image_clip_schedule():
    """Single frames before vae_image_steps, then every vae_image_every-th step; crops grow, batches halve."""
    from motioncache.demo_train_vae import _vae_batch

    cfg = dataclasses.replace(TrainConfig(), height=32, width=32, clip_frames=9, vae_frames=5, vae_image_steps=4,
                              vae_image_every=3, vae_batch=3, vae_clip_batch=2)
    shapes = [tuple(_vae_batch(cfg, step).shape) for step in range(9)]
    image, clip = (3, 3, 1, 32, 32), (2, 3, 5, 32, 32)
    assert shapes == [image] * 4 + [clip, clip, image, clip, clip]
    cropped = dataclasses.replace(cfg, vae_crop=8, vae_crop_steps=(5,))
    assert tuple(_vae_batch(cropped, 0).shape) == (3, 3, 1, 8, 8)
    assert tuple(_vae_batch(cropped, 5).shape) == (1, 3, 5, 16, 16)  # crop doubled, batch halved


def test_vae_trial_script_trains_and_scores(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "vae_trial.py"
    out = tmp_path / "trial.json"
    common = [sys.executable, str(script), "--threads", "1", "--eval-n", "1", "--eval-frames", "5"]
    p = subprocess.run([*common, "--set", "vae_steps=2", "--set", "vae_crop_steps=1,2", "--set", "vae_image_steps=1",
                        "--eval-at", "1", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    assert [s["step"] for s in report["scores"]] == [1, 2]
    assert 0 <= report["scores"][-1]["color_acc"] <= 1 and report["scores"][-1]["l1_255"] > 0
    assert len(report["scores"][-1]["l1_255_per_frame"]) == 5
    from motioncache.demo_train_vae import build_vae

    ckpt = tmp_path / "vae.pt"
    torch.save({"model": build_vae(TrainConfig()).state_dict(), "step": 7}, ckpt)
    p = subprocess.run([*common, "--checkpoint", str(ckpt), "--json", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    assert report["curve"] == [] and [s["step"] for s in report["scores"]] == [7]
    bad = subprocess.run([*common, "--set", "no_such_option=1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "no option 'no_such_option'" in bad.stderr and "Traceback" not in bad.stderr


def test_config_overrides_are_typed_and_checked():
    assert config_overrides(["vae_lr=1e-3", "vae_crop_steps=400,800", "vae_steps=1700"]) == {
        "vae_lr": 1e-3, "vae_crop_steps": (400, 800), "vae_steps": 1700}
    with pytest.raises(ValueError, match="no option 'nope'"):
        config_overrides(["nope=1"])
    with pytest.raises(ValueError, match="vae_steps takes a int"):
        config_overrides(["vae_steps=many"])
    assert config_overrides(["vae_frame_local=true"]) == {"vae_frame_local": True}
    assert config_overrides(["vae_frame_local=0"]) == {"vae_frame_local": False}
    with pytest.raises(ValueError, match="vae_frame_local takes a bool"):
        config_overrides(["vae_frame_local=yes please"])
    assert config_overrides(["paths=short"]) == {"paths": "short"}
    with pytest.raises(ValueError, match="choose one of long, short"):
        config_overrides(["paths=wiggly"])


def _tiny_text_model(cfg, **config):
    torch.manual_seed(0)
    tokenizer, text_encoder, transformer = build_text_model(cfg)
    if config:
        transformer = type(transformer).from_config({**transformer.config, **config})
    with torch.no_grad():  # diffusers zero-initialises some tables; random weights exercise every path
        for p in transformer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tokenizer, text_encoder, transformer


@pytest.mark.parametrize("sample_info", [False, True])
def test_training_forward_equals_diffusers_forward_and_its_gradients(sample_info):
    """training_forward (per-frame modulation, attention per causal block) computes diffusers' block-causal
    diffusion-forcing forward: same prediction, same gradients of every weight; with the fps embedding too."""
    cfg = dataclasses.replace(tiny_config(), heads=2, head_dim=12, text_dim=16)
    tokenizer, text_encoder, transformer = _tiny_text_model(cfg, inject_sample_info=sample_info)
    fps = {"fps": [1]} if sample_info else {}
    x = torch.randn(2, 16, 2 * cfg.block, 4, 6)  # two causal blocks, a non-square grid
    sigma = torch.rand(2, 2 * cfg.block)
    ids, mask = _tokenize(tokenizer, ["a red circle moves left over a grey background", ""])
    states = torch.nn.functional.pad(text_encoder(ids, mask).last_hidden_state * mask[..., None], (0, 0, 0, 8))
    outputs, grads = [], []
    for forward in ("diffusers", "training"):
        transformer.zero_grad()
        if forward == "diffusers":
            out = transformer(x, timestep=sigma * 1000, encoder_hidden_states=states.detach(),
                              enable_diffusion_forcing=True, return_dict=False, **fps)[0]
        else:
            out = training_forward(transformer, x, sigma * 1000, states.detach(), None, 1 if sample_info else None)
        (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        outputs.append(out.detach())
        grads.append(torch.cat([p.grad.flatten() for p in transformer.parameters()]))
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    # block-causal: a change in the second block's input leaves the first block's prediction alone
    x2 = x.clone()
    x2[:, :, cfg.block:] += 1
    with torch.no_grad():
        a, b = (training_forward(transformer, v, sigma * 1000, states, None, 0) for v in (x, x2))
    assert torch.equal(a[:, :, :cfg.block], b[:, :, :cfg.block]) and not torch.allclose(a, b)


def test_compiled_training_forward_trains_as_the_uncompiled_one():
    """The recipe's compiled forward (inductor's C++ kernels) gives the uncompiled one's loss and gradients."""
    cfg = dataclasses.replace(tiny_config(), heads=2, head_dim=12, text_dim=16)
    tokenizer, text_encoder, transformer = _tiny_text_model(cfg)
    compiled = compiled_forward()
    assert compiled is not training_forward, "no C++ compiler: scripts/setup.sh installs g++"
    x0 = torch.randn(2, 16, 2 * cfg.block, 4, 4)
    ids, mask = _tokenize(tokenizer, ["a red circle moves left over a grey background", ""])
    losses, grads = [], []
    for forward in (training_forward, compiled):
        transformer.zero_grad()
        loss = diffusion_forcing_loss(cfg, transformer, text_encoder, x0, ids, mask, torch.Generator().manual_seed(3),
                                      forward=forward)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in transformer.parameters()]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-5)


def test_padded_text_equals_attention_over_all_padding():
    """Training's cross-attention over the caption + one weighted zero state == over all 512 states:
    same loss and same gradients; without the weight they differ."""
    cfg = dataclasses.replace(tiny_config(), heads=2, head_dim=12, text_dim=16)
    tokenizer, text_encoder, transformer = _tiny_text_model(cfg)
    x0 = torch.randn(2, 16, 2 * cfg.block, 4, 4)
    ids, mask = _tokenize(tokenizer, ["a red circle moves left over a grey background", ""])
    losses, grads = [], []
    for length in (ENGINE_TEXT_LEN, PADDED_TEXT_LEN, PADDED_TEXT_LEN + 5):
        transformer.zero_grad()
        text_encoder.zero_grad()
        loss = diffusion_forcing_loss(cfg, transformer, text_encoder, x0, ids, mask, torch.Generator().manual_seed(3),
                                      text_len=length)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for m in (transformer, text_encoder) for p in m.parameters()
                                if p.grad is not None]))
    for i in (1, 2):
        assert losses[0] == pytest.approx(losses[i], rel=1e-5)
        assert torch.allclose(grads[0], grads[i], rtol=1e-4, atol=1e-6)
    # the weight is what makes them equal: one unweighted zero state gives other gradients
    states = encode_text(text_encoder, ids, mask, PADDED_TEXT_LEN)
    out = {bias: training_forward(transformer, x0, torch.full((2, 2 * cfg.block), 500.0), states, bias)
           for bias in (None, text_padding_bias(PADDED_TEXT_LEN))}
    assert not torch.allclose(*out.values(), rtol=1e-3, atol=1e-4)


def test_object_weight_only_on_settled_frames_and_around_the_object():
    """The object weight covers the object grown by the margin, only on frames noised to at most the cut-off;
    clean context frames keep no weight at all."""
    cfg = dataclasses.replace(tiny_config(), object_loss_weight=3.0, object_loss_max_sigma=0.5, object_loss_margin=1)
    objects = torch.zeros(1, 3, 6, 6, dtype=torch.bool)
    objects[:, :, 2, 2] = True
    sigma = torch.tensor([[0.0, 0.3, 0.9]])
    weight = loss_weight(cfg, sigma, objects, (1, 3, 6, 6))
    assert weight[0, 0].eq(0).all()  # clean context
    assert weight[0, 2].eq(1).all()  # too noisy: the object's place is not settled yet
    grown = weight[0, 1] == 4
    assert grown.sum() == 9 and grown[1:4, 1:4].all()  # 3x3 around the object pixel
    assert weight[0, 1][~grown].eq(1).all()
    plain = loss_weight(dataclasses.replace(cfg, object_loss_weight=0.0), sigma, objects, (1, 3, 6, 6))
    assert plain[0, 1:].eq(1).all()
