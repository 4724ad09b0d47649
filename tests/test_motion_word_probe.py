"""scripts/motion_word_probe.py and word_finetune_trial.py: the caption and path edits they rely on, and runs on a
tiny random model."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motioncache.demo_data import DIRECTIONS
from motioncache.demo_train import tiny_config, train
from motioncache.model_files import load_components

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "motion_word_probe.py"


@pytest.fixture(scope="module")
def probe(load_script):
    return load_script("motion_word_probe")


def test_motion_word_is_reversed_and_nothing_else(probe):
    for d, (x, y) in DIRECTIONS.items():
        assert DIRECTIONS[probe.OPPOSITE[d]] == (-x, -y)
    text = "a red circle moves up-left over a grey background"
    assert probe.edit(text, probe.OPPOSITE, 4) == "a red circle moves down-right over a grey background"
    assert probe.edit(text, probe.SWAP_COLOR, 1) == "a blue circle moves up-left over a grey background"
    for name, (table, word) in probe.WORD_EDITS.items():  # every edit changes its own word into another valid one
        edited = probe.edit(text, table, word).split()
        assert edited[word] != text.split()[word] and sum(a != b for a, b in zip(edited, text.split())) == 1


def test_probe_runs_and_reports_every_setting(tiny_dir, tmp_path, probe):
    out = tmp_path / "probe.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_dir), "--clips", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["clips"] == 2 and [r["setting"] for r in report["rows"]] == list(probe.SETTINGS)
    for row in report["rows"]:
        assert all(row[k] > 0 for k in ("true caption", "motion reversed", "colour swapped"))
    assert [r["setting"] for r in report["context_rows"]] == [f"block 1 at {s}" for s in probe.CONTEXT_SIGMAS]
    assert all(r["moving context"] > 0 and r["frozen context"] > 0 for r in report["context_rows"])
    assert "reversed/true" in run.stdout and "frozen/moving" in run.stdout
    layers = [r["layer"] for r in report["word_rows"]]
    assert layers == [f"layer {i}" for i in range(len(layers))] and layers
    for row in report["word_rows"]:  # a random text encoder spreads the colour word: that edit changes the output
        assert row["colour swapped"] > 0 and all(row[k] >= 0 for k in probe.WORD_EDITS)


def test_word_finetune_trial_runs_and_reports_the_probes(tiny_dir, tmp_path):
    script = SCRIPT.parent / "word_finetune_trial.py"
    out = tmp_path / "trial.json"
    run = subprocess.run([sys.executable, str(script), "--model", str(tiny_dir), "--steps", "2", "--eval-every", "1",
                          "--pool", "2", "--batch", "2", "--motions", "left,right", "--text-attribute-loss", "0.3",
                          "--free-start", "0.5",
                          "--threads", "1", "--json", str(out), "--save", str(tmp_path / "tuned")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    history = json.loads(out.read_text())["history"]
    assert [h["step"] for h in history] == [0, 1, 2]
    for probe_name in ("minimal", "ordinary", "mirrored"):
        for setting in ("frame 0 visible", "block 0.9"):
            row = history[-1][f"{probe_name}, {setting}"]
            assert row["true"] > 0 and row["reversed/true"] > 0
    # --save: a model directory the engine loads, with the fine-tuned weights and everything else as it was
    before, after = load_components(tiny_dir), load_components(tmp_path / "tuned")
    changed = [not torch.equal(a, b) for a, b in zip(before.transformer.parameters(), after.transformer.parameters())]
    assert any(changed)
    assert all(torch.equal(a, b) for a, b in zip(before.vae.parameters(), after.vae.parameters()))


def test_word_finetune_trial_with_no_steps_reports_the_probes_alone(tiny_dir, tmp_path):
    out = tmp_path / "probe.json"
    run = subprocess.run([sys.executable, str(SCRIPT.parent / "word_finetune_trial.py"), "--model", str(tiny_dir),
                          "--steps", "0", "--pool", "2", "--batch", "2", "--threads", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    history = json.loads(out.read_text())["history"]
    assert [h["step"] for h in history] == [0] and history[0]["minimal, block 0.9"]["true"] > 0


def test_word_finetune_trial_mixes_in_the_recipes_multi_block_batches(tmp_path):
    out = tmp_path / "demo"
    cfg = tiny_config()
    cfg.block, cfg.clip_frames, cfg.long_frames = 5, 17, 37  # the trial's clips are one block of 5 latent frames
    train(cfg, out, log=lambda m: None)  # a tiny train-demo run: its .train holds config.json and data.pt
    script = SCRIPT.parent / "word_finetune_trial.py"
    run = subprocess.run([sys.executable, str(script), "--model", str(out), "--steps", "25", "--eval-every", "25",
                          "--pool", "2", "--batch", "2", "--recipe-data", str(out / ".train"), "--recipe-share", "0.5",
                          "--text-attribute-loss", "0.3", "--threads", "1", "--json", str(tmp_path / "trial.json")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    last = [line for line in run.stdout.splitlines() if line.startswith("step 25 ")][0]
    assert " loss " in last and " recipe " in last  # both kinds of batch were trained
    assert [h["step"] for h in json.loads((tmp_path / "trial.json").read_text())["history"]] == [0, 25]


def test_main_shape_swap_changes_only_the_main_objects_shape_word(load_script, tmp_path):
    trial = load_script("word_finetune_trial")
    tokenizer = load_components(_demo_run(tmp_path)).tokenizer
    texts = ["a red circle moves left over a grey background",
             "a blue triangle moves up and a small green square stays still over a beige background", ""]
    ids = trial._tokenize(tokenizer, texts)[0]
    shape_ids = torch.tensor(tokenizer.convert_tokens_to_ids([f"\u2581{s}" for s in trial.SHAPES]))
    swapped = tokenizer.batch_decode(trial.swap_main_shape(ids, shape_ids), skip_special_tokens=True)
    assert swapped[0] == "a red square moves left over a grey background"
    assert swapped[1] == "a blue circle moves up and a small green square stays still over a beige background"
    assert swapped[2] == ""


def test_word_finetune_trial_on_recipe_batches_with_overrides_and_the_shape_margin(tmp_path):
    model = _demo_run(tmp_path)
    out = tmp_path / "trial.json"
    run = subprocess.run([sys.executable, str(SCRIPT.parent / "word_finetune_trial.py"), "--model", str(model),
                          "--recipe-data", str(model / ".train"), "--recipe-share", "1.0",
                          "--recipe-set", "mid_level_share=1.0", "--shape-contrast", "1.0", "--steps", "25",
                          "--eval-every", "25", "--pool", "2", "--batch", "2", "--threads", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "shape-word log gap" in run.stdout and "recipe" in run.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT.parent / "word_finetune_trial.py"), "--model", str(model),
                          "--recipe-data", str(model / ".train"), "--recipe-share", "1.0", "--recipe-set",
                          "mid_level_share=2", "--steps", "1", "--pool", "2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "mid_level_share" in bad.stderr and "Traceback" not in bad.stderr


def _demo_run(tmp_path) -> Path:
    """A tiny train-demo run: a model directory with the demo tokenizer and its .train folder."""
    out = tmp_path / "run"
    if not (out / "model_index.json").exists():
        train(tiny_config(), out, log=lambda m: None)
    return out
