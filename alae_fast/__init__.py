"""alae_fast: fused StyleGAN-family ops and the Adversarial Latent Autoencoder.

``alae_fast.ops`` holds the ops (compiled CPU/CUDA kernels behind ``torch.ops.alae_fast``,
each with a pure-PyTorch ``*_ref``), ``alae_fast.nn`` the layers built on them.
"""

from ._omp import limit_spinning

limit_spinning()  # before torch loads libgomp: see alae_fast/_omp.py

from ._lib import build_info, load_error  # noqa: E402
from . import ops, nn  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_info", "load_error", "ops", "nn", "__version__"]
