// The fused, tiled filtered_lrelu engine of the CUDA kernels, written once for nvcc and g++
// (no torch, no CUDA headers) so that the same code runs in the GPU kernel and in the CPU
// emulation of a thread block that tests it (tests/native/filtered_lrelu_tile_emulation.cpp).
//
// Each of the three ops is pass 1 (an upsampling upfirdn: up u1, down 1), a pointwise step,
// then pass 2 (a downsampling upfirdn: up 1, down d2), per (n, c) plane:
//   forward  x + b -> U (fu, up)    -> leaky ReLU, codes -> D (fd, down) -> y
//   masked   v     -> U             -> times m(code)     -> D            -> out
//   grad     dy    -> D^T (fd, up = down) -> times m(code) -> U^T (fu, down = up) -> dx
// A block computes one output tile of one plane. It holds in shared memory the input region
// the tile needs, the middle (upsampled) region, and one separable half-pass of each pass, so
// the upsampled plane never goes through global memory. Middle regions of neighbouring tiles
// overlap by the halo of pass 2; the overlap is computed twice rather than exchanged.
//
// The forward writes the 2-bit code of every middle element (csrc/common/filtered_lrelu.h)
// exactly once: tile k of an axis owns the middle elements [b_k, b_{k+1}) with
// b_k = clamp(k * tile * d2 - p2, 0, n_mid), b_0 = 0 and b_tiles = n_mid, a partition of the
// axis. Four codes share a byte and a byte may hold elements of two tiles (or two rows), so
// codes are ORed into the zeroed state as 32-bit words (one atomic per word a row of a tile
// touches), which needs the state allocation padded to a multiple of 4 bytes.
//
// Phases are separated by a block barrier; within a phase thread `tid` of `nt` handles
// elements tid, tid + nt, ... and each element is written by exactly one thread, reading only
// buffers written in earlier phases.
#pragma once

#include "filtered_lrelu.h"

namespace alae_fast {

AF_HD int64_t fl_min(int64_t a, int64_t b) { return a < b ? a : b; }
AF_HD int64_t fl_max(int64_t a, int64_t b) { return a > b ? a : b; }

// One axis of the pass pair.
struct FlTileAxis {
  int64_t n_in, n_mid, n_out;
  int64_t u1, p1, t1;  // pass 1: up u1 (down 1), left pad p1, taps t1
  int64_t d2, p2, t2;  // pass 2: down d2 (up 1), left pad p2, taps t2
};

// What tile k of an axis holds: outputs [o0, o1), middle [m0, m1) (elements outside
// [0, n_mid) are zeros), owned middle [own0, own1) and inputs [i0, i1) (zeros outside
// [0, n_in)).
struct FlTileSpan {
  int64_t o0, o1, m0, m1, own0, own1, i0, i1;
};

AF_HD int64_t fl_tile_count(int64_t n_out, int64_t tile) { return (n_out + tile - 1) / tile; }

AF_HD int64_t fl_own_bound(const FlTileAxis& a, int64_t tile, int64_t k) {
  if (k <= 0) return 0;
  if (k >= fl_tile_count(a.n_out, tile)) return a.n_mid;
  return fl_max(0, fl_min(a.n_mid, k * tile * a.d2 - a.p2));
}

AF_HD FlTileSpan fl_tile_span(const FlTileAxis& a, int64_t tile, int64_t k) {
  FlTileSpan s;
  s.o0 = k * tile;
  s.o1 = fl_min(s.o0 + tile, a.n_out);
  s.own0 = fl_own_bound(a, tile, k);
  s.own1 = fl_own_bound(a, tile, k + 1);
  // output o reads middle o*d2 - p2 + t, t < t2
  s.m0 = fl_min(s.o0 * a.d2 - a.p2, s.own0);
  s.m1 = fl_max((s.o1 - 1) * a.d2 - a.p2 + a.t2, s.own1);
  // middle m reads input i for the taps t with m + t - p1 = i*u1: from ceil((m - p1) / u1) to
  // floor((m - p1 + t1 - 1) / u1)
  s.i0 = -fdiv(a.p1 - s.m0, a.u1);
  s.i1 = fl_max(s.i0, fdiv(s.m1 - 1 - a.p1 + a.t1 - 1, a.u1) + 1);
  return s;
}

// Shared-memory layout of a tile shape, in elements of the accumulation type (codes: bytes
// after them). in [ih][iw] and h1 [ih][mw] (the row half of a separable pass 1) are dead once
// mid is complete, so h2 [th][mw] (the column half of a separable pass 2) reuses their space.
struct FlTilePlan {
  int64_t th = 0, tw = 0, tiles_y = 0, tiles_x = 0;
  int64_t ih = 0, iw = 0, mh = 0, mw = 0;  // largest extents over the tiles
  int64_t off_in = 0, off_h1 = 0, off_h2 = 0, acc_elems = 0, code_bytes = 0;
  int64_t bytes = 0;                       // total dynamic shared memory
};

// Largest input and middle extent over the tiles of an axis (host only: loops over tiles).
inline void fl_axis_extents(const FlTileAxis& a, int64_t tile, int64_t& in_max, int64_t& mid_max) {
  in_max = mid_max = 0;
  for (int64_t k = 0, n = fl_tile_count(a.n_out, tile); k < n; ++k) {
    const FlTileSpan s = fl_tile_span(a, tile, k);
    in_max = fl_max(in_max, s.i1 - s.i0);
    mid_max = fl_max(mid_max, s.m1 - s.m0);
  }
}

inline FlTilePlan fl_tile_plan(const FlTileAxis& ay, const FlTileAxis& ax, int64_t th, int64_t tw, bool sep1,
                               bool sep2, bool codes, int64_t acc_size) {
  FlTilePlan p;
  p.th = th, p.tw = tw;
  p.tiles_y = fl_tile_count(ay.n_out, th), p.tiles_x = fl_tile_count(ax.n_out, tw);
  fl_axis_extents(ay, th, p.ih, p.mh);
  fl_axis_extents(ax, tw, p.iw, p.mw);
  const int64_t mid = p.mh * p.mw;
  p.off_in = mid;
  p.off_h1 = mid + p.ih * p.iw;
  p.off_h2 = mid;
  p.acc_elems = mid + fl_max(p.ih * p.iw + (sep1 ? p.ih * p.mw : 0), sep2 ? p.th * p.mw : 0);
  p.code_bytes = codes ? mid : 0;
  p.bytes = p.acc_elems * acc_size + p.code_bytes;
  return p;
}

// Splits n outputs into tiles of at most `tile`, as even as possible (36 -> 18 + 18, not
// 32 + 4: the last tile would pay a whole halo for a few outputs).
inline int64_t fl_balanced_tile(int64_t n, int64_t tile) {
  const int64_t tiles = fl_tile_count(n, tile);
  return (n + tiles - 1) / tiles;
}

// The largest tile (output rows x columns, from 32 x 32 halving the longer side, balanced over
// the plane) whose buffers fit in `max_bytes`; th == 0 when not even 1 x 1 fits (the caller
// then takes another path).
inline FlTilePlan fl_choose_tile(const FlTileAxis& ay, const FlTileAxis& ax, bool sep1, bool sep2, bool codes,
                                 int64_t acc_size, int64_t max_bytes) {
  int64_t th = fl_min(32, ay.n_out), tw = fl_min(32, ax.n_out);
  for (;;) {
    FlTilePlan p = fl_tile_plan(ay, ax, fl_balanced_tile(ay.n_out, th), fl_balanced_tile(ax.n_out, tw), sep1, sep2,
                                codes, acc_size);
    if (p.bytes <= max_bytes) return p;
    if (th == 1 && tw == 1) return FlTilePlan{};
    if (th >= tw) th = (th + 1) / 2; else tw = (tw + 1) / 2;
  }
}

// One launch: the pass pair, the pointwise step and the tensors (raw pointers and strides).
// Taps are in the accumulation type A of the phases (float64 for float64 data, else float32),
// in correlation order: null for the identity (one tap of weight 1), separable as [taps along
// x][taps along y] (the same 1-D filter twice), 2-D as [ty][tx].
struct FlFusedArgs {
  FlTileAxis ax, ay;
  const void* taps1;
  bool sep1;
  double scale1;
  const void* taps2;
  bool sep2;
  double scale2;
  int mode;  // 0: leaky ReLU writing codes (forward), 1: times the derivative read from codes
  double gain, slope, clamp;
  bool has_clamp;
  int dtype;  // DType of in, bias and out
  const void* in;
  int64_t in_st[4];
  const void* bias;  // [C] or null (mode 0 only)
  void* out;
  int64_t out_st[4];
  unsigned char* codes;  // [N*C][state_bytes], 4-byte aligned, padded to a multiple of 4 bytes
  int64_t state_bytes;
  int64_t N, C;
  FlTilePlan plan;
};

// The spans of one block's tile.
struct FlTile {
  FlTileSpan y, x;
};

AF_HD FlTile fl_tile_of(const FlFusedArgs& a, int64_t tile_index) {
  const int64_t ky = tile_index / a.plan.tiles_x, kx = tile_index % a.plan.tiles_x;
  return FlTile{fl_tile_span(a.ay, a.plan.th, ky), fl_tile_span(a.ax, a.plan.tw, kx)};
}

template <typename A>
AF_HD A fl_tap(const void* taps, int64_t i) { return taps ? static_cast<const A*>(taps)[i] : A(1); }

// Storage conversions: Cv::load(T) -> A and Cv::template store<T>(A); the GPU kernel passes
// CUDA's half conversions, the emulation static_casts.
//
// Inside the phases, coordinates and shared-memory indices are 32-bit (64-bit division and
// remainder cost tens of instructions on a GPU): fl_fits_32bit checks on the host that every
// extent and pad is below 2^28. The phases add a few such terms in int (fl_phase_up's
// m + t0 - p rounds m - p1 up to a multiple of u1): with 2^30 per term a far left crop
// (p1 ~ -2^30) of a row upsampled to n_mid ~ 2^30 took that sum past 2^31 - 1, and a fused
// plan still fit. With 2^28 every intermediate stays below 2^30. Offsets into global memory
// (planes, strides, state) stay 64-bit.
inline bool fl_fits_32bit(const FlTileAxis& a) {
  const int64_t lim = int64_t(1) << 28;
  for (int64_t v : {a.n_in, a.n_mid, a.n_out, a.u1, a.p1, a.t1, a.d2, a.p2, a.t2}) {
    if (v >= lim || v <= -lim) return false;
  }
  return true;
}

// The taps of an upsampling pass (up u, down 1, left pad p) that meet input samples, for output
// m: taps t0, t0 + u, ... read inputs i0, i0 + 1, ... (phase_of in 32 bits).
struct FlPhase32 {
  int t0, i0;
};

AF_HD FlPhase32 fl_phase_up(int m, int u, int p) {
  int t0 = (p - m) % u;
  if (t0 < 0) t0 += u;
  return FlPhase32{t0, (m + t0 - p) / u};  // exact: the numerator is a multiple of u
}

// Phase 1: the tile's input region, plus the bias, zeros outside the plane.
template <typename T, typename A, typename Cv>
AF_HD void fl_phase_load(const FlFusedArgs& a, const FlTile& t, int64_t plane, A* sm, int tid, int nt) {
  const int64_t n = plane / a.C, c = plane % a.C;
  const T* base = static_cast<const T*>(a.in) + n * a.in_st[0] + c * a.in_st[1];
  const A b = (a.mode == 0 && a.bias) ? Cv::load(static_cast<const T*>(a.bias)[c]) : A(0);
  const int ih = int(t.y.i1 - t.y.i0), iw = int(t.x.i1 - t.x.i0), y0 = int(t.y.i0), x0 = int(t.x.i0);
  const int hy = int(a.ay.n_in), wx = int(a.ax.n_in);
  A* in = sm + a.plan.off_in;
  for (int e = tid; e < ih * iw; e += nt) {
    const int iy = y0 + e / iw, ix = x0 + e % iw;
    const bool inside = iy >= 0 && iy < hy && ix >= 0 && ix < wx;
    in[e] = inside ? Cv::load(base[iy * a.in_st[2] + ix * a.in_st[3]]) + b : A(0);
  }
}

// Phase 2 (separable pass 1 only): h1[r][c] = pass 1 along x of input row r at middle column c.
template <typename A>
AF_HD void fl_phase_pass1_rows(const FlFusedArgs& a, const FlTile& t, A* sm, int tid, int nt) {
  const int ih = int(t.y.i1 - t.y.i0), iw = int(t.x.i1 - t.x.i0), mw = int(t.x.m1 - t.x.m0);
  const int m0 = int(t.x.m0), x0 = int(t.x.i0), n_mid = int(a.ax.n_mid);
  const int u = int(a.ax.u1), p = int(a.ax.p1), taps = int(a.ax.t1);
  const A* in = sm + a.plan.off_in;
  A* h1 = sm + a.plan.off_h1;
  for (int e = tid; e < ih * mw; e += nt) {
    const int r = e / mw, m = m0 + e % mw;
    A acc = A(0);
    if (m >= 0 && m < n_mid) {
      const FlPhase32 ph = fl_phase_up(m, u, p);
      const A* row = in + r * iw - x0;  // row[i] for i in [i0, i1)
      for (int k = ph.t0, i = ph.i0; k < taps; k += u, ++i) acc += fl_tap<A>(a.taps1, k) * row[i];
    }
    h1[e] = acc;
  }
}

// Phase 3: mid = pass 1 (the column half of a separable one, or the whole 2-D one), times its
// scale; zeros outside the middle plane.
template <typename A>
AF_HD void fl_phase_pass1(const FlFusedArgs& a, const FlTile& t, A* sm, int tid, int nt) {
  const int iw = int(t.x.i1 - t.x.i0), mh = int(t.y.m1 - t.y.m0), mw = int(t.x.m1 - t.x.m0);
  const int my0 = int(t.y.m0), mx0 = int(t.x.m0), y0 = int(t.y.i0), x0 = int(t.x.i0);
  const int ny = int(a.ay.n_mid), nx = int(a.ax.n_mid);
  const int uy = int(a.ay.u1), py = int(a.ay.p1), ty = int(a.ay.t1);
  const int ux = int(a.ax.u1), px = int(a.ax.p1), tx = int(a.ax.t1);
  const A* in = sm + a.plan.off_in;
  const A* h1 = sm + a.plan.off_h1;
  for (int e = tid; e < mh * mw; e += nt) {
    const int my = my0 + e / mw, c = e % mw, mx = mx0 + c;
    A acc = A(0);
    if (my >= 0 && my < ny && mx >= 0 && mx < nx) {
      const FlPhase32 phy = fl_phase_up(my, uy, py);
      if (a.sep1) {
        for (int k = phy.t0, i = phy.i0; k < ty; k += uy, ++i) acc += fl_tap<A>(a.taps1, tx + k) * h1[(i - y0) * mw + c];
      } else {
        const FlPhase32 phx = fl_phase_up(mx, ux, px);
        for (int ky = phy.t0, i = phy.i0; ky < ty; ky += uy, ++i) {
          const A* row = in + (i - y0) * iw - x0;
          A r = A(0);
          for (int kx = phx.t0, j = phx.i0; kx < tx; kx += ux, ++j) r += fl_tap<A>(a.taps1, ky * tx + kx) * row[j];
          acc += r;
        }
      }
      acc *= A(a.scale1);
    }
    sm[e] = acc;
  }
}

// Phase 4: the pointwise step on the middle region. Mode 0 also leaves each element's code in
// the byte buffer after the accumulators; mode 1 reads the codes from the state.
template <typename A>
AF_HD void fl_phase_pointwise(const FlFusedArgs& a, const FlTile& t, int64_t plane, A* sm, int tid, int nt) {
  const int mh = int(t.y.m1 - t.y.m0), mw = int(t.x.m1 - t.x.m0), my0 = int(t.y.m0), mx0 = int(t.x.m0);
  const int ny = int(a.ay.n_mid), nx = int(a.ax.n_mid);
  unsigned char* codes = reinterpret_cast<unsigned char*>(sm + a.plan.acc_elems);
  const unsigned char* state = a.codes + plane * a.state_bytes;
  const A gain = A(a.gain), slope = A(a.slope), c = A(a.clamp), gs = A(a.gain * a.slope);
  for (int e = tid; e < mh * mw; e += nt) {
    const int my = my0 + e / mw, mx = mx0 + e % mw;
    if (!(my >= 0 && my < ny && mx >= 0 && mx < nx)) {
      if (a.mode == 0) codes[e] = 0;
      continue;  // a zero outside the plane stays zero
    }
    A v = sm[e];
    if (a.mode == 0) {
      const bool pos = v > A(0);  // a NaN takes the negative branch, as torch's leaky_relu backward
      A y = (pos ? v : v * slope) * gain;
      int code = pos ? kFlPos : kFlNeg;
      if (a.has_clamp) {
        if (!(y >= -c && y <= c)) code = kFlClamped;
        y = y < -c ? -c : (y > c ? c : y);
      }
      sm[e] = y;
      codes[e] = static_cast<unsigned char>(code);
    } else {
      const int code = flrelu_code(state, int64_t(my) * nx + mx);
      sm[e] = code == kFlClamped ? A(0) : v * (code == kFlPos ? gain : gs);
    }
  }
}

// OR `bits` into the 32-bit word `w` of the state: atomically on the GPU (a word may hold
// codes of two tiles), plainly in the emulation (which runs one thread at a time).
AF_HD void fl_or_word(unsigned char* codes, int64_t w, unsigned int bits) {
#if defined(__CUDA_ARCH__)
  atomicOr(reinterpret_cast<unsigned int*>(codes) + w, bits);
#else
  reinterpret_cast<unsigned int*>(codes)[w] |= bits;
#endif
}

// Phase 5 (mode 0): the codes of the owned middle elements into the state, one OR per 32-bit
// word that a row of the owned region touches. Element i of a plane is bits 2*(i%4) of byte
// plane*state_bytes + i/4 (little-endian words: byte b is bits 8*(b%4) of word b/4).
AF_HD int fl_words_per_row(const FlTile& t) { return int((t.x.own1 - t.x.own0 + 15) / 16 + 1); }

AF_HD void fl_phase_codes(const FlFusedArgs& a, const FlTile& t, int64_t plane, const unsigned char* codes, int tid,
                          int nt) {
  const int oh = int(t.y.own1 - t.y.own0), mw = int(t.x.m1 - t.x.m0);
  const int64_t nx = a.ax.n_mid;
  if (t.x.own1 <= t.x.own0) return;
  const int wpr = fl_words_per_row(t);
  const int64_t plane_byte = plane * a.state_bytes;
  for (int e = tid; e < oh * wpr; e += nt) {
    const int64_t my = t.y.own0 + e / wpr;
    const int64_t first = my * nx + t.x.own0, last = my * nx + t.x.own1 - 1;  // plane element indices
    const int64_t w = (plane_byte + first / 4) / 4 + e % wpr;
    if (w > (plane_byte + last / 4) / 4) continue;
    const unsigned char* row = codes + (my - t.y.m0) * mw;  // the owned row's codes, local columns
    const int64_t col0 = my * nx + t.x.m0;                     // element index of local column 0
    unsigned int bits = 0;
    for (int k = 0; k < 16; ++k) {  // the word's 16 elements: byte 4w + k/4, slot k%4
      const int64_t i = 4 * (4 * w + k / 4 - plane_byte) + k % 4;
      if (i < first || i > last) continue;
      bits |= static_cast<unsigned int>(row[i - col0]) << (2 * k);
    }
    if (bits) fl_or_word(a.codes, w, bits);
  }
}

// Phase 6 (separable pass 2 only): h2[r][c] = pass 2 along y at output row r, middle column c.
template <typename A>
AF_HD void fl_phase_pass2_cols(const FlFusedArgs& a, const FlTile& t, A* sm, int tid, int nt) {
  const int oh = int(t.y.o1 - t.y.o0), mw = int(t.x.m1 - t.x.m0), tx2 = int(a.ax.t2), ty2 = int(a.ay.t2);
  const int o0 = int(t.y.o0), d = int(a.ay.d2), p = int(a.ay.p2), m0 = int(t.y.m0);
  A* h2 = sm + a.plan.off_h2;
  for (int e = tid; e < oh * mw; e += nt) {
    const int r = e / mw, c = e % mw;
    const int base = (o0 + r) * d - p - m0;  // middle row of tap 0, local
    A acc = A(0);
    for (int k = 0; k < ty2; ++k) acc += fl_tap<A>(a.taps2, tx2 + k) * sm[(base + k) * mw + c];
    h2[e] = acc;
  }
}

// Phase 7: the output tile = pass 2 (the row half of a separable one, or the whole 2-D one),
// times its scale, stored with the output's strides.
template <typename T, typename A, typename Cv>
AF_HD void fl_phase_store(const FlFusedArgs& a, const FlTile& t, int64_t plane, const A* sm, int tid, int nt) {
  const int oh = int(t.y.o1 - t.y.o0), ow = int(t.x.o1 - t.x.o0), mw = int(t.x.m1 - t.x.m0);
  const int tx2 = int(a.ax.t2), ty2 = int(a.ay.t2);
  const int oy0 = int(t.y.o0), ox0 = int(t.x.o0), my0 = int(t.y.m0), mx0 = int(t.x.m0);
  const int dx = int(a.ax.d2), px = int(a.ax.p2), dy = int(a.ay.d2), py = int(a.ay.p2);
  const A* h2 = sm + a.plan.off_h2;
  T* base = static_cast<T*>(a.out) + (plane / a.C) * a.out_st[0] + (plane % a.C) * a.out_st[1];
  for (int e = tid; e < oh * ow; e += nt) {
    const int r = e / ow, oy = oy0 + r, ox = ox0 + e % ow;
    const int bx = ox * dx - px - mx0;  // middle column of tap 0, local
    A acc = A(0);
    if (a.sep2) {
      for (int k = 0; k < tx2; ++k) acc += fl_tap<A>(a.taps2, k) * h2[r * mw + bx + k];
    } else {
      const int by = oy * dy - py - my0;
      for (int ky = 0; ky < ty2; ++ky) {
        const A* row = sm + (by + ky) * mw + bx;
        for (int kx = 0; kx < tx2; ++kx) acc += fl_tap<A>(a.taps2, ky * tx2 + kx) * row[kx];
      }
    }
    base[oy * a.out_st[2] + ox * a.out_st[3]] = Cv::template store<T>(acc * A(a.scale2));
  }
}

}  // namespace alae_fast
