// CUDA registration of bias_act and bias_act_grad: tensor checks and layout on the host,
// the kernels in bias_act.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops/bias_act.h"
#include "dtype_code.h"
#include "bias_act.cuh"

namespace alae_fast {
namespace {

at::Tensor run_kernel(const BiasActPlan& p, const at::Tensor* g, int order) {
  const c10::cuda::CUDAGuard guard(p.x.device());
  at::Tensor y = at::empty_like(p.x);
  at::Tensor gc = g ? with_layout_of(*g, p.x) : at::Tensor();
  C10_CUDA_CHECK(bias_act_cuda_launch(
      dtype_code(p.x.scalar_type(), "bias_act"), p.x.const_data_ptr(), g ? gc.const_data_ptr() : nullptr,
      p.b.defined() ? p.b.const_data_ptr() : nullptr, y.mutable_data_ptr(), p.x.numel(),
      p.channels, p.inner, p.act, order, p.alpha, p.gain, p.clamp, p.has_clamp,
      c10::cuda::getCurrentCUDAStream(p.x.device().index()).stream()));
  return y;
}

at::Tensor bias_act_cuda(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                         c10::string_view act, double alpha, double gain,
                         std::optional<double> clamp) {
  return run_kernel(
      plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp),
      nullptr, 0);
}

std::tuple<at::Tensor, at::Tensor> bias_act_grad_cuda(
    const at::Tensor& g, const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
    c10::string_view act, double alpha, double gain, std::optional<double> clamp, int64_t order) {
  check_bias_act_grad(g, x, order);
  BiasActPlan p = plan_bias_act(x, b, dim, std::string_view(act.data(), act.size()), alpha, gain, clamp);
  at::Tensor dz = run_kernel(p, &g, static_cast<int>(order));
  // The bias reduction is left to ATen's tuned CUDA reductions.
  at::Tensor db = p.b.defined() ? bias_grad_sum(dz, p.dim) : at::empty({0}, dz.options());
  return {dz, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  m.impl("bias_act", &bias_act_cuda);
  m.impl("bias_act_grad", &bias_act_grad_cuda);
}

}  // namespace alae_fast
