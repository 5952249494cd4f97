"""The CPU time a cgroup quota allows this process: how many threads torch should use in a container.

``docker run --cpus 2`` (and Kubernetes CPU limits, and systemd's ``CPUQuota=``) limit a
process by a CFS quota, not by its affinity mask: every CPU of the host stays visible, and torch
starts one OpenMP thread per physical core of the host (32 on a 64-thread server). Those threads
share 2 CPUs' worth of time; each parallel region ends only when its last thread has run, and
the kernel throttles the whole cgroup once the period's quota is spent, so a run can be several
times slower than with 2 threads. Go (1.25) and the JVM size their thread pools by the quota;
torch does not (``torch.get_num_threads()`` counts cores). The CLI therefore starts
``ceil(quota)`` threads where a quota is below torch's count and ``OMP_NUM_THREADS`` is not set.

The quota is read as the kernel exposes it: cgroup v2's ``cpu.max`` ("QUOTA PERIOD" or "max
PERIOD") and cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none), in this
process's cgroup and every ancestor up to the mount's root (a parent's limit binds its children
too), found as the memory limits are (:mod:`alae_fast._cgroup`). The tightest one counts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ._cgroup import cgroup_levels, folders_up

__all__ = ["cpu_quota", "quota_threads", "threads_for_quota", "use_threads", "said_cpus"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_limit(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    parts = text.split() if text else []
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        q, p = int(quota), int(period)
    except (TypeError, ValueError):
        return None
    return q / p if q > 0 and p > 0 else None


def cpu_quota(proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path | None = None,
              mountinfo: str | Path = "/proc/self/mountinfo") -> float | None:
    """The CPUs the quotas of the cgroups holding this process allow (``quota / period``, e.g.
    1.5): the tightest over each level from the process's cgroup up to the top its mount shows,
    cgroup v2 (``cpu.max``: "QUOTA PERIOD", or "max PERIOD" for none) and v1's cpu controller
    (``cpu.cfs_quota_us``, -1 for none, over ``cpu.cfs_period_us``). None where no quota is set
    or none can be read (not Linux, no cgroup file system, unreadable files). Never raises.

    ``proc_cgroup``, ``root``, ``mountinfo``: where the cgroups are found, as
    :func:`alae_fast._cgroup.cgroup_levels` takes them for the ``cpu`` controller."""
    limits = []
    for version, folder, top in cgroup_levels("cpu", proc_cgroup, root, mountinfo) or []:
        read = _v2_limit if version == 2 else _v1_limit
        limits += [limit for limit in map(read, folders_up(folder, top)) if limit is not None]
    return min(limits) if limits else None


def quota_threads() -> int | None:
    """``ceil(cpu_quota())``, at least 1: the threads that a quota lets run at once (a quota of
    1.5 CPUs: 2); None without a quota."""
    quota = cpu_quota()
    return None if quota is None else max(1, math.ceil(quota - 1e-9))


def threads_for_quota(torch_threads: int, environ=None) -> int | None:
    """The thread count to use instead of torch's ``torch_threads`` under a CPU quota:
    :func:`quota_threads` where that is fewer and ``OMP_NUM_THREADS`` is not set in ``environ``
    (default ``os.environ``; the user's count is kept, as torchrun's 1 a process is); else None."""
    env = os.environ if environ is None else environ
    if env.get("OMP_NUM_THREADS", "").strip():
        return None
    limit = quota_threads()
    return limit if limit is not None and limit < torch_threads else None


def use_threads(threads: int) -> None:
    """torch's intra-op threads, and NumPy's BLAS (FID's matrix square root, scikit-learn in the
    reports) where threadpoolctl is installed, set to ``threads``."""
    import torch

    torch.set_num_threads(int(threads))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(int(threads))
    except ImportError:
        pass


def said_cpus(quota: float) -> str:
    """A quota in words: "1 CPU", "1.5 CPUs"."""
    return f"{quota:g} CPU" + ("" if quota == 1 else "s")
