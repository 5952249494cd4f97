"""``alae-fast evaluate``: every metric of a run, as a report or JSON, and its Inception weights."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from ..errors import UserError, first_line
from . import runs
from .options import _refine_lr_named, _refine_options
from .runs import _run_folder, data_file


def _cmd_evaluate(args) -> int:
    from ..inference.loading import run_data
    from ..inference.metrics import evaluate_model
    from ..inference.projection import DEFAULT_REFINE_IMAGES

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    space, lr = _refine_options(args)
    if args.inception_weights is not None:  # before the run is loaded and scored
        check_inception_weights(args.inception_weights)
    run = runs.open_run(args)
    data, note = run_data(run, args.data)
    if note:
        say(note)
    seed = _training_seed(run) if args.seed is None else args.seed
    refine = dict(refine_steps=args.refine_steps, refine_space=space, refine_lr=lr,
                  refine_images=DEFAULT_REFINE_IMAGES if args.refine_images is None else args.refine_images)
    with _refine_lr_named(lr):
        metrics = evaluate_model(run, data=data, inception_weights=args.inception_weights, num_fid=args.num_fid,
                                 ppl_samples=args.ppl_samples, seed=seed, device=args.device, **refine)
    if metrics.get("fid_skipped"):
        # a one-image folder trains, and its end-of-training report gives the reconstruction MSE:
        # evaluate reports what it can measure, FID left out and said so once
        say(f"note: FID skipped: {metrics['fid_skipped']}; the other metrics are reported (for FID, give --data with "
            f"at least 2 images)")
    metrics["seed"] = seed  # which draws the figures came from: another seed gives other figures
    path, replaced = (Path(args.out), None) if args.out else _evaluation_file(args, run, metrics)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_metrics(metrics))
    say(f"wrote metrics to {path}" + (f" ({replaced})" if replaced else ""))
    return 0


def _training_seed(run) -> int:
    """The seed ``run`` was trained with: its checkpoint's ``options.seed``, else (a checkpoint
    written before checkpoints held it) its run folder's config.json's; 0 when neither records
    one (an official ALAE checkpoint, converted or not). Training's own evaluation (eval.json)
    draws from that seed, so evaluate repeats its figures."""
    from ..inference.loading import _run_config
    from ..inference.sampling import SEED_LIMIT

    def seed_in(record) -> int | None:
        options = record.get("options") if isinstance(record, dict) else None
        seed = options.get("seed") if isinstance(options, dict) else None
        # bool is an int; a record edited by hand may hold anything
        ok = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_LIMIT
        return seed if ok else None

    seed = seed_in(run.state)
    if seed is None:
        seed = seed_in(_run_config(run))  # None when the folder has no config.json that parses
    return 0 if seed is None else seed


def _evaluation_file(args, run, metrics: dict) -> tuple[Path, str | None]:
    """Where evaluate writes without --out, and what to say of a file it replaces there (None:
    nothing replaced, or nothing worth saying).

    ``<run>/evaluate.json`` holds the evaluation on the run's own data (no --data, or --data
    naming them, or its folder changed in place). Other data (relations "other", "overlap",
    "unrecorded") get ``<run>/evaluate-<name>.json``, named for the folder (or ``digits``), so
    that the run's own results are never replaced by another folder's; when that name already
    holds the evaluation of other data of the same name (another folder called so), a short hash
    of the data's path is added (:func:`~alae_fast.cli.runs.data_file`, reconstruct's rule too)."""
    from ..data.spec import describe_spec

    data = metrics.get("data") or {}
    evaluated = data.get("evaluated") or {}
    if args.data is None or data.get("relation") in ("own", "changed"):
        path = _run_folder(run.path) / "evaluate.json"
    else:
        path = data_file(run, "evaluate", evaluated, ".json", recorded=_evaluated_data)
    if not path.exists():
        return path, None
    before = _evaluated_data(path)
    if before is None:  # written before evaluations recorded their data: of which, unknown
        return path, f"replacing the earlier {path.name}"
    same = "the same data" if before == evaluated else describe_spec(before)
    return path, f"replacing its earlier evaluation of {same}"


def _evaluated_data(path: Path) -> dict | None:
    """The data spec an evaluate JSON file records (``data.evaluated``); None when the file is
    missing, unreadable or older than that record."""
    try:
        recorded = json.loads(path.read_text()).get("data", {}).get("evaluated")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, dict) else None


# What --inception-weights takes (README, "evaluate --inception-weights FILE").
INCEPTION_FILES = ("pytorch-fid's pt_inception-2015-12-05-*.pth, torchvision's inception_v3_google-*.pth or "
                   "NVlabs' TorchScript inception-2015-12-05.pt")


def check_inception_weights(path: str) -> None:
    """Opens ``--inception-weights`` as ``evaluate`` will (:func:`alae_fast.eval.feature_network`),
    so that a wrong file is refused before minutes of evaluation rather than after. Raises
    :class:`UserError`, one line naming --inception-weights, the file, why and
    :data:`INCEPTION_FILES`, for a missing path, a folder, a file torch cannot read as a state
    dict or TorchScript, and a state dict of another network (names or shapes)."""
    import torch

    from ..eval import feature_network
    from ..errors import check_regular_file

    given = f"--inception-weights {path!r}"
    if Path(path).is_dir():
        raise UserError(f"{given} is a folder; give the InceptionV3 weights file ({INCEPTION_FILES})")
    try:
        check_regular_file(path, given, f"; expected {INCEPTION_FILES}")
    except FileNotFoundError as e:
        raise UserError(f"{e}; expected {INCEPTION_FILES}") from None
    net = None
    try:
        with warnings.catch_warnings():
            # torch's notes on pickle protocols of a file it then refuses: the line below says why
            warnings.simplefilter("ignore")
            net = feature_network(path)
            # a TorchScript file loads whatever network it holds: only a call shows it is Inception
            with torch.no_grad():
                net(torch.zeros(1, 3, 32, 32))
    except (ValueError, OSError, RuntimeError) as e:
        if net is not None:
            why = f" does not compute Inception features ({first_line(e)})"
        elif e.__cause__ is not None:
            # torch's own message runs to a dozen lines and advises weights_only=False, which
            # would run the file's pickled code; its kind of error is what helps here
            why = (f" could not be read as a torch state dict or TorchScript file "
                   f"({type(e.__cause__).__name__})")
        else:  # the library's one line: "weights: <file> is not an InceptionV3 state dict (...)"
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            why = why.removeprefix("weights: ").removeprefix(str(path)).removeprefix(str(Path(path)))
            why = why if why.startswith(":") else " " + why.lstrip()
        raise UserError(f"{given}{why}; expected {INCEPTION_FILES}") from None


def format_metrics(m: dict) -> str:
    """The human report of ``evaluate``: one line per metric, the latent table when there is one."""
    from ..inference.metrics import SPLIT_LABELS, split_label
    from ..inference.report import format_identification, format_latent_report, format_refined

    data = m.get("data") or {}

    fid_name = m.get("fid_network", "?") + (" - a PROXY, not comparable with published FIDs"
                                            if m.get("fid_is_proxy") else "")
    kimg = "kimg not recorded" if m.get("kimg") is None else f"{m['kimg']:g} kimg"  # None: an official checkpoint
    seed = f", evaluation seed {m['seed']}" if m.get("seed") is not None else ""
    lines = [f"{m.get('checkpoint')}: setup {m.get('setup')}, {kimg}, "
             f"{m.get('resolution')}x{m.get('resolution')} (lod {m.get('lod')}, blend {m.get('blend', 1):g}){seed}"]
    if m.get("latent"):
        lines.append(format_latent_report(m["latent"], run_data=data.get("relation") not in ("other", "overlap")))
    key = m.get("reconstruction_split")
    split = split_label(key, data.get("overlap")) if key in SPLIT_LABELS else "evaluated"
    lines += [f"reconstruction MSE (output not clamped, pixels in [-1, 1]) on {m.get('reconstruction_images')} "
              f"{split} images: {m['reconstruction_mse']:.4f}"]
    if m.get("reconstruction_identification"):
        lines.append(format_identification(m["reconstruction_identification"], m.get("reconstruction_images"),
                                           split))
    if m.get("reconstruction_refined"):
        lines.append(format_refined(m["reconstruction_refined"], split))
    counts = m.get("fid_images") or {}
    real, generated = counts.get("real"), counts.get("generated")
    if real is not None and generated is not None:
        fid_name += f"; {real} real, {generated} generated images" + (
            ": so few real images bias it upward, compare it only with FIDs on the same images"
            if real < generated else "")
    if m.get("fid_generated") is None and m.get("fid_skipped"):
        lines += [f"FID:                     skipped ({m['fid_skipped']}; give --data with at least 2 images)"]
    else:
        lines += [f"FID of generations:      {m['fid_generated']:.3f}   ({fid_name})",
                  f"FID of reconstructions:  {m['fid_reconstructed']:.3f}"]
    lines += [f"PPL in W, full / end:    {m['ppl_full']:.3f} / {m['ppl_end']:.3f}   ({m.get('ppl_distance')})"]
    return "\n".join(lines)
