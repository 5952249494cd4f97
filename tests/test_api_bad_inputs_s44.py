"""Wrong input to the public API, as a demanding user gives it: the ops on odd layouts against
their references (random inputs, float64 gradients), the ops' kernel bounds refused alike by the
reference and in the name of the op called, the models' tensors on another device, arguments of
the wrong type, empty batches, and ``alae_fast.edit``'s amounts and directions that lost a
gradient or an imaginary part without a word.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import alae_fast.ops as O
from alae_fast.edit import direction_coefficients, edit_w
from alae_fast.edit.apply import direction_problem
from alae_fast.inference.projection import project_latents
from alae_fast.models import MLPALAE, MLPALAEConfig, from_preset

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=D):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _strided(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values in a view that is neither contiguous nor channels_last: every other element
    of the last dimension of a tensor twice as wide."""
    big = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    big[..., ::2] = t
    out = big[..., ::2]
    assert not out.is_contiguous()  # (equal to t, NaN included: the copy above)
    assert t.ndim != 4 or not out.is_contiguous(memory_format=torch.channels_last)
    return out


def _cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def _vec(t: torch.Tensor) -> torch.Tensor:
    """A 1-D ``t`` as a strided view (every other element of a longer vector)."""
    big = torch.zeros(2 * t.shape[0], dtype=t.dtype)
    big[::2] = t
    return big[::2]


# --- the ops on odd layouts: kernel == reference, and float64 gradients -------------------------------

def _op_cases():
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=D)
    f2 = _randn(3, 2, seed=9)
    w = _randn(4, 3, 3, 3, seed=5)
    return {
        "bias_act": (lambda x, v, s: O.bias_act(x, v, act="swish", clamp=1.5),
                     lambda x, v, s: O.bias_act_ref(x, v, act="swish", clamp=1.5)),
        "upfirdn2d": (lambda x, v, s: O.upfirdn2d(x, f2, up=2, down=1, padding=[1, 2, 0, 1]),
                      lambda x, v, s: O.upfirdn2d_ref(x, f2, up=2, down=1, padding=[1, 2, 0, 1])),
        "upfirdn2d_down": (lambda x, v, s: O.upfirdn2d(x, f, down=2, padding=2),
                           lambda x, v, s: O.upfirdn2d_ref(x, f, down=2, padding=2)),
        "adain": (lambda x, v, s: O.adain(x, s, s.flip(1), bias=v, act="elu"),
                  lambda x, v, s: O.adain_ref(x, s, s.flip(1), bias=v, act="elu")),
        "instance_norm_stats": (lambda x, v, s: O.instance_norm_stats(x, bias=v, act="lrelu"),
                                lambda x, v, s: O.instance_norm_stats_ref(x, bias=v, act="lrelu")),
        "filtered_lrelu": (lambda x, v, s: O.filtered_lrelu(x, f, f, v, up=2, down=2, padding=3, clamp=0.9),
                           lambda x, v, s: O.filtered_lrelu_ref(x, f, f, v, up=2, down=2, padding=3, clamp=0.9)),
        "modulated_conv2d": (lambda x, v, s: O.modulated_conv2d(x, w, s, padding=1),
                             lambda x, v, s: O.modulated_conv2d_ref(x, w, s, padding=1)),
        "modulated_conv2d_unfused": (lambda x, v, s: O.modulated_conv2d(x, w, s, padding=1, fused_modconv=False),
                                     lambda x, v, s: O.modulated_conv2d_ref(x, w, s, padding=1, fused_modconv=False)),
    }


OPS = _op_cases()


def _close(a, b):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _close(u, v)
        return
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_odd_layouts_match_the_reference_on_random_input(name, layout):
    fast, ref = OPS[name]
    x, v, s = _randn(2, 3, 5, 6, seed=1), _randn(3, seed=2), _randn(2, 3, seed=3)
    odd = _cl(x) if layout == "channels_last" else _strided(x)
    want = ref(x, v, s)
    _close(fast(odd, _vec(v), _strided(s)), want)
    _close(fast(x, v, s), want)
    # NaN and inf in x reach the output as the reference's do, whatever the layout
    x_bad = x.clone()
    x_bad[1, 2, 3, 4], x_bad[0, 0, 1, 1] = float("nan"), float("inf")
    odd_bad = _cl(x_bad) if layout == "channels_last" else _strided(x_bad)
    _close(fast(odd_bad, v, s), ref(x_bad, v, s))


@pytest.mark.parametrize("name", sorted(OPS))
def test_odd_layout_gradients_in_float64(name):
    fast, _ = OPS[name]
    x = _strided(_randn(1, 3, 4, 5, seed=11)).requires_grad_(True)
    v = _vec(_randn(3, seed=12)).requires_grad_(True)
    s = _strided(_randn(1, 3, seed=13)).requires_grad_(True)
    if name.startswith("upfirdn2d") or name == "filtered_lrelu":
        inputs = (x, v)
    else:
        inputs = (x, v, s)

    def fn(*args):
        out = fast(*args, s) if len(args) == 2 else fast(*args)
        return out if not isinstance(out, tuple) else out[0] + out[1].sum() + out[2].sum()

    assert gradcheck(fn, inputs, atol=1e-6, rtol=1e-4)


def test_modulate_weight_on_odd_layouts_matches_its_reference():
    w, s = _randn(4, 3, 3, 3, seed=21), _randn(2, 3, seed=22)
    want = O.modulate_weight(w, s, impl="ref")
    for ww in (_cl(w), w.transpose(0, 1).contiguous().transpose(0, 1)):
        _close(O.modulate_weight(ww, _strided(s)), want)
    w_, s_ = _cl(w).requires_grad_(True), _strided(s).requires_grad_(True)
    assert gradcheck(lambda a, b: O.modulate_weight(a, b)[0], (w_, s_), atol=1e-6, rtol=1e-4)


# --- the kernels' bounds, refused by every path in the name of the op called ---------------------------

@pytest.mark.parametrize("call, match", [
    (lambda x: O.upfirdn2d(x, None, up=[2 ** 17, 1], down=[2 ** 17, 1]), r"^upfirdn2d: up must be >= 1 and <= 65536"),
    (lambda x: O.upfirdn2d(x, None, up=[2 ** 17, 1], down=[2 ** 17, 1], impl="ref"),
     r"^upfirdn2d: up must be >= 1 and <= 65536"),
    (lambda x: O.upfirdn2d_ref(x, None, up=[2 ** 17, 1], down=[2 ** 17, 1]),
     r"^upfirdn2d_ref: up must be >= 1 and <= 65536"),
    (lambda x: O.upsample2d(x, None, up=[2 ** 17, 1]), r"^upsample2d: up must be >= 1 and <= 65536"),
    (lambda x: O.downsample2d(x, None, down=[1, 2 ** 17]), r"^downsample2d: down must be >= 1 and <= 65536"),
    (lambda x: O.upfirdn2d(x, None, padding=[0, 0, -2 ** 31, 2 ** 31], impl="ref"),
     r"^upfirdn2d: padding must be within \[-1073741824, 1073741824\]"),
    (lambda x: O.filter2d(x, None, padding=[0, 0, -2 ** 31, 2 ** 31]),
     r"^filter2d: padding must be within \[-1073741824, 1073741824\]"),
])
def test_upfirdn2d_bounds_name_the_op_called_and_bind_the_reference_too(call, match):
    with pytest.raises(ValueError, match=match):
        call(_randn(1, 1, 2, 2, dtype=torch.float32))


def test_upfirdn2d_at_its_bounds_still_runs():
    x = _randn(1, 1, 2, 2)
    for impl in ("auto", "ref"):
        torch.testing.assert_close(O.upfirdn2d(x, None, up=[2 ** 16, 1], down=[2 ** 16, 1], impl=impl), x)


# --- the models: devices, types, empty batches ----------------------------------------------------------

def _mlp():
    torch.manual_seed(1)
    return MLPALAE(MLPALAEConfig(encoder_hidden=(16,), generator_hidden=(16,), latent_size=8, image_size=8)).eval()


def _style():
    torch.manual_seed(1)
    return from_preset("digits-32").eval()


@pytest.fixture(scope="module", params=["mlp", "style"])
def model(request):
    return _mlp() if request.param == "mlp" else _style()


def _images(m, n=2):
    shape = m.image_shape if isinstance(m, MLPALAE) else (m.config.channels,) + (m.config.resolution_at(m.max_lod),) * 2
    return torch.rand(n, *shape, generator=_gen(7)) * 2 - 1


@pytest.mark.parametrize("call, op, name", [
    (lambda m, x, w: m.encode(x.to("meta")), "encode", "x"),
    (lambda m, x, w: m.encode(x.to("meta"), native=True), "encode", "x"),
    (lambda m, x, w: m.reconstruct(x.to("meta")), "encode", "x"),
    (lambda m, x, w: m.decode(w.to("meta")), "decode", "w"),
    (lambda m, x, w: m.generate(w.to("meta")), "generate", "z"),
    (lambda m, x, w: m.truncate(w.to("meta"), 0.5), "truncate", "ws"),
])
def test_a_tensor_on_another_device_is_named_by_the_method(model, call, op, name):
    # before: "bias_act: b must be on x's device meta; got cpu", naming an op's argument the user never gave
    with pytest.raises(ValueError, match=rf"^{op}: {name} must be on the model's device cpu; got meta "):
        call(model, _images(model), torch.randn(2, model.latent_size))


def test_the_device_check_leaves_a_whole_meta_model_alone():
    with torch.device("meta"):
        m = from_preset("digits-32")
    w = torch.zeros(1, m.latent_size, device="meta")
    with torch.no_grad():
        assert m.encode(m.decode(w, 0, noise="zero"), 0).shape == (1, m.latent_size)


@pytest.mark.parametrize("call, match", [
    (lambda m, x, w: m.encode(x, lod=1.0), r"^encode: lod must be None or an int >= 0; got 1\.0 of type float$"),
    (lambda m, x, w: m.encode(x, lod="0"), r"^encode: lod must be None or an int >= 0; got '0' of type str$"),
    (lambda m, x, w: m.encode(x, lod=True), r"^encode: lod must be None or an int >= 0; got True of type bool$"),
    (lambda m, x, w: m.encode(x, blend="1"), r"^encode: blend must be a finite number; got '1' of type str$"),
    (lambda m, x, w: m.decode(w, blend=None), r"^decode: blend must be a finite number; got None of type NoneType$"),
    (lambda m, x, w: m.decode(w, blend=torch.tensor(0.5)), r"^decode: blend must be a finite number; got tensor"),
    (lambda m, x, w: m.decode(w, noise=None), r"^decode: noise must be one of .*; got None of type NoneType$"),
    (lambda m, x, w: m.decode(w, noise=torch.zeros(2, 1, 4, 4)),
     r"^decode: noise must be one of .*; got a tensor of shape \(2, 1, 4, 4\)$"),
    (lambda m, x, w: m.generate(w, mixing_prob="0.5"), r"^generate: mixing_prob must be a finite number; got '0\.5'"),
    (lambda m, x, w: m.truncate(w, 0.5, cutoff=1.0), r"^truncate: cutoff must be None or an int >= 0; got 1\.0 of type float$"),
    (lambda m, x, w: m.truncate(w.long(), 0.5), r"^truncate: ws must be a float tensor"),
    (lambda m, x, w: m.update_w_avg(w, beta="0.9"), r"^update_w_avg: beta must be a finite number; got '0\.9'"),
])
def test_arguments_of_the_wrong_type_raise_type_error_naming_them(model, call, match):
    # as alae_fast.load(...)'s methods do (before: ValueError, and a noise tensor printed in full)
    with pytest.raises(TypeError, match=match):
        call(model, _images(model), torch.randn(2, model.latent_size))


@pytest.mark.parametrize("call, match", [
    (lambda m, x, w: m.encode(x, lod=-1), r"^encode: lod must be None or an int >= 0; got -1$"),
    (lambda m, x, w: m.decode(w, blend=float("nan")), r"^decode: blend must be a finite number; got nan$"),
    (lambda m, x, w: m.decode(w, noise="Random"), r"^decode: noise must be one of .*; got 'Random'$"),
    (lambda m, x, w: m.truncate(w, 0.5, cutoff=-3), r"^truncate: cutoff must be None or an int >= 0; got -3$"),
    (lambda m, x, w: m.truncate(torch.randn(2, 3), 0.5), r"^truncate: ws must have shape \[N, \d+\] or"),
    (lambda m, x, w: m.update_w_avg(w, beta=2.0), r"^update_w_avg: beta must be None or a number in \[0, 1\]; got 2\.0$"),
    (lambda m, x, w: m.update_w_avg(w, beta=-0.5), r"^update_w_avg: beta must be None or a number in \[0, 1\]"),
])
def test_bad_values_raise_value_error_naming_them(model, call, match):
    before = model.w_avg.clone()
    with pytest.raises(ValueError, match=match):
        call(model, _images(model), torch.randn(2, model.latent_size))
    assert torch.equal(model.w_avg, before)  # a refused beta moved nothing


def test_numpy_ints_are_taken_for_lod_and_cutoffs(model):
    x, z = _images(model), torch.randn(2, model.latent_size, generator=_gen(3))
    lod = getattr(model, "max_lod", 0)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x, lod=np.int64(lod)), model.encode(x, lod=lod), rtol=0, atol=0)
        torch.testing.assert_close(model.generate(z, np.int64(lod), truncation_psi=0.5, truncation_cutoff=np.int64(1),
                                                  noise="zero"),
                                   model.generate(z, lod, truncation_psi=0.5, truncation_cutoff=1, noise="zero"),
                                   rtol=0, atol=0)
    ws = torch.randn(3, 4, model.latent_size)
    torch.testing.assert_close(model.truncate(ws, 0.5, np.int64(2)), model.truncate(ws, 0.5, 2), rtol=0, atol=0)


def test_mlp_encode_takes_an_empty_batch():
    m = _mlp()
    with torch.no_grad():
        assert m.encode(torch.zeros(0, 1, 8, 8)).shape == (0, 8)
        assert m.encode(torch.zeros(0, 64)).shape == (0, 8)
        assert m.reconstruct(torch.zeros(0, 1, 8, 8)).shape == (0, 1, 8, 8)


def test_style_alae_takes_an_empty_batch_at_every_level():
    # before: "cannot reshape tensor of 0 elements into shape [0, 8, -1]" in the 1x1 FromRGB/ToRGB
    # conv's matmul path (alae_fast/nn/equalized.py), for decode, generate and reconstruct
    m = _style()
    with torch.no_grad():
        for lod in range(m.max_lod + 1):
            r = m.config.resolution_at(lod)
            c = m.config.channels
            assert m.decode(torch.randn(0, m.latent_size), lod, 0.5, noise="zero").shape == (0, c, r, r)
            assert m.generate(torch.randn(0, m.latent_size), lod, noise="zero").shape == (0, c, r, r)
            assert m.encode(torch.zeros(0, c, r, r), lod, 0.5).shape == (0, m.latent_size)
            assert m.reconstruct(torch.zeros(0, c, r, r), lod, noise="zero").shape == (0, c, r, r)


def test_an_integer_noise_map_is_refused_by_name():
    m = _style()
    w = torch.randn(1, m.latent_size)
    noise = [torch.zeros(1, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2)) for k in range(m.num_ws)]
    noise[3] = noise[3].long()
    with pytest.raises(TypeError, match=r"^decode: noise\[3\] must have a float dtype; got torch\.int64$"):
        m.decode(w, noise=noise)
    noise[3] = noise[3].float()
    with torch.no_grad():
        torch.testing.assert_close(m.decode(w, noise=noise), m.decode(w, noise="zero"))


# --- projection: shapes of what comes back, and of what goes in -----------------------------------------

@pytest.mark.parametrize("space", ["w", "w+"])
def test_projecting_no_images_gives_the_spaces_shape(model, space):
    x = _images(model, 1)[:0]
    w = project_latents(model, x, steps=1, space=space)
    one = project_latents(model, _images(model, 1), steps=0, space=space)
    assert w.shape == (0, *one.shape[1:]) and w.dtype == one.dtype


def test_projecting_a_0d_tensor_is_named():
    m = _mlp()
    with pytest.raises(ValueError, match=r"^project_latents: x must be images \[N, C, r, r\]; got a 0-d tensor$"):
        project_latents(m, torch.tensor(0.5), steps=1)


# --- editing: nothing dropped without a word ------------------------------------------------------------

def _edit_inputs():
    w = _randn(3, 5, seed=31)
    return w, {"a": _randn(5, seed=32), "b": _randn(5, seed=33)}, _randn(5, seed=34)


@pytest.mark.parametrize("mode", ["offset", "absolute"])
def test_a_0d_amount_that_requires_grad_gets_its_gradient(mode):
    w, d, avg = _edit_inputs()
    a = torch.tensor(2.5, dtype=D, requires_grad=True)
    ws = edit_w(w, d, {"a": a, "b": -1.0}, avg, 4, edit_layers=2, mode=mode)
    torch.testing.assert_close(ws.detach(), edit_w(w, d, {"a": 2.5, "b": -1.0}, avg, 4, edit_layers=2, mode=mode),
                               rtol=0, atol=0)
    assert ws.requires_grad  # before: .item() took the number and dropped the gradient
    assert gradcheck(lambda a: edit_w(w, d, {"a": a}, avg, 4, edit_layers=2, mode=mode), (a,))
    (g,) = torch.autograd.grad(ws.sum(), a)
    # d(sum ws)/da: d's entries, in each of the 3 images' 2 edited style inputs
    torch.testing.assert_close(g, d["a"].sum() * 3 * 2)
    with pytest.raises(ValueError, match=r"^amounts\['a'\]: .* out of range"):
        edit_w(w, d, {"a": torch.tensor(1e7, dtype=D, requires_grad=True)}, avg, 4)


@pytest.mark.parametrize("bad, match", [
    (torch.randn(5, dtype=torch.complex64), r"has complex values \(dtype complex64\); expected real numbers"),
    (np.ones(5, dtype=np.complex128), r"has complex values \(dtype complex128\); expected real numbers"),
    (torch.ones(5, dtype=torch.bool), r"has bool values; expected numbers"),
])
def test_complex_and_bool_directions_are_refused(bad, match):
    # before: the imaginary part was dropped (torch only warned) and bools taken as 0 and 1
    w, d, avg = _edit_inputs()
    for call in (lambda: direction_coefficients(w, {"c": bad}, avg),
                 lambda: edit_w(w, {"c": bad}, {"c": 1.0}, avg, 2)):
        with pytest.raises(ValueError, match=r"^directions\['c'\]: " + match):
            call()
    assert direction_problem(bad) is not None


def test_a_direction_that_is_not_numbers_is_named():
    w, d, avg = _edit_inputs()
    for bad in ("abcde", [None] * 5):
        with pytest.raises(TypeError, match=r"^directions\['c'\]: expected a vector of 5 numbers"):
            direction_coefficients(w, {"c": bad}, avg)


def test_complex_amounts_are_refused_and_unsigned_ones_taken():
    w, d, avg = _edit_inputs()
    with pytest.raises(ValueError, match=r"^amounts\['a'\]: expected real numbers; got a tensor of torch\.complex64$"):
        edit_w(w, d, {"a": torch.ones(3, dtype=torch.complex64)}, avg, 2)
    got = edit_w(w, d, {"a": np.array([1, 2, 3], dtype=np.uint16)}, avg, 2)
    torch.testing.assert_close(got, edit_w(w, d, {"a": torch.tensor([1.0, 2.0, 3.0], dtype=D)}, avg, 2),
                               rtol=0, atol=0)
