// Helpers of the C++ autograd Functions here: which inputs need a gradient (by argument
// position), the list a backward returns, and skipping autograd where no graph is recorded.
#pragma once

#include <c10/util/TypeTraits.h>
#include <torch/autograd.h>

#include <initializer_list>
#include <optional>

namespace alae_fast {

// The autograd Function API every file here writes against.
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// AutogradContext::needs_input_grad counts only the tensor arguments actually given: an
// absent optional tensor is no input of the graph node. `present` lists, for each tensor
// argument in order, whether it was given; `arg` indexes that list.
inline bool needs_grad(const AutogradContext* ctx, std::initializer_list<bool> present, size_t arg) {
  size_t edge = 0, i = 0;
  for (bool p : present) {
    if (i == arg) return p && ctx->needs_input_grad(edge);
    edge += p ? 1 : 0;
    ++i;
  }
  return false;
}

// What the backward of an op of signature Fn returns: one slot per argument of the op
// (undefined: no gradient), filled by position.
template <typename Fn>
variable_list input_grads() {
  return variable_list(c10::guts::infer_function_traits_t<Fn>::number_of_parameters);
}

// Put at the top of a backward: unless it is recording a graph (create_graph), the ops it
// calls go straight to their kernels. The _grad ops' autograd is Python and would otherwise
// cost a Python round trip per call for a graph nobody keeps.
class SkipAutogradUnlessRecording {
 public:
  SkipAutogradUnlessRecording() {
    if (!at::GradMode::is_enabled()) guard_.emplace();
  }

 private:
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard_;
};

}  // namespace alae_fast
