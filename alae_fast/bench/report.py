"""The benchmark report: every op's cases timed side by side, printed as one table of ratios.

Run ``alae-fast bench`` (or ``python benchmarks/report.py``); ``--help`` lists the options.

Each case's figures go to stderr as soon as it is measured, so a run that is stopped keeps
what it measured; Ctrl-C prints the table of the cases measured so far (exit 130). The
suites in :data:`HEAVY` take minutes each on a 2-core CPU and are left out under ``--quick``
unless ``--ops`` names them; a case may leave out a candidate under ``--quick`` too (it
records a :class:`~alae_fast.bench.harness.LeftOut`), which the table marks and the note lists.

``--json FILE`` writes ``{"schema": 2, "mode", "context", "interrupted", "results",
"targets", "targets_passed", "left_out_by_quick"}`` (see :func:`report_json`; ``targets_passed``
is null when no target was checked); ``context`` is
:func:`alae_fast.bench.context.run_context`'s (versions, build, CPU model, the kernels'
instruction set, cores, threads, load, the OpenMP wait and who chose it, whether the fused
kernels are measured, settings, date, command line).
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

from .._lib import default_impl
from .._words import plural
from ..cpu_allocator import keep_freed_memory
from ..cli.arguments import _positive_int  # the CLI's one 'int >= 1' type
from ..cli.parser import OneLineParser  # and its one-line refusals
from ..errors import UserError, first_line
from .context import format_header, run_context
from .harness import NOT_APPLICABLE, Case, Result, format_table, format_targets, measure, quartiles, target_records

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
# Ops whose cases live in another op's suite: --ops takes their names and runs that suite.
PART_OF = {"instance_norm_stats": "adain", "modulate_weight": "modulated_conv2d"}
# Suites that --quick leaves out unless --ops names them: op name -> why (shown to the user).
# Their cost does not shrink with --quick (one full-size shape, or whole child processes).
HEAVY = {
    "official": "ffhq-1024 (53.7 M parameters) load and encode+decode at 1024x1024: minutes on a 2-core CPU",
    "train_load": "8 training processes a round, some beside 2 busy loops: over 15 minutes on a 2-core CPU",
}
COLUMNS = ["fused", "ref", "compiled", "copy"]
JSON_SCHEMA = 2  # 1: a bare list of results, without context


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
    p = OneLineParser(prog="alae-fast bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when present; default)")
    p.add_argument("--ops", nargs="*", default=None,
                   help=f"subset of: {', '.join(SUITES)} (default all; given, it needs at least one name, and a name "
                        f"given twice runs once; "
                        + "; ".join(f"{op} runs in the {suite} suite" for op, suite in PART_OF.items()) + ")")
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


def unknown_ops_message(ops) -> str | None:
    """The refusal of the ``--ops`` names that are neither a suite nor an op of :data:`PART_OF`,
    or None when every name is known."""
    unknown = [o for o in ops if o not in SUITES and o not in PART_OF]
    return f"unknown --ops {unknown}; choose from {list(SUITES)} (or {', '.join(PART_OF)})" if unknown else None


def select_ops(ops: list[str] | None, quick: bool) -> tuple[list[str], list[str]]:
    """The suites a run times, and the ones ``--quick`` left out.

    ops: the ``--ops`` names, or None (no ``--ops``) for every suite of :data:`SUITES`; a name
    given twice is timed once. quick: ``--quick``; it leaves out the :data:`HEAVY` suites,
    except those that ``ops`` names (a name given is always run). Returns ``(selected,
    left_out)``, both in :data:`SUITES` order for a default selection and in the given order
    (first occurrences) otherwise. Raises :class:`~alae_fast.errors.UserError` naming ``--ops``
    for an empty list (``--ops`` with no names) or a name that is not a suite.
    """
    if ops is not None:
        if not ops:
            raise UserError(f"--ops was given no names; expected one or more of: {', '.join(SUITES)} "
                            f"(leave --ops out to run them all)")
        unknown = unknown_ops_message(ops)
        if unknown:
            raise UserError(unknown)
        return list(dict.fromkeys(PART_OF.get(o, o) for o in ops)), []
    if not quick:
        return list(SUITES), []
    return [o for o in SUITES if o not in HEAVY], [o for o in SUITES if o in HEAVY]


def quick_left_out_candidates(suite_cases: dict[str, list[Case]]) -> list[dict]:
    """The candidates that ``--quick`` left out of the cases built, grouped: one dict per
    (suite, op, candidate, why) with ``suite``, ``op``, ``candidate``, ``why`` and ``cases``
    (the case names), in the order met. suite_cases: suite name -> its cases."""
    groups: dict[tuple, dict] = {}
    for suite, cases in suite_cases.items():
        for case in cases:
            for cand, lo in case.left_out.items():
                if lo.option != "--quick":
                    continue
                key = (suite, case.op, cand, lo.why)
                groups.setdefault(key, {"suite": suite, "op": case.op, "candidate": cand, "why": lo.why,
                                        "cases": []})["cases"].append(case.name)
    return list(groups.values())


def left_out_note(left_out: list[str], candidates: list[dict] = ()) -> str:
    """Lines saying what ``--quick`` left out, why, and the command that runs it ('' for
    nothing): the suites ``left_out`` (names of :data:`HEAVY`) and the ``candidates`` of
    :func:`quick_left_out_candidates`."""
    if not left_out and not candidates:
        return ""
    if left_out:
        lines = [f"left out by --quick (run them with `alae-fast bench --ops {' '.join(left_out)}`):"]
        lines += [f"  {op}: {HEAVY[op]}" for op in left_out]
    else:
        lines = ["left out by --quick:"]
    for c in candidates:
        n = len(c["cases"])
        lines.append(f"  {c['op']}: the {c['candidate']} candidate of {n} case{'s' if n != 1 else ''} ({c['why']}); "
                     f"run `alae-fast bench --ops {c['suite']}` without --quick for it")
    return "\n".join(lines)


def resolve_device(text: str) -> torch.device:
    """The ``--device`` value as a ``torch.device``: ``auto`` is CUDA when this torch sees a GPU,
    else the CPU; any other value goes through :func:`alae_fast.cli.arguments.check_device`, which raises
    :class:`~alae_fast.errors.UserError` naming ``--device`` for a name torch does not know or a
    device this torch cannot use (CUDA on a CPU-only build, a GPU index that is not there)."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from ..cli.arguments import check_device  # the CLI's one check, so bench refuses exactly what train/generate refuse

    return check_device(text)


def check_json_path(text: str) -> Path:
    """The ``--json`` value as a Path, checked before anything is measured.

    Raises :class:`~alae_fast.errors.UserError` naming ``--json`` when the path is empty, is
    a folder, its parent folder does not exist or is not a folder, or a file cannot be created
    there (tried for real: permission bits do not tell for root, /proc or a read-only mount).
    Nothing is left behind by the check.
    """
    if not text:
        # Path("") is ".", a folder: said as what the user typed, not as "'' is a folder"
        raise UserError("--json '' is empty; expected the path of a file to write")
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


def _na_mark() -> str:
    """The table's mark for "no figure here": an em dash where stdout can encode one."""
    try:
        NOT_APPLICABLE.encode(getattr(sys.stdout, "encoding", None) or "ascii")
        return NOT_APPLICABLE
    except (UnicodeEncodeError, LookupError):
        return "--"


def table_legend(results: list[Result], na: str) -> str:
    """Lines explaining the marks that the table of ``results`` uses ('' for none)."""
    lines = []
    options = sorted({lo.option for r in results for c, lo in r.case.left_out.items() if c not in r.ratios})
    if options:
        lines.append(f"{', '.join(f'({o})' for o in options)}: that candidate was left out of this run by the "
                     f"option")
    if any(c not in r.ratios and c not in r.case.left_out for r in results for c in COLUMNS):
        lines.append(f"{na}: the case has no such candidate, or its ratio does not apply there (copy_ is the "
                     f"roofline of one forward pass: none beside forward+backward)")
    if any("contiguous" in r.ratios for r in results):
        # a ratio of another op's time to the fused one reads the other way round here
        lines.append("contiguous/fused: the same op on the same values stored contiguous; below 1, the case's "
                     "layout costs 1/x the contiguous time (0.5: twice as long)")
    return "\n".join(lines)


def command_argv(args: argparse.Namespace) -> list[str]:
    """The ``alae-fast bench`` arguments that give ``args`` (for a run started without a
    command line, e.g. :func:`run` called directly)."""
    out = [] if args.device == "auto" else ["--device", args.device]
    if args.ops is not None:
        out += ["--ops", *args.ops]
    if args.rounds is not None:
        out += ["--rounds", str(args.rounds)]
    out += [flag for flag, on in (("--quick", args.quick), ("--no-compile", args.no_compile),
                                  ("--profile", args.profile), ("--strict", args.strict), ("--list", args.list))
            if on]
    return out + (["--json", args.json] if args.json is not None else [])


def report_json(context: dict, results: list[Result], interrupted: bool, left_out: list[str],
                candidates: list[dict]) -> dict:
    """The ``--json`` document of a timed run (schema 2): ``schema``, ``mode`` ('report'),
    ``context`` (:func:`~alae_fast.bench.context.run_context`'s), ``interrupted`` (True when
    Ctrl-C stopped it: ``results`` then has the cases measured before), ``results`` (per case:
    ``op``, ``case``, ``device``, ``seconds`` and ``ratios`` per candidate, ``ratio_quartiles``
    per candidate (``[lower, upper]`` quartile of its ratio over rounds), ``notes`` (the
    case's own, "" when none), ``left_out``:
    candidate -> ``{"option", "why"}``), ``targets`` (see
    :func:`~alae_fast.bench.harness.target_records`), ``targets_passed`` (see
    :func:`targets_passed`), ``left_out_by_quick`` (``{"suites": {name: why}, "candidates": [...]}``)."""
    targets = target_records(results)
    return {
        "schema": JSON_SCHEMA,
        "mode": "report",
        "context": context,
        "interrupted": interrupted,
        "results": [{"op": r.case.op, "case": r.case.name, "device": str(r.case.device), "seconds": r.seconds,
                     "ratios": r.ratios,
                     "ratio_quartiles": {c: list(quartiles(v)) for c, v in r.round_ratios.items() if v},
                     "notes": r.notes,
                     "left_out": {c: {"option": lo.option, "why": lo.why} for c, lo in r.case.left_out.items()}}
                    for r in results],
        "targets": targets,
        "targets_passed": targets_passed(targets),
        "left_out_by_quick": {"suites": {op: HEAVY[op] for op in left_out}, "candidates": candidates},
    }


def targets_passed(records: list[dict]) -> bool | None:
    """The JSON's verdict over target ``records`` (dicts with a ``status``): True when some were
    checked and none failed, False when one failed, None when none was checked (no target, or
    every one a SKIP, as in a run stopped before its first case): no claim either way."""
    checked = [r["status"] for r in records if r["status"] != "SKIP"]
    if not checked:
        return None
    return "FAIL" not in checked


def format_progress(result: Result, done: int, total: int, seconds: float) -> str:
    """One line of a just-measured case, for stderr: ``[done/total] op case: fused ms and every
    other candidate as t(candidate)/t(fused), (seconds the case took)``, then the case's notes
    on a line of their own when it has any."""
    base = result.case.baseline
    figures = [f"{base} {result.seconds[base] * 1e3:.3f} ms"]
    figures += [f"{name}/{base} {ratio:.2f}" for name, ratio in result.ratios.items() if name != base]
    line = f"  [{done}/{total}] {result.case.op} {result.case.name}: {', '.join(figures)} ({seconds:.1f} s)"
    return line + (f"\n        {result.notes}" if result.notes else "")


def run(args: argparse.Namespace) -> int:
    """Runs the report for parsed ``args`` (see :func:`build_parser`); returns the exit status:
    0, 1 for a missed target under ``--strict``, 130 when interrupted (what was measured is
    printed, and written to ``--json``, first). The report's context records
    ``args.command_line`` (the arguments as typed; :func:`main` sets it) or, without it, the
    arguments rebuilt from ``args`` (:func:`command_argv`). Raises
    :class:`~alae_fast.errors.UserError` for a bad ``--device``, ``--ops``, ``--json`` (an empty
    one too) or ``ALAE_FAST_IMPL``, before anything is measured. The context's warnings (the
    fused kernels not measured, see :func:`~alae_fast.bench.context.fused_kernels`) go to
    stderr, one line each, right after the header."""
    try:
        default_impl()  # `alae-fast` checks it too; `python benchmarks/report.py` comes here directly
    except ValueError as e:
        raise UserError(str(e)) from None
    device = resolve_device(args.device)
    ops, left_out = select_ops(args.ops, args.quick)
    twice = [o for o in ops if args.ops and args.ops.count(o) > 1]
    if args.json is not None:  # "" too: it is refused, not taken for "no --json"
        check_json_path(args.json)
    # Every candidate, the copy_ baseline included, runs under the same allocator setting.
    kept = keep_freed_memory()
    rounds = args.rounds if args.rounds is not None else (7 if args.quick else 15)
    mode = "profile" if args.profile else "list" if args.list else "report"
    settings = {"mode": mode, "quick": args.quick, "keep_freed_memory": kept}
    if mode != "profile":
        settings.update(rounds=None if args.list else rounds, compile=not args.no_compile, ops=ops)
    typed = getattr(args, "command_line", None)
    context = run_context(command_argv(args) if typed is None else list(typed), device, **settings)
    print(format_header(context))
    for line in context["warnings"]:  # said before any figure, which they change the meaning of
        print(f"alae-fast bench: warning: {line}", file=sys.stderr, flush=True)
    if twice:
        print(f"alae-fast bench: --ops named {', '.join(twice)} more than once; each suite runs once",
              file=sys.stderr, flush=True)
    for op in dict.fromkeys(o for o in args.ops or () if o in PART_OF):
        print(f"alae-fast bench: {op}'s cases are in the {PART_OF[op]} suite, which runs whole",
              file=sys.stderr, flush=True)
    if args.profile:
        return _profile(args, context)
    note = left_out_note(left_out)
    if note:  # said first too, so that a user watching a smoke run knows what it will not cover
        print(note, file=sys.stderr, flush=True)
    results = []
    suite_cases: dict[str, list[Case]] = {}
    interrupted = False
    try:
        for op in ops:
            module = importlib.import_module(SUITES[op])
            suite = module.cases(device, quick=args.quick, compile=not args.no_compile)
            suite_cases[op] = suite
            for i, case in enumerate(suite, 1):
                if args.list:
                    dropped = "".join(f"; {c} left out by {lo.option}" for c, lo in case.left_out.items())
                    print(f"  {case.op}: {case.name} [{', '.join(case.candidates)}{dropped}]", flush=True)
                    continue
                t0 = time.perf_counter()
                results.append(measure(case, rounds=rounds))
                print(format_progress(results[-1], i, len(suite), time.perf_counter() - t0),
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\nalae-fast bench: interrupted; the table has the {plural(len(results), 'case')} measured so far"
              if results else "\nalae-fast bench: interrupted before any case was measured", file=sys.stderr, flush=True)
    candidates = quick_left_out_candidates(suite_cases)
    note = left_out_note(left_out, candidates)
    if args.list:
        if note:
            print(note)
        return 130 if interrupted else 0
    # an empty table above "the cases measured" read as if some had been: none is printed then
    if results or not interrupted:
        print()
        print("Times: median ms per call of the fused kernel; other columns: median over rounds of")
        print("t(column) / t(fused) measured in the same round (> 1 means fused is faster).")
        # cases with candidates of their own (train_load's thread settings) get their own columns
        extra = sorted({c for r in results for c in r.ratios} - set(COLUMNS))
        na = _na_mark()
        print(format_table(results, COLUMNS + extra, na=na))
        legend = table_legend(results, na)
        if legend:
            print(legend)
    noted = [r for r in results if r.notes]
    if noted:
        print("\nWhat the cases saw:")
        for r in noted:
            print(f"  {r.case.op} {r.case.name}: {r.notes}")
    text, ok = format_targets(results)
    if text:
        print("\nTargets (in the table's units):")
        print(text)
    if note:
        print("\n" + note)
    if interrupted:
        print("\ninterrupted: the cases above are the ones measured before Ctrl-C" if results else
              "\ninterrupted before the first case was measured: nothing was measured and no target checked")
    if args.json is not None:
        write_json(args.json, report_json(context, results, interrupted, left_out, candidates))
        said = ""
        if interrupted:
            said = (" (the cases measured before Ctrl-C; \"interrupted\": true)" if results else
                    " (nothing measured before Ctrl-C: no results, \"targets_passed\": null, \"interrupted\": true)")
        print(f"\nwrote {args.json}{said}")
    sys.stdout.flush()
    if interrupted:
        return 130
    return 1 if (args.strict and not ok) else 0


def _profile(args: argparse.Namespace, context: dict) -> int:
    from .profile import PROFILE_CASES, format_breakdown, goal_record, iteration_breakdown

    out = []
    interrupted = False
    try:
        for preset, batch in PROFILE_CASES:
            r = iteration_breakdown(preset, batch, iterations=1 if args.quick else 3, warmup=1 if args.quick else 2)
            print(format_breakdown(r), flush=True)
            out.append(r)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\nalae-fast bench: interrupted after {len(out)} of {len(PROFILE_CASES)} profiles", file=sys.stderr)
    goals = [goal_record(r) for r in out]
    if goals:
        print("\nTargets (stretch goals: they do not set the exit status):")
        print("\n".join(f"{g['status']}  {g['op']} {g['case']}: {g['target']}: {g['text']}" for g in goals))
    if args.json is not None and (out or not interrupted):
        write_json(args.json, {"schema": JSON_SCHEMA, "mode": "profile", "context": context,
                               "interrupted": interrupted, "results": out, "targets": goals,
                               "targets_passed": targets_passed(goals)})
        print(f"\nwrote {args.json}" + (" (the profiles made before Ctrl-C; \"interrupted\": true)"
                                       if interrupted else ""))
    elif args.json is not None:
        print(f"\n{args.json} not written: Ctrl-C came before the first profile was made")
    return 130 if interrupted else 0


def main(argv: list[str] | None = None) -> int:
    """``alae-fast bench``: parses ``argv`` (default ``sys.argv[1:]``) and runs the report.

    Returns the exit status of :func:`run`; a refused option exits 2 through the parser
    (SystemExit), a :class:`~alae_fast.errors.UserError` (bad --device, --ops, --json) returns 2 after
    one line on stderr (``ALAE_FAST_TRACEBACK=1`` re-raises it instead)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unused = unused_options(args)
    if unused:
        parser.error(unused)
    unknown = unknown_ops_message(args.ops or ())
    if unknown:  # said here, by the parser, so that it exits 2 as every refused option does
        parser.error(unknown)
    args.command_line = sys.argv[1:] if argv is None else list(argv)
    try:
        return run(args)
    except UserError as e:
        if os.environ.get("ALAE_FAST_TRACEBACK"):
            raise
        print(f"alae-fast bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
