"""Train the shipped demo model on the procedural moving-shapes data: `motioncache train-demo`.

Four resumable phases, each checkpointed under OUT/.train/:
1. vae:         (demo_train_vae.py) a frame-local AutoencoderKLWan on crops around the main object: single
                frames, then also 17-frame clips; 32x32 crops, then 64x64, then whole frames (object and
                background L1, each normalized by its own pixel count, + a small L2 on the posterior mean).
2. data:        (demo_train_data.py) render training clips, encode them with the trained VAE (posterior mode),
                store object masks on the latent grid, normalize with per-channel statistics that are stored
                in the VAE config (as diffusers' pipeline expects).
3. decoder:     (optional, off by default) fine-tune the VAE decoder alone (the encoder is frozen, so the
                latents stay valid) on clips as long as the training clips: crops first, then whole frames.
4. transformer: (demo_train_transformer.py) UMT5 text encoder + SkyReels-V2 transformer trained jointly with
                diffusion forcing (one flow-matching noise level per causal block, block-causal attention, caption dropout).
The model directory OUT is (re)written at every transformer checkpoint, so a usable model exists early.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .demo_data import PATH_STYLES, SHIPPED_PATHS
from .demo_train_data import encode_data
from .demo_train_transformer import train_transformer
from .demo_train_vae import build_vae, train_decoder, train_vae
from .train_support import load_checkpoint

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "models" / "demo"


@dataclass
class TrainConfig:
    height: int = 128
    width: int = 128
    seed: int = 0
    # VAE (phase 1)
    vae_base_dim: int = 12
    vae_dim_mult: tuple = (1, 1, 2, 2)
    vae_steps: int = 2400
    vae_image_steps: int = 300   # single frames only before this step (the cheap first-frame path) ...
    vae_image_every: int = 2     # ... then every 2nd step is single frames, the others clips of vae_frames
    vae_crop: int = 32           # crops around the main object (jittered), doubled at each of vae_crop_steps:
    vae_crop_steps: tuple = (400, 800)  # small crops place objects within ~150 steps (whole frames from step
                                 # 0 collapsed to one colour); whole 128x128 frames for the last two thirds:
                                 # borders, flat areas and the mid-block attention over a whole frame
    vae_batch: int = 32          # single frames per step ...
    vae_clip_batch: int = 4      # ... and clips; both batches halve each time the crop doubles
    vae_frames: int = 17         # 1 + 4 x 4: 5 latent frames, the whole reach of a frame-local VAE's
                                 # temporal convolutions, so longer videos hold no context unseen in training
    vae_lr: float = 1e-3
    vae_kl: float = 1e-4
    vae_noise: float = 0.0          # latent noise (0.1) slowed learning too much for the budget
    vae_object_weight: float = 2.0  # object pixels' mean L1 vs background pixels' mean L1
    vae_frame_local: bool = True    # 3x3x3 convolutions see the current frame only (fast_conv.make_frame_local):
                                    # no drift past the training clips' length, a third of the conv work
                                    # (without it, reconstructions flooded with the object's colour within
                                    # a few latent frames: docs/demo.md)
    dec_steps: int = 0           # phase 2b (optional): decoder only, on clips of clip_frames frames (crops)
    dec_crop: int = 32           # alternating with half-length clips on crops twice this size
    dec_batch: int = 4
    dec_lr: float = 1e-4
    dec_whole_steps: int = 0     # then whole frames of whole 37-frame clips (batch 1); it fixed the drift of
                                 # non-frame-local VAEs, and made the frame-local one worse (docs/demo.md)
    dec_noise: float = 0.0       # latent noise (x the latent std) in those steps
    # data (phase 2)
    clips: int = 600             # short clips: the demo's default length
    clip_frames: int = 37        # 10 latent frames = 2 causal blocks of 5
    long_clips: int = 20         # long clips teach attention over the 25 latent frames of a 97-frame video
    long_frames: int = 97
    paths: str = SHIPPED_PATHS   # demo_data.PATH_STYLES: "large" has a main object 2-2.6 tokens across (its
    #                              shape is more than sub-token detail; docs/demo.md); "long" the earlier size
    # transformer + text encoder (phase 3)
    heads: int = 3
    head_dim: int = 64
    layers: int = 4
    ffn_dim: int = 768
    text_dim: int = 64
    text_layers: int = 2
    block: int = 5               # causal block size (latent frames)
    tf_steps: int = 18000        # 7500 of them the word phase, half of the others word batches (a word batch costs
                                 # about half an ordinary one); the mixed steps after the phase carry the scores:
                                 # 1500 -> 4500 -> 9000 of them, colour 85 -> 94 -> 92%, shape 54 -> 57 -> 72%,
                                 # direction 60 -> 76 -> 84% (docs/demo.md)
    batch: int = 8
    long_batch: int = 2
    long_every: int = 5          # every 5th step is a long batch
    lr: float = 5e-4
    warmup: int = 100
    train_shift: float = 3.0     # sigma = shift*u / (1 + (shift-1)*u), u ~ U(0, 1)
    mid_level_share: float = 0.0  # share of the drawn levels (ordinary blocks, word clips without a visible frame)
    mid_low: float = 0.25         # taken from U(mid_low, mid_high) instead: where the denoiser rounds shapes
    mid_high: float = 0.8         # (scripts/shape_commit_probe.py), which train_shift 3 trains least (docs/demo.md)
    sample_shift: float = 5.0    # the scheduler's flow_shift in the saved model
    clean_block_prob: float = 0.1  # finished (clean) context blocks, as in overlap windows / late rows
    monotone_prob: float = 0.5     # sorted block noise levels, as an ar_step schedule produces
    frame_noise_prob: float = 0.0  # share of clips with a noise level per frame instead of per block (Diffusion
                                   # Forcing's and SkyReels-V2's training): a cleaner frame beside noisier ones
                                   # is where the motion word predicts most (scripts/motion_word_probe.py)
    caption_dropout: float = 0.1
    # "word" batches (docs/demo.md): first-block clips (one causal block) of one moving object on a flat
    # background whose start is drawn anywhere, so only the caption's motion word tells where it goes; a share
    # of them with the first latent frame nearly clean, where the word is learned first. Mixed with the
    # ordinary batches from step 0 they teach the direction the recipe alone never learned.
    word_share: float = 0.5        # share of transformer steps that are word batches (0 = off)
    word_phase: tuple = (1500, 9000)  # (start, end): steps start..end-1 are word batches only, at the peak
                                      # learning rate; the cosine schedule runs over the other steps. Mixed in, the
                                      # word hardly took hold; alone, after ~3000 steps (docs/demo.md)
    word_clips: int = 1024         # word clips encoded in phase 2
    word_path_share: float = 0.5   # their paths cut to this share of an ordinary path
    word_visible: float = 0.6      # share with latent frame 0 at sigma U(0, 0.3) and the rest at U(0.7, 1)
    word_blocks: int = 1           # causal blocks per word clip; from 2 on, the later blocks are never cleaner than
                                   # the one before (as an ar_step schedule has it) and the first is sometimes clean
                                   # context, so the word batches also train continuing the first block's motion
                                   # (raise word_path_share with it to keep the speed; a word step costs ~2x)
    word_batch: int = 8            # clips per word batch; 4 two-block clips (a one-block step's cost) scored below
                                   # 8 on all three attributes (docs/demo.md)
    text_attribute_loss: float = 0.3  # weight of a cross-entropy that makes every caption token's text state name
                                      # the main object's colour, shape, motion and the background
                                      # (TextAttributeHeads): without it the motion and shape words did not reach
                                      # the transformer (docs/demo.md); 0 = off
    object_loss_weight: float = 0.0  # extra weight on latent pixels the object covers. Keep 0: a weight that
                                     # depends on the target biases the optimum towards the object's colour
                                     # wherever the object might be (at high noise: everywhere), and samples
                                     # flooded with it (docs/demo.md), unless the two options below keep it
                                     # where the object's place is already settled (with 3 / 0.6 / 1 shape
                                     # stayed at 48% and direction fell 20 points: docs/demo.md)
    object_loss_max_sigma: float = 1.0  # the extra weight only on frames noised to at most this level, where the
                                        # noisy input already shows the object, so the weight no longer depends on
                                        # what the model cannot see
    object_loss_margin: int = 0  # grow the weighted region by this many latent pixels around the object, so the
                                 # object's outline (its shape) lies inside it and is not biased either
    ema: float = 0.999
    bf16: bool = True            # bfloat16 autocast where the CPU has native bf16 (AVX512-BF16/AMX): 1.18x
                                 # faster steps here; master weights, optimizer and loss stay float32
    compile: bool = True         # torch.compile the training forward (inductor, C++) where a C++ compiler is found:
                                 # 1.16x faster float32 steps (0.878 vs 1.019 s) after ~1 min of compiling
                                 # (docs/benchmarks.md)
    checkpoint_minutes: float = 3.0
    # recommended request defaults written to motioncache.json
    defaults: dict = dataclasses.field(default_factory=lambda: dict(
        num_frames=33, num_inference_steps=30, guidance_scale=3.0, ar_step=2, fps=8, base_num_frames=97))

    def __post_init__(self):
        if self.paths not in PATH_STYLES:
            raise ValueError(f"paths={self.paths}: choose one of {', '.join(PATH_STYLES)}")
        if self.word_phase and not (len(self.word_phase) == 2 and 0 <= self.word_phase[0] <= self.word_phase[1]):
            raise ValueError(f"word_phase={self.word_phase}: give START,END with 0 <= START <= END")
        if self.word_blocks < 1:
            raise ValueError(f"word_blocks={self.word_blocks}: give at least 1")
        if self.word_batch < 1:
            raise ValueError(f"word_batch={self.word_batch}: give at least 1")
        if not (0 <= self.mid_level_share <= 1 and 0 <= self.mid_low <= self.mid_high <= 1):
            raise ValueError(f"mid_level_share={self.mid_level_share}, mid_low={self.mid_low}, "
                             f"mid_high={self.mid_high}: give a share in [0, 1] and 0 <= mid_low <= mid_high <= 1")

    @property
    def word_clips_used(self) -> bool:
        return self.word_share > 0 or bool(self.word_phase)


# Options that may change between a run and its resume (they do not change what was already computed).
# The decoder options qualify because the encoder is frozen then: the latents the transformer learns are the same.
RESUMABLE_OPTIONS = {"vae_steps", "dec_steps", "dec_whole_steps", "dec_noise", "dec_lr", "dec_crop", "dec_batch",
                     "tf_steps", "checkpoint_minutes", "defaults", "sample_shift", "compile", "bf16"}


def config_overrides(pairs: list[str]) -> dict:
    """OPTION=VALUE strings -> TrainConfig fields, typed like their defaults (tuples as comma-separated ints)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in defaults:
            raise ValueError(f"--set {pair}: TrainConfig has no option {key!r}")
        kind = type(defaults[key])
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = tuple(int(v) for v in value.split(",") if v) if kind is tuple else kind(value)
        except ValueError:
            raise ValueError(f"--set {pair}: {key} takes a {kind.__name__}") from None
    TrainConfig(**out)  # checks the values, e.g. a path style that does not exist
    return out


def tiny_config() -> TrainConfig:
    """A seconds-long configuration for tests."""
    return TrainConfig(height=32, width=32, vae_base_dim=4, vae_dim_mult=(1, 1, 1, 1), vae_steps=2, dec_steps=2,
                       dec_whole_steps=1, dec_noise=0.1,
                       vae_image_steps=1, vae_crop_steps=(1, 2), vae_crop=8, vae_frames=5, vae_batch=2, vae_clip_batch=1,
                       dec_crop=8, dec_batch=1, word_clips=3, word_batch=2,
                       clips=4, clip_frames=9, long_clips=2, long_frames=21, heads=2, head_dim=12, layers=1,
                       ffn_dim=32, text_dim=16, text_layers=1, block=3, tf_steps=3, batch=2, long_batch=1,
                       long_every=2, warmup=1, compile=False, defaults=dict(
                           num_frames=9, num_inference_steps=3, guidance_scale=4.0, ar_step=1, fps=8))


def _check_config(cfg: TrainConfig, state: Path) -> None:
    saved_file = state / "config.json"
    def as_json(c: TrainConfig) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(c)))

    current = as_json(cfg)
    if saved_file.is_file():
        saved = json.loads(saved_file.read_text())
        defaults = as_json(TrainConfig())  # an option added after the checkpoint was made counts as its default
        diff = [k for k in current if k not in RESUMABLE_OPTIONS and saved.get(k, defaults[k]) != current[k]]
        if diff:
            raise ValueError(f"options {', '.join(diff)} differ from the checkpoint in {state}; "
                             "rerun with the same options or use another --out")
    state.mkdir(parents=True, exist_ok=True)
    (state / ".gitignore").write_text("*\n")  # checkpoints and latents are not part of the model
    saved_file.write_text(json.dumps(current, indent=2))


# -- driver -----------------------------------------------------------------------------------

def train(cfg: TrainConfig, out: str | Path, stop_after: str | None = None, log=print) -> Path:
    out = Path(out)
    state = out / ".train"
    _check_config(cfg, state)
    torch.manual_seed(cfg.seed)
    t0 = time.monotonic()
    data = load_checkpoint(state / "data.pt")
    if data is not None and data.get("done"):
        vae = build_vae(cfg)
        vae.load_state_dict(load_checkpoint(state / "vae.pt")["model"])
        vae.eval().requires_grad_(False)
        log("vae + data: done (from checkpoint)")
    else:
        vae = train_vae(cfg, state, log)
    log(f"vae: done ({(time.monotonic() - t0) / 60:.1f} min so far)")
    if stop_after == "vae":
        return out
    data = encode_data(cfg, vae, state, log)
    log(f"data: done ({(time.monotonic() - t0) / 60:.1f} min so far)")
    if stop_after == "data":
        return out
    train_decoder(cfg, vae, state, log)
    vae.register_to_config(latents_mean=data["mean"], latents_std=data["std"])
    log(f"decoder: done ({(time.monotonic() - t0) / 60:.1f} min so far)")
    if stop_after == "decoder":
        return out
    train_transformer(cfg, vae, data, state, out, log)
    log(f"transformer: done ({(time.monotonic() - t0) / 60:.1f} min this run)")
    return out


def cmd_train_demo(args) -> None:
    torch.set_num_threads(args.threads)
    cfg = dataclasses.replace(tiny_config() if args.tiny else TrainConfig(), **config_overrides(args.set))
    for name in ("vae_steps", "dec_steps", "dec_whole_steps", "tf_steps", "clips", "long_clips", "batch", "seed",
                 "checkpoint_minutes"):
        value = getattr(args, name)
        if value is not None:
            if value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative")
            setattr(cfg, name, value)
    if cfg.clips < 1:
        raise ValueError("--clips must be at least 1")

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    out = train(cfg, args.out, stop_after=args.stop_after, log=log)
    print(f"model directory: {out}")


def register(subparsers) -> None:
    p = subparsers.add_parser("train-demo", help="train the demo model on procedural moving shapes (resumable)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"model directory (default {DEFAULT_OUT}); "
                   "checkpoints go to OUT/.train and a rerun resumes from them")
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                   help="any TrainConfig option (recipe trials; a resume must repeat them)")
    p.add_argument("--vae-steps", type=int)
    p.add_argument("--dec-steps", type=int, help="decoder fine-tuning steps (crops)")
    p.add_argument("--dec-whole-steps", type=int, help="then decoder steps on whole frames")
    p.add_argument("--tf-steps", type=int, help="transformer + text encoder steps")
    p.add_argument("--clips", type=int, help="short training clips to encode")
    p.add_argument("--long-clips", type=int, help="97-frame training clips to encode")
    p.add_argument("--batch", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-minutes", type=float)
    p.add_argument("--stop-after", choices=["vae", "data", "decoder"], help="stop after this phase")
    p.add_argument("--tiny", action="store_true", help="a seconds-long tiny configuration (smoke tests)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.set_defaults(func=cmd_train_demo)
