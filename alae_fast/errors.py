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

# The start of torch.load's refusal of a file holding pickled objects under weights_only=True;
# its message goes on to advise weights_only=False, which would run the file's code.
_WEIGHTS_ONLY_REFUSAL = "Weights only load failed"


class UserError(ValueError):
    """Bad input from the user: the message names the input and what was expected."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s type and the first line of its message, cut to ``limit`` characters (torch's
    unpickling errors run to dozens of lines of advice that does not apply; its refusal of a
    file with pickled objects is said without its advice to load with weights_only=False)."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if msg.startswith(_WEIGHTS_ONLY_REFUSAL):
        msg = "it holds pickled Python objects besides tensors, which are not loaded (they could run code)"
    if len(msg) > limit:
        msg = msg[:limit - 3] + "..."
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
