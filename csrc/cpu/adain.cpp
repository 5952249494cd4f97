// CPU forward of the adain engine, and the CPU registration of adain and instance_norm_stats.
#include "adain_engine.h"
#include "../ops/instance_norm_stats.h"

#include <torch/library.h>

#include <cmath>
#include <vector>

namespace alae_fast {
namespace adain_cpu_engine {
namespace {

// Rows [lo, hi) of NCHW x, in blocks of at most kRowBlock values. buf (one block) keeps
// act(z) - shift between the two passes when the row is one block: cheaper than recomputing
// it, and it never leaves cache. Longer rows are recomputed block by block in the second pass,
// so the scratch stays one block for any plane (a 46341^2 plane had taken an 8.6 GB buffer).
// Block sums are added in double: one float32 sum over a 2^26-pixel plane had put its std
// 0.2% off, and past 2^31 pixels its mean wrong.
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void fwd_nchw_body(const Inputs<scalar_t>& in, int64_t lo, int64_t hi, scalar_t* y,
                                    at::opmath_type<scalar_t>* mean_out,
                                    at::opmath_type<scalar_t>* std_out,
                                    at::opmath_type<scalar_t>* buf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L), alpha = in.alpha;
  const bool one_block = L <= kRowBlock;
  // n and c advance with r: a division per row cost as much as a row's reduction.
  int64_t n = lo / C, c = lo % C;
  for (int64_t r = lo; r < hi; ++r, (++c == C ? (c = 0, ++n) : 0)) {
    const scalar_t* AF_RESTRICT xr = in.x + r * L;
    const scalar_t* AF_RESTRICT nr = NOISE ? in.noise + n * L : nullptr;
    acc_t* AF_RESTRICT rb = buf;
    const acc_t nw = in.nw_of(c), b = in.bias_of(c);
    auto a_at = [&](int64_t i) {
      return act_eval<ACT, 0>(z_of<NOISE>(xr[i], NOISE ? nr[i] : scalar_t(0), nw, b), alpha);
    };
    const acc_t K = row_shift(a_at(0));
    // The elementwise loop vectorizes for every activation; the reduction then runs over the
    // L1-resident buffer. (One fused `omp simd` loop measured 1.3x slower than the two.)
    scalar_t* AF_RESTRICT yr = y + r * L;
    RowStats<acc_t> st;
    acc_t k, t, m1;
    if (one_block) {
      // The row in one buffer, written as plain loops from 0: the blocked form below, used
      // for every row, had made 256 x 256 planes 1.5x slower.
      for (int64_t i = 0; i < L; ++i) rb[i] = a_at(i) - K;
      acc_t s1, s2;
      sum_and_dot(rb, rb, L, s1, s2);
      st = row_stats(K, s1, s2, Lf, in.eps);
      k = st.rstd * in.sigma_of(r), t = in.shift_of(r), m1 = st.offset;
      for (int64_t i2 = 0; i2 < L; ++i2) yr[i2] = static_cast<scalar_t>((rb[i2] - m1) * k + t);
    } else {
      double w1 = 0, w2 = 0;
      for (int64_t b0 = 0; b0 < L; b0 += kRowBlock) {
        const int64_t e = std::min(kRowBlock, L - b0);
        for (int64_t i = 0; i < e; ++i) rb[i] = a_at(b0 + i) - K;
        acc_t s1, s2;
        sum_and_dot(rb, rb, e, s1, s2);
        w1 += s1;
        w2 += s2;
      }
      st = row_stats(K, static_cast<acc_t>(w1), static_cast<acc_t>(w2), Lf, in.eps);
      k = st.rstd * in.sigma_of(r), t = in.shift_of(r), m1 = st.offset;
      for (int64_t b0 = 0; b0 < L; b0 += kRowBlock) {
        const int64_t e = std::min(kRowBlock, L - b0);
        for (int64_t i = 0; i < e; ++i) rb[i] = a_at(b0 + i) - K;
        scalar_t* AF_RESTRICT yb = yr + b0;
        for (int64_t i2 = 0; i2 < e; ++i2) yb[i2] = static_cast<scalar_t>((rb[i2] - m1) * k + t);
      }
    }
    mean_out[r] = st.mean;
    std_out[r] = st.std;
  }
}

// The loops of one group of m pixels (adain_engine.h): with SP (spread) one flat loop over m * C
// lanes, else m loops over the C channels with the pixel's noise. They are functions with
// restrict parameters, not lambdas: a lambda's captures are not restrict, and the loops then
// did not vectorize (a channels_last backward 6x slower).
template <int ACT, bool NOISE, typename acc_t>
AF_ALWAYS_INLINE acc_t fwd_shifted(acc_t x, acc_t nv, acc_t nw, acc_t b, acc_t K, acc_t alpha) {
  return act_eval<ACT, 0>(z_of<NOISE>(x, nv, nw, b), alpha) - K;
}

#if AF_ADAIN_REGISTER_LANES
// The register loops (adain_register_lanes.h) of one group of m pixels of CC channels: each
// pixel is CC / W vectors, the per-channel values and the partial sums stay in registers, and
// two pixels are in flight so that the sums' adds do not wait on each other.
template <int ACT, bool NOISE, int CC, typename T>
AF_ALWAYS_INLINE void fwd_sums_reg(int64_t m, const T* AF_RESTRICT xg, const T* AF_RESTRICT ng,
                                   const T* AF_RESTRICT nwr, const T* AF_RESTRICT br, const T* AF_RESTRICT Kr,
                                   T alpha, T* AF_RESTRICT a1, T* AF_RESTRICT a2) {
  using V = typename Lanes<T>::V;
  constexpr int W = Lanes<T>::W, NV = CC / W;
  V nw[NV], b[NV], K[NV];
  vload_all<NV>(nwr, nw);
  vload_all<NV>(br, b);
  vload_all<NV>(Kr, K);
  two_in_flight<NV, V>(m, [&](int64_t q, V(&p1)[NV], V(&p2)[NV]) AF_LAMBDA_INLINE {
    const V nv = vnoise<NOISE, V>(ng, q);
    for (int k = 0; k < NV; ++k) {
      const V d = vact0<ACT>(vz<NOISE, CC>(xg, q, k, b, nw, nv), alpha) - K[k];
      p1[k] += d;
      p2[k] += d * d;
    }
  }, a1, a2);
}

template <int ACT, bool NOISE, int CC, typename T>
AF_ALWAYS_INLINE void fwd_y_reg(int64_t m, const T* AF_RESTRICT xg, const T* AF_RESTRICT ng,
                                const T* AF_RESTRICT nwr, const T* AF_RESTRICT br, const T* AF_RESTRICT Kr,
                                const T* AF_RESTRICT m1r, const T* AF_RESTRICT kr, const T* AF_RESTRICT tr,
                                T alpha, T* AF_RESTRICT yg) {
  using V = typename Lanes<T>::V;
  constexpr int W = Lanes<T>::W, NV = CC / W;
  V nw[NV], b[NV], K[NV], m1[NV], k1[NV], t[NV];
  vload_all<NV>(nwr, nw);
  vload_all<NV>(br, b);
  vload_all<NV>(Kr, K);
  vload_all<NV>(m1r, m1);
  vload_all<NV>(kr, k1);
  vload_all<NV>(tr, t);
  for (int64_t q = 0; q < m; ++q) {
    const V nv = vnoise<NOISE, V>(ng, q);
    for (int k = 0; k < NV; ++k) {
      const V d = vact0<ACT>(vz<NOISE, CC>(xg, q, k, b, nw, nv), alpha) - K[k];
      vstore(yg + q * CC + k * W, (d - m1[k]) * k1[k] + t[k]);
    }
  }
}
#endif

template <int ACT, bool NOISE, bool SP, typename acc_t>
AF_ALWAYS_INLINE void fwd_group_sums(int64_t m, int64_t C, const acc_t* AF_RESTRICT xg, const acc_t* AF_RESTRICT ng,
                                     const acc_t* AF_RESTRICT nwr, const acc_t* AF_RESTRICT br,
                                     const acc_t* AF_RESTRICT Kr, acc_t alpha, acc_t* AF_RESTRICT a1,
                                     acc_t* AF_RESTRICT a2) {
  if constexpr (SP) {
    const int64_t e = m * C;
    for (int64_t i = 0; i < e; ++i) {
      const acc_t d = fwd_shifted<ACT, NOISE>(xg[i], NOISE ? ng[i] : acc_t(0), nwr[i], br[i], Kr[i], alpha);
      a1[i] += d;
      a2[i] += d * d;
    }
  } else {
#if AF_ADAIN_REGISTER_LANES
    if constexpr (register_act<ACT>()) {
      if (with_register_channels(C, [&](auto cc) AF_LAMBDA_INLINE {
            fwd_sums_reg<ACT, NOISE, decltype(cc)::value>(m, xg, ng, nwr, br, Kr, alpha, a1, a2);
          }))
        return;
    }
#endif
    for (int64_t q = 0; q < m; ++q) {
      const acc_t nv = NOISE ? ng[q] : acc_t(0);
      const acc_t* AF_RESTRICT xq = xg + q * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t d = fwd_shifted<ACT, NOISE>(xq[c], nv, nwr[c], br[c], Kr[c], alpha);
        a1[c] += d;
        a2[c] += d * d;
      }
    }
  }
}

template <int ACT, bool NOISE, bool SP, typename acc_t>
AF_ALWAYS_INLINE void fwd_group_y(int64_t m, int64_t C, const acc_t* AF_RESTRICT xg, const acc_t* AF_RESTRICT ng,
                                  const acc_t* AF_RESTRICT nwr, const acc_t* AF_RESTRICT br,
                                  const acc_t* AF_RESTRICT Kr, const acc_t* AF_RESTRICT m1r,
                                  const acc_t* AF_RESTRICT kr, const acc_t* AF_RESTRICT tr, acc_t alpha,
                                  acc_t* AF_RESTRICT yg) {
  if constexpr (SP) {
    const int64_t e = m * C;
    for (int64_t i = 0; i < e; ++i) {
      const acc_t d = fwd_shifted<ACT, NOISE>(xg[i], NOISE ? ng[i] : acc_t(0), nwr[i], br[i], Kr[i], alpha);
      yg[i] = (d - m1r[i]) * kr[i] + tr[i];
    }
  } else {
#if AF_ADAIN_REGISTER_LANES
    if constexpr (register_act<ACT>()) {
      if (with_register_channels(C, [&](auto cc) AF_LAMBDA_INLINE {
            fwd_y_reg<ACT, NOISE, decltype(cc)::value>(m, xg, ng, nwr, br, Kr, m1r, kr, tr, alpha, yg);
          }))
        return;
    }
#endif
    for (int64_t q = 0; q < m; ++q) {
      const acc_t nv = NOISE ? ng[q] : acc_t(0);
      const acc_t* AF_RESTRICT xq = xg + q * C;
      acc_t* AF_RESTRICT yq = yg + q * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t d = fwd_shifted<ACT, NOISE>(xq[c], nv, nwr[c], br[c], Kr[c], alpha);
        yq[c] = (d - m1r[c]) * kr[c] + tr[c];
      }
    }
  }
}

// channels_last x is streamed in memory order, one chunk of pixels [p0, p1) of sample n with
// all C channels innermost, a group of pixels at a time (adain_engine.h): pass 1 adds the
// chunk's shifted sums into s1, s2 ([C]); pass 2 writes y. (Walking a [H*W, few channels] slab
// instead strides by C elements per pixel, which defeats the caches and prefetchers: 2x
// slower.) nwr, br, Kr, m1r, kr, tr are [lg.lanes]: per-channel values, repeated over a group
// when spread. acc holds 2 * lanes partial sums; xb, nb (span each) a group's x and noise in the
// computation dtype, yb its y before narrowing.
template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_ALWAYS_INLINE void fwd_nhwc_pass1(const Inputs<scalar_t>& in, const LaneGroups& lg, int64_t n, int64_t p0,
                                     int64_t p1, const acc_t* nwr, const acc_t* br, const acc_t* Kr, acc_t* acc,
                                     acc_t* xb, acc_t* nb, acc_t* s1, acc_t* s2) {
  const int64_t C = in.C, L = in.L, lanes = lg.lanes;
  const acc_t alpha = in.alpha;
  for (int64_t j = 0; j < 2 * lanes; ++j) acc[j] = 0;
  for_each_group<NOISE>(lg, C, p0, p1, in.x + n * L * C, NOISE ? in.noise + n * L : nullptr, xb, nb,
                        [&](auto spread, int64_t, int64_t m, const acc_t* xg, const acc_t* ng) AF_LAMBDA_INLINE {
    fwd_group_sums<ACT, NOISE, decltype(spread)::value>(m, C, xg, ng, nwr, br, Kr, alpha, acc, acc + lanes);
  });
  fold_lanes(acc, C, lanes, s1, s2);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_ALWAYS_INLINE void fwd_nhwc_pass2(const Inputs<scalar_t>& in, const LaneGroups& lg, int64_t n, int64_t p0,
                                     int64_t p1, const acc_t* nwr, const acc_t* br, const acc_t* Kr, const acc_t* m1r,
                                     const acc_t* kr, const acc_t* tr, acc_t* xb, acc_t* nb, acc_t* yb, scalar_t* y) {
  const int64_t C = in.C, L = in.L;
  const acc_t alpha = in.alpha;
  scalar_t* yn = y + n * L * C;
  for_each_group<NOISE>(lg, C, p0, p1, in.x + n * L * C, NOISE ? in.noise + n * L : nullptr, xb, nb,
                        [&](auto spread, int64_t p, int64_t m, const acc_t* xg, const acc_t* ng) AF_LAMBDA_INLINE {
    acc_t* yg;
    if constexpr (std::is_same_v<scalar_t, acc_t>) yg = yn + p * C;
    else yg = yb;
    fwd_group_y<ACT, NOISE, decltype(spread)::value>(m, C, xg, ng, nwr, br, Kr, m1r, kr, tr, alpha, yg);
    if constexpr (!std::is_same_v<scalar_t, acc_t>) convert_into(yb, yn + p * C, m * C);
  });
}

// The multiversioned entry points (multiversion.h) of the row kernels above, one per dtype.
template <typename scalar_t, int ACT, bool NOISE>
AF_CPU_MULTIVERSION void fwd_nchw_mv(const Inputs<scalar_t>& in, int64_t lo, int64_t hi, scalar_t* y,
                                     at::opmath_type<scalar_t>* mean, at::opmath_type<scalar_t>* std,
                                     at::opmath_type<scalar_t>* buf) {
  fwd_nchw_body<scalar_t, ACT, NOISE>(in, lo, hi, y, mean, std, buf);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void fwd_nhwc_pass1_mv(const Inputs<scalar_t>& in, const LaneGroups& lg, int64_t n, int64_t p0,
                                           int64_t p1, const acc_t* nwr, const acc_t* br, const acc_t* Kr,
                                           acc_t* acc, acc_t* xb, acc_t* nb, acc_t* s1, acc_t* s2) {
  fwd_nhwc_pass1<scalar_t, ACT, NOISE>(in, lg, n, p0, p1, nwr, br, Kr, acc, xb, nb, s1, s2);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void fwd_nhwc_pass2_mv(const Inputs<scalar_t>& in, const LaneGroups& lg, int64_t n, int64_t p0,
                                           int64_t p1, const acc_t* nwr, const acc_t* br, const acc_t* Kr,
                                           const acc_t* m1r, const acc_t* kr, const acc_t* tr, acc_t* xb,
                                           acc_t* nb, acc_t* yb, scalar_t* y) {
  fwd_nhwc_pass2<scalar_t, ACT, NOISE>(in, lg, n, p0, p1, nwr, br, Kr, m1r, kr, tr, xb, nb, yb, y);
}

template <typename scalar_t, int ACT, bool NOISE>
void forward_nhwc(const Inputs<scalar_t>& in, scalar_t* y, at::opmath_type<scalar_t>* mean,
                  at::opmath_type<scalar_t>* std) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = in.N, C = in.C, L = in.L;
  const LaneGroups lg = lane_groups(C, L, NOISE, register_act<ACT>());
  const int64_t lanes = lg.lanes;
  const NhwcChunks ch = nhwc_chunks(L, C, lg);
  std::vector<acc_t> nw(C), b(C), K(N * C), m1(N * C), k(N * C), t(N * C);
  std::vector<acc_t> part(2 * N * ch.count * C);
  for (int64_t c = 0; c < C; ++c) {
    nw[c] = in.nw_of(c);
    b[c] = in.bias_of(c);
  }
  // The shift of each row: its value at pixel 0, shared by every chunk so partial sums add.
  for (int64_t n = 0; n < N; ++n) {
    const scalar_t nv = NOISE ? in.noise[n * L] : scalar_t(0);
    for (int64_t c = 0; c < C; ++c)
      K[n * C + c] = row_shift(act_eval<ACT, 0>(z_of<NOISE>(in.x[n * L * C + c], nv, nw[c], b[c]), in.alpha));
  }
  std::vector<acc_t> nwr(lanes), br(lanes);
  repeat_lanes(nw.data(), C, lanes, nwr.data());
  repeat_lanes(b.data(), C, lanes, br.data());
  // Each thread repeats sample n's [C] values over a group when its tasks reach sample n
  // (consecutive tasks share n): [N, lanes] copies of them would be 4x the input for many
  // small planes.
  at::parallel_for(0, N * ch.count, 1, [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> scratch(3 * lanes + 2 * lg.span);
    acc_t* Kr = scratch.data();
    acc_t* acc = Kr + lanes;
    int64_t filled = -1;
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      if (n != filled) {
        repeat_lanes(K.data() + n * C, C, lanes, Kr);
        filled = n;
      }
      acc_t* s1 = part.data() + 2 * task * C;
      fwd_nhwc_pass1_mv<scalar_t, ACT, NOISE>(in, lg, n, p0, p1, nwr.data(), br.data(), Kr, acc, acc + 2 * lanes,
                                              acc + 2 * lanes + lg.span, s1, s1 + C);
    }
  });
  const acc_t Lf = static_cast<acc_t>(L);
  std::vector<double> t1(C), t2(C);
  for (int64_t n = 0; n < N; ++n) {
    ch.totals(part, n, C, t1, t2);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t r = n * C + c;
      const RowStats<acc_t> st =
          row_stats(K[r], static_cast<acc_t>(t1[c]), static_cast<acc_t>(t2[c]), Lf, in.eps);
      k[r] = st.rstd * in.sigma_of(r);
      t[r] = in.shift_of(r);
      m1[r] = st.offset;
      mean[r] = st.mean;
      std[r] = st.std;
    }
  }
  at::parallel_for(0, N * ch.count, 1, [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> scratch(4 * lanes + 3 * lg.span);
    acc_t *Kr = scratch.data(), *m1r = Kr + lanes, *kr = Kr + 2 * lanes, *tr = Kr + 3 * lanes;
    acc_t* xb = Kr + 4 * lanes;
    int64_t filled = -1;
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      if (n != filled) {
        const int64_t o = n * C;
        repeat_lanes(K.data() + o, C, lanes, Kr);
        repeat_lanes(m1.data() + o, C, lanes, m1r);
        repeat_lanes(k.data() + o, C, lanes, kr);
        repeat_lanes(t.data() + o, C, lanes, tr);
        filled = n;
      }
      fwd_nhwc_pass2_mv<scalar_t, ACT, NOISE>(in, lg, n, p0, p1, nwr.data(), br.data(), Kr, m1r, kr, tr, xb,
                                              xb + lg.span, xb + 2 * lg.span, y);
    }
  });
}

template <typename scalar_t, int ACT, bool NOISE>
void forward_impl(const AdainPlan& p, scalar_t* y, at::opmath_type<scalar_t>* mean,
                  at::opmath_type<scalar_t>* std) {
  using acc_t = at::opmath_type<scalar_t>;
  const Inputs<scalar_t> in(p);
  if (p.channels_last) {
    forward_nhwc<scalar_t, ACT, NOISE>(in, y, mean, std);
    return;
  }
  at::parallel_for(0, p.N * p.C, grain_for(p.L), [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> scratch(std::min(p.L, kRowBlock));
    acc_t* buf = scratch.data();
    fwd_nchw_mv<scalar_t, ACT, NOISE>(in, lo, hi, y, mean, std, buf);
  });
}

}  // namespace
}  // namespace adain_cpu_engine

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_forward_cpu(const AdainPlan& p) {
  using namespace adain_cpu_engine;
  at::Tensor y = at::empty_like(p.x);
  const auto stat_opts = p.x.options().dtype(opmath_of(p.x.scalar_type()));
  at::Tensor mean = at::empty({p.N, p.C}, stat_opts);
  at::Tensor std = at::empty({p.N, p.C}, stat_opts);
  if (p.N * p.C == 0) return {y, mean, std};
  if (p.L == 0) {
    // The mean of no values, as torch.mean gives it.
    mean.fill_(NAN);
    std.fill_(NAN);
    return {y, mean, std};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "adain_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    acc_t* mp = mean.mutable_data_ptr<acc_t>();
    acc_t* sp = std.mutable_data_ptr<acc_t>();
    dispatch_act(p.act, [&](auto act) {
      dispatch_bool(p.noise.defined(), [&](auto noise) {
        forward_impl<scalar_t, decltype(act)::value, decltype(noise)::value>(p, yp, mp, sp);
      });
    });
  });
  return {y, mean, std};
}

// instance_norm_stats is this engine with a linear activation and no noise, bias or style.
TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  register_adain_engine<adain_forward_cpu, adain_backward_cpu>(m);
}

}  // namespace alae_fast
