import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from alae_fast.testing import cuda_available


def _register_support():
    # Test files cannot import the files beside them by name (importlib mode): register
    # support.py under a fixed name, and through it oracles.py. See support.py's docstring.
    spec = importlib.util.spec_from_file_location("alae_fast_tests_support", Path(__file__).with_name("support.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.sibling("oracles.py")
    return module


support = _register_support()

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


@pytest.fixture
def one_thread():
    """One torch (and BLAS) thread for each test: ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    Module-scoped fixtures (a trained run) set up before it; they use ``support.one_thread()``."""
    with support.one_thread():
        yield


@pytest.fixture(scope="module")
def one_thread_per_module():
    """One torch (and BLAS) thread from a module's first test to its last, module-scoped fixtures
    included: ``pytestmark = pytest.mark.usefixtures("one_thread_per_module")``."""
    with support.one_thread():
        yield
