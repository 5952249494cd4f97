"""Benchmark cases of training on a shared CPU: OpenMP's wait policy and thread count, with and
without two competing CPU-bound processes.

Each candidate is a whole process (libgomp reads its wait settings once, when torch loads):
``python -m alae_fast.bench.train_load STEPS [THREADS]`` runs ``STEPS`` iterations of
``digits-32`` at its last level, in its training layout (channels_last), as ``alae_fast.bench.train`` does. Candidates:

- ``fused``: the defaults of ``alae-fast`` (``import alae_fast`` lets threads sleep at once
  when other work is runnable, and leaves libgomp's spinning on an idle machine, see
  ``alae_fast/_omp.py``; torch's default thread count);
- ``spin``: libgomp's own default (``ALAE_FAST_OMP_SPIN=keep``): threads spin for ms;
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE``: threads sleep at once;
- ``threads1``: the defaults with one thread.

The "under load" case starts two ``python -c "while True: pass"`` processes before every
call; its target is the issue's: the defaults within 1.5x of one thread. The idle case's
target: the defaults lose nothing (<= 1.05x) against libgomp's spinning. A third case starts
the two processes 1.5 s after the training process, when its wait is chosen already (work
that arrives during a run): it has no target, and shows what the run's note about it is for.
The times include the child's start (importing torch, about 1 s), the same for every candidate.
Every child prints the wait it chose (``alae_fast._omp.choice()``), and the report says what the
defaults chose in each case's calls: an idle case whose defaults found other work running was
not measured idle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from .harness import Case, Target

STEPS = 30
_BUSY = "while True: pass"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                             "ALAE_FAST_OMP_SPIN", "OMP_NUM_THREADS")}
    env.update(extra)
    return env


class _Child:
    """One candidate: a call runs the training process (``load`` busy processes beside it, from
    its start or ``late_s`` seconds after) and keeps the OpenMP wait the child chose (the JSON
    line it prints: ``alae_fast._omp.choice()``), so the report can say which wait the
    defaults took in each call."""

    def __init__(self, env: dict[str, str], threads: int | None, load: int, steps: int, late_s: float = 0.0):
        self.cmd = [sys.executable, "-m", "alae_fast.bench.train_load", str(steps)] + ([str(threads)] if threads else [])
        self.env, self.load, self.late_s = env, load, late_s
        self.choices: list[dict | None] = []

    def _busy(self) -> list[subprocess.Popen]:
        return [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(self.load)]

    def __call__(self) -> None:
        busy = [] if self.late_s else self._busy()
        try:
            child = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE, text=True)
            if self.late_s:
                try:
                    child.wait(self.late_s)
                except subprocess.TimeoutExpired:
                    busy = self._busy()
            out, _ = child.communicate()
            if child.returncode != 0:
                raise subprocess.CalledProcessError(child.returncode, self.cmd)
            self.choices.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else None)
        finally:
            for p in busy:
                p.kill()
                p.wait()


def wait_summary(choices: list[dict | None]) -> str:
    """How the calls' OpenMP waits were chosen, e.g. ``'libgomp's spinning in 8 of 8 calls
    (others runnable at start: 0)'``; choices: ``alae_fast._omp.choice()`` of each call (None
    where the child chose nothing: a wait set by the user, torch imported first)."""
    spin = sum(1 for c in choices if c is not None and not c.get("sleep"))
    sleep = sum(1 for c in choices if c is not None and c.get("sleep"))
    unset = len(choices) - spin - sleep
    others = sorted({c.get("others") for c in choices if c is not None}, key=lambda v: (v is None, v))
    parts = [f"{what} in {k} of {len(choices)} calls" for what, k in
             (("libgomp's spinning", spin), ("sleep at once (GOMP_SPINCOUNT=0)", sleep), ("not chosen", unset)) if k]
    return ", ".join(parts) + f" (other runnable threads seen at start: {', '.join(map(str, others)) or 'none read'})"


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """The idle and the loaded case (CPU only; none on another device)."""
    if device.type != "cpu":
        return []
    steps = STEPS // 2 if quick else STEPS
    out = []
    for load, late_s in ((0, 0.0), (2, 0.0), (2, 1.5)):
        cand = {"fused": _Child(_env(), None, load, steps, late_s),
                "spin": _Child(_env(ALAE_FAST_OMP_SPIN="keep"), None, load, steps, late_s),
                "passive": _Child(_env(OMP_WAIT_POLICY="PASSIVE"), None, load, steps, late_s),
                "threads1": _Child(_env(), 1, load, steps, late_s)}
        if late_s:
            targets = []
            name = f"digits-32 {steps} iterations (process), 2 busy processes started {late_s:g} s after it"
        elif load:
            targets = [Target("defaults <= 1.5x one thread, under 2 busy processes", "fused", "threads1", 1.5)]
            name = f"digits-32 {steps} iterations (process), 2 busy processes"
        else:
            targets = [Target("defaults <= 1.05x libgomp's spinning, idle", "fused", "spin", 1.05)]
            name = f"digits-32 {steps} iterations (process), idle"
        defaults = cand["fused"]
        # every call is a process of seconds: no warm-up calls and no calibration call, so the
        # calls go to rounds (a round's order is shuffled; the machine's speed drifts between calls)
        out.append(Case("train_load", name, cand, device, targets=targets, warmup=0, reps=1,
                        notes=lambda d=defaults: "the defaults' wait: " + wait_summary(d.choices)))
    return out


def _main(argv: list[str]) -> None:
    import alae_fast  # noqa: F401  (first: it chooses the OpenMP wait before torch is initialised)
    from .._omp import choice
    from ..cpu_allocator import keep_freed_memory
    from ..training.setups import resolve_setup
    from .train import preset_model
    from ..training.trainer import ALAETrainer

    steps = int(argv[0])
    if len(argv) > 1:
        torch.set_num_threads(int(argv[1]))
    keep_freed_memory()
    setup = resolve_setup("digits-32")
    sched = setup.schedule
    torch.manual_seed(0)
    trainer = ALAETrainer(preset_model(setup.model_config), sched, seed=0)
    trainer.images_seen = int(round(sched.kimg_to_reach(sched.max_lod) * 1000))
    phase = sched.phase(trainer.images_seen)
    x = torch.rand(phase.batch, sched.channels, sched.resolution, sched.resolution,
                   generator=torch.Generator().manual_seed(0)) * 2 - 1
    for _ in range(steps):
        trainer.step(x)
    print(json.dumps(choice()), flush=True)  # read by _Child: the wait this process chose


if __name__ == "__main__":
    _main(sys.argv[1:])
