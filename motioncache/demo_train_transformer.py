"""Demo trainer, phase 4: UMT5 text encoder + SkyReels-V2 transformer trained jointly with diffusion forcing
(one flow-matching noise level per causal block, block-causal attention, caption dropout), and the export of
the diffusers-format model directory."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .demo_data import ATTRIBUTES, VOCABULARY, caption_labels
from .demo_train_forward import padding_key_bias, training_forward
from .demo_train_data import KINDS
from .model_files import SCHEDULER_CONFIG
from .text import clean_prompt
from .tiny_model import build_tokenizer
from .train_support import Clock, load_checkpoint, progress_line, save_checkpoint

if TYPE_CHECKING:
    from .demo_train import TrainConfig

TEXT_TOKENS = 32        # longest demo caption is ~24 tokens; states are zero-padded to the engine's length
ENGINE_TEXT_LEN = 512   # the engine's default max_sequence_length: cross-attention sees this many (zero) states
PADDED_TEXT_LEN = TEXT_TOKENS + 1  # what training attends to: the caption's tokens + one key for the zero padding


def build_text_model(cfg: TrainConfig):
    from diffusers import SkyReelsV2Transformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = build_tokenizer(VOCABULARY)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=cfg.text_dim, d_kv=cfg.text_dim // 4, d_ff=cfg.text_dim * 2,
        num_layers=cfg.text_layers, num_heads=4, relative_attention_num_buckets=16,
        relative_attention_max_distance=32, dropout_rate=0.0))  # no dropout: train and engine see the same net
    transformer = SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=cfg.heads, attention_head_dim=cfg.head_dim, in_channels=16,
        out_channels=16, text_dim=cfg.text_dim, freq_dim=64, ffn_dim=cfg.ffn_dim, num_layers=cfg.layers,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
        inject_sample_info=False, num_frame_per_block=cfg.block)  # block-causal mask in diffusers' forward
    return tokenizer, text_encoder, transformer


# -- phase 3: text encoder + transformer with diffusion forcing -------------------------------

def _tokenize(tokenizer, texts: list[str]):
    t = tokenizer([clean_prompt(x) for x in texts], padding="max_length", max_length=TEXT_TOKENS, truncation=True,
                  add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    return t.input_ids, t.attention_mask


def encode_text(text_encoder, ids, mask, length: int = ENGINE_TEXT_LEN) -> torch.Tensor:
    """As motioncache.text.encode_prompts: states past each prompt are zero, padded to `length`."""
    states = text_encoder(ids, mask).last_hidden_state * mask[..., None]
    return torch.nn.functional.pad(states, (0, 0, 0, length - states.shape[1]))


def text_padding_bias(text_len: int) -> torch.Tensor | None:
    """Cross-attention logit bias for caption states padded to `text_len`: below the engine's 512 the last
    state is ONE zero state standing for all the zero states up to 512 (equal keys and values, so + log(copies)
    on its logit is the same softmax and the same gradients at a fraction of the keys; tested)."""
    return None if text_len >= ENGINE_TEXT_LEN else padding_key_bias(text_len, ENGINE_TEXT_LEN - text_len + 1)


def predict_velocity(transformer, text_encoder, xt, sigma, ids, mask, text_len: int = PADDED_TEXT_LEN,
                     forward=training_forward, fps_flag: int | None = None):
    """The transformer's flow-matching prediction at noise levels `sigma` [B, F], as training computes it."""
    states = encode_text(text_encoder, ids, mask, text_len)
    return forward(transformer, xt, sigma * 1000, states, text_padding_bias(text_len), fps_flag)


def compiled_forward(log=print):
    """training_forward compiled by inductor (one graph per batch shape), or itself where no C++ compiler is found."""
    if not shutil.which(os.environ.get("CXX", "g++")):
        log("transformer: no C++ compiler found, training_forward runs uncompiled")
        return training_forward
    return torch.compile(training_forward, dynamic=False)


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def shifted_sigma(cfg: TrainConfig, u: torch.Tensor) -> torch.Tensor:
    """Flow-matching noise level of u ~ U(0, 1), shifted towards high noise as the sampler's flow shift does."""
    return cfg.train_shift * u / (1 + (cfg.train_shift - 1) * u)


def with_mid_levels(cfg: TrainConfig, sigma: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """`sigma` [B, N] with a share `mid_level_share` of its entries redrawn from U(mid_low, mid_high); no draws at
    share 0, so the default recipe stays reproducible."""
    if not cfg.mid_level_share:
        return sigma
    mid = torch.rand(sigma.shape, generator=g) < cfg.mid_level_share
    band = cfg.mid_low + (cfg.mid_high - cfg.mid_low) * torch.rand(sigma.shape, generator=g)
    return torch.where(mid, band, sigma)


def sample_sigmas(cfg: TrainConfig, batch: int, frames: int, g: torch.Generator) -> torch.Tensor:
    """Diffusion forcing noise levels [B, F]: an independent flow-matching level per causal block, or, for a
    share `frame_noise_prob` of the clips, per frame (as Diffusion Forcing and SkyReels-V2 train)."""
    blocks = frames // cfg.block
    u = torch.rand(batch, blocks, generator=g)
    monotone = torch.rand(batch, 1, generator=g) < cfg.monotone_prob
    clean = torch.rand(batch, blocks, generator=g) < cfg.clean_block_prob
    clean[:, -1] = False  # keep at least one block to learn from
    sigma = with_mid_levels(cfg, shifted_sigma(cfg, u), g).repeat_interleave(cfg.block, dim=1)
    if cfg.frame_noise_prob > 0:
        per_frame = torch.rand(batch, 1, generator=g) < cfg.frame_noise_prob
        u = torch.rand(batch, frames, generator=g)
        sigma = torch.where(per_frame, with_mid_levels(cfg, shifted_sigma(cfg, u), g), sigma)
    sigma = torch.where(monotone, sigma.sort(dim=1).values, sigma)
    return torch.where(clean.repeat_interleave(cfg.block, dim=1), torch.zeros_like(sigma), sigma)


def sample_word_sigmas(cfg: TrainConfig, batch: int, frames: int, g: torch.Generator) -> torch.Tensor:
    """Noise levels [B, F] of a word batch. First causal block: one flow-matching level per clip, or, for a share
    `word_visible`, latent frame 0 nearly clean (U(0, 0.3)) and the later frames noisy (U(0.7, 1)), where
    only the caption says where the object goes next. Each later block (`word_blocks` > 1): one level between the
    previous block's last one and 1; the first block is clean context for a share `clean_block_prob`."""
    n = min(frames, cfg.block)
    u = torch.rand(batch, 1, generator=g)
    sigma = with_mid_levels(cfg, shifted_sigma(cfg, u), g).expand(batch, n)
    visible = torch.rand(batch, 1, generator=g) < cfg.word_visible
    first = 0.3 * torch.rand(batch, 1, generator=g)
    rest = 0.7 + 0.3 * torch.rand(batch, n - 1, generator=g)
    levels = [torch.where(visible, torch.cat([first, rest], 1), sigma)]
    for _ in range(frames // cfg.block - 1):  # no draws for one block: the one-block recipe stays reproducible
        prev = levels[-1][:, -1:]
        levels.append((prev + (1 - prev) * torch.rand(batch, 1, generator=g)).expand(batch, cfg.block))
    if len(levels) > 1:
        clean = torch.rand(batch, 1, generator=g) < cfg.clean_block_prob
        levels[0] = torch.where(clean, torch.zeros_like(levels[0]), levels[0])
    return torch.cat(levels, 1)


def diffusion_forcing_loss(cfg, transformer, text_encoder, x0, ids, mask, g: torch.Generator,
                           objects: torch.Tensor | None = None, text_len: int = PADDED_TEXT_LEN,
                           word: bool = False, forward=training_forward) -> torch.Tensor:
    """Flow-matching MSE; `objects` (bool [B, F, H, W] on the latent grid) get `object_loss_weight` extra;
    `word` batches draw their noise levels with sample_word_sigmas."""
    b, _, f = x0.shape[:3]
    sigma = (sample_word_sigmas if word else sample_sigmas)(cfg, b, f, g)  # [B, F]
    noise = torch.randn(x0.shape, generator=g)
    s = sigma[:, None, :, None, None]
    xt = (1 - s) * x0 + s * noise  # x_t as the flow-matching scheduler defines it
    pred = predict_velocity(transformer, text_encoder, xt, sigma, ids, mask, text_len, forward)
    err = ((pred.float() - (noise - x0)) ** 2).mean(dim=1)  # [B, F, H, W]
    weight = loss_weight(cfg, sigma, objects, err.shape)
    return (err * weight).sum() / weight.sum()


def loss_weight(cfg, sigma: torch.Tensor, objects: torch.Tensor | None, shape) -> torch.Tensor:
    """Per latent pixel weight [B, F, H, W]: 0 on clean context frames (no target), 1 elsewhere, plus
    `object_loss_weight` on the object's latent pixels grown by `object_loss_margin`, on frames noised to at most
    `object_loss_max_sigma`."""
    weight = (sigma > 0).float()[..., None, None].expand(shape)
    if objects is None or not cfg.object_loss_weight:
        return weight
    region = grown(objects, cfg.object_loss_margin)
    settled = (sigma <= cfg.object_loss_max_sigma).float()[..., None, None]
    return weight * (1 + cfg.object_loss_weight * region * settled)


def grown(objects: torch.Tensor, margin: int) -> torch.Tensor:
    """Float mask [B, F, H, W] of `objects` (bool, same shape) grown by `margin` latent pixels in every direction."""
    region = objects.float()
    if not margin:
        return region
    k = 2 * margin + 1
    return torch.nn.functional.max_pool2d(region.flatten(0, 1)[:, None], k, stride=1,
                                          padding=margin)[:, 0].unflatten(0, region.shape[:2])


class TextAttributeHeads(torch.nn.Module):
    """Training only, not exported: a linear classifier per caption attribute (colour, shape, motion, background
    of demo_data.ATTRIBUTES) applied to EVERY caption token's text-encoder state.

    Trained from the diffusion loss alone, the text encoder spread colour and background over all of its states,
    but kept motion and shape in their own word's state, which the transformer's cross-attention hardly reads:
    swapping the colour changed its output by 30-145%, reversing the motion by 3-6% (scripts/motion_word_probe.py,
    third table), and the shipped model ignored motion and mostly shape. A real model's text encoder comes
    pretrained with states that carry the whole caption; this cross-entropy gives the tiny one the same start."""

    def __init__(self, dim: int):
        super().__init__()
        self.heads = torch.nn.ModuleList(torch.nn.Linear(dim, len(v)) for v in ATTRIBUTES.values())

    def loss(self, text_encoder, ids, mask, labels, keep) -> torch.Tensor:
        """Mean cross-entropy over attributes and caption tokens; `keep` (bool [B]) drops the empty captions."""
        if not keep.any():
            return torch.zeros(())
        states = text_encoder(ids[keep], mask[keep]).last_hidden_state.float()  # [b, T, dim]
        weight = mask[keep].float()
        total = torch.zeros(())
        for j, head in enumerate(self.heads):
            target = labels[keep][:, j:j + 1].expand(-1, states.shape[1])
            ce = torch.nn.functional.cross_entropy(head(states).transpose(1, 2), target, reduction="none")
            total = total + (ce * weight).sum() / weight.sum()
        return total / len(self.heads)


def tokenized_captions(tokenizer, data: dict) -> dict:
    """Per clip kind: (token ids, attention mask, caption_labels) of every caption; "empty": the empty prompt."""
    ids = {k: (*_tokenize(tokenizer, data[f"{k}_captions"]),
               torch.tensor([caption_labels(t) for t in data[f"{k}_captions"]]))
           for k in KINDS if data.get(f"{k}_captions")}
    ids["empty"] = tuple(t[0] for t in _tokenize(tokenizer, [""]))
    return ids


def in_word_phase(cfg: TrainConfig, step: int) -> bool:
    return bool(cfg.word_phase) and cfg.word_phase[0] <= step < cfg.word_phase[1]


def transformer_lr(cfg: TrainConfig, step: int) -> float:
    """Warm-up, then cosine to 10% over the steps outside the word phase; the peak rate inside it."""
    if in_word_phase(cfg, step):
        return cfg.lr
    start, end = cfg.word_phase or (0, 0)
    done = step - max(0, min(step, end) - start)  # steps of the schedule behind this one
    progress = min(done / max(1, cfg.tf_steps - (end - start)), 1.0)
    warm = min(1.0, (step + 1) / cfg.warmup)
    return cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _tf_batch(cfg, data, ids, step: int, g: torch.Generator):
    rng = np.random.default_rng([cfg.seed, 3, step])
    long = cfg.long_clips > 0 and step % cfg.long_every == cfg.long_every - 1
    kind, n = ("long", cfg.long_batch) if long else ("short", cfg.batch)
    if in_word_phase(cfg, step) or np.random.default_rng([cfg.seed, 4, step]).random() < cfg.word_share:
        kind, n = "word", cfg.word_batch
    pick = rng.integers(0, len(data[kind]), n)
    x0 = torch.stack([data[kind][i].float() for i in pick])
    objects = torch.stack([data[f"{kind}_mask"][i] for i in pick])
    tok, mask = ids[kind][0][pick].clone(), ids[kind][1][pick].clone()
    drop = torch.from_numpy(rng.random(n) < cfg.caption_dropout)
    tok[drop], mask[drop] = ids["empty"][0], ids["empty"][1]  # empty prompt = the CFG negative branch
    return x0, objects, tok, mask, kind, ids[kind][2][pick], ~drop


def train_transformer(cfg: TrainConfig, vae, data: dict, state: Path, out: Path, log) -> None:
    tokenizer, text_encoder, transformer = build_text_model(cfg)
    params = list(transformer.parameters()) + list(text_encoder.parameters())
    ema = [p.detach().clone() for p in params]  # the exported weights; the attribute heads are not exported
    heads = TextAttributeHeads(cfg.text_dim)
    opt = torch.optim.AdamW(params + list(heads.parameters()), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.01)
    ckpt, step = load_checkpoint(state / "transformer.pt"), 0
    if ckpt:
        transformer.load_state_dict(ckpt["transformer"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
        if "text_heads" in ckpt:
            heads.load_state_dict(ckpt["text_heads"])
        opt.load_state_dict(ckpt["opt"])
        ema = ckpt["ema"]
        step = ckpt["step"]
        log(f"transformer: resumed at step {step}")
    millions = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (transformer, text_encoder, vae)]
    log("transformer: {:.2f}M params, text encoder {:.2f}M, vae {:.2f}M".format(*millions))
    ids = tokenized_captions(tokenizer, data)

    def save():
        save_checkpoint({"transformer": transformer.state_dict(), "text_encoder": text_encoder.state_dict(),
                         "text_heads": heads.state_dict(), "opt": opt.state_dict(), "ema": ema, "step": step},
                        state / "transformer.pt")
        export(cfg, tokenizer, text_encoder, transformer, ema, vae, out)
        log(f"checkpoint at step {step}; model written to {out}")

    bf16 = cfg.bf16 and cpu_has_bf16()
    forward = compiled_forward(log) if cfg.compile else training_forward
    log(f"transformer: text length {PADDED_TEXT_LEN} (stands for {ENGINE_TEXT_LEN}), "
        f"bf16 autocast {'on' if bf16 else 'off'}, compiled {'yes' if forward is not training_forward else 'no'}")
    transformer.train()
    text_encoder.train()
    clock, t0, start, avg = Clock(cfg.checkpoint_minutes), time.monotonic(), step, {}
    while step < cfg.tf_steps:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x0, objects, tok, mask, kind, labels, captioned = _tf_batch(cfg, data, ids, step, g)
        lr = transformer_lr(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = diffusion_forcing_loss(cfg, transformer, text_encoder, x0, tok, mask, g, objects,
                                          word=kind == "word", forward=forward)
        attribute_loss = heads.loss(text_encoder, tok, mask, labels, captioned) if cfg.text_attribute_loss else 0.0
        opt.zero_grad(set_to_none=True)
        (loss + cfg.text_attribute_loss * attribute_loss).backward()
        torch.nn.utils.clip_grad_norm_(params + list(heads.parameters()), 1.0)
        opt.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))  # short warm-up so early exports are not all init
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)
        step += 1
        avg[kind] = loss.item() if kind not in avg else 0.98 * avg[kind] + 0.02 * loss.item()
        if cfg.text_attribute_loss:
            a = attribute_loss.item()
            avg["text attributes"] = a if "text attributes" not in avg else 0.98 * avg["text attributes"] + 0.02 * a
        if step % 25 == 0 or step == cfg.tf_steps:
            losses = " ".join(f"{k} {v:.4f}" for k, v in avg.items())
            log(progress_line("transformer", step, cfg.tf_steps, start, t0, f"loss {losses} lr {lr:.1e}"))
        if clock.due():
            save()
    save()


def export(cfg: TrainConfig, tokenizer, text_encoder, transformer, ema, vae, out: Path) -> None:
    """Write the diffusers-format model directory with the EMA weights, plus motioncache.json."""
    from diffusers import SkyReelsV2DiffusionForcingPipeline, UniPCMultistepScheduler

    text_encoder, transformer = copy.deepcopy(text_encoder).eval(), copy.deepcopy(transformer).eval()
    with torch.no_grad():
        for p, e in zip(list(transformer.parameters()) + list(text_encoder.parameters()), ema):
            p.copy_(e)
    pipe = SkyReelsV2DiffusionForcingPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae,
        scheduler=UniPCMultistepScheduler(**{**SCHEDULER_CONFIG, "flow_shift": cfg.sample_shift}))
    pipe.save_pretrained(out)
    defaults = {"height": cfg.height, "width": cfg.width, "causal_block_size": cfg.block, **cfg.defaults}
    (out / "motioncache.json").write_text(json.dumps(defaults, indent=2) + "\n")
