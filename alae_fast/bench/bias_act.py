"""Benchmark cases of bias_act at StyleGAN training shapes (lrelu, with bias), and channels_last
against the same values contiguous."""

from __future__ import annotations

import torch

from ..ops.bias_act import bias_act, bias_act_ref
from .harness import NO_COMPILE, Case, Target

SHAPES = [(8, 512, 32, 32), (4, 256, 64, 64), (4, 64, 256, 256), (64, 512)]
QUICK_SHAPES = [(8, 512, 32, 32), (64, 512)]


def _fwd(fn, x, b):
    return lambda: fn(x, b, act="lrelu")


def _fwd_bwd(fn, x, b, gy):
    def run():
        y = fn(x, b, act="lrelu")
        return torch.autograd.grad(y, (x, b), gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """fwd and fwd+bwd cases in float32 and bfloat16; candidates fused, ref, compiled (unless
    not ``compile``) and, for fwd, copy: ``dst.copy_(x)`` into one destination allocated here,
    written again every call, where the other candidates allocate their output each call (the
    README's Benchmarks section says what that difference costs on the CPU)."""
    out = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for shape in QUICK_SHAPES if quick else SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape, generator=gen).to(device, dtype)
            b = torch.randn(shape[1], generator=gen).to(device, dtype)
            dst = torch.empty_like(x)
            copy = lambda x=x, dst=dst: dst.copy_(x)
            label = f"{'x'.join(map(str, shape))} {str(dtype).replace('torch.', '')}"
            compiled = torch.compile(bias_act_ref, dynamic=False) if compile else None
            main = shape == (8, 512, 32, 32) and dtype == torch.float32
            cand = {"fused": _fwd(bias_act, x, b), "ref": _fwd(bias_act_ref, x, b), "copy": copy}
            if compiled is not None:
                cand["compiled"] = _fwd(compiled, x, b)
            targets = []
            if main and device.type == "cpu":
                targets = [Target("fused <= 1.3x copy_", "fused", "copy", 1.3),
                           Target("fused <= compiled ref", "fused", "compiled", 1.0),
                           Target(">= 3x faster than eager ref", "fused", "ref", 1 / 3)]
            if device.type == "cuda" and dtype == torch.float32:
                # Same bytes as the copy: >= 80% of its bandwidth is <= 1.25x its time.
                targets = [Target(">= 80% of copy_ bandwidth", "fused", "copy", 1.25)]
            left_out = {} if compile else {"compiled": NO_COMPILE}
            out.append(Case("bias_act", f"fwd {label}", cand, device, targets=targets, left_out=left_out))

            xg = x.detach().clone().requires_grad_()
            bg = b.detach().clone().requires_grad_()
            gy = torch.randn(shape, generator=gen).to(device, dtype)
            cand = {"fused": _fwd_bwd(bias_act, xg, bg, gy), "ref": _fwd_bwd(bias_act_ref, xg, bg, gy)}
            if compiled is not None:
                cand["compiled"] = _fwd_bwd(torch.compile(bias_act_ref, dynamic=False), xg, bg, gy)
            targets = []
            if main and device.type == "cpu":
                targets = [Target(">= 2x faster than eager ref", "fused", "ref", 0.5)]
            out.append(Case("bias_act", f"fwd+bwd {label}", cand, device, targets=targets, left_out=left_out))
    # No target: channels_last against the same values contiguous, for ToRGB's bias on an RGB
    # image (a call per pixel had made it 45x the contiguous time on the CPU) and 512 channels.
    for shape in ([] if quick else [(8, 3, 256, 256), (8, 512, 32, 32)]):
        x = torch.randn(shape, generator=gen).to(device)
        xl = x.contiguous(memory_format=torch.channels_last)
        b = torch.randn(shape[1], generator=gen).to(device)
        cand = {"fused": _fwd(bias_act, xl, b), "ref": _fwd(bias_act_ref, xl, b), "contiguous": _fwd(bias_act, x, b)}
        out.append(Case("bias_act", f"fwd {'x'.join(map(str, shape))} float32 channels_last, vs contiguous", cand,
                        device))
    return out
