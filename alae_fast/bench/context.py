"""What a benchmark run's figures depend on: the machine, the build, the settings and the load.

:func:`run_context` gathers it once at the start of ``alae-fast bench``; the JSON report
carries it whole and the first stdout line the parts a reader compares first.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from .._words import plural

__all__ = ["cpu_model", "cpu_flags", "kernel_isa", "omp_wait", "fused_kernels", "run_context", "format_header"]

# GCC's x86-64 micro-architecture levels in /proc/cpuinfo's flag names (lzcnt is "abm"): what
# target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default") tests to pick a clone.
_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
# Environment variables that change what the kernels or the reference do, or how threads wait.
_ENV = ("ALAE_FAST_IMPL", "ALAE_FAST_KEEP_MEMORY", "ALAE_FAST_OMP_SPIN", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
        "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "CUDA_VISIBLE_DEVICES")


def _cpuinfo(path: str | os.PathLike = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name: the first ``model name`` (x86) or ``Hardware``/``Processor`` (ARM) line
    of /proc/cpuinfo (or of ``cpuinfo``, its text), else ``platform.processor()``; ``'unknown'``
    when none says it."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for key in ("model name", "Hardware", "Processor"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or "unknown"


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (or ``cpuinfo``, its text);
    empty where the file has none (not Linux, not x86)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "flags":
            return set(value.split())
    return set()


def kernel_isa(info: dict, flags: set[str] | None = None, machine: str | None = None) -> dict:
    """The instruction set alae_fast's CPU kernels run on this machine.

    info: :func:`alae_fast.build_info`'s dict (its ``compiler`` and ``sanitize`` decide whether
    the loops were multiversioned); flags: the CPU's flags (default :func:`cpu_flags`);
    machine: ``platform.machine()`` by default. The library does not report the clone it runs,
    so this applies its rule (``csrc/cpu/multiversion.h``: GCC target_clones x86-64-v4, v3 and
    the baseline; ``csrc/cpu/upfirdn2d.cpp``: AVX2+FMA kernels when the CPU has both) to the
    flags. Returns ``{"elementwise_loops": str, "upfirdn2d": str, "how": str}``.
    """
    flags = cpu_flags() if flags is None else flags
    machine = platform.machine() if machine is None else machine
    how = "inferred from the CPU flags by the build's dispatch rule (the library does not report it)"
    if machine not in ("x86_64", "AMD64"):
        return {"elementwise_loops": f"{machine}: compiled once for the build target",
                "upfirdn2d": f"{machine}: compiled once for the build target", "how": how}
    if not flags:
        unknown = "unknown (no CPU flags readable in /proc/cpuinfo)"
        return {"elementwise_loops": unknown, "upfirdn2d": unknown, "how": how}
    compiler = str(info.get("compiler") or "")
    if info.get("sanitize"):
        loops = "x86-64 baseline (a sanitizer build compiles each loop once)"
    elif not compiler.startswith("gcc"):
        loops = f"x86-64 baseline (no target_clones with compiler {compiler or 'unknown'})"
    elif _V4 <= flags:
        loops = "x86-64-v4 (AVX-512)"
    elif _V3 <= flags:
        loops = "x86-64-v3 (AVX2, FMA)"
    else:
        loops = "x86-64 baseline (SSE2)"
    ufd = "AVX2+FMA" if {"avx2", "fma"} <= flags else "x86-64 baseline (SSE2)"
    return {"elementwise_loops": loops, "upfirdn2d": ufd, "how": how}


_UNSET = object()


def omp_wait(environ=None, chosen=_UNSET) -> dict:
    """How libgomp's threads wait in this process, and who decided it.

    ``import alae_fast`` picks the wait before torch loads libgomp (see :mod:`alae_fast._omp`),
    and the two waits change small cases' times several-fold, so a report must say which one
    it ran under; ``GOMP_SPINCOUNT`` alone cannot tell alae_fast's choice from a user's.
    environ: the environment (default ``os.environ``); chosen: what the import found
    (default :func:`alae_fast._omp.choice`; None when it did not look).

    Returns ``{"wait", "set_by", "why", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "import_check"}``:
    ``wait`` in words (e.g. "sleep at once (GOMP_SPINCOUNT=0)"), ``set_by`` one of
    ``'alae_fast'``, ``'environment'`` (set before alae_fast was imported: the user's, or a
    parent process's), ``'ALAE_FAST_OMP_SPIN=keep'``, ``'torch imported first'``; ``why`` a
    sentence; the two variables as set (None when not); ``import_check``: ``chosen``.
    """
    from .._omp import choice

    env = os.environ if environ is None else environ
    chosen = choice() if chosen is _UNSET else chosen
    spin, policy = env.get("GOMP_SPINCOUNT"), env.get("OMP_WAIT_POLICY")
    # libgomp takes GOMP_SPINCOUNT over OMP_WAIT_POLICY when both are set
    if spin is not None:
        wait = "sleep at once (GOMP_SPINCOUNT=0)" if spin.strip() == "0" else \
            f"spin {spin} rounds, then sleep (GOMP_SPINCOUNT={spin})"
    elif policy is not None:
        wait = {"passive": "sleep at once", "active": "spin"}.get(policy.strip().lower(), "as libgomp reads it")
        wait += f" (OMP_WAIT_POLICY={policy})"
    else:
        wait = "libgomp's default: spin up to 300,000 rounds, then sleep"
    if chosen is not None:
        set_by = "alae_fast"
        seen = ("runnable threads could not be counted (no /proc/stat)" if chosen["others"] is None else
                f"{plural(chosen['others'], 'other runnable thread')} seen beside {chosen['threads']} OpenMP "
                f"threads on {chosen['cpus']} usable cores")
        why = f"chosen by alae_fast at import: {seen}" + ("" if chosen["sleep"] else
                                                          ", so the cores did not look shared")
    elif spin is not None or policy is not None:
        set_by = "environment"
        why = "set in the environment before alae_fast was imported (the user's or a parent process's; alae_fast keeps it)"
    elif env.get("ALAE_FAST_OMP_SPIN", "").strip().lower() == "keep":
        set_by = "ALAE_FAST_OMP_SPIN=keep"
        why = "ALAE_FAST_OMP_SPIN=keep: alae_fast left libgomp's default as it is"
    else:
        set_by = "torch imported first"
        why = "torch was imported before alae_fast, so alae_fast did not choose (libgomp had read its settings)"
    return {"wait": wait, "set_by": set_by, "why": why, "GOMP_SPINCOUNT": spin, "OMP_WAIT_POLICY": policy,
            "import_check": chosen}


def fused_kernels(device: torch.device, info: dict) -> str | None:
    """Why the ``fused`` candidates do not time alae_fast's kernels on ``device``, as one line,
    or None when they do. info: :func:`alae_fast.build_info`'s dict.

    The ops fall back to their PyTorch references when ALAE_FAST_IMPL=ref was set at import,
    when the compiled library did not load, or when it has no kernels for the device; a run
    then times the reference against itself under the labels "fused" and "ref/fused".
    """
    from ..ops import _dispatch

    consequence = ("every fused candidate runs the PyTorch reference, so 'fused' and 'ref/fused' time the "
                   "reference against itself and the targets say nothing about the kernels")
    if _dispatch._FORCE_REF:  # what the ops read, once, at import (not the environment now)
        return f"the fused kernels are not being measured because ALAE_FAST_IMPL=ref: {consequence} " \
               f"(unset ALAE_FAST_IMPL to time them)"
    if not info.get("loaded"):
        return f"the fused kernels are not being measured because the compiled library did not load " \
               f"({info.get('error')}): {consequence}"
    if device.type == "cuda" and not info.get("cuda"):
        return f"the fused kernels are not being measured on {device} because this build has no CUDA kernels: " \
               f"{consequence}"
    return None


def run_context(argv: list[str], device: torch.device, **settings) -> dict:
    """Everything a reader of a report needs to trust and compare it, as a JSON-able dict.

    argv: the arguments ``alae-fast bench`` was given (for ``command``); device: the device
    timed; settings: the run's own (``rounds``, ``quick``, ``compile``, ``mode``...), copied
    in as given. Keys: ``date_utc`` (ISO 8601), ``command``, ``argv`` (the process's),
    ``torch``, ``alae_fast``, ``build_info``, ``cpu_model``, ``kernel_isa`` (see
    :func:`kernel_isa`), ``torch_cpu_capability``, ``logical_cores``, ``usable_cores`` (this
    process's affinity), ``torch_threads``, ``load_average`` (1, 5, 15 min; None where the
    OS has none), ``device``, ``gpu`` (name or None), ``python``, ``platform``, ``env`` (the
    variables of :data:`_ENV` that are set), ``omp_wait`` (see :func:`omp_wait`),
    ``fused_kernels_measured`` (bool; see :func:`fused_kernels`), ``warnings`` (lines the
    report says before its figures: why the fused kernels are not measured; [] when none),
    then ``settings``.
    """
    from .. import __version__, build_info

    info = build_info()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        capability = None
    ctx = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["alae-fast", "bench", *argv]),
        "argv": list(sys.argv),
        "torch": torch.__version__,
        "alae_fast": __version__,
        "build_info": info,
        "cpu_model": cpu_model(),
        "kernel_isa": kernel_isa(info),
        "torch_cpu_capability": capability,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "env": {k: os.environ[k] for k in _ENV if k in os.environ},
        "omp_wait": omp_wait(),
    }
    not_fused = fused_kernels(device, info)
    ctx["fused_kernels_measured"] = not_fused is None
    ctx["warnings"] = [not_fused] if not_fused else []
    ctx.update(settings)
    return ctx


def format_header(ctx: dict) -> str:
    """The stdout header of a run: device, CPU model, cores, threads, load, rounds (when the
    context has them), the kernels' instruction set, the build, and the OpenMP wait with who
    chose it (when the context has it), from :func:`run_context`'s dict."""
    info = ctx["build_info"]
    load = "/".join(f"{x:.2f}" for x in ctx["load_average"]) if ctx["load_average"] else "unknown"
    first = (f"alae_fast bench: device={ctx['device']} cpu={ctx['cpu_model']!r} cores={ctx['logical_cores']} "
             f"(usable {ctx['usable_cores']}) threads={ctx['torch_threads']} load(1/5/15 min)={load}")
    if ctx.get("rounds") is not None:
        first += f" rounds={ctx['rounds']}"
    if "quick" in ctx:
        first += f" quick={ctx['quick']}"
    if "compile" in ctx:
        first += f" compile={ctx['compile']}"
    isa = ctx["kernel_isa"]
    lines = [first,
             f"  torch={ctx['torch']} (cpu capability {ctx['torch_cpu_capability']}) alae_fast={ctx['alae_fast']} "
             f"kernels loaded={info['loaded']} cuda={info['cuda']} impl={info['default_impl']} "
             f"compiler={info.get('compiler')}"
             + (f" malloc keeps freed memory={ctx['keep_freed_memory']} (ALAE_FAST_KEEP_MEMORY)"
                if "keep_freed_memory" in ctx else ""),
             f"  kernel instruction set: loops {isa['elementwise_loops']}, upfirdn2d {isa['upfirdn2d']} "
             f"(inferred from the CPU flags)"]
    wait = ctx.get("omp_wait")
    if wait:
        lines.append(f"  openmp wait: {wait['wait']}; {wait['why']}")
    if ctx.get("gpu"):
        lines.append(f"  gpu: {ctx['gpu']}")
    cores = ctx["usable_cores"] or ctx["logical_cores"]
    if ctx["load_average"] and cores and ctx["load_average"][0] > 0.5 * cores:
        # Ratios come from the same rounds and survive a busy machine better than milliseconds do.
        lines.append(f"  note: load average {ctx['load_average'][0]:.2f} on {cores} usable cores: other processes "
                     f"compete for the CPU; milliseconds are inflated, ratios less so")
    return "\n".join(lines)
