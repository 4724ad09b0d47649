import copy

import torch

from motioncache.fast_conv import use_fast_conv3d


def test_fast_conv3d_matches_pytorch_forward_and_backward():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3), torch.nn.SiLU(), torch.nn.Conv3d(8, 4, (3, 1, 1), padding=(1, 0, 0),
                                                                                      stride=(2, 1, 1)))
    fast = use_fast_conv3d(copy.deepcopy(net))
    x = torch.randn(1, 3, 6, 20, 20)
    y_ref, y = net(x), fast(x)
    assert y.shape == y_ref.shape and (y - y_ref).abs().max() < 1e-5
    y_ref.square().mean().backward()
    y.square().mean().backward()
    for p_ref, p in zip(net.parameters(), fast.parameters()):
        assert torch.allclose(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4)


def test_the_loaded_vae_uses_it(tiny_components):
    convs = [m for m in tiny_components.vae.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all("_conv_forward" in vars(m) for m in convs)
