"""Threads under a CPU quota (``docker run --cpus``): the quota read from made-up cgroup trees of
both versions, and from the kernel's own where this machine lets a test make a cgroup.

torch starts one thread per core of the host whatever the quota; a container limited to 1 CPU on
a 2-core machine ran the default ``alae-fast train --kimg 2`` in 27.8 s with torch's 2 threads and
17.3 s with 1 (session 36, a helper's install running beside it)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from alae_fast._cpu_quota import cpu_quota, quota_threads, said_cpus, threads_for_quota


def _mountinfo(*mounts: tuple[str, str, str, str]) -> str:
    """mountinfo lines for (root, mount point, fstype, super options)."""
    return "".join(f"{30 + i} 23 0:{28 + i} {root} {point} rw,relatime shared:{i} - {fs} {fs} {opts}\n"
                   for i, (root, point, fs, opts) in enumerate(mounts))


def _tree(tmp_path: Path, cgroup: str, mounts, files: dict[str, str]) -> dict:
    """A /proc/self folder and a cgroup file system under tmp_path, as cpu_quota's arguments;
    mount points in ``mounts`` and keys of ``files`` are relative to tmp_path."""
    proc = tmp_path / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(_mountinfo(*[(r, str(tmp_path / p), fs, o) for r, p, fs, o in mounts]))
    for rel, text in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text + "\n")
    return dict(proc_cgroup=proc / "cgroup", mountinfo=proc / "mountinfo")


def test_cgroup_v2_takes_the_tightest_of_the_cgroup_and_its_ancestors(tmp_path):
    proc = _tree(tmp_path, "0::/user.slice/job/step\n", [("/", "cg", "cgroup2", "rw,nsdelegate")], {
        "cg/cpu.max": "max 100000",  # the root has none
        "cg/user.slice/cpu.max": "250000 100000",
        "cg/user.slice/job/cpu.max": "150000 100000",  # the parent binds the child
        "cg/user.slice/job/step/cpu.max": "max 100000",
    })
    assert cpu_quota(**proc) == 1.5


def test_cgroup_v1_reads_the_cpu_hierarchy_among_the_others(tmp_path):
    proc = _tree(tmp_path, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
                 [("/", "cg/memory", "cgroup", "rw,memory"), ("/", "cg/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
                  ("/", "cg/unified", "cgroup2", "rw")], {
                     "cg/cpu,cpuacct/cpu.cfs_quota_us": "-1", "cg/cpu,cpuacct/cpu.cfs_period_us": "100000",
                     "cg/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
                     "cg/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
                     # a memory limit, or cpu.max of a v2 hierarchy without the cpu controller, is no CPU quota
                     "cg/memory/docker/abc/cpu.cfs_quota_us": "50000", "cg/memory/docker/abc/cpu.cfs_period_us": "100000",
                 })
    assert cpu_quota(**proc) == 3.0


def test_a_container_sees_its_own_cgroup_as_the_mount_root(tmp_path):
    # without a cgroup namespace, /proc/self/cgroup names the host's path; the container's own
    # cgroup is mounted at the mount point (mountinfo's root field says which)
    proc = _tree(tmp_path, "0::/system.slice/docker-1.scope\n",
                 [("/system.slice/docker-1.scope", "cg", "cgroup2", "rw")], {"cg/cpu.max": "200000 100000"})
    assert cpu_quota(**proc) == 2.0
    # with a namespace the path is "/" and the same folder holds it
    proc2 = _tree(tmp_path / "ns", "0::/\n", [("/", "cg", "cgroup2", "rw")], {"cg/cpu.max": "50000 100000"})
    assert cpu_quota(**proc2) == 0.5


@pytest.mark.parametrize("files", [
    {"cg/cpu.max": "max 100000"},
    {"cg/cpu.max": "garbage"},
    {"cg/cpu.max": "0 100000"},
    {"cg/cpu.max": "100000 0"},
    {},
])
def test_no_quota_or_an_unreadable_one_is_none(tmp_path, files):
    proc = _tree(tmp_path, "0::/\n", [("/", "cg", "cgroup2", "rw")], files)
    assert cpu_quota(**proc) is None


def test_no_proc_files_is_none(tmp_path):
    assert cpu_quota(tmp_path / "absent") is None


@pytest.mark.parametrize("quota,threads", [(0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (None, None)])
def test_quota_threads_rounds_up(monkeypatch, quota, threads):
    import alae_fast._cpu_quota as q

    monkeypatch.setattr(q, "cpu_quota", lambda: quota)
    assert quota_threads() == threads


def test_threads_for_quota_keeps_torchs_count_and_the_users(monkeypatch):
    import alae_fast._cpu_quota as q

    monkeypatch.setattr(q, "quota_threads", lambda: 2)
    assert threads_for_quota(32, environ={}) == 2
    assert threads_for_quota(2, environ={}) is None  # torch's count is within the quota already
    assert threads_for_quota(32, environ={"OMP_NUM_THREADS": "8"}) is None  # the user's (or torchrun's) count
    monkeypatch.setattr(q, "quota_threads", lambda: None)
    assert threads_for_quota(32, environ={}) is None
    assert said_cpus(1.0) == "1 CPU" and said_cpus(1.5) == "1.5 CPUs"


def _writable_cpu_cgroup() -> tuple[Path, str] | None:
    """A folder where a child cgroup with a CPU quota can be made here, and its version."""
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists() and os.access(v1, os.W_OK):
        return v1, "v1"
    v2 = Path("/sys/fs/cgroup")
    control = v2 / "cgroup.subtree_control"
    if control.exists() and "cpu" in control.read_text().split() and os.access(v2, os.W_OK):
        return v2, "v2"
    return None


@pytest.mark.skipif(_writable_cpu_cgroup() is None, reason="no cgroup this test may make a CPU quota in")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a quota of 1 CPU changes nothing on one core")
def test_the_kernels_own_quota_sets_the_cli_threads():
    parent, version = _writable_cpu_cgroup()
    group = parent / f"alae-fast-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        if version == "v1":
            (group / "cpu.cfs_period_us").write_text("100000")
            (group / "cpu.cfs_quota_us").write_text("100000")
            procs = group / "tasks"
        else:
            (group / "cpu.max").write_text("100000 100000")
            procs = group / "cgroup.procs"
        code = ("import torch; before = torch.get_num_threads(); "
                "from alae_fast._cpu_quota import cpu_quota; from alae_fast.cli import _threads_for_quota; "
                "_threads_for_quota(); print(cpu_quota(), before, torch.get_num_threads())")
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        # the shell moves itself into the cgroup, then becomes the Python that reads it
        out = subprocess.run(["sh", "-c", f'echo $$ > "{procs}" && exec "{sys.executable}" -c "{code}"'],
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        quota, before, after = out.stdout.split()
        assert float(quota) == 1.0
        assert int(before) >= 2 and int(after) == 1
        out = subprocess.run(["sh", "-c", f'echo $$ > "{procs}" && exec "{sys.executable}" -c "{code}"'],
                             capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "2"}, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[1:] == ["2", "2"]  # the user's count is kept
    finally:
        group.rmdir()  # its processes have exited


def test_the_usual_layout_without_a_mount_table(tmp_path):
    # systemd's hybrid layout (v1 cpu at root/cpu, v2 at root/unified without the cpu controller)
    (tmp_path / "cgroup").write_text("4:cpu,cpuacct:/svc\n0::/svc\n")
    for rel, text in {"cpu/svc/cpu.cfs_quota_us": "50000", "cpu/svc/cpu.cfs_period_us": "100000",
                      "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}.items():
        (tmp_path / "sys" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys" / rel).write_text(text)
    assert cpu_quota(tmp_path / "cgroup", root=tmp_path / "sys") == 0.5


def test_explicit_threads_beyond_the_cores_under_torchrun_are_said(monkeypatch):
    # a new user's trial: 2 torchrun processes x --threads 2 on 2 cores trained at 6 img/s, 1 thread
    # each at 110-190, and only the resume's thread note was printed
    import torch

    import alae_fast.training.run as run_mod
    from alae_fast.training.options import TrainOptions

    said = []
    before = torch.get_num_threads()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(run_mod, "usable_cpus", lambda: 2)
    try:
        run_mod._apply_threads(TrainOptions(threads=2), said.append)
        assert said == ["note: --threads 2 in each of 2 processes on this machine is 4 threads for 2 usable CPUs: "
                        "they wait for each other's turns, several times slower than 1 a process"]
        said.clear()
        run_mod._apply_threads(TrainOptions(threads=1), said.append)
        assert said == []
    finally:
        torch.set_num_threads(before)
