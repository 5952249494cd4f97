"""The ``alae-fast`` command (also ``python -m alae_fast``, and ``torchrun ... -m alae_fast.cli``).

Subcommands: ``train``, ``generate``, ``reconstruct``, ``interpolate``, ``style-mix``,
``evaluate``, ``convert``, ``edit``, ``encode``, ``directions``, ``serve``, ``presets``, ``bench``, ``info``;
``alae-fast <command> --help`` describes each. Every command prints the paths it wrote.

Error boundary (:func:`main`): mistakes in what the user gave - :class:`alae_fast.errors.UserError`
and the argument/data errors the library raises by convention (``ValueError``, a missing or
existing file) - exit with status 2 and one line naming the problem (set ALAE_FAST_TRACEBACK=1
for the traceback). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from pathlib import Path

from ._extras import install_hint
from ._words import plural as _plural
from .errors import UserError, first_line
from .limits import DEFAULT_NUM_FID, MAX_PICTURE_PIXELS, MAX_REFINE_STEPS  # torch-free: the limits the library enforces

_DESCRIPTION = """\
alae_fast: fused StyleGAN-family ops and the Adversarial Latent Autoencoder (ALAE).

  alae-fast train                       train the default preset on the embedded digits (CPU, minutes)
  alae-fast generate --ckpt runs/X      a grid of samples of a trained run
  alae-fast evaluate --ckpt runs/X      the metrics of a trained run (--json for JSON on stdout)
  alae-fast encode --ckpt runs/X a.png  the latents w = E(x) of image files, as one .npy
  alae-fast serve --ckpt runs/X         a local web page to encode, edit, mix and generate
"""


def _kv(text: str) -> tuple[str, object]:
    """FIELD=VALUE with VALUE parsed as JSON when it is JSON ([32, 32], 0.5, true), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _positive_float(text: str) -> float:
    v = float(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return v


def _upload_mb(text: str) -> float:
    """``--max-upload-mb``: MiB within ``alae_fast.app.uploads.UPLOAD_LIMIT_RANGE`` (64 KiB to
    1 GiB: below, nearly every photo is refused, 1e-9 every upload; above, the limit and the
    memory bound of the uploads held at once are gone), as ``serve(max_upload_mb=)`` checks it."""
    from .app.uploads import check_upload_limit

    v = float(text)
    try:
        check_upload_limit(v, "--max-upload-mb")
    except ValueError as e:
        # its words without the argument's name (argparse names the flag) and with the value as typed
        said = str(e).split(": ", 1)[1].rsplit(", got ", 1)[0]
        raise argparse.ArgumentTypeError(f"{said}, got {text}") from None
    return v


_upload_mb.__name__ = "number"  # argparse's "invalid number value: 'x'"


def _kimg_amount(text: str) -> float:
    """A length in kimg: finite and at least one image (a run, or an interval, counts whole
    images; a smaller value would round to none)."""
    from .training.run import MIN_KIMG, is_kimg_amount
    v = _positive_float(text)
    if not is_kimg_amount(v):
        raise argparse.ArgumentTypeError(f"expected at least {MIN_KIMG} (one image), got {text}")
    return v


def _augment_policies(text: str) -> str:
    """DiffAugment policies as the trainer records them: 'translation,cutout' (spaces dropped),
    '' for 'none'."""
    from .training.augment import parse_augment
    try:
        return ",".join(parse_augment(text, "--augment"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None


_augment_policies.__name__ = "policy list"


def _nonnegative_float(text: str) -> float:
    v = float(text)
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return v


def _probability(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return v


def _int_at_least(low: int):
    """An argparse type: an int >= ``low`` (the message says which)."""
    def parse(text: str) -> int:
        v = int(text)
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text}")
        return v
    parse.__name__ = "int"  # what argparse's "invalid ... value" names
    return parse


_positive_int = _int_at_least(1)


def _refine_steps(text: str) -> int:
    """An argparse type: descent steps of a projection, an int in [0, MAX_REFINE_STEPS] in decimal
    digits, as seeds are read (the range said for a text that is no such int too: "2.5" is as
    wrong as "-1")."""
    v = _decimal(text)
    if v is None or not v <= MAX_REFINE_STEPS:
        raise argparse.ArgumentTypeError(f"expected an int in [0, {MAX_REFINE_STEPS}], got {text}")
    return v


def _run_path(text: str) -> str:
    """An argparse type for ``--ckpt``/``--network``: the text as given, refused when empty (a
    path of '' would be read as the current folder and reported as a folder without checkpoints)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a checkpoint file or run folder; got an empty value")
    return text


def _add_official(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="YAML",
                   help="official checkpoints only: the official YAML config, e.g. configs/ffhq.yaml (default: "
                        "the architecture is inferred from the checkpoint); not a run's config.json, an alae-fast "
                        "checkpoint carries its own config")
    p.add_argument("--no-ema", action="store_true",
                   help="official checkpoints only: the training weights instead of the EMA copies (*_s)")


def _psi(text: str) -> float:
    """Truncation psi: a finite number in ``alae_fast.inference.sampling.PSI_RANGE``."""
    from .inference.sampling import PSI_RANGE

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not PSI_RANGE[0] <= v <= PSI_RANGE[1]:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected psi in [{PSI_RANGE[0]:g}, {PSI_RANGE[1]:g}], got {text}")
    return v


def parse_seeds(text: str) -> list[int]:
    """NVlabs' seed lists: ``"0-7,12"`` -> ``[0, 1, ..., 7, 12]`` (ranges inclusive, seeds in
    [0, 2**63) as ``--seed`` and ``run.generate(seed=)`` take them, duplicates kept in order).
    Raises ``argparse.ArgumentTypeError`` naming the bad part."""
    from .inference.sampling import SEED_LIMIT, seed_range_text

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        a, b = _decimal(lo), (_decimal(hi) if dash else _decimal(lo))
        if a is None or b is None:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-7,12 (decimal digits); cannot read {part!r}")
        # NVlabs' scripts stop at 2**32 (numpy's RandomState); z here comes from torch's
        # generator, so every seed --seed and the Python API take is one a list may name
        if not b < SEED_LIMIT:
            raise argparse.ArgumentTypeError(f"expected seeds in {seed_range_text()}; got {part!r}")
        if a > b:
            raise argparse.ArgumentTypeError(f"the range {part!r} runs backwards; write it low-high ({b}-{a})")
        if b - a >= 100_000 or len(seeds) + b - a >= 100_000:
            raise argparse.ArgumentTypeError(f"expected at most 100000 seeds; {text!r} has more")
        seeds.extend(range(a, b + 1))
    return seeds


def check_device(text: str):
    """A ``--device`` value as a ``torch.device`` this torch can use; UserError naming --device
    otherwise (:func:`alae_fast.inference.loading.check_device`, which the Python API runs too)."""
    from .inference.loading import check_device as check

    return check(text, "--device")


def _decimal(text: str) -> int | None:
    """``text`` as a whole number written in ASCII decimal digits only (what the web page reads
    too), else None: Python's int() would also take "1_000", "+5" and other scripts' digits."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _seed(text: str) -> int:
    """An argparse type: a seed, an int in [0, SEED_LIMIT) = [0, 2**63) (what torch's generators
    take), in decimal digits."""
    from .inference.sampling import SEED_LIMIT, seed_range_text
    v = _decimal(text)
    if v is None or not v < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an int in {seed_range_text()}, got {text}")
    return v


def _fid_count(text: str) -> int:
    v = int(text)
    if v < 2:  # a Fréchet distance needs a covariance: evaluate_model would generate 2 anyway
        raise argparse.ArgumentTypeError(f"expected an int >= 2 (FID compares sets of at least 2 images), got {text}")
    return v


# argparse says "invalid <__name__> value: 'x'" when a type's float()/int() fails: the kind of
# value expected, not this module's private function names
for _type, _kind in ((_positive_float, "number"), (_kimg_amount, "number"), (_nonnegative_float, "number"),
                     (_probability, "number"), (_psi, "number"), (_fid_count, "int"), (_seed, "int")):
    _type.__name__ = _kind


def _add_ckpt(p: argparse.ArgumentParser, aliases: tuple[str, ...] = (), out: bool = True,
              noise: bool = True) -> None:
    p.add_argument("--ckpt", *aliases, dest="ckpt", required=True, metavar="C", type=_run_path,
                   help="a checkpoint file (ckpt-*.pt, or an official ALAE .pth) or a run folder (its newest "
                        "loadable checkpoint)"
                        + (f"; {', '.join(aliases)} is the same (NVlabs' spelling)" if aliases else ""))
    _add_official(p)
    if noise:
        p.add_argument("--noise-mode", default=None, choices=("random", "batch", "const", "zero", "none"),
                       help="G's noise inputs: random (per sample), batch (one draw shared by the batch), const "
                            "(fixed images), zero/none (default: zero)")
    p.add_argument("--device", default="cpu", help="device to run the model on: cpu (default), cuda, cuda:1 ...")
    if out:
        p.add_argument("--out", default=None, metavar="PATH",
                       help="output file (default: inside the checkpoint's run folder)")


def _ckpt_command(sub, name: str, ckpt: dict | None = None, **parser_options) -> argparse.ArgumentParser:
    """A subcommand that opens a run: ``sub.add_parser(name, **parser_options)`` with the ``--ckpt``
    options of :func:`_add_ckpt` (``ckpt``: its keyword arguments)."""
    p = sub.add_parser(name, **parser_options)
    _add_ckpt(p, **(ckpt or {}))
    return p


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose refusals are one line, as every other error of the CLI: "PROG: error:
    MESSAGE (see PROG --help)" on stderr, exit status 2 (argparse prints the whole usage block
    first, 16 lines for ``train``). Its subcommands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``alae-fast`` argument parser: one subcommand per ``_add_*`` function, in the order of ``--help``."""
    parser = OneLineParser(prog="alae-fast", description=_DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_generate, _add_picture_commands, _add_evaluate, _add_convert, _add_edit_commands,
                _add_serve, _add_info_commands):
        add(sub)
    return parser


def _add_train(sub) -> None:
    """``train``: every option of :class:`alae_fast.training.run.TrainOptions`."""
    t = sub.add_parser(
        "train", help="train an ALAE (default: StyleALAE 'digits-32' on the embedded digits)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an ALAE with the paper's three-step iteration, progressive growing and an EMA copy.\n\n"
                    "Writes to the run folder: config.json (resolved setup), log.jsonl (losses, images/s, lod),\n"
                    "loss_curves.png, images/samples-*.png and images/reconstructions-*.png, checkpoints/ckpt-*.pt\n"
                    "(atomic, the newest --keep kept) and eval.json. With no arguments it trains 'digits-32' on\n"
                    "scikit-learn's bundled digits and prints the EMA encoder's 1-NN and LinearSVC accuracy\n"
                    "beside twenty random encoders and PCA.\n\n"
                    "Multi-GPU / multi-process: torchrun --nproc_per_node N -m alae_fast.cli train ...\n"
                    "(NCCL on GPUs, gloo on CPUs; the global batch is split across processes; rank 0 writes).",
        epilog="`alae-fast presets` lists the trainable presets.")
    t.add_argument("--preset", default=None, metavar="NAME",
                   help="training setup or model preset (default: digits-32; on --resume: the checkpoint's)")
    t.add_argument("--data", default=None, metavar="PATH",
                   help="image folder (PNG/JPEG, any size) or folder of MNIST IDX files (default: embedded digits)")
    t.add_argument("--out", default=None, metavar="DIR", help="run folder (default: runs/<preset>)")
    t.add_argument("--kimg", type=_kimg_amount, default=None, metavar="N",
                   help="training length in thousands of images (default: the preset's; on --resume: the run's, "
                        "which a longer --kimg extends)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest loadable checkpoint (bit-identical on the CPU); "
                        "the options below that are not given again continue as that run set them")
    t.add_argument("--seed", type=_seed, default=None, metavar="S", help="random seed (default 0)")
    t.add_argument("--device", default="auto", help="auto (default: the GPU when present), cpu, cuda")
    t.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast of the forward passes")
    t.add_argument("--r1-gamma", type=_nonnegative_float, default=None, help="R1 weight gamma (default 10)")
    t.add_argument("--r1-interval", type=_positive_int, default=None,
                   help="lazy R1: every N steps, weighted by N (default 1: every step)")
    t.add_argument("--mixing-prob", type=_probability, default=None,
                   help="style-mixing probability (default: the preset's mixing_prob; 0.9 for the paper's "
                        "presets; StyleALAE only)")
    t.add_argument("--ema-kimg", type=_positive_float, default=None,
                   help="EMA half-life in thousands of images (default: the preset's ema_kimg; "
                        "10 for the paper's presets)")
    t.add_argument("--checkpoint-kimg", type=_kimg_amount, default=None,
                   help="checkpoint interval in kimg (default: a tenth of the run)")
    t.add_argument("--checkpoint-minutes", type=_nonnegative_float, default=10.0, metavar="M",
                   help="also checkpoint after M minutes of wall time without one (default 10; 0: by images "
                        "only). SIGTERM or "
                        "Ctrl-C checkpoints after the current iteration and exits 0; a second one exits at once")
    t.add_argument("--image-kimg", type=_kimg_amount, default=None,
                   help="sample/reconstruction grid interval in kimg (default: a tenth of the run)")
    t.add_argument("--keep", type=_positive_int, default=3, help="checkpoints kept (default 3)")
    t.add_argument("--log-steps", type=_positive_int, default=20, help="iterations per log record (default 20)")
    t.add_argument("--set", dest="model_overrides", type=_kv, action="append", default=[], metavar="FIELD=VALUE",
                   help="change a model-config field, value as JSON (e.g. --set encoder_hidden=[256,256]); repeatable")
    t.add_argument("--schedule", dest="schedule_overrides", type=_kv, action="append", default=[],
                   metavar="FIELD=VALUE",
                   help="change a schedule field: lod_kimg, lod_batch, lod_lr, start_lod ... (e.g. "
                        "--schedule lod_batch=[32]); repeatable")
    t.add_argument("--no-eval", action="store_true", help="skip the latent-classification report at the end")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress display (a bar on a terminal; when stderr is a file or pipe, a plain line every 30 s)")
    t.add_argument("--workers", type=_int_at_least(0), default=0, help="data-loading worker processes (default 0)")
    t.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads (default: torch's)")
    t.add_argument("--style-mixing", choices=("official", "per_sample"), default=None,
                   help="official: one draw per batch over the active style inputs; per_sample: StyleGAN's "
                        "(default: the preset's; official for the paper presets)")
    t.add_argument("--w-avg-update", choices=("every_generate", "generator_step"), default=None,
                   help="w_avg moves at each of the 3 F(z) of an iteration (official) or once "
                        "(default: the preset's)")
    # each pair exclusive: given both, the last one won silently
    flip = t.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip", action="store_true", default=None,
                      help="mirror real images with probability 1/2 (default: the preset's; on for the paper presets)")
    flip.add_argument("--no-flip", dest="flip", action="store_false", help="never mirror real images")
    zero = t.add_mutually_exclusive_group()
    zero.add_argument("--d-zero-grad-step", dest="d_zero_grad_step", action="store_true", default=None,
                      help="also step D with a zero gradient in step 3, as the official code under torch 1.x "
                           "(D's Adam steps ~1.4x larger; default: the preset's; on for the paper presets)")
    zero.add_argument("--no-d-zero-grad-step", dest="d_zero_grad_step", action="store_false",
                      help="one Adam step of D an iteration")
    t.add_argument("--augment", type=_augment_policies, default=None, metavar="POLICIES",
                   help="DiffAugment in front of E in the adversarial steps, real and generated images alike: "
                        "comma-separated translation, cutout, color, or none (default: the preset's; none for "
                        "the paper presets)")
    t.add_argument("--lae-weight", type=_positive_float, default=None, metavar="W",
                   help="weight of step 3's latent reconstruction loss, mean((E(G(w)) - w)^2), beside the "
                        "adversarial losses that share its Adam optimisers (default: the preset's; 1, the paper's, "
                        "for the paper presets)")


def _add_generate(sub) -> None:
    """``generate``: samples of a run, one PNG per seed (NVlabs' spelling) or a grid."""
    g = _ckpt_command(sub, "generate", dict(aliases=("--network",), noise=False),
                      help="samples of a trained run (EMA model): one PNG per seed, or a grid",
                      description="Sample images from the EMA model of a checkpoint, at the level of detail it "
                                  "reached. With --seeds (NVlabs' spelling): one seedNNNN.png per seed in "
                                  "--outdir, z of each seed drawn alone (a seed gives the same image whatever "
                                  "else is asked), ready for pytorch-fid / torch-fidelity / clean-fid; --grid "
                                  "adds a grid of them. Without --seeds: one grid of --n samples from --seed.",
                      epilog="Noise modes: const (default, as NVlabs): the same noise maps for every image, "
                             "drawn once from a fixed seed; random: fresh noise per image, drawn from its "
                             "seed; batch: one draw shared by the images of a batch (the official "
                             "'batch_constant'; not with --seeds, which draws each image alone); zero or none: no noise. Every mode repeats exactly for the "
                             "same seed.")
    g.add_argument("--seeds", type=parse_seeds, default=None, metavar="LIST",
                   help="seeds as NVlabs writes them, e.g. 0-7,12: one seedNNNN.png each")
    g.add_argument("--outdir", default=None, metavar="DIR",
                   help="folder for the seedNNNN.png files (default: <run folder>/generated)")
    g.add_argument("--grid", action="store_true",
                   help="with --seeds: also write the images as one grid, grid.png beside them (or --out)")
    # --n and --seed default to None so that giving them with --seeds (where they mean nothing) is refused
    g.add_argument("--n", type=_positive_int, default=None, metavar="N",
                   help="without --seeds: number of images in the grid (default 32)")
    g.add_argument("--psi", "--trunc", dest="psi", type=_psi, default=None, metavar="P",
                   help="truncation psi in [-1, 2]: w <- w_avg + psi (w - w_avg) (default: the config's, "
                        "0.7 with cutoff 8 for the paper presets and official checkpoints, else 1: none); "
                        "--trunc is NVlabs' spelling")
    g.add_argument("--cutoff", type=_positive_int, default=None,
                   help="truncate only style inputs below this (default: without --psi the config's, 8 for the "
                        "paper presets and official checkpoints; with --psi all)")
    g.add_argument("--noise-mode", choices=("const", "random", "batch", "zero", "none"), default=None,
                   help="G's noise inputs (default const; none for an MLP ALAE, which has none; see below)")
    g.add_argument("--seed", type=_seed, default=None, help="without --seeds: latent seed of the grid (default 0)")


# What an IMAGE argument may be: alae_fast.inference.pixels.load_image_files opens it with Pillow
_IMAGE_FILES = "any format Pillow decodes (PNG, JPEG, BMP, WebP, GIF, TIFF ...)"

_REFINE_HELP = ("steps of descent on the pixel error of G(w) from w = E(x) (default 0: ALAE's own E(x); "
                "Adam, lr 0.05 falling to 0 on a cosine; not in the ALAE paper: StyleGAN2's projector started "
                "from the encoder)")
_SPACE_HELP = ("with --refine-steps: w (default; one w, G's latent space, where directions act) or w+ (one w per "
               "style input: closer to the image, further from G's own latents)")
_REFINE_LR_HELP = ("with --refine-steps: Adam's first learning rate, in w's units, a number in (0, 1000] (default "
                   "0.05; each image keeps its step of lowest pixel error, E(x) included, and a warning says how many "
                   "no step improved; a descent that reaches NaN or infinity ends the command naming the rate)")

_NOISE_SEED_HELP = ("with --noise-mode random or batch: seed of G's noise (default 0), so that a run repeats "
                    "exactly")

# The commands that open a run and write one picture from it: name, help, description, and their
# own arguments as (flags, add_argument options), in the order --help lists them.
_PICTURE_COMMANDS = (
    ("reconstruct", "images beside their reconstructions G(E(x))",
     "Encode and decode images with the EMA model; save originals beside their reconstructions as one PNG. "
     "Without IMAGES, the first --n held-out images of --data (default: the data the run was trained on) are used; "
     "of data the run was not trained on, the first --n of all its images.",
     ((("images",), dict(nargs="*", metavar="IMAGES", help=f"image files: {_IMAGE_FILES} (center-cropped and "
                                                             f"resized)")),
      (("--data",), dict(default=None, help="data to take images from when no IMAGES are given (default: the "
                                            "run's training data)")),
      (("--n",), dict(type=_positive_int, default=None, help="images taken from --data (default 16)")),
      (("--refine-steps",), dict(type=_refine_steps, default=0, metavar="N",
                                 help=_REFINE_HELP + "; the picture then shows each original, G(E(x)) and G(w) "
                                                     "of the refined w")),
      (("--space",), dict(choices=("w", "w+"), default=None, help=_SPACE_HELP)),
      (("--refine-lr",), dict(type=_positive_float, default=None, metavar="LR", help=_REFINE_LR_HELP)),
      (("--seed",), dict(type=_seed, default=None, help=_NOISE_SEED_HELP)))),
    ("interpolate", "a latent interpolation strip between two images",
     "Encode images A and B, decode points on the straight line between their latents, and save the strip "
     "A, ..., B (reconstructions) as a PNG.",
     ((("a",), dict(metavar="A", help=f"first image file: {_IMAGE_FILES}")),
      (("b",), dict(metavar="B", help=f"second image file: {_IMAGE_FILES}")),
      (("--steps",), dict(type=_int_at_least(2), default=8,
                          help="images in the strip, A's and B's reconstructions included (default 8, at least 2)")),
      (("--seed",), dict(type=_seed, default=None, help=_NOISE_SEED_HELP)))),
    ("style-mix", "coarse, middle and fine style-mixing grid",
     "Top row: sources A. Each further row: a destination B, then B with A's coarse, middle or fine styles "
     "(from 64x64 up the 4-8, 16-32 and 64+ px style inputs, as StyleGAN and the official figure; smaller "
     "models in thirds). A and B are samples G(F(z)), or with --sources and --destinations your images, "
     "encoded (the official style_mixing/stylemix.py figure). Needs a model with several style inputs (StyleALAE).",
     ((("--rows",), dict(type=_positive_int, default=None, help="sampled destinations per style range (default 2)")),
      (("--cols",), dict(type=_positive_int, default=None, help="sampled sources (default 4)")),
      (("--sources",), dict(nargs="+", metavar="A", default=None,
                            help=f"source images A, with --destinations (instead of samples): {_IMAGE_FILES}")),
      (("--destinations",), dict(nargs="+", metavar="B", default=None,
                                 help="destination images B, with --sources; each is mixed in all three ranges")),
      (("--seed",), dict(type=_seed, default=None,
                         help="seed of the sampled latents and, with --noise-mode random or batch, of G's noise "
                              "(default 0): the same seed, the same picture")))),
)


def _add_picture_commands(sub) -> None:
    """``reconstruct``, ``interpolate`` and ``style-mix``: the ``--ckpt`` options and :data:`_PICTURE_COMMANDS`'."""
    for name, help_text, description, arguments in _PICTURE_COMMANDS:
        p = _ckpt_command(sub, name, help=help_text, description=description)
        for flags, options in arguments:
            p.add_argument(*flags, **options)


def _add_evaluate(sub) -> None:
    """``evaluate``: every metric of a run."""
    # no --noise-mode: each metric defines its noise (FID of generations: random; the rest: none)
    e = _ckpt_command(sub, "evaluate", dict(noise=False), help="metrics of a trained run (a report; --json for JSON)",
                      description="Latent classification (1-NN and LinearSVC(C=0.02) on E(x) of the train split, "
                                  "scored on the test split, beside twenty random encoders and PCA of the same "
                                  "dimension), reconstruction MSE, FID of generations and reconstructions "
                                  "(InceptionV3 with --inception-weights, else a named random-conv PROXY), and "
                                  "PPL in W (full and end, eps 1e-4, proxy-LPIPS distance). Written as JSON to "
                                  "--out (default <run>/evaluate.json for the run's own data, "
                                  "<run>/evaluate-<folder name>.json for other --data, so the run's own results "
                                  "stay); printed as a report, or with --json as JSON alone on stdout (notes then "
                                  "go to stderr). The report and JSON say what the images are to the run: held-out, "
                                  "training, or unseen (other data).")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON only (machine-readable stdout)")
    e.add_argument("--data", default=None,
                   help="evaluation data (default: the data the run was trained on, as its config records)")
    e.add_argument("--inception-weights", default=None, metavar="FILE",
                   help=f"InceptionV3 weights for real FIDs: {INCEPTION_FILES}")
    # one set of real images serves both: FID of reconstructions compares those images with
    # their reconstructions, whose error is the MSE
    e.add_argument("--num-fid", type=_fid_count, default=DEFAULT_NUM_FID,
                   help="images per FID set, >= 2 (default 1000; fewer where the real images are fewer, with a "
                        "warning); the real images are the held-out split of the run's own data (the training split "
                        "only where there is none), or all images of other --data, also reconstructed for the "
                        "reconstruction MSE")
    e.add_argument("--ppl-samples", type=_positive_int, default=200, help="PPL pairs per sampling (default 200)")
    e.add_argument("--refine-steps", type=_refine_steps, default=0, metavar="N",
                   help=_REFINE_HELP + "; with N >= 1 the report adds the MSE (and, for unlabelled images, the "
                                       "matched-back fraction) of the refined reconstructions, beside G(E(x))'s")
    e.add_argument("--space", choices=("w", "w+"), default=None, help=_SPACE_HELP)
    e.add_argument("--refine-lr", type=_positive_float, default=None, metavar="LR", help=_REFINE_LR_HELP)
    e.add_argument("--refine-images", type=_positive_int, default=None, metavar="N",
                   help="with --refine-steps: refine the first N of the images reconstructed (default 256; a step "
                        "is a forward and a backward pass of G per image: 1.2 ms for photos-32 on two CPU cores, "
                        "150 ms for celeba-128); the report then also gives G(E(x))'s MSE on those N")
    e.add_argument("--seed", type=_seed, default=None,
                   help="seed of the evaluation's draws (samples, FID generations, PPL pairs; the random-encoder "
                        "baseline is the same fixed draws for every seed) (default: the seed the run was trained "
                        "with, as its checkpoint records it, so that evaluate repeats the figures of the run's "
                        "eval.json, except the random encoders of runs trained before 2026-12-05, which drew five "
                        "from the run's seed; 0 for a checkpoint that records none, such as an official ALAE one)")


def _add_convert(sub) -> None:
    """``convert``: an official ALAE checkpoint as an alae_fast one."""
    c = sub.add_parser("convert", help="an official ALAE checkpoint (.pth) as an alae_fast checkpoint",
                       description="Convert a checkpoint of the official ALAE code (podgorskiy/ALAE: the four "
                                   "StyleALAE configs, the mnist_ref MLP) into an alae_fast checkpoint that every "
                                   "--ckpt command opens. No pickled code runs while reading it.")
    c.add_argument("official", metavar="OFFICIAL", help="the official .pth file")
    _add_official(c)
    c.add_argument("--out", required=True, metavar="FILE", help="the alae_fast checkpoint to write")


def _add_serve(sub) -> None:
    """``serve``: the local web page."""
    # no --noise-mode: the page decodes without noise and its Generate tab has its own noise choice
    v = _ckpt_command(sub, "serve", dict(out=False, noise=False),
                      help="a local web page to play with a trained run (needs the [app] extra)",
                      description="Serve a page to encode and reconstruct uploaded images, edit them along "
                                  "attribute directions, generate, mix styles and interpolate, with PNG downloads. "
                                  "Binds to 127.0.0.1 (this machine only) unless --host says otherwise. Needs "
                                  "FastAPI and uvicorn, the [app] extra.",
                      epilog="Directions: --directions DIR loads every *.npy in DIR (one [latent_size] vector "
                             "each, e.g. the official ALAE principal_directions). For a run trained on the "
                             "digits, one direction per digit class is fitted at start from the embedded "
                             "labels (LinearSVC on E(x)).")
    v.add_argument("--directions", default=None, metavar="DIR", help="folder of .npy attribute directions")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    v.add_argument("--max-upload-mb", type=_upload_mb, default=8.0,
                   help="largest accepted upload in MiB, 0.0625-1024 (64 KiB to 1 GiB; default 8)")


def _add_info_commands(sub) -> None:
    """``presets``, ``bench`` (its options are ``alae_fast.bench.report``'s) and ``info``."""
    sub.add_parser("presets", help="list trainable presets and model presets with parameter counts",
                   description="Training setups (what `train --preset` accepts) and model presets, with "
                               "their parameter counts per network.")
    sub.add_parser("bench", help="print the benchmark report (ratios of fused vs reference vs compile vs copy)",
                   add_help=False)
    sub.add_parser("info", help="print what the compiled library was built with (JSON)",
                   description="What the compiled library was built with, as JSON.")



def _run_folder(ckpt_path: Path) -> Path:
    """:func:`alae_fast.inference.loading._run_folder`, where a command's outputs go by default
    (imported when a command runs: the CLI's module level stays torch-free)."""
    from .inference.loading import _run_folder as run_folder

    return run_folder(ckpt_path)


def _out(args, run, default_name: str) -> Path:
    return Path(args.out) if args.out else _run_folder(run.path) / default_name


def _display_scale(res: int) -> int:
    """:func:`alae_fast.inference.pictures.display_scale` (imported when a command runs: the
    CLI's module level stays torch-free)."""
    from .inference.pictures import display_scale

    return display_scale(res)


def _fits(size: tuple[int, int]) -> bool:
    return size[0] * size[1] <= MAX_PICTURE_PIXELS


def _largest_fitting(size_of, low: int, high: int) -> int | None:
    """The largest ``v`` in ``[low, high]`` whose picture ``size_of(v)`` (width, height) fits in
    :data:`MAX_PICTURE_PIXELS`, or None when not even ``low``'s does (or ``high < low``). A
    picture grows with ``v``, so a bisection finds it in log2(high - low) sizes."""
    if high < low or not _fits(size_of(low)):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if _fits(size_of(mid)) else (low, mid - 1)
    return low


def _check_picture_size(given: str, picture: str, size: tuple[int, int], ways=(), hint: str = "",
                        exact: bool = True, otherwise=()) -> None:
    """UserError, before any image is made or file written, when the picture a command is about
    to write holds more than :data:`MAX_PICTURE_PIXELS`.

    ``size`` is its (width, height) as the writer lays it out - from
    :func:`alae_fast.inference.pictures.grid_size`, ``pairs_grid_size`` or ``labelled_grid_size``,
    the writers' own arithmetic, enlargement and padding included - or, with ``exact=False``, a
    lower bound already over the limit (said "at least"). ``given``: the flags as the user gave
    them; ``picture``: what the picture is. ``ways``: ``(text, size_of, low, value)`` for each
    flag that could be lowered: the line says ``text.format(v)`` for the largest ``v`` in
    ``[low, value)`` whose picture ``size_of(v)`` fits (``text`` may be a function of ``v``
    instead, for a plural); ``otherwise``: ways, as ``ways``, said when none of those fits (two
    flags each too large for any value of the other). ``hint``: another way out."""
    if _fits(size):
        return

    def said(options) -> list[str]:
        found = []
        for text, size_of, low, value in options:
            most = _largest_fitting(size_of, low, value - 1)
            if most is not None:
                found.append(text(most) if callable(text) else text.format(most))
        return found

    fitting = said(ways) or said(otherwise)
    width, height = size
    raise UserError(f"{given}: {picture} would be {'' if exact else 'at least '}{width}x{height} pixels "
                    f"({width * height:,}), more than the {MAX_PICTURE_PIXELS:,} (2**26) one picture may hold; "
                    + (f"at most {', or '.join(fitting)}" if fitting else "no smaller value fits at this resolution")
                    + (f" ({hint})" if hint else ""))


def _labelled_size(rows: int, cols: int, titles, res: int, scale: int) -> tuple[tuple[int, int], bool]:
    """((width, height), exact) of a ``save_labelled_grid`` table of ``rows`` x ``cols`` images of
    ``res`` x ``res`` enlarged ``scale`` times, its titles ``titles()`` (row, column). Measuring
    a title takes ~0.3 ms: past 4096 titles, a table whose tiles alone are too large is sized by
    that lower bound (exact False), its titles never made (--steps 10**9 would need gigabytes)."""
    from .inference.pictures import labelled_grid_bound, labelled_grid_size

    bound = labelled_grid_bound(rows, cols, res, res, scale)
    if not _fits(bound) and rows + cols > 4096:
        return bound, False
    return labelled_grid_size(*titles(), res, res, scale), True


def _tiles_said(count: int, res: int, scale: int, gap: int = 2) -> str:
    """How the picture commands draw ``count`` images of ``res`` x ``res``, for a size refusal."""
    larger = f", drawn {scale} times larger" if scale != 1 else ""
    return f"{_plural(count, 'image')} of {res}x{res}{larger}, {gap} pixels apart"


# What each command writes to --out / --outdir: a file of that suffix, or a folder (None).
_OUT_KINDS = {"generate": ".png", "reconstruct": ".png", "interpolate": ".png", "style-mix": ".png",
              "edit": ".png", "evaluate": ".json", "convert": "", "train": None, "directions": None,
              "encode": ".npy"}
_OUT_SAID = {".png": "pictures are written as PNG", ".json": "the metrics are written as JSON",
             ".npy": "the latents are written in NumPy's .npy format"}


def _probe_writable(flag: str, path: Path, folder: Path) -> None:
    """UserError naming ``flag`` unless ``folder`` could be made and written in: its nearest
    existing ancestor is a folder that takes a file. Nothing is created (a temporary probe file
    is removed at once), so a command refused later leaves no empty folders."""
    import tempfile

    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".alae-fast-probe-"):
            pass
    except OSError as e:
        raise UserError(f"{flag} {str(path)!r}: cannot write there ({e.strerror or first_line(e)})") from None


def _check_outputs(args) -> None:
    """Refuses, before any work, a --out/--outdir that cannot be written as the command writes
    it: a folder where a file goes (or the reverse), a picture not named .png (PIL would write
    PNG bytes under any name), a place that cannot be created or written."""
    kind = _OUT_KINDS.get(args.command, "absent")
    out = getattr(args, "out", None)
    if out is not None and kind != "absent":
        path = Path(out)
        if kind is None:  # a folder
            if path.exists() and not path.is_dir():
                raise UserError(f"--out {out!r} is a file; {args.command} writes a folder there")
            _probe_writable("--out", path, path)
        else:
            if path.is_dir():  # a symlink to a folder too: the write would replace the link
                raise UserError(f"--out {out!r} is a folder; give a file name (e.g. "
                                f"{str(path / ('output' + (kind or '.pt')))!r})")
            if kind and path.suffix.lower() != kind:
                raise UserError(f"--out {out!r}: {_OUT_SAID[kind]}; give a name ending in {kind}")
            _probe_writable("--out", path, path.parent)
    outdir = getattr(args, "outdir", None)
    if outdir is not None:
        path = Path(outdir)
        if path.exists() and not path.is_dir():
            raise UserError(f"--outdir {outdir!r} is a file; give a folder (it gets one seedNNNN.png per seed)")
        _probe_writable("--outdir", path, path)


def _say_older_checkpoint(given: str, run) -> None:
    """One line on stderr naming the checkpoint used when ``given`` is a run folder whose newest
    checkpoint did not load: the library warns of each one skipped ("trying an older one"), and
    without this the user never learnt which one the pictures or metrics came from."""
    from .training.checkpoint import list_checkpoints

    if not Path(given).is_dir():
        return
    listed = list_checkpoints(run.path.parent)
    if listed and Path(listed[-1][1]).resolve() != Path(run.path).resolve():
        print(f"alae-fast: warning: using the older checkpoint {run.path} (the newest loadable one)",
              file=sys.stderr)


def _load(args):
    from .inference.loading import load_run

    from .models import MLPALAEConfig

    mode = getattr(args, "noise_mode", None)
    try:
        run = load_run(args.ckpt, args.device, config=args.config, ema=not args.no_ema, noise_mode=mode or "zero")
    except ImportError as e:  # --config without PyYAML: say how to get it, in one line
        raise ValueError(str(e)) from None
    _say_older_checkpoint(args.ckpt, run)
    if mode in ("random", "batch", "const") and isinstance(run.config, MLPALAEConfig):
        raise UserError(f"--noise-mode {mode}: {run.path} is an MLP ALAE, whose G has no noise inputs "
                        f"(its pictures are the same in every noise mode)")
    return run


def _cmd_convert(args) -> int:
    from .inference.loading import convert_official

    if Path(args.official).is_dir():  # convert reads one official file, never a run folder
        raise UserError(f"{args.official!r} is a folder; convert reads one checkpoint file of the official ALAE "
                        f"code (e.g. model_157.pth)")
    try:
        out = convert_official(args.official, args.out, config=args.config, ema=not args.no_ema)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print(f"wrote {out}")
    return 0


def _cmd_train(args) -> int:
    from .training.run import TrainOptions, run_training

    if args.r1_gamma == 0 and args.r1_interval is not None:
        raise UserError(f"--r1-interval {args.r1_interval}: with --r1-gamma 0 there is no R1 term to space out")
    opts = TrainOptions(preset=args.preset, data=args.data, out=args.out, kimg=args.kimg, seed=args.seed,
                        resume=args.resume, device=args.device, amp=args.amp, r1_gamma=args.r1_gamma,
                        r1_interval=args.r1_interval, mixing_prob=args.mixing_prob, ema_half_life_kimg=args.ema_kimg,
                        checkpoint_kimg=args.checkpoint_kimg, checkpoint_minutes=args.checkpoint_minutes or None,
                        image_kimg=args.image_kimg, keep=args.keep,
                        log_steps=args.log_steps, model_overrides=dict(args.model_overrides),
                        schedule_overrides=dict(args.schedule_overrides), evaluate=not args.no_eval,
                        progress=not args.no_progress, num_workers=args.workers, threads=args.threads,
                        style_mixing=args.style_mixing, w_avg_update=args.w_avg_update, flip=args.flip,
                        d_zero_grad_step=args.d_zero_grad_step, augment=args.augment,
                        lae_weight=args.lae_weight)
    run_training(opts)
    return 0


def _cmd_generate(args) -> int:
    from .inference.pictures import grid_size, save_image_grid
    from .inference.pixels import to_display
    from .inference.sampling import generate_seeds, sample_images

    from .models import MLPALAEConfig

    run = _load(args)
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
    if args.cutoff is not None and args.cutoff >= num_ws:
        # style inputs below the cutoff are truncated: at or past the count, every one is, as
        # without --cutoff, so the flag would change nothing
        raise UserError(f"--cutoff {args.cutoff}: this model has {_plural(num_ws, 'style input')}; "
                        f"a cutoff of {num_ws} or more truncates all of them, as --psi alone does ("
                        + (f"expected 1-{num_ws - 1})" if num_ws > 1 else "leave out --cutoff)"))
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
        x = sample_images(run, n, psi=args.psi, seed=seed, cutoff=args.cutoff, noise=noise)
        path = save_image_grid(to_display(x, res), _out(args, run, "generated.png"), scale=scale)
        print(f"wrote {_plural(n, 'sample')} (seed {seed}, {_settings(args, run)}) to {path}")
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

    from .inference.pictures import save_image

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
    # a seed listed twice names one file, as in NVlabs' gen_images.py (which rewrites it): each is
    # made and written once, and the count printed is that of the files; the grid shows the list
    distinct = list(dict.fromkeys(args.seeds))
    images = {}
    for seed in distinct:  # one at a time: files appear as they are made, memory stays flat
        x = to_display(generate_seeds(run, [seed], psi=args.psi, noise_mode=args.noise_mode, cutoff=args.cutoff),
                       res)
        save_image(x[0], outdir / f"seed{seed:04d}.png")
        if args.grid:
            images[seed] = x
    repeats = (f"; --seeds lists {len(args.seeds)} seeds, {len(distinct)} distinct"
               if len(distinct) < len(args.seeds) else "")
    print(f"wrote {_plural(len(distinct), 'image')} seedNNNN.png "
          f"({_settings(args, run)}, {res}x{res}) to {outdir}{repeats}")
    if args.grid:
        # beside the images it shows, never over the run folder's generated.png of a plain generate
        path = save_image_grid(torch.cat([images[s] for s in args.seeds]),
                               Path(args.out) if args.out else outdir / "grid.png", scale=scale)
        print(f"wrote their grid to {path}")
    return 0


def _settings(args, run) -> str:
    """What shaped generate's pictures, as its success line says them: psi, the cutoff when one
    applies (psi 1 truncates nothing), the noise mode, the level of detail."""
    cutoff = f", cutoff {args.cutoff}" if args.cutoff is not None and args.psi != 1 else ""
    return f"psi {args.psi}{cutoff}, noise {args.noise_mode}, lod {run.phase.lod}"


def _check_noise_seed(args) -> None:
    """UserError when ``--seed`` (G's noise seed of reconstruct, interpolate, edit) is given with a
    noise mode that draws no noise: it would change nothing."""
    if args.seed is not None and args.noise_mode not in ("random", "batch"):
        raise UserError(f"--seed seeds G's noise, and noise mode {args.noise_mode or 'zero'} draws none; it goes "
                        f"with --noise-mode random or batch")


@contextlib.contextmanager
def _noise_seeded(seed: int | None, run):
    """torch's generators seeded with ``seed`` (None: 0) inside the block and restored after it:
    G's random noise is drawn from them, and an unseeded draw gave another picture each run."""
    import torch

    device = run.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else seed)
        yield


def _noise_said(args) -> str:
    """The noise of a picture command's success line: '' when none was drawn (the default)."""
    if args.noise_mode not in ("random", "batch"):
        return ""
    return f" (noise {args.noise_mode}, seed {0 if args.seed is None else args.seed})"


def _images_to_reconstruct(data, run):
    """``(dataset, what)``: the images ``reconstruct`` shows of ``data`` (None: the embedded
    digits) at the run's resolution and channels, read by ``get_batch``, not here. Of the run's
    own data its held-out split (``what`` "held-out"); of other data (``data_relation`` "other")
    all of it, none being the run's ("unseen"; an MNIST folder: its test split). ValueError
    naming --data."""
    from .data import open_dataset
    from .inference.metrics import data_relation, open_unseen

    res, channels = run.schedule.resolution, run.schedule.channels
    try:
        if data is not None and data_relation(run, data) == "other":
            return open_unseen(data, res, channels)[0], "unseen"
        return open_dataset(data, res, channels, split="test"), "held-out"
    except (FileNotFoundError, ValueError) as e:
        if data is None:
            raise
        raise ValueError(f"--data: {e}") from e


def _cmd_reconstruct(args) -> int:
    import torch

    from .eval import reconstruction_mse
    from .inference.loading import run_data
    from .inference.pictures import pairs_grid_size, save_pairs_grid
    from .inference.pixels import load_image_files, prepare_images, to_display

    if args.images and (args.data is not None or args.n is not None):
        raise UserError("--data and --n choose the images when no IMAGES are given; with IMAGES, those files "
                        "are reconstructed")
    space, lr = _refine_options(args)
    _check_noise_seed(args)
    run = _load(args)
    res = run.schedule.resolution
    scale = _display_scale(res)
    per = 3 if args.refine_steps else 2

    def check(given: str, count: int, way) -> None:
        beside = "their reconstructions" if count != 1 else "its reconstruction"
        _check_picture_size(given, f"the picture of {_plural(count, 'original')} beside {beside} "
                                   f"({_tiles_said(per * count, res, scale, gap=2 * scale)}, under their titles)",
                            pairs_grid_size(count, res, res, scale=scale, per_pair=per),
                            [(way, lambda v: pairs_grid_size(v, res, res, scale=scale, per_pair=per), 1, count)])

    what = ""
    if args.images:
        check(_plural(len(args.images), "IMAGE", "IMAGES"), len(args.images), lambda v: _plural(v, "IMAGE", "IMAGES"))
        x = load_image_files(args.images, run.schedule)
    else:
        data, note = run_data(run, args.data)
        if note:
            print(note)
        n = 16 if args.n is None else args.n
        shown, what = _images_to_reconstruct(data, run)
        count = min(n, len(shown))  # the picture shows the images there are
        check(f"--n {n}", count, "--n {}")
        x = shown.get_batch(torch.arange(count))[0]
        if count < n:
            print(f"note: the data's {what} images number {count}, fewer than --n {n}: all of them are shown")
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
    path = save_pairs_grid(to_display(x, res), to_display(rec, res), _out(args, run, "reconstructions.png"),
                           scale=scale, refined=refined)
    print(f"wrote {_plural(x.shape[0], (what + ' ' if what else '') + 'original')} beside "
          f"{'their reconstructions' if x.shape[0] != 1 else 'its reconstruction'} G(E(x)){said}"
          f"{_noise_said(args)} to {path}")
    return 0


def _refine_options(args) -> tuple[str, float]:
    """(space, lr) of ``--space`` and ``--refine-lr``, checked against ``--refine-steps``: without
    steps, ``--space w+`` and ``--refine-lr`` would change nothing, and are refused (``--space w``
    is what E(x) already is, and is taken, so a sweep over steps may keep it)."""
    from .inference.projection import DEFAULT_REFINE_LR, MAX_REFINE_LR

    if args.refine_lr is not None and args.refine_lr > MAX_REFINE_LR:
        raise UserError(f"--refine-lr: expected a number in (0, {MAX_REFINE_LR:g}] (Adam's rate in w's units; default "
                        f"{DEFAULT_REFINE_LR:g}); got {args.refine_lr:g}")
    if not args.refine_steps:
        if args.space == "w+":
            raise UserError("--space w+ applies only with --refine-steps N (N >= 1): without it the latents are "
                            "E(x), one w")
        if args.refine_lr is not None:
            raise UserError(f"--refine-lr {args.refine_lr:g} applies only with --refine-steps N (N >= 1)")
        if getattr(args, "refine_images", None) is not None:
            raise UserError(f"--refine-images {args.refine_images} applies only with --refine-steps N (N >= 1)")
    return args.space or "w", DEFAULT_REFINE_LR if args.refine_lr is None else args.refine_lr


@contextlib.contextmanager
def _refine_lr_named(lr: float):
    """A descent that reached NaN or infinity (``project_latents``' FloatingPointError) said as
    one line naming --refine-lr, not a traceback."""
    try:
        yield
    except FloatingPointError as e:
        raise UserError(f"--refine-lr {lr:g}: {str(e).removeprefix('project_latents: ')}") from e


def _say_refining(args, count: int, space: str, lr: float) -> None:
    """One line before a descent starts: 100000 steps are minutes of silence otherwise."""
    if args.refine_steps:
        print(f"refining E(x) of {_plural(count, 'image')} by {_plural(args.refine_steps, 'step')} of descent on "
              f"the pixel error in {space} (Adam, lr {lr:g})", flush=True)


def _interpolation_titles(steps: int) -> list[str]:
    """Column titles of interpolate's strip: A, each decoded point's t in [0, 1], B."""
    digits = max(2, len(str(steps - 1)))  # distinct titles past 101 steps
    return ["A"] + [f"t={k / (steps - 1):.{digits}f}" for k in range(steps)] + ["B"]


def _cmd_interpolate(args) -> int:
    import torch

    from .inference.pictures import save_labelled_grid
    from .inference.pixels import load_image_files, prepare_images, to_display
    from .inference.sampling import interpolate_latents

    _check_noise_seed(args)
    run = _load(args)
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


def _style_mix_labels(rows: int, cols: int, num_ws: int, same_b: bool = False) -> tuple[list[str], list[str]]:
    """The row and column titles of style-mix's table: sources A, then ``rows`` destinations B
    for each range of :func:`alae_fast.inference.sampling.style_ranges`, in the order of
    ``style_mix_tiles`` (``same_b``: the same ``rows`` images B in every range, B1 ... B``rows``
    each time, as ``style_mix_images`` mixes them); columns B, A1 ... A``cols``. ASCII only:
    Pillow's default font (Aileron) has no arrows, they came out as empty boxes."""
    from .inference.sampling import style_ranges

    ranges = style_ranges(num_ws)
    names = [n for n in ranges for _ in range(rows)]
    row_labels = ["sources A"] + [f"B{(i % rows if same_b else i) + 1} with A's\n{n} styles "
                                  f"({ranges[n][0]}-{ranges[n][1] - 1})" for i, n in enumerate(names)]
    return row_labels, ["B"] + [f"A{k + 1}" for k in range(cols)]


def _cmd_style_mix(args) -> int:
    from .inference.pictures import save_labelled_grid
    from .inference.pixels import to_display
    from .inference.sampling import style_mix_tiles, style_ranges

    images = _style_mix_images_given(args)
    run = _load(args)
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
    from .inference.pictures import labelled_grid_size, save_labelled_grid
    from .inference.pixels import load_image_files, prepare_images, to_display
    from .inference.sampling import check_style_mixable, style_mix_images, style_ranges

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


def _cmd_evaluate(args) -> int:
    from .inference.loading import run_data
    from .inference.metrics import evaluate_model
    from .inference.projection import DEFAULT_REFINE_IMAGES

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    space, lr = _refine_options(args)
    if args.inception_weights is not None:  # before the run is loaded and scored
        check_inception_weights(args.inception_weights)
    run = _load(args)
    data, note = run_data(run, args.data)
    if note:
        say(note)
    seed = _training_seed(run) if args.seed is None else args.seed
    with _refine_lr_named(lr):
        metrics = evaluate_model(run, data=data, inception_weights=args.inception_weights, num_fid=args.num_fid,
                                 ppl_samples=args.ppl_samples, seed=seed, device=args.device,
                                 refine_steps=args.refine_steps, refine_space=space, refine_lr=lr,
                                 refine_images=DEFAULT_REFINE_IMAGES if args.refine_images is None
                                 else args.refine_images)
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
    from .inference.loading import _run_config
    from .inference.sampling import SEED_LIMIT

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
    naming them). Other data get ``<run>/evaluate-<name>.json``, named for the folder (or
    ``digits``), so that the run's own results are never replaced by another folder's; when that
    name already holds the evaluation of other data of the same name (another folder called so),
    a short hash of the data's path is added."""
    import hashlib
    import re

    from .data.spec import describe_spec

    folder = _run_folder(run.path)
    data = metrics.get("data") or {}
    evaluated = data.get("evaluated") or {}
    if args.data is None or data.get("relation") in ("own", "changed"):
        path = folder / "evaluate.json"
    else:
        stem = "digits" if evaluated.get("kind") == "digits" else Path(evaluated.get("path") or "data").name
        stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", stem).strip("._") or "data"
        path = folder / f"evaluate-{stem}.json"
        if _evaluated_data(path) not in (None, evaluated):
            digest = hashlib.md5(str(evaluated.get("path")).encode()).hexdigest()[:8]
            path = folder / f"evaluate-{stem}-{digest}.json"
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

    from .eval import feature_network

    given = f"--inception-weights {path!r}"
    if Path(path).is_dir():
        raise UserError(f"{given} is a folder; give the InceptionV3 weights file ({INCEPTION_FILES})")
    if not Path(path).is_file():
        raise UserError(f"{given} does not exist; expected {INCEPTION_FILES}")
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
    from .inference.metrics import SPLIT_LABELS
    from .inference.report import format_identification, format_latent_report, format_refined

    data = m.get("data") or {}

    fid_name = m.get("fid_network", "?") + (" - a PROXY, not comparable with published FIDs"
                                            if m.get("fid_is_proxy") else "")
    kimg = "kimg not recorded" if m.get("kimg") is None else f"{m['kimg']:g} kimg"  # None: an official checkpoint
    seed = f", evaluation seed {m['seed']}" if m.get("seed") is not None else ""
    lines = [f"{m.get('checkpoint')}: setup {m.get('setup')}, {kimg}, "
             f"{m.get('resolution')}x{m.get('resolution')} (lod {m.get('lod')}, blend {m.get('blend', 1):g}){seed}"]
    if m.get("latent"):
        lines.append(format_latent_report(m["latent"], run_data=data.get("relation") != "other"))
    split = SPLIT_LABELS.get(m.get("reconstruction_split"), "evaluated")
    lines += [f"reconstruction MSE (output not clamped, pixels in [-1, 1]) on {m.get('reconstruction_images')} "
              f"{split} images: {m['reconstruction_mse']:.4f}"]
    if m.get("reconstruction_identification"):
        lines.append(format_identification(m["reconstruction_identification"], m.get("reconstruction_images"),
                                           split))
    if m.get("reconstruction_refined"):
        lines.append(format_refined(m["reconstruction_refined"], split))
    lines += [f"FID of generations:      {m['fid_generated']:.3f}   ({fid_name})",
              f"FID of reconstructions:  {m['fid_reconstructed']:.3f}",
              f"PPL in W, full / end:    {m['ppl_full']:.3f} / {m['ppl_end']:.3f}   ({m.get('ppl_distance')})"]
    return "\n".join(lines)


def _cmd_serve(args) -> int:
    try:
        from .app.server import serve
    except ImportError as e:
        _load(args)  # a bad checkpoint is reported first: it would still be bad with the extra installed
        raise UserError(f"the web page needs the [app] extra ({e.name or e} is missing): {install_hint('app')}") from e
    return serve(args.ckpt, directions=args.directions, host=args.host, port=args.port, device=args.device,
                 max_upload_mb=args.max_upload_mb, config=args.config, ema=not args.no_ema)


def _cmd_presets(_args) -> int:
    import torch

    from .models import build_model, describe_presets, preset_config
    from .training.setups import list_setups, resolve_setup

    def counts(config) -> str:
        with torch.device("meta"):
            c = build_model(config).parameter_counts()
        return (f"F {c['mapping']:,}  G {c['generator']:,}  E {c['encoder']:,}  D {c['discriminator']:,}  "
                f"total {c['total']:,}")

    print("trainable (alae-fast train --preset NAME):")
    for name in list_setups():
        s = resolve_setup(name)
        print(f"  {name:16s} {s.schedule.channels}x{s.schedule.resolution}px, {s.kimg:g} kimg - {s.description}")
        print(f"  {'':16s} {counts(s.model_config)}")
    print("model presets (alae_fast.models.from_preset):")
    for name, desc in describe_presets().items():
        print(f"  {name:16s} {desc}")
        print(f"  {'':16s} {counts(preset_config(name))}")
    return 0


# --- attribute editing (implementation: alae_fast/edit/commands.py) ---------------------------
def _add_edit_commands(sub) -> None:
    n = sub.add_parser("encode", help="the latents w = E(x) of image files, as one .npy",
                       description="Encode each IMAGE with the EMA model (center-cropped and resized to the run's "
                                   "resolution, as reconstruct does) and save w = E(x) as one float32 array "
                                   "[N, latent_size] in NumPy's .npy format, a row per IMAGE in the order given: "
                                   "what the Python API's LoadedRun.encode returns, for your own directions or "
                                   "analyses. With --refine-steps N, E(x) refined by N steps of descent on G's "
                                   "pixel error (LoadedRun.project).")
    _add_ckpt(n, noise=False)
    n.add_argument("images", nargs="+", metavar="IMAGE", help=f"image files: {_IMAGE_FILES}")
    n.add_argument("--refine-steps", type=_refine_steps, default=0, metavar="N", help=_REFINE_HELP)
    n.add_argument("--space", choices=("w", "w+"), default=None,
                   help=_SPACE_HELP + "; w+ latents are saved as [N, num_ws, latent_size]")
    n.add_argument("--refine-lr", type=_positive_float, default=None, metavar="LR", help=_REFINE_LR_HELP)
    d = sub.add_parser("edit", help="move images along attribute directions (a PNG strip per image)",
                       description="Encode each IMAGE with the EMA model, move its w along the directions "
                                   "(official ALAE demo arithmetic: w_avg subtracted, each direction's "
                                   "component replaced, style inputs below --edit-layers edited) and decode "
                                   "--steps images from -AMOUNT to +AMOUNT (with an odd --steps the middle "
                                   "one is the reconstruction). "
                                   "One row per image.")
    _add_ckpt(d)
    d.add_argument("images", nargs="+", metavar="IMAGE", help=f"image files: {_IMAGE_FILES}")
    d.add_argument("--direction", action="append", required=True, metavar="NAME_OR_NPY=AMOUNT",
                   help="a .npy file, a name found as direction_NAME.npy in --directions, or a built-in "
                        "digit pair A-B, A and B two different digits 0-9 (1-channel digit models); repeatable")
    d.add_argument("--directions", default=None, metavar="DIR",
                   help="folder of direction_<name>.npy files (official principal_directions layout)")
    d.add_argument("--steps", type=_int_at_least(2), default=7,
                   help="images per strip, from -AMOUNT to +AMOUNT (default 7, at least 2)")
    d.add_argument("--edit-layers", type=int, default=None, metavar="N",
                   help="style inputs below N are edited, the rest keep the encoded w; N is 1 to the model's "
                        "count of style inputs (default: the official demo's, those below 16, so all of them on a "
                        "model with 16 or fewer)")
    # --noise-mode (from _add_ckpt, as every --ckpt command) chooses G's noise; --noise is its
    # older spelling here. Every image of the strip is decoded with the same draw (--seed).
    d.add_argument("--noise", dest="noise_old", choices=("random", "batch", "const", "zero", "none"),
                   help=argparse.SUPPRESS)
    d.add_argument("--seed", type=_seed, default=None,
                   help="with --noise-mode random or batch: noise seed (default 0); every image of a strip gets "
                        "the same noise draw")
    f = sub.add_parser("directions", help="fit attribute directions (official LinearSVC on w) for a run",
                       description="Encode labelled images with the EMA model (--no-ema: an official "
                                   "checkpoint's training weights) and fit one direction per class, class vs "
                                   "rest, with LinearSVC(C=1, dual=False) on w, as the "
                                   "official principal_directions script. --data: a folder with one "
                                   "sub-folder of images per class (direction_<subfolder>.npy). Without "
                                   "--data on a digits model: every digit pair A-B (A<B) from the embedded "
                                   "digits' labels. Writes direction_<name>.npy (float64) into --out.")
    _add_ckpt(f, out=False, noise=False)  # encoding only: G's noise plays no part
    f.add_argument("--data", default=None, metavar="DIR", help="folder with one sub-folder per class")
    f.add_argument("--out", default=None, metavar="DIR", help="output folder (default: <run>/directions)")


def _edit_titles(amounts: dict[str, float], steps: int, width: int = 12) -> list[str]:
    """Column titles of edit's strips: each column's amount of every direction (t * AMOUNT, t
    from :func:`alae_fast.edit.commands.strip_fractions`), one line a direction, its name cut
    in the middle past ``width`` characters (a title wider than its tile would run into the
    next). Enough significant digits that no two columns read alike."""
    from .edit.commands import strip_fractions

    digits = max(3, len(str(steps - 1)) + 1)
    names = {k: _cut_middle(k, width) for k in amounts}
    # + 0.0: the middle column of a negative amount is +0, not -0
    return ["\n".join(f"{names[k]} {t * a + 0.0:+.{digits}g}" for k, a in amounts.items())
            for t in strip_fractions(steps)]


def _cut_middle(text: str, width: int) -> str:
    """``text``, or its first and last characters around "..." in ``width`` characters."""
    return text if len(text) <= width else text[:width // 2 - 1] + "..." + text[-(width - width // 2 - 2):]


def _edit_row_titles(images: list[str], width: int = 20) -> list[str]:
    """Row titles of edit's strips: each IMAGE's file name, its middle cut past ``width``
    characters; a title two IMAGES share (the same name in two folders) is numbered."""
    import collections

    titles = [_cut_middle(Path(i).name, width) for i in images]
    shared = collections.Counter(titles)
    seen: collections.Counter[str] = collections.Counter()
    for i, t in enumerate(titles):
        seen[t] += 1
        if shared[t] > 1:
            titles[i] = f"{t} ({seen[t]})"
    return titles


def _cmd_edit(args) -> int:
    from .edit.apply import DEMO_LAYERS, EDIT_LAYERS
    from .edit.commands import direction_name, edit_strip, parse_direction_arg, resolve_directions
    from .inference.pictures import save_labelled_grid
    from .inference.pixels import load_image_files, to_display

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
    run = _load(args)
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
    rows = _edit_row_titles(args.images)
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
    return 0


def _cmd_encode(args) -> int:
    import numpy as np
    import torch

    from .inference.pixels import load_image_files

    space, lr = _refine_options(args)
    run = _load(args)
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
    from .edit import save_direction
    from .edit.commands import fit_run_directions
    run = _load(args)
    found = fit_run_directions(run, args.data)
    folder = Path(args.out) if args.out else _run_folder(run.path) / "directions"
    for name, vec in found.items():
        save_direction(vec, folder, name)
    print(f"wrote {_plural(len(found), 'direction')} ({', '.join(found)}) to {folder}")
    return 0


_COMMANDS = {"train": _cmd_train, "generate": _cmd_generate, "reconstruct": _cmd_reconstruct,
             "interpolate": _cmd_interpolate, "style-mix": _cmd_style_mix, "evaluate": _cmd_evaluate,
             "presets": _cmd_presets, "convert": _cmd_convert, "edit": _cmd_edit, "encode": _cmd_encode,
             "directions": _cmd_directions,
             "serve": _cmd_serve}


def _check_data(path: str, command: str) -> None:
    """``--data`` as given, checked before any work, so that every command that takes it says a
    missing path or a folder without images the same way, naming ``--data`` (directions reads
    one sub-folder per class and checks its own). The files the scan leaves out for their
    format are said (once) as what ``command`` reads."""
    from .data.folder import find_image_files
    from .data.mnist import is_mnist_folder

    p = Path(path)
    if p.is_dir() and is_mnist_folder(p):
        return
    try:
        find_image_files(p, reader=f"{command} --data")
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        raise UserError(f"--data: {e}") from e


def _check_config(path: str) -> None:
    """UserError when ``--config`` names an alae-fast run's own config.json (a JSON object with
    the ``setup`` and ``schedule`` a run records): --config takes the official ALAE code's YAML
    config, and such a file was refused as a list of unknown official keys. Other files are
    read (and refused) by the loader."""
    p = Path(path)
    if p.suffix.lower() != ".json" or not p.is_file():
        return
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(record, dict) and "setup" in record and "schedule" in record:
        raise UserError(f"--config {path!r} is an alae-fast run's config.json (the record of how the run "
                        f"{record.get('setup')!r} was trained); --config takes the official ALAE code's YAML "
                        f"config (e.g. configs/ffhq.yaml) for an official checkpoint, and an alae-fast "
                        f"checkpoint carries its own config: leave out --config")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # a command's user reads what happened (a skipped file, an older checkpoint taken), not the
    # line of our source that said it; ALAE_FAST_TRACEBACK=1 keeps Python's own form
    print(f"alae-fast: warning: {message}", file=sys.stderr if file is None else file)


def console_main() -> int:
    """The ``alae-fast`` command: :func:`main` on ``sys.argv``. Once the command has returned,
    SIGTERM and SIGINT are ignored for the rest of the interpreter's exit (torch's teardown takes
    a moment), so a scheduler's signal then does not report a finished, saved run as killed."""
    code = main()
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
    return code


def _in_job() -> bool:
    """Whether this process is one rank of a multi-process job (torchrun's ``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _end(error: BaseException, usage: bool, say) -> int | None:
    """How this rank ends on ``error`` (see :func:`main`): the exit status, with the line said
    once for the job; None when the exception is to be raised (a bug of this rank's, or no job)."""
    if _in_job():
        from .training.distributed import end_job_with_error

        end = end_job_with_error(error, usage, say)
        if end is not None:
            return None if end.reraise else end.code
    if not usage:
        return None
    say(str(error))
    return 2


def _parse(parser: argparse.ArgumentParser, argv: list[str]):
    """``parser.parse_known_args(argv)``, the unrecognized arguments refused by the command's own
    parser (so the usage shown is that command's); in a torchrun job, a refusal is said once and
    every rank exits with status 2 (:func:`_end`), not once per rank."""
    def parse():
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "bench":
            commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            commands.choices[args.command].error(f"unrecognized arguments: {' '.join(rest)}")
        return args, rest

    if not _in_job():
        return parse()
    import io

    said, shown = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(shown):
            return parse()
    except SystemExit as e:
        if e.code != 2:  # --help or --version: shown once, by the job's first rank
            if os.environ.get("RANK", "0") == "0":
                sys.stdout.write(shown.getvalue())
                sys.stderr.write(said.getvalue())
            raise
        code = _end(UserError(said.getvalue().strip()), True, lambda m: print(m, file=sys.stderr))
        raise SystemExit(2 if code is None else code) from None


def main(argv: list[str] | None = None) -> int:
    """The ``alae-fast`` command on ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Error boundary: the user's mistakes (:class:`UserError`, ``ValueError``, a missing, existing,
    wrong-kind or unwritable file, argparse's refusals) are said as one line and give status 2;
    any other exception is a bug and keeps its traceback (ALAE_FAST_TRACEBACK=1: every error
    does). In a torchrun job (``WORLD_SIZE`` > 1) every rank that stops with an error meets the
    others through the job's store (:func:`alae_fast.training.distributed.end_job_with_error`):
    the line is said once (by rank 0) and every rank exits with the same status, 2 for a user's
    mistake; a rank stopped by another rank's error says nothing more.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = _parse(parser, argv)

    def say(message: str) -> None:
        # the library names the operation its message is about; when that is this command
        # ("style-mix: this model ..."), the prefix already said it
        print(f"alae-fast {args.command}: error: {message.removeprefix(args.command + ': ')}", file=sys.stderr)

    from ._lib import default_impl
    try:
        default_impl()  # a bad ALAE_FAST_IMPL: one line here, before any command runs an op
    except ValueError as e:
        return _end(e, True, say)
    if args.command == "bench":
        from .bench.report import main as bench_main
        return bench_main(rest)
    try:
        if args.command == "info":
            from . import build_info
            print(json.dumps(build_info(), indent=1))
            return 0
        with warnings.catch_warnings():
            # before the checks too: _check_data's scan warns of the files it leaves out
            if not os.environ.get("ALAE_FAST_TRACEBACK"):
                warnings.showwarning = _one_line_warning
            if getattr(args, "device", "auto") != "auto":
                check_device(args.device)
            if getattr(args, "data", None) is not None and args.command != "directions":
                _check_data(args.data, args.command)
            if getattr(args, "config", None) is not None:
                _check_config(args.config)
            _check_outputs(args)
            return _COMMANDS[args.command](args)
    except (UserError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
            PermissionError) as e:
        if os.environ.get("ALAE_FAST_TRACEBACK"):
            raise
        return _end(e, True, say)
    except KeyboardInterrupt:
        print(f"alae-fast {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`alae-fast presets | head`): stop quietly, as Unix tools do, and keep
        # Python from reporting the pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        # a bug keeps its traceback; in a torchrun job, first met with the other ranks: a rank
        # stopped by another's error (PeerFailed, a collective broken by that rank's exit) ends
        # with the job's status and says nothing
        if os.environ.get("ALAE_FAST_TRACEBACK") or not _in_job():
            raise
        code = _end(e, False, say)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
