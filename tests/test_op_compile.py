"""Every public op traces under torch.compile(fullgraph=True) with dynamic=True too, where float
arguments (the ops' own defaults included: eps, gain, alpha) arrive as SymFloats: the argument
checks must not break the graph. Values against eager, over two input sizes."""

import numpy as np
import pytest
import torch

from alae_fast.compat.nvlabs_filtered_lrelu import filtered_lrelu as nvlabs_filtered_lrelu
from alae_fast.compat.nvlabs_ops.bias_act import bias_act as nvlabs_bias_act
from alae_fast.compat.rosinality import fused_leaky_relu
from alae_fast.ops import (adain, bias_act, conv2d_resample, downsample2d, filtered_lrelu, instance_norm_stats,
                           modulate_weight, modulated_conv2d, setup_filter, upfirdn2d, upsample2d)

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

F4 = setup_filter([1, 3, 3, 1])
W = torch.randn(3, 4, 3, 3, generator=torch.Generator().manual_seed(1))

CALLS = {
    "bias_act": lambda x: bias_act(x, None, act="lrelu"),
    "bias_act_gain": lambda x: bias_act(x, None, act="lrelu", gain=2.0, clamp=0.5),
    "upfirdn2d": lambda x: upfirdn2d(x, F4, up=2, padding=[2, 1, 2, 1], gain=4.0),
    "upsample2d": lambda x: upsample2d(x, F4),
    "downsample2d": lambda x: downsample2d(x, F4),
    "instance_norm_stats": lambda x: instance_norm_stats(x)[0],
    "instance_norm_stats_eps": lambda x: instance_norm_stats(x, 1e-5, alpha=0.1, act="lrelu",
                                                             bias=torch.ones(x.shape[1]))[2],
    "adain": lambda x: adain(x, x.mean((2, 3)), x.std((2, 3))),
    "filtered_lrelu": lambda x: filtered_lrelu(x, F4, F4, None, 2, 2, [2, 1, 2, 1]),
    "conv2d_resample": lambda x: conv2d_resample(x, W, F4, up=2, padding=1),
    "modulate_weight": lambda x: modulate_weight(W, x.mean((2, 3)))[0],
    "modulated_conv2d": lambda x: modulated_conv2d(x, W, x.mean((2, 3)) + 1, padding=1),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_compile_dynamic_fullgraph(name):
    fn = CALLS[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="eager", fullgraph=True, dynamic=True)
    g = torch.Generator().manual_seed(0)
    # sizes that are all distinct within a shape: equal ones would be duck-sized together and
    # recompile anyway. After the first size, new sizes must reuse the symbolic graph: an op that
    # turned a size into a Python int would specialise it to one batch or image size.
    for k, shape in enumerate(((2, 4, 8, 6), (3, 4, 12, 10), (5, 4, 9, 7))):
        x = torch.randn(*shape, generator=g)
        with torch.compiler.set_stance("fail_on_recompile" if k else "default"):
            y = compiled(x)
        torch.testing.assert_close(y, fn(x))


# NumPy scalars as float arguments, as StyleGAN3's networks pass them (``gain=np.sqrt(2)``):
# while dynamo traces, a NumPy scalar is a 0-d ndarray, not a numbers.Real, and every op's
# argument check refused it under fullgraph=True (eager took it).
NP_CALLS = {
    "bias_act": lambda x: bias_act(x, None, act="lrelu", alpha=np.float32(0.1), gain=np.sqrt(2), clamp=np.float64(9)),
    "upfirdn2d": lambda x: upfirdn2d(x, F4, up=2, padding=[2, 1, 2, 1], gain=np.float32(4)),
    "instance_norm_stats": lambda x: instance_norm_stats(x, np.float64(1e-5), alpha=np.float64(0.1), act="lrelu",
                                                         bias=torch.ones(x.shape[1]))[0],
    "adain": lambda x: adain(x, x.mean((2, 3)), x.std((2, 3)), eps=np.float64(1e-5), alpha=np.float32(0.3),
                             act="lrelu"),
    "filtered_lrelu": lambda x: filtered_lrelu(x, F4, F4, None, 2, 2, [2, 1, 2, 1], gain=np.sqrt(2),
                                               slope=np.float64(0.2), clamp=np.float32(2)),
    "modulate_weight": lambda x: modulate_weight(W, x.mean((2, 3)), eps=np.float64(1e-6))[0],
    "nvlabs filtered_lrelu": lambda x: nvlabs_filtered_lrelu(x, F4, F4, None, 2, 2, 3, gain=np.sqrt(2), slope=0.2,
                                                             clamp=np.float64(256)),
    "nvlabs bias_act": lambda x: nvlabs_bias_act(x, torch.ones(x.shape[1]), act="lrelu", gain=np.sqrt(2)),
    "rosinality fused_leaky_relu": lambda x: fused_leaky_relu(x, torch.ones(x.shape[1]), np.float64(0.2),
                                                              np.sqrt(2)),
}


@pytest.mark.parametrize("name", list(NP_CALLS))
def test_numpy_scalar_arguments_trace_fullgraph(name):
    fn = NP_CALLS[name]
    torch._dynamo.reset()
    x = torch.randn(2, 4, 8, 6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(torch.compile(fn, backend="eager", fullgraph=True)(x), fn(x))


def test_a_0d_array_is_a_number_and_a_bool_array_is_not():
    x = torch.randn(2, 4, 8, 6, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(bias_act(x, None, act="lrelu", gain=np.array(2.0)), bias_act(x, None, act="lrelu", gain=2.0))
    with pytest.raises(TypeError, match="gain must be a real number or None; got ndarray"):
        bias_act(x, None, act="lrelu", gain=np.array(True))
    with pytest.raises(TypeError, match="gain must be a real number or None; got ndarray"):
        bias_act(x, None, act="lrelu", gain=np.array([2.0]))
    with pytest.raises(ValueError, match="filtered_lrelu: gain must be > 0"):  # the NVlabs range, under compile too
        torch.compile(lambda x: nvlabs_filtered_lrelu(x, F4, F4, gain=-np.sqrt(2)), backend="eager")(x)
