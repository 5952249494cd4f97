// bias_act: argument checks and the memory layout shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string_view>
#include <tuple>

namespace alae_fast {

// The registered ops' C++ signatures (schemas in bias_act.cpp): the kernels' types, and what
// csrc/autograd/op_handles.h calls the ops through.
using BiasActFn = at::Tensor(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                             c10::string_view act, double alpha, double gain, std::optional<double> clamp);
using BiasActGradFn = std::tuple<at::Tensor, at::Tensor>(const at::Tensor& g, const at::Tensor& x,
                                                         const std::optional<at::Tensor>& b, int64_t dim,
                                                         c10::string_view act, double alpha, double gain,
                                                         std::optional<double> clamp, int64_t order);

// A dense tensor seen in memory order as [outer, channels, inner] where channels is
// x.size(dim) and inner is x.stride(dim): true for contiguous, channels_last and any
// other permutation of a dense tensor, so one kernel serves every dense layout.
struct BiasActPlan {
  at::Tensor x;  // dense (non-overlapping), possibly a copy of the caller's tensor
  at::Tensor b;  // contiguous, or undefined when there is no bias
  int act = 0;
  int64_t dim = 0;  // normalised to [0, x.dim())
  int64_t channels = 1;
  int64_t inner = 1;
  double alpha = 0, gain = 1, clamp = 0;
  bool has_clamp = false;
};

// Maps an activation name to its id in csrc/common/activations.h; ValueError if unknown.
int parse_act(std::string_view act, std::string_view op = "bias_act");

BiasActPlan plan_bias_act(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                          std::string_view act, double alpha, double gain,
                          std::optional<double> clamp);

// Checks of bias_act_grad's g and order against x (ValueError/TypeError).
void check_bias_act_grad(const at::Tensor& g, const at::Tensor& x, int64_t order);

// The bias gradient of dz: dz summed over every dimension but dim, accumulated in float
// for half types, returned in dz's dtype.
at::Tensor bias_grad_sum(const at::Tensor& dz, int64_t dim);

// t with exactly like's strides (t itself when it already has them).
at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& like);

}  // namespace alae_fast
