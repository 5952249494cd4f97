// The CPU engine of filtered_lrelu: one plane at a time, in per-thread buffers.
//
// Each of the three ops is "upfirdn pass, pointwise step, upfirdn pass" on one (n, c) plane:
//   forward       x + b  -> U (fu, up, padding)  -> leaky ReLU, codes -> D (fd, down) -> y
//   masked        v      -> U                     -> times m(code)      -> D           -> out
//   grad          dy     -> D^T (fd reversed)     -> times m(code)      -> U^T         -> dx
// so the upsampled plane lives only in a buffer of the thread that handles the plane; it never
// exists as a full [N, C, UH, UW] tensor. Every buffer is sized from the pass geometry before
// it is written (the invariants are stated where the indices are formed).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../common/upfirdn2d.h"
#include "multiversion.h"
#include "transpose_block.h"

#define AF_FL_CLONES AF_CPU_MULTIVERSION __attribute__((noinline))

namespace alae_fast {
namespace flrelu_cpu {

// One axis of one pass: out[o] = sum_t w[t] * z[o*down + t - p0] for o < n_out, where
// z[j] = in[j / up] when j % up == 0 and 0 <= j / up < n_in, else 0 (w in correlation order).
struct Axis {
  int64_t n_in, n_out, up, down, p0, taps;
  // The horizontal pass reads z[0 .. span) only: span = (n_out - 1) * down + taps.
  int64_t span() const { return (n_out - 1) * down + taps; }
  // Length of one phase row of z split by j % down: index j / down <= (span - 1) / down.
  int64_t phase_len() const { return (span() - 1) / down + 1; }
};

// Taps in correlation order with the gain folded in: wx, wy (separable) or w2 [ty][tx].
template <typename acc_t>
struct Filter {
  bool separable = true;
  int64_t tx = 1, ty = 1;
  std::vector<acc_t> wx, wy, w2;
};

template <typename acc_t>
AF_FL_CLONES void axpy(acc_t* __restrict__ y, acc_t a, const acc_t* __restrict__ x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

template <typename acc_t>
AF_FL_CLONES void scale_into(acc_t* __restrict__ y, acc_t a, const acc_t* __restrict__ x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];
}

// z of one input row split by phase: ph[(j % down) * stride + j / down] = z[j] for j < span,
// zeros in [phase_len, stride) of each phase row (stride 0: phase_len, rows back to back). ph
// holds down * stride values; every index written has j < span, so j / down < phase_len (the
// invariant of Axis::phase_len).
template <typename acc_t>
void expand_row(const acc_t* in, const Axis& a, acc_t* ph, int64_t stride = 0) {
  const int64_t len = a.phase_len(), span = a.span();
  if (stride == 0) stride = len;
  if (a.up == 1) {  // no zero samples: each phase row is a strided copy, no division per sample
    for (int64_t p = 0; p < a.down; ++p) {
      acc_t* row = ph + p * stride;
      for (int64_t m = 0; m < len; ++m) {
        const int64_t j = m * a.down + p, i = j - a.p0;
        row[m] = (j < span && i >= 0 && i < a.n_in) ? in[i] : acc_t(0);
      }
      for (int64_t m = len; m < stride; ++m) row[m] = acc_t(0);
    }
    return;
  }
  for (int64_t k = 0; k < a.down * stride; ++k) ph[k] = acc_t(0);
  for (int64_t i = 0; i < a.n_in; ++i) {
    const int64_t j = i * a.up + a.p0;
    if (j < 0) continue;
    if (j >= span) break;
    ph[(j % a.down) * stride + j / a.down] = in[i];
  }
}

// out[o] = sum_t w[t] * z[o*down + t] from the phase rows; z[o*down + t] is
// ph[(t % down) * len + o + t / down], and o + t / down <= (span - 1) / down < len.
template <typename acc_t>
AF_FL_CLONES void correlate_row(const acc_t* __restrict__ ph, const Axis& a, const acc_t* __restrict__ w,
                                acc_t* __restrict__ out) {
  const int64_t len = a.phase_len(), n = a.n_out, d = a.down;
  for (int64_t o = 0; o < n; ++o) out[o] = acc_t(0);
  for (int64_t t = 0; t < a.taps; ++t) {
    const acc_t* __restrict__ src = ph + (t % d) * len + t / d;
    const acc_t wt = w[t];
    for (int64_t o = 0; o < n; ++o) out[o] += wt * src[o];
  }
}

// out[m] = sum_k w[k * wstride] * src[m + k] for m < n (src holds n + taps - 1 values).
template <typename acc_t>
AF_FL_CLONES void fir_contiguous(const acc_t* __restrict__ src, const acc_t* __restrict__ w, int64_t wstride,
                                 int64_t taps, int64_t n, acc_t* __restrict__ out) {
  for (int64_t m = 0; m < n; ++m) out[m] = acc_t(0);
  for (int64_t k = 0; k < taps; ++k) {
    const acc_t wk = w[k * wstride];
    const acc_t* __restrict__ s = src + k;
    for (int64_t m = 0; m < n; ++m) out[m] += wk * s[m];
  }
}

// The horizontal pass of an upsampling axis (down == 1, up > 1) without the zero samples: the
// outputs o = r + m*up of one residue r share their first tap t0_r, and read in[i0_r + m + k]
// with taps t0_r + k*up (common/upfirdn2d.h). `pad` holds in[] over [lo, hi), the union of
// the indices any residue reads (zero outside [0, n_in)); `tmp` holds one residue's outputs.
struct UpRow {
  int64_t lo = 0, hi = 0;
};

inline UpRow up_row_span(const Axis& a) {
  UpRow s;
  bool first = true;
  for (int64_t r = 0; r < a.up && r < a.n_out; ++r) {
    const Phase ph = phase_of(r, a.up, 1, a.p0);
    const int64_t count = (a.n_out - r + a.up - 1) / a.up, k = phase_taps(ph.t0, a.up, a.taps);
    if (k == 0) continue;
    const int64_t lo = ph.i0, hi = ph.i0 + count + k - 1;
    s.lo = first ? lo : std::min(s.lo, lo);
    s.hi = first ? hi : std::max(s.hi, hi);
    first = false;
  }
  return s;
}

template <typename acc_t>
void correlate_row_up(const acc_t* in, const Axis& a, const UpRow& span, const acc_t* w, acc_t* pad, acc_t* tmp,
                      acc_t* out) {
  for (int64_t i = span.lo; i < span.hi; ++i) pad[i - span.lo] = (i >= 0 && i < a.n_in) ? in[i] : acc_t(0);
  for (int64_t r = 0; r < a.up && r < a.n_out; ++r) {
    const Phase ph = phase_of(r, a.up, 1, a.p0);
    const int64_t count = (a.n_out - r + a.up - 1) / a.up, k = phase_taps(ph.t0, a.up, a.taps);
    if (k == 0) {
      for (int64_t m = 0; m < count; ++m) out[r + m * a.up] = acc_t(0);
      continue;
    }
    // Reads pad[i0 - lo + m + j] for m < count, j < k: inside [0, hi - lo) by up_row_span.
    fir_contiguous(pad + (ph.i0 - span.lo), w + ph.t0, a.up, k, count, tmp);
    for (int64_t m = 0; m < count; ++m) out[r + m * a.up] = tmp[m];
  }
}

// The vertical pass over rows of `width` values: out row o from the input rows its valid taps
// read (the polyphase view of common/upfirdn2d.h skips the zero rows). `in` holds a.n_in
// rows, `out` a.n_out rows.
template <typename acc_t>
void vertical_pass(const acc_t* in, const Axis& a, const acc_t* w, int64_t width, acc_t* out) {
  for (int64_t o = 0; o < a.n_out; ++o) {
    acc_t* row = out + o * width;
    const Phase ph = phase_of(o, a.up, a.down, a.p0);
    bool first = true;
    for (int64_t t = ph.t0, i = ph.i0; t < a.taps; t += a.up, ++i) {
      if (i < 0 || i >= a.n_in) continue;
      if (first) {
        scale_into(row, w[t], in + i * width, width);
        first = false;
      } else {
        axpy(row, w[t], in + i * width, width);
      }
    }
    if (first) {
      for (int64_t k = 0; k < width; ++k) row[k] = acc_t(0);
    }
  }
}

// A block of outputs: 64 bytes (an AVX-512 register, two AVX2 ones), summed in 32-byte
// vector-extension values (transpose_block.h's), so the loops are vector code in every clone
// whatever the inliner decides (left to the auto-vectorizer, one inlining change had turned a
// pass scalar).
template <typename acc_t>
constexpr int64_t kLanes = int64_t(64 / sizeof(acc_t));
template <typename acc_t>
using Vec = typename cpu_block::Block<acc_t>::vec;

// out [ay.n_out][ax.n_out] from the expanded rows (input row i's phase p at
// ph + i * down * stride + p * stride): out[o][x] = sum over valid tap rows (t, i) and taps tx
// of w2[t][tx] * z_i[x * down + tx], z_i[x * down + tx] = ph_i[(tx % down) * stride + x + tx / down].
// A block of outputs x in [c, c + kLanes) reads up to index c + kLanes - 1 + (taps - 1) / down
// < phase_len + kLanes = stride (phase_len = n_out + (taps - 1) / down), and only its first
// n_out - c values are stored.
template <typename acc_t>
AF_FL_CLONES void pass_2d(const acc_t* __restrict__ ph, const Axis& ax, const Axis& ay, const acc_t* __restrict__ w2,
                          int64_t stride, acc_t* __restrict__ out) {
  constexpr int64_t V = kLanes<acc_t>, L = cpu_block::Block<acc_t>::B;
  using vec = Vec<acc_t>;
  const int64_t n = ax.n_out, d = ax.down, rowp = d * stride;
  std::vector<int64_t> off(ax.taps);  // where tap tx reads, relative to the block's first output
  for (int64_t tx = 0; tx < ax.taps; ++tx) off[tx] = (tx % d) * stride + tx / d;
  for (int64_t o = 0; o < ay.n_out; ++o) {
    acc_t* row = out + o * n;
    const Phase p = phase_of(o, ay.up, ay.down, ay.p0);
    for (int64_t c = 0; c < n; c += V) {
      // Four pairs of accumulators, taps dealt round-robin: one pair would chain every
      // multiply-add on the previous one's latency (4-5 cycles) instead of issuing two a cycle.
      vec a[4][2] = {};
      for (int64_t t = p.t0, i = p.i0; t < ay.taps; t += ay.up, ++i) {
        if (i < 0 || i >= ay.n_in) continue;
        const acc_t* e = ph + i * rowp + c;
        const acc_t* wr = w2 + t * ax.taps;
        int64_t tx = 0;
        for (; tx + 4 <= ax.taps; tx += 4) {
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            vec s0, s1;
            std::memcpy(&s0, e + off[tx + k], sizeof(s0));
            std::memcpy(&s1, e + off[tx + k] + L, sizeof(s1));
            a[k][0] += wr[tx + k] * s0;
            a[k][1] += wr[tx + k] * s1;
          }
        }
        for (; tx < ax.taps; ++tx) {
          vec s0, s1;
          std::memcpy(&s0, e + off[tx], sizeof(s0));
          std::memcpy(&s1, e + off[tx] + L, sizeof(s1));
          a[0][0] += wr[tx] * s0;
          a[0][1] += wr[tx] * s1;
        }
      }
      const vec a0 = (a[0][0] + a[1][0]) + (a[2][0] + a[3][0]), a1 = (a[0][1] + a[1][1]) + (a[2][1] + a[3][1]);
      acc_t blk[V];
      std::memcpy(blk, &a0, sizeof(a0));
      std::memcpy(blk + L, &a1, sizeof(a1));
      std::memcpy(row + c, blk, sizeof(acc_t) * size_t(std::min(V, n - c)));
    }
  }
}

// Per-thread scratch of one pass.
template <typename acc_t>
struct Scratch {
  std::vector<acc_t> phase, rows;
};

// One 2-D upfirdn pass over a plane: in [ay.n_in][ax.n_in] -> out [ay.n_out][ax.n_out].
template <typename acc_t>
void run_pass(const acc_t* in, const Axis& ax, const Axis& ay, const Filter<acc_t>& f, acc_t* out,
              Scratch<acc_t>& s) {
  const int64_t plen = ax.down * ax.phase_len();
  if (f.separable) {
    // Rows first: ay.n_in rows of ax.n_out values, then the vertical pass over them.
    s.rows.resize(ay.n_in * ax.n_out);
    if (ax.down == 1 && ax.up > 1) {
      const UpRow span = up_row_span(ax);
      s.phase.resize(std::max<int64_t>(span.hi - span.lo, 1) + ax.n_out);  // pad, then tmp
      for (int64_t r = 0; r < ay.n_in; ++r) {
        correlate_row_up(in + r * ax.n_in, ax, span, f.wx.data(), s.phase.data(),
                         s.phase.data() + std::max<int64_t>(span.hi - span.lo, 1), s.rows.data() + r * ax.n_out);
      }
    } else {
      s.phase.resize(plen);
      for (int64_t r = 0; r < ay.n_in; ++r) {
        expand_row(in + r * ax.n_in, ax, s.phase.data());
        correlate_row(s.phase.data(), ax, f.wx.data(), s.rows.data() + r * ax.n_out);
      }
    }
    vertical_pass(s.rows.data(), ay, f.wy.data(), ax.n_out, out);
    return;
  }
  // 2-D taps: every input row expanded once into its down phases, then the output rows summed
  // block by block in registers (pass_2d).
  const int64_t len = ax.phase_len(), lenp = len + kLanes<acc_t>, rowp = ax.down * lenp;
  s.phase.resize(ay.n_in * rowp);
  for (int64_t r = 0; r < ay.n_in; ++r) expand_row(in + r * ax.n_in, ax, s.phase.data() + r * rowp, lenp);
  pass_2d(s.phase.data(), ax, ay, f.w2.data(), lenp, out);
}

// Leaky ReLU times gain, clamped; codes[i] gets the branch (common/filtered_lrelu.h). The
// selects compile to blends, so the loop vectorizes (-fno-trapping-math). A NaN stays NaN.
// Inlined into the separable engine's plane functions; `activate` is this engine's entry.
template <typename acc_t, bool CLAMP>
inline __attribute__((always_inline)) void activate_values(acc_t* __restrict__ u, uint8_t* __restrict__ codes,
                                                           int64_t n, acc_t gain, acc_t slope, acc_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const acc_t z = u[i];
    const bool pos = z > acc_t(0);
    acc_t y = (pos ? z : z * slope) * gain;
    uint8_t code = pos ? 1 : 0;
    if (CLAMP) {
      code = (y >= -c && y <= c) ? code : uint8_t(2);
      y = y < -c ? -c : (y > c ? c : y);
    }
    u[i] = y;
    codes[i] = code;
  }
}

template <typename acc_t, bool CLAMP>
AF_FL_CLONES void activate(acc_t* __restrict__ u, uint8_t* __restrict__ codes, int64_t n, acc_t gain,
                           acc_t slope, acc_t c) {
  activate_values<acc_t, CLAMP>(u, codes, n, gain, slope, c);
}

// Four 2-bit codes per byte: packed holds (n + 3) / 4 bytes, every one written.
static AF_FL_CLONES void pack_codes(const uint8_t* __restrict__ codes, int64_t n, uint8_t* __restrict__ packed) {
  const int64_t full = n / 4;
  for (int64_t q = 0; q < full; ++q) {
    packed[q] = uint8_t(codes[4 * q] | (codes[4 * q + 1] << 2) | (codes[4 * q + 2] << 4) | (codes[4 * q + 3] << 6));
  }
  if (n % 4) {
    uint8_t v = 0;
    for (int64_t i = 4 * full; i < n; ++i) v |= uint8_t(codes[i] << ((i & 3) * 2));
    packed[full] = v;
  }
}

// Unpacks (n + 3) / 4 bytes into n codes.
static AF_FL_CLONES void unpack_codes(const uint8_t* __restrict__ packed, int64_t n, uint8_t* __restrict__ codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = (packed[i >> 2] >> ((i & 3) * 2)) & 3;
}

// u[i] times the derivative of the activation at code[i]; exactly 0 where the clamp cut
// (a select, not a product, as torch's clamp backward: a NaN there gives 0). Inlined as
// activate_values is; `apply_mask` is this engine's entry.
template <typename acc_t>
inline __attribute__((always_inline)) void mask_values(acc_t* __restrict__ u, const uint8_t* __restrict__ codes,
                                                       int64_t n, acc_t gain, acc_t gain_slope) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t k = codes[i];
    const acc_t v = u[i] * (k == 1 ? gain : gain_slope);
    u[i] = k == 2 ? acc_t(0) : v;
  }
}

template <typename acc_t>
AF_FL_CLONES void apply_mask(acc_t* __restrict__ u, const uint8_t* __restrict__ codes, int64_t n, acc_t gain,
                             acc_t gain_slope) {
  mask_values(u, codes, n, gain, gain_slope);
}

}  // namespace flrelu_cpu
}  // namespace alae_fast
