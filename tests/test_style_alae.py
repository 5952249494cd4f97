"""StyleALAE: G and E against a forward written from the definition (plain torch.nn.functional,
nearest/average resampling, explicit blur and instance norm), the fused and unfused resampling
forms, shapes of every preset at every lod and blend, fade-in identities, fused vs reference
ops for the whole model, R1's double backward on the kernels, config JSON, presets, parameter
counts and the command that prints them."""

import copy
import json
import math
import pathlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from alae_fast import _lib
from alae_fast.models import (ALAEConfig, ModelConfig, StyleALAE, StyleALAEConfig, build_model, from_preset,
                              parameter_counts, parameter_table, preset_config)
from alae_fast_tests_support import OpRecorder, assert_r1_matches, pixels, r1_grads

STYLE_PRESETS = ["ffhq-1024", "celeba-hq-256", "bedroom-256", "celeba-128", "digits-32", "photos-32"]
SMALL = dict(latent_size=6, mapping_layers=2, layer_count=3, channels=3, start_features=4, max_features=8)
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero biases and noise weights, so that every term of the forward is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "noise_weight")):
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
            elif name.endswith("const"):
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
    return model


def small(seed=0, **changes) -> StyleALAE:
    torch.manual_seed(seed)
    return randomize(StyleALAE(StyleALAEConfig(**{**SMALL, **changes})).double(), seed)


# --- a forward written from the definition ------------------------------------------------------

def eq_weight(layer):
    fan_in = layer.weight[0].numel()
    return layer.weight * (layer.gain * layer.lrmul / math.sqrt(fan_in))


def eq_bias(layer):
    return layer.bias * layer.bias_lrmul


def linear(x, layer):
    return x @ eq_weight(layer).T + eq_bias(layer)


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def blur(x):
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = torch.outer(k, k) / 16
    return F.conv2d(x, k.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


def inorm(x, eps=1e-8):
    mean = x.mean((2, 3), keepdim=True)
    std = torch.sqrt((x - mean).square().mean((2, 3), keepdim=True) + eps)
    return (x - mean) / std, mean.flatten(1), std.flatten(1)


def half_block(x, hb, w, noise):
    C = x.shape[1]
    s = linear(w, hb.adain.style)
    v = x + eq_noise(hb, noise) + hb.bias.view(1, C, 1, 1)
    return inorm(lrelu(v))[0] * (1 + s[:, :C, None, None]) + s[:, C:, None, None]


def eq_noise(hb, noise):
    return 0.0 if noise is None else hb.noise_weight.view(1, -1, 1, 1) * noise


def oracle_decode(model, ws, lod, blend, noise_seed):
    """G from the definition; noise drawn in the model's order (style_1 then style_2 per block)."""
    gen = model.generator
    if noise_seed is not None:
        torch.manual_seed(noise_seed)
    draw = lambda x: None if noise_seed is None else torch.randn(x.shape[0], 1, *x.shape[2:], dtype=x.dtype)
    x = gen.const.expand(ws.shape[0], -1, -1, -1)
    previous = None
    for i in range(lod + 1):
        blk = gen.blocks[i]
        if i == lod and lod > 0 and blend < 1:
            previous = F.conv2d(x, eq_weight(gen.to_rgb[i - 1]), eq_bias(gen.to_rgb[i - 1]))
        if i > 0:
            x = x.repeat_interleave(2, 2).repeat_interleave(2, 3)  # nearest x2
            x = blur(F.conv2d(x, eq_weight(blk.style_1.conv), padding=1))
        x = half_block(x, blk.style_1, ws[:, 2 * i], draw(x))
        x = F.conv2d(x, eq_weight(blk.style_2.conv), padding=1)
        x = half_block(x, blk.style_2, ws[:, 2 * i + 1], draw(x))
    image = F.conv2d(x, eq_weight(gen.to_rgb[lod]), eq_bias(gen.to_rgb[lod]))
    if previous is not None:
        image = blend * image + (1 - blend) * F.interpolate(previous, scale_factor=2, mode="nearest")
    return image


def oracle_encode(model, x, lod, blend):
    enc = model.encoder

    def block(h, blk):
        h, m1, s1 = inorm(lrelu(F.conv2d(h, eq_weight(blk.conv_1), eq_bias(blk.conv_1), padding=1)))
        h = F.avg_pool2d(F.conv2d(blur(h), eq_weight(blk.down.conv), padding=1), 2)
        h, m2, s2 = inorm(lrelu(h + eq_bias(blk.down.conv).view(1, -1, 1, 1)))
        return h, linear(torch.cat([m1, s1], 1), blk.style_1) + linear(torch.cat([m2, s2], 1), blk.style_2)

    from_rgb = lambda v, i: lrelu(F.conv2d(v, eq_weight(enc.from_rgb[i]), eq_bias(enc.from_rgb[i])))
    h, w = block(from_rgb(x, lod), enc.blocks[lod])
    if lod > 0 and blend < 1:
        w = w * blend
        h = blend * h + (1 - blend) * from_rgb(F.avg_pool2d(x, 2), lod - 1)
    for i in range(lod - 1, -1, -1):
        h, wi = block(h, enc.blocks[i])
        w = w + wi
    return w


@pytest.mark.parametrize("fused_scale_resolution", [4, 1024])
def test_generator_and_encoder_match_the_definition(fused_scale_resolution):
    # 4: every up/down-conv as one (transposed) strided convolution; 1024: nearest + conv and
    # conv + average pool. The oracle always uses the latter, so both forms are checked.
    m = small(1, fused_scale_resolution=fused_scale_resolution)
    assert all(b.style_1.up == ("fused" if fused_scale_resolution == 4 else "nearest") for b in m.generator.blocks[1:])
    assert m.generator.blocks[0].style_1.conv is None
    assert all(b.down.fused == (fused_scale_resolution == 4) for b in m.encoder.blocks)
    torch.manual_seed(2)
    ws = torch.randn(3, m.num_ws, 6, dtype=torch.float64)
    for lod in range(3):
        r = 4 * 2 ** lod
        x = pixels(3, 3, r, r, dtype=torch.float64)
        for blend in (0.3, 1.0):
            torch.manual_seed(10 + lod)
            got = m.decode(ws, lod, blend, noise="random")
            torch.testing.assert_close(got, oracle_decode(m, ws, lod, blend, 10 + lod), rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(m.decode(ws, lod, blend, noise="zero"),
                                       oracle_decode(m, ws, lod, blend, None), rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(m.encode(x, lod, blend), oracle_encode(m, x, lod, blend),
                                       rtol=1e-9, atol=1e-9)


def test_architecture_sizes_and_initialisation():
    m = from_preset("celeba-hq-256")  # L 7, features 64..512
    c = m.config
    assert [c.features_at(i) for i in range(7)] == [512, 512, 512, 512, 256, 128, 64]
    g, e = m.generator, m.encoder
    assert g.const.shape == (1, 512, 4, 4) and bool((g.const == 1).all())
    assert [b.style_2.conv.out_channels for b in g.blocks] == [512, 512, 512, 512, 256, 128, 64]
    # fused up-conv from 128 px outputs, fused down-conv from 128 px inputs
    assert [b.style_1.up for b in g.blocks] == [None] + ["nearest"] * 4 + ["fused"] * 2
    assert [b.down.fused for b in e.blocks] == [False, False, False, False, False, True, True]
    assert [(b.conv_1.in_channels, b.down.conv.out_channels) for b in e.blocks] == [
        (512, 512), (512, 512), (512, 512), (512, 512), (256, 512), (128, 256), (64, 128)]
    assert all(t.gain == 0.03 and t.out_channels == 3 and t.kernel_size == (1, 1) for t in g.to_rgb)
    for b in g.blocks:
        for hb in (b.style_1, b.style_2):
            style = hb.adain.style
            assert style.gain == 1.0 and style.out_features == 2 * b.style_2.conv.out_channels
            assert not hb.noise_weight.any() and not hb.bias.any() and not style.bias.any()
        assert b.style_2.blur_filter is None and (b.style_1.blur_filter is None) == (b.style_1.conv is None)
    assert all(b.style_1.gain == math.sqrt(2) and b.style_1.in_features == 2 * b.conv_1.in_channels
               for b in e.blocks)
    assert [(l.in_features, l.lrmul, l.act) for l in m.mapping.layers] == [(512, 0.1, "lrelu")] * 8
    assert [(l.in_features, l.out_features, l.lrmul, l.act) for l in m.discriminator.layers] == [
        (512, 512, 0.1, "linear"), (512, 512, 0.1, "linear"), (512, 1, 0.1, "linear")]
    # weights N(0, 1/lrmul^2)
    w = torch.cat([l.weight.flatten() for l in m.mapping.layers])
    assert 9.5 < w.std().item() < 10.5
    assert 0.95 < g.blocks[6].style_2.conv.weight.std().item() < 1.05
    assert m.num_ws == 14 and m.max_lod == 6 and c.resolution == 256


def test_parameter_counts_by_hand():
    m = StyleALAE(StyleALAEConfig(**SMALL))  # features [8, 8, 4] at 4, 8, 16 px; 3 channels; latent 6
    feats, lat, ch = [8, 8, 4], 6, 3
    conv = lambda i, o, k, bias: i * o * k * k + (o if bias else 0)
    dense = lambda i, o: i * o + o
    gen = feats[0] * 16
    for i, c in enumerate(feats):
        if i > 0:
            gen += conv(feats[i - 1], c, 3, False)
        gen += conv(c, c, 3, False) + 2 * (2 * c + dense(lat, 2 * c)) + conv(c, ch, 1, True)
    below = min(8, 4 * 2 ** 3)  # E's 4x4 block maps to C_{-1}
    enc = 0
    for i, c in enumerate(feats):
        out = feats[i - 1] if i > 0 else below
        enc += conv(ch, c, 1, True) + conv(c, c, 3, True) + conv(c, out, 3, True)
        enc += dense(2 * c, lat) + dense(2 * out, lat)
    counts = m.parameter_counts()
    assert counts == {"mapping": 2 * dense(lat, lat), "generator": gen, "encoder": enc,
                      "discriminator": 2 * dense(lat, lat) + dense(lat, 1),
                      "total": 4 * dense(lat, lat) + dense(lat, 1) + gen + enc}


# --- shapes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STYLE_PRESETS)
def test_shapes_every_lod_and_blend(name):
    cfg = preset_config(name)
    device = "cpu" if name == "digits-32" else "meta"  # the paper models: shapes only, no memory
    with torch.device(device):
        m = from_preset(name)
        assert all(t.device.type == device for t in [*m.parameters(), *m.buffers()])
        n = 2
        for lod in range(cfg.layer_count):
            r = 4 * 2 ** lod
            x = pixels(n, cfg.channels, r, r)
            for blend in (0.5, 1.0):  # fading in, and faded in
                w = m.encode(x, lod, blend)
                assert w.shape == (n, cfg.latent_size)
                assert m.decode(w, lod, blend).shape == (n, cfg.channels, r, r)
        z = torch.randn(n, cfg.latent_size)
        w = m.mapping(z)
        assert w.shape == (n, cfg.latent_size) and m.discriminator(w).shape == (n,)
        assert m.decode(w.unsqueeze(1).expand(-1, m.num_ws, -1), 1, 0.0, "zero").shape == (n, cfg.channels, 8, 8)
        assert m.generate(z, 2, 0.5, truncation_psi=0.7, truncation_cutoff=4, mixing_prob=0.9).shape == (
            n, cfg.channels, 16, 16)
        assert m.reconstruct(pixels(n, cfg.channels, 8, 8), 1, 0.5).shape == (n, cfg.channels, 8, 8)
        x = pixels(n, cfg.channels, cfg.resolution, cfg.resolution)
        assert m.encode(x).shape == (n, cfg.latent_size)  # lod None: the last level


def test_channels_last_and_autocast():
    m = from_preset("digits-32")
    x = pixels(4, 1, 32, 32)
    w = m.encode(x)
    torch.testing.assert_close(m.encode(x.to(memory_format=torch.channels_last)), w, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wb = m.encode(x)
        img = m.decode(w, noise="zero")
    assert wb.dtype == torch.bfloat16 and img.dtype == torch.bfloat16
    scale = w.abs().max()
    assert (wb.float() - w).abs().max() < 0.1 * scale
    ref = m.decode(w, noise="zero")
    assert (img.float() - ref).abs().max() < 0.1 * ref.abs().max()


def _same_grads(expected, got):
    # some are zero in exact arithmetic (biases under an instance norm) and come out as rounding
    # noise: compared on the scale of the largest gradient
    assert [u is None for u in expected] == [v is None for v in got]
    scale = max(float(u.abs().max()) for u in expected if u is not None)
    for u, v in zip(expected, got):
        if u is not None:
            assert float((v - u).abs().max()) <= 1e-9 * scale


@pytest.mark.parametrize("name", ["digits-32", "photos-32"])
def test_model_to_channels_last_runs_channels_last_with_the_same_values(name):
    # model.to(memory_format=channels_last): G's activations from the const on, E's from FromRGB
    # on (an image's layout is ambiguous at one channel, and contiguous images are accepted), in
    # every level and fade; float64 values equal the contiguous model's, through R1's double
    # backward (E) and G's backward.
    torch.manual_seed(0)
    ref = from_preset(name).double()
    m = copy.deepcopy(ref).to(memory_format=torch.channels_last)
    assert m.generator.const.is_contiguous(memory_format=torch.channels_last)
    seen = []
    names = {mod: n for n, mod in m.named_modules()}
    hooks = [mod.register_forward_hook(lambda mod, inp, out: seen.append(
        (names[mod], out.is_contiguous(memory_format=torch.channels_last))))
        for mod in m.modules() if type(mod).__name__ in ("EqualizedConv2d", "StyleBlock")]
    c = ref.config.channels
    for lod, blend in [(0, 1.0), (1, 0.5), (3, 1.0)]:
        r = 4 * 2 ** lod
        x = pixels(3, c, r, r, dtype=torch.float64)
        for xin in (x, x.contiguous(memory_format=torch.channels_last)):
            xa, xb = x.clone().requires_grad_(), xin.clone().requires_grad_()
            wa, wb = ref.encode(xa, lod, blend), m.encode(xb, lod, blend)
            torch.testing.assert_close(wb, wa, rtol=1e-10, atol=1e-12)
            (ga,) = torch.autograd.grad(wa.square().sum(), xa, create_graph=True)  # R1's gradient
            (gb,) = torch.autograd.grad(wb.square().sum(), xb, create_graph=True)
            torch.testing.assert_close(gb, ga, rtol=1e-9, atol=1e-12)
            pa = torch.autograd.grad(ga.square().sum(), list(ref.encoder.parameters()), allow_unused=True)
            pb = torch.autograd.grad(gb.square().sum(), list(m.encoder.parameters()), allow_unused=True)
            _same_grads(pa, pb)
        w = torch.randn(3, ref.config.latent_size, dtype=torch.float64)
        ya, yb = ref.decode(w, lod, blend, noise="const"), m.decode(w, lod, blend, noise="const")
        torch.testing.assert_close(yb, ya, rtol=1e-10, atol=1e-12)
        gpa = torch.autograd.grad(ya.square().sum(), list(ref.generator.parameters()), allow_unused=True)
        gpb = torch.autograd.grad(yb.square().sum(), list(m.generator.parameters()), allow_unused=True)
        _same_grads(gpa, gpb)
    for h in hooks:
        h.remove()
    # every feature map is channels_last but FromRGB's (a product in the image's layout, which
    # E lays out before its first 3x3 convolution)
    assert len(seen) > 30 and any(n.startswith("generator.blocks") for n, _ in seen)
    assert all(cl for n, cl in seen if not n.startswith("encoder.from_rgb")), seen


# --- progressive growing, styles --------------------------------------------------------------

def test_fade_in_identities():
    m = small(3)
    torch.manual_seed(4)
    ws = torch.randn(2, m.num_ws, 6, dtype=torch.float64)
    for lod in (1, 2):
        r = 4 * 2 ** lod
        # blend 0: G shows the previous level, nearest-upsampled; E sees the pooled image.
        low = m.decode(ws, lod - 1, noise="zero")
        torch.testing.assert_close(m.decode(ws, lod, 0.0, "zero"), low.repeat_interleave(2, 2).repeat_interleave(2, 3))
        x = pixels(2, 3, r, r, dtype=torch.float64)
        torch.testing.assert_close(m.encode(x, lod, 0.0), m.encode(F.avg_pool2d(x, 2), lod - 1))
        # blend is linear in G's output, and E's blocks below the new one see a lerp of features.
        b0, b1 = m.decode(ws, lod, 0.0, "zero"), m.decode(ws, lod, 1.0, "zero")
        torch.testing.assert_close(m.decode(ws, lod, 0.25, "zero"), 0.75 * b0 + 0.25 * b1)
    # G only reads the style inputs of the blocks it runs.
    ws2 = ws.clone()
    ws2[:, 4:] = torch.randn(2, 2, 6, dtype=torch.float64)
    torch.testing.assert_close(m.decode(ws2, 1, noise="zero"), m.decode(ws, 1, noise="zero"))
    # lod 0 has nothing to fade: blend is ignored there.
    torch.testing.assert_close(m.decode(ws, 0, 0.3, "zero"), m.decode(ws, 0, 1.0, "zero"))


def test_noise_modes():
    m = small(5)
    ws = torch.randn(2, m.num_ws, 6, dtype=torch.float64)
    torch.manual_seed(0)
    a = m.decode(ws, 2)
    torch.manual_seed(0)
    torch.testing.assert_close(m.decode(ws, 2), a)
    assert not torch.allclose(m.decode(ws, 2), a)
    # noise enters through the per-channel weights only: with them at zero it has no effect
    with torch.no_grad():
        for b in m.generator.blocks:
            b.style_1.noise_weight.zero_()
            b.style_2.noise_weight.zero_()
    torch.testing.assert_close(m.decode(ws, 2), m.decode(ws, 2, noise="zero"))


def test_generate_truncation_and_mixing():
    m = small(6)
    torch.manual_seed(7)
    z = torch.randn(5, 6, dtype=torch.float64)
    w = m.mapping(z)
    m.update_w_avg(m.mapping(torch.randn(64, 6, dtype=torch.float64)), beta=0.0)
    dec = lambda ws: m.decode(ws, noise="zero")
    torch.testing.assert_close(m.generate(z, noise="zero"), dec(w))
    torch.testing.assert_close(m.generate(z, truncation_psi=0.0, noise="zero"), dec(m.w_avg.expand(5, -1)))
    ws = w.unsqueeze(1).expand(-1, m.num_ws, -1)
    cut = torch.where(torch.arange(m.num_ws).view(1, -1, 1) < 2, m.w_avg + 0.4 * (ws - m.w_avg), ws)
    torch.testing.assert_close(m.generate(z, truncation_psi=0.4, truncation_cutoff=2, noise="zero"), dec(cut))
    # mixing: reproduce the draws (the second z, then the cutoffs) with the same seed
    torch.manual_seed(8)
    mixed = m.generate(z, mixing_prob=1.0, noise="zero")
    torch.manual_seed(8)
    w2 = m.mapping(torch.randn_like(z))
    cutoff = torch.randint(1, m.num_ws, (5,))
    layer = torch.arange(m.num_ws).view(1, -1, 1)
    torch.testing.assert_close(mixed, dec(torch.where(layer < cutoff.view(-1, 1, 1), ws, w2.unsqueeze(1))))
    assert not torch.allclose(mixed, dec(w))


# --- fused vs reference, R1 ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_vs_ref_whole_model(dtype):
    torch.manual_seed(9)
    m = randomize(from_preset("digits-32", fused_scale_resolution=16).to(dtype), 9)
    ref = copy.deepcopy(m).set_impl("ref")
    assert {mod.impl for mod in ref.modules() if isinstance(getattr(mod, "impl", None), str)} == {"ref"}
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-4)
    z = torch.randn(4, m.latent_size, dtype=dtype)
    levels = [(0, 1.0), (1, 0.5), (2, 1.0), (3, 0.5), (3, 1.0)]
    for lod, blend in levels if dtype == torch.float64 else levels[-2:]:
        x = torch.randn(4, 1, 4 * 2 ** lod, 4 * 2 ** lod, dtype=dtype).clamp(-4, 4)  # pixels within encode's margin
        torch.testing.assert_close(m.encode(x, lod, blend), ref.encode(x, lod, blend), **tol)
        out = []
        for model in (m, ref):
            torch.manual_seed(lod)
            out.append(model.generate(z, lod, blend, truncation_psi=0.8, mixing_prob=0.5))
        torch.testing.assert_close(out[0], out[1], **tol)
        torch.testing.assert_close(m.reconstruct(x, lod, blend, "zero"), ref.reconstruct(x, lod, blend, "zero"), **tol)
    with OpRecorder() as rec:
        ref.reconstruct(torch.randn(2, 1, 32, 32, dtype=dtype).clamp(-4, 4))
    assert rec.calls == []
    with OpRecorder() as rec:
        m.reconstruct(torch.randn(2, 1, 32, 32, dtype=dtype).clamp(-4, 4))
    if _lib.has_kernel("cpu"):
        names = {n for n, _ in rec.calls}
        # The encoder's bias + lrelu + statistics run as the adain engine (instance_norm_stats
        # with bias and act), so no separate instance_norm_stats op is left in the model.
        assert {"alae_fast.adain.default", "alae_fast.upfirdn2d.default", "alae_fast.bias_act.default"} <= names


@pytest.mark.parametrize("lod, blend", [(3, 1.0), (2, 0.5)])
def test_r1_double_backward_runs_on_kernels_and_matches_ref(device, lod, blend):
    if not _lib.has_kernel(device.type):
        pytest.skip(f"no compiled kernel for {device.type}")
    torch.manual_seed(11)
    m = randomize(from_preset("digits-32", fused_scale_resolution=16).double(), 11).to(device)
    ref = copy.deepcopy(m).set_impl("ref")
    r = 4 * 2 ** lod
    x = pixels(3, 1, r, r, dtype=torch.float64, device=device)
    x_fake = pixels(3, 1, r, r, dtype=torch.float64, device=device)
    with OpRecorder() as rec:
        loss, grads = r1_grads(m, x, x_fake, lod, blend)
    names = [n for n, _ in rec.calls]
    # the encoder's ops forward, their gradient ops inside the R1 gradient, and those gradient
    # ops differentiated again when backward goes through the penalty
    # (the encoder's bias + lrelu + statistics run as the adain engine; lrelu's second
    # derivative is zero, so no order-2 bias_act_grad is left to call)
    for op in ("adain", "adain_grad", "upfirdn2d", "bias_act", "bias_act_grad"):
        assert f"alae_fast.{op}.default" in names, op
    with OpRecorder() as rec_ref:
        loss_ref, grads_ref = r1_grads(ref, x, x_fake, lod, blend)
    assert rec_ref.calls == []
    assert_r1_matches(loss, grads, loss_ref, grads_ref, grad_rtol=1e-8)


def test_generator_double_backward_matches_ref():
    # Path-length-style: the gradient of G's output w.r.t. w, then backward through it, runs
    # through adain's double backward.
    torch.manual_seed(12)
    m = small(12)
    ref = copy.deepcopy(m).set_impl("ref")
    ws = torch.randn(2, m.num_ws, 6, dtype=torch.float64)
    gy = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    out = {}
    for name, model in (("fused", m), ("ref", ref)):
        model.zero_grad(set_to_none=True)
        w = ws.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((model.decode(w, noise="zero") * gy).sum(), w, create_graph=True)
        g.square().sum().backward()
        out[name] = {n: p.grad for n, p in model.generator.named_parameters() if p.grad is not None}
    assert set(out["fused"]) == set(out["ref"]) and len(out["fused"]) > 10
    for n in out["fused"]:
        torch.testing.assert_close(out["fused"][n], out["ref"][n], rtol=1e-8, atol=1e-9, msg=n)


@pytest.mark.slow
def test_torch_compile_generator_and_encoder_forward():
    torch.manual_seed(13)
    m = from_preset("digits-32")
    ws = torch.randn(4, m.num_ws, m.latent_size)
    x = pixels(4, 1, 32, 32)
    g = torch.compile(m.generator, fullgraph=True)
    e = torch.compile(m.encoder, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(g(ws, 3, 1.0, "zero"), m.generator(ws, 3, 1.0, "zero"), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(e(x, 3, 1.0), m.encoder(x, 3, 1.0), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(g(ws, 2, 0.5, "zero"), m.generator(ws, 2, 0.5, "zero"), rtol=1e-4, atol=1e-4)


# --- config, presets, parameter counts ----------------------------------------------------------

def test_config_round_trip_and_schedule_fields():
    for name in STYLE_PRESETS:
        cfg = preset_config(name)
        text = cfg.to_json()
        assert json.loads(text)["kind"] == "style_alae"
        assert ModelConfig.from_json(text) == cfg and ALAEConfig.from_json(text) == cfg
        assert StyleALAEConfig.from_json(text) == cfg and hash(StyleALAEConfig.from_json(text)) == hash(cfg)
        assert cfg.resolution == 4 * 2 ** cfg.max_lod and cfg.max_lod == cfg.layer_count - 1
        for lod in range(cfg.layer_count):
            assert cfg.per_lod("lod_batch", lod) >= 1 and cfg.per_lod("lod_lr", lod) > 0
            assert cfg.per_lod("lod_kimg", lod) > 0
    table = {name: (preset_config(name).resolution, preset_config(name).latent_size, preset_config(name).layer_count,
                    preset_config(name).start_features, preset_config(name).max_features) for name in STYLE_PRESETS}
    assert table == {"ffhq-1024": (1024, 512, 9, 16, 512), "celeba-hq-256": (256, 512, 7, 64, 512),
                     "bedroom-256": (256, 512, 7, 32, 512), "celeba-128": (128, 256, 6, 64, 256),
                     "digits-32": (32, 20, 4, 8, 32), "photos-32": (32, 64, 4, 8, 32)}
    assert preset_config("digits-32").channels == 1 and preset_config("photos-32").channels == 3
    ffhq = preset_config("ffhq-1024")
    assert ffhq.per_lod("lod_batch", 8) == 32 and ffhq.per_lod("lod_lr", 8) == 0.003 and ffhq.per_lod("lod_kimg", 5) == 960
    data = preset_config("digits-32").to_dict()
    data["lod_lr"] = [1]  # JSON may write 1 for 1.0
    assert StyleALAEConfig.from_dict(data).lod_lr == (1.0,)


def test_model_from_round_tripped_config_loads_state():
    m = small(14)
    rebuilt = build_model(ModelConfig.from_json(m.config.to_json())).double()
    assert type(rebuilt) is StyleALAE
    rebuilt.load_state_dict(m.state_dict())
    x = pixels(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(rebuilt.encode(x), m.encode(x))


@pytest.mark.parametrize("changes, exc, match", [
    (dict(layer_count=0), ValueError, "layer_count"),
    (dict(channels=1.0), TypeError, "channels"),
    (dict(start_features=0), ValueError, "start_features"),
    (dict(to_rgb_gain=0.0), ValueError, "to_rgb_gain"),
    (dict(instance_norm_eps=-1.0), ValueError, "instance_norm_eps"),
    (dict(fused_scale_resolution=0), ValueError, "fused_scale_resolution"),
    (dict(lod_kimg=()), ValueError, "lod_kimg"),
    (dict(lod_lr=(0.001, -1.0)), ValueError, "lod_lr"),
    (dict(lod_batch=(32, 0)), ValueError, "lod_batch"),
    (dict(start_lod=9), ValueError, "start_lod"),
    (dict(train_kimg=0.0), ValueError, "train_kimg"),
    (dict(channels_last=1), TypeError, "channels_last must be a bool"),
    (dict(resolution=256), ValueError, "unknown field"),
])
def test_config_validation(changes, exc, match):
    with pytest.raises(exc, match=match):
        StyleALAEConfig().replace(**changes)


@pytest.mark.parametrize("call, exc, match", [
    (lambda m: m.encode(torch.randn(2, 3, 8, 8, dtype=torch.float64)), ValueError, r"x must have shape \[N, 3, 16, 16\]"),
    (lambda m: m.encode(torch.randn(2, 1, 8, 8, dtype=torch.float64), lod=1), ValueError, "x must have shape"),
    (lambda m: m.encode(torch.randn(2, 3, 16, 16), lod=3), ValueError, "lod must be <= 2"),
    (lambda m: m.encode(torch.randn(2, 3, 16, 16), blend=-0.1), ValueError, "blend"),
    (lambda m: m.encode([0.0]), TypeError, "x must be a torch.Tensor"),
    (lambda m: m.decode(torch.randn(2, 5, dtype=torch.float64)), ValueError, "w must have shape"),
    (lambda m: m.decode(torch.randn(2, 5, 6, dtype=torch.float64)), ValueError, r"\[N, 6, 6\]"),
    (lambda m: m.decode(torch.randn(2, 6, dtype=torch.float64), noise="gaussian"), ValueError, "noise"),
    (lambda m: m.decode(torch.randn(2, 6, dtype=torch.float64), lod=-1), ValueError, "lod"),
    (lambda m: m.generate(torch.randn(2, 7, dtype=torch.float64)), ValueError, "z must have shape"),
    (lambda m: StyleALAE(ALAEConfig()), TypeError, "StyleALAEConfig"),
])
def test_bad_calls(call, exc, match):
    with pytest.raises(exc, match=match):
        call(small(15))


def test_parameter_table_command_and_readme():
    # A fresh process: exactly the presets registered at import (other tests may add some here).
    result = subprocess.run([sys.executable, "-m", "alae_fast.models"], capture_output=True, text=True,
                            check=True, timeout=120)
    table = result.stdout.strip()
    lines = table.splitlines()
    assert lines[0] == "| preset | resolution | latent | F | G | E | D | total |"
    rows = {line.split("|")[1].strip().strip("`"): line for line in lines[2:]}
    assert set(STYLE_PRESETS) | {"mnist-mlp"} <= set(rows)
    for name, line in rows.items():
        c = parameter_counts(name)
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1:] == [str(preset_config(name).resolution if name in STYLE_PRESETS else 28),
                             str(preset_config(name).latent_size),
                             *(f"{c[k]:,}" for k in ("mapping", "generator", "encoder", "discriminator", "total"))]
    assert table == parameter_table(list(rows))
    # The README's Models section carries the same table.
    assert table in README.read_text()
    bad = subprocess.run([sys.executable, "-m", "alae_fast.models", "no-such"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown preset" in bad.stderr
