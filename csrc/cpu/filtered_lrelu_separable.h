// The separable fast path of the filtered_lrelu CPU engine: every filtering step is a "row
// pass" (each output row a weighted sum of whole input rows), the horizontal ones made so by
// transposing the plane in between.
//
// A plane goes first pass x -> transpose -> first pass y -> pointwise -> second pass y ->
// transpose -> second pass x, in two per-thread buffers:
//   P: x^T [w_in][h_in]   -> Q: [w_m][h_in]  (first x)  -> P: [h_in][w_m]  (transpose)
//   Q: [h_m][w_m] (first y; the upsampled plane, row-major as the saved codes are)
//   P: [h_o][w_m] (second y) -> Q: [w_m][h_o] (transpose) -> P: [w_o][h_o] (second x) -> out^T
// A row pass keeps one accumulator vector per block of kLanes columns in registers across
// all of its taps, and every row is padded to a whole number of blocks (zeros that stay zero:
// columns never mix), so no loop has a scalar tail and nothing calls out per tap. It replaced
// the per-plane engine of filtered_lrelu_kernels.h for separable filters at about twice its
// speed (4x512x36x36, up 2, down 2, 12 taps, one thread: 43-54 ms against 84-109 ms, A/B on a
// loaded 2-core machine); that engine still serves the 2-D filters.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "filtered_lrelu_kernels.h"
#include "transpose_block.h"

namespace alae_fast {
namespace flrelu_cpu {

#define AF_FL_INLINE inline __attribute__((always_inline))
// The same for a lambda inside a multiversioned function: out of line it would be a function
// of its own, compiled for the baseline instruction set.
#define AF_FL_INLINE_LAMBDA __attribute__((always_inline))

inline int64_t padded(int64_t n, int64_t lanes) { return (n + lanes - 1) / lanes * lanes; }

// The taps of every output of one axis, flattened: output o sums w[k] * in[idx[k]] for k in
// [start[o], start[o + 1]). Built from the same polyphase walk as vertical_pass, so it skips
// the zero samples of upsampling and the padding, and only indices in [0, n_in) appear.
template <typename acc_t>
struct TapTable {
  int64_t n_in = 0, n_out = 0;
  std::vector<int64_t> start, idx;
  std::vector<acc_t> w;
};

template <typename acc_t>
TapTable<acc_t> tap_table(const Axis& a, const std::vector<acc_t>& w) {
  TapTable<acc_t> t;
  t.n_in = a.n_in, t.n_out = a.n_out;
  t.start.push_back(0);
  for (int64_t o = 0; o < a.n_out; ++o) {
    const Phase ph = phase_of(o, a.up, a.down, a.p0);
    for (int64_t k = ph.t0, i = ph.i0; k < a.taps; k += a.up, ++i) {
      if (i < 0 || i >= a.n_in) continue;
      t.idx.push_back(i);
      t.w.push_back(w[k]);
    }
    t.start.push_back(int64_t(t.idx.size()));
  }
  return t;
}

// NV vectors of out row `orow` from column c: the sum over taps k in [k0, k1) of w[k] times
// input row idx[k] (stride in_ld), in NV accumulators (Vec, kernels.h).
template <int NV, typename acc_t>
AF_FL_INLINE void row_block(const acc_t* __restrict__ in, int64_t in_ld, const int64_t* idx, const acc_t* w,
                            int64_t k0, int64_t k1, int64_t c, acc_t* __restrict__ orow) {
  constexpr int64_t L = cpu_block::Block<acc_t>::B;
  Vec<acc_t> v[NV] = {};
  for (int64_t k = k0; k < k1; ++k) {
    const acc_t* src = in + idx[k] * in_ld + c;
    const acc_t wk = w[k];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      Vec<acc_t> s;
      std::memcpy(&s, src + j * L, sizeof(s));
      v[j] += wk * s;
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) std::memcpy(orow + c + j * L, &v[j], sizeof(v[j]));
}

// out row o (stride out_ld) = sum of the table's taps times input rows (stride in_ld), over
// `width` columns, a multiple of kLanes that both strides cover.
template <typename acc_t>
AF_FL_INLINE void row_pass(const acc_t* __restrict__ in, int64_t in_ld, const TapTable<acc_t>& t, int64_t width,
                           acc_t* __restrict__ out, int64_t out_ld) {
  constexpr int64_t V = kLanes<acc_t>;
  static_assert(V == 2 * cpu_block::Block<acc_t>::B, "a block of kLanes is two 32-byte vectors");
  const int64_t *start = t.start.data(), *idx = t.idx.data();
  const acc_t* w = t.w.data();
  for (int64_t o = 0; o < t.n_out; ++o) {
    acc_t* orow = out + o * out_ld;
    int64_t c = 0;
    // Two blocks a tap where the row has them: half the tap-table reads per multiply-add.
    for (; c + 2 * V <= width; c += 2 * V) row_block<4>(in, in_ld, idx, w, start[o], start[o + 1], c, orow);
    for (; c < width; c += V) row_block<2>(in, in_ld, idx, w, start[o], start[o + 1], c, orow);
  }
}

// dst[c][r] = src[r][c] for r < rows, c < cols; dst's columns rows..dst_ld are zeroed. In
// register blocks (transpose_block.h): reads src's columns up to padded(cols, B), which src_ld
// covers (every buffer here pads its rows to kLanes, a multiple of B); dst_ld >= padded(rows, B).
template <typename acc_t>
AF_FL_INLINE void transpose_into(const acc_t* __restrict__ src, int64_t src_ld, int64_t rows, int64_t cols,
                                 acc_t* __restrict__ dst, int64_t dst_ld) {
  constexpr int64_t B = cpu_block::Block<acc_t>::B;
  for (int64_t r0 = 0; r0 < rows; r0 += B) {
    for (int64_t c0 = 0; c0 < cols; c0 += B) {
      cpu_block::transpose_block<acc_t, false>(src + r0 * src_ld + c0, src_ld, std::min(B, rows - r0), acc_t(0),
                                               dst + c0 * dst_ld + r0, dst_ld, std::min(B, cols - c0));
    }
  }
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = padded(rows, B); r < dst_ld; ++r) dst[c * dst_ld + r] = acc_t(0);
  }
}

// The four axis passes of one op on a plane: first x and y (input -> the upsampled plane),
// second y and x (the upsampled plane -> output).
template <typename acc_t>
struct SeparablePlan {
  TapTable<acc_t> first_x, first_y, second_y, second_x;
  int64_t h_in, w_in, h_m, w_m, h_o, w_o;
  // Buffer sizes (elements) of P and Q, from the stage layouts in the file comment.
  int64_t p_size() const {
    constexpr int64_t V = kLanes<acc_t>;
    return std::max({w_in * padded(h_in, V), h_in * padded(w_m, V), h_o * padded(w_m, V), w_o * padded(h_o, V)});
  }
  int64_t q_size() const {
    constexpr int64_t V = kLanes<acc_t>;
    return std::max({w_m * padded(h_in, V), h_m * padded(w_m, V), w_m * padded(h_o, V)});
  }
};

template <typename acc_t>
SeparablePlan<acc_t> separable_plan(const Axis& fx, const Axis& fy, const std::vector<acc_t>& fw, const Axis& sy,
                                    const Axis& sx, const std::vector<acc_t>& sw) {
  SeparablePlan<acc_t> s;
  s.first_x = tap_table(fx, fw), s.first_y = tap_table(fy, fw);
  s.second_y = tap_table(sy, sw), s.second_x = tap_table(sx, sw);
  s.h_in = fy.n_in, s.w_in = fx.n_in, s.h_m = fy.n_out, s.w_m = fx.n_out, s.h_o = sy.n_out, s.w_o = sx.n_out;
  return s;
}

// One plane: `load(dst, ld)` writes the input transposed, [w_in][ld] with ld >= h_in (zeros
// in the padding); `pointwise(plane, ld)` acts on the whole upsampled plane, [h_m][ld] with
// ld >= w_m, whose padding columns hold zeros (one call, so no row has a scalar tail);
// `store(src, ld)` reads the output transposed, [w_o][ld].
template <typename acc_t, typename Load, typename Pointwise, typename Store>
AF_FL_INLINE void separable_plane(const SeparablePlan<acc_t>& s, acc_t* __restrict__ P, acc_t* __restrict__ Q,
                                  Load&& load, Pointwise&& pointwise, Store&& store) {
  constexpr int64_t V = kLanes<acc_t>;
  const int64_t ld_in = padded(s.h_in, V), ld_m = padded(s.w_m, V), ld_o = padded(s.h_o, V);
  load(P, ld_in);                                   // P: [w_in][ld_in]
  row_pass(P, ld_in, s.first_x, ld_in, Q, ld_in);   // Q: [w_m][ld_in]
  transpose_into(Q, ld_in, s.w_m, s.h_in, P, ld_m); // P: [h_in][ld_m]
  row_pass(P, ld_m, s.first_y, ld_m, Q, ld_m);      // Q: [h_m][ld_m], the upsampled plane
  pointwise(Q, ld_m);
  row_pass(Q, ld_m, s.second_y, ld_m, P, ld_m);     // P: [h_o][ld_m]
  transpose_into(P, ld_m, s.h_o, s.w_m, Q, ld_o);   // Q: [w_m][ld_o]
  row_pass(Q, ld_o, s.second_x, ld_o, P, ld_o);     // P: [w_o][ld_o]
  store(P, ld_o);
}

}  // namespace flrelu_cpu
}  // namespace alae_fast
