"""A stochastic flow-matching step: the request's `churn` > 0 replaces the scheduler's deterministic step with it.

From the model's estimates x0 = x - sigma v and eps = x + (1 - sigma) v, the step lands on
(1 - sigma_next) x0 + sigma_next (sqrt(1 - churn^2) eps + churn z), z fresh noise: churn 0 is the Euler step,
churn 1 re-noises the clean estimate from scratch. Fresh noise lets the sampler correct what a small model's
averaged prediction blurred (docs/demo.md, "Stochastic steps").
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor


def stochastic_step(v: torch.Tensor, x: torch.Tensor, sigma: float, sigma_next: float, churn: float,
                    generator: torch.Generator) -> torch.Tensor:
    v, x32 = v.float(), x.float()
    x0, eps = x32 - sigma * v, x32 + (1 - sigma) * v
    z = randn_tensor(x.shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32).to(x.device)
    mixed = (1 - churn ** 2) ** 0.5 * eps + churn * z
    return ((1 - sigma_next) * x0 + sigma_next * mixed).to(x.dtype)
