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
#include <numeric>
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
#define AF_LAMBDA_INLINE __attribute__((always_inline))
#define AF_RESTRICT __restrict__
#else
#define AF_ALWAYS_INLINE inline
#define AF_LAMBDA_INLINE
#define AF_RESTRICT
#endif
// AF_LAMBDA_INLINE: a lambda that calls a row loop is inlined into the multiversioned kernel
// that calls it (multiversion.h), so that the loop is compiled inside each clone, for its ISA.
// AF_RESTRICT marks the row pointers of distinct tensors (inputs, the fresh output, the
// scratch buffer): without it the compiler re-checks aliasing in every vector iteration and
// keeps the partial sums in memory, about 1.5x slower.

#include "adain_register_lanes.h"

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

// dst[i] = To(src[i]) for i < n: float16 to and from float32 through F16C where the CPU has
// it (half_convert.h; c10::Half's own conversion is integer code here, and both round to
// nearest-even), other types by a loop that vectorizes.
template <typename From, typename To>
AF_ALWAYS_INLINE void convert_into(const From* AF_RESTRICT src, To* AF_RESTRICT dst, int64_t n) {
  if constexpr (std::is_same_v<From, c10::Half> && std::is_same_v<To, float>) {
    half_convert::widen(src, dst, n);
  } else if constexpr (std::is_same_v<From, float> && std::is_same_v<To, c10::Half>) {
    half_convert::narrow(src, dst, n);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<To>(src[i]);
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
        convert_into(a + i0, wa, n);
      }
      if constexpr (std::is_same_v<B, T>) {
        pb = b + i0;
      } else {
        convert_into(b + i0, wb, n);
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

// channels_last work. A chunk of pixels (one task, about 32K elements) is walked in groups of
// `group` pixels (span = group * C elements, about 512 to 2048, or one pixel), in memory order:
// - spread: a group is one flat loop over its span, lane j holding channel j % C. Per-channel
//   values (bias, shift, scale, ...) are laid out once repeated over a group (lanes = span),
//   each pixel's noise is spread over its C lanes, and partial sums are kept per lane and folded
//   to [C] once per chunk. (A loop over a pixel's 3 or 8 channels ran scalar: 30-40x slower than
//   the same values contiguous.) Used below 16 channels, and without noise while 16 pixels'
//   channels are at most 2048 values (odd counts of 33 or more would repeat 16 * C values).
// - nested, otherwise (16 channels or more): a group loops over its pixels and, inside, over
//   the C channels (lanes = C), a vector loop already, with the pixel's noise as a scalar
//   (spreading it would cost a loop per pixel again).
struct LaneGroups {
  int64_t group, span, lanes;
  bool spread;
};
// - registers (adain_register_lanes.h): 8, 16 or 32 channels with a piecewise-linear
//   activation (`registers` true) group as nested does; the group loops then keep the
//   per-channel values and partial sums in vector registers.
inline LaneGroups lane_groups(int64_t C, int64_t L, bool noise, bool registers) {
  C = std::max<int64_t>(C, 1);
  L = std::max<int64_t>(L, 1);
  if (registers && register_channels(C)) {
    const int64_t group = std::min(L, std::max<int64_t>(1, 2048 / C));
    return {group, group * C, C, false};
  }
  const int64_t unit = 16 / std::gcd<int64_t>(C, 16);
  if (C >= 16 && (noise || unit * C > 2048)) {
    // Several pixels a group up to 1024 channels (the per-group setup, paid per pixel, had
    // cost 15-20% at 8x512x8x8), one pixel past 2048 (the buffers hold a group).
    const int64_t group = std::min(L, std::max<int64_t>(1, 2048 / C));
    return {group, group * C, C, false};
  }
  // unit pixels make a multiple of 16 lanes (a float32 AVX-512 vector), so that every group
  // starts on the same lane phase; never more pixels than a plane has.
  const int64_t group = std::min(L, unit * std::max<int64_t>(1, 512 / (unit * C)));
  return {group, group * C, group * C, true};
}

// Task t of the N * count tasks: pixels [p0, p1) of sample n; `pixels` is a whole number of groups.
struct NhwcChunks {
  int64_t pixels, count;

  void task(int64_t t, int64_t L, int64_t& n, int64_t& p0, int64_t& p1) const {
    n = t / count;
    p0 = (t % count) * pixels;
    p1 = std::min(L, p0 + pixels);
  }

  // Sample n's totals of the two [C] partial sums that each task t wrote at part + 2 * t * C,
  // added in task order into first[0..C), second[0..C). Chunks outer, channels inner, in
  // double (a plane of 2^31 pixels has 2^17 chunks or more; walking the chunks inside the
  // channel loop strode 2C values a step, 4x the NCHW time at 65536 channels).
  template <typename acc_t>
  void totals(const std::vector<acc_t>& part, int64_t n, int64_t C, std::vector<double>& first,
              std::vector<double>& second) const {
    std::fill(first.begin(), first.end(), 0.0);
    std::fill(second.begin(), second.end(), 0.0);
    for (int64_t q = 0; q < count; ++q) {
      const acc_t* s = part.data() + 2 * (n * count + q) * C;
      for (int64_t c = 0; c < C; ++c) {
        first[c] += s[c];
        second[c] += s[C + c];
      }
    }
  }
};
inline NhwcChunks nhwc_chunks(int64_t L, int64_t C, const LaneGroups& lg) {
  const int64_t target = std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1));
  const int64_t pixels = std::min<int64_t>(std::max<int64_t>(L, 1), std::max<int64_t>(1, target / lg.group) * lg.group);
  return {pixels, (L + pixels - 1) / pixels};
}

// dst[j] = src[j % C] for j < lanes: [C] values repeated over a group.
template <typename T>
inline void repeat_lanes(const T* src, int64_t C, int64_t lanes, T* dst) {
  // One copy of src, then the filled part doubled: a division per lane (src[j % C]) or a copy
  // per pixel cost as much as a chunk's arithmetic at a few channels.
  const int64_t first = std::min(C, lanes);
  std::copy(src, src + first, dst);
  for (int64_t done = first; done < lanes; done *= 2) std::copy(dst, dst + std::min(done, lanes - done), dst + done);
}

// The two per-lane sums of a chunk, s[0..lanes) and s[lanes..2 lanes), folded to [C] each.
template <typename T>
inline void fold_lanes(const T* s, int64_t C, int64_t lanes, T* first, T* second) {
  for (int64_t c = 0; c < C; ++c) first[c] = second[c] = 0;
  for (int64_t j0 = 0; j0 < lanes; j0 += C) {
    for (int64_t c = 0; c < C; ++c) {
      first[c] += s[j0 + c];
      second[c] += s[lanes + j0 + c];
    }
  }
}

// The e values at src in the computation dtype T: src itself when the types agree, else
// widened into buf.
template <typename T, typename S>
AF_ALWAYS_INLINE const T* lanes_as(const S* src, int64_t e, T* buf) {
  if constexpr (std::is_same_v<S, T>) {
    return src;
  } else {
    convert_into(src, buf, e);
    return buf;
  }
}

// One noise value per pixel spread over the pixel's C lanes, for m pixels. The channel count is
// a compile-time constant up to 8, where the inner loop becomes C stores: a loop of a run-time
// 3 iterations per pixel cost about 7 cycles a pixel, most of a channels_last adain.
template <int64_t CC, typename T, typename S>
AF_ALWAYS_INLINE void spread_fixed(const S* AF_RESTRICT nv, int64_t m, T* AF_RESTRICT dst) {
  for (int64_t q = 0; q < m; ++q) {
    const T v = static_cast<T>(nv[q]);
    for (int64_t c = 0; c < CC; ++c) dst[q * CC + c] = v;
  }
}
template <typename T, typename S>
AF_ALWAYS_INLINE void spread_pixels(const S* AF_RESTRICT nv, int64_t m, int64_t C, T* AF_RESTRICT dst) {
  switch (C) {
    case 1: return spread_fixed<1>(nv, m, dst);
    case 2: return spread_fixed<2>(nv, m, dst);
    case 3: return spread_fixed<3>(nv, m, dst);
    case 4: return spread_fixed<4>(nv, m, dst);
    case 5: return spread_fixed<5>(nv, m, dst);
    case 6: return spread_fixed<6>(nv, m, dst);
    case 7: return spread_fixed<7>(nv, m, dst);
    case 8: return spread_fixed<8>(nv, m, dst);
    default:
      for (int64_t q = 0; q < m; ++q) {
        const T v = static_cast<T>(nv[q]);
        for (int64_t c = 0; c < C; ++c) dst[q * C + c] = v;
      }
  }
}

// Calls body(spread, p, m, xg, ng) for each group of m pixels [p, p + m) in [p0, p1) of
// sample n's x (xn) and noise (nn, or null), where xg is the group's x in the computation
// dtype T and ng its noise: spread over the lanes (one value per element) when the tag
// `spread` is true, one value per pixel otherwise. xb and nb hold lg.span values.
template <bool NOISE, typename T, typename S, typename Body>
AF_ALWAYS_INLINE void for_each_group(const LaneGroups& lg, int64_t C, int64_t p0, int64_t p1, const S* xn,
                                     const S* nn, T* xb, T* nb, Body&& body) {
  for (int64_t p = p0; p < p1; p += lg.group) {
    const int64_t m = std::min(lg.group, p1 - p);
    const T* xg = lanes_as<T>(xn + p * C, m * C, xb);
    if (lg.spread) {
      if constexpr (NOISE) spread_pixels(nn + p, m, C, nb);
      body(std::true_type{}, p, m, xg, static_cast<const T*>(nb));
    } else {
      const T* ng = nullptr;
      if constexpr (NOISE) ng = lanes_as<T>(nn + p, m, nb);
      body(std::false_type{}, p, m, xg, ng);
    }
  }
}


// The longest stretch of an NCHW row the kernels buffer and reduce at once (values; 512 x 512
// pixels, 1 MB of float32): longer rows are reduced in blocks whose sums are added in double,
// and recomputed block by block in the second pass. Recomputing a 256 x 256 plane instead of
// reading it back from the buffer had cost up to 1.7x.
constexpr int64_t kRowBlock = int64_t(1) << 18;

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
