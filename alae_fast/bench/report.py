"""The benchmark report: every op's cases timed side by side, printed as one table of ratios.

Run ``alae-fast bench`` (or ``python benchmarks/report.py``); ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

import torch

from .. import build_info
from ..cpu_allocator import keep_freed_memory
from .harness import format_table, format_targets, measure

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
COLUMNS = ["fused", "ref", "compiled", "copy"]


def _rounds(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text}")
    return v


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
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present; default)")
    p.add_argument("--ops", nargs="*", default=None, help=f"subset of: {', '.join(SUITES)} (default all)")
    p.add_argument("--rounds", type=_rounds, default=None,
                   help="interleaved rounds per case (default 15; 7 with --quick)")
    p.add_argument("--quick", action="store_true", help="fewer shapes and rounds, for a smoke run")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile(reference) column")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--profile", action="store_true",
                   help="instead: where one training iteration's time goes (torch.profiler; digits-32, celeba-128)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target figure is missed")
    p.add_argument("--list", action="store_true",
                   help="build every case and print its name without timing it (a check that the report can run)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    ops = args.ops or list(SUITES)
    unknown = [o for o in ops if o not in SUITES]
    if unknown:
        raise SystemExit(f"alae-fast bench: unknown --ops {unknown}; choose from {list(SUITES)}")
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
    rounds = args.rounds if args.rounds is not None else (7 if args.quick else 15)
    results = []
    for op in ops:
        module = importlib.import_module(SUITES[op])
        for case in module.cases(device, quick=args.quick, compile=not args.no_compile):
            if args.list:
                print(f"  {case.op}: {case.name} [{', '.join(case.candidates)}]")
                continue
            results.append(measure(case, rounds=rounds))
            print(f"  measured {case.op} {case.name}", file=sys.stderr, flush=True)
    if args.list:
        return 0
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"op": r.case.op, "case": r.case.name, "device": str(device),
                        "seconds": r.seconds, "ratios": r.ratios} for r in results], f, indent=1)
        print(f"\nwrote {args.json}")
    return 1 if (args.strict and not ok) else 0


def _profile(args: argparse.Namespace) -> int:
    from .profile import PROFILE_CASES, format_breakdown, iteration_breakdown

    out = []
    for preset, batch in PROFILE_CASES:
        r = iteration_breakdown(preset, batch, iterations=1 if args.quick else 3, warmup=1 if args.quick else 2)
        print(format_breakdown(r), flush=True)
        out.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unused = unused_options(args)
    if unused:
        parser.error(unused)
    unknown = [o for o in args.ops or () if o not in SUITES]
    if unknown:  # said here, by the parser, so that it exits 2 as every refused option does
        parser.error(f"unknown --ops {unknown}; choose from {list(SUITES)}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
