import json
import subprocess
import sys

import numpy as np
import pytest

from motioncache.demo_data import SHIPPED_PATHS, heldout_captions
from motioncache.demo_train import TrainConfig
from motioncache.evaluate import analyze_video
from motioncache.video_io import decode_video

CLI = [sys.executable, "-m", "motioncache.cli"]
SMALL = ["--height", "32", "--width", "48", "--steps", "3", "--ar-step", "1", "--causal-block-size", "3"]


def run(*args):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_generate_end_to_end(tiny_dir, tmp_path):
    out, npy, stats = tmp_path / "v.mp4", tmp_path / "v.npy", tmp_path / "s.json"
    p = run("generate", "--model", str(tiny_dir), "--prompt", "a red circle moves left", "--num-frames", "33",
            "--seed", "7", "--cache", "chunked", "--output", str(out), "--frames-npy", str(npy), "--stats", str(stats),
            *SMALL)
    assert p.returncode == 0, p.stderr
    video = decode_video(out)
    frames = np.load(npy)
    assert video.shape == frames.shape == (33, 32, 48, 3) and frames.dtype == np.uint8
    assert np.abs(video.astype(int) - frames.astype(int)).mean() < 12  # H.264 is lossy; same content
    s = json.loads(stats.read_text())
    assert s["chunks_total"] == len(s["chunks"]) == 3 and s["rows_total"] == 5
    assert sum(c["flops"] for c in s["chunks"]) == s["flops"] and s["compute_speedup"] > 1.0
    assert set(s["timings_s"]) == {"text_encoding", "denoising", "denoising_cpu", "decoding", "encoding"}
    assert [c["frames"] for c in s["chunks"]] == [[0, 9], [9, 21], [21, 33]]


def test_cli_output_equals_engine_output(tiny_dir, tmp_path, engine):
    from motioncache.request import GenerationRequest

    npy = tmp_path / "f.npy"
    p = run("generate", "--model", str(tiny_dir), "--prompt", "a green square", "--num-frames", "17", "--seed", "3",
            "--output", str(tmp_path / "o.mp4"), "--frames-npy", str(npy), *SMALL)
    assert p.returncode == 0, p.stderr
    req = GenerationRequest(prompt="a green square", num_frames=17, seed=3, height=32, width=48,
                            num_inference_steps=3, ar_step=1, causal_block_size=3)
    frames = np.concatenate([c.frames for c in engine.generate(req)])
    assert np.array_equal(np.load(npy), (frames * 255).round().astype(np.uint8))


@pytest.mark.parametrize("args,message", [
    (["--num-frames", "32"], "num_frames must be 4k+1"),
    (["--height", "40"], "height"),
    (["--cache", "nope"], "unknown cache policy"),
    (["--image", "/does/not/exist.png"], "cannot read image"),
])
def test_errors_are_one_clear_line(tiny_dir, args, message):
    p = run("generate", "--model", str(tiny_dir), "--prompt", "x", *args)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_missing_model_directory_says_what_to_do(tmp_path):
    p = run("generate", "--model", str(tmp_path / "nothing"), "--prompt", "x")
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr


def test_bench_writes_the_documented_json(tiny_dir, tmp_path):
    out = tmp_path / "b.json"
    exact = "motioncache:threshold=0:warmup=2"  # knobs per policy: threshold 0 recomputes everything
    p = run("bench", "--model", str(tiny_dir), "--policies", f"none,chunked,{exact}", "--prompt", "a red circle",
            "--seeds", "2", "--num-frames", "33", "--json", str(out), "--quiet", *SMALL)
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    by_policy = {r["policy"]: r for r in report["results"]}
    assert set(by_policy) == {"none", "chunked", exact} and len(report["runs"]) == 6
    assert by_policy["none"]["psnr"] is None  # identical to itself: infinite PSNR is written as null
    chunked_runs = [r["psnr"] for r in report["runs"] if r["policy"] == "chunked"]
    assert by_policy["chunked"]["psnr_worst"] == min(chunked_runs) <= by_policy["chunked"]["psnr"]
    assert by_policy["chunked"]["psnr"] > 60 and by_policy["chunked"]["compute_speedup"] > 1.0
    assert by_policy[exact]["knobs"]["warmup"] == 2 and by_policy[exact]["knobs"]["threshold"] == 0.0
    assert by_policy[exact]["psnr"] > 60 and by_policy[exact]["token_skip_rate"] == 0.0
    assert "chunked" in p.stdout and "compute x" in p.stdout and "worst" in p.stdout
    bad = run("bench", "--model", str(tiny_dir), "--policies", "motioncache:threshold", "--prompt", "x")
    assert bad.returncode == 2 and "name=value" in bad.stderr and "Traceback" not in bad.stderr


def test_cache_presets_and_knobs_from_the_command_line(tiny_dir, tmp_path):
    stats = tmp_path / "s.json"
    p = run("generate", "--model", str(tiny_dir), "--prompt", "a red circle", "--num-frames", "33",
            "--cache", "motioncache-fast", "--cache-knob", "rescale=identity", "--cache-knob", "threshold=0.3",
            "--cache-knob", "warmup=1", "--steps", "6", "--output", str(tmp_path / "o.mp4"), "--stats", str(stats),
            "--height", "32", "--width", "32", "--ar-step", "1", "--causal-block-size", "3")
    assert p.returncode == 0, p.stderr
    s = json.loads(stats.read_text())
    assert s["request"]["cache"] == {"policy": "motioncache-fast",
                                     "knobs": {"rescale": "identity", "threshold": "0.3", "warmup": "1"}}
    assert s["token_layer_reused"] > 0
    bad = run("generate", "--model", str(tiny_dir), "--prompt", "x", "--cache", "motioncache",
              "--cache-knob", "threshold")
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr


def test_bench_warmup_runs_every_policy_once_before_measuring(tiny_dir):
    from motioncache.bench import benchmark
    from motioncache.cli import load_engine

    logs = []
    knobs = {"height": 32, "width": 48, "num_inference_steps": 3, "ar_step": 1, "causal_block_size": 3,
             "num_frames": 17}
    report = benchmark(load_engine(str(tiny_dir), "cpu", "float32"), ["chunked"], ["a red circle"], 1, knobs,
                       log=logs.append, warmup=True)
    assert [line.split()[0] for line in logs] == ["none", "chunked", "none", "chunked"]
    assert all("warm-up" in line for line in logs[:2]) and not any("warm-up" in line for line in logs[2:])
    assert len(report["runs"]) == 2  # warm-up runs are not recorded


def test_make_tiny_model_takes_the_text_width(tmp_path):
    p = run("make-tiny-model", str(tmp_path / "m"), "--text-dim", "40")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "m" / "transformer" / "config.json").read_text())["text_dim"] == 40


def test_evaluate_scores_generated_and_vae_reconstructed_videos(tiny_dir, tmp_path):
    common = ["evaluate", "--model", str(tiny_dir), "--n", "2", "--num-frames", "9", "--quiet"]
    gen, rec = tmp_path / "gen.json", tmp_path / "rec.json"
    p = run(*common, "--steps", "2", "--json", str(gen), "--save-videos", str(tmp_path / "videos"))
    assert p.returncode == 0, p.stderr
    p = run(*common, "--source", "reconstructed", "--threads", "1", "--json", str(rec))
    assert p.returncode == 0, p.stderr
    g, r = json.loads(gen.read_text()), json.loads(rec.read_text())
    assert g["source"] == "generated" and r["source"] == "reconstructed"
    # by default the held-out scenes are drawn in the style the shipped model is trained on
    assert g["paths"] == SHIPPED_PATHS and TrainConfig().paths == SHIPPED_PATHS
    assert [v["caption"] for v in g["videos"]] == [text for text, _ in heldout_captions(2, paths=SHIPPED_PATHS)]
    assert r["result"]["n"] == g["result"]["n"] == 2 and "color=" in p.stdout
    assert [v["caption"] for v in r["videos"]] == [v["caption"] for v in g["videos"]]  # the same held-out scenes
    for item in g["videos"]:  # saved videos are judged exactly as they were when generated
        frames = np.load(item["video"])["frames"]
        assert frames.dtype == np.uint8 and frames.shape[0] == 9
        assert analyze_video(frames)["flicker"] == item["prediction"]["flicker"]
    again = tmp_path / "again.json"
    p = run("evaluate", "--rescore", str(gen), "--json", str(again))
    assert p.returncode == 0 and "n=2" in p.stdout, p.stderr
    a = json.loads(again.read_text())
    assert a["rescored_from"] == str(gen) and a["result"] == g["result"] and a["videos"] == g["videos"]
    bad = run("evaluate", "--rescore", str(rec))  # no saved videos to judge
    assert bad.returncode == 2 and "--save-videos" in bad.stderr and "Traceback" not in bad.stderr
    short = run(*common, "--source", "reconstructed", "--paths", "short")
    assert short.returncode == 0 and "n=2" in short.stdout, short.stderr
    bad = run(*common, "--threads", "0")
    assert bad.returncode == 2 and "--threads" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("evaluate", "--model", str(tmp_path / "missing"), "--n", "1")  # errors raised in motioncache.cli
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    bad = run(*common, "--source", "reconstructed", "--compare-cache", "chunked")
    assert bad.returncode == 2 and "--source generated" in bad.stderr and "Traceback" not in bad.stderr
