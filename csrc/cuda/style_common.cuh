// Device helpers shared by the style-op kernels (adain.cu, modulate_weight.cu): the
// activation chosen at run time and block reductions (type conversions: cuda_convert.cuh).
// CUDA headers only, so the .cu files compile with nvcc alone.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "../common/activations.h"
#include "cuda_convert.cuh"
#include "launch_limits.cuh"

namespace alae_fast {
namespace style_cuda {

// The activation's ORDER-th derivative with the activation picked at run time: the switch is
// uniform across the grid, and memory, not arithmetic, bounds these kernels; one kernel per
// dtype instead of one per (dtype, activation) keeps nvcc's build time down.
template <int ORDER, typename A>
__device__ __forceinline__ A act_rt(int act, A z, A alpha) {
  switch (act) {
    case kLinear: return act_eval<kLinear, ORDER>(z, alpha);
    case kRelu: return act_eval<kRelu, ORDER>(z, alpha);
    case kLrelu: return act_eval<kLrelu, ORDER>(z, alpha);
    case kTanh: return act_eval<kTanh, ORDER>(z, alpha);
    case kSigmoid: return act_eval<kSigmoid, ORDER>(z, alpha);
    case kElu: return act_eval<kElu, ORDER>(z, alpha);
    case kSelu: return act_eval<kSelu, ORDER>(z, alpha);
    case kSoftplus: return act_eval<kSoftplus, ORDER>(z, alpha);
    default: return act_eval<kSwish, ORDER>(z, alpha);
  }
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sums each of v[0..NV) over the (1-D) block and gives every thread the totals.
// shared must hold NV * 32 values; blockDim.x must be a multiple of 32.
template <int NV, typename A>
__device__ __forceinline__ void block_sum(A (&v)[NV], A* shared) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    v[j] = warp_sum(v[j]);
    if (lane == 0) shared[j * 32 + wid] = v[j];
  }
  __syncthreads();
  if (wid == 0) {
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      A t = lane < nwarps ? shared[j * 32 + lane] : A(0);
      t = warp_sum(t);
      if (lane == 0) shared[j * 32] = t;
    }
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < NV; ++j) v[j] = shared[j * 32];
  __syncthreads();  // the caller may reuse shared
}

}  // namespace style_cuda
}  // namespace alae_fast
