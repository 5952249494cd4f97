"""The latent-editing commands: ``edit`` (images moved along attribute directions), ``encode``
(w = E(x) as .npy) and ``directions`` (fit attribute directions on labelled images)."""

from __future__ import annotations

import sys
from pathlib import Path

from .._words import plural as _plural, word_for
from ..errors import UserError
from . import runs
from .options import _check_noise_seed, _noise_said, _refine_lr_named, _refine_options, _say_refining
from .pictures import (_check_picture_size, _cut_middle, _display_scale, _edit_titles, _file_titles,
                       _labelled_size, _rows_legend, _tiles_said)
from .runs import _out, _run_folder


def _cmd_edit(args) -> int:
    from ..edit.apply import DEMO_LAYERS, EDIT_LAYERS
    from ..edit.commands import (direction_name, edit_latents_strip, edit_strip, load_latents, parse_direction_arg,
                                 resolve_directions, saved_directions_folder, _names_file)
    from ..inference.pictures import save_labelled_grid
    from ..inference.pixels import load_image_files, prepare_images, to_display

    if args.noise_old is not None:
        if args.noise_mode is not None and args.noise_mode != args.noise_old:
            raise UserError(f"--noise {args.noise_old} and --noise-mode {args.noise_mode}: --noise is the older "
                            f"spelling of --noise-mode; give one")
        args.noise_mode = args.noise_old
    _check_noise_seed(args)
    _check_edit_sources(args)
    space, lr = _refine_options(args)
    # a strip runs from -AMOUNT to +AMOUNT: with every amount 0 its images were all the same
    if all(parse_direction_arg(text)[1] == 0 for text in args.direction):
        raise UserError(f"--direction {' '.join(args.direction)}: every amount is 0, so the {args.steps} images "
                        f"of a strip (-AMOUNT to +AMOUNT) would be the same; give an amount other than 0")
    run = runs.open_run(args)
    num_ws = int(run.model.num_ws)
    if args.edit_layers is not None and not 1 <= args.edit_layers <= num_ws:
        # said, not taken as "all": only the default (the demo's 16) is cut to the model's count
        expected = "1" if num_ws == 1 else f"1-{num_ws}"
        why = (f"no style input would be edited (those below {args.edit_layers})" if args.edit_layers < 1
               else f"this model has {_plural(num_ws, 'style input')}")
        raise UserError(f"--edit-layers {args.edit_layers}: {why}; expected {expected}, or leave it out to edit "
                        + ("all of them" if num_ws <= EDIT_LAYERS else
                           f"the first {EDIT_LAYERS} (the official demo's)"))
    res = run.schedule.resolution
    scale = _display_scale(res)
    w = None if args.latents is None else load_latents(args.latents, int(run.model.latent_size))
    count = len(args.images) if w is None else w.shape[0]
    given = _plural(count, "IMAGE", "IMAGES") if w is None else f"--latents of {_plural(count, 'row')}"
    # an image's strip starts with the image itself, so that each edit can be told from it
    first = "input" if w is None else None
    rows = _edit_row_titles(args, count)
    # the titles' amounts as resolve_directions will key them; directions are fitted after the check
    amounts = {direction_name(spec): a for spec, a in map(parse_direction_arg, args.direction)}
    # a smaller picture suggested has fewer steps, or the first IMAGES (rows) only
    sized = lambda steps, images: _labelled_size(  # noqa: E731
        images, steps + (first is not None), lambda: (rows[:images], _edit_titles(amounts, steps, first=first)),
        res, scale)
    strips = lambda steps, images: sized(steps, images)[0]  # noqa: E731
    picture, exact = sized(args.steps, count)
    inputs = ", each after its input" if first else ""
    fewer = ((lambda v: f"{_plural(v, 'IMAGE', 'IMAGES')} with --steps {args.steps}") if w is None else
             (lambda v: f"{_plural(v, 'row')} of --latents with --steps {args.steps}"))
    _check_picture_size(f"--steps {args.steps} with {given}",
                        f"the picture ({_plural(count, 'strip')} of "
                        f"{_tiles_said(args.steps, res, scale, gap=4)}{inputs})",
                        picture,
                        [(f"--steps {{}} with {given}", lambda v: strips(v, count), 2, args.steps),
                         (fewer, lambda v: strips(args.steps, v), 1, count)],
                        otherwise=[(f"--steps {{}} with 1 {'IMAGE' if w is None else 'row'}", lambda v: strips(v, 1),
                                    2, args.steps)],
                        exact=exact)
    # the run's folder matters only for a direction given by name (a file is read as given)
    by_name = any(not _names_file(spec) for spec, _ in map(parse_direction_arg, args.direction))
    default = args.directions is None and by_name and (saved := saved_directions_folder(run)) is not None
    if default:
        args.directions = saved
    refit_pairs = _say_directions_checkpoint(args, run, default)
    # each direction once
    vectors, amounts = resolve_directions(args.direction, run, args.directions, refit_pairs=refit_pairs)
    options = dict(steps=args.steps, edit_layers=DEMO_LAYERS if args.edit_layers is None else args.edit_layers,
                   noise=args.noise_mode or "zero", seed=0 if args.seed is None else args.seed,
                   labels=_direction_labels(args, refit_pairs))
    shown = None
    if w is None:
        x = load_image_files(args.images, run.schedule)
        _say_refining(args, count, space, lr)
        with _refine_lr_named(lr):
            strip = edit_strip(run, x, vectors, amounts, refine_steps=args.refine_steps, refine_lr=lr, **options)
        # what was encoded: the images at the level the run reached, as reconstruct shows them
        shown = to_display(prepare_images(x, run.schedule, run.phase), res)
    else:
        strip = edit_latents_strip(run, w, vectors, amounts, **options)
    strip = to_display(strip, res)
    cells = [([] if shown is None else [shown[i // args.steps]]) + list(strip[i:i + args.steps])
             for i in range(0, strip.shape[0], args.steps)]
    path = save_labelled_grid(cells, _out(args, run, "edit.png"), rows, _edit_titles(amounts, args.steps, first=first),
                              scale=scale)
    moves = ", ".join(f"{k} {-a:+g}..{a:+g}" for k, a in amounts.items())
    start = (f"from the latents of {args.latents}" if w is not None else
             f"each after its input, from w = E(x) refined by {_plural(args.refine_steps, 'step')} of descent on "
             f"G's pixel error" if args.refine_steps else "each after its input, from w = E(x)")
    print(f"wrote {_plural(count, 'strip')} of {args.steps} images ({moves}; {start}){_noise_said(args)} to {path}")
    legend = _rows_legend(_file_titles(args.images), args.images) if w is None else None
    if legend:
        print(legend)
    return 0


def _direction_labels(args, refit_pairs: bool) -> dict[str, str]:
    """How an error names each direction: its --direction argument and the file it was read from
    (a name's file in the --directions folder, if any, unless a digit pair fitted on the spot)."""
    from ..edit.commands import _names_file, direction_name, parse_direction_arg
    from ..edit.directions import find_direction_file, parse_digit_pair

    labels = {}
    for text in args.direction:
        spec, _ = parse_direction_arg(text)
        file = (Path(spec) if _names_file(spec) else
                None if refit_pairs and parse_digit_pair(spec) is not None else find_direction_file(spec, args.directions))
        labels[direction_name(spec)] = f"--direction {text!r}" + (f" (direction file {str(file)!r})" if file else "")
    return labels


def _say_directions_checkpoint(args, run, default: bool) -> bool:
    """Says on stderr which checkpoint the direction files edit is about to read were fitted on
    (the record of ``alae-fast directions``, :mod:`alae_fast.edit.provenance`), and returns
    whether the built-in digit pairs are to be fitted on the spot instead of read.

    W changes with every checkpoint: directions fitted on another one (the run's directions/
    before a ``train --resume``, or fitted on its newest checkpoint while an older one is loaded)
    move w along lines that need not be the attributes' any more. What is done then:

    - a digit pair ``A-B`` given by name is fitted on the spot for the checkpoint loaded (said),
      not read from the stale file: the name means "from A to B in this model", which is what
      ``edit`` does without a file, the fit takes seconds, and refusing would leave the user to
      refit all 45 pairs first for the edit the name asks for; the file itself is still read
      when given as a path (an explicit choice), with the same warning;
    - any other direction (a --data class, an official attribute) cannot be refitted here (its
      images are not known): it is read, with a warning naming both checkpoints and how to refit.

    A file without a record (a folder made by hand, or by an alae-fast before the record) is
    read as before; for the run's own folder, read unasked, the note says that it is not known
    which checkpoint it was fitted on."""
    from ..edit.commands import _is_digits_model, parse_direction_arg, _names_file
    from ..edit.directions import find_direction_file, parse_digit_pair
    from ..edit.provenance import RECORD_NAME, files_said, provenance, refit_advice

    folder = args.directions
    # for an older checkpoint of the run, a folder of its own: the run's directions/ are its newest one's
    refit = refit_advice(run, args.ckpt)
    specs = [spec for spec, _ in map(parse_direction_arg, args.direction)]
    named = {} if folder is None else {spec: f for spec in specs if not _names_file(spec)
                                       and (f := find_direction_file(spec, folder)) is not None}
    given = [Path(spec) for spec in specs if _names_file(spec) and Path(spec).is_file()]
    said = "alae-fast edit:"
    pairs_refit = False
    p = provenance(named.values(), run) if named else None
    if p is not None and p.status == "other":
        stale = {spec for spec, f in named.items() if f.name in p.others}
        pairs = [spec for spec in stale if parse_digit_pair(spec) is not None and _is_digits_model(run)]
        kept = [spec for spec in stale if spec not in pairs]
        pairs_refit = bool(pairs)
        what = files_said(named[s].name for s in sorted(stale))
        line = (f"{said} warning: {what} in {folder} {word_for(len(stale), 'was', 'were')} fitted by alae-fast "
                f"directions on {p.other_checkpoints()}, not on the checkpoint loaded, {p.loaded}: W changes with "
                f"training, so a direction fitted on another checkpoint need not point along its attribute here")
        if pairs:
            line += (f"; the digit {word_for(len(pairs), 'pair')} {', '.join(sorted(pairs))} "
                     f"{word_for(len(pairs), 'is', 'are')} fitted on the spot for {p.loaded} instead (give the "
                     f"file's path, --direction {named[sorted(pairs)[0]]}=AMOUNT, to use the file as it is)")
        if kept:
            line += (f"; {', '.join(sorted(kept))} {word_for(len(kept), 'is', 'are')} used as fitted there: "
                     f"refit with {refit}")
        print(line, file=sys.stderr)
    elif default:
        where = ""
        if p is not None:  # fitted on the checkpoint loaded, or not known on which
            unknown = len(p.unknown)
            where = (f", where alae-fast directions wrote them for this checkpoint, {p.loaded}" if p.status == "same"
                     else f"; it is not known which checkpoint {files_said(p.unknown)} "
                          f"{word_for(unknown, 'was', 'were')} fitted on: no {RECORD_NAME} record of alae-fast "
                          f"directions there lists {word_for(unknown, 'it', 'them')} as written (if fitted on another "
                          f"checkpoint, refit with {refit})")
        print(f"{said} note: directions are looked for in {folder} (--directions DIR for another folder){where}",
              file=sys.stderr)
    if given:
        p = provenance(given, run)
        if p.status == "other":
            files = [str(f) for f in given if f.name in p.others]
            print(f"{said} warning: {', '.join(files)} {word_for(len(files), 'was', 'were')} fitted by alae-fast "
                  f"directions on {p.other_checkpoints()}, not on the checkpoint loaded, {p.loaded}: W changes with "
                  f"training, so it need not point along its attribute here; used as given (refit with {refit})",
                  file=sys.stderr)
    return pairs_refit


def _check_edit_sources(args) -> None:
    """UserError unless edit is given either IMAGES or --latents (not both), and for a
    refinement asked of latents given: they are decoded as they are."""
    if args.latents is None and not args.images:
        raise UserError("give IMAGE files to edit, or --latents NPY (the latents alae-fast encode wrote)")
    if args.latents is not None and args.images:
        raise UserError(f"--latents {args.latents} and IMAGES {' '.join(args.images)}: give one or the other")
    if args.latents is not None and (args.refine_steps or args.refine_lr is not None):
        given = f"--refine-steps {args.refine_steps}" if args.refine_steps else f"--refine-lr {args.refine_lr:g}"
        raise UserError(f"{given} refines E(x) of IMAGES; the rows of --latents are edited as they are (alae-fast "
                        f"encode --refine-steps N writes refined ones)")


def _edit_row_titles(args, count: int) -> list[str]:
    """The row titles of edit's strips: each IMAGE's (:func:`_file_titles`), with a second line
    when its w was refined (the strip is not ALAE's own E(x)); with --latents, the file's name
    and the row: ``w.npy [3]``."""
    if args.latents is not None:
        name = _cut_middle(Path(args.latents).name, 20)
        return [f"{name} [{i}]" for i in range(count)]
    titles = _file_titles(args.images)
    if args.refine_steps:
        titles = [f"{t}\nw: E(x) refined,\n{_plural(args.refine_steps, 'step')}" for t in titles]
    return titles


def _cmd_encode(args) -> int:
    import numpy as np
    import torch

    from ..inference.pixels import load_image_files

    space, lr = _refine_options(args)
    run = runs.open_run(args)
    x = load_image_files(args.images, run.schedule)
    if args.refine_steps:
        _say_refining(args, x.shape[0], space, lr)
        with _refine_lr_named(lr):
            w = run.project(x.to(run.device), steps=args.refine_steps, lr=lr, space=space)
        how = f", E(x) refined by {_plural(args.refine_steps, 'step')} of descent on G's pixel error in {space}"
    else:
        with torch.no_grad():
            w = run.encode(x.to(run.device))
        how = ""
    path = _out(args, run, "latents.npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, w.float().cpu().numpy())
    shape = " x ".join(str(d) for d in w.shape)
    print(f"wrote the latents of {_plural(w.shape[0], 'image')} ({shape}, float32, in the order given{how}) to {path}")
    return 0


def _cmd_directions(args) -> int:
    from ..edit import save_direction
    from ..edit.commands import fit_run_directions
    from ..edit.provenance import (RECORD_NAME, describe_checkpoint, model_fingerprint, newest_of_run, read_record,
                                   write_record)
    run = runs.open_run(args)
    found = fit_run_directions(run, args.data)
    folder = Path(args.out) if args.out else _run_folder(run.path) / "directions"
    # files of the same names are replaced: said, as evaluate says it replaces its earlier evaluation
    earlier = [name for name in found if (folder / f"direction_{name}.npy").is_file()]
    recorded = (read_record(folder) or {}) if earlier else {}
    entries = [e for name in earlier if isinstance(e := recorded.get(f"direction_{name}.npy"), dict)]
    before = {describe_checkpoint(e.get("checkpoint"), e.get("kimg")) for e in entries}
    mine = model_fingerprint(run.model) if entries else None
    others = [e for e in entries if e.get("fingerprint") != mine]
    paths = [save_direction(vec, folder, name) for name, vec in found.items()]
    # which checkpoint they were fitted on, for edit and serve to compare with the one they load
    write_record(folder, run, paths)
    fitted = describe_checkpoint(Path(run.path).name, run.kimg)
    replaced = ""
    if earlier:
        was = (f" fitted on {' and '.join(sorted(before))}" if before else
               " (not known which checkpoint they were fitted on)")
        replaced = (f", replacing the earlier {_plural(len(earlier), 'file')} of "
                    f"{word_for(len(earlier), 'that name', 'those names')}{was}")
        if others:
            replaced += _replaced_other(run, others, folder, newest_of_run(run.path))
    print(f"wrote {_plural(len(found), 'direction')} ({', '.join(found)}) to {folder}{replaced}; fitted on "
          f"{fitted}, as {RECORD_NAME} there records (edit and serve compare it with the checkpoint they load)")
    return 0


def _replaced_other(run, others: list, folder: Path, newest: Path | None) -> str:
    """What ``directions`` adds to its "replacing" line when the files it replaced were fitted on
    another checkpoint (``others``: their record entries): that they were; and when that one is
    the run's newest (``newest``), replaced by an older one's in the run's own directions/ (no
    --out), that ``edit --ckpt RUN`` now warns and refits, and how to undo it and keep the older
    checkpoint's apart."""
    from ..edit.provenance import own_directions_folder

    run_folder = _run_folder(run.path)
    newest_name = None if newest is None or newest.resolve() == Path(run.path).resolve() else newest.name
    of_newest = (newest_name is not None and folder.resolve() == (run_folder / "directions").resolve()
                 and any(e.get("checkpoint") == newest_name for e in others))
    if not of_newest:
        return ", another checkpoint than this one"
    own = own_directions_folder(run.path)
    return (f", another checkpoint: the run's NEWEST, {newest_name}, which edit and serve load for --ckpt "
            f"{run_folder}; they will now warn that these were fitted on an older one (alae-fast directions --ckpt "
            f"{run_folder} fits them for the newest again; for this checkpoint's own, give --out {own} and edit "
            f"with --directions {own})")
