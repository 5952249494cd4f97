// Autograd of bias_act, in C++ (as torchvision registers its ops' autograd): the Python
// registration (torch.library.register_autograd) cost about 50 us per call with gradients
// (autograd.Function.apply, the schema's default-filling, the Python backward), several times
// the kernel on the small tensors of mapping networks, discriminators and 4x4-16x16 layers.
// The backward calls the bias_act_grad op, whose own autograd (Python, alae_fast/ops/
// bias_act.py) gives the double backward R1 needs.
#include <torch/autograd.h>
#include <torch/library.h>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

class BiasActFunction : public torch::autograd::Function<BiasActFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const std::optional<at::Tensor>& b,
                            int64_t dim, c10::string_view act, double alpha, double gain,
                            std::optional<double> clamp) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor y = ops::bias_act(x, b, dim, act, alpha, gain, clamp);
    ctx->save_for_backward({x, ops::or_undefined(b)});
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["act"] = std::string(act.data(), act.size());
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["gain"] = gain;
    ctx->saved_data["clamp"] = clamp.has_value() ? c10::IValue(*clamp) : c10::IValue();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const ops::OptTensor b = ops::opt(saved[1]);
    const at::Tensor& dy = grads[0];
    variable_list out = input_grads<BiasActFn>();  // x, b, then the configuration
    const bool need_x = needs_grad(ctx, {true, b.has_value()}, 0), need_b = needs_grad(ctx, {true, b.has_value()}, 1);
    if (dy.defined() && (need_x || need_b)) {
      const c10::IValue& clamp = ctx->saved_data["clamp"];
      const std::string& act = ctx->saved_data["act"].toStringRef();
      // A linear activation's gradient is dy * gain (under clamp's mask): it does not depend on x
      // or b, so a second-order backward must leave them no gradient (None, as PyTorch's own
      // add/mul/clamp and NVlabs' bias_act do), not a zero one: Adam steps a parameter with a
      // zero gradient and skips one with None. x and b enter only for the clamp mask.
      const bool linear = act == "linear";
      auto [dz, dbias] = ops::bias_act_grad(
          dy, linear ? x.detach() : x, linear && b.has_value() ? ops::opt(b->detach()) : b,
          ctx->saved_data["dim"].toInt(), act,
          ctx->saved_data["alpha"].toDouble(), ctx->saved_data["gain"].toDouble(),
          clamp.isNone() ? std::nullopt : std::optional<double>(clamp.toDouble()), 1);
      if (need_x) out[0] = dz;
      if (need_b) out[1] = dbias;
    }
    return out;
  }
};

at::Tensor bias_act_autograd(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                             c10::string_view act, double alpha, double gain, std::optional<double> clamp) {
  return BiasActFunction::apply(x, b, dim, act, alpha, gain, clamp);
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("bias_act", &bias_act_autograd);
}

}  // namespace alae_fast
