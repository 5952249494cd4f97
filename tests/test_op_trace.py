"""torch.jit.trace of every op and shim, as NVlabs-derived code exports its networks: the trace
runs and gives eager's result on a new input of the same shape. Weights' and batches' sizes
become constants of the trace (as in NVlabs' and rosinality's code); before, sizes read from
weights reached integer arguments as traced tensors and were refused (conv2d_resample with up > 1
and a kernel larger than 1x1, fused modulated_conv2d)."""

import warnings

import pytest
import torch

import alae_fast.ops as ops
from alae_fast.compat import nvlabs
from alae_fast.compat import rosinality as rosi


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


F4 = nvlabs.setup_filter([1, 3, 3, 1])
W = _rand(4, 3, 3, 3, seed=1)
W1 = _rand(4, 3, 1, 1, seed=2)
B = _rand(3, seed=3)
K = rosi.make_kernel([1, 3, 3, 1])

# (name, function of the traced inputs, inputs' shapes)
CASES = [
    ("bias_act", lambda x: ops.bias_act(x, B, act="lrelu", clamp=2.0), [(2, 3, 5, 6)]),
    ("upfirdn2d", lambda x: ops.upfirdn2d(x, F4, up=2, down=1, padding=[2, 1, 2, 1]), [(2, 3, 5, 6)]),
    ("upsample2d", lambda x: nvlabs.upsample2d(x, F4), [(2, 3, 5, 6)]),
    ("downsample2d", lambda x: nvlabs.downsample2d(x, F4), [(2, 3, 6, 8)]),
    ("filter2d", lambda x: nvlabs.filter2d(x, F4), [(2, 3, 5, 6)]),
    ("conv2d_resample up", lambda x: nvlabs.conv2d_resample(x, W, F4, up=2, padding=1), [(2, 3, 6, 6)]),
    ("conv2d_resample down", lambda x: nvlabs.conv2d_resample(x, W, F4, down=2, padding=1), [(2, 3, 8, 8)]),
    ("conv2d_resample 1x1 up", lambda x: nvlabs.conv2d_resample(x, W1, F4, up=2), [(2, 3, 6, 6)]),
    ("conv2d_resample plain", lambda x: nvlabs.conv2d_resample(x, W, padding=1), [(2, 3, 6, 6)]),
    ("modulated_conv2d fused", lambda x, s: nvlabs.modulated_conv2d(x, W, s, padding=1), [(2, 3, 6, 6), (2, 3)]),
    ("modulated_conv2d fused up", lambda x, s: nvlabs.modulated_conv2d(x, W, s, up=2, padding=1,
                                                                       resample_filter=F4), [(2, 3, 6, 6), (2, 3)]),
    ("modulated_conv2d not fused", lambda x, s: nvlabs.modulated_conv2d(x, W, s, padding=1, fused_modconv=False),
     [(2, 3, 6, 6), (2, 3)]),
    ("modulated_conv2d noise", lambda x, s, n: nvlabs.modulated_conv2d(x, W, s, noise=n, padding=1),
     [(2, 3, 6, 6), (2, 3), (2, 1, 6, 6)]),
    ("filtered_lrelu", lambda x: nvlabs.filtered_lrelu(x, F4, F4, B, up=2, down=2, padding=2), [(2, 3, 8, 8)]),
    ("adain", lambda x, s, b: ops.adain(x, s, b, bias=B), [(2, 3, 5, 5), (2, 3), (2, 3)]),
    ("instance_norm_stats", lambda x: ops.instance_norm_stats(x)[0], [(2, 3, 5, 5)]),
    ("rosinality upfirdn2d", lambda x: rosi.upfirdn2d(x, K, up=2, pad=(2, 1)), [(2, 3, 5, 6)]),
    ("rosinality fused_leaky_relu", lambda x: rosi.fused_leaky_relu(x, B), [(2, 3, 5, 6)]),
    ("rosinality kernel made in forward", lambda x: rosi.upfirdn2d(x, rosi.make_kernel([1, 3, 3, 1]), up=2, pad=(2, 1)),
     [(2, 3, 5, 6)]),
]


@pytest.mark.parametrize("name, fn, shapes", CASES, ids=[c[0] for c in CASES])
def test_trace_gives_eager_results(name, fn, shapes):
    inputs = [_rand(*s, seed=10 + i) for i, s in enumerate(shapes)]
    with warnings.catch_warnings():
        # the tracer's own notes (deprecation; shapes and argument checks baked into the trace)
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(fn, tuple(inputs), check_trace=False)
    fresh = [_rand(*s, seed=20 + i) for i, s in enumerate(shapes)]
    torch.testing.assert_close(traced(*fresh), fn(*fresh))


@pytest.mark.parametrize("name, fn, shapes", CASES, ids=[c[0] for c in CASES])
def test_the_argument_checks_add_no_tracer_warnings(name, fn, shapes):
    # a new user's trial counted 9 TracerWarnings for bias_act and upsample2d, 82 for a small
    # generator, all from the checks' comparisons of sizes (traced tensors under trace); NVlabs
    # wraps its own shape asserts in misc.suppress_tracer_warnings()
    inputs = [_rand(*s, seed=10 + i) for i, s in enumerate(shapes)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.trace(fn, tuple(inputs), check_trace=False)
    ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
            if issubclass(w.category, torch.jit.TracerWarning) and "alae_fast" in w.filename]
    assert ours == []


def test_the_checks_still_refuse_in_eager_mode_after_a_trace():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(lambda x: ops.bias_act(x, B), (_rand(2, 3, 4, 4),), check_trace=False)
    with pytest.raises(ValueError, match="b must be 1-D of length x.shape"):
        ops.bias_act(_rand(2, 4, 4, 4), B)
    with pytest.raises(ValueError, match="padding leaves no output"):
        ops.upfirdn2d(_rand(1, 1, 2, 2), F4, padding=-2)
    with pytest.raises(ValueError, match="pad .* leaves no output"):
        rosi.upfirdn2d(_rand(1, 1, 2, 2), K, pad=(-2, -2))
    # taps summing to 0 in a traced forward are refused as the trace is made (they are its constants)
    with pytest.raises(ValueError, match="kernel taps must not sum to 0"):
        torch.jit.trace(lambda x: rosi.upfirdn2d(x, rosi.make_kernel([1.0, -1.0])), (_rand(1, 1, 4, 4),))
