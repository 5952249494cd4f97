"""Benchmark cases of upfirdn2d at StyleGAN shapes: 2x up/down with the [1,3,3,1] filter,
blur without resampling, an 8-tap separable filter, channels_last (against the same values
contiguous, too), bfloat16, fwd+bwd, and StyleALAE digits-32's small planes (its [1,2,1] blur and 2x2 box at 4x4 and 8x8, batch 32)."""

from __future__ import annotations

import torch

from ..ops.upfirdn2d import downsample2d, filter2d, setup_filter, upsample2d
from .harness import NO_COMPILE, Case, Target

_OPS = {"up2": upsample2d, "down2": downsample2d, "blur": filter2d}


def _call(op: str, x, f, impl: str):
    return _OPS[op](x, f, impl=impl)


def _ref_fn(op: str):
    # A plain function of (x, f) for torch.compile: the eager reference recipe
    # (zero-insert, pad, depthwise conv2d, strided slice).
    def ref(x, f):
        return _OPS[op](x, f, impl="ref")
    return ref


def _fwd(fn, x, f):
    return lambda: fn(x, f)


def _fwd_bwd(fn, x, f, gy):
    def run():
        y = fn(x, f)
        return torch.autograd.grad(y, x, gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """Candidates fused, ref, compiled (torch.compile of ref; unless not ``compile``) and, for
    forward cases, copy (a copy_ of the larger of input and output, into one destination
    allocated here and written again every call, where the other candidates allocate their
    output each call)."""
    left_out = {} if compile else {"compiled": NO_COMPILE}
    gen = torch.Generator(device="cpu").manual_seed(0)
    f4 = setup_filter([1, 3, 3, 1], device=device)  # 4x4, as StyleGAN2 uses it
    f8 = setup_filter([1, 3, 5, 7, 7, 5, 3, 1], device=device, separable=True)
    f3, f2 = setup_filter([1, 2, 1], device=device), setup_filter([1, 1], device=device)
    # (op, filter name, filter, input shape, dtype, channels_last, fwd+bwd, is a target case)
    specs = [
        ("up2", "[1,3,3,1]", f4, (8, 256, 32, 32), torch.float32, False, False, True),
        ("down2", "[1,3,3,1]", f4, (8, 256, 64, 64), torch.float32, False, False, True),
        ("blur", "[1,3,3,1]", f4, (8, 256, 64, 64), torch.float32, False, False, False),
        ("up2", "8-tap sep", f8, (8, 256, 32, 32), torch.float32, False, False, False),
        ("down2", "8-tap sep", f8, (8, 256, 64, 64), torch.float32, False, False, False),
        ("up2", "[1,3,3,1]", f4, (8, 256, 32, 32), torch.float32, True, False, False),
        ("down2", "[1,3,3,1]", f4, (8, 256, 64, 64), torch.float32, True, False, False),
        ("up2", "[1,3,3,1]", f4, (8, 256, 32, 32), torch.bfloat16, False, False, False),
        ("down2", "[1,3,3,1]", f4, (8, 256, 64, 64), torch.bfloat16, False, False, False),
        ("up2", "[1,3,3,1]", f4, (8, 256, 32, 32), torch.float32, False, True, False),
        ("down2", "[1,3,3,1]", f4, (8, 256, 64, 64), torch.float32, False, True, False),
        # a few pixels a plane, many planes: the CPU runs these planes-innermost
        ("blur", "[1,2,1]", f3, (32, 32, 4, 4), torch.float32, False, False, False),
        ("blur", "[1,2,1]", f3, (32, 32, 8, 8), torch.float32, False, False, False),
        ("down2", "[1,1]", f2, (32, 32, 8, 8), torch.float32, False, False, False),
        ("up2", "[1,1]", f2, (32, 32, 4, 4), torch.float32, False, False, False),
    ]
    if quick:
        specs = [s for s in specs if s[-1]]
    out = []
    for op, fname, f, shape, dtype, cl, bwd, main in specs:
        x = torch.randn(shape, generator=gen).to(device, dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        y = _call(op, x, f, "auto")
        big = x if x.numel() >= y.numel() else y
        src, dst = big.clone(), torch.empty_like(big)
        copy = lambda src=src, dst=dst: dst.copy_(src)
        label = (f"{op} {fname} {'x'.join(map(str, shape))} {str(dtype).replace('torch.', '')}"
                 f"{' channels_last' if cl else ''}")
        fused = lambda x, f, op=op: _call(op, x, f, "auto")
        ref = _ref_fn(op)
        compiled = torch.compile(_ref_fn(op), dynamic=False) if compile else None
        targets = []
        if main and device.type == "cpu":
            targets = [Target("fused <= 2x copy_ of the larger side", "fused", "copy", 2.0),
                       Target(">= 5x faster than eager ref", "fused", "ref", 1 / 5),
                       Target(">= 3x faster than compiled ref", "fused", "compiled", 1 / 3)]
        if not bwd:
            cand = {"fused": _fwd(fused, x, f), "ref": _fwd(ref, x, f), "copy": copy}
            if compiled is not None:
                cand["compiled"] = _fwd(compiled, x, f)
            out.append(Case("upfirdn2d", f"fwd {label}", cand, device, targets=targets, left_out=left_out))
        else:
            xg = x.detach().clone().requires_grad_()
            gy = torch.randn(y.shape, generator=gen).to(device, dtype)
            cand = {"fused": _fwd_bwd(fused, xg, f, gy), "ref": _fwd_bwd(ref, xg, f, gy)}
            if compiled is not None:
                cand["compiled"] = _fwd_bwd(compiled, xg, f, gy)
            out.append(Case("upfirdn2d", f"fwd+bwd {label}", cand, device, left_out=left_out))
    # No target: what channels_last costs against the same values contiguous, for an RGB image
    # (a skip generator's upsampled output) and StyleALAE's 8 maps at 32x32 (the CPU kernel's
    # NHWC engine filters rows by polyphase class at any channel count), beside the reference.
    for op, shape in ([] if quick else [("up2", (8, 3, 256, 256)), ("blur", (32, 8, 32, 32)),
                                        ("down2", (8, 32, 64, 64))]):
        x = torch.randn(shape, generator=gen).to(device)
        xl = x.contiguous(memory_format=torch.channels_last)
        fused = lambda x, f, op=op: _call(op, x, f, "auto")
        cand = {"fused": _fwd(fused, xl, f4), "ref": _fwd(_ref_fn(op), xl, f4), "contiguous": _fwd(fused, x, f4)}
        out.append(Case("upfirdn2d", f"fwd {op} [1,3,3,1] {'x'.join(map(str, shape))} float32 channels_last, "
                        "vs contiguous", cand, device))
    return out
