// CUDA registration of upfirdn2d: checks and layout on the host (shared with the CPU
// kernel), the kernels in upfirdn2d.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops/upfirdn2d.h"
#include "dtype_code.h"
#include "upfirdn2d.cuh"

namespace alae_fast {
namespace {

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const std::optional<at::Tensor>& f,
                          at::IntArrayRef up, at::IntArrayRef down, at::IntArrayRef padding,
                          bool flip_filter, double gain) {
  const UpFirDn2dPlan p = plan_upfirdn2d(x, f, up, down, padding, flip_filter, gain);
  const c10::cuda::CUDAGuard guard(p.x.device());
  at::Tensor y = upfirdn2d_empty_output(p);
  if (y.numel() == 0) return y;
  if (p.x.numel() == 0) return y.zero_();  // H or W is 0: only padding reaches the output
  UpFirDn2dCudaArgs a{};
  a.dtype = dtype_code(p.x.scalar_type(), "upfirdn2d");
  a.x = p.x.const_data_ptr();
  a.y = y.mutable_data_ptr();
  a.f = p.f.defined() ? p.f.const_data_ptr() : nullptr;
  a.separable = p.separable;
  a.flip_filter = p.flip_filter;
  a.channels_last = p.channels_last;
  a.gain = p.gain;
  a.N = p.N, a.C = p.C, a.H = p.H, a.W = p.W, a.Ho = p.Ho, a.Wo = p.Wo;
  a.ux = p.upx, a.uy = p.upy, a.dx = p.downx, a.dy = p.downy, a.px0 = p.padx0, a.py0 = p.pady0;
  a.fw = p.fw, a.fh = p.fh;
  C10_CUDA_CHECK(upfirdn2d_cuda_launch(a, c10::cuda::getCurrentCUDAStream(p.x.device().index()).stream()));
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(alae_fast, CUDA, m) {
  m.impl("upfirdn2d", &upfirdn2d_cuda);
}

}  // namespace alae_fast
