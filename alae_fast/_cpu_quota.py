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
too), found through ``/proc/self/cgroup`` and ``/proc/self/mountinfo``. The tightest one counts.
"""

from __future__ import annotations

import math
import os

__all__ = ["cpu_quota", "quota_threads", "threads_for_quota", "said_cpus"]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_limit(folder: str) -> float | None:
    text = _read(os.path.join(folder, "cpu.max"))
    parts = text.split() if text else []
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_limit(folder: str) -> float | None:
    quota, period = _read(os.path.join(folder, "cpu.cfs_quota_us")), _read(os.path.join(folder, "cpu.cfs_period_us"))
    try:
        q, p = int(quota), int(period)
    except (TypeError, ValueError):
        return None
    return q / p if q > 0 and p > 0 else None


def _cgroup_paths(text: str) -> tuple[str | None, str | None]:
    """(the cgroup v2 path, the v1 path of the hierarchy holding the ``cpu`` controller)."""
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _folders(mount_root: str, mount_point: str, path: str) -> list[str]:
    """The folders of ``path``'s cgroup and its ancestors, down from the mount point: the cgroup
    path is relative to the hierarchy's root, of which ``mount_root`` is mounted there (a
    container sees its own cgroup as the mount's root; a path outside it maps to the mount point)."""
    root = mount_root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    elif root:
        path = ""
    folders, rel = [], path.strip("/")
    while True:
        folders.append(os.path.join(mount_point, rel) if rel else mount_point)
        if not rel:
            return folders
        rel = os.path.dirname(rel)


def cpu_quota(proc_self: str = "/proc/self") -> float | None:
    """The CPUs this process's cgroup quota allows (``quota / period``, e.g. 1.5), the tightest
    over its cgroup and their ancestors, cgroup v1 or v2; None where no quota is set or none can
    be read (not Linux, no cgroup file system mounted, ``proc_self`` unreadable). Never raises.

    ``proc_self``: the ``/proc/<pid>`` folder to read ``cgroup`` and ``mountinfo`` from (tests
    give a made-up tree; the paths in its mountinfo are then read as given)."""
    cgroup, mountinfo = _read(os.path.join(proc_self, "cgroup")), _read(os.path.join(proc_self, "mountinfo"))
    if not cgroup or not mountinfo:
        return None
    v2, v1 = _cgroup_paths(cgroup)
    limits = []
    for line in mountinfo.splitlines():
        # ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(after) < 3:
            continue
        root, mount_point = fields[3], fields[4].replace("\\040", " ")
        if after[0] == "cgroup2" and v2 is not None:
            read, path = _v2_limit, v2
        elif after[0] == "cgroup" and v1 is not None and "cpu" in after[2].split(","):
            read, path = _v1_limit, v1
        else:
            continue
        for folder in _folders(root, mount_point, path):
            limit = read(folder)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def quota_threads(proc_self: str = "/proc/self") -> int | None:
    """``ceil(cpu_quota())``, at least 1: the threads that a quota lets run at once (a quota of
    1.5 CPUs: 2); None without a quota."""
    quota = cpu_quota(proc_self)
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


def said_cpus(quota: float) -> str:
    """A quota in words: "1 CPU", "1.5 CPUs"."""
    return f"{quota:g} CPU" + ("" if quota == 1 else "s")
