"""A short run of the op fuzz (tests/sanitize/fuzz_ops.py): random calls of every op, forward,
backward and double backward of the kernels against the float64 references. The sanitizer
stage (tests/sanitize/run.sh) runs 2,000 of them under ASan and UBSan; this keeps the fuzz
itself working and catches wrong results in the default suite."""

import random

import pytest
import torch

from alae_fast import _lib
from alae_fast_tests_support import sibling

fuzz = sibling("sanitize/fuzz_ops.py")

needs_kernel = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")
pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@needs_kernel
@pytest.mark.parametrize("op", list(fuzz.OPS))
def test_fuzz_short_run(op):
    counts = fuzz.run(calls=12, seed=1, ops=[op])
    assert counts == {op: 12}


@needs_kernel
@pytest.mark.slow
def test_fuzz_long_run():
    assert sum(fuzz.run(calls=2000, seed=0).values()) == 2000


def test_fuzz_catches_a_wrong_kernel(monkeypatch):
    # The comparison must fail when the kernel's result is off: make "auto" return the
    # reference's output plus a small error and expect the run to stop on it.
    call = fuzz.gen_bias_act(random.Random(3))
    inner = call.fn
    call.fn = lambda impl, **t: inner("ref", **t) * (1.01 if impl == "auto" else 1.0)
    call.dtype = torch.float64
    with pytest.raises(AssertionError, match="output 0"):
        fuzz.check_call(call, random.Random(0))


def test_draw_is_reproducible():
    a, _ = fuzz.draw(5, 17, list(fuzz.OPS))
    b, _ = fuzz.draw(5, 17, list(fuzz.OPS))
    assert a.op == b.op and a.params == b.params and a.dtype == b.dtype
    for k in a.tensors:
        assert (a.tensors[k] is None) == (b.tensors[k] is None)
        if a.tensors[k] is not None:
            assert torch.equal(a.tensors[k], b.tensors[k])
