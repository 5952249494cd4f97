// CPU registration of instance_norm_stats: one pass of the adain engine computes y, mean and
// std together, and one more pass (plus a reduction) gives dx.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../ops/instance_norm_stats.h"

namespace alae_fast {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_stats_cpu(const at::Tensor& x, double eps) {
  return adain_forward_cpu(plan_instance_norm_stats("instance_norm_stats", x, eps));
}

at::Tensor instance_norm_stats_grad_cpu(const std::optional<at::Tensor>& gy,
                                        const std::optional<at::Tensor>& gmean,
                                        const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                        const at::Tensor& mean, const at::Tensor& std) {
  constexpr std::string_view op = "instance_norm_stats_grad";
  AdainPlan p = plan_instance_norm_stats(op, x, 0.0);
  at::Tensor g = prepare_grad_y(op, gy, p);
  at::Tensor gm = prepare_row_stat(op, "gmean", gmean, p, false);
  at::Tensor gs = prepare_row_stat(op, "gstd", gstd, p, false);
  at::Tensor mu = prepare_row_stat(op, "mean", mean, p, true);
  at::Tensor sd = prepare_row_stat(op, "std", std, p, true);
  return adain_backward_cpu(p, g, gm, gs, mu, sd).dz;
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CPU, m) {
  m.impl("instance_norm_stats", &instance_norm_stats_cpu);
  m.impl("instance_norm_stats_grad", &instance_norm_stats_grad_cpu);
}

}  // namespace alae_fast
