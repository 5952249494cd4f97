"""Benchmark cases of filtered_lrelu at StyleGAN3-T shapes (12-tap separable fu/fd, up 2 /
down 2 as for a layer that keeps its size, up 4 / down 2 as for one that doubles it), and
the peak memory of one forward+backward against the reference.

Peak memory is measured in a fresh subprocess per candidate: the growth of the process's
peak resident size (ru_maxrss) over one forward+backward, with glibc's mmap threshold fixed
at 64 KiB (MALLOC_MMAP_THRESHOLD_) so every tensor is its own mapping and is returned on free.
``python -m alae_fast.bench.filtered_lrelu`` prints those figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from ..ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_ref
from ..ops.upfirdn2d import setup_filter
from .harness import NO_COMPILE, Case, Target

# (label, x shape, up, down, padding): the padding is StyleGAN3's for a 12-tap fu and fd,
# which keeps the output the input's size (up 2 / down 2) or doubles it (up 4 / down 2).
SHAPES = [
    ("36x36 up2 down2", (4, 512, 36, 36), 2, 2, [9, 8, 9, 8]),
    ("148x148 up2 down2", (4, 256, 148, 148), 2, 2, [9, 8, 9, 8]),
    ("36x36 up4 down2", (4, 512, 36, 36), 4, 2, [23, 20, 23, 20]),
]
# StyleGAN3-R's layers downsample with a radial, hence 2-D, filter: the engine's 2-D path.
SHAPES_2D = [("36x36 up2 down2", (4, 512, 36, 36), 2, 2, [9, 8, 9, 8])]


def _filters(device):
    # Lowpass taps like StyleGAN3's 12-tap Kaiser design: a windowed sinc, separable.
    t = torch.arange(12, dtype=torch.float64) - 5.5
    taps = torch.sinc(t / 2) * torch.kaiser_window(12, periodic=False, beta=4.0, dtype=torch.float64)
    f = setup_filter(taps.float(), device=device, separable=True)
    return f, f.clone()


def _fn(impl):
    def run(x, fu, fd, b, up, down, padding):
        return filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=256.0, impl=impl)
    return run


def _ref_fn():
    # A plain function for torch.compile: the reference recipe (bias_act + upfirdn2d steps).
    def ref(x, fu, fd, b, up, down, padding):
        return filtered_lrelu_ref(x, fu, fd, b, up=up, down=down, padding=padding, clamp=256.0)
    return ref


def _forward_candidates(x, args, fused, ref, compiled) -> dict:
    """fused, ref, copy (a copy_ of x) and, when ``compiled`` is not None, compiled: each called
    on x and args. Built in a function of their own, so that each case's lambdas close over its
    own x and args: lambdas written in the cases' loop read the loop's last shape when called,
    and every forward case timed that one."""
    src, dst = x.clone(), torch.empty_like(x)
    cand = {"fused": lambda: fused(x, *args), "ref": lambda: ref(x, *args), "copy": lambda: dst.copy_(src)}
    if compiled is not None:
        cand["compiled"] = lambda: compiled(x, *args)
    return cand


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """Candidates fused, ref (eager reference), compiled (torch.compile of ref; unless not
    ``compile``), and for the forward cases copy (a copy_ of the input); forward and
    forward+backward (x and b) of SHAPES, and (unless ``quick``) the forward of SHAPES_2D with a
    2-D fd and the forward of SHAPES[0] on a channels_last x (fused and ref on it; contiguous:
    fused on the same values contiguous)."""
    left_out = {} if compile else {"compiled": NO_COMPILE}
    gen = torch.Generator(device="cpu").manual_seed(0)
    fu, fd = _filters(device)
    specs = SHAPES[:1] if quick else SHAPES
    out = []
    for label, shape, up, down, padding in specs:
        x = torch.randn(shape, generator=gen).to(device)
        b = torch.randn(shape[1], generator=gen).to(device)
        args = (fu, fd, b, up, down, padding)
        fused, ref = _fn("auto"), _ref_fn()
        compiled = torch.compile(_ref_fn(), dynamic=False) if compile else None
        cand = _forward_candidates(x, args, fused, ref, compiled)
        targets = []
        if device.type == "cpu":
            targets = [Target(">= 5x faster than eager ref", "fused", "ref", 1 / 5),
                       Target(">= 2x faster than compiled ref", "fused", "compiled", 1 / 2)]
        out.append(Case("filtered_lrelu", f"fwd {label} {'x'.join(map(str, shape))} 12-tap sep", cand, device,
                        targets=targets, left_out=left_out))
        xg, bg = x.clone().requires_grad_(), b.clone().requires_grad_()
        gy = torch.randn(fused(x, *args).shape, generator=gen).to(device)

        def fwd_bwd(fn, xg=xg, bg=bg, gy=gy, args=args):
            return lambda: torch.autograd.grad(fn(xg, args[0], args[1], bg, *args[3:]), [xg, bg], gy)

        cand = {"fused": fwd_bwd(fused), "ref": fwd_bwd(ref)}
        if compiled is not None:
            cand["compiled"] = fwd_bwd(compiled)
        targets = [Target(">= 3x faster than eager ref", "fused", "ref", 1 / 3)] if device.type == "cpu" else []
        out.append(Case("filtered_lrelu", f"fwd+bwd {label} {'x'.join(map(str, shape))} 12-tap sep", cand, device,
                        targets=targets, left_out=left_out))
    # No target: a 12x12 2-D fd is 144 multiply-adds an output where the separable one is 24,
    # so the fused kernel's lead over the reference (which runs the same taps) is smaller here.
    fd2 = torch.outer(fd, fd) if not quick else None
    for label, shape, up, down, padding in ([] if quick else SHAPES_2D):
        x = torch.randn(shape, generator=gen).to(device)
        b = torch.randn(shape[1], generator=gen).to(device)
        args = (fu, fd2, b, up, down, padding)
        compiled = torch.compile(_ref_fn(), dynamic=False) if compile else None
        cand = _forward_candidates(x, args, _fn("auto"), _ref_fn(), compiled)
        out.append(Case("filtered_lrelu", f"fwd {label} {'x'.join(map(str, shape))} 12-tap sep fu, 12x12 2-D fd",
                        cand, device, left_out=left_out))
    # No target: what a channels_last input costs against the same values contiguous (the CPU
    # kernel transposes it to planes and back), beside the reference on that layout.
    for label, shape, up, down, padding in ([] if quick else SHAPES[:1]):
        x = torch.randn(shape, generator=gen).to(device)
        xl = x.contiguous(memory_format=torch.channels_last)
        b = torch.randn(shape[1], generator=gen).to(device)
        args = (fu, fd, b, up, down, padding)
        fused, ref = _fn("auto"), _ref_fn()
        cand = {"fused": lambda xl=xl, args=args: fused(xl, *args), "ref": lambda xl=xl, args=args: ref(xl, *args),
                "contiguous": lambda x=x, args=args: fused(x, *args)}
        out.append(Case("filtered_lrelu", f"fwd {label} {'x'.join(map(str, shape))} 12-tap sep, channels_last",
                        cand, device))
    return out


# --- peak memory ------------------------------------------------------------------------------

_CHILD = r"""
import json, resource, sys, torch
from alae_fast.bench.filtered_lrelu import SHAPES, _filters, _fn, _ref_fn
i, impl, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
label, shape, up, down, padding = SHAPES[i]
gen = torch.Generator().manual_seed(0)
fu, fd = _filters(torch.device("cpu"))
x = torch.randn(shape, generator=gen).requires_grad_()
b = torch.randn(shape[1], generator=gen).requires_grad_()
fn = _fn("auto") if impl == "fused" else _ref_fn()
small = torch.randn(1, 2, 8, 8).requires_grad_()
torch.autograd.grad(fn(small, fu, fd, b[:2].detach().requires_grad_(), up, down, padding).sum(), small)  # load code
gy = torch.randn(fn(x.detach()[:1], fu, fd, b.detach(), up, down, padding).shape[1:])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = fn(x, fu, fd, b, up, down, padding)
g = torch.autograd.grad(y, [x, b], gy.expand_as(y))
del y, g
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": (after - before) / 1024}))
"""


def peak_memory(index: int, impl: str, threads: int | None = None) -> float:
    """MiB by which one forward+backward of SHAPES[index] raises the peak resident size."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    threads = threads or torch.get_num_threads()
    out = subprocess.run([sys.executable, "-c", _CHILD, str(index), impl, str(threads)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def memory_report(repeats: int = 2) -> str:
    lines = ["filtered_lrelu peak memory of one forward+backward (MiB above the inputs; min of "
             f"{repeats} fresh processes each)", f"{'case':<22}{'fused':>10}{'ref':>10}{'fused/ref':>11}"]
    for i, (label, *_rest) in enumerate(SHAPES):
        fused = min(peak_memory(i, "fused") for _ in range(repeats))
        ref = min(peak_memory(i, "ref") for _ in range(repeats))
        lines.append(f"{label:<22}{fused:>10.1f}{ref:>10.1f}{fused / ref:>11.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(memory_report())
