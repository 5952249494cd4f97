// CPU engine of adain and instance_norm_stats, and the CPU registration of adain.
//
// Each (n, c) row is reduced and then written while it is still in cache: in NCHW memory
// one task takes whole rows (a row of up to 4096 float32 values fits in L1); in
// channels_last memory one task takes one sample and a block of kCB channels, whose
// [H*W, kCB] slab is walked twice with the channels innermost (contiguous, vectorizable).
// Reductions keep kV independent partial sums so that the compiler may vectorize them
// without reassociating floating-point additions itself.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "../common/activations.h"
#include "../common/dispatch.h"
#include "../common/instance_norm.h"
#include "../ops/adain.h"

namespace alae_fast {
namespace {

constexpr int kV = 16;   // partial sums per row reduction
constexpr int kCB = 16;  // channels per task in channels_last memory

template <typename scalar_t>
struct Inputs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const scalar_t* noise;  // [N, L] or null
  const scalar_t* nw;     // [C] or null
  const scalar_t* bias;   // [C] or null
  const scalar_t* scale;  // [N, C] or null
  const scalar_t* shift;  // [N, C] or null
  int64_t N, C, L;
  acc_t alpha, eps;

  explicit Inputs(const AdainPlan& p)
      : x(p.x.const_data_ptr<scalar_t>()),
        noise(p.noise.defined() ? p.noise.const_data_ptr<scalar_t>() : nullptr),
        nw(p.noise_weight.defined() ? p.noise_weight.const_data_ptr<scalar_t>() : nullptr),
        bias(p.bias.defined() ? p.bias.const_data_ptr<scalar_t>() : nullptr),
        scale(p.scale.defined() ? p.scale.const_data_ptr<scalar_t>() : nullptr),
        shift(p.shift.defined() ? p.shift.const_data_ptr<scalar_t>() : nullptr),
        N(p.N), C(p.C), L(p.L),
        alpha(static_cast<acc_t>(p.alpha)), eps(static_cast<acc_t>(p.eps)) {}

  acc_t nw_of(int64_t c) const { return nw ? static_cast<acc_t>(nw[c]) : acc_t(1); }
  acc_t bias_of(int64_t c) const { return bias ? static_cast<acc_t>(bias[c]) : acc_t(0); }
  acc_t sigma_of(int64_t r) const { return scale ? acc_t(1) + static_cast<acc_t>(scale[r]) : acc_t(1); }
  acc_t shift_of(int64_t r) const { return shift ? static_cast<acc_t>(shift[r]) : acc_t(0); }
};

// x + nw * noise + b for one element, in the computation dtype.
template <bool NOISE, typename scalar_t, typename acc_t>
inline acc_t z_of(scalar_t xv, scalar_t nv, acc_t nw, acc_t b) {
  acc_t z = static_cast<acc_t>(xv) + b;
  if constexpr (NOISE) z += nw * static_cast<acc_t>(nv);
  return z;
}

// ---------------------------------------------------------------------------------------
// Forward

template <typename scalar_t, int ACT, bool NOISE>
void forward_nchw(const Inputs<scalar_t>& in, scalar_t* y, at::opmath_type<scalar_t>* mean_out,
                  at::opmath_type<scalar_t>* std_out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L, 1));
  at::parallel_for(0, in.N * C, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / C, c = r % C;
      const scalar_t* xr = in.x + r * L;
      const scalar_t* nr = NOISE ? in.noise + n * L : nullptr;
      const acc_t nw = in.nw_of(c), b = in.bias_of(c), alpha = in.alpha;
      auto a_at = [&](int64_t i) {
        return act_eval<ACT, 0>(z_of<NOISE>(xr[i], NOISE ? nr[i] : scalar_t(0), nw, b), alpha);
      };
      const acc_t K = a_at(0);
      acc_t s1v[kV] = {}, s2v[kV] = {};
      int64_t i = 0;
      for (; i + kV <= L; i += kV) {
        for (int j = 0; j < kV; ++j) {
          const acc_t d = a_at(i + j) - K;
          s1v[j] += d;
          s2v[j] += d * d;
        }
      }
      acc_t s1 = 0, s2 = 0;
      for (; i < L; ++i) {
        const acc_t d = a_at(i) - K;
        s1 += d;
        s2 += d * d;
      }
      for (int j = 0; j < kV; ++j) {
        s1 += s1v[j];
        s2 += s2v[j];
      }
      const RowStats<acc_t> st = row_stats(K, s1, s2, Lf, in.eps);
      const acc_t k = st.rstd * in.sigma_of(r), t = in.shift_of(r), mu = st.mean;
      scalar_t* yr = y + r * L;
      for (int64_t i2 = 0; i2 < L; ++i2) yr[i2] = static_cast<scalar_t>((a_at(i2) - mu) * k + t);
      mean_out[r] = st.mean;
      std_out[r] = st.std;
    }
  });
}

template <typename scalar_t, int ACT, bool NOISE>
void forward_nhwc(const Inputs<scalar_t>& in, scalar_t* y, at::opmath_type<scalar_t>* mean_out,
                  at::opmath_type<scalar_t>* std_out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L);
  const int64_t blocks = (C + kCB - 1) / kCB;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L * kCB, 1));
  at::parallel_for(0, in.N * blocks, grain, [&](int64_t lo, int64_t hi) {
    acc_t nw[kCB], b[kCB], K[kCB], s1[kCB], s2[kCB], k[kCB], t[kCB], mu[kCB];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t n = task / blocks, c0 = (task % blocks) * kCB;
      const int cb = static_cast<int>(std::min<int64_t>(kCB, C - c0));
      const scalar_t* xn = in.x + n * L * C + c0;
      const scalar_t* nn = NOISE ? in.noise + n * L : nullptr;
      for (int j = 0; j < cb; ++j) {
        nw[j] = in.nw_of(c0 + j);
        b[j] = in.bias_of(c0 + j);
        K[j] = act_eval<ACT, 0>(z_of<NOISE>(xn[j], NOISE ? nn[0] : scalar_t(0), nw[j], b[j]), in.alpha);
        s1[j] = s2[j] = 0;
      }
      for (int64_t p = 0; p < L; ++p) {
        const scalar_t* xp = xn + p * C;
        const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
        for (int j = 0; j < cb; ++j) {
          const acc_t d = act_eval<ACT, 0>(z_of<NOISE>(xp[j], nv, nw[j], b[j]), in.alpha) - K[j];
          s1[j] += d;
          s2[j] += d * d;
        }
      }
      for (int j = 0; j < cb; ++j) {
        const int64_t r = n * C + c0 + j;
        const RowStats<acc_t> st = row_stats(K[j], s1[j], s2[j], Lf, in.eps);
        k[j] = st.rstd * in.sigma_of(r);
        t[j] = in.shift_of(r);
        mu[j] = st.mean;
        mean_out[r] = st.mean;
        std_out[r] = st.std;
      }
      scalar_t* yn = y + n * L * C + c0;
      for (int64_t p = 0; p < L; ++p) {
        const scalar_t* xp = xn + p * C;
        scalar_t* yp = yn + p * C;
        const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
        for (int j = 0; j < cb; ++j) {
          const acc_t a = act_eval<ACT, 0>(z_of<NOISE>(xp[j], nv, nw[j], b[j]), in.alpha);
          yp[j] = static_cast<scalar_t>((a - mu[j]) * k[j] + t[j]);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Backward

template <typename scalar_t>
struct GradInputs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* gy;   // null: zero
  const acc_t* gmean;   // null: zero
  const acc_t* gstd;    // null: zero
  const acc_t* mean;
  const acc_t* std;
  acc_t gm_of(int64_t r) const { return gmean ? gmean[r] : acc_t(0); }
  acc_t gs_of(int64_t r) const { return gstd ? gstd[r] : acc_t(0); }
};

template <typename scalar_t, int ACT, bool NOISE, bool HAS_GY>
void backward_nchw(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g, scalar_t* dz,
                   at::opmath_type<scalar_t>* sg_out, at::opmath_type<scalar_t>* sgx_out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L, 1));
  at::parallel_for(0, in.N * C, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t n = r / C, c = r % C;
      const scalar_t* xr = in.x + r * L;
      const scalar_t* nr = NOISE ? in.noise + n * L : nullptr;
      const scalar_t* gr = HAS_GY ? g.gy + r * L : nullptr;
      const acc_t nw = in.nw_of(c), b = in.bias_of(c), alpha = in.alpha;
      const acc_t mu = g.mean[r], rstd = acc_t(1) / g.std[r];
      auto z_at = [&](int64_t i) { return z_of<NOISE>(xr[i], NOISE ? nr[i] : scalar_t(0), nw, b); };
      acc_t sg = 0, sgxc = 0;
      if constexpr (HAS_GY) {
        acc_t sgv[kV] = {}, sgxv[kV] = {};
        int64_t i = 0;
        for (; i + kV <= L; i += kV) {
          for (int j = 0; j < kV; ++j) {
            const acc_t gv = static_cast<acc_t>(gr[i + j]);
            sgv[j] += gv;
            sgxv[j] += gv * (act_eval<ACT, 0>(z_at(i + j), alpha) - mu);
          }
        }
        for (; i < L; ++i) {
          const acc_t gv = static_cast<acc_t>(gr[i]);
          sg += gv;
          sgxc += gv * (act_eval<ACT, 0>(z_at(i), alpha) - mu);
        }
        for (int j = 0; j < kV; ++j) {
          sg += sgv[j];
          sgxc += sgxv[j];
        }
      }
      const acc_t sgx = sgxc * rstd;
      const RowGradCoefs<acc_t> k =
          row_grad_coefs(rstd, in.sigma_of(r), sg, sgx, g.gm_of(r), g.gs_of(r), Lf);
      scalar_t* dr = dz + r * L;
      for (int64_t i = 0; i < L; ++i) {
        const acc_t z = z_at(i);
        const acc_t xhat = (act_eval<ACT, 0>(z, alpha) - mu) * rstd;
        acc_t da = k.B * xhat + k.D;
        if constexpr (HAS_GY) da += k.A * static_cast<acc_t>(gr[i]);
        dr[i] = static_cast<scalar_t>(act_eval<ACT, 1>(z, alpha) * da);
      }
      sg_out[r] = sg;
      sgx_out[r] = sgx;
    }
  });
}

template <typename scalar_t, int ACT, bool NOISE, bool HAS_GY>
void backward_nhwc(const Inputs<scalar_t>& in, const GradInputs<scalar_t>& g, scalar_t* dz,
                   at::opmath_type<scalar_t>* sg_out, at::opmath_type<scalar_t>* sgx_out) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t L = in.L, C = in.C;
  const acc_t Lf = static_cast<acc_t>(L);
  const int64_t blocks = (C + kCB - 1) / kCB;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L * kCB, 1));
  at::parallel_for(0, in.N * blocks, grain, [&](int64_t lo, int64_t hi) {
    acc_t nw[kCB], b[kCB], mu[kCB], rstd[kCB], sg[kCB], sgxc[kCB], A[kCB], B[kCB], D[kCB];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t n = task / blocks, c0 = (task % blocks) * kCB;
      const int cb = static_cast<int>(std::min<int64_t>(kCB, C - c0));
      const int64_t off = n * L * C + c0;
      const scalar_t* xn = in.x + off;
      const scalar_t* gn = HAS_GY ? g.gy + off : nullptr;
      const scalar_t* nn = NOISE ? in.noise + n * L : nullptr;
      for (int j = 0; j < cb; ++j) {
        const int64_t r = n * C + c0 + j;
        nw[j] = in.nw_of(c0 + j);
        b[j] = in.bias_of(c0 + j);
        mu[j] = g.mean[r];
        rstd[j] = acc_t(1) / g.std[r];
        sg[j] = sgxc[j] = 0;
      }
      if constexpr (HAS_GY) {
        for (int64_t p = 0; p < L; ++p) {
          const scalar_t* xp = xn + p * C;
          const scalar_t* gp = gn + p * C;
          const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
          for (int j = 0; j < cb; ++j) {
            const acc_t gv = static_cast<acc_t>(gp[j]);
            const acc_t a = act_eval<ACT, 0>(z_of<NOISE>(xp[j], nv, nw[j], b[j]), in.alpha);
            sg[j] += gv;
            sgxc[j] += gv * (a - mu[j]);
          }
        }
      }
      for (int j = 0; j < cb; ++j) {
        const int64_t r = n * C + c0 + j;
        const acc_t sgx = sgxc[j] * rstd[j];
        const RowGradCoefs<acc_t> k =
            row_grad_coefs(rstd[j], in.sigma_of(r), sg[j], sgx, g.gm_of(r), g.gs_of(r), Lf);
        A[j] = k.A;
        B[j] = k.B;
        D[j] = k.D;
        sg_out[r] = sg[j];
        sgx_out[r] = sgx;
      }
      scalar_t* dn = dz + off;
      for (int64_t p = 0; p < L; ++p) {
        const scalar_t* xp = xn + p * C;
        scalar_t* dp = dn + p * C;
        const scalar_t nv = NOISE ? nn[p] : scalar_t(0);
        for (int j = 0; j < cb; ++j) {
          const acc_t z = z_of<NOISE>(xp[j], nv, nw[j], b[j]);
          const acc_t xhat = (act_eval<ACT, 0>(z, in.alpha) - mu[j]) * rstd[j];
          acc_t da = B[j] * xhat + D[j];
          if constexpr (HAS_GY) da += A[j] * static_cast<acc_t>(gn[p * C + j]);
          dp[j] = static_cast<scalar_t>(act_eval<ACT, 1>(z, in.alpha) * da);
        }
      }
    }
  });
}

template <typename Fn>
void dispatch_bool(bool v, Fn&& fn) {
  if (v) fn(std::true_type{});
  else fn(std::false_type{});
}

at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_forward_cpu(const AdainPlan& p) {
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
    const Inputs<scalar_t> in(p);
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    acc_t* mp = mean.mutable_data_ptr<acc_t>();
    acc_t* sp = std.mutable_data_ptr<acc_t>();
    dispatch_act(p.act, [&](auto act) {
      dispatch_bool(p.noise.defined(), [&](auto noise) {
        constexpr int A = decltype(act)::value;
        constexpr bool NZ = decltype(noise)::value;
        if (p.channels_last) forward_nhwc<scalar_t, A, NZ>(in, yp, mp, sp);
        else forward_nchw<scalar_t, A, NZ>(in, yp, mp, sp);
      });
    });
  });
  return {y, mean, std};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_backward_cpu(const AdainPlan& p,
                                                                  const at::Tensor& gy,
                                                                  const at::Tensor& gmean,
                                                                  const at::Tensor& gstd,
                                                                  const at::Tensor& mean,
                                                                  const at::Tensor& std) {
  at::Tensor dz = at::empty_like(p.x);
  const auto stat_opts = p.x.options().dtype(opmath_of(p.x.scalar_type()));
  at::Tensor sg = at::zeros({p.N, p.C}, stat_opts);
  at::Tensor sgx = at::zeros({p.N, p.C}, stat_opts);
  if (p.N * p.C == 0 || p.L == 0) return {dz, sg, sgx};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "adain_grad_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Inputs<scalar_t> in(p);
    GradInputs<scalar_t> g{gy.defined() ? gy.const_data_ptr<scalar_t>() : nullptr,
                           gmean.defined() ? gmean.const_data_ptr<acc_t>() : nullptr,
                           gstd.defined() ? gstd.const_data_ptr<acc_t>() : nullptr,
                           mean.const_data_ptr<acc_t>(), std.const_data_ptr<acc_t>()};
    scalar_t* dp = dz.mutable_data_ptr<scalar_t>();
    acc_t* sgp = sg.mutable_data_ptr<acc_t>();
    acc_t* sgxp = sgx.mutable_data_ptr<acc_t>();
    dispatch_act(p.act, [&](auto act) {
      dispatch_bool(p.noise.defined(), [&](auto noise) {
        dispatch_bool(gy.defined(), [&](auto has_gy) {
          constexpr int A = decltype(act)::value;
          constexpr bool NZ = decltype(noise)::value;
          constexpr bool G = decltype(has_gy)::value;
          if (p.channels_last) backward_nhwc<scalar_t, A, NZ, G>(in, g, dp, sgp, sgxp);
          else backward_nchw<scalar_t, A, NZ, G>(in, g, dp, sgp, sgxp);
        });
      });
    });
  });
  return {dz, sg, sgx};
}

namespace {

std::string_view sv(c10::string_view s) { return std::string_view(s.data(), s.size()); }

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_cpu(
    const at::Tensor& x, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& style_scale, const std::optional<at::Tensor>& style_bias,
    c10::string_view act, double alpha, double eps) {
  AdainPlan p = plan_adain("adain", x, noise, noise_weight, bias, style_scale, style_bias, sv(act),
                           alpha, eps);
  return adain_forward_cpu(p);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_grad_cpu(
    const std::optional<at::Tensor>& gy, const std::optional<at::Tensor>& gmean,
    const std::optional<at::Tensor>& gstd, const at::Tensor& x,
    const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& style_scale,
    const at::Tensor& mean, const at::Tensor& std, c10::string_view act, double alpha) {
  AdainPlan p = plan_adain("adain_grad", x, noise, noise_weight, bias, style_scale, std::nullopt,
                           sv(act), alpha, 0.0);
  at::Tensor g = prepare_grad_y("adain_grad", gy, p);
  at::Tensor gm = prepare_row_stat("adain_grad", "gmean", gmean, p, false);
  at::Tensor gs = prepare_row_stat("adain_grad", "gstd", gstd, p, false);
  at::Tensor mu = prepare_row_stat("adain_grad", "mean", mean, p, true);
  at::Tensor sd = prepare_row_stat("adain_grad", "std", std, p, true);
  return adain_backward_cpu(p, g, gm, gs, mu, sd);
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("adain", &adain_cpu);
  m.impl("adain_grad", &adain_grad_cpu);
}

}  // namespace alae_fast
