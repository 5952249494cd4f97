// Internal to the CPU adain engine: the channels_last loops for 8, 16 and 32 channels with the
// per-channel values and partial sums held in vector registers.
//
// Why: at a few channels the generic channels_last loops either spread every per-channel value
// over a 512-lane group (seven loads and three stores per element) or walk each pixel's C
// channels with the partial sums in memory (a store-to-load chain per pixel). A channels_last
// adain at 8 channels took twice the time of the same values contiguous. With C a multiple of
// a vector's lanes, a pixel is C / W whole vectors and every per-channel value is C / W
// registers, so an element costs one load, the pixel's noise one broadcast.
//
// The piecewise-linear activations (linear, relu, lrelu) have vector forms here, with the
// scalar act_eval / chain_d1 semantics (NaN propagates the same way); the others keep the
// generic loops. GCC only (vector conditionals); elsewhere the generic loops run.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../common/activations.h"

// Included by adain_engine.h, after its AF_ALWAYS_INLINE.

namespace alae_fast {
namespace adain_cpu_engine {

#if defined(__GNUC__) && !defined(__clang__)
#define AF_ADAIN_REGISTER_LANES 1
#else
#define AF_ADAIN_REGISTER_LANES 0
#endif

// Whether activation ACT at C channels takes these loops.
template <int ACT>
constexpr bool register_act() {
  return AF_ADAIN_REGISTER_LANES && (ACT == kLinear || ACT == kRelu || ACT == kLrelu);
}
inline constexpr bool register_channels(int64_t C) { return C == 8 || C == 16 || C == 32; }

#if AF_ADAIN_REGISTER_LANES

// 32 bytes: one AVX register under the x86-64-v3 and v4 clones, two SSE ones under the baseline.
template <typename T>
struct Lanes {
  typedef T V __attribute__((vector_size(32)));
  static constexpr int W = 32 / sizeof(T);
};

template <typename V, typename T>
AF_ALWAYS_INLINE V vload(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename T>
AF_ALWAYS_INLINE void vstore(T* p, V v) {
  __builtin_memcpy(p, &v, sizeof(V));
}
template <typename V, typename T>
AF_ALWAYS_INLINE V vsplat(T s) {
  return V{} + s;
}

// act_eval<ACT, 0> and <ACT, 1>, and chain_d1, lane by lane.
template <int ACT, typename V, typename T>
AF_ALWAYS_INLINE V vact0(V z, T alpha) {
  if constexpr (ACT == kLinear) return z;
  else if constexpr (ACT == kRelu) return z <= V{} ? V{} : z;
  else return z > V{} ? z : z * alpha;
}
template <int ACT, typename V, typename T>
AF_ALWAYS_INLINE V vact1(V z, T alpha) {
  if constexpr (ACT == kLinear) return vsplat<V>(T(1));
  else if constexpr (ACT == kRelu) return z <= V{} ? V{} : vsplat<V>(T(1));
  else return z > V{} ? vsplat<V>(T(1)) : vsplat<V>(alpha);
}
template <int ACT, typename V>
AF_ALWAYS_INLINE V vchain(V d1, V g) {
  if constexpr (ACT == kRelu) return d1 != V{} ? g : V{};
  else return d1 * g;
}

// NV vectors of per-channel values from the [C] array p.
template <int NV, typename V, typename T>
AF_ALWAYS_INLINE void vload_all(const T* p, V (&out)[NV]) {
  constexpr int W = sizeof(V) / sizeof(T);
  for (int k = 0; k < NV; ++k) out[k] = vload<V>(p + k * W);
}
// p[0..C) += a[k] + b[k] lane by lane.
template <int NV, typename V, typename T>
AF_ALWAYS_INLINE void vadd_into(T* p, const V (&a)[NV], const V (&b)[NV]) {
  constexpr int W = sizeof(V) / sizeof(T);
  for (int k = 0; k < NV; ++k) vstore(p + k * W, vload<V>(p + k * W) + (a[k] + b[k]));
}

// z = x + b (+ nw * nv) for vector k of pixel q of a group of CC-channel pixels at xg: the
// scalar z_of's order of operations.
template <bool NOISE, int CC, typename V, typename T>
AF_ALWAYS_INLINE V vz(const T* xg, int64_t q, int k, const V* b, const V* nw, V nv) {
  constexpr int W = sizeof(V) / sizeof(T);
  V z = vload<V>(xg + q * CC + k * W) + b[k];
  if constexpr (NOISE) z += nw[k] * nv;
  return z;
}

// Pixel q's noise over every lane (zero without noise).
template <bool NOISE, typename V, typename T>
AF_ALWAYS_INLINE V vnoise(const T* ng, int64_t q) {
  if constexpr (NOISE) return vsplat<V>(ng[q]);
  else return V{};
}

// pixel(q, p1, p2) for q < m, two pixels in flight: even pixels add into one pair of NV-vector
// sums and odd ones into another, so the adds do not wait on each other; both pairs are then
// added into a1[0..C) and a2[0..C).
template <int NV, typename V, typename T, typename Pixel>
AF_ALWAYS_INLINE void two_in_flight(int64_t m, Pixel&& pixel, T* a1, T* a2) {
  V s1[NV] = {}, s2[NV] = {}, u1[NV] = {}, u2[NV] = {};
  int64_t q = 0;
  for (; q + 2 <= m; q += 2) {
    pixel(q, s1, s2);
    pixel(q + 1, u1, u2);
  }
  if (q < m) pixel(q, s1, s2);
  vadd_into<NV>(a1, s1, u1);
  vadd_into<NV>(a2, s2, u2);
}

#endif  // AF_ADAIN_REGISTER_LANES

// Calls fn(std::integral_constant<int, CC>{}) for C in {8, 16, 32} and returns true; returns
// false (fn not called) otherwise or where the register loops are not built.
template <typename Fn>
AF_ALWAYS_INLINE bool with_register_channels(int64_t C, Fn&& fn) {
#if AF_ADAIN_REGISTER_LANES
  switch (C) {
    case 8: fn(std::integral_constant<int, 8>{}); return true;
    case 16: fn(std::integral_constant<int, 16>{}); return true;
    case 32: fn(std::integral_constant<int, 32>{}); return true;
    default: return false;
  }
#else
  (void)C;
  (void)fn;
  return false;
#endif
}

}  // namespace adain_cpu_engine
}  // namespace alae_fast
