#!/usr/bin/env bash
# Memory-safety check of the C++ kernels: builds alae_fast with AddressSanitizer and
# UndefinedBehaviorSanitizer (CMake option ALAE_FAST_SANITIZE=ON) into its own venv and build
# folder, then runs the op tests and a seeded fuzz of random op calls under it. Any sanitizer
# report aborts the process and fails this script.
#
# Usage (repo root):  bash tests/sanitize/run.sh
#   FUZZ_CALLS=2000 FUZZ_SEED=0   fuzz size and seed (tests/sanitize/fuzz_ops.py)
#   SANITIZE_VENV=.venv-sanitize  the venv (created if missing; torch 2.13.0 CPU)
#   SANITIZE_TESTS="..."          op test files to run (default below); "" skips them
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=${SANITIZE_VENV:-$root/.venv-sanitize}
calls=${FUZZ_CALLS:-2000}
seed=${FUZZ_SEED:-0}
tests=${SANITIZE_TESTS-tests/test_bias_act.py tests/test_upfirdn2d.py tests/test_adain.py tests/test_instance_norm_stats.py tests/test_modulated_conv2d.py tests/test_conv2d_resample.py tests/test_fuzz_ops.py tests/test_filtered_lrelu.py}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

echo "== sanitizer build (ASan + UBSan) =="
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Only what the op tests import: the core's other dependencies (pillow, scikit-learn, tqdm) are
# for training and evaluation, which these tests do not touch.
"$venv/bin/pip" install -q torch==2.13.0 numpy pytest hypothesis expecttest scikit-build-core cmake ninja
ALAE_FAST_CUDA=OFF "$venv/bin/pip" install -q --no-build-isolation --no-deps -Cbuild-dir=build/sanitize \
  -Ccmake.define.ALAE_FAST_SANITIZE=ON .

# The library is instrumented but python is not: the ASan runtime must be loaded first (and
# libstdc++ with it, so ASan finds the real __cxa_throw for C++ exceptions raised before the
# library loads). Python's own allocations are never freed at exit: no leak check.
cxx=${CXX:-g++}
asan=$("$cxx" -print-file-name=libasan.so)
stdcxx=$("$cxx" -print-file-name=libstdc++.so)
[ -f "$asan" ] || { echo "no libasan.so for $cxx (got '$asan')"; exit 1; }
export LD_PRELOAD="$asan $stdcxx"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_init_order=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
log=${TMPDIR:-/tmp}/alae_fast_sanitize.$$.log

cd /tmp  # import the installed (instrumented) package, not the source tree
"$venv/bin/python" -c "
import alae_fast
info = alae_fast.build_info()
assert info['loaded'] and info.get('sanitize'), f'the sanitizer build did not load: {info}'
print('instrumented library loaded:', info)
"

status=0
if [ -n "$tests" ]; then
  echo "== op tests under the sanitizers =="
  # torch.compile tests are left out: they check the fake kernels and the compiler, not our
  # memory accesses, and inductor's C++ compiles would dominate the run.
  # From /tmp through the pytest script (not `python -m pytest`, which puts the working
  # directory on sys.path): the tests must import the installed, instrumented package.
  test_paths=()
  for t in $tests; do test_paths+=("$root/$t"); done
  "$venv/bin/pytest" "${test_paths[@]}" -c "$root/pyproject.toml" --rootdir "$root" -q -x -p no:cacheprovider \
    -k "not compile" 2>&1 | tee "$log" | tail -15 || status=$?
fi
if [ "$status" -eq 0 ]; then
  echo "== fuzz: $calls random op calls, seed $seed =="
  "$venv/bin/python" "$root/tests/sanitize/fuzz_ops.py" --calls "$calls" --seed "$seed" 2>&1 \
    | tee -a "$log" | tail -40 || status=$?
fi
# A report that somehow did not stop the process still fails the run.
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log"; then
  echo "sanitizer report found (full log: $log):"
  grep -nE -A30 "ERROR: AddressSanitizer|runtime error:" "$log" | head -80
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "SANITIZER CHECK FAILED (exit $status; log: $log)"
  exit "$status"
fi
rm -f "$log"
echo "== sanitizer check passed =="
