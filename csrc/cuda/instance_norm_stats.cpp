// CUDA registration of instance_norm_stats: the adain engine's kernels (csrc/cuda/adain.cu)
// with a linear activation and no noise, bias or style.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../ops/instance_norm_stats.h"

namespace alae_fast {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_stats_cuda(const at::Tensor& x, double eps) {
  return adain_forward_cuda(plan_instance_norm_stats("instance_norm_stats", x, eps));
}

at::Tensor instance_norm_stats_grad_cuda(const std::optional<at::Tensor>& gy,
                                         const std::optional<at::Tensor>& gmean,
                                         const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                         const at::Tensor& mean, const at::Tensor& std) {
  constexpr std::string_view op = "instance_norm_stats_grad";
  AdainPlan p = plan_instance_norm_stats(op, x, 0.0);
  return adain_backward_cuda(p, prepare_grad_y(op, gy, p), prepare_row_stat(op, "gmean", gmean, p, false),
                             prepare_row_stat(op, "gstd", gstd, p, false),
                             prepare_row_stat(op, "mean", mean, p, true),
                             prepare_row_stat(op, "std", std, p, true))
      .dz;
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  m.impl("instance_norm_stats", &instance_norm_stats_cuda);
  m.impl("instance_norm_stats_grad", &instance_norm_stats_grad_cuda);
}

}  // namespace alae_fast
