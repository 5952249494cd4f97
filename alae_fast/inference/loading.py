"""Opening a trained run: a checkpoint's EMA model at the level of detail it reached.

:func:`load_run` reads an alae_fast checkpoint (``ckpt-*.pt``, a run folder, a file
``alae-fast convert`` wrote) or one of the official ALAE code and gives a :class:`LoadedRun`;
:func:`convert_official` writes an official checkpoint as an alae_fast one; :func:`run_data`
says which data the run was trained on. Checkpoint files are found and read with
:mod:`alae_fast.training.checkpoint` (the format training writes) and
:mod:`alae_fast.models.official_io` (no pickled code runs).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._words import plural, word_for
from ..errors import UserError, caller_stacklevel, first_line
from ..models import MLPALAEConfig, ModelConfig, build_model
from ..models.base import NOISE_MODES as DECODE_NOISE_MODES
from ..models.base import check_finite, check_images, check_latent_values, check_pixel_values
from ..models.official import is_official_checkpoint, official_growth, official_model_from_state
from ..models.official_io import _read_checkpoint_file
from ..ops._dispatch import check_bool
from ..training.checkpoint import checkpoint_damage, find_latest_checkpoint, list_checkpoints
from ..training.schedule import LODSchedule, Phase, schedule_from_config
from .memory import check_images_fit
from .projection import (DEFAULT_REFINE_LR, DEFAULT_REFINE_STEPS, PROJECT_BATCH, check_refinement,
                         project_latents)
from .sampling import _check_noise, _said, check_count, check_seed, check_truncation, sample_images

__all__ = ["CHECKPOINT_FORMAT", "LoadedRun", "load_run", "check_device", "convert_official", "recorded_data_spec",
           "recorded_data_content", "run_data"]

CHECKPOINT_FORMAT = "alae_fast.train/1"


# The accelerators this package runs on besides the CPU (ops without a kernel of theirs use
# their PyTorch references): each device type with what to call it in a message.
_ACCELERATORS = {"cuda": "CUDA", "mps": "MPS (Apple GPU)", "xpu": "XPU (Intel GPU)"}
_DEVICES_SAID = "cpu, cuda[:N], mps or xpu[:N]"


def _accelerator(kind: str) -> tuple[bool, int]:
    """(whether this torch was built with ``kind``, how many such devices it can use now), asked
    so that nothing raises: ``torch.xpu`` and ``torch.mps`` of a torch without them raise
    rather than answer when used."""
    if kind == "cuda":
        return torch.backends.cuda.is_built(), torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "mps":
        return torch.backends.mps.is_built(), 1 if torch.backends.mps.is_available() else 0
    xpu = getattr(torch, "xpu", None)
    available = xpu is not None and xpu.is_available()
    built = available or bool(getattr(xpu, "_is_compiled", lambda: False)())
    return built, xpu.device_count() if available else 0


def check_device(device, name: str = "device") -> torch.device:
    """``device`` (a name such as ``"cpu"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``) as a
    ``torch.device`` this torch can use. Raises TypeError naming ``name`` for a value that is
    neither a string nor a torch.device, and :class:`~alae_fast.errors.UserError` (a
    ValueError), one line naming ``name``, for a string that is no device name, a device type
    other than cpu, cuda, mps, xpu (e.g. meta), an accelerator this torch was built without or
    that has no device visible (CUDA, MPS, XPU alike), and an index past the devices there are.
    ``name="--device"`` gives the CLI's wording (``--device cuda: ...; use --device cpu``)."""
    flag = name.startswith("--")
    shown = f"{name} {device}" if flag else f"{name}={str(device)!r}"
    cpu = f"{name} cpu" if flag else f"{name}='cpu'"
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name}: expected a device name such as 'cpu' or 'cuda:0' or a torch.device; "
                        f"got {_said(device)}")
    try:
        with warnings.catch_warnings():  # torch warns of names it will drop ('mkldnn'): refused below anyway
            warnings.simplefilter("ignore")
            dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"{name}: {str(device)!r} is not a device name (expected {_DEVICES_SAID})") from e
    if dev.type == "cpu":
        return dev
    if dev.type not in _ACCELERATORS:
        raise UserError(f"{name}: {str(device)!r} is not supported (expected {_DEVICES_SAID})")
    what = _ACCELERATORS[dev.type]
    built, visible = _accelerator(dev.type)
    if not visible:
        why = f"this torch was built without {what}" if not built else (
            "no GPU is visible" if dev.type == "cuda" else f"no {what} device is available")
        raise UserError(f"{shown}: {why}; use {cpu}")
    if dev.index is not None and dev.index >= visible:
        device_word = "GPU" if dev.type == "cuda" else f"{what.split()[0]} device"
        raise UserError(f"{shown}: only {plural(visible, device_word)} {word_for(visible, 'is', 'are')} visible")
    return dev


@dataclass
class LoadedRun:
    """A checkpoint opened for use.

    model: the EMA model (eval mode, no gradients) on the requested device; config: its
    model config; schedule: the run's schedule; phase: where training stood (level, blend);
    setup: the setup name ('official' for a checkpoint of the official ALAE code);
    images_seen: training images consumed (for an official checkpoint, which does not record it,
    the schedule's end: where its phase comes from; :attr:`kimg` is then None); path: the file
    read; noise_mode: G's noise wherever a method's ``noise`` is None, its default (``decode``,
    ``reconstruct``, ``generate``, and the functions of :mod:`.sampling` that decode through
    them); 'zero' (no noise) unless the run was opened with another (see ``ALAEModel.decode``).

    Images are ``[N, C, ...]`` with C the model's channels (``schedule.channels``), at every
    level alike: a colour run also takes grey ``[N, 1, ...]`` images, their channel repeated to
    R, G and B (lossless, as ``load_image_files`` and :func:`prepare_images` read grey files); a
    greyscale run refuses colour ones (converting them loses colour: ``load_image_files``
    converts colour files, with a warning).

    Every method checks its arguments first and raises, naming the method and the argument:
    TypeError for an argument of the wrong type (a non-tensor or a tensor of a non-float dtype,
    uint8 images included; a count, seed, cutoff or step count that is not an int: a float, a
    bool, a string, None, a tensor; a psi or lr that is not a real number; a noise or space that
    is neither a string nor, for noise, a list), ValueError for one of the right type with a bad
    value: a wrong shape or channel count, NaN or infinity (in images, latents and noise tensors
    alike), images with a value beyond +-``PIXEL_LIMIT`` (4: pixels belong in [-1, 1], and 0..255
    ones are refused rather than encoded into nonsense), a tensor on another device than the model
    (:attr:`device`), a count < 1, a seed outside [0, 2**63), a psi outside ``PSI_RANGE`` [-1, 2],
    an unknown noise mode or space; ValueError too for a w with a value beyond
    +-``MAX_ABS_W`` (10000: an encoded or mapped w lies within about +-10, and G's output
    overflows to NaN or 1e27 long before float32 does) and for more images at once than the
    memory free now holds (:func:`alae_fast.inference.memory.check_images_fit`, naming the most
    that fit).
    """

    model: torch.nn.Module
    config: ModelConfig
    schedule: LODSchedule
    phase: Phase
    setup: str
    images_seen: int
    path: Path
    state: dict
    noise_mode: str = "zero"
    # bytes one image's decode needs, per (lod, blend): alae_fast.inference.memory
    _decode_bytes: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        # the dataclass repr would print the whole checkpoint (weights, optimiser state, RNG
        # states: ~600k characters for digits-32) where a notebook shows ``run``
        trained = "kimg not recorded" if self.kimg is None else f"{self.kimg:g} kimg"
        return (f"LoadedRun({self.setup!r}, {type(self.config).__name__}, {self.schedule.resolution}x"
                f"{self.schedule.resolution}x{self.schedule.channels}, lod {self.phase.lod} (blend "
                f"{self.phase.blend:g}), {trained}, "
                f"{plural(int(self.model.num_ws), 'style input')}, latent {self.config.latent_size}, device {self.device}, noise_mode "
                f"{self.noise_mode!r}, path {str(self.path)!r})")

    @property
    def kimg(self) -> float | None:
        """Thousands of training images the run consumed; None for a checkpoint of the official
        code (read or converted), which does not record it."""
        return None if self.setup == "official" else self.images_seen / 1000.0

    @property
    def device(self) -> torch.device:
        """The device of the model's weights: where ``encode``/``decode`` want their tensors."""
        return next(self.model.parameters()).device

    def _check_tensor(self, t, op: str, name: str, images: bool | None = None) -> None:
        """A float tensor on the model's device, without NaN or infinity (shapes: the model's);
        ``images`` (default: ``name == "x"``) adds the image checks."""
        images = name == "x" if images is None else images
        if images:
            check_images(t, op, name)  # a tensor of a float dtype
        elif not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor; got {type(t).__name__}")
        elif not t.is_floating_point():
            raise TypeError(f"{op}: {name} must have a float dtype (float16, bfloat16, float32, float64); "
                            f"got {t.dtype}")
        if t.device != self.device:
            raise ValueError(f"{op}: {name} is on {t.device} and the model on {self.device}; "
                             f"move it with {name}.to(run.device)")
        if t.numel() == 0:
            raise ValueError(f"{op}: {name} is empty (shape {tuple(t.shape)}); give at least one")
        check_finite(t, op, name)
        if images:
            check_pixel_values(t, op, name)

    def _level_images(self, x, op: str, name: str = "x") -> torch.Tensor:
        """x checked and at the level the run reached: images at the run's full resolution (what
        ``load_image_files`` and the data give) are brought there as training does
        (:func:`~alae_fast.inference.pixels.prepare_images`). Errors name ``op`` and ``name``
        (the function the caller called and its argument: interpolate_latents' a and b)."""
        from .pixels import prepare_images

        self._check_tensor(x, op, name, images=True)
        C, r, R = self.schedule.channels, self.phase.resolution, self.schedule.resolution
        if x.ndim == 4 and x.shape[1] == 1 and C == 3:
            # a grey image is the colour one with R = G = B: repeated at every level, as
            # prepare_images (the full-resolution path) and the image loaders read grey files
            x = x.expand(-1, 3, -1, -1)
        if x.ndim == 4 and x.shape[1] != C and x.shape[-2:] in ((r, r), (R, R)):
            how = (" (greyscale): convert colour images to grey first (load_image_files does, with a warning)"
                   if (x.shape[1], C) == (3, 1) else "")
            raise ValueError(f"{op}: {name} has {plural(x.shape[1], 'channel')}; this run's model takes {C}{how}")
        if x.ndim == 4 and x.shape[-2:] == (R, R) and r != R:
            return prepare_images(x, self.schedule, self.phase)
        if x.ndim != 4 or tuple(x.shape[1:]) != (C, r, r):
            full = f" or [N, {C}, {R}, {R}] (the run's full resolution)" if r != R else ""
            raise ValueError(f"{op}: {name} must have shape [N, {C}, {r}, {r}] (the level the run reached){full}; "
                             f"got {tuple(x.shape)}")
        return x

    def _noise(self, noise, op: str, n: int | None = None):
        """``noise`` checked for ``op``, None taking :attr:`noise_mode`; a list's count and shapes
        too when ``n`` (the images it is for) is given, so that its errors name ``op`` rather
        than the ``decode`` inside it."""
        noise = self.noise_mode if noise is None else noise
        _check_noise(noise, op, device=self.device)
        check_list = getattr(getattr(self.model, "generator", None), "check_noise_list", None)
        if n is not None and isinstance(noise, (list, tuple)) and check_list is not None:
            check_list(noise, n, self.phase.lod, op)
        return noise

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): images with pixels in [-1, 1] -> w ``[N, latent_size]`` in x's dtype (the ops
        compute in it; half types accumulate in float32).

        x: ``[N, C, r, r]`` at the level the run reached (``phase.resolution``), or ``[N, C, R,
        R]`` at the run's full resolution (``schedule.resolution``; what ``load_image_files``
        gives), which is pooled and faded to the level as in training (:func:`prepare_images`);
        the two are the same once the run is fully grown. C is the model's channel count, or 1
        for a colour run (grey images, repeated: see the class docstring). A float tensor
        (float16, bfloat16, float32, float64) on :attr:`device`, finite, N >= 1 (errors: the
        class docstring)."""
        return self._encode(x, "encode")

    def _encode(self, x, op: str, name: str = "x") -> torch.Tensor:
        """:meth:`encode`, its errors naming ``op`` and ``name``: a function of :mod:`.sampling`
        that encodes its own arguments names itself and them."""
        x = self._level_images(x, op, name)
        # E mirrors G level by level: G's bound stands for E's
        check_images_fit(self, op, f"{name} of {x.shape[0]} images", batch=x.shape[0])
        return self.model.encode(x, self.phase.lod, self.phase.blend)

    def decode(self, w: torch.Tensor, noise=None) -> torch.Tensor:
        """G(w): w ``[N, latent_size]`` or ``[N, num_ws, latent_size]`` (a float tensor on
        :attr:`device`, finite, N >= 1) -> images ``[N, C, r, r]`` with pixels in about [-1, 1]
        (not clamped): for a StyleALAE run in the model's dtype (float32; w of another float dtype
        is cast to it), for an MLP ALAE run in w's dtype (the MLP computes in it).

        ``noise=None`` (default) takes ``self.noise_mode`` ("zero" unless the run was opened
        with another): with "zero" G's per-pixel noise inputs are off, so the same w always gives
        the same image; ``"random"`` draws fresh noise from torch's global generator on every call
        (seed it with ``torch.manual_seed`` to repeat a picture); any other ``decode`` mode works
        too, and so does a list of per-layer noise tensors (``StyleGenerator.noise_inputs``: float
        tensors ``[N or 1, 1, r_k, r_k]`` or None, on :attr:`device`, finite). Errors: the class
        docstring."""
        self._check_tensor(w, "decode", "w")
        check_latent_values(w, "decode", "w")
        if w.ndim in (2, 3):  # else the model names the shape it wants
            check_images_fit(self, "decode", f"w of {w.shape[0]} latents", batch=w.shape[0])
        noise = self._noise(noise, "decode")
        return self.model.decode(w, self.phase.lod, self.phase.blend, noise=noise)

    def reconstruct(self, x: torch.Tensor, noise=None, refine_steps: int = 0, space: str = "w",
                    refine_lr: float = DEFAULT_REFINE_LR) -> torch.Tensor:
        """G(E(x)) (see :meth:`encode` and :meth:`decode`): images ``[N, C, r, r]`` at the level
        the run reached, whichever of encode's two resolutions x has, in :meth:`decode`'s dtype
        (StyleALAE: the model's, float32; MLP ALAE: x's, which E's w keeps). ``noise``: as :meth:`decode`; None (default) takes ``self.noise_mode``, so the result
        is ``decode(encode(x))`` (deterministic with the default 'zero').

        refine_steps: an int in [0, 100000]; default 0 is ALAE's own reconstruction. Above 0,
        G(w) with w = :meth:`project` ``(x, refine_steps, refine_lr, space)``: E(x) refined by
        descent on the pixel error (not in the ALAE paper; :mod:`.projection`). space: "w"
        (default) or "w+"; refine_lr: a number in (0, 1000] (default 0.05), as :meth:`project`'s
        lr. Both apply only with refine_steps >= 1: with refine_steps 0, a space other than "w" or
        a refine_lr other than the default would change nothing, and raises ValueError naming it
        (as ``alae-fast reconstruct`` refuses ``--space w+`` and ``--refine-lr`` without
        ``--refine-steps``). Errors: the class docstring, naming ``reconstruct``."""
        refine_steps, refine_lr, space = check_refinement("reconstruct", refine_steps, refine_lr, space,
                                                           ("refine_steps", "refine_lr", "space"))
        if not refine_steps:  # said, not ignored: the result would be G(E(x)) whatever they are
            if space != "w":
                raise ValueError(f"reconstruct: space {space!r} applies only with refine_steps >= 1 (the latents "
                                 f"refined in w+); with refine_steps 0 the latents are E(x), one w: expected space "
                                 f"'w' (the default), or refine_steps >= 1")
            if refine_lr != DEFAULT_REFINE_LR:
                raise ValueError(f"reconstruct: refine_lr {refine_lr:g} applies only with refine_steps >= 1 (the "
                                 f"descent's rate); with refine_steps 0 nothing is refined: expected refine_lr left "
                                 f"at its default ({DEFAULT_REFINE_LR:g}), or refine_steps >= 1")
        x = self._level_images(x, "reconstruct")
        noise = self._noise(noise, "reconstruct", x.shape[0])
        # before a refinement's minutes: its result is decoded at once too
        check_images_fit(self, "reconstruct", f"x of {x.shape[0]} images", batch=x.shape[0])
        if refine_steps:  # project()'s work on what was checked here, its words naming reconstruct
            w = project_latents(self.model, x, self.phase.lod, self.phase.blend, steps=refine_steps, lr=refine_lr,
                                space=space, noise=noise, op="reconstruct")
            return self.decode(w, noise=noise)
        return self.decode(self.model.encode(x, self.phase.lod, self.phase.blend), noise=noise)

    def project(self, x: torch.Tensor, steps: int = DEFAULT_REFINE_STEPS, lr: float = DEFAULT_REFINE_LR,
                space: str = "w", noise=None) -> torch.Tensor:
        """The latents of x found by descent on G's pixel error from E(x)
        (:func:`~alae_fast.inference.projection.project_latents`, whose docstring gives the
        arithmetic and the papers it follows; not in the ALAE paper or the official code).

        x: as :meth:`encode` (either resolution); steps: an int in [0, 100000] (default 100; 0
        gives E(x), unrefined: in space "w+" E(x) repeated for each style input, ``[N, num_ws,
        latent_size]``, the start a w+ descent takes; lr is then not used. steps=0 is an explicit
        request for that starting point, e.g. the first of a sweep over steps, so it is taken, not
        refused as :meth:`reconstruct` refuses a space or lr without refine_steps); lr: a number in (0, 1000] (default 0.05, Adam's, in w's units); space: "w"
        (default: ``[N, latent_size]``, what :meth:`encode` gives and the editing directions act
        on) or "w+" (``[N, num_ws, latent_size]``, one w per style input: closer, less like G's
        own latents); noise: as :meth:`decode` (None: ``self.noise_mode``; the default 'zero'
        makes the result deterministic). Returns w detached, on x's device, in the dtype the encoder
        gives for x (x's: float64 for float64 images, float32 for float32 ones), for :meth:`decode`.
        Errors: the class docstring, naming ``project``; FloatingPointError when the descent
        diverges (an lr too large). Warns (RuntimeWarning, attributed to the caller's line) when
        some images kept E(x): no step lowered their pixel error."""
        steps, lr, space = check_refinement("project", steps, lr, space)
        x = self._level_images(x, "project")
        noise = self._noise(noise, "project", x.shape[0])
        # the descent decodes (and differentiates) its batches at once
        check_images_fit(self, "project", f"x of {x.shape[0]} images", batch=min(x.shape[0], PROJECT_BATCH))
        return project_latents(self.model, x, self.phase.lod, self.phase.blend, steps=steps, lr=lr, space=space,
                               noise=noise, op="project")

    def generate(self, n: int, seed: int = 0, psi: float | None = None, noise=None,
                 cutoff: int | None = None) -> torch.Tensor:
        """``n`` samples G(F(z)), z ~ N(0, I) drawn from ``seed``, truncated by ``psi`` towards
        w_avg on the style inputs below ``cutoff``: images ``[n, C, r, r]`` in about [-1, 1].
        ``noise``: a ``decode`` mode, or None (default) for ``self.noise_mode`` ('zero' unless
        the run was opened with another). Every mode repeats for a seed: "zero" and "const" draw
        nothing, "random" and "batch" are seeded from ``seed`` (:func:`sample_images`).

        psi None (default) takes the config's ``truncation_psi`` and ``truncation_cutoff``, as
        ``alae-fast generate`` does: the official 0.7 below style input 8 for the paper presets
        and official checkpoints, no truncation (1) for alae_fast's own presets; a psi given
        alone truncates every style input (cutoff None), as ``--psi`` does.

        n: an int >= 1 (to decode latents of your own, use :meth:`decode` or
        ``run.model.generate(z, ...)``); seed: an int in [0, 2**63); psi: None or a finite number
        in ``PSI_RANGE`` [-1, 2]; noise: None or a ``decode`` mode; cutoff: None or an int in
        [1, num_ws] given with a psi other than 1 (a cutoff of 0, past the model's style
        inputs, or with no truncation to apply would change nothing, as ``alae-fast generate``
        refuses too). TypeError naming the argument for one of the wrong type (a float, bool,
        string, None or tensor n, seed or cutoff; a psi that is not a real number; a noise
        neither a string nor a list), ValueError for one of the right type with a bad value."""
        if isinstance(n, torch.Tensor):
            raise TypeError(f"generate: n must be an int >= 1 (how many images); got a tensor of shape "
                            f"{tuple(n.shape)}: to decode latents of your own use run.decode(w) or "
                            f"run.model.generate(z, ...)")
        n = check_count(n, "n", "generate")
        seed = check_seed(seed, "seed", "generate")
        check_truncation(self, psi, cutoff, "generate")  # passed on as given: the config's pair is not the caller's
        noise = self._noise(noise, "generate", n)
        check_images_fit(self, "generate", f"n {n}", batch=n)  # the arguments first: a bad psi is said as such
        return sample_images(self, n, psi=psi, seed=seed, noise=noise, cutoff=cutoff)


def _resolve_checkpoint(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        if not list_checkpoints(folder):
            raise FileNotFoundError(f"no checkpoint (ckpt-*.pt) in {str(folder)!r}")
        return folder
    if not p.is_file():
        from ..errors import check_regular_file  # "does not exist" only when nothing is there

        check_regular_file(p, f"checkpoint {str(p)!r}", f"; {_LOAD_RUN_WANTS}")
    return p


# What a file that is no checkpoint begins with, and what it then is (said in the refusal).
_OTHER_FILES = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                (b"GIF8", "a GIF image"), (b"BM", "a BMP image"), (b"\x93NUMPY", "a NumPy .npy array"),
                (b"\x1f\x8b", "a gzip file"))
# The keys by which a JSON file written by this package is recognised: a run's config.json
# (alae_fast.training.run), the metrics of `alae-fast evaluate` and of training (eval.json).
_RUN_CONFIG_KEYS = {"setup", "model", "schedule"}
_METRICS_KEYS = {"reconstruction_mse", "latent"}
_LOAD_RUN_WANTS = "pass the run folder or one checkpoint file (its checkpoints/ckpt-*.pt, or an official .pth)"
_RUN_CONFIG = "a run's config (it describes the run; the weights are in the run's checkpoints)"


def _json_kind(path: Path, text: str, complete: bool) -> str | None:
    """What a JSON (or JSON lines) file is, by its keys (this package's run config and metrics
    files by name); None when ``text`` is not JSON. ``complete``: ``text`` is the whole file."""
    import json

    if not complete:  # too long to parse here; no file this package writes next to a run is
        return "a JSON file" if path.suffix.lower() in (".json", ".jsonl") else None
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if obj is None or path.suffix.lower() == ".jsonl":  # JSON lines (a training log of one line parses whole)
        try:
            first = json.loads(text.splitlines()[0]) if text.strip() else None
        except (ValueError, IndexError):
            return None
        return "a JSON-lines file (a run's training log is one)" if isinstance(first, dict) else None
    if isinstance(obj, dict) and _RUN_CONFIG_KEYS <= set(obj):
        return _RUN_CONFIG
    if isinstance(obj, dict) and _METRICS_KEYS <= set(obj):
        return "a metrics file written by evaluate or by training (no weights)"
    return "a JSON file"


def _not_a_checkpoint(path: Path) -> str | None:
    """What ``path`` is when its first bytes show it is no torch checkpoint (an image, a NumPy
    array, a run's config.json, other JSON, text, another binary), as the rest of a sentence
    ``"<path> is ..."``; None for torch's zip archive and its legacy pickle (first byte 0x80),
    which are left to the reader (a file of 1-3 bytes that begin like the archive, what a cut
    checkpoint leaves, too)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    zip_magic = b"PK\x03\x04"
    # a zip archive, or the first 1-3 bytes of one (a cut file: checkpoint_damage says so)
    if head.startswith(zip_magic) or (head and zip_magic.startswith(head)) or head[:1] == b"\x80":
        return None
    for magic, kind in _OTHER_FILES:
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not merely a UTF-8 character cut by the 64 KiB read
            return "a binary file of another kind (neither a torch.save zip archive nor a pickle)"
        text = head[:e.start].decode("utf-8")
    if path.suffix.lower() in (".json", ".jsonl") or text.lstrip().startswith(("{", "[")):
        kind = _json_kind(path, text, complete=path.stat().st_size <= len(head))
        if kind is not None:
            return kind
    if path.suffix.lower() in (".yaml", ".yml"):
        return "a YAML file (an official config goes to config= / --config, beside its .pth checkpoint)"
    return "a text file"


def _check_intact(path: Path) -> None:
    """One-line :class:`UserError` naming ``path`` when its zip archive is damaged
    (:func:`~alae_fast.training.checkpoint.checkpoint_damage`: cut short, or an entry whose bytes
    no longer match their CRC-32, which torch would load as other weights or NaN), saying it is
    an alae_fast checkpoint when its first bytes (the pickle, where the format is named) show it."""
    try:
        damage = checkpoint_damage(path)
        if damage is None:
            return
        with open(path, "rb") as f:
            ours = CHECKPOINT_FORMAT.encode() in f.read(1 << 16)
    except OSError as e:
        raise UserError(f"checkpoint {str(path)!r} cannot be read ({e.strerror or first_line(e)})") from None
    what = "a damaged alae_fast checkpoint" if ours else "a damaged checkpoint"
    others = [p for _, p in list_checkpoints(path.parent) if p.name != path.name]
    older = f"; the run folder {str(_run_folder(path))!r} opens its newest undamaged one" if others else ""
    raise UserError(f"{path} is {what} ({damage}){older}")


def _read_checkpoint(path: Path, wanted: str = _LOAD_RUN_WANTS) -> Any:
    """The file's top-level object, read without running pickled code; an empty file, one that
    is not a checkpoint (not a torch file: an image, a run's config.json, text), or a damaged
    one (cut short, bytes that no longer match their CRC-32: :func:`_check_intact`) is one clear
    :class:`UserError` saying what the file is and ``wanted``, what to pass instead. The file's
    CRC-32s are compared once, by :func:`_check_intact` (in its words); the reader is told so,
    as ``read_official_checkpoint`` would read the whole file a second time to compare them."""
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    checked = path.is_file()
    if checked:
        try:
            kind = _not_a_checkpoint(path)
        except OSError as e:
            raise UserError(f"checkpoint {str(path)!r} cannot be read ({e.strerror or first_line(e)})") from None
        if kind == _RUN_CONFIG and wanted == _LOAD_RUN_WANTS:  # the folder beside it is what was meant
            wanted = (f"pass the run folder {str(path.parent)!r} (its newest checkpoint) or one of its "
                      f"checkpoints/ckpt-*.pt files")
        if kind is not None:
            raise UserError(f"{path} is {kind}, not a checkpoint; {wanted}")
        _check_intact(path)
    try:
        return _read_checkpoint_file(path, crcs_compared=checked)
    except (FileNotFoundError, UserError):
        raise
    except Exception as e:  # whatever torch's reader raises on a corrupt archive
        raise UserError(f"checkpoint {str(path)!r} is not a readable torch checkpoint ({first_line(e)})") from e


def load_run(path: str | os.PathLike, device: str | torch.device = "cpu", *,
             config: str | os.PathLike | ModelConfig | None = None, ema: bool = True,
             noise_mode: str = "zero") -> LoadedRun:
    """Open a checkpoint: a ``ckpt-*.pt`` file, a run folder (its newest loadable one), a file
    ``alae-fast convert`` wrote, or a checkpoint of the official ALAE code (``.pth``).

    config: for an official checkpoint only: its YAML config or a ModelConfig (default None:
    the architecture is inferred from the shapes); ema: for an official checkpoint, load the
    ``_s`` copies (default) or the training weights (alae_fast checkpoints always give the
    EMA model); noise_mode: ``LoadedRun.noise_mode``, one of ``ALAEModel.decode``'s modes.
    device: a name or ``torch.device`` this torch can use (:func:`check_device`). Files are read
    without running pickled code (``alae_fast.models.official_io``).

    Raises TypeError when ``path`` is not a str or os.PathLike, ``device`` neither a string nor a
    torch.device, ``ema`` not a bool (a string such as "False" would have been taken as True) or
    ``noise_mode`` not a string, FileNotFoundError when there is none, ValueError (one line naming the file) when the file is not a checkpoint of this
    package or of the official code (a :class:`~alae_fast.errors.UserError` saying what it is
    instead, e.g. the run's ``config.json``, an image, text, and what to pass) or its contents disagree (weights of another shape than its
    config, a missing part), and
    :class:`~alae_fast.errors.UserError` (a ValueError) naming ``device`` or ``noise_mode`` for a
    device this torch cannot use (CUDA without a GPU) or an unknown noise mode; both are checked
    before the file is read.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_run: path must be a run folder or checkpoint file (str or os.PathLike); "
                        f"got {type(path).__name__}")
    device = check_device(device, "device")
    ema = check_bool(ema, "ema", "load_run")
    if not isinstance(noise_mode, str):
        raise TypeError(f"noise_mode: expected one of {DECODE_NOISE_MODES}; got {_said(noise_mode)}")
    if noise_mode not in DECODE_NOISE_MODES:
        raise UserError(f"noise_mode: expected one of {DECODE_NOISE_MODES}; got {noise_mode!r}")
    target = _resolve_checkpoint(path)
    if target.is_dir():
        found = find_latest_checkpoint(target)
        if found is None:
            raise FileNotFoundError(f"no loadable checkpoint in {str(target)!r}")
        file, state = found
    else:
        file, state = target, _read_checkpoint(target)
    if is_official_checkpoint(state):
        return _official_run(state, Path(file), config, ema, device, noise_mode)
    if config is not None:
        raise ValueError(f"{file}: a config (--config) is only for checkpoints of the official ALAE code; "
                         f"this file is not one")
    if not ema:
        raise ValueError(f"{file}: --no-ema (ema=False) is only for checkpoints of the official ALAE code; this "
                         f"file is not one (an alae_fast checkpoint opens its EMA model; `alae-fast convert "
                         f"--no-ema` keeps an official file's training weights)")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{file}: not an alae_fast training checkpoint (format {CHECKPOINT_FORMAT!r})")
    try:
        config = ModelConfig.from_dict(state["model_config"])
        schedule = LODSchedule.from_dict(state["schedule"])
        growth = state.get("official_growth")
        if isinstance(growth, list) and len(growth) == 4:
            _warn_growing(f"{file} (converted from {state.get('converted_from', '?')})", growth, schedule)
        with torch.random.fork_rng(devices=[]):
            model = build_model(config)
        weights = state["trainer"]["ema"]["module"]
        images_seen = int(state["trainer"]["images_seen"])
    except KeyError as e:
        raise UserError(f"{file}: an alae_fast checkpoint without its {e.args[0]!r} entry (cut down or written "
                        f"by hand?); nothing to open") from None
    except (TypeError, ValueError) as e:  # a config or schedule field of the wrong type or out of range
        raise UserError(f"{file}: its model_config or schedule is not valid ({first_line(e)})") from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:  # torch's first line only says "Error(s) in loading state_dict"
        detail = "; ".join(line.strip() for line in str(e).splitlines()[1:3]) or first_line(e)
        raise UserError(f"{file}: its weights do not fit its model_config ({detail})") from None
    bad = next((name for name, t in weights.items() if isinstance(t, torch.Tensor) and t.is_floating_point()
                and not torch.isfinite(t).all()), None)
    if bad is not None:  # every picture would be NaN, silently: the API refuses NaN in x, w, z and noise too
        raise UserError(f"{file}: its EMA weight {bad} holds NaN or infinity (a run that diverged?); a model with "
                        f"non-finite weights draws nothing: open an earlier checkpoint")
    model = model.to(device)
    model.eval().requires_grad_(False)
    return LoadedRun(model, config, schedule, schedule.phase(images_seen), state.get("setup", "?"), images_seen,
                     Path(file), state, noise_mode)


def _official_schedule(config: ModelConfig) -> LODSchedule:
    """The schedule an official model is used with: its preset's; for the mnist_ref MLP one
    level at 28 px with the branch's batch 128 and lr 0.002."""
    if isinstance(config, MLPALAEConfig):
        return LODSchedule(max_lod=0, base_resolution=config.image_size, channels=config.image_channels,
                           lod_kimg=(6000.0,), lod_batch=(128,), lod_lr=(0.002,))
    return schedule_from_config(config)


def _official_run(state: dict, file: Path, config, ema: bool, device, noise_mode: str) -> LoadedRun:
    model, cfg = official_model_from_state(state, str(file), config, ema, device=device)
    schedule = _official_schedule(cfg)
    growth = None if isinstance(cfg, MLPALAEConfig) else official_growth(
        state, cfg.layer_count, config if isinstance(config, (str, os.PathLike)) else None)
    growing = growth is not None and growth[1] < schedule.max_lod
    if growing:
        _warn_growing(file, growth, schedule)
    # A finished training: the last level, faded in.
    images_seen = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    return LoadedRun(model, cfg, schedule, schedule.phase(images_seen), "official", images_seen, file,
                     {"format": "official", "ema": ema, **({"official_growth": list(growth)} if growing else {})},
                     noise_mode)


def _warn_growing(file, growth, schedule: LODSchedule) -> None:
    """The warning for an official checkpoint saved while its training was still growing
    (``growth``: :func:`~alae_fast.models.official.official_growth`'s answer), said by the
    official file and by what ``convert_official`` made of it."""
    # the official LODDriver saves as it grows (model_tmp_intermediate_lod*.pth): the levels
    # above were still untrained, and every picture at the last level shows them
    epoch, lod, per_lod, source = growth
    res = schedule.resolution_at(lod)
    warnings.warn(f"{file}: the official training had run {plural(epoch, 'epoch')} when this checkpoint was "
                  f"saved, at lod {lod} ({res}x{res}; {per_lod} epochs a level, {source}): its levels above "
                  f"were not trained yet, and it is used at its last level, "
                  f"{schedule.resolution}x{schedule.resolution}, as the official figure scripts use a "
                  f"checkpoint", RuntimeWarning, stacklevel=caller_stacklevel())


def convert_official(path: str | os.PathLike, out: str | os.PathLike,
                     config: str | os.PathLike | ModelConfig | None = None, ema: bool = True) -> Path:
    """Writes an official ALAE checkpoint as an alae_fast checkpoint that ``load_run`` (and every
    ``alae-fast`` command taking ``--ckpt``) opens: the converted model as the EMA model, its
    config, the preset's schedule at its end. Not resumable by ``alae-fast train`` (no
    optimiser state). Writes ``out`` atomically (temporary file, then rename) and returns it.

    Raises as ``load_run`` (TypeError for an ``ema`` that is not a bool); UserError when ``path``
    is a folder or not an official checkpoint, FileExistsError when ``out`` is a folder.
    """
    ema = check_bool(ema, "ema", "convert_official")
    target = _resolve_checkpoint(path)
    if target.is_dir():
        raise UserError(f"{str(path)!r} is a folder; convert reads one checkpoint file of the official ALAE code")
    state = _read_checkpoint(target, "convert reads a checkpoint file of the official ALAE code (e.g. model_157.pth)")
    if not is_official_checkpoint(state):
        if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
            raise UserError(f"{target}: not a checkpoint of the official ALAE code but an alae_fast one, which "
                            f"every --ckpt command opens as it is; nothing to convert")
        raise UserError(f"{target}: not a checkpoint of the official ALAE code (a torch file without its 'models' "
                        f"dict of encoder, generator, mapping and discriminator weights); nothing to convert")
    run = _official_run(state, target, config, ema, "cpu", "zero")
    out = Path(out)
    if out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} is a folder; give a file name")
    state = {"format": CHECKPOINT_FORMAT, "model_config": run.config.to_dict(), "schedule": run.schedule.to_dict(),
             "setup": "official", "converted_from": str(Path(path).resolve()), "official_ema": ema,
             "trainer": {"ema": {"module": run.model.state_dict()}, "images_seen": run.images_seen},
             # a file saved while its training grew warns when opened converted too
             **({"official_growth": run.state["official_growth"]} if "official_growth" in run.state else {})}
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, out)
    except (OSError, RuntimeError) as e:  # torch's writer raises RuntimeError for an unwritable path
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise UserError(f"--out {str(out)!r}: cannot write the checkpoint ({first_line(e)})") from None
    return out


def _run_folder(checkpoint: Path) -> Path:
    """The run folder a checkpoint file belongs to: the folder above a ``checkpoints/`` folder
    (where training writes), else the file's own folder (a converted or copied file). The CLI
    writes a command's default outputs there."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _run_config(run: LoadedRun) -> dict | None:
    """The run folder's ``config.json`` as a dict; None when there is none or it does not parse."""
    import json

    try:
        config = json.loads((_run_folder(run.path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def recorded_data_spec(run: LoadedRun) -> dict | None:
    """The ``data_spec`` a run recorded (see :mod:`alae_fast.data.spec`): from the checkpoint, else
    from the run folder's ``config.json`` (for runs saved before checkpoints held it, read from
    its ``options.data``); None when neither says."""
    from ..data.spec import data_spec

    spec = run.state.get("data_spec") if isinstance(run.state, dict) else None
    if spec is not None:
        return spec
    config = _run_config(run)
    if config is None:
        return None
    if config.get("data_spec") is not None:
        return config["data_spec"]
    options = config.get("options")
    if isinstance(options, dict) and "data" in options:
        return data_spec(options["data"])
    return None


def recorded_data_content(run: LoadedRun) -> dict | None:
    """The ``data_content`` a run trained on an image folder recorded (which files its held-out
    split was chosen from; :func:`alae_fast.data.spec.data_content`): from the checkpoint, else
    from the run folder's ``config.json``; None when neither holds one (other data, older runs)."""
    content = run.state.get("data_content") if isinstance(run.state, dict) else None
    if content is not None:
        return content
    config = _run_config(run)
    return config.get("data_content") if config is not None else None


def run_data(run: LoadedRun, given: str | None = None) -> tuple[str | None, str | None]:
    """The data a command on ``run`` uses: ``given`` (its ``--data``) when set, else the data the
    run was trained on (:func:`recorded_data_spec`). Returns ``(path or None for the digits,
    note)``, the note being what the command should print (None: nothing to say). Raises
    :class:`~alae_fast.errors.UserError` when the recorded folder is gone, and for an official
    checkpoint (or one converted from it) without ``given``: it records no data, and the
    embedded digits say nothing about a face, bedroom or MNIST model."""
    from ..data.spec import resolve_run_data
    from ..errors import UserError

    if given is None and run.setup == "official":
        raise UserError(f"{run.path}: an official ALAE checkpoint records no training data; pass --data FOLDER "
                        f"(images like those it was trained on, e.g. aligned faces for FFHQ)")
    return resolve_run_data(recorded_data_spec(run), given)
