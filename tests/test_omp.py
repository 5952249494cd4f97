"""libgomp's spinning is limited before torch loads, unless the user configured it."""

import os
import subprocess
import sys

from alae_fast._omp import SPIN_COUNT, limit_spinning


def test_limit_spinning_respects_the_users_settings():
    env = {}
    assert limit_spinning(env) == str(SPIN_COUNT) and env == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "5"}, {"ALAE_FAST_OMP_SPIN": "keep"}):
        env = dict(mine)
        assert limit_spinning(env) is None and env == mine


def _child(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY",
                                                              "ALAE_FAST_OMP_SPIN")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True, timeout=300).stdout.strip().splitlines()[-1]


def test_import_sets_it_only_before_torch():
    show = "import os; print(os.environ.get('GOMP_SPINCOUNT'))"
    assert _child(f"import alae_fast; {show}") == str(SPIN_COUNT)
    assert _child(f"import torch, alae_fast; {show}") == "None"
    assert _child(f"import alae_fast; {show}", ALAE_FAST_OMP_SPIN="keep") == "None"
