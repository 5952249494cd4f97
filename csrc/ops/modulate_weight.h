// modulate_weight: StyleGAN2's per-sample weights w[n] = weight * styles[n] (over input
// channels), demodulated by d[n, o] = rsqrt(sum over (i, kh, kw) of w[n]^2 + eps), with d.
// Argument checks and the shapes the kernels see.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string_view>
#include <tuple>

namespace alae_fast {

// The registered ops' C++ signatures (schemas in modulate_weight.cpp), as
// csrc/autograd/op_handles.h calls them.
using ModulateWeightFn = std::tuple<at::Tensor, at::Tensor>(const at::Tensor& weight, const at::Tensor& styles,
                                                            double eps);
using ModulateWeightGradFn = std::tuple<at::Tensor, at::Tensor>(const std::optional<at::Tensor>& gw,
                                                                const std::optional<at::Tensor>& gd,
                                                                const at::Tensor& weight, const at::Tensor& styles,
                                                                const at::Tensor& d);

// weight [O, I, K] (K = kh*kw) and styles [N, I], both contiguous and of one floating dtype.
struct ModulatePlan {
  at::Tensor weight, styles;
  int64_t N = 0, O = 0, I = 0, K = 0;
  double eps = 0;
};

ModulatePlan plan_modulate_weight(std::string_view op, const at::Tensor& weight,
                                  const at::Tensor& styles, double eps);

// The gradient op's other inputs, checked against the plan and made contiguous: gw
// [N, O, I, kh, kw] and gd [N, O] (undefined when absent), d [N, O].
struct ModulateGradInputs {
  at::Tensor gw, gd, d;
};
ModulateGradInputs prepare_modulate_grad(std::string_view op, const ModulatePlan& p,
                                         const at::Tensor& weight, const std::optional<at::Tensor>& gw,
                                         const std::optional<at::Tensor>& gd, const at::Tensor& d);

}  // namespace alae_fast
