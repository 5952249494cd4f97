// Square blocks of a matrix transposed in vector registers: 8 x 8 floats or 4 x 4 doubles
// (one 32-byte vector a row), in GCC/clang vector extensions so that every clone of a
// multiversioned caller lowers the shuffles to its own instruction set (two SSE halves in the
// baseline clone). A scalar transpose of a cache-resident plane does one load and one store a
// value and stalls on the strided stores; a block does 2B loads and stores per B x B values.
//
// Only float and double: the accumulator types of the CPU engines (at::opmath_type).
#pragma once

#include <cstdint>
#include <cstring>

namespace alae_fast {
namespace cpu_block {

template <typename T>
struct Block;

template <>
struct Block<float> {
  static constexpr int64_t B = 8;
  typedef float vec __attribute__((vector_size(32)));
  static inline __attribute__((always_inline)) void transpose(vec (&r)[8]) {
    vec t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
      t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
      for (int j = 0; j < 2; ++j) {
        u[i + 2 * j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 2 * j + 1] = __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
      }
    }
    // u[0..3] hold columns k and k + 4 of rows 0-3, u[4..7] the same of rows 4-7.
    for (int k = 0; k < 4; ++k) {
      r[k] = __builtin_shufflevector(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
      r[k + 4] = __builtin_shufflevector(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
  }
};

template <>
struct Block<double> {
  static constexpr int64_t B = 4;
  typedef double vec __attribute__((vector_size(32)));
  static inline __attribute__((always_inline)) void transpose(vec (&r)[4]) {
    const vec t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
    const vec t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
    const vec t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
    const vec t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5), r[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5), r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
  }
};

// dst[k * dst_ld + i] = src[i * src_ld + k] (+ add when ADD) for i < B, k < n_out, where
// source rows i >= n_in read as zeros and get no `add` (so the block writes the zero padding
// after the last row too). Reads B values of each of the first n_in source rows; writes B
// values of n_out rows.
template <typename T, bool ADD>
inline __attribute__((always_inline)) void transpose_block(const T* __restrict__ src, int64_t src_ld, int64_t n_in,
                                                           T add, T* __restrict__ dst, int64_t dst_ld, int64_t n_out) {
  using K = Block<T>;
  typename K::vec r[K::B];
  for (int64_t i = 0; i < K::B; ++i) {
    if (i < n_in) {
      std::memcpy(&r[i], src + i * src_ld, sizeof(r[i]));
      if (ADD) r[i] += add;
    } else {
      r[i] = typename K::vec{};
    }
  }
  K::transpose(r);
  for (int64_t k = 0; k < n_out; ++k) std::memcpy(dst + k * dst_ld, &r[k], sizeof(r[k]));
}

}  // namespace cpu_block
}  // namespace alae_fast
