"""scripts/motion_weight_probe.py: the separation measure, and a real run on the tiny random model."""
import json

import torch


def test_separation_tells_a_few_moving_tokens_from_uniform_weights(load_script):
    probe = load_script("motion_weight_probe")
    uniform = [torch.full((64,), 0.9)]
    moving = [torch.cat([torch.full((60,), 0.6), torch.ones(4)])]
    u = probe.separation(uniform, 0.6)
    assert u["maps"] == 1 and u["std"] < 1e-6 and u["near_floor"] == 0.0 and u["near_one"] == 1.0
    s = probe.separation(moving, 0.6)
    assert s["near_floor"] == 60 / 64 and s["near_one"] == 4 / 64 and s["std"] > 0.05


def test_records_the_weight_maps_of_both_sources(load_script, tiny_dir, tmp_path):
    probe = load_script("motion_weight_probe")
    out = tmp_path / "probe.json"
    assert probe.main(["--model", str(tiny_dir), "--tiny", "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for source in ("hidden", "denoised"):
        r = report[source]
        assert r["maps"] > 0  # phase 2 ran: weights were computed and recorded
        assert 0.0 <= r["near_floor"] <= 1.0 and 0.0 <= r["near_one"] <= 1.0
