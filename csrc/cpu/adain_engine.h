// Internal to the CPU engine of adain / instance_norm_stats (csrc/cpu/adain.cpp holds the
// forward, csrc/cpu/adain_grad.cpp the backward; two files so they compile in parallel).
// The row loops rely on CMake's -fno-trapping-math to if-convert (and so vectorize) the
// piecewise activations.
//
// Layout of the work. In NCHW memory one task takes whole (n, c) rows, each reduced and then
// written while it is still in cache. In channels_last memory the tensor is streamed in
// memory order, chunks of pixels with all channels innermost: pass 1 leaves per-chunk
// partial sums, which are added up before pass 2. Row reductions over a cached row buffer go
// through sum_and_dot: explicit vector accumulators, several in flight (see there).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../common/activations.h"
#include "../common/dispatch.h"
#include "../common/instance_norm.h"
#include "../ops/adain.h"
#include "half_convert.h"

// The row kernels of every dtype are multiversioned (multiversion.h): the library stays
// portable while the running CPU's widest vectors do the work.
#include "multiversion.h"
#if defined(__GNUC__)
#define AF_ALWAYS_INLINE inline __attribute__((always_inline))
#define AF_RESTRICT __restrict__
#else
#define AF_ALWAYS_INLINE inline
#define AF_RESTRICT
#endif
// AF_RESTRICT marks the row pointers of distinct tensors (inputs, the fresh output, the
// scratch buffer): without it the compiler re-checks aliasing in every vector iteration and
// keeps the partial sums in memory, about 1.5x slower.

namespace alae_fast {
namespace adain_cpu_engine {

// s_a = sum(a[i]) and s_ab = sum(a[i] * b[i]) for i < L (a and b may be the same row).
// Written with GCC vector types and four independent accumulators per sum: left to itself
// the compiler keeps one vector accumulator (`omp simd reduction`), so every iteration waits
// on the previous add's latency (4 cycles per 8 floats on Zen 3 instead of about 1), and
// scalar partial-sum arrays compiled into lane shuffles. Under the x86-64-v3 clone a vector
// is one AVX register; under the baseline, two SSE ones.
template <typename T>
AF_ALWAYS_INLINE void sum_and_dot(const T* AF_RESTRICT a, const T* AF_RESTRICT b, int64_t L, T& s_a,
                                  T& s_ab) {
#if defined(__GNUC__)
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t W = 32 / sizeof(T);
  auto load = [](const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
  };
  V a0{}, a1{}, a2{}, a3{}, d0{}, d1{}, d2{}, d3{};
  int64_t i = 0;
  for (; i + 4 * W <= L; i += 4 * W) {
    const V x0 = load(a + i), x1 = load(a + i + W), x2 = load(a + i + 2 * W), x3 = load(a + i + 3 * W);
    a0 += x0;
    a1 += x1;
    a2 += x2;
    a3 += x3;
    d0 += x0 * load(b + i);
    d1 += x1 * load(b + i + W);
    d2 += x2 * load(b + i + 2 * W);
    d3 += x3 * load(b + i + 3 * W);
  }
  for (; i + W <= L; i += W) {
    const V x0 = load(a + i);
    a0 += x0;
    d0 += x0 * load(b + i);
  }
  const V as = (a0 + a1) + (a2 + a3), ds = (d0 + d1) + (d2 + d3);
  T sa = 0, sd = 0;
  for (int64_t j = 0; j < W; ++j) {
    sa += as[j];
    sd += ds[j];
  }
#else
  T sa = 0, sd = 0;
  int64_t i = 0;
#endif
  for (; i < L; ++i) {
    sa += a[i];
    sd += a[i] * b[i];
  }
  s_a = sa;
  s_ab = sd;
}

// dst[i] = T(src[i]) for i < n: float16 through F16C where the CPU has it (half_convert.h;
// c10::Half's own conversion is integer code here), other types by a loop that vectorizes.
template <typename T, typename S>
AF_ALWAYS_INLINE void widen_into(const S* AF_RESTRICT src, T* AF_RESTRICT dst, int64_t n) {
  if constexpr (std::is_same_v<S, c10::Half> && std::is_same_v<T, float>) {
    half_convert::widen(src, dst, n);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
  }
}

// sum_and_dot in the computation dtype T for rows of any element types. Half and bfloat16
// rows are widened a block at a time into stack buffers (a conversion loop that vectorizes)
// and reduced there with sum_and_dot's accumulators: widening inside one scalar sum made a
// chain of dependent adds, which left the bfloat16 backward 4x slower than the float32 one.
template <typename T, typename A, typename B>
AF_ALWAYS_INLINE void sum_and_dot_as(const A* AF_RESTRICT a, const B* AF_RESTRICT b, int64_t L, T& s_a,
                                     T& s_ab) {
  if constexpr (std::is_same_v<A, T> && std::is_same_v<B, T>) {
    sum_and_dot(a, b, L, s_a, s_ab);
  } else {
    constexpr int64_t kBlock = 512;
    alignas(64) T wa[kBlock];
    alignas(64) T wb[kBlock];
    T sa = 0, sd = 0;
    for (int64_t i0 = 0; i0 < L; i0 += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, L - i0);
      const T* AF_RESTRICT pa = wa;
      const T* AF_RESTRICT pb = wb;
      if constexpr (std::is_same_v<A, T>) {
        pa = a + i0;
      } else {
        widen_into(a + i0, wa, n);
      }
      if constexpr (std::is_same_v<B, T>) {
        pb = b + i0;
      } else {
        widen_into(b + i0, wb, n);
      }
      T ba, bd;
      sum_and_dot(pa, pb, n, ba, bd);
      sa += ba;
      sd += bd;
    }
    s_a = sa;
    s_ab = sd;
  }
}

template <typename scalar_t>
struct Inputs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const scalar_t* noise;  // [N, L] or null
  const scalar_t* nw;     // [C] or null
  const scalar_t* bias;   // [C] or null
  const scalar_t* scale;  // [N, C] or null
  const scalar_t* shift;  // [N, C] or null
  int64_t N, C, L;
  acc_t alpha, eps;

  explicit Inputs(const AdainPlan& p)
      : x(p.x.const_data_ptr<scalar_t>()),
        noise(p.noise.defined() ? p.noise.const_data_ptr<scalar_t>() : nullptr),
        nw(p.noise_weight.defined() ? p.noise_weight.const_data_ptr<scalar_t>() : nullptr),
        bias(p.bias.defined() ? p.bias.const_data_ptr<scalar_t>() : nullptr),
        scale(p.scale.defined() ? p.scale.const_data_ptr<scalar_t>() : nullptr),
        shift(p.shift.defined() ? p.shift.const_data_ptr<scalar_t>() : nullptr),
        N(p.N), C(p.C), L(p.L),
        alpha(static_cast<acc_t>(p.alpha)), eps(static_cast<acc_t>(p.eps)) {}

  acc_t nw_of(int64_t c) const { return nw ? static_cast<acc_t>(nw[c]) : acc_t(1); }
  acc_t bias_of(int64_t c) const { return bias ? static_cast<acc_t>(bias[c]) : acc_t(0); }
  acc_t sigma_of(int64_t r) const { return scale ? acc_t(1) + static_cast<acc_t>(scale[r]) : acc_t(1); }
  acc_t shift_of(int64_t r) const { return shift ? static_cast<acc_t>(shift[r]) : acc_t(0); }
};

// x + nw * noise + b for one element, in the computation dtype.
template <bool NOISE, typename scalar_t, typename acc_t>
AF_ALWAYS_INLINE acc_t z_of(scalar_t xv, scalar_t nv, acc_t nw, acc_t b) {
  acc_t z = static_cast<acc_t>(xv) + b;
  if constexpr (NOISE) z += nw * static_cast<acc_t>(nv);
  return z;
}

// Pixel chunks of channels_last work: about 32K elements each.
struct NhwcChunks {
  int64_t pixels, count;

  // Task t of the N * count tasks: pixels [p0, p1) of sample n.
  void task(int64_t t, int64_t L, int64_t& n, int64_t& p0, int64_t& p1) const {
    n = t / count;
    p0 = (t % count) * pixels;
    p1 = std::min(L, p0 + pixels);
  }

  // Row (n, c)'s totals of the two [C] partial sums that each task t wrote at part + 2 * t * C,
  // added in task order.
  template <typename acc_t>
  void totals(const std::vector<acc_t>& part, int64_t n, int64_t c, int64_t C, acc_t& first, acc_t& second) const {
    first = 0;
    second = 0;
    for (int64_t q = 0; q < count; ++q) {
      first += part[(2 * (n * count + q)) * C + c];
      second += part[(2 * (n * count + q) + 1) * C + c];
    }
  }
};
inline NhwcChunks nhwc_chunks(int64_t L, int64_t C) {
  const int64_t pixels = std::max<int64_t>(1, std::min<int64_t>(L, 32768 / std::max<int64_t>(C, 1)));
  return {pixels, (L + pixels - 1) / pixels};
}

// Tasks per at::parallel_for grain: enough work per task to amortise scheduling.
inline int64_t grain_for(int64_t work_per_task) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_task, 1));
}

inline at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

template <typename Fn>
void dispatch_bool(bool v, Fn&& fn) {
  if (v) fn(std::true_type{});
  else fn(std::false_type{});
}

}  // namespace adain_cpu_engine
}  // namespace alae_fast
