"""Rotary embedding as one complex multiply (denoiser.rope_apply) vs the earlier unbind/stack form, same math:
per call on query-sized tensors, then 97-frame demo generations (denoising time), interleaved after a warm-up.

    python scripts/rope_ab.py --json docs/results/rope_ab.json
"""
import argparse
import json
import statistics
import time

import torch

import motioncache.denoiser as dn
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest


def unbind_stack(x, freqs):
    """The earlier form: split each pair, rotate with cos/sin, stack the halves back."""
    cos, sin = freqs.real, freqs.imag
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)


FORMS = {"complex multiply": dn.rope_apply, "unbind/stack": unbind_stack}


def query_and_rotation(tokens: int):
    """Queries [2 branches, tokens, 3 heads, 64] and random unit rotations, as the demo model's attention sees them."""
    return torch.randn(2, tokens, 3, 64), torch.polar(torch.ones(1, tokens, 1, 32), torch.rand(1, tokens, 1, 32))


def per_call_us(fn, tokens: int, reps: int = 300) -> float:
    x, freqs = query_and_rotation(tokens)
    for _ in range(10):
        fn(x, freqs)
    t = time.perf_counter()
    for _ in range(reps):
        fn(x, freqs)
    return (time.perf_counter() - t) / reps * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--policies", default="none,motioncache-slow")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, f = query_and_rotation(640)
    assert torch.allclose(dn.rope_apply(x, f), unbind_stack(x, f), atol=1e-6)
    calls = {t: {name: per_call_us(fn, t) for name, fn in FORMS.items()} for t in (320, 1600)}
    engine = Engine(load_components(args.model))

    def denoise_s(policy: str) -> float:
        gen = engine.generate(GenerationRequest(prompt="a red circle moves right over a grey background", seed=0,
                                                num_frames=97, cache={"policy": policy}))
        list(gen)
        return gen.progress.timings["denoising"]

    denoise_s("none")  # the first generation of a process is slower (allocations, kernels chosen)
    runs = {(p, name): [] for p in args.policies.split(",") for name in FORMS}
    for rep in range(args.reps):
        for name in (list(FORMS) if rep % 2 == 0 else list(FORMS)[::-1]):
            dn.rope_apply = FORMS[name]
            for policy in args.policies.split(","):
                runs[(policy, name)].append(denoise_s(policy))
    dn.rope_apply = FORMS["complex multiply"]
    print(f"{'tokens (batch 2)':>18} " + " ".join(f"{n:>18}" for n in FORMS) + "   (us per call)")
    for t, row in calls.items():
        print(f"{t:>18} " + " ".join(f"{row[n]:>18.0f}" for n in FORMS))
    print(f"{'policy':>18} " + " ".join(f"{n:>18}" for n in FORMS) + "   (median denoising s, 97 frames)")
    table = []
    for policy in args.policies.split(","):
        med = {n: statistics.median(runs[(policy, n)]) for n in FORMS}
        table.append({"policy": policy, **{n: med[n] for n in FORMS}, "runs": {n: runs[(policy, n)] for n in FORMS}})
        print(f"{policy:>18} " + " ".join(f"{med[n]:>18.2f}" for n in FORMS))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"threads": args.threads, "per_call_us": calls, "denoising": table}, out, indent=1)


if __name__ == "__main__":
    main()
