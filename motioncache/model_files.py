"""Load a diffusers-format SkyReels-V2 Diffusion-Forcing directory, and write tiny random ones.

The same code path loads a real checkpoint (e.g. SkyReels-V2-DF-1.3B-540P-Diffusers), the shipped
demo model and the tiny models the tests build. Nothing here touches the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

# Set before diffusers/transformers are imported anywhere: never try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from diffusers import AutoencoderKLWan, SkyReelsV2Transformer3DModel, UniPCMultistepScheduler  # noqa: E402
from transformers import AutoTokenizer, UMT5EncoderModel  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from .fast_conv import use_fast_conv3d, use_fast_rms_norm  # noqa: E402

transformers_logging.disable_progress_bar()  # a "Loading weights" bar per component is noise in a server log

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
REQUIRED = {
    "transformer": "SkyReelsV2Transformer3DModel",
    "vae": "AutoencoderKLWan",
    "text_encoder": "UMT5EncoderModel",
    "scheduler": "UniPCMultistepScheduler",
}
# Reference scheduler of SkyReels-V2-DF (flow matching, shift 8).
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, solver_order=2, prediction_type="flow_prediction", thresholding=False,
    sample_max_value=1.0, predict_x0=True, solver_type="bh2", lower_order_final=True, disable_corrector=[],
    timestep_spacing="linspace", steps_offset=0, final_sigmas_type="zero", use_flow_sigmas=True, flow_shift=8.0,
)


class ModelDirError(ValueError):
    """The model directory is missing or not a SkyReels-V2 DF pipeline directory."""


@dataclass
class Components:
    transformer: SkyReelsV2Transformer3DModel
    vae: AutoencoderKLWan
    text_encoder: UMT5EncoderModel
    tokenizer: object
    scheduler_config: dict
    device: torch.device
    dtype: torch.dtype
    path: Path
    defaults: dict  # optional per-model request defaults (motioncache.json), e.g. the demo model's size

    @property
    def vae_scale_temporal(self) -> int:
        return 2 ** sum(self.vae.config.temperal_downsample)

    @property
    def vae_scale_spatial(self) -> int:
        return 2 ** len(self.vae.config.temperal_downsample)


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(sorted(DTYPES))}") from None


def check_model_dir(path: str | Path) -> Path:
    path = Path(path)
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelDirError(f"{path} is not a diffusers pipeline directory (no model_index.json)")
    entries = json.loads(index.read_text())
    for name, cls in REQUIRED.items():
        if name not in entries or entries[name][1] != cls:
            raise ModelDirError(f"{index}: component {name!r} must be {cls}, found {entries.get(name)}")
    if "tokenizer" not in entries:
        raise ModelDirError(f"{index}: no tokenizer component")
    return path


def load_components(path: str | Path, device: str = "cpu", dtype: str | torch.dtype = "float32") -> Components:
    path = check_model_dir(path)
    dtype = parse_dtype(dtype) if isinstance(dtype, str) else dtype
    device = torch.device(device)
    kw = dict(local_files_only=True)
    transformer = SkyReelsV2Transformer3DModel.from_pretrained(path / "transformer", torch_dtype=dtype, **kw)
    if transformer.config.image_dim is not None or transformer.config.added_kv_proj_dim is not None:
        raise ModelDirError(f"{path}: image-embedding (I2V) transformers are not supported; use a DF checkpoint")
    # The VAE runs in fp32 (as diffusers' reference does for decoding quality); it is small.
    vae = AutoencoderKLWan.from_pretrained(path / "vae", torch_dtype=torch.float32, **kw)
    vae = use_fast_rms_norm(use_fast_conv3d(vae))
    text_encoder = UMT5EncoderModel.from_pretrained(path / "text_encoder", torch_dtype=dtype, **kw)
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer", **kw)
    scheduler_config = dict(UniPCMultistepScheduler.load_config(path / "scheduler", **kw))
    defaults_file = path / "motioncache.json"
    defaults = json.loads(defaults_file.read_text()) if defaults_file.is_file() else {}
    for module in (transformer, vae, text_encoder):
        module.to(device).eval().requires_grad_(False)
    return Components(transformer, vae, text_encoder, tokenizer, scheduler_config, device, dtype, path, defaults)
