"""``python -m alae_fast.models``: prints the parameter counts of every preset as a Markdown table.

Options: preset names to restrict the table to (default: all).
"""

import sys

from . import list_presets, parameter_table


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    unknown = [n for n in names if n not in list_presets()]
    if unknown:
        print(f"python -m alae_fast.models: unknown {'preset' if len(unknown) == 1 else 'presets'} {unknown}; known: {list_presets()}", file=sys.stderr)
        return 2
    print(parameter_table(names or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
