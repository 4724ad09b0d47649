"""A stochastic flow-matching step: with the request's `churn` > 0 each block steps with StochasticSteps instead of
the scheduler's deterministic steps.

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


class StochasticSteps:
    """Stands in for one block's scheduler (the engine calls `step` the same way): each call is one stochastic
    step down `sigmas`. The generator is shared by all blocks of a request, so the draws follow row and block order."""

    def __init__(self, sigmas: list[float], churn: float, generator: torch.Generator):
        self.sigmas, self.churn, self.generator, self.index = sigmas, churn, generator, 0

    def step(self, v: torch.Tensor, timestep, x: torch.Tensor, return_dict: bool = False) -> tuple[torch.Tensor]:
        sigma, sigma_next = self.sigmas[self.index], self.sigmas[self.index + 1]
        self.index += 1
        return (stochastic_step(v, x, sigma, sigma_next, self.churn, self.generator),)
