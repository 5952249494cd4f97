// Schema and argument checks of modulate_weight and its gradient op.
#include "modulate_weight.h"

#include <torch/library.h>

#include <cmath>
#include <string>
#include <vector>

namespace alae_fast {

ModulatePlan plan_modulate_weight(std::string_view op, const at::Tensor& weight,
                                  const at::Tensor& styles, double eps) {
  const std::string o(op);
  const auto t = weight.scalar_type();
  TORCH_CHECK_TYPE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16, o,
                   ": weight must be float16, bfloat16, float32 or float64; got ", t);
  TORCH_CHECK_VALUE(weight.dim() == 4, o, ": weight must be 4-D [O, I, kh, kw]; got shape ",
                    weight.sizes());
  TORCH_CHECK_VALUE(styles.dim() == 2 && styles.size(1) == weight.size(1), o,
                    ": styles must have shape [N, I] with I = weight.shape[1] = ", weight.size(1),
                    "; got ", styles.sizes());
  TORCH_CHECK_TYPE(styles.scalar_type() == t, o, ": styles must have weight's dtype ", t, "; got ",
                   styles.scalar_type());
  TORCH_CHECK_VALUE(styles.device() == weight.device(), o, ": styles must be on weight's device");
  TORCH_CHECK_VALUE(eps >= 0 && std::isfinite(eps), o, ": eps must be finite and >= 0; got ", eps);
  ModulatePlan p;
  p.weight = weight.contiguous();
  p.styles = styles.contiguous();
  p.N = styles.size(0);
  p.O = weight.size(0);
  p.I = weight.size(1);
  p.K = weight.size(2) * weight.size(3);
  p.eps = eps;
  return p;
}

ModulateGradInputs prepare_modulate_grad(std::string_view op, const ModulatePlan& p,
                                         const at::Tensor& weight, const std::optional<at::Tensor>& gw,
                                         const std::optional<at::Tensor>& gd, const at::Tensor& d) {
  const std::string o(op);
  const std::vector<int64_t> wshape = {p.N, p.O, p.I, weight.size(2), weight.size(3)};
  TORCH_CHECK_VALUE(d.sizes() == at::IntArrayRef({p.N, p.O}), o, ": d must have shape [N, O] = [", p.N, ", ",
                    p.O, "]; got ", d.sizes());
  TORCH_CHECK_TYPE(d.scalar_type() == weight.scalar_type(), o, ": d must have weight's dtype");
  TORCH_CHECK_VALUE(d.device() == weight.device(), o, ": d must be on weight's device");
  ModulateGradInputs g;
  g.d = d.contiguous();
  if (gw.has_value() && gw->defined()) {
    TORCH_CHECK_VALUE(gw->sizes() == at::IntArrayRef(wshape), o, ": gw must have shape ",
                      at::IntArrayRef(wshape), "; got ", gw->sizes());
    TORCH_CHECK_TYPE(gw->scalar_type() == weight.scalar_type(), o, ": gw must have weight's dtype");
    TORCH_CHECK_VALUE(gw->device() == weight.device(), o, ": gw must be on weight's device");
    g.gw = gw->contiguous();
  }
  if (gd.has_value() && gd->defined()) {
    TORCH_CHECK_VALUE(gd->sizes() == d.sizes(), o, ": gd must have d's shape; got ", gd->sizes());
    TORCH_CHECK_TYPE(gd->scalar_type() == weight.scalar_type(), o, ": gd must have weight's dtype");
    TORCH_CHECK_VALUE(gd->device() == weight.device(), o, ": gd must be on weight's device");
    g.gd = gd->contiguous();
  }
  return g;
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  // (w [N, O, I, kh, kw], d [N, O]): w = weight * styles[:, None, :, None, None] * d[..., None,
  // None, None] with d = rsqrt(sum((weight * styles)^2 over I, kh, kw) + eps); weight's dtype.
  m.def("modulate_weight(Tensor weight, Tensor styles, float eps) -> (Tensor, Tensor)");
  // (d weight, d styles) given the cotangents of w and d (each optional); d is the forward's.
  m.def(
      "modulate_weight_grad(Tensor? gw, Tensor? gd, Tensor weight, Tensor styles, Tensor d) "
      "-> (Tensor, Tensor)");
}

}  // namespace alae_fast
