"""``python -m alae_fast.models``: prints the parameter counts of every preset as a Markdown table.

Options: preset names to restrict the table to (default: all).
"""

import os
import sys

from .._words import word_for
from . import list_presets, parameter_table


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    unknown = [n for n in names if n not in list_presets()]
    if unknown:
        print(f"python -m alae_fast.models: unknown {word_for(len(unknown), 'preset')} {unknown}; known: {list_presets()}", file=sys.stderr)
        return 2
    try:
        print(parameter_table(names or None), flush=True)
    except BrokenPipeError:
        # the reader went away (`python -m alae_fast.models | head`): stop quietly, as Unix tools
        # and `alae-fast presets` do, and keep Python from reporting the pipe again when it flushes
        # stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
