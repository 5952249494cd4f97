// CUDA kernels of bias_act and bias_act_grad. Memory-bound: each thread moves 16 bytes per
// load (VEC elements) when every pointer is 16-byte aligned, with a grid-stride loop so the
// grid stays small; 32-bit index math unless the tensor needs 64 bits.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/activations.h"
#include "cuda_convert.cuh"
#include "../common/dispatch.h"
#include "bias_act.cuh"

namespace alae_fast {
namespace {

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <int ACT, int ORDER, typename A>
__device__ __forceinline__ A elem(A z, A g, A alpha, A gain, A clamp, bool has_clamp, int order) {
  if constexpr (ORDER == 0) {
    return bias_act_elem<ACT, 0>(z, g, alpha, gain, clamp, has_clamp);
  } else {
    // Gradient orders share one kernel: the switch is uniform across the grid.
    switch (order) {
      case 1: return bias_act_elem<ACT, 1>(z, g, alpha, gain, clamp, has_clamp);
      case 2: return bias_act_elem<ACT, 2>(z, g, alpha, gain, clamp, has_clamp);
      default: return bias_act_elem<ACT, 3>(z, g, alpha, gain, clamp, has_clamp);
    }
  }
}

template <typename T, int ACT, int ORDER, typename index_t>
__global__ void bias_act_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                const T* __restrict__ b, T* __restrict__ y, index_t n,
                                index_t channels, index_t inner, typename Acc<T>::type alpha,
                                typename Acc<T>::type gain, typename Acc<T>::type clamp,
                                bool has_clamp, int order, bool vectorized) {
  using A = typename Acc<T>::type;
  constexpr int VEC = 16 / sizeof(T);
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  const index_t tid = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  auto bias_at = [&](index_t i) -> A {
    return b == nullptr ? A(0) : to_acc(b[(i / inner) % channels]);
  };
  index_t head = 0;
  if (vectorized) {
    const index_t packs = n / VEC;
    for (index_t p = tid; p < packs; p += stride) {
      const index_t i0 = p * VEC;
      Pack<T, VEC> xv = reinterpret_cast<const Pack<T, VEC>*>(x)[p];
      Pack<T, VEC> gv;
      if constexpr (ORDER > 0) gv = reinterpret_cast<const Pack<T, VEC>*>(g)[p];
      Pack<T, VEC> yv;
      // One division per pack: walk the channel index across the pack's elements.
      index_t q = i0 / inner, r = i0 - q * inner, c = q % channels;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        A gk = ORDER > 0 ? to_acc(gv.v[k]) : A(0);
        A bk = b == nullptr ? A(0) : to_acc(b[c]);
        yv.v[k] = from_acc<T>(elem<ACT, ORDER>(to_acc(xv.v[k]) + bk, gk, alpha, gain, clamp,
                                               has_clamp, order));
        if (++r == inner) {
          r = 0;
          if (++c == channels) c = 0;
        }
      }
      reinterpret_cast<Pack<T, VEC>*>(y)[p] = yv;
    }
    head = packs * VEC;
  }
  for (index_t i = head + tid; i < n; i += stride) {
    A gk = ORDER > 0 ? to_acc(g[i]) : A(0);
    y[i] = from_acc<T>(elem<ACT, ORDER>(to_acc(x[i]) + bias_at(i), gk, alpha, gain, clamp,
                                        has_clamp, order));
  }
}

bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
cudaError_t launch_typed(const void* x, const void* g, const void* b, void* y, int64_t n,
                         int64_t channels, int64_t inner, int act, int order, double alpha,
                         double gain, double clamp, bool has_clamp, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  constexpr int VEC = 16 / sizeof(T);
  const bool vectorized = aligned16(x) && aligned16(g) && aligned16(y);
  const int threads = 256;
  const int64_t work = vectorized ? (n + VEC - 1) / VEC : n;
  // Enough blocks to fill any current GPU many times over; the grid-stride loop does the rest.
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, 65536));
  // 32-bit indices only while no index the grid-stride loops form can pass INT32_MAX: the
  // last i < n plus one stride (the step that ends the loop), and head + tid before that.
  const bool small = n + 2 * blocks * threads < (int64_t(1) << 31) - 1;
  dispatch_act(act, [&](auto a) {
    constexpr int ACT = decltype(a)::value;
    auto go = [&](auto order_tag, auto index_tag) {
      constexpr int ORDER = decltype(order_tag)::value;
      using index_t = decltype(index_tag);
      bias_act_kernel<T, ACT, ORDER, index_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(g), static_cast<const T*>(b),
          static_cast<T*>(y), static_cast<index_t>(n), static_cast<index_t>(channels),
          static_cast<index_t>(inner), static_cast<A>(alpha), static_cast<A>(gain),
          static_cast<A>(clamp), has_clamp, order, vectorized);
    };
    if (order == 0) {
      small ? go(IntC<0>{}, int32_t{}) : go(IntC<0>{}, int64_t{});
    } else {
      small ? go(IntC<1>{}, int32_t{}) : go(IntC<1>{}, int64_t{});
    }
  });
  return cudaGetLastError();
}

}  // namespace

cudaError_t bias_act_cuda_launch(int dtype, const void* x, const void* g, const void* b, void* y,
                                 int64_t n, int64_t channels, int64_t inner, int act, int order,
                                 double alpha, double gain, double clamp, bool has_clamp,
                                 cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (b == nullptr) {
    channels = 1;
    inner = 1;
  }
  return dispatch_dtype(dtype, [&](auto t) {
    return launch_typed<decltype(t)>(x, g, b, y, n, channels, inner, act, order, alpha, gain, clamp, has_clamp,
                                     stream);
  });
}

}  // namespace alae_fast
