// CUDA kernels of modulate_weight (the math: csrc/cpu/modulate_weight.cpp's header comment).
// Forward: one block per (o, n) reduces sum((W s)^2) and writes the row. Backward: one block
// per output channel o walks the samples, so its gradient row dW[o] is owned by the block
// (no atomics); each thread owns input channels i, and the styles gradient leaves one
// partial row per o.
#include <stdint.h>

#include "../common/dispatch.h"
#include "modulate_weight.cuh"
#include "style_common.cuh"

namespace alae_fast {
namespace {

using namespace style_cuda;

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) modulate_fwd(const T* __restrict__ W, const T* __restrict__ S,
                                                         int64_t O, int64_t I, int64_t K,
                                                         typename Acc<T>::type eps, T* __restrict__ w,
                                                         T* __restrict__ d) {
  using A = typename Acc<T>::type;
  __shared__ A shared[32];
  const int64_t o = blockIdx.x, n = blockIdx.y, IK = I * K;
  const T* Wo = W + o * IK;
  const T* Sn = S + n * I;
  A q[1] = {A(0)};
  for (int64_t j = threadIdx.x; j < IK; j += blockDim.x) {
    const A m = to_acc(Wo[j]) * to_acc(Sn[j / K]);
    q[0] += m * m;
  }
  block_sum(q, shared);
  const A dd = A(1) / sqrt(q[0] + eps);
  T* out = w + (n * O + o) * IK;
  for (int64_t j = threadIdx.x; j < IK; j += blockDim.x) out[j] = from_acc<T>(to_acc(Wo[j]) * to_acc(Sn[j / K]) * dd);
  if (threadIdx.x == 0) d[n * O + o] = from_acc<T>(dd);
}

// Dynamic shared memory: wsq[I], E[I] (computation dtype).
template <typename T>
__global__ void __launch_bounds__(kThreads) modulate_bwd(const T* __restrict__ gw, const T* __restrict__ gd,
                                                         const T* __restrict__ W, const T* __restrict__ S,
                                                         const T* __restrict__ D, int64_t N, int64_t O,
                                                         int64_t I, int64_t K, T* __restrict__ gweight,
                                                         typename Acc<T>::type* __restrict__ gacc,
                                                         typename Acc<T>::type* __restrict__ gs_part) {
  using A = typename Acc<T>::type;
  // Aligned for the double workspace: an unsigned char array is only guaranteed byte alignment.
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* wsq = reinterpret_cast<A*>(smem_raw);
  A* E = wsq + I;
  __shared__ A shared[32];
  const int64_t o = blockIdx.x, IK = I * K;
  const T* Wo = W + o * IK;
  A* acc = gacc + o * IK;
  for (int64_t i = threadIdx.x; i < I; i += blockDim.x) {
    A q = 0;
    for (int64_t k = 0; k < K; ++k) q += to_acc(Wo[i * K + k]) * to_acc(Wo[i * K + k]);
    wsq[i] = q;
    E[i] = 0;
    for (int64_t k = 0; k < K; ++k) acc[i * K + k] = 0;
  }
  for (int64_t n = 0; n < N; ++n) {
    const T* Sn = S + n * I;
    const A dd = to_acc(D[n * O + o]);
    A* gs = gs_part + (o * N + n) * I;
    A T_[1] = {A(0)};
    for (int64_t i = threadIdx.x; i < I; i += blockDim.x) {
      A p = 0;
      if (gw) {
        const T* g = gw + (n * O + o) * IK + i * K;
        const A sd = to_acc(Sn[i]) * dd;
        for (int64_t k = 0; k < K; ++k) {
          const A gv = to_acc(g[k]);
          p += to_acc(Wo[i * K + k]) * gv;
          acc[i * K + k] += sd * gv;
        }
      }
      gs[i] = dd * p;  // completed below, once c is known
      T_[0] += to_acc(Sn[i]) * p;
    }
    block_sum(T_, shared);
    const A c = ((gd ? to_acc(gd[n * O + o]) : A(0)) + T_[0]) * dd * dd * dd;
    for (int64_t i = threadIdx.x; i < I; i += blockDim.x) {
      const A sv = to_acc(Sn[i]);
      E[i] += c * sv * sv;
      gs[i] -= c * sv * wsq[i];
    }
  }
  for (int64_t i = threadIdx.x; i < I; i += blockDim.x)
    for (int64_t k = 0; k < K; ++k) gweight[o * IK + i * K + k] = from_acc<T>(acc[i * K + k] - to_acc(Wo[i * K + k]) * E[i]);
}

}  // namespace

cudaError_t modulate_weight_cuda_launch(int dtype, const void* weight, const void* styles, int64_t N,
                                        int64_t O, int64_t I, int64_t K, double eps, void* w, void* d,
                                        cudaStream_t stream) {
  if (N == 0 || O == 0) return cudaSuccess;
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Acc<T>::type;
    // gridDim.y is the sample: larger batches run as slabs of kMaxGridYZ samples, each launch
    // on its slab's styles and outputs.
    for (int64_t n0 = 0; n0 < N; n0 += kMaxGridYZ) {
      const int64_t n = N - n0 < kMaxGridYZ ? N - n0 : kMaxGridYZ;
      modulate_fwd<T><<<dim3(static_cast<unsigned>(O), static_cast<unsigned>(n)), kThreads, 0, stream>>>(
          static_cast<const T*>(weight), static_cast<const T*>(styles) + n0 * I, O, I, K, static_cast<A>(eps),
          static_cast<T*>(w) + n0 * O * I * K, static_cast<T*>(d) + n0 * O);
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  });
}

cudaError_t modulate_weight_grad_cuda_launch(int dtype, const void* gw, const void* gd,
                                             const void* weight, const void* styles, const void* d,
                                             int64_t N, int64_t O, int64_t I, int64_t K, void* gweight,
                                             void* gacc, void* gs_part, cudaStream_t stream) {
  if (O == 0) return cudaSuccess;
  return dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Acc<T>::type;
    const size_t smem = 2 * static_cast<size_t>(I) * sizeof(A);
    // The 48 KiB default limit counts the kernel's static shared memory (shared[32]) too.
    if (smem + 32 * sizeof(A) > 48 * 1024) {
      cudaError_t e = cudaFuncSetAttribute(modulate_bwd<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem));
      if (e != cudaSuccess) return e;
    }
    modulate_bwd<T><<<static_cast<unsigned>(O), kThreads, smem, stream>>>(
        static_cast<const T*>(gw), static_cast<const T*>(gd), static_cast<const T*>(weight),
        static_cast<const T*>(styles), static_cast<const T*>(d), N, O, I, K, static_cast<T*>(gweight),
        static_cast<A*>(gacc), static_cast<A*>(gs_part));
    return cudaGetLastError();
  });
}

}  // namespace alae_fast
