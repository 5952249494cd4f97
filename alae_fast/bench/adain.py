"""Benchmark cases of adain (noise + bias + lrelu + instance norm + style, the StyleALAE
generator half-block) and instance_norm_stats, at StyleALAE shapes."""

from __future__ import annotations

import torch

from ..ops.adain import adain, adain_ref
from ..ops.instance_norm_stats import instance_norm_stats, instance_norm_stats_ref
from .harness import NO_COMPILE, Case, Target

SHAPES = [(8, 512, 16, 16), (4, 256, 64, 64)]
QUICK_SHAPES = [(8, 512, 16, 16)]


def _inputs(shape, device, dtype, gen, requires_grad=False):
    N, C, H, W = shape
    r = lambda *s: torch.randn(*s, generator=gen).to(device, dtype).requires_grad_(requires_grad)
    return [r(N, C, H, W), r(N, C), r(N, C), r(C), r(N, 1, H, W), r(C)]


def _call(fn, ins):
    x, s, t, b, n, w = ins
    return fn(x, s, t, bias=b, noise=n, noise_weight=w, act="lrelu")


def _fwd(fn, ins):
    return lambda: _call(fn, ins)


def _fwd_bwd(fn, ins, gy):
    def run():
        return torch.autograd.grad(_call(fn, ins), ins, gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """adain fwd and fwd+bwd (contiguous and channels_last float32, plus bfloat16) and
    instance_norm_stats fwd+bwd; candidates fused, ref, compiled (unless not ``compile``) and,
    for fwd, copy. Unless ``quick``, channels_last cases at few channels whose third candidate,
    ``contiguous``, is the fused op on the same values stored contiguous."""
    out = []
    left_out = {} if compile else {"compiled": NO_COMPILE}
    gen = torch.Generator(device="cpu").manual_seed(0)
    for shape in QUICK_SHAPES if quick else SHAPES:
        for dtype, layout in ((torch.float32, "nchw"), (torch.float32, "cl"), (torch.bfloat16, "nchw")):
            if quick and layout == "cl":
                continue
            ins = _inputs(shape, device, dtype, gen)
            if layout == "cl":
                ins[0] = ins[0].to(memory_format=torch.channels_last)
            x = ins[0]
            dst = torch.empty_like(x)
            copy = lambda x=x, dst=dst: dst.copy_(x)
            label = f"{'x'.join(map(str, shape))} {str(dtype).replace('torch.', '')}" + (" cl" if layout == "cl" else "")
            cand = {"fused": _fwd(adain, ins), "ref": _fwd(adain_ref, ins), "copy": copy}
            if compile:
                cand["compiled"] = _fwd(torch.compile(adain_ref, dynamic=False), ins)
            main = dtype == torch.float32 and layout == "nchw"
            targets = []
            if main and device.type == "cpu":
                targets = [Target("fused <= 3x copy_", "fused", "copy", 3.0),
                           Target(">= 3x faster than eager ref", "fused", "ref", 1 / 3),
                           Target(">= 1.2x faster than compiled ref", "fused", "compiled", 1 / 1.2)]
            if main and device.type == "cuda":
                # Two reads and one write of x: within 1.5x of a copy's two passes is near roofline.
                targets = [Target("fused <= 2x copy_", "fused", "copy", 2.0)]
            out.append(Case("adain", f"fwd {label}", cand, device, targets=targets, left_out=left_out))

            gins = [t.detach().clone().requires_grad_() for t in ins]
            gy = torch.randn(shape, generator=gen).to(device, dtype)
            if layout == "cl":
                gy = gy.to(memory_format=torch.channels_last)
            cand = {"fused": _fwd_bwd(adain, gins, gy), "ref": _fwd_bwd(adain_ref, gins, gy)}
            if compile:
                cand["compiled"] = _fwd_bwd(torch.compile(adain_ref, dynamic=False), gins, gy)
            targets = []
            if main and device.type == "cpu":
                targets = [Target(">= 2x faster than eager ref", "fused", "ref", 0.5)]
            out.append(Case("adain", f"fwd+bwd {label}", cand, device, targets=targets, left_out=left_out))

        # The encoder's statistics (no noise, no style), forward + backward through all three outputs.
        x = torch.randn(shape, generator=gen).to(device).requires_grad_()
        gys = [torch.randn(shape, generator=gen).to(device), torch.randn(shape[:2], generator=gen).to(device),
               torch.randn(shape[:2], generator=gen).to(device)]

        # x, gys and dst bound now: a closure over the loop's variables would time the last shape's.
        def ins_fb(fn, x=x, gys=gys):
            def run():
                return torch.autograd.grad(fn(x), (x,), gys)
            return run

        cand = {"fused": ins_fb(instance_norm_stats), "ref": ins_fb(instance_norm_stats_ref)}
        if compile:
            cand["compiled"] = ins_fb(torch.compile(instance_norm_stats_ref, dynamic=False))
        out.append(Case("instance_norm_stats", f"fwd+bwd {'x'.join(map(str, shape))} float32", cand, device,
                        left_out=left_out))
    # No target: channels_last against the same values contiguous at few channels: an RGB image,
    # the 8 feature maps at 32x32 and 16 at 16x16 of digits-32 and photos-32, where the CPU
    # kernels' loop over a pixel's channels had run scalar (31-42x the contiguous time for RGB,
    # 2.5-3x for 8 maps) and the register loops now run (csrc/cpu/adain_register_lanes.h), and
    # 32 maps at 64x64.
    for shape in ([] if quick else [(8, 3, 256, 256), (32, 8, 32, 32), (32, 16, 16, 16), (16, 32, 64, 64)]):
        ins = _inputs(shape, device, torch.float32, gen, requires_grad=True)
        cl = [ins[0].detach().contiguous(memory_format=torch.channels_last).requires_grad_(), *ins[1:]]
        gy = torch.randn(shape, generator=gen).to(device)
        gyl = gy.contiguous(memory_format=torch.channels_last)
        label = f"{'x'.join(map(str, shape))} float32 channels_last, vs contiguous"
        cand = {"fused": _fwd(adain, cl), "ref": _fwd(adain_ref, cl), "contiguous": _fwd(adain, ins)}
        out.append(Case("adain", f"fwd {label}", cand, device))
        cand = {"fused": _fwd_bwd(adain, cl, gyl), "ref": _fwd_bwd(adain_ref, cl, gyl),
                "contiguous": _fwd_bwd(adain, ins, gy)}
        out.append(Case("adain", f"fwd+bwd {label}", cand, device))
        xl = cl[0]
        cand = {"fused": lambda xl=xl: instance_norm_stats(xl), "ref": lambda xl=xl: instance_norm_stats_ref(xl),
                "contiguous": lambda x=ins[0]: instance_norm_stats(x)}
        out.append(Case("instance_norm_stats", f"fwd {label}", cand, device))
    return out
