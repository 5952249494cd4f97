"""The ``alae-fast`` command (also ``python -m alae_fast``, and ``torchrun ... -m alae_fast.cli``).

Subcommands: ``train``, ``generate``, ``reconstruct``, ``interpolate``, ``style-mix``,
``evaluate``, ``convert``, ``edit``, ``encode``, ``directions``, ``serve``, ``presets``, ``bench``, ``info``;
``alae-fast <command> --help`` describes each. Every command prints the paths it wrote.

Error boundary (:func:`main`): mistakes in what the user gave - :class:`alae_fast.errors.UserError`
and the argument/data errors the library raises by convention (``ValueError``, a missing or
existing file) - exit with status 2 and one line naming the problem (set ALAE_FAST_TRACEBACK=1
for the traceback). Any other exception is a bug and keeps its traceback.

The package: :mod:`.parser` builds the parser from the value types of :mod:`.arguments`;
:mod:`.runs` opens a run and checks outputs; the commands are in :mod:`.image_commands`,
:mod:`.evaluate`, :mod:`.edit_commands` and here (``train``, ``convert``, ``serve``, ``presets``),
with the options they share in :mod:`.options` and the pictures' sizes and titles in
:mod:`.pictures`. The modules import the library's models and data inside the commands that use them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from .._cpu_quota import threads_for_quota, use_threads
from .._extras import install_hint
from ..errors import UserError
from . import runs
from .arguments import check_device
from .edit_commands import _cmd_directions, _cmd_edit, _cmd_encode
from .evaluate import _cmd_evaluate
from .image_commands import _cmd_generate, _cmd_interpolate, _cmd_reconstruct, _cmd_style_mix
from .parser import build_parser
from .runs import _check_outputs


def _cmd_convert(args) -> int:
    from ..inference.loading import convert_official

    if Path(args.official).is_dir():  # convert reads one official file, never a run folder
        raise UserError(f"{args.official!r} is a folder; convert reads one checkpoint file of the official ALAE "
                        f"code (e.g. model_157.pth)")
    # no command refuses an existing --out (evaluate says what it replaced): convert says so too
    replacing = Path(args.out).exists()
    try:
        out = convert_official(args.official, args.out, config=args.config, ema=not args.no_ema)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print(f"wrote {out}" + (" (replacing the earlier file)" if replacing else ""))
    return 0


def _cmd_train(args) -> int:
    from ..training.run import TrainOptions, run_training

    if args.official_config is not None:
        _check_config(args.official_config)
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
                        lae_weight=args.lae_weight, channels_last=args.channels_last,
                        from_official=args.from_official, official_config=args.official_config)
    run_training(opts)
    return 0


def _cmd_serve(args) -> int:
    try:
        from ..app.server import serve
    except ImportError as e:
        runs.open_run(args)  # a bad checkpoint is reported first: it would still be bad with the extra installed
        raise UserError(f"the web page needs the [app] extra ({e.name or e} is missing): {install_hint('app')}") from e
    return serve(args.ckpt, directions=args.directions, host=args.host, port=args.port, device=args.device,
                 max_upload_mb=args.max_upload_mb, config=args.config, ema=not args.no_ema)


def _kimg_said(kimg: float) -> str:
    """A run's length as the model presets' descriptions round it ("84925 kimg in all" of
    84925.12): whole kimg from 1000 up, where {:g} would say 84925.1 on the line above them."""
    return f"{kimg:.0f}" if kimg >= 1000 else f"{kimg:g}"


def _cmd_presets(_args) -> int:
    import torch

    from ..models import build_model, describe_presets, preset_config
    from ..training.setups import list_setups, resolve_setup

    def counts(config) -> str:
        with torch.device("meta"):
            c = build_model(config).parameter_counts()
        return (f"F {c['mapping']:,}  G {c['generator']:,}  E {c['encoder']:,}  D {c['discriminator']:,}  "
                f"total {c['total']:,}")

    print("trainable (alae-fast train --preset NAME):")
    for name in list_setups():
        s = resolve_setup(name)
        print(f"  {name:16s} {s.schedule.channels}x{s.schedule.resolution}px, {_kimg_said(s.kimg)} kimg - "
              f"{s.description}")
        print(f"  {'':16s} {counts(s.model_config)}")
    print("model presets (alae_fast.models.from_preset):")
    for name, desc in describe_presets().items():
        print(f"  {name:16s} {desc}")
        print(f"  {'':16s} {counts(preset_config(name))}")
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
    from ..data.folder import find_image_files
    from ..data.mnist import find_mnist_files, is_mnist_folder

    p = Path(path)
    if p.is_dir() and is_mnist_folder(p):
        # train reads the train split; the other commands may read either (reconstruct: the
        # test split), so one complete split is enough for them and the rest is said when read
        missing = []
        for split in ("train",) if command == "train" else ("train", "test"):
            try:
                find_mnist_files(p, split)
                return
            except FileNotFoundError as e:
                missing.append(e)
        raise UserError(f"--data: {missing[0]}")
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
        from ..training.distributed import end_job_with_error

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


def _threads_for_quota() -> None:
    """Under a CPU quota below torch's thread count (``docker run --cpus 2`` on a large host, where
    torch starts a thread per host core), torch's threads become the quota rounded up, unless
    ``OMP_NUM_THREADS`` is set (:mod:`alae_fast._cpu_quota`)."""
    import torch

    limit = threads_for_quota(torch.get_num_threads())
    if limit is not None:
        use_threads(limit)


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

    from .._lib import default_impl
    try:
        default_impl()  # a bad ALAE_FAST_IMPL: one line here, before any command runs an op
    except ValueError as e:
        return _end(e, True, say)
    if args.command != "train":  # train applies it with a note among its start-up lines
        _threads_for_quota()
    if args.command == "bench":
        from ..bench.report import main as bench_main
        return bench_main(rest)
    try:
        if args.command == "info":
            from .. import build_info
            print(json.dumps(build_info(), indent=1))
            return 0
        with warnings.catch_warnings(), contextlib.ExitStack() as job:
            # before the checks too: _check_data's scan warns of the files it leaves out
            if not os.environ.get("ALAE_FAST_TRACEBACK"):
                warnings.showwarning = _one_line_warning
            if _in_job():  # every rank scans the same folder: rank 0 says what it found
                from ..training.distributed import warnings_said_once
                job.enter_context(warnings_said_once())
            if _in_job() and args.command != "train":
                # every rank would do the whole command: the same report twice, one file written twice
                raise UserError(f"{args.command} runs in one process; under torchrun (WORLD_SIZE "
                                f"{os.environ.get('WORLD_SIZE')}) only `train` splits its work between processes: "
                                f"run alae-fast {args.command} without torchrun")
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
        if os.environ.get("RANK", "0") == "0":  # in a torchrun job, said for the job by rank 0
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
