"""Diagnostic fine-tune of a demo model's transformer + text encoder on first-block clips: which training set-up
makes it use the caption's motion word? (docs/demo.md, "What reaches the transformer")

Clips are 17 frames (one causal block of 5 latent frames), rendered and encoded here, from a pool of "minimal"
scenes (one moving object, flat background) and/or ordinary training scenes. A share `--visible` of the clips
has latent frame 0 nearly clean (sigma U(0, 0.3)) and frames 1-4 noisy (U(--s1lo, 1)): where the object goes
next is then the caption's to say; the rest has one noise level for the block, as the recipe draws it.
Every `--eval-every` steps it prints, on fixed probe clips, the loss with the true caption ("true") and the
ratio reversed-motion-word / true: a model that uses the word scores clearly above 1.
With `--motions right` (or any subset), `mirrored` probes are the same clips mirrored left-right (caption
mirrored too): a model that learned one fixed shift scores them worse than the originals.
`--free-start F` cuts every path to F of its length and draws its start anywhere in the frame, whatever the
direction (the object may leave the frame): where the object starts then says nothing about where it goes, and
only the word does (training data ties the two: docs/demo.md, "Where the object starts"). Probes too.

    .venv/bin/python scripts/word_finetune_trial.py --motions left,right --steps 1000 --json trial.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from motioncache.demo_data import DIRECTIONS, OPPOSITE, SHAPES, caption, caption_labels, free_start, render, sample_scene
from motioncache.demo_train import TrainConfig, config_overrides
from motioncache.demo_train_transformer import (TextAttributeHeads, _tf_batch, _tokenize, cpu_has_bf16,
                                               diffusion_forcing_loss, grown, loss_weight, predict_velocity,
                                               sample_sigmas, sample_word_sigmas, tokenized_captions)
from motioncache.train_support import load_checkpoint
from motioncache.model_files import load_components
from motioncache.vae_stream import encode_frames

MIRRORED = {d: next(k for k, v in DIRECTIONS.items() if v == (-x, y)) for d, (x, y) in DIRECTIONS.items()}


def edit_motion(text: str, table: dict) -> str:
    words = text.split()
    words[4] = table.get(words[4], words[4])
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=5e-4, help="AdamW, 50 warm-up steps, then constant")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--minimal", type=float, default=1.0, help="share of minimal scenes in the batches")
    ap.add_argument("--visible", type=float, default=0.6, help="share of clips with frame 0 nearly clean")
    ap.add_argument("--s1lo", type=float, default=0.7, help="frames 1-4 of those clips at sigma U(s1lo, 1)")
    ap.add_argument("--motions", default="", help="comma-separated: train and probe only these motions")
    ap.add_argument("--motion-only", type=float, default=0.0, help="share of captions cut to 'moves DIRECTION'")
    ap.add_argument("--text-attribute-loss", type=float, default=0.0, help="as TrainConfig.text_attribute_loss")
    ap.add_argument("--free-start", type=float, default=0.0, help="paths cut to this share, starts anywhere")
    ap.add_argument("--pool", type=int, default=256, help="clips per training pool")
    ap.add_argument("--paths", default="long", help="scene style (demo_data.PATH_STYLES), e.g. large")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--save", help="write the fine-tuned model here (a copy of --model with the new weights)")
    ap.add_argument("--recipe-data", help="a train-demo run's .train folder (config.json, data.pt): with "
                    "--recipe-share, that share of the steps trains on its multi-block clips with its own loss")
    ap.add_argument("--recipe-share", type=float, default=0.0)
    ap.add_argument("--recipe-set", action="append", default=[], metavar="OPTION=VALUE",
                    help="override a TrainConfig option of the recipe batches (e.g. mid_level_share=1.0)")
    ap.add_argument("--shape-contrast", type=float, default=0.0,
                    help="weight of a margin loss on recipe batches: with the main shape word swapped, the error on "
                    "the object (frames noised to at least --contrast-min-sigma) must be log-higher by --contrast-margin")
    ap.add_argument("--contrast-margin", type=float, default=0.1)
    ap.add_argument("--contrast-min-sigma", type=float, default=0.3)
    args = ap.parse_args()
    try:
        config_overrides(args.recipe_set)
    except ValueError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = load_components(args.model)
    only = set(args.motions.split(",")) - {""}

    def pool(seed: int, n: int, minimal: bool, mirrored: bool = False):
        rng, xs, texts = np.random.default_rng(seed), [], []
        while len(texts) < n:
            s = sample_scene(rng, paths=args.paths)
            if (minimal or only) and (s.main.motion == "still" or (only and s.main.motion not in only)):
                continue
            if minimal:
                s = dataclasses.replace(s, objects=(s.main,), texture="none")
            if args.free_start:
                s = dataclasses.replace(s, objects=tuple(free_start(o, args.free_start, rng) for o in s.objects))
            video, text = render(s, 17), caption(s)
            if mirrored:
                video, text = np.ascontiguousarray(video[:, :, ::-1]), edit_motion(text, MIRRORED)
            with torch.no_grad():
                xs.append(encode_frames(c.vae, video)[0])
            texts.append(text)
        return torch.stack(xs), texts

    pools = {k: pool(seed, args.pool, k == "minimal") for k, seed, share in
             (("minimal", 1, args.minimal), ("ordinary", 2, 1 - args.minimal)) if share > 0}
    probes = {"minimal": pool(99, 16, True), "ordinary": pool(98, 16, False)}
    if only:
        probes["mirrored"] = pool(99, 16, True, mirrored=True)
    tr, te = c.transformer, c.text_encoder
    for m in (tr, te):
        m.float().train().requires_grad_(True)
    heads = TextAttributeHeads(te.config.d_model)
    params = list(tr.parameters()) + list(te.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    bf16 = cpu_has_bf16()
    recipe = recipe_batches(args.recipe_data, c.tokenizer, args.recipe_set) if args.recipe_share else None
    frames = probes["minimal"][0].shape[2]  # latent frames of a 17-frame clip (5 with the 4x temporal VAE)
    fps_flag = 1 if tr.config.inject_sample_info else None  # as the engine at 24 fps

    def errors(x0, texts, sigma, noise):
        return token_errors(x0, *_tokenize(c.tokenizer, texts), sigma, noise)

    def token_errors(x0, ids, mask, sigma, noise):
        s = sigma[:, None, :, None, None]
        pred = predict_velocity(tr, te, (1 - s) * x0 + s * noise, sigma, ids, mask, fps_flag=fps_flag)
        return ((pred.float() - (noise - x0)) ** 2).mean(dim=1)  # [B, F, H, W]

    def evaluate(step: int) -> dict:
        tr.eval(), te.eval()
        g, row = torch.Generator().manual_seed(5), {"step": step}
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for name, (x0, texts) in probes.items():
                keep = [i for i, t in enumerate(texts) if t.split()[4] in OPPOSITE and " and " not in t]
                x, texts = x0[keep], [texts[i] for i in keep]
                noise = torch.randn(x.shape, generator=g)
                settings = (("frame 0 visible", [0.2] + [0.97] * (frames - 1)), ("block 0.9", [0.9] * frames))
                for setting, levels in settings:
                    sigma = torch.tensor(levels).expand(len(texts), frames)
                    true = errors(x, texts, sigma, noise)[:, 1:].mean().item()
                    rev = errors(x, [edit_motion(t, OPPOSITE) for t in texts], sigma, noise)[:, 1:].mean().item()
                    row[f"{name}, {setting}"] = {"true": true, "reversed/true": rev / true}
        tr.train(), te.train()
        print(f"step {step}: " + "  ".join(f"{k} {v['true']:.4f} ({v['reversed/true']:.3f})"
                                          for k, v in row.items() if k != "step"), flush=True)
        return row

    def word_loss(rng, g):
        """A batch of first-block clips (a share with frame 0 nearly clean): the trial's own task."""
        picks = [("minimal" if rng.random() < args.minimal else "ordinary") for _ in range(args.batch)]
        idx = [int(rng.integers(args.pool)) for _ in picks]
        x0 = torch.stack([pools[k][0][i] for k, i in zip(picks, idx)])
        texts = [pools[k][1][i] for k, i in zip(picks, idx)]
        texts = ["" if drop else t for drop, t in zip(rng.random(args.batch) < 0.1, texts)]
        texts = [" ".join(t.split()[3:5]) if cut and t else t
                 for cut, t in zip(rng.random(args.batch) < args.motion_only, texts)]
        u = torch.rand(args.batch, 1, generator=g)
        sigma = (3 * u / (1 + 2 * u)).expand(args.batch, frames)
        visible = torch.from_numpy(rng.random(args.batch) < args.visible)[:, None]
        first = 0.3 * torch.rand(args.batch, 1, generator=g)
        rest = args.s1lo + (1 - args.s1lo) * torch.rand(args.batch, frames - 1, generator=g)
        sigma = torch.where(visible, torch.cat([first, rest], 1), sigma)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = errors(x0, texts, sigma, torch.randn(x0.shape, generator=g)).mean()
        if args.text_attribute_loss:
            full = torch.tensor([len(t.split()) > 5 for t in texts])  # not dropped, not cut
            ids, mask = _tokenize(c.tokenizer, texts)
            labels = torch.tensor([caption_labels(t) if f else (0, 0, 0, 0) for t, f in zip(texts, full)])
            loss = loss + args.text_attribute_loss * heads.loss(te, ids, mask, labels, full)
        return loss

    shape_ids = torch.tensor(c.tokenizer.convert_tokens_to_ids([f"\u2581{s}" for s in SHAPES]))

    contrast_gap = []

    def shape_contrast_loss(cfg, x0, objects, tok, mask, captioned, kind, g):
        """Diffusion-forcing loss plus the shape-word margin: the same noisy clips denoised with the main object's
        shape word (token 2: "a COLOUR SHAPE ...") swapped for the next shape, in the same forward."""
        sigma = (sample_word_sigmas if kind == "word" else sample_sigmas)(cfg, x0.shape[0], x0.shape[2], g)
        noise = torch.randn(x0.shape, generator=g)
        keep = captioned & (tok[:, 2:3] == shape_ids).any(1)
        n = x0.shape[0]
        err = token_errors(torch.cat([x0, x0[keep]]), torch.cat([tok, swap_main_shape(tok, shape_ids)[keep]]),
                           torch.cat([mask, mask[keep]]), torch.cat([sigma, sigma[keep]]),
                           torch.cat([noise, noise[keep]]))  # [B + kept, F, H, W]
        weight = loss_weight(cfg, sigma, None, err[:n].shape)
        loss = (err[:n] * weight).sum() / weight.sum()
        region = grown(objects[keep], 1) * (sigma[keep] >= args.contrast_min_sigma).float()[..., None, None]
        area = region.sum(dim=(1, 2, 3))
        use = area > 0
        if use.any():
            e_true = (err[:n][keep] * region).sum(dim=(1, 2, 3))[use] / area[use]
            e_wrong = (err[n:] * region).sum(dim=(1, 2, 3))[use] / area[use]
            gap = torch.log(e_wrong) - torch.log(e_true)
            loss = loss + args.shape_contrast * torch.relu(args.contrast_margin - gap).mean()
            contrast_gap.append(gap.mean().item())
        return loss

    def recipe_loss(step, g):
        """A batch of the train-demo run's multi-block clips with its diffusion-forcing loss."""
        cfg, data, ids = recipe
        x0, objects, tok, mask, kind, labels, captioned = _tf_batch(cfg, data, ids, step, g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if args.shape_contrast:
                loss = shape_contrast_loss(cfg, x0, objects, tok, mask, captioned, kind, g)
            else:
                loss = diffusion_forcing_loss(cfg, tr, te, x0, tok, mask, g, objects, word=kind == "word")
        if args.text_attribute_loss:
            loss = loss + args.text_attribute_loss * heads.loss(te, tok, mask, labels, captioned)
        return loss

    def record(step):
        history.append(evaluate(step))
        if args.json:  # rewritten at every evaluation (also with --steps 0: the probe alone)
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "history": history}, f, indent=1)

    history, avg, t0 = [], {}, time.monotonic()
    record(0)
    for step in range(1, args.steps + 1):
        rng, g = np.random.default_rng([7, step]), torch.Generator().manual_seed(step)
        kind = "recipe" if recipe and rng.random() < args.recipe_share else "loss"
        loss = recipe_loss(step, g) if kind == "recipe" else word_loss(rng, g)
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, step / 50)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        avg[kind] = loss.item() if kind not in avg else 0.98 * avg[kind] + 0.02 * loss.item()
        if step % 25 == 0:
            losses = " ".join(f"{k} {v:.4f}" for k, v in avg.items())
            if contrast_gap:
                losses += f" shape-word log gap {np.mean(contrast_gap[-25:]):.3f}"
            print(f"step {step} {losses} {(time.monotonic() - t0) / step:.2f}s/step", flush=True)
        if step % args.eval_every == 0:
            record(step)
            if args.save and step < args.steps:  # a long run keeps its latest model on disk
                save(args.model, args.save, tr, te)
    if args.save:
        save(args.model, args.save, tr, te)


def swap_main_shape(tok: torch.Tensor, shape_ids: torch.Tensor) -> torch.Tensor:
    """Token ids [B, T] of "a COLOUR SHAPE ..." captions with the main object's shape (token 2) turned into the next
    of SHAPES; rows without a shape there (empty captions) unchanged."""
    wrong = tok.clone()
    is_shape = tok[:, 2:3] == shape_ids
    nxt = shape_ids[(is_shape.float().argmax(1) + 1) % len(shape_ids)]
    wrong[:, 2] = torch.where(is_shape.any(1), nxt, tok[:, 2])
    return wrong


def recipe_batches(state: str, tokenizer, overrides: list[str]):
    """(TrainConfig, latents, tokenized captions) of a train-demo run, for demo_train_transformer._tf_batch;
    `overrides` as train-demo's --set."""
    state = Path(state)
    cfg = TrainConfig(**json.loads((state / "config.json").read_text()))
    cfg = dataclasses.replace(cfg, **config_overrides(overrides))
    data = load_checkpoint(state / "data.pt")
    return cfg, data, tokenized_captions(tokenizer, data)


def save(model: str, out: str, transformer, text_encoder) -> None:
    """A copy of `model` with the fine-tuned (raw, not averaged) transformer and text encoder weights."""
    shutil.copytree(model, out, dirs_exist_ok=True)
    transformer.eval().save_pretrained(Path(out) / "transformer")
    text_encoder.eval().save_pretrained(Path(out) / "text_encoder")
    transformer.train(), text_encoder.train()
    print(f"saved {out}", flush=True)


if __name__ == "__main__":
    main()
