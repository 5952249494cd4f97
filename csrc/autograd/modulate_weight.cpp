// Autograd of modulate_weight, in C++ for the per-call cost (see csrc/autograd/bias_act.cpp).
// Either output's cotangent may be absent; the backward is modulate_weight_grad, whose Python
// autograd gives the double backward.
#include <torch/autograd.h>
#include <torch/library.h>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

class ModulateWeightFunction : public torch::autograd::Function<ModulateWeightFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& styles,
                               double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [w, d] = ops::modulate_weight(weight, styles, eps);
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({weight, styles, d});
    return {w, d};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<ModulateWeightFn>();
    if (!(grads[0].defined() || grads[1].defined())) return out;
    const auto saved = ctx->get_saved_variables();
    auto [gweight, gstyles] =
        ops::modulate_weight_grad(ops::opt(grads[0]), ops::opt(grads[1]), saved[0], saved[1], saved[2]);
    if (ctx->needs_input_grad(0)) out[0] = gweight;
    if (ctx->needs_input_grad(1)) out[1] = gstyles;
    return out;
  }
};

std::tuple<at::Tensor, at::Tensor> modulate_weight_autograd(const at::Tensor& weight, const at::Tensor& styles,
                                                            double eps) {
  const auto out = ModulateWeightFunction::apply(weight, styles, eps);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("modulate_weight", &modulate_weight_autograd);
}

}  // namespace alae_fast
