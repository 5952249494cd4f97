// Storage <-> computation type conversions, and the dispatch on a storage dtype, shared by every CUDA kernel: the half types and
// float compute in float, double in double. CUDA headers only, so .cu files compile with nvcc
// alone.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/dispatch.h"

namespace alae_fast {

template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <typename T> __device__ __forceinline__ typename Acc<T>::type to_acc(T v) {
  return static_cast<typename Acc<T>::type>(v);
}
template <> __device__ __forceinline__ float to_acc<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_acc<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <typename T, typename A> __device__ __forceinline__ T from_acc(A v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half from_acc<__half, float>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16, float>(float v) {
  return __float2bfloat16_rn(v);
}

// fn(T{}) for the storage type T of a DType code (dispatch.h), returning fn's cudaError_t;
// cudaErrorInvalidValue for an unknown code.
template <typename Fn>
cudaError_t dispatch_dtype(int dtype, Fn&& fn) {
  switch (dtype) {
    case kFloat32: return fn(float{});
    case kFloat64: return fn(double{});
    case kFloat16: return fn(__half{});
    case kBFloat16: return fn(__nv_bfloat16{});
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace alae_fast
