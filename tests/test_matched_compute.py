"""scripts/matched_compute.py: two policies' PSNR per video at the same compute, interpolated along their thresholds."""
import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "matched_compute.py"


def run(policy, prompt, seed, compute, psnr):
    return {"policy": policy, "prompt": prompt, "seed": seed, "compute_speedup": compute, "psnr": psnr}


def test_interpolates_in_log_compute_and_never_extrapolates(load_script):
    psnr_at = load_script("matched_compute").psnr_at
    points = [(2.0, 34.0), (4.0, 28.0)]
    assert psnr_at(points, 2.0) == 34.0 and psnr_at(points, 4.0) == 28.0
    assert math.isclose(psnr_at(points, math.sqrt(8.0)), 31.0)  # half-way in log compute
    assert psnr_at(points, 1.9) is None and psnr_at(points, 4.1) is None


RUNS = [run("none", "a", 0, 1.0, math.inf),
        run("motioncache-slow:threshold=0.03", "a", 0, 2.0, 34.0), run("motioncache-slow", "a", 0, 4.0, 30.0),
        run("flowcache-slow:threshold=0.03", "a", 0, 2.0, 33.0), run("flowcache-slow", "a", 0, 4.0, 27.0),
        run("motioncache-slow:threshold=0.03", "b", 1, 2.0, 30.0), run("motioncache-slow", "b", 1, 3.0, 26.0),
        run("flowcache-slow:threshold=0.03", "b", 1, 2.0, 31.0), run("flowcache-slow", "b", 1, 4.0, 29.0)]


def test_compares_only_where_both_policies_reach(load_script):
    compare = load_script("matched_compute").compare
    two, four = compare(RUNS, "motioncache", "flowcache", [2.0, 4.0])
    assert two["videos"] == 2 and two["first_higher"] == 1  # video a: 34 > 33; video b: 30 < 31
    assert two["motioncache"]["median"] == 32.0 and two["flowcache"]["median"] == 32.0
    assert four["videos"] == 1 and four["motioncache"]["mean"] == 30.0  # video b's motioncache stops at 3x
    assert compare(RUNS, "motioncache", "flowcache", [5.0]) == []


def test_merges_reports_and_prints_a_table(tmp_path):
    halves = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, prompt in zip(halves, "ab"):
        path.write_text(json.dumps({"runs": [r for r in RUNS if r["prompt"] == prompt]}))
    out = subprocess.run([sys.executable, SCRIPT, "motioncache", "flowcache", *halves, "--at", "2,3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and lines[1].split()[:2] == ["2.00", "2"]
    missing = subprocess.run([sys.executable, SCRIPT, "motioncache", "teacache", *halves], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode != 0 and "no video has both" in missing.stderr
