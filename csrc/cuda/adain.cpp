// CUDA registration of adain, adain_grad and instance_norm_stats, and the CUDA side of the adain engine
// they share: tensor checks and allocation here, the kernels in adain.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops/adain.h"
#include "../ops/instance_norm_stats.h"
#include "dtype_code.h"
#include "adain.cuh"

namespace alae_fast {
namespace {

const void* ptr(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

AdainCudaArgs args_of(const AdainPlan& p) {
  AdainCudaArgs a;
  a.dtype = dtype_code(p.x.scalar_type(), "adain");
  a.x = ptr(p.x);
  a.noise = ptr(p.noise);
  a.noise_weight = ptr(p.noise_weight);
  a.bias = ptr(p.bias);
  a.scale = ptr(p.scale);
  a.shift = ptr(p.shift);
  a.N = p.N;
  a.C = p.C;
  a.L = p.L;
  a.channels_last = p.channels_last;
  a.act = p.act;
  a.alpha = p.alpha;
  a.eps = p.eps;
  return a;
}

at::ScalarType opmath_of(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

at::Tensor workspace(const AdainCudaArgs& a, const at::Tensor& like, bool backward) {
  const size_t bytes = adain_cuda_workspace_bytes(a, backward);
  return at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
}

cudaStream_t stream_of(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_forward_cuda(const AdainPlan& p) {
  const c10::cuda::CUDAGuard guard(p.x.device());
  at::Tensor y = at::empty_like(p.x);
  const auto stat_opts = p.x.options().dtype(opmath_of(p.x.scalar_type()));
  at::Tensor mean = at::empty({p.N, p.C}, stat_opts);
  at::Tensor std = at::empty({p.N, p.C}, stat_opts);
  if (p.N * p.C > 0 && p.L == 0) {
    mean.fill_(NAN);
    std.fill_(NAN);
  }
  const AdainCudaArgs a = args_of(p);
  at::Tensor ws = workspace(a, p.x, false);
  C10_CUDA_CHECK(adain_forward_cuda_launch(a, y.mutable_data_ptr(), mean.mutable_data_ptr(),
                                           std.mutable_data_ptr(), ws.mutable_data_ptr(), stream_of(p.x)));
  return {y, mean, std};
}

AdainGrads adain_backward_cuda(const AdainPlan& p, const at::Tensor& gy, const at::Tensor& gmean,
                               const at::Tensor& gstd, const at::Tensor& mean, const at::Tensor& std) {
  const c10::cuda::CUDAGuard guard(p.x.device());
  const auto stat_opts = p.x.options().dtype(opmath_of(p.x.scalar_type()));
  AdainGrads o{at::empty_like(p.x), at::zeros({p.N, p.C}, stat_opts), at::zeros({p.N, p.C}, stat_opts),
               at::zeros({p.N, p.C}, stat_opts), at::zeros({p.N, p.C}, stat_opts)};
  const at::Tensor g = gy.defined() ? gy : at::zeros_like(p.x);
  const AdainCudaArgs a = args_of(p);
  at::Tensor ws = workspace(a, p.x, true);
  C10_CUDA_CHECK(adain_backward_cuda_launch(
      a, g.const_data_ptr(), ptr(gmean), ptr(gstd), mean.const_data_ptr(), std.const_data_ptr(),
      o.dz.mutable_data_ptr(), o.sum_g.mutable_data_ptr(), o.sum_gxhat.mutable_data_ptr(),
      o.sum_dz.mutable_data_ptr(), o.sum_dz_noise.mutable_data_ptr(), ws.mutable_data_ptr(), stream_of(p.x)));
  return o;
}

// instance_norm_stats is this engine with a linear activation and no noise, bias or style.
TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  register_adain_engine<adain_forward_cuda, adain_backward_cuda>(m);
}

}  // namespace alae_fast
