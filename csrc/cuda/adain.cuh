// Launchers of the adain / instance_norm_stats CUDA kernels: raw pointers only, so adain.cu
// compiles with nvcc without torch headers; adain.cpp (g++) prepares the tensors.
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

namespace alae_fast {

// Pointers of one adain call. x, y, gy, dz are [N, C, H, W] in NCHW-contiguous memory or,
// with channels_last, [N, H, W, C]; noise [N, L]; noise_weight, bias [C]; scale, shift [N, C]
// (storage dtype, null when absent); mean, std and the [N, C] sums in the computation dtype
// (float32 for the half types).
struct AdainCudaArgs {
  int dtype = 0;  // DType (csrc/common/dispatch.h)
  const void* x = nullptr;
  const void* noise = nullptr;
  const void* noise_weight = nullptr;
  const void* bias = nullptr;
  const void* scale = nullptr;
  const void* shift = nullptr;
  int64_t N = 0, C = 0, L = 0;
  bool channels_last = false;
  int act = 0;
  double alpha = 0, eps = 0;
};

// Bytes of scratch the launchers need (partial sums and per-row coefficients).
size_t adain_cuda_workspace_bytes(const AdainCudaArgs& a, bool backward);

// y, mean, std. Returns the launch error.
cudaError_t adain_forward_cuda_launch(const AdainCudaArgs& a, void* y, void* mean, void* std,
                                      void* workspace, cudaStream_t stream);

// dz and the row sums sum(gy), sum(gy * xhat), sum(dz), sum(dz * noise), given gy (never
// null), gmean and gstd (null: zero), and the forward's mean and std.
cudaError_t adain_backward_cuda_launch(const AdainCudaArgs& a, const void* gy, const void* gmean,
                                       const void* gstd, const void* mean, const void* std, void* dz,
                                       void* sum_g, void* sum_gxhat, void* sum_dz,
                                       void* sum_dz_noise, void* workspace, cudaStream_t stream);

}  // namespace alae_fast
