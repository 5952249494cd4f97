"""NVlabs ``torch_utils.ops.bias_act``: ``bias_act`` and the ``activation_funcs`` table.

NVlabs layers read ``activation_funcs[act].def_gain`` (and ``def_alpha``) when they are built;
the table has NVlabs' fields: ``func(x, alpha=...)`` (the plain-PyTorch activation),
``def_alpha``, ``def_gain``, ``cuda_idx``, ``ref`` ('x' or 'y': which tensor the gradient is
computed from, '' for linear) and ``has_2nd_grad``.

Semantics kept: ``elu`` ignores ``alpha`` (NVlabs evaluates ``F.elu(x)``, scale 1), unlike
:func:`alae_fast.ops.bias_act`, where alpha scales elu's negative branch.
"""

from __future__ import annotations

import math

from ...ops.bias_act import ACTIVATIONS, _act_ref
from ...ops.bias_act import bias_act as _bias_act
from . import _impl
from ._impl import resolve_impl

__all__ = ["activation_funcs", "bias_act"]

_init = _impl.init  # NVlabs' module API: training loops call <module>._init() first


class AttrDict(dict):
    """A dict whose keys are also attributes (as NVlabs' dnnlib.EasyDict)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


def _spec(name: str, cuda_idx: int, ref: str, has_2nd_grad: bool) -> AttrDict:
    def_alpha = 0.0 if name == "elu" else ACTIVATIONS[name][0]
    fixed_alpha = 1.0 if name == "elu" else None

    def func(x, alpha=None, **_):
        a = fixed_alpha if fixed_alpha is not None else (def_alpha if alpha is None else float(alpha))
        return _act_ref(x, name, a)

    return AttrDict(func=func, def_alpha=def_alpha, def_gain=ACTIVATIONS[name][1], cuda_idx=cuda_idx,
                    ref=ref, has_2nd_grad=has_2nd_grad)


activation_funcs = {
    "linear": _spec("linear", 1, "", False),
    "relu": _spec("relu", 2, "y", False),
    "lrelu": _spec("lrelu", 3, "y", False),
    "tanh": _spec("tanh", 4, "y", True),
    "sigmoid": _spec("sigmoid", 5, "y", True),
    "elu": _spec("elu", 6, "y", True),
    "selu": _spec("selu", 7, "y", True),
    "softplus": _spec("softplus", 8, "y", True),
    "swish": _spec("swish", 9, "x", True),
}
assert set(activation_funcs) == set(ACTIVATIONS)
assert all(math.isclose(activation_funcs[k].def_gain, v[1]) for k, v in ACTIVATIONS.items())


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    """NVlabs ``bias_act``: ``clamp(act(x + b, alpha) * gain, -clamp, clamp)``.

    x: any shape, float16/bfloat16/float32/float64. b: None or 1-D of length x.shape[dim],
    x's dtype. dim: the axis of b (default 1; ignored without b). act: a key of
    ``activation_funcs`` (default 'linear'). alpha, gain: None for ``def_alpha``/``def_gain``.
    clamp: None (default) or >= 0. impl: 'cuda' (default: the compiled kernel, CPU or CUDA)
    or 'ref'. Returns x's shape and dtype; differentiable to second order in x and b.
    Raises TypeError naming an argument of the wrong type, ValueError naming one of the right
    type with a bad value; see :func:`alae_fast.ops.bias_act`.
    """
    if act == "elu":
        alpha = 1.0  # NVlabs' elu has no shape parameter
    return _bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=resolve_impl(impl, "bias_act"))
