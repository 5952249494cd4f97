"""compat.rosinality.install(): rosinality's code imports ``from op import ...``; install()
makes that resolve to alae_fast's ops without editing the code or importing its ``op/``
(which JIT-compiles CUDA at import). With a rosinality/stylegan2-pytorch checkout named by
ALAE_FAST_ROSINALITY_CHECKOUT, its own model.py (Generator, Discriminator) and train.py losses
(logistic, R1, non-saturating, path length) run on the drop-in and must match the checkout's
own pure-PyTorch CPU ops (its op/ loaded with the CUDA build stubbed out)."""

import ast
import importlib.util
import math
import os
import random
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from alae_fast.compat import rosinality

OP_KEYS = ("op", "op.fused_act", "op.upfirdn2d", "op.conv2d_gradfix")


@pytest.fixture
def clean_op(monkeypatch):
    """No ``op`` in sys.modules while the test runs; whatever was there comes back after."""
    for key in [k for k in sys.modules if k == "op" or k.startswith("op.")]:
        monkeypatch.delitem(sys.modules, key)
    yield
    rosinality.uninstall()


def test_install_registers_rosinalitys_package(clean_op):
    pkg = rosinality.install()
    assert sys.modules["op"] is pkg and rosinality.install() is pkg  # idempotent
    from op import FusedLeakyReLU, conv2d_gradfix, fused_leaky_relu, upfirdn2d
    for sub in ("conv2d_gradfix", "fused_act", "upfirdn2d"):  # `import op.<sub>` works, as in the checkout
        exec(f"import op.{sub}", {})
    assert fused_leaky_relu is rosinality.fused_leaky_relu and FusedLeakyReLU is rosinality.FusedLeakyReLU
    assert upfirdn2d is rosinality.upfirdn2d and conv2d_gradfix is rosinality.conv2d_gradfix
    assert sys.modules["op.fused_act"].fused_leaky_relu is rosinality.fused_leaky_relu
    assert sys.modules["op.upfirdn2d"].upfirdn2d is rosinality.upfirdn2d
    assert sys.modules["op.conv2d_gradfix"] is rosinality.conv2d_gradfix
    with conv2d_gradfix.no_weight_gradients():  # as train.py's d_r1_loss uses it
        pass
    rosinality.uninstall()
    assert not any(k in sys.modules for k in OP_KEYS)


def test_uninstall_restores_what_was_there(clean_op, monkeypatch):
    before = types.ModuleType("op")
    monkeypatch.setitem(sys.modules, "op", before)
    rosinality.install()
    assert sys.modules["op"] is not before
    rosinality.uninstall()
    assert sys.modules["op"] is before and "op.fused_act" not in sys.modules


def test_checkout_code_imports_the_drop_in_not_its_op_dir(clean_op, tmp_path, monkeypatch):
    # a checkout's layout: op/ that must not be imported (it would JIT-compile CUDA), and a
    # model file importing from it as rosinality's model.py, swagan.py and train.py do
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "__init__.py").write_text("raise ImportError('the checkout op/ was imported')\n")
    (tmp_path / "ckpt_model.py").write_text(
        "from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d, conv2d_gradfix\n"
        "from op.upfirdn2d import upfirdn2d as up2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ckpt_model", raising=False)
    rosinality.install()
    import ckpt_model
    assert ckpt_model.upfirdn2d is ckpt_model.up2 is rosinality.upfirdn2d
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    k = rosinality.make_kernel([1, 3, 3, 1]).double()
    assert ckpt_model.upfirdn2d(x, k, up=2, pad=(2, 1)).shape == (1, 2, 8, 8)


def test_install_under_a_vendored_name(clean_op, tmp_path, monkeypatch):
    # code that vendors rosinality's model imports op from its own package
    pkg = tmp_path / "vendor_pkg"
    (pkg / "op").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "op" / "__init__.py").write_text("raise ImportError('the vendored op/ was imported')\n")
    (pkg / "model.py").write_text("from .op import fused_leaky_relu, upfirdn2d\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for key in [k for k in sys.modules if k == "vendor_pkg" or k.startswith("vendor_pkg.")]:
        monkeypatch.delitem(sys.modules, key)
    rosinality.install("vendor_pkg.op")
    from vendor_pkg import model
    assert model.fused_leaky_relu is rosinality.fused_leaky_relu
    rosinality.uninstall()
    assert "vendor_pkg.op" not in sys.modules


@pytest.mark.parametrize("name, kind", [(None, TypeError), (b"op", TypeError), ("", ValueError),
                                        ("op/x", ValueError), ("1op", ValueError), ("op.", ValueError)])
def test_install_refuses_a_bad_name(clean_op, name, kind):
    with pytest.raises(kind, match="install: name must be"):
        rosinality.install(name)
    assert "op" not in sys.modules


CHECKOUT = os.environ.get("ALAE_FAST_ROSINALITY_CHECKOUT", "")


def _load(name, path, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)
    spec.loader.exec_module(mod)
    return mod


def _models(checkout, monkeypatch):
    """The checkout's model.py twice: on its own op/ (whose CPU branches are pure PyTorch; the
    CUDA build its import starts is stubbed out) and on install()."""
    import torch.utils.cpp_extension as cpp
    monkeypatch.syspath_prepend(checkout)
    with monkeypatch.context() as m:
        m.setattr(cpp, "load", lambda *a, **k: None)
        spec = importlib.util.spec_from_file_location("op", os.path.join(checkout, "op", "__init__.py"),
                                                      submodule_search_locations=[os.path.join(checkout, "op")])
        op = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "op", op)
        spec.loader.exec_module(op)
        import op.conv2d_gradfix  # noqa: F401  (train.py's)
    native = _load("rosinality_model_native", os.path.join(checkout, "model.py"), monkeypatch)
    for key in [k for k in sys.modules if k == "op" or k.startswith("op.")]:
        monkeypatch.delitem(sys.modules, key)
    rosinality.install()
    ours = _load("rosinality_model_alae_fast", os.path.join(checkout, "model.py"), monkeypatch)
    return native, ours, op


def _train_losses(checkout, conv2d_gradfix):
    """train.py's loss functions, read from the checkout (train.py itself needs torchvision and
    lmdb), with its conv2d_gradfix global bound to the given module."""
    path = os.path.join(checkout, "train.py")
    tree = ast.parse(open(path).read())
    keep = {"d_logistic_loss", "d_r1_loss", "g_nonsaturating_loss", "g_path_regularize"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in keep]
    ns = dict(math=math, torch=torch, autograd=torch.autograd, F=F, conv2d_gradfix=conv2d_gradfix)
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    assert keep <= ns.keys(), f"train.py lacks {keep - ns.keys()}"
    return types.SimpleNamespace(**{k: ns[k] for k in keep})


def _train_pass(g, d, losses, dt):
    out = {}
    random.seed(1)
    torch.manual_seed(1)
    mean_latent = g.style(torch.randn(64, g.style_dim, dtype=dt)).mean(0, keepdim=True)
    z = [torch.randn(2, g.style_dim, dtype=dt) for _ in range(2)]
    noise = [torch.randn(getattr(g.noises, f"noise_{i}").shape, dtype=dt) for i in range(g.num_layers)]
    out["img"], _ = g(z, truncation=0.7, truncation_latent=mean_latent, noise=noise)  # style mixing
    real = torch.randn(2, 3, g.size, g.size, dtype=dt, requires_grad=True)
    fake, _ = g(z, randomize_noise=False)
    real_pred = d(real)
    r1 = losses.d_r1_loss(real_pred, real)
    loss = losses.d_logistic_loss(real_pred, d(fake.detach())) + 5 * r1
    out.update({f"D.{k}": v for k, v in zip(dict(d.named_parameters()), torch.autograd.grad(loss, list(d.parameters())))})
    fake, latents = g(z, return_latents=True, randomize_noise=False)
    path, _, _ = losses.g_path_regularize(fake, latents, torch.zeros((), dtype=dt))
    loss = losses.g_nonsaturating_loss(d(fake)) + 2 * path
    params = dict(g.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    out.update({f"G.{k}": v for k, v in zip(params, grads) if v is not None})
    out.update(r1=r1, path=path)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not CHECKOUT, reason="set ALAE_FAST_ROSINALITY_CHECKOUT to a rosinality/stylegan2-pytorch checkout")
def test_rosinality_model_and_losses_match_its_own_cpu_ops(clean_op, monkeypatch):
    native, ours, op = _models(CHECKOUT, monkeypatch)
    assert ours.upfirdn2d is rosinality.upfirdn2d and native.upfirdn2d is not rosinality.upfirdn2d
    dt = torch.float64
    torch.manual_seed(0)
    g_ref, d_ref = native.Generator(32, 64, 2, channel_multiplier=1).to(dt), native.Discriminator(32).to(dt)
    g, d = ours.Generator(32, 64, 2, channel_multiplier=1).to(dt), ours.Discriminator(32).to(dt)
    g.load_state_dict(g_ref.state_dict())
    d.load_state_dict(d_ref.state_dict())
    ref = _train_pass(g_ref, d_ref, _train_losses(CHECKOUT, op.conv2d_gradfix), dt)
    got = _train_pass(g, d, _train_losses(CHECKOUT, rosinality.conv2d_gradfix), dt)
    assert got.keys() == ref.keys()
    for key in ref:
        scale = ref[key].abs().max().item()
        torch.testing.assert_close(got[key], ref[key], rtol=1e-9, atol=1e-11 * max(scale, 1e-30),
                                   msg=lambda m, key=key: f"{key}: {m}")
