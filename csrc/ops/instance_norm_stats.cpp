// Schema and argument checks of instance_norm_stats and its gradient op.
#include "instance_norm_stats.h"

#include <torch/library.h>

namespace alae_fast {

AdainPlan plan_instance_norm_stats(std::string_view op, const at::Tensor& x, double eps) {
  return plan_adain(op, x, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                    "linear", 0.0, eps);
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  // (y, mean, std): y = (x - mean) / std per (n, c) over H and W, std = sqrt(var + eps) with the
  // biased variance; mean and std are [N, C] in the computation dtype (float32 for half types).
  m.def("instance_norm_stats(Tensor x, float eps) -> (Tensor, Tensor, Tensor)");
  // dx given the cotangents of y, mean and std (each optional); mean and std are the forward's.
  m.def(
      "instance_norm_stats_grad(Tensor? gy, Tensor? gmean, Tensor? gstd, Tensor x, Tensor mean, "
      "Tensor std) -> Tensor");
}

}  // namespace alae_fast
