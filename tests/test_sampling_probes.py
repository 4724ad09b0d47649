"""scripts/negative_prompt_probe.py and frame_lag_probe.py: the caption edits and the lagged sampler they rely
on, and runs on a tiny random model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motioncache.demo_data import DIRECTIONS

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
    still = "a red circle stays still over a grey background"  # nothing to contrast: plain CFG
    assert all(negative.negative_prompt(still, k) == "" for k in negative.KINDS)


def test_negative_prompt_probe_runs_and_reports_every_kind(tiny_dir, tmp_path, negative):
    out = tmp_path / "neg.json"
    run = subprocess.run([sys.executable, str(SCRIPTS / "negative_prompt_probe.py"), "--model", str(tiny_dir),
                          "--n", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert list(report["results"]) == list(negative.KINDS) and report["n"] == 1


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
