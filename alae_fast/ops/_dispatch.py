"""Helpers shared by every op: kernel-or-reference choice, argument checks, schema-named arguments."""

from __future__ import annotations

import collections
import functools
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch

from .. import _lib

# Read once, at import: the choice must be stable inside torch.compile'd graphs. A bad value is
# raised by every op call (and by `alae-fast` before any command, as one line), not by the import,
# where a command could only show it as a traceback.
try:
    _FORCE_REF, _IMPL_ERROR = _lib.default_impl() == "ref", None
except ValueError as e:
    _FORCE_REF, _IMPL_ERROR = True, str(e)

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
HALF_DTYPES = (torch.float16, torch.bfloat16)


def is_finite(value) -> bool:
    """``math.isfinite(value)`` written as comparisons (False for NaN too). Under
    ``torch.compile(dynamic=True)`` a float argument traces as a SymFloat, which ``math.isfinite``
    and ``math.isnan`` break the graph on and comparisons do not."""
    return -math.inf < value < math.inf


def as_real(value):
    """``value`` when it is a real number (an int or float, a NumPy real scalar, a SymFloat;
    not a bool), its float when it is a 0-d NumPy array or a 0-d torch tensor of a real dtype
    (not bool; a tensor that does not require grad), else None: the test every float argument
    of the ops, shims and layers takes. A 0-d array is what ``torch.compile`` makes of a NumPy
    scalar while it traces (StyleGAN3's ``gain=np.sqrt(2)``), where ``isinstance(value,
    numbers.Real)`` is False and ``ndarray.dtype`` cannot be read: there its dtype is taken on
    trust (a 0-d bool array reads as 0.0 or 1.0). A 0-d tensor is read as NVlabs' ops read one
    (``float(gain)``; on a GPU that waits for the device); one that requires grad is refused,
    since taking it as a number would drop its gradient (:func:`said_real` says why). Inside
    ``torch.compile`` reading a tensor breaks the graph (its value is unknown while dynamo
    traces), so ``fullgraph=True`` refuses it there: pass a float."""
    t = type(value)
    if t is float or t is int:  # the common case, before the slow abstract-class checks
        return value
    if t is bool:
        return None
    if isinstance(value, Real):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        if torch.compiler.is_compiling() or value.dtype.kind in "fiu":
            return float(value)
    if (isinstance(value, torch.Tensor) and value.ndim == 0 and not value.requires_grad
            and not value.is_complex() and value.dtype is not torch.bool):
        if torch.compiler.is_compiling():
            # a tensor's value is unknown while dynamo traces: break the graph here and read it
            # eagerly (fullgraph=True stops at this line: pass the scalar as a float there)
            torch._dynamo.graph_break()
        return float(value)
    return None


def said_real(value) -> str:
    """How an error names a value :func:`as_real` refused, on one line: its repr, a tensor by
    its shape when it has more than one element, and why for a 0-d tensor that requires grad."""
    if isinstance(value, torch.Tensor):
        if value.ndim > 0:
            return f"a tensor of shape {tuple(value.shape)}"
        if value.requires_grad:  # an nn.Parameter's repr spans two lines
            return (f"tensor({value.detach().item()!r}, requires_grad=True), a tensor that requires grad: it is taken "
                    f"as a number, so its gradient would be dropped; pass a float or a detached tensor")
        return repr(value.detach())
    return repr(value)


def said_typed(value) -> str:
    """A value refused for its type, on one line: :func:`said_real` and, unless it is a tensor
    (named by its shape), its type's name."""
    said = said_real(value)
    return said if isinstance(value, torch.Tensor) else f"{said} of type {type(value).__name__}"


def said_kind(value) -> str:
    """A refused argument for a "must be a real number" error: :func:`said_real` for a tensor,
    else the type's name."""
    return said_real(value) if isinstance(value, torch.Tensor) else type(value).__name__


def check_real(value, name: str, op: str, *, none_ok: bool = False, inf_ok: bool = False) -> float | None:
    """``value`` as a float (None for None when ``none_ok``): TypeError naming ``op`` and
    ``name`` unless :func:`as_real` takes it, ValueError unless it is finite (+inf allowed when
    ``inf_ok``, e.g. a clamp)."""
    if value is None and none_ok:
        return None
    real = as_real(value)
    if real is None:
        raise TypeError(f"{op}: {name} must be a real number{' or None' if none_ok else ''}; got {said_kind(value)}")
    real = float(real)
    if not is_finite(real) and not (inf_ok and real > 0):  # NaN: not finite, not > 0
        raise ValueError(f"{op}: {name} must be finite; got {real}")
    return real


def check_eps(eps, op: str) -> float:
    """An eps as a float: TypeError naming ``op`` unless :func:`as_real` takes it (a string,
    None, a bool, a tensor of more than one element), ValueError unless it is finite and >= 0."""
    real = as_real(eps)
    if real is None:
        raise TypeError(f"{op}: eps must be a finite number >= 0; got {said_typed(eps)}")
    if not is_finite(real) or real < 0:
        raise ValueError(f"{op}: eps must be a finite number >= 0; got {said_real(eps)}")
    return float(real)


def check_alpha(alpha, default: float, op: str) -> float:
    """A leaky ReLU slope as a float, ``default`` for None: TypeError naming ``op`` unless
    :func:`as_real` takes it, ValueError unless it is finite."""
    if alpha is None:
        return default
    real = as_real(alpha)
    if real is None:
        raise TypeError(f"{op}: alpha must be a finite number or None; got {said_typed(alpha)}")
    if not is_finite(real):
        raise ValueError(f"{op}: alpha must be a finite number or None; got {said_real(alpha)}")
    return float(real)


def check_choice(value, name: str, choices, op: str, *, said=None) -> str:
    """``value`` when it is one of the strings ``choices``: TypeError naming ``op`` and ``name``
    when it is not a string (None, a number), ValueError for another string. ``said`` is how the
    error lists the choices (default: comma-separated)."""
    said = ", ".join(choices) if said is None else said
    if not isinstance(value, str):
        raise TypeError(f"{op}: {name} must be one of {said}; got {value!r} of type {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{op}: {name} must be one of {said}; got {value!r}")
    return value


def is_int(value) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool: the test every integer
    argument of the ops and their shims uses."""
    t = type(value)
    if t is int:  # the common case: isinstance against the abstract Integral costs ~1 us a call
        return True
    return t is not bool and isinstance(value, Integral)


def shapes_checked() -> bool:
    """Whether argument checks written inline compare sizes: not under ``torch.jit.trace``,
    where a size is a traced tensor and each comparison printed a TracerWarning (a traced graph
    is fixed to its example's shapes anyway). ``torch.compile`` and eager mode check."""
    return not torch.jit.is_tracing()


def quiet_under_trace(fn):
    """``fn`` (an op's argument check, whose comparisons of sizes only refuse bad input) with
    ``torch.jit.trace``'s TracerWarnings ignored while it runs under a trace, as NVlabs' code
    wraps its shape asserts in ``misc.suppress_tracer_warnings()``: a traced module printed
    dozens of them (82 for a small generator) where the ops themselves trace correctly. The
    warnings of the ops' own arithmetic stay."""
    @functools.wraps(fn)
    def checked(*args, **kwargs):
        if not torch.jit.is_tracing():
            return fn(*args, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            return fn(*args, **kwargs)
    return checked


def static_sizes(t: torch.Tensor, *dims: int) -> tuple[int, ...]:
    """``t``'s sizes along ``dims``. Under ``torch.jit.trace`` a size is a traced tensor, which
    the ops' integer arguments (paddings, groups) refuse; a weight's or a batch's size is a
    constant of a traced graph, as the NVlabs and rosinality code trace it, so there it is taken
    as an int without the tracer's warning about exactly that. Elsewhere the sizes are returned
    as they are: ints in eager mode, and symbolic under ``torch.compile(dynamic=True)``, where an
    int would specialise the graph to one batch size."""
    if not torch.jit.is_tracing():
        return tuple(t.shape[d] for d in dims)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        return tuple(int(t.shape[d]) for d in dims)


def check_int(value, name: str, op: str, *, minimum: int | None = None, what: str | None = None) -> int:
    """``value`` as an int: TypeError naming ``op`` and ``name`` unless :func:`is_int` takes it (a
    float, a bool, a string, None, a tensor), ValueError when it is below ``minimum``. ``what`` is
    how the message says what is expected (default "an int" or "an int >= minimum")."""
    what = what or ("an int" if minimum is None else f"an int >= {minimum}")
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be {what}; got {said_typed(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be {what}; got {value!r}")
    return int(value)


def check_positive_int(value, name: str, op: str) -> int:
    """:func:`check_int` for a size or factor (channels, dimensions, up/down factors): an int >= 1,
    said as "a positive int"."""
    return check_int(value, name, op, minimum=1, what="a positive int")


def check_bool(value, name: str, op: str) -> bool:
    """``value`` as a bool: Python's or NumPy's (a flag read from an array or a config); TypeError
    naming ``op`` and ``name`` for anything else: a string (``"False"`` is truthy), None, a tensor,
    and ints too (1 for True is refused, not guessed), as torch's own bool arguments refuse them
    (``torch.sum(x, 0, keepdim=1)``). NVlabs' and rosinality's code pass Python bools."""
    t = type(value)
    if isinstance(value, bool) or (t.__module__ == "numpy" and t.__name__ in ("bool", "bool_")):  # NumPy 2 / 1
        return bool(value)
    kind = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
    raise TypeError(f"{op}: {name} must be a bool (True or False); got {value!r} of type {kind}")


def check_impl(impl: str, op: str) -> None:
    """TypeError unless ``impl`` is a string, ValueError unless it is 'auto' or 'ref' and
    ALAE_FAST_IMPL held one of them. Ops made of other ops call it too, so that a bad
    ALAE_FAST_IMPL stops every op, not only kernel ones."""
    if not isinstance(impl, str):
        raise TypeError(f"{op}: impl must be 'auto' or 'ref'; got {impl!r} of type {type(impl).__name__}")
    if impl not in ("auto", "ref"):
        raise ValueError(f"{op}: impl must be 'auto' or 'ref'; got {impl!r}")
    if _IMPL_ERROR is not None:
        raise ValueError(_IMPL_ERROR)


def use_kernel(x: torch.Tensor, impl: str, op: str) -> bool:
    """True when ``op`` should run its compiled kernel for tensors like ``x``.

    ``impl='auto'`` picks the kernel when one was built for ``x.device``, else the
    reference; ``impl='ref'`` (or ALAE_FAST_IMPL=ref at import) forces the reference.
    TypeError for an ``impl`` that is not a string, ValueError for another string, or when
    ALAE_FAST_IMPL held neither 'auto' nor 'ref'.
    """
    check_impl(impl, op)
    if impl == "ref" or _FORCE_REF:
        return False
    return _lib.has_kernel(x.device.type)


def check_tensor(value, name: str, op: str, *, dtypes=FLOAT_DTYPES) -> torch.Tensor:
    """Raises TypeError unless ``value`` is a tensor of one of ``dtypes``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor; got {type(value).__name__}")
    if dtypes is not None and value.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{op}: {name} must have dtype in ({names}); got {value.dtype}")
    return value


def check_same(value: torch.Tensor, name: str, x: torch.Tensor, op: str, *, dtype=True, x_name: str = "x") -> None:
    """Raises unless ``value`` is on x's device (ValueError) and, if asked, of x's dtype (TypeError);
    ``x_name`` is what the caller's API calls x (rosinality's ``input``)."""
    if value.device != x.device:
        raise ValueError(f"{op}: {name} must be on {x_name}'s device {x.device}; got {value.device}")
    if dtype and value.dtype != x.dtype:
        raise TypeError(f"{op}: {name} must have {x_name}'s dtype {x.dtype}; got {value.dtype}")


def kernel_layout(t: torch.Tensor) -> torch.memory_format:
    """The layout the kernels give an output of ``t`` (csrc/ops/*.cpp): channels_last only where
    it is ``t``'s actual layout (not merely compatible, as for a contiguous [N, C, 1, 1]), else
    contiguous."""
    cl = (not t.is_contiguous()) and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl else torch.contiguous_format


def opmath(x: torch.Tensor) -> torch.Tensor:
    """x in its computation dtype: float32 for half types, else itself (strides kept)."""
    return x.float() if x.dtype in HALF_DTYPES else x


def op_arguments(op: str) -> type:
    """A NamedTuple class of ``alae_fast::<op>``'s arguments, named and ordered as its schema.

    The Python autograd of a gradient op reads its inputs and returns its input gradients
    through it (``Args(*inputs)``, ``Args(x=dx)``: unnamed fields default to None), so adding
    an argument to the schema shifts no index here. Needs the compiled library.
    """
    names = [a.name for a in getattr(torch.ops.alae_fast, op).default._schema.arguments]
    return collections.namedtuple(f"{op}_arguments", names, defaults=(None,) * len(names))


def save_arguments(ctx, args) -> None:
    """Saves an ``op_arguments`` tuple on an autograd ctx: tensors (and Nones) through
    ``save_for_backward``, the rest (the op's configuration) as plain attributes."""
    fields = args._asdict()
    ctx.saved_fields = [f for f, v in fields.items() if v is None or isinstance(v, torch.Tensor)]
    ctx.config = {f: v for f, v in fields.items() if f not in ctx.saved_fields}
    ctx.save_for_backward(*(fields[f] for f in ctx.saved_fields))


def saved_arguments(ctx, args_type: type):
    """The ``op_arguments`` tuple saved by ``save_arguments``."""
    return args_type(**dict(zip(ctx.saved_fields, ctx.saved_tensors)), **ctx.config)


def check_factors(op: str, **factors) -> None:
    """Raises TypeError unless each keyword value is an int (not bool), ValueError unless >= 1."""
    for name, value in factors.items():
        if not is_int(value):
            raise TypeError(f"{op}: {name} must be an int; got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{op}: {name} must be >= 1; got {value}")
