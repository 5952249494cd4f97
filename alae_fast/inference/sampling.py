"""Images from latents of a loaded run: samples, NVlabs-style seeds, interpolations, style mixing.

Every function here repeats exactly for the same seed and leaves torch's global random state
untouched (draws happen under ``torch.random.fork_rng`` or from their own generators).
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..models.base import NOISE_MODES as DECODE_NOISE_MODES
from ..models.base import PSI_RANGE, check_cutoff_range, check_psi

from .memory import check_images_fit

if TYPE_CHECKING:  # annotations only: loading imports this module
    from .loading import LoadedRun

__all__ = ["sample_images", "check_truncation", "NOISE_MODES", "PSI_RANGE", "SEED_LIMIT", "seed_range_text", "check_count", "check_seed", "check_psi",
           "seed_latent", "generate_seeds", "interpolate_latents", "style_ranges", "check_style_mixable", "mix_ranges", "style_mix_tiles",
           "style_mix_images", "style_mix_grid"]

# Seeds of the Python API: ints in [0, SEED_LIMIT), what torch's generators take as distinct seeds
# without wrapping, as the CLI's --seed and --seeds and the web page take them (the page keeps a seed as
# its decimal digits: a JavaScript number would round those past 2**53).
SEED_LIMIT = 2 ** 63


def seed_range_text(limit: int = SEED_LIMIT) -> str:
    """The seeds' range as the messages of the CLI, the Python API and the web app say it:
    ``"[0, 2**63)"`` for :data:`SEED_LIMIT` (a power of two), ``"[0, N)"`` otherwise."""
    power = limit.bit_length() - 1
    return f"[0, 2**{power})" if limit == 1 << power else f"[0, {limit})"


# The arguments of the Python API follow the ops' rule (alae_fast.ops): a value of the wrong type
# (a string, float, bool, None or tensor where an int is wanted; a string or bool where a number
# is) raises TypeError, one of the right type with a bad value ValueError, each naming the
# function and the argument.

def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, Integral)


def _said(value) -> str:
    """A refused value on one line: a tensor by its type and shape (its repr can be pages)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{value!r} of type {type(value).__name__}"


def check_count(value, name: str, op: str, minimum: int = 1) -> int:
    """``value`` as an int when it is an integer (Python's or NumPy's) >= ``minimum``: TypeError
    naming ``op: name`` for another type (a bool, a float, a string, None, a tensor), ValueError
    for a smaller int."""
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be an int >= {minimum}; got {_said(value)}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def check_seed(value, name: str = "seed", op: str | None = None) -> int:
    """``value`` as an int when it is an integer in [0, :data:`SEED_LIMIT`): TypeError naming it
    for another type (a bool, a float, a string, None), ValueError for an int outside."""
    where = f"{op}: " if op else ""
    if not _is_int(value):
        raise TypeError(f"{where}{name} must be an int in {seed_range_text()}; got {_said(value)}")
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{where}{name} must be an int in {seed_range_text()}; got {value!r}")
    return int(value)


def _check_cutoff(cutoff, op: str) -> None:
    """TypeError naming ``op: cutoff`` unless it is None or an int (not a bool), ValueError for
    an int < 0."""
    if cutoff is not None and not _is_int(cutoff):
        raise TypeError(f"{op}: cutoff must be None or an int >= 0; got {_said(cutoff)}")
    if cutoff is not None and cutoff < 0:
        raise ValueError(f"{op}: cutoff must be None or an int >= 0; got {cutoff!r}")


def check_truncation(run: LoadedRun, psi, cutoff, op: str) -> tuple[float, int | None]:
    """``(psi, cutoff)`` of a sampling call, checked and resolved as ``alae-fast generate`` does
    it: psi None takes the config's ``truncation_psi`` and, for a cutoff None, its
    ``truncation_cutoff``. Raises, naming ``op``, TypeError for a psi that is not a real number
    or a cutoff neither None nor an int, ValueError for a psi outside ``PSI_RANGE``, a cutoff
    outside [1, num_ws] (0 would truncate nothing, a larger one names inputs the model lacks)
    or one with psi 1 (given, or the config's for psi None), which truncates nothing."""
    if psi is not None:
        psi = check_psi(psi, "psi", op)
    _check_cutoff(cutoff, op)
    if cutoff is not None:
        check_cutoff_range(cutoff, int(run.model.num_ws), op, "cutoff")
        if (run.config.truncation_psi if psi is None else psi) == 1:
            raise ValueError(f"{op}: cutoff {cutoff} has no effect with psi 1 (no truncation)" + (
                "; this run's truncation psi is 1: give psi too" if psi is None else ""))
    if psi is None:  # the config's own pair is the run's to be right about, not checked as the caller's
        return run.config.truncation_psi, run.config.truncation_cutoff if cutoff is None else cutoff
    return psi, cutoff


def _check_noise(noise, op: str, name: str = "noise", device: torch.device | None = None) -> None:
    """Raises, naming ``op: name``, unless ``noise`` is one of ``ALAEModel.decode``'s modes or a
    list/tuple of per-layer noise tensors (``StyleGenerator.noise_inputs``), whose entries are
    None or float tensors without NaN or infinity, on ``device`` when one is given: TypeError for
    a ``noise`` that is neither a string nor a list/tuple, or an entry that is no tensor or of
    another dtype; ValueError for another string and for an entry on another device or with NaN
    or infinity. The entries' count and shapes are the model's to check (it knows its layers)."""
    if isinstance(noise, (list, tuple)):
        for k, t in enumerate(noise):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{op}: {name}[{k}] must be a tensor or None; got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{op}: {name}[{k}] must have a float dtype; got {t.dtype}")
            if device is not None and t.device != device:
                raise ValueError(f"{op}: {name}[{k}] is on {t.device} and the model on {device}; move it with "
                                 f".to(run.device)")
            if not torch.isfinite(t).all():
                raise ValueError(f"{op}: {name}[{k}] contains NaN or infinity")
        return
    said = f"{op}: {name} must be one of {DECODE_NOISE_MODES} or a list of per-layer noise tensors"
    if not isinstance(noise, str):
        raise TypeError(f"{said}; got {_said(noise)}")
    if noise not in DECODE_NOISE_MODES:
        raise ValueError(f"{said}; got {noise!r}")


@torch.no_grad()
def sample_images(run: LoadedRun, n: int, psi: float | None = None, seed: int = 0, cutoff: int | None = None,
                  noise="random") -> torch.Tensor:
    """``n`` EMA samples ``[n, C, r, r]`` from z drawn with ``seed``, truncated by ``psi`` towards
    w_avg on style inputs below ``cutoff``. psi None (default) takes the config's
    ``truncation_psi`` and ``truncation_cutoff`` (the paper presets: the official 0.7 and 8;
    others 1, no truncation); noise: any ``decode`` mode. ``noise="random"`` (default) draws
    G's noise from torch's generator seeded with ``seed`` inside ``fork_rng``, so the same call
    gives the same images and the caller's random state is untouched; pixels in about [-1, 1].

    Raises, naming the argument, TypeError for one of the wrong type (an ``n``, ``seed`` or
    ``cutoff`` that is not an int: a float, a bool, a string, None; a ``psi`` that is not a real
    number; a ``noise`` neither a string nor a list, or an entry of it that is no float tensor),
    ValueError for one of the right type with a bad value: ``n`` < 1, ``seed`` outside [0,
    2**63), ``psi`` NaN, infinite or outside ``PSI_RANGE`` [-1, 2], an unknown noise mode or a
    noise entry with NaN or infinity, a cutoff that changes nothing (:func:`check_truncation`:
    outside [1, num_ws], or with psi 1), or an ``n`` whose images the memory free now cannot hold
    (:func:`~alae_fast.inference.memory.check_images_fit`)."""
    n = check_count(n, "n", "sample_images")
    seed = check_seed(seed, "seed", "sample_images")
    _check_noise(noise, "sample_images")
    psi, cutoff = check_truncation(run, psi, cutoff, "sample_images")
    check_images_fit(run, "sample_images", f"n {n}", batch=n)
    device = next(run.model.parameters()).device
    z = torch.randn(n, run.model.latent_size, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return run.model.generate(z, run.phase.lod, run.phase.blend, truncation_psi=psi,
                                  truncation_cutoff=cutoff, noise=noise)


# NVlabs' spellings of G's noise inputs. "const" is the same noise maps for every image: the
# model's own fixed maps (ALAEModel.decode's 'const', as NVlabs' noise buffers), so a seed gives
# the same picture here as in a grid of sample_images(noise="const").
NOISE_MODES = ("const", "random", "batch", "zero", "none")
# PSI_RANGE (imported above, defined in alae_fast.models.base): the truncation psi that the models,
# these functions, the commands and the page accept, [-1, 2].


def seed_latent(seed: int, latent_size: int) -> torch.Tensor:
    """z ``[1, latent_size]`` ~ N(0, I) of one seed (torch's CPU generator seeded with it), so a
    seed gives the same z whatever other seeds are drawn with it. TypeError unless ``seed`` is an
    int, ValueError unless it is in [0, 2**63) (:func:`check_seed`); TypeError for a
    ``latent_size`` that is not an int, ValueError for one < 1."""
    latent_size = check_count(latent_size, "latent_size", "seed_latent")
    seed = check_seed(seed)
    return torch.randn(1, latent_size, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate_seeds(run: LoadedRun, seeds: Sequence[int], psi: float | None = None, noise_mode: str = "const",
                   cutoff: int | None = None) -> torch.Tensor:
    """One image per seed, ``[len(seeds), C, r, r]`` in about [-1, 1], as NVlabs' ``gen_images``:
    z from :func:`seed_latent`, truncated by ``psi`` (style inputs below ``cutoff``, default all).
    ``seeds``: a list, tuple, range or 1-D integer NumPy array or tensor (``np.arange(8)``) of
    ints. psi None (default) takes the config's truncation, as :meth:`LoadedRun.generate` and
    ``alae-fast generate`` do (NVlabs' ``gen_images`` defaults to 1: give ``psi=1`` for that).

    ``noise_mode``: ``"const"`` (the same noise maps for every image: the model's fixed ones,
    as :func:`sample_images` with ``noise="const"``),
    ``"random"`` or ``"batch"`` (noise drawn from the image's seed; one image per draw, so the
    two are the same here) or ``"none"``/``"zero"`` (no noise). Every mode gives
    the same image for the same seed; torch's global random state is left untouched.

    Raises, naming the argument, TypeError for one of the wrong type (``seeds`` not a sequence
    or array of ints, ``psi`` not a real number, ``noise_mode`` not a string, ``cutoff`` not
    None or an int), ValueError for one of the right type with a bad value (no seeds, a seed
    outside [0, 2**63), a seeds array of another ndim, ``psi`` NaN, infinite or outside
    ``PSI_RANGE`` [-1, 2], an unknown noise mode, a cutoff that changes nothing:
    :func:`check_truncation`)."""
    if not isinstance(noise_mode, str):
        raise TypeError(f"generate_seeds: noise_mode must be one of {NOISE_MODES}; got {_said(noise_mode)}")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"generate_seeds: noise_mode must be one of {NOISE_MODES}; got {noise_mode!r}")
    said = "seeds must be a non-empty list of ints in [0, 2**63)"
    if isinstance(seeds, (np.ndarray, torch.Tensor)):  # np.arange(8): ints of the array's own kind
        if seeds.ndim != 1:
            raise ValueError(f"generate_seeds: {said} (a 1-D array); got an array of shape {tuple(seeds.shape)}")
        seeds = seeds.tolist()
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"generate_seeds: {said}; got {_said(seeds)}")
    if not seeds:
        raise ValueError(f"generate_seeds: {said}; got {seeds!r}")
    seeds = [check_seed(s, f"seeds[{i}]", "generate_seeds") for i, s in enumerate(seeds)]
    check_images_fit(run, "generate_seeds", f"{len(seeds)} seeds", batch=1, kept=len(seeds))  # one at a time
    psi, cutoff = check_truncation(run, psi, cutoff, "generate_seeds")
    device = next(run.model.parameters()).device
    noise = {"none": "zero", "zero": "zero", "const": "const"}.get(noise_mode, "random")
    out = []
    for seed in seeds:
        z = seed_latent(seed, run.model.latent_size).to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            out.append(run.model.generate(z, run.phase.lod, run.phase.blend, truncation_psi=psi,
                                          truncation_cutoff=cutoff, noise=noise))
    return torch.cat(out)


def interpolate_latents(run: LoadedRun, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Decodes ``steps`` points on the segment between E(a) and E(b); returns ``[steps, C, r, r]``
    decoded with ``run.noise_mode`` (default no noise), in the model's dtype (float32).

    a, b: one image each, ``[1, C, r, r]`` or ``[1, C, R, R]`` as ``run.encode`` takes them, and
    checked as it does; each may have any float dtype (float16, bfloat16, float32, float64) and
    the two need not agree: the latents are interpolated in the wider of their dtypes
    (``torch.promote_types``). ValueError for a or b holding more than one image; TypeError unless
    ``steps`` is an int, ValueError unless it is >= 2 (both ends: one step would be E(a) alone,
    not an interpolation; the CLI and the web page ask the same); ``run.encode``'s errors, naming
    interpolate_latents and a or b."""
    steps = check_count(steps, "steps", "interpolate_latents", minimum=2)
    check_images_fit(run, "interpolate_latents", f"steps {steps}", batch=steps)
    for name, img in (("a", a), ("b", b)):
        if isinstance(img, torch.Tensor) and img.ndim == 4 and img.shape[0] != 1:
            raise ValueError(f"interpolate_latents: {name} must be one image [1, C, R, R]; got {img.shape[0]} "
                             f"(shape {tuple(img.shape)}): interpolate each pair on its own")
    wa, wb = run._encode(a, "interpolate_latents", "a"), run._encode(b, "interpolate_latents", "b")
    # encode answers in its input's dtype, and torch.lerp wants one dtype
    dtype = torch.promote_types(wa.dtype, wb.dtype)
    wa, wb = wa.to(dtype), wb.to(dtype)
    t = torch.linspace(0.0, 1.0, steps, device=wa.device, dtype=wa.dtype).view(-1, 1)
    return run.decode(torch.lerp(wa.expand(steps, -1), wb.expand(steps, -1), t))


def style_ranges(num_ws: int) -> dict[str, tuple[int, int]]:
    """Coarse, middle and fine style inputs ``{name: (first, end)}`` of a StyleALAE with ``num_ws``
    inputs (two per level, 4x4 first). From 64x64 up (``num_ws`` > 8) they are StyleGAN's
    (Karras et al. 2019, Fig. 3) and the official ALAE figure's (style_mixing/stylemix.py:
    ``range(0, 4)``, ``range(4, 8)``, ``range(8, 2 * layer_count)``): 4²-8², 16²-32², 64² and
    up. A smaller model has no 64² inputs: its ``num_ws`` are split in thirds, low resolutions
    first."""
    if num_ws > 8:
        return {"coarse": (0, 4), "middle": (4, 8), "fine": (8, num_ws)}
    a, b = round(num_ws / 3), round(2 * num_ws / 3)
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws)}


def check_style_mixable(run: LoadedRun) -> int:
    """The run's count of style inputs; ValueError (said as style-mix's) for a model with one
    (an MLP ALAE), which has no styles to mix."""
    num_ws = int(run.model.num_ws)
    if num_ws < 2:
        raise ValueError(f"style-mix: this model has {num_ws} style input; style mixing needs a model "
                         f"with several (a StyleALAE)")
    return num_ws


def mix_ranges(wa: torch.Tensor, wb: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Styles ``[N, num_ws, latent]`` taking style inputs [lo, hi) from ``wa`` and the rest from
    ``wb`` (both ``[N, num_ws, latent]``)."""
    layer = torch.arange(wa.shape[1], device=wa.device).view(1, -1, 1)
    return torch.where((layer >= lo) & (layer < hi), wa, wb)


@torch.no_grad()
def style_mix_tiles(run: LoadedRun, rows: int = 3, cols: int = 4, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """The pictures of a style-mixing figure: ``cols`` sources A, and for each of coarse, middle
    and fine (:func:`style_ranges`) ``rows`` destinations B, each mixed with every A's styles of
    that range. z of A then B drawn from ``seed``; decoded with ``run.noise_mode`` (default no
    noise).

    Returns ``(sources [cols, C, r, r], destinations [3·rows, C, r, r],
    mixed [3·rows, cols, C, r, r], range name of each destination row)``. Needs a model with
    more than one style input (ValueError otherwise); TypeError unless ``rows``, ``cols`` and
    ``seed`` are ints, ValueError unless ``rows`` and ``cols`` are >= 1 and ``seed`` is in
    [0, 2**63)."""
    return _style_mix_tiles(run, rows, cols, seed, "style_mix_tiles")


@torch.no_grad()
def _style_mix_tiles(run, rows, cols, seed, op: str):
    """:func:`style_mix_tiles`, its errors naming ``op`` (the function the caller called)."""
    rows = check_count(rows, "rows", op)
    cols = check_count(cols, "cols", op)
    seed = check_seed(seed, "seed", op)
    m = run.model
    num_ws = check_style_mixable(run)
    count = cols + 3 * rows * (cols + 1)  # sources, destinations and the mixed table, kept
    check_images_fit(run, op, f"rows {rows} and cols {cols} ({count} images)",
                     batch=max(cols, 3 * rows), kept=count)  # A and B decoded at once, then a row at a time
    device = next(m.parameters()).device
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(cols, m.latent_size, generator=g).to(device)
    zb = torch.randn(3 * rows, m.latent_size, generator=g).to(device)
    wa = m.mapping(za).unsqueeze(1).expand(-1, num_ws, -1)
    wb = m.mapping(zb).unsqueeze(1).expand(-1, num_ws, -1)
    mixed, names = _mixed_rows(run, wa, wb, rows)
    return run.decode(wa), run.decode(wb), mixed, names


@torch.no_grad()
def style_mix_images(run: LoadedRun, sources: torch.Tensor, destinations: torch.Tensor
                     ) -> tuple[torch.Tensor, list[str]]:
    """The official style-mixing figure of real images (podgorskiy/ALAE style_mixing/stylemix.py):
    each destination B's E(x) with each source A's coarse, middle or fine styles
    (:func:`style_ranges`), decoded with ``run.noise_mode`` (default no noise). Each destination is
    mixed in all three ranges (the official figure gives each of its six one range).

    sources ``[S, C, r, r]``, destinations ``[D, C, r, r]``: images as ``run.encode`` takes them
    (S, D >= 1). Returns ``(mixed [3·D, S, C, r, r], range name of each row)``, the rows coarse
    for every B, then middle, then fine. ValueError for a model with one style input or images
    ``run.encode`` refuses."""
    num_ws = check_style_mixable(run)
    if all(isinstance(t, torch.Tensor) and t.ndim == 4 for t in (sources, destinations)):  # else encode says why
        s, d = sources.shape[0], destinations.shape[0]
        # each set encoded at once, then a row of S decoded at a time, the table kept
        check_images_fit(run, "style_mix_images", f"{s} sources and {d} destinations ({3 * s * d} mixed images)",
                         batch=max(s, d), kept=3 * s * d)
    wa = run._encode(sources, "style_mix_images", "sources").unsqueeze(1).expand(-1, num_ws, -1)
    wd = run._encode(destinations, "style_mix_images", "destinations").unsqueeze(1).expand(-1, num_ws, -1)
    return _mixed_rows(run, wa, wd.repeat(3, 1, 1), destinations.shape[0])


def _mixed_rows(run: LoadedRun, wa: torch.Tensor, wb: torch.Tensor, rows: int) -> tuple[torch.Tensor, list[str]]:
    """Row ``r·rows + j`` of the table: B = ``wb[r·rows + j]`` with every A's (``wa``) styles of range
    r of :func:`style_ranges`, decoded; ``wa`` ``[S, num_ws, latent]``, ``wb`` ``[3·rows, ...]``."""
    mixed, names = [], []
    for r_i, (name, (lo, hi)) in enumerate(style_ranges(wa.shape[1]).items()):
        for j in range(rows):
            b = wb[r_i * rows + j:r_i * rows + j + 1].expand(wa.shape[0], -1, -1)
            mixed.append(run.decode(mix_ranges(wa, b, lo, hi)))
            names.append(name)
    return torch.stack(mixed), names


@torch.no_grad()
def style_mix_grid(run: LoadedRun, rows: int = 3, cols: int = 4, seed: int = 0) -> tuple[torch.Tensor, int]:
    """:func:`style_mix_tiles` as one unlabelled tensor: a top row of the sources A after a blank
    corner, then each destination B followed by its mixes. Returns (images
    ``[(1 + 3·rows)·(cols + 1), C, r, r]``, nrow = cols + 1). The CLI draws the labelled figure
    instead (``save_labelled_grid``). Errors as :func:`style_mix_tiles`'s, naming style_mix_grid."""
    img_a, img_b, mixed, _ = _style_mix_tiles(run, rows, cols, seed, "style_mix_grid")
    tiles = [torch.full_like(img_a[:1], -1.0), *img_a.split(1)]
    for i in range(img_b.shape[0]):
        tiles += [img_b[i:i + 1], *mixed[i].split(1)]
    return torch.cat(tiles), cols + 1
