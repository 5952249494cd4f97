// Launchers of the modulate_weight CUDA kernels (raw pointers; modulate_weight.cpp prepares
// the tensors). weight [O, I, K], styles [N, I], w [N, O, I, K], d [N, O], all contiguous in
// the storage dtype; the backward's workspaces are in the computation dtype.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace alae_fast {

cudaError_t modulate_weight_cuda_launch(int dtype, const void* weight, const void* styles, int64_t N,
                                        int64_t O, int64_t I, int64_t K, double eps, void* w, void* d,
                                        cudaStream_t stream);

// gw, gd may be null (zero). gacc: [O, I, K] scratch; gs_part: [O, N, I], whose sum over O
// is the styles gradient (left to the caller's reduction).
cudaError_t modulate_weight_grad_cuda_launch(int dtype, const void* gw, const void* gd,
                                             const void* weight, const void* styles, const void* d,
                                             int64_t N, int64_t O, int64_t I, int64_t K, void* gweight,
                                             void* gacc, void* gs_part, cudaStream_t stream);

}  // namespace alae_fast
