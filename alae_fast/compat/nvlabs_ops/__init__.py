"""NVlabs' ``torch_utils.ops`` modules (StyleGAN2-ADA, StyleGAN3) on alae_fast's ops.

One module per NVlabs module, with the names NVlabs' own code reads from it:

==========================  =================================================================
``bias_act``                ``bias_act``, ``activation_funcs`` (``def_alpha``, ``def_gain``, ...)
``upfirdn2d``               ``upfirdn2d``, ``setup_filter``, ``filter2d``, ``upsample2d``,
                            ``downsample2d``, ``_parse_scaling``, ``_parse_padding``,
                            ``_get_filter_size``
``conv2d_resample``         ``conv2d_resample``
``conv2d_gradfix``          ``conv2d``, ``conv_transpose2d``, ``no_weight_gradients``, ``enabled``
``grid_sample_gradfix``     ``grid_sample``, ``enabled``
``fma``                     ``fma``
``filtered_lrelu``          (StyleGAN3) ``filtered_lrelu``
==========================  =================================================================

:func:`alae_fast.compat.nvlabs.install` puts them in ``sys.modules`` as
``torch_utils.ops.<name>``, so NVlabs' ``networks.py``, ``augment.py`` and
``networks_stylegan3.py`` run unchanged on them. Written from the documented semantics; no
NVlabs code is used (that code's licence is non-commercial).
"""

# The modules install() registers, in import order. OPTIONAL ones are skipped when their file
# is absent (filtered_lrelu's shim is added with that op).
MODULES = ("bias_act", "upfirdn2d", "conv2d_resample", "conv2d_gradfix", "grid_sample_gradfix", "fma",
           "filtered_lrelu")
OPTIONAL_MODULES: tuple[str, ...] = ()
