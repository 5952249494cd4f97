// CPU kernels of modulate_weight and modulate_weight_grad. One task per output channel o:
// weight[o] (I*K values) stays in cache while every sample's modulated row is written (or,
// in the backward, read), so each of the N*O*I*K per-sample values is touched exactly once.
//
// Math (m = weight * s, w = m * d, d = rsqrt(sum m^2 + eps); per (n, o), sums over i, k):
//   forward:  d = rsqrt(sum_i s_i^2 * Wsq_i + eps) with Wsq_i = sum_k W_ik^2
//   backward: P_i = sum_k W_ik gw_ik, T = sum_i s_i P_i (= sum gw * m), c = (gd + T) d^3,
//             gm = gw d - c m, so
//             dW_ik = sum_n [s_i d gw_ik] - W_ik * sum_n c s_i^2
//             ds_i  = sum_o [d P_i - c s_i Wsq_i]
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../ops/modulate_weight.h"

namespace alae_fast {
namespace {

// wsq[i] = sum over k of Wo[i, k]^2, for one output channel's weight Wo [I, K].
template <typename scalar_t, typename acc_t>
inline void squared_norms(const scalar_t* __restrict__ Wo, int64_t I, int64_t K, acc_t* wsq) {
  for (int64_t i = 0; i < I; ++i) {
    acc_t q = 0;
    for (int64_t k = 0; k < K; ++k) q += static_cast<acc_t>(Wo[i * K + k]) * static_cast<acc_t>(Wo[i * K + k]);
    wsq[i] = q;
  }
}

template <typename scalar_t>
void forward_impl(const ModulatePlan& p, scalar_t* w, scalar_t* dco) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = p.N, O = p.O, I = p.I, K = p.K;
  const scalar_t* W = p.weight.const_data_ptr<scalar_t>();
  const scalar_t* S = p.styles.const_data_ptr<scalar_t>();
  const acc_t eps = static_cast<acc_t>(p.eps);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(N * I * K, 1));
  at::parallel_for(0, O, grain, [&](int64_t lo, int64_t hi) {
    std::vector<acc_t> wsq(I);
    for (int64_t o = lo; o < hi; ++o) {
      const scalar_t* __restrict__ Wo = W + o * I * K;
      squared_norms(Wo, I, K, wsq.data());
      for (int64_t n = 0; n < N; ++n) {
        const scalar_t* __restrict__ sn = S + n * I;
        acc_t q = 0;
        for (int64_t i = 0; i < I; ++i) {
          const acc_t sv = static_cast<acc_t>(sn[i]);
          q += sv * sv * wsq[i];
        }
        const acc_t d = acc_t(1) / std::sqrt(q + eps);
        dco[n * O + o] = static_cast<scalar_t>(d);
        scalar_t* __restrict__ out = w + (n * O + o) * I * K;
        if (K == 1) {
          for (int64_t i = 0; i < I; ++i)
            out[i] = static_cast<scalar_t>(static_cast<acc_t>(Wo[i]) * static_cast<acc_t>(sn[i]) * d);
        } else {
          for (int64_t i = 0; i < I; ++i) {
            const acc_t f = static_cast<acc_t>(sn[i]) * d;
            for (int64_t k = 0; k < K; ++k)
              out[i * K + k] = static_cast<scalar_t>(static_cast<acc_t>(Wo[i * K + k]) * f);
          }
        }
      }
    }
  });
}

// gw (or null: zero), gd (or null: zero); writes gweight [O, I, K] and gstyles [N, I].
template <typename scalar_t>
void backward_impl(const ModulatePlan& p, const scalar_t* gw, const scalar_t* gd, const scalar_t* dco,
                   scalar_t* gweight, at::Tensor& gstyles_acc) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t N = p.N, O = p.O, I = p.I, K = p.K;
  const scalar_t* W = p.weight.const_data_ptr<scalar_t>();
  const scalar_t* S = p.styles.const_data_ptr<scalar_t>();
  // The styles gradient sums over o: each block of output channels keeps its own partial
  // sum, added up at the end (deterministic, no atomics).
  const int64_t blocks = std::min<int64_t>(O, std::max<int64_t>(1, 4 * at::get_num_threads()));
  at::Tensor part = at::zeros({blocks, N, I}, p.weight.options().dtype(gstyles_acc.scalar_type()));
  acc_t* partp = part.mutable_data_ptr<acc_t>();
  at::parallel_for(0, blocks, 1, [&](int64_t blo, int64_t bhi) {
    std::vector<acc_t> wsq(I), P(I), E(I), acc(I * K);
    for (int64_t blk = blo; blk < bhi; ++blk) {
      const int64_t o0 = blk * O / blocks, o1 = (blk + 1) * O / blocks;
      acc_t* gs = partp + blk * N * I;
      for (int64_t o = o0; o < o1; ++o) {
        const scalar_t* __restrict__ Wo = W + o * I * K;
        squared_norms(Wo, I, K, wsq.data());
        std::fill(E.begin(), E.end(), acc_t(0));
        std::fill(acc.begin(), acc.end(), acc_t(0));
        for (int64_t n = 0; n < N; ++n) {
          const scalar_t* __restrict__ sn = S + n * I;
          const acc_t d = static_cast<acc_t>(dco[n * O + o]);
          acc_t T = 0;
          if (gw) {
            const scalar_t* __restrict__ g = gw + (n * O + o) * I * K;
            for (int64_t i = 0; i < I; ++i) {
              const acc_t sd = static_cast<acc_t>(sn[i]) * d;
              acc_t pi = 0;
              for (int64_t k = 0; k < K; ++k) {
                const acc_t gv = static_cast<acc_t>(g[i * K + k]);
                pi += static_cast<acc_t>(Wo[i * K + k]) * gv;
                acc[i * K + k] += sd * gv;
              }
              P[i] = pi;
              T += static_cast<acc_t>(sn[i]) * pi;
            }
          }
          const acc_t gdv = gd ? static_cast<acc_t>(gd[n * O + o]) : acc_t(0);
          const acc_t c = (gdv + T) * d * d * d;
          acc_t* __restrict__ gsn = gs + n * I;
          for (int64_t i = 0; i < I; ++i) {
            const acc_t sv = static_cast<acc_t>(sn[i]);
            E[i] += c * sv * sv;
            gsn[i] += (gw ? d * P[i] : acc_t(0)) - c * sv * wsq[i];
          }
        }
        scalar_t* __restrict__ gWo = gweight + o * I * K;
        for (int64_t i = 0; i < I; ++i)
          for (int64_t k = 0; k < K; ++k)
            gWo[i * K + k] = static_cast<scalar_t>(acc[i * K + k] - static_cast<acc_t>(Wo[i * K + k]) * E[i]);
      }
    }
  });
  gstyles_acc = part.sum(0);
}

at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

std::tuple<at::Tensor, at::Tensor> modulate_weight_cpu(const at::Tensor& weight, const at::Tensor& styles,
                                                       double eps) {
  ModulatePlan p = plan_modulate_weight("modulate_weight", weight, styles, eps);
  at::Tensor w = at::empty({p.N, p.O, p.I, weight.size(2), weight.size(3)}, p.weight.options());
  at::Tensor d = at::empty({p.N, p.O}, p.weight.options());
  if (w.numel() == 0 && d.numel() == 0) return {w, d};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.weight.scalar_type(), "modulate_weight_cpu", [&] {
    forward_impl<scalar_t>(p, w.mutable_data_ptr<scalar_t>(), d.mutable_data_ptr<scalar_t>());
  });
  return {w, d};
}

std::tuple<at::Tensor, at::Tensor> modulate_weight_grad_cpu(const std::optional<at::Tensor>& gw,
                                                            const std::optional<at::Tensor>& gd,
                                                            const at::Tensor& weight,
                                                            const at::Tensor& styles,
                                                            const at::Tensor& d) {
  constexpr std::string_view op = "modulate_weight_grad";
  ModulatePlan p = plan_modulate_weight(op, weight, styles, 0.0);
  const ModulateGradInputs g = prepare_modulate_grad(op, p, weight, gw, gd, d);
  const at::Tensor &gwc = g.gw, &gdc = g.gd, &dc = g.d;
  at::Tensor gweight = at::empty_like(p.weight);
  at::Tensor gstyles = at::zeros({p.N, p.I}, p.weight.options().dtype(opmath_of(weight.scalar_type())));
  if (p.O == 0 || p.N == 0) {
    gweight.zero_();
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.weight.scalar_type(), "modulate_weight_grad_cpu", [&] {
      backward_impl<scalar_t>(p, gwc.defined() ? gwc.const_data_ptr<scalar_t>() : nullptr,
                              gdc.defined() ? gdc.const_data_ptr<scalar_t>() : nullptr,
                              dc.const_data_ptr<scalar_t>(), gweight.mutable_data_ptr<scalar_t>(), gstyles);
    });
  }
  return {gweight.view(weight.sizes()), gstyles.to(weight.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("modulate_weight", &modulate_weight_cpu);
  m.impl("modulate_weight_grad", &modulate_weight_grad_cpu);
}

}  // namespace alae_fast
