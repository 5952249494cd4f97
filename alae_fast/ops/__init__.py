"""Fused ops: each a registered ``torch.ops.alae_fast`` op with a ``*_ref`` beside it.

Every public op takes ``impl='auto'`` (the compiled kernel for the tensor's device when it
was built, else the reference) or ``impl='ref'``; ALAE_FAST_IMPL=ref in the environment at
import forces the references everywhere.

Bad arguments follow Python's convention, in every op and in the NVlabs and rosinality shims:
an argument of the wrong type (a string or None where a number is expected, a float or bool
where an int is, a tensor where a scalar is, a non-float tensor, anything but a Python or NumPy
bool where a bool is: an int, None, a string such as "False", as torch's own bool arguments
refuse them) raises TypeError; one of the right type with a bad value (NaN or inf, negative,
out of range, a wrong shape or length) raises ValueError. Either message names the op and the
argument: the op the caller called, also where a composite op (modulated_conv2d, filter2d) runs
others. The layers of alae_fast.nn and the Python API of alae_fast.inference take the same rule.
NumPy bools and ints are taken in eager mode; under ``torch.compile`` dynamo traces a NumPy
scalar as an array whose value it does not know, so ``fullgraph=True`` refuses a NumPy bool or
int argument (a NumPy float is read, as StyleGAN3's ``gain=np.sqrt(2)``): pass Python's there.

Each op has a FLOP formula for ``torch.utils.flop_counter`` (:mod:`alae_fast.ops.flops`).
"""

from .bias_act import ACTIVATIONS, bias_act, bias_act_ref

__all__ = ["ACTIVATIONS", "bias_act", "bias_act_ref"]
from .adain import adain, adain_ref  # noqa: E402
from .instance_norm_stats import instance_norm_stats, instance_norm_stats_ref  # noqa: E402
__all__ += ["adain", "adain_ref", "instance_norm_stats", "instance_norm_stats_ref"]

from .conv2d_resample import conv2d_resample  # noqa: E402
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_ref, upsample2d  # noqa: E402

__all__ += ["conv2d_resample", "downsample2d", "filter2d", "setup_filter", "upfirdn2d", "upfirdn2d_ref",
            "upsample2d"]

from .modulated_conv2d import modulate_weight, modulated_conv2d, modulated_conv2d_ref  # noqa: E402
__all__ += ["modulate_weight", "modulated_conv2d", "modulated_conv2d_ref"]

from .filtered_lrelu import filtered_lrelu, filtered_lrelu_ref  # noqa: E402
__all__ += ["filtered_lrelu", "filtered_lrelu_ref"]

# FLOP formulas for torch.utils.flop_counter, registered at import (the rule: alae_fast.ops.flops)
from . import flops  # noqa: E402,F401
