"""Benchmark cases of modulated_conv2d (StyleGAN2's modulated 3x3 convolution) and of its
fused weight kernel modulate_weight."""

from __future__ import annotations

import torch

from ..ops.modulated_conv2d import modulate_weight, modulated_conv2d, modulated_conv2d_ref
from .harness import NO_COMPILE, Case, LeftOut, Target

SHAPES = [(4, 512, 16, 16)]
# Recorded on the cases, not just skipped, so that the report can tell a reader that a quick run
# dropped this column here rather than that the case has none.
QUICK_LEFT_OUT = LeftOut("--quick", "torch.compile of the reference's forward+backward, compiled for each case")


def _fwd_bwd(fn, ins, gy, **kw):
    def run():
        return torch.autograd.grad(fn(*ins, **kw), ins, gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """modulated_conv2d fwd+bwd, fused and unfused order, vs the StyleGAN2-ADA-style reference;
    modulate_weight fwd+bwd vs its torch form. Candidates fused, ref and, for modulated_conv2d,
    compiled: unless not ``compile``, or ``quick`` (the case records which left it out)."""
    out = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for N, C, H, W in SHAPES:
        x = torch.randn(N, C, H, W, generator=gen).to(device).requires_grad_()
        weight = torch.randn(C, C, 3, 3, generator=gen).to(device).requires_grad_()
        styles = torch.randn(N, C, generator=gen).to(device).requires_grad_()
        gy = torch.randn(N, C, H, W, generator=gen).to(device)
        ins = (x, weight, styles)
        for fused in (True, False):
            kw = dict(padding=1, fused_modconv=fused)
            cand = {"fused": _fwd_bwd(modulated_conv2d, ins, gy, **kw),
                    "ref": _fwd_bwd(modulated_conv2d_ref, ins, gy, **kw)}
            left_out = {}
            if not compile:
                left_out["compiled"] = NO_COMPILE
            elif quick:
                left_out["compiled"] = QUICK_LEFT_OUT
            else:
                cand["compiled"] = _fwd_bwd(torch.compile(modulated_conv2d_ref, dynamic=False), ins, gy, **kw)
            targets = [Target(">= 1.2x faster than eager ref", "fused", "ref", 1 / 1.2)] if device.type == "cpu" else []
            out.append(Case("modulated_conv2d", f"fwd+bwd {N}x{C}x{H}x{W} k3 {'fused' if fused else 'unfused'}",
                            cand, device, targets=targets, left_out=left_out))

        w2 = torch.randn(N, C, C, 3, 3, generator=gen).to(device)

        # Bound now, not looked up at call time (the loop moves on to the next shape).
        def mod(fn, weight=weight, styles=styles, w2=w2):
            def run():
                w, d = fn(weight, styles)
                return torch.autograd.grad((w, d), (weight, styles), (w2, d))
            return run

        ref = lambda w, s: modulate_weight(w, s, impl="ref")
        out.append(Case("modulate_weight", f"fwd+bwd [{N},{C},{C},3,3]", {"fused": mod(modulate_weight), "ref": mod(ref)},
                        device))
    return out
