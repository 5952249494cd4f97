// instance_norm_stats: the adain engine (csrc/ops/adain.h) with a linear activation and no
// noise, bias or style, returning the statistics as well as the normalised tensor.
#pragma once

#include <torch/library.h>

#include "adain.h"

namespace alae_fast {

// The adain plan of instance_norm_stats(x, eps); op names the op in messages.
AdainPlan plan_instance_norm_stats(std::string_view op, const at::Tensor& x, double eps);

// The registered ops' C++ signatures (schemas in instance_norm_stats.cpp), as
// csrc/autograd/op_handles.h calls them; the kernel templates below are of these types.
using InstanceNormStatsFn = AdainOutputs(const at::Tensor& x, double eps);
using InstanceNormStatsGradFn = at::Tensor(const std::optional<at::Tensor>& gy,
                                           const std::optional<at::Tensor>& gmean,
                                           const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                           const at::Tensor& mean, const at::Tensor& std);

// The kernels registered for one device (in csrc/cpu/adain.cpp and csrc/cuda/adain.cpp): one
// pass of that device's adain engine gives y, mean and std; one more (plus a reduction), dx.
template <AdainForwardEngine* Forward>
AdainOutputs instance_norm_stats_kernel(const at::Tensor& x, double eps) {
  return Forward(plan_instance_norm_stats("instance_norm_stats", x, eps));
}

template <AdainBackwardEngine* Backward>
at::Tensor instance_norm_stats_grad_kernel(const std::optional<at::Tensor>& gy,
                                           const std::optional<at::Tensor>& gmean,
                                           const std::optional<at::Tensor>& gstd, const at::Tensor& x,
                                           const at::Tensor& mean, const at::Tensor& std) {
  constexpr std::string_view op = "instance_norm_stats_grad";
  const AdainPlan p = plan_instance_norm_stats(op, x, 0.0);
  return run_adain_backward<Backward>(op, p, gy, gmean, gstd, mean, std).dz;
}

// Registers the adain engine's four ops for one device, from TORCH_LIBRARY_IMPL in
// csrc/cpu/adain.cpp and csrc/cuda/adain.cpp.
template <AdainForwardEngine* Forward, AdainBackwardEngine* Backward>
void register_adain_engine(torch::Library& m) {
  m.impl("adain", &adain_kernel<Forward>);
  m.impl("adain_grad", &adain_grad_kernel<Backward>);
  m.impl("instance_norm_stats", &instance_norm_stats_kernel<Forward>);
  m.impl("instance_norm_stats_grad", &instance_norm_stats_grad_kernel<Backward>);
}

}  // namespace alae_fast
