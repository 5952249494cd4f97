"""How long OpenMP threads spin before they sleep: chosen before torch (and its libgomp) loads.

torch's CPU kernels (and ours, through ``at::parallel_for``) run in OpenMP parallel regions.
A thread that finishes its share waits for the others at the region's end, and then for
the next region. GNU libgomp, which the torch CPU wheels use, spins busily for that wait:
300,000 rounds by default (up to milliseconds) before it sleeps. On an idle machine this
makes the next region start at once. Where anything else runs (another training, a
compiler, a data-loading worker) a waiting thread burns the time slice its preempted
sibling needs, and every region ends only when the scheduler gets back to that sibling.

Measured on a 2-core machine, ``digits-32`` training iterations (ms each; 2 threads unless
said; ``benchmarks/results/digits-experiments.md``, tenth round):

- two ``python -c "while True: pass"`` running: 815-820 with libgomp's spinning, 640-1040
  with 10,000 rounds, 425-455 sleeping at once (``GOMP_SPINCOUNT=0``), 375-467 on one thread;
- idle: sleeping at once made an iteration 45% slower than libgomp's spinning at 8x8 and
  14% at 32x32 (medians of five side-by-side rounds), 10,000 rounds 9% and 1%.

No single setting is right for both, and libgomp reads its settings once, when it is loaded
(``import torch``). :func:`choose_wait` therefore looks before that: when other work is
runnable on this machine (``procs_running`` of ``/proc/stat``, sampled a few times over
~10 ms, and when that finds any, again over ~200 ms: :func:`others_at_start`) and would share
the cores torch's threads use, it sets ``GOMP_SPINCOUNT=0`` (threads sleep as soon as they
wait); on an idle machine it leaves libgomp's spinning as it is.
``import alae_fast`` runs it first thing when torch is not imported yet. The wait policy
changes no result (only how threads wait), so a run stopped and resumed under the other
policy continues bit-identically; :class:`ContentionWatch` lets a long run say when work
that started after it now competes for the cores, or when the work that made it choose sleeping
threads has ended (idle, sleeping at once made a 4 kimg ``digits-32`` run's training 1.7x
slower). Nothing is changed when the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``, or
when ``ALAE_FAST_OMP_SPIN=keep``. The benchmark case ``alae-fast bench --ops train_load``
measures the defaults with and without competing work.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from ._words import plural

__all__ = ["SLEEP_SPIN_COUNT", "CONFIRM_SAMPLES", "CONFIRM_INTERVAL_S", "choice", "choose_wait", "others_at_start",
           "own_running", "others_running", "OthersBusy", "cores_shared", "usable_cpus", "ContentionWatch"]

# libgomp spins this many rounds of its pause loop when other work was found running
SLEEP_SPIN_COUNT = 0

# what choose_wait() found and did in this process, for the training's start-up note
_CHOICE: dict | None = None

# The second look of others_at_start: 41 readings 5 ms apart. On an idle 2-core VM (2026-12-07),
# /proc/stat read every 2 ms for 10 s showed another runnable thread in 1% of the readings, in
# streaks of up to 3 readings (kernel threads and daemons waking); the first look's median of 5
# readings over 8 ms can fall on such a streak, and one did: a `digits-32` run
# (`alae-fast train --r1-interval 4`), started on the idle machine, chose sleeping threads and
# took 523 s where the same run with spinning threads takes about 250.
CONFIRM_SAMPLES, CONFIRM_INTERVAL_S = 41, 0.005


def _stat_fields(path: str) -> list[bytes] | None:
    """The fields of a ``/proc/<pid>[/task/<tid>]/stat`` file from the state (field 3) on, or None
    where it cannot be read (the process or thread ended). They follow the last ')': the command
    name before it may hold spaces or parentheses."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    end = data.rfind(b")")
    return data[end + 2:].split() if end >= 0 else None


def _clock_ticks() -> int:
    """Clock ticks a second, the unit of ``/proc``'s CPU times (100 where it cannot be asked)."""
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


def own_running(task_dir: str = "/proc/self/task") -> int | None:
    """How many of this process's threads are runnable now (state ``R`` in each
    ``/proc/self/task/<tid>/stat``), the calling thread included; None where the directory
    cannot be read (not Linux)."""
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return None
    running = 0
    for tid in tids:
        fields = _stat_fields(os.path.join(task_dir, tid, "stat"))  # None: the thread ended meanwhile
        if fields and fields[0] == b"R":
            running += 1
    return running


def others_running(samples: int = 5, interval_s: float = 0.002, stat_path: str = "/proc/stat",
                   task_dir: str = "/proc/self/task") -> int | None:
    """How many threads of other processes are runnable on this machine: the median over
    ``samples`` readings of ``procs_running`` (Linux ``/proc/stat``), ``interval_s`` seconds
    apart, each less this process's own runnable threads at that moment (:func:`own_running`;
    at least the reading thread itself). None where ``stat_path`` cannot be read (not Linux).

    ``procs_running`` counts runnable threads at the moment of reading, machine-wide (a busy
    loop always counts, an idle daemon does not); the median keeps one passing wake-up from
    deciding. This process's own threads are taken off because, during a run, torch's OpenMP
    workers spin (runnable) between parallel regions: counting them would call an idle
    machine shared."""
    counts = []
    for i in range(max(1, samples)):
        if i:
            time.sleep(interval_s)
        try:
            with open(stat_path, encoding="ascii") as f:
                line = next((ln for ln in f if ln.startswith("procs_running ")), None)
        except OSError:
            return None
        if line is None:
            return None
        own = own_running(task_dir)
        counts.append(int(line.split()[1]) - max(1, own or 0))
    return max(0, int(statistics.median(counts)))


def _own_cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of its live child processes (data-loading
    workers; ``/proc/<pid>/stat`` utime + stime, which ``os.times`` gives only for children that
    ended)."""
    total = time.process_time()
    try:
        import multiprocessing

        children = multiprocessing.active_children()
    except Exception:  # no multiprocessing support here
        children = []
    for child in children:
        fields = _stat_fields(f"/proc/{child.pid}/stat") if child.pid is not None else None
        if fields:
            total += (int(fields[11]) + int(fields[12])) / _clock_ticks()  # utime and stime, fields 14 and 15
    return total


class OthersBusy:
    """How many cores other processes kept busy since the previous call, time-averaged: the
    machine's busy CPU time (``/proc/stat``'s ``cpu`` line: user, nice, system, irq, softirq)
    less this run's own (``time.process_time``, every thread, its spinning waits included, and its
    live child processes: ``--workers`` data loaders), less ``siblings`` cores (the other ranks of
    a torchrun job on this machine: their threads times their count), over the wall time between
    the calls, rounded to the nearest core (a competitor that gets two thirds of a core beside two
    spinning threads is one thread that wants a core; softirq time of a job's own traffic is
    not). Unlike
    :func:`others_running`, which sees the instant it reads, it counts work that comes and goes
    between readings: a new user's run of ~40 short commands one after another, beside a
    training that went 25x slower, fell between 2 ms samples. Only the CPUs this process may run
    on are read (``cpus``: CPU numbers, default its affinity mask; "all", or an unknown mask: the
    machine's total line). ``None``
    where ``/proc/stat`` cannot be read, and for a call less than ``min_s`` seconds after the
    previous one (too short a window to say)."""

    def __init__(self, stat_path: str = "/proc/stat", clock=time.monotonic, own=None,
                 min_s: float = 1.0, cpus=None, siblings: float = 0.0):
        self.stat_path, self.clock, self.min_s, self.siblings = stat_path, clock, min_s, siblings
        self.own = own if own is not None else _own_cpu_seconds
        self.hz = _clock_ticks()
        if cpus is None:
            try:
                cpus = os.sched_getaffinity(0)
            except (AttributeError, OSError):
                cpus = "all"
        # the per-CPU lines of the CPUs this process may run on: work on the others (a container's
        # neighbours on a large host, whose /proc/stat is the host's) does not compete for its cores
        self.lines = None if cpus == "all" else {f"cpu{c}" for c in cpus}
        self.prev = self._sample()

    def _sample(self):
        try:
            with open(self.stat_path, encoding="ascii") as f:
                text = f.read()
        except OSError:
            return None
        busy, seen = 0, False
        for line in text.splitlines():
            head = line.split(" ", 1)[0]
            if (head in self.lines) if self.lines is not None else head == "cpu":
                v = [int(x) for x in line.split()[1:8]]
                # user nice system idle iowait irq softirq: idle and iowait are not busy; steal
                # (8th) is the hypervisor's, not this machine's processes'; guest is inside user
                busy += v[0] + v[1] + v[2] + v[5] + v[6]
                seen = True
        if not seen:
            return None
        return self.clock(), busy / self.hz, self.own()

    def __call__(self) -> int | None:
        cur = self._sample()
        if cur is None or self.prev is None:
            self.prev = cur
            return None
        dt = cur[0] - self.prev[0]
        if dt < self.min_s:
            return None
        cores = ((cur[1] - self.prev[1]) - (cur[2] - self.prev[2])) / dt - self.siblings
        self.prev = cur
        return max(0, int(cores + 0.5))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; every CPU where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on this platform
        return os.cpu_count() or 1


def _expected_threads(env) -> int:
    """The OpenMP threads torch will use: ``OMP_NUM_THREADS`` when set, else every usable CPU
    (torch's default is the physical cores, at most that; counting all of them errs towards
    calling a machine busy; also under a CPU quota, whose fewer threads the CLI's commands take
    but the Python API does not: :mod:`alae_fast._cpu_quota`)."""
    try:
        n = int(str(env.get("OMP_NUM_THREADS", "")).split(",")[0])
        if n >= 1:
            return n
    except ValueError:
        pass
    return usable_cpus()


def cores_shared(others: int | None, threads: int, cpus: int) -> bool:
    """Whether ``others`` runnable threads and ``threads`` of ours need more than ``cpus``
    cores (and ours are more than one: a single thread never waits for a sibling)."""
    return others is not None and threads > 1 and others + threads > cpus


def others_at_start(threads: int, cpus: int, read=others_running) -> int | None:
    """Other runnable threads at a process's start, as :func:`choose_wait` counts them: a quick
    look (:func:`others_running`'s 5 readings over ~10 ms), and only when that finds the cores
    shared (:func:`cores_shared`) a second, longer one (``CONFIRM_SAMPLES`` readings
    ``CONFIRM_INTERVAL_S`` apart, ~200 ms), whose median is the answer: work that keeps running
    (a training, a compiler, a busy loop) is runnable in most readings of both, a passing wake-up
    in few. An idle machine pays the quick look only. ``read`` (tests) replaces
    :func:`others_running` (called with no arguments, then with ``samples`` and ``interval_s``);
    None where it cannot count."""
    others = read()
    if cores_shared(others, threads, cpus):
        others = read(samples=CONFIRM_SAMPLES, interval_s=CONFIRM_INTERVAL_S)
    return others


def choose_wait(environ=None, others: int | None = -1) -> str | None:
    """Set ``GOMP_SPINCOUNT`` in ``environ`` (default ``os.environ``) to ``SLEEP_SPIN_COUNT``
    when other runnable work would share the cores torch's threads use; leave libgomp's own
    spinning on an idle machine.

    Args:
        environ: the environment to change (default ``os.environ``; then only while torch is
            not imported yet, since libgomp reads it when torch loads).
        others: the other runnable threads (default -1: count them with
            :func:`others_at_start`; None: unknown, nothing is changed).

    Returns:
        The value set, or None when nothing was changed (an idle machine, torch already
        imported, the user's own ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``,
        ``ALAE_FAST_OMP_SPIN=keep``, or no way to count runnable threads).
    """
    global _CHOICE
    env = os.environ if environ is None else environ
    if "torch" in sys.modules and environ is None:
        return None
    if env.get("ALAE_FAST_OMP_SPIN", "").strip().lower() == "keep":
        return None
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    threads, cpus = _expected_threads(env), usable_cpus()
    if others == -1:
        others = others_at_start(threads, cpus)
    busy = cores_shared(others, threads, cpus)
    if environ is None:
        _CHOICE = {"others": others, "threads": threads, "cpus": cpus, "sleep": busy}
    if not busy:
        return None
    env["GOMP_SPINCOUNT"] = str(SLEEP_SPIN_COUNT)
    return env["GOMP_SPINCOUNT"]


def choice() -> dict | None:
    """What :func:`choose_wait` found when ``import alae_fast`` ran it: ``{"others", "threads",
    "cpus", "sleep"}`` (``sleep``: threads were set to sleep at once), or None when it did
    not look (torch was imported first, or the user configured the wait)."""
    return None if _CHOICE is None else dict(_CHOICE)


class ContentionWatch:
    """Tells a long run, once, that the wait chosen when it started no longer suits the machine:
    work which started after it now competes for the cores while libgomp's threads still spin
    (the wait was chosen for an idle machine), or the work that competed when it started has
    ended while its threads still sleep at once (idle, that made ``digits-32``'s 8x8 iterations
    45% slower). libgomp reads the wait once, at start: the note says how to get the other one.

    :meth:`check` is cheap (one read of ``/proc/stat`` at most every ``every_s`` seconds; the loop
    calls it after every iteration); it returns a note the first time ``needed`` readings in a row
    found the cores shared (or free, for a sleeping wait), else None. A reading is the other
    processes' CPU time over the seconds since the last (:class:`OthersBusy`). ``threads`` is
    torch's thread count; ``ranks``: this job's processes on this machine (torchrun's
    ``LOCAL_WORLD_SIZE``), whose threads are not other work; ``resume``: the command that
    continues the run, which the note prefixes with the wait to take (``GOMP_SPINCOUNT=0``, or
    ``ALAE_FAST_OMP_SPIN=keep``), so that the next process takes it whatever it sees at its start
    (which reads the machine for ~10 ms, ~200 ms when that finds it shared: work that comes and
    goes may be missed then too); ``read`` (tests) replaces :class:`OthersBusy`.
    """

    def __init__(self, threads: int, every_s: float = 10.0, needed: int = 3, read=None, clock=time.monotonic,
                 resume: str = "alae-fast train --resume --out RUN", ranks: int = 1):
        self.threads, self.every_s, self.needed, self.resume = threads, every_s, needed, resume
        self.read = read or OthersBusy(siblings=float((ranks - 1) * threads))
        self.clock = clock
        self.cpus = usable_cpus()
        self.streak, self.told, self.t_last = 0, False, None
        chosen = choice()
        # only a wait alae_fast chose: the user's own settings stay as they are, unremarked
        self.active = chosen is not None and threads > 1
        self.sleeping = bool(chosen and chosen["sleep"])

    def check(self) -> str | None:
        if not self.active or self.told:
            return None
        now = self.clock()
        if self.t_last is not None and now - self.t_last < self.every_s:
            return None
        self.t_last = now
        others = self.read()
        shared = cores_shared(others, self.threads, self.cpus)
        self.streak = self.streak + 1 if shared != self.sleeping and others is not None else 0
        if self.streak < self.needed:
            return None
        self.told = True
        if self.sleeping:
            return (f"note: the cores are free now, and this run's {self.threads} threads still sleep as soon as they "
                    f"wait (other work shared the {self.cpus} cores when the run started), which makes iterations "
                    f"up to 1.7x slower on idle cores (the small levels most). Stopping (Ctrl-C writes a "
                    f"checkpoint) and continuing with `ALAE_FAST_OMP_SPIN=keep {self.resume}` gives threads that "
                    f"spin; the results continue bit-identically")
        return (f"note: other work now keeps about {plural(others, 'core')} of {self.cpus} busy beside this run's "
                f"{self.threads} threads, which still spin while they wait (the machine was idle when the run "
                f"started), and that can make each iteration several times slower. Stopping (Ctrl-C writes a "
                f"checkpoint) and continuing with `GOMP_SPINCOUNT=0 {self.resume}` gives threads that sleep "
                f"as soon as they wait; the results continue bit-identically")
