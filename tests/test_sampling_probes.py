"""scripts/negative_prompt_probe.py, frame_lag_probe.py and shape_commit_probe.py: the caption edits and the
lagged sampler they rely on, and runs on a tiny random model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motioncache.demo_data import DIRECTIONS, heldout_captions
from motioncache.vae_stream import StreamingDecoder

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def negative(load_script):
    return load_script("negative_prompt_probe")


@pytest.fixture(scope="module")
def lag(load_script):
    return load_script("frame_lag_probe")


def test_negative_prompts_change_only_the_motion(negative):
    text = "a red circle moves up-left and a small blue square stays still over a grey background"
    assert negative.negative_prompt(text, "empty") == ""
    assert negative.negative_prompt(text, "still") == \
        "a red circle stays still and a small blue square stays still over a grey background"
    assert negative.negative_prompt(text, "opposite") == \
        "a red circle moves down-right and a small blue square stays still over a grey background"
    for d, (x, y) in DIRECTIONS.items():
        assert DIRECTIONS[negative.OPPOSITE[d]] == (-x, -y)
    still = "a red circle stays still over a grey background"  # no motion to contrast: plain CFG
    assert all(negative.negative_prompt(still, k) == "" for k in ("empty", "still", "opposite"))


def test_shape_contrast_swaps_only_the_main_shape(negative):
    text = "a red triangle moves left and a small blue square stays still over a grey background"
    assert negative.negative_prompt(text, "shape") == \
        "a red circle moves left and a small blue square stays still over a grey background"
    assert negative.negative_prompt(text, "shape+opposite") == \
        "a red circle moves right and a small blue square stays still over a grey background"
    still = "a green circle stays still over a white background"  # the shape is contrasted even when still
    assert negative.negative_prompt(still, "shape") == "a green square stays still over a white background"
    assert negative.negative_prompt(still, "shape+opposite") == "a green square stays still over a white background"
    assert {negative.SHAPE_CONTRAST[s] for s in ("square", "triangle")} == {"circle"}


def test_negative_prompt_probe_runs_and_reports_every_kind(tiny_dir, tmp_path, negative):
    out = tmp_path / "neg.json"
    run = subprocess.run([sys.executable, str(SCRIPTS / "negative_prompt_probe.py"), "--model", str(tiny_dir),
                          "--n", "1", "--kinds", ",".join(negative.KINDS), "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert list(report["results"]) == list(negative.KINDS) and report["n"] == 1
    bad = subprocess.run([sys.executable, str(SCRIPTS / "negative_prompt_probe.py"), "--model", str(tiny_dir),
                          "--kinds", "empty,colour"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "unknown --kinds ['colour']" in bad.stderr and "Traceback" not in bad.stderr


def test_lagged_sampler_makes_one_block_and_the_lag_changes_it(tiny_components, lag):
    text = "a red circle moves left over a grey background"
    plain = lag.sample(tiny_components, text, 0, steps=4, shift=5.0, guidance=3.0, seed=0)
    again = lag.sample(tiny_components, text, 0, steps=4, shift=5.0, guidance=3.0, seed=0)
    lagged = lag.sample(tiny_components, text, 2, steps=4, shift=5.0, guidance=3.0, seed=0)
    h, w = tiny_components.defaults.get("height", 128), tiny_components.defaults.get("width", 128)
    assert plain.dtype == np.uint8 and plain.shape == (4 * (lag.FRAMES - 1) + 1, h, w, 3)  # 5 latent frames
    assert np.array_equal(plain, again)  # seeded
    assert not np.array_equal(plain, lagged)
    first = lag.sample(tiny_components, text, lag.FIRST, steps=4, shift=5.0, guidance=3.0, seed=0)
    assert first.shape == plain.shape and not np.array_equal(first, plain)


def test_sampler_from_a_start_level_keeps_what_the_noisy_input_shows(tiny_components, lag):
    text = "a red circle moves left over a grey background"
    h, w = tiny_components.defaults.get("height", 128), tiny_components.defaults.get("width", 128)
    shape = (1, tiny_components.transformer.config.in_channels, lag.FRAMES,
             h // tiny_components.vae_scale_spatial, w // tiny_components.vae_scale_spatial)
    init = torch.randn(shape, generator=torch.Generator().manual_seed(7))
    kept = StreamingDecoder(tiny_components.vae).decode(init)
    kept = (kept * 255).round().clip(0, 255).astype(np.uint8)
    plain = lag.sample(tiny_components, text, 0, steps=4, shift=5.0, guidance=3.0, seed=0)
    at_one = lag.sample(tiny_components, text, 0, 4, 5.0, 3.0, 0, init=init, start_level=1.0)
    near_zero = lag.sample(tiny_components, text, 0, 4, 5.0, 3.0, 0, init=init, start_level=1e-4)
    halfway = lag.sample(tiny_components, text, 0, 4, 5.0, 3.0, 0, init=init, start_level=0.5)
    assert np.array_equal(at_one, plain)  # level 1 is pure noise: the init plays no part
    assert np.abs(near_zero.astype(int) - kept).max() <= 2  # one tiny step from the init itself
    assert not np.array_equal(halfway, plain) and not np.array_equal(halfway, near_zero)


def test_shape_commit_probe_reports_every_level(tiny_dir, tmp_path):
    out = tmp_path / "commit.json"
    run = subprocess.run([sys.executable, str(SCRIPTS / "shape_commit_probe.py"), "--model", str(tiny_dir),
                          "--n", "2", "--levels", "0,0.5,1", "--steps", "4", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["0.0", "0.5", "1.0"]
    assert all(0 <= r["shape_acc"] <= 1 for r in results.values())
    bad = subprocess.run([sys.executable, str(SCRIPTS / "shape_commit_probe.py"), "--model", str(tiny_dir),
                          "--levels", "1.5"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "every level must lie in [0, 1]" in bad.stderr and "Traceback" not in bad.stderr
    words = subprocess.run([sys.executable, str(SCRIPTS / "shape_commit_probe.py"), "--levels", "half"],
                           capture_output=True, text=True, timeout=600)
    assert words.returncode == 2 and "comma-separated numbers" in words.stderr and "Traceback" not in words.stderr


def test_shape_commit_probe_edits_only_the_main_shape_word(load_script, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # the probe imports frame_lag_probe's sampler
    probe = load_script("shape_commit_probe")
    text, scene = next((t, s) for t, s in heldout_captions(50) if len(s.objects) == 2)
    edited = probe.probe_caption(text, scene, "other-shape")
    other = probe.OTHER_SHAPE[scene.main.shape]
    assert other != scene.main.shape and edited.split()[:3] == [*text.split()[:2], other]
    assert edited.split()[3:] == text.split()[3:]  # the second object's words are untouched
    assert probe.probe_caption(text, scene, "empty") == "" and probe.probe_caption(text, scene, "true") == text
    assert sorted(probe.OTHER_SHAPE.values()) == sorted(probe.OTHER_SHAPE)  # every shape gets another one
