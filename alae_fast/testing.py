"""Helpers shared by the test suite (and useful to users testing their own layers)."""

from __future__ import annotations

import torch

# Per-dtype tolerances for comparing an op against a float64 oracle evaluated on the same
# (already rounded) inputs: a few units in the last place of the output dtype.
_TOL = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (2e-5, 1e-5),
    torch.float16: (4e-3, 2e-3),
    torch.bfloat16: (2e-2, 1.6e-2),
}


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing a result of ``dtype`` with a float64 oracle."""
    return _TOL[dtype]


def assert_close_to_oracle(actual: torch.Tensor, expected, dtype: torch.dtype | None = None,
                           scale: float = 1.0) -> None:
    """Asserts ``actual`` matches a float64 ``expected`` (tensor or numpy array) within the
    tolerances of ``dtype`` (default actual.dtype); ``scale`` widens them."""
    dtype = dtype or actual.dtype
    rtol, atol = _TOL[dtype]
    expected = torch.as_tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(actual.detach().to("cpu", torch.float64), expected,
                               rtol=rtol * scale, atol=atol * scale)


def cuda_available() -> bool:
    """True when a CUDA device can run kernels here."""
    return torch.cuda.is_available() and torch.cuda.device_count() > 0
