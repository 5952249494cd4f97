"""StyleGAN3's filtered leaky ReLU: ``filtered_lrelu``.

Per (n, c) plane, following NVlabs stylegan3 ``torch_utils/ops/filtered_lrelu.py``
(Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021):

1. add the bias ``b[c]``;
2. upsample: ``upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)``;
3. leaky ReLU with ``slope``, times ``gain``, clamped to ``[-clamp, clamp]`` (after the gain);
4. downsample: ``upfirdn2d(x, fd, down=down)``.

Output size per axis: ``(in*up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down``.

The kernel runs the four steps plane by plane in per-thread buffers, so the upsampled
intermediate is never a full-size tensor (each thread holds one upsampled plane in the
computation dtype: for one very large plane, e.g. float16 at up 2, that is several times the
input's bytes), and it saves for the backward only which branch of
the activation each upsampled element took (2 bits, vs 32 for a float32 copy). Derivation of
the gradients, with U and D the linear steps 2 and 4 and m = act'(U(x + b)) (gain, gain*slope,
or 0 where the clamp cut):

    y  = D(act(U(x + b)))
    dx = U^T(m * D^T(dy)),  db[c] = sum over n, h, w of dx         (filtered_lrelu_grad)
    m is piecewise constant in x, so dx is linear in dy and its x-derivative is 0 a.e.:
    d(dx)/d(dy) applied to (ddx, ddb) = D(m * U(ddx + ddb[c]))     (filtered_lrelu_masked)
    and the adjoint of filtered_lrelu_masked is filtered_lrelu_grad,
so every order of derivative runs on the kernels.
"""

from __future__ import annotations

import math

import torch

from .. import _lib
from ._dispatch import quiet_under_trace, check_bool, check_factors, check_real, check_same, check_tensor, kernel_layout, opmath, use_kernel
from .bias_act import _bias_act_ref
from .upfirdn2d import MAX_FACTOR as _MAX_FACTOR, MAX_PAD as _MAX_PAD  # kMaxFactor, kMaxPad of csrc/ops/upfirdn2d.h
from .upfirdn2d import _check_filter, _filter_size, _out_size, _parse_padding, _upfirdn2d_ref

_SQRT2 = math.sqrt(2.0)


def _geometry(H, W, fu, fd, up, down, padding):
    """((UH, UW), (OH, OW)): the upsampled and the output plane size."""
    px0, px1, py0, py1 = padding
    fuw, fuh = _filter_size(fu)
    fdw, fdh = _filter_size(fd)
    uh, uw = _out_size(H, up, 1, py0, py1, fuh), _out_size(W, up, 1, px0, px1, fuw)
    return (uh, uw), (_out_size(uh, 1, down, 0, 0, fdh), _out_size(uw, 1, down, 0, 0, fdw))


def _as_taps(f: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return f if f.dtype == dtype else f.to(dtype)  # a no-op .to still costs a call into C++


@quiet_under_trace
def _resolve(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, op):
    check_tensor(x, "x", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, C, H, W]; got {x.ndim}-D of shape {tuple(x.shape)}")
    # Taps in x's accumulation dtype, as the kernels apply them: float64 for float64 x (a
    # float64 call is float64 throughout), float32 for the others.
    tap_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    fu, fd = (None if f is None else _as_taps(_check_filter(f, x, op, name), tap_dtype)
              for f, name in ((fu, "fu"), (fd, "fd")))
    if b is not None:
        check_tensor(b, "b", op)
        if b.ndim != 1 or b.shape[0] != x.shape[1]:
            raise ValueError(f"{op}: b must be 1-D of length C = {x.shape[1]}; got shape {tuple(b.shape)}")
        check_same(b, "b", x, op)
    check_factors(op, up=up, down=down)
    padding = _parse_padding(padding, op)
    # upfirdn2d's bounds (csrc/ops/upfirdn2d.cpp), far beyond any use: past them the kernels'
    # int64 geometry overflowed (a padding of 2**62 was refused as one that "leaves no output")
    # and torch's allocator, not this op, refused the rest without naming an argument.
    if up > _MAX_FACTOR or down > _MAX_FACTOR:
        raise ValueError(f"{op}: up and down must be <= {_MAX_FACTOR}; got up {up}, down {down}")
    if any(isinstance(p, int) and abs(p) > _MAX_PAD for p in padding):
        raise ValueError(f"{op}: padding must be within [-{_MAX_PAD}, {_MAX_PAD}]; got {list(padding)}")
    gain = check_real(gain, "gain", op)
    slope = check_real(slope, "slope", op)
    clamp = check_real(clamp, "clamp", op, none_ok=True, inf_ok=True)
    if clamp is not None and clamp < 0:
        raise ValueError(f"{op}: clamp must be >= 0 or None; got {clamp}")
    flip_filter = check_bool(flip_filter, "flip_filter", op)
    (uh, uw), (oh, ow) = _geometry(x.shape[2], x.shape[3], fu, fd, up, down, padding)
    if min(uh, uw, oh, ow) < 1:
        raise ValueError(
            f"{op}: padding leaves no output: the upsampled size (in*up + pad0 + pad1 - fu_taps + 1) is "
            f"[{uh}, {uw}] and the output size (upsampled - fd_taps + down) // down is [{oh}, {ow}] for x of "
            f"shape {tuple(x.shape)}, up {up}, down {down}, padding {list(padding)}; each must be >= 1")
    if all(isinstance(v, int) for v in (uh, uw, oh, ow, *x.shape)):
        # the output, and the 2-bit state of every upsampled sample: torch's own refusal of such a
        # size is a RuntimeError about storage that names no argument
        for what, nbytes in (("output", x.shape[0] * x.shape[1] * oh * ow * x.element_size()),
                             ("upsampled plane's 2-bit state", x.shape[0] * x.shape[1] * ((uh * uw + 3) // 4))):
            if nbytes >= 2 ** 63:
                raise ValueError(f"{op}: the {what} of x of shape {tuple(x.shape)} with up {up}, down {down} and "
                                 f"padding {list(padding)} would take {nbytes:.3g} bytes, past what a tensor can "
                                 f"address (2**63)")
    return fu, fd, list(padding), gain, slope, clamp, flip_filter


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                   gain: float = _SQRT2, slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False, impl: str = "auto") -> torch.Tensor:
    """Bias, FIR upsampling, leaky ReLU and FIR downsampling in one op (StyleGAN3).

    Computes ``upfirdn2d(clamp(lrelu(upfirdn2d(x + b, fu, up, padding, gain=up**2), slope) *
    gain, -clamp, clamp), fd, down=down)``, the semantics of NVlabs stylegan3's
    ``filtered_lrelu`` (argument order and defaults as there).

    Args:
        x: [N, C, H, W]; float16, bfloat16, float32 or float64 (half types computed in
            float32). Any strides; contiguous and channels_last run without a copy.
        fu: upsampling filter, any float dtype, applied in x's accumulation dtype (float64
            for float64 x, else float32), on x's device:
            1-D [taps] (the same taps along both axes), 2-D [taps_y, taps_x], or None (identity).
        fd: downsampling filter, as fu.
        b: optional bias [C], x's dtype and device, added before upsampling.
        up: integer upsampling factor in [1, 65536] (default 1).
        down: integer downsampling factor in [1, 65536] (default 1).
        padding: int, [px, py] or [x0, x1, y0, y1] (default 0), in samples of the upsampled
            image before fu is applied; negative values crop; each within [-2**30, 2**30].
        gain: scale after the leaky ReLU (default sqrt(2)).
        slope: negative slope of the leaky ReLU (default 0.2).
        clamp: clamp the activation to [-clamp, clamp] after the gain; None (default) or inf
            for none. Must be >= 0.
        flip_filter: False (default) applies fu and fd as convolutions, True as correlations.
        impl: 'auto' (compiled kernel when built for x's device, else the reference) or 'ref'.

    Returns:
        [N, C, OH, OW] with per axis ``(in*up + pad0 + pad1 - (fu_taps-1) - (fd_taps-1) +
        (down-1)) // down``, x's dtype, channels_last when x is. Differentiable to any order
        in x and b. NaN and inf propagate as in the reference.

    Raises:
        TypeError naming an argument of the wrong type (a float, bool, string or None for up,
        down or padding; a string, bool, None or multi-element tensor for gain or slope; a
        tensor of a non-float dtype); ValueError naming an argument of the right type with a
        bad value (NaN or inf, a factor < 1 or > 65536, a negative clamp, a wrong shape, a padding
        beyond ±2**30 or one that leaves no output), and on the kernel path when fu or fd requires a gradient (the
        kernels give none to the filters: use impl='ref' to train filters).
    """
    op = "filtered_lrelu"
    fu, fd, padding, gain, slope, clamp, flip_filter = _resolve(x, fu, fd, b, up, down, padding, gain, slope, clamp,
                                                                flip_filter, op)
    if use_kernel(x, impl, op):
        if torch.is_grad_enabled():
            for name, f in (("fu", fu), ("fd", fd)):
                if f is not None and f.requires_grad:
                    raise ValueError(f"{op}: {name} requires a gradient, which the kernel does not compute; "
                                     f"pass {name}.detach() or use impl='ref'")
        return torch.ops.alae_fast.filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp,
                                                  flip_filter)[0]
    return _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)


def filtered_lrelu_ref(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                       b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                       gain: float = _SQRT2, slope: float = 0.2, clamp: float | None = None,
                       flip_filter: bool = False) -> torch.Tensor:
    """Plain-PyTorch ``filtered_lrelu`` (same arguments and result), composed of the
    references of bias_act and upfirdn2d, computed in float32 for half types and rounded once
    at the end. Autograd by PyTorch, including gradients for fu and fd."""
    fu, fd, padding, gain, slope, clamp, flip_filter = _resolve(x, fu, fd, b, up, down, padding, gain, slope, clamp,
                                                                flip_filter, "filtered_lrelu_ref")
    return _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)


def _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    z = opmath(x)
    if b is not None:
        z = z + opmath(b).reshape(1, -1, 1, 1)
    z = _upfirdn2d_ref(z, fu, [up, up], [1, 1], padding, flip_filter, float(up * up))
    z = _bias_act_ref(z, None, 1, "lrelu", slope, gain, clamp)
    z = _upfirdn2d_ref(z, fd, [1, 1], [down, down], [0, 0, 0, 0], flip_filter, 1.0)
    return z.to(x.dtype)


# --- registration: fake kernels (the three ops' autograd is C++: csrc/autograd/filtered_lrelu.cpp) --

_layout = kernel_layout  # the kernels' rule (csrc/ops/filtered_lrelu.cpp)


def _fake_forward(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    N, C, H, W = x.shape
    (uh, uw), (oh, ow) = _geometry(H, W, fu, fd, up, down, padding)
    torch._check(min(uh, uw, oh, ow) >= 1, lambda: "filtered_lrelu: padding leaves no output")
    y = torch.empty((N, C, oh, ow), dtype=x.dtype, device=x.device, memory_format=_layout(x))
    state = x.new_empty((N, C, (uh * uw + 3) // 4), dtype=torch.uint8)
    return y, state


def _fake_masked(v, state, fu, fd, up, down, padding, gain, slope, flip_filter):
    N, C, H, W = v.shape
    _, (oh, ow) = _geometry(H, W, fu, fd, up, down, padding)
    return torch.empty((N, C, oh, ow), dtype=v.dtype, device=v.device, memory_format=_layout(v))


def _fake_grad(dy, state, fu, fd, in_size, up, down, padding, gain, slope, flip_filter, bias_grad):
    N, C = dy.shape[:2]
    dx = torch.empty((N, C, in_size[0], in_size[1]), dtype=dy.dtype, device=dy.device, memory_format=_layout(dy))
    return dx, dy.new_empty((C if bias_grad else 0,))


if _lib.loaded():
    torch.library.register_fake("alae_fast::filtered_lrelu")(_fake_forward)
    torch.library.register_fake("alae_fast::filtered_lrelu_masked")(_fake_masked)
    torch.library.register_fake("alae_fast::filtered_lrelu_grad")(_fake_grad)
