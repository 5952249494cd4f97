"""compat.nvlabs as the module NVlabs' code imports: ``install()`` registers
``torch_utils.ops.*``; the names NVlabs' layers and ``conv2d_resample.py`` read exist with
NVlabs' meaning; the call patterns of StyleGAN2-ADA's layers and augmentation pipeline
(written here from their documented semantics) run and give the defined results. With an
NVlabs checkout named by ALAE_FAST_NVLABS_CHECKOUTS (os.pathsep-separated), NVlabs' own
networks.py / networks_stylegan2.py, augment.py and (stylegan3) networks_stylegan3.py run on
the drop-in and must match NVlabs' reference ops."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from alae_fast.compat import nvlabs


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.fixture
def installed(monkeypatch):
    # Hide any torch_utils the environment has, so the stand-in packages are tested.
    for key in [k for k in sys.modules if k == "torch_utils" or k.startswith("torch_utils.")]:
        monkeypatch.delitem(sys.modules, key)
    ops = nvlabs.install()
    yield ops
    nvlabs.uninstall()
    assert "torch_utils.ops.bias_act" not in sys.modules


def test_install_registers_every_module(installed):
    from torch_utils.ops import bias_act, conv2d_gradfix, conv2d_resample, fma, grid_sample_gradfix, upfirdn2d
    import torch_utils.ops.upfirdn2d as up_by_path
    assert up_by_path is upfirdn2d is nvlabs.torch_utils_ops.upfirdn2d
    for mod, names in ((bias_act, ["bias_act", "activation_funcs"]),
                       (upfirdn2d, ["upfirdn2d", "setup_filter", "filter2d", "upsample2d", "downsample2d",
                                    "_parse_scaling", "_parse_padding", "_get_filter_size"]),
                       (conv2d_resample, ["conv2d_resample"]),
                       (conv2d_gradfix, ["conv2d", "conv_transpose2d", "no_weight_gradients", "enabled"]),
                       (grid_sample_gradfix, ["grid_sample", "enabled"]), (fma, ["fma"])):
        for name in names:
            assert hasattr(mod, name), f"{mod.__name__} lacks {name}"
    assert nvlabs.install() is installed  # idempotent


def test_install_keeps_a_real_torch_utils_package(tmp_path, monkeypatch):
    # A checkout's own torch_utils (misc, persistence, ...) stays; only the ops are replaced.
    pkg = tmp_path / "torch_utils"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "misc.py").write_text("MARK = 'checkout misc'\n")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "ops" / "bias_act.py").write_text("raise ImportError('the checkout op must not be imported')\n")
    for key in [k for k in sys.modules if k == "torch_utils" or k.startswith("torch_utils.")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        nvlabs.install()
        from torch_utils import misc
        from torch_utils.ops import bias_act
        assert misc.MARK == "checkout misc"
        assert bias_act is nvlabs.torch_utils_ops.bias_act
        assert Path(sys.modules["torch_utils"].__file__).parent == pkg
    finally:
        nvlabs.uninstall()
    assert "torch_utils.ops.bias_act" not in sys.modules


def test_checkout_put_on_sys_path_after_install(tmp_path, monkeypatch):
    # A notebook calls install() first and adds the checkout later: the stand-in must then
    # serve the checkout's torch_utils modules, and still alae_fast's ops.
    pkg = tmp_path / "torch_utils"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("# licence only, as in NVlabs' repositories\n")
    (pkg / "misc.py").write_text("def where():\n    return 'checkout misc'\n")
    (pkg / "persistence.py").write_text("from . import misc\n")
    (tmp_path / "dnnlib").mkdir()
    (tmp_path / "dnnlib" / "__init__.py").write_text("")
    for key in [k for k in sys.modules if k.split(".")[0] in ("torch_utils", "dnnlib")]:
        monkeypatch.delitem(sys.modules, key)
    try:
        nvlabs.install()
        monkeypatch.syspath_prepend(str(tmp_path))
        import torch_utils.misc
        from torch_utils import misc, persistence
        from torch_utils.ops import bias_act
        import dnnlib
        assert misc is torch_utils.misc and misc.where() == "checkout misc"
        assert Path(misc.__file__) == pkg / "misc.py" and Path(persistence.__file__) == pkg / "persistence.py"
        assert persistence.misc is misc
        assert Path(dnnlib.__file__) == tmp_path / "dnnlib" / "__init__.py"
        assert bias_act is nvlabs.torch_utils_ops.bias_act
    finally:
        nvlabs.uninstall()
        sys.modules.pop("dnnlib", None)  # monkeypatch puts back only what was there before
    assert not [k for k in sys.modules if k.split(".")[0] == "torch_utils"]


def test_a_second_checkout_does_not_mix_with_the_first(tmp_path, monkeypatch):
    # the stand-in's path is looked up until a checkout serves it, then kept, as a real package's:
    # a second checkout put first on the path later had served the modules imported after it
    for name in ("a", "b"):
        pkg = tmp_path / name / "torch_utils"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "misc.py").write_text(f"WHO = {name!r}\n")
        (pkg / "persistence.py").write_text(f"WHO = {name!r}\nfrom . import misc\n")
    for key in [k for k in sys.modules if k.split(".")[0] == "torch_utils"]:
        monkeypatch.delitem(sys.modules, key)
    try:
        nvlabs.install()
        monkeypatch.syspath_prepend(str(tmp_path / "a"))
        from torch_utils import misc
        monkeypatch.syspath_prepend(str(tmp_path / "b"))
        from torch_utils import persistence
        assert (misc.WHO, persistence.WHO) == ("a", "a") and persistence.misc is misc
    finally:
        nvlabs.uninstall()
    # a new install() looks again
    try:
        nvlabs.install()
        from torch_utils import misc
        assert misc.WHO == "b"
    finally:
        nvlabs.uninstall()


def test_stand_in_without_checkout_says_where_torch_utils_comes_from(installed):
    import torch_utils
    with pytest.raises(ImportError, match=r"stand-in .* checkout whose root is on sys.path") as info:
        from torch_utils import misc  # noqa: F401
    assert "alae_fast.compat.nvlabs" in str(info.value) and "torch_utils.misc" in str(info.value)
    # Only the import says so: attribute probes (pickle.whichmodule scans every module) stay plain.
    assert getattr(torch_utils, "misc", None) is None and not hasattr(torch_utils.ops, "misc")


def test_activation_funcs_as_nvlabs_layers_read_them(installed):
    from torch_utils.ops import bias_act
    af = bias_act.activation_funcs
    assert set(af) == {"linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"}
    for name in ("relu", "lrelu", "swish"):
        assert af[name].def_gain == pytest.approx(math.sqrt(2))
    for name in ("linear", "tanh", "sigmoid", "elu", "selu", "softplus"):
        assert af[name].def_gain == 1
    assert af["lrelu"].def_alpha == pytest.approx(0.2) and af["lrelu"]["def_alpha"] == af["lrelu"].def_alpha
    assert all(af[k].def_alpha == 0 for k in af if k != "lrelu")
    assert not af["lrelu"].has_2nd_grad and af["tanh"].has_2nd_grad
    x = _rand(3, 4)
    torch.testing.assert_close(af["lrelu"].func(x, alpha=0.1), F.leaky_relu(x, 0.1))
    torch.testing.assert_close(af["swish"].func(x, alpha=0), x * torch.sigmoid(x))
    torch.testing.assert_close(af["elu"].func(x, alpha=0.3), F.elu(x))  # NVlabs' elu has no alpha
    # NVlabs' elu ignores alpha in bias_act too
    torch.testing.assert_close(bias_act.bias_act(x, act="elu", alpha=0.3), F.elu(x))


def test_upfirdn2d_parsers_as_conv2d_resample_imports_them(installed):
    from torch_utils.ops.upfirdn2d import _get_filter_size, _parse_padding, _parse_scaling
    assert _parse_padding(2) == (2, 2, 2, 2)
    assert _parse_padding([1, 3]) == (1, 1, 3, 3)
    assert _parse_padding([1, 2, 3, 4]) == (1, 2, 3, 4)
    assert _parse_scaling(2) == (2, 2) and _parse_scaling([1, 3]) == (1, 3)
    assert _get_filter_size(None) == (1, 1)
    assert _get_filter_size(torch.ones(3, 5)) == (5, 3)
    assert _get_filter_size(torch.ones(4)) == (4, 4)
    for bad in ([1, 2, 3], "1"):
        with pytest.raises((ValueError, TypeError), match="padding"):
            _parse_padding(bad)
    with pytest.raises(ValueError, match="f must"):
        _get_filter_size(torch.ones(2, 2, 2))


def test_layer_call_patterns(installed):
    """StyleGAN2-ADA's FullyConnectedLayer, Conv2dLayer, SynthesisLayer and ToRGBLayer call
    patterns against direct float64 computations."""
    from torch_utils.ops import bias_act, conv2d_resample, fma, upfirdn2d
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    # Fully connected with lrelu: bias_act on [N, C] along dim 1 with the default gain.
    x, w, b = _rand(4, 6), _rand(5, 6, seed=1), _rand(5, seed=2)
    y = bias_act.bias_act(x.matmul(w.t()), b, act="lrelu")
    torch.testing.assert_close(y, F.leaky_relu(x @ w.t() + b, 0.2) * math.sqrt(2))
    # Conv layer with down 2 and a clamp scaled by the gain.
    gain = bias_act.activation_funcs["lrelu"].def_gain
    x, w, b = _rand(2, 3, 8, 8, seed=3), _rand(4, 3, 3, 3, seed=4), _rand(4, seed=5)
    y = conv2d_resample.conv2d_resample(x=x, w=w, f=f, down=2, padding=1, flip_weight=True)
    y = bias_act.bias_act(y, b, act="lrelu", gain=gain, clamp=0.5 * gain)
    k = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64)
    f2 = torch.outer(k, k) / 64
    blurred = F.conv2d(F.pad(x, [2, 2, 2, 2]), f2.expand(3, 1, 4, 4), groups=3)
    ref = F.leaky_relu(F.conv2d(blurred, w, stride=2) + b.view(1, -1, 1, 1), 0.2) * gain
    torch.testing.assert_close(y, ref.clamp(-0.5 * gain, 0.5 * gain))
    # Synthesis layer: modulated conv with 2-D [H, W] constant noise, both execution orders.
    x, w, s = _rand(2, 3, 6, 6, seed=6), _rand(4, 3, 3, 3, seed=7), _rand(2, 3, seed=8)
    noise = _rand(6, 6, seed=9)
    wm = w[None] * s[:, None, :, None, None]
    wm = wm * (wm.square().sum([2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    ref = torch.cat([F.conv2d(x[i:i + 1], wm[i], padding=1) for i in range(2)]) + noise
    for fused in (True, False):
        torch.testing.assert_close(nvlabs.modulated_conv2d(x, w, s, noise=noise, padding=1, fused_modconv=fused), ref)
    # [N, 1, H, W] noise (noise_mode='random') and the fma epilogue of the unfused order.
    noise = _rand(2, 1, 6, 6, seed=10)
    torch.testing.assert_close(nvlabs.modulated_conv2d(x, w, s, noise=noise, padding=1),
                               ref - _rand(6, 6, seed=9) + noise)
    a, c = _rand(2, 4, 1, 1, seed=11), _rand(6, 6, seed=12)
    torch.testing.assert_close(fma.fma(ref, a, c), ref * a + c)
    with pytest.raises(ValueError, match="noise must broadcast"):
        nvlabs.modulated_conv2d(x, w, s, noise=_rand(5, 6), padding=1)
    with pytest.raises(ValueError, match="noise must broadcast"):
        nvlabs.modulated_conv2d(x, w, s, noise=_rand(3, 1, 6, 6), padding=1)
    # ToRGB skip: the image upsampled with the same filter.
    img = _rand(2, 3, 4, 4, seed=13)
    up = upfirdn2d.upsample2d(img, f)
    z = img.new_zeros(2, 3, 8, 8)
    z[:, :, ::2, ::2] = img
    torch.testing.assert_close(up, F.conv2d(F.pad(z, [2, 1, 2, 1]), (4 * f2).expand(3, 1, 4, 4), groups=3))


def test_augment_call_patterns(installed):
    """StyleGAN2-ADA's AugmentPipe: geometric upsample/downsample by 2 with a long separable
    filter and a 4-tuple padding, grid_sample, and conv2d_gradfix's grouped conv."""
    from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d
    x = _rand(2, 3, 8, 8, seed=14).requires_grad_(True)
    hz = upfirdn2d.setup_filter(_rand(12, seed=15).float())  # 12 taps: stays 1-D (separable)
    assert hz.ndim == 1
    y = upfirdn2d.upfirdn2d(x=x, f=hz, up=2, padding=[5, 6, 5, 6], gain=4)  # NVlabs pads before warping
    g = F.affine_grid(torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3) * 0.9, y.shape, align_corners=False)
    y = grid_sample_gradfix.grid_sample(y, g)
    torch.testing.assert_close(y, F.grid_sample(upfirdn2d.upfirdn2d(x, hz, up=2, padding=[5, 6, 5, 6], gain=4), g,
                                                mode="bilinear", padding_mode="zeros", align_corners=False))
    y = upfirdn2d.downsample2d(x=y, f=hz, down=2, padding=-6, flip_filter=True)
    w = _rand(3, 1, 1, 5, seed=16)
    with conv2d_gradfix.no_weight_gradients():
        y = conv2d_gradfix.conv2d(input=y, weight=w, padding=[0, 2], groups=3)
    (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (ddx,) = torch.autograd.grad(dx.square().sum(), x)  # augment sits inside R1
    assert torch.isfinite(ddx).all()
    torch.testing.assert_close(conv2d_gradfix.conv_transpose2d(y, _rand(3, 2, 3, 3, seed=17), stride=2, groups=1),
                               F.conv_transpose2d(y, _rand(3, 2, 3, 3, seed=17), stride=2))


CHECKOUTS = [p for p in os.environ.get("ALAE_FAST_NVLABS_CHECKOUTS", "").split(os.pathsep) if p]


@pytest.mark.slow
@pytest.mark.parametrize("checkout", CHECKOUTS or [pytest.param(None, marks=pytest.mark.skip(
    reason="set ALAE_FAST_NVLABS_CHECKOUTS to NVlabs stylegan2-ada-pytorch / stylegan3 checkouts"))])
def test_nvlabs_networks_and_augment_run_unchanged(checkout, tmp_path):
    script = Path(__file__).with_name("nvlabs_networks_check.py")
    ref, ours = tmp_path / "nvlabs.pt", tmp_path / "alae_fast.pt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for args in (["nvlabs", str(ref)], ["alae_fast", str(ours), str(ref)]):
        proc = subprocess.run([sys.executable, str(script), checkout, *args], capture_output=True, text=True, env=env,
                              timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_init_and_filtered_lrelu_parsers_as_training_loops_call_them(installed, monkeypatch):
    # StyleGAN3-derived training loops call each module's _init() before the first step, and
    # import filtered_lrelu's own padding / filter-size parsers.
    from torch_utils.ops import bias_act, filtered_lrelu, upfirdn2d

    import alae_fast._lib as lib
    for module in (bias_act, upfirdn2d, filtered_lrelu):
        assert module._init() is lib.loaded()
    monkeypatch.setenv("ALAE_FAST_IMPL", "ref")  # the ops then run their references: no kernel
    assert not bias_act._init() and not filtered_lrelu._init()
    assert filtered_lrelu._parse_padding([1, 2]) == (1, 1, 2, 2)
    assert filtered_lrelu._get_filter_size(torch.ones(6)) == (6, 6)
