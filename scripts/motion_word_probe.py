"""Does a demo model listen to the caption's motion word? Denoising loss with the true caption vs the same
caption with the motion word reversed (left <-> right, up-left <-> down-right, ...) and with the colour
swapped, on moving-object clips rendered and encoded here. A model that uses the word has a clearly lower loss
with the true caption; equal losses mean the word is ignored.

Settings (one 37-frame clip = 10 latent frames, loss over the frames named):
  block sigma S   : latent frames 0-4 at noise level S, 5-9 pure noise (the first causal block, as sampled)
  frame 0 visible : latent frame 0 at 0.2, frames 1-4 at 0.97 (where the object goes next is the word's to say)

A second table asks whether the model continues motion it can SEE: frames 0-4 clean (a finished block), 5-9 at
noise level S, loss on 5-9 with the true context vs the context frozen at its last frame (same caption). A model
that extrapolates the visible motion has a clearly lower loss with the moving context; equal losses mean it
only keeps the object near where it was last seen.

A third table asks what of each caption word reaches the video tokens at all: on the true-caption forward (first
block at sigma 0.9) every layer's cross-attention input is kept, and the cross-attention is run again on it with
one word edited; the table gives the mean change of its output per token, relative to the output's own size.
A word the transformer reads changes it clearly; a word near 0 does not get through, whatever the layers
after it could do with it.

    .venv/bin/python scripts/motion_word_probe.py --model models/demo --json probe.json
"""
from __future__ import annotations

import argparse
import json

import torch

from motioncache.demo_data import OPPOSITE, make_example
from motioncache.model_files import load_components
from motioncache.text import encode_prompts
from motioncache.vae_stream import encode_frames

SWAP_COLOR = {"red": "blue", "blue": "red", "green": "purple", "purple": "green", "yellow": "cyan", "cyan": "yellow",
              "orange": "blue"}
SETTINGS = {"block sigma 0.97": ([0.97] * 5, slice(0, 5)), "block sigma 0.9": ([0.9] * 5, slice(0, 5)),
            "block sigma 0.8": ([0.8] * 5, slice(0, 5)), "frame 0 visible": ([0.2] + [0.97] * 4, slice(1, 5))}
CONTEXT_SIGMAS = (0.97, 0.8)
SWAP_SHAPE = {"circle": "square", "square": "triangle", "triangle": "circle"}
SWAP_BACKGROUND = {"grey": "white", "white": "black", "black": "beige", "beige": "navy", "navy": "grey"}
# word positions in a one-object caption: "a COLOUR SHAPE moves MOTION over a BACKGROUND background"
WORD_EDITS = {"motion reversed": (OPPOSITE, 4), "colour swapped": (SWAP_COLOR, 1), "shape swapped": (SWAP_SHAPE, 2),
              "background swapped": (SWAP_BACKGROUND, 7)}


def edit(caption: str, table: dict, word: int) -> str:
    words = caption.split()
    words[word] = table[words[word]]
    return " ".join(words)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    c = load_components(args.model)
    clips, captions, seed = [], [], 0
    while len(clips) < args.clips:  # one moving object, no second one: the motion word is the 5th word
        video, text, scene = make_example(700_000 + seed, 37)
        seed += 1
        if len(scene.objects) == 1 and scene.main.motion != "still":
            clips.append(encode_frames(c.vae, video))  # normalized as the pipeline's latents
            captions.append(text)
    x0 = torch.cat(clips)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    variants = {"true caption": captions, **{k: [edit(t, table, i) for t in captions] for k, (table, i) in
                                             WORD_EDITS.items()}}
    with torch.no_grad():
        text = {k: encode_prompts(c.tokenizer, c.text_encoder, v, 512, c.dtype) for k, v in variants.items()}
    scored_variants = ("true caption", "motion reversed", "colour swapped")
    sample_info = {"fps": [1]} if c.transformer.config.inject_sample_info else {}  # as the engine at 24 fps

    def loss(levels, scored, states, frozen_context=False):
        sigma = torch.tensor(levels).expand(len(captions), 10)
        s = sigma[:, None, :, None, None]
        xt = (1 - s) * x0 + s * noise
        if frozen_context:  # the clean first block shows its last frame five times: no visible motion
            xt[:, :, :5] = x0[:, :, 4:5]
        with torch.no_grad():
            v = c.transformer(xt, timestep=sigma * 1000, encoder_hidden_states=states,
                              enable_diffusion_forcing=True, return_dict=False, **sample_info)[0]
        return float(((v - (noise - x0))[:, :, scored] ** 2).mean())

    rows = [{"setting": name, **{k: loss(levels + [1.0] * 5, scored, text[k]) for k in scored_variants}}
            for name, (levels, scored) in SETTINGS.items()]
    word_rows = cross_attention_changes(c.transformer, text, lambda states: loss([0.9] * 5 + [1.0] * 5, slice(0, 5),
                                                                                  states))
    context_rows = [{"setting": f"block 1 at {sig}",
                     "moving context": loss([0.0] * 5 + [sig] * 5, slice(5, 10), text["true caption"]),
                     "frozen context": loss([0.0] * 5 + [sig] * 5, slice(5, 10), text["true caption"], True)}
                    for sig in CONTEXT_SIGMAS]
    print(f"{'setting':<18}" + "".join(f"{k:>17}" for k in scored_variants) + f"{'reversed/true':>15}")
    for r in rows:
        print(f"{r['setting']:<18}" + "".join(f"{r[k]:>17.4f}" for k in scored_variants)
              + f"{r['motion reversed'] / r['true caption']:>15.3f}")
    print(f"\n{'context (clean)':<18}{'moving context':>17}{'frozen context':>17}{'frozen/moving':>15}")
    for r in context_rows:
        print(f"{r['setting']:<18}{r['moving context']:>17.4f}{r['frozen context']:>17.4f}"
              f"{r['frozen context'] / r['moving context']:>15.3f}")
    print(f"\n{'cross-attention':<18}" + "".join(f"{k:>20}" for k in WORD_EDITS))
    for r in word_rows:
        print(f"{r['layer']:<18}" + "".join(f"{r[k]:>20.3f}" for k in WORD_EDITS))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "clips": len(captions), "rows": rows, "context_rows": context_rows,
                       "word_rows": word_rows}, f, indent=2)


def cross_attention_changes(transformer, text: dict, run_true) -> list[dict]:
    """Per layer: mean over tokens of |attn2(h, edited) - attn2(h, true)| / mean |attn2(h, true)|, h each layer's
    cross-attention input in the forward `run_true(true caption states)`."""
    kept = {}

    def keep(i):
        def hook(module, args, output):
            kept[i] = (args[0], output)
        return hook

    handles = [b.attn2.register_forward_hook(keep(i)) for i, b in enumerate(transformer.blocks)]
    try:
        run_true(text["true caption"])
    finally:
        for h in handles:
            h.remove()
    rows = []
    with torch.no_grad():
        embedded = {k: transformer.condition_embedder.text_embedder(text[k]) for k in WORD_EDITS}
        for i, block in enumerate(transformer.blocks):
            h, out = kept[i]
            size = float(out.norm(dim=-1).mean())
            rows.append({"layer": f"layer {i}", **{
                k: float((block.attn2(h, embedded[k], None, None) - out).norm(dim=-1).mean()) / size
                for k in WORD_EDITS}})
    return rows


if __name__ == "__main__":
    main()
