"""The model work behind the page: one method per picture the page shows, no web types.

:class:`ModelService` wraps a loaded run (``alae_fast.load``). Every method takes and returns
plain Python values (lists of floats for latents, PNG bytes for pictures), checks its
arguments, and raises :class:`~alae_fast.errors.UserError` for bad ones, so the server only
turns results into JSON and errors into 4xx answers.

Pictures are decoded without noise (``noise="zero"``) except in :meth:`ModelService.generate`,
whose ``noise_mode`` follows NVlabs (const / random / none; every mode repeats for a seed).
Pixels are in [-1, 1] inside and 0-255 in the PNGs (clamped, rounded).

Truncation follows ``alae-fast generate``: by default the config's ``truncation_psi`` on style
inputs below its ``truncation_cutoff`` (official: 0.7 below 8), so a seed's sample here is the
CLI's. Latents travel as one w ``[latent]`` or as styles ``[num_ws][latent]`` (a sample
truncated on its first inputs only has two different rows); every method that takes a w takes
either, and the styles a method answers decode to the picture it shows.

An upload's w is ALAE's own E(x) unless the request asks for ``refine_steps`` > 0: then E(x)
refined by that many steps of descent on G's pixel error (``LoadedRun.project``, not in the ALAE
paper; :mod:`alae_fast.inference.projection`), in W only, up to :data:`MAX_PAGE_REFINE_STEPS`.

Every direction is scaled to unit length when it is added (:meth:`ModelService.add_direction`, the
one place): a slider's value is then the component of ``w - w_avg`` along it, and one unit moves w
by a distance of 1 in W, whatever the direction's kind (:data:`DIRECTION_KINDS`: a class vs the
rest; a digit pair A -> B, whose raw SVM normals had lengths of 0.76 to 3.7 on a digits-32 run; an
official attribute file, of length 0.63 to 1.19). ``alae-fast edit`` keeps the official code's raw
vectors instead.

Directions uploaded from the page can be removed again; those the server started with
(``--directions``, or fitted on the digits' labels) stay: they are how it was started, and a
removed one could only come back by restarting it.

One model call runs at a time (``self.lock``): seeded noise uses torch's global generator,
and two CPU-bound forward passes on 2 cores are no faster together. Decoding uploads is bounded
apart (:class:`~.uploads.DecodeSlots`), so an image decodes while the model works. The server
runs these methods in worker threads, so waiting for the lock never blocks it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._words import plural
from ..data.folder import LoadNotes
from ..edit.apply import EDIT_LAYERS, MAX_AMOUNT
from ..edit.directions import parse_digit_pair
from ..errors import UserError
from ..inference.loading import LoadedRun, recorded_data_spec
from ..inference.projection import DEFAULT_REFINE_LR
from ..inference.pictures import png_bytes
from ..inference.pixels import prepare_images, to_display
from ..inference.sampling import (NOISE_MODES, PSI_RANGE, SEED_LIMIT, check_psi, generate_seeds, mix_ranges,
                                  seed_latent, seed_range_text, style_ranges)
from ..limits import MAX_ABS_W, MAX_REFINE_STEPS
from . import editing
from .uploads import DecodeSlots, check_upload_limit, decode_image

__all__ = ["ModelService", "Direction", "NotFound", "Conflict", "SameLine", "PSI_RANGE", "MAX_STEPS",
           "MAX_PAGE_REFINE_STEPS", "DIRECTION_KINDS", "API_VERSION"]

MAX_STEPS = 16
# What /api/info reports as "api_version", for scripts that drive the routes: 2 since every
# direction is scaled to unit length (2026-12-05, 6385c2d), so the amounts of /api/edit and the
# values of /api/values are components of w - w_avg along unit vectors; 1 (no field) before,
# when they were multiples of each direction as given. Raised whenever a route's numbers change
# meaning.
API_VERSION = 2
# The most descent steps an upload's refinement may take on the page, below the CLI's and the
# API's MAX_REFINE_STEPS (100000), as MAX_STEPS bounds an interpolation: the descent holds the
# model (self.lock) from start to end, so every other request of every page waits for it. 100
# steps reach most of the gain on photos-32, and took 1-2 s there for 15 tiles at once on 2 CPU
# threads (benchmarks/results/photos-experiments.md); 1000 allow ten times that, seconds of
# waiting. Longer ones are for `alae-fast encode --refine-steps`, where no page waits. A step
# costs a forward and a backward pass of G: a large model takes far longer per step.
MAX_PAGE_REFINE_STEPS = 1000
DIGIT_NAMES = {c: f"digit {c}" for c in range(10)}
# What a direction moves between, as the page groups its sliders: "class", towards one class and
# away from the rest (the digit classes fitted at start); "pair", from class A towards class B
# (``alae-fast directions``' digit pairs, named "A-B"); "attribute", any other (an official
# attribute file, one fitted with ``directions --data``, an upload).
DIRECTION_KINDS = ("class", "pair", "attribute")


def _json_floats(values, name: str, too_large: str) -> list[float]:
    """The JSON numbers ``values`` as floats. UserError naming ``name``: "expected numbers only"
    for a string or a boolean (a mistake of the caller, not a number), ``too_large`` for an
    integer of hundreds of digits (finite in JSON, not as a float)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise UserError(f"{name}: expected numbers only")
    try:
        return [float(v) for v in values]
    except OverflowError:
        raise UserError(f"{name}: {too_large}") from None


class NotFound(UserError):
    """A request names something the server does not hold (HTTP 404)."""
    status = 404


class SameLine(UserError):
    """A direction lies along one already on the page (:meth:`ModelService.add_direction`):
    ``other``, that one's name; ``how``, ``"the same"`` or ``"the opposite"``."""

    def __init__(self, message: str, other: str, how: str):
        super().__init__(message)
        self.other, self.how = other, how


class Conflict(UserError):
    """A request made for a state of the server that has changed since (HTTP 409)."""
    status = 409


@dataclass
class Direction:
    """An attribute direction: ``vector [D]`` float64 of unit length, its slider limits ``lo``,
    ``hi`` (values along the vector), where it came from, ``uploaded`` (added from the page, so it
    can be removed again), ``kind`` (one of :data:`DIRECTION_KINDS`) and ``norm``, the length of
    the vector as it was given (a file's, a fit's) before it was scaled to 1."""
    name: str
    vector: np.ndarray
    lo: float
    hi: float
    source: str
    uploaded: bool = False
    kind: str = "attribute"
    norm: float = 1.0


def _names_differ(names: list[str], have: list[str]) -> str:
    """The 409 message of an edit whose ``names`` are not the server's directions ``have``: what
    differs (names it does not have, names left out, another order), so that a script with a
    misspelt name is told which, and a page that another request changed knows to reload."""
    unknown = [n for n in dict.fromkeys(names) if n not in have]
    missing = [n for n in have if n not in names]
    repeated = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    said = []
    if unknown:
        said.append(f"{unknown!r} {'is not a direction' if len(unknown) == 1 else 'are not directions'} "
                    f"of this server (misspelt, or removed by another request)")
    if missing:
        said.append(f"{missing!r} {'is a direction' if len(missing) == 1 else 'are directions'} of this server "
                    f"left out (added by another request?)")
    if repeated:
        said.append(f"{repeated!r} {'is' if len(repeated) == 1 else 'are'} given more than once")
    if not said:
        said.append("the same directions in another order")
    return (f"names: {'; '.join(said)}. The amounts must be for this server's directions, in its order: "
            f"{have!r} (GET /api/info lists them)")


@dataclass
class ModelService:
    """See the module docstring. Build with :meth:`open`."""
    run: LoadedRun
    directions: list[Direction] = field(default_factory=list)
    max_upload_bytes: int = 8 * 2 ** 20
    max_pixels: int = 40_000_000
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    decodes: DecodeSlots = field(default_factory=DecodeSlots)
    # adding checks then appends, removing finds then deletes: two requests must not interleave
    directions_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- set-up ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, run: LoadedRun, directions_dir=None, max_upload_bytes: int = 8 * 2 ** 20,
             fit_digits: bool = True) -> "ModelService":
        """The service of ``run``: directions from ``directions_dir`` (every .npy) when given, and
        for a run trained on the embedded digits (``fit_digits``; its recorded data, or for a run
        that recorded none, a ``digits*`` setup), one direction per digit class fitted on E(x) of
        the labelled training digits (:func:`editing.fit_class_directions`). ``max_upload_bytes``:
        the largest upload, within :data:`~.uploads.UPLOAD_LIMIT_RANGE` (64 KiB to 1 GiB);
        ValueError naming it otherwise."""
        svc = cls(run, max_upload_bytes=check_upload_limit(max_upload_bytes, "max_upload_bytes", unit=1))
        if directions_dir is not None:
            files: dict[str, str] = {}  # a direction's name -> its file
            found = editing.direction_files(directions_dir, svc.latent_size, scaled=True)
            refitted = svc._check_directions_checkpoint(directions_dir, found)
            for name, path, vec in found:
                source = f"{directions_dir}"
                if name in refitted:
                    vec, source = refitted[name]
                try:
                    files[svc.add_direction(name, vec, source=source).name] = path.name
                except SameLine as e:  # thick.npy beside thick_x2.npy: the page shows one slider, not two
                    svc.notes.append(f"--directions {directions_dir}: skipped {path.name}: it lies along "
                                     f"{files[e.other]} ({e.how} direction once both are scaled to unit length), so "
                                     f"one slider does what both would")  # serve prints the notes
        spec = recorded_data_spec(run)
        trained_on_digits = spec.get("kind") == "digits" if spec else str(run.setup).startswith("digits")
        if fit_digits and trained_on_digits:
            svc._fit_digit_directions()
        return svc

    @property
    def latent_size(self) -> int:
        return int(self.run.model.latent_size)

    @property
    def num_ws(self) -> int:
        return int(self.run.model.num_ws)

    @property
    def has_noise(self) -> bool:
        # the generator's own capability, as the trainer asks it: a StyleALAE's G has
        # noise_inputs, an MLP's has none
        return hasattr(self.run.model.generator, "noise_inputs")

    @property
    def ema(self) -> bool:
        """Whether the model's weights are the EMA copy: always for an alae_fast run; for an official
        checkpoint, unless it was opened (or converted) with ``ema=False`` (``--no-ema``), which
        takes its training weights instead of the ``*_s`` copies."""
        state = self.run.state
        return bool(state.get("ema", state.get("official_ema", True))) if isinstance(state, dict) else True

    @property
    def device(self) -> torch.device:
        return next(self.run.model.parameters()).device

    @property
    def truncation(self) -> tuple[float, int]:
        """``(psi, cutoff)``: the config's ``truncation_psi`` and the number of style inputs it
        applies to, ``truncation_cutoff`` within [0, num_ws] (None: all), as ``alae-fast generate``
        uses them when given no --psi."""
        cfg = self.run.config
        cutoff = cfg.truncation_cutoff
        return float(cfg.truncation_psi), self.num_ws if cutoff is None else min(int(cutoff), self.num_ws)

    def _typical_values(self, vector: np.ndarray) -> np.ndarray:
        # attribute values of 512 mapped samples F(z): the slider range of a direction
        with torch.no_grad():
            z = torch.randn(512, self.latent_size, generator=torch.Generator().manual_seed(1))
            w = self.run.model.mapping(z.to(self.device)).double().cpu()
        d = torch.from_numpy(vector).view(1, -1)
        return editing.projections(w, self.run.model.w_avg.double().cpu(), d).numpy()

    def add_direction(self, name: str, vector: np.ndarray, source: str, values: np.ndarray | None = None,
                      uploaded: bool = False, kind: str | None = None) -> Direction:
        """Adds a direction, scaled to unit length (the module docstring: every direction on the
        page is, here), and returns it.

        Args:
            name: the slider's name; one already taken gets the first free `` (2)``, `` (3)``...
            vector: ``[latent_size]`` numbers of any non-zero finite length, as given (a file's
                raw SVM normal); ``Direction.norm`` keeps that length.
            source: where it came from, as the page's tooltip says it.
            values: ``[N, 1]`` attribute values of typical latents along ``vector`` as given
                (:func:`editing.projections`), for the slider's limits; default None: of 512
                mapped samples F(z).
            uploaded: added from the page, so :meth:`remove_direction` may remove it (default False).
            kind: one of :data:`DIRECTION_KINDS`; default None: ``"pair"`` for a name ``"A-B"``
                (two different digits, as ``alae-fast directions`` names its pairs), else
                ``"attribute"``.

        Raises UserError for a vector of another size, or that cannot be scaled to unit length
        (all zero, NaN or infinity, a length past float64's range), :class:`SameLine` (a
        UserError) for one along the same line as a direction already on the page (the same or
        the opposite direction: ``|cos| > 1 - 1e-6``), UserError for one whose slider values
        would pass the edit's limit (±``MAX_AMOUNT``); ValueError for another ``kind``."""
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (self.latent_size,):
            raise UserError(f"direction {name!r} has {vector.size} values; this model's w has {self.latent_size}")
        if kind is None:
            kind = "pair" if parse_digit_pair(name) else "attribute"
        if kind not in DIRECTION_KINDS:
            raise ValueError(f"kind: expected one of {DIRECTION_KINDS}; got {kind!r}")
        if not np.isfinite(vector).all():
            raise UserError(f"direction {name!r} holds NaN or infinity; expected finite numbers")
        # scaled by its largest value first, as edit.apply._length measures: np.linalg.norm squares
        # the values, which underflow to 0 for a vector of 1e-170s and overflow for one of 1e170s
        largest = float(np.abs(vector).max())
        if largest == 0:
            raise UserError(f"direction {name!r} is all zeros; expected a vector of non-zero length")
        scaled = vector / largest
        scaled_norm = float(np.linalg.norm(scaled))
        unit = scaled / scaled_norm
        norm = largest * scaled_norm
        if not math.isfinite(norm):  # /api/info reports it: JSON has no infinity
            raise UserError(f"direction {name!r} has a length past float64's range (its largest value is "
                            f"{largest:.3g}); expected a length below {np.finfo(np.float64).max:.3g}")
        values = self._typical_values(unit) if values is None else np.asarray(values, dtype=np.float64) / norm
        with self.directions_lock:
            return self._append_direction(Direction(name, unit, 0.0, 0.0, source, uploaded, kind, norm), values)

    def _append_direction(self, d: Direction, values: np.ndarray) -> Direction:
        # unit vectors: a multiple of a direction on the page, negative ones included, would be a
        # second slider doing what that one does (the opposite way for a negative one); a float32
        # copy or a vector plus tiny noise differs in the last bits, hence a cosine, not equality
        for o in self.directions:
            cos = float(o.vector @ d.vector)
            if abs(cos) > 1 - 1e-6:
                how = "the same" if cos > 0 else "the opposite"
                raise SameLine(f"direction {d.name!r} lies along direction {o.name!r}, already on the page: it points "
                               f"in {how} direction once both are scaled to unit length (cosine {cos:.7f}), so "
                               f"{o.name!r}'s slider already does what it would", o.name, how)
        # the sliders send these values back as amounts: beyond the edit's limit every edit of
        # every image would be refused, so such a direction is refused here, once
        reach = float(np.abs(values).max()) if np.size(values) else 0.0
        if not np.isfinite(values).all() or reach > MAX_AMOUNT:
            raise UserError(f"direction {d.name!r}: this model's typical latents lie {reach:.3g} along it (unit "
                            f"length), beyond the edit's limit ±{MAX_AMOUNT:g}")
        taken = {o.name for o in self.directions}
        if d.name in taken:  # the first free suffix: with removals, a count could name a taken one
            d.name = next(f"{d.name} ({i})" for i in range(2, len(taken) + 3) if f"{d.name} ({i})" not in taken)
        lo, hi = editing.slider_ranges(values)
        d.lo, d.hi = float(lo[0]), float(hi[0])
        self.directions.append(d)
        return d

    def remove_direction(self, name) -> Direction:
        """Removes the uploaded direction called ``name`` and returns it. :class:`NotFound` (404)
        when no direction has that name, :class:`Conflict` (409) for one the server started
        with (``--directions`` or fitted): those stay (the module docstring)."""
        with self.directions_lock:
            i = next((i for i, d in enumerate(self.directions) if d.name == name), None)
            if i is None:
                known = ", ".join(repr(d.name) for d in self.directions) or "none"
                raise NotFound(f"name: no direction {name!r} on this server (directions: {known})")
            d = self.directions[i]
            if not d.uploaded:
                raise Conflict(f"name: direction {name!r} came with the server ({d.source}); only directions "
                               f"uploaded from the page can be removed")
            del self.directions[i]
            return d

    def _check_directions_checkpoint(self, folder, found) -> dict[str, tuple[np.ndarray, str]]:
        """Which checkpoint the direction files ``found`` (``[(name, path, vector)]`` of
        ``folder``) were fitted on, from the record ``alae-fast directions`` writes
        (:mod:`alae_fast.edit.provenance`), said in :attr:`notes`; returns the digit pairs
        fitted on the spot instead: name -> (vector, source).

        Files fitted on another checkpoint than the one loaded (the run's directions/ before a
        ``train --resume``): a warning names both checkpoints (W changes with training, so they
        need not point along their attributes here); the built-in digit pairs ``A-B`` among them
        are fitted on the spot for the loaded checkpoint, as ``alae-fast edit`` does (the name
        means "from A to B in this model", and the fit takes seconds), the others are used as
        they are. Files of the run's own directions/ that no record lists: a note that it is not
        known which checkpoint they were fitted on (a folder given by --directions without a
        record, such as the official principal_directions, is read without one)."""
        from ..edit.commands import _is_digits_model, digit_directions, saved_directions_folder
        from ..edit.provenance import RECORD_NAME, files_said, provenance, refit_advice

        if not found:
            return {}
        p = provenance([path for _, path, _ in found], self.run)
        said = f"--directions {folder}"
        if p.status == "other":
            stale = [(name, path) for name, path, _ in found if path.name in p.others]
            pairs = [name for name, _ in stale if parse_digit_pair(name) is not None] if _is_digits_model(self.run) else []
            kept = [name for name, _ in stale if name not in pairs]
            note = (f"warning: {said}: {plural(len(stale), 'direction')} there {'was' if len(stale) == 1 else 'were'} "
                    f"fitted by alae-fast directions on {p.other_checkpoints()}, not on the checkpoint loaded, "
                    f"{p.loaded}: W changes with training, so a direction fitted on another checkpoint need not point "
                    f"along its attribute here")
            if pairs:
                note += (f"; the {plural(len(pairs), 'digit pair')} among them {'is' if len(pairs) == 1 else 'are'} "
                         f"fitted on the spot for {p.loaded} instead")
            if kept:
                note += (f"; {', '.join(kept)} {'is' if len(kept) == 1 else 'are'} used as fitted there: refit with "
                         f"{refit_advice(self.run)}")
            self.notes.append(note)
            if not pairs:
                return {}
            fitted = digit_directions(self.run, [parse_digit_pair(name) for name in pairs])
            files = dict(stale)
            return {name: (fitted[name], f"fitted on the spot for {p.loaded} ({files[name].name} in {folder} was "
                                         f"fitted on {p.others[files[name].name]})") for name in pairs}
        own = saved_directions_folder(self.run)
        if p.status == "unknown" and own is not None and Path(own).resolve() == Path(folder).resolve():
            self.notes.append(f"note: {said}: it is not known which checkpoint {files_said(p.unknown)} "
                              f"{'was' if len(p.unknown) == 1 else 'were'} fitted on: no {RECORD_NAME} record of "
                              f"alae-fast directions there lists {'it' if len(p.unknown) == 1 else 'them'} as written "
                              f"(if fitted on another checkpoint, refit with "
                              f"{refit_advice(self.run)})")
        return {}

    def _fit_digit_directions(self) -> None:
        from ..data import open_dataset

        t = time.perf_counter()
        ds = open_dataset(None, self.run.schedule.resolution, self.run.schedule.channels, split="train")
        x, y = ds.get_batch(torch.arange(len(ds)))
        with torch.no_grad():
            w = torch.cat([self.run.encode(prepare_images(b, self.run.schedule, self.run.phase).to(self.device))
                           for b in x.split(256)]).double().cpu()
        fitted = editing.fit_class_directions(w.numpy(), y.numpy(), DIGIT_NAMES)
        w_avg = self.run.model.w_avg.double().cpu()
        for name, vec in fitted.items():
            vals = editing.projections(w, w_avg, torch.from_numpy(vec).view(1, -1)).numpy()
            self.add_direction(name, vec, source="fitted on the embedded digits' labels", values=vals, kind="class")
        self.notes.append(f"fitted {len(fitted)} digit-class directions (LinearSVC on E(x) of {len(ds)} labelled "
                          f"training digits) in {time.perf_counter() - t:.1f} s")

    def info(self) -> dict:
        """What the page needs to draw itself."""
        r = self.run
        # an official checkpoint does not record how long it trained (None: the page says so)
        return {"api_version": API_VERSION, "setup": r.setup, "kimg": r.kimg, "resolution": r.phase.resolution,
                "channels": r.schedule.channels, "latent_size": self.latent_size, "num_ws": self.num_ws,
                "lod": r.phase.lod, "checkpoint": r.path.name,
                # which weights draw the pictures (a new field, as noise_inputs): the page says so
                "ema": self.ema,
                "style_levels": {k: [a, b - 1] for k, (a, b) in style_ranges(self.num_ws).items()}
                if self.num_ws > 1 else {},
                # kind and norm: the page groups the sliders by kind and says each one's own length
                "directions": [{"name": d.name, "lo": d.lo, "hi": d.hi, "source": d.source, "removable": d.uploaded,
                                "kind": d.kind, "norm": d.norm} for d in self.directions],
                "truncation": dict(zip(("psi", "cutoff"), self.truncation)),
                "psi_range": list(PSI_RANGE), "noise_modes": list(NOISE_MODES),
                # False where G takes no noise (an MLP ALAE): every noise mode gives the same
                # picture, so the page offers none (a new field: api_version stays, as no number
                # changes meaning)
                "noise_inputs": self.has_noise, "max_steps": MAX_STEPS,
                "max_refine_steps": MAX_PAGE_REFINE_STEPS,
                # a string: JavaScript reads a JSON number as a double, exact only to 2**53; the page
                # reads this as a BigInt, as it reads the seeds
                "seed_limit": str(SEED_LIMIT), "seed_range": seed_range_text(),
                "max_upload_bytes": self.max_upload_bytes, "notes": self.notes}

    # --- argument checks ----------------------------------------------------------------------------
    def _w(self, w, name: str = "w") -> torch.Tensor:
        if not isinstance(w, (list, tuple)) or len(w) != self.latent_size:
            got = len(w) if isinstance(w, (list, tuple)) else type(w).__name__
            raise UserError(f"{name}: expected a list of {self.latent_size} numbers (this model's w), got {got}")
        values = _json_floats(w, name, f"values must be within ±{MAX_ABS_W:g} (an encoded w lies within about ±10)")
        if not all(math.isfinite(v) for v in values):
            raise UserError(f"{name}: contains NaN or infinity")
        big = max(abs(v) for v in values)
        if big > MAX_ABS_W:  # finite in JSON, but it overflows float32 or G: the image would be NaN
            raise UserError(f"{name}: values must be within ±{MAX_ABS_W:g} (an encoded w lies within about ±10); "
                            f"got {big:g}")
        return torch.tensor(values, dtype=torch.float32).view(1, -1).to(self.device)

    def _ws(self, w, name: str) -> torch.Tensor:
        """A (or B) of mixing and interpolation: one w ``[latent]`` for every style input, or
        the styles ``[num_ws][latent]`` an edit answered; returns ``[1, num_ws, latent]``. UserError
        naming ``name`` for another count of rows, rows mixed with numbers (which item is which), and
        as :meth:`_w` for a row or w that is not ``latent`` finite numbers within ±``MAX_ABS_W``."""
        rows = [isinstance(r, (list, tuple)) for r in w] if isinstance(w, (list, tuple)) else []
        if rows and all(rows) and len(w) == self.num_ws:
            return torch.cat([self._w(r, name) for r in w]).unsqueeze(0)
        if any(rows):
            expected = (f"{name}: expected {self.num_ws} rows of {self.latent_size} numbers (this model's styles) or "
                        f"one w of {self.latent_size} numbers")
            if not all(rows):  # rows and numbers mixed: a count of "rows" would be the expected one
                i = rows.index(not rows[0])
                raise UserError(f"{expected}, got a list mixing rows and numbers (item 0 is "
                                f"{'a row' if rows[0] else 'a number'}, item {i} is not)")
            raise UserError(f"{expected}, got {plural(len(w), 'row')}")
        return self._w(w, name).unsqueeze(1).expand(-1, self.num_ws, -1)

    @staticmethod
    def _seed(seed) -> int:
        # the CLI's and the Python API's range (SEED_LIMIT): the page keeps a seed as its decimal digits
        # (a BigInt) and sends them as a JSON integer, which Python's json reads exactly past 2**53
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise UserError(f"seed: expected an integer in {seed_range_text()} (as alae-fast generate --seed), "
                            f"got {seed!r}")
        return seed

    @staticmethod
    def _refine_steps(steps) -> int:
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_PAGE_REFINE_STEPS:
            raise UserError(f"refine_steps: expected an integer in [0, {MAX_PAGE_REFINE_STEPS}] (steps of descent on "
                            f"the pixels from E(x); 0: E(x) itself; this page's limit, longer ones with alae-fast "
                            f"encode --refine-steps, up to {MAX_REFINE_STEPS}), got {steps!r}")
        return steps

    def _psi(self, psi) -> float:
        if psi is None:
            psi = self.truncation[0]
        try:  # the one rule (PSI_RANGE, alae_fast.models.base.check_psi) as a UserError
            return check_psi(psi, "psi")
        except (TypeError, ValueError) as e:
            raise UserError(str(e)) from None

    def _cutoff(self, cutoff, psi: float, psi_given: bool) -> int:
        if cutoff is None:
            return self.truncation[1]
        if isinstance(cutoff, bool) or not isinstance(cutoff, int) or not 1 <= cutoff <= self.num_ws:
            raise UserError(f"cutoff: expected an integer in [1, {self.num_ws}] (psi applies to style inputs 0 to "
                            f"cutoff-1 of this model's {self.num_ws}), got {cutoff!r}")
        if psi == 1:  # psi 1 truncates nothing, whatever the cutoff: refused as the CLI and run.generate do
            raise UserError(f"cutoff: {cutoff} has no effect " + (
                "with psi 1 (no truncation); give another psi or leave out cutoff" if psi_given else
                "without psi: this run's truncation psi is 1 (no truncation); give psi too or leave out cutoff"))
        return cutoff

    # --- pictures -------------------------------------------------------------------------------
    def _png(self, x: torch.Tensor) -> bytes:
        return png_bytes(to_display(x, self.run.phase.resolution)[0])

    def _decode(self, ws: torch.Tensor) -> torch.Tensor:
        return self.run.decode(ws, noise="zero")

    @torch.no_grad()
    def encode_upload(self, data: bytes, refine_steps: int = 0) -> dict:
        """An uploaded image (``data``: its file's bytes) -> ``{"w": [latent], "original": PNG,
        "reconstruction": PNG, "mse", "values", "notice", "refine_steps"}``: its w, the prepared
        original and G(w) (noise off), the mean squared error of the two pictures shown (the
        reconstruction clamped to [-1, 1] as its PNG is, so at most 4), the attribute values of w,
        ``notice``: what was done to the image beyond cropping and resizing it down (transparent
        pixels composited over black, colour converted to grey, a small image enlarged), or "",
        and the ``refine_steps`` taken.

        refine_steps: an int in [0, :data:`MAX_PAGE_REFINE_STEPS`] (1000); default 0: w = E(x),
        ALAE's own. Above 0, w = ``run.project(x, refine_steps, space="w")``: E(x) refined by
        descent on G's pixel error (module docstring), then decoded as every w here.

        Raises UserError naming ``refine_steps`` for a bad one (before the image is decoded) and
        for a descent that reached NaN or infinity, and :class:`~.uploads.UploadError` for a bad
        upload."""
        refine_steps = self._refine_steps(refine_steps)
        notes, res = LoadNotes(), self.run.schedule.resolution
        with self.decodes.hold():
            x = decode_image(data, res, self.run.schedule.channels, self.max_upload_bytes, self.max_pixels,
                             notes=notes)
        with self.lock:
            x = prepare_images(x, self.run.schedule, self.run.phase).to(self.device)
            # W only, never W+: the page edits, mixes and interpolates one w [latent], which the
            # directions act on; noise off, as every picture here is decoded
            w = self._refined(x, refine_steps) if refine_steps else self.run.encode(x)
            rec = self._decode(w)
        mse = float(torch.mean((to_display(rec, x.shape[-1]).clamp(-1, 1) - to_display(x, x.shape[-1])) ** 2))
        said = {"transparent": "it has transparent pixels: they were composited over black (the model has no alpha "
                               "channel)",
                "to_grey": "it is a colour image: it was converted to greyscale (the model has 1 channel)",
                "enlarged": f"it is smaller than the model's {res}x{res} pixels: it was enlarged to it"}
        notice = "; ".join(said[k] for k in LoadNotes.KINDS if getattr(notes, k))
        notice = f"{notice}; the original shown is what was encoded" if notice else ""
        return {"w": w[0].tolist(), "original": self._png(x), "reconstruction": self._png(rec), "mse": mse,
                "values": self.values(w[0].tolist()), "notice": notice, "refine_steps": refine_steps}

    def _refined(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        try:
            return self.run.project(x, steps, space="w", noise="zero")
        except FloatingPointError:  # the page cannot change the lr: said as a 400, not a crash's 500
            raise UserError(f"refine_steps: the descent from E(x) reached NaN or infinity within {steps} steps "
                            f"(Adam's lr {DEFAULT_REFINE_LR:g} is too large for this model and image); encode "
                            f"it with refine_steps 0") from None

    def values(self, w) -> list[float]:
        """The attribute value of ``w`` (one w ``[latent]`` or styles ``[num_ws][latent]``: of style
        input 0, where the edit reads them) along each direction: the sliders' starting points."""
        dirs = list(self.directions)  # one list throughout, whatever another request adds or removes
        wt = self._ws(w, "w")[:, 0].double().cpu()
        if not dirs:
            return []
        d = torch.from_numpy(np.stack([d.vector for d in dirs]))
        return editing.projections(wt, self.run.model.w_avg.double().cpu(), d)[0].tolist()

    @torch.no_grad()
    def edit(self, w, amounts, names=None) -> dict:
        """``w`` moved to attribute values ``amounts`` (one per direction): ``{"image": PNG,
        "ws": the styles decoded, [num_ws][latent], "w": style input 0}``. As the official demo
        (and ``alae-fast edit``) does, style inputs from ``alae_fast.edit.EDIT_LAYERS`` (16) on
        keep ``w``: at 1024² the last two; a model with fewer inputs has all of them edited.
        ``ws`` given as A or B of mixing and interpolation decodes to the same picture.

        ``w`` may also be styles ``[num_ws][latent]`` (a sample truncated below a cutoff, an
        earlier edit): the demo's edit is made on style input 0 (the values are read there) and
        every edited style input moves by the same vector, keeping its difference from input 0.
        ``names`` (optional): the directions the amounts are for, in order; when given and not
        the server's directions (another page added or removed one), :class:`Conflict` (409)
        rather than amounts applied to the wrong directions.

        Raises UserError naming ``w``, ``amounts`` or ``names``: amounts must be one finite
        number per direction, each at most ``alae_fast.edit.MAX_AMOUNT`` (1e6) in magnitude (a
        finite 1e308 would overflow the styles into a NaN picture), and the edited styles must
        fit the model's float32."""
        styles = self._ws(w, "w")
        dirs = list(self.directions)  # one list throughout, whatever another request adds or removes
        if names is not None and not isinstance(names, (list, tuple)):
            raise UserError(f"names: expected a list of direction names (strings), got {type(names).__name__}")
        if names is not None and not all(isinstance(n, str) for n in names):
            i = next(i for i, n in enumerate(names) if not isinstance(n, str))
            raise UserError(f"names: expected a list of direction names (strings), got {names[i]!r} "
                            f"({type(names[i]).__name__}) at index {i}")
        if names is not None and list(names) != [d.name for d in dirs]:
            raise Conflict(_names_differ(list(names), [d.name for d in dirs]))
        k = len(dirs)
        if not isinstance(amounts, (list, tuple)) or len(amounts) != k:
            got = len(amounts) if isinstance(amounts, (list, tuple)) else type(amounts).__name__
            raise UserError(f"amounts: expected {k} numbers (one per direction), got {got}")
        a = torch.tensor(_json_floats(amounts, "amounts", f"expected values within ±{MAX_AMOUNT:g} (the edit's "
                                                          f"limit, alae_fast.edit.MAX_AMOUNT)"), dtype=torch.float64)
        if not torch.isfinite(a).all():
            raise UserError("amounts: contain NaN or infinity")
        if k and a.abs().max() > MAX_AMOUNT:
            raise UserError(f"amounts: expected values within ±{MAX_AMOUNT:g} (the edit's limit, "
                            f"alae_fast.edit.MAX_AMOUNT); got {float(a.abs().max()):g}")
        d = torch.from_numpy(np.stack([d.vector for d in dirs])) if k else torch.zeros(0, self.latent_size,
                                                                                      dtype=torch.float64)
        ws64 = styles.double().cpu()
        ws = editing.apply_directions(ws64[:, 0], self.run.model.w_avg.double().cpu(), d, a.view(1, -1),
                                      num_ws=self.num_ws, cutoff=EDIT_LAYERS, ws_original=ws64)
        ws = ws.to(self.device, torch.float32)
        if not torch.isfinite(ws).all():
            raise UserError("amounts: the edited styles overflow float32 (an amount times its direction's length "
                            "is too large); use smaller amounts")
        with self.lock:
            png = self._png(self._decode(ws))
        return {"image": png, "ws": ws[0].tolist(), "w": ws[0, 0].tolist()}

    @torch.no_grad()
    def generate(self, seed, psi=None, noise_mode: str = "const", cutoff=None) -> dict:
        """The sample of ``seed``: w = F(z of the seed) truncated by ``psi`` towards w_avg on style
        inputs [0, ``cutoff``), exactly ``alae-fast generate --seeds SEED --psi PSI --cutoff CUTOFF
        --noise-mode MODE`` (cutoff = num_ws: the CLI's ``--psi`` without ``--cutoff``; both None:
        its defaults, :attr:`truncation`).

        Args: ``seed`` an int in [0, ``SEED_LIMIT``) = [0, 2**63), as the CLI's; ``psi`` a number in
        ``PSI_RANGE`` [-1, 2] (default None: the config's); ``noise_mode`` one of ``NOISE_MODES`` (default "const"); ``cutoff``
        an int in [1, num_ws] (default None: the config's, within [0, num_ws]), refused with psi 1
        (given, or the config's when psi is None), where it would change nothing.

        Returns ``{"image": PNG, "plain": PNG, "ws": the styles [num_ws][latent], "w": style
        input 0, "psi": float, "cutoff": int}``: ``plain`` is G(ws) without noise, the picture
        mixing, interpolation and editing decode from ws (the page shows that one once the
        sample is used there). UserError naming the bad argument."""
        seed, psi_given, psi = self._seed(seed), psi is not None, self._psi(psi)
        cutoff = self._cutoff(cutoff, psi, psi_given)
        if noise_mode not in NOISE_MODES:
            raise UserError(f"noise_mode: expected one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        model = self.run.model
        with self.lock:
            # generate_seeds takes the CLI's spellings: None past the last input (--psi without
            # --cutoff) and for psi 1, which truncates nothing whatever the config's cutoff says,
            # and psi 1 for a config's cutoff of 0, which truncates no input either
            x = generate_seeds(self.run, [seed], psi=1.0 if cutoff == 0 else psi, noise_mode=noise_mode,
                               cutoff=None if cutoff == 0 or cutoff >= self.num_ws or psi == 1 else cutoff)
            ws = model.mapping(seed_latent(seed, self.latent_size).to(self.device)).unsqueeze(1)
            ws = ws.expand(-1, self.num_ws, -1)
            if psi != 1.0:  # as model.generate: psi 1 leaves w untouched
                ws = model.truncate(ws, psi, cutoff)
            plain = x if noise_mode == "none" else self._decode(ws)
        return {"image": self._png(x), "plain": self._png(plain), "ws": ws[0].tolist(), "w": ws[0, 0].tolist(),
                "psi": psi, "cutoff": cutoff}

    @torch.no_grad()
    def mix(self, wa, wb) -> dict[str, bytes]:
        """B with A's coarse, middle and fine styles (:func:`style_ranges`), PNG each, plus A and B."""
        if self.num_ws < 2:
            raise UserError(f"style mixing needs a model with several style inputs; this one has {self.num_ws}")
        a, b = self._ws(wa, "wa"), self._ws(wb, "wb")
        out = {}
        with self.lock:
            out["a"], out["b"] = self._png(self._decode(a)), self._png(self._decode(b))
            for name, (lo, hi) in style_ranges(self.num_ws).items():
                out[name] = self._png(self._decode(mix_ranges(a, b, lo, hi)))
        return out

    @torch.no_grad()
    def interpolate(self, wa, wb, steps=8) -> list[bytes]:
        """``steps`` images on the straight line from wa to wb (both ends included), PNG each."""
        if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
            raise UserError(f"steps: expected an integer in [2, {MAX_STEPS}], got {steps!r}")
        a, b = self._ws(wa, "wa"), self._ws(wb, "wb")
        t = torch.linspace(0.0, 1.0, steps, device=a.device).view(-1, 1, 1)
        with self.lock:
            x = self._decode(torch.lerp(a.expand(steps, -1, -1), b.expand(steps, -1, -1), t))
        return [self._png(x[i:i + 1]) for i in range(steps)]
