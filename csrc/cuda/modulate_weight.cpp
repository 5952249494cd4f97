// CUDA registration of modulate_weight and modulate_weight_grad (kernels in modulate_weight.cu).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops/modulate_weight.h"
#include "dtype_code.h"
#include "modulate_weight.cuh"

namespace alae_fast {
namespace {

at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

cudaStream_t stream_of(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

std::tuple<at::Tensor, at::Tensor> modulate_weight_cuda(const at::Tensor& weight, const at::Tensor& styles,
                                                        double eps) {
  ModulatePlan p = plan_modulate_weight("modulate_weight", weight, styles, eps);
  const c10::cuda::CUDAGuard guard(weight.device());
  at::Tensor w = at::empty({p.N, p.O, p.I, weight.size(2), weight.size(3)}, p.weight.options());
  at::Tensor d = at::empty({p.N, p.O}, p.weight.options());
  C10_CUDA_CHECK(modulate_weight_cuda_launch(dtype_code(weight.scalar_type(), "modulate_weight"), p.weight.const_data_ptr(),
                                             p.styles.const_data_ptr(), p.N, p.O, p.I, p.K, p.eps,
                                             w.mutable_data_ptr(), d.mutable_data_ptr(), stream_of(weight)));
  return {w, d};
}

std::tuple<at::Tensor, at::Tensor> modulate_weight_grad_cuda(const std::optional<at::Tensor>& gw,
                                                             const std::optional<at::Tensor>& gd,
                                                             const at::Tensor& weight,
                                                             const at::Tensor& styles, const at::Tensor& d) {
  constexpr std::string_view op = "modulate_weight_grad";
  ModulatePlan p = plan_modulate_weight(op, weight, styles, 0.0);
  const ModulateGradInputs g = prepare_modulate_grad(op, p, weight, gw, gd, d);
  const c10::cuda::CUDAGuard guard(weight.device());
  const auto acc_opts = p.weight.options().dtype(opmath_of(weight.scalar_type()));
  at::Tensor gweight = at::empty_like(p.weight);
  // No samples: the gradient is exactly zero, as on the CPU. The kernel would write
  // 0 - W * 0, which is NaN wherever the weight is inf or NaN.
  if (p.N == 0) return {gweight.zero_(), at::zeros({0, p.I}, p.weight.options())};
  at::Tensor gacc = at::empty({p.O, p.I, p.K}, acc_opts);
  at::Tensor part = at::empty({p.O, p.N, p.I}, acc_opts);
  C10_CUDA_CHECK(modulate_weight_grad_cuda_launch(
      dtype_code(weight.scalar_type(), "modulate_weight"), g.gw.defined() ? g.gw.const_data_ptr() : nullptr,
      g.gd.defined() ? g.gd.const_data_ptr() : nullptr, p.weight.const_data_ptr(), p.styles.const_data_ptr(),
      g.d.const_data_ptr(), p.N, p.O, p.I, p.K, gweight.mutable_data_ptr(), gacc.mutable_data_ptr(),
      part.mutable_data_ptr(), stream_of(weight)));
  // The styles gradient sums the per-o partial rows: ATen's tuned reduction.
  at::Tensor gstyles = p.O > 0 ? part.sum(0) : at::zeros({p.N, p.I}, acc_opts);
  return {gweight, gstyles.to(weight.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  m.impl("modulate_weight", &modulate_weight_cuda);
  m.impl("modulate_weight_grad", &modulate_weight_grad_cuda);
}

}  // namespace alae_fast
