"""MLP ALAE: architecture against a hand-written forward, parameter counts from the paper's
layer sizes, config JSON round trip, presets, truncation and mixing, fused vs reference for
the whole model, and R1's double backward through the fused kernels."""

import copy
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from alae_fast import _lib
from alae_fast.models import (ALAEConfig, MLPALAE, MLPALAEConfig, ModelConfig, build_model, from_preset,
                              list_presets, preset_config, register_preset)
from alae_fast.models import presets as presets_module
from alae_fast.training.losses import discriminator_loss
from alae_fast_tests_support import OpRecorder, assert_r1_matches, r1_grads

needs_kernels = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = from_preset("mnist-mlp")
    with torch.no_grad():  # non-zero biases, so that the bias path is exercised
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.3 / m.get_submodule(name.rsplit(".", 1)[0]).bias_lrmul)
    return m


def eq_linear(x, layer, act):
    """One equalized-lr layer written from the definition: weights * sqrt(2)*lrmul/sqrt(fan_in)."""
    fan_in = layer.weight.shape[1]
    y = x @ (layer.weight * (math.sqrt(2) * layer.lrmul / math.sqrt(fan_in))).T + layer.bias * layer.lrmul
    return torch.where(y > 0, y, 0.2 * y) if act else y


def test_architecture_matches_hand_written_forward(model):
    torch.manual_seed(1)
    e, g, f, d = (list(getattr(model, n).layers) for n in ("encoder", "generator", "mapping", "discriminator"))
    # The paper's sizes and learning-rate multipliers.
    assert [(l.in_features, l.out_features, l.lrmul) for l in e] == [(784, 1024, 1), (1024, 1024, 1), (1024, 50, 1)]
    assert [(l.in_features, l.out_features, l.lrmul) for l in g] == [(50, 1024, 1), (1024, 1024, 1), (1024, 784, 1)]
    assert [(l.in_features, l.out_features, l.lrmul) for l in f] == [(50, 50, 0.1)] * 6
    assert [(l.in_features, l.out_features, l.lrmul) for l in d] == [(50, 50, 0.1), (50, 50, 0.1), (50, 1, 0.1)]

    x = torch.rand(5, 1, 28, 28)
    h = x.reshape(5, 784)
    h = eq_linear(eq_linear(eq_linear(h, e[0], True), e[1], True), e[2], False)
    w = model.encode(x)
    torch.testing.assert_close(w, h, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.encode(x.reshape(5, 784)), w)

    y = eq_linear(eq_linear(eq_linear(w, g[0], True), g[1], True), g[2], False).reshape(5, 1, 28, 28)
    torch.testing.assert_close(model.decode(w), y, rtol=1e-4, atol=1e-4)

    z = torch.randn(5, 50) * 3
    u = z / torch.sqrt(z.square().mean(1, keepdim=True) + 1e-8)
    for layer in f:
        u = eq_linear(u, layer, True)
    torch.testing.assert_close(model.mapping(z), u, rtol=1e-4, atol=1e-4)

    s = eq_linear(eq_linear(eq_linear(w, d[0], False), d[1], False), d[2], False).reshape(5)
    torch.testing.assert_close(model.discriminator(w), s, rtol=1e-4, atol=1e-4)
    # No activations: D is affine in w.
    w2 = torch.randn(5, 50)
    torch.testing.assert_close(model.discriminator(0.3 * w + 0.7 * w2),
                               0.3 * model.discriminator(w) + 0.7 * model.discriminator(w2), rtol=1e-4, atol=1e-4)


def test_parameter_counts_by_hand(model):
    def dense(i, o):
        return i * o + o

    enc = dense(784, 1024) + dense(1024, 1024) + dense(1024, 50)
    gen = dense(50, 1024) + dense(1024, 1024) + dense(1024, 784)
    mapping = 6 * dense(50, 50)
    disc = dense(50, 50) + dense(50, 50) + dense(50, 1)
    counts = model.parameter_counts()
    assert counts == {"encoder": enc, "generator": gen, "mapping": mapping, "discriminator": disc,
                      "total": enc + gen + mapping + disc}
    assert counts["total"] == 3_830_565
    assert sum(p.numel() for p in MLPALAE(mapping_layers=8).mapping.parameters()) == 8 * dense(50, 50)


def test_shapes_and_interface(model):
    z = torch.randn(3, 50)
    x = torch.rand(3, 1, 28, 28)
    assert model.num_ws == 1
    assert model.w_avg.shape == (50,) and "w_avg" in dict(model.named_buffers())
    w = model.encode(x, lod=0, blend=0.5)
    assert w.shape == (3, 50)
    assert model.decode(w, lod=3, blend=1.0, noise="zero").shape == (3, 1, 28, 28)
    torch.testing.assert_close(model.decode(w.unsqueeze(1)), model.decode(w))
    assert model.discriminator(w).shape == (3,)
    assert model.generate(z).shape == (3, 1, 28, 28)
    torch.testing.assert_close(model.generate(z, mixing_prob=1.0), model.decode(model.mapping(z)))
    torch.testing.assert_close(model.reconstruct(x), model.decode(model.encode(x)))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.encode(torch.rand(2, 1, 27, 27)), "x must have shape"),
    (lambda m: m.encode(torch.rand(2, 1, 28, 28), lod=-1), "lod"),
    (lambda m: m.encode(torch.rand(2, 784), blend=1.5), "blend"),
    (lambda m: m.decode(torch.rand(2, 49)), "w must have shape"),
    (lambda m: m.decode(torch.rand(2, 2, 50)), "w must have shape"),
    (lambda m: m.decode(torch.rand(2, 50), noise="gaussian"), "noise"),
    (lambda m: m.generate(torch.rand(2, 51)), "z must have shape"),
    (lambda m: m.generate(torch.rand(2, 50), truncation_psi=float("inf")), "truncation_psi"),
    (lambda m: m.generate(torch.rand(2, 50), truncation_cutoff=-1), "truncation_cutoff"),
    (lambda m: m.generate(torch.rand(2, 50), mixing_prob=2.0), "mixing_prob"),
    (lambda m: m.update_w_avg(torch.rand(2, 3)), "latent_size"),
    (lambda m: m.set_impl("gpu"), "impl"),
])
def test_bad_calls(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model)


def test_bad_types(model):
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model.encode([0.0] * 784)
    with pytest.raises(TypeError, match="w must be a torch.Tensor"):
        model.decode([0.0] * 50)
    with pytest.raises(TypeError, match="MLPALAEConfig"):
        MLPALAE(ALAEConfig())


def test_truncation_and_w_avg():
    torch.manual_seed(2)
    m = MLPALAE()
    z = torch.randn(6, 50)
    w = m.mapping(z)
    m.update_w_avg(w, beta=0.0)
    torch.testing.assert_close(m.w_avg, w.mean(0))
    prev = m.w_avg.clone()
    w2 = m.mapping(torch.randn(6, 50))
    m.update_w_avg(w2)  # config beta 0.995
    torch.testing.assert_close(m.w_avg, w2.mean(0) + 0.995 * (prev - w2.mean(0)))
    assert not m.w_avg.requires_grad

    with torch.no_grad():
        avg_image = m.decode(m.w_avg.expand(6, -1))
        torch.testing.assert_close(m.generate(z, truncation_psi=0.0), avg_image)
        torch.testing.assert_close(m.generate(z, truncation_psi=0.5),
                                   m.decode(m.w_avg + 0.5 * (w - m.w_avg)))
        torch.testing.assert_close(m.generate(z, truncation_psi=0.5, truncation_cutoff=1),
                                   m.decode(m.w_avg + 0.5 * (w - m.w_avg)))
        torch.testing.assert_close(m.generate(z, truncation_psi=0.5, truncation_cutoff=0), m.decode(w))
    # Per style input, for the models that have several: only inputs below the cutoff move.
    ws = torch.randn(6, 4, 50)
    t = m.truncate(ws, 0.25, cutoff=2)
    torch.testing.assert_close(t[:, :2], m.w_avg + 0.25 * (ws[:, :2] - m.w_avg))
    torch.testing.assert_close(t[:, 2:], ws[:, 2:])


def test_mix_styles():
    torch.manual_seed(3)
    m = MLPALAE(latent_size=8, mapping_layers=1, encoder_hidden=(4,), generator_hidden=(4,))
    ws = torch.randn(200, 5, 8)
    w2 = torch.randn(200, 8)
    torch.testing.assert_close(m.mix_styles(ws, w2, 0.0), ws)
    mixed = m.mix_styles(ws, w2, 1.0)
    from_first = (mixed == ws).all(2)
    from_second = (mixed == w2.unsqueeze(1)).all(2)
    assert (from_first ^ from_second).all()
    cutoff = from_first.sum(1)
    # Each sample takes inputs [0, c) from ws and [c, 5) from w2, c uniform in [1, 5).
    assert (from_first == (torch.arange(5) < cutoff.unsqueeze(1))).all()
    assert set(cutoff.tolist()) == {1, 2, 3, 4}
    some = m.mix_styles(ws, w2, 0.5)
    n_mixed = (~(some == ws).all(2).all(1)).sum().item()
    assert 60 < n_mixed < 140


def test_config_json_round_trip():
    default = MLPALAEConfig()
    assert default.latent_size == 50 and default.mapping_layers == 6 and default.mapping_lrmul == 0.1
    assert default.discriminator_layers == 3 and default.discriminator_lrmul == 0.1 and default.image_features == 784
    custom = default.replace(latent_size=16, encoder_hidden=(64, 32, 8), mapping_layers=2, encoder_out_act="lrelu")
    for cfg in (default, custom):
        text = cfg.to_json()
        assert json.loads(text)["kind"] == "mlp_alae"
        assert MLPALAEConfig.from_json(text) == cfg
        assert ModelConfig.from_json(text) == cfg
        assert ALAEConfig.from_json(text) == cfg
        assert hash(ModelConfig.from_json(text)) == hash(cfg)
    data = custom.to_dict()
    assert data["encoder_hidden"] == [64, 32, 8]
    data["mapping_lrmul"] = 1  # JSON may write 1 for 1.0
    assert MLPALAEConfig.from_dict(data).mapping_lrmul == 1.0
    del data["kind"]
    assert MLPALAEConfig.from_dict(data).encoder_hidden == (64, 32, 8)
    with pytest.raises(ValueError, match="kind"):
        ModelConfig.from_dict(data)
    with pytest.raises(ValueError, match="unknown field"):
        MLPALAEConfig.from_dict({**data, "latnet_size": 3})
    with pytest.raises(ValueError, match="kind must be 'mlp_alae'"):
        MLPALAEConfig.from_dict({**data, "kind": "style_alae"})
    with pytest.raises(ValueError, match="unknown kind"):
        ModelConfig.from_dict({"kind": "nope"})


def test_model_from_round_tripped_config_loads_state(model):
    rebuilt = build_model(ModelConfig.from_json(model.config.to_json()))
    assert type(rebuilt) is MLPALAE
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 784)
    torch.testing.assert_close(rebuilt.encode(x), model.encode(x))


@pytest.mark.parametrize("changes, exc, match", [
    (dict(latent_size=0), ValueError, "latent_size"),
    (dict(mapping_layers=2.0), TypeError, "mapping_layers"),
    (dict(mapping_lrmul=0.0), ValueError, "mapping_lrmul"),
    (dict(discriminator_lrmul=-1.0), ValueError, "discriminator_lrmul"),
    (dict(lrelu_slope=2.0), ValueError, "lrelu_slope"),
    (dict(encoder_hidden=(8, 0)), ValueError, "encoder_hidden"),
    (dict(generator_hidden="1024"), ValueError, "generator_hidden"),
    (dict(encoder_out_act="tanh"), ValueError, "encoder_out_act"),
    (dict(w_avg_beta=1.5), ValueError, "w_avg_beta"),
    (dict(latnet_size=3), ValueError, "unknown field"),
    (dict(pixel_range=(1.0, 0.0)), ValueError, "pixel_range"),
    (dict(pixel_range=(0.0, float("inf"))), ValueError, "pixel_range"),
    (dict(pixel_range=(0.0,)), ValueError, "pixel_range"),
    (dict(pixel_range="01"), ValueError, "pixel_range"),
])
def test_config_validation(changes, exc, match):
    with pytest.raises(exc, match=match):
        MLPALAEConfig().replace(**changes)


def test_pixel_range_maps_at_encode_and_decode():
    """A model working in [0, 1] (the official mnist_ref MLP) takes and gives [-1, 1] through
    encode/decode, and its own range with native=True; the default range is untouched."""
    torch.manual_seed(3)
    ref = from_preset("mnist-ref", latent_size=8, encoder_hidden=(16,), generator_hidden=(16,)).double()
    assert ref.config.pixel_range == (0.0, 1.0) and preset_config("mnist-ref").pixel_range == (0.0, 1.0)
    x01 = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    w = torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(ref.encode(x01 * 2 - 1), ref.encoder(x01), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref.encode(x01, native=True), ref.encoder(x01), rtol=0, atol=0)
    torch.testing.assert_close(ref.decode(w), ref.generator(w) * 2 - 1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref.decode(w, native=True), ref.generator(w), rtol=0, atol=0)
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64) * 4 - 2  # the map is affine, not a clamp
    torch.testing.assert_close(ref.from_native(ref.to_native(x)), x, rtol=1e-12, atol=1e-12)
    odd = ref.config.replace(pixel_range=(-0.5, 3.0))
    m = build_model(odd).double()
    torch.testing.assert_close(m.to_native(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)),
                               torch.tensor([-0.5, 1.25, 3.0], dtype=torch.float64))
    default = MLPALAE(latent_size=8, encoder_hidden=(16,), generator_hidden=(16,))
    assert default.to_native(x01) is x01 and default.from_native(x01) is x01
    assert MLPALAEConfig.from_dict({**odd.to_dict()}).pixel_range == (-0.5, 3.0)  # JSON lists back to a tuple


def test_presets():
    assert "mnist-mlp" in list_presets()
    assert preset_config("mnist-mlp") == MLPALAEConfig()
    small = from_preset("mnist-mlp", latent_size=8, encoder_hidden=(16,), generator_hidden=(16,))
    assert isinstance(small, MLPALAE) and small.encode(torch.rand(2, 784)).shape == (2, 8)
    with pytest.raises(ValueError, match="unknown preset"):
        from_preset("mnist-mpl")
    with pytest.raises(ValueError, match="already exists"):
        register_preset("mnist-mlp", MLPALAEConfig())
    try:
        register_preset("test-tiny-mlp", MLPALAEConfig(latent_size=4, encoder_hidden=(8,), generator_hidden=(8,)), "tiny")
        assert "test-tiny-mlp" in list_presets()
        assert from_preset("test-tiny-mlp").latent_size == 4
    finally:
        presets_module._PRESETS.pop("test-tiny-mlp", None)
    # the data a preset's schedule was made for: what a run of it on the embedded digits is warned of
    assert (presets_module.get_preset("mnist-mlp").data, presets_module.get_preset("mnist-mlp").data_images) == \
        ("MNIST's IDX files", 60000)
    for bad, error, said in (({"data": 3}, TypeError, "data must be a str or None; got int"),
                             ({"data_images": 1.5}, TypeError, "data_images must be an int or None; got float"),
                             ({"data_images": True}, TypeError, "data_images must be an int or None; got bool"),
                             ({"data_images": 0}, ValueError, "data_images must be >= 1; got 0")):
        with pytest.raises(error, match=f"^register_preset: {said}$"):
            register_preset("test-bad-data", MLPALAEConfig(), **bad)
        assert "test-bad-data" not in presets_module._PRESETS
    with torch.device("meta"):
        meta = from_preset("mnist-mlp")
    assert all(p.is_meta for p in meta.parameters())
    assert meta.parameter_counts()["total"] == 3_830_565


def test_fused_vs_ref_whole_model(model):
    torch.manual_seed(4)
    ref = copy.deepcopy(model).set_impl("ref")
    assert {m.impl for m in ref.modules() if hasattr(m, "impl")} == {"ref"}
    x = torch.rand(4, 1, 28, 28)
    z = torch.randn(4, 50)
    torch.testing.assert_close(model.encode(x), ref.encode(x))
    torch.testing.assert_close(model.generate(z, truncation_psi=0.7), ref.generate(z, truncation_psi=0.7))
    torch.testing.assert_close(model.reconstruct(x), ref.reconstruct(x))
    torch.testing.assert_close(model.discriminator(model.encode(x)), ref.discriminator(ref.encode(x)))


def test_r1_double_backward_runs_on_kernels_and_matches_ref(device):
    if not _lib.has_kernel(device.type):
        pytest.skip(f"no compiled kernel for {device.type}")
    torch.manual_seed(5)
    m = MLPALAE().double().to(device)
    ref = copy.deepcopy(m).set_impl("ref")
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64, device=device)
    x_fake = torch.rand(4, 1, 28, 28, dtype=torch.float64, device=device)
    with OpRecorder() as rec:
        loss, grads = r1_grads(m, x, x_fake)
    # Forward kernel and its gradient (order 1) in the R1 gradient; when backward goes through
    # the penalty, the gradient op is differentiated again: in its cotangent by the same op
    # (order 1 again), while lrelu's second derivative is zero and costs no call.
    grad_calls = [c for c in rec.calls if c == ("alae_fast.bias_act_grad.default", 1)]
    forward_calls = [c for c in rec.calls if c[0] == "alae_fast.bias_act.default"]
    assert len(grad_calls) > len(forward_calls) > 0
    assert ("alae_fast.bias_act_grad.default", 2) not in rec.calls
    assert any(name == "alae_fast.bias_act.default" for name, _ in rec.calls)
    with OpRecorder() as rec_ref:
        loss_ref, grads_ref = r1_grads(ref, x, x_fake)
    assert rec_ref.calls == []
    assert_r1_matches(loss, grads, loss_ref, grads_ref, grad_rtol=1e-9)


SCRIPT = textwrap.dedent("""
    import sys, torch
    from alae_fast.models import MLPALAE
    from alae_fast.ops._dispatch import use_kernel
    from alae_fast.training.losses import discriminator_loss
    assert not use_kernel(torch.zeros(1), "auto", "check"), "ALAE_FAST_IMPL=ref did not force the references"
    torch.manual_seed(6)
    m = MLPALAE(encoder_hidden=(64, 32), generator_hidden=(32,)).double()
    x = torch.rand(3, 784, dtype=torch.float64)
    x_fake = torch.rand(3, 784, dtype=torch.float64)
    loss = discriminator_loss(m.encode, m.discriminator, x, x_fake)
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": {n: p.grad for n, p in m.named_parameters() if p.grad is not None}},
               sys.argv[1])
""")


@needs_kernels
def test_env_var_forces_reference_for_whole_model(tmp_path):
    out = tmp_path / "ref.pt"
    env = dict(os.environ, ALAE_FAST_IMPL="ref")
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, check=True, timeout=120)
    ref = torch.load(out)
    torch.manual_seed(6)
    m = MLPALAE(encoder_hidden=(64, 32), generator_hidden=(32,)).double()
    x = torch.rand(3, 784, dtype=torch.float64)
    x_fake = torch.rand(3, 784, dtype=torch.float64)
    with OpRecorder() as rec:
        loss = discriminator_loss(m.encode, m.discriminator, x, x_fake)
        loss.backward()
    # the kernels ran, the R1 double backward included (gradient op differentiated again)
    assert sum(c == ("alae_fast.bias_act_grad.default", 1) for c in rec.calls) > sum(
        c[0] == "alae_fast.bias_act.default" for c in rec.calls) > 0
    torch.testing.assert_close(loss.detach(), ref["loss"], rtol=1e-10, atol=1e-10)
    for n, p in m.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(p.grad, ref["grads"][n], rtol=1e-9, atol=1e-9, msg=n)


def test_half_precision_forward():
    torch.manual_seed(7)
    m = MLPALAE(encoder_hidden=(64,), generator_hidden=(64,))
    x = torch.rand(2, 784)
    w = m.encode(x)
    mb = copy.deepcopy(m).to(torch.bfloat16)
    wb = mb.encode(x.bfloat16())
    assert wb.dtype == torch.bfloat16
    torch.testing.assert_close(wb.float(), w, rtol=5e-2, atol=5e-2)


@pytest.mark.slow
def test_torch_compile_generator_and_encoder_forward():
    torch.manual_seed(8)
    m = MLPALAE()
    w, x = torch.randn(4, 50), torch.rand(4, 1, 28, 28)
    g = torch.compile(m.generator, fullgraph=True)
    e = torch.compile(m.encoder, fullgraph=True)
    torch.testing.assert_close(g(w), m.generator(w))
    torch.testing.assert_close(e(x), m.encoder(x))
