"""alae_fast.cpu_allocator: glibc keeps big freed blocks (no fresh page faults per allocation),
the environment switch turns it off. Each check runs in a fresh interpreter: the setting is
process-wide and must not leak into the rest of the suite."""

import os
import platform
import subprocess
import sys

import pytest

CHECK = r"""
import resource, torch
from alae_fast.cpu_allocator import keep_freed_memory
ok = keep_freed_memory()
assert keep_freed_memory() is ok  # idempotent
for _ in range(12):  # the heap grows over the first few rounds (memalign slack), then holds
    x = torch.empty(16 << 20)  # 64 MiB
    x.fill_(1.0)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    y = torch.empty(16 << 20)
    y.fill_(2.0)
    del y
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(ok, faults)
"""


def _run(env_value):
    env = dict(os.environ)
    env.pop("ALAE_FAST_KEEP_MEMORY", None)
    if env_value is not None:
        env["ALAE_FAST_KEEP_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ok, faults = out.stdout.split()
    return ok == "True", int(faults)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_big_blocks_are_reused_without_page_faults():
    ok, faults = _run(None)
    assert ok
    # 5 x 64 MiB re-faulted would be ~80 000 minor faults; reused blocks need almost none
    assert faults < 2000, faults
    off, faults_off = _run("0")
    assert not off
    assert faults_off > 20000, faults_off  # the default malloc maps each block afresh
