// CPU kernels of bias_act and bias_act_grad: at::parallel_for over memory-order blocks,
// inner loops over contiguous elements with compile-time activation and order, which
// the compiler vectorizes for the piecewise-linear activations.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/activations.h"
#include "../common/dispatch.h"
#include "../ops/bias_act.h"

namespace alae_fast {
namespace {

template <typename scalar_t, int ACT, int ORDER>
struct BiasActRow {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t alpha, gain, clamp;
  bool has_clamp;

  // One run of n contiguous elements sharing a single bias value.
  void same_bias(const scalar_t* x, const scalar_t* g, scalar_t* y, int64_t n, acc_t bias) const {
    for (int64_t i = 0; i < n; ++i) {
      acc_t gv = ORDER > 0 ? static_cast<acc_t>(g[i]) : acc_t(0);
      y[i] = static_cast<scalar_t>(bias_act_elem<ACT, ORDER>(static_cast<acc_t>(x[i]) + bias, gv,
                                                            alpha, gain, clamp, has_clamp));
    }
  }

  // One run of n contiguous elements with a bias value each (channels innermost).
  void per_elem_bias(const scalar_t* x, const scalar_t* g, const scalar_t* b, scalar_t* y,
                     int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      acc_t gv = ORDER > 0 ? static_cast<acc_t>(g[i]) : acc_t(0);
      acc_t z = static_cast<acc_t>(x[i]) + static_cast<acc_t>(b[i]);
      y[i] = static_cast<scalar_t>(bias_act_elem<ACT, ORDER>(z, gv, alpha, gain, clamp, has_clamp));
    }
  }
};

template <typename scalar_t, int ACT, int ORDER>
void bias_act_cpu_impl(const BiasActPlan& p, const scalar_t* x, const scalar_t* g, scalar_t* y) {
  using acc_t = at::opmath_type<scalar_t>;
  const BiasActRow<scalar_t, ACT, ORDER> row{static_cast<acc_t>(p.alpha), static_cast<acc_t>(p.gain),
                                             static_cast<acc_t>(p.clamp), p.has_clamp};
  const int64_t n = p.x.numel();
  const scalar_t* b = p.b.defined() ? p.b.const_data_ptr<scalar_t>() : nullptr;
  if (b == nullptr) {
    at::parallel_for(0, n, at::internal::GRAIN_SIZE, [&](int64_t lo, int64_t hi) {
      row.same_bias(x + lo, g ? g + lo : nullptr, y + lo, hi - lo, acc_t(0));
    });
    return;
  }
  const int64_t C = p.channels, inner = p.inner;
  if (inner == 1) {
    // channels_last with dim=1 (or bias on the last dim): each block of C elements takes b whole.
    const int64_t outer = n / C;
    const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / C);
    at::parallel_for(0, outer, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        row.per_elem_bias(x + o * C, g ? g + o * C : nullptr, b, y + o * C, C);
      }
    });
    return;
  }
  // Rows of `inner` contiguous elements, row r having channel r % C.
  const int64_t rows = n / inner;
  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / inner);
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t off = r * inner;
      row.same_bias(x + off, g ? g + off : nullptr, y + off, inner, static_cast<acc_t>(b[r % C]));
    }
  });
}

at::Tensor run(const BiasActPlan& p, const at::Tensor* g, int order) {
  at::Tensor y = at::empty_like(p.x);
  if (p.x.numel() == 0) return y;
  at::Tensor gc = g ? with_layout_of(*g, p.x) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "bias_act_cpu", [&] {
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g ? gc.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    dispatch_act(p.act, [&](auto act) {
      dispatch_order(order, [&](auto ord) {
        bias_act_cpu_impl<scalar_t, decltype(act)::value, decltype(ord)::value>(p, xp, gp, yp);
      });
    });
  });
  return y;
}

at::Tensor bias_act_cpu(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                        c10::string_view act, double alpha, double gain,
                        std::optional<double> clamp) {
  BiasActPlan p = plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp);
  return run(p, nullptr, 0);
}

at::Tensor bias_act_grad_cpu(const at::Tensor& g, const at::Tensor& x,
                             const std::optional<at::Tensor>& b, int64_t dim, c10::string_view act,
                             double alpha, double gain, std::optional<double> clamp,
                             int64_t order) {
  check_bias_act_grad(g, x, order);
  BiasActPlan p = plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp);
  return run(p, &g, static_cast<int>(order));
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("bias_act", &bias_act_cpu);
  m.impl("bias_act_grad", &bias_act_grad_cpu);
}

}  // namespace alae_fast
