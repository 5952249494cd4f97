// What this library was built with, and a probe of its CPU threading: at::parallel_for is
// inlined here, so without OpenMP at build time it silently runs on one thread.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#ifndef ALAE_FAST_TORCH_VERSION
#define ALAE_FAST_TORCH_VERSION "unknown"
#endif
#ifndef ALAE_FAST_CUDA_ARCHS
#define ALAE_FAST_CUDA_ARCHS ""
#endif

namespace alae_fast {
namespace {

// Which clone of the multiversioned CPU loops (csrc/cpu/multiversion.h) glibc's loader picks
// on the running CPU: the same test GCC's target_clones resolver makes. The figures of a
// training run are deterministic for a machine only because this choice is: an AVX-512
// machine and an AVX2 one follow different trajectories, so `alae-fast info` says which.
const char* cpu_kernels() {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(ALAE_FAST_SANITIZE)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2)";
  return "x86-64 (baseline)";
#else
  return "one build for the compiler's target (no multiversioning)";
#endif
}

std::string build_info() {
  std::ostringstream s;
  s << "{\"torch\": \"" << ALAE_FAST_TORCH_VERSION << "\", \"cpu\": true, \"cuda\": "
#ifdef ALAE_FAST_WITH_CUDA
    << "true"
#else
    << "false"
#endif
    << ", \"cuda_archs\": \"" << ALAE_FAST_CUDA_ARCHS << "\", \"openmp\": "
#ifdef _OPENMP
    << "true"
#else
    << "false"
#endif
    << ", \"libmvec\": "
#ifdef ALAE_FAST_LIBMVEC
    << "true"
#else
    << "false"
#endif
    << ", \"sanitize\": "
#ifdef ALAE_FAST_SANITIZE
    << "true"
#else
    << "false"
#endif
    << ", \"compiler\": \""
#if defined(__clang__)
    << "clang " << __clang_major__ << "." << __clang_minor__
#elif defined(__GNUC__)
    << "gcc " << __GNUC__ << "." << __GNUC_MINOR__
#endif
    << "\", \"cpu_kernels\": \"" << cpu_kernels() << "\"}";
  return s.str();
}

// Number of distinct threads at::parallel_for used for n unit-cost tasks with grain 1.
int64_t parallel_threads(int64_t n) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  at::parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return static_cast<int64_t>(ids.size());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  m.def("build_info() -> str", &build_info);
  m.def("parallel_threads(int n) -> int", &parallel_threads);
}

}  // namespace alae_fast
