// Schema and argument checks of adain and its gradient op.
#include "adain.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <string>

#include "bias_act.h"

namespace alae_fast {

namespace {

bool is_float_type(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

// An optional input of x's dtype and device with an exact shape; returned contiguous.
at::Tensor take(std::string_view op, const char* name, const std::optional<at::Tensor>& t,
                const at::Tensor& x, at::IntArrayRef shape, const char* shape_text) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  TORCH_CHECK_VALUE(t->sizes() == shape, std::string(op), ": ", name, " must have shape ",
                    shape_text, " = ", shape, "; got ", t->sizes());
  TORCH_CHECK_TYPE(t->scalar_type() == x.scalar_type(), std::string(op), ": ", name,
                   " must have x's dtype ", x.scalar_type(), "; got ", t->scalar_type());
  TORCH_CHECK_VALUE(t->device() == x.device(), std::string(op), ": ", name,
                    " must be on x's device ", x.device(), "; got ", t->device());
  return t->contiguous();
}

}  // namespace

AdainPlan plan_adain(std::string_view op, const at::Tensor& x, const std::optional<at::Tensor>& noise,
                     const std::optional<at::Tensor>& noise_weight,
                     const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& scale,
                     const std::optional<at::Tensor>& shift, std::string_view act, double alpha,
                     double eps) {
  const std::string o(op);
  TORCH_CHECK_TYPE(is_float_type(x.scalar_type()), o,
                   ": x must be float16, bfloat16, float32 or float64; got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() == 4, o, ": x must be 4-D [N, C, H, W]; got shape ", x.sizes());
  TORCH_CHECK_VALUE(eps >= 0 && std::isfinite(eps), o, ": eps must be finite and >= 0; got ", eps);
  AdainPlan p;
  p.act = parse_act(act, o);
  p.alpha = alpha;
  p.eps = eps;
  p.N = x.size(0);
  p.C = x.size(1);
  p.L = x.size(2) * x.size(3);
  if (x.is_contiguous()) {
    p.x = x;
  } else if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    p.x = x;
    p.channels_last = true;
  } else {
    p.x = x.contiguous();
  }
  const int64_t N = p.N, C = p.C;
  p.noise = take(op, "noise", noise, x, {N, 1, x.size(2), x.size(3)}, "[N, 1, H, W]");
  if (p.noise.defined()) p.noise = p.noise.view({N, p.L});
  p.noise_weight = take(op, "noise_weight", noise_weight, x, {C}, "[C]");
  TORCH_CHECK_VALUE(!p.noise_weight.defined() || p.noise.defined(), o,
                    ": noise_weight was given without noise");
  p.bias = take(op, "bias", bias, x, {C}, "[C]");
  p.scale = take(op, "style_scale", scale, x, {N, C}, "[N, C]");
  p.shift = take(op, "style_bias", shift, x, {N, C}, "[N, C]");
  return p;
}

at::Tensor prepare_grad_y(std::string_view op, const std::optional<at::Tensor>& gy, const AdainPlan& p) {
  if (!gy.has_value() || !gy->defined()) return at::Tensor();
  TORCH_CHECK_VALUE(gy->sizes() == p.x.sizes(), std::string(op), ": gy must have x's shape ",
                    p.x.sizes(), "; got ", gy->sizes());
  TORCH_CHECK_TYPE(gy->scalar_type() == p.x.scalar_type(), std::string(op),
                   ": gy must have x's dtype ", p.x.scalar_type(), "; got ", gy->scalar_type());
  TORCH_CHECK_VALUE(gy->device() == p.x.device(), std::string(op), ": gy must be on x's device");
  return with_layout_of(*gy, p.x);
}

at::Tensor prepare_row_stat(std::string_view op, const char* name,
                            const std::optional<at::Tensor>& t, const AdainPlan& p, bool required) {
  if (!t.has_value() || !t->defined()) {
    TORCH_CHECK_VALUE(!required, std::string(op), ": ", name, " is required");
    return at::Tensor();
  }
  const at::ScalarType want = opmath_of(p.x.scalar_type());
  TORCH_CHECK_VALUE(t->sizes() == at::IntArrayRef({p.N, p.C}), std::string(op), ": ", name,
                    " must have shape [N, C] = [", p.N, ", ", p.C, "]; got ", t->sizes());
  TORCH_CHECK_TYPE(t->scalar_type() == want, std::string(op), ": ", name, " must have dtype ",
                   want, " (the computation dtype of x); got ", t->scalar_type());
  TORCH_CHECK_VALUE(t->device() == p.x.device(), std::string(op), ": ", name,
                    " must be on x's device");
  return t->contiguous();
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  // y = IN(act(x + noise_weight * noise + bias)) * (1 + style_scale) + style_bias, and the
  // per-(n, c) mean and std of act(...) (computation dtype) for the backward.
  m.def(
      "adain(Tensor x, Tensor? noise, Tensor? noise_weight, Tensor? bias, Tensor? style_scale, "
      "Tensor? style_bias, str act, float alpha, float eps) -> (Tensor, Tensor, Tensor)");
  // (dz, sum(gy), sum(gy * xhat), sum(dz), sum(dz * noise)) given the cotangents of y, mean
  // and std, each optional; the sums are over H and W, [N, C] (see AdainGrads).
  // mean and std are inputs here (the forward's outputs): the op's own autograd gives their
  // partial derivatives, and autograd chains them through the forward's mean/std outputs.
  m.def(
      "adain_grad(Tensor? gy, Tensor? gmean, Tensor? gstd, Tensor x, Tensor? noise, "
      "Tensor? noise_weight, Tensor? bias, Tensor? style_scale, Tensor mean, Tensor std, str act, "
      "float alpha) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

}  // namespace alae_fast
