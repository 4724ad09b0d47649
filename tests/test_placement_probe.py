"""scripts/placement_probe.py: the object finder on rendered video, the training reference, and a run on a tiny
random model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motioncache.demo_data import OBJECT_COLORS, make_example

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "placement_probe.py"


@pytest.fixture(scope="module")
def probe(load_script):
    return load_script("placement_probe")


def test_finds_a_rendered_object_where_the_scene_put_it(probe):
    for seed in range(40):
        video, _, scene = make_example(seed, num_frames=33)
        main = scene.main
        if len(scene.objects) == 1 and main.motion != "still" and main.color in OBJECT_COLORS:
            break
    centres = probe.object_centres(video.astype(np.float32) / 255.0, OBJECT_COLORS[main.color])
    assert np.allclose(centres[0], main.start, atol=0.03)
    assert np.allclose(centres[-1], np.add(main.start, main.shift), atol=0.03)
    start, move = probe.start_and_move(centres)
    assert np.allclose(move, main.shift, atol=0.1) and np.abs(move).max() > 0.3  # first/last 4 of 33 frames


def test_training_reference_ties_the_start_to_the_direction(probe):
    (lx, _), (ldx, _) = probe.training_reference("left", n=50)
    (rx, _), (rdx, _) = probe.training_reference("right", n=50)
    (_, uy), (_, udy) = probe.training_reference("up", n=50)
    assert rx < 0.4 < 0.6 < lx and ldx < -0.5 < 0.5 < rdx and uy > 0.6 and udy < -0.5
    (sx, sy), still_move = probe.training_reference("still", n=50)
    assert 0.35 < sx < 0.65 and np.allclose(still_move, 0)


def test_probe_runs_and_reports_every_word(tiny_dir, tmp_path, probe):
    out = tmp_path / "placement.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_dir), "--n", "1", "--threads", "1",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["word"] for r in rows] == list(probe.WORDS)
    for row in rows:
        assert row["seeds"] == 1 and row["found"] in (0, 1) and len(row["start"]) == 2
        assert row["caption"].startswith("a red circle ") and len(row["training_start"]) == 2
