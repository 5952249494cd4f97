// Schema and argument checks of bias_act and its gradient op.
#include "bias_act.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <vector>

#include "../common/activations.h"

namespace alae_fast {

int parse_act(std::string_view act, std::string_view op) {
  static constexpr std::array<std::string_view, kNumActs> names = {
      "linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"};
  for (int i = 0; i < kNumActs; ++i) {
    if (names[i] == act) return i;
  }
  TORCH_CHECK_VALUE(false, std::string(op), ": act must be one of linear, relu, lrelu, tanh, sigmoid, elu, "
                    "selu, softplus, swish; got '", std::string(act), "'");
  return -1;
}

BiasActPlan plan_bias_act(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                          std::string_view act, double alpha, double gain,
                          std::optional<double> clamp) {
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()) &&
                       (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble ||
                        x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16),
                   "bias_act: x must be float16, bfloat16, float32 or float64; got ",
                   x.scalar_type());
  BiasActPlan p;
  p.act = parse_act(act);
  p.alpha = alpha;
  p.gain = gain;
  if (clamp.has_value()) {
    TORCH_CHECK_VALUE(*clamp >= 0, "bias_act: clamp must be >= 0 or None; got ", *clamp);
    p.has_clamp = !std::isinf(*clamp);
    p.clamp = *clamp;
  }
  const int64_t ndim = x.dim();
  if (ndim == 0) {
    TORCH_CHECK_VALUE(!(b.has_value() && b->defined()),
                      "bias_act: b needs x with at least one dimension");
    dim = 0;
  } else {
    TORCH_CHECK_VALUE(dim >= -ndim && dim < ndim, "bias_act: dim must be in [", -ndim, ", ",
                      ndim - 1, "] for x of rank ", ndim, "; got ", dim);
    if (dim < 0) dim += ndim;
  }
  p.dim = dim;
  p.x = x.is_non_overlapping_and_dense() ? x : x.contiguous(x.suggest_memory_format());
  if (b.has_value() && b->defined()) {
    const at::Tensor& bb = *b;
    TORCH_CHECK_VALUE(bb.dim() == 1 && bb.size(0) == x.size(dim),
                      "bias_act: b must be 1-D of length x.shape[dim] = ", x.size(dim),
                      "; got shape ", bb.sizes());
    TORCH_CHECK_TYPE(bb.scalar_type() == x.scalar_type(), "bias_act: b must have x's dtype ",
                     x.scalar_type(), "; got ", bb.scalar_type());
    TORCH_CHECK_VALUE(bb.device() == x.device(), "bias_act: b must be on x's device ", x.device(),
                      "; got ", bb.device());
    p.b = bb.contiguous();
    p.channels = x.size(dim);
    p.inner = ndim == 0 ? 1 : p.x.stride(dim);
    // A dimension of size 1 may carry any stride; its bias is one value for all elements.
    if (p.channels == 1) p.inner = p.x.numel();
  }
  return p;
}

void check_bias_act_grad(const at::Tensor& g, const at::Tensor& x, int64_t order) {
  TORCH_CHECK_VALUE(order >= 1 && order <= 3, "bias_act_grad: order must be 1, 2 or 3; got ", order);
  TORCH_CHECK_VALUE(g.sizes() == x.sizes(), "bias_act_grad: g must have x's shape ", x.sizes(),
                    "; got ", g.sizes());
  TORCH_CHECK_TYPE(g.scalar_type() == x.scalar_type(), "bias_act_grad: g must have x's dtype ",
                   x.scalar_type(), "; got ", g.scalar_type());
  TORCH_CHECK_VALUE(g.device() == x.device(), "bias_act_grad: g must be on x's device ",
                    x.device(), "; got ", g.device());
}

at::Tensor bias_grad_sum(const at::Tensor& dz, int64_t dim) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < dz.dim(); ++d) {
    if (d != dim) dims.push_back(d);
  }
  if (dims.empty()) return dz.clone();
  // Half types: torch's own sum already accumulates them in float32 and rounds once. Asking for a
  // float32 result instead (sum(dims, false, kFloat)) made the CPU copy the whole of dz to float32
  // first for NCHW layouts: 2x dz's size in extra memory (8 GB for a 4 GB float16 dz).
  return dz.sum(dims);
}

at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) return t;
  return at::empty_like(like).copy_(t);
}

TORCH_LIBRARY_FRAGMENT(alae_fast, m) {
  m.def(
      "bias_act(Tensor x, Tensor? b, int dim, str act, float alpha, float gain, float? clamp) "
      "-> Tensor");
  // (dz, db): dz = g * gain * act^(order)(x + b), zero where the forward clamp was active,
  // and db = dz summed over every dim but `dim` (shape [0] when b is None), fused where the
  // layout allows. order 1 is the backward of bias_act; the autograd of order k calls k + 1.
  m.def(
      "bias_act_grad(Tensor g, Tensor x, Tensor? b, int dim, str act, float alpha, float gain, "
      "float? clamp, int order) -> (Tensor, Tensor)");
}

}  // namespace alae_fast
