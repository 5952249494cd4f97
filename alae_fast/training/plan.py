"""A run's plan before its first step: the setup resolved from the preset, the data and a
checkpoint (channels taken from the data, the schedule fitted to ``--kimg``), the run folder
checked, the checkpoint to resume found and checked against the options, and the notes the run
prints about what it chose."""

from __future__ import annotations

import dataclasses
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .._cpu_quota import cpu_quota, said_cpus as _cpus, threads_for_quota
from .._omp import choice as omp_wait_choice, usable_cpus
from .._words import plural
from ..errors import UserError
from ..inference import CHECKPOINT_FORMAT
from ..models import MLPALAEConfig, ModelConfig, list_presets
from ..models.presets import EMBEDDED_DIGITS, all_presets, get_preset
from .checkpoint import find_latest_checkpoint, list_checkpoints
from .distributed import DistributedContext
from .options import TrainOptions, _FLAGS, _FLAG_FIELDS, _NUMERIC_OPTIONS, _RUN_DEFAULTS, _in_effect, training_behaviour
from .level_steps import said_lods, shortest_stepped, unstepped
from .schedule import LODSchedule, config_schedule_fields, fit_schedule, make_schedule
from .setups import DEFAULT_PRESET, TrainSetup, resolve_setup


def pick_setup(preset: str | None, model_overrides=None, schedule_overrides=None) -> TrainSetup:
    """The setup ``preset`` names (None: ``DEFAULT_PRESET``, 'digits-32') with the overrides
    applied. Raises ValueError like ``resolve_setup``."""
    return resolve_setup(preset or DEFAULT_PRESET, model_overrides, schedule_overrides)


@contextmanager
def _override_types():
    """A wrong type in --set/--schedule (latent_size=abc) or a value a config or schedule refuses
    (lod_batch=[0]) is the user's: UserError, one line naming the flags."""
    try:
        yield
    except TypeError as e:
        raise UserError(f"--set/--schedule: {e}") from e
    except ValueError as e:
        # the configs' and the schedule's own checks (an unknown preset says its own flag)
        if str(e).startswith(("LODSchedule", "StyleALAEConfig", "MLPALAEConfig")):
            raise UserError(f"--set/--schedule: {e}") from e
        raise


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


def _data_channels(data: str | None) -> tuple[int, str]:
    """Channels of the images ``--data`` names, and which files decided them ("" when nothing
    needs saying): 1 for the embedded digits and MNIST, else the folder's
    (:func:`~alae_fast.data.folder.read_folder_channels`)."""
    from ..data import is_mnist_folder
    from ..data.folder import read_folder_channels

    if data is None or (Path(data).is_dir() and is_mnist_folder(Path(data))):
        return 1, ""
    with data_errors():
        found = read_folder_channels(data)
    return found.channels, found.why()


@contextmanager
def data_errors():
    """A ValueError about the data (a folder without one readable image) named as the CLI's
    own checks of ``--data`` name theirs: ``--data: data folder ...``."""
    try:
        yield
    except ValueError as e:
        if str(e).startswith("--data"):
            raise
        raise UserError(f"--data: {e}") from e


def _match_channels(setup: TrainSetup, opts: TrainOptions) -> tuple[TrainSetup, str | None]:
    """The setup with the data's channels (a model preset whose ``channels`` the user did not
    set), or unchanged with a warning when the model cannot follow the data. Never silent."""
    have = setup.schedule.channels
    want, why = _data_channels(opts.data)
    # a mixed folder's channels come from a few of its files: the note names them
    why = f"\n  {opts.data}: {why}" if why else ""
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
                         f"(--set channels={have} keeps the preset's and converts the images){why}")
    return setup, (f"warning: the data are {kind(want)} ({want} channel{'s' * (want > 1)}) but {setup.name!r} takes "
                   f"{have}: every image is converted to {kind(have)}{why}")


def _passes(images: float, count: int) -> str:
    """``images`` trained on ``count`` images, as passes over them: "4,000 passes", "1 pass",
    "0.011 passes" (two significant digits below 10)."""
    passes = images / count
    text = f"{passes:,.0f}" if passes >= 10 else f"{passes:.2g}"
    return f"{text} pass" if text == "1" else f"{text} passes"


def _digits_preset_like(config: ModelConfig) -> str | None:
    """The preset made for the embedded digits whose model is of ``config``'s kind (digits-mlp for
    an MLP ALAE, digits-32 for a StyleALAE), or None."""
    return next((name for name, p in all_presets().items()
                 if p.data == EMBEDDED_DIGITS and type(p.config) is type(config)), None)


def _embedded_digits_said(plan: _Plan, spec, trained: int) -> tuple[str, bool] | None:
    """What a run says when a preset not made for the embedded digits (``Preset.data``: MNIST,
    photos, FFHQ, ...; any preset that does not say) trains on them, ``--data`` left out: ``(line,
    True)``, a warning, for a new run of the preset's own length, whose schedule was made for
    other data (the passes over those and over these ``trained`` digits, and the flags of a run
    sized to them); ``(line, False)``, a note, when the length is the user's (``--kimg``) or a
    resumed run's. None for other data (``spec``: the run's :func:`~alae_fast.data.spec.data_spec`)
    or a preset made for the digits."""
    if (spec or {}).get("kind") != "digits":
        return None
    name, res = plan.setup.name, plan.schedule.resolution
    try:
        preset = get_preset(name)
    except ValueError:  # a resumed run of a preset this install does not have
        preset = None
    if preset is not None and preset.data == EMBEDDED_DIGITS:
        return None
    data = preset.data if preset is not None else None
    digits = f"the embedded digits (scikit-learn's 1797 images of 8x8, upscaled to {res}x{res})"
    here = f"{_passes(plan.total, trained)} over the {trained} digits trained on"
    if plan.opts.kimg is not None or plan.ckpt_state is not None:
        made = (f", not on the data it is made for ({data})" if data
                else " (this preset does not say what data it was made for)")
        return f"data: no --data, so {name!r} trains on {digits}{made}; {plan.total_kimg:g} kimg: {here}", False
    # a preset that names no data (data=None, one a user registered) may still have been made for
    # the digits, for all this code knows: said as not known, not as "other data"
    made = (f"its schedule was made for {data}" if data
            else "this preset does not say what data its schedule was made for")
    if preset is not None and preset.data_images:
        # the count its schedule was sized to, which need not be the count of the data named
        # (photos-32: any folder of photos, tuned on the repository's 135 tiles)
        made += (f" and sized to the {preset.data_images:,} training images it was tuned on: its "
                 f"{plan.total_kimg:g} kimg are {_passes(plan.total, preset.data_images)} over those and {here} "
                 f"here")
    else:
        made += f": its {plan.total_kimg:g} kimg are {here} here"
    like = _digits_preset_like(plan.setup.model_config)
    sized = f" (--preset {like}, made for them, trains {pick_setup(like).kimg:g} kimg)" if like is not None else ""
    data_flag = f"--data DIR with {data}" if data else "--data DIR"
    return (f"no --data, so {name!r} trains on {digits}, but {made}; for a run sized to these digits give "
            f"--kimg N{sized}, or {data_flag}"), True


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
                f"instead of spinning, which is faster on a busy machine and changes no result (on idle cores it "
                f"is up to 1.7x slower: the run says so if the other work ends; ALAE_FAST_OMP_SPIN=keep keeps "
                f"libgomp's spinning)")
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
    run will end. Where a global batch then steps over whole compressed levels or fade-ins, the
    note names them and the shortest ``--kimg`` from which every one gets an iteration."""
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
    levels, fades = unstepped(fitted, int(round(total_kimg * 1000)))
    if levels or fades:  # a global batch longer than a compressed level steps over it
        skipped = " and ".join([f"{said_lods(levels)} get{'s' * (len(levels) == 1)} no iteration"] * bool(levels) +
                               [f"the fade-in{'s' * (len(fades) > 1)} of {said_lods(fades)} get{'s' * (len(fades) == 1)} "
                                f"no iteration"] * bool(fades))
        shortest = shortest_stepped(sched, fraction)
        batches = [fitted.batch_at(lod) for lod in range(fitted.max_lod + 1)]
        note += (f"; but at its global batches (lod_batch {batches}) {skipped}: " +
                 (f"--kimg {f'{shortest / 1000:.3f}'.rstrip('0').rstrip('.')} or more gives every level and fade-in "
                  f"at least one iteration" if shortest is not None else
                  f"no --kimg under {reach:g} gives every level and fade-in an iteration"))
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
    official: Any = None  # an OfficialStart: the run begins from an official checkpoint

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
             "eval.json": "the evaluation", "run.lock": "the lock of the run in progress"}


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
    if "converted_from" in ckpt_state or "total_kimg" not in ckpt_state:
        # a model without its training (optimisers, schedule position, data stream): a KeyError
        # deep in the plan had answered a converted official checkpoint put in checkpoints/
        origin = (f"converted by `alae-fast convert` from {ckpt_state['converted_from']}"
                  if "converted_from" in ckpt_state else "not written by `alae-fast train`")
        raise UserError(f"--resume: {str(ckpt_path)!r} holds a model but no training state ({origin}); --resume "
                        f"continues runs of `alae-fast train`. To train on from an official ALAE checkpoint, begin "
                        f"a run from the official .pth itself: alae-fast train --from-official FILE.pth --data "
                        f"IMAGES. Every --ckpt command (generate, reconstruct, encode, edit, evaluate, serve) opens "
                        f"this file")
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


def _check_r1_interval(opts: TrainOptions) -> None:
    """UserError for an R1 interval given (``--r1-interval`` or ``--set r1_interval``) to a run
    without R1 (``--r1-gamma 0``): there is nothing to space out. A preset's own interval with
    ``--r1-gamma 0`` is not refused: the run has no R1 term whatever the interval."""
    if opts.r1_gamma != 0:  # None (the default 10) included
        return
    given = (f"--r1-interval {opts.r1_interval}" if opts.r1_interval is not None else
             f"--set r1_interval={opts.model_overrides['r1_interval']}" if "r1_interval" in opts.model_overrides
             else None)
    if given:
        raise UserError(f"{given}: with --r1-gamma 0 there is no R1 term to space out")


def _check_style_mixing(opts: TrainOptions, setup: TrainSetup, ckpt_state: dict | None) -> None:
    """UserError when ``--mixing-prob``/``--style-mixing`` are given (not None) for a model with one
    style input (the MLP ALAE): there is nothing to mix, the trainer skips mixing there (and
    ``--channels-last`` there: it has no feature maps); and when
    a style-mixing mode is given (``--style-mixing`` or ``--set style_mixing``) to a run whose
    mixing probability is 0 (digits-32's, or one given as 0): it would mix nothing."""
    if isinstance(setup.model_config, MLPALAEConfig):
        if opts.channels_last:
            raise UserError(f"--channels-last: {setup.name!r} is an MLP ALAE, which has no feature maps to lay out "
                            f"(a StyleALAE has)")
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


# torch's thread count in this process before a run set one: what a new run gets (OMP_NUM_THREADS,
# which torchrun sets to 1 for several processes a machine, else torch's count of the cores)
_FRESH_THREADS = torch.get_num_threads()


def fresh_threads() -> tuple[int, str]:
    """The thread count a new run of this process takes when ``--threads`` is not given, and why:
    torch's default (``OMP_NUM_THREADS`` when set, else torch's count of the cores), or under a
    CPU quota below that (a container's ``--cpus``) the quota rounded up
    (:mod:`alae_fast._cpu_quota`)."""
    given = os.environ.get("OMP_NUM_THREADS")
    if given:
        why = f"OMP_NUM_THREADS={given}" + (", as torchrun sets it for several processes a machine"
                                            if os.environ.get("TORCHELASTIC_RUN_ID") else "")
        return _FRESH_THREADS, why
    limit = threads_for_quota(_FRESH_THREADS)
    if limit is not None:
        return limit, f"the CPU quota of this process's cgroup allows {_cpus(cpu_quota())}"
    return _FRESH_THREADS, f"torch's default on {plural(usable_cpus(), 'core')}"


def _resume_threads(opts: TrainOptions, ckpt_state: dict, ctx: DistributedContext, say) -> TrainOptions:
    """The thread count of a resumed run.

    ``--threads`` given again is taken (a note when it differs from the run's: the sums run in
    another order). Not given, the checkpoint's count is kept where the run ran as this one
    does (as many processes, on a machine with as many usable cores), so it continues
    bit-identically; elsewhere the count is a property of the machine and the process layout,
    not of the run: it is chosen as a new run chooses it (:func:`fresh_threads`; 2 threads kept
    by each of 2 torchrun processes on 2 cores made a run 15x slower), with a note when that
    differs from the run's. A checkpoint without the machine's cores (before 2026-12-06) is
    compared by its number of processes only."""
    saved = ckpt_state.get("threads")
    if not saved:  # a GPU run on torch's default
        return opts
    saved = int(saved)
    if opts.threads is not None:
        if int(opts.threads) != saved and ctx.device.type == "cpu":
            # allowed (a resumed job may land on other cores), but said: the sums run in another order
            say(f"note: --threads {opts.threads}: the run used {plural(saved, 'thread')} until now; it "
                f"continues, but not bit-identically (another thread count sums in another order)")
        return opts
    saved_world = int(ckpt_state.get("world_size", len(ckpt_state.get("rng", [])) or 1))
    saved_cpus, cpus = ckpt_state.get("cpus"), usable_cpus()
    if saved_world == ctx.world_size and (saved_cpus is None or int(saved_cpus) == cpus):
        # the thread count sets a CPU run's course: the printed continue-line keeps it
        return replace(opts, threads=saved)
    threads, why = fresh_threads()
    if threads != saved:
        before = f"{plural(saved_world, 'process', 'processes')}" + (f" on {plural(int(saved_cpus), 'core')}" if saved_cpus else "")
        say(f"note: threads per process: {saved} -> {threads} ({why}): the run used {saved} as {before}, this run "
            f"is {plural(ctx.world_size, 'process', 'processes')} on {plural(cpus, 'core')}; a thread count not given again is "
            f"chosen as for a new run there (--threads {saved} keeps the run's)")
    return replace(opts, threads=threads)


def _check_batches(opts: TrainOptions, setup: TrainSetup, world_size: int, official=None) -> None:
    """ValueError naming the level whose global batch ``world_size`` processes cannot share
    equally, and where the batch came from (``--schedule lod_batch``, the preset, the run, or
    ``official``'s LOD_2_BATCH table: an :class:`~.from_official.OfficialStart`)."""
    schedule = setup.schedule
    for lod in range(schedule.start_lod, schedule.max_lod + 1):
        batch = schedule.batch_at(lod)
        if batch % world_size:
            if "lod_batch" in opts.schedule_overrides:
                source = "--schedule lod_batch"
            elif official is not None:
                source = (f"TRAIN.LOD_2_BATCH_{official.batch_table}GPU of {official.schedule_source} (--schedule "
                          f"lod_batch=[...] sets another)")
            elif setup.description == "resumed":
                source = "the run's lod_batch (its schedule)"
            else:
                source = f"{setup.name!r}'s lod_batch (its schedule; --schedule lod_batch=[...] sets another)"
            res = schedule.resolution_at(lod)
            raise ValueError(f"{source}: the global batch {batch} of level {lod} ({res}x{res}) is not a multiple "
                             f"of the world size {world_size} (each process takes an equal share)")


def _open_run_folder(opts: TrainOptions, out: Path, say) -> tuple[TrainOptions, Path | None, dict | None]:
    """The run folder ``out`` checked (not a file, no entry of the wrong kind) and the checkpoint
    a ``--resume`` continues found (:func:`_find_checkpoint`'s answer), with the note for a folder
    inside the data said."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; the run folder goes there")
    _check_run_folder(out)
    opts, ckpt_path, ckpt_state = _find_checkpoint(opts, out, say)
    inside = _out_inside_data_note(opts, out)
    if inside:
        say(inside)
    return opts, ckpt_path, ckpt_state


def _plan(opts: TrainOptions, ctx: DistributedContext, say) -> _Plan:
    """The setup (the checkpoint's on a plain ``--resume``), matched to the data's channels and
    fitted to the run's length, with the notes said. Raises ValueError for a non-positive
    length or a global batch the world size does not divide."""
    if opts.from_official is not None or opts.official_config is not None:
        return _plan_from_official(opts, ctx, say)
    if opts.resume:  # the checkpoint holds the setup; _resolve lays the overrides over it
        out = Path(opts.out) if opts.out else Path("runs") / (opts.preset or DEFAULT_PRESET)
        setup = None
    else:  # checked before any folder is read
        with _override_types():
            setup = pick_setup(opts.preset, opts.model_overrides, opts.schedule_overrides)
        out = Path(opts.out) if opts.out else Path("runs") / setup.name
    opts, ckpt_path, ckpt_state = _open_run_folder(opts, out, say)
    if ckpt_state is not None:
        setup = _resolve(opts, ckpt_state)
    _check_flags_against_set(opts, setup)
    _check_r1_interval(opts)
    _check_style_mixing(opts, setup, ckpt_state)
    if ckpt_state is not None:
        # an option or behaviour not given again continues as the checkpoint's run chose it
        saved = ckpt_state.get("options", {})
        opts = replace(opts, **{k: saved[k] for k in _NUMERIC_OPTIONS
                                if getattr(opts, k) is None and saved.get(k) is not None})
        # intervals given when the run began (or set by --from-official) continue too
        intervals = ckpt_state.get("intervals") or {}
        opts = replace(opts, **{k: v for k, v in intervals.items()
                                if k in ("checkpoint_kimg", "image_kimg") and getattr(opts, k) is None and v})
        opts = _resume_threads(opts, ckpt_state, ctx, say)
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
    _check_batches(opts, setup, ctx.world_size)
    return _Plan(opts, setup, out, ckpt_path, ckpt_state, total_kimg, fit_kimg, compressed)


def _plan_from_official(opts: TrainOptions, ctx: DistributedContext, say) -> _Plan:
    """The plan of a new run that trains on from an official checkpoint, or trains an official
    YAML from scratch (``--config`` alone; :mod:`alae_fast.training.from_official`): its model and
    the official schedule counted in official epochs (DATASET.SIZE // PART_COUNT x PART_COUNT
    images), the length TRAIN_EPOCHS of them unless ``--kimg`` says otherwise. Checkpoints and
    pictures come by default every tenth of the images the run trains, not of its length: a run
    that starts at epoch 157 of FFHQ trains a small part of it."""
    from .from_official import official_options_said, official_start, official_yaml_start

    official_options_said(opts)
    start = (official_start(opts.from_official, opts.official_config, ctx.world_size) if opts.from_official is not None
             else official_yaml_start(opts.official_config, ctx.world_size))
    config = start.config
    with _override_types():
        schedule = make_schedule(config_schedule_fields(config), opts.schedule_overrides)
    setup = TrainSetup(start.name, config, schedule, float(config.train_kimg),
                       f"{start.source} trained on as the official trainer does" if start.from_checkpoint else
                       f"the official config {start.source} trained as the official trainer does")
    out = Path(opts.out) if opts.out else Path("runs") / setup.name
    opts, _, _ = _open_run_folder(opts, out, say)  # a new run: refuses a folder that holds checkpoints
    _check_flags_against_set(opts, setup)
    _check_r1_interval(opts)
    _check_style_mixing(opts, setup, None)
    opts = replace(opts, **{k: v for k, v in _RUN_DEFAULTS.items() if getattr(opts, k) is None})
    total_kimg = float(opts.kimg) if opts.kimg is not None else setup.kimg
    if int(round(total_kimg * 1000)) <= start.position:
        at = f"{start.position / 1000:g} kimg (epoch {start.epoch} of {start.images_per_epoch} images)"
        raise UserError(f"--kimg {opts.kimg:g}: the checkpoint is already at {at}; give a longer --kimg to train on"
                        if opts.kimg is not None else
                        f"--from-official {start.source!r} is at {at}, where its official schedule of "
                        f"{start.train_epochs} epochs ({setup.kimg:g} kimg) has ended; give a longer --kimg to train on")
    setup, channel_note = _match_channels(setup, opts)
    if channel_note:
        say(channel_note)
    _check_batches(opts, setup, ctx.world_size, start)
    stretch = (total_kimg * 1000 - start.position) / 10 / 1000  # a tenth of what this run trains
    opts = replace(opts, checkpoint_kimg=opts.checkpoint_kimg or max(stretch, 1e-3),
                   image_kimg=opts.image_kimg or max(stretch, 1e-3))
    return _Plan(opts, setup, out, None, None, total_kimg, total_kimg, False, official=start)
