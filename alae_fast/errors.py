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

import os
import stat
import sys

__all__ = ["UserError", "first_line", "check_regular_file", "caller_stacklevel"]

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


# What a path that exists but is no regular file is, by its stat mode: said instead of "does not
# exist", which sent the user looking for a file that is there (/dev/zero, a FIFO).
_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: str | os.PathLike, said: str, expected: str = "") -> None:
    """Returns when ``path`` is a regular file (a symbolic link to one included). Else raises
    FileNotFoundError ``"<said> does not exist"`` when nothing is there (a link to nothing:
    ``"<said> is a symbolic link to 'T', which does not exist"``), and UserError (a ValueError)
    ``"<said> is not a regular file (a character device)<expected>"`` for a device, FIFO,
    socket or folder, or ``"<said> cannot be read (<reason>)"`` when the system will not say.
    ``expected`` (e.g. ``"; give an image file"``) ends the refusal of what exists. A FIFO is
    never opened: reading one waits for a writer that may never come."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(f"{said} is a symbolic link to {os.readlink(path)!r}, which does not "
                                    f"exist") from None
        raise FileNotFoundError(f"{said} does not exist") from None
    except OSError as e:  # no permission on a folder above it, a name too long, a loop of links ...
        raise UserError(f"{said} cannot be read ({e.strerror or first_line(e)})") from None
    if stat.S_ISREG(mode):
        return
    kind = next((k for test, k in _NOT_REGULAR if test(mode)), "a special file of another kind")
    raise UserError(f"{said} is not a regular file ({kind}){expected}")


# the package's files: the frames a warning passes over to reach its caller's line
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_stacklevel() -> int:
    """The ``stacklevel`` at which a warning raised by the function that calls this one names the
    first frame outside the ``alae_fast`` package: the user's line whether they called
    :func:`~alae_fast.inference.projection.project_latents` or ``LoadedRun.project``/``reconstruct``
    (which call it), or ``alae_fast.load``, as Python 3.12's ``skip_file_prefixes`` would (not in 3.10 and 3.11)."""
    frame, level = sys._getframe(2), 2  # 0: here, 1: the warning function, 2: its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2
