"""scripts/paired_eval_diff.py: per-video gains and losses between two evaluate reports on the same videos."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paired_eval_diff.py"


def video(caption, seed, truth, prediction):
    keys = ("color", "shape", "direction")
    return {"caption": caption, "seed": seed, "truth": dict(zip(keys, truth)),
            "prediction": {**dict(zip(keys, prediction)), "fill": 0.8}}


def test_counts_videos_that_became_right_and_wrong(load_script):
    diff = load_script("paired_eval_diff").paired_diff
    truth = ("red", "circle", "left")
    base = [video("a", 0, truth, ("red", "circle", "down")), video("a", 1, truth, ("red", "square", "left")),
            video("b", 0, truth, ("red", "circle", "left"))]
    variant = [video("a", 0, truth, ("red", "circle", "left")), video("a", 1, truth, ("red", "square", "left")),
               video("b", 0, truth, ("red", "square", "still"))]
    assert diff(base, variant) == {"color": (0, 0), "shape": (0, 1), "direction": (1, 1)}


def test_refuses_reports_on_different_videos(tmp_path):
    truth = ("red", "circle", "left")
    for name, seed in (("base", 0), ("other", 1)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"videos": [video("a", seed, truth, truth)]}))
    run = subprocess.run([sys.executable, SCRIPT, tmp_path / "base.json", tmp_path / "other.json"],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "different captions or seeds" in run.stderr
    assert "Traceback" not in run.stderr
