"""Training on from an official ALAE checkpoint, as the official trainer continues one.

``alae-fast train --from-official ffhq/model_194.pth --config configs/ffhq.yaml --data FOLDER``
begins a new alae_fast run where the official ``train_alae.py`` (podgorskiy/ALAE 42bcf2e) would
go on after ``Checkpointer.load`` of that file:

- **Weights**: the training copies (``discriminator`` = E, ``generator`` = G, ``mapping_fl`` = F,
  ``mapping_tl`` = D) are trained; the ``*_s`` copies are the EMA; ``dlatent_avg`` is ``w_avg``
  (converted as :func:`~alae_fast.models.official.official_state_dict` converts them).
- **Position**: the official run counts epochs of ``(DATASET.SIZE // PART_COUNT) x PART_COUNT``
  images (its TFRecords loader's length, which ``LODDriver`` takes as the data set's size;
  :func:`~alae_fast.models.official.official_epoch_images`) and resumes at the start of epoch
  ``scheduler.last_epoch``. The new run starts at ``last_epoch`` epochs of images with the
  official schedule in the same epochs: ``EPOCHS_PER_LOD`` epochs per level, the first
  ``EPOCHS_PER_LOD // 2`` of each fading in, ``TRAIN_EPOCHS`` in all. So the level, the blend and
  the learning rate at every later image are the official trainer's. SIZE and PART_COUNT are the
  YAML's (defaults.py's 70000 and 1 where it has none), or the published config's; ``--data``
  holding another number of images is said, as the official YAML of a new data set would set
  SIZE to its count.
- **Batch**: ``TRAIN.LOD_2_BATCH_<W>GPU`` for W processes at the run's first start (1, 2, 4 or 8;
  the official driver has no other table and fails there: alae_fast takes the 8-GPU one), the
  global batch, as the official driver picks it by GPU count.
- **Optimisers**: Adam starts afresh. The official resume loads the optimisers' state and then
  ``LODDriver.set_epoch`` clears it (its level starts at -1, so the first epoch is a change of
  level), so the saved moments never reach a step.
- **Behaviour**: the official training (``StyleALAEConfig``'s defaults: style mixing one draw per
  batch, w_avg moved at every F(z), flips, D stepped with a zero gradient in step 3, EMA
  half-life 10 kimg = the official ``0.5 ** (batch / 10000)`` per step).

What differs: the images and their order (the official TFRecords reader shuffles its own way);
an official epoch skips its last, incomplete batch where the alae_fast stream runs on into the next
epoch (at most one batch an epoch); a folder's tenth is held out for the evaluation. The run says
in a note each place where it goes on where the official trainer would not
(:func:`departures_said`, and run.py's data notes): a file without the ``*_s`` copies starts the
EMA from the training weights (the official ``model_s`` is a fresh initialisation); a file with the
``*_s`` copies only trains from them (the official trainer would train from random weights there);
a ``LEARNING_RATES`` table shorter than the levels repeats its last rate (officially an
IndexError); EPOCHS_PER_LOD 1 trains without a fade-in (officially a ZeroDivisionError).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..models.config import per_level
from ..models.official import (_DATASET_DEFAULTS, _PAPER_PRESETS, _STYLE_ARCH, _TRAIN_DEFAULTS, infer_official_config,
                               official_config_from_yaml, official_epoch_images, official_state_dict, yaml_sections,
                               yaml_table, yaml_whole)
from ..models.official_io import OfficialCheckpointError, read_official_checkpoint, read_official_yaml
from ..models.presets import preset_config
from ..models.style_config import StyleALAEConfig
from .official import OFFICIAL_CONFIGS

__all__ = ["OFFICIAL_EPOCHS", "OfficialStart", "official_start", "official_yaml_start", "load_official_start"]

# configs/*.yaml's TRAIN.EPOCHS_PER_LOD, TRAIN_EPOCHS and the images of an epoch, (SIZE //
# PART_COUNT) x PART_COUNT (42bcf2e), for checkpoints of the published architectures opened
# without their YAML.
OFFICIAL_EPOCHS = {"ffhq-1024": (16, 300, 60000), "celeba-hq-256": (30, 280, 28992), "bedroom-256": (2, 112, 758260),
                   "celeba-128": (6, 80, 182624)}
# defaults.py's batch tables (the YAMLs leave out those they do not change)
_BATCH_DEFAULTS = {8: (512, 256, 128, 64, 32, 32), 4: (512, 256, 128, 64, 32, 16), 2: (256, 256, 128, 64, 32, 16),
                   1: (128, 128, 128, 64, 32, 16)}
_NETS = ("discriminator", "generator", "mapping_fl", "mapping_tl")
# what --schedule may change in a run that follows the official epochs: the batch (another GPU
# count's table) and the rates; the lengths are the official epochs
SCHEDULE_FIELDS = ("lod_batch", "lod_lr")


@dataclass(frozen=True)
class OfficialStart:
    """Where a run begun from an official checkpoint starts.

    source: the checkpoint file; schedule_source: where the epochs and tables came from (the
    YAML, or the published config of a paper preset); preset: that preset's name or None;
    model_config: the checkpoint's model with the official batch and rate tables; epoch: the
    official epoch the run continues at (None when the file records none: the official trainer
    then starts at epoch 0); epochs_per_lod, train_epochs: the official TRAIN values;
    batch_table: the GPU count whose LOD_2_BATCH table it carries; models: the checkpoint's
    ``models``; has_ema: whether it holds the ``*_s`` copies; has_training: whether it holds
    the training copies (else they start from the ``*_s`` ones); images_per_epoch: an official
    epoch, ``DATASET.SIZE``; from_checkpoint: False for a run of an official YAML from scratch
    (:func:`official_yaml_start`: no models, epoch 0, ``source`` the YAML).
    """

    source: str
    schedule_source: str
    preset: str | None
    model_config: StyleALAEConfig
    epoch: int | None
    epochs_per_lod: int
    train_epochs: int
    batch_table: int
    models: dict
    has_ema: bool
    images_per_epoch: int
    has_training: bool = True
    from_checkpoint: bool = True
    config_source: str | None = None  # the YAML, named when a tensor's shape contradicts it
    rates_given: int = 0  # the entries of LEARNING_RATES (fewer than the levels: repeated, see departures_said)

    @property
    def config(self) -> StyleALAEConfig:
        """The model with the official schedule counted in epochs of ``images_per_epoch`` images:
        ``EPOCHS_PER_LOD x SIZE`` per level, the first ``EPOCHS_PER_LOD // 2`` epochs fading in
        (lod_driver.get_blend_factor), ``TRAIN_EPOCHS x SIZE`` in all."""
        n, per_lod = self.images_per_epoch, self.epochs_per_lod
        return self.model_config.replace(lod_kimg=(per_lod * n / 1000.0,), fade_fraction=(per_lod // 2) / per_lod,
                                         train_kimg=max(self.train_epochs, 1) * n / 1000.0)

    @property
    def position(self) -> int:
        """The run's first image: the start of official epoch ``epoch`` (0 without one)."""
        return (self.epoch or 0) * self.images_per_epoch

    @property
    def name(self) -> str:
        """The setup's name (its default run folder is ``runs/<name>``); never 'official', the
        setup of an official checkpoint itself, which records no training data or images."""
        if not self.from_checkpoint:
            return f"official-{Path(self.source).stem}"
        return f"{self.preset}-from-official" if self.preset else "from-official"


def _paper_preset(config: StyleALAEConfig) -> str | None:
    for name in _PAPER_PRESETS:
        preset = preset_config(name)
        if all(getattr(preset, k) == getattr(config, k) for k in _STYLE_ARCH):
            return name
    return None


def _recorded_epoch(state: dict, source: str) -> int | None:
    """The schedulers' ``last_epoch`` (equal for both, as ``ComboMultiStepLR.load_state_dict``
    asserts), or None when the file records no scheduler."""
    aux = state.get("auxiliary")
    sched = aux.get("scheduler") if isinstance(aux, dict) else None
    if not isinstance(sched, dict) or not sched:
        return None
    epochs = set()
    for name, value in sched.items():
        epoch = value.get("last_epoch") if isinstance(value, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise OfficialCheckpointError(f"{source}: auxiliary.scheduler.{name}.last_epoch is {epoch!r}; expected "
                                          f"the epoch count, an int >= 0")
        epochs.add(epoch)
    if len(epochs) > 1:
        raise OfficialCheckpointError(f"{source}: the schedulers record different epochs {sorted(epochs)}; the "
                                      f"official trainer refuses that too (ComboMultiStepLR.load_state_dict)")
    return epochs.pop()


def _tables_from_yaml(path, world_size: int) -> tuple[int, int, tuple[int, ...], int, tuple[float, ...], int]:
    """``(epochs_per_lod, train_epochs, lod_batch, batch_table, lod_lr, size)`` of an official YAML,
    missing keys taking defaults.py's values; OfficialCheckpointError naming a malformed key."""
    train, dataset = yaml_sections(read_official_yaml(path), path)
    t = {**_TRAIN_DEFAULTS, **{f"LOD_2_BATCH_{g}GPU": list(b) for g, b in _BATCH_DEFAULTS.items()}, **train}
    gpus = world_size if world_size in _BATCH_DEFAULTS else 8
    return (yaml_whole(t, "TRAIN.EPOCHS_PER_LOD", path, low=0), yaml_whole(t, "TRAIN.TRAIN_EPOCHS", path),
            yaml_table(t, f"TRAIN.LOD_2_BATCH_{gpus}GPU", path), gpus, yaml_table(t, "TRAIN.LEARNING_RATES", path, float),
            official_epoch_images({**_DATASET_DEFAULTS, **dataset}, path))


def _with_tables(config: StyleALAEConfig, batch, lrs) -> StyleALAEConfig:
    levels = config.layer_count
    return config.replace(lod_batch=tuple(per_level(batch, i) for i in range(levels)),
                          lod_lr=tuple(per_level(lrs, i) for i in range(levels)))


def _yaml_setup(yaml, world_size: int):
    """``(config, epochs_per_lod, train_epochs, lod_batch, batch_table, lod_lr, size, preset)`` of
    an official StyleALAE YAML (UserError for an MLP's)."""
    try:
        tables = _tables_from_yaml(yaml, world_size)  # first: names a malformed TRAIN key as such
    except FileNotFoundError as e:
        raise UserError(f"--config: {e}") from None
    config = official_config_from_yaml(yaml)  # refuses EPOCHS_PER_LOD 0 and what alae_fast does not implement
    if not isinstance(config, StyleALAEConfig):
        raise UserError(f"--config {str(yaml)!r}: an MLP ALAE config; training the official schedule in epochs is "
                        f"for the StyleALAE")
    return (config, *tables, _paper_preset(config))


def official_yaml_start(yaml: str | os.PathLike, world_size: int = 1) -> OfficialStart:
    """A new run of an official YAML's StyleALAE from scratch, as ``train_alae.py`` trains it with
    that config on the run's data: the official schedule in official epochs (as
    :class:`OfficialStart`), the LOD_2_BATCH table of ``world_size`` processes, epoch 0.
    Raises what :func:`official_start` raises for its YAML."""
    config, per_lod, epochs, batch, gpus, lrs, size, preset = _yaml_setup(yaml, world_size)
    return OfficialStart(source=str(yaml), schedule_source=f"the YAML {str(yaml)!r}", preset=preset,
                         model_config=_with_tables(config, batch, lrs), epoch=0, epochs_per_lod=per_lod,
                         train_epochs=epochs, batch_table=gpus, models={}, has_ema=False, images_per_epoch=size,
                         from_checkpoint=False, config_source=str(yaml), rates_given=len(lrs))


def official_start(path: str | os.PathLike, yaml: str | os.PathLike | None, world_size: int = 1) -> OfficialStart:
    """Reads an official checkpoint (and its YAML) for a run that trains on from it.

    Args:
        path: the official ``.pth`` (``Checkpointer.save`` format), with the training copies
            ``discriminator``, ``generator``, ``mapping_fl``, ``mapping_tl`` (or their ``*_s``
            copies alone) and ``dlatent_avg``.
        yaml: the official YAML it was trained with, or None for the published architectures
            (ffhq, celeba-hq256, bedroom, celeba: their configs' epochs and tables).
        world_size: the run's processes, which pick the LOD_2_BATCH table as the official
            driver picks it by GPU count (1, 2, 4, 8; another count: the 8-GPU table).

    Returns an :class:`OfficialStart`. Raises FileNotFoundError (no file), UserError (a file
    without all four training copies or all four ``*_s`` copies (which then start the training
    weights), some ``*_s`` copies, a file ``alae-fast convert`` or training wrote, a StyleALAE
    architecture without a YAML that is none of the
    published ones, TRAIN.EPOCHS_PER_LOD 0, an MLP) and OfficialCheckpointError (what
    ``load_official`` raises: an unreadable or malformed file or YAML, shapes that do not fit).
    """
    source = str(path)
    try:
        state = read_official_checkpoint(path)
    except FileNotFoundError as e:  # said with the flag that named it
        raise UserError(f"--from-official: {e}") from None
    models = state.get("models") if isinstance(state, dict) else None
    if isinstance(state, dict) and str(state.get("format", "")).startswith("alae_fast"):
        if state.get("converted_from"):  # convert keeps one model, not the training copies: the .pth has them
            raise UserError(f"--from-official {source!r} was converted by `alae-fast convert` from "
                            f"{state['converted_from']!r}, keeping one model: pass that official .pth")
        raise UserError(f"--from-official {source!r} is an alae_fast checkpoint; a run of `alae-fast train` continues "
                        f"with --resume --out RUN_FOLDER")
    if not isinstance(models, dict):
        raise OfficialCheckpointError(f"{source}: not an official ALAE checkpoint (no 'models' dict)")
    missing = [n for n in _NETS if not isinstance(models.get(n), dict)]
    ema_present = [n for n in _NETS if isinstance(models.get(n + "_s"), dict)]
    if missing and (len(missing) != len(_NETS) or len(ema_present) != len(_NETS)):
        raise UserError(f"--from-official {source!r}: 'models' has no {', '.join(missing)} (training copies) and "
                        f"{'not all' if ema_present else 'none'} of the *_s copies to start them from; give a checkpoint "
                        f"with all four training copies, or all four *_s copies")
    if ema_present and len(ema_present) != len(_NETS):
        absent = [n + "_s" for n in _NETS if n not in ema_present]
        raise UserError(f"--from-official {source!r}: 'models' has some EMA copies but not {', '.join(absent)}; "
                        f"give a checkpoint with all four or none (then the EMA starts from the training weights)")
    suffix = "_s" if missing else ""
    if "fc_1.weight" in models["generator" + suffix]:
        raise UserError(f"--from-official {source!r}: an MLP ALAE (mnist_ref); training on from an official "
                        f"checkpoint is for the StyleALAE")
    epoch = _recorded_epoch(state, source)
    if yaml is not None:
        config, per_lod, epochs, batch, gpus, lrs, size, preset = _yaml_setup(yaml, world_size)
        said = f"the YAML {str(yaml)!r}"
    else:
        config = infer_official_config(models, suffix, source)
        preset = _paper_preset(config)
        if preset is None:
            raise UserError(f"--from-official {source!r}: its architecture is none of the published configs, and the "
                            f"checkpoint does not record the schedule (TRAIN.EPOCHS_PER_LOD, TRAIN_EPOCHS, the batch and "
                            f"rate tables): give --config, the official YAML it was trained with")
        per_lod, epochs, size = OFFICIAL_EPOCHS[preset]
        yaml_name, tables, lrs = OFFICIAL_CONFIGS[preset]
        gpus = world_size if world_size in tables else 8
        batch = tables[gpus]
        said = f"the published {yaml_name}"
    config = _with_tables(config, batch, lrs)
    return OfficialStart(source=source, schedule_source=said, preset=preset, model_config=config, epoch=epoch,
                         config_source=str(yaml) if yaml is not None else None, rates_given=len(lrs),
                         epochs_per_lod=per_lod, train_epochs=epochs, batch_table=gpus, models=models,
                         has_ema=bool(ema_present), images_per_epoch=size, has_training=not missing)


@torch.no_grad()
def load_official_start(trainer, start: OfficialStart) -> None:
    """Puts ``start``'s weights into ``trainer`` (an ``ALAETrainer`` of ``start.config``'s model):
    the training copies into ``trainer.model``, the ``*_s`` copies (else the training copies)
    into its EMA, ``dlatent_avg`` into both ``w_avg``; sets ``images_seen`` to
    ``start.position`` and makes fresh optimisers at that level (the official resume's). A file
    of the ``*_s`` copies alone starts the training weights from them too."""
    model = trainer.model
    trained = official_state_dict(start.models, model, ema=not start.has_training, source=start.source,
                                  config_source=start.config_source)
    model.load_state_dict(trained)
    ema = official_state_dict(start.models, trainer.ema.module, ema=True, source=start.source,
                              config_source=start.config_source) if start.has_ema \
        else trained
    trainer.ema.module.load_state_dict(ema)
    trainer.images_seen = start.position
    phase = trainer.schedule.phase(start.position)
    trainer.lod = phase.lod
    trainer._make_optimizers(phase.lr)


def describe_start(start: OfficialStart, phase, batch_overridden: bool = False) -> str:
    """The line a run begun from ``start`` says first (``phase``: its schedule's phase at the
    start; ``batch_overridden``: --schedule lod_batch replaced the official table)."""
    table = "--schedule lod_batch" if batch_overridden else f"LOD_2_BATCH_{start.batch_table}GPU"
    epochs = (f"epochs of {start.images_per_epoch} images (DATASET.SIZE), {start.epochs_per_lod} per level, from "
              f"{start.schedule_source}")
    if not start.from_checkpoint:
        return (f"training the official config {start.source!r} from scratch as the official trainer does: {epochs}, "
                f"{start.train_epochs} in all; global batch {phase.batch} at lod {phase.lod} ({table}), lr {phase.lr:g}")
    where = (f"epoch {start.epoch} of {start.train_epochs}" if start.epoch is not None else
             f"epoch 0 of {start.train_epochs} (the file records no epoch: auxiliary.scheduler is missing, and the "
             f"official trainer starts such a file at epoch 0, 4x4)")
    level = f"lod {phase.lod} ({phase.resolution}x{phase.resolution}" + (
        f", fading in, blend {phase.blend:.3f})" if phase.in_transition else ")")
    if start.has_training:
        weights = "its training copies, EMA: " + ("its *_s copies" if start.has_ema else
                                                  "a copy of the training weights (the file has no *_s copies)")
    else:
        weights = ("its *_s copies, for training and EMA alike (the file has no training copies, which the official "
                   "trainer would start from random weights)")
    return (f"training on from the official checkpoint {start.source!r} at {where} ({start.position / 1000:g} kimg: "
            f"{epochs}), {level}, global batch {phase.batch} ({table}), lr {phase.lr:g}; weights: {weights}; Adam "
            f"starts afresh, as the official resume does (LODDriver.set_epoch clears the optimisers' state)")


def departures_said(start: OfficialStart, opts: Any, config) -> list[str]:
    """Notes for where the run goes on otherwise than the official trainer would with this
    file or YAML: a LEARNING_RATES table shorter than the levels (officially an IndexError at the
    first level past it), EPOCHS_PER_LOD 1 (officially a ZeroDivisionError in get_blend_factor:
    the fade lasts EPOCHS_PER_LOD // 2 = 0 epochs), and training flags that change the official
    training (``opts``: the run's options; ``config``: its model config)."""
    from .options import _FLAGS, _in_effect

    notes = []
    levels = start.model_config.layer_count
    if 0 < start.rates_given < levels:
        notes.append(f"note: LEARNING_RATES gives {start.rates_given} rate{'s' * (start.rates_given > 1)} for "
                     f"{levels} levels: the official scheduler stops at lod {start.rates_given} (IndexError); "
                     f"alae_fast repeats the last rate")
    if start.epochs_per_lod == 1:
        notes.append("note: EPOCHS_PER_LOD 1: the official driver stops there (get_blend_factor divides by "
                     "EPOCHS_PER_LOD // 2 = 0); alae_fast trains each level without a fade-in")
    changed = [_FLAGS[k].split("/")[0 if getattr(opts, k) is not False else -1]
               for k in ("r1_gamma", "r1_interval", "mixing_prob", "ema_half_life_kimg", "amp", "style_mixing",
                         "w_avg_update", "flip", "d_zero_grad_step", "augment", "lae_weight")
               if getattr(opts, k) is not None and _in_effect(k, getattr(opts, k), config) != _in_effect(k, None, config)]
    if changed:
        notes.append(f"note: {', '.join(changed)} change the official training for this run (config.json's "
                     f"'behaviour' records what it uses)")
    return notes


def official_options_said(opts: Any) -> None:
    """UserError for options that contradict a run of an official checkpoint (``--from-official``)
    or YAML (``--config`` alone): --resume (which continues a run already begun), --preset and
    --set (the model is the checkpoint's or the YAML's), --schedule other than the batch and
    rate tables (the lengths are the official epochs), no --data."""
    flag = "--from-official" if opts.from_official is not None else "--config"
    what = "an official checkpoint" if opts.from_official is not None else "an official YAML"
    model = "the checkpoint's" if opts.from_official is not None else "the YAML's"
    if opts.resume:
        raise UserError(f"{flag} begins a new run from {what}; --resume continues a run in --out, including one begun "
                        f"with {flag}: give one of them")
    if opts.preset is not None:
        raise UserError(f"--preset {opts.preset}: with {flag} the model is {model}"
                        + (" (and --config its official YAML)" if opts.from_official is not None else ""))
    if opts.model_overrides:
        raise UserError(f"--set {', '.join(opts.model_overrides)}: with {flag} the model is {model}")
    other = [k for k in opts.schedule_overrides if k not in SCHEDULE_FIELDS]
    if other:
        raise UserError(f"--schedule {', '.join(other)}: with {flag} the levels last the official epochs; "
                        f"--schedule changes only {' and '.join(SCHEDULE_FIELDS)} there")
    if opts.data is None:
        raise UserError(f"{flag}: give --data, the images to train on (at the model's resolution or larger: they are "
                        f"resized as any --data folder is)")
