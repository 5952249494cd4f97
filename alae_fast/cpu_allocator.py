"""Keep freed CPU memory in the process instead of handing it back to the OS after every op.

glibc's malloc serves every block of 32 MiB or more (the most its dynamic threshold reaches)
with a fresh ``mmap`` and unmaps it on ``free``. A CPU training loop allocates activations of
that size every iteration, so each one is page-faulted and zeroed by the kernel anew: for a
[8,256,64,64] float32 output that costs several times the op's own work (measured: a 2x FIR
upsample went from 21 ms to 4-5 ms on the 2-core CI machine). jemalloc and tcmalloc avoid
this by keeping freed memory; :func:`keep_freed_memory` gets the same from glibc with
``mallopt``: big blocks come from the heap and the heap top is not trimmed.

The cost is resident memory: the process keeps its peak heap. ``alae-fast train`` (on the
CPU) and ``alae-fast bench`` call it; set ``ALAE_FAST_KEEP_MEMORY=0`` to leave malloc as it is.
Library users opt in by calling it. It does nothing on other C libraries (musl, macOS,
Windows) and returns False there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_applied: bool | None = None


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # only glibc has it
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """Make glibc malloc keep large freed blocks for reuse (see the module docstring).

    Idempotent. Returns True when the setting is in effect, False when the C library is not
    glibc, a ``mallopt`` call was refused, or ``ALAE_FAST_KEEP_MEMORY=0`` is set.
    """
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get("ALAE_FAST_KEEP_MEMORY", "1").strip() in ("0", "false", "no", "off"):
        _applied = False
        return False
    libc = _glibc()
    if libc is None:
        _applied = False
        return False
    # No mmap-served blocks (threads' arenas that cannot hold a block still fall back to
    # mmap inside glibc), and never trim the heap top back to the OS.
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1 and ok
    _applied = ok
    return ok
