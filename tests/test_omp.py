"""The OpenMP wait is chosen before torch loads: threads sleep at once when other work shares the
cores, libgomp's spinning stays on an idle machine, and the user's settings win."""

import os
import subprocess
import sys
import time

import pytest

from alae_fast import _omp
from alae_fast._omp import SLEEP_SPIN_COUNT, ContentionWatch, choose_wait, cores_shared, others_running, own_running


def test_choose_wait_sleeps_only_when_the_cores_are_shared():
    cpus = _omp.usable_cpus()
    env = {"OMP_NUM_THREADS": "2"}
    assert choose_wait(env, others=cpus) == str(SLEEP_SPIN_COUNT)
    assert env == {"OMP_NUM_THREADS": "2", "GOMP_SPINCOUNT": str(SLEEP_SPIN_COUNT)}
    for others in (0, None):  # idle, or no /proc/stat to count from: libgomp's own spinning
        env = {"OMP_NUM_THREADS": "2"}
        assert choose_wait(env, others=others) is None and env == {"OMP_NUM_THREADS": "2"}
    env = {"OMP_NUM_THREADS": "1"}  # one thread never waits for a sibling
    assert choose_wait(env, others=cpus + 5) is None and "GOMP_SPINCOUNT" not in env


def test_choose_wait_respects_the_users_settings():
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "5"}, {"ALAE_FAST_OMP_SPIN": "keep"},
                 {"ALAE_FAST_OMP_SPIN": " KEEP "}):
        env = dict(mine)
        assert choose_wait(env, others=64) is None and env == mine


@pytest.mark.parametrize("others, threads, cpus, shared", [
    (0, 2, 2, False), (1, 2, 2, True), (2, 2, 2, True), (1, 8, 16, False), (9, 8, 16, True),
    (5, 1, 2, False), (None, 2, 2, False)])
def test_cores_shared(others, threads, cpus, shared):
    assert cores_shared(others, threads, cpus) is shared


def _tasks(tmp_path, states):
    task = tmp_path / "task"
    for tid, state in enumerate(states, 100):
        (task / str(tid)).mkdir(parents=True)
        (task / str(tid) / "stat").write_bytes(f"{tid} (pt_main (x) thr) {state} 1 2 3 4\n".encode())
    return str(task)


def test_own_running_counts_this_process_runnable_threads(tmp_path):
    assert own_running(_tasks(tmp_path, "RSRD")) == 2  # comm with spaces and parentheses
    assert own_running(str(tmp_path / "missing")) is None
    if os.path.isdir("/proc/self/task"):
        assert own_running() >= 1  # the calling thread


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_own_running_sees_a_computing_thread_of_this_process():
    # a thread in a long matrix product runs without the GIL: it and the reader are runnable
    import threading
    import torch
    stop = threading.Event()

    def work():
        a = torch.randn(384, 384)
        while not stop.is_set():
            a = torch.tanh(a @ a)

    t = threading.Thread(target=work)
    t.start()
    try:
        seen = [own_running() for _ in range(200)]
    finally:
        stop.set()
        t.join()
    assert max(seen) >= 2 and min(seen) >= 1


def test_others_running_reads_the_median_less_its_own_runnable_threads(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 4\nprocs_blocked 0\n")
    # no task listing: only the reading thread is taken off
    assert others_running(samples=3, interval_s=0, stat_path=str(stat), task_dir=str(tmp_path / "none")) == 3
    # a training process between iterations: the reader and a spinning OpenMP worker are runnable,
    # a third thread sleeps; an idle machine then reads 2 runnable threads, none of them another's
    stat.write_text("cpu  1 2 3\nprocs_running 2\nprocs_blocked 0\n")
    assert others_running(samples=3, interval_s=0, stat_path=str(stat), task_dir=_tasks(tmp_path, "RRS")) == 0
    stat.write_text("cpu  1 2 3\n")
    assert others_running(samples=2, interval_s=0, stat_path=str(stat)) is None
    assert others_running(stat_path=str(tmp_path / "missing")) is None
    if os.path.exists("/proc/stat"):  # this process itself is running: never negative
        assert others_running(samples=2, interval_s=0) >= 0


def _child(code: str, busy: int = 0, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY",
                                                              "ALAE_FAST_OMP_SPIN", "OMP_NUM_THREADS")}
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                              check=True, timeout=300).stdout.strip().splitlines()[-1]
    finally:
        for p in loops:
            p.kill()
            p.wait()


_SHOW = ("import os; from alae_fast._omp import choice; c = choice(); "
         "print(c and c['sleep'], c and c['others'], os.environ.get('GOMP_SPINCOUNT'))")


@pytest.mark.skipif(not os.path.exists("/proc/stat") or _omp.usable_cpus() < 2,
                    reason="needs Linux's /proc/stat and 2 CPUs")
def test_import_under_busy_loops_makes_threads_sleep():
    cpus = _omp.usable_cpus()
    # as many busy loops as cores, and torch told to use them all: the cores are shared
    sleep, others, spin = _child(f"import alae_fast; {_SHOW}", busy=cpus, OMP_NUM_THREADS=str(cpus)).split()
    assert sleep == "True" and int(others) >= cpus and spin == str(SLEEP_SPIN_COUNT)


def test_import_chooses_only_before_torch_and_when_not_configured():
    show = "import os; print(os.environ.get('GOMP_SPINCOUNT'))"
    assert _child(f"import torch, alae_fast; {show}", busy=2) == "None"
    assert _child(f"import alae_fast; {show}", busy=2, ALAE_FAST_OMP_SPIN="keep") == "None"
    assert _child(f"import alae_fast; {show}", busy=2, GOMP_SPINCOUNT="77") == "77"
    # whatever this machine's load: the decision and the environment agree
    sleep, others, spin = _child(f"import alae_fast; {_SHOW}").split()
    assert (sleep == "True") == (spin == str(SLEEP_SPIN_COUNT))
    assert sleep == "None" or sleep == "False" or int(others) >= 1


def test_contention_watch_tells_once_after_a_streak(monkeypatch):
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 0, "threads": 2, "cpus": 2, "sleep": False})
    monkeypatch.setattr(_omp, "usable_cpus", lambda: 2)
    readings = iter([2, 2, 0, 2, 2, 2, 2, 2])
    t = [0.0]
    watch = ContentionWatch(2, every_s=10.0, needed=3, read=lambda: next(readings), clock=lambda: t[0])
    notes = []
    for step in range(12):
        notes.append(watch.check())
        t[0] += 5.0  # two checks per reading interval: every other one reads
    said = [n for n in notes if n]
    assert len(said) == 1 and "other work now keeps about 2 cores of 2 busy" in said[0]
    # the command that makes the next process sleep whatever it sees at its start
    assert "`GOMP_SPINCOUNT=0 alae-fast train --resume --out RUN`" in said[0]
    assert notes.index(said[0]) == 10  # readings 2, 2, (0 resets), 2, 2, 2: the sixth reading, at t=50


def test_contention_watch_counts_one_core_as_one(monkeypatch):
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 0, "threads": 2, "cpus": 2, "sleep": False})
    monkeypatch.setattr(_omp, "usable_cpus", lambda: 2)
    watch = ContentionWatch(2, every_s=0.0, needed=1, read=lambda: 1)
    note = watch.check()
    assert note.startswith("note: other work now keeps about 1 core of 2 busy beside this run's 2 threads"), note


@pytest.mark.parametrize("chosen, threads", [
    ({"others": 3, "threads": 2, "cpus": 2, "sleep": True}, 2),   # threads sleep already
    (None, 2),                                                   # the user's own wait settings
    ({"others": 0, "threads": 2, "cpus": 2, "sleep": False}, 1)])  # one thread: nothing to wait for
def test_contention_watch_stays_quiet_where_it_cannot_help(monkeypatch, chosen, threads):
    monkeypatch.setattr(_omp, "_CHOICE", chosen)
    watch = ContentionWatch(threads, every_s=0.0, needed=1, read=lambda: 64)
    assert all(watch.check() is None for _ in range(5))


def test_the_training_start_note_says_what_was_chosen(monkeypatch):
    import torch

    from alae_fast.training import plan

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 3, "threads": 2, "cpus": 2, "sleep": True})
    note = plan._busy_note()
    assert "3 other runnable threads shared" in note and "GOMP_SPINCOUNT=0" in note and "changes no result" in note
    assert "ALAE_FAST_OMP_SPIN=keep" in note  # how to keep spinning when the other work was a passing one
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 1, "threads": 2, "cpus": 2, "sleep": True})
    assert plan._busy_note().startswith("note: 1 other runnable thread shared the 2 cores")
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 0, "threads": 2, "cpus": 2, "sleep": False})
    assert plan._busy_note() is None
    # not chosen (the user's settings): the load average decides, and the hint names the fixes
    monkeypatch.setattr(_omp, "_CHOICE", None)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert "--threads 1 or OMP_WAIT_POLICY=PASSIVE" in plan._busy_note()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert plan._busy_note() is None


def test_contention_watch_says_when_a_sleeping_run_finds_the_cores_free(monkeypatch):
    # a run started beside passing work (a build, a test suite) slept at once for its whole length,
    # up to 1.7x slower once the cores were free, and nothing said so
    monkeypatch.setattr(_omp, "_CHOICE", {"others": 1, "threads": 2, "cpus": 2, "sleep": True})
    monkeypatch.setattr(_omp, "usable_cpus", lambda: 2)
    readings = iter([0, 0, 1, 0, 0, None, 0, 0, 0, 0])
    watch = ContentionWatch(2, every_s=0.0, needed=3, read=lambda: next(readings))
    notes = [watch.check() for _ in range(10)]
    said = [n for n in notes if n]
    # 0, 0, (shared: reset), 0, 0, (unknown: reset), 0, 0, 0: the ninth reading
    assert len(said) == 1 and notes.index(said[0]) == 8
    assert said[0].startswith("note: the cores are free now, and this run's 2 threads still sleep") and \
        "`ALAE_FAST_OMP_SPIN=keep alae-fast train --resume --out RUN`" in said[0] and "bit-identically" in said[0]


def _stat(path, busy_jiffies, far=0):
    # /proc/stat: the total line, then per CPU (user nice system idle iowait irq softirq steal);
    # cpu0 and cpu1 hold busy_jiffies between them, cpu2 (not this process's) holds far
    user = busy_jiffies - 3
    path.write_text(f"cpu  {user + far} 0 1 900000 50 1 1 70 0 0\ncpu0 {user - 7} 0 1 450000 25 1 1 35 0 0\n"
                    f"cpu1 7 0 0 450000 25 0 0 35 0 0\ncpu2 {far} 0 0 9 0 0 0 0 0 0\nprocs_running 1\n")


def test_others_busy_counts_work_between_readings_less_this_process(tmp_path):
    # other work that came and went between two readings counts by the CPU time it took (a
    # reading of procs_running at one instant had missed a string of short commands)
    stat, t, own = tmp_path / "stat", [0.0], [0.0]
    hz = os.sysconf("SC_CLK_TCK")
    _stat(stat, 1000)
    reader = _omp.OthersBusy(str(stat), clock=lambda: t[0], own=lambda: own[0], cpus={0, 1})
    t[0], own[0] = 10.0, 20.0  # 10 s: this process used 2 cores' worth (spinning), others 0.5 core
    _stat(stat, 1000 + int(25.0 * hz))
    assert reader() == 1
    t[0], own[0] = 20.0, 40.0  # the next 10 s: others 0.2 of a core (daemons): not a thread
    _stat(stat, 1000 + int(47.0 * hz))
    assert reader() == 0
    t[0], own[0] = 30.0, 50.0  # two busy loops took the cores from this process's threads
    _stat(stat, 1000 + int(77.0 * hz))
    assert reader() == 2
    t[0], own[0] = 40.0, 70.0  # a second rank of this job on the machine (2 threads) is not other work
    _stat(stat, 1000 + int(97.0 * hz))
    ranks = _omp.OthersBusy(str(stat), clock=lambda: t[0], own=lambda: own[0], cpus={0, 1}, siblings=2.0)
    t[0], own[0] = 50.0, 80.0  # this rank 1 core, its sibling 2, others 0.4: rounds to 0
    _stat(stat, 1000 + int(131.0 * hz))
    assert ranks() == 0
    assert reader() == 1  # its last reading was at 30 s: 24 s of others' CPU in 20 s, siblings not known
    t[0] = 50.5  # too short a window to say
    assert reader() is None
    assert _omp.OthersBusy(str(tmp_path / "missing"))() is None


def test_others_busy_reads_only_the_cpus_this_process_may_use(tmp_path):
    # a container pinned to 2 CPUs of a large host reads the host's /proc/stat: work on the other
    # CPUs does not compete for its cores
    stat, t, own = tmp_path / "stat", [0.0], [0.0]
    hz = os.sysconf("SC_CLK_TCK")
    _stat(stat, 1000)
    pinned = _omp.OthersBusy(str(stat), clock=lambda: t[0], own=lambda: own[0], cpus={0, 1})
    whole = _omp.OthersBusy(str(stat), clock=lambda: t[0], own=lambda: own[0], cpus="all")
    t[0], own[0] = 10.0, 20.0  # this process used its 2 cores; 30 cores' worth ran elsewhere
    _stat(stat, 1000 + int(20.0 * hz), far=int(300.0 * hz))
    assert pinned() == 0
    assert whole() == 30


def test_others_busy_reads_this_machine(tmp_path):
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat")
    reader = _omp.OthersBusy(min_s=0.0)
    time.sleep(0.05)
    value = reader()
    assert value is None or value >= 0


def test_own_cpu_counts_live_child_processes():
    # data-loading workers (--workers) are the run's own work, not other work
    import multiprocessing

    before = _omp._own_cpu_seconds()
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_spin_for, args=(1.0,))
    child.start()
    try:
        time.sleep(0.9)
        during = _omp._own_cpu_seconds()
    finally:
        child.join()
    assert during - before >= 0.5  # the child's CPU time, though this process mostly slept


def _spin_for(seconds):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        pass


def test_a_shared_reading_is_confirmed_by_a_longer_look():
    calls = []

    def read(first, confirm):
        def reader(samples=None, interval_s=None):
            calls.append((samples, interval_s))
            return first if samples is None else confirm
        return reader

    # a passing wake-up in the quick look (1 other thread beside 2 of ours on 2 cores), gone in
    # the longer one: the machine is idle and the longer look's count is the answer
    assert _omp.others_at_start(2, 2, read(1, 0)) == 0
    assert calls == [(None, None), (_omp.CONFIRM_SAMPLES, _omp.CONFIRM_INTERVAL_S)]
    # work that keeps running is seen by both looks
    calls.clear()
    assert _omp.others_at_start(2, 2, read(1, 1)) == 1 and len(calls) == 2
    # an idle quick look, or one that cannot count, is not looked at again
    for first in (0, None):
        calls.clear()
        assert _omp.others_at_start(2, 2, read(first, 5)) == first and len(calls) == 1
    # one thread of ours never waits for a sibling: nothing to confirm
    calls.clear()
    assert _omp.others_at_start(1, 2, read(3, 0)) == 3 and len(calls) == 1
    # the longer look spans about 200 ms: longer than the few-millisecond streaks of an idle machine
    assert 0.1 <= _omp.CONFIRM_SAMPLES * _omp.CONFIRM_INTERVAL_S <= 0.5
