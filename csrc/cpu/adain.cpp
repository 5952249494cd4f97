// CPU forward of the adain engine, and the CPU registration of adain and instance_norm_stats.
#include "adain_engine.h"
#include "../ops/instance_norm_stats.h"

#include <torch/library.h>

#include <cmath>
#include <vector>

namespace alae_fast {
namespace adain_cpu_engine {
namespace {

// Rows [lo, hi) of NCHW x. buf (L values) keeps act(z) - shift between the two passes: cheaper than
// recomputing it, and for rows that fit in L1/L2 (L up to a few thousand) it never leaves cache.
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void fwd_nchw_body(const Inputs<scalar_t>& in, int64_t lo, int64_t hi, scalar_t* y,
                                    at::opmath_type<scalar_t>* mean_out,
                                    at::opmath_type<scalar_t>* std_out,
                                    at::opmath_type<scalar_t>* buf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L), alpha = in.alpha;
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
    for (int64_t i = 0; i < L; ++i) rb[i] = a_at(i) - K;
    acc_t s1, s2;
    sum_and_dot(rb, rb, L, s1, s2);
    const RowStats<acc_t> st = row_stats(K, s1, s2, Lf, in.eps);
    const acc_t k = st.rstd * in.sigma_of(r), t = in.shift_of(r), m1 = st.offset;
    scalar_t* AF_RESTRICT yr = y + r * L;
    for (int64_t i2 = 0; i2 < L; ++i2) yr[i2] = static_cast<scalar_t>((rb[i2] - m1) * k + t);
    mean_out[r] = st.mean;
    std_out[r] = st.std;
  }
}

// channels_last x is streamed in memory order, one chunk of pixels [p0, p1) of sample n
// with all C channels innermost: pass 1 adds the chunk's shifted sums into s1, s2 ([C]);
// pass 2 writes y. (Walking a [H*W, few channels] slab instead strides by C elements per
// pixel, which defeats the caches and prefetchers: 2x slower.) nw, b, K, m1, k, t are [C].
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void fwd_nhwc_pass1(const Inputs<scalar_t>& in, int64_t n, int64_t p0, int64_t p1,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT nw,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT b,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT K,
                                     at::opmath_type<scalar_t>* AF_RESTRICT s1,
                                     at::opmath_type<scalar_t>* AF_RESTRICT s2) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = in.C, L = in.L;
  const acc_t alpha = in.alpha;
  const scalar_t* AF_RESTRICT xn = in.x + n * L * C;
  const scalar_t* AF_RESTRICT nn = NOISE ? in.noise + n * L : nullptr;
  for (int64_t c = 0; c < C; ++c) s1[c] = s2[c] = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const scalar_t* AF_RESTRICT xp = xn + p * C;
    const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t d = act_eval<ACT, 0>(z_of<NOISE>(xp[c], nv, nw[c], b[c]), alpha) - K[c];
      s1[c] += d;
      s2[c] += d * d;
    }
  }
}

template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void fwd_nhwc_pass2(const Inputs<scalar_t>& in, int64_t n, int64_t p0, int64_t p1,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT nw,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT b,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT K,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT m1,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT k,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT t,
                                     scalar_t* AF_RESTRICT y) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = in.C, L = in.L;
  const acc_t alpha = in.alpha;
  const scalar_t* AF_RESTRICT xn = in.x + n * L * C;
  const scalar_t* AF_RESTRICT nn = NOISE ? in.noise + n * L : nullptr;
  scalar_t* AF_RESTRICT yn = y + n * L * C;
  for (int64_t p = p0; p < p1; ++p) {
    const scalar_t* AF_RESTRICT xp = xn + p * C;
    scalar_t* AF_RESTRICT yp = yn + p * C;
    const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t d = act_eval<ACT, 0>(z_of<NOISE>(xp[c], nv, nw[c], b[c]), alpha) - K[c];
      yp[c] = static_cast<scalar_t>((d - m1[c]) * k[c] + t[c]);
    }
  }
}

// The multiversioned entry points (multiversion.h) of the row kernels above, one per dtype.
template <typename scalar_t, int ACT, bool NOISE>
AF_CPU_MULTIVERSION void fwd_nchw_mv(const Inputs<scalar_t>& in, int64_t lo, int64_t hi, scalar_t* y,
                                     at::opmath_type<scalar_t>* mean, at::opmath_type<scalar_t>* std,
                                     at::opmath_type<scalar_t>* buf) {
  fwd_nchw_body<scalar_t, ACT, NOISE>(in, lo, hi, y, mean, std, buf);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void fwd_nhwc_pass1_mv(const Inputs<scalar_t>& in, int64_t n, int64_t p0, int64_t p1,
                                           const acc_t* nw, const acc_t* b, const acc_t* K, acc_t* s1, acc_t* s2) {
  fwd_nhwc_pass1<scalar_t, ACT, NOISE>(in, n, p0, p1, nw, b, K, s1, s2);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void fwd_nhwc_pass2_mv(const Inputs<scalar_t>& in, int64_t n, int64_t p0, int64_t p1,
                                           const acc_t* nw, const acc_t* b, const acc_t* K, const acc_t* m1,
                                           const acc_t* k, const acc_t* t, scalar_t* y) {
  fwd_nhwc_pass2<scalar_t, ACT, NOISE>(in, n, p0, p1, nw, b, K, m1, k, t, y);
}

template <typename scalar_t, int ACT, bool NOISE>
void forward_nhwc(const Inputs<scalar_t>& in, scalar_t* y, at::opmath_type<scalar_t>* mean,
                  at::opmath_type<scalar_t>* std) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = in.N, C = in.C, L = in.L;
  const NhwcChunks ch = nhwc_chunks(L, C);
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
  at::parallel_for(0, N * ch.count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      acc_t* s1 = part.data() + 2 * task * C;
      fwd_nhwc_pass1_mv<scalar_t, ACT, NOISE>(in, n, p0, p1, nw.data(), b.data(), K.data() + n * C, s1, s1 + C);
    }
  });
  const acc_t Lf = static_cast<acc_t>(L);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      acc_t s1, s2;
      ch.totals(part, n, c, C, s1, s2);
      const int64_t r = n * C + c;
      const RowStats<acc_t> st = row_stats(K[r], s1, s2, Lf, in.eps);
      k[r] = st.rstd * in.sigma_of(r);
      t[r] = in.shift_of(r);
      m1[r] = st.offset;
      mean[r] = st.mean;
      std[r] = st.std;
    }
  }
  at::parallel_for(0, N * ch.count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      const int64_t o = n * C;
      fwd_nhwc_pass2_mv<scalar_t, ACT, NOISE>(in, n, p0, p1, nw.data(), b.data(), K.data() + o, m1.data() + o,
                                              k.data() + o, t.data() + o, y);
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
    std::vector<acc_t> scratch(p.L);
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
