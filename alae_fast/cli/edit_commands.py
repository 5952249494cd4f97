"""The latent-editing commands: ``edit`` (images moved along attribute directions), ``encode``
(w = E(x) as .npy) and ``directions`` (fit attribute directions on labelled images)."""

from __future__ import annotations

import sys
from pathlib import Path

from .._words import plural as _plural
from ..errors import UserError
from . import runs
from .options import _check_noise_seed, _noise_said, _refine_lr_named, _refine_options, _say_refining
from .pictures import (_check_picture_size, _display_scale, _edit_titles, _file_titles, _labelled_size,
                       _rows_legend, _tiles_said)
from .runs import _out, _run_folder


def _cmd_edit(args) -> int:
    from ..edit.apply import DEMO_LAYERS, EDIT_LAYERS
    from ..edit.commands import (direction_name, edit_strip, parse_direction_arg, resolve_directions,
                                 saved_directions_folder)
    from ..inference.pictures import save_labelled_grid
    from ..inference.pixels import load_image_files, to_display

    if args.noise_old is not None:
        if args.noise_mode is not None and args.noise_mode != args.noise_old:
            raise UserError(f"--noise {args.noise_old} and --noise-mode {args.noise_mode}: --noise is the older "
                            f"spelling of --noise-mode; give one")
        args.noise_mode = args.noise_old
    _check_noise_seed(args)
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
    count = len(args.images)
    # the titles' amounts as resolve_directions will key them; directions are fitted after the check
    amounts = {direction_name(spec): a for spec, a in map(parse_direction_arg, args.direction)}
    rows = _file_titles(args.images)
    # a smaller picture suggested has fewer steps, or the first IMAGES only
    sized = lambda steps, images: _labelled_size(  # noqa: E731
        images, steps, lambda: (rows[:images], _edit_titles(amounts, steps)), res, scale)
    strips = lambda steps, images: sized(steps, images)[0]  # noqa: E731
    picture, exact = sized(args.steps, count)
    _check_picture_size(f"--steps {args.steps} with {_plural(count, 'IMAGE', 'IMAGES')}",
                        f"the picture ({_plural(count, 'strip')} of {_tiles_said(args.steps, res, scale, gap=4)})",
                        picture,
                        [(f"--steps {{}} with {_plural(count, 'IMAGE', 'IMAGES')}", lambda v: strips(v, count), 2,
                          args.steps),
                         (lambda v: f"{_plural(v, 'IMAGE', 'IMAGES')} with --steps {args.steps}",
                          lambda v: strips(args.steps, v), 1, count)],
                        otherwise=[("--steps {} with 1 IMAGE", lambda v: strips(v, 1), 2, args.steps)],
                        exact=exact)
    if args.directions is None and (saved := saved_directions_folder(run)) is not None:
        args.directions = saved
        print(f"alae-fast edit: note: directions are looked for in {saved}, where alae-fast directions wrote "
              f"them for this run (--directions DIR for another folder)", file=sys.stderr)
    vectors, amounts = resolve_directions(args.direction, run, args.directions)  # each direction once
    x = load_image_files(args.images, run.schedule)
    strip = edit_strip(run, x, vectors, amounts, steps=args.steps,
                       edit_layers=DEMO_LAYERS if args.edit_layers is None else args.edit_layers,
                       noise=args.noise_mode or "zero", seed=0 if args.seed is None else args.seed)
    strip = to_display(strip, res)
    path = save_labelled_grid([list(strip[i:i + args.steps]) for i in range(0, strip.shape[0], args.steps)],
                              _out(args, run, "edit.png"), rows, _edit_titles(amounts, args.steps), scale=scale)
    moves = ", ".join(f"{k} {-a:+g}..{a:+g}" for k, a in amounts.items())
    print(f"wrote {_plural(count, 'strip')} of {args.steps} images ({moves}){_noise_said(args)} to {path}")
    legend = _rows_legend(rows, args.images)
    if legend:
        print(legend)
    return 0


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
    run = runs.open_run(args)
    found = fit_run_directions(run, args.data)
    folder = Path(args.out) if args.out else _run_folder(run.path) / "directions"
    for name, vec in found.items():
        save_direction(vec, folder, name)
    print(f"wrote {_plural(len(found), 'direction')} ({', '.join(found)}) to {folder}")
    return 0
