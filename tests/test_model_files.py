import json

import pytest
import torch

from motioncache.model_files import ModelDirError, check_model_dir, load_components
from motioncache.tiny_model import make_tiny_model


def test_saved_tiny_directory_loads_with_the_real_checkpoint_code(tiny_dir):
    c = load_components(tiny_dir)
    assert type(c.transformer).__name__ == "SkyReelsV2Transformer3DModel"
    assert type(c.vae).__name__ == "AutoencoderKLWan"
    assert type(c.text_encoder).__name__ == "UMT5EncoderModel"
    assert c.scheduler_config["use_flow_sigmas"] and c.scheduler_config["flow_shift"] == 8.0
    assert c.vae_scale_temporal == 4 and c.vae_scale_spatial == 8
    ids = c.tokenizer("a red circle").input_ids
    assert ids[-1] == c.tokenizer.eos_token_id and c.tokenizer.unk_token_id not in ids
    assert not c.text_encoder.training and not c.transformer.training


def test_dtype_option_keeps_fp32_islands(tiny_dir):
    c = load_components(tiny_dir, dtype="bf16")
    assert c.transformer.proj_out.weight.dtype == torch.bfloat16
    assert c.transformer.scale_shift_table.dtype == torch.float32  # diffusers keeps modulation tables in fp32
    assert c.vae.dtype == torch.float32


def test_same_seed_same_weights(tmp_path):
    a = load_components(make_tiny_model(tmp_path / "a", seed=5))
    b = load_components(make_tiny_model(tmp_path / "b", seed=5))
    assert torch.equal(a.transformer.proj_out.weight, b.transformer.proj_out.weight)


def test_bad_directories_are_rejected_clearly(tmp_path, tiny_dir):
    with pytest.raises(ModelDirError, match="no model_index.json"):
        check_model_dir(tmp_path)
    index = json.loads((tiny_dir / "model_index.json").read_text())
    index["vae"] = ["diffusers", "AutoencoderKL"]
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelDirError, match="'vae' must be AutoencoderKLWan"):
        check_model_dir(tmp_path)
    with pytest.raises(ValueError, match="unknown dtype"):
        load_components(tiny_dir, dtype="int3")
