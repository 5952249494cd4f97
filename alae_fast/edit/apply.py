"""Moving a latent w along attribute directions, as the official ALAE demo does.

podgorskiy/ALAE (Apache-2.0, commit 42bcf2e), ``interactive_demo.py`` and
``make_figures/make_traversarls.py``, for an encoded w and directions d_k (float64 vectors of
the latent size, NOT unit-norm: ``LinearSVC.coef_[0]``):

1. δ = w − w_avg;
2. c_k = δ · d_k for every direction (all from the same δ; the demo's initial slider values);
3. δ' = δ − Σ_k c_k d_k (each direction's component removed, with the raw, unnormalised d_k);
4. δ'' = δ' + Σ_k s_k d_k, s_k the chosen amounts: ``mode='absolute'`` takes s_k = amount_k
   (the demo's sliders), ``mode='offset'`` takes s_k = c_k + amount_k (the traversal figures:
   amount 0 gives back w);
5. w' = δ'' + w_avg;
6. the style inputs [0, edit_layers) of G get w', the rest keep the encoded w (the demo's
   ``torch.where(layer_idx < 16, w, latents_original)``: at 1024² the last two of 18; a model
   with 16 or fewer style inputs has all of them edited). ``edit_layers='demo'``, the default,
   is exactly that; an explicit count must be 1..num_ws.

Steps 1-5 are linear, so with the same δ: w' = w + Σ_k (s_k − c_k) d_k, and :func:`edit_w`
computes it so: 'offset' as w + Σ_k amount_k d_k exactly (up to w's dtype's rounding of each
sum), without c_k, and 'absolute' as w + Σ_k (amount_k − c_k) d_k. (Removing c_k d_k and adding
s_k d_k back, as the steps read, cancels catastrophically for a long d, whose c_k grows with
|d|: an 'offset' edit of amount 0 along a direction of length 4.5e3 moved w by 0.34 in float32,
and along one of length 4.5e17 gave w_avg for every amount.) The coefficient read
back from the edited w, c'_j = (w' − w_avg) · d_j, is therefore c_j + Σ_k (s_k − c_k) d_k · d_j;
for one direction d (or directions orthogonal to each other):

- ``mode='offset'``: w' = w + amount · d, and c' = c + amount · |d|²;
- ``mode='absolute'``: w' = w + (amount − c) · d, and c' = c (1 − |d|²) + amount · |d|²,

so an absolute edit reads back its amount only for a unit-length d. The official demo uses the
``LinearSVC`` normals as they are (its sliders set the amount, not the coefficient read back),
and so does this module; scale a direction to unit length (d / |d|) for c' to be the amount.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Mapping

import numpy as np
import torch

from .._words import word_for

__all__ = ["EDIT_LAYERS", "DEMO_LAYERS", "MAX_AMOUNT", "edited_style_inputs", "check_amount", "direction_problem",
           "shortest_direction", "direction_coefficients", "edit_w"]

# The demo keeps the encoded w from style input 16 on: cur_layers = (7 + 1) * 2. Its
# torch.where(layer_idx < 16, ...) edits every style input of a model with 16 or fewer, which is
# what edit_layers='demo' (the default of edit_w, edit_strip and `alae-fast edit`) does.
EDIT_LAYERS = 16
DEMO_LAYERS = "demo"

# The largest |amount| an edit takes (``edit_w``, ``alae-fast edit`` through it, the page's
# ``/api/edit``). Amounts are in units of the direction's length: the official demo's sliders span
# ±40 on directions of norm 0.6-1.2, digit-pair directions move far at 1-2. 1e6 is far past any
# useful edit, yet small enough that amount × direction stays finite in float32 for any direction
# shorter than 1e32, so a huge finite amount (1e308) is refused by name instead of overflowing
# into NaN images. (The CLI checks amounts only for being finite; its edits go through here.)
MAX_AMOUNT = 1e6


def shortest_direction(dtype: torch.dtype = torch.float32) -> float:
    """The shortest length a direction may have to be used in ``dtype``: ``finfo(dtype).eps /
    MAX_AMOUNT`` (float32: 1.19e-13; float64: 2.2e-22; float16: 9.8e-10).

    Why this bound: an edit moves w by (amount - coefficient) x direction, amounts at most
    :data:`MAX_AMOUNT`. Latents are of magnitude about 1, where one step of ``dtype`` is its eps;
    a shorter direction cannot move any w by one step even at the largest amount, so its slider
    or ``--direction`` would do nothing (and at float32's underflow, 1e-45 and below, it is 0)."""
    return float(torch.finfo(dtype).eps) / MAX_AMOUNT


def _length(t: torch.Tensor) -> float:
    """The Euclidean length of ``t`` in float64, scaled by its largest magnitude first: the
    squares of values below 1e-154 (or above 1e154) would underflow (overflow) float64."""
    t = t.double()
    largest = float(t.abs().max()) if t.numel() else 0.0
    if largest == 0 or not math.isfinite(largest):
        return largest
    return largest * float(torch.linalg.vector_norm(t / largest))


def direction_problem(values, dtype: torch.dtype = torch.float32) -> str | None:
    """Why the direction ``values`` (a NumPy array or tensor of finite numbers, any float or
    integer dtype) cannot be used once converted to ``dtype`` (the model's: float32), as the
    end of a sentence; None when it can. Its length is taken of the converted values (in
    float64, so that the length itself neither underflows nor overflows): a value past
    ``dtype``'s range becomes infinity, a length of 0 (every value underflowed, or all zero)
    moves nothing, a length below :func:`shortest_direction` moves no w by one step, and a
    length past ``dtype``'s largest number overflows the edit. Complex and bool values are no
    direction (a complex one would lose its imaginary parts in the conversion)."""
    t = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values).detach()
    if t.is_complex():  # the conversion below would drop the imaginary parts (torch only warns)
        return f"has complex values (dtype {str(t.dtype).removeprefix('torch.')}); expected real numbers"
    if t.dtype == torch.bool:
        return "has bool values; expected numbers"
    converted = t.to("cpu", dtype)
    name = str(dtype).removeprefix("torch.")
    if not torch.isfinite(converted).all():
        return (f"has values beyond {name}'s range (at most {torch.finfo(dtype).max:.3g} in magnitude), which "
                f"become infinity there")
    length = _length(converted)
    if length == 0:
        was = _length(t)
        return ("is all zeros" if was == 0 else
                f"has length {was:.3g}, which is 0 in {name} (every value underflows); expected a length of at "
                f"least {shortest_direction(dtype):.3g}")
    if length < shortest_direction(dtype):
        return (f"has length {length:.3g} in {name}, too short to use: even the largest amount "
                f"(±{MAX_AMOUNT:g}) would not move a latent by one {name} step; expected a length of at least "
                f"{shortest_direction(dtype):.3g}")
    if length > torch.finfo(dtype).max:
        return (f"has length {length:.3g}, beyond {name}'s range ({torch.finfo(dtype).max:.3g}): the edit would "
                f"overflow")
    return None


def _mapping(value, name: str, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict {what}; got {type(value).__name__}"
                        + (" (give names, e.g. {'smile': ...})" if isinstance(value, (list, tuple)) else ""))
    return value


def _directions(directions) -> Mapping:
    return _mapping(directions, "directions", "name -> direction vector [latent] (NumPy array or tensor)")


def check_amount(value, name: str = "amount") -> float:
    """One amount as a float: a real number (not a bool) with |value| <= :data:`MAX_AMOUNT`
    (which also excludes NaN and infinity); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name}: expected a number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number; got {value!r}")
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"{name}: {value:g} is out of range; amounts are at most {MAX_AMOUNT:g} in magnitude "
                         f"(in units of the direction's length; the official demo uses up to 40)")
    return float(value)


def edited_style_inputs(edit_layers: int | str | None, num_ws: int) -> int:
    """How many style inputs an edit moves (inputs [0, count) get the edited w).

    Args:
        edit_layers: ``'demo'`` (:data:`DEMO_LAYERS`, the default of :func:`edit_w`): the
            official demo's, min(:data:`EDIT_LAYERS` (16), num_ws); None: all ``num_ws``; an
            int: that many, 1 <= edit_layers <= num_ws.
        num_ws: style inputs of G (``model.num_ws``), an int >= 1.

    Returns an int in [1, num_ws]. Raises ValueError naming ``num_ws`` unless it is an int >= 1,
    and naming ``edit_layers`` for any other value: a bool, a float, another string, an int
    below 1 (no style input would be edited) or above ``num_ws`` (the model has no such inputs;
    the message names ``num_ws`` and says None edits all of them).
    """
    # NumPy's ints count as ints (as seeds and counts do elsewhere in the API), bools do not
    if isinstance(num_ws, bool) or not isinstance(num_ws, Integral) or num_ws < 1:
        raise ValueError(f"num_ws: expected an int >= 1; got {num_ws!r}")
    num_ws = int(num_ws)
    if edit_layers is None:
        return num_ws
    if isinstance(edit_layers, str) and edit_layers == DEMO_LAYERS:
        return min(EDIT_LAYERS, num_ws)
    if isinstance(edit_layers, bool) or not isinstance(edit_layers, Integral):
        raise ValueError(f"edit_layers: expected an int >= 1, None (all) or {DEMO_LAYERS!r} (the default, the "
                         f"official demo's); got {edit_layers!r}")
    edit_layers = int(edit_layers)
    if edit_layers < 1:
        raise ValueError(f"edit_layers: expected an int >= 1 or None (all); got {edit_layers!r}"
                         + (": no style input would be edited" if edit_layers == 0 else ""))
    if edit_layers > num_ws:
        raise ValueError(f"edit_layers: {edit_layers} is more than num_ws ({num_ws}, the model's style inputs); "
                         f"expected 1..{num_ws}, or None to edit all of them")
    return edit_layers


def _as_tensor(d, like: torch.Tensor, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(d) if not isinstance(d, torch.Tensor) else d)
    except (TypeError, ValueError, RuntimeError) as e:  # strings, objects, ragged lists
        raise TypeError(f"directions[{name!r}]: expected a vector of {like.shape[-1]} numbers (NumPy array or "
                        f"tensor); got {type(d).__name__} ({str(e).split('.')[0]})") from None
    if t.dim() != 1 or t.shape[0] != like.shape[-1]:
        raise ValueError(f"directions[{name!r}]: expected a vector of {like.shape[-1]} values (the latent size); "
                         f"got shape {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"directions[{name!r}]: {direction_problem(t, like.dtype)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"directions[{name!r}]: has non-finite values")
    # in w's dtype, as the edit uses it: load_direction, the CLI and the page refuse the same
    problem = direction_problem(t, like.dtype)
    if problem is not None:
        raise ValueError(f"directions[{name!r}]: {problem}")
    return t.to(like.device, like.dtype)


def _check_w(w: torch.Tensor, w_avg) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or not w.is_floating_point():
        raise ValueError(f"w: expected a floating tensor [N, latent]; got "
                         f"{(tuple(w.shape), w.dtype) if isinstance(w, torch.Tensor) else type(w).__name__}")
    if not torch.isfinite(w).all():
        raise ValueError("w: contains NaN or infinity")
    if not isinstance(w_avg, (torch.Tensor, np.ndarray)):
        raise ValueError(f"w_avg: expected a tensor [{w.shape[1]}] (the model's w_avg); got {type(w_avg).__name__}")
    if w_avg.dtype == torch.bool or w_avg.dtype == np.bool_ or not (
            w_avg.dtype.is_floating_point if isinstance(w_avg, torch.Tensor) else np.issubdtype(w_avg.dtype, np.number)):
        raise ValueError(f"w_avg: expected numbers; got dtype {w_avg.dtype}")
    avg = torch.as_tensor(w_avg).to(w.device, w.dtype)
    if avg.dim() != 1:
        raise ValueError(f"w_avg: expected a vector [latent] (the model's w_avg); got shape {tuple(avg.shape)}")
    if w.shape[1] != avg.shape[0]:
        # either may be the wrong one (latents of another model, or another model's w_avg): name both
        raise ValueError(f"w, w_avg: latent sizes disagree: w is {tuple(w.shape)}, w_avg {tuple(avg.shape)} "
                         f"(expected w [N, latent] and w_avg [latent] of the same model)")
    if not torch.isfinite(avg).all():
        raise ValueError("w_avg: contains NaN or infinity")
    return w, avg


def _amount(a, w: torch.Tensor, name) -> float | torch.Tensor:
    """An amount as a float, or as a tensor ``[N]`` in w's dtype and device for one per image (a
    0-d tensor that requires grad stays a 0-d tensor, so that its gradient reaches it); ValueError
    naming ``amounts[name]`` unless every value is a real number within ±MAX_AMOUNT."""
    label = f"amounts[{name!r}]"
    if isinstance(a, (torch.Tensor, np.ndarray)) and a.ndim == 1:
        t = torch.as_tensor(a)
        if t.shape[0] != w.shape[0]:
            raise ValueError(f"{label}: expected a number or {w.shape[0]} values (one per image); "
                             f"got shape {tuple(t.shape)}")
        if t.dtype == torch.bool or t.is_complex():  # a complex amount lost its imaginary part without a word
            raise ValueError(f"{label}: expected real numbers; got a tensor of {t.dtype}")
        t64 = t.detach().to("cpu", torch.float64)
        if not torch.isfinite(t64).all():
            raise ValueError(f"{label}: contains NaN or infinity")
        if t64.abs().max() > MAX_AMOUNT:
            raise ValueError(f"{label}: {float(t64.abs().max()):g} is out of range; amounts are at most "
                             f"{MAX_AMOUNT:g} in magnitude")
        return t.to(w.device, w.dtype)
    if isinstance(a, (torch.Tensor, np.ndarray)):
        if a.ndim != 0:
            raise ValueError(f"{label}: expected a number or {w.shape[0]} values (one per image); got shape "
                             f"{tuple(a.shape)}")
        if isinstance(a, torch.Tensor) and a.requires_grad:
            # kept a tensor: .item() would drop the amount's gradient without a word
            check_amount(a.detach().item(), label)
            return a.to(w.device, w.dtype)
        a = a.item()
    return check_amount(a, label)


def direction_coefficients(w: torch.Tensor, directions: Mapping[str, object], w_avg) -> dict[str, torch.Tensor]:
    """c_k = (w − w_avg) · d_k for each direction (step 2 of the module docstring).

    Args:
        w: ``[N, latent]`` floating tensor (encoded or mapped latents), finite.
        directions: a dict name → vector ``[latent]`` (NumPy array or tensor, any float dtype).
        w_avg: ``[latent]`` (the model's running mean of w), finite.

    Returns name → ``[N]`` tensor in w's dtype. Raises TypeError when ``directions`` is not a
    dict (a list of vectors has no names), ValueError naming a direction of the wrong length or
    with non-finite values, and for a bad ``w`` or ``w_avg`` (shape, dtype, NaN or infinity).
    """
    directions = _directions(directions)
    w, avg = _check_w(w, w_avg)
    delta = w - avg
    return {name: delta @ _as_tensor(d, w, name) for name, d in directions.items()}


def edit_w(w: torch.Tensor, directions: Mapping[str, object], amounts: Mapping[str, float], w_avg, num_ws: int,
           edit_layers: int | str | None = DEMO_LAYERS, mode: str = "offset") -> torch.Tensor:
    """The style inputs of G for ``w`` moved along attribute directions (the module docstring).

    Args:
        w: ``[N, latent]`` floating tensor, e.g. ``model.encode(x, lod, blend)``; finite.
        directions: a dict name → vector ``[latent]`` (NumPy array or tensor). Only directions
            named in ``amounts`` are removed and re-added; the others are ignored (the demo's
            untouched sliders).
        amounts: a dict name → amount: a float, or a tensor ``[N]`` (one amount per image, as
            the web page's sliders give), finite and at most ``MAX_AMOUNT`` (1e6) in magnitude;
            every name must be in ``directions``.
        w_avg: ``[latent]``, ``model.w_avg``; finite.
        num_ws: style inputs of G (``model.num_ws``; 1 for the MLP ALAE), an int >= 1.
        edit_layers: style inputs [0, edit_layers) get the edited w, the others keep ``w``:
            an int 1..num_ws, None (all of them), or ``'demo'`` (the default,
            :data:`DEMO_LAYERS`): the official demo's, inputs below 16 (:data:`EDIT_LAYERS`),
            so all of them on a model with 16 or fewer (:func:`edited_style_inputs`).
        mode: 'offset' (default): w moves by amount · d, computed as w + amount · d (the
            amount is added to the image's own coefficient c = (w − w_avg) · d, as
            ``make_traversarls.py``); 0 gives back w exactly, however long d is.
            'absolute' (the demo's sliders): w's component c · d along d is replaced by
            amount · d. The coefficient read back from the result is c + amount · |d|²
            ('offset') or c (1 − |d|²) + amount · |d|² ('absolute'): the amount itself only
            for a unit-length d (not ``fit_direction``'s raw normals); with several directions
            that are not orthogonal, each also moves the others' (module docstring).

    Returns ``ws [N, num_ws, latent]`` in w's dtype and device, for ``model.decode``.
    Raises TypeError when ``directions`` or ``amounts`` is not a dict, and ValueError naming the
    argument for an unknown direction name, a direction of the wrong length or not finite, an
    amount that is not a number, NaN, infinite or beyond ±MAX_AMOUNT, an edit whose styles
    overflow w's dtype, a bad ``w``/``w_avg``, a bad mode, ``num_ws < 1``, or an
    ``edit_layers`` that is not one of the above (below 1 would edit no style input, above
    ``num_ws`` names inputs the model does not have).
    """
    directions = _directions(directions)
    amounts = _mapping(amounts, "amounts", "name -> amount (a float, or a tensor [N] of one per image)")
    w, avg = _check_w(w, w_avg)
    if mode not in ("offset", "absolute"):
        raise ValueError(f"mode: expected 'offset' or 'absolute'; got {mode!r}")
    stop = edited_style_inputs(edit_layers, num_ws)
    unknown = sorted(set(amounts) - set(directions), key=str)
    if unknown:
        raise ValueError(f"amounts: unknown {word_for(len(unknown), 'direction')} {unknown}; known: {sorted(directions, key=str)}")
    dirs = {name: _as_tensor(directions[name], w, name) for name in amounts}
    # w' = w + sum_k (s_k - c_k) d_k (the module docstring), computed as that: removing c_k d_k and
    # adding (c_k + amount) d_k back cancelled catastrophically for a long d (c_k grows with |d|: at
    # |d| = 4.5e3 the "offset" edit was off by 0.34, at 1e18 every w became w_avg). 'offset' moves
    # by exactly amount x d; only 'absolute' needs the coefficients c_k, all of the same w.
    delta = w - avg
    edited = w
    for name, d in dirs.items():
        a = _amount(amounts[name], w, name)
        s = a - delta @ d if mode == "absolute" else a
        edited = edited + (s.unsqueeze(1) if isinstance(s, torch.Tensor) and s.ndim == 1 else s) * d
    if not torch.isfinite(edited).all():
        raise ValueError(f"amounts: the edited styles overflow {w.dtype} (an amount times its direction's "
                         f"length is too large); use smaller amounts")
    ws = w.unsqueeze(1).repeat(1, num_ws, 1)
    ws[:, :stop] = edited.unsqueeze(1)
    return ws
