// Autograd of adain, in C++ for the per-call cost (see csrc/autograd/bias_act.cpp). The
// backward is the adain_grad op (dz = dL/d(x + noise_weight*noise + bias) and the [N, C] row
// sums sum(gy), sum(gy*xhat), sum(dz), sum(dz*noise)), from which every input's gradient is a
// small reduction; all in differentiable ops, and adain_grad's Python autograd gives the double
// backward. Any of the three outputs' cotangents may be absent (undefined).
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "needs_grad.h"
#include "op_handles.h"

namespace alae_fast {
namespace {

// sum_c w[c] * t[:, c] of [N, C, H, W] t as [N, 1, H, W] (w absent: the plain sum over C,
// accumulated in float32 for half types). A batched matrix-vector product on t's own memory
// layout reads t once.
at::Tensor channel_dot(const at::Tensor& t, const at::Tensor& w) {
  const int64_t N = t.size(0), C = t.size(1), H = t.size(2), W = t.size(3);
  if (!w.defined()) {
    const bool half = t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
    return half ? t.sum({1}, true, at::kFloat).to(t.scalar_type()) : t.sum({1}, true);
  }
  if (t.is_contiguous()) {
    return at::bmm(w.view({1, 1, C}).expand({N, 1, C}), t.view({N, C, H * W})).view({N, 1, H, W});
  }
  if (t.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::bmm(t.permute({0, 2, 3, 1}).reshape({N, H * W, C}), w.view({1, C, 1}).expand({N, C, 1}))
        .view({N, 1, H, W});
  }
  return at::einsum("nchw,c->nhw", {t, w}).unsqueeze(1);
}

class AdainFunction : public torch::autograd::Function<AdainFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const ops::OptTensor& noise,
                               const ops::OptTensor& noise_weight, const ops::OptTensor& bias,
                               const ops::OptTensor& style_scale, const ops::OptTensor& style_bias,
                               c10::string_view act, double alpha, double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, std] = ops::adain(x, noise, noise_weight, bias, style_scale, style_bias, act, alpha, eps);
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({x, ops::or_undefined(noise), ops::or_undefined(noise_weight), ops::or_undefined(bias),
                            ops::or_undefined(style_scale), mean, std});
    ctx->saved_data["act"] = std::string(act.data(), act.size());
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["style_bias"] = style_bias.has_value();
    return {y, mean, std};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    SkipAutogradUnlessRecording skip;
    variable_list out = input_grads<AdainFn>();
    if (!(grads[0].defined() || grads[1].defined() || grads[2].defined())) return out;
    const auto s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &noise = s[1], &noise_weight = s[2], &bias = s[3], &style_scale = s[4];
    auto [dz, sg, sgx, sz, szn] = ops::adain_grad(
        ops::opt(grads[0]), ops::opt(grads[1]), ops::opt(grads[2]), x, ops::opt(noise), ops::opt(noise_weight),
        ops::opt(bias), ops::opt(style_scale), s[5], s[6], ctx->saved_data["act"].toStringRef(),
        ctx->saved_data["alpha"].toDouble());
    const std::initializer_list<bool> given = {true, noise.defined(), noise_weight.defined(), bias.defined(),
                                               style_scale.defined(), ctx->saved_data["style_bias"].toBool()};
    if (needs_grad(ctx, given, 0)) out[0] = dz;
    if (needs_grad(ctx, given, 1)) out[1] = channel_dot(dz, noise_weight);
    if (needs_grad(ctx, given, 2)) out[2] = szn.sum(0).to(dz.scalar_type());
    if (needs_grad(ctx, given, 3)) out[3] = sz.sum(0).to(dz.scalar_type());
    if (needs_grad(ctx, given, 4)) out[4] = sgx.to(x.scalar_type());
    if (needs_grad(ctx, given, 5)) out[5] = sg.to(x.scalar_type());
    return out;
  }
};

ops::Tensor3 adain_autograd(const at::Tensor& x, const ops::OptTensor& noise, const ops::OptTensor& noise_weight,
                            const ops::OptTensor& bias, const ops::OptTensor& style_scale,
                            const ops::OptTensor& style_bias, c10::string_view act, double alpha, double eps) {
  const auto out = AdainFunction::apply(x, noise, noise_weight, bias, style_scale, style_bias, act, alpha, eps);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, Autograd, m) {
  m.impl("adain", &adain_autograd);
}

}  // namespace alae_fast
