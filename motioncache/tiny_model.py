"""Write a tiny random-weight SkyReels-V2 DF pipeline directory, built from configs (tests, smoke runs)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .model_files import SCHEDULER_CONFIG

TINY_WORDS = ["a", "red", "green", "blue", "circle", "square", "moves", "left", "right", "over", "grey", "background"]


def build_tokenizer(words: list[str]):
    """A sentencepiece-free T5 tokenizer over a fixed word list (works offline, saves and reloads)."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(f"▁{w}", -1.0) for w in words]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def make_tiny_model(
    out: str | Path,
    *,
    num_layers: int = 2,
    heads: int = 2,
    head_dim: int = 12,
    ffn_dim: int = 48,
    text_dim: int = 16,
    vae_base_dim: int = 8,
    causal_block_size: int = 1,
    inject_sample_info: bool = True,
    seed: int = 0,
    words: list[str] = TINY_WORDS,
) -> Path:
    from diffusers import AutoencoderKLWan, SkyReelsV2DiffusionForcingPipeline, SkyReelsV2Transformer3DModel
    from diffusers import UniPCMultistepScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    transformer = SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim, in_channels=16,
        out_channels=16, text_dim=text_dim, freq_dim=32, ffn_dim=ffn_dim, num_layers=num_layers,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
        inject_sample_info=inject_sample_info, num_frame_per_block=causal_block_size,
    ).eval()
    vae = AutoencoderKLWan(base_dim=vae_base_dim, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    tokenizer = build_tokenizer(words)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=text_dim, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
    )).eval()
    pipe = SkyReelsV2DiffusionForcingPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae,
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG),
    )
    out = Path(out)
    pipe.save_pretrained(out)
    (out / "motioncache.json").write_text(json.dumps(
        {"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 4, "fps": 8}, indent=2))
    return out
