"""The commands that write pictures of a run: ``generate``, ``reconstruct`` (with the refinement
of E(x), ``--refine-steps``), ``interpolate`` and ``style-mix``."""

from __future__ import annotations

import re
from pathlib import Path

from .._words import plural as _plural
from ..errors import UserError
from . import runs
from .options import (_check_noise_seed, _noise_said, _noise_seeded, _refine_lr_named, _refine_options,
                      _say_refining)
from .pictures import (_bounded_size, _check_picture_size, _display_scale, _file_titles, _interpolation_titles,
                       _labelled_size, _rows_legend, _style_mix_labels, _tiles_said)
from .runs import _out, _run_folder, data_file, mark_png_data, png_data


def _cmd_generate(args) -> int:
    from ..inference.pictures import grid_size, save_image_grid
    from ..inference.pixels import to_display
    from ..inference.sampling import generate_seeds, sample_images

    from ..models import MLPALAEConfig

    run = runs.open_run(args)
    if args.noise_mode is None:
        args.noise_mode = "none" if isinstance(run.config, MLPALAEConfig) else "const"
    res = run.schedule.resolution
    scale = _display_scale(res)
    if args.cutoff is not None and (args.psi if args.psi is not None else run.config.truncation_psi) == 1:
        # psi 1 truncates nothing, whatever the cutoff
        raise UserError(f"--cutoff {args.cutoff} has no effect " + (
            "with --psi 1 (no truncation); give another --psi" if args.psi is not None else
            "without --psi: this run's truncation psi is 1 (no truncation); give --psi too"))
    num_ws = int(run.model.num_ws)
    if args.cutoff is not None and args.cutoff > num_ws:
        # style inputs below the cutoff are truncated: past the count there are none to add. The
        # count itself truncates every input, as --psi alone does, and is taken, as the Python
        # API's generate(cutoff=) and the page take it
        raise UserError(f"--cutoff {args.cutoff}: this model has {_plural(num_ws, 'style input')}; "
                        f"expected 1-{num_ws} ({num_ws}: all of them, as --psi alone)")
    # the functions below take these as given, and a psi None as the config's truncation
    psi, cutoff = args.psi, args.cutoff
    if args.psi is None:  # the config's truncation: official 0.7 below style input 8 for the paper presets
        args.psi = run.config.truncation_psi
        args.cutoff = run.config.truncation_cutoff if args.cutoff is None else args.cutoff
    if args.seeds is None:
        if args.outdir is not None or args.grid:
            raise UserError("--outdir and --grid go with --seeds (e.g. --seeds 0-7); without --seeds, "
                            "generate writes one grid to --out")
        noise = "zero" if args.noise_mode == "none" else args.noise_mode
        n = 32 if args.n is None else args.n
        _check_picture_size(f"--n {n}", f"the grid ({_tiles_said(n, res, scale)})",
                            grid_size(n, res, res, scale=scale),
                            [("--n {}", lambda v: grid_size(v, res, res, scale=scale), 1, n)],
                            "--seeds with --outdir writes one file per image")
        seed = 0 if args.seed is None else args.seed
        x = sample_images(run, n, psi=psi, seed=seed, cutoff=cutoff, noise=noise)
        path = save_image_grid(to_display(x, res), _out(args, run, "generated.png"), scale=scale)
        level = run.phase.resolution  # a checkpoint still growing: its level's images, enlarged in the grid
        enlarged = f", {level}x{level} enlarged to {res}x{res}" if level != res else ""
        print(f"wrote {_plural(n, 'sample')} (seed {seed}, {_settings(args, run)}{enlarged}) to {path}")
        return 0
    if args.n is not None or args.seed is not None:
        given = " and ".join(f for f, v in (("--n", args.n), ("--seed", args.seed)) if v is not None)
        raise UserError(f"{given} {'go' if ' and ' in given else 'goes'} without --seeds: with --seeds, each "
                        f"listed seed gives one image")
    if args.out is not None and not args.grid:
        raise UserError("with --seeds, the images go to --outdir; --out names their grid file and "
                        "goes with --grid")
    if args.noise_mode == "batch":  # generate_seeds draws each image alone: batch would be random
        raise UserError("--noise-mode batch shares one noise draw across a batch; with --seeds each image is drawn "
                        "alone from its seed, so use random (or const, none)")
    import torch

    from ..inference.pictures import save_image

    if args.grid:  # before the first seedNNNN.png: a grid refused after them left the command half done
        count = len(args.seeds)
        _check_picture_size(f"--seeds ({_plural(count, 'seed')}) --grid",
                            f"their grid ({_tiles_said(count, res, scale)})", grid_size(count, res, res, scale=scale),
                            [(lambda v: f"{_plural(v, 'seed')} with --grid",
                              lambda v: grid_size(v, res, res, scale=scale), 1, count)],
                            "or leave out --grid: --outdir gets one file per seed")
    outdir = Path(args.outdir) if args.outdir else _run_folder(run.path) / "generated"
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"--outdir {str(outdir)!r} is a file; give a folder (it gets one seedNNNN.png per seed)")
    grid_path = _seeds_grid_path(args, outdir) if args.grid else None
    # a seed listed twice names one file, as in NVlabs' gen_images.py (which rewrites it): each is
    # made and written once, and the count printed is that of the files; the grid shows the list
    distinct = list(dict.fromkeys(args.seeds))
    images = {}
    # each file at the model's own pixels, what run.generate returns: a checkpoint still growing
    # (lod 2 of a 32x32 run) writes its level's 16x16, not 32x32 of 2x2 blocks, which a FID tool
    # would score as the model's images (it resizes to its network's input itself)
    level = run.phase.resolution
    for seed in distinct:  # one at a time: files appear as they are made, memory stays flat
        x = generate_seeds(run, [seed], psi=psi, noise_mode=args.noise_mode, cutoff=cutoff).detach().to(
            "cpu", torch.float32)
        save_image(x[0], outdir / f"seed{seed:04d}.png")
        if args.grid:
            images[seed] = x
    repeats = (f"; --seeds lists {len(args.seeds)} seeds, {len(distinct)} distinct"
               if len(distinct) < len(args.seeds) else "")
    growing = f" (the level's own pixels; the run's resolution is {res}x{res})" if level != res else ""
    print(f"wrote {_plural(len(distinct), 'image')} seedNNNN.png "
          f"({_settings(args, run)}, {level}x{level}) to {outdir}{repeats}{growing}")
    if args.grid:
        # a preview as the plain generate's grid is: the tiles at the run's resolution; an earlier
        # grid of that name is replaced, said as reconstruct says it
        replacing = ", replacing the earlier one" if grid_path.exists() else ""
        path = save_image_grid(to_display(torch.cat([images[s] for s in args.seeds]), res), grid_path,
                               scale=scale)
        enlarged = f", each {level}x{level} image enlarged to {res}x{res}" if level != res else ""
        print(f"wrote their grid to {path}{enlarged}" + ("" if args.out else " (outside the folder of the "
                                                                             "images, which FID tools read whole)")
              + replacing)
    return 0


def _seeds_grid_path(args, outdir: Path) -> Path:
    """Where ``generate --seeds --grid`` writes the grid: ``--out`` when given, else
    ``<outdir>-grid.png`` beside the folder. Not in it: pytorch-fid, clean-fid and torch-fidelity
    score every image file in a folder, and a grid.png among the seedNNNN.png files would be
    scored as one more sample. Beside it rather than refused without --out: the grid stays next
    to the images it shows (the default folder <run>/generated gets <run>/generated-grid.png,
    never the plain generate's generated.png), and the line printed says where. UserError, before
    any image is made, when that name cannot take the file: --outdir '.' or '..' (beside it would
    be outside the folder given), or the name is a folder."""
    if args.out:
        return Path(args.out)
    if outdir.name in ("", ".."):
        raise UserError(f"--grid with --outdir {str(outdir)!r}: the grid goes beside the images' folder, not in it "
                        f"(FID tools read every image there), and beside {str(outdir)!r} is outside it; give "
                        f"--out FILE.png for the grid")
    path = outdir.with_name(outdir.name + "-grid.png")
    if path.is_dir():
        raise UserError(f"--grid: the grid's default file {str(path)!r} (beside --outdir, not in it: FID tools "
                        f"read every image there) is a folder; give --out FILE.png for the grid")
    runs._probe_writable("--grid", path, path.parent)
    return path


def _settings(args, run) -> str:
    """What shaped generate's pictures, as its success line says them: psi, the cutoff when one
    applies (psi 1 truncates nothing), the noise mode, the level of detail."""
    cutoff = f", cutoff {args.cutoff}" if args.cutoff is not None and args.psi != 1 else ""
    return f"psi {args.psi}{cutoff}, noise {args.noise_mode}, lod {run.phase.lod}"


# What reconstruct's line calls the images it shows of a --data (or of the run's data), by the
# split keys of alae_fast.inference.metrics.SPLIT_LABELS, as evaluate's report words them: the
# three that warn the user (training images shown as training, a changed folder, a folder
# holding some of the run's files) in evaluate's own words; the others in the one word the
# README shows ("wrote 16 unseen originals").
def _reconstruct_label(key: str, overlap: dict | None = None) -> tuple[str, str]:
    """``(short, said)``: the images' kind in one or two words (its note of fewer than --n) and
    as the success line says it (``overlap``: data_relation_detail's counts, for "overlap")."""
    from ..inference.metrics import split_label

    short = {"held-out": "held-out", "training": "TRAINING", "changed": "possibly TRAINING",
             "overlap": "possibly TRAINING", "unseen": "unseen", "unrecorded": "possibly seen"}[key]
    return short, (split_label(key, overlap) if key in ("training", "changed", "overlap") else short)


def _images_to_reconstruct(data, run, given: bool):
    """``(dataset, key, relation, overlap, fallback)``: the images ``reconstruct`` shows of
    ``data`` (None: the embedded digits) at the run's resolution and channels, read by
    ``get_batch``, not here; ``key`` says what they are to the run (a key of ``SPLIT_LABELS``, as
    ``evaluate`` labels them), ``relation`` and ``overlap`` are ``data_relation_detail``'s,
    ``fallback`` None or why the held-out split was not used.

    Of the run's own data (relation "own") its held-out split ("held-out"); of its folder changed
    since training ("changed") that folder's held-out split now, which may hold files the run
    trained on ("changed", evaluate's "possibly TRAINING"); of a folder elsewhere holding some of
    the run's files ("overlap") its held-out split too, said "overlap" with how many of its files
    are the run's; any of these, when the data hold none out
    that can be read (a folder of one image, held-out files all unreadable), the training split
    instead ("training"), as ``train`` and ``evaluate`` fall back. Of other data ("other") all of
    it, none being the run's ("unseen"; an MNIST folder: its test split); of any data of a run
    that records none (an official checkpoint: "unrecorded"), all of it, any of which it may
    have seen. ValueError naming --data when ``given`` (the user passed it), else the folder."""
    from ..data import open_dataset
    from ..inference.metrics import data_relation_detail, open_unseen

    res, channels = run.schedule.resolution, run.schedule.channels
    try:
        relation, overlap = data_relation_detail(run, data) if data is not None else ("own", None)
        if relation in ("other", "unrecorded"):
            return open_unseen(data, res, channels)[0], "unseen" if relation == "other" else "unrecorded", \
                relation, None, None
        fallback = None
        try:
            shown, key = open_dataset(data, res, channels, split="test"), "held-out"
        except ValueError as e:  # none held out, or none of them readable: the training split, as evaluate
            try:
                shown, key = open_dataset(data, res, channels, split="train"), "training"
            except ValueError:
                raise e from None  # neither split readable: why the held-out one is not
            # "1 image is too few to hold any out": the folder is named by the note that says it
            fallback = re.sub(r"^data folder (?:'[^']*'|\"[^\"]*\"): ", "", str(e))
        return shown, (relation if relation in ("changed", "overlap") else key), relation, overlap, fallback
    except (FileNotFoundError, ValueError) as e:
        if not given:  # the run's recorded data: the message names its folder; --data was not passed
            raise
        raise ValueError(f"--data: {e}") from e


def _cmd_reconstruct(args) -> int:
    import torch

    from ..data.spec import data_spec, describe_spec
    from ..eval import reconstruction_mse
    from ..inference.loading import run_data
    from ..inference.pictures import pairs_grid_size, save_pairs_grid
    from ..inference.pixels import load_image_files, prepare_images, to_display

    if args.images and (args.data is not None or args.n is not None):
        raise UserError("--data and --n choose the images when no IMAGES are given; with IMAGES, those files "
                        "are reconstructed")
    space, lr = _refine_options(args)
    _check_noise_seed(args)
    run = runs.open_run(args)
    res = run.schedule.resolution
    scale = _display_scale(res)
    per = 3 if args.refine_steps else 2
    # files: a pair a row beside its file's name, as edit's strips, so that each can be told apart
    names = _file_titles(args.images) if args.images else None

    def size(count: int) -> tuple[tuple[int, int], bool]:
        """((width, height), exact) of the picture of ``count`` pairs (the first IMAGES' when named):
        save_pairs_grid's table, whose gaps grow with the images."""
        if names is None:
            return pairs_grid_size(count, res, res, scale=scale, per_pair=per), True
        # save_pairs_grid's own measure (padding 2, times scale), skipped past 4096 file titles
        # whose tiles alone are too large, as other titled tables are (_bounded_size)
        return _bounded_size(count, per, res, scale, 2 * scale,
                             lambda: pairs_grid_size(count, res, res, scale=scale, per_pair=per,
                                                     row_titles=names[:count]))

    def check(given: str, count: int, way) -> None:
        beside = "their reconstructions" if count != 1 else "its reconstruction"
        rows = ", a pair a row beside its file's name" if names is not None else ""
        picture, exact = size(count)
        _check_picture_size(given, f"the picture of {_plural(count, 'original')} beside {beside} "
                                   f"({_tiles_said(per * count, res, scale, gap=2 * scale)}{rows}, under their "
                                   f"titles)",
                            picture, [(way, lambda v: size(v)[0], 1, count)], exact=exact)

    what, out, replacing, marked = "", _out(args, run, "reconstructions.png"), "", None
    if args.images:
        check(_plural(len(args.images), "IMAGE", "IMAGES"), len(args.images), lambda v: _plural(v, "IMAGE", "IMAGES"))
        x = load_image_files(args.images, run.schedule)
    else:
        data, note = run_data(run, args.data)
        if note:
            print(note)
        n = 16 if args.n is None else args.n
        shown, key, relation, overlap, fallback = _images_to_reconstruct(data, run, given=args.data is not None)
        short, what = _reconstruct_label(key, overlap)
        if fallback:  # said before the picture, as train's and evaluate's reports say it
            print(f"note: {describe_spec(data_spec(data))} holds out no image that can be read ({fallback}): "
                  f"showing its training images instead")
        if args.out is None and relation in ("other", "overlap", "unrecorded"):
            # not the run's own data: a file of their own, as evaluate's evaluate-<folder>.json, so
            # that the picture of the run's held-out images (reconstructions.png) is not replaced;
            # another folder of the same name: evaluate's rule, a hash of its path added
            marked = data_spec(data)
            out = data_file(run, "reconstructions", marked, ".png", recorded=png_data)
            replacing = f" (replacing the earlier {out.name})" if out.exists() else ""
        count = min(n, len(shown))  # the picture shows the images there are
        check(f"--n {n}", count, "--n {}")
        x = shown.get_batch(torch.arange(count))[0]
        if count < n:
            print(f"note: the data's {short} images number {count}, fewer than --n {n}: all of them are shown")
    device = next(run.model.parameters()).device
    with torch.no_grad(), _noise_seeded(args.seed, run):
        x = prepare_images(x, run.schedule, run.phase).to(device)
        rec = run.model.reconstruct(x, run.phase.lod, run.phase.blend, noise=run.noise_mode)
    refined, said = None, ""
    if args.refine_steps:
        _say_refining(args, x.shape[0], space, lr)
        with _noise_seeded(args.seed, run), _refine_lr_named(lr):
            refined = run.reconstruct(x, refine_steps=args.refine_steps, space=space, refine_lr=lr).detach()
        said = (f" and G(w) of w refined by {_plural(args.refine_steps, 'step')} of descent from E(x) in {space} "
                f"(MSE {reconstruction_mse(rec, x):.4f} -> {reconstruction_mse(refined, x):.4f}; pixels in [-1, 1])")
        refined = to_display(refined, res)
    path = save_pairs_grid(to_display(x, res), to_display(rec, res), out,
                           scale=scale, refined=refined, row_titles=names)
    if marked is not None:  # which data reconstructions-<name>.png shows, for the next --data of that name
        mark_png_data(path, marked)
    # "5 TRAINING (no usable held-out split) originals": the count before the label, as evaluate's "on 5 ... images"
    print(f"wrote {x.shape[0]} {what + ' ' if what else ''}original{'s' if x.shape[0] != 1 else ''} beside "
          f"{'their reconstructions' if x.shape[0] != 1 else 'its reconstruction'} G(E(x)){said}"
          f"{_noise_said(args)} to {path}{replacing}" + (" (a row each, titled with its file's name)" if names else ""))
    legend = _rows_legend(names, args.images) if names else None
    if legend:
        print(legend)
    return 0


def _cmd_interpolate(args) -> int:
    import torch

    from ..inference.pictures import save_labelled_grid
    from ..inference.pixels import load_image_files, prepare_images, to_display
    from ..inference.sampling import interpolate_latents

    _check_noise_seed(args)
    run = runs.open_run(args)
    res = run.schedule.resolution
    scale = _display_scale(res)
    # one row: A, the --steps decoded points, B, each titled
    strip_size = lambda steps: _labelled_size(1, steps + 2, lambda: ([""], _interpolation_titles(steps)),  # noqa: E731
                                              res, scale)
    picture, exact = strip_size(args.steps)
    _check_picture_size(f"--steps {args.steps}", f"the strip of A, {args.steps} decoded images and B ("
                                                 f"{_tiles_said(args.steps + 2, res, scale, gap=4)})",
                        picture, [("--steps {}", lambda v: strip_size(v)[0], 2, args.steps)], exact=exact)
    device = next(run.model.parameters()).device
    x = prepare_images(load_image_files([args.a, args.b], run.schedule), run.schedule, run.phase).to(device)
    with torch.no_grad(), _noise_seeded(args.seed, run):
        strip = interpolate_latents(run, x[:1], x[1:], args.steps)
    # the inputs themselves at the ends: A, G(E(A)), ..., G(E(B)), B
    strip = torch.cat([to_display(x[:1], res), to_display(strip, res), to_display(x[1:], res)])
    path = save_labelled_grid([list(strip)], _out(args, run, "interpolation.png"), [""],
                              _interpolation_titles(args.steps), scale=scale)
    print(f"wrote an interpolation of {_plural(args.steps, 'image')} from {args.a} to {args.b}{_noise_said(args)} "
          f"to {path} (the two inputs at the ends; t=0 is G(E(A)), t=1 G(E(B)))")
    return 0


def _cmd_style_mix(args) -> int:
    from ..inference.pictures import save_labelled_grid
    from ..inference.pixels import to_display
    from ..inference.sampling import style_mix_tiles, style_ranges

    images = _style_mix_images_given(args)
    run = runs.open_run(args)
    if images:
        return _style_mix_of_images(args, run)
    res = run.schedule.resolution
    scale = _display_scale(res)
    num_ws = int(run.model.num_ws)
    args.rows = 2 if args.rows is None else args.rows
    args.cols = 4 if args.cols is None else args.cols
    args.seed = 0 if args.seed is None else args.seed

    def size(rows: int, cols: int) -> tuple[tuple[int, int], bool]:
        return _labelled_size(3 * rows + 1, cols + 1, lambda: _style_mix_labels(rows, cols, num_ws), res, scale)

    default_cols = 4  # style-mix's --cols default
    if num_ws > 1:  # a model of one style input is refused by style_mix_tiles first, before any work
        picture, exact = size(args.rows, args.cols)
        _check_picture_size(f"--rows {args.rows} --cols {args.cols}",
                            f"the table ({3 * args.rows + 1} rows of {_tiles_said(args.cols + 1, res, scale, 4)}, "
                            f"beside and under their titles)", picture,
                            [(f"--rows {{}} with --cols {args.cols}", lambda v: size(v, args.cols)[0], 1, args.rows),
                             (f"--cols {{}} with --rows {args.rows}", lambda v: size(args.rows, v)[0], 1, args.cols)],
                            exact=exact,
                            otherwise=[(f"--rows {{}} with --cols {default_cols}", lambda v: size(v, default_cols)[0],
                                        1, args.rows)])
    row_labels, col_labels = _style_mix_labels(args.rows, args.cols, num_ws)
    with _noise_seeded(args.seed, run):
        src, dst, mixed, _ = style_mix_tiles(run, args.rows, args.cols, args.seed)
    cells = [["rows: destinations B\ncolumns: sources A", *to_display(src, res)]]
    cells += [[to_display(dst[i:i + 1], res)[0], *to_display(mixed[i], res)] for i in range(dst.shape[0])]
    path = save_labelled_grid(cells, _out(args, run, "style-mix.png"), row_labels, col_labels, scale=scale)
    text = ", ".join(f"{k} {a}-{b - 1}" for k, (a, b) in style_ranges(num_ws).items())
    noise = f"; noise {args.noise_mode}" if args.noise_mode in ("random", "batch") else ""
    print(f"wrote a style-mixing grid ({text} of {_plural(num_ws, 'style input')}; {_plural(args.rows, 'row')} each; "
          f"seed {args.seed}{noise}) to {path}")
    return 0


def _style_mix_images_given(args) -> bool:
    """Whether style-mix mixes image files (--sources and --destinations); UserError for one
    without the other, or with the options of sampled latents (--rows, --cols; --seed without
    noise to seed), which would change nothing."""
    given = [f for f, v in (("--sources", args.sources), ("--destinations", args.destinations)) if v]
    if len(given) == 1:
        other = "--destinations" if given[0] == "--sources" else "--sources"
        raise UserError(f"{given[0]} needs {other}: A and B are both images or both samples")
    if not given:
        return False
    for flag, value in (("--rows", args.rows), ("--cols", args.cols)):
        if value is not None:
            raise UserError(f"{flag} counts sampled latents; with --sources and --destinations the images given "
                            f"are the table")
    if args.seed is not None and args.noise_mode not in ("random", "batch"):
        raise UserError(f"--seed: with --sources and --destinations the latents are the images' E(x); --seed then "
                        f"seeds only G's noise, and noise mode {args.noise_mode or 'zero'} draws none (it goes with "
                        f"--noise-mode random or batch)")
    return True


def _style_mix_of_images(args, run) -> int:
    """style-mix of image files: the official stylemix.py figure, the originals at the margins."""
    from ..inference.pictures import labelled_grid_size, save_labelled_grid
    from ..inference.pixels import load_image_files, prepare_images, to_display
    from ..inference.sampling import check_style_mixable, style_mix_images, style_ranges

    res, num_ws = run.schedule.resolution, check_style_mixable(run)  # before any image is read
    scale = _display_scale(res)
    rows, cols = len(args.destinations), len(args.sources)
    row_labels, col_labels = _style_mix_labels(rows, cols, num_ws, same_b=True)
    _check_picture_size(f"{rows} destinations and {cols} sources",
                        f"the table ({3 * rows + 1} rows of {_tiles_said(cols + 1, res, scale, 4)}, beside and "
                        f"under their titles)", labelled_grid_size(row_labels, col_labels, res, res, scale),
                        [])
    device = next(run.model.parameters()).device
    load = lambda files: prepare_images(load_image_files(files, run.schedule), run.schedule, run.phase).to(device)  # noqa: E731
    src, dst = load(args.sources), load(args.destinations)
    with _noise_seeded(args.seed, run):
        mixed, _ = style_mix_images(run, src, dst)
    cells = [["rows: destinations B\ncolumns: sources A", *to_display(src, res)]]
    b_tiles = to_display(dst, res)
    cells += [[b_tiles[i % rows], *to_display(mixed[i], res)] for i in range(mixed.shape[0])]
    path = save_labelled_grid(cells, _out(args, run, "style-mix.png"), row_labels, col_labels, scale=scale)
    text = ", ".join(f"{k} {a}-{b - 1}" for k, (a, b) in style_ranges(num_ws).items())
    names = "; ".join([f"A{i + 1} {f}" for i, f in enumerate(args.sources)] +
                      [f"B{i + 1} {f}" for i, f in enumerate(args.destinations)])
    print(f"wrote a style-mixing grid of your images ({text} of {_plural(num_ws, 'style input')}; {names}"
          f"{_noise_said(args)}) to {path}")
    return 0
