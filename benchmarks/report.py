"""Prints the benchmark report (same as `alae-fast bench`); run with --help for options."""

import sys

from alae_fast.bench.report import main

if __name__ == "__main__":
    sys.exit(main())
