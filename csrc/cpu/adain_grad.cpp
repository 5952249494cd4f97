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

// Rows [lo, hi) of NCHW x, in blocks of at most kRowBlock values (adain_engine.h) whose sums
// are added in double. buf holds two blocks: act(z) - mean, then act'(z) (pass 1 computes both;
// pass 2 reads them when the row is one block and recomputes them block by block otherwise);
// a linear activation needs only the first.
template <typename scalar_t, int ACT, bool NOISE>
AF_ALWAYS_INLINE void bwd_nchw_body(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                    int64_t lo, int64_t hi, scalar_t* dz,
                                    const RowOutputs<at::opmath_type<scalar_t>>& out,
                                    at::opmath_type<scalar_t>* buf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C, B = std::min(L, kRowBlock);
  const acc_t Lf = static_cast<acc_t>(L), alpha = in.alpha;
  const bool one_block = L <= kRowBlock;
  acc_t* AF_RESTRICT xc_buf = buf;
  acc_t* AF_RESTRICT d1_buf = buf + B;
  int64_t n = lo / C, c = lo % C;
  for (int64_t r = lo; r < hi; ++r, (++c == C ? (c = 0, ++n) : 0)) {
    const scalar_t* AF_RESTRICT xr = in.x + r * L;
    const scalar_t* AF_RESTRICT nr = NOISE ? in.noise + n * L : nullptr;
    const scalar_t* AF_RESTRICT gr = g.gy + r * L;
    const acc_t nw = in.nw_of(c), b = in.bias_of(c);
    const acc_t mu = g.mean[r], rstd = acc_t(1) / g.std[r];
    // One block: the old plain loops over the whole row, from 0 (the blocked form, used for
    // every row, had made 256 x 256 planes slower). Longer rows: block by block, recomputed in
    // the second pass, sums added in double.
    const int64_t nb = one_block ? 1 : (L + kRowBlock - 1) / kRowBlock;
    double wg = 0, wgx = 0, wz = 0, wzn = 0;
    for (int64_t q = 0; q < nb; ++q) {
      const int64_t b0 = q * kRowBlock, e = std::min(kRowBlock, L - b0);
      const scalar_t* AF_RESTRICT xq = xr + b0;
      const scalar_t* AF_RESTRICT nq = NOISE ? nr + b0 : nullptr;
      for (int64_t i = 0; i < e; ++i) {
        const acc_t z = z_of<NOISE>(xq[i], NOISE ? nq[i] : scalar_t(0), nw, b);
        xc_buf[i] = act_eval<ACT, 0>(z, alpha) - mu;
        // (rows of several blocks recompute act'(z) in pass 2)
        if constexpr (ACT != kLinear)
          if (one_block) d1_buf[i] = act_eval<ACT, 1>(z, alpha);
      }
      acc_t sgb, sgxcb;
      sum_and_dot_as(gr + b0, xc_buf, e, sgb, sgxcb);
      wg += sgb;
      wgx += sgxcb;
    }
    const acc_t sg = static_cast<acc_t>(wg), sgx = static_cast<acc_t>(wgx) * rstd;
    const RowGradCoefs<acc_t> k = row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r), Lf);
    const acc_t A = k.A, Br = k.B * rstd, D = k.D;
    for (int64_t q = 0; q < nb; ++q) {
      const int64_t b0 = q * kRowBlock, e = std::min(kRowBlock, L - b0);
      const scalar_t* AF_RESTRICT xq = xr + b0;
      const scalar_t* AF_RESTRICT nq = NOISE ? nr + b0 : nullptr;
      const scalar_t* AF_RESTRICT gq = gr + b0;
      scalar_t* AF_RESTRICT dq = dz + r * L + b0;
      if (!one_block) {
        for (int64_t i = 0; i < e; ++i) {
          const acc_t z = z_of<NOISE>(xq[i], NOISE ? nq[i] : scalar_t(0), nw, b);
          xc_buf[i] = act_eval<ACT, 0>(z, alpha) - mu;
          if constexpr (ACT != kLinear) d1_buf[i] = act_eval<ACT, 1>(z, alpha);
        }
      }
      // dz in the computation dtype replaces xc in the buffer, for the sums below.
      for (int64_t i = 0; i < e; ++i) {
        acc_t d = A * static_cast<acc_t>(gq[i]) + Br * xc_buf[i] + D;
        if constexpr (ACT != kLinear) d = chain_d1<ACT>(d1_buf[i], d);
        xc_buf[i] = d;
        dq[i] = static_cast<scalar_t>(d);
      }
      acc_t sz, szn = 0;
      if constexpr (NOISE) sum_and_dot_as(xc_buf, nq, e, sz, szn);
      else sum_and_dot_as(xc_buf, xc_buf, e, sz, szn);
      wz += sz;
      wzn += szn;
    }
    out.sg[r] = sg;
    out.sgx[r] = sgx;
    out.sz[r] = static_cast<acc_t>(wz);
    if constexpr (NOISE) out.szn[r] = static_cast<acc_t>(wzn);
  }
}

#if AF_ADAIN_REGISTER_LANES
// The register loops (adain_register_lanes.h) of one group of m pixels of CC channels, as in
// the forward (adain.cpp): per-channel values and partial sums in registers, two pixels in
// flight.
template <int ACT, bool NOISE, int CC, typename T>
AF_ALWAYS_INLINE void bwd_sums_reg(int64_t m, const T* AF_RESTRICT xg, const T* AF_RESTRICT ng,
                                   const T* AF_RESTRICT gg, const T* AF_RESTRICT nwr, const T* AF_RESTRICT br,
                                   const T* AF_RESTRICT mur, T alpha, T* AF_RESTRICT a1, T* AF_RESTRICT a2) {
  using V = typename Lanes<T>::V;
  constexpr int W = Lanes<T>::W, NV = CC / W;
  V nw[NV], b[NV], mu[NV];
  vload_all<NV>(nwr, nw);
  vload_all<NV>(br, b);
  vload_all<NV>(mur, mu);
  two_in_flight<NV, V>(m, [&](int64_t q, V(&p1)[NV], V(&p2)[NV]) AF_LAMBDA_INLINE {
    const V nv = vnoise<NOISE, V>(ng, q);
    for (int k = 0; k < NV; ++k) {
      const V g = vload<V>(gg + q * CC + k * W);
      p1[k] += g;
      p2[k] += g * (vact0<ACT>(vz<NOISE, CC>(xg, q, k, b, nw, nv), alpha) - mu[k]);
    }
  }, a1, a2);
}

template <int ACT, bool NOISE, int CC, typename T>
AF_ALWAYS_INLINE void bwd_dz_reg(int64_t m, const T* AF_RESTRICT xg, const T* AF_RESTRICT ng,
                                 const T* AF_RESTRICT gg, const T* AF_RESTRICT nwr, const T* AF_RESTRICT br,
                                 const T* AF_RESTRICT mur, const T* AF_RESTRICT Ar, const T* AF_RESTRICT Brr,
                                 const T* AF_RESTRICT Dr, T alpha, T* AF_RESTRICT dg, T* AF_RESTRICT a1,
                                 T* AF_RESTRICT a2) {
  using V = typename Lanes<T>::V;
  constexpr int W = Lanes<T>::W, NV = CC / W;
  V nw[NV], b[NV], mu[NV], A[NV], B[NV], D[NV];
  vload_all<NV>(nwr, nw);
  vload_all<NV>(br, b);
  vload_all<NV>(mur, mu);
  vload_all<NV>(Ar, A);
  vload_all<NV>(Brr, B);
  vload_all<NV>(Dr, D);
  two_in_flight<NV, V>(m, [&](int64_t q, V(&p1)[NV], V(&p2)[NV]) AF_LAMBDA_INLINE {
    const V nv = vnoise<NOISE, V>(ng, q);
    for (int k = 0; k < NV; ++k) {
      const V z = vz<NOISE, CC>(xg, q, k, b, nw, nv);
      const V da = A[k] * vload<V>(gg + q * CC + k * W) + B[k] * (vact0<ACT>(z, alpha) - mu[k]) + D[k];
      const V d = vchain<ACT>(vact1<ACT>(z, alpha), da);
      vstore(dg + q * CC + k * W, d);
      p1[k] += d;
      if constexpr (NOISE) p2[k] += d * nv;
    }
  }, a1, a2);
}
#endif

// The loops of one group of m pixels (adain_engine.h), as in the forward (adain.cpp): with SP
// one flat loop over m * C lanes, else m loops over the C channels with the pixel's noise;
// functions with restrict parameters, not lambdas, so that they vectorize.
template <int ACT, bool NOISE, bool SP, typename acc_t>
AF_ALWAYS_INLINE void bwd_group_sums(int64_t m, int64_t C, const acc_t* AF_RESTRICT xg, const acc_t* AF_RESTRICT ng,
                                     const acc_t* AF_RESTRICT gg, const acc_t* AF_RESTRICT nwr,
                                     const acc_t* AF_RESTRICT br, const acc_t* AF_RESTRICT mur, acc_t alpha,
                                     acc_t* AF_RESTRICT a1, acc_t* AF_RESTRICT a2) {
  auto one = [alpha](acc_t x, acc_t nv, acc_t g, acc_t nw, acc_t b, acc_t mu, acc_t& s1, acc_t& s2) AF_LAMBDA_INLINE {
    const acc_t a = act_eval<ACT, 0>(z_of<NOISE>(x, nv, nw, b), alpha);
    s1 += g;
    s2 += g * (a - mu);
  };
  if constexpr (SP) {
    const int64_t e = m * C;
    for (int64_t i = 0; i < e; ++i) one(xg[i], NOISE ? ng[i] : acc_t(0), gg[i], nwr[i], br[i], mur[i], a1[i], a2[i]);
  } else {
#if AF_ADAIN_REGISTER_LANES
    if constexpr (register_act<ACT>()) {
      if (with_register_channels(C, [&](auto cc) AF_LAMBDA_INLINE {
            bwd_sums_reg<ACT, NOISE, decltype(cc)::value>(m, xg, ng, gg, nwr, br, mur, alpha, a1, a2);
          }))
        return;
    }
#endif
    for (int64_t q = 0; q < m; ++q) {
      const acc_t nv = NOISE ? ng[q] : acc_t(0);
      const acc_t* AF_RESTRICT xq = xg + q * C;
      const acc_t* AF_RESTRICT gq = gg + q * C;
      for (int64_t c = 0; c < C; ++c) one(xq[c], nv, gq[c], nwr[c], br[c], mur[c], a1[c], a2[c]);
    }
  }
}

template <int ACT, bool NOISE, bool SP, typename acc_t>
AF_ALWAYS_INLINE void bwd_group_dz(int64_t m, int64_t C, const acc_t* AF_RESTRICT xg, const acc_t* AF_RESTRICT ng,
                                   const acc_t* AF_RESTRICT gg, const acc_t* AF_RESTRICT nwr,
                                   const acc_t* AF_RESTRICT br, const acc_t* AF_RESTRICT mur,
                                   const acc_t* AF_RESTRICT Ar, const acc_t* AF_RESTRICT Brr,
                                   const acc_t* AF_RESTRICT Dr, acc_t alpha, acc_t* AF_RESTRICT dg,
                                   acc_t* AF_RESTRICT a1, acc_t* AF_RESTRICT a2) {
  auto one = [alpha](acc_t x, acc_t nv, acc_t g, acc_t nw, acc_t b, acc_t mu, acc_t A, acc_t B, acc_t D, acc_t& out,
                     acc_t& s1, acc_t& s2) AF_LAMBDA_INLINE {
    const acc_t z = z_of<NOISE>(x, nv, nw, b);
    const acc_t da = A * g + B * (act_eval<ACT, 0>(z, alpha) - mu) + D;
    const acc_t d = chain_d1<ACT>(act_eval<ACT, 1>(z, alpha), da);
    out = d;
    s1 += d;
    if constexpr (NOISE) s2 += d * nv;
  };
  if constexpr (SP) {
    const int64_t e = m * C;
    for (int64_t i = 0; i < e; ++i)
      one(xg[i], NOISE ? ng[i] : acc_t(0), gg[i], nwr[i], br[i], mur[i], Ar[i], Brr[i], Dr[i], dg[i], a1[i], a2[i]);
  } else {
#if AF_ADAIN_REGISTER_LANES
    if constexpr (register_act<ACT>()) {
      if (with_register_channels(C, [&](auto cc) AF_LAMBDA_INLINE {
            bwd_dz_reg<ACT, NOISE, decltype(cc)::value>(m, xg, ng, gg, nwr, br, mur, Ar, Brr, Dr, alpha, dg, a1,
                                                         a2);
          }))
        return;
    }
#endif
    for (int64_t q = 0; q < m; ++q) {
      const acc_t nv = NOISE ? ng[q] : acc_t(0);
      const acc_t* AF_RESTRICT xq = xg + q * C;
      const acc_t* AF_RESTRICT gq = gg + q * C;
      acc_t* AF_RESTRICT dq = dg + q * C;
      for (int64_t c = 0; c < C; ++c)
        one(xq[c], nv, gq[c], nwr[c], br[c], mur[c], Ar[c], Brr[c], Dr[c], dq[c], a1[c], a2[c]);
    }
  }
}

// channels_last x, streamed in memory order as in the forward, a group of pixels at a time:
// pixels [p0, p1) of sample n. Pass 1 adds the chunk's sum(gy), sum(gy * (a - mean)) into sg,
// sgxc ([C]); pass 2 writes dz (recomputing z) and adds the chunk's sum(dz), sum(dz * noise)
// into sz, szn. nwr, br and sample n's mur, Ar, Brr, Dr are [lg.lanes]: per-channel values,
// repeated over a group when spread. acc holds 2 * lanes partial sums; xb, gb, nb (span each)
// a group's x, gy and noise in the computation dtype, db its dz before narrowing.
template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_ALWAYS_INLINE void bwd_nhwc_pass1(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                     const LaneGroups& lg, int64_t n, int64_t p0, int64_t p1, const acc_t* nwr,
                                     const acc_t* br, const acc_t* mur, acc_t* acc, acc_t* xb, acc_t* gb,
                                     acc_t* nb, acc_t* sg, acc_t* sgxc) {
  const int64_t C = in.C, L = in.L, lanes = lg.lanes;
  const acc_t alpha = in.alpha;
  const scalar_t* gn = g.gy + n * L * C;
  for (int64_t j = 0; j < 2 * lanes; ++j) acc[j] = 0;
  for_each_group<NOISE>(lg, C, p0, p1, in.x + n * L * C, NOISE ? in.noise + n * L : nullptr, xb, nb,
                        [&](auto spread, int64_t p, int64_t m, const acc_t* xg, const acc_t* ng) AF_LAMBDA_INLINE {
    const acc_t* gg = lanes_as<acc_t>(gn + p * C, m * C, gb);
    bwd_group_sums<ACT, NOISE, decltype(spread)::value>(m, C, xg, ng, gg, nwr, br, mur, alpha, acc, acc + lanes);
  });
  fold_lanes(acc, C, lanes, sg, sgxc);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_ALWAYS_INLINE void bwd_nhwc_pass2(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                     const LaneGroups& lg, int64_t n, int64_t p0, int64_t p1, const acc_t* nwr,
                                     const acc_t* br, const acc_t* mur, const acc_t* Ar, const acc_t* Brr,
                                     const acc_t* Dr, acc_t* acc, acc_t* xb, acc_t* gb, acc_t* nb, acc_t* db,
                                     scalar_t* dz, acc_t* sz, acc_t* szn) {
  const int64_t C = in.C, L = in.L, lanes = lg.lanes;
  const acc_t alpha = in.alpha;
  const scalar_t* gn = g.gy + n * L * C;
  scalar_t* dn = dz + n * L * C;
  for (int64_t j = 0; j < 2 * lanes; ++j) acc[j] = 0;
  for_each_group<NOISE>(lg, C, p0, p1, in.x + n * L * C, NOISE ? in.noise + n * L : nullptr, xb, nb,
                        [&](auto spread, int64_t p, int64_t m, const acc_t* xg, const acc_t* ng) AF_LAMBDA_INLINE {
    const acc_t* gg = lanes_as<acc_t>(gn + p * C, m * C, gb);
    acc_t* dg;
    if constexpr (std::is_same_v<scalar_t, acc_t>) dg = dn + p * C;
    else dg = db;
    bwd_group_dz<ACT, NOISE, decltype(spread)::value>(m, C, xg, ng, gg, nwr, br, mur, Ar, Brr, Dr, alpha, dg, acc,
                                                      acc + lanes);
    if constexpr (!std::is_same_v<scalar_t, acc_t>) convert_into(db, dn + p * C, m * C);
  });
  fold_lanes(acc, C, lanes, sz, szn);
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
                                           const LaneGroups& lg, int64_t n, int64_t p0, int64_t p1,
                                           const acc_t* nwr, const acc_t* br, const acc_t* mur, acc_t* acc,
                                           acc_t* xb, acc_t* gb, acc_t* nb, acc_t* sg, acc_t* sgxc) {
  bwd_nhwc_pass1<scalar_t, ACT, NOISE>(in, g, lg, n, p0, p1, nwr, br, mur, acc, xb, gb, nb, sg, sgxc);
}

template <typename scalar_t, int ACT, bool NOISE, typename acc_t = at::opmath_type<scalar_t>>
AF_CPU_MULTIVERSION void bwd_nhwc_pass2_mv(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g,
                                           const LaneGroups& lg, int64_t n, int64_t p0, int64_t p1,
                                           const acc_t* nwr, const acc_t* br, const acc_t* mur, const acc_t* Ar,
                                           const acc_t* Brr, const acc_t* Dr, acc_t* acc, acc_t* xb, acc_t* gb,
                                           acc_t* nb, acc_t* db, scalar_t* dz, acc_t* sz, acc_t* szn) {
  bwd_nhwc_pass2<scalar_t, ACT, NOISE>(in, g, lg, n, p0, p1, nwr, br, mur, Ar, Brr, Dr, acc, xb, gb, nb, db, dz,
                                       sz, szn);
}

template <typename scalar_t, int ACT, bool NOISE>
void backward_nhwc(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g, scalar_t* dz,
                   const RowOutputs<at::opmath_type<scalar_t>>& out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = in.N, C = in.C, L = in.L;
  const LaneGroups lg = lane_groups(C, L, NOISE, register_act<ACT>());
  const int64_t lanes = lg.lanes;
  const NhwcChunks ch = nhwc_chunks(L, C, lg);
  const int64_t tasks = N * ch.count;
  std::vector<acc_t> nw(C), b(C), A(N * C), Br(N * C), D(N * C), part(2 * tasks * C);
  for (int64_t c = 0; c < C; ++c) {
    nw[c] = in.nw_of(c);
    b[c] = in.bias_of(c);
  }
  std::vector<acc_t> nwr(lanes), br(lanes);
  repeat_lanes(nw.data(), C, lanes, nwr.data());
  repeat_lanes(b.data(), C, lanes, br.data());
  // Sample n's [C] values are repeated over a group by each thread when its tasks reach n, as
  // in the forward.
  at::parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> scratch(3 * lanes + 3 * lg.span);
    acc_t *mur = scratch.data(), *acc = mur + lanes, *xb = mur + 3 * lanes;
    int64_t filled = -1;
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      if (n != filled) {
        repeat_lanes(g.mean + n * C, C, lanes, mur);
        filled = n;
      }
      acc_t* s = part.data() + 2 * task * C;
      bwd_nhwc_pass1_mv<scalar_t, ACT, NOISE>(in, g, lg, n, p0, p1, nwr.data(), br.data(), mur, acc, xb,
                                              xb + lg.span, xb + 2 * lg.span, s, s + C);
    }
  });
  const acc_t Lf = static_cast<acc_t>(L);
  std::vector<double> t1(C), t2(C);
  for (int64_t n = 0; n < N; ++n) {
    ch.totals(part, n, C, t1, t2);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t sg = static_cast<acc_t>(t1[c]), sgxc = static_cast<acc_t>(t2[c]);
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
    std::vector<acc_t> scratch(6 * lanes + 4 * lg.span);
    acc_t *mur = scratch.data(), *Ar = mur + lanes, *Brr = mur + 2 * lanes, *Dr = mur + 3 * lanes;
    acc_t *acc = mur + 4 * lanes, *xb = mur + 6 * lanes;
    int64_t filled = -1;
    for (int64_t task = lo; task < hi; ++task) {
      int64_t n, p0, p1;
      ch.task(task, L, n, p0, p1);
      if (n != filled) {
        const int64_t o = n * C;
        repeat_lanes(g.mean + o, C, lanes, mur);
        repeat_lanes(A.data() + o, C, lanes, Ar);
        repeat_lanes(Br.data() + o, C, lanes, Brr);
        repeat_lanes(D.data() + o, C, lanes, Dr);
        filled = n;
      }
      acc_t* s = part.data() + 2 * task * C;
      bwd_nhwc_pass2_mv<scalar_t, ACT, NOISE>(in, g, lg, n, p0, p1, nwr.data(), br.data(), mur, Ar, Brr, Dr, acc,
                                              xb, xb + lg.span, xb + 2 * lg.span, xb + 3 * lg.span, dz, s, s + C);
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    ch.totals(part, n, C, t1, t2);
    for (int64_t c = 0; c < C; ++c) {
      out.sz[n * C + c] = static_cast<acc_t>(t1[c]);
      if constexpr (NOISE) out.szn[n * C + c] = static_cast<acc_t>(t2[c]);
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
    std::vector<acc_t> scratch(2 * std::min(p.L, kRowBlock));
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
