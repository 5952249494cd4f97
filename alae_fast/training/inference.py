"""Using a trained run: load a checkpoint's EMA model, make pictures, compute the metrics.

Everything here works on the EMA copy of the networks (the one ALAE uses for all outputs),
at the level of detail and blend the checkpoint had reached. Used by the ``alae-fast``
commands ``generate``, ``reconstruct``, ``interpolate``, ``style-mix`` and ``evaluate``, and
by the end-of-training report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError, first_line
from ..models import MLPALAEConfig, ModelConfig, build_model
from ..models.official import is_official_checkpoint, official_model_from_state
from ..models.official_io import read_official_checkpoint
from .checkpoint import find_latest_checkpoint, list_checkpoints
from .schedule import LODSchedule, Phase, blend_real_images, images_for_lod, schedule_from_config

__all__ = ["LoadedRun", "load_run", "prepare_images", "load_image_files", "to_display", "sample_images",
           "style_mix_grid", "style_mix_tiles", "mix_ranges", "style_ranges", "interpolate_latents", "latent_eval",
           "evaluate_model", "random_model", "convert_official", "CHECKPOINT_FORMAT", "run_data",
           "recorded_data_spec", "PSI_RANGE", "generate_seeds", "NOISE_MODES", "seed_latent"]

CHECKPOINT_FORMAT = "alae_fast.train/1"


@dataclass
class LoadedRun:
    """A checkpoint opened for use.

    model: the EMA model (eval mode, no gradients) on the requested device; config: its
    model config; schedule: the run's schedule; phase: where training stood (level, blend);
    setup: the setup name ('official' for a checkpoint of the official ALAE code);
    images_seen: training images consumed; path: the file read; noise_mode: G's noise in
    ``decode`` (default 'zero'; see ``ALAEModel.decode``).
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

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): images ``[N, C, r, r]`` with pixels in [-1, 1] at the level the run reached
        (``phase.resolution``; :func:`prepare_images` makes them from full-size images) ->
        w ``[N, latent_size]``."""
        return self.model.encode(x, self.phase.lod, self.phase.blend)

    def decode(self, w: torch.Tensor, noise=None) -> torch.Tensor:
        """G(w): w ``[N, latent_size]`` or ``[N, num_ws, latent_size]`` -> images ``[N, C, r, r]``
        with pixels in about [-1, 1] (not clamped).

        ``noise=None`` takes ``self.noise_mode`` ("zero" unless the run was opened with another):
        with "zero" G's per-pixel noise inputs are off, so the same w always gives the same
        image; ``"random"`` draws fresh noise from torch's global generator on every call (seed
        it with ``torch.manual_seed`` to repeat a picture); any other ``decode`` mode works too."""
        return self.model.decode(w, self.phase.lod, self.phase.blend,
                                 noise=self.noise_mode if noise is None else noise)

    def reconstruct(self, x: torch.Tensor, noise: str = "zero") -> torch.Tensor:
        """G(E(x)) (see :meth:`encode` and :meth:`decode`; deterministic with the default noise)."""
        return self.decode(self.encode(x), noise=noise)

    def generate(self, n: int, seed: int = 0, psi: float = 1.0, noise: str = "zero") -> torch.Tensor:
        """``n`` samples G(F(z)), z ~ N(0, I) drawn from ``seed``, truncated by ``psi`` towards
        w_avg: images ``[n, C, r, r]`` in about [-1, 1]. With ``noise="zero"`` (default) a seed
        always gives the same images; ``"random"`` noise is seeded from ``seed`` too
        (:func:`sample_images`), so it also repeats."""
        return sample_images(self, n, psi=psi, seed=seed, noise=noise)


def _resolve_checkpoint(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        if not list_checkpoints(folder):
            raise FileNotFoundError(f"no checkpoint (ckpt-*.pt) in {str(folder)!r}")
        return folder
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    return p


def _read_checkpoint(path: Path) -> Any:
    """The file's top-level object, read without running pickled code; an empty file, or one
    that is not a checkpoint (cut short, not a torch file), is one clear :class:`UserError`."""
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    try:
        return read_official_checkpoint(path)
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
    EMA model); noise_mode: ``LoadedRun.noise_mode``. Files are read without running pickled
    code (``alae_fast.models.official_io``).

    Raises FileNotFoundError when there is none and ValueError (one line naming the file)
    when the file is not a checkpoint of this package or of the official code.
    """
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
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{file}: not an alae_fast training checkpoint (format {CHECKPOINT_FORMAT!r})")
    config = ModelConfig.from_dict(state["model_config"])
    schedule = LODSchedule.from_dict(state["schedule"])
    with torch.random.fork_rng(devices=[]):
        model = build_model(config)
    model = model.to(device)
    model.load_state_dict(state["trainer"]["ema"]["module"])
    model.eval().requires_grad_(False)
    images_seen = int(state["trainer"]["images_seen"])
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
    # A finished training: the last level, faded in.
    images_seen = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    return LoadedRun(model, cfg, schedule, schedule.phase(images_seen), "official", images_seen, file,
                     {"format": "official", "ema": ema}, noise_mode)


def convert_official(path: str | os.PathLike, out: str | os.PathLike,
                     config: str | os.PathLike | ModelConfig | None = None, ema: bool = True) -> Path:
    """Writes an official ALAE checkpoint as an alae_fast checkpoint that ``load_run`` (and every
    ``alae-fast`` command taking ``--ckpt``) opens: the converted model as the EMA model, its
    config, the preset's schedule at its end. Not resumable by ``alae-fast train`` (no
    optimiser state). Writes ``out`` atomically (temporary file, then rename) and returns it.

    Raises as ``load_run``; FileExistsError when ``out`` is a folder.
    """
    run = load_run(path, config=config, ema=ema)
    out = Path(out)
    if out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} is a folder; give a file name")
    state = {"format": CHECKPOINT_FORMAT, "model_config": run.config.to_dict(), "schedule": run.schedule.to_dict(),
             "setup": "official", "converted_from": str(Path(path).resolve()), "official_ema": ema,
             "trainer": {"ema": {"module": run.model.state_dict()}, "images_seen": run.images_seen}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    return out


def recorded_data_spec(run: LoadedRun) -> dict | None:
    """The ``data_spec`` a run recorded (see :mod:`alae_fast.data.spec`): from the checkpoint, else
    from the run folder's ``config.json`` (for runs saved before checkpoints held it, read from
    its ``options.data``); None when neither says."""
    import json

    from ..data.spec import data_spec

    spec = run.state.get("data_spec") if isinstance(run.state, dict) else None
    if spec is not None:
        return spec
    folder = run.path.parent.parent if run.path.parent.name == "checkpoints" else run.path.parent
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get("data_spec") is not None:
        return config["data_spec"]
    options = config.get("options")
    if isinstance(options, dict) and "data" in options:
        return data_spec(options["data"])
    return None


def run_data(run: LoadedRun, given: str | None = None) -> tuple[str | None, str | None]:
    """The data a command on ``run`` uses: ``given`` (its ``--data``) when set, else the data the
    run was trained on (:func:`recorded_data_spec`). Returns ``(path or None for the digits,
    note)``, the note being what the command should print (None: nothing to say). Raises
    :class:`~alae_fast.errors.UserError` when the recorded folder is gone."""
    from ..data.spec import resolve_run_data

    return resolve_run_data(recorded_data_spec(run), given)


def prepare_images(x: torch.Tensor, schedule: LODSchedule, phase: Phase) -> torch.Tensor:
    """Full-resolution images ``[N, C, R, R]`` as the model sees them at ``phase``: pooled to the
    level's resolution and faded with its blend. Grey images are repeated to 3 channels for a
    colour model."""
    if x.shape[1] == 1 and schedule.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != schedule.channels:
        raise ValueError(f"images: have {x.shape[1]} channels; the model takes {schedule.channels}")
    return blend_real_images(images_for_lod(x, schedule, phase.lod), phase.blend)


def to_display(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images of any level enlarged (nearest) to ``resolution``, on the CPU, in float32."""
    x = x.detach().to("cpu", torch.float32)
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="nearest")
    return x


def load_image_files(paths: Sequence[str | os.PathLike], schedule: LODSchedule) -> torch.Tensor:
    """PNG/JPEG files center-cropped and resized to the run's resolution: ``[N, C, R, R]``
    float32 with pixels in [-1, 1] (0 -> -1, 255 -> 1).

    Raises FileNotFoundError for a missing file and :class:`~alae_fast.errors.UserError` for
    one Pillow cannot decode (not an image, truncated), naming the file."""
    from ..data import load_image

    if not paths:
        raise ValueError("images: give at least one image file")
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"image {str(p)!r} does not exist")
        try:
            arr = load_image(p, schedule.resolution, schedule.channels)
        except (OSError, SyntaxError, ValueError) as e:  # what Pillow raises for undecodable data
            raise UserError(f"image {str(p)!r} could not be read as a PNG/JPEG image ({first_line(e)})") from e
        out.append(torch.from_numpy(np.array(arr, dtype=np.float32)) / 127.5 - 1.0)
    return torch.stack(out)


@torch.no_grad()
def sample_images(run: LoadedRun, n: int, psi: float | None = None, seed: int = 0, cutoff: int | None = None,
                  noise="random") -> torch.Tensor:
    """``n`` EMA samples ``[n, C, r, r]`` from z drawn with ``seed``, truncated by ``psi`` towards
    w_avg on style inputs below ``cutoff``. psi None (default) takes the config's
    ``truncation_psi`` and ``truncation_cutoff`` (the paper presets: the official 0.7 and 8;
    others 1, no truncation); noise: any ``decode`` mode. ``noise="random"`` (default) draws
    G's noise from torch's generator seeded with ``seed`` inside ``fork_rng``, so the same call
    gives the same images and the caller's random state is untouched; pixels in about [-1, 1]."""
    if psi is None:
        psi = run.config.truncation_psi
        cutoff = run.config.truncation_cutoff if cutoff is None else cutoff
    device = next(run.model.parameters()).device
    z = torch.randn(n, run.model.latent_size, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return run.model.generate(z, run.phase.lod, run.phase.blend, truncation_psi=psi,
                                  truncation_cutoff=cutoff, noise=noise)


# NVlabs' spellings of G's noise inputs. "const" is the same noise maps for every image: drawn
# once from this fixed seed (NVlabs keeps fixed noise buffers in G; ours has none to keep).
NOISE_MODES = ("const", "random", "batch", "zero", "none")
CONST_NOISE_SEED = 0x5EED
# Truncation psi the commands and the page accept: 0 gives w_avg, 1 no truncation, above 1
# exaggerates, below 0 mirrors through w_avg; beyond [-1, 2] only artefacts remain.
PSI_RANGE = (-1.0, 2.0)


def seed_latent(seed: int, latent_size: int) -> torch.Tensor:
    """z ``[1, latent_size]`` ~ N(0, I) of one seed (torch's CPU generator seeded with it), so a
    seed gives the same z whatever other seeds are drawn with it."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed: expected an int in [0, 2**63), got {seed!r}")
    return torch.randn(1, latent_size, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def generate_seeds(run: LoadedRun, seeds: Sequence[int], psi: float = 1.0, noise_mode: str = "const",
                   cutoff: int | None = None) -> torch.Tensor:
    """One image per seed, ``[len(seeds), C, r, r]`` in about [-1, 1], as NVlabs' ``gen_images``:
    z from :func:`seed_latent`, truncated by ``psi`` (style inputs below ``cutoff``, default all).

    ``noise_mode``: ``"const"`` (the same noise maps for every image, from a fixed seed),
    ``"random"`` or ``"batch"`` (noise drawn from the image's seed; one image per draw, so the
    two are the same here) or ``"none"``/``"zero"`` (no noise). Every mode gives
    the same image for the same seed; torch's global random state is left untouched."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode: expected one of {NOISE_MODES}, got {noise_mode!r}")
    device = next(run.model.parameters()).device
    out = []
    for seed in seeds:
        z = seed_latent(seed, run.model.latent_size).to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(CONST_NOISE_SEED if noise_mode == "const" else seed)
            out.append(run.model.generate(z, run.phase.lod, run.phase.blend, truncation_psi=psi,
                                          truncation_cutoff=cutoff,
                                          noise="zero" if noise_mode in ("none", "zero") else "random"))
    return torch.cat(out)


def interpolate_latents(run: LoadedRun, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Decodes ``steps`` points on the segment between E(a) and E(b) (images ``[1, C, R, R]``
    each, prepared); returns ``[steps, C, r, r]`` with ``run.noise_mode`` (default no noise)."""
    wa, wb = run.encode(a), run.encode(b)
    t = torch.linspace(0.0, 1.0, steps, device=wa.device, dtype=wa.dtype).view(-1, 1)
    return run.decode(torch.lerp(wa.expand(steps, -1), wb.expand(steps, -1), t))


def style_ranges(num_ws: int) -> dict[str, tuple[int, int]]:
    """Coarse, middle and fine style inputs: ``num_ws`` split in thirds, low resolutions first."""
    a, b = round(num_ws / 3), round(2 * num_ws / 3)
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws)}


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
    that range. z of A then B drawn from ``seed``; no noise.

    Returns ``(sources [cols, C, r, r], destinations [3·rows, C, r, r],
    mixed [3·rows, cols, C, r, r], range name of each destination row)``. Needs a model with
    more than one style input (ValueError otherwise)."""
    m = run.model
    num_ws = int(m.num_ws)
    if num_ws < 2:
        raise ValueError(f"style-mix: this model has {num_ws} style input; style mixing needs a model "
                         f"with several (a StyleALAE)")
    device = next(m.parameters()).device
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(cols, m.latent_size, generator=g).to(device)
    zb = torch.randn(3 * rows, m.latent_size, generator=g).to(device)
    wa = m.mapping(za).unsqueeze(1).expand(-1, num_ws, -1)
    wb = m.mapping(zb).unsqueeze(1).expand(-1, num_ws, -1)
    img_a, img_b = run.decode(wa), run.decode(wb)
    mixed, names = [], []
    for r_i, (name, (lo, hi)) in enumerate(style_ranges(num_ws).items()):
        for j in range(rows):
            b = wb[r_i * rows + j:r_i * rows + j + 1].expand(cols, -1, -1)
            mixed.append(run.decode(mix_ranges(wa, b, lo, hi)))
            names.append(name)
    return img_a, img_b, torch.stack(mixed), names


@torch.no_grad()
def style_mix_grid(run: LoadedRun, rows: int = 3, cols: int = 4, seed: int = 0) -> tuple[torch.Tensor, int]:
    """:func:`style_mix_tiles` as one unlabelled tensor: a top row of the sources A after a blank
    corner, then each destination B followed by its mixes. Returns (images
    ``[(1 + 3·rows)·(cols + 1), C, r, r]``, nrow = cols + 1). The CLI draws the labelled figure
    instead (``save_labelled_grid``)."""
    img_a, img_b, mixed, _ = style_mix_tiles(run, rows, cols, seed)
    tiles = [torch.full_like(img_a[:1], -1.0), *img_a.split(1)]
    for i in range(img_b.shape[0]):
        tiles += [img_b[i:i + 1], *mixed[i].split(1)]
    return torch.cat(tiles), cols + 1


# Random-encoder baseline: the mean over this many initialisations. On the digits, single
# draws of the digits-32 encoder score 78.1% to 89.6% 1-NN (latent 16; 87.9% to 94.9% at
# latent 32), as wide as the gap a trained encoder is asked to show over them.
RANDOM_ENCODERS = 5
# The sample histogram of the report: this many EMA samples G(F(z)) without noise, z drawn
# from a generator seeded with the run's seed + SAMPLE_SEED.
SAMPLE_COUNT = 1000
SAMPLE_SEED = 104729


def random_model(config: ModelConfig, seed: int, device) -> torch.nn.Module:
    """A freshly initialised model of ``config`` (the random-encoder baseline), seeded, leaving
    the global random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config)
    return model.to(device).eval().requires_grad_(False)


def _labelled(ds) -> bool:
    labels = getattr(ds, "labels", None)
    return isinstance(labels, torch.Tensor) and labels.numel() > 0 and bool((labels >= 0).all())


def _all_images(ds, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(ds) if limit is None else min(limit, len(ds))
    return ds.get_batch(torch.arange(n))


@torch.no_grad()
def latent_eval(model, config: ModelConfig, schedule: LODSchedule, phase: Phase, data: str | None = None,
                seed: int = 0, max_train: int | None = 20000, device="cpu") -> dict[str, Any] | None:
    """Latent classification (1-NN, LinearSVC C=0.02) of ``model``'s encoder on the data's train
    split, scored on its test split, beside randomly initialised encoders (the mean of
    ``RANDOM_ENCODERS`` initialisations) and PCA of the same dimension; and, under
    ``"reconstruction_class"``, how many reconstructions G(E(x)) (no noise) of the test split a
    pixel 1-NN fitted on the train split gives the input's class (beside the originals'); and,
    under ``"sample_classes"``, the classes that 1-NN gives ``SAMPLE_COUNT`` EMA samples
    (:func:`alae_fast.eval.sample_class_histogram`). None when the data has no labelled test split (an image folder)."""
    from ..data import open_dataset
    from ..eval import latent_report, reconstruction_class_accuracy, sample_class_histogram

    train = open_dataset(data, schedule.resolution, schedule.channels, split="train")
    try:
        test = open_dataset(data, schedule.resolution, schedule.channels, split="test")
    except (FileNotFoundError, ValueError):
        return None
    if test is train or not (_labelled(train) and _labelled(test)) or getattr(test, "split", None) != "test":
        return None
    xtr, ytr = _all_images(train, max_train)
    xte, yte = _all_images(test)
    xtr, xte = prepare_images(xtr, schedule, phase), prepare_images(xte, schedule, phase)
    rands = [random_model(config, seed + 7919 + k, device) for k in range(RANDOM_ENCODERS)]

    def enc(m):
        return lambda x: m.encode(x.to(device), phase.lod, phase.blend)

    report = latent_report(enc(model), xtr, ytr, xte, yte, random_encode=[enc(r) for r in rands], pca=True,
                           seed=seed)
    report["reconstruction_class"] = reconstruction_class_accuracy(
        lambda x: model.reconstruct(x.to(device), phase.lod, phase.blend, noise="zero").cpu(), xtr, ytr, xte, yte)
    g = torch.Generator().manual_seed(seed + SAMPLE_SEED)

    def sample(b):
        z = torch.randn(b, model.latent_size, generator=g).to(device)
        return model.generate(z, phase.lod, phase.blend, noise="zero").cpu()

    report["sample_classes"] = sample_class_histogram(sample, SAMPLE_COUNT, xtr, ytr)
    report["train_images"], report["test_images"] = int(xtr.shape[0]), int(xte.shape[0])
    return report


def evaluate_model(run: LoadedRun, data: str | None = None, inception_weights: str | None = None,
                   num_fid: int = 1000, ppl_samples: int = 200, seed: int = 0, device="cpu") -> dict[str, Any]:
    """All metrics of issue 6 for a loaded run, as a JSON-ready dict.

    - ``latent``: 1-NN and LinearSVC accuracy of E(x) vs a random encoder vs PCA (labelled data only);
    - ``reconstruction_mse``: on the test split (or the first ``num_fid`` training images);
    - ``fid_generated`` / ``fid_reconstructed``: Fréchet distance of ``num_fid`` generations and of
      the reconstructions against real images, with InceptionV3 when ``inception_weights`` is
      given, else the random-conv proxy (``fid_network`` names which; proxy values are not FIDs);
    - ``ppl_full`` / ``ppl_end``: perceptual path length in W, ε = 1e-4, with the proxy-LPIPS
      distance, ``ppl_samples`` pairs each.
    """
    from ..data import open_dataset
    from ..eval import (feature_network, fid_generated, fid_reconstructed, perceptual_path_length,
                        proxy_lpips_distance, reconstruction_mse)

    schedule, phase, m = run.schedule, run.phase, run.model
    res = schedule.resolution
    out: dict[str, Any] = {"checkpoint": str(run.path), "setup": run.setup, "kimg": run.images_seen / 1000.0,
                           "lod": phase.lod, "blend": phase.blend, "resolution": phase.resolution}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out["latent"] = latent_eval(m, run.config, schedule, phase, data, seed=seed, device=device)
        try:
            real_ds = open_dataset(data, res, schedule.channels, split="test")
        except (FileNotFoundError, ValueError):
            real_ds = open_dataset(data, res, schedule.channels, split="train")
        x_real, _ = _all_images(real_ds, num_fid)
        x_real = prepare_images(x_real, schedule, phase)

        def recon(x):
            return to_display(run.model.reconstruct(x.to(device), phase.lod, phase.blend, noise="zero"), x.shape[-1])

        out["reconstruction_mse"] = reconstruction_mse(recon, x_real)
        out["reconstruction_images"] = int(x_real.shape[0])
        net = feature_network(inception_weights, device=device)
        out["fid_network"] = getattr(net, "name", type(net).__name__)
        out["fid_is_proxy"] = bool(getattr(net, "is_proxy", inception_weights is None))
        real_disp = to_display(x_real, res)
        n_gen = max(2, num_fid)
        g = torch.Generator().manual_seed(seed + 1)

        def sample(n):
            z = torch.randn(n, m.latent_size, generator=g).to(device)
            return to_display(m.generate(z, phase.lod, phase.blend, noise="random"), res)

        out["fid_generated"] = fid_generated(net, real_disp, sample, n_gen)
        out["fid_reconstructed"] = fid_reconstructed(net, real_disp,
                                                     lambda x: to_display(recon(
                                                         images_for_lod(x, schedule, phase.lod)), res))
        out["fid_images"] = {"real": int(real_disp.shape[0]), "generated": n_gen}
        dist = proxy_lpips_distance()

        def gen(w):
            return to_display(m.decode(w, phase.lod, phase.blend, noise="zero"), res)

        for sampling in ("full", "end"):
            r = perceptual_path_length(m.mapping, gen, dist, m.latent_size, num_samples=ppl_samples,
                                       sampling=sampling, seed=seed, device=device)
            out[f"ppl_{sampling}"] = r["ppl"]
        out["ppl_distance"] = "proxy-lpips (random conv features; not comparable with published PPL)"
    return out
