// Launcher of the upfirdn2d CUDA kernels: raw pointers and plain sizes, so upfirdn2d.cu
// compiles with nvcc without torch headers, and upfirdn2d.cpp (g++) does the tensor work.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace alae_fast {

struct UpFirDn2dCudaArgs {
  int dtype;                // DType (csrc/common/dispatch.h) of x and y
  const void* x;            // [N, C, H, W], contiguous, or channels_last when channels_last
  void* y;                  // [N, C, Ho, Wo], same layout as x
  const void* f;            // taps on the device as given (not flipped), in x's accumulation
                            // type (float64 for float64 x, else float32), or null: identity
  bool separable;           // f is 1-D [fw] (fw == fh), applied along both axes
  bool flip_filter;         // apply f as a correlation rather than a convolution
  bool channels_last;
  double gain;
  int64_t N, C, H, W, Ho, Wo;
  int64_t ux, uy, dx, dy, px0, py0;
  int64_t fw, fh;
};

// y = upfirdn2d(x, f, ...) on `stream`; returns the launch error (cudaSuccess when fine).
cudaError_t upfirdn2d_cuda_launch(const UpFirDn2dCudaArgs& a, cudaStream_t stream);

}  // namespace alae_fast
