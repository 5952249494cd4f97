"""A training run: data, model, trainer, run folder, checkpoints, resume, progress and the final report.

``run_training(TrainOptions(...))`` is what ``alae-fast train`` calls (alone, or under torchrun
on every rank). The run folder (``--out``, default ``runs/<setup>``) receives:

- ``config.json``: the resolved setup (model config, schedule, options, world size, versions);
- ``log.jsonl``: one record per ``log_steps`` iterations: ``kimg``, ``step``, ``lod``, ``blend``,
  ``batch``, ``lr``, the three losses ``loss_d``, ``loss_g``, ``loss_ae``, the terms ``d_real``,
  ``d_fake``, ``r1`` (means over the window and over ranks), ``images_per_s`` and ``time_s``;
- ``loss_curves.png``: the losses against kimg, redrawn with each image snapshot (with matplotlib,
  the ``[plot]`` extra; without it training says once that it draws none);
- ``images/samples-<images>.png`` and ``images/reconstructions-<images>.png``: EMA samples of
  fixed latents and fixed training images beside their EMA reconstructions;
- ``checkpoints/ckpt-<images>.pt``: written atomically, the newest ``keep`` kept;
- ``eval.json``: the end-of-training metrics (latent classification beside random encoders and
  PCA, reconstruction MSE), also printed.

A checkpoint holds the model, its EMA, both optimisers, the level and images seen, the
trainer's latent generator, every rank's Python/NumPy/torch(/CUDA) random state, the data
stream position and what the data are (``data_spec``, and for an image folder ``data_content``:
:mod:`alae_fast.data.spec`). ``resume=True`` continues from the newest loadable one; on the CPU the
continued run is bit-identical to one that never stopped (pictures and evaluations run
under ``torch.random.fork_rng`` so they never disturb the training's random streams).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shlex
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inference import (CHECKPOINT_FORMAT, LoadedRun, draw_loss_curves, format_latent_report,
                         identification_if_unlabelled, latent_eval, prepare_images, sample_images, save_image_grid,
                         save_pairs_grid, to_display)
from ..inference.pictures import display_scale
from .._omp import ContentionWatch, choice as omp_wait_choice
from .._words import plural
from ..errors import UserError, first_line
from ..models import MLPALAEConfig, ModelConfig, build_model, list_presets
from .checkpoint import capture_rng_state, find_latest_checkpoint, list_checkpoints, restore_rng_state, save_checkpoint
from .distributed import DistributedContext, init_distributed, shutdown_distributed
from .schedule import LODSchedule, fit_schedule, make_schedule
from .stop import StopInterrupted, StopRequest
from .setups import DEFAULT_PRESET, TrainSetup, resolve_setup
from .trainer import ALAETrainer

__all__ = ["TrainOptions", "run_training", "pick_setup", "training_behaviour"]

# The options a checkpoint records and a resume must agree with, and the `alae-fast train` flag
# of each (for the messages that refuse a resume).
_FLAGS = {"seed": "--seed", "r1_gamma": "--r1-gamma", "r1_interval": "--r1-interval", "mixing_prob": "--mixing-prob",
          "ema_half_life_kimg": "--ema-kimg", "amp": "--amp", "style_mixing": "--style-mixing",
          "w_avg_update": "--w-avg-update", "flip": "--flip/--no-flip",
          "d_zero_grad_step": "--d-zero-grad-step/--no-d-zero-grad-step", "augment": "--augment",
          "lae_weight": "--lae-weight"}
_NUMERIC_OPTIONS = tuple(_FLAGS)
_clock = time.monotonic  # the checkpoint cadence's clock (a test replaces it)
_LOSS_KEYS = ("loss_d", "loss_g", "loss_ae", "d_real", "d_fake", "r1")


@dataclass
class TrainOptions:
    """Options of one training run (the ``alae-fast train`` flags).

    preset: setup or model-preset name (None: ``digits-32``, or on resume the checkpoint's);
    data: data path (None: the embedded digits); out: run folder (None: ``runs/<setup>``);
    kimg: training length in thousands of images (None: the setup's); seed; resume;
    device: 'auto', 'cpu', 'cuda'...; amp: bfloat16 autocast; r1_gamma, r1_interval,
    mixing_prob, ema_half_life_kimg: see ``ALAETrainer`` (mixing_prob None: below;
    ema_half_life_kimg None: the model config's ``ema_kimg`` when it has one, else 10).
    seed, amp, r1_gamma, r1_interval None: 0, False, 10, 1 (``_RUN_DEFAULTS``). On ``resume``
    every one of these options and the behaviours below that is None continues as the
    checkpoint's run set it; a value given that differs is refused. checkpoint_kimg / image_kimg:
    intervals (None: a tenth of the run); checkpoint_minutes: also checkpoint when this
    many minutes of wall time passed since the last one (default 10; None: by images only);
    keep: checkpoints kept; log_steps: iterations per
    log record; model_overrides / schedule_overrides: fields changed in the setup's model
    config / schedule; evaluate: run the latent-classification report at the end;
    progress: show progress (tqdm's bar on a terminal, a plain line every 30 s elsewhere); num_workers: data-loading processes; threads: torch CPU
    threads (None: torch's default).
    style_mixing, w_avg_update, mixing_prob, d_zero_grad_step, augment, lae_weight (see
    ``ALAETrainer``; augment: comma-separated DiffAugment policies, '' for none) and flip
    (mirror each real image with probability 1/2, ``DataStream``): None takes the model
    config's field of that name (the paper presets: 'official', 'every_generate', 0.9, True, '',
    1.0, True), else 'per_sample', 'generator_step', 0.9, False, '', 1.0, False.
    """

    preset: str | None = None
    data: str | None = None
    out: str | None = None
    kimg: float | None = None
    seed: int | None = None
    resume: bool = False
    device: str = "auto"
    amp: bool | None = None
    r1_gamma: float | None = None
    r1_interval: int | None = None
    mixing_prob: float | None = None
    ema_half_life_kimg: float | None = None
    checkpoint_kimg: float | None = None
    image_kimg: float | None = None
    checkpoint_minutes: float | None = 10.0
    keep: int = 3
    log_steps: int = 20
    model_overrides: dict[str, Any] = field(default_factory=dict)
    schedule_overrides: dict[str, Any] = field(default_factory=dict)
    evaluate: bool = True
    progress: bool = True
    num_workers: int = 0
    threads: int | None = None
    style_mixing: str | None = None
    w_avg_update: str | None = None
    flip: bool | None = None
    d_zero_grad_step: bool | None = None
    augment: str | None = None
    lae_weight: float | None = None


# What a run uses when neither the options nor, on --resume, the checkpoint say.
_RUN_DEFAULTS = {"seed": 0, "amp": False, "r1_gamma": 10.0, "r1_interval": 1}

# What a run does when neither the options nor the model config say (alae_fast's own choices).
_BEHAVIOUR_DEFAULTS = {"style_mixing": "per_sample", "w_avg_update": "generator_step", "flip": False,
                       "mixing_prob": 0.9, "d_zero_grad_step": False, "augment": "", "lae_weight": 1.0}


def _in_effect(name: str, value, config):
    """The value option ``name`` has in a run of ``config`` when set to ``value`` (None: the
    config's field, else alae_fast's default)."""
    if value is not None:
        return value
    if name == "mixing_prob" and isinstance(config, MLPALAEConfig):
        return 0.0  # one style input: the trainer never mixes, and config.json should not say it does
    if name in _BEHAVIOUR_DEFAULTS:
        return getattr(config, name, _BEHAVIOUR_DEFAULTS[name])
    if name == "ema_half_life_kimg":
        return float(getattr(config, "ema_kimg", 10.0))
    return _RUN_DEFAULTS.get(name)


def training_behaviour(opts: TrainOptions, config) -> dict[str, Any]:
    """``{"style_mixing", "w_avg_update", "flip", "mixing_prob", "d_zero_grad_step", "augment",
    "lae_weight"}`` for a run: the option when set, else the model config's field of that name,
    else alae_fast's default (per_sample, generator_step, False, 0.9, False, '', 1.0;
    ``mixing_prob`` 0.0 for an MLP ALAE, which has nothing to mix)."""
    return {name: _in_effect(name, getattr(opts, name), config) for name in _BEHAVIOUR_DEFAULTS}


def _ema_kimg(opts: TrainOptions, config) -> float:
    return float(_in_effect("ema_half_life_kimg", opts.ema_half_life_kimg, config))


def pick_setup(preset: str | None, model_overrides=None, schedule_overrides=None) -> TrainSetup:
    """The setup ``preset`` names (None: ``DEFAULT_PRESET``, 'digits-32') with the overrides
    applied. Raises ValueError like ``resolve_setup``."""
    return resolve_setup(preset or DEFAULT_PRESET, model_overrides, schedule_overrides)


class _Say:
    def __init__(self, ctx: DistributedContext):
        self.on = ctx.is_main

    def __call__(self, *args, **kw):
        if self.on:
            print(*args, **kw, flush=True)


class _PlainProgress:
    """The progress of a run whose stderr is not a terminal (a log file, a pipe, a scheduler's
    output): one plain line at most every ``every_s`` seconds and at the end, instead of tqdm's
    carriage-return redraws (thousands of them in a 5-minute run, one unreadable line in a file).
    Has the parts of tqdm's interface the loop uses: ``update``, ``set_postfix_str``, ``close``."""

    def __init__(self, total: int, initial: int, file, every_s: float = 30.0, clock=time.monotonic):
        self.total, self.n, self.file, self.every_s, self.clock = total, initial, file, every_s, clock
        self.t0 = self.t_last = clock()
        self.n0, self.postfix, self.closed = initial, "", False

    def update(self, n: int) -> None:
        self.n += n
        if self.clock() - self.t_last >= self.every_s:
            self._line()

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def _line(self) -> None:
        self.t_last = now = self.clock()
        elapsed = now - self.t0
        rate = (self.n - self.n0) / elapsed if elapsed > 0 else 0.0
        left = f", {round((self.total - self.n) / rate)} s left" if rate > 0 and self.n < self.total else ""
        tail = f": {self.postfix}" if self.postfix else ""
        digits = 1 if self.total >= 10_000 else 3  # a short run in tenths of a kimg would read 0.0/0.1
        print(f"{self.n / 1000:.{digits}f}/{self.total / 1000:.{digits}f} kimg ({100 * self.n / max(self.total, 1):.0f}%), "
              f"{round(elapsed)} s{left}{tail}", file=self.file, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()


def _progress(total: int, initial: int, enabled: bool, file=None):
    """The progress display on ``file`` (default stderr): tqdm's bar on a terminal, plain lines
    (:class:`_PlainProgress`) elsewhere, None when not ``enabled`` (``--no-progress``, other ranks)."""
    if not enabled:
        return None
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    if not (callable(isatty) and isatty()):
        return _PlainProgress(total, initial, file)
    # imported here, not at the top: tqdm is a dependency of training runs only, and the op and
    # model tests import this module on machines with just torch (the lent GPU's python)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="img", unit_scale=True, dynamic_ncols=True, smoothing=0.1,
                file=file)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _truncate_log(path: Path, kimg: float) -> None:
    """Drop log records written after the checkpoint a run resumes from (and any cut-off line)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("kimg", 0) <= kimg + 1e-9:
            keep.append(line)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(k + "\n" for k in keep))
    os.replace(tmp, path)


@contextmanager
def _override_types():
    """A wrong type in --set/--schedule (latent_size=abc) is the user's: UserError, one line."""
    try:
        yield
    except TypeError as e:
        raise UserError(f"--set/--schedule: {e}") from e


def _as_typed(value) -> str:
    """A config value as the user types it after --set/--schedule (JSON: lists, not tuples)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value, default=str)


def _resolve(opts: TrainOptions, ckpt_state: dict) -> TrainSetup:
    """The setup a resumed run continues: the checkpoint's own model and schedule (matched to its
    data and fitted to its length when it began). ``--set``/``--schedule`` given again are laid
    over them: the run's own values pass, another value is refused (UserError naming each
    field), as is a ``--preset`` naming another setup than the checkpoint's."""
    trained = ckpt_state.get("setup")
    if opts.preset is not None and trained and opts.preset != trained:
        raise UserError(f"--resume --preset {opts.preset}: the run in --out trained {trained!r}; leave out --preset "
                        f"to continue it, or train {opts.preset!r} as a new run with another --out")
    config = ModelConfig.from_dict(ckpt_state["model_config"])
    schedule = LODSchedule.from_dict(ckpt_state["schedule"])
    changed = []
    with _override_types():
        for name, value in opts.model_overrides.items():
            now = getattr(config.replace(**{name: value}), name)
            if now != getattr(config, name):
                changed.append(f"--set {name}: checkpoint {_as_typed(getattr(config, name))}, now {_as_typed(now)}")
        if opts.schedule_overrides:
            laid = make_schedule(schedule.to_dict(), opts.schedule_overrides)
            changed += [f"--schedule {name}: checkpoint {_as_typed(getattr(schedule, name))}, now "
                        f"{_as_typed(getattr(laid, name))}"
                        for name in opts.schedule_overrides if getattr(laid, name) != getattr(schedule, name)]
    if changed:
        raise UserError(f"--resume: a run keeps its model and schedule ({'; '.join(changed)}); leave those out to "
                        f"continue it, or train a new run with another --out")
    return TrainSetup(trained or "?", config, schedule, float(ckpt_state["total_kimg"]), "resumed")


def _data_channels(data: str | None) -> int:
    """Channels of the images ``--data`` names: 1 for the embedded digits and MNIST, else the folder's."""
    from ..data import folder_channels, is_mnist_folder

    if data is None or (Path(data).is_dir() and is_mnist_folder(Path(data))):
        return 1
    return folder_channels(data)


def _match_channels(setup: TrainSetup, opts: TrainOptions) -> tuple[TrainSetup, str | None]:
    """The setup with the data's channels (a model preset whose ``channels`` the user did not
    set), or unchanged with a warning when the model cannot follow the data. Never silent."""
    have = setup.schedule.channels
    want = _data_channels(opts.data)
    if want == have:
        return setup, None
    if have not in (1, 3):
        # images convert between greyscale and colour only; any other count has no conversion
        given = "--set channels" if "channels" in opts.model_overrides else f"{setup.name!r}'s channels"
        raise UserError(f"{given}={have}: the data are images of {want} channel{'s' * (want > 1)}, which convert "
                        f"only to 1 (greyscale) or 3 (colour) channels")
    def kind(c: int) -> str:
        return {1: "greyscale", 3: "colour"}.get(c, f"{c}-channel")

    fields = {f.name for f in dataclasses.fields(setup.model_config)}
    if "channels" in fields and "channels" not in opts.model_overrides and setup.name in list_presets():
        matched = resolve_setup(setup.name, {**opts.model_overrides, "channels": want}, opts.schedule_overrides)
        return matched, (f"note: the data are {kind(want)} ({want} channel{'s' * (want > 1)}); {setup.name!r} is a "
                         f"{kind(have)} preset: training it with channels={want}, taken from the data "
                         f"(--set channels={have} keeps the preset's and converts the images)")
    return setup, (f"warning: the data are {kind(want)} ({want} channel{'s' * (want > 1)}) but {setup.name!r} takes "
                   f"{have}: every image is converted to {kind(have)}")


# The presets made for the embedded digits; any other trains on them only when --data is left out.
_EMBEDDED_DIGITS_PRESETS = ("digits-32", "digits-mlp")


def _embedded_digits_note(setup: TrainSetup, spec) -> str | None:
    """For a preset made for other data (MNIST, photos, FFHQ) trained without --data: that it
    trains on the embedded digits, said at the start rather than left to the banner's advice."""
    if (spec or {}).get("kind") != "digits" or setup.name in _EMBEDDED_DIGITS_PRESETS:
        return None
    res = setup.schedule.resolution
    return (f"data: no --data, so {setup.name!r} trains on the embedded digits (scikit-learn's 1797 images of 8x8, "
            f"upscaled to {res}x{res}), not on the data it is made for")


def _held_out_note(dataset) -> str | None:
    """For an image folder: how many of its images train and how many are held out for the
    evaluation, said at the start. Opening the held-out split here (headers only) also says at
    the start which of its files are unreadable, not only when the evaluation reads them."""
    from ..data import HOLDOUT_FRACTION, ImageFolderDataset

    if not isinstance(dataset, ImageFolderDataset):
        return None  # the digits and MNIST come with their own test split
    try:
        test = ImageFolderDataset(dataset.root, dataset.resolution, dataset.channels, preload=False, split="test")
    except ValueError:
        return (f"data: {plural(len(dataset), 'training image')} and none held out (a folder of one image, or whose "
                f"held-out files cannot be read): the evaluation reports on TRAINING images")
    return (f"data: {plural(len(dataset), 'training image')}, {len(test)} held out for the evaluation "
            f"({HOLDOUT_FRACTION:.0%} of the files, chosen by a hash of their names)")


def _busy_note() -> str | None:
    """What ``import alae_fast`` chose for the OpenMP wait (alae_fast/_omp.py) when other work
    shared the cores; without that choice (the user's own wait settings, or torch imported
    first), a hint when the load average already fills the cores torch's threads would use."""
    threads = torch.get_num_threads()
    chosen = omp_wait_choice()
    if chosen is not None:
        if not chosen["sleep"]:
            return None
        return (f"note: {plural(chosen['others'], 'other runnable thread')} shared the {chosen['cpus']} cores when "
                f"this process started: torch's {threads} threads sleep as soon as they wait (GOMP_SPINCOUNT=0) "
                f"instead of spinning, which is faster on a busy machine and changes no result")
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None
    if threads > 1 and load >= threads:
        return (f"note: load average {load:.1f} on {threads} torch threads: other work competes for the CPU; "
                f"--threads 1 or OMP_WAIT_POLICY=PASSIVE avoid waiting for preempted threads (a thread count "
                f"is part of what makes a run reproducible, so it is not changed for you)")
    return None


def _fit_to_length(setup: TrainSetup, total_kimg: float, explicit_lod_kimg: bool) -> tuple[TrainSetup, str | None]:
    """A run shorter than the schedule's way to the final resolution: the preset's schedule is
    compressed to reach it (:func:`fit_schedule`, at the same fraction of the run as the
    preset's own length); a ``lod_kimg`` the user gave is kept, with a note saying where the
    run will end."""
    sched = setup.schedule
    reach = sched.kimg_to_reach(sched.max_lod)
    if total_kimg >= reach or sched.max_lod == sched.start_lod:
        return setup, None
    res = f"{sched.resolution}x{sched.resolution}"
    if explicit_lod_kimg:
        end = sched.phase(int(round(total_kimg * 1000)))
        where = f"lod {end.lod} ({end.resolution}x{end.resolution}" + (", mid fade-in)" if end.in_transition else ")")
        return setup, (f"note: --kimg {total_kimg:g} ends at {where}: the given lod_kimg reaches {res} only at "
                       f"{reach:g} kimg")
    fraction = min(1.0, reach / setup.kimg) if setup.kimg > 0 else 1.0
    fitted = fit_schedule(sched, total_kimg, fraction)
    note = (f"note: --kimg {total_kimg:g} is shorter than the {reach:g} kimg that {setup.name!r} takes to reach "
            f"{res}; its schedule is compressed to lod_kimg [{', '.join(f'{k:.4g}' for k in fitted.lod_kimg)}] "
            f"so that {res} is fully faded in at {fitted.kimg_to_reach(fitted.max_lod):.4g} kimg")
    return replace(setup, schedule=fitted, description=setup.description + " [schedule compressed to --kimg]"), note


def _check_resume(state: dict, setup: TrainSetup, opts: TrainOptions) -> None:
    problems = []
    if state.get("format") != CHECKPOINT_FORMAT:
        problems.append(f"format {state.get('format')!r} (expected {CHECKPOINT_FORMAT!r})")
    # (the model and schedule are the checkpoint's own: _resolve refused any --set/--schedule
    # that changes them)
    saved = state.get("options", {})
    for k in _NUMERIC_OPTIONS:
        # None is "the config's (or alae_fast's) choice": compare what each run actually used
        was, now = _in_effect(k, saved.get(k), setup.model_config), _in_effect(k, getattr(opts, k), setup.model_config)
        if was != now:
            problems.append(f"{_FLAGS[k]}: checkpoint {was!r}, now {now!r}")
    if problems:
        raise ValueError("--resume: the checkpoint was made by a different run: " + "; ".join(problems))


def _agree(ctx: DistributedContext, stop_signal: str | None, late: bool) -> tuple[str | None, bool]:
    """(stop, checkpoint-by-time) as one decision for all ranks: a rank's signal or clock is enough."""
    if ctx.world_size == 1:
        return stop_signal, late
    flags = ctx.mean(torch.tensor([float(stop_signal is not None), float(late)], device=ctx.device))
    stop_any = bool(flags[0] > 0)
    return (stop_signal or "a signal to another rank") if stop_any else None, bool(flags[1] > 0)


def run_training(opts: TrainOptions, ctx: DistributedContext | None = None) -> dict[str, Any]:
    """Train as ``opts`` says (see the module docstring); returns a summary dict (``out``,
    ``kimg``, ``steps``, ``checkpoint``, ``eval`` ...). Under torchrun call it on every rank."""
    own = ctx is None
    ctx = ctx if ctx is not None else init_distributed(opts.device)
    try:
        return _run(opts, ctx)
    finally:
        if own:
            shutdown_distributed(ctx)


_STOP_STARTING = "stopping before the first iteration, once the run has started up (signal again to exit at once)"
_STOP_TRAINING = "stopping after this iteration; a checkpoint follows (signal again to exit at once)"
_STOP_TRAINED = ("the training is complete and saved; stopping before the final evaluation (signal again to exit "
                 "at once)")


def _run(opts: TrainOptions, ctx: DistributedContext) -> dict[str, Any]:
    """One run: plan (what, where, how long) -> start (data, model, run folder) -> loop -> report.

    SIGTERM/SIGINT are caught from the start: one that comes while the run starts up (a
    scheduler's preemption, say) stops it before its first iteration, with a line; only the
    interpreter's own start-up (imports) is left to the default action."""
    say = _Say(ctx)
    _check_options(opts)
    stop = StopRequest(_STOP_STARTING)
    stop.__enter__()
    try:
        plan = _plan(opts, ctx, say)
        _apply_threads(plan.opts)
        run = _start(plan, ctx, say)
        stopped = _loop(run, stop)
    finally:
        stop.__exit__(None, None, None)
    if stopped is None and run.late_signal is None:
        run.late_signal = stop.requested  # came between the last check and the handlers' removal
    return _report(run, stopped)


def _apply_threads(opts: TrainOptions) -> None:
    """Applies ``threads`` (None: torch's default)."""
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
        try:  # the same cap for NumPy's BLAS (FID) and scikit-learn in the final report
            from threadpoolctl import threadpool_limits
            threadpool_limits(int(opts.threads))
        except ImportError:
            pass


MIN_KIMG = 0.001


def is_kimg_amount(value) -> bool:
    """Whether ``value`` is a usable length or interval in kimg: a finite real number of at
    least one image (``MIN_KIMG``; runs and intervals count whole images, and less rounds to
    none). The one rule for ``TrainOptions`` and the CLI's ``--kimg`` / ``--checkpoint-kimg`` /
    ``--image-kimg``."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value * 1000 >= 1)


def _check_options(opts: TrainOptions) -> None:
    """Raises ValueError for a bad ``keep``, ``log_steps``, ``checkpoint_minutes``, ``num_workers``,
    or a ``kimg`` / ``checkpoint_kimg`` / ``image_kimg`` that is not a finite number of at least
    one image (0.001 kimg: runs and intervals count whole images, and less rounds to none)."""
    for name in ("kimg", "checkpoint_kimg", "image_kimg"):
        v = getattr(opts, name)
        if v is not None and not is_kimg_amount(v):
            raise ValueError(f"{name}: expected None or a finite number >= {MIN_KIMG} (one image); got {v!r}")
    if not isinstance(opts.num_workers, int) or opts.num_workers < 0:
        raise ValueError(f"num_workers: expected an int >= 0; got {opts.num_workers!r}")
    if opts.keep < 1:
        raise ValueError(f"keep: expected >= 1; got {opts.keep}")
    if opts.log_steps < 1:
        raise ValueError(f"log_steps: expected >= 1; got {opts.log_steps}")
    if opts.checkpoint_minutes is not None and not opts.checkpoint_minutes > 0:
        raise ValueError(f"checkpoint_minutes: expected a number > 0 or None; got {opts.checkpoint_minutes}")


# --- 1. plan: what to train, where, for how long (nothing read or built yet) ----------------------

@dataclass
class _Plan:
    """What a run trains and where. ``opts`` are the resolved options (the checkpoint's data and
    behaviour on a resume); ``total_kimg`` the run's length, ``fit_kimg`` the length its schedule
    was fitted to (the length the run began with), ``compressed`` whether it was."""

    opts: TrainOptions
    setup: TrainSetup
    out: Path
    ckpt_path: Path | None
    ckpt_state: dict | None
    total_kimg: float
    fit_kimg: float
    compressed: bool

    @property
    def schedule(self) -> LODSchedule:
        return self.setup.schedule

    @property
    def behaviour(self) -> dict[str, Any]:
        return training_behaviour(self.opts, self.setup.model_config)

    @property
    def data_moved(self) -> bool:
        """Whether a resume reads its data from another place than the checkpoint records."""
        from ..data.spec import data_spec

        saved = self.ckpt_state.get("data_spec") if self.ckpt_state is not None else None
        if not saved:
            return False
        now = data_spec(self.opts.data)
        return (saved.get("kind"), saved.get("path")) != (now["kind"], now["path"])

    @property
    def total(self) -> int:
        """The run's length in images."""
        return int(round(self.total_kimg * 1000))

    def _every(self, kimg: float | None) -> int:
        return int(round((kimg if kimg else max(self.total_kimg / 10, 1e-3)) * 1000))

    @property
    def ckpt_every(self) -> int:
        """Images between checkpoints (default a tenth of the run)."""
        return self._every(self.opts.checkpoint_kimg)

    @property
    def image_every(self) -> int:
        """Images between pictures (default a tenth of the run)."""
        return self._every(self.opts.image_kimg)


# What a run folder holds under fixed names (the module docstring): folders, then files.
RUN_FOLDERS = {"images": "the pictures", "checkpoints": "the checkpoints"}
RUN_FILES = {"config.json": "the setup", "log.jsonl": "the losses", "loss_curves.png": "the loss curves",
             "eval.json": "the evaluation"}


def _check_run_folder(out: Path) -> None:
    """UserError naming --out, before any work, when an entry of the run folder ``out`` has the
    wrong kind: a file where the run keeps a folder (images/, checkpoints/), or a folder where it
    writes a file (config.json, log.jsonl, loss_curves.png, eval.json). Without this check a run
    trained up to its first checkpoint or its end before it met the entry."""
    for name, what in RUN_FOLDERS.items():
        if (out / name).exists() and not (out / name).is_dir():
            raise UserError(f"--out {str(out)!r}: {str(out / name)!r} is a file, where the run keeps {what} "
                            f"(a folder); move it, or choose another --out")
    for name, what in RUN_FILES.items():
        if (out / name).is_dir():
            raise UserError(f"--out {str(out)!r}: {str(out / name)!r} is a folder, where the run writes {what} "
                            f"(a file); move it, or choose another --out")


def _find_checkpoint(opts: TrainOptions, out: Path, say) -> tuple[TrainOptions, Path | None, dict | None]:
    """``(opts, path, state)`` of the checkpoint ``--resume`` continues (``opts.data`` then the
    run's own unless given; given, it must name the run's data, possibly in a new place:
    :func:`~alae_fast.data.spec.check_moved_data`), or ``(opts, None, None)`` for a new run.
    Raises FileNotFoundError on ``--resume`` without a loadable checkpoint, FileExistsError for
    a new run into a folder that holds checkpoints."""
    ckdir = out / "checkpoints"
    existing = list_checkpoints(ckdir)
    if not opts.resume:
        if existing:
            raise FileExistsError(f"{str(out)!r} already holds checkpoints: pass --resume to continue that run, "
                                  f"or choose another --out")
        return opts, None, None
    found = find_latest_checkpoint(ckdir) if existing else None
    if found is None:
        if not out.is_dir():
            raise FileNotFoundError(f"--resume: no run folder {str(out)!r} (--out names the folder of the run to "
                                    f"continue)")
        if not ckdir.is_dir():
            raise FileNotFoundError(f"--resume: {str(out)!r} has no checkpoints/ folder: not a run folder, or a run "
                                    f"stopped before its first checkpoint")
        raise FileNotFoundError(f"--resume: no loadable checkpoint in {str(ckdir)!r}")
    ckpt_path, ckpt_state = found
    if opts.data is None and ckpt_state.get("data_spec"):  # the run's own data unless --data is given
        from ..data.spec import resolve_run_data
        data, data_note = resolve_run_data(ckpt_state["data_spec"], None)
        opts = replace(opts, data=data)
        if data_note:
            say(data_note)
    elif opts.data is not None and ckpt_state.get("data_spec"):
        # A resumed run continues its exact data stream (epoch permutation, position, flips),
        # which belongs to its own data: other data would be read with positions it never had.
        # The same files elsewhere (a remounted disk) give the same positions.
        from ..data.spec import check_moved_data

        moved_note = check_moved_data(ckpt_state["data_spec"], ckpt_state.get("data_content"), opts.data)
        if moved_note:
            say(moved_note)
    return opts, ckpt_path, ckpt_state


def _out_inside_data_note(opts: TrainOptions, out: Path) -> str | None:
    """A line when the run folder ``out`` lies inside the image folder ``opts.data``."""
    from ..data.spec import data_spec

    spec = data_spec(opts.data)
    if spec["kind"] != "folder" or not Path(spec["path"]).is_dir():
        return None
    if not out.resolve().is_relative_to(Path(spec["path"])):
        return None
    return (f"note: --out {str(out)!r} lies inside --data {opts.data!r}: the data's scan skips the run folder (its "
            f"pictures are not training data)")


# A flag and the model config field it overrides for one run: given both, they must agree.
_FLAG_FIELDS = {"mixing_prob": "mixing_prob", "style_mixing": "style_mixing", "w_avg_update": "w_avg_update",
                "flip": "flip", "d_zero_grad_step": "d_zero_grad_step", "ema_half_life_kimg": "ema_kimg",
                "augment": "augment", "lae_weight": "lae_weight"}


def _check_flags_against_set(opts: TrainOptions, setup: TrainSetup) -> None:
    """UserError when a flag and ``--set`` of the config field it overrides are both given with
    different values (``--mixing-prob 0.2 --set mixing_prob=0.9``): the flag won silently while
    config.json's model said the other."""
    config = setup.model_config
    for option, name in _FLAG_FIELDS.items():
        value = getattr(opts, option)
        if value is None or name not in opts.model_overrides or not hasattr(config, name):
            continue
        set_to = getattr(config, name)
        if value != set_to:
            flag = _FLAGS[option].split("/")[0] if value is not False else _FLAGS[option].split("/")[-1]
            shown = "" if isinstance(value, bool) else f" {value}"
            raise UserError(f"{flag}{shown} and --set {name}={_as_typed(set_to)}: the same setting given twice with "
                            f"different values; give one")


def _check_style_mixing(opts: TrainOptions, setup: TrainSetup, ckpt_state: dict | None) -> None:
    """UserError when ``--mixing-prob``/``--style-mixing`` are given (not None) for a model with one
    style input (the MLP ALAE): there is nothing to mix, the trainer skips mixing there; and when
    a style-mixing mode is given (``--style-mixing`` or ``--set style_mixing``) to a run whose
    mixing probability is 0 (digits-32's, or one given as 0): it would mix nothing."""
    if isinstance(setup.model_config, MLPALAEConfig):
        given = [flag for flag, value in (("--mixing-prob", opts.mixing_prob), ("--style-mixing", opts.style_mixing))
                 if value is not None]
        if given:
            raise UserError(f"{' and '.join(given)}: {setup.name!r} is an MLP ALAE, whose G takes one style input; "
                            f"style mixing needs several (a StyleALAE)")
        return
    if opts.style_mixing is not None:
        mode = f"--style-mixing {opts.style_mixing}"
    elif "style_mixing" in opts.model_overrides:
        mode = f"--set style_mixing={_as_typed(setup.model_config.style_mixing)}"
    else:
        return
    saved = ckpt_state.get("options", {}) if ckpt_state is not None else {}
    prob = opts.mixing_prob if opts.mixing_prob is not None else saved.get("mixing_prob")
    if _in_effect("mixing_prob", prob, setup.model_config) != 0:
        return
    if opts.mixing_prob is not None or "mixing_prob" in opts.model_overrides:
        given = "--mixing-prob 0" if opts.mixing_prob is not None else "--set mixing_prob=0"
        raise UserError(f"{mode} and {given}: a mixing probability of 0 mixes nothing; give a probability > 0 "
                        f"(the paper's: 0.9) or leave the mode out")
    if ckpt_state is not None:
        raise UserError(f"{mode}: the run trains with mixing_prob 0 (no style mixing) and a resumed run keeps it, "
                        f"so the mode would mix nothing; leave it out")
    raise UserError(f"{mode}: {setup.name!r} trains with mixing_prob 0 (no style mixing), so it would mix "
                    f"nothing; give --mixing-prob too (the paper's: 0.9)")


def _plan(opts: TrainOptions, ctx: DistributedContext, say) -> _Plan:
    """The setup (the checkpoint's on a plain ``--resume``), matched to the data's channels and
    fitted to the run's length, with the notes said. Raises ValueError for a non-positive
    length or a global batch the world size does not divide."""
    if opts.resume:  # the checkpoint holds the setup; _resolve lays the overrides over it
        out = Path(opts.out) if opts.out else Path("runs") / (opts.preset or DEFAULT_PRESET)
        setup = None
    else:  # checked before any folder is read
        with _override_types():
            setup = pick_setup(opts.preset, opts.model_overrides, opts.schedule_overrides)
        out = Path(opts.out) if opts.out else Path("runs") / setup.name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; the run folder goes there")
    _check_run_folder(out)
    opts, ckpt_path, ckpt_state = _find_checkpoint(opts, out, say)
    inside = _out_inside_data_note(opts, out)
    if inside:
        say(inside)
    if ckpt_state is not None:
        setup = _resolve(opts, ckpt_state)
    _check_flags_against_set(opts, setup)
    _check_style_mixing(opts, setup, ckpt_state)
    if ckpt_state is not None:
        # an option or behaviour not given again continues as the checkpoint's run chose it
        saved = ckpt_state.get("options", {})
        opts = replace(opts, **{k: saved[k] for k in _NUMERIC_OPTIONS
                                if getattr(opts, k) is None and saved.get(k) is not None})
        saved_threads = ckpt_state.get("threads")
        if opts.threads is None and saved_threads:
            # the thread count sets a CPU run's course: the printed continue-line keeps it
            opts = replace(opts, threads=int(saved_threads))
        elif saved_threads and int(opts.threads) != int(saved_threads) and ctx.device.type == "cpu":
            # allowed (a resumed job may land on other cores), but said: the sums run in another order
            say(f"note: --threads {opts.threads}: the run used {plural(int(saved_threads), 'thread')} until now; it "
                f"continues, but not bit-identically (another thread count sums in another order)")
    opts = replace(opts, **{k: v for k, v in _RUN_DEFAULTS.items() if getattr(opts, k) is None})
    total_kimg = float(opts.kimg) if opts.kimg is not None else setup.kimg
    if not total_kimg > 0:
        raise ValueError(f"kimg: expected > 0; got {total_kimg}")
    if ckpt_state is not None and opts.kimg is not None:
        seen = int(ckpt_state.get("trainer", {}).get("images_seen", 0))
        if int(round(total_kimg * 1000)) < seen:  # a resumed run cannot be shortened
            raise UserError(f"--kimg {opts.kimg:g}: the run is already at {seen / 1000:g} kimg; --resume continues "
                            f"a run to a longer --kimg")
        if total_kimg < float(ckpt_state.get("total_kimg", total_kimg)):
            say(f"note: --kimg {opts.kimg:g} ends the run before the {float(ckpt_state['total_kimg']):g} kimg it was "
                f"started for (its schedule stays the one fitted to that length)")
    # The schedule is fitted to the length the run BEGAN with: a resume that extends --kimg
    # continues that schedule (its last level lasts until the end) instead of re-fitting it.
    # ("fit_kimg" is in a checkpoint only when its schedule was compressed.)
    fit_kimg = float(ckpt_state.get("fit_kimg", total_kimg)) if ckpt_state is not None else total_kimg
    compressed = False
    if setup.description != "resumed":  # a checkpoint's setup was matched and fitted when it began
        setup, channel_note = _match_channels(setup, opts)
        if channel_note:
            say(channel_note)
        setup, fit_note = _fit_to_length(setup, fit_kimg, "lod_kimg" in opts.schedule_overrides)
        compressed = setup.description.endswith("[schedule compressed to --kimg]")
        if fit_note:
            say(fit_note)
    for b in set(setup.schedule.lod_batch):
        if b % ctx.world_size:
            raise ValueError(f"schedule: global batch {b} is not a multiple of the world size {ctx.world_size}")
    return _Plan(opts, setup, out, ckpt_path, ckpt_state, total_kimg, fit_kimg, compressed)


# --- 2. start: data, model, trainer, run folder ---------------------------------------------------

@dataclass
class _Run:
    """What the loop and the report share: the plan, the trained objects and the run's files.

    ``time_before``: seconds trained before a resume; ``t_start``: when this process's loop
    began (``time.perf_counter``); ``last_path``: the newest checkpoint; ``last_rec``: the
    newest log record; ``show_real``: the fixed real images of the reconstruction pictures.
    """

    plan: _Plan
    ctx: DistributedContext
    say: _Say
    dataset: Any
    trainer: ALAETrainer
    stream: Any
    spec: Any
    time_before: float
    last_path: Path | None
    t_start: float = field(default_factory=time.perf_counter)
    last_rec: dict[str, Any] = field(default_factory=dict)
    show_real: torch.Tensor | None = None
    late_signal: str | None = None  # a signal that came after the last iteration's stop check
    stopped_starting: bool = False  # a signal came while the run started up: it trained nothing
    content: dict | None = None  # data_content of an image folder (alae_fast.data.spec)

    @property
    def log_path(self) -> Path:
        return self.plan.out / "log.jsonl"

    def write_pictures(self) -> list[Path]:
        """EMA samples of fixed latents, EMA reconstructions of ``show_real`` and the loss curves."""
        plan, trainer, ctx, out = self.plan, self.trainer, self.ctx, self.plan.out
        schedule, phase = plan.schedule, trainer.phase()
        run = LoadedRun(trainer.ema.module, plan.setup.model_config, schedule, phase, plan.setup.name,
                        trainer.images_seen, out, {})
        res = schedule.resolution
        scale = display_scale(res)
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []), torch.no_grad():
            samples = sample_images(run, 32, seed=(plan.opts.seed + 123456) % 2 ** 63)  # a seed torch takes
            real = prepare_images(self.show_real, schedule, phase).to(ctx.device)
            rec = trainer.ema.module.reconstruct(real, phase.lod, phase.blend, noise="zero")
        tag = f"{trainer.images_seen:010d}"
        p1 = save_image_grid(to_display(samples, res), out / "images" / f"samples-{tag}.png", nrow=8, scale=scale)
        p2 = save_pairs_grid(to_display(real, res), to_display(rec, res), out / "images" / f"reconstructions-{tag}.png",
                             pairs_per_row=4, scale=scale)
        paths = [p1, p2]
        if self.log_path.exists() and self.log_path.stat().st_size:
            paths += draw_loss_curves(self.log_path, out / "loss_curves.png", self.say,
                                      keys=list(_LOSS_KEYS[:3]) + ["r1"], smooth=5)
        return paths

    def _threads(self) -> int | None:
        # the count in effect, torch's default included: a resume on a machine with another
        # default then keeps this run's (None on a GPU, where it does not set the course)
        return torch.get_num_threads() if self.ctx.device.type == "cpu" else self.plan.opts.threads

    def write_checkpoint(self) -> Path | None:
        """Every rank's random state gathered; rank 0 writes the checkpoint and returns its path."""
        plan, ctx, opts = self.plan, self.ctx, self.plan.opts
        rng = ctx.all_gather_object(capture_rng_state())
        if not ctx.is_main:
            return None
        state = {"format": CHECKPOINT_FORMAT, "setup": plan.setup.name,
                 "model_config": plan.setup.model_config.to_dict(), "schedule": plan.schedule.to_dict(),
                 "total_kimg": plan.total_kimg,
                 **({"fit_kimg": plan.fit_kimg} if plan.compressed else {}),
                 "options": {k: getattr(opts, k) for k in _NUMERIC_OPTIONS}, "threads": self._threads(),
                 "world_size": ctx.world_size,
                 "trainer": self.trainer.state_dict(), "data": self.stream.state_dict(), "data_spec": self.spec,
                 **({"data_content": self.content} if self.content is not None else {}),
                 "rng": rng, "time_s": self.time_before + (time.perf_counter() - self.t_start)}
        return save_checkpoint(state, plan.out / "checkpoints", self.trainer.images_seen, keep=opts.keep)


def _make_trainer(plan: _Plan, ctx: DistributedContext) -> ALAETrainer:
    """The model (seeded by ``opts.seed``) on ``ctx.device`` and its trainer."""
    opts, config = plan.opts, plan.setup.model_config
    random.seed(opts.seed)
    np.random.seed(opts.seed % (2 ** 32))
    torch.manual_seed(opts.seed)
    if ctx.device.type == "cpu":
        from ..cpu_allocator import keep_freed_memory
        keep_freed_memory()  # big activations are reused, not page-faulted anew every step
    model = build_model(config).to(ctx.device)
    behaviour = plan.behaviour
    return ALAETrainer(model, plan.schedule, ctx, seed=opts.seed, r1_gamma=opts.r1_gamma,
                       r1_interval=opts.r1_interval, mixing_prob=behaviour["mixing_prob"],
                       ema_half_life_kimg=_ema_kimg(opts, config), amp=opts.amp,
                       style_mixing=behaviour["style_mixing"], w_avg_update=behaviour["w_avg_update"],
                       d_zero_grad_step=bool(behaviour["d_zero_grad_step"]),
                       augment=behaviour["augment"], lae_weight=behaviour["lae_weight"])


def _restore(plan: _Plan, trainer: ALAETrainer, stream, ctx: DistributedContext, say) -> float:
    """Loads the checkpoint into the trainer, the data stream and this rank's random state
    (after checking it was made by this run); returns the seconds trained before it."""
    state = plan.ckpt_state
    _check_resume(state, plan.setup, plan.opts)
    trainer.load_state_dict(state["trainer"])
    stream.load_state_dict(state["data"])
    rng = state["rng"]
    if len(rng) == ctx.world_size:
        restore_rng_state(rng[ctx.rank])
    else:
        say(f"note: the checkpoint was written by {len(rng)} processes, this run has {ctx.world_size}: "
            f"random streams are reseeded (the run continues, but not bit-identically)")
    say(f"resuming from {plan.ckpt_path} at {trainer.images_seen / 1000:.3f} kimg (lod {trainer.lod})")
    return float(state.get("time_s", 0.0))


def _check_moved_length(plan: _Plan, length: int) -> None:
    """UserError naming --data when data in a new place give another number of training images
    than the checkpoint's stream was saved with (files that no longer decode, say)."""
    saved = int(plan.ckpt_state["data"]["dataset_len"])
    if saved != length:
        raise UserError(f"--resume --data {plan.opts.data!r}: the run's data stream was saved for "
                        f"{plural(saved, 'training image')}, this data gives {length}; a resumed run continues its "
                        f"own data stream, so --data may name its data in a new place, not other data")


def _check_unchanged_data(plan: _Plan, content: dict | None) -> None:
    """UserError when a resume reads its data from the place the run records, but the image
    files there are not those it recorded (added, removed or renamed since): the data stream and
    the held-out split belong to the files the run began with. A run that recorded no content
    (made before runs did) is left to the stream's own length check."""
    saved = plan.ckpt_state.get("data_content")
    if saved is None or content is None or saved == content:
        return
    where = plan.ckpt_state["data_spec"]["path"]
    count = (f"{plural(saved['files'], 'image file')} then, {content['files']} now" if saved["files"] != content["files"]
             else f"{plural(content['files'], 'image file')} then and now, under other names")
    raise UserError(f"--resume: the image folder {where!r} changed since the run began ({count}); a resumed run "
                    f"continues its own data stream and held-out split, so put the folder back as it was, or train "
                    f"a new run with another --out")


def _record_moved_data(plan: _Plan, spec: dict, content: dict | None) -> None:
    """Rewrites the checkpoint the run resumes from with its data's new place: commands on the
    run read the newest checkpoint's record, and the run may write no other (a finished run
    only evaluates)."""
    step = next(s for s, p in list_checkpoints(plan.ckpt_path.parent) if p == plan.ckpt_path)
    state = torch.load(plan.ckpt_path, map_location="cpu", weights_only=True)  # as saved: nothing resumed into it
    state["data_spec"] = spec
    state.pop("data_content", None)
    if content is not None:
        state["data_content"] = content
    save_checkpoint(state, plan.ckpt_path.parent, step, keep=len(list_checkpoints(plan.ckpt_path.parent)))


def _start(plan: _Plan, ctx: DistributedContext, say) -> _Run:
    """Opens the data (checked before any training work), builds model, trainer and data stream
    (restored on a resume), writes config.json and prepares log.jsonl."""
    from ..data import DataStream, open_dataset
    from ..data.spec import data_content, data_spec

    opts, setup, schedule = plan.opts, plan.setup, plan.schedule
    dataset = open_dataset(opts.data, schedule.resolution, schedule.channels, split="train")
    if dataset.resolution != schedule.resolution or dataset.channels not in (1, schedule.channels):
        raise ValueError(f"data: {dataset!r} gives {dataset.channels}x{dataset.resolution}x{dataset.resolution} "
                         f"images; {setup.name!r} trains on {schedule.channels}x{schedule.resolution}"
                         f"x{schedule.resolution}")
    content = data_content(opts.data, getattr(dataset, "found", None))
    if plan.data_moved:
        _check_moved_length(plan, len(dataset))
    elif plan.ckpt_state is not None:
        _check_unchanged_data(plan, content)
    trainer = _make_trainer(plan, ctx)
    # G's noise inputs come from the default generator: one stream, the same on every rank,
    # which draws the global batch's noise and takes its slice (ALAETrainer._noise)
    torch.manual_seed(opts.seed * 1009 + 1)
    stream = DataStream(dataset, trainer.phase().batch, ctx.rank, ctx.world_size, seed=opts.seed,
                        num_workers=opts.num_workers, pin_memory=ctx.device.type == "cuda",
                        flip=bool(plan.behaviour["flip"]))
    time_before = _restore(plan, trainer, stream, ctx, say) if plan.ckpt_state is not None else 0.0
    run = _Run(plan, ctx, say, dataset, trainer, stream, data_spec(opts.data), time_before, plan.ckpt_path,
               content=content)
    if plan.data_moved and ctx.is_main:
        _record_moved_data(plan, run.spec, run.content)
    _write_run_config(run)
    if ctx.device.type == "cpu" and not opts.threads:
        busy = _busy_note()
        if busy:
            say(busy)
    if run.trainer.images_seen >= plan.total:
        # a resume of a finished run (killed while it evaluated, say) only evaluates
        say(f"{setup.name!r} already trained its {plan.total_kimg:g} kimg: nothing left to train"
            f"{', evaluating its last checkpoint' if opts.evaluate else ''} (a longer --kimg continues it); run "
            f"folder {plan.out}")
    else:
        say(f"training {setup.name!r} ({setup.description}) for {plan.total_kimg:g} kimg on {ctx.world_size} x "
            f"{ctx.device}; run folder {plan.out}")
    held = _held_out_note(dataset) or _embedded_digits_note(setup, run.spec)
    if held:
        say(held)
    n_show = 16
    run.show_real = dataset.get_batch(torch.arange(min(n_show, len(dataset))))[0]
    return run


def _recorded_options(plan: _Plan) -> dict[str, Any]:
    """The options config.json records. A resume that leaves out the flags the run was made with
    (--preset, --set, --schedule) keeps those of the config.json it replaces, so the file still
    says how the run was set up (its model and schedule are recorded beside them either way)."""
    options = asdict(plan.opts)
    previous = plan.out / "config.json"
    if plan.ckpt_state is not None and previous.is_file():
        try:
            first = json.loads(previous.read_text()).get("options", {})
        except (OSError, ValueError, AttributeError):
            first = {}
        for name in ("preset", "model_overrides", "schedule_overrides"):
            if not options.get(name) and first.get(name):
                options[name] = first[name]
    return options


def _write_run_config(run: _Run) -> None:
    """config.json (the resolved setup), and log.jsonl cut back to the checkpoint on a resume or
    removed for a new run; rank 0 writes, every rank waits for it."""
    plan, ctx = run.plan, run.ctx
    model = run.trainer.model
    counts = model.parameter_counts() if hasattr(model, "parameter_counts") else {}
    resolved = {"setup": plan.setup.name, "data_spec": run.spec,
                **({"data_content": run.content} if run.content is not None else {}),
                "description": plan.setup.description,
                "model": plan.setup.model_config.to_dict(), "schedule": plan.schedule.to_dict(),
                "total_kimg": plan.total_kimg,
                "options": _recorded_options(plan), "behaviour": plan.behaviour, "world_size": ctx.world_size,
                "backend": ctx.backend, "device": str(ctx.device), "parameters": counts, "torch": torch.__version__,
                "checkpoint_kimg": plan.ckpt_every / 1000, "image_kimg": plan.image_every / 1000}
    if ctx.is_main:
        for folder in (plan.out, plan.out / "images"):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # _check_run_folder saw none; this is what came since, or a permission
                raise UserError(f"--out {str(plan.out)!r}: cannot make the folder {str(folder)!r} "
                                f"({e.strerror or first_line(e)})") from None
        try:
            from .. import build_info
            resolved["build"] = build_info()
        except Exception:  # the library may have failed to load; the reference ops still train
            pass
        _write_json(plan.out / "config.json", resolved)
        if plan.ckpt_state is not None:
            _truncate_log(run.log_path, run.trainer.images_seen / 1000.0)
        elif run.log_path.exists():
            run.log_path.unlink()
    ctx.barrier()


# --- 3. the loop ------------------------------------------------------------------------------------

class _LossLog:
    """The log records: each of ``_LOSS_KEYS`` averaged over a window of iterations and over the
    ranks, written to log.jsonl and TensorBoard (rank 0) and shown on the progress bar ``bar``."""

    def __init__(self, run: _Run, bar):
        self.run, self.bar = run, bar
        self.window: dict[str, list] = defaultdict(list)
        self.t_window, self.images = time.perf_counter(), 0
        from .tensorboard import open_event_writer
        self.file = open(run.log_path, "a", encoding="utf-8") if run.ctx.is_main else None
        self.events = open_event_writer(run.plan.out) if run.ctx.is_main else None  # None without tensorboard

    def add(self, metrics: dict[str, Any], before: int, after: int) -> None:
        """One iteration's losses into the window; the bar moves from ``before`` to ``after`` images."""
        self.images += metrics["batch"]
        for k in _LOSS_KEYS:
            self.window[k].append(metrics[k])
        if self.bar is not None:
            total = self.run.plan.total
            self.bar.update(min(after, total) - min(before, total))

    def write(self, metrics: dict[str, Any], after: int) -> None:
        """Closes the window as one record. Raises FloatingPointError when a mean is not finite."""
        run = self.run
        vals = run.ctx.mean(torch.stack([torch.stack(self.window[k]).float().mean() for k in _LOSS_KEYS])).tolist()
        now = time.perf_counter()
        rec = {"kimg": round(after / 1000.0, 6), "step": run.trainer.step_count, "lod": metrics["lod"],
               "blend": round(metrics["blend"], 6), "batch": metrics["batch"], "lr": metrics["lr"],
               **{k: v for k, v in zip(_LOSS_KEYS, vals)},
               "images_per_s": self.images / max(now - self.t_window, 1e-9),
               "time_s": run.time_before + now - run.t_start}
        if not all(math.isfinite(v) for v in vals):
            raise FloatingPointError(f"training diverged at {after / 1000:.3f} kimg: {rec}")
        run.last_rec = rec
        if self.file is not None:
            self.file.write(json.dumps(rec) + "\n")
            self.file.flush()
        if self.events is not None:
            self.events.add(rec)
        if self.bar is not None:
            self.bar.set_postfix_str(f"img/s {rec['images_per_s']:.0f} lod {rec['lod']} "
                                     f"Ld {rec['loss_d']:.3f} Lg {rec['loss_g']:.3f} Lae {rec['loss_ae']:.4f}")
        self.window.clear()
        self.t_window, self.images = now, 0

    def close(self) -> None:
        for f in (self.file, self.events, self.bar):
            if f is not None:
                f.close()


def _train_step(run: _Run) -> tuple[int, dict[str, Any]]:
    """One iteration on the stream's next batch; returns (images seen before it, its metrics)."""
    phase = run.trainer.phase()
    run.stream.set_batch_size(phase.batch)
    x, _ = run.stream.next()
    channels = run.plan.schedule.channels
    if x.shape[1] != channels:  # grey data (the digits) for a colour model
        x = x.expand(-1, channels, -1, -1)
    before = run.trainer.images_seen
    return before, run.trainer.step(x)


def _loop(run: _Run, stop: StopRequest) -> str | None:
    """Trains to the run's length: a log record every ``log_steps`` iterations, a checkpoint every
    ``ckpt_every`` images or ``checkpoint_minutes``, pictures every ``image_every`` images.
    ``stop`` (entered by the caller) carries a signal's request. Returns the name of the signal
    that stopped it early (after a checkpoint, or before the first iteration), else None."""
    plan, ctx, trainer, opts = run.plan, run.ctx, run.trainer, run.plan.opts
    stopped, _ = _agree(ctx, stop.requested, False)
    if stopped:  # signalled while starting up: nothing trained, nothing to checkpoint
        run.stopped_starting = True
        return stopped
    stop.message = _STOP_TRAINING
    total, ckpt_every, image_every = plan.total, plan.ckpt_every, plan.image_every
    bar = _progress(total, min(trainer.images_seen, total), opts.progress and ctx.is_main)
    run.t_start = time.perf_counter()
    last_ckpt = trainer.images_seen if plan.ckpt_state is not None else -1
    ckpt_seconds = 60.0 * opts.checkpoint_minutes if opts.checkpoint_minutes else math.inf
    t_last_ckpt = _clock()
    log = _LossLog(run, bar)
    watch = ContentionWatch(torch.get_num_threads()) if ctx.is_main and ctx.device.type == "cpu" else None
    try:
        while trainer.images_seen < total:
            before, metrics = _train_step(run)
            after = trainer.images_seen
            log.add(metrics, before, after)
            if trainer.step_count % opts.log_steps == 0 or after >= total:
                log.write(metrics, after)
                note = watch.check() if watch is not None else None
                if note:
                    run.say(note)
            # every rank must take the same decisions (a checkpoint gathers from all of them)
            stopped, late = _agree(ctx, stop.requested, _clock() - t_last_ckpt >= ckpt_seconds)
            if before // ckpt_every != after // ckpt_every or after >= total or late or stopped:
                run.last_path = run.write_checkpoint() or run.last_path
                last_ckpt, t_last_ckpt = after, _clock()
            if stopped:
                break
            if ctx.is_main and (before // image_every != after // image_every or after >= total):
                run.write_pictures()
        if stopped is None:
            stop.message = _STOP_TRAINED
            run.late_signal = stop.requested
    except KeyboardInterrupt:  # only where no handler could be installed (not the main thread)
        if ctx.world_size == 1 and trainer.images_seen != last_ckpt and trainer.images_seen > 0:
            path = run.write_checkpoint()
            run.say(f"\ninterrupted: saved {path}; continue with --resume --out {shlex.quote(str(plan.out))}")
        raise
    finally:
        log.close()
    return stopped


# --- 4. report ----------------------------------------------------------------------------------------

def _continue_command(ctx: DistributedContext, out: Path) -> str:
    """The command that continues the run in ``out`` as it ran: ``alae-fast train --resume --out
    OUT`` for one process; under torchrun the same number of processes (another number continues,
    but reseeds the random streams), spelled out for one machine, and with a placeholder for the
    rendezvous options of several."""
    resume = f"train --resume --out {shlex.quote(str(out))}"
    if ctx.world_size == 1:
        return f"alae-fast {resume}"
    local = os.environ.get("LOCAL_WORLD_SIZE")
    if local is not None and local == str(ctx.world_size):
        return f"torchrun --standalone --nproc_per_node {ctx.world_size} -m alae_fast.cli {resume}"
    return f"torchrun <the same torchrun options, {ctx.world_size} processes in all> -m alae_fast.cli {resume}"


def _report(run: _Run, stopped: str | None) -> dict[str, Any]:
    """The summary dict; after a complete run (rank 0) the end-of-training evaluation and the
    list of what the run folder holds are printed too."""
    plan, ctx, trainer, say, out = run.plan, run.ctx, run.trainer, run.say, run.plan.out
    summary: dict[str, Any] = {"out": str(out), "setup": plan.setup.name, "kimg": trainer.images_seen / 1000.0,
                               "steps": trainer.step_count, "lod": trainer.lod, "checkpoint": str(run.last_path),
                               "last_log": run.last_rec}
    if stopped and run.stopped_starting:
        if run.last_path is not None:
            say(f"stopped by {stopped} before training began: nothing trained since checkpoint {run.last_path} "
                f"({trainer.images_seen / 1000:.3f} kimg); continue with: {_continue_command(ctx, out)}")
        else:
            say(f"stopped by {stopped} before training began: nothing trained and no checkpoint written "
                f"(run folder {out}); run the same command again to start it")
        return {**summary, "stopped": stopped}
    if stopped:
        say(f"stopped by {stopped} at {trainer.images_seen / 1000:.3f} kimg (lod {trainer.lod}); checkpoint "
            f"{run.last_path}; continue with: {_continue_command(ctx, out)}")
        return {**summary, "stopped": stopped}
    if ctx.is_main:
        newest = (max((out / "images").glob(f"{kind}-*.png"), default=None) for kind in ("samples", "reconstructions"))
        summary["images"] = [str(p) for p in newest if p is not None]
        signalled = run.late_signal
        if plan.opts.evaluate and signalled is None:
            # the training is complete and checkpointed: a signal now abandons the evaluation
            try:
                with StopRequest("stopping the final evaluation; the training is complete and saved (signal again "
                                 "to exit at once)", interrupt=True):
                    summary["eval"] = _evaluate(run)
            except StopInterrupted as e:
                signalled = str(e)
        if plan.opts.evaluate and signalled is not None:
            say(f"stopped by {signalled} before the final evaluation: the training is complete (checkpoint "
                f"{run.last_path}); evaluate with: alae-fast train --resume --out {shlex.quote(str(out))}")
            summary["stopped"] = signalled
        plotted = "loss_curves.png, " if (out / "loss_curves.png").is_file() else ""  # none without matplotlib
        say(f"wrote run folder {out}: config.json, log.jsonl, {plotted}images/ "
            f"(latest {', '.join(Path(p).name for p in summary['images'])}), checkpoints/ "
            f"(latest {Path(str(run.last_path)).name})" + (", eval.json" if "eval" in summary else ""))
    ctx.barrier()
    return summary


# The end-of-training report refines (100 descent steps each) at most this many held-out images,
# and only for models of at most REPORT_REFINE_RESOLUTION: a step is a forward and a backward pass
# of G, 1.2 ms an image for photos-32 on two CPU cores (64 images: 8 s) but 150 ms for celeba-128
# (64 images: 16 minutes). Larger models are refined by `alae-fast evaluate --refine-steps`, when
# asked.
REPORT_REFINE_LIMIT = 64
REPORT_REFINE_RESOLUTION = 64


def _evaluate(run: _Run) -> dict[str, Any]:
    """The EMA model's latent classification and reconstruction MSE (held-out split when the
    data have one) and, for unlabelled data, the matched-back fraction and the reconstructions
    from E(x) refined by descent (up to REPORT_REFINE_LIMIT images, for models up to
    REPORT_REFINE_RESOLUTION), written to eval.json, printed and returned."""
    from ..data import open_dataset
    from ..eval import reconstruct_all, reconstruction_mse
    from ..inference.projection import DEFAULT_REFINE_STEPS, refined_reconstruction
    from ..inference.report import format_identification, format_refined

    plan, ctx, trainer, say = run.plan, run.ctx, run.trainer, run.say
    opts, schedule = plan.opts, plan.schedule
    with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
        phase = trainer.phase()
        report = latent_eval(trainer.ema.module, plan.setup.model_config, schedule, phase, opts.data,
                             seed=opts.seed, device=ctx.device)
        try:
            test, mse_on = open_dataset(opts.data, schedule.resolution, schedule.channels, split="test"), "held-out"
        except (FileNotFoundError, ValueError):
            test, mse_on = run.dataset, "TRAINING (no usable held-out split)"
        xt = prepare_images(test.get_batch(torch.arange(min(len(test), 2000)))[0], schedule, phase)

        rec = reconstruct_all(
            lambda b: trainer.ema.module.reconstruct(b.to(ctx.device), phase.lod, phase.blend, noise="zero"), xt)
        mse = reconstruction_mse(rec, xt)
        ident = identification_if_unlabelled(rec, xt, report)
        # Unlabelled images (a folder of photos) have no class for a loose inverse to land in, so
        # their report adds what G can do from a w near E(x): the projection a user would run next
        refine = ident is not None and phase.resolution <= REPORT_REFINE_RESOLUTION
        refined = None if not refine else refined_reconstruction(
            trainer.ema.module, xt.to(ctx.device), phase.lod, phase.blend, steps=DEFAULT_REFINE_STEPS,
            labelled=False, limit=REPORT_REFINE_LIMIT)
    ev = {"kimg": trainer.images_seen / 1000.0, "latent": report, "reconstruction_mse": mse,
          "reconstruction_images": int(xt.shape[0]), "reconstruction_split": mse_on.split()[0].lower(),
          "reconstruction_identification": ident, "reconstruction_refined": refined}
    _write_json(plan.out / "eval.json", ev)
    if report is not None:
        say(format_latent_report(report))
    say(f"reconstruction MSE (EMA, output not clamped, pixels in [-1, 1]) on "
        f"{plural(int(xt.shape[0]), f'{mse_on} image')}: {mse:.4f}")
    if ident is not None:
        say(format_identification(ident, int(xt.shape[0]), mse_on))
    if refined is not None:
        say(format_refined(refined, mse_on))
    elif ident is not None:
        r = phase.resolution
        say(f"(E(x) refined by descent is not computed here for a {r}x{r} model, above "
            f"{REPORT_REFINE_RESOLUTION}x{REPORT_REFINE_RESOLUTION}: each step is a pass of G; "
            f"alae-fast evaluate --ckpt {plan.out} --refine-steps {DEFAULT_REFINE_STEPS} computes it)")
    return ev
