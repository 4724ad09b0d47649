"""The streaming diffusion-forcing generator: a request in, finished chunks out, as soon as each is final.

For every window: draw the noise exactly as diffusers does (same generator, order and shape), walk the
timestep matrix row by row, step each updating block with its own scheduler, and the moment a block takes
its last step decode it (incremental VAE) and yield it. Which frames go through the transformer on a row
is the cache policy's business (`none`: the whole window; `chunked`: the active blocks over a KV cache).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

from .accounting import ComputeCounter, ModelShape
from .denoiser import Denoiser, QueryRuns
from .model_files import Components
from .policies import make_policy
from .policies.base import RowInput, WindowContext
from .request import GenerationRequest, ResolvedRequest, resolve
from .schedule import Window, plan_windows, step_matrix
from .stochastic import StochasticSteps
from .text import encode_prompts
from .vae_stream import StreamingDecoder, encode_frames, latent_to_pixel_frames
from .video_io import read_image, read_video


class Cancelled(Exception):
    """Raised inside the generator when `should_stop()` turns true; chunks already yielded stay valid."""


@dataclass
class Chunk:
    index: int
    frames: np.ndarray  # float32 [F, H, W, 3] in [0, 1]
    frame_start: int  # index of frames[0] in the whole video
    latent_start: int
    latent_end: int
    window: int
    stats: dict  # compute and timings spent since the previous chunk

    @property
    def frame_end(self) -> int:
        return self.frame_start + len(self.frames)


@dataclass
class Plan:
    resolved: ResolvedRequest
    windows: list[Window]
    rows_per_window: list[int]
    context_pixel_frames: int
    policy: object  # the request's cache policy config (policies/*.py)

    @property
    def total_rows(self) -> int:
        return sum(self.rows_per_window)

    def reference_flops(self, transformer, text_tokens: int) -> int:
        """FLOPs of the reference path (whole window on every row) for this plan: the compute-speedup baseline."""
        shape = ModelShape.of(transformer)
        total = self.branches * shape.text_kv_flops(text_tokens)
        return total + sum(rows * self.row_reference_flops(transformer, w, text_tokens)
                           for w, rows in zip(self.windows, self.rows_per_window))

    @property
    def branches(self) -> int:
        return 2 if self.resolved.use_cfg else 1

    def row_reference_flops(self, transformer, window: Window, text_tokens: int) -> int:
        shape = ModelShape.of(transformer)
        p = transformer.config.patch_size
        r = self.resolved
        hw = (r.latent_height // p[1]) * (r.latent_width // p[2])
        n = window.num_frames * hw
        block_ids = window.block_of_frame() if r.causal_block_size > 1 else None
        pairs = QueryRuns.of_window(block_ids, window.num_frames, hw).pairs
        return self.branches * (shape.num_layers * shape.layer_flops(n, pairs, text_tokens) + shape.patch_flops(n)
                                + shape.head_flops(n))

    @property
    def total_chunks(self) -> int:
        first = 1 if self.context_pixel_frames else 0
        return first + sum(len(w.blocks) - w.num_context_blocks for w in self.windows)


@dataclass
class Progress:
    rows_done: int = 0
    chunks_done: int = 0
    timings: dict = field(default_factory=lambda: {"text_encoding": 0.0, "denoising": 0.0, "decoding": 0.0,
                                                   "denoising_cpu": 0.0})  # process CPU time: steady under load
    on_row: Callable[["Progress"], None] | None = None  # called after every denoising row (progress bars)
    text_tokens: int = 0  # cross-attention keys per row once the prompts are encoded (zero padding cut)


@dataclass
class Generation:
    """A planned request; iterating it runs the denoising loop and yields each chunk as soon as it is final."""

    plan: Plan
    progress: Progress
    counter: ComputeCounter
    chunks: Iterator[Chunk]

    def __iter__(self) -> Iterator[Chunk]:
        return self.chunks


def _new_scheduler(config: dict, shift: float, steps: int, device) -> UniPCMultistepScheduler:
    scheduler = UniPCMultistepScheduler.from_config({**config, "flow_shift": shift})
    scheduler.set_timesteps(steps, device=device)
    # Each block's first step is the schedule's first: found by looking its timestep up, it is the wrong one once
    # the integer timesteps repeat (about 150 steps or more at shift 8), and the solver then fails at the end.
    scheduler.set_begin_index(0)
    return scheduler


class Engine:
    def __init__(self, components: Components):
        self.c = components

    # -- planning ---------------------------------------------------------------------------
    def resolve(self, request: GenerationRequest) -> ResolvedRequest:
        t = self.c.transformer.config
        return resolve(request, model_defaults=self.c.defaults, scheduler_shift=self.c.scheduler_config["flow_shift"],
                       model_block_size=t.num_frame_per_block, temporal_scale=self.c.vae_scale_temporal,
                       spatial_scale=self.c.vae_scale_spatial, patch=tuple(t.patch_size))

    def _condition_frames(self, r: ResolvedRequest) -> np.ndarray | None:
        req = r.request
        if not (req.image or req.prefix_video):
            return None
        field_name = "image" if req.image else "prefix_video"
        try:
            data = base64.b64decode(req.image or req.prefix_video, validate=True)
            if req.image:
                return read_image(data, r.width, r.height)[None]
            frames = read_video(data, r.width, r.height)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{field_name}: {e}") from None
        # keep a 4k+1 tail so the continuation starts right after the prefix's last frame
        keep = (len(frames) - 1) // self.c.vae_scale_temporal * self.c.vae_scale_temporal + 1
        return frames[len(frames) - keep:]

    def plan(self, request: GenerationRequest, condition: np.ndarray | None = None) -> Plan:
        r = self.resolve(request)
        policy = make_policy(request.cache.policy, request.cache.knobs, self.c.defaults.get("cache_presets"))
        if policy.needs_block_causal and r.causal_block_size == 1:
            raise ValueError(f"cache policy {policy.name!r} needs block-causal attention: set causal_block_size > 1 "
                             "(with 1, attention is bidirectional over the window)")
        cond_pixels = 0 if condition is None else len(condition)
        cond_latent = 0 if condition is None else (cond_pixels - 1) // self.c.vae_scale_temporal + 1
        if cond_latent and cond_pixels >= r.num_frames:
            raise ValueError(f"num_frames {r.num_frames} must exceed the {cond_pixels} conditioning frames")
        if cond_latent >= r.base_latent_frames:
            raise ValueError(f"the conditioning video ({cond_pixels} frames) must be shorter than base_num_frames")
        windows = plan_windows(r.latent_frames, r.base_latent_frames, r.overlap_latent_frames, cond_latent,
                               r.causal_block_size)
        rows = [step_matrix(len(w.blocks), r.num_inference_steps, r.ar_step, w.num_context_blocks).rows
                for w in windows]
        return Plan(r, windows, rows, cond_pixels, policy)

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, should_stop: Callable[[], bool] | None = None,
                 progress: Progress | None = None, counter: ComputeCounter | None = None) -> "Generation":
        """Validate and plan now (errors raise here, before any work); iterate the result for the chunks."""
        condition_pixels = self._condition_frames(self.resolve(request))
        plan = self.plan(request, condition_pixels)
        progress, counter = progress or Progress(), counter or ComputeCounter()
        chunks = self._run(plan, condition_pixels, should_stop or (lambda: False), progress, counter)
        return Generation(plan, progress, counter, chunks)

    def _run(self, plan: Plan, condition_pixels, should_stop, progress: Progress, counter: ComputeCounter):
        c, r = self.c, plan.resolved
        req = r.request
        policy = plan.policy
        device, dtype = c.device, c.dtype
        block_causal = r.causal_block_size > 1  # diffusers: block size 1 means bidirectional attention
        denoiser = Denoiser(c.transformer, counter)
        decoder = StreamingDecoder(c.vae)
        last = {"stats": counter.snapshot(), "time": time.perf_counter()}  # per-chunk figures are deltas
        t0 = time.perf_counter()
        prompts = [req.prompt] + ([req.negative_prompt] if r.use_cfg else [])
        embeds = encode_prompts(c.tokenizer, c.text_encoder, prompts, req.max_sequence_length, dtype)
        text = denoiser.encode_text(embeds)
        progress.text_tokens = text.tokens
        counter.reference_flops += plan.branches * ModelShape.of(c.transformer).text_kv_flops(text.tokens)
        progress.timings["text_encoding"] += time.perf_counter() - t0
        fps_flag = 0 if r.fps == 16 else 1
        generator = torch.Generator("cpu").manual_seed(req.seed)
        renoise_generator = torch.Generator("cpu").manual_seed((req.seed * 1_000_003 + 7) % 2**63)
        # stochastic steps draw from their own generator, in row and block order: the same draws for every policy
        churn_generator = torch.Generator("cpu").manual_seed((req.seed * 1_000_003 + 11) % 2**63)
        shape = (1, c.transformer.config.in_channels, 0, r.latent_height, r.latent_width)
        video = torch.zeros(shape, dtype=torch.float32, device=device)  # finished latents of the whole video
        chunk_index = 0

        def emit(latents: torch.Tensor, latent_start: int, window: int) -> Chunk:
            nonlocal chunk_index
            t = time.perf_counter()
            frames = decoder.decode(latents)
            progress.timings["decoding"] += time.perf_counter() - t
            now = counter.snapshot()
            delta = ComputeCounter.delta(now, last["stats"])
            stats = {**delta, **ComputeCounter.figures(delta), "wall_s": time.perf_counter() - last["time"],
                     "rows_done": progress.rows_done}
            last.update(stats=now, time=time.perf_counter())
            a, _ = latent_to_pixel_frames(latent_start, latent_start + latents.shape[2], c.vae_scale_temporal)
            chunk = Chunk(chunk_index, frames, a, latent_start, latent_start + latents.shape[2], window, stats)
            chunk_index += 1
            progress.chunks_done += 1
            return chunk

        if condition_pixels is not None:
            video = encode_frames(c.vae, condition_pixels).to(device, torch.float32)
            yield emit(video, 0, 0)

        reference_scheduler = _new_scheduler(c.scheduler_config, r.shift, r.num_inference_steps, device)
        timesteps, sigmas = reference_scheduler.timesteps, reference_scheduler.sigmas.tolist()

        def block_stepper():  # one per block: the scheduler, or stochastic steps down the same sigmas
            if r.churn:
                return StochasticSteps(sigmas, r.churn, churn_generator)
            return _new_scheduler(c.scheduler_config, r.shift, r.num_inference_steps, device)

        for w in plan.windows:
            shape = (1, c.transformer.config.in_channels, w.num_frames, r.latent_height, r.latent_width)
            latents = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
            latents = latents.to(device)
            ctx = w.context_frames
            if ctx:
                latents[:, :, :ctx] = video[:, :, w.start:w.start + ctx].to(dtype)
            model_input_ctx = None
            if ctx and req.addnoise_condition > 0:
                # the clean condition is slightly re-noised (once per window, seeded: not the global RNG)
                f = 0.001 * req.addnoise_condition
                noise = randn_tensor(latents[:, :, :ctx].shape, generator=renoise_generator,
                                     device=torch.device("cpu"), dtype=torch.float32).to(device)
                model_input_ctx = latents[:, :, :ctx] * (1.0 - f) + noise * f

            matrix = step_matrix(len(w.blocks), r.num_inference_steps, r.ar_step, w.num_context_blocks)
            block_timesteps = matrix.timesteps(timesteps)
            sizes = torch.tensor([e - s for s, e in w.blocks])
            schedulers = [block_stepper() for _ in w.blocks]
            runner = policy.runner(WindowContext(
                denoiser, w, text, fps_flag, 2 if r.use_cfg else 1, block_causal, r.num_inference_steps,
                r.latent_height // c.transformer.config.patch_size[1],
                r.latent_width // c.transformer.config.patch_size[2]))

            row_reference = plan.row_reference_flops(c.transformer, w, text.tokens)
            for row in range(matrix.rows):
                if should_stop():
                    raise Cancelled()
                counter.reference_flops += row_reference
                t, cpu = time.perf_counter(), time.process_time()
                frame_t = block_timesteps[row].repeat_interleave(sizes)
                model_input = latents.to(dtype)
                if model_input_ctx is not None:
                    model_input = model_input.clone()
                    model_input[:, :, :ctx] = model_input_ctx.to(dtype)
                    frame_t[:ctx] = int(req.addnoise_condition)
                steps = matrix.step_index[row].tolist()
                active = torch.nonzero(matrix.update[row]).flatten().tolist()
                finishing = torch.nonzero(matrix.finishing(row)).flatten().tolist()
                pred, f0 = runner.predict(RowInput(row, model_input, frame_t.to(device), active, steps, finishing))
                if r.use_cfg:
                    pred = pred[1:2] + r.guidance_scale * (pred[0:1] - pred[1:2])
                for b in active:
                    s, e = w.blocks[b]
                    latents[:, :, s:e] = schedulers[b].step(pred[:, :, s - f0:e - f0], block_timesteps[row, b],
                                                            latents[:, :, s:e], return_dict=False)[0]
                if latents.is_cuda:
                    torch.cuda.synchronize()  # kernels run async: time the row, not its launch
                progress.rows_done += 1
                progress.timings["denoising"] += time.perf_counter() - t
                progress.timings["denoising_cpu"] += time.process_time() - cpu
                if progress.on_row:
                    progress.on_row(progress)
                for b in finishing:
                    s, e = w.blocks[b]
                    yield emit(latents[:, :, s:e].clone(), w.start + s, w.index)
            video = torch.cat([video, latents[:, :, ctx:]], dim=2)
