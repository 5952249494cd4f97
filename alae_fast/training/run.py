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

What a run is asked is :mod:`.options`; what it resolves before its first step (setup, run
folder, checkpoint to resume) is :mod:`.plan`; what it prints while running is :mod:`.progress`.
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._cpu_quota import cpu_quota, said_cpus as _cpus, threads_for_quota, use_threads
from .._omp import ContentionWatch, usable_cpus
from .._words import plural
from ..errors import UserError, first_line
from ..inference import (CHECKPOINT_FORMAT, LoadedRun, draw_loss_curves, format_latent_report,
                         identification_if_unlabelled, latent_eval, prepare_images, sample_images, save_image_grid,
                         save_pairs_grid, to_display)
from ..inference.pictures import display_scale
from ..models import build_model
from .checkpoint import capture_rng_state, list_checkpoints, restore_rng_state, save_checkpoint
from .distributed import DistributedContext, init_distributed, shutdown_distributed, warnings_said_once
from .options import TrainOptions, _NUMERIC_OPTIONS, _check_options, _ema_kimg, training_behaviour
from .pictures import reconstruction_images, reconstruction_titles
from .plan import _Plan, _busy_note, data_errors, _check_resume, _embedded_digits_said, _held_out_note, _plan, pick_setup
from .eta import RemainingTime, flops_per_image
from .progress import _Say, _progress
from .run_lock import RunLock
from .stop import StopInterrupted, StopRequest
from .trainer import ALAETrainer


__all__ = ["TrainOptions", "run_training", "pick_setup", "training_behaviour"]


_clock = time.monotonic  # the checkpoint cadence's clock (a test replaces it)


_LOSS_KEYS = ("loss_d", "loss_g", "loss_ae", "d_real", "d_fake", "r1")


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


_BY_ANOTHER_RANK = "a signal to another rank"


def _agree(ctx: DistributedContext, stop_signal: str | None, late: bool) -> tuple[str | None, bool]:
    """(stop, checkpoint-by-time) as one decision for all ranks: a rank's signal or clock is enough."""
    if ctx.world_size == 1:
        return stop_signal, late
    flags = ctx.mean(torch.tensor([float(stop_signal is not None), float(late)], device=ctx.device))
    stop_any = bool(flags[0] > 0)
    return (stop_signal or _BY_ANOTHER_RANK) if stop_any else None, bool(flags[1] > 0)


def run_training(opts: TrainOptions, ctx: DistributedContext | None = None) -> dict[str, Any]:
    """Train as ``opts`` says (see the module docstring); returns a summary dict (``out``,
    ``kimg``, ``steps``, ``checkpoint``, ``eval`` ...). Under torchrun call it on every rank."""
    own = ctx is None
    ctx = ctx if ctx is not None else init_distributed(opts.device)
    try:
        with warnings_said_once(ctx.rank):
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
    stop = StopRequest(_STOP_STARTING, announce=ctx.is_main)  # the job's notice, from rank 0
    stop.__enter__()
    run = None
    try:
        try:
            plan = _plan(opts, ctx, say)
            _apply_threads(plan.opts, say)
            run = _start(plan, ctx, say)
            stopped = _loop(run, stop)
        finally:
            stop.__exit__(None, None, None)
        if stopped is None and run.late_signal is None:
            run.late_signal = stop.requested  # came between the last check and the handlers' removal
        if stopped == _BY_ANOTHER_RANK and stop.requested is not None:
            # torchrun signals its processes one after another: this rank's own signal may land
            # after the ranks agreed to stop on another's (CI saw it during the checkpoint write)
            stopped = stop.requested
        return _report(run, stopped)
    finally:
        if run is not None and run.lock is not None:
            run.lock.release()


def _apply_threads(opts: TrainOptions, say) -> None:
    """Applies ``threads``; None: torch's count as it is, or under a CPU quota below it (a
    container's ``--cpus``) the quota rounded up, with a note, as
    :func:`alae_fast.training.plan.fresh_threads` counts for a resume."""
    threads = opts.threads
    ranks, cpus = _local_ranks(), usable_cpus()
    if threads and ranks > 1 and ranks * threads > cpus:
        # the slowdown the default avoids (torchrun's OMP_NUM_THREADS=1), asked for by name: said
        say(f"note: --threads {threads} in each of {ranks} processes on this machine is {ranks * threads} threads "
            f"for {plural(cpus, 'usable CPU')}: they wait for each other's turns, several times slower than "
            f"{max(1, cpus // ranks)} a process")
    if not threads:
        threads = threads_for_quota(torch.get_num_threads())
        if threads is None:
            return
        say(f"note: {plural(threads, 'thread')}, not torch's {torch.get_num_threads()} (one a core): the CPU quota "
            f"of this process's cgroup allows {_cpus(cpu_quota())}, and more threads would wait for each other's "
            f"turns (--threads or OMP_NUM_THREADS sets another count)")
    use_threads(threads)


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
    show_split: str = "training"  # which split show_real is from (the picture's titles)
    late_signal: str | None = None  # a signal that came after the last iteration's stop check
    stopped_starting: bool = False  # a signal came while the run started up: it trained nothing
    content: dict | None = None  # data_content of an image folder (alae_fast.data.spec)
    # the losses of the log record not yet written (_LossLog's window): a checkpoint keeps them,
    # so a resumed run's first record averages the same iterations as one that ran straight on
    loss_window: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    lock: RunLock | None = None  # rank 0's lock on the run folder, held until the run returns

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
                             pairs_per_row=4, scale=scale, titles=reconstruction_titles(self.show_split))
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
        window = ctx.all_gather_object({k: [v.detach().cpu() for v in vs] for k, vs in self.loss_window.items()})
        if not ctx.is_main:
            return None
        state = {"format": CHECKPOINT_FORMAT, "setup": plan.setup.name,
                 "model_config": plan.setup.model_config.to_dict(), "schedule": plan.schedule.to_dict(),
                 "total_kimg": plan.total_kimg,
                 **({"fit_kimg": plan.fit_kimg} if plan.compressed else {}),
                 "options": {k: getattr(opts, k) for k in _NUMERIC_OPTIONS}, "threads": self._threads(),
                 # a resume that does not give them again keeps them (None: a tenth of the run)
                 "intervals": {"checkpoint_kimg": opts.checkpoint_kimg, "image_kimg": opts.image_kimg},
                 "world_size": ctx.world_size, "cpus": usable_cpus(),
                 "trainer": self.trainer.state_dict(), "data": self.stream.state_dict(), "data_spec": self.spec,
                 **({"data_content": self.content} if self.content is not None else {}),
                 "rng": rng, "log_window": window, "time_s": self.time_before + (time.perf_counter() - self.t_start)}
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
    if behaviour["channels_last"]:  # the StyleALAE's activations follow its 4-D parameters' layout
        model = model.to(memory_format=torch.channels_last)
    return ALAETrainer(model, plan.schedule, ctx, seed=opts.seed, r1_gamma=opts.r1_gamma,
                       r1_interval=behaviour["r1_interval"], mixing_prob=behaviour["mixing_prob"],
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
        say(f"note: the checkpoint was written by {plural(len(rng), 'process', 'processes')}, this run has "
            f"{ctx.world_size}: "
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
    files there are not those it recorded: added, removed or renamed since, or (for a run that
    recorded them) of other sizes, or sampled files holding other bytes under the same names
    (:func:`~alae_fast.data.spec.content_difference`): the data stream and the held-out split
    belong to the files the run began with. A run that recorded only names is checked by name;
    one that recorded no content (made before runs did) is left to the stream's own length check."""
    from ..data.spec import content_difference, count_difference

    saved = plan.ckpt_state.get("data_content")
    if saved is None or content is None:
        return
    try:
        differs = content_difference(saved, content)
    except ValueError:  # not a record (edited by hand): compared as a whole, as before
        differs = None if saved == content else ("files", [])
    if differs is None:
        return
    where = plan.ckpt_state["data_spec"]["path"]
    count = count_difference(differs, saved if isinstance(saved, dict) else {}, content["files"])
    raise UserError(f"--resume: the run's training data, the image folder {where!r} (where its checkpoint records "
                    f"them), changed since the run began ({count}); a resumed run continues its own data stream and "
                    f"held-out split, so put the folder back as it was, or train a new run with another --out")


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
    with data_errors():  # a folder without one readable image, say: named as the CLI's own --data checks do
        dataset = open_dataset(opts.data, schedule.resolution, schedule.channels, split="train")
    if dataset.resolution != schedule.resolution or dataset.channels not in (1, schedule.channels):
        raise ValueError(f"--data: {dataset!r} gives {dataset.channels}x{dataset.resolution}x{dataset.resolution} "
                         f"images; {setup.name!r} trains on {schedule.channels}x{schedule.resolution}"
                         f"x{schedule.resolution}")
    content = data_content(opts.data, getattr(dataset, "found", None))
    if plan.data_moved:
        _check_moved_length(plan, len(dataset))
    elif plan.ckpt_state is not None:
        _check_unchanged_data(plan, content)
    _check_same_job(plan, ctx, content, len(dataset))
    trainer = _make_trainer(plan, ctx)
    if plan.official is not None:  # the official checkpoint's weights, at the start of its epoch
        from .from_official import departures_said, describe_start, load_official_start
        if plan.official.from_checkpoint:
            load_official_start(trainer, plan.official)
        say(describe_start(plan.official, trainer.phase(), "lod_batch" in opts.schedule_overrides))
        for note in departures_said(plan.official, opts, plan.setup.model_config):
            say(note)
        _official_data_notes(plan, len(dataset), content, trainer.phase().batch, say)
        plan.official = replace(plan.official, models={})  # the file's tensors are copied: let them go
    # G's noise inputs come from the default generator: one stream, the same on every rank,
    # which draws the global batch's noise and takes its slice (ALAETrainer._noise)
    torch.manual_seed(opts.seed * 1009 + 1)
    stream = DataStream(dataset, trainer.phase().batch, ctx.rank, ctx.world_size, seed=opts.seed,
                        num_workers=opts.num_workers, pin_memory=ctx.device.type == "cuda",
                        flip=bool(plan.behaviour["flip"]), position=trainer.images_seen)
    time_before = _restore(plan, trainer, stream, ctx, say) if plan.ckpt_state is not None else 0.0
    run = _Run(plan, ctx, say, dataset, trainer, stream, data_spec(opts.data), time_before, plan.ckpt_path,
               content=content)
    window = (plan.ckpt_state or {}).get("log_window")  # absent in checkpoints before 2026-12-06
    if window is not None and len(window) == ctx.world_size:  # else the first record starts afresh
        run.loss_window.update({k: [v.to(ctx.device) for v in vs] for k, vs in window[ctx.rank].items()})
    # before rank 0 writes anything into the folder: one training there at a time (run_lock.py)
    run.lock = RunLock(plan.out).acquire() if ctx.is_main else None
    try:
        if plan.data_moved and ctx.is_main:
            _record_moved_data(plan, run.spec, run.content)
        _write_run_config(run)
    except BaseException:
        if run.lock is not None:
            run.lock.release()
        raise
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
    held = _held_out_note(dataset)
    if held:
        say(held)
    digits = _embedded_digits_said(plan, run.spec, len(dataset))
    if digits is not None:
        line, warn = digits
        if not warn:
            say(line)
        elif ctx.is_main:  # a line for the run, not one a rank (say speaks on rank 0 only)
            # on stderr through the CLI ("alae-fast: warning: ..."), catchable from the Python API.
            # warnings.warn's registry shows a message from one line once a process (the default
            # filter), so a second run_training of the preset said nothing: with no registry
            # every run warns, and the user's filters ("error", "ignore", "once") still apply
            caller = sys._getframe(1)
            warnings.warn_explicit(line, RuntimeWarning, caller.f_code.co_filename, caller.f_lineno,
                                   module=caller.f_globals.get("__name__"), registry=None,
                                   module_globals=caller.f_globals)
    run.show_real, run.show_split = reconstruction_images(opts.data, schedule.resolution, schedule.channels, dataset)
    return run


def _check_same_job(plan: _Plan, ctx: DistributedContext, content: dict | None, images: int) -> None:
    """UserError on every rank when the job's processes were not started alike: each rank plans its
    run from its own command line and data, and ranks of different --kimg had crashed in gloo
    ("Received data size doesn't match") while ranks reading different copies of a folder had
    trained silently on different data. Compared: the setup, schedule, length, options and
    intervals, and the training images (their count and, for a folder, its data_content record:
    its files' names, sizes and sampled bytes)."""
    if ctx.world_size == 1:
        return
    mine = {"setup": plan.setup.name, "model": plan.setup.model_config.to_dict(), "schedule": plan.schedule.to_dict(),
            "kimg": plan.total_kimg, "options": {k: getattr(plan.opts, k) for k in _NUMERIC_OPTIONS},
            "intervals": [plan.ckpt_every, plan.image_every, plan.opts.checkpoint_minutes, plan.opts.log_steps],
            "data": [images, content]}
    said = {"setup": "--preset", "model": "--preset/--set", "schedule": "--schedule", "kimg": "--kimg",
            "options": "the training options", "intervals": "--checkpoint-kimg, --image-kimg, --checkpoint-minutes "
            "or --log-steps", "data": "--data (the images each reads)"}
    for rank, theirs in enumerate(ctx.all_gather_object(mine)):
        differs = [k for k in mine if theirs.get(k) != mine[k]]
        if differs and rank != ctx.rank:
            raise UserError(f"the job's processes were not started alike: rank {rank} and rank {ctx.rank} differ in "
                            f"{said[differs[0]]}; start every process with the same command and the same data")


def _official_data_notes(plan: _Plan, n: int, content: dict | None, batch: int, say) -> None:
    """Notes for a run of an official checkpoint or YAML whose data do not match its epochs: an
    official epoch is (DATASET.SIZE // PART_COUNT) x PART_COUNT images whatever the folder holds
    (the official loader's length), and a global batch above the ``n`` training images shows each
    more than once a step. ``content``: the folder's record (its files, held-out ones included)."""
    size = plan.official.images_per_epoch
    files = content.get("files") if isinstance(content, dict) else None
    held = f" ({files - n} more held out for the evaluation; the official trainer trains on every image)" \
        if files and files > n else ""
    if n != size:
        say(f"note: an official epoch is {size} images (DATASET.SIZE // PART_COUNT x PART_COUNT), as the official "
            f"loader counts it; --data gives {plural(n, 'training image')}{held}, so an epoch here is {size / n:.3g} "
            f"passes over them (a YAML written for this folder would give SIZE: {files or n})")
    if batch > n:
        say(f"note: the global batch {batch} is larger than the {plural(n, 'training image')}: each step shows "
            f"images more than once (--schedule lod_batch=[...] sets smaller batches)")


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


class _LossLog:
    """The log records: each of ``_LOSS_KEYS`` averaged over a window of iterations and over the
    ranks, written to log.jsonl and TensorBoard (rank 0) and shown on the progress bar ``bar``."""

    def __init__(self, run: _Run, bar):
        self.run, self.bar = run, bar
        self.window = run.loss_window  # the run's, so that a checkpoint keeps an unfinished record
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
    shown = opts.progress and ctx.is_main
    eta = (RemainingTime(plan.schedule, total, flops_per_image(trainer.model, plan.schedule),
                         min(trainer.images_seen, total)) if shown else None)
    bar = _progress(total, min(trainer.images_seen, total), shown, eta=eta)
    run.t_start = time.perf_counter()
    last_ckpt = trainer.images_seen if plan.ckpt_state is not None else -1
    ckpt_seconds = 60.0 * opts.checkpoint_minutes if opts.checkpoint_minutes else math.inf
    t_last_ckpt = _clock()
    log = _LossLog(run, bar)
    watch = (ContentionWatch(torch.get_num_threads(), resume=_continue_command(ctx, plan.out, opts), ranks=_local_ranks())
             if ctx.is_main and ctx.device.type == "cpu" else None)
    if plan.official is not None and plan.official.from_checkpoint and ctx.is_main:
        run.write_pictures()  # the official model as it starts, beside what training makes of it
    try:
        while trainer.images_seen < total:
            before, metrics = _train_step(run)
            after = trainer.images_seen
            log.add(metrics, before, after)
            if trainer.step_count % opts.log_steps == 0 or after >= total:
                log.write(metrics, after)
            # every iteration (the watch reads at most every 10 s): at log steps only, a run slowed
            # 25x by other work read once in minutes
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
    except RuntimeError as e:
        if ctx.world_size == 1 or not _peer_gone(e):
            raise
        # another rank died (SIGKILL, out of memory, a lost node) and a collective met its closed
        # connection: gloo's traceback had said neither what happened nor where the run stands
        newest = list_checkpoints(plan.out / "checkpoints")
        where = (f"the newest checkpoint is {newest[-1][1]} ({newest[-1][0] / 1000:.3f} kimg); continue with: "
                 f"{_continue_command(ctx, plan.out, opts)}" if newest else "no checkpoint was written yet")
        raise UserError(f"another process of the job ended without a word (killed, or out of memory?): its connection "
                        f"closed; this one stops at {trainer.images_seen / 1000:.3f} kimg without a checkpoint: "
                        f"{where}") from None
    except KeyboardInterrupt:  # only where no handler could be installed (not the main thread)
        if ctx.world_size == 1 and trainer.images_seen != last_ckpt and trainer.images_seen > 0:
            path = run.write_checkpoint()
            run.say(f"\ninterrupted: saved {path}; continue with --resume --out {shlex.quote(str(plan.out))}")
        raise
    finally:
        log.close()
    return stopped


def _peer_gone(e: BaseException) -> bool:
    """Whether a collective failed because another rank's process is gone (gloo's and NCCL's
    words for a closed connection), not because of a bug of ours."""
    text = str(e)
    return any(w in text for w in ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                                   "NCCL communicator was aborted", "remote process exited"))


def _local_ranks() -> int:
    """This job's processes on this machine: torchrun's ``LOCAL_WORLD_SIZE`` (1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _unrecorded_flags(opts: TrainOptions | None) -> str:
    """The flags of ``opts`` that a checkpoint does not carry to a resume, where they differ from
    the defaults (" --keep 40 --workers 2 --no-eval"): a continue line without them had resumed
    with 3 checkpoints kept (deleting the others), no loader processes and an evaluation."""
    if opts is None:
        return ""
    d = TrainOptions()
    flags = [(opts.device != d.device, f"--device {shlex.quote(str(opts.device))}"),
             (opts.keep != d.keep, f"--keep {opts.keep}"),
             (opts.num_workers != d.num_workers, f"--workers {opts.num_workers}"),
             (opts.log_steps != d.log_steps, f"--log-steps {opts.log_steps}"),
             (opts.checkpoint_minutes != d.checkpoint_minutes, f"--checkpoint-minutes {opts.checkpoint_minutes or 0:g}"),
             (not opts.evaluate, "--no-eval")]
    return "".join(f" {flag}" for differs, flag in flags if differs)


def _continue_command(ctx: DistributedContext, out: Path, opts: TrainOptions | None = None) -> str:
    """The command that continues the run in ``out`` as it ran: ``alae-fast train --resume --out
    OUT`` for one process, with the flags of ``opts`` a checkpoint does not carry
    (:func:`_unrecorded_flags`); under torchrun the same number of processes (another number
    continues, but reseeds the random streams), spelled out for one machine, and with a
    placeholder for the rendezvous options of several."""
    resume = f"train --resume --out {shlex.quote(str(out))}{_unrecorded_flags(opts)}"
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
                f"({trainer.images_seen / 1000:.3f} kimg); continue with: {_continue_command(ctx, out, run.plan.opts)}")
        else:
            say(f"stopped by {stopped} before training began: nothing trained and no checkpoint written "
                f"(run folder {out}); run the same command again to start it")
        return {**summary, "stopped": stopped}
    if stopped:
        say(f"stopped by {stopped} at {trainer.images_seen / 1000:.3f} kimg (lod {trainer.lod}); checkpoint "
            f"{run.last_path}; continue with: {_continue_command(ctx, out, run.plan.opts)}")
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
    # The job's signal reaches every rank while rank 0 evaluates and the others wait here for it:
    # with the run's handlers gone, its default action killed a waiting rank without a word, and
    # rank 0 then waited here for it until torchrun's SIGKILL (30 s). Caught, it only ends rank
    # 0's evaluation (above) and every rank leaves together; a second signal still kills.
    with StopRequest(announce=False):
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
