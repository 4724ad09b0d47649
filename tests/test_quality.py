"""PSNR and SSIM, the benchmark's quality figures, against definitions computed independently here."""

import numpy as np
import torch
import torch.nn.functional as F

from motioncache.quality import psnr, ssim


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 with an explicit 11x11 gaussian window (sigma 1.5), 'valid' positions only."""
    x = torch.from_numpy(a.astype(np.float64)).permute(0, 3, 1, 2).flatten(0, 1)[:, None]
    y = torch.from_numpy(b.astype(np.float64)).permute(0, 3, 1, 2).flatten(0, 1)[:, None]
    r = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w = (g / g.sum())[None, None]
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    vx, vy = F.conv2d(x * x, w) - mx**2, F.conv2d(y * y, w) - my**2
    cxy = F.conv2d(x * y, w) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_the_explicit_window_definition():
    rng = np.random.default_rng(0)
    a = rng.random((3, 24, 20, 3))
    smooth = np.cumsum(rng.standard_normal((3, 24, 20, 3)), axis=1) / 10  # structure, not only noise
    b = np.clip(a + smooth, 0, 1)
    assert abs(ssim(a, b) - _reference_ssim(a, b)) < 1e-12
    assert ssim(a, a) == 1.0


def test_ssim_falls_as_noise_grows():
    rng = np.random.default_rng(1)
    a = rng.random((2, 32, 32, 3))
    noise = rng.standard_normal(a.shape)
    scores = [ssim(a, np.clip(a + s * noise, 0, 1)) for s in (0.01, 0.05, 0.2)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_psnr_of_a_known_error():
    a = np.zeros((2, 8, 8, 3))
    assert abs(psnr(a, a + 0.1) - 20.0) < 1e-9  # mse 0.01 -> 20 dB
    assert psnr(a, a) == float("inf")
