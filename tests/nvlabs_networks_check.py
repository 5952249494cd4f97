"""Runs NVlabs' own networks and augmentation pipeline from a user's checkout, once on
NVlabs' torch_utils.ops (its plain-PyTorch reference path: CPU tensors never build its
plugins) and once on alae_fast's drop-in (``alae_fast.compat.nvlabs.install()``), and
compares every output and gradient. A stylegan3 checkout's networks_stylegan3.py Generator
runs too, in the StyleGAN3-T and -R configurations (filtered_lrelu, radial 2-D filters, 1x1
convolutions).

    python nvlabs_networks_check.py CHECKOUT MODE OUT.pt [REFERENCE.pt]

CHECKOUT: an NVlabs stylegan2-ada-pytorch or stylegan3 checkout. MODE: 'nvlabs' (record) or
'alae_fast' (record, then compare with REFERENCE.pt). Nothing of NVlabs is stored in this
repository: the files are imported from CHECKOUT at run time (their licence is
non-commercial). Used by tests/test_compat_nvlabs_namespace.py.
"""

import os
import sys

import torch


def _net_modules(checkout):
    """(label, module name) of the StyleGAN2-style network modules this checkout has."""
    mods = []
    if os.path.exists(os.path.join(checkout, "training", "networks.py")):
        mods.append("training.networks")
    if os.path.exists(os.path.join(checkout, "training", "networks_stylegan2.py")):
        mods.append("training.networks_stylegan2")
    return mods


def _takes_synthesis_kwargs_dict(cls):
    """stylegan2-ada-pytorch's Generator takes ``synthesis_kwargs={...}``; stylegan3's
    networks_stylegan2.Generator takes them as ``**synthesis_kwargs``. (Persistent classes are
    subclasses with an ``(*args, **kwargs)`` constructor: look past them.)"""
    import inspect
    for klass in cls.__mro__:
        params = inspect.signature(klass.__init__).parameters
        if "z_dim" in params:
            p = params.get("synthesis_kwargs")
            return p is not None and p.kind != inspect.Parameter.VAR_KEYWORD
    raise TypeError(f"{cls} has no constructor with z_dim")


def _run_generator_and_discriminator(net, fp16_res, architecture):
    torch.manual_seed(0)
    synthesis_kwargs = dict(channel_base=256, channel_max=16, num_fp16_res=fp16_res, conv_clamp=256,
                            architecture=architecture)
    if _takes_synthesis_kwargs_dict(net.Generator):
        synthesis_kwargs = dict(synthesis_kwargs=synthesis_kwargs)
    G = net.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                      mapping_kwargs=dict(num_layers=2), **synthesis_kwargs)
    D = net.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                          num_fp16_res=fp16_res, conv_clamp=256, architecture=architecture)
    z = torch.randn(3, 16)
    results = {}
    for noise_mode in ("const", "random", "none"):
        for fused in (True, False):
            torch.manual_seed(1)
            img = G(z, None, noise_mode=noise_mode, fused_modconv=fused)
            results[f"img/{noise_mode}/{fused}"] = img.detach()
    # A training step's gradients: generator loss, and the discriminator's with R1.
    torch.manual_seed(2)
    img = G(z, None, truncation_psi=0.7)
    params_g = [p for p in G.parameters() if p.requires_grad]
    gl = torch.nn.functional.softplus(-D(img, None)).mean()
    for i, g in enumerate(torch.autograd.grad(gl, params_g)):
        results[f"dG/{i}"] = g
    real = torch.randn(3, 3, 16, 16, requires_grad=True)
    logits = D(real, None)
    (r1_grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    loss = torch.nn.functional.softplus(logits).mean() + r1_grad.square().sum()
    params_d = [p for p in D.parameters() if p.requires_grad]
    for i, g in enumerate(torch.autograd.grad(loss, params_d)):
        results[f"dD/{i}"] = g
    return results


def _run_stylegan3_generator(net3, config):
    """A tiny StyleGAN3 generator as train.py configures it (T: 3x3 convolutions, separable
    filters; R: 1x1 convolutions, radially symmetric 2-D downsampling filters, doubled
    channels). Its images, then the gradients of a scalar of the image w.r.t. ws and every
    parameter, and through that gradient (a second-order pass, as path-length regularisation
    would take it). float32 on CPU, where every SynthesisLayer runs in float32."""
    torch.manual_seed(4)
    kwargs = dict(channel_base=512, channel_max=16, num_layers=4, num_critical=2, margin_size=4,
                  magnitude_ema_beta=0.5)
    if config == "r":
        kwargs.update(conv_kernel=1, channel_base=1024, channel_max=32, use_radial_filters=True)
    G = net3.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                       mapping_kwargs=dict(num_layers=2), **kwargs)
    results = {}
    z = torch.randn(3, 16)
    # update_emas: w_avg and every layer's magnitude_ema (the input gain) move off their
    # initial values, so the next passes use a non-trivial input gain and truncation.
    results["img/ema"] = G(z, None, update_emas=True).detach()
    for name, buf in G.named_buffers():
        if "magnitude_ema" in name or "w_avg" in name:
            results[f"buf/{name}"] = buf.clone()
    results["img"] = G(z, None, truncation_psi=0.7).detach()
    ws = G.mapping(z, None, truncation_psi=0.7).detach().requires_grad_(True)
    img = G.synthesis(ws)
    r = torch.randn(img.shape)
    params = [p for p in G.synthesis.parameters() if p.requires_grad]
    grads = torch.autograd.grad((img * r).sum(), [ws] + params, create_graph=True)
    results["dws"] = grads[0].detach()
    for i, g in enumerate(grads[1:]):
        results[f"dparam/{i}"] = g.detach()
    # A parameter the gradient does not reach (the ToRGB bias: its only path is the clamp's
    # mask) gets zeros, whether or not the ops' graphs connect it.
    grads2 = torch.autograd.grad(grads[0].square().sum(), params, allow_unused=True, materialize_grads=True)
    for i, g in enumerate(grads2):
        results[f"ddparam/{i}"] = g
    return results


def _run_augment(augment):
    spec = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                lumaflip=1, hue=1, saturation=1, imgfilter=1, noise=1, cutout=1)
    pipe = augment.AugmentPipe(**spec)
    pipe.p.copy_(torch.as_tensor(0.8))
    torch.manual_seed(3)
    x = torch.randn(4, 3, 64, 64, requires_grad=True)  # the geometric stage pads by up to ~1/3 of the size
    y = pipe(x)
    (dx,) = torch.autograd.grad(y.square().sum(), x)
    return {"augment/y": y.detach(), "augment/dx": dx}


def _stub_missing_imports():
    """Module-level imports of NVlabs' support code that alae_fast's test environment need
    not have: dnnlib/util.py's ``requests`` (for downloads, which this check never makes) and,
    in stylegan3's conv2d_gradfix.py / grid_sample_gradfix.py, ``pkg_resources.parse_version``
    (gone from recent setuptools; ``packaging.version.parse`` is the same comparison)."""
    import importlib.util
    import types
    if importlib.util.find_spec("requests") is None:
        sys.modules["requests"] = types.ModuleType("requests")
    if importlib.util.find_spec("pkg_resources") is None:
        from packaging.version import parse
        sys.modules["pkg_resources"] = mod = types.ModuleType("pkg_resources")
        mod.parse_version = parse


def record(checkout, use_alae_fast):
    sys.path.insert(0, checkout)
    _stub_missing_imports()
    if use_alae_fast:
        from alae_fast.compat import nvlabs
        nvlabs.install()
        import torch_utils.ops.bias_act as ba
        assert ba.__name__.startswith("alae_fast."), ba.__name__
    import importlib
    results = {}
    for fp16_res, architecture in ((0, "orig"), (0, "skip"), (0, "resnet"), (2, "skip")):
        for name in _net_modules(checkout):
            net = importlib.import_module(name)
            out = _run_generator_and_discriminator(net, fp16_res, architecture)
            results.update({f"{name}/{fp16_res}/{architecture}/{k}": v for k, v in out.items()})
    if os.path.exists(os.path.join(checkout, "training", "networks_stylegan3.py")):
        net3 = importlib.import_module("training.networks_stylegan3")
        if use_alae_fast:
            assert net3.filtered_lrelu.__name__.startswith("alae_fast."), net3.filtered_lrelu.__name__
        for config in ("t", "r"):
            out = _run_stylegan3_generator(net3, config)
            results.update({f"training.networks_stylegan3/{config}/{k}": v for k, v in out.items()})
    if os.environ.get("NVLABS_CHECK_SKIP_AUGMENT") != "1":
        results.update(_run_augment(importlib.import_module("training.augment")))
    return results


def main():
    checkout, mode, out = sys.argv[1:4]
    results = record(os.path.abspath(checkout), mode == "alae_fast")
    torch.save(results, out)
    if mode == "alae_fast":
        ref = torch.load(sys.argv[4])
        if os.environ.get("NVLABS_CHECK_SKIP_AUGMENT") == "1":
            ref = {k: v for k, v in ref.items() if not k.startswith("augment/")}
        assert ref.keys() == results.keys(), sorted(set(ref) ^ set(results))
        worst, worst16 = 0.0, 0.0
        for k in ref:
            a, b = results[k].double(), ref[k].double()
            assert a.shape == b.shape, k
            # float16 layers: NVlabs' reference rounds every op to float16, the kernels compute
            # in float32 and round once, and a training step's gradients compound that.
            tol = 0.15 if "/2/" in k else 1e-4
            scale = b.abs().max().item() + 1e-12
            err = (a - b).abs().max().item() / scale
            if "/2/" in k:
                worst16 = max(worst16, err)
            else:
                worst = max(worst, err)
            assert torch.isfinite(a).all() == torch.isfinite(b).all(), k
            assert err <= tol, f"{k}: max error {err:.3g} of max |value| {scale:.3g}"
        print(f"compared {len(ref)} tensors; worst relative error (of the tensor's max) {worst:.3g} in "
              f"float32 networks, {worst16:.3g} in networks with float16 layers")


if __name__ == "__main__":
    main()
