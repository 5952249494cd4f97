// Launchers of the bias_act CUDA kernels: raw pointers only, so bias_act.cu compiles
// with nvcc without torch headers, and bias_act.cpp (g++) does the tensor work.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace alae_fast {

// y = bias_act_elem<act, order>(x + b[c], g) over n elements of a dense tensor seen in memory
// order as [outer, channels, inner]. b may be null (then channels/inner are ignored); g is
// read only when order > 0. dtype is a DType (csrc/common/dispatch.h). Returns the launch error.
cudaError_t bias_act_cuda_launch(int dtype, const void* x, const void* g, const void* b, void* y,
                                 int64_t n, int64_t channels, int64_t inner, int act, int order,
                                 double alpha, double gain, double clamp, bool has_clamp,
                                 cudaStream_t stream);

}  // namespace alae_fast
