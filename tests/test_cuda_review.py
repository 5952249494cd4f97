"""CUDA paths that no other test reaches, from a static review of csrc/cuda (helper 47).

Each op against its CPU kernel where only the GPU code differs: more planes, samples or
channel groups than grid.y's 65535 (the slab and grid-stride loops), empty tensors (no
0-block launches), inputs made on a side stream (every launch on the current stream), tensors
on a second GPU (the device guards), modulate_weight_grad of an empty batch, and one
filtered_lrelu whose upsampled row is ~2^30 wide (the fused kernel's 32-bit phase
arithmetic). All marked `cuda`: skipped without a GPU, run by benchmarks/gpu_check.sh.
"""

import pytest
import torch

from alae_fast import _lib
from alae_fast.ops import adain, bias_act, filtered_lrelu, instance_norm_stats, modulate_weight, upfirdn2d

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")]

BIG = 70000  # > 65535, the most blocks along grid y or z


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# Each case: (name, make) where make(gen) returns (fn, tensors); fn(*tensors) is the op, and the
# float tensors get gradients. Inputs are float64, so CPU and CUDA agree to rounding.
def _bias_act(g):
    x = torch.randn(3, 70, 5, 7, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    b = torch.randn(70, generator=g, dtype=torch.float64)
    return lambda x, b: bias_act(x, b, act="lrelu", clamp=0.7), [x, b]


def _upfirdn2d_planes(g):
    x = torch.randn(1, BIG, 3, 3, generator=g, dtype=torch.float64)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    return lambda x: upfirdn2d(x, f.to(x.device), up=2, padding=[2, 1, 2, 1]), [x]


def _upfirdn2d_groups_cl(g):
    x = torch.randn(BIG, 33, 3, 3, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    f = torch.tensor([1.0, 2.0, 1.0])
    return lambda x: upfirdn2d(x, f.to(x.device), down=2, padding=1), [x]


def _adain_samples_cl(g):
    n, c, h, w = BIG, 3, 2, 2
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    scale, shift = (torch.randn(n, c, generator=g, dtype=torch.float64) for _ in range(2))
    bias, nw = (torch.randn(c, generator=g, dtype=torch.float64) for _ in range(2))
    noise = torch.randn(n, 1, h, w, generator=g, dtype=torch.float64)
    return (lambda x, scale, shift, bias, nw, noise: adain(x, scale, shift, bias=bias, noise=noise,
                                                           noise_weight=nw),
            [x, scale, shift, bias, nw, noise])


def _instance_norm_stats_samples_cl(g):
    x = torch.randn(BIG, 2, 2, 2, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    return lambda x: instance_norm_stats(x), [x]


def _modulate_weight_samples(g):
    weight = torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(BIG, 3, generator=g, dtype=torch.float64)
    return lambda w, s: modulate_weight(w, s), [weight, styles]


def _filtered_lrelu_planes(g):
    x = torch.randn(1, BIG, 4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(BIG, generator=g, dtype=torch.float64)
    fu, fd = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8, torch.tensor([1.0, 2.0, 1.0]) / 4
    return (lambda x, b: filtered_lrelu(x, fu.to(x.device), fd.to(x.device), b, up=2, down=2, padding=[3, 2, 3, 2],
                                        clamp=1.5), [x, b])


BIG_CASES = {
    "upfirdn2d_planes": _upfirdn2d_planes,
    "upfirdn2d_groups_channels_last": _upfirdn2d_groups_cl,
    "adain_samples_channels_last": _adain_samples_cl,
    "instance_norm_stats_samples_channels_last": _instance_norm_stats_samples_cl,
    "modulate_weight_samples": _modulate_weight_samples,
    "filtered_lrelu_planes": _filtered_lrelu_planes,
}
ALL_CASES = {"bias_act": _bias_act, **BIG_CASES}


def _run(fn, tensors, device, seed, grad=True):
    """Outputs and (with grad) the gradients of <outputs, fixed cotangents> for the float
    tensors, on `device`, moved to the CPU."""
    ins = [t.detach().to(device).requires_grad_(grad and t.is_floating_point()) for t in tensors]
    outs = fn(*ins)
    outs = outs if isinstance(outs, tuple) else (outs,)
    g = _gen(seed)
    cots = [torch.randn(o.shape, generator=g, dtype=o.dtype).to(device) for o in outs]
    grads = torch.autograd.grad(outs, [t for t in ins if t.requires_grad], cots) if grad else ()
    if ins[0].is_cuda:
        torch.cuda.synchronize(ins[0].device)
    return [t.detach().cpu() for t in (*outs, *grads)]


def _assert_same(got, want, what):
    assert len(got) == len(want), what
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"{what}: result {i} has shape {tuple(a.shape)}, CPU {tuple(b.shape)}"
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, equal_nan=True, msg=lambda m: f"{what}, result {i}: {m}")


@pytest.mark.parametrize("case", list(BIG_CASES))
def test_more_than_65535_planes_or_samples_match_cpu(case):
    fn, tensors = BIG_CASES[case](_gen(1))
    _assert_same(_run(fn, tensors, "cuda", 2), _run(fn, tensors, "cpu", 2), case)


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_inputs_made_on_a_side_stream(case):
    fn, tensors = ALL_CASES[case](_gen(3))
    want = _run(fn, tensors, "cpu", 4)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        # The inputs are only ready once a long matmul on the side stream is done: a kernel
        # launched on another stream would read them before they are written.
        a = torch.randn(3072, 3072, device="cuda") / 64
        late = (a @ a @ a).mean() * 0
        ready = [(t.to("cuda") + late.to(t.dtype)) if t.is_floating_point() else t.to("cuda") for t in tensors]
        got = _run(fn, ready, "cuda", 4)
    _assert_same(got, want, f"{case} on a side stream")


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_tensors_on_the_second_gpu(case):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    fn, tensors = ALL_CASES[case](_gen(5))
    with torch.cuda.device(0):
        got = _run(fn, tensors, "cuda:1", 6)
    _assert_same(got, _run(fn, tensors, "cpu", 6), f"{case} on cuda:1")


def _empty_cases():
    f = torch.tensor([1.0, 2.0, 1.0])
    yield "bias_act N=0", lambda x, b: bias_act(x, b, act="tanh"), [torch.randn(0, 3, 4), torch.randn(3)]
    yield "bias_act C=0", lambda x, b: bias_act(x, b, act="lrelu"), [torch.randn(2, 0, 4), torch.randn(0)]
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4)]:
        x = torch.randn(shape, dtype=torch.float64)
        yield f"upfirdn2d {shape}", lambda x: upfirdn2d(x, f.to(x.device), up=2, padding=1), [x]
        yield f"adain {shape}", lambda x: adain(x, None, None), [x]
        yield f"instance_norm_stats {shape}", lambda x: instance_norm_stats(x), [x]
        yield f"filtered_lrelu {shape}", lambda x: filtered_lrelu(x, f.to(x.device), f.to(x.device), up=2, down=2,
                                                                  padding=2), [x]
    # H = 0: only the padding reaches upfirdn2d's output (forward only: the op's backward, the
    # adjoint upfirdn2d onto an empty plane, is refused on every device as a padding that leaves
    # no output); adain's statistics are the mean of nothing
    pad_only = lambda x: upfirdn2d(x, f.to(x.device), padding=[1, 1, 2, 2])  # noqa: E731
    yield "upfirdn2d H=0", pad_only, [torch.randn(2, 3, 0, 4)], False
    yield "adain H=0", lambda x: adain(x, None, None), [torch.randn(2, 3, 0, 4)]
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    yield "modulate_weight N=0", modulate_weight, [w, torch.randn(0, 3, dtype=torch.float64)]
    yield "modulate_weight O=0", modulate_weight, [torch.randn(0, 3, 3, 3), torch.randn(2, 3)]


@pytest.mark.parametrize("i", range(len(list(_empty_cases()))))
def test_empty_tensors_match_cpu(i):
    what, fn, tensors, *grad = list(_empty_cases())[i]
    grad = grad[0] if grad else True
    _assert_same(_run(fn, tensors, "cuda", 7, grad), _run(fn, tensors, "cpu", 7, grad), what)


def test_modulate_weight_grad_of_an_empty_batch_is_zero():
    # No samples: nothing to differentiate, so the weight gradient is exactly 0 (the CPU's
    # answer), even where the weight is inf or NaN.
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    weight[0, 0, 0, 0], weight[1, 2, 1, 1] = float("inf"), float("nan")
    styles, d = torch.empty(0, 3, dtype=torch.float64), torch.empty(0, 4, dtype=torch.float64)
    for dev in ("cpu", "cuda"):
        gw, gs = torch.ops.alae_fast.modulate_weight_grad(None, None, weight.to(dev), styles.to(dev), d.to(dev))
        assert torch.equal(gw.cpu(), torch.zeros_like(weight)), dev
        assert gs.shape == (0, 3) and gs.dtype == weight.dtype, dev


@pytest.mark.slow
def test_filtered_lrelu_row_of_2_30_upsampled_samples():
    """A crop of ~2^30 on the left of a 2^29-sample row upsampled 4x: every extent and pad is
    below 2^30, so the fused kernel used to take it, and its phase arithmetic m + t0 - p1
    reached 2^31 in 32 bits at the last columns (a wrapped input index, read far outside the
    tile's shared memory). Needs ~11 GB of GPU memory. The last columns are checked against the
    CPU kernel on the row's tail (the same sums, shifted)."""
    W, K = 2 ** 29 - 1, 256
    px0, px1 = -(2 ** 30 - 1), 5
    fu = torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = torch.Generator(device="cuda").manual_seed(11)
    x = torch.randn(1, 1, 1, W, device="cuda", generator=g)
    y = filtered_lrelu(x, fu.cuda(), None, None, up=4, down=1, padding=[px0, px1, 0, 0], slope=0.3)
    assert y.shape == (1, 1, 1, 2 ** 30 - 1)
    tail = y[..., -(4 * K - 8):].cpu()
    # The tail of x with no left padding gives the same middle columns, shifted by
    # 4 * (W - K) + px0; its first few also read samples before the tail, so they are left out.
    want = filtered_lrelu(x[..., W - K:].cpu(), fu, None, None, up=4, down=1, padding=[0, px1, 0, 0], slope=0.3)
    torch.testing.assert_close(tail, want[..., -(4 * K - 8):], rtol=1e-5, atol=1e-5)
