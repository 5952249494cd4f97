"""How long OpenMP threads spin before they sleep: set before torch (and its libgomp) loads.

torch's CPU kernels (and ours, through ``at::parallel_for``) run in OpenMP parallel regions.
A thread that finishes its share waits for the others at the region's end, and then for
the next region. GNU libgomp, which the torch CPU wheels use, spins busily for that wait:
300,000 rounds by default (milliseconds) before it sleeps. On an idle machine this makes
the next region start at once. On a machine where anything else runs (another training,
a compiler, a data-loading worker) a waiting thread burns the time slice its preempted
sibling needs, and every region ends only when the scheduler gets back to that sibling:
``alae-fast train --kimg 2 --no-eval`` took 60-69 s under a load average of about 5 on 2
cores, 12 s with ``OMP_WAIT_POLICY=PASSIVE`` and 8.7 s with one thread.

:func:`limit_spinning` sets ``GOMP_SPINCOUNT`` (the spin rounds) to :data:`SPIN_COUNT`, about
tens of microseconds: long enough to bridge the gap between two back-to-back regions of
one training step, short enough that a thread waiting for a preempted sibling soon gives
its core away. libgomp reads the variable once, when it is loaded (``import torch``), so
this must run before that; ``import alae_fast`` does it first thing when torch is not
imported yet. It changes nothing when the user set ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` themselves, or when ``ALAE_FAST_OMP_SPIN=keep``. The benchmark case
``alae-fast bench --ops train_load`` measures the effect with and without competing work.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SPIN_COUNT", "limit_spinning"]

# libgomp's own value for an oversubscribed machine ("throttled" spinning) is 1000; 10,000
# rounds of its pause loop are roughly 10-100 us on current x86 CPUs.
SPIN_COUNT = 10000


def limit_spinning(environ=None) -> str | None:
    """Set ``GOMP_SPINCOUNT`` to ``SPIN_COUNT`` in ``environ`` (default ``os.environ``) if the
    OpenMP wait is not configured already and torch is not loaded yet.

    Returns the value set, or None when nothing was changed (torch already imported, the
    user's own ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``, or ``ALAE_FAST_OMP_SPIN=keep``).
    """
    env = os.environ if environ is None else environ
    if "torch" in sys.modules and environ is None:
        return None
    if env.get("ALAE_FAST_OMP_SPIN", "").strip().lower() == "keep":
        return None
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return env["GOMP_SPINCOUNT"]
