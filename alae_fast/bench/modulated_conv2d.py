"""Benchmark cases of modulated_conv2d (StyleGAN2's modulated 3x3 convolution) and of its
fused weight kernel modulate_weight."""

from __future__ import annotations

import torch

from ..ops.modulated_conv2d import modulate_weight, modulated_conv2d, modulated_conv2d_ref
from .harness import Case, Target

SHAPES = [(4, 512, 16, 16)]


def _fwd_bwd(fn, ins, gy, **kw):
    def run():
        return torch.autograd.grad(fn(*ins, **kw), ins, gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """modulated_conv2d fwd+bwd, fused and unfused order, vs the StyleGAN2-ADA-style reference;
    modulate_weight fwd+bwd vs its torch form. Candidates fused, ref (and compiled)."""
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
            if compile and not quick:
                cand["compiled"] = _fwd_bwd(torch.compile(modulated_conv2d_ref, dynamic=False), ins, gy, **kw)
            targets = [Target(">= 1.2x faster than eager ref", "fused", "ref", 1 / 1.2)] if device.type == "cpu" else []
            out.append(Case("modulated_conv2d", f"fwd+bwd {N}x{C}x{H}x{W} k3 {'fused' if fused else 'unfused'}",
                            cand, device, targets=targets))

        w2 = torch.randn(N, C, C, 3, 3, generator=gen).to(device)

        # Bound now, not looked up at call time (the loop moves on to the next shape).
        def mod(fn, weight=weight, styles=styles, w2=w2):
            def run():
                w, d = fn(weight, styles)
                return torch.autograd.grad((w, d), (weight, styles), (w2, d))
            return run

        ref = lambda w, s: modulate_weight(w, s, impl="ref")
        dst = torch.empty_like(w2)
        out.append(Case("modulate_weight", f"fwd+bwd [{N},{C},{C},3,3]",
                        {"fused": mod(modulate_weight), "ref": mod(ref), "copy": lambda dst=dst, w2=w2: dst.copy_(w2)}, device))
    return out
