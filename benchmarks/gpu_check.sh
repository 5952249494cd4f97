#!/usr/bin/env bash
# Everything a session with a lent GPU needs, in one call and without network:
#   build against the machine's own torch, run the CUDA tests, print the GPU benchmark table.
# Usage (repo root): bash benchmarks/gpu_check.sh        (results also land in $OUT if set)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${OUT:-/tmp/alae_fast_gpu}
mkdir -p "$out"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} ALAE_FAST_CUDA=ON
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== build (torch $(python3 -c 'import torch; print(torch.__version__)')) =="
python3 -m pip install -q --no-build-isolation --no-deps --no-index -Cbuild-dir=build/gpu . 2>&1 | tail -20 \
  || { echo "BUILD FAILED"; exit 1; }
# Run from outside the tree so the installed package (with its _C.so) is the one imported.
cd /tmp
python3 -c "import alae_fast, json; print(json.dumps(alae_fast.build_info()))"

echo "== CUDA tests =="
python3 -m pytest "$root/tests" -c "$root/pyproject.toml" --rootdir "$root" -m cuda -q -p no:cacheprovider \
  2>&1 | tee "$out/cuda_tests.log" | tail -40
tests_rc=${PIPESTATUS[0]}

echo "== GPU benchmark report =="
python3 -m alae_fast bench --device cuda --json "$out/bench_cuda.json" 2>/dev/null | tee "$out/bench_cuda.txt"
echo "cuda tests exit code: $tests_rc"
exit "$tests_rc"
