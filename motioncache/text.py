"""Prompt encoding with UMT5, exactly as diffusers' SkyReels-V2 pipelines do it."""

from __future__ import annotations

import html
import re

import torch


def clean_prompt(text: str) -> str:
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:  # ftfy only repairs mojibake; the rest of the cleaning still applies
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str], max_length: int, dtype) -> torch.Tensor:
    """[len(prompts), max_length, text_dim]; states past each prompt's length are zero."""
    inputs = tokenizer([clean_prompt(p) for p in prompts], padding="max_length", max_length=max_length,
                       truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    device = next(text_encoder.parameters()).device
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
    states = text_encoder(ids, mask).last_hidden_state
    keep = (torch.arange(max_length, device=device)[None, :] < mask.sum(dim=1, keepdim=True))[..., None]
    return torch.where(keep, states, torch.zeros_like(states)).to(dtype)
