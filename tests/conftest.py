import os

import pytest
import torch

from alae_fast.testing import cuda_available

# Deterministic hypothesis runs in CI; developers get the same default locally.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("alae_fast", deadline=None, derandomize=True, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "alae_fast"))
except ImportError:  # hypothesis is a test extra; tests that need it import it themselves
    pass


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    """Each test using it runs on the CPU, and on CUDA where a GPU is present."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
