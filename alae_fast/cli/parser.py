"""The ``alae-fast`` argument parser: one ``_add_*`` function per subcommand (or group of them),
in the order ``--help`` lists them."""

from __future__ import annotations

import argparse
import os
import shlex

from ..inference.projection import DEFAULT_REFINE_LR
from ..limits import DEFAULT_NUM_FID
from .arguments import (_augment_policies, _fid_count, _int_at_least, _kimg_amount, _kv, _nonnegative_float,
                        _positive_float, _positive_int, _probability, _psi, _refine_lr, _refine_steps, _run_kimg,
                        _run_path, _seed, _upload_mb, parse_seeds)
from .evaluate import INCEPTION_FILES


_DESCRIPTION = """\
alae_fast: fused StyleGAN-family ops and the Adversarial Latent Autoencoder (ALAE).

  alae-fast train                       train the default preset on the embedded digits (CPU, minutes)
  alae-fast generate --ckpt runs/X      a grid of samples of a trained run
  alae-fast evaluate --ckpt runs/X      the metrics of a trained run (--json for JSON on stdout)
  alae-fast encode --ckpt runs/X a.png  the latents w = E(x) of image files, as one .npy
  alae-fast serve --ckpt runs/X         a local web page to encode, edit, mix and generate
"""


def _add_official(p: argparse.ArgumentParser, only: bool = True) -> None:
    """--config and --no-ema; ``only``: the command also opens alae-fast checkpoints, so the help
    says these apply to official ones only (convert reads nothing else: False)."""
    said = "official checkpoints only: " if only else ""
    p.add_argument("--config", default=None, metavar="YAML",
                   help=said + "the official YAML config, e.g. configs/ffhq.yaml (default: "
                        "the architecture is inferred from the checkpoint); not a run's config.json"
                        + (", an alae-fast checkpoint carries its own config" if only else ""))
    p.add_argument("--no-ema", action="store_true",
                   help=said + "the training weights instead of the EMA copies (*_s)")


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


# the attribute of a namespace under which _StoreOnce keeps what each option was given while
# one command line is parsed (OneLineParser.parse_known_args takes it out of the result)
_GIVEN = "_alae_fast_given"


def _said(option_string: str | None, raw: list[str] | None) -> str:
    """An option as the command line gave it: ``--psi 0.5`` (``raw``: its argument strings)."""
    return " ".join([option_string or "", shlex.join(raw or [])]).strip()


class _StoreOnce(argparse._StoreAction):
    """argparse's ``store`` (the default action), but an option given a second time with another
    value - under another of its spellings (``--psi 0.5 --trunc 0.7``, ``--ckpt A --network B``)
    or the same one (``--seed 1 --seed 2``) - is refused in one line naming both, where argparse
    kept the last silently; given again with the same value (after its type: ``--psi 0.5 --trunc
    .5``; for ``--ckpt``, ``--out``, ``--outdir`` and ``--config``, the same path however spelt:
    ``runs/x`` and ``runs/x/``) it is taken. ``append`` options (``--set``, ``--direction``) repeat as before, and the
    store_true/store_false pairs (``--flip``/``--no-flip``) are refused by their exclusive groups."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.option_strings:  # a positional argument is given once
            given = vars(namespace).setdefault(_GIVEN, {})
            said = _said(option_string, getattr(parser, "_raw_values", None))
            if self.dest not in given:
                given[self.dest] = (said, values)
            elif not self._same(given[self.dest][1], values):
                name = self.option_strings[0].lstrip("-")
                parser.error(f"{given[self.dest][0]} and {said} give {name} two different values; give one")
        setattr(namespace, self.dest, values)

    # options whose values are paths: two spellings of one file or folder (runs/x and runs/x/, or
    # its absolute path) are one value, where a string compare had refused them
    _PATH_DESTS = frozenset({"ckpt", "out", "outdir", "config", "official_config", "from_official"})

    def _same(self, a, b) -> bool:
        if a == b:
            return True
        if self.dest in self._PATH_DESTS and isinstance(a, str) and isinstance(b, str):
            return os.path.realpath(a) == os.path.realpath(b)
        return False


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose refusals are one line, as every other error of the CLI: "PROG: error:
    MESSAGE (see PROG --help)" on stderr, exit status 2 (argparse prints the whole usage block
    first, 16 lines for ``train``). Its subcommands' parsers are of this class too. An option that
    takes a value is stored by :class:`_StoreOnce`: given twice with two different values, under
    one spelling or two, it is refused (argparse kept the last one silently)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        vars(parsed).pop(_GIVEN, None)
        return parsed, rest

    def _get_values(self, action, arg_strings):
        # the strings as typed, for _StoreOnce's refusal (it is called with the converted values)
        self._raw_values = list(arg_strings)
        return super()._get_values(action, arg_strings)


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
    """``train``: every option of :class:`alae_fast.training.options.TrainOptions`."""
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
    t.add_argument("--kimg", type=_run_kimg, default=None, metavar="N",
                   help="training length in thousands of images (default: the preset's; on --resume: the run's, "
                        "which a longer --kimg extends)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest loadable checkpoint (bit-identical on the CPU); "
                        "the options below that are not given again continue as that run set them")
    t.add_argument("--from-official", default=None, metavar="PTH", type=_run_path,
                   help="begin a new run from an official ALAE checkpoint (podgorskiy/ALAE's .pth) where the official "
                        "trainer would continue it: its weights, EMA and epoch, the official schedule in official epochs "
                        "(DATASET.SIZE images; --kimg counts from the official run's first image), Adam afresh as "
                        "the official resume; --data: the images to train on")
    t.add_argument("--config", dest="official_config", default=None, metavar="YAML",
                   help="an official YAML (configs/*.yaml): with --from-official the one it was trained with "
                        "(default: the published configs, for the four published architectures); alone, a new run "
                        "of that config from scratch as the official trainer runs it (epochs of DATASET.SIZE "
                        "images, the batch table of the process count)")
    t.add_argument("--seed", type=_seed, default=None, metavar="S", help="random seed (default 0)")
    t.add_argument("--device", default="auto", help="auto (default: the GPU when present), cpu, cuda")
    t.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast of the forward passes")
    t.add_argument("--r1-gamma", type=_nonnegative_float, default=None, help="R1 weight gamma (default 10)")
    t.add_argument("--r1-interval", type=_positive_int, default=None,
                   help="lazy R1: every N steps, weighted by N (default: the preset's r1_interval; 1, every "
                        "step, for every preset but digits-32)")
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
    layout = t.add_mutually_exclusive_group()
    layout.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                        help="train a StyleALAE with its weights and feature maps channels_last (on the CPU "
                             "8-16-map convolutions run about twice as fast; another trajectory than "
                             "contiguous; default: the preset's, on for digits-32 and photos-32)")
    layout.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="train in the contiguous (NCHW) layout")
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
                                  "--outdir, at the model's own pixels (a checkpoint still growing: its level's), "
                                  "z of each seed drawn alone (a seed gives the same image whatever "
                                  "else is asked), ready for pytorch-fid / torch-fidelity / clean-fid; --grid "
                                  "adds a grid of them, beside the folder. Without --seeds: one grid of --n "
                                  "samples from --seed.",
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
                   help="with --seeds: also write the images as one grid, to --out or else <outdir>-grid.png beside "
                        "the folder (not in it, where FID tools would score it as a sample)")
    # --n and --seed default to None so that giving them with --seeds (where they mean nothing) is refused
    g.add_argument("--n", type=_positive_int, default=None, metavar="N",
                   help="without --seeds: number of images in the grid (default 32)")
    g.add_argument("--psi", "--trunc", dest="psi", type=_psi, default=None, metavar="P",
                   help="truncation psi in [-1, 2]: w <- w_avg + psi (w - w_avg) (default: the config's, "
                        "0.7 with cutoff 8 for the paper presets and official checkpoints, else 1: none); "
                        "--trunc is NVlabs' spelling")
    g.add_argument("--cutoff", type=_positive_int, default=None,
                   help="truncate only style inputs below this, 1 to the model's count of style inputs (default: "
                        "without --psi the config's, 8 for the paper presets and official checkpoints; with --psi "
                        "all)")
    g.add_argument("--noise-mode", choices=("const", "random", "batch", "zero", "none"), default=None,
                   help="G's noise inputs (default const; none for an MLP ALAE, which has none; see below)")
    g.add_argument("--seed", type=_seed, default=None, help="without --seeds: latent seed of the grid (default 0)")


# What an IMAGE argument may be: alae_fast.inference.pixels.load_image_files opens it with Pillow
_IMAGE_FILES = "any format Pillow decodes (PNG, JPEG, BMP, WebP, GIF, TIFF ...)"


_REFINE_HELP = ("steps of descent on the pixel error of G(w) from w = E(x) (default 0: ALAE's own E(x); "
                f"Adam, lr {DEFAULT_REFINE_LR:g} falling to 0 on a cosine; not in the ALAE paper: StyleGAN2's projector started "
                "from the encoder)")


_SPACE_HELP = ("with --refine-steps: w (default; one w, G's latent space, where directions act) or w+ (one w per "
               "style input: closer to the image, further from G's own latents)")


_REFINE_LR_HELP = ("with --refine-steps: Adam's first learning rate, in w's units, a number in (0, 1000] (default "
                   f"{DEFAULT_REFINE_LR:g}; each image keeps its step of lowest pixel error, E(x) included, and a warning says how many "
                   "no step improved; a descent that reaches NaN or infinity ends the command naming the rate)")


_NOISE_SEED_HELP = ("with --noise-mode random or batch: seed of G's noise (default 0), so that a run repeats "
                    "exactly")


# The commands that open a run and write one picture from it: name, help, description, and their
# own arguments as (flags, add_argument options), in the order --help lists them.
_PICTURE_COMMANDS = (
    ("reconstruct", "images beside their reconstructions G(E(x))",
     "Encode and decode images with the EMA model; save originals beside their reconstructions as one PNG. "
     "Without IMAGES, the first --n held-out images of --data (default: the data the run was trained on) are used "
     "(data that hold none out that can be read: training images, and the line says so; the run's folder changed "
     "since training: possibly training images, as evaluate says); of data the run was not trained on, the first --n "
     "of all its images, written by default to reconstructions-<folder>.png so that the run's reconstructions.png "
     "is kept.",
     ((("images",), dict(nargs="*", metavar="IMAGES", help=f"image files: {_IMAGE_FILES} (center-cropped and "
                                                             f"resized)")),
      (("--data",), dict(default=None, help="data to take images from when no IMAGES are given (default: the "
                                            "run's training data)")),
      (("--n",), dict(type=_positive_int, default=None, help="images taken from --data (default 16)")),
      (("--refine-steps",), dict(type=_refine_steps, default=0, metavar="N",
                                 help=_REFINE_HELP + "; the picture then shows each original, G(E(x)) and G(w) "
                                                     "of the refined w")),
      (("--space",), dict(choices=("w", "w+"), default=None, help=_SPACE_HELP)),
      (("--refine-lr",), dict(type=_refine_lr, default=None, metavar="LR", help=_REFINE_LR_HELP)),
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
    e.add_argument("--num-fid", type=_fid_count, default=None,
                   help=f"images per FID set, >= 2 (default {DEFAULT_NUM_FID}, or all the real images where they are "
                        "fewer, as the report says; a number given above them is warned of); the real images are the held-out split of the run's own data (the training split "
                        "only where there is none), or all images of other --data, also reconstructed for the "
                        "reconstruction MSE")
    e.add_argument("--ppl-samples", type=_positive_int, default=200, help="PPL pairs per sampling (default 200)")
    e.add_argument("--refine-steps", type=_refine_steps, default=0, metavar="N",
                   help=_REFINE_HELP + "; with N >= 1 the report adds the MSE (and, for unlabelled images, the "
                                       "matched-back fraction) of the refined reconstructions, beside G(E(x))'s")
    e.add_argument("--space", choices=("w", "w+"), default=None, help=_SPACE_HELP)
    e.add_argument("--refine-lr", type=_refine_lr, default=None, metavar="LR", help=_REFINE_LR_HELP)
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
    _add_official(c, only=False)
    c.add_argument("--out", required=True, metavar="FILE",
                   help="the alae_fast checkpoint to write, a name ending in .pt or .pth (an existing file "
                        "there is replaced, and the 'wrote' line says so)")


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
    v.add_argument("--directions", default=None, metavar="DIR",
                   help="folder of .npy attribute directions (default: the run's directions/ folder when alae-fast "
                        "directions wrote one)")
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
    n.add_argument("--refine-lr", type=_refine_lr, default=None, metavar="LR", help=_REFINE_LR_HELP)
    d = sub.add_parser("edit", help="move images along attribute directions (a PNG strip per image)",
                       description="Encode each IMAGE with the EMA model (with --refine-steps N: E(x) refined by "
                                   "N steps of descent on G's pixel error, as encode and reconstruct do), move "
                                   "its w along the directions (official ALAE demo arithmetic: w_avg subtracted, "
                                   "each direction's component replaced, style inputs below --edit-layers "
                                   "edited) and decode --steps images from -AMOUNT to +AMOUNT (with an odd "
                                   "--steps the middle one is the reconstruction G(w)). One row per image, the "
                                   "input first; with --latents, one row per latent of the file.")
    _add_ckpt(d)
    d.add_argument("images", nargs="*", metavar="IMAGE",
                   help=f"image files: {_IMAGE_FILES} (or --latents instead)")
    d.add_argument("--latents", default=None, metavar="NPY",
                   help="instead of IMAGES: a .npy of latents w [N, latent_size], float, one strip a row (what "
                        "alae-fast encode writes, refined or not)")
    d.add_argument("--refine-steps", type=_refine_steps, default=0, metavar="N",
                   help=_REFINE_HELP + "; the edits then start from the refined w, as the rows' titles say")
    d.add_argument("--refine-lr", type=_refine_lr, default=None, metavar="LR", help=_REFINE_LR_HELP)
    # directions act on one w: no --space w+ (options._refine_options reads args.space)
    d.set_defaults(space=None)
    d.add_argument("--direction", action="append", required=True, metavar="NAME_OR_NPY=AMOUNT",
                   help="a .npy file, a name found as direction_NAME.npy in --directions, or a built-in "
                        "digit pair A-B, A and B two different digits 0-9 (1-channel digit models); repeatable")
    d.add_argument("--directions", default=None, metavar="DIR",
                   help="folder of direction_<name>.npy files (official principal_directions layout; default: "
                        "the run's directions/ folder when alae-fast directions wrote one)")
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
