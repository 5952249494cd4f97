"""Float64 NumPy oracles shared by the op tests (not a test module): each written from the
definition, independently of the kernels and of the ``*_ref`` implementations they check.
Test files import them as ``alae_fast_tests_oracles`` (registered by tests/conftest.py).
"""

from __future__ import annotations

import numpy as np


def act_np(z: np.ndarray, act: str, alpha=None) -> np.ndarray:
    """The activations of ``alae_fast.ops.ACTIVATIONS`` with gain 1. ``alpha`` None: the op's
    default (0.2 for lrelu, 1.0 for elu; the others do not read it)."""
    a = {"lrelu": 0.2, "elu": 1.0}.get(act, 0.0) if alpha is None else alpha
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    with np.errstate(over="ignore"):
        return {
            "linear": lambda: z,
            "relu": lambda: np.maximum(z, 0),
            "lrelu": lambda: np.where(z > 0, z, a * z),
            "tanh": lambda: np.tanh(z),
            "sigmoid": lambda: sig(z),
            "elu": lambda: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0))),
            "selu": lambda: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * np.expm1(np.minimum(z, 0))),
            "softplus": lambda: np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20)))),
            "swish": lambda: z * sig(z),
        }[act]()


def upfirdn2d_np(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """upfirdn2d by its definition, step by step: zero-insert, pad/crop, full 2-D FIR convolution
    (valid part; correlation when ``flip_filter``), keep every down-th sample, times ``gain``.

    x: [N, C, H, W] array-like. f: None (one tap of 1), 1-D (separable: outer(f, f)) or 2-D
    [fh, fw]. up, down: (x, y) factors. padding: (x0, x1, y0, y1), negative crops. An output
    side of 0 gives an empty array; a negative one raises ValueError (from NumPy).
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    (ux, uy), (dx, dy), (px0, px1, py0, py1) = up, down, padding
    u = np.zeros((n, c, h * uy, w * ux))
    u[:, :, ::uy, ::ux] = x
    # pad by the positive parts, then crop the negative ones
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0): u.shape[2] - max(-py1, 0), max(-px0, 0): u.shape[3] - max(-px1, 0)]
    if f is None:
        taps = np.ones((1, 1))
    else:
        f = np.asarray(f, dtype=np.float64)
        taps = np.outer(f, f) if f.ndim == 1 else f
    fh, fw = taps.shape
    oh, ow = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    z = np.zeros((n, c, oh, ow))
    for i in range(fh):
        for j in range(fw):
            # convolution: output m takes tap i from sample m + fh - 1 - i; correlation from m + i
            a, b = (i, j) if flip_filter else (fh - 1 - i, fw - 1 - j)
            z += taps[i, j] * u[:, :, a: a + oh, b: b + ow]
    return z[:, :, ::dy, ::dx] * gain
