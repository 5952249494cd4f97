"""The benchmark report: every op's cases timed side by side, printed as one table of ratios.

Run ``alae-fast bench`` (or ``python benchmarks/report.py``); ``--help`` lists the options.

Each case's figures go to stderr as soon as it is measured, so a run that is stopped keeps
what it measured; Ctrl-C prints the table of the cases measured so far (exit 130). The
suites in :data:`HEAVY` take minutes each on a 2-core CPU and are left out under ``--quick``
unless ``--ops`` names them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from .. import build_info
from ..cpu_allocator import keep_freed_memory
from ..cli import _positive_int  # the CLI's one 'int >= 1' argparse type
from ..errors import UserError, first_line
from .harness import Result, format_table, format_targets, measure

# op name -> module with cases(device, quick, compile). New ops add themselves here.
SUITES = {
    "bias_act": "alae_fast.bench.bias_act",
    "upfirdn2d": "alae_fast.bench.upfirdn2d",
    "filtered_lrelu": "alae_fast.bench.filtered_lrelu",
    "adain": "alae_fast.bench.adain",
    "modulated_conv2d": "alae_fast.bench.modulated_conv2d",
    "alae_models": "alae_fast.bench.alae_models",
    "alae_train": "alae_fast.bench.train",
    "official": "alae_fast.bench.official",
    "train_load": "alae_fast.bench.train_load",
}
# Suites that --quick leaves out unless --ops names them: op name -> why (shown to the user).
# Their cost does not shrink with --quick (one full-size shape, or whole child processes).
HEAVY = {
    "official": "ffhq-1024 (53.7 M parameters) load and encode+decode at 1024x1024: minutes on a 2-core CPU",
    "train_load": "8 training processes a round, some beside 2 busy loops: over 15 minutes on a 2-core CPU",
}
COLUMNS = ["fused", "ref", "compiled", "copy"]


def unused_options(args: argparse.Namespace) -> str | None:
    """One line naming the options that the mode chosen (``--profile``, ``--list``) would not use, or None."""
    if args.profile:
        given = [flag for flag, on in (("--ops", args.ops is not None), ("--rounds", args.rounds is not None),
                                       ("--no-compile", args.no_compile), ("--strict", args.strict),
                                       ("--list", args.list), ("--device", args.device not in ("auto", "cpu")))
                 if on]
        if given:
            return (f"{', '.join(given)}: not used by --profile (it profiles whole training iterations of fixed "
                    f"presets on the CPU; --quick and --json apply)")
    elif args.list:
        given = [flag for flag, on in (("--rounds", args.rounds is not None), ("--json", args.json is not None),
                                       ("--strict", args.strict)) if on]
        if given:
            return f"{', '.join(given)}: not used by --list (it prints the case names and times nothing)"
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alae-fast bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when present; default)")
    p.add_argument("--ops", nargs="*", default=None, help=f"subset of: {', '.join(SUITES)} (default all)")
    p.add_argument("--rounds", type=_positive_int, default=None,
                   help="interleaved rounds per case (default 15; 7 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"fewer shapes and rounds, for a smoke run (a minute or two on a 2-core CPU); leaves out "
                        f"{', '.join(HEAVY)} unless --ops names them")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reference) column")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--profile", action="store_true",
                   help="instead: where one training iteration's time goes (torch.profiler; digits-32, celeba-128)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target figure is missed")
    p.add_argument("--list", action="store_true",
                   help="build every case and print its name without timing it (a check that the report can run)")
    return p


def select_ops(ops: list[str] | None, quick: bool) -> tuple[list[str], list[str]]:
    """The suites a run times, and the ones ``--quick`` left out.

    ops: the ``--ops`` names, or None/empty for every suite of :data:`SUITES`. quick: ``--quick``;
    it leaves out the :data:`HEAVY` suites, except those that ``ops`` names (a name given is
    always run). Returns ``(selected, left_out)``, both in :data:`SUITES` order for a default
    selection and in the given order otherwise. Raises :class:`~alae_fast.errors.UserError`
    naming ``--ops`` for a name that is not a suite.
    """
    if ops:
        unknown = [o for o in ops if o not in SUITES]
        if unknown:
            raise UserError(f"unknown --ops {unknown}; choose from {list(SUITES)}")
        return list(ops), []
    if not quick:
        return list(SUITES), []
    return [o for o in SUITES if o not in HEAVY], [o for o in SUITES if o in HEAVY]


def left_out_note(left_out: list[str]) -> str:
    """Lines saying which suites ``--quick`` left out, why, and the command that runs them ('' for none)."""
    if not left_out:
        return ""
    lines = [f"left out by --quick (run them with `alae-fast bench --ops {' '.join(left_out)}`):"]
    lines += [f"  {op}: {HEAVY[op]}" for op in left_out]
    return "\n".join(lines)


def resolve_device(text: str) -> torch.device:
    """The ``--device`` value as a ``torch.device``: ``auto`` is CUDA when this torch sees a GPU,
    else the CPU; any other value goes through :func:`alae_fast.cli.check_device`, which raises
    :class:`~alae_fast.errors.UserError` naming ``--device`` for a name torch does not know or a
    device this torch cannot use (CUDA on a CPU-only build, a GPU index that is not there)."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from ..cli import check_device  # the CLI's one check, so bench refuses exactly what train/generate refuse

    return check_device(text)


def check_json_path(text: str) -> Path:
    """The ``--json`` value as a Path, checked before anything is measured.

    Raises :class:`~alae_fast.errors.UserError` naming ``--json`` when the path is a folder,
    its parent folder does not exist or is not a folder, or a file cannot be created there
    (tried for real: permission bits do not tell for root, /proc or a read-only mount).
    Nothing is left behind by the check.
    """
    path = Path(text)
    if path.is_dir():
        raise UserError(f"--json {text!r} is a folder; expected the path of a file to write")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"--json {text!r}: folder {str(parent)!r} does not exist; expected a file in an existing folder")
    if not parent.is_dir():
        raise UserError(f"--json {text!r}: {str(parent)!r} is not a folder; expected a file in an existing folder")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".tmp"):
            pass
    except OSError as e:
        raise UserError(f"--json {text!r}: cannot write a file in {str(parent)!r} ({e.strerror or first_line(e)})") from None
    return path


def write_json(path: str | os.PathLike, data) -> None:
    """Writes ``data`` as indented JSON to ``path`` atomically: into a temporary file beside it,
    then renamed over it, so a reader (or a run stopped while writing) never sees half a file.

    Raises OSError when the folder cannot be written (``--json`` is checked before a run by
    :func:`check_json_path`, so that is a folder changed during the run)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the report private, unlike open()'s file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def format_progress(result: Result, done: int, total: int, seconds: float) -> str:
    """One line of a just-measured case, for stderr: ``[done/total] op case: fused ms and every
    other candidate as t(candidate)/t(fused), (seconds the case took)``."""
    base = result.case.baseline
    figures = [f"{base} {result.seconds[base] * 1e3:.3f} ms"]
    figures += [f"{name}/{base} {ratio:.2f}" for name, ratio in result.ratios.items() if name != base]
    return f"  [{done}/{total}] {result.case.op} {result.case.name}: {', '.join(figures)} ({seconds:.1f} s)"


def run(args: argparse.Namespace) -> int:
    """Runs the report for parsed ``args`` (see :func:`build_parser`); returns the exit status:
    0, 1 for a missed target under ``--strict``, 130 when interrupted (what was measured is
    printed first). Raises :class:`~alae_fast.errors.UserError` for a bad ``--device``,
    ``--ops`` or ``--json``, before anything is measured."""
    device = resolve_device(args.device)
    ops, left_out = select_ops(args.ops, args.quick)
    if args.json:
        check_json_path(args.json)
    info = build_info()
    # Every candidate, the copy_ baseline included, runs under the same allocator setting.
    kept = keep_freed_memory()
    print(f"alae_fast bench: device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"kernels loaded={info['loaded']} cuda={info['cuda']} impl={info['default_impl']} "
          f"malloc keeps freed memory={kept} (ALAE_FAST_KEEP_MEMORY)")
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}")
    if args.profile:
        return _profile(args)
    note = left_out_note(left_out)
    if note:  # said first too, so that a user watching a smoke run knows what it will not cover
        print(note, file=sys.stderr, flush=True)
    rounds = args.rounds if args.rounds is not None else (7 if args.quick else 15)
    results = []
    interrupted = False
    try:
        for op in ops:
            module = importlib.import_module(SUITES[op])
            suite = module.cases(device, quick=args.quick, compile=not args.no_compile)
            for i, case in enumerate(suite, 1):
                if args.list:
                    print(f"  {case.op}: {case.name} [{', '.join(case.candidates)}]", flush=True)
                    continue
                t0 = time.perf_counter()
                results.append(measure(case, rounds=rounds))
                print(format_progress(results[-1], i, len(suite), time.perf_counter() - t0),
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\nalae-fast bench: interrupted; the table has the {len(results)} case(s) measured so far",
              file=sys.stderr, flush=True)
    if args.list:
        if note:
            print(note)
        return 130 if interrupted else 0
    print()
    print("Times: median ms per call of the fused kernel; other columns: median over rounds of")
    print("t(column) / t(fused) measured in the same round (> 1 means fused is faster).")
    # cases with candidates of their own (train_load's thread settings) get their own columns
    extra = sorted({c for r in results for c in r.ratios} - set(COLUMNS))
    print(format_table(results, COLUMNS + extra))
    text, ok = format_targets(results)
    if text:
        print("\nTargets:")
        print(text)
    if note:
        print("\n" + note)
    if interrupted:
        print("\ninterrupted: the cases above are the ones measured before Ctrl-C")
    if args.json:
        write_json(args.json, [{"op": r.case.op, "case": r.case.name, "device": str(device),
                                "seconds": r.seconds, "ratios": r.ratios} for r in results])
        print(f"\nwrote {args.json}" + (" (the cases measured before Ctrl-C)" if interrupted else ""))
    sys.stdout.flush()
    if interrupted:
        return 130
    return 1 if (args.strict and not ok) else 0


def _profile(args: argparse.Namespace) -> int:
    from .profile import PROFILE_CASES, format_breakdown, iteration_breakdown

    out = []
    try:
        for preset, batch in PROFILE_CASES:
            r = iteration_breakdown(preset, batch, iterations=1 if args.quick else 3, warmup=1 if args.quick else 2)
            print(format_breakdown(r), flush=True)
            out.append(r)
    except KeyboardInterrupt:
        print(f"\nalae-fast bench: interrupted after {len(out)} of {len(PROFILE_CASES)} profiles", file=sys.stderr)
        if args.json and out:
            write_json(args.json, out)
            print(f"\nwrote {args.json} (the profiles made before Ctrl-C)")
        return 130
    if args.json:
        write_json(args.json, out)
        print(f"\nwrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``alae-fast bench``: parses ``argv`` (default ``sys.argv[1:]``) and runs the report.

    Returns the exit status of :func:`run`; a refused option exits 2 through the parser
    (SystemExit), a :class:`~alae_fast.errors.UserError` (bad --device, --json) returns 2 after
    one line on stderr (``ALAE_FAST_TRACEBACK=1`` re-raises it instead)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unused = unused_options(args)
    if unused:
        parser.error(unused)
    unknown = [o for o in args.ops or () if o not in SUITES]
    if unknown:  # said here, by the parser, so that it exits 2 as every refused option does
        parser.error(f"unknown --ops {unknown}; choose from {list(SUITES)}")
    try:
        return run(args)
    except UserError as e:
        if os.environ.get("ALAE_FAST_TRACEBACK"):
            raise
        print(f"alae-fast bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
