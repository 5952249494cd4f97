// CUDA kernels of filtered_lrelu and its gradient ops.
//
// The fast path is fused: one block per output tile and plane runs the phases of
// csrc/common/filtered_lrelu_tile.h in shared memory, so the upsampled plane never goes
// through global memory (that header is also what tests/native/filtered_lrelu_tile_emulation.cpp
// runs on the CPU, block by block, against the definition).
//
// Where the buffers of even a 1x1 tile exceed 48 KiB of shared memory (very long 2-D filters),
// two unfused stages go through an accumulation-type workspace of the upsampled size instead.
// Stage 1: one thread per four consecutive upsampled elements of a plane (one state byte, so
// no two threads share a byte), each a direct polyphase sum over the taps that meet real
// samples. Stage 2: one thread per output element. Indices are 64-bit, grid-stride loops.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../common/dispatch.h"
#include "../common/filtered_lrelu.h"
#include "../common/filtered_lrelu_tile.h"
#include "cuda_convert.cuh"
#include "filtered_lrelu.cuh"

namespace alae_fast {
namespace {

constexpr int kThreads = 256;


// One output sample of a pass over one plane: in(iy, ix) returns the input sample in A.
template <typename A, typename In>
__device__ A pass_sample(const FlPassArgs& p, int64_t oy, int64_t ox, In in) {
  const Phase py = phase_of(oy, p.ay.up, p.ay.down, p.ay.p0);
  const Phase px = phase_of(ox, p.ax.up, p.ax.down, p.ax.p0);
  A acc = A(0);
  for (int64_t ty = py.t0, iy = py.i0; ty < p.ay.taps; ty += p.ay.up, ++iy) {
    if (iy < 0 || iy >= p.ay.n_in) continue;
    A row = A(0);
    for (int64_t tx = px.t0, ix = px.i0; tx < p.ax.taps; tx += p.ax.up, ++ix) {
      if (ix < 0 || ix >= p.ax.n_in) continue;
      row += fl_tap<A>(p.taps, p.separable ? tx : ty * p.ax.taps + tx) * in(iy, ix);
    }
    acc += (p.separable ? fl_tap<A>(p.taps, p.ax.taps + ty) : A(1)) * row;
  }
  return acc * A(p.scale);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) stage1_kernel(FlStage1Args a) {
  using A = typename Acc<T>::type;
  const int64_t nx = a.pass.ax.n_out, n = a.pass.ay.n_out * nx;
  const int64_t groups = (n + 3) / 4, total = a.N * a.C * groups;
  const T* in = static_cast<const T*>(a.in);
  const T* bias = static_cast<const T*>(a.bias);
  A* work = static_cast<A*>(a.work);
  const A gain = A(a.gain), slope = A(a.slope), c = A(a.clamp), gs = A(a.gain * a.slope);
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = g / groups, q = g % groups;
    const int64_t nn = plane / a.C, ch = plane % a.C;
    const T* base = in + nn * a.in_st[0] + ch * a.in_st[1];
    const A b = bias ? to_acc(bias[ch]) : A(0);
    auto read = [&](int64_t iy, int64_t ix) { return to_acc(base[iy * a.in_st[2] + ix * a.in_st[3]]) + b; };
    unsigned char* byte = a.codes + plane * a.state_bytes + q;
    unsigned char packed = 0, old = a.mode == 1 ? *byte : 0;
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 4 * q + k;
      if (i >= n) break;
      A v = pass_sample<A>(a.pass, i / nx, i % nx, read);
      if (a.mode == 0) {
        const bool pos = v > A(0);
        A y = (pos ? v : v * slope) * gain;
        int code = pos ? kFlPos : kFlNeg;
        if (a.has_clamp) {
          if (!(y >= -c && y <= c)) code = kFlClamped;
          y = y < -c ? -c : (y > c ? c : y);
        }
        v = y;
        packed |= static_cast<unsigned char>(code << (2 * k));
      } else {
        const int code = (old >> (2 * k)) & 3;
        v = code == kFlClamped ? A(0) : v * (code == kFlPos ? gain : gs);
      }
      work[plane * n + i] = v;
    }
    if (a.mode == 0) *byte = packed;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) stage2_kernel(FlStage2Args a) {
  using A = typename Acc<T>::type;
  const int64_t nx = a.pass.ax.n_out, n = a.pass.ay.n_out * nx, total = a.N * a.C * n;
  const int64_t in_plane = a.pass.ay.n_in * a.pass.ax.n_in, in_w = a.pass.ax.n_in;
  const A* work = static_cast<const A*>(a.work);
  T* out = static_cast<T*>(a.out);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = e / n, i = e % n, oy = i / nx, ox = i % nx;
    const A* src = work + plane * in_plane;
    auto read = [&](int64_t iy, int64_t ix) { return src[iy * in_w + ix]; };
    const A v = pass_sample<A>(a.pass, oy, ox, read);
    out[(plane / a.C) * a.out_st[0] + (plane % a.C) * a.out_st[1] + oy * a.out_st[2] + ox * a.out_st[3]] =
        from_acc<T>(v);
  }
}

// Storage conversions of the tile phases.
struct CudaConvert {
  template <typename T>
  __device__ static typename Acc<T>::type load(T v) { return to_acc(v); }
  template <typename T, typename A>
  __device__ static T store(A v) { return from_acc<T>(v); }
};

// Block (tile, plane): blockIdx.x is the tile, planes step by gridDim.y. The barriers follow
// the phase order of filtered_lrelu_tile.h; the codes phase reads only the code bytes, which
// no later phase of the same plane writes.
template <typename T>
__global__ void __launch_bounds__(kThreads) fused_kernel(FlFusedArgs a) {
  using A = typename Acc<T>::type;
  extern __shared__ __align__(16) unsigned char fl_smem[];
  A* sm = reinterpret_cast<A*>(fl_smem);
  const unsigned char* codes = fl_smem + a.plan.acc_elems * int64_t(sizeof(A));
  const FlTile t = fl_tile_of(a, blockIdx.x);
  const int tid = threadIdx.x, nt = blockDim.x;
  for (int64_t plane = blockIdx.y; plane < a.N * a.C; plane += gridDim.y) {
    fl_phase_load<T, A, CudaConvert>(a, t, plane, sm, tid, nt);
    __syncthreads();
    if (a.sep1) {
      fl_phase_pass1_rows<A>(a, t, sm, tid, nt);
      __syncthreads();
    }
    fl_phase_pass1<A>(a, t, sm, tid, nt);
    __syncthreads();
    fl_phase_pointwise<A>(a, t, plane, sm, tid, nt);
    __syncthreads();
    if (a.mode == 0) fl_phase_codes(a, t, plane, codes, tid, nt);
    if (a.sep2) {
      fl_phase_pass2_cols<A>(a, t, sm, tid, nt);
      __syncthreads();
    }
    fl_phase_store<T, A, CudaConvert>(a, t, plane, sm, tid, nt);
    __syncthreads();  // the next plane's load overwrites what this one's last phases read
  }
}

int blocks_for(int64_t total) {
  const int64_t b = (total + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65536 * 8 ? (b < 1 ? 1 : b) : 65536 * 8);
}

// fn(T{}) launches for storage type T; returns the launch's error.
template <typename Fn>
cudaError_t by_dtype(int dtype, Fn&& fn) {
  return dispatch_dtype(dtype, [&](auto t) {
    fn(t);
    return cudaGetLastError();
  });
}

}  // namespace

cudaError_t filtered_lrelu_fused_launch(const FlFusedArgs& a, cudaStream_t stream) {
  const int64_t tiles = a.plan.tiles_y * a.plan.tiles_x, planes = a.N * a.C;
  if (tiles == 0 || planes == 0) return cudaSuccess;
  if (tiles > 2147483647) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(planes < 65535 ? planes : 65535));
  return by_dtype(a.dtype, [&](auto t) {
    fused_kernel<decltype(t)><<<grid, kThreads, static_cast<size_t>(a.plan.bytes), stream>>>(a);
  });
}

cudaError_t filtered_lrelu_stage1_launch(const FlStage1Args& a, cudaStream_t stream) {
  const int64_t n = a.pass.ay.n_out * a.pass.ax.n_out, total = a.N * a.C * ((n + 3) / 4);
  if (total == 0) return cudaSuccess;
  return by_dtype(a.dtype, [&](auto t) {
    stage1_kernel<decltype(t)><<<blocks_for(total), kThreads, 0, stream>>>(a);
  });
}

cudaError_t filtered_lrelu_stage2_launch(const FlStage2Args& a, cudaStream_t stream) {
  const int64_t total = a.N * a.C * a.pass.ay.n_out * a.pass.ax.n_out;
  if (total == 0) return cudaSuccess;
  return by_dtype(a.dtype, [&](auto t) {
    stage2_kernel<decltype(t)><<<blocks_for(total), kThreads, 0, stream>>>(a);
  });
}

}  // namespace alae_fast
