#!/usr/bin/env bash
# Everything a session with a lent GPU needs, in one call and without network:
#   build against the machine's own torch, run the CUDA tests, print the GPU benchmark table,
#   then run a CUDA fuzz of every op under compute-sanitizer (memcheck).
# It must work on the first try there: its python has only torch, numpy, pytest,
# pytest-benchmark, hypothesis, ninja, cmake, scikit-build-core and pybind11, so nothing here
# (and nothing the CUDA tests import) may need more. CI checks that with --dry-run.
#
# Sized for one call of a 15-minute lease (a call may run 10 minutes; the machine's start takes
# one or two). Measured on an H200 machine, 2026-12-04: build 170 s, CUDA tests ~110 s, the
# --quick benchmark 53 s, 40 fuzz calls under memcheck 19 s (the op test files under memcheck:
# 13 tests in 80 s, too slow for a lease, hence the fuzz). The benchmark and the sanitizer stop
# at their timeouts or at GPU_CHECK_DEADLINE, whichever comes first; the benchmark then prints
# the table of the cases measured so far.
#
# Usage (repo root):
#   bash benchmarks/gpu_check.sh             the full check (results also land in $OUT if set)
#   bash benchmarks/gpu_check.sh --dry-run   no GPU needed: the same build (CUDA kernels if
#        torch and nvcc allow, else CPU), the imports, `pytest -m cuda --collect-only` (must
#        collect without errors) and the benchmark listing; what CI's minimal-venv stage runs
# Environment:
#   PYTHON=python3                 the interpreter (its torch is the one built against)
#   GPU_CHECK_CXX=system           build with /usr/bin/g++ where it exists; "keep": the
#                                  environment's CXX (see below)
#   GPU_CHECK_STAGES="tests bench sanitize"   stages after the build, in order
#   GPU_CHECK_DEADLINE=540         seconds from the start after which no bounded stage runs on
#   BENCH_ARGS="--ops bias_act upfirdn2d filtered_lrelu adain modulated_conv2d alae_models alae_train"
#                                  arguments for `alae-fast bench` (train_load measures CPU
#                                  training under load, official writes 215 MB: both left out);
#                                  not --device or --json, which this script gives (the CLI
#                                  refuses an option given twice with two values)
#   BENCH_TIMEOUT=200              seconds after which the benchmark gets Ctrl-C (SIGINT) and
#                                  prints the table of the cases measured so far; 0: no limit
#   SANITIZER_TIMEOUT=120          seconds for the compute-sanitizer stage
#   FUZZ_CALLS=200                 CUDA fuzz calls under compute-sanitizer
#   PYTEST_ADDOPTS                 read by pytest itself (e.g. "--timeout 120" where the
#                                  machine has pytest-timeout, so one hung kernel can't eat the lease)
# Exit status: 1 when no GPU is usable (checked before the build), the build or the import
# fails, a test stage fails or runs no test at all (every one skipped), the sanitizer finds an
# error, or the benchmark report fails (its stderr is kept in $OUT/bench_cuda.log); 0 otherwise
# (also when the benchmark or the sanitizer was stopped at its time limit: said in the output).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py=${PYTHON:-python3}
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
out=${OUT:-/tmp/alae_fast_gpu}
mkdir -p "$out"
stages=${GPU_CHECK_STAGES:-tests bench sanitize}
deadline=${GPU_CHECK_DEADLINE:-540}
# seconds a bounded stage may run: its own limit (0: none), cut to what is left before the
# deadline; 0 when under 20 s are left (the stage is then skipped)
budget() {
  local left=$((deadline - SECONDS))
  [ "$left" -lt 20 ] && { echo 0; return; }
  [ "$1" -gt 0 ] && [ "$1" -lt "$left" ] && left=$1
  echo "$left"
}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
# The lent machines' image sets CXX/CUDAHOSTCXX to /opt/gcc/bin/g++, a wrapper that links
# libstdc++ statically: the library it built segfaulted at import (2026-12-04), and CMake now
# refuses such a compiler. The system g++ links it dynamically; GPU_CHECK_CXX=keep keeps CXX.
if [ "${GPU_CHECK_CXX:-system}" = system ] && [ -x /usr/bin/g++ ] && [ -x /usr/bin/gcc ]; then
  export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++
fi
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
  echo "[gpu_check: stage '$stage' starts at ${SECONDS} s]"
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
    t=$(budget "${SANITIZER_TIMEOUT:-120}")
    if [ "$t" -eq 0 ]; then echo "== compute-sanitizer: skipped, under 20 s left before GPU_CHECK_DEADLINE =="; continue; fi
    echo "== compute-sanitizer memcheck: a CUDA fuzz of every op (${FUZZ_CALLS:-200} calls, at most ${t} s) =="
    # Without torch's caching allocator every tensor is its own cudaMalloc, so an access past
    # a tensor's end leaves the allocation instead of landing in a pooled neighbour.
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$t" "$san" --tool memcheck --error-exitcode 86 --leak-check no \
      --print-limit 20 "$py" "$root/tests/sanitize/fuzz_ops.py" --device cuda --calls "${FUZZ_CALLS:-200}" 2>&1 \
      | tee "$out/compute_sanitizer_fuzz.log" | tail -25
    rc=${PIPESTATUS[0]}
    case "$rc" in
      0) echo "compute-sanitizer: no errors" ;;
      124) echo "compute-sanitizer: stopped after ${t} s (no error before that; FUZZ_CALLS or SANITIZER_TIMEOUT)" ;;
      *) echo "COMPUTE-SANITIZER FAILED (exit $rc; 86 = memcheck errors, 1 = a fuzz call disagreed with its reference)"
         tests_rc=$rc ;;
    esac
    ;;
  bench)
    echo "== GPU benchmark report =="
    # stderr has a progress line per case: kept in a log, shown only when the report fails
    t=$(budget "${BENCH_TIMEOUT:-200}")
    if [ "$t" -eq 0 ]; then echo "GPU BENCHMARK NOT RUN: under 20 s left before GPU_CHECK_DEADLINE"; bench_rc=1; continue; fi
    # shellcheck disable=SC2086  # BENCH_ARGS is a word list on purpose
    timeout -s INT -k 30 "$t" "$py" -m alae_fast bench --device cuda \
      ${BENCH_ARGS:---ops bias_act upfirdn2d filtered_lrelu adain modulated_conv2d alae_models alae_train} \
      --json "$out/bench_cuda.json" 2>"$out/bench_cuda.log" | tee "$out/bench_cuda.txt"
    bench_rc=${PIPESTATUS[0]}
    grep "^alae-fast bench: warning:" "$out/bench_cuda.log"  # e.g. the fused kernels not measured
    if [ "$bench_rc" -eq 124 ]; then
      # timeout's status: Ctrl-C came at BENCH_TIMEOUT and the table above is partial by choice
      if grep -q "^interrupted before the first case was measured" "$out/bench_cuda.txt"; then
        echo "GPU BENCHMARK STOPPED AFTER ${t} s BEFORE ITS FIRST CASE: no table (raise BENCH_TIMEOUT)"
        bench_rc=1
      else
        echo "GPU BENCHMARK STOPPED AFTER ${t} s (BENCH_TIMEOUT or GPU_CHECK_DEADLINE): the table has the cases measured before"
        bench_rc=0
      fi
    fi
    if [ "$bench_rc" -ne 0 ]; then
      tail -5 "$out/bench_cuda.log"
      echo "GPU BENCHMARK FAILED (exit $bench_rc; stderr in $out/bench_cuda.log)"
    fi
    ;;
  *) echo "unknown stage '$stage' in GPU_CHECK_STAGES"; exit 2 ;;
  esac
done
echo "[gpu_check: done at ${SECONDS} s]"
echo "cuda tests exit code: $tests_rc; benchmark exit code: $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] || exit 1
