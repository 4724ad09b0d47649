"""scripts/reference_sensitivity.py on a tiny random model: every variant is generated and scored against the
float32 reference."""
import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reference_sensitivity.py"


def test_reference_sensitivity_scores_every_variant(tiny_dir, tmp_path):
    out = tmp_path / "sensitivity.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_dir), "--seeds", "1", "--reference-steps",
                          "6", "--steps", "3", "--num-frames", "37", "--threads", "1", "--json", str(out),
                          "--prompt", "a red circle", "--prompt", "a blue square"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert [r["variant"] for r in report["results"]] == ["bf16, 6 steps", "3 steps"]
    assert len(report["runs"]) == 2 * 2  # two prompts, one seed, two variants
    assert sorted({r["prompt"] for r in report["runs"]}) == ["a blue square", "a red circle"]
    bf16, fewer = report["results"]
    assert all(math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in report["results"])
    # rounding moves the video far less than halving the steps does
    assert bf16["psnr"] > fewer["psnr"]
    assert "bf16, 6 steps" in run.stdout
