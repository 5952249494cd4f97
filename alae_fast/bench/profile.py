"""Where one training iteration's time goes, by torch.profiler on the CPU.

:func:`iteration_breakdown` runs ``warmup`` iterations of a preset's ``ALAETrainer.step`` at
its last level (fully faded in; in the layout the preset trains in, channels_last for
``digits-32``), then profiles ``iterations`` more and sorts every op's
SELF time (time inside the op, not in the ops it calls) into:

- ``conv/GEMM``: convolutions, their backward, and matrix products (aten conv*, mkldnn*,
  convolution_backward, addmm, mm, bmm, linear's parts) - the work the ops exist to feed;
- ``alae_fast ops``: our registered ops (``alae_fast::*``: bias_act, upfirdn2d, adain,
  instance_norm_stats, modulate_weight and their gradients);
- ``optimiser``: Adam's update (``_fused_adam_``, ``_foreach_*``) and ``zero_grad``'s fills;
- ``other aten``: every other op (copies, elementwise ops, reductions, views, autograd glue);
- ``outside ops``: the wall time no op accounts for (Python, the autograd engine, dispatch).

The figure the project follows is ``non-conv / conv``: everything but conv/GEMM over
conv/GEMM (the stretch goal :data:`NON_CONV_GOAL`: <= 20%). ``alae-fast bench --profile`` prints it for ``digits-32`` at its
batch and ``celeba-128`` at batch 4.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

__all__ = ["iteration_breakdown", "format_breakdown", "goal_record", "CATEGORIES", "PROFILE_CASES", "NON_CONV_GOAL"]

CATEGORIES = ("conv/GEMM", "alae_fast ops", "optimiser", "other aten", "outside ops")
# (preset, batch or None for the preset's): what the report profiles
PROFILE_CASES = (("digits-32", None), ("celeba-128", 4))
# The project's stretch goal for non_conv_over_conv: a figure to follow, not a test to pass.
NON_CONV_GOAL = 0.20

_CONV = ("conv", "mkldnn", "addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_mkl",
         "aten::baddbmm")
_OPTIM = ("adam", "aten::_foreach", "optimizer", "aten::zero_")


def _category(name: str) -> str:
    low = name.lower()
    if "alae_fast" in low:  # the op itself, or its autograd node (GeneratedBackwardFor_alae_fast_...)
        return "alae_fast ops"
    if any(k in low for k in _CONV):
        return "conv/GEMM"
    if any(k in low for k in _OPTIM):
        return "optimiser"
    return "other aten"


def iteration_breakdown(preset: str, batch: int | None = None, iterations: int = 3, warmup: int = 2,
                        seed: int = 0) -> dict:
    """Profile ``iterations`` training steps of ``preset`` at its last level on the CPU.

    Args:
        preset: a trainable preset (``alae_fast.training.setups.list_setups()``).
        batch: the batch (None: the schedule's at the last level); int >= 1.
        iterations, warmup: steps profiled / run before profiling (ints >= 1 / >= 0).
        seed: weights and inputs.

    Returns:
        ``{"preset", "batch", "lod", "resolution", "threads", "ms_per_iteration",
        "ms": {category: ms per iteration}, "share": {category: fraction of the wall},
        "non_conv_over_conv": float, "top": [(op name, category, ms per iteration), ...]}``
        (the 12 ops of largest self time outside conv/GEMM).
    """
    from torch.profiler import ProfilerActivity, profile

    from .train import preset_model
    from ..training.setups import resolve_setup
    from ..training.trainer import ALAETrainer

    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations/warmup: expected >= 1 / >= 0; got {iterations}/{warmup}")
    setup = resolve_setup(preset)
    sched = setup.schedule
    at = int(round(sched.kimg_to_reach(sched.max_lod) * 1000))
    if batch is not None:
        if batch < 1:
            raise ValueError(f"batch: expected an int >= 1; got {batch}")
        sched = sched.replace(lod_batch=(int(batch),))
    phase = sched.phase(at)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trainer = ALAETrainer(preset_model(setup.model_config), sched, seed=seed)
        x = torch.rand(phase.batch, sched.channels, sched.resolution, sched.resolution) * 2 - 1
        trainer.images_seen = at
        for _ in range(warmup):
            trainer.step(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for _ in range(iterations):
                trainer.step(x)
            wall = time.perf_counter() - t0
    ms = defaultdict(float)
    per_op = defaultdict(float)
    for ev in prof.key_averages():
        if ev.key.startswith("ProfilerStep") or ev.key.startswith("## "):
            continue
        self_ms = ev.self_cpu_time_total / 1e3 / iterations
        ms[_category(ev.key)] += self_ms
        per_op[ev.key] += self_ms
    wall_ms = wall * 1e3 / iterations
    # the profiler's own cost inflates the wall a little; what no op accounts for is the rest
    ms["outside ops"] = max(0.0, wall_ms - sum(ms[c] for c in CATEGORIES[:4]))
    conv = ms["conv/GEMM"]
    top = sorted(((k, _category(k), v) for k, v in per_op.items() if _category(k) != "conv/GEMM"),
                 key=lambda t: -t[2])[:12]
    return {"preset": preset, "batch": phase.batch, "lod": phase.lod, "resolution": phase.resolution,
            "threads": torch.get_num_threads(), "ms_per_iteration": wall_ms,
            "ms": {c: ms[c] for c in CATEGORIES}, "share": {c: ms[c] / wall_ms for c in CATEGORIES},
            "non_conv_over_conv": (wall_ms - conv) / conv if conv > 0 else float("inf"), "top": top}


def goal_record(r: dict) -> dict:
    """The stretch goal (non-conv / conv <= :data:`NON_CONV_GOAL`) checked on a breakdown ``r``
    of :func:`iteration_breakdown`, in the form of the report's targets: ``op`` ('profile'),
    ``case``, ``target``, ``status`` ('PASS'/'FAIL'), ``column``, ``measured`` and ``bound``
    (percent), ``relation``, ``text`` (e.g. ``'79% (target <= 20%)'``), ``stretch`` (True)."""
    from .harness import format_comparison

    value = r["non_conv_over_conv"]
    passed = value <= NON_CONV_GOAL
    measured, bound = 100 * value, 100 * NON_CONV_GOAL
    return {"op": "profile", "case": f"{r['preset']} batch {r['batch']}",
            "target": f"non-conv / conv <= {bound:g}% (stretch goal)", "status": "PASS" if passed else "FAIL",
            "column": "non-conv / conv", "measured": measured, "relation": "<=", "bound": bound,
            "text": f"non-conv / conv {format_comparison(measured, '<=', bound, passed, digits=0, unit='%')}",
            "stretch": True}


def format_breakdown(r: dict) -> str:
    """The breakdown as a few lines of text, the stretch goal's PASS/FAIL among them."""
    lines = [f"{r['preset']}, batch {r['batch']}, lod {r['lod']} ({r['resolution']} px), {r['threads']} threads: "
             f"{r['ms_per_iteration']:.1f} ms per iteration (profiled)"]
    for c in CATEGORIES:
        lines.append(f"  {c:14s} {r['ms'][c]:9.2f} ms  {100 * r['share'][c]:5.1f}%")
    goal = goal_record(r)
    lines.append(f"  {goal['status']}  {goal['text']} (a stretch goal: it does not set the exit status)")
    lines.append("  largest non-conv ops (self time): " + ", ".join(
        f"{name} {v:.2f} ms" for name, _, v in r["top"][:6]))
    return "\n".join(lines)
