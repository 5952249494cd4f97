// Autograd of instance_norm_stats, in C++ for the per-call cost (see csrc/autograd/bias_act.cpp).
// Any of the three outputs' cotangents may be absent (undefined, not materialised as zeros);
// the backward is instance_norm_stats_grad, whose Python autograd gives the double backward.
#include <torch/autograd.h>
#include <torch/library.h>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

class InstanceNormStatsFunction : public torch::autograd::Function<InstanceNormStatsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, std] = ops::instance_norm_stats(x, eps);
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({x, mean, std});
    return {y, mean, std};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<InstanceNormStatsFn>();
    if (!(grads[0].defined() || grads[1].defined() || grads[2].defined()) || !ctx->needs_input_grad(0)) return out;
    const auto saved = ctx->get_saved_variables();
    out[0] = ops::instance_norm_stats_grad(ops::opt(grads[0]), ops::opt(grads[1]), ops::opt(grads[2]), saved[0],
                                           saved[1], saved[2]);
    return out;
  }
};

ops::Tensor3 instance_norm_stats_autograd(const at::Tensor& x, double eps) {
  const auto out = InstanceNormStatsFunction::apply(x, eps);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("instance_norm_stats", &instance_norm_stats_autograd);
}

}  // namespace alae_fast
