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

__all__ = ["cpu_model", "cpu_flags", "kernel_isa", "run_context", "format_header"]

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


def run_context(argv: list[str], device: torch.device, **settings) -> dict:
    """Everything a reader of a report needs to trust and compare it, as a JSON-able dict.

    argv: the arguments ``alae-fast bench`` was given (for ``command``); device: the device
    timed; settings: the run's own (``rounds``, ``quick``, ``compile``, ``mode``...), copied
    in as given. Keys: ``date_utc`` (ISO 8601), ``command``, ``argv`` (the process's),
    ``torch``, ``alae_fast``, ``build_info``, ``cpu_model``, ``kernel_isa`` (see
    :func:`kernel_isa`), ``torch_cpu_capability``, ``logical_cores``, ``usable_cores`` (this
    process's affinity), ``torch_threads``, ``load_average`` (1, 5, 15 min; None where the
    OS has none), ``device``, ``gpu`` (name or None), ``python``, ``platform``, ``env`` (the
    variables of :data:`_ENV` that are set), then ``settings``.
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
    }
    ctx.update(settings)
    return ctx


def format_header(ctx: dict) -> str:
    """The stdout header of a run: device, CPU model, cores, threads, load, rounds (when the
    context has them), the kernels' instruction set and the build, from :func:`run_context`'s dict."""
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
    if ctx.get("gpu"):
        lines.append(f"  gpu: {ctx['gpu']}")
    cores = ctx["usable_cores"] or ctx["logical_cores"]
    if ctx["load_average"] and cores and ctx["load_average"][0] > 0.5 * cores:
        # Ratios come from the same rounds and survive a busy machine better than milliseconds do.
        lines.append(f"  note: load average {ctx['load_average'][0]:.2f} on {cores} usable cores: other processes "
                     f"compete for the CPU; milliseconds are inflated, ratios less so")
    return "\n".join(lines)
