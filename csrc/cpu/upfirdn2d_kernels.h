// CPU kernel bodies of upfirdn2d. No include guard on purpose: csrc/cpu/upfirdn2d.cpp
// includes this file twice, into namespaces compiled for two instruction sets (baseline
// x86-64 and AVX2+FMA), and picks one at run time. Everything it needs is included there.
//
// NCHW: each work unit is one (plane, block of output rows). The input rows the block reads
// are converted once into zero-margined rows of acc_t, so the inner loops have no bounds
// checks; a horizontal polyphase pass turns each into an output-width row, and output rows
// are weighted sums of those rows (separable filter), or of a horizontal pass per filter row
// (2-D filter). Inner loops run along x with compile-time taps and factors, which the
// compiler vectorizes.
// NHWC: each work unit is one output row; every output pixel is a weighted sum of input
// pixel vectors of C channels, and the inner loops run along C.

// ---- horizontal polyphase passes over zero-margined rows ------------------------------
// `rows` rows: row j reads r + j*is and writes n outputs to y + j*os. r[i] is input sample
// i + lo of the row (lo folded into p0 by the caller), valid for every index the outputs
// read; w holds the taps in correlation order. MODE 0 writes y, MODE 1 adds to it.

template <typename acc_t>
using HRowFn = void (*)(const acc_t*, const acc_t*, acc_t*, int64_t, int64_t, int64_t, int64_t,
                        int64_t);

template <typename acc_t, int DOWN, int T, int MODE>
void hrow_up1(const acc_t* __restrict r, const acc_t* __restrict w, acc_t* __restrict y,
              int64_t n, int64_t p0, int64_t rows, int64_t is, int64_t os) {
  acc_t wt[T];
  for (int t = 0; t < T; ++t) wt[t] = w[t];
  for (int64_t j = 0; j < rows; ++j) {
    const acc_t* s = r + j * is - p0;
    acc_t* d = y + j * os;
#pragma GCC ivdep
    for (int64_t o = 0; o < n; ++o) {
      acc_t a = wt[0] * s[o * DOWN];
#pragma GCC unroll 8
      for (int t = 1; t < T; ++t) a += wt[t] * s[o * DOWN + t];
      d[o] = MODE ? d[o] + a : a;
    }
  }
}

// up = 2, down = 1: even and odd outputs are two interleaved 1-D correlations with the
// even and odd taps. T0 is the first tap of output 0: p0 mod 2. n must be even.
template <typename acc_t, int T, int T0, int MODE>
void hrow_up2(const acc_t* __restrict r, const acc_t* __restrict w, acc_t* __restrict y,
              int64_t n, int64_t p0, int64_t rows, int64_t is, int64_t os) {
  constexpr int T1 = 1 - T0;
  constexpr int N0 = T0 >= T ? 0 : (T - T0 + 1) / 2;
  constexpr int N1 = T1 >= T ? 0 : (T - T1 + 1) / 2;
  acc_t w0[N0 > 0 ? N0 : 1], w1[N1 > 0 ? N1 : 1];
  for (int k = 0; k < N0; ++k) w0[k] = w[T0 + 2 * k];
  for (int k = 0; k < N1; ++k) w1[k] = w[T1 + 2 * k];
  for (int64_t j = 0; j < rows; ++j) {
    const acc_t* r0 = r + j * is + (T0 - p0) / 2;  // exact divisions: T0 = p0 mod 2
    const acc_t* r1 = r + j * is + (1 + T1 - p0) / 2;
    acc_t* d = y + j * os;
#pragma GCC ivdep
    for (int64_t q = 0; q < n / 2; ++q) {
      acc_t e = acc_t(0), od = acc_t(0);
      if constexpr (N0 > 0) {
        e = w0[0] * r0[q];
#pragma GCC unroll 8
        for (int k = 1; k < N0; ++k) e += w0[k] * r0[q + k];
      }
      if constexpr (N1 > 0) {
        od = w1[0] * r1[q];
#pragma GCC unroll 8
        for (int k = 1; k < N1; ++k) od += w1[k] * r1[q + k];
      }
      d[2 * q] = MODE ? d[2 * q] + e : e;
      d[2 * q + 1] = MODE ? d[2 * q + 1] + od : od;
    }
  }
}

template <typename acc_t, int MODE>
void hrow_generic(const acc_t* r, const acc_t* w, acc_t* y, int64_t n, int64_t up, int64_t down,
                  int64_t p0, int64_t taps, int64_t rows, int64_t is, int64_t os) {
  for (int64_t j = 0; j < rows; ++j) {
    const acc_t* s = r + j * is;
    acc_t* d = y + j * os;
    for (int64_t o = 0; o < n; ++o) {
      const Phase ph = phase_of(o, up, down, p0);
      const int64_t nk = phase_taps(ph.t0, up, taps);
      acc_t a = acc_t(0);
      for (int64_t k = 0; k < nk; ++k) a += w[ph.t0 + k * up] * s[ph.i0 + k];
      d[o] = MODE ? d[o] + a : a;
    }
  }
}

#define AF_UFD_TAPS_CASES(EXPR) \
  case 1: return EXPR(1);       \
  case 2: return EXPR(2);       \
  case 3: return EXPR(3);       \
  case 4: return EXPR(4);       \
  case 5: return EXPR(5);       \
  case 6: return EXPR(6);       \
  case 7: return EXPR(7);       \
  case 8: return EXPR(8);

// The specialised pass for (up, down, taps), or nullptr where the generic pass serves.
// p0 parity matters for up = 2 only.
template <typename acc_t, int MODE>
HRowFn<acc_t> pick_hrow(int64_t up, int64_t down, int64_t taps, int64_t p0) {
  if (up == 1 && down == 1) {
#define AF_E(T) &hrow_up1<acc_t, 1, T, MODE>
    switch (taps) { AF_UFD_TAPS_CASES(AF_E) default: return nullptr; }
#undef AF_E
  }
  if (up == 1 && down == 2) {
#define AF_E(T) &hrow_up1<acc_t, 2, T, MODE>
    switch (taps) { AF_UFD_TAPS_CASES(AF_E) default: return nullptr; }
#undef AF_E
  }
  if (up == 2 && down == 1) {
    if (pmod(p0, 2) == 0) {
#define AF_E(T) &hrow_up2<acc_t, T, 0, MODE>
      switch (taps) { AF_UFD_TAPS_CASES(AF_E) default: return nullptr; }
#undef AF_E
    }
#define AF_E(T) &hrow_up2<acc_t, T, 1, MODE>
    switch (taps) { AF_UFD_TAPS_CASES(AF_E) default: return nullptr; }
#undef AF_E
  }
  return nullptr;
}

// One horizontal pass configuration: chosen once per call, run per row.
template <typename acc_t, int MODE>
struct HRow {
  HRowFn<acc_t> fn;
  int64_t up, down, taps, p0;
  HRow(int64_t up_, int64_t down_, int64_t taps_, int64_t p0_)
      : fn(pick_hrow<acc_t, MODE>(up_, down_, taps_, p0_)), up(up_), down(down_), taps(taps_),
        p0(p0_) {}
  // n outputs per row must be even for up = 2 (see needs_even).
  void operator()(const acc_t* r, const acc_t* w, acc_t* y, int64_t n, int64_t rows = 1,
                  int64_t is = 0, int64_t os = 0) const {
    if (fn) fn(r, w, y, n, p0, rows, is, os);
    else hrow_generic<acc_t, MODE>(r, w, y, n, up, down, p0, taps, rows, is, os);
  }
  bool needs_even() const { return fn != nullptr && up == 2; }
};

// ---- weighted sums of K equally long rows --------------------------------------------
// out[i] = cast((HAS_ACC ? acc[i] : 0) + sum_k w[k] * p[k][i]). Outputs never alias inputs.

template <typename in_t, typename acc_t, typename out_t, int K, bool HAS_ACC>
void combine_out(const in_t* const* p, const acc_t* w, const acc_t* acc, out_t* out, int64_t n) {
  const in_t* q[K];
  acc_t wk[K];
  for (int k = 0; k < K; ++k) q[k] = p[k], wk[k] = w[k];
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    acc_t s = wk[0] * static_cast<acc_t>(q[0][i]);
#pragma GCC unroll 8
    for (int k = 1; k < K; ++k) s += wk[k] * static_cast<acc_t>(q[k][i]);
    if constexpr (HAS_ACC) s += acc[i];
    out[i] = static_cast<out_t>(s);
  }
}

template <typename in_t, typename acc_t, bool ADD>
void combine_acc8(const in_t* const* p, const acc_t* w, acc_t* acc, int64_t n) {
  const in_t* q[8];
  acc_t wk[8];
  for (int k = 0; k < 8; ++k) q[k] = p[k], wk[k] = w[k];
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    acc_t s = wk[0] * static_cast<acc_t>(q[0][i]);
#pragma GCC unroll 8
    for (int k = 1; k < 8; ++k) s += wk[k] * static_cast<acc_t>(q[k][i]);
    acc[i] = ADD ? acc[i] + s : s;
  }
}

template <typename in_t, typename acc_t, typename out_t, bool HAS_ACC>
void combine_out_k(const in_t* const* p, const acc_t* w, int64_t k, const acc_t* acc, out_t* out,
                   int64_t n) {
#define AF_E(K) combine_out<in_t, acc_t, out_t, K, HAS_ACC>(p, w, acc, out, n)
  switch (k) { AF_UFD_TAPS_CASES(AF_E) default: break; }
#undef AF_E
}

// out = cast(sum_k w[k] * p[k][0..n)), any k >= 0. More than 8 rows go through acc in chunks
// of 8, so acc must hold n values then: acc_len says how many it holds, and is checked.
template <typename in_t, typename acc_t, typename out_t>
void combine(const in_t* const* p, const acc_t* w, int64_t k, acc_t* acc, int64_t acc_len, out_t* out,
             int64_t n) {
  TORCH_INTERNAL_ASSERT(k <= 8 || n <= acc_len, "upfirdn2d: scratch of ", acc_len,
                        " values for a sum of ", k, " rows of ", n);
  if (k == 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<out_t>(acc_t(0));
    return;
  }
  if (k <= 8) return combine_out_k<in_t, acc_t, out_t, false>(p, w, k, nullptr, out, n);
  combine_acc8<in_t, acc_t, false>(p, w, acc, n);
  int64_t done = 8;
  for (; k - done > 8; done += 8) combine_acc8<in_t, acc_t, true>(p + done, w + done, acc, n);
  combine_out_k<in_t, acc_t, out_t, true>(p + done, w + done, k - done, acc, out, n);
}

// The same weighted sum for `rows` rows at once: row r reads p[k] + r*in_stride and writes
// out + r*out_stride, n elements each.
template <typename in_t, typename acc_t, typename out_t, int K>
void combine_rows_k(const in_t* const* p, const acc_t* w, int64_t rows, int64_t n,
                    int64_t in_stride, out_t* out, int64_t out_stride) {
  const in_t* q[K];
  acc_t wk[K];
  for (int k = 0; k < K; ++k) q[k] = p[k], wk[k] = w[k];
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = r * in_stride;
    out_t* o = out + r * out_stride;
#pragma GCC ivdep
    for (int64_t i = 0; i < n; ++i) {
      acc_t s = wk[0] * static_cast<acc_t>(q[0][off + i]);
#pragma GCC unroll 8
      for (int k = 1; k < K; ++k) s += wk[k] * static_cast<acc_t>(q[k][off + i]);
      o[i] = static_cast<out_t>(s);
    }
  }
}

template <typename in_t, typename acc_t, typename out_t>
void combine_rows(const in_t* const* p, const acc_t* w, int64_t k, int64_t rows, int64_t n,
                  int64_t in_stride, out_t* out, int64_t out_stride, acc_t* scratch,
                  int64_t scratch_len) {
  if (k >= 1 && k <= 8) {
#define AF_E(K) combine_rows_k<in_t, acc_t, out_t, K>(p, w, rows, n, in_stride, out, out_stride)
    switch (k) { AF_UFD_TAPS_CASES(AF_E) default: break; }
#undef AF_E
    return;
  }
  std::vector<const in_t*> q(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < k; ++j) q[j] = p[j] + r * in_stride;
    combine<in_t, acc_t, out_t>(q.data(), w, k, scratch, scratch_len, out + r * out_stride, n);
  }
}

// ---- NCHW ------------------------------------------------------------------------------

// Input index range [lo, hi] that outputs [o0, o1) read on one axis (unclipped).
inline void axis_reads(int64_t o0, int64_t o1, int64_t up, int64_t down, int64_t p0, int64_t taps,
                       int64_t& lo, int64_t& hi) {
  lo = -fdiv(p0 - o0 * down, up);  // ceil((o0*down - p0) / up)
  hi = fdiv((o1 - 1) * down + taps - 1 - p0, up);
}

inline int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Output rows [oy0, oy1) of one plane, separable taps, vertical pass first: each output
// row's vertical sum goes into a zero-margined row of vbuf (stride ls), then one horizontal
// pass covers all of them (stride wos in hbuf), then hbuf is cast into dst.
template <typename scalar_t, typename acc_t>
void vertical_first_block(const Geometry& g, const Taps<acc_t>& tp, const scalar_t* src,
                          scalar_t* dst, int64_t oy0, int64_t oy1, int64_t per, int64_t step,
                          int64_t ls, int64_t wos, int64_t xlo, int64_t cx0, int64_t cx1,
                          const HRow<acc_t, 0>& hset, acc_t* vbuf, acc_t* hbuf, acc_t* scratch,
                          int64_t scratch_len, const scalar_t** ptrs, acc_t* wts) {
  const int64_t ncols = cx1 - cx0 + 1;
  auto vrow = [&](int64_t oy) { return vbuf + (oy - oy0) * ls + (cx0 - xlo); };
  if (ncols > 0) {
    for (int64_t s = 0; s < per && oy0 + s < oy1; ++s) {
      const int64_t oys = oy0 + s, cnt = (oy1 - oys + per - 1) / per;
      const Phase ph = phase_of(oys, g.uy, g.dy, g.py0);
      const int64_t nk = phase_taps(ph.t0, g.uy, g.ty);
      for (int64_t k = 0; k < nk; ++k) wts[k] = tp.wy[ph.t0 + k * g.uy];
      // Rows j in [jlo, jhi] have every tap inside the image: one call for all of them.
      const int64_t jlo = std::max<int64_t>(0, -fdiv(ph.i0, step));
      const int64_t jhi = std::min<int64_t>(cnt - 1, fdiv(g.H - nk - ph.i0, step));
      for (int64_t j = 0; j < cnt; ++j) {
        const int64_t oy = oys + j * per, i0 = ph.i0 + j * step;
        if (nk > 0 && j == jlo && jlo <= jhi) {
          for (int64_t k = 0; k < nk; ++k) ptrs[k] = src + (i0 + k) * g.W + cx0;
          combine_rows<scalar_t, acc_t, acc_t>(ptrs, wts, nk, jhi - jlo + 1, ncols, step * g.W,
                                               vrow(oy), per * ls, scratch, scratch_len);
          j = jhi;
          continue;
        }
        int64_t kk = 0;
        acc_t w2[8];
        const scalar_t* p2[8];
        acc_t* out = vrow(oy);
        bool any = false;
        // Border row: only the taps that land inside the image, at most 8 per call.
        for (int64_t k = 0; k < nk; ++k) {
          const int64_t iy = i0 + k;
          if (iy < 0 || iy >= g.H) continue;
          p2[kk] = src + iy * g.W + cx0;
          w2[kk++] = wts[k];
          if (kk == 8) {
            if (any) {
              combine_out_k<scalar_t, acc_t, acc_t, true>(p2, w2, kk, out, out, ncols);
            } else {
              combine_out_k<scalar_t, acc_t, acc_t, false>(p2, w2, kk, nullptr, out, ncols);
            }
            any = true;
            kk = 0;
          }
        }
        if (kk > 0) {
          if (any) combine_out_k<scalar_t, acc_t, acc_t, true>(p2, w2, kk, out, out, ncols);
          else combine_out_k<scalar_t, acc_t, acc_t, false>(p2, w2, kk, nullptr, out, ncols);
        } else if (!any) {
          std::fill(out, out + ncols, acc_t(0));
        }
      }
    }
  }
  const int64_t wo_ext = g.Wo + (g.Wo & 1);
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    if (!hset.needs_even() || g.Wo == wo_ext) {  // straight into the output rows
      hset(vbuf, tp.wx.data(), dst + oy0 * g.Wo, g.Wo, oy1 - oy0, ls, g.Wo);
      return;
    }
  }
  hset(vbuf, tp.wx.data(), hbuf, wo_ext, oy1 - oy0, ls, wos);
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const acc_t* h = hbuf + (oy - oy0) * wos;
    scalar_t* o = dst + oy * g.Wo;
    for (int64_t i = 0; i < g.Wo; ++i) o[i] = static_cast<scalar_t>(h[i]);
  }
}

// The vertical pass of the separable horizontal-first path (up > down), tabled once per call:
// phase s of block blk (output rows oy0 + s + j*per) takes nk taps, weights w[s][0..nk), on
// rows hoff + j*step + k of h, the block's horizontal results (row 0 = input row ra).
struct VPhase {
  int64_t nk, hoff;
};

template <typename acc_t>
struct VTable {
  int64_t per, max_ky;
  std::vector<VPhase> ph;  // [nblocks][per]
  std::vector<acc_t> w;    // [nblocks][per][max_ky]
  std::vector<int> same_k;  // [nblocks]: the taps every phase of the block takes, or -1
};

// One output row: o[i] = cast(sum_k w[k] * r[k*rs + i]), the same sum in the same order as
// combine_rows_k, inlined so that a row of a few dozen values pays no call.
template <typename acc_t, typename out_t, int K>
__attribute__((always_inline)) inline void sum_row(const acc_t* __restrict r, int64_t rs,
                                                   const acc_t* w, out_t* __restrict o, int64_t n) {
  acc_t wk[K];
  for (int k = 0; k < K; ++k) wk[k] = w[k];
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    acc_t s = wk[0] * r[i];
#pragma GCC unroll 8
    for (int k = 1; k < K; ++k) s += wk[k] * r[k * rs + i];
    o[i] = static_cast<out_t>(s);
  }
}

// sum_row for any k >= 0 rows (more than 8 through combine's scratch).
template <typename acc_t, typename out_t>
inline void sum_rows_k(int64_t k, const acc_t* r, int64_t rs, const acc_t* w, out_t* o, int64_t n,
                       const acc_t** ptrs, acc_t* scratch, int64_t scratch_len) {
  switch (k) {
    case 0: std::fill(o, o + n, static_cast<out_t>(acc_t(0))); return;
#define AF_E(K) case K: return sum_row<acc_t, out_t, K>(r, rs, w, o, n);
    AF_E(1) AF_E(2) AF_E(3) AF_E(4) AF_E(5) AF_E(6) AF_E(7) AF_E(8)
#undef AF_E
    default:
      for (int64_t i = 0; i < k; ++i) ptrs[i] = r + i * rs;
      combine<acc_t, acc_t, out_t>(ptrs, w, k, scratch, scratch_len, o, n);
  }
}

// Output row oy of the block, phase s, j-th row of that phase, into o (scalar_t, or acc_t for
// float16: see below). K >= 0: every phase takes K taps; K < 0: phase s's own count.
template <int K, typename acc_t, typename out_t>
__attribute__((always_inline)) inline void vertical_row(const acc_t* r, int64_t wos, int64_t nk,
                                                        const acc_t* w, out_t* o, int64_t n,
                                                        const acc_t** ptrs, acc_t* scratch,
                                                        int64_t scratch_len) {
  if constexpr (K >= 0) sum_row<acc_t, out_t, K>(r, wos, w, o, n);
  else sum_rows_k<acc_t, out_t>(nk, r, wos, w, o, n, ptrs, scratch, scratch_len);
}

// Output rows [oy0, oy1) of one plane in memory order, block blk of the table.
// Why in memory order, one row at a time: the output is the op's largest stream (4x its input
// at up 2) and the time goes to storing it. Written phase by phase (every other row, then the
// rows between, as combine_rows did) 8x256x32x32 up 2 took 4.5-4.8 ms at one thread against
// 2.5 ms for a copy_ of its output; in memory order 3.0-3.2 ms. The phases are tabled once per
// call and a common tap count is a template argument, so a short row (16 values at 8x8 -> 16x16)
// pays no division, no call and no switch.
template <int K, typename scalar_t, typename acc_t>
void vertical_rows_in_order(const VTable<acc_t>& vt, int64_t blk, const acc_t* h, int64_t wos,
                            int64_t step, int64_t oy0, int64_t oy1, int64_t Wo, scalar_t* dst,
                            const acc_t** ptrs, acc_t* scratch, int64_t scratch_len, acc_t* rowbuf) {
  const int64_t per = vt.per, hs = step * wos;
  const VPhase* ph = vt.ph.data() + blk * per;
  const acc_t* wt = vt.w.data() + blk * per * vt.max_ky;
  int64_t s = 0, j = 0;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const acc_t* r = h + ph[s].hoff * wos + j * hs;
    const acc_t* w = wt + s * vt.max_ky;
    scalar_t* o = dst + oy * Wo;
    if constexpr (std::is_same_v<scalar_t, c10::Half>) {
      // c10::Half's own narrowing is integer code in these kernels (half_convert.h); F16C
      // took 8x256x32x32 up 2 float16 from 4.05 to 2.7-2.8 ms at one thread (bfloat16: 2.4).
      vertical_row<K>(r, wos, ph[s].nk, w, rowbuf, Wo, ptrs, scratch, scratch_len);
      half_convert::narrow(rowbuf, o, Wo);
    } else {
      vertical_row<K>(r, wos, ph[s].nk, w, o, Wo, ptrs, scratch, scratch_len);
    }
    if (++s == per) s = 0, ++j;
  }
}

template <typename scalar_t, typename acc_t>
void vertical_rows(const VTable<acc_t>& vt, int64_t blk, const acc_t* h, int64_t wos, int64_t step,
                   int64_t oy0, int64_t oy1, int64_t Wo, scalar_t* dst, const acc_t** ptrs,
                   acc_t* scratch, int64_t scratch_len, acc_t* rowbuf) {
  switch (vt.same_k[blk]) {
#define AF_E(K)                                                                                 \
  case K:                                                                                       \
    return vertical_rows_in_order<K>(vt, blk, h, wos, step, oy0, oy1, Wo, dst, ptrs, scratch, \
                                     scratch_len, rowbuf);
    AF_E(1) AF_E(2) AF_E(3) AF_E(4)
#undef AF_E
    default:
      vertical_rows_in_order<-1>(vt, blk, h, wos, step, oy0, oy1, Wo, dst, ptrs, scratch,
                                 scratch_len, rowbuf);
  }
}

template <typename scalar_t, typename acc_t>
void run_nchw(const Geometry& g, const Taps<acc_t>& tp, const scalar_t* x, scalar_t* y) {
  // Horizontal layout. Input rows sit in a zero-margined buffer with row stride ls, and
  // horizontal results in rows of stride wos = ls*ux/dx: then output o of buffer row r reads
  // buffer index r*ls + (o*dx + t - p0)/ux, so one pass covers every row of a block (the
  // outputs in [Wo, wos) of each row are scratch). Output rows are padded to even length so
  // the up-2 pass can write whole pairs.
  const int64_t wo_ext = g.Wo + (g.Wo & 1);
  int64_t xlo, xhi;
  axis_reads(0, wo_ext, g.ux, g.dx, g.px0, g.tx, xlo, xhi);
  const int64_t lx = std::max<int64_t>(xhi - xlo + 1, 1);
  const int64_t cx0 = std::max<int64_t>(xlo, 0), cx1 = std::min<int64_t>(xhi, g.W - 1);
  const int64_t px0 = g.px0 + xlo * g.ux;  // buffer column 0 holds input column xlo
  const int64_t lq = g.dx / gcd64(g.ux, g.dx);
  int64_t ls = std::max<int64_t>(lx, (wo_ext * g.dx + g.ux - 1) / g.ux);
  ls = (ls + lq - 1) / lq * lq;
  if (g.ux == 2 && g.dx == 1) ls = std::max<int64_t>(ls, (wo_ext + 1) / 2);
  const int64_t wos = ls * g.ux / g.dx;
  // Input columns beyond a row's last output are read only by scratch outputs, at most
  // this many past the buffer's last row.
  const int64_t tail = ls + g.tx + 2;

  // Vertical: output rows oy, oy + per, ... share their taps, reading rows step apart.
  const int64_t per = g.uy / gcd64(g.uy, g.dy);
  const int64_t step = per * g.dy / g.uy;

  // Output rows per block, so one block's buffers stay in the L2 cache.
  const int64_t budget = 64 * 1024;
  // Vertical-first when the vertical axis shrinks: the vertical pass then reads the input
  // once, straight from x, and the horizontal pass runs on the fewer output rows only.
  const bool vfirst = g.separable && g.dy >= g.uy;
  const int64_t row_cost = ls + wos;
  int64_t bo = (budget / row_cost) * g.uy / g.dy - g.ty;
  bo = std::min<int64_t>(std::max<int64_t>(bo, 8), g.Ho);
  const int64_t nblocks = (g.Ho + bo - 1) / bo;
  const int64_t max_rows = (bo * g.dy + g.ty) / g.uy + 2;  // input rows one block reads, at most
  const int64_t max_ky = (g.ty + g.uy - 1) / g.uy;

  const HRow<acc_t, 0> hset(g.ux, g.dx, g.tx, px0);
  const HRow<acc_t, 1> hadd(g.ux, g.dx, g.tx, px0);
  const int64_t plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
  const int64_t units = g.P * nblocks;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, bo * g.Wo + plane_in / nblocks));
  // The vertical sums of more than 8 taps accumulate in `scratch`, one value per column they
  // write: the vertical-first pass sums input rows over the clipped input columns
  // [cx0, cx1] (cx1 - cx0 + 1 <= lx <= ls values), the horizontal-first pass sums rows of
  // hbuf over the Wo output columns (Wo <= wos). With down > up the first is the larger, so
  // sizing it by the output width overran it (issue 17).
  const int64_t scratch_len = std::max<int64_t>(vfirst ? cx1 - cx0 + 1 : g.Wo, 1);

  VTable<acc_t> vt{per, max_ky, {}, {}, {}};
  if (g.separable && !vfirst) {
    vt.ph.resize(static_cast<size_t>(nblocks * per));
    vt.w.assign(static_cast<size_t>(nblocks * per * max_ky), acc_t(0));
    vt.same_k.resize(static_cast<size_t>(nblocks));
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t oy0 = blk * bo, oy1 = std::min(g.Ho, oy0 + bo);
      int64_t ra, rb;
      axis_reads(oy0, oy1, g.uy, g.dy, g.py0, g.ty, ra, rb);
      int same = -2;
      for (int64_t s = 0; s < per && oy0 + s < oy1; ++s) {
        const Phase ph = phase_of(oy0 + s, g.uy, g.dy, g.py0);
        const int64_t nk = phase_taps(ph.t0, g.uy, g.ty);
        vt.ph[blk * per + s] = VPhase{nk, ph.i0 - ra};
        for (int64_t k = 0; k < nk; ++k) vt.w[(blk * per + s) * max_ky + k] = tp.wy[ph.t0 + k * g.uy];
        same = same == -2 || same == nk ? static_cast<int>(nk) : -1;
      }
      vt.same_k[blk] = same >= 1 && same <= 4 ? same : -1;
    }
  }

  at::parallel_for(0, units, grain, [&](int64_t u0, int64_t u1) {
    std::vector<acc_t> xbuf(static_cast<size_t>(ls * max_rows + tail), acc_t(0));
    std::vector<acc_t> hbuf(static_cast<size_t>(wos * std::max(max_rows, bo)));
    std::vector<acc_t> scratch(static_cast<size_t>(scratch_len));
    std::vector<const acc_t*> ptrs(static_cast<size_t>(max_ky));
    std::vector<const scalar_t*> xptrs(static_cast<size_t>(max_ky));
    std::vector<acc_t> wts(static_cast<size_t>(max_ky));
    std::vector<acc_t> rowbuf(static_cast<size_t>(std::is_same_v<scalar_t, c10::Half> ? g.Wo : 0));
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t plane = u / nblocks, blk = u % nblocks;
      const int64_t oy0 = blk * bo, oy1 = std::min(g.Ho, oy0 + bo);
      const scalar_t* src = x + plane * plane_in;
      scalar_t* dst = y + plane * plane_out;
      if (vfirst) {
        vertical_first_block(g, tp, src, dst, oy0, oy1, per, step, ls, wos, xlo, cx0, cx1, hset,
                             xbuf.data(), hbuf.data(), scratch.data(), scratch_len, xptrs.data(),
                             wts.data());
        continue;
      }
      int64_t ra, rb;  // unclipped input rows the block reads
      axis_reads(oy0, oy1, g.uy, g.dy, g.py0, g.ty, ra, rb);
      const int64_t ca = std::max<int64_t>(ra, 0), cb = std::min<int64_t>(rb, g.H - 1);
      for (int64_t iy = ca; iy <= cb; ++iy) {
        const scalar_t* s = src + iy * g.W;
        acc_t* b = xbuf.data() + (iy - ra) * ls - xlo;
        if constexpr (std::is_same_v<scalar_t, c10::Half>) {
          half_convert::widen(s + cx0, b + cx0, cx1 - cx0 + 1);
        } else {
          for (int64_t i = cx0; i <= cx1; ++i) b[i] = static_cast<acc_t>(s[i]);
        }
      }
      if (g.separable) {
        // Rows outside the image are zero rows, so every output row takes all its taps.
        const int64_t nr = rb - ra + 1;
        acc_t* h = hbuf.data();
        for (int64_t r = 0; r < nr; ++r) {
          if (ra + r < 0 || ra + r >= g.H) std::fill(h + r * wos, h + (r + 1) * wos, acc_t(0));
        }
        if (cb >= ca) {
          hset(xbuf.data() + (ca - ra) * ls, tp.wx.data(), h + (ca - ra) * wos, wo_ext, cb - ca + 1, ls, wos);
        }
        vertical_rows(vt, blk, h, wos, step, oy0, oy1, g.Wo, dst, ptrs.data(), scratch.data(),
                      scratch_len, rowbuf.data());
      } else {
        // 2-D taps: for each phase, one horizontal pass per filter row over all the block's
        // output rows of that phase; rows outside the image are zero rows of xbuf.
        for (int64_t iy = ra; iy <= rb; ++iy) {
          if (iy < 0 || iy >= g.H) {
            acc_t* row = xbuf.data() + (iy - ra) * ls;
            std::fill(row, row + ls, acc_t(0));
          }
        }
        bool direct = false;  // accumulate straight into the output rows
        if constexpr (std::is_same_v<scalar_t, acc_t>) direct = !hset.needs_even() || g.Wo == wo_ext;
        for (int64_t s = 0; s < per && oy0 + s < oy1; ++s) {
          const int64_t oy = oy0 + s, cnt = (oy1 - oy + per - 1) / per;
          const Phase ph = phase_of(oy, g.uy, g.dy, g.py0);
          const int64_t nk = phase_taps(ph.t0, g.uy, g.ty);
          acc_t* out = direct ? reinterpret_cast<acc_t*>(dst + oy * g.Wo) : hbuf.data() + s * wos;
          const int64_t n = direct ? g.Wo : wo_ext, os = direct ? per * g.Wo : per * wos;
          if (nk == 0) {
            for (int64_t j = 0; j < cnt; ++j) std::fill(out + j * os, out + j * os + n, acc_t(0));
          }
          for (int64_t k = 0; k < nk; ++k) {
            const acc_t* rows = xbuf.data() + (ph.i0 + k - ra) * ls;
            const acc_t* wrow = tp.w2.data() + (ph.t0 + k * g.uy) * g.tx;
            if (k == 0) hset(rows, wrow, out, n, cnt, step * ls, os);
            else hadd(rows, wrow, out, n, cnt, step * ls, os);
          }
        }
        if (!direct) {
          for (int64_t oy = oy0; oy < oy1; ++oy) {
            const acc_t* h = hbuf.data() + (oy - oy0) * wos;
            scalar_t* o = dst + oy * g.Wo;
            for (int64_t i = 0; i < g.Wo; ++i) o[i] = static_cast<scalar_t>(h[i]);
          }
        }
      }
    }
  });
}

// ---- NHWC (channels_last) --------------------------------------------------------------

// Zero margins the NHWC engine's per-class pass allows on each side of a row, in pixels: a
// filter's reach. Larger padding keeps the per-pixel sums (the margins would be allocated).
constexpr int64_t kMaxMargin = 64;

// Horizontal pass of the separable NHWC engine over a zero-margined row of pixel vectors
// (C values a pixel), without per-pixel setup. The taps of an output pixel are K
// consecutive input pixels (one polyphase class), so each pixel is K vector multiply-adds
// along C. FLAT: consecutive outputs read consecutive pixels and are written consecutively
// (up = down = 1), and the whole row is one loop over n * C values, vectorized whatever C
// is; else n pixels, the input advancing src_step and the output out_step values a pixel.
// d[i] = sum_k wk[k] * s[i + k * C] for i < len, cast to out_t.
template <typename acc_t, typename out_t, int K>
inline __attribute__((always_inline)) void taps_along(const acc_t* __restrict s, const acc_t* wk,
                                                      int64_t C, out_t* __restrict d, int64_t len) {
#pragma GCC ivdep
  for (int64_t i = 0; i < len; ++i) {
    acc_t a = wk[0] * s[i];
#pragma GCC unroll 8
    for (int k = 1; k < K; ++k) a += wk[k] * s[i + k * C];
    d[i] = static_cast<out_t>(a);
  }
}

template <typename acc_t, typename out_t, int K, bool FLAT>
void hpass_pixels(const acc_t* __restrict src, const acc_t* __restrict w, out_t* __restrict out,
                  int64_t n, int64_t C, int64_t src_step, int64_t out_step) {
  acc_t wk[K];
  for (int k = 0; k < K; ++k) wk[k] = w[k];
  if constexpr (FLAT) {
    taps_along<acc_t, out_t, K>(src, wk, C, out, n * C);
  } else {
    for (int64_t q = 0; q < n; ++q) taps_along<acc_t, out_t, K>(src + q * src_step, wk, C, out + q * out_step, C);
  }
}

// dst[q * ds + i] = src[q * ss + i] for q < n, i < C (C < kFlatBelow), cast to out_t; the
// channel loop has a compile-time length, so a pixel is a few moves rather than a loop.
template <typename acc_t, typename out_t, int CC>
void copy_pixels_c(const acc_t* __restrict src, int64_t ss, out_t* __restrict dst, int64_t ds, int64_t n) {
  for (int64_t q = 0; q < n; ++q) {
#pragma GCC unroll 8
    for (int i = 0; i < CC; ++i) dst[q * ds + i] = static_cast<out_t>(src[q * ss + i]);
  }
}

template <typename acc_t, typename out_t>
void copy_pixels(const acc_t* src, int64_t ss, out_t* dst, int64_t ds, int64_t n, int64_t C) {
  switch (C) {
    case 1: return copy_pixels_c<acc_t, out_t, 1>(src, ss, dst, ds, n);
    case 2: return copy_pixels_c<acc_t, out_t, 2>(src, ss, dst, ds, n);
    case 3: return copy_pixels_c<acc_t, out_t, 3>(src, ss, dst, ds, n);
    case 4: return copy_pixels_c<acc_t, out_t, 4>(src, ss, dst, ds, n);
    case 5: return copy_pixels_c<acc_t, out_t, 5>(src, ss, dst, ds, n);
    case 6: return copy_pixels_c<acc_t, out_t, 6>(src, ss, dst, ds, n);
    case 7: return copy_pixels_c<acc_t, out_t, 7>(src, ss, dst, ds, n);
    default:
      for (int64_t q = 0; q < n; ++q)
        for (int64_t i = 0; i < C; ++i) dst[q * ds + i] = static_cast<out_t>(src[q * ss + i]);
  }
}

template <typename acc_t, typename out_t>
using HPassFn = void (*)(const acc_t*, const acc_t*, out_t*, int64_t, int64_t, int64_t, int64_t);

template <typename acc_t, typename out_t>
HPassFn<acc_t, out_t> pick_hpass(int64_t k, bool flat) {
#define AF_E(K) (flat ? &hpass_pixels<acc_t, out_t, K, true> : &hpass_pixels<acc_t, out_t, K, false>)
  switch (k) { AF_UFD_TAPS_CASES(AF_E) default: return nullptr; }
#undef AF_E
}

// One polyphase class of a row's outputs: outputs first, first + step, ... (count of them),
// reading K = taps pixels from input pixel i0 on (advancing `down / up` pixels an output),
// with the taps w[t0], w[t0 + up], ... gathered in order.
template <typename acc_t, typename out_t>
struct HClass {
  int64_t first, count, i0, step_in;  // step_in: input pixels per output of this class
  std::vector<acc_t> w;
  HPassFn<acc_t, out_t> fn;
  // Below kFlatBelow channels a strided class (down 2, or up 2's interleaved outputs) runs
  // flat over every input step into a buffer of acc_t (flat_fn; down 2 computes the pixels it
  // then drops) and is copied out pixel by pixel: the per-pixel loop along C would run scalar.
  HPassFn<acc_t, acc_t> flat_fn;
};
constexpr int64_t kFlatBelow = 8;

// Whether the NHWC engine's rows run by class: a separable filter, x factors of 1 or 2 (not
// both 2), at most 8 taps in each class the row has, some input read and zero margins of at
// most kMaxMargin pixels a side. The one test for the engine (run_nhwc) and for upfirdn2d.cpp's
// choice of route, which must agree.
inline bool nhwc_by_class(const Geometry& g) {
  if (!g.separable || g.ux > 2 || g.dx > 2 || (g.ux == 2 && g.dx == 2) || g.Wo < 1) return false;
  for (int64_t r = 0; r < std::min<int64_t>(g.ux, g.Wo); ++r)
    if (phase_taps(phase_of(r, g.ux, g.dx, g.px0).t0, g.ux, g.tx) > 8) return false;
  int64_t xa = 0, xb = 0;
  axis_reads(0, g.Wo, g.ux, g.dx, g.px0, g.tx, xa, xb);
  const int64_t xlo = std::max<int64_t>(xa, 0), xhi = std::min<int64_t>(xb, g.W - 1);
  return xhi >= xlo && xlo - xa <= kMaxMargin && xb - xhi <= kMaxMargin;
}

// The classes of a row that nhwc_by_class accepts, read from a row buffer whose pixel 0 is
// input column xa.
template <typename acc_t, typename out_t>
std::vector<HClass<acc_t, out_t>> nhwc_hclasses(const Geometry& g, const Taps<acc_t>& tp, int64_t xa) {
  std::vector<HClass<acc_t, out_t>> cls;
  const int64_t nclass = std::min<int64_t>(g.ux, g.Wo);
  for (int64_t r = 0; r < nclass; ++r) {
    const Phase ph = phase_of(r, g.ux, g.dx, g.px0);
    const int64_t k = phase_taps(ph.t0, g.ux, g.tx);
    HClass<acc_t, out_t> c;
    c.first = r;
    c.count = (g.Wo - r + g.ux - 1) / g.ux;
    c.i0 = ph.i0 - xa;
    c.step_in = g.dx;  // up = 1: down pixels an output; up = 2 (down 1): one pixel per two outputs
    for (int64_t j = 0; j < k; ++j) c.w.push_back(tp.wx[ph.t0 + j * g.ux]);
    c.fn = k == 0 ? nullptr : pick_hpass<acc_t, out_t>(k, g.ux == 1 && g.dx == 1);
    c.flat_fn = k == 0 ? nullptr : pick_hpass<acc_t, acc_t>(k, true);
    TORCH_INTERNAL_ASSERT(k == 0 || c.fn != nullptr, "upfirdn2d: a class of ", k, " taps");
    cls.push_back(std::move(c));
  }
  return cls;
}

template <typename scalar_t, typename acc_t>
void run_nhwc(const Geometry& g, const Taps<acc_t>& tp, const scalar_t* x, scalar_t* y) {
  const int64_t C = g.C;
  // Per output column: first tap and input column (x-axis polyphase table).
  std::vector<Phase> xph(static_cast<size_t>(g.Wo));
  std::vector<int64_t> xnk(static_cast<size_t>(g.Wo));
  for (int64_t ox = 0; ox < g.Wo; ++ox) {
    xph[ox] = phase_of(ox, g.ux, g.dx, g.px0);
    xnk[ox] = phase_taps(xph[ox].t0, g.ux, g.tx);
  }
  int64_t xa, xb;  // input columns the outputs read, unclipped
  axis_reads(0, g.Wo, g.ux, g.dx, g.px0, g.tx, xa, xb);
  const int64_t xlo = std::max<int64_t>(xa, 0), xhi = std::min<int64_t>(xb, g.W - 1);
  const int64_t span = std::max<int64_t>(xhi - xlo + 1, 0);
  // The per-class horizontal pass (hpass_pixels) reads a row with zero margins out to xa and
  // xb, so every output pixel is a fixed number of taps.
  const auto hcls = nhwc_by_class(g) ? nhwc_hclasses<acc_t, scalar_t>(g, tp, xa)
                                     : std::vector<HClass<acc_t, scalar_t>>();
  const bool by_class = !hcls.empty();
  const int64_t row_px = by_class ? xb - xa + 1 : span;  // pixels in vbuf
  const int64_t lead = by_class ? (xlo - xa) * C : 0;    // where the vertical pass writes in vbuf
  const int64_t max_kx = (g.tx + g.ux - 1) / g.ux, max_ky = (g.ty + g.uy - 1) / g.uy;
  const int64_t units = g.N * g.Ho;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.Wo * C));

  at::parallel_for(0, units, grain, [&](int64_t u0, int64_t u1) {
    std::vector<acc_t> vbuf(static_cast<size_t>(g.separable ? row_px * C : 0));  // margins stay 0
    const bool strided = g.ux == 2 || g.dx == 2;  // the classes a flat pass cannot write in place
    std::vector<acc_t> hbuf(static_cast<size_t>(by_class && strided && C < kFlatBelow ? row_px * C : 0));
    // Sums of more than 8 pixel vectors accumulate here: span * C values (the vertical pass
    // over the row span) or C (one output pixel).
    const int64_t scratch_len = std::max<int64_t>(span, 1) * C;
    std::vector<acc_t> scratch(static_cast<size_t>(scratch_len));
    std::vector<const scalar_t*> xptr(static_cast<size_t>(max_kx * max_ky));
    std::vector<const acc_t*> vptr(static_cast<size_t>(max_kx));
    std::vector<acc_t> wts(static_cast<size_t>(max_kx * max_ky));
    std::vector<int64_t> ys(static_cast<size_t>(max_ky)), iys(static_cast<size_t>(max_ky));
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n = u / g.Ho, oy = u % g.Ho;
      const scalar_t* img = x + n * g.H * g.W * C;
      scalar_t* out = y + (n * g.Ho + oy) * g.Wo * C;
      // Vertical taps of this output row that land on real rows.
      const Phase ph = phase_of(oy, g.uy, g.dy, g.py0);
      const int64_t nky = phase_taps(ph.t0, g.uy, g.ty);
      int64_t ky = 0;
      for (int64_t j = 0; j < nky; ++j) {
        const int64_t iy = ph.i0 + j;
        if (iy < 0 || iy >= g.H) continue;
        ys[ky] = ph.t0 + j * g.uy;
        iys[ky++] = iy;
      }
      if (ky == 0 || span == 0) {
        for (int64_t i = 0; i < g.Wo * C; ++i) out[i] = static_cast<scalar_t>(acc_t(0));
        continue;
      }
      if (g.separable) {
        // Vertical pass over the whole row span at once (rows are contiguous W*C runs),
        // then each output pixel is a weighted sum of pixel vectors of that row.
        for (int64_t k = 0; k < ky; ++k) {
          xptr[k] = img + (iys[k] * g.W + xlo) * C;
          wts[k] = tp.wy[ys[k]];
        }
        combine<scalar_t, acc_t, acc_t>(xptr.data(), wts.data(), ky, scratch.data(), scratch_len,
                                        vbuf.data() + lead, span * C);
        if (by_class) {
          for (const auto& c : hcls) {
            if (c.fn == nullptr) {  // a class with no taps: zeros
              for (int64_t q = 0; q < c.count; ++q)
                for (int64_t i = 0; i < C; ++i) out[(c.first + q * g.ux) * C + i] = static_cast<scalar_t>(acc_t(0));
              continue;
            }
            const acc_t* src = vbuf.data() + c.i0 * C;
            if (C >= kFlatBelow || !strided) {
              c.fn(src, c.w.data(), out + c.first * C, c.count, C, c.step_in * C, g.ux * C);
              continue;
            }
            const int64_t m = (c.count - 1) * c.step_in + 1;  // input steps the class spans
            c.flat_fn(src, c.w.data(), hbuf.data(), m, C, C, C);
            copy_pixels<acc_t, scalar_t>(hbuf.data(), c.step_in * C, out + c.first * C, g.ux * C, c.count, C);
          }
          continue;
        }
        for (int64_t ox = 0; ox < g.Wo; ++ox) {
          int64_t k = 0;
          for (int64_t j = 0; j < xnk[ox]; ++j) {
            const int64_t ix = xph[ox].i0 + j;
            if (ix < 0 || ix >= g.W) continue;
            vptr[k] = vbuf.data() + (ix - xlo) * C;
            wts[k++] = tp.wx[xph[ox].t0 + j * g.ux];
          }
          combine<acc_t, acc_t, scalar_t>(vptr.data(), wts.data(), k, scratch.data(), scratch_len,
                                          out + ox * C, C);
        }
      } else {
        for (int64_t ox = 0; ox < g.Wo; ++ox) {
          int64_t k = 0;
          for (int64_t j = 0; j < xnk[ox]; ++j) {
            const int64_t ix = xph[ox].i0 + j;
            if (ix < 0 || ix >= g.W) continue;
            const int64_t tx = xph[ox].t0 + j * g.ux;
            for (int64_t a = 0; a < ky; ++a) {
              xptr[k] = img + (iys[a] * g.W + ix) * C;
              wts[k++] = tp.w2[ys[a] * g.tx + tx];
            }
          }
          combine<scalar_t, acc_t, scalar_t>(xptr.data(), wts.data(), k, scratch.data(), scratch_len,
                                             out + ox * C, C);
        }
      }
    }
  });
}

// ---- NCHW, small planes: planes innermost ------------------------------------------------
// dst[c * rows + r] = src[r * cols + c]: eight rows at a time, so eight strided reads become
// one eight-wide contiguous write per column.
template <typename scalar_t>
void transpose_rows(const scalar_t* src, int64_t rows, int64_t cols, scalar_t* dst) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    for (int64_t c = 0; c < cols; ++c) {
      scalar_t* d = dst + c * rows + r;
#pragma GCC unroll 8
      for (int64_t q = 0; q < 8; ++q) d[q] = src[(r + q) * cols + c];
    }
  }
  for (; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  }
}

// A plane of a few pixels (StyleGAN's 4x4 and 8x8 levels) costs the row engine of run_nchw
// more in per-plane setup than in arithmetic. Here a chunk of planes is transposed, in
// cache-resident buffers, to [H][W][planes], filtered by the NHWC engine with the planes as
// its channel vectors (vectorized across planes, setup paid once per chunk), and transposed
// back. Each chunk is one work unit; run_nhwc inside it runs inline (no nested parallelism).
template <typename scalar_t, typename acc_t>
void run_nchw_planes_last(const Geometry& g, const Taps<acc_t>& tp, const scalar_t* x, scalar_t* y) {
  const int64_t plane_in = g.H * g.W, plane_out = g.Ho * g.Wo;
  const int64_t per_plane = (plane_in + plane_out) * int64_t(sizeof(scalar_t));
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  // About 96 KiB of buffers per chunk (in the L2 cache), at least 8 planes, and enough chunks for every thread.
  int64_t pc = std::max<int64_t>(8, (96 * 1024) / std::max<int64_t>(1, per_plane));
  pc = std::min<int64_t>(pc, std::max<int64_t>(8, (g.P + threads - 1) / threads));
  pc = std::min<int64_t>(pc, g.P);
  const int64_t chunks = (g.P + pc - 1) / pc;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<scalar_t> bin(static_cast<size_t>(plane_in * pc)), bout(static_cast<size_t>(plane_out * pc));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t p0 = c * pc, n = std::min<int64_t>(pc, g.P - p0);
      transpose_rows(x + p0 * plane_in, n, plane_in, bin.data());  // [n][HW] -> [HW][n]
      Geometry gc = g;
      gc.N = 1, gc.C = n, gc.P = n;
      run_nhwc<scalar_t, acc_t>(gc, tp, bin.data(), bout.data());
      transpose_rows(bout.data(), plane_out, n, y + p0 * plane_out);  // [HoWo][n] -> [n][HoWo]
    }
  });
}

#undef AF_UFD_TAPS_CASES
