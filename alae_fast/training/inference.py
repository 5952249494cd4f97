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

from ..models import MLPALAEConfig, ModelConfig, build_model
from ..models.official import is_official_checkpoint, official_model_from_state
from ..models.official_io import read_official_checkpoint
from .checkpoint import find_latest_checkpoint, list_checkpoints
from .schedule import LODSchedule, Phase, blend_real_images, images_for_lod, schedule_from_config

__all__ = ["LoadedRun", "load_run", "prepare_images", "load_image_files", "to_display", "sample_images",
           "style_mix_grid", "style_ranges", "interpolate_latents", "latent_eval", "evaluate_model",
           "random_model", "convert_official", "CHECKPOINT_FORMAT"]

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
        return self.model.encode(x, self.phase.lod, self.phase.blend)

    def decode(self, w: torch.Tensor, noise=None) -> torch.Tensor:
        return self.model.decode(w, self.phase.lod, self.phase.blend,
                                 noise=self.noise_mode if noise is None else noise)


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
        file, state = target, read_official_checkpoint(target)
    if is_official_checkpoint(state):
        return _official_run(state, Path(file), config, ema, device, noise_mode)
    if config is not None:
        raise ValueError(f"{file}: a config (--config) is only for checkpoints of the official ALAE code; "
                         f"this file is not one")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{file}: not an alae_fast training checkpoint (format {CHECKPOINT_FORMAT!r})")
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
    """PNG/JPEG files center-cropped and resized to the run's resolution: ``[N, C, R, R]`` in [-1, 1]."""
    from ..data import load_image

    if not paths:
        raise ValueError("images: give at least one image file")
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"image {str(p)!r} does not exist")
        arr = load_image(p, schedule.resolution, schedule.channels)
        out.append(torch.from_numpy(np.array(arr, dtype=np.float32)) / 127.5 - 1.0)
    return torch.stack(out)


@torch.no_grad()
def sample_images(run: LoadedRun, n: int, psi: float | None = None, seed: int = 0, cutoff: int | None = None,
                  noise="random") -> torch.Tensor:
    """``n`` EMA samples ``[n, C, r, r]`` from z drawn with ``seed``, truncated by ``psi`` towards
    w_avg on style inputs below ``cutoff``. psi None (default) takes the config's
    ``truncation_psi`` and ``truncation_cutoff`` (the paper presets: the official 0.7 and 8;
    others 1, no truncation); noise: any ``decode`` mode (default 'random')."""
    if psi is None:
        psi = run.config.truncation_psi
        cutoff = run.config.truncation_cutoff if cutoff is None else cutoff
    device = next(run.model.parameters()).device
    z = torch.randn(n, run.model.latent_size, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return run.model.generate(z, run.phase.lod, run.phase.blend, truncation_psi=psi,
                                  truncation_cutoff=cutoff, noise=noise)


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


@torch.no_grad()
def style_mix_grid(run: LoadedRun, rows: int = 3, cols: int = 4, seed: int = 0) -> tuple[torch.Tensor, int]:
    """A style-mixing figure: a top row of ``cols`` source images A, then for each of coarse,
    middle and fine, ``rows`` destination images B followed by B with A's styles of that range
    (one per column). Returns (images ``[(1 + 3·rows)·(cols + 1), C, r, r]`` with blank corners,
    nrow = cols + 1). Needs a model with more than one style input (ValueError otherwise)."""
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
    blank = torch.full_like(img_a[:1], -1.0)
    tiles = [blank, *img_a.split(1)]
    layer = torch.arange(num_ws, device=device).view(1, -1, 1)
    for r_i, (lo, hi) in enumerate(style_ranges(num_ws).values()):
        for j in range(rows):
            b = wb[r_i * rows + j:r_i * rows + j + 1].expand(cols, -1, -1)
            mixed = torch.where((layer >= lo) & (layer < hi), wa, b)
            tiles += [img_b[r_i * rows + j:r_i * rows + j + 1], *run.decode(mixed).split(1)]
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
