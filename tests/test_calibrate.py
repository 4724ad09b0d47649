import json
import shutil

import pytest

from motioncache.calibrate import calibrate, references
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest
from test_cli import SMALL, run

KNOBS = {"height": 32, "width": 48, "num_inference_steps": 6, "ar_step": 1, "causal_block_size": 3, "num_frames": 33}
CACHE = {"rescale": "identity", "warmup": 1}  # the tiny random model's modulation moves too far for wan_1_3b


def test_bisection_keeps_the_largest_threshold_that_holds_the_target(engine):
    # full-size threshold first: on the tiny model it reuses enough to fall below 50 dB, so the search bisects
    refs = references(engine, ["a red circle"], 1, KNOBS)
    result = calibrate(engine, "motioncache-slow", refs, KNOBS, 50.0, iterations=4, cache_knobs=CACHE,
                       log=lambda *_: None)
    tried = result["tried"]
    assert [row["threshold"] for row in tried[:2]] == [1.0, 0.5] and len(tried) == 5
    assert tried[0]["psnr"] < 50.0 and result["psnr"] >= 50.0 and result["compute_speedup"] > 1.0
    assert result["threshold"] in [row["threshold"] for row in tried]
    # bisection: every threshold tried above the answer missed the target, and the answer is the largest that held
    assert all(row["psnr"] < 50.0 for row in tried if row["threshold"] > result["threshold"])
    assert result["threshold"] == max(row["threshold"] for row in tried if row["psnr"] >= 50.0)


def test_an_unreachable_target_reports_nothing_found(engine):
    result = calibrate(engine, "flowcache-slow", references(engine, ["a red circle"], 1, KNOBS), KNOBS, 500.0,
                       high=0.5, iterations=2, cache_knobs=CACHE, log=lambda *_: None)
    assert result["threshold"] == 0.0 and result["compute_speedup"] is None and result["psnr"] is None
    assert [row["threshold"] for row in result["tried"]] == [0.5, 0.25, 0.125]


def test_a_lower_bound_narrows_the_search_and_is_measured_only_as_a_fallback(engine):
    refs = references(engine, ["a red circle"], 1, KNOBS)
    known = calibrate(engine, "motioncache-slow", refs, KNOBS, 50.0, iterations=3, cache_knobs=CACHE,
                      log=lambda *_: None)["threshold"]
    assert known > 0
    narrowed = calibrate(engine, "motioncache-slow", refs, KNOBS, 50.0, iterations=2, cache_knobs=CACHE,
                         log=lambda *_: None, low=known)
    assert all(row["threshold"] >= known for row in narrowed["tried"])  # nothing below the bound is tried
    assert narrowed["threshold"] >= known and narrowed["psnr"] >= 50.0
    unreachable = calibrate(engine, "flowcache-slow", refs, KNOBS, 500.0, high=0.5, iterations=2, cache_knobs=CACHE,
                            log=lambda *_: None, low=0.1)
    assert [row["threshold"] for row in unreachable["tried"]] == [0.5, 0.3, 0.2, 0.1]  # the bound last
    assert unreachable["threshold"] == 0.0 and unreachable["psnr"] is None
    with pytest.raises(ValueError, match="0 <= low < high"):
        calibrate(engine, "flowcache-slow", refs, KNOBS, 30.0, high=0.1, low=0.2, log=lambda *_: None)


def test_write_stores_each_preset_in_the_model_and_requests_use_it(tiny_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    out = tmp_path / "c.json"
    p = run("calibrate", "--model", str(model), "--cache", "motioncache-slow,flowcache-fast", "--cache-knob",
            "rescale=identity", "--cache-knob", "warmup=1", "--target-psnr", "20,500", "--prompt", "a red circle",
            "--num-frames", "33", "--iterations", "2,1", "--high", "1,0.4", "--low", "0,0.1", "--write", "--json", str(out),
            *SMALL)
    assert p.returncode == 0, p.stderr
    slow, fast = json.loads(out.read_text())["results"]
    assert [slow["tried"][0]["threshold"], fast["tried"][0]["threshold"]] == [1.0, 0.4]  # each from its own --high
    found = slow["threshold"]
    assert found > 0 and f"wrote motioncache-slow threshold {found:.4g}" in p.stdout
    assert fast["policy"] == "flowcache-fast" and fast["psnr"] is None  # 500 dB: nothing found, nothing written
    assert [row["threshold"] for row in fast["tried"]] == [0.4, 0.25, 0.1]  # one step, then its --low
    assert "flowcache-fast: no threshold from 0.1 up held 500 dB" in p.stdout
    assert p.stderr.count("threshold ") == len(slow["tried"]) + len(fast["tried"])  # one log line per point
    config = json.loads((model / "motioncache.json").read_text())
    written = {"rescale": "identity", "warmup": 1, "threshold": found}
    assert config["cache_presets"] == {"motioncache": {"slow": written}}
    # what the preset buys there, beside it (nothing for the preset that found nothing)
    assert config["cache_calibration"] == {"motioncache-slow": {
        "target_psnr": 20.0, "psnr": round(slow["psnr"], 2), "psnr_worst": round(slow["psnr_worst"], 2),
        "compute_speedup": round(slow["compute_speedup"], 2), "prompts": 1, "videos": 1,
        "request": {"negative_prompt": "", "num_frames": 33, "height": 32, "width": 48, "num_inference_steps": 3,
                    "ar_step": 1, "causal_block_size": 3, "max_sequence_length": 512}}}
    assert config["num_frames"] == json.loads((tiny_dir / "motioncache.json").read_text())["num_frames"]  # kept
    policy = Engine(load_components(model)).plan(
        GenerationRequest(prompt="x", **KNOBS, cache={"policy": "motioncache-slow"})).policy
    assert (policy.threshold, policy.warmup, policy.rescale) == (found, 1, "identity")
    assert policy.shared_choice  # the built-in preset's other knobs still hold


def test_calibrate_rejects_what_it_cannot_calibrate(tiny_dir):
    plain = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache", "--target-psnr", "30",
                "--prompt", "x")
    assert plain.returncode == 2 and "calibrate takes a preset" in plain.stderr and "Traceback" not in plain.stderr
    no_prompt = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow", "--target-psnr", "30")
    assert no_prompt.returncode == 2 and "--prompt" in no_prompt.stderr
    counts = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow,flowcache-slow",
                 "--target-psnr", "30,25,20", "--prompt", "x")
    assert counts.returncode == 2 and "one per preset (2)" in counts.stderr
    for high, message in (("0.1,0.2,0.3", "--high: give one value, or one per preset (2)"),
                          ("0.1,x", "--high takes numbers"), ("0.1,-1", "must be positive")):
        bad_high = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow,flowcache-slow",
                       "--target-psnr", "30", "--high", high, "--prompt", "x")
        assert bad_high.returncode == 2 and message in bad_high.stderr and "Traceback" not in bad_high.stderr
    bad_low = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow,flowcache-slow",
                  "--target-psnr", "30", "--high", "0.1", "--low", "0.05,0.1", "--prompt", "x")
    assert bad_low.returncode == 2 and "--low must be at least 0 and below --high" in bad_low.stderr
    bad_steps = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow,flowcache-slow",
                    "--target-psnr", "30", "--iterations", "3,2.5", "--prompt", "x")
    assert bad_steps.returncode == 2 and "--iterations takes whole numbers" in bad_steps.stderr
    bad_knob = run("calibrate", "--model", str(tiny_dir), "--cache", "motioncache-slow", "--target-psnr", "30",
                   "--prompt", "x", "--cache-knob", "warmup=-1")
    assert bad_knob.returncode == 2 and "warmup" in bad_knob.stderr
