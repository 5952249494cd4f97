// CPU backward of the adain engine: dz and the row sums sum(gy), sum(gy * xhat), sum(dz) and
// sum(dz * noise), given the forward's mean and std and the cotangents of y, mean and std
// (csrc/common/instance_norm.h). Pass 1 accumulates the first two sums, pass 2 writes
// dz = act'(z) * (A*gy + B*xhat + D) and accumulates the last two, from which the bias and
// noise-weight gradients are [N, C] -> [C] sums instead of full passes over dz.
#include "adain_engine.h"

#include <vector>

namespace alae_fast {
namespace adain_cpu_engine {
namespace {

template <typename scalar_t>
struct GradInputs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* gy;
  const acc_t* gmean;  // null: zero
  const acc_t* gstd;   // null: zero
  const acc_t* mean;
  const acc_t* std;
  acc_t gm_of(int64_t r) const { return gmean ? gmean[r] : acc_t(0); }
  acc_t gs_of(int64_t r) const { return gstd ? gstd[r] : acc_t(0); }
};

// The [N, C] outputs besides dz, in the computation dtype.
template <typename acc_t>
struct RowOutputs {
  acc_t* sg;   // sum(gy)
  acc_t* sgx;  // sum(gy * xhat)
  acc_t* sz;   // sum(dz)
  acc_t* szn;  // sum(dz * noise); written only with noise
};

// Rows [lo, hi) of NCHW x. buf holds 2L values: act(z) - mean, then act'(z) (pass 1 computes
// both, pass 2 only reads them); a linear activation needs only the first half.
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void bwd_nchw_body(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                    int64_t lo, int64_t hi, scalar_t* dz,
                                    const RowOutputs<at::opmath_type<scalar_t>>& out,
                                    at::opmath_type<scalar_t>* buf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L), alpha = in.alpha;
  acc_t* AF_RESTRICT xc_buf = buf;
  acc_t* AF_RESTRICT d1_buf = buf + L;
  int64_t n = lo / C, c = lo % C;
  for (int64_t r = lo; r < hi; ++r, (++c == C ? (c = 0, ++n) : 0)) {
    const scalar_t* AF_RESTRICT xr = in.x + r * L;
    const scalar_t* AF_RESTRICT nr = NOISE ? in.noise + n * L : nullptr;
    const scalar_t* AF_RESTRICT gr = g.gy + r * L;
    const acc_t nw = in.nw_of(c), b = in.bias_of(c);
    const acc_t mu = g.mean[r], rstd = acc_t(1) / g.std[r];
    for (int64_t i = 0; i < L; ++i) {
      const acc_t z = z_of<NOISE>(xr[i], NOISE ? nr[i] : scalar_t(0), nw, b);
      xc_buf[i] = act_eval<ACT, 0>(z, alpha) - mu;
      if constexpr (ACT != kLinear) d1_buf[i] = act_eval<ACT, 1>(z, alpha);
    }
    acc_t sg, sgxc;
    sum_and_dot_as(gr, xc_buf, L, sg, sgxc);
    const acc_t sgx = sgxc * rstd;
    const RowGradCoefs<acc_t> k = row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r), Lf);
    const acc_t A = k.A, Br = k.B * rstd, D = k.D;
    scalar_t* AF_RESTRICT dr = dz + r * L;
    // dz in the computation dtype replaces xc in the buffer, for the sums below.
    for (int64_t i = 0; i < L; ++i) {
      acc_t d = A * static_cast<acc_t>(gr[i]) + Br * xc_buf[i] + D;
      if constexpr (ACT != kLinear) d = chain_d1<ACT>(d1_buf[i], d);
      xc_buf[i] = d;
      dr[i] = static_cast<scalar_t>(d);
    }
    acc_t sz, szn = 0;
    if constexpr (NOISE) sum_and_dot_as(xc_buf, nr, L, sz, szn);
    else sum_and_dot_as(xc_buf, xc_buf, L, sz, szn);
    out.sg[r] = sg;
    out.sgx[r] = sgx;
    out.sz[r] = sz;
    if constexpr (NOISE) out.szn[r] = szn;
  }
}

// channels_last x, streamed in memory order as in the forward: pixels [p0, p1) of sample n.
// Pass 1 adds the chunk's sum(gy), sum(gy * (a - mean)) into sg, sgxc ([C]); pass 2 writes dz
// (recomputing z) and adds the chunk's sum(dz), sum(dz * noise) into sz, szn. mu, A, Br, D are
// sample n's [C] coefficients; nw, b are [C].
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void bwd_nhwc_pass1(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                     int64_t n, int64_t p0, int64_t p1,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT nw,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT b,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT mu,
                                     at::opmath_type<scalar_t>* AF_RESTRICT sg,
                                     at::opmath_type<scalar_t>* AF_RESTRICT sgxc) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = in.C, L = in.L;
  const acc_t alpha = in.alpha;
  const scalar_t* AF_RESTRICT xn = in.x + n * L * C;
  const scalar_t* AF_RESTRICT gn = g.gy + n * L * C;
  const scalar_t* AF_RESTRICT nn = NOISE ? in.noise + n * L : nullptr;
  for (int64_t c = 0; c < C; ++c) sg[c] = sgxc[c] = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const scalar_t* AF_RESTRICT xp = xn + p * C;
    const scalar_t* AF_RESTRICT gp = gn + p * C;
    const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t gv = static_cast<acc_t>(gp[c]);
      const acc_t a = act_eval<ACT, 0>(z_of<NOISE>(xp[c], nv, nw[c], b[c]), alpha);
      sg[c] += gv;
      sgxc[c] += gv * (a - mu[c]);
    }
  }
}

template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void bwd_nhwc_pass2(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                     int64_t n, int64_t p0, int64_t p1,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT nw,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT b,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT mu,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT A,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT Br,
                                     const at::opmath_type<scalar_t>* AF_RESTRICT D,
                                     scalar_t* AF_RESTRICT dz,
                                     at::opmath_type<scalar_t>* AF_RESTRICT sz,
                                     at::opmath_type<scalar_t>* AF_RESTRICT szn) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = in.C, L = in.L;
  const acc_t alpha = in.alpha;
  const scalar_t* AF_RESTRICT xn = in.x + n * L * C;
  const scalar_t* AF_RESTRICT gn = g.gy + n * L * C;
  const scalar_t* AF_RESTRICT nn = NOISE ? in.noise + n * L : nullptr;
  scalar_t* AF_RESTRICT dn = dz + n * L * C;
  for (int64_t c = 0; c < C; ++c) sz[c] = szn[c] = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const scalar_t* AF_RESTRICT xp = xn + p * C;
    const scalar_t* AF_RESTRICT gp = gn + p * C;
    scalar_t* AF_RESTRICT dp = dn + p * C;
    const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t z = z_of<NOISE>(xp[c], nv, nw[c], b[c]);
      const acc_t da = A[c] * static_cast<acc_t>(gp[c]) + Br[c] * (act_eval<ACT, 0>(z, alpha) - mu[c]) + D[c];
      const acc_t d = chain_d1<ACT>(act_eval<ACT, 1>(z, alpha), da);
      dp[c] = static_cast<scalar_t>(d);
      sz[c] += d;
      if constexpr (NOISE) szn[c] += d * static_cast<acc_t>(nv);
    }
  }
}

// The multiversioned entry points (multiversion.h) of the row kernels above, one per dtype.
template <typename scalar_t, int ACT, bool NOISE>
AF_CPU_MULTIVERSION void bwd_nchw_mv(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                     int64_t lo, int64_t hi, scalar_t* dz,
                                     const RowOutputs<at::opmath_type<scalar_t>>& out,
                                     at::opmath_type<scalar_t>* buf) {
  bwd_nchw_body<scalar_t, ACT, NOISE>(in, g, lo, hi, dz, out, buf);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void bwd_nhwc_pass1_mv(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                           int64_t n, int64_t p0, int64_t p1, const acc_t* nw,
                                           const acc_t* b, const acc_t* mu, acc_t* sg, acc_t* sgxc) {
  bwd_nhwc_pass1<scalar_t, ACT, NOISE>(in, g, n, p0, p1, nw, b, mu, sg, sgxc);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void bwd_nhwc_pass2_mv(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                           int64_t n, int64_t p0, int64_t p1, const acc_t* nw,
                                           const acc_t* b, const acc_t* mu, const acc_t* A,
                                           const acc_t* Br, const acc_t* D, scalar_t* dz, acc_t* sz,
                                           acc_t* szn) {
  bwd_nhwc_pass2<scalar_t, ACT, NOISE>(in, g, n, p0, p1, nw, b, mu, A, Br, D, dz, sz, szn);
}

template <typename scalar_t, int ACT, bool NOISE>
void backward_nhwc(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g, scalar_t* dz,
                   const RowOutputs<at::opmath_type<scalar_t>>& out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = in.N, C = in.C, L = in.L;
  const NhwcChunks ch = nhwc_chunks(L, C);
  const int64_t tasks = N * ch.count;
  std::vector<acc_t> nw(C), b(C), mu(N * C), A(N * C), Br(N * C), D(N * C), part(2 * tasks * C);
  for (int64_t c = 0; c < C; ++c) {
    nw[c] = in.nw_of(c);
    b[c] = in.bias_of(c);
  }
  for (int64_t r = 0; r < N * C; ++r) mu[r] = g.mean[r];
  at::parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      acc_t* s = part.data() + 2 * task * C;
      bwd_nhwc_pass1_mv<scalar_t, ACT, NOISE>(in, g, n, p0, p1, nw.data(), b.data(), mu.data() + n * C, s, s + C);
    }
  });
  const acc_t Lf = static_cast<acc_t>(L);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      acc_t sg, sgxc;
      ch.totals(part, n, c, C, sg, sgxc);
      const int64_t r = n * C + c;
      const acc_t rstd = acc_t(1) / g.std[r];
      const acc_t sgx = sgxc * rstd;
      const RowGradCoefs<acc_t> k = row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r), Lf);
      A[r] = k.A;
      Br[r] = k.B * rstd;
      D[r] = k.D;
      out.sg[r] = sg;
      out.sgx[r] = sgx;
    }
  }
  at::parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      const int64_t o = n * C;
      acc_t* s = part.data() + 2 * task * C;
      bwd_nhwc_pass2_mv<scalar_t, ACT, NOISE>(in, g, n, p0, p1, nw.data(), b.data(), mu.data() + o, A.data() + o,
                                              Br.data() + o, D.data() + o, dz, s, s + C);
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      acc_t sz, szn;
      ch.totals(part, n, c, C, sz, szn);
      out.sz[n * C + c] = sz;
      if constexpr (NOISE) out.szn[n * C + c] = szn;
    }
  }
}

template <typename scalar_t, int ACT, bool NOISE>
void backward_impl(const AdainPlan& p, const GradInputs<scalar_t>& g, scalar_t* dz,
                   const RowOutputs<at::opmath_type<scalar_t>>& out) {
  using acc_t = at::opmath_type<scalar_t>;
  const Inputs<scalar_t> in(p);
  if (p.channels_last) {
    backward_nhwc<scalar_t, ACT, NOISE>(in, g, dz, out);
    return;
  }
  at::parallel_for(0, p.N * p.C, grain_for(p.L), [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> scratch(2 * p.L);
    bwd_nchw_mv<scalar_t, ACT, NOISE>(in, g, lo, hi, dz, out, scratch.data());
  });
}

}  // namespace
}  // namespace adain_cpu_engine

AdainGrads adain_backward_cpu(const AdainPlan& p,
                                                                  const at::Tensor& gy,
                                                                  const at::Tensor& gmean,
                                                                  const at::Tensor& gstd,
                                                                  const at::Tensor& mean,
                                                                  const at::Tensor& std) {
  using namespace adain_cpu_engine;
  at::Tensor dz = at::empty_like(p.x);
  const auto stat_opts = p.x.options().dtype(opmath_of(p.x.scalar_type()));
  AdainGrads o{dz, at::zeros({p.N, p.C}, stat_opts), at::zeros({p.N, p.C}, stat_opts),
                at::zeros({p.N, p.C}, stat_opts), at::zeros({p.N, p.C}, stat_opts)};
  if (p.N * p.C == 0 || p.L == 0) return o;
  // Without a cotangent for y (only mean/std used) the rows still need both passes; a zero
  // gy keeps one kernel per activation instead of two.
  const at::Tensor g_y = gy.defined() ? gy : at::zeros_like(p.x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "adain_grad_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const GradInputs<scalar_t> g{g_y.const_data_ptr<scalar_t>(),
                                 gmean.defined() ? gmean.const_data_ptr<acc_t>() : nullptr,
                                 gstd.defined() ? gstd.const_data_ptr<acc_t>() : nullptr,
                                 mean.const_data_ptr<acc_t>(), std.const_data_ptr<acc_t>()};
    scalar_t* dp = dz.mutable_data_ptr<scalar_t>();
    const RowOutputs<acc_t> out{o.sum_g.mutable_data_ptr<acc_t>(), o.sum_gxhat.mutable_data_ptr<acc_t>(),
                                o.sum_dz.mutable_data_ptr<acc_t>(), o.sum_dz_noise.mutable_data_ptr<acc_t>()};
    dispatch_act(p.act, [&](auto act) {
      dispatch_bool(p.noise.defined(), [&](auto noise) {
        backward_impl<scalar_t, decltype(act)::value, decltype(noise)::value>(p, g, dp, out);
      });
    });
  });
  return o;
}

}  // namespace alae_fast
