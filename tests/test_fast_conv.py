import copy

import torch

from motioncache.fast_conv import use_fast_conv3d, use_fast_rms_norm


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
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    convs = [m for m in tiny_components.vae.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all("_conv_forward" in vars(m) for m in convs)
    norms = [m for m in tiny_components.vae.modules() if isinstance(m, WanRMS_norm)]
    assert norms and all("forward" in vars(m) for m in norms)


def test_fast_rms_norm_computes_what_diffusers_computes():
    vae = _tiny_vae()
    fast = use_fast_rms_norm(copy.deepcopy(vae))
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    a, b = _roundtrip(vae, x), _roundtrip(fast, x)
    assert torch.isfinite(b).all() and (a - b).abs().max() < 1e-5


def _tiny_vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=4, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _roundtrip(vae, x):
    with torch.no_grad():
        return vae.decode(vae.encode(x).latent_dist.mode()).sample


def test_a_frame_local_vae_computes_what_diffusers_computes_and_stays_frame_local(tmp_path):
    from diffusers import AutoencoderKLWan

    from motioncache.fast_conv import make_frame_local

    vae = make_frame_local(_tiny_vae())
    reference = copy.deepcopy(vae)
    for m in reference.modules():  # plain diffusers convolutions
        m.__dict__.pop("_conv_forward", None), m.__dict__.pop("frame_local", None)
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    assert (_roundtrip(use_fast_conv3d(vae), x) - _roundtrip(reference, x)).abs().max() < 1e-5

    local = [m for m in vae.modules() if getattr(m, "frame_local", False)]
    assert len(local) >= 6  # every 3x3x3 convolution, not the temporal (3, 1, 1) or 1x1x1 ones
    assert all(tuple(m.kernel_size) == (3, 3, 3) for m in local)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-2, weight_decay=0.0)
    out = vae.decode(vae.encode(x).latent_dist.mean).sample
    (out - x).abs().mean().backward()
    opt.step()
    assert all(not m.weight[:, :, :-1].any() and m.weight[:, :, -1].any() for m in local)

    vae.save_pretrained(tmp_path)  # a loaded frame-local VAE is recognized by its zero taps
    loaded = use_fast_conv3d(AutoencoderKLWan.from_pretrained(tmp_path))
    assert sum(getattr(m, "frame_local", False) for m in loaded.modules()) == len(local)
    assert not any(getattr(m, "frame_local", False) for m in use_fast_conv3d(_tiny_vae()).modules())


def test_a_frame_local_vae_has_a_bounded_reach_in_time():
    """Changing frames 1-4 (latent frame 1) changes no decoded frame past latent frame 5 (pixel frame 20); an
    ordinary VAE's causal caches carry the change to the end of the video."""
    from motioncache.fast_conv import make_frame_local

    x = torch.rand(1, 3, 41, 32, 32) * 2 - 1
    y = x.clone()
    y[:, :, 1:5] = torch.rand(1, 3, 4, 32, 32) * 2 - 1
    for vae, bounded in ((make_frame_local(_tiny_vae()), True), (_tiny_vae(), False)):
        vae = use_fast_conv3d(vae)
        change = (_roundtrip(vae, x) - _roundtrip(vae, y)).abs().amax(dim=(0, 1, 3, 4))
        assert change[1:5].max() > 1e-5
        assert (change[21:].max() < 1e-7) == bounded, change
