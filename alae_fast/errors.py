"""The project's one exception kind for mistakes of the person using it.

:class:`UserError` says "what you gave is not usable": a checkpoint that is not one, an
image that does not decode, a device this torch does not have, a seed list that does not
parse. ``alae-fast`` (the CLI's error boundary in :func:`alae_fast.cli.main`) prints its
message as one line and exits with status 2; ``alae-fast serve`` answers it with HTTP 400
and the message on the page. Anything else that escapes is a bug and keeps its traceback.

It subclasses ``ValueError`` so code that catches the library's argument errors
(``ValueError`` by the project's convention) keeps catching it.
"""

from __future__ import annotations

__all__ = ["UserError", "first_line"]


class UserError(ValueError):
    """Bad input from the user: the message names the input and what was expected."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s type and the first line of its message, cut to ``limit`` characters (torch's
    unpickling errors run to dozens of lines of advice that does not apply)."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if len(msg) > limit:
        msg = msg[:limit - 3] + "..."
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
