"""The ``alae-fast`` command (also ``python -m alae_fast``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="alae-fast", description="alae_fast: fused StyleGAN ops and ALAE.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="print the benchmark report (ratios of fused vs reference vs compile vs copy)",
                   add_help=False)
    sub.add_parser("info", help="print what the compiled library was built with (JSON)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench.report import main as bench_main
        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "info":
        import json
        from . import build_info
        print(json.dumps(build_info(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
