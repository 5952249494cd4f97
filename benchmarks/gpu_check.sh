#!/usr/bin/env bash
# Everything a session with a lent GPU needs, in one call and without network:
#   build against the machine's own torch, run the CUDA tests, run the op kernels' CUDA tests
#   and a CUDA fuzz under compute-sanitizer (memcheck), print the GPU benchmark table.
# It must work on the first try there: its python has only torch, numpy, pytest,
# pytest-benchmark, hypothesis, ninja, cmake, scikit-build-core and pybind11, so nothing here
# (and nothing the CUDA tests import) may need more. CI checks that with --dry-run.
#
# Usage (repo root):
#   bash benchmarks/gpu_check.sh             the full check (results also land in $OUT if set)
#   bash benchmarks/gpu_check.sh --dry-run   no GPU needed: the same build (CUDA kernels if
#        torch and nvcc allow, else CPU), the imports, `pytest -m cuda --collect-only` (must
#        collect without errors) and the benchmark listing; what CI's minimal-venv stage runs
# Environment:
#   PYTHON=python3                 the interpreter (its torch is the one built against)
#   GPU_CHECK_STAGES="tests sanitize bench"   stages after the build, in order
#   SANITIZER_TIMEOUT=300          seconds for the compute-sanitizer stage
#   FUZZ_CALLS=300                 CUDA fuzz calls under compute-sanitizer
# Exit status: 1 when no GPU is usable (checked before the build), the build or the import
# fails, a test stage fails or runs no test at all (every one skipped), or the benchmark
# report fails (its stderr is kept in $OUT/bench_cuda.log); 0 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py=${PYTHON:-python3}
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
out=${OUT:-/tmp/alae_fast_gpu}
mkdir -p "$out"
stages=${GPU_CHECK_STAGES:-tests sanitize bench}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
# Kernels for CUDA are a must on the GPU machine; a dry run builds what its torch allows.
if [ "$dry" = 1 ]; then export ALAE_FAST_CUDA=AUTO; else export ALAE_FAST_CUDA=ON; fi
export PYTHONUNBUFFERED=1
# A system python (PEP 668) refuses pip installs without this; a venv ignores it.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "$dry" = 0 ]; then
  # Without a usable GPU every CUDA test skips and pytest exits 0: stop before minutes of build.
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || { echo "NO USABLE GPU: nvidia-smi failed (exit $?); nothing built"; exit 1; }
  "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
    || { echo "NO USABLE GPU: torch.cuda.is_available() is not True in $py; nothing built"; exit 1; }
fi
tests_rc=0
bench_rc=0
# A stage whose pytest exits 0 ran nothing if its summary has no "N passed" (all skipped).
ran_tests() { grep -Eq '[0-9]+ passed.* in [0-9.]+s' "$1"; }

echo "== build (torch $("$py" -c 'import torch; print(torch.__version__)')) =="
"$py" -m pip install -q --no-build-isolation --no-deps --no-index -Cbuild-dir=build/gpu . 2>&1 | tail -20
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "BUILD FAILED"; exit 1; }
# Run from outside the tree so the installed package (with its _C.so) is the one imported.
cd /tmp
"$py" -c "import alae_fast, json; info = alae_fast.build_info(); print(json.dumps(info)); assert info['loaded'], info" \
  || { echo "IMPORT FAILED"; exit 1; }
pytest_args=("$root/tests" -c "$root/pyproject.toml" --rootdir "$root" -p no:cacheprovider)

if [ "$dry" = 1 ]; then
  echo "== dry run: imports of everything the check runs =="
  "$py" -c "
import importlib
import alae_fast.bench.report as report, alae_fast.cli
for m in report.SUITES.values():
    importlib.import_module(m)
print('imports OK')" || { echo "IMPORTS FAILED"; exit 1; }
  echo "== dry run: collect the CUDA tests =="
  "$py" -m pytest "${pytest_args[@]}" -m cuda --collect-only -q 2>&1 | tee "$out/cuda_collect.log" | tail -5
  rc=${PIPESTATUS[0]}
  # pytest exits 2 on a collection error and 5 when nothing was selected.
  [ "$rc" -eq 0 ] || { echo "CUDA TEST COLLECTION FAILED (exit $rc)"; exit 1; }
  echo "== dry run: the fuzz the sanitizer stage runs (on the CPU here) =="
  "$py" "$root/tests/sanitize/fuzz_ops.py" --calls 30 || { echo "FUZZ FAILED"; exit 1; }
  if [ -x "$CUDA_HOME/bin/compute-sanitizer" ]; then echo "compute-sanitizer: $CUDA_HOME/bin/compute-sanitizer"
  else echo "compute-sanitizer: not here (the GPU stage skips it where it is missing)"; fi
  echo "== dry run: benchmark listing =="
  "$py" -m alae_fast bench --device cpu --quick --no-compile --list || { echo "BENCHMARK LISTING FAILED"; exit 1; }
  echo "== dry run passed =="
  exit 0
fi

for stage in $stages; do
  case "$stage" in
  tests)
    echo "== CUDA tests =="
    "$py" -m pytest "${pytest_args[@]}" -m cuda -q 2>&1 | tee "$out/cuda_tests.log" | tail -40
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || tests_rc=$rc
    if [ "$rc" -eq 0 ] && ! ran_tests "$out/cuda_tests.log"; then
      echo "CUDA TESTS RAN NOTHING (every test skipped; see $out/cuda_tests.log)"; tests_rc=1
    fi
    ;;
  sanitize)
    san="$CUDA_HOME/bin/compute-sanitizer"
    if [ ! -x "$san" ]; then
      echo "== compute-sanitizer: not found at $san, skipped =="
      continue
    fi
    echo "== compute-sanitizer memcheck: op kernels' CUDA tests and a CUDA fuzz =="
    # Without torch's caching allocator every tensor is its own cudaMalloc, so an access past
    # a tensor's end leaves the allocation instead of landing in a pooled neighbour.
    export PYTORCH_NO_CUDA_MEMORY_CACHING=1
    op_tests=()
    for op in bias_act upfirdn2d adain instance_norm_stats modulated_conv2d; do op_tests+=("$root/tests/test_$op.py"); done
    timeout "${SANITIZER_TIMEOUT:-300}" "$san" --tool memcheck --error-exitcode 86 --leak-check no --print-limit 20 \
      "$py" -m pytest "${op_tests[@]}" -c "$root/pyproject.toml" --rootdir "$root" -p no:cacheprovider \
      -m "cuda and not slow" -q -x 2>&1 | tee "$out/compute_sanitizer_tests.log" | tail -25
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
      timeout "${SANITIZER_TIMEOUT:-300}" "$san" --tool memcheck --error-exitcode 86 --leak-check no --print-limit 20 \
        "$py" "$root/tests/sanitize/fuzz_ops.py" --device cuda --calls "${FUZZ_CALLS:-300}" 2>&1 \
        | tee "$out/compute_sanitizer_fuzz.log" | tail -25
      rc=${PIPESTATUS[0]}
    fi
    unset PYTORCH_NO_CUDA_MEMORY_CACHING
    if [ "$rc" -eq 0 ] && ! ran_tests "$out/compute_sanitizer_tests.log"; then
      echo "COMPUTE-SANITIZER TESTS RAN NOTHING (every test skipped; see $out/compute_sanitizer_tests.log)"; rc=1
    fi
    case "$rc" in
      0) echo "compute-sanitizer: no errors" ;;
      124) echo "compute-sanitizer: stopped after ${SANITIZER_TIMEOUT:-300} s (no error before that; raise SANITIZER_TIMEOUT)" ;;
      *) echo "COMPUTE-SANITIZER FAILED (exit $rc; 86 = memcheck errors)"; tests_rc=$rc ;;
    esac
    ;;
  bench)
    echo "== GPU benchmark report =="
    # stderr has a progress line per case: kept in a log, shown only when the report fails
    "$py" -m alae_fast bench --device cuda --json "$out/bench_cuda.json" 2>"$out/bench_cuda.log" \
      | tee "$out/bench_cuda.txt"
    bench_rc=${PIPESTATUS[0]}
    grep "^alae-fast bench: warning:" "$out/bench_cuda.log"  # e.g. the fused kernels not measured
    if [ "$bench_rc" -ne 0 ]; then
      tail -5 "$out/bench_cuda.log"
      echo "GPU BENCHMARK FAILED (exit $bench_rc; stderr in $out/bench_cuda.log)"
    fi
    ;;
  *) echo "unknown stage '$stage' in GPU_CHECK_STAGES"; exit 2 ;;
  esac
done
echo "cuda tests exit code: $tests_rc; benchmark exit code: $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] || exit 1
